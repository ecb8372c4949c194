//! Container commands. The monitor process of each container writes its state;
//! these commands read it, signal processes, and settle the records of
//! containers whose monitor died.

pub mod commit;
pub mod create;
pub mod exec;
pub mod files;
pub mod freeze;
pub mod inspect;
pub mod lifecycle;
pub mod logs;
pub mod mounts;
pub mod prune;
pub mod ps;
pub mod stats;
pub mod terminal;
pub mod top;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_runtime::attach;
use berth_runtime::proc::alive;
use berth_store::{ContainerRecord, ContainerStatus, Store};

use super::Context;
use crate::error::{status, CliError};
use crate::output::units;

/// How often waiting commands look at a container's record.
pub const POLL: Duration = Duration::from_millis(50);

/// Corrects a record whose monitor is gone: a container whose init process is
/// gone too has exited, whatever killed them. Returns the settled record.
pub fn settle(store: &mut Store, mut c: ContainerRecord) -> Result<ContainerRecord, CliError> {
    if !c.status.is_active() || alive(c.monitor_pid, c.monitor_start) {
        return Ok(c);
    }
    if c.pid > 0 && alive(c.pid, c.pid_start) {
        // The monitor died but the container runs on; it is still up.
        return Ok(c);
    }
    c.status = ContainerStatus::Exited;
    // Docker reports 255 when the exit status could not be collected.
    c.exit_code = 255;
    c.error = "the container's monitor exited unexpectedly".into();
    c.finished_at
        .get_or_insert_with(berth_runtime::monitor::now);
    c.pid = 0;
    c.monitor_pid = 0;
    store.save_container_state(&c)?;
    // Undo what the monitor would have cleaned up.
    let dir = store.layout().container(&c.id);
    let _ = berth_runtime::rootfs::unmount_rootfs(&berth_runtime::rootfs::RootPaths::new(&dir));
    berth_runtime::netns::release(&dir);
    Ok(c)
}

/// Finds a container and settles its record.
pub fn find(store: &mut Store, query: &str) -> Result<ContainerRecord, CliError> {
    let c = store.container(query)?;
    settle(store, c)
}

/// Waits until the container is no longer active (or `timeout` passes);
/// returns the final record.
pub fn wait_inactive(
    store: &mut Store,
    id: &str,
    timeout: Option<Duration>,
) -> Result<ContainerRecord, CliError> {
    let start = Instant::now();
    loop {
        let c = find(store, id)?;
        if !c.status.is_active() || timeout.is_some_and(|t| start.elapsed() >= t) {
            return Ok(c);
        }
        std::thread::sleep(POLL);
    }
}

/// What the container runs: its entrypoint, then its command.
pub fn argv(cfg: &berth_runtime::ContainerConfig) -> Vec<String> {
    cfg.entrypoint
        .iter()
        .flatten()
        .chain(cfg.cmd.iter().flatten())
        .cloned()
        .collect()
}

/// Docker's STATUS column: "Up 5 seconds", "Exited (0) 3 minutes ago", …
pub fn status_text(c: &ContainerRecord) -> String {
    let since = |t: &Option<String>| {
        t.as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| (chrono::Utc::now() - t.with_timezone(&chrono::Utc)).num_seconds())
            .unwrap_or(0)
    };
    match c.status {
        ContainerStatus::Created => "Created".into(),
        ContainerStatus::Running => format!("Up {}", units::human_duration(since(&c.started_at))),
        ContainerStatus::Paused => format!(
            "Up {} (Paused)",
            units::human_duration(since(&c.started_at))
        ),
        ContainerStatus::Restarting => format!(
            "Restarting ({}) {} ago",
            c.exit_code,
            units::human_duration(since(&c.finished_at))
        ),
        ContainerStatus::Exited => format!(
            "Exited ({}) {} ago",
            c.exit_code,
            units::human_duration(since(&c.finished_at))
        ),
        ContainerStatus::Dead => "Dead".into(),
    }
}

/// Spawns the monitor of container `id`. With `attach`, returns once the
/// monitor listens, so the caller can connect before the container starts.
pub struct MonitorHandle {
    lines: BufReader<std::process::ChildStdout>,
    _child: std::process::Child,
}

