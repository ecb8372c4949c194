//! The monitor: one process per running container (`berth __monitor ID`), the
//! parent of its init process. It starts the container, writes its logs, serves
//! attach clients, records its exit status and applies its restart policy. It is
//! what keeps berth daemonless: every command just reads the records it writes.
//!
//! The monitor is single-threaded (a poll loop), because the runtime clones
//! processes that run Rust code before exec, which is only safe in a process
//! with no other threads.
//!
//! It talks to the command that spawned it through its standard output, one
//! line per event: `ready` (attach socket listening, waiting for the client),
//! `started PID`, or `error STATUS MESSAGE`.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use berth_store::{ContainerRecord, ContainerStatus, Store};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{Pid, WaitOptions};

use crate::attach;
use crate::command::{argv, check_executable, DEFAULT_PATH};
use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::files::write_etc_files;
use crate::logs::{LineSplitter, LogWriter};
use crate::rootfs::{mount_rootfs, unmount_rootfs, RootPaths};
use crate::spec::{self, SpecInput};

/// How long a foreground `run` has to attach before the container starts anyway.
const ATTACH_WAIT: Duration = Duration::from_secs(30);
/// Output still buffered in pipes is drained for this long after the init
/// process exits (descendants that escaped the PID namespace could hold them).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);
/// Docker's restart back-off starts at 100 ms and doubles, up to a minute.
const RESTART_BACKOFF_START: Duration = Duration::from_millis(100);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A client that cannot take output this long is dropped, not waited for.
const CLIENT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const POLL_MS: i32 = 200;

/// The log file, named as Docker names it.
pub fn log_path(container_dir: &Path, id: &str) -> PathBuf {
    container_dir.join(format!("{id}-json.log"))
}

/// Runs the monitor for container `id` in the data root `root`; returns the
/// process exit status.
pub fn run(root: &Path, id: &str, wait_for_attach: bool) -> i32 {
    let mut status = StatusLine;
    match Monitor::new(root, id) {
        Ok(mut m) => match m.run(wait_for_attach, &mut status) {
            Ok(()) => 0,
            Err(e) => {
                status.send(&format!("error {} {e}", e.exit_status()));
                m.fail(&e);
                1
            }
        },
        Err(e) => {
            status.send(&format!("error {} {e}", e.exit_status()));
            1
        }
    }
}

/// Lines to the spawning command; it may have gone, so errors are ignored.
struct StatusLine;

impl StatusLine {
    fn send(&mut self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }
}

struct Monitor {
    /// The port proxy process, while ports are published.
    proxy: Option<std::process::Child>,
    store: Store,
    record: ContainerRecord,
    config: ContainerConfig,
    dir: PathBuf,
    paths: RootPaths,
}

impl Monitor {
    fn new(root: &Path, id: &str) -> Result<Self> {
        let store = Store::open(root)?;
        let record = store.container(id)?;
        let config: ContainerConfig = serde_json::from_str(&record.config)
            .map_err(|e| Error::Runtime(format!("container {id} has an unreadable config: {e}")))?;
        let dir = store.layout().container(&record.id);
        let paths = RootPaths::new(&dir);
        Ok(Self {
            proxy: None,
            store,
            record,
            config,
            dir,
            paths,
        })
    }

    /// Records a failure to start, so `ps -a` and `inspect` show it.
    fn fail(&mut self, e: &Error) {
        self.record.status = if self.record.started_at.is_some() {
            ContainerStatus::Exited
        } else {
            ContainerStatus::Created
        };
        self.record.exit_code = e.exit_status() as i64;
        self.record.error = e.to_string();
        self.record.pid = 0;
        self.record.monitor_pid = 0;
        let _ = self.store.save_container_state(&self.record);
        self.stop_proxy();
        let _ = unmount_rootfs(&self.paths);
        crate::netns::release(&self.dir);
    }

