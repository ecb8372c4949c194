//! `berth info` / `system info`, `system check`, `version`.

use std::io::Write;

use berth_store::ContainerStatus;
use serde_json::json;

use super::Context;
use crate::cli::{CheckArgs, InfoArgs};
use crate::error::{status, CliError};
use crate::output::{self, template::Template};

const VERSION: &str = env!("CARGO_PKG_VERSION");

/// overlayfs when the kernel has it, otherwise the copy snapshotter.
fn storage_driver() -> &'static str {
    if berth_runtime::rootfs::copy_requested() {
        return "copy";
    }
    let has_overlay = std::fs::read_to_string("/proc/filesystems")
        .map(|f| f.lines().any(|l| l.trim_end().ends_with("overlay")))
        .unwrap_or(false);
    if has_overlay {
        "overlayfs"
    } else {
        "copy"
    }
}

pub fn info(ctx: &Context, a: InfoArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let counts = store.counts()?;
    let (mut running, mut paused, mut stopped) = (0, 0, 0);
    for c in store.containers()? {
        match super::container::settle(&mut store, c)?.status {
            ContainerStatus::Paused => paused += 1,
            ContainerStatus::Running => running += 1,
            _ => stopped += 1,
        }
    }
    let uname = rustix::system::uname();
    let info = json!({
        "Containers": running + paused + stopped,
        "ContainersRunning": running,
        "ContainersPaused": paused,
        "ContainersStopped": stopped,
        "Images": counts["images"],
        "Layers": counts["layers"],
        "Driver": storage_driver(),
        "BerthRootDir": ctx.root().display().to_string(),
        "ServerVersion": VERSION,
        "KernelVersion": uname.release().to_string_lossy(),
        "OperatingSystem": os_name(),
        "OSType": "linux",
        "Architecture": std::env::consts::ARCH,
        "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "MemTotal": mem_total(),
        "Name": uname.nodename().to_string_lossy(),
        "Daemonless": true,
    });
    let mut out = output::stdout();
    match a.format.as_deref() {
        Some("json") => writeln!(out, "{}", serde_json::to_string(&info).expect("json"))?,
        Some(f) => writeln!(out, "{}", Template::parse(f)?.render(&info)?)?,
        None => {
            let v = |k: &str| match &info[k] {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            writeln!(out, "Client:")?;
            writeln!(out, " Version:    {VERSION}")?;
            writeln!(out, " Context:    default (daemonless)")?;
            writeln!(out)?;
            writeln!(out, "Server:")?;
            writeln!(out, " Containers: {}", v("Containers"))?;
            writeln!(out, "  Running: {}", v("ContainersRunning"))?;
            writeln!(out, "  Paused: {}", v("ContainersPaused"))?;
            writeln!(out, "  Stopped: {}", v("ContainersStopped"))?;
            writeln!(out, " Images: {}", v("Images"))?;
            writeln!(out, " Server Version: {VERSION}")?;
            writeln!(out, " Storage Driver: {}", v("Driver"))?;
            writeln!(out, "  Layers: {}", v("Layers"))?;
            writeln!(out, " Kernel Version: {}", v("KernelVersion"))?;
            writeln!(out, " Operating System: {}", v("OperatingSystem"))?;
            writeln!(out, " OSType: linux")?;
            writeln!(out, " Architecture: {}", v("Architecture"))?;
            writeln!(out, " CPUs: {}", v("NCPU"))?;
            writeln!(
                out,
                " Total Memory: {}",
                crate::output::units::human_size_binary(info["MemTotal"].as_u64().unwrap_or(0))
            )?;
            writeln!(out, " Name: {}", v("Name"))?;
            writeln!(out, " Berth Root Dir: {}", v("BerthRootDir"))?;
        }
    }
    Ok(())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| "Linux".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        })
        .map_or(0, |kb| kb * 1024)
}

pub fn check(ctx: &Context, a: CheckArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let problems = store.check(a.deep)?;
    let mut out = output::stdout();
    if problems.is_empty() {
        writeln!(out, "The store at {} is consistent.", ctx.root().display())?;
        return Ok(());
    }
    for p in &problems {
        writeln!(out, "{p}")?;
    }
    Err(CliError::exit(status::FAILURE))
}

pub fn version() -> Result<(), CliError> {
    let mut out = output::stdout();
    writeln!(out, "Client:")?;
    writeln!(out, " Version:           {VERSION}")?;
    writeln!(
        out,
        " OS/Arch:           linux/{}",
        berth_oci::host_architecture()
    )?;
    writeln!(out, " Daemonless:        true")?;
    Ok(())
}
