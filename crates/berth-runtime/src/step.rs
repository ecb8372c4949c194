//! Build steps: one process run in a root filesystem the caller has mounted,
//! with its output on pipes, for `RUN` in `berth build`.
//!
//! The caller (a multi-threaded build) prepares everything with [`prepare`]:
//! the user and executable checked in the root, /etc files, a private network
//! namespace, and the OCI runtime spec. The container itself is started by a
//! helper process, `berth __step DIR` ([`run`]), because the runtime clones
//! processes that run Rust code before exec, which is only safe from a
//! single-threaded process (the monitor follows the same rule). The helper
//! inherits the pipes, so the container writes straight into them; it exits
//! with the container's exit code, and kills the container when it is told to
//! stop or its parent goes away.
//!
//! ```text
//! build thread ──prepare──▶ DIR/{bundle/config.json, hosts, resolv.conf, netns}
//!      │ spawn `berth __step DIR` (stdout, stderr: pipes the build reads)
//!      ▼
//! __step ──libcontainer──▶ container init (PID 1 of its namespaces) ──exit──▶ __step exit code
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use rustix::process::{Pid, Signal, WaitOptions};

use crate::command::{check_executable, DEFAULT_PATH};
use crate::config::{ContainerConfig, MountSpec};
use crate::error::{Error, Result};
use crate::files::write_etc_files;
use crate::spec::{self, SpecInput};

/// How often the helper looks for the container's exit or a stop request.
const POLL: Duration = Duration::from_millis(10);
/// The helper's exit status when it could not start the container.
pub const START_FAILED: i32 = 125;

/// What a step runs and how.
#[derive(Debug, Clone)]
pub struct StepRequest<'a> {
    /// Unique among running steps; names the cgroup and runtime state.
    pub id: &'a str,
    /// A private directory for the bundle, /etc files and the namespace.
    pub dir: &'a Path,
    /// The root filesystem, mounted.
    pub rootfs: &'a Path,
    pub argv: &'a [String],
    /// The environment as the image config and ARGs give it; PATH and HOME
    /// are added when missing, as Docker does.
    pub env: &'a [String],
    /// `USER` as written (`name`, `uid:gid` …), resolved in `rootfs`.
    pub user: &'a str,
    pub workdir: &'a str,
    /// The host's network namespace, or a private one with loopback only.
    pub host_network: bool,
    /// Bind and tmpfs mounts (`RUN --mount`), with host paths as sources.
    pub mounts: &'a [MountSpec],
    pub hostname: &'a str,
}

/// A prepared step: the `berth __step` command to spawn, and what to release
/// after it exits.
pub struct PreparedStep {
    dir: PathBuf,
    netns: Option<PathBuf>,
}

impl PreparedStep {
    /// The helper process, with its output on pipes and no input.
    pub fn spawn(&self, exe: &Path) -> Result<Child> {
        Command::new(exe)
            .arg("__step")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Runtime(format!("cannot start the build step helper: {e}")))
    }
}

impl Drop for PreparedStep {
    fn drop(&mut self) {
        if let Some(ns) = &self.netns {
            crate::netns::release_at(ns);
        }
    }
}