    fn run(&mut self, wait_for_attach: bool, status: &mut StatusLine) -> Result<()> {
        // Leave the spawning command's session: its terminal closing or its
        // process group being signalled must not reach the container.
        let _ = rustix::process::setsid();
        rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
            .map_err(|e| Error::Runtime(format!("cannot become subreaper: {e}")))?;
        let me = std::process::id() as i64;
        self.record.monitor_pid = me;
        self.record.monitor_start = crate::proc::start_time(me).unwrap_or(0);
        self.record.error.clear();
        self.store.save_container_state(&self.record)?;

        let listener = attach::listen(&self.dir)?;
        let mut clients: Vec<Client> = Vec::new();
        if wait_for_attach {
            status.send("ready");
            if let Some(c) = accept_within(&listener, ATTACH_WAIT) {
                clients.push(c);
            }
        }
        listener.set_nonblocking(true).map_err(io_err)?;

        let mut log = LogWriter::open(&log_path(&self.dir, &self.record.id))?;
        let mut backoff = RESTART_BACKOFF_START;
        let mut first = true;
        loop {
            let mut proc = self.start()?;
            if first {
                status.send(&format!("started {}", proc.pid.as_raw_nonzero()));
                first = false;
            }
            let code = self.supervise(&mut proc, &listener, &mut clients, &mut log)?;
            self.record = self.store.container(&self.record.id)?;
            let restart = self.config.host_config.restart_policy.should_restart(
                code,
                self.record.restart_count,
                self.record.stop_requested,
            );
            self.record.status = if restart {
                ContainerStatus::Restarting
            } else {
                ContainerStatus::Exited
            };
            self.record.exit_code = code;
            self.record.pid = 0;
            self.record.pid_start = 0;
            self.record.finished_at = Some(now());
            self.record.oom_killed = proc.oom_killed;
            if !restart {
                self.record.monitor_pid = 0;
                self.record.monitor_start = 0;
            }
            self.store.save_container_state(&self.record)?;
            if !restart {
                // Clean up before telling attached clients, so that when
                // `run --rm` returns, the container is gone.
                self.finish()?;
                for c in &mut clients {
                    c.send(attach::EXIT, code.to_string().as_bytes());
                }
                return Ok(());
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
            self.record.restart_count += 1;
        }
    }

    /// Releases what the container held; removes it for `--rm`.
    fn finish(&mut self) -> Result<()> {
        self.stop_proxy();
        self.refresh_peers();
        unmount_rootfs(&self.paths)?;
        crate::netns::release(&self.dir);
        let _ = std::fs::remove_file(self.dir.join("attach.sock"));
        if self.config.host_config.auto_remove {
            // `--rm` takes the container's anonymous volumes with it, as Docker's does.
            let volumes = self.store.container_volumes(&self.record.id)?;
            self.store.delete_container(&self.record.id)?;
            let _ = std::fs::remove_dir_all(&self.dir);
            for (name, _) in volumes {
                if self.store.volume(&name).is_ok_and(|v| v.anonymous) {
                    let _ = self.store.remove_volume(&name);
                }
            }
        }
        Ok(())
    }

    /// Connects the container's namespace to each network it is on.
    fn attach_networks(&mut self, container_ns: &Path) -> Result<()> {
        for ep in self.store.container_endpoints(&self.record.id)? {
            let net = self.store.network(&ep.network_id)?;
            let (_, prefix) = berth_store::parse_subnet(&net.subnet)
                .ok_or_else(|| Error::Runtime(format!("network {} has a bad subnet", net.name)))?;
            let net_dir = self.store.layout().network(&net.id);
            let net_ns = crate::network::create(&net_dir, &net.gateway, prefix)?;
            crate::network::attach(&crate::network::Attachment {
                container_netns: container_ns,
                network_netns: &net_ns,
                position: ep.position,
                ip: &ep.ip,
                prefix,
                gateway: &net.gateway,
                default_route: ep.position == 0,
            })?;
        }
        Ok(())
    }

    /// Tells the containers on this one's networks (this one included) who is
    /// there now.
    fn refresh_peers(&self) {
        if let Ok(eps) = self.store.container_endpoints(&self.record.id) {
            let ids: Vec<String> = eps.into_iter().map(|e| e.network_id).collect();
            let _ = crate::network::refresh_hosts(&self.store, &ids);
        }
    }

    /// Starts the port proxy (once; it outlives restarts) and records the
    /// host ports it got. A port in use fails the start here.
    fn start_proxy(&mut self, netns: &Path) -> Result<()> {
        if self.proxy.is_some() || self.config.host_config.port_bindings.is_empty() {
            return Ok(());
        }
        let exe = std::env::current_exe().map_err(io_err)?;
        let mut child = std::process::Command::new(exe)
            .arg("__proxy")
            .arg(netns)
            .arg(serde_json::to_string(&self.config.host_config.port_bindings).expect("json"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| Error::Runtime(format!("cannot start the port proxy: {e}")))?;
        let mut line = String::new();
        let out = child.stdout.take().expect("piped");
        std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line)
            .map_err(io_err)?;
        if let Some(json) = line.trim_end().strip_prefix("ready ") {
            let bound: Vec<crate::ports::PortBinding> = serde_json::from_str(json)
                .map_err(|e| Error::Runtime(format!("port proxy: {e}")))?;
            crate::ports::write_bound(&self.dir, &bound)?;
            self.proxy = Some(child);
            return Ok(());
        }
        let _ = child.kill();
        let _ = child.wait();
        let msg = line
            .trim_end()
            .strip_prefix("error ")
            .unwrap_or("the port proxy failed");
        Err(Error::Invalid(format!(
            "driver failed programming external connectivity: {msg}"
        )))
    }

    fn stop_proxy(&mut self) {
        if let Some(mut p) = self.proxy.take() {
            drop(p.stdin.take());
            let _ = p.kill();
            let _ = p.wait();
        }
        crate::ports::clear_bound(&self.dir);
    }

    /// Prepares the root filesystem and starts the container's init process.
    fn start(&mut self) -> Result<Running> {
        let img = self.store.resolve_image(&self.record.image_id)?;
        let layers: Vec<PathBuf> = img
            .layers
            .iter()
            .map(|l| self.store.layout().layer_diff(&l.chain_id))
            .collect();
        mount_rootfs(&layers, &self.paths)?;

        let cfg = &self.config;
        let user = crate::user::resolve(&self.paths.merged, &cfg.user)?;
        let argv = argv(cfg.entrypoint.as_deref(), cfg.cmd.as_deref(), None, &[])?;
        let env = container_env(cfg, &user.home);
        let path = env
            .iter()
            .find_map(|e| e.strip_prefix("PATH="))
            .unwrap_or(DEFAULT_PATH)
            .to_string();
        check_executable(&self.paths.merged, &argv[0], &path)?;
        let etc = write_etc_files(
            &self.dir,
            &cfg.hostname,
            cfg.host_config.network_mode == "host",
            &cfg.host_config.dns,
        )?;
        let netns = if cfg.host_config.network_mode == "host" {
            None
        } else {
            Some(crate::netns::create(&self.dir)?)
        };
        if let Some(ns) = &netns {
            self.attach_networks(ns)?;
            crate::network::write_hosts_for(&self.store, &self.record.id, true)?;
            self.start_proxy(ns)?;
        }
        let cfg = &self.config;
        let init = if cfg.host_config.init {
            let path = self.dir.join("init");
            if !path.exists() {
                berth_fs::write_atomic(&path, crate::INIT_BINARY)?;
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err)?;
            }
            Some(path)
        } else {
            None
        };
        let argv: Vec<String> = match &init {
            Some(_) => [spec::INIT_PATH.to_string(), "--".into()]
                .into_iter()
                .chain(argv)
                .collect(),
            None => argv,
        };
        // Volumes: their data directories, filled from the image when new.
        let mut volume_sources = std::collections::HashMap::new();
        for m in cfg.host_config.mounts.iter().filter(|m| m.kind == "volume") {
            let data = self.store.layout().volume_data(&m.source);
            let options = self.store.volume(&m.source)?.options;
            crate::volume::mount_options(&data, &options)?;
            if !m.no_copy {
                crate::volume::populate(&self.paths.merged, &m.target, &data)?;
            }
            volume_sources.insert(m.target.clone(), data);
        }
        let spec = spec::build(&SpecInput {
            id: &self.record.id,
            config: cfg,
            argv: &argv,
            env: &env,
            user: &user,
            rootfs: &self.paths.merged,
            etc: &etc,
            netns: netns.as_deref(),
            init: init.as_deref(),
            volume_sources,
        })?;
        let bundle = self.dir.join("bundle");
        std::fs::create_dir_all(&bundle).map_err(io_err)?;
        berth_fs::write_atomic(
            &bundle.join("config.json"),
            &serde_json::to_vec_pretty(&spec).expect("spec serializes"),
        )?;
        let state = self.dir.join("runtime");
        // A previous run's state (after a restart or a crash) must go first.
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).map_err(io_err)?;

