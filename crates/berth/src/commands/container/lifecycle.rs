//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `rename`.

use std::io::Write;
use std::time::Duration;

use berth_runtime::proc::alive;
use berth_runtime::ContainerConfig;
use berth_store::{ContainerRecord, ContainerStatus, Store};
use rustix::process::{kill_process, Pid, Signal};

use super::create::exit_with;
use super::{find, for_each, spawn_monitor, stream, wait_inactive, Context, MonitorEvent};
use crate::cli::{KillArgs, RenameArgs, RmArgs, StartArgs, StopArgs, WaitArgs};
use crate::error::{status, CliError};
use crate::output;

/// Docker's default grace period for `stop`.
const DEFAULT_STOP_TIMEOUT: i64 = 10;
/// How long to wait for a SIGKILLed container's monitor to record the exit.
const KILL_WAIT: Duration = Duration::from_secs(10);

fn config_of(c: &ContainerRecord) -> ContainerConfig {
    serde_json::from_str(&c.config).unwrap_or_default()
}

fn send_signal(c: &ContainerRecord, sig: i32) -> Result<(), CliError> {
    if c.pid <= 0 || !alive(c.pid, c.pid_start) {
        return Ok(());
    }
    let pid = Pid::from_raw(c.pid as i32).expect("positive pid");
    // SAFETY-free: `Signal::from_raw` only accepts known signal numbers.
    let sig =
        Signal::from_raw(sig).ok_or_else(|| CliError::new(format!("invalid signal {sig}")))?;
    match kill_process(pid, sig) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => Ok(()),
        Err(e) => Err(CliError::new(format!(
            "cannot signal container {}: {e}",
            c.name
        ))),
    }
}

fn start_one(
    ctx: &Context,
    store: &mut Store,
    query: &str,
    attach: bool,
    interactive: bool,
) -> Result<(), CliError> {
    let c = find(store, query)?;
    if c.status.is_active() {
        if !attach {
            writeln!(output::stdout(), "{query}")?;
        }
        return Ok(());
    }
    store.set_stop_requested(&c.id, false)?;
    let dir = store.layout().container(&c.id);
    let mut m = spawn_monitor(ctx, store, &c.id, attach)?;
    if !attach {
        m.started()?;
        writeln!(output::stdout(), "{query}")?;
        return Ok(());
    }
    match m.next()? {
        MonitorEvent::Failed(code, msg) => {
            return Err(CliError {
                message: msg,
                status: code,
                silent: false,
            })
        }
        MonitorEvent::Ready | MonitorEvent::Started => {}
    }
    let sock = berth_runtime::attach::connect(&dir)?;
    m.started()?;
    let tty = config_of(&c).tty;
    let code = stream(sock, super::attach_options(ctx, &c.id, interactive, tty))?;
    exit_with(ctx, &c.id, code)
}

pub fn start(ctx: &Context, a: StartArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(CliError::usage(
                "you cannot start and attach multiple containers at once",
            ));
        }
        return start_one(ctx, &mut store, &a.containers[0], true, a.interactive);
    }
    for_each(&a.containers, |q| {
        start_one(ctx, &mut store, q, false, false).map_err(|e| CliError {
            message: format!("failed to start container {q}: {}", e.message),
            ..e
        })
    })
}

/// Stops one container: its stop signal, then SIGKILL after the grace period.
fn stop_one(
    store: &mut Store,
    query: &str,
    time: Option<i64>,
    signal: Option<&str>,
) -> Result<ContainerRecord, CliError> {
    let c = find(store, query)?;
    if !c.status.is_active() {
        return Ok(c);
    }
    store.set_stop_requested(&c.id, true)?;
    let cfg = config_of(&c);
    let sig_name = signal
        .map(str::to_string)
        .or(cfg.stop_signal.clone())
        .unwrap_or_else(|| "SIGTERM".into());
    let sig =
        berth_runtime::signal::parse(&sig_name).map_err(|e| CliError::usage(e.to_string()))?;
    let grace = time.or(cfg.stop_timeout).unwrap_or(DEFAULT_STOP_TIMEOUT);
    if c.status == ContainerStatus::Paused {
        // A frozen process cannot act on a signal; Docker thaws it first.
        thaw(&c.id);
    }
    send_signal(&c, sig)?;
    let after = wait_inactive(store, &c.id, Some(Duration::from_secs(grace.max(0) as u64)))?;
    if !after.status.is_active() {
        return Ok(after);
    }
    send_signal(&after, libc::SIGKILL)?;
    let done = wait_inactive(store, &c.id, Some(KILL_WAIT))?;
    if done.status.is_active() {
        return Err(CliError::new(format!(
            "container {query} did not stop after SIGKILL"
        )));
    }
    Ok(done)
}

