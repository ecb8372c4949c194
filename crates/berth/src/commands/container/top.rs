//! `berth top`: the container's processes, as the host's `ps` shows them
//! (Docker runs `ps -ef` on the host and keeps the container's rows).

use std::collections::HashSet;
use std::io::Write;
use std::process::Command;

use super::{find, Context};
use crate::cli::TopArgs;
use crate::error::CliError;
use crate::output;

/// The host PIDs in the container's cgroup.
pub fn container_pids(id: &str) -> Vec<i64> {
    let candidates = [
        format!("/sys/fs/cgroup/pids/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/memory/berth/{id}/cgroup.procs"),
        format!("/sys/fs/cgroup/berth/{id}/cgroup.procs"),
    ];
    for c in candidates {
        if let Ok(s) = std::fs::read_to_string(c) {
            return s.lines().filter_map(|l| l.trim().parse().ok()).collect();
        }
    }
    Vec::new()
}

pub fn run(ctx: &Context, a: TopArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    if !matches!(
        c.status,
        berth_store::ContainerStatus::Running | berth_store::ContainerStatus::Paused
    ) {
        return Err(CliError::new(format!(
            "container {} is not running",
            &c.id[..12]
        )));
    }
    let pids: HashSet<i64> = container_pids(&c.id).into_iter().collect();
    let args: Vec<String> = if a.ps_args.is_empty() {
        vec!["-ef".into()]
    } else {
        a.ps_args.clone()
    };
    let out = Command::new("ps")
        .args(&args)
        .output()
        .map_err(|e| CliError::new(format!("cannot run ps on the host: {e}")))?;
    if !out.status.success() {
        return Err(CliError::new(format!(
            "ps {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let pid_col = header
        .split_whitespace()
        .position(|h| h == "PID")
        .ok_or_else(|| {
            CliError::new(format!(
                "Couldn't find PID field in ps output for: ps {}",
                args.join(" ")
            ))
        })?;
    let mut w = output::stdout();
    writeln!(w, "{header}")?;
    for l in lines {
        let pid = l
            .split_whitespace()
            .nth(pid_col)
            .and_then(|p| p.parse::<i64>().ok());
        if pid.is_some_and(|p| pids.contains(&p)) {
            writeln!(w, "{l}")?;
        }
    }
    Ok(())
}
