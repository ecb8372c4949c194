//! `berth exec`.

use std::io::Write;
use std::os::fd::OwnedFd;

use berth_runtime::command::{check_executable, DEFAULT_PATH};
use berth_runtime::exec::{self, ExecRequest};
use berth_runtime::ContainerConfig;

use super::{find, Context};
use crate::cli::ExecArgs;
use crate::error::{status, CliError};
use crate::output;

fn dup_stdio(fd: i32) -> Result<OwnedFd, CliError> {
    let owned = match fd {
        0 => rustix::io::dup(std::io::stdin()),
        1 => rustix::io::dup(std::io::stdout()),
        _ => rustix::io::dup(std::io::stderr()),
    };
    owned.map_err(|e| CliError::new(format!("cannot pass standard streams: {e}")))
}

fn dev_null() -> Result<OwnedFd, CliError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map(OwnedFd::from)
        .map_err(|e| CliError::new(format!("open /dev/null: {e}")))
}

pub fn run(ctx: &Context, a: ExecArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    if c.status != berth_store::ContainerStatus::Running {
        let why = if c.status == berth_store::ContainerStatus::Paused {
            format!(
                "container {} is paused, unpause the container before exec",
                &c.id[..12]
            )
        } else {
            format!("container {} is not running", &c.id[..12])
        };
        return Err(CliError::new(why));
    }
    let cfg: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
    let dir = store.layout().container(&c.id);
    let merged = dir.join("merged");
    let user = berth_runtime::user::resolve(&merged, a.user.as_deref().unwrap_or(&cfg.user))?;
    let mut env = berth_runtime::monitor::container_env(&cfg, &user.home);
    for e in &a.env {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
        env.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    check_executable(&merged, &a.command[0], &path).map_err(|e| CliError {
        status: e.exit_status(),
        message: format!("OCI runtime exec failed: {e}"),
        silent: false,
    })?;
    let cwd = a
        .workdir
        .clone()
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| {
            if cfg.working_dir.is_empty() {
                "/".into()
            } else {
                cfg.working_dir.clone()
            }
        });
    let stdio = if a.tty && !a.detach {
        None
    } else if a.detach {
        Some([dev_null()?, dev_null()?, dev_null()?])
    } else {
        let stdin = if a.interactive {
            dup_stdio(0)?
        } else {
            dev_null()?
        };
        Some([stdin, dup_stdio(1)?, dup_stdio(2)?])
    };
    let capabilities = berth_runtime::spec::capabilities(&cfg)?;
    let no_new_privileges = cfg
        .host_config
        .security_opt
        .iter()
        .any(|o| o.starts_with("no-new-privileges") && !o.ends_with("false"));
    let spawned = exec::spawn(ExecRequest {
        container_dir: &dir,
        id: &c.id,
        argv: a.command.clone(),
        env,
        user: &user,
        cwd,
        stdio,
        capabilities,
        no_new_privileges,
    })
    .map_err(|e| CliError {
        status: status::ENGINE,
        message: format!("OCI runtime exec failed: {e}"),
        silent: false,
    })?;
    if a.detach {
        return Ok(());
    }
    output::stdout().flush()?;
    if let Some(master) = spawned.terminal {
        relay_terminal(master, a.interactive);
    }
    let code = exec::wait(spawned.pid);
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::exit(code as i32))
    }
}

/// Copies between this terminal and the exec's terminal until the exec's side
/// closes, in raw mode, keeping the sizes in step.
fn relay_terminal(master: OwnedFd, interactive: bool) {
    use std::io::Read;
    use std::sync::Arc;
    let master = Arc::new(master);
    let _raw = super::terminal::RawMode::enable();
    let set_size = {
        let master = master.clone();
        move || {
            if let Some((rows, cols)) = super::terminal::size() {
                let _ = rustix::termios::tcsetwinsize(
                    &*master,
                    rustix::termios::Winsize {
                        ws_row: rows,
                        ws_col: cols,
                        ws_xpixel: 0,
                        ws_ypixel: 0,
                    },
                );
            }
        }
    };
    set_size();
    if let Ok(mut signals) = signal_hook::iterator::Signals::new([signal_hook::consts::SIGWINCH]) {
        std::thread::spawn(move || {
            for _ in signals.forever() {
                set_size();
            }
        });
    }
    if interactive {
        let master = master.clone();
        std::thread::spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut buf = [0u8; 4096];
            while let Ok(n) = input.read(&mut buf) {
                if n == 0 || rustix::io::write(&*master, &buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
    let mut out = std::io::stdout();
    let mut buf = [0u8; 8192];
    // EIO when the last process holding the terminal has exited.
    while let Ok(n) = rustix::io::read(&*master, &mut buf) {
        if n == 0 || out.write_all(&buf[..n]).is_err() {
            break;
        }
        let _ = out.flush();
    }
}
