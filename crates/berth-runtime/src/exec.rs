//! `exec`: a new process in a running container's namespaces and cgroup,
//! started by the runtime as a "tenant" of the container.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

use libcontainer::container::builder::ContainerBuilder;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use rustix::process::{Pid, WaitOptions};

use crate::error::{Error, Result};
use crate::user::User;

pub struct ExecRequest<'a> {
    /// The container's own directory (`<root>/containers/<id>`).
    pub container_dir: &'a Path,
    pub id: &'a str,
    pub argv: Vec<String>,
    pub env: Vec<String>,
    pub user: &'a User,
    pub cwd: String,
    /// stdin, stdout, stderr of the new process; `None` gives it a terminal.
    pub stdio: Option<[OwnedFd; 3]>,
    /// The capabilities of the process (the container's own set).
    pub capabilities: Vec<String>,
    pub no_new_privileges: bool,
}

/// A started exec process, with the master side of its terminal if it has one.
pub struct Spawned {
    pub pid: Pid,
    pub terminal: Option<OwnedFd>,
}

/// Starts the process and returns its PID. The caller becomes a subreaper
/// first, so the process (whose runtime parents exit) is its child to wait for.
pub fn spawn(req: ExecRequest<'_>) -> Result<Spawned> {
    rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
        .map_err(|e| Error::Runtime(format!("cannot become subreaper: {e}")))?;
    let builder = ContainerBuilder::new(req.id.to_string(), SyscallType::default())
        .with_root_path(req.container_dir.join("runtime"))
        .map_err(runtime_err)?
        .with_executor(DefaultExecutor {});
    match req.stdio {
        Some([stdin, stdout, stderr]) => {
            let env: HashMap<String, String> = req
                .env
                .iter()
                .filter_map(|e| {
                    e.split_once('=')
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                })
                .collect();
            let pid = builder
                .with_stdin(stdin)
                .with_stdout(stdout)
                .with_stderr(stderr)
                .as_tenant()
                .with_container_args(req.argv)
                .with_env(env)
                .with_cwd(Some(req.cwd))
                .with_user(Some(req.user.uid))
                .with_group(Some(req.user.gid))
                .with_additional_gids(req.user.additional_gids.clone())
                .with_capabilities(req.capabilities)
                .with_no_new_privs(req.no_new_privileges)
                .with_detach(true)
                .build()
                .map_err(runtime_err)?;
            Ok(Spawned {
                pid: to_pid(pid.as_raw())?,
                terminal: None,
            })
        }
        None => {
            // A terminal needs `terminal: true` in the process, which only a
            // process.json can say; the runtime then sends the terminal's master
            // side over a console socket.
            let process = serde_json::json!({
                "terminal": true,
                "user": {
                    "uid": req.user.uid,
                    "gid": req.user.gid,
                    "additionalGids": req.user.additional_gids,
                },
                "args": req.argv,
                "env": req.env,
                "cwd": req.cwd,
                "capabilities": {
                    "bounding": req.capabilities,
                    "effective": req.capabilities,
                    "permitted": req.capabilities,
                },
                "noNewPrivileges": req.no_new_privileges,
            });
            let staging = tempfile::Builder::new()
                .prefix("exec-")
                .tempdir_in(req.container_dir)
                .map_err(|e| Error::Runtime(format!("cannot stage exec: {e}")))?;
            let process_path = staging.path().join("process.json");
            berth_fs::write_atomic(&process_path, &serde_json::to_vec(&process).expect("json"))?;
            let listener = crate::attach::bind(staging.path(), "console.sock")?;
            let pid = builder
                .with_console_socket(Some(staging.path().join("console.sock")))
                .as_tenant()
                .with_process(Some(&process_path))
                .with_detach(true)
                .build()
                .map_err(runtime_err)?;
            let (conn, _) = listener
                .accept()
                .map_err(|e| Error::Runtime(format!("no terminal from the runtime: {e}")))?;
            let master = crate::attach::recv_fd(&conn)
                .map_err(|e| Error::Runtime(format!("no terminal from the runtime: {e}")))?;
            Ok(Spawned {
                pid: to_pid(pid.as_raw())?,
                terminal: Some(master),
            })
        }
    }
}

fn to_pid(raw: i32) -> Result<Pid> {
    Pid::from_raw(raw).ok_or_else(|| Error::Runtime("the runtime reported no process".into()))
}

/// Waits for `pid` (reaping any other adopted child on the way); returns
/// Docker's exit code (128+N for signal N).
pub fn wait(pid: Pid) -> i64 {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((p, status))) if p == pid => {
                if let Some(c) = status.exit_status() {
                    return c as i64;
                }
                if let Some(s) = status.terminating_signal() {
                    return 128 + s as i64;
                }
            }
            Ok(_) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return 255,
        }
    }
}

fn runtime_err(e: libcontainer::error::LibcontainerError) -> Error {
    Error::Runtime(e.to_string())
}