        let console_name = "console.sock";
        let console = if cfg.tty {
            Some(attach::bind(&self.dir, console_name)?)
        } else {
            None
        };
        let builder = ContainerBuilder::new(self.record.id.clone(), SyscallType::default())
            .with_root_path(&state)
            .map_err(runtime_err)?
            .with_executor(DefaultExecutor {});
        let (builder, out_r, err_r, stdin_write) = if cfg.tty {
            (
                builder.with_console_socket(Some(self.dir.join(console_name))),
                None,
                None,
                None,
            )
        } else {
            let (out_r, out_w) = rustix::pipe::pipe().map_err(|e| io_err(e.into()))?;
            let (err_r, err_w) = rustix::pipe::pipe().map_err(|e| io_err(e.into()))?;
            let (stdin_read, stdin_write): (OwnedFd, Option<OwnedFd>) = if cfg.open_stdin {
                let (r, w) = rustix::pipe::pipe().map_err(|e| io_err(e.into()))?;
                (r, Some(w))
            } else {
                (File::open("/dev/null").map_err(io_err)?.into(), None)
            };
            (
                builder
                    .with_stdin(stdin_read)
                    .with_stdout(out_w)
                    .with_stderr(err_w),
                Some(out_r),
                Some(err_r),
                stdin_write,
            )
        };
        let mut container = builder
            .as_init(&bundle)
            .with_systemd(false)
            .with_detach(true)
            .build()
            .map_err(runtime_err)?;
        // With a terminal, the runtime sends its master side over the console
        // socket while creating the container; it is both output and input.
        let (out_r, stdin_write) = match console {
            Some(listener) => {
                let (conn, _) = listener.accept().map_err(io_err)?;
                let master = attach::recv_fd(&conn).map_err(io_err)?;
                let reader = rustix::io::dup(&master).map_err(|e| io_err(e.into()))?;
                let _ = std::fs::remove_file(self.dir.join(console_name));
                (Some(reader), Some(master))
            }
            None => (out_r, stdin_write),
        };
        container.start().map_err(runtime_err)?;
        let pid = container
            .pid()
            .map(|p| p.as_raw())
            .and_then(Pid::from_raw)
            .ok_or_else(|| Error::Runtime("the runtime reported no init process".into()))?;