pub fn spawn_monitor(
    ctx: &Context,
    store: &Store,
    id: &str,
    attach: bool,
) -> Result<MonitorHandle, CliError> {
    let dir = store.layout().container(id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("monitor.log"))
        .map_err(|e| CliError::new(format!("cannot open monitor log in {}: {e}", dir.display())))?;
    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find the berth binary: {e}")))?;
    let mut cmd = Command::new(exe);
    cmd.arg("--root").arg(ctx.root()).arg("__monitor").arg(id);
    if attach {
        cmd.arg("--attach");
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .env_remove("BERTH_ROOT")
        .spawn()
        .map_err(|e| CliError::new(format!("cannot start the container monitor: {e}")))?;
    let out = child.stdout.take().expect("piped");
    Ok(MonitorHandle {
        lines: BufReader::new(out),
        _child: child,
    })
}

/// What the monitor said.
pub enum MonitorEvent {
    Ready,
    Started,
    Failed(i32, String),
}

impl MonitorHandle {
    pub fn next(&mut self) -> Result<MonitorEvent, CliError> {
        let mut line = String::new();
        let n = self
            .lines
            .read_line(&mut line)
            .map_err(|e| CliError::new(format!("lost the container monitor: {e}")))?;
        if n == 0 {
            return Err(CliError {
                message: "the container monitor exited before starting the container; see monitor.log in the container's directory".into(),
                status: status::ENGINE,
                silent: false,
            });
        }
        let line = line.trim_end();
        if line == "ready" {
            return Ok(MonitorEvent::Ready);
        }
        if line.starts_with("started") {
            return Ok(MonitorEvent::Started);
        }
        if let Some(rest) = line.strip_prefix("error ") {
            let (code, msg) = rest.split_once(' ').unwrap_or((rest, ""));
            return Ok(MonitorEvent::Failed(
                code.parse().unwrap_or(status::ENGINE),
                msg.to_string(),
            ));
        }
        Err(CliError::new(format!(
            "unexpected word from the container monitor: {line:?}"
        )))
    }

    /// Waits for the start; an error carries Docker's exit status.
    pub fn started(&mut self) -> Result<(), CliError> {
        loop {
            match self.next()? {
                MonitorEvent::Started => return Ok(()),
                MonitorEvent::Ready => continue,
                MonitorEvent::Failed(code, msg) => {
                    return Err(CliError {
                        message: msg,
                        status: code,
                        silent: false,
                    })
                }
            }
        }
    }
}

/// How the local side of an attach behaves.
pub struct StreamOptions {
    /// Forward this process's standard input.
    pub stdin: bool,
    /// The container has a terminal: raw mode here, size changes forwarded.
    pub tty: bool,
    /// Without a terminal, signals to berth go to the container's process
    /// (Docker's sig-proxy): its host PID, read when a signal comes.
    pub proxy_signals_to: Option<Box<dyn Fn() -> Option<i64> + Send>>,
}

/// Relays a container's attach stream to this process's stdout and stderr
/// (and its input to the container) until the container exits. Returns the
/// container's exit status, or -1 if the stream ended without one.
pub fn stream(sock: std::os::unix::net::UnixStream, opts: StreamOptions) -> Result<i32, CliError> {
    use std::sync::{Arc, Mutex};
    let writer = Arc::new(Mutex::new(sock.try_clone()?));
    let send = {
        let writer = writer.clone();
        move |kind: u8, data: &[u8]| -> bool {
            let mut w = writer.lock().expect("attach writer");
            attach::write_frame(&mut *w, kind, data).is_ok()
        }
    };
    let _raw = opts.tty.then(terminal::RawMode::enable);
    if opts.tty {
        if let Some((r, c)) = terminal::size() {
            send(attach::IN_RESIZE, &attach::resize_payload(r, c));
        }
        if let Ok(mut signals) =
            signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH])
        {
            let send = send.clone();
            std::thread::spawn(move || {
                for _ in signals.forever() {
                    if let Some((r, c)) = terminal::size() {
                        send(attach::IN_RESIZE, &attach::resize_payload(r, c));
                    }
                }
            });
        }
    } else if let Some(pid_of) = opts.proxy_signals_to {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([
            SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2,
        ]) {
            std::thread::spawn(move || {
                for sig in signals.forever() {
                    let target = pid_of().and_then(|p| rustix::process::Pid::from_raw(p as i32));
                    if let (Some(pid), Some(s)) = (target, rustix::process::Signal::from_raw(sig)) {
                        let _ = rustix::process::kill_process(pid, s);
                    }
                }
            });
        }
    }
    if opts.stdin {
        let send = send.clone();
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 8192];
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if !send(attach::IN_DATA, &buf[..n]) {
                            return;
                        }
                    }
                }
            }
            send(attach::IN_CLOSE, &[]);
        });
    } else if !opts.tty {
        send(attach::IN_CLOSE, &[]);
    }
    let mut reader = BufReader::new(sock);
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    loop {
        match attach::read_frame(&mut reader)? {
            Some((attach::STDOUT, data)) => {
                out.write_all(&data)?;
                out.flush()?;
            }
            Some((attach::STDERR, data)) => {
                err.write_all(&data)?;
                err.flush()?;
            }
            Some((attach::EXIT, data)) => {
                return Ok(String::from_utf8_lossy(&data).trim().parse().unwrap_or(255));
            }
            Some((attach::ERROR, data)) => {
                return Err(CliError {
                    message: String::from_utf8_lossy(&data).into_owned(),
                    status: status::ENGINE,
                    silent: false,
                })
            }
            Some(_) => {}
            None => return Ok(-1),
        }
    }
}

/// Stream options for an attached `run`/`start -a` of container `id`.
pub fn attach_options(ctx: &Context, id: &str, stdin: bool, tty: bool) -> StreamOptions {
    let root = ctx.root().clone();
    let id = id.to_string();
    StreamOptions {
        stdin,
        tty,
        proxy_signals_to: Some(Box::new(move || {
            let store = Store::open(&root).ok()?;
            let c = store.container(&id).ok()?;
            (c.pid > 0 && alive(c.pid, c.pid_start)).then_some(c.pid)
        })),
    }
}

/// Runs `body` for each argument; errors are printed as they come, and the
/// status says whether any failed (Docker's behaviour for multi-container
/// commands).
pub fn for_each(
    names: &[String],
    mut body: impl FnMut(&str) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut failed = false;
    for n in names {
        if let Err(e) = body(n) {
            if e.silent && e.status == 0 {
                continue;
            }
            failed = true;
            let _ = std::io::stdout().flush();
            let _ = writeln!(std::io::stderr(), "Error: {e}");
        }
    }
    if failed {
        Err(CliError::exit(status::FAILURE))
    } else {
        Ok(())
    }
}