/// Checks the step against its root filesystem and writes its bundle.
/// Errors are Docker's: an unknown user, or a command that is not found
/// (127) or not executable (126).
pub fn prepare(req: &StepRequest<'_>) -> Result<PreparedStep> {
    let user = crate::user::resolve(req.rootfs, req.user)?;
    let mut env: Vec<String> = req.env.to_vec();
    let has = |env: &[String], k: &str| {
        env.iter()
            .any(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) == k)
    };
    if !has(&env, "PATH") {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", user.home));
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    let argv0 = req
        .argv
        .first()
        .ok_or_else(|| Error::Invalid("the step has no command".into()))?;
    check_executable(req.rootfs, argv0, &path)?;

    std::fs::create_dir_all(req.dir).map_err(io_err)?;
    let etc = write_etc_files(req.dir, req.hostname, req.host_network, &[])?;
    let netns = if req.host_network {
        None
    } else {
        Some(crate::netns::create_at(&req.dir.join("netns"))?)
    };
    let prepared = PreparedStep {
        dir: req.dir.to_path_buf(),
        netns,
    };
    let config = ContainerConfig {
        hostname: req.hostname.to_string(),
        working_dir: req.workdir.to_string(),
        host_config: crate::config::HostConfig {
            network_mode: if req.host_network { "host" } else { "none" }.into(),
            mounts: req.mounts.to_vec(),
            ..Default::default()
        },
        ..Default::default()
    };
    let spec = spec::build(&SpecInput {
        id: req.id,
        config: &config,
        argv: req.argv,
        env: &env,
        user: &user,
        rootfs: req.rootfs,
        etc: &etc,
        netns: prepared.netns.as_deref(),
        init: None,
        volume_sources: Default::default(),
    })?;
    let bundle = req.dir.join("bundle");
    std::fs::create_dir_all(&bundle).map_err(io_err)?;
    berth_fs::write_atomic(
        &bundle.join("config.json"),
        &serde_json::to_vec_pretty(&spec).expect("spec serializes"),
    )?;
    berth_fs::write_atomic(&req.dir.join("id"), req.id.as_bytes())?;
    Ok(prepared)
}

/// The helper: starts the container of the step prepared in `dir` and waits
/// for it. Returns the container's exit code (128+N for signal N), or
/// [`START_FAILED`] with the reason on standard error.
pub fn run(dir: &Path) -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    // The build that spawned this helper may be interrupted or killed; the
    // container must not outlive it.
    let _ = rustix::process::set_parent_process_death_signal(Some(Signal::Term));
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&stop));
    }
    match start_and_wait(dir, &stop) {
        Ok(code) => code,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "{e}");
            START_FAILED
        }
    }
}

fn start_and_wait(dir: &Path, stop: &AtomicBool) -> Result<i32> {
    let id = std::fs::read_to_string(dir.join("id")).map_err(io_err)?;
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let state = dir.join("state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state).map_err(io_err)?;
    let stdin: std::os::fd::OwnedFd = std::fs::File::open("/dev/null").map_err(io_err)?.into();
    let stdout = rustix::io::dup(rustix::stdio::stdout()).map_err(|e| io_err(e.into()))?;
    let stderr = rustix::io::dup(rustix::stdio::stderr()).map_err(|e| io_err(e.into()))?;
    let mut container = ContainerBuilder::new(id, SyscallType::default())
        .with_root_path(&state)
        .map_err(runtime_err)?
        .with_executor(DefaultExecutor {})
        .with_stdin(stdin)
        .with_stdout(stdout)
        .with_stderr(stderr)
        .as_init(dir.join("bundle"))
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(runtime_err)?;
    let started = container.start().map_err(runtime_err);
    let pid = started.and_then(|()| {
        container
            .pid()
            .map(|p| p.as_raw())
            .and_then(Pid::from_raw)
            .ok_or_else(|| Error::Runtime("the runtime reported no init process".into()))
    });
    let pid = match pid {
        Ok(p) => p,
        Err(e) => {
            let _ = container.delete(true);
            return Err(e);
        }
    };
    let mut killed = false;
    let code = loop {
        if let Some(code) = reap(pid) {
            break code;
        }
        if stop.load(Ordering::Relaxed) && !killed {
            // PID 1 of the namespace: the kernel takes every other process
            // of the step with it.
            let _ = rustix::process::kill_process(pid, Signal::Kill);
            killed = true;
        }
        std::thread::sleep(POLL);
    };
    let _ = container.delete(true);
    Ok(code)
}

/// Reaps every exited child (orphans adopted as subreaper included); the
/// exit code once `pid` is among them.
fn reap(pid: Pid) -> Option<i32> {
    let mut result = None;
    while let Ok(Some((p, status))) = rustix::process::wait(WaitOptions::NOHANG) {
        if p == pid {
            result = status
                .exit_status()
                .map(|c| c as i32)
                .or_else(|| status.terminating_signal().map(|s| 128 + s as i32));
        }
    }
    result
}

fn io_err(e: std::io::Error) -> Error {
    Error::Runtime(e.to_string())
}

fn runtime_err(e: libcontainer::error::LibcontainerError) -> Error {
    Error::Runtime(e.to_string())
}