        self.record.status = ContainerStatus::Running;
        self.record.pid = pid.as_raw_nonzero().get() as i64;
        self.record.pid_start = crate::proc::start_time(self.record.pid).unwrap_or(0);
        self.record.started_at = Some(now());
        self.record.finished_at = None;
        self.record.exit_code = 0;
        self.record.oom_killed = false;
        self.store.save_container_state(&self.record)?;
        self.refresh_peers();
        Ok(Running {
            pid,
            container,
            stdout: out_r,
            stderr: err_r,
            stdin: stdin_write,
            tty: cfg.tty,
            oom_killed: false,
        })
    }

    /// Relays output and input until the init process has exited and its
    /// output is drained; returns Docker's exit code (128+N for signal N).
    fn supervise(
        &mut self,
        proc: &mut Running,
        listener: &UnixListener,
        clients: &mut Vec<Client>,
        log: &mut LogWriter,
    ) -> Result<i64> {
        let mut splitters: HashMap<u8, LineSplitter> = HashMap::new();
        let mut exit: Option<(i64, Instant)> = None;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if let Some((_, at)) = exit {
                let drained = proc.stdout.is_none() && proc.stderr.is_none();
                if drained || at.elapsed() > DRAIN_AFTER_EXIT {
                    break;
                }
            }
            // Poll set: listener, stdout, stderr, then each client.
            let mut fds: Vec<PollFd<'_>> = vec![PollFd::new(listener, PollFlags::IN)];
            let out_idx = proc.stdout.as_ref().map(|f| {
                fds.push(PollFd::new(f, PollFlags::IN));
                fds.len() - 1
            });
            let err_idx = proc.stderr.as_ref().map(|f| {
                fds.push(PollFd::new(f, PollFlags::IN));
                fds.len() - 1
            });
            let client_base = fds.len();
            for c in clients.iter() {
                fds.push(PollFd::new(&c.stream, PollFlags::IN));
            }
            let _ = poll(&mut fds, POLL_MS);
            let ready: Vec<bool> = fds.iter().map(|f| !f.revents().is_empty()).collect();
            drop(fds);

            if ready[0] {
                while let Ok((s, _)) = listener.accept() {
                    if let Some(c) = Client::new(s) {
                        clients.push(c);
                    }
                }
            }
            for (idx, kind) in [(out_idx, attach::STDOUT), (err_idx, attach::STDERR)] {
                let Some(i) = idx else { continue };
                if !ready[i] {
                    continue;
                }
                let fd = if kind == attach::STDOUT {
                    &mut proc.stdout
                } else {
                    &mut proc.stderr
                };
                let n = rustix::io::read(fd.as_ref().expect("polled"), &mut buf).unwrap_or(0);
                let stream = if kind == attach::STDOUT {
                    "stdout"
                } else {
                    "stderr"
                };
                let splitter = splitters.entry(kind).or_default();
                if n == 0 {
                    splitter.flush(|line| {
                        let _ = log.write(stream, line);
                    });
                    *fd = None;
                    continue;
                }
                splitter.push(&buf[..n], |line| {
                    let _ = log.write(stream, line);
                });
                clients.retain_mut(|c| c.send(kind, &buf[..n]));
            }
            let mut gone = Vec::new();
            for (j, c) in clients.iter_mut().enumerate() {
                if !ready[client_base + j] {
                    continue;
                }
                match c.stream.read(&mut buf) {
                    Ok(0) | Err(_) => {
                        // The client went away: as with Docker's StdinOnce, the
                        // container's input ends with it (a terminal stays).
                        if !proc.tty {
                            proc.stdin = None;
                        }
                        c.input_closed = true;
                    }
                    Ok(n) => {
                        c.frames.push(&buf[..n]);
                        while let Some((kind, data)) = c.frames.next_frame() {
                            handle_input(proc, kind, &data);
                        }
                    }
                }
                if c.input_closed && c.output_closed {
                    gone.push(j);
                }
            }
            for j in gone.into_iter().rev() {
                clients.remove(j);
            }
            if exit.is_none() {
                if let Some(code) = reap(proc.pid) {
                    proc.oom_killed = oom_killed(&self.record.id);
                    // Cgroup and runtime state go with the process.
                    let _ = proc.container.delete(true);
                    exit = Some((code, Instant::now()));
                }
            }
        }
        let code = exit.map(|(c, _)| c).unwrap_or(255);
        Ok(code)
    }
}

