//! `berth stats`: resource use from the container's cgroup (v1 or v2).

use std::io::Write;
use std::time::Duration;

use berth_store::ContainerRecord;
use serde_json::json;

use super::{settle, Context};
use crate::cli::StatsArgs;
use crate::error::CliError;
use crate::output::{self, render_rows, units};

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Container", "CONTAINER"),
    ("Name", "NAME"),
    ("CPUPerc", "CPU %"),
    ("MemUsage", "MEM USAGE / LIMIT"),
    ("MemPerc", "MEM %"),
    ("NetIO", "NET I/O"),
    ("BlockIO", "BLOCK I/O"),
    ("PIDs", "PIDS"),
];
/// CPU use is the difference of two readings this far apart.
const SAMPLE: Duration = Duration::from_millis(500);

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn read_u64(path: &str) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// Total CPU time used, in nanoseconds.
fn cpu_ns(id: &str) -> u64 {
    read_u64(&format!("/sys/fs/cgroup/cpuacct/berth/{id}/cpuacct.usage"))
        .or_else(|| {
            read(&format!("/sys/fs/cgroup/berth/{id}/cpu.stat"))?
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|us| us * 1000)
        })
        .unwrap_or(0)
}

fn host_memory() -> u64 {
    read("/proc/meminfo")
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// (usage without page cache, limit), as Docker computes MEM USAGE.
fn memory(id: &str) -> (u64, u64) {
    let host = host_memory();
    if let Some(usage) = read_u64(&format!(
        "/sys/fs/cgroup/memory/berth/{id}/memory.usage_in_bytes"
    )) {
        let stat =
            read(&format!("/sys/fs/cgroup/memory/berth/{id}/memory.stat")).unwrap_or_default();
        let inactive = stat
            .lines()
            .find_map(|l| l.strip_prefix("total_inactive_file "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let limit = read_u64(&format!(
            "/sys/fs/cgroup/memory/berth/{id}/memory.limit_in_bytes"
        ))
        .unwrap_or(host)
        .min(host);
        return (usage.saturating_sub(inactive), limit);
    }
    let usage = read_u64(&format!("/sys/fs/cgroup/berth/{id}/memory.current")).unwrap_or(0);
    let limit = read_u64(&format!("/sys/fs/cgroup/berth/{id}/memory.max"))
        .unwrap_or(host)
        .min(host);
    (usage, limit)
}

/// Bytes received and sent on the container's interfaces other than loopback.
fn net_io(pid: i64) -> (u64, u64) {
    let Some(dev) = read(&format!("/proc/{pid}/net/dev")) else {
        return (0, 0);
    };
    dev.lines()
        .skip(2)
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            if name.trim() == "lo" {
                return None;
            }
            let f: Vec<u64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            Some((*f.first()?, *f.get(8)?))
        })
        .fold((0, 0), |(r, t), (a, b)| (r + a, t + b))
}

fn block_io(id: &str) -> (u64, u64) {
    let mut rd = 0;
    let mut wr = 0;
    if let Some(s) = read(&format!(
        "/sys/fs/cgroup/blkio/berth/{id}/blkio.throttle.io_service_bytes"
    )) {
        for l in s.lines() {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() == 3 {
                let n: u64 = f[2].parse().unwrap_or(0);
                match f[1] {
                    "Read" => rd += n,
                    "Write" => wr += n,
                    _ => {}
                }
            }
        }
    }
    (rd, wr)
}

fn pids(id: &str) -> u64 {
    read_u64(&format!("/sys/fs/cgroup/pids/berth/{id}/pids.current"))
        .or_else(|| read_u64(&format!("/sys/fs/cgroup/berth/{id}/pids.current")))
        .unwrap_or(0)
}

fn rows(
    containers: &[ContainerRecord],
    before: &[u64],
    elapsed: Duration,
    no_trunc: bool,
) -> Vec<serde_json::Value> {
    containers
        .iter()
        .zip(before)
        .map(|(c, b)| {
            let active = c.status.is_active();
            let cpu = if active {
                let delta = cpu_ns(&c.id).saturating_sub(*b) as f64;
                delta / elapsed.as_nanos() as f64 * 100.0
            } else {
                0.0
            };
            let (mem, limit) = if active { memory(&c.id) } else { (0, 0) };
            let (rx, tx) = if active { net_io(c.pid) } else { (0, 0) };
            let (br, bw) = if active { block_io(&c.id) } else { (0, 0) };
            let mem_perc = if limit > 0 { mem as f64 / limit as f64 * 100.0 } else { 0.0 };
            json!({
                "BlockIO": format!("{} / {}", units::human_size(br), units::human_size(bw)),
                "CPUPerc": format!("{cpu:.2}%"),
                "Container": c.name,
                "ID": if no_trunc { c.id.clone() } else { c.id[..12].to_string() },
                "MemPerc": format!("{mem_perc:.2}%"),
                "MemUsage": format!("{} / {}", units::human_size_binary(mem), units::human_size_binary(limit)),
                "Name": c.name,
                "NetIO": format!("{} / {}", units::human_size(rx), units::human_size(tx)),
                "PIDs": if active { pids(&c.id).to_string() } else { "0".into() },
            })
        })
        .collect()
}

pub fn run(ctx: &Context, a: StatsArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    loop {
        let mut containers = Vec::new();
        if a.containers.is_empty() {
            for c in store.containers()? {
                let c = settle(&mut store, c)?;
                if a.all || c.status.is_active() {
                    containers.push(c);
                }
            }
        } else {
            for q in &a.containers {
                containers.push(super::find(&mut store, q)?);
            }
        }
        let before: Vec<u64> = containers.iter().map(|c| cpu_ns(&c.id)).collect();
        std::thread::sleep(SAMPLE);
        let rows = rows(&containers, &before, SAMPLE, a.no_trunc);
        let mut out = output::stdout();
        if !a.no_stream {
            // Redraw in place, as docker stats does on a terminal.
            write!(out, "\x1b[2J\x1b[H")?;
        }
        render_rows(&mut out, a.format.as_deref(), DEFAULT_TABLE, &rows, HEADERS)?;
        out.flush()?;
        if a.no_stream {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