fn thaw(id: &str) {
    for f in [
        format!("/sys/fs/cgroup/freezer/berth/{id}/freezer.state"),
        format!("/sys/fs/cgroup/berth/{id}/cgroup.freeze"),
    ] {
        let v = if f.ends_with("freezer.state") {
            "THAWED"
        } else {
            "0"
        };
        let _ = std::fs::write(f, v);
    }
}

pub fn stop(ctx: &Context, a: StopArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        stop_one(&mut store, q, a.time, a.signal.as_deref())?;
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

pub fn restart(ctx: &Context, a: StopArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        stop_one(&mut store, q, a.time, a.signal.as_deref())?;
        start_one(ctx, &mut store, q, false, false).map(|_| ())
    })
}

pub fn kill(ctx: &Context, a: KillArgs) -> Result<(), CliError> {
    let sig =
        berth_runtime::signal::parse(&a.signal).map_err(|e| CliError::usage(e.to_string()))?;
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        let c = find(&mut store, q)?;
        if !c.status.is_active() {
            return Err(CliError::new(format!(
                "Cannot kill container: {q}: container {} is not running",
                &c.id[..12]
            )));
        }
        if sig == libc::SIGKILL || sig == libc::SIGTERM {
            store.set_stop_requested(&c.id, true)?;
        }
        send_signal(&c, sig)?;
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

/// Removes a stopped container: its record, its writable layer and logs.
pub fn remove(store: &mut Store, c: &ContainerRecord) -> Result<(), CliError> {
    let dir = store.layout().container(&c.id);
    // A monitor finishing up releases these too; wait for it first.
    let start = std::time::Instant::now();
    while alive(c.monitor_pid, c.monitor_start) && start.elapsed() < KILL_WAIT {
        std::thread::sleep(super::POLL);
    }
    berth_runtime::rootfs::unmount_rootfs(&berth_runtime::rootfs::RootPaths::new(&dir))
        .map_err(|e| CliError::new(e.to_string()))?;
    berth_runtime::netns::release(&dir);
    store.delete_container(&c.id)?;
    // Leftover cgroups of a container whose monitor died.
    for base in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        let _ = std::fs::remove_dir(format!("{base}/berth/{}", c.id));
    }
    if let Ok(entries) = std::fs::read_dir("/sys/fs/cgroup") {
        for e in entries.flatten() {
            let _ = std::fs::remove_dir(e.path().join("berth").join(&c.id));
        }
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| CliError::new(format!("remove {}: {e}", dir.display())))?;
    Ok(())
}

pub fn rm(ctx: &Context, a: RmArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        let mut c = find(&mut store, q)?;
        if c.status.is_active() {
            if !a.force {
                return Err(CliError::new(format!(
                    "cannot remove container \"/{}\": container is {}: stop the container before removing or force remove",
                    c.name,
                    c.status.as_str()
                )));
            }
            store.set_stop_requested(&c.id, true)?;
            if c.status == ContainerStatus::Paused {
                thaw(&c.id);
            }
            send_signal(&c, libc::SIGKILL)?;
            c = wait_inactive(&mut store, &c.id, Some(KILL_WAIT))?;
            if c.status.is_active() {
                return Err(CliError::new(format!(
                    "container {q} did not stop after SIGKILL"
                )));
            }
        }
        let volumes = store.container_volumes(&c.id)?;
        match store.container(&c.id) {
            Ok(c) => remove(&mut store, &c)?,
            // `--rm`: the monitor removed it already.
            Err(berth_store::Error::NoSuchContainer(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if a.volumes {
            // Only anonymous volumes, and only if no other container uses them.
            for (name, _) in volumes {
                if store
                    .volume(&name)
                    .is_ok_and(|v| v.anonymous && v.used_by.is_empty())
                {
                    store.remove_volume(&name)?;
                }
            }
        }
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

pub fn wait(ctx: &Context, a: WaitArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    for_each(&a.containers, |q| {
        let c = find(&mut store, q)?;
        let done = wait_inactive(&mut store, &c.id, None)?;
        writeln!(output::stdout(), "{}", done.exit_code)?;
        Ok(())
    })
}

pub fn rename(ctx: &Context, a: RenameArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    store
        .rename_container(&c.id, &a.new_name)
        .map_err(|e| CliError {
            message: e.to_string(),
            status: status::FAILURE,
            silent: false,
        })
}