/// Applies one input frame from an attached client.
fn handle_input(proc: &mut Running, kind: u8, data: &[u8]) {
    match kind {
        attach::IN_DATA => {
            if let Some(w) = proc.stdin.as_ref() {
                if rustix::io::write(w, data).is_err() {
                    proc.stdin = None;
                }
            }
        }
        attach::IN_CLOSE if !proc.tty => proc.stdin = None,
        attach::IN_RESIZE if proc.tty => {
            if let (Some(master), Some((rows, cols))) =
                (proc.stdin.as_ref(), attach::parse_resize(data))
            {
                let _ = rustix::termios::tcsetwinsize(
                    master,
                    rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    },
                );
            }
        }
        _ => {}
    }
}

struct Running {
    pid: Pid,
    container: libcontainer::container::Container,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
    /// Input: a pipe, or the terminal's master side.
    stdin: Option<OwnedFd>,
    tty: bool,
    oom_killed: bool,
}

struct Client {
    stream: UnixStream,
    frames: attach::FrameBuffer,
    input_closed: bool,
    output_closed: bool,
}

impl Client {
    fn new(stream: UnixStream) -> Option<Self> {
        stream.set_nonblocking(false).ok()?;
        stream.set_write_timeout(Some(CLIENT_WRITE_TIMEOUT)).ok()?;
        Some(Self {
            stream,
            frames: attach::FrameBuffer::default(),
            input_closed: false,
            output_closed: false,
        })
    }

    /// Sends a frame; false when the client is gone.
    fn send(&mut self, kind: u8, data: &[u8]) -> bool {
        if self.output_closed {
            return true;
        }
        if attach::write_frame(&mut self.stream, kind, data).is_err() {
            self.output_closed = true;
            return false;
        }
        true
    }
}

fn accept_within(listener: &UnixListener, wait: Duration) -> Option<Client> {
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let ms = wait.as_millis().min(i32::MAX as u128) as i32;
    if poll(&mut fds, ms).ok()? == 0 {
        return None;
    }
    listener.accept().ok().and_then(|(s, _)| Client::new(s))
}

/// Reaps every exited child (orphans adopted as subreaper included); returns
/// the exit code once `pid` is among them.
fn reap(pid: Pid) -> Option<i64> {
    let mut result = None;
    while let Ok(Some((p, status))) = rustix::process::wait(WaitOptions::NOHANG) {
        if p == pid {
            result = exit_code_of(status);
        }
    }
    result
}

fn exit_code_of(status: rustix::process::WaitStatus) -> Option<i64> {
    if let Some(c) = status.exit_status() {
        return Some(c as i64);
    }
    status.terminating_signal().map(|s| 128 + s as i64)
}

/// Whether the kernel OOM-killed a process of the container's memory cgroup
/// (cgroup v1 `memory.oom_control`, v2 `memory.events`).
fn oom_killed(id: &str) -> bool {
    let files = [
        format!("/sys/fs/cgroup/memory/berth/{id}/memory.oom_control"),
        format!("/sys/fs/cgroup/berth/{id}/memory.events"),
    ];
    files.iter().any(|f| {
        std::fs::read_to_string(f).is_ok_and(|s| {
            s.lines().any(|l| {
                l.strip_prefix("oom_kill ")
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n > 0)
            })
        })
    })
}

/// The environment of the container's process: the configured one (image
/// ENV with `-e` applied), with PATH, HOSTNAME and HOME added as Docker does.
pub fn container_env(cfg: &ContainerConfig, home: &str) -> Vec<String> {
    let has = |k: &str| {
        cfg.env
            .iter()
            .any(|e| e.split_once('=').is_some_and(|(n, _)| n == k))
    };
    let mut env = Vec::new();
    if !has("PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env.push(format!("HOSTNAME={}", cfg.hostname));
    env.extend(cfg.env.iter().cloned());
    if cfg.tty && !has("TERM") {
        env.push("TERM=xterm".into());
    }
    if !has("HOME") {
        env.push(format!("HOME={home}"));
    }
    env
}

pub fn now() -> String {
    let s = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.9f")
        .to_string();
    format!("{}Z", s.trim_end_matches('0').trim_end_matches('.'))
}

fn io_err(e: std::io::Error) -> Error {
    Error::Runtime(e.to_string())
}

fn runtime_err(e: libcontainer::error::LibcontainerError) -> Error {
    Error::Runtime(e.to_string())
}
