//! RUN steps, and ADD's downloads.

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use berth_dockerfile::instructions::{word_expander, CmdForm, MountType, RunInstruction};
use berth_oci::Digest;
use berth_runtime::step::{self, StepRequest};
use berth_runtime::MountSpec;
use berth_store::{Staging, Store};
use sha2::{Digest as _, Sha256};

use crate::builder::{NetworkMode, Secret, Shared, StepPos};
use crate::copy::{CopyOptions, Writer};
use crate::error::{Error, IoContext, Result};
use crate::key::KeyBuilder;
use crate::progress::Event;
use crate::rootpath;
use crate::snapshot::Snapshot;
use crate::state::{StageState, PROXY_ARGS};

static STEP_SEQ: AtomicUsize = AtomicUsize::new(0);

/// How often a running step looks for an interruption.
const STEP_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// Where heredoc scripts are mounted, as BuildKit does.
const PIPES: &str = "/dev/pipes";

/// A RUN `--mount`, resolved to what the step needs.
enum MountPlan {
    /// A cache directory kept across builds under the data root.
    Cache {
        target: String,
        id: String,
        mode: u32,
        uid: u32,
        gid: u32,
    },
    Tmpfs {
        target: String,
        size: i64,
    },
    Secret {
        target: Option<String>,
        env: Option<String>,
        id: String,
        required: bool,
    },
    /// Context files (those the build sees), or a path of another stage
    /// (whose layer trees `from` holds, bottom first).
    Bind {
        target: String,
        source: PathBuf,
        from: Option<Vec<PathBuf>>,
        read_only: bool,
    },
}

pub fn run_step(
    sh: &Shared<'_>,
    store: &mut Store,
    st: &mut StageState,
    run: &RunInstruction,
    code: String,
    pos: &StepPos<'_>,
) -> Result<()> {
    let text = code.clone();
    sh.step(pos, &text, |v, started| {
        run_inner(sh, store, st, run, code, pos, v, started)
    })
}

#[allow(clippy::too_many_arguments)]
fn run_inner(
    sh: &Shared<'_>,
    store: &mut Store,
    st: &mut StageState,
    run: &RunInstruction,
    code: String,
    pos: &StepPos<'_>,
    v: usize,
    started: Instant,
) -> Result<()> {
    let file = sh.file().to_string();
    let err = |m: String| Error::Instruction {
        file: file.clone(),
        line: pos.line,
        message: m,
    };
    let env_x = st.expansion_env();
    let mounts = run
        .mounts(&mut word_expander(&sh.lex, &env_x))
        .map_err(|e| err(e.to_string()))?;
    let network = match run.network.as_str() {
        "" | "default" => sh.opts.network,
        "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => {
            return Err(err(format!(
                "unsupported RUN --network={other}: use default, host or none"
            )))
        }
    };

    // The command, with heredocs as BuildKit runs them.
    let shell = st.shell();
    let mut script_file: Option<(String, String)> = None;
    let argv: Vec<String> = match (&run.cmd.form, run.cmd.files.as_slice()) {
        (CmdForm::Shell(s), [f]) if is_lone_heredoc(s, &f.name) => {
            let data = if f.chomp {
                berth_dockerfile::chomp_heredoc_content(&f.data)
            } else {
                f.data.clone()
            };
            if let Some(line) = data.strip_prefix("#!") {
                // What the kernel does with a shebang: the interpreter, its
                // one optional argument, then the script's path.
                let line = line.lines().next().unwrap_or("").trim();
                let (interp, arg) = match line.split_once([' ', '\t']) {
                    Some((i, a)) => (i.to_string(), Some(a.trim().to_string())),
                    None => (line.to_string(), None),
                };
                let path = format!("{PIPES}/{}", f.name);
                script_file = Some((f.name.clone(), data.clone()));
                let mut a = vec![interp];
                a.extend(arg);
                a.push(path);
                a
            } else {
                let mut a = shell.clone();
                a.push(data);
                a
            }
        }
        (CmdForm::Shell(s), files) if !files.is_empty() => {
            let mut script = s.clone();
            script.push('\n');
            for f in files {
                script.push_str(&f.data);
                if !f.data.ends_with('\n') && !f.data.is_empty() {
                    script.push('\n');
                }
                script.push_str(&f.name);
                script.push('\n');
            }
            let mut a = shell.clone();
            a.push(script);
            a
        }
        _ => sh.argv(st, &run.cmd),
    };

    let mut plans = Vec::new();
    let mut key = KeyBuilder::new("run", st.top());
    key.list(&argv);
    let env = st.run_env();
    let keyed_env: Vec<&String> = env
        .iter()
        .filter(|e| {
            let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            !PROXY_ARGS.contains(&k)
        })
        .collect();
    key.list(&keyed_env)
        .field(&st.user())
        .field(&st.workdir())
        .field(if network == NetworkMode::Host {
            "host"
        } else {
            "none"
        });
    if let Some((n, d)) = &script_file {
        key.field(n).field(d);
    }
    for m in &mounts {
        let target = m.target.clone().unwrap_or_default();
        let abs = |t: &str| rootpath::absolute(&st.workdir(), t).display().to_string();
        match m.typ {
            MountType::Cache => {
                let target = abs(&target);
                let id = m.cache_id.clone().unwrap_or_else(|| target.clone());
                key.field("cache").field(&target).field(&id);
                plans.push(MountPlan::Cache {
                    target,
                    id,
                    mode: m.mode.unwrap_or(0o755),
                    uid: m.uid.unwrap_or(0),
                    gid: m.gid.unwrap_or(0),
                });
            }
            MountType::Tmpfs => {
                let target = abs(&target);
                key.field("tmpfs").field(&target);
                plans.push(MountPlan::Tmpfs { target, size: m.size_limit });
            }
            MountType::Secret => {
                let id = m
                    .cache_id
                    .clone()
                    .or_else(|| m.target.as_deref().and_then(|t| Path::new(t).file_name()).map(|n| n.to_string_lossy().into_owned()))
                    .ok_or_else(|| err("a secret mount needs an id= or a target=".into()))?;
                let target = if m.env.is_some() && m.target.is_none() {
                    None
                } else {
                    Some(m.target.as_deref().map(abs).unwrap_or_else(|| format!("/run/secrets/{id}")))
                };
                // The secret's value never enters the key (nor the layer).
                key.field("secret").field(&id).field(target.as_deref().unwrap_or(""));
                plans.push(MountPlan::Secret { target, env: m.env.clone(), id, required: m.required });
            }
            MountType::Bind => {
                let target = abs(&target);
                let raw = m.source.clone().unwrap_or_else(|| "/".into());
                key.field("bind").field(&target).field(&raw).field(if m.read_only { "ro" } else { "rw" });
                let source = rootpath::context_relative(&raw);
                let from = match &m.from {
                    Some(f) => {
                        let dep = sh.stage_source(f, pos);
                        let chain = sh.chain_of(store, dep)?;
                        key.field(chain.last().map_or("scratch", |c| c.as_str()));
                        Some(chain.iter().map(|c| store.layout().layer_diff(c)).collect())
                    }
                    None => {
                        let selected = berth_context::select(&sh.entries, std::slice::from_ref(&source));
                        let d = sh.ctx.context_digest(selected.iter().copied()).map_err(|e| {
                            Error::Context { path: sh.opts.context_dir.clone(), message: e.to_string() }
                        })?;
                        key.field(d.as_str());
                        None
                    }
                };
                plans.push(MountPlan::Bind { target, source, from, read_only: m.read_only });
            }
            MountType::Ssh => {
                return Err(err("RUN --mount=type=ssh is not supported: berth build has no SSH agent forwarding; use a secret mount".into()))
            }
        }
    }

    let user = st.user();
    let workdir = st.workdir();
    let mut run_env = env.clone();
    for p in PROXY_ARGS {
        if let Some(v) = sh.opts.build_args.get(*p) {
            run_env.push(format!("{p}={v}"));
        }
    }
    let cache_root = store.root().join("build-mounts");
    let display = argv.join(" ");

    sh.layer_step(store, st, key.finish(), code, v, started, |snap, staging| {
        let mut specs: Vec<MountSpec> = Vec::new();
        let mut keep: Vec<Snapshot> = Vec::new();
        for (i, p) in plans.iter().enumerate() {
            match p {
                MountPlan::Cache { target, id, mode, uid, gid } => {
                    let name = hex::encode(Sha256::digest(id.as_bytes()));
                    let dir = cache_root.join(name);
                    if !dir.exists() {
                        fs::create_dir_all(&dir).io("cannot create", &dir)?;
                        std::os::unix::fs::chown(&dir, Some(*uid), Some(*gid)).io("cannot change owner of", &dir)?;
                        fs::set_permissions(&dir, fs::Permissions::from_mode(*mode)).io("cannot set mode of", &dir)?;
                    }
                    specs.push(bind(&dir, target, false));
                }
                MountPlan::Tmpfs { target, size } => specs.push(MountSpec {
                    kind: "tmpfs".into(),
                    target: target.clone(),
                    options: if *size > 0 { format!("size={size}") } else { String::new() },
                    ..Default::default()
                }),
                MountPlan::Secret { target, env, id, required } => {
                    let value = match sh.opts.secrets.get(id) {
                        Some(s) => s,
                        None if *required => {
                            return Err(Error::Invalid(format!(
                                "secret {id} is required but was not given: pass --secret id={id},src=FILE"
                            )))
                        }
                        None => continue,
                    };
                    let path = match value {
                        Secret::File(p) => p.clone(),
                        Secret::Value(v) => {
                            let p = staging.join(format!("secret-{i}"));
                            fs::write(&p, v).io("cannot write", &p)?;
                            p
                        }
                    };
                    if let Some(var) = env {
                        let v = fs::read_to_string(&path).io("cannot read secret", &path)?;
                        run_env.push(format!("{var}={v}"));
                    }
                    if let Some(t) = target {
                        specs.push(bind(&path, t, true));
                    }
                }
                MountPlan::Bind { target, source, from, read_only } => {
                    let host = match from {
                        Some(lowers) => {
                            let s = Snapshot::mount_lowers(lowers.clone(), &staging.join(format!("bind-{i}")))?;
                            let h = rootpath::resolve(s.merged(), source, true)?;
                            keep.push(s);
                            h
                        }
                        None => {
                            // Only what the build sees of the context: a copy.
                            let dir = staging.join(format!("bind-{i}"));
                            fs::create_dir_all(&dir).io("cannot create", &dir)?;
                            let selected = berth_context::select(&sh.entries, std::slice::from_ref(source));
                            let opts = CopyOptions { owner: None, chmod: None, excludes: None };
                            let mut w = Writer::new(&dir, &opts);
                            w.copy_tree(&sh.ctx, &selected, source, Path::new("/src"))?;
                            w.finish()?;
                            dir.join("src")
                        }
                    };
                    if fs::symlink_metadata(&host).is_err() {
                        return Err(Error::Invalid(format!("RUN --mount source {source:?} not found")));
                    }
                    specs.push(bind(&host, target, *read_only));
                }
            }
        }
        if let Some((name, data)) = &script_file {
            let dir = staging.join("pipes");
            fs::create_dir_all(&dir).io("cannot create", &dir)?;
            let p = dir.join(name);
            fs::write(&p, data).io("cannot write", &p)?;
            fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).io("cannot set mode of", &p)?;
            specs.push(bind(&p, &format!("{PIPES}/{name}"), true));
        }
        // The working directory exists for the command, as Docker makes it.
        let wd = rootpath::resolve(snap.merged(), Path::new(&workdir), true)?;
        if !wd.is_dir() {
            fs::create_dir_all(&wd).io("cannot create the working directory", &wd)?;
        }
        let mut points: Vec<String> = berth_runtime::spec::RUNTIME_MOUNT_POINTS
            .iter()
            .map(|s| s.to_string())
            .collect();
        points.extend(specs.iter().map(|m| m.target.clone()));
        let created = snap.missing(&points);

        let step_dir = staging.join("step");
        let id = format!("build-{}-{}", std::process::id(), STEP_SEQ.fetch_add(1, Ordering::Relaxed));
        let req = StepRequest {
            id: &id,
            dir: &step_dir,
            rootfs: snap.merged(),
            argv: &argv,
            env: &run_env,
            user: &user,
            workdir: &workdir,
            host_network: network == NetworkMode::Host,
            mounts: &specs,
            hostname: "berth-build",
        };
        let code = {
            let prepared = step::prepare(&req)?;
            let mut child = prepared.spawn(&sh.opts.exe)?;
            let out = child.stdout.take().expect("piped");
            let errp = child.stderr.take().expect("piped");
            let status = std::thread::scope(|s| {
                s.spawn(|| pump(sh, v, started, out, false));
                s.spawn(|| pump(sh, v, started, errp, true));
                // Interrupted: the helper stops the container and exits.
                let mut told = false;
                loop {
                    if let Some(st) = child.try_wait()? {
                        return Ok(st);
                    }
                    if sh.interrupted() && !told {
                        if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                            let _ = rustix::process::kill_process(pid, rustix::process::Signal::Term);
                        }
                        told = true;
                    }
                    std::thread::sleep(STEP_POLL);
                }
            })
            .io("cannot wait for", &step_dir)?;
            use std::os::unix::process::ExitStatusExt;
            status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
        };
        drop(keep);
        snap.unmount()?;
        snap.remove_created(&created)?;
        if sh.interrupted() {
            return Err(Error::Interrupted);
        }
        if code != 0 {
            return Err(Error::StepFailed { command: display.clone(), code });
        }
        Ok(())
    })
}

fn bind(source: &Path, target: &str, read_only: bool) -> MountSpec {
    MountSpec {
        kind: "bind".into(),
        source: source.display().to_string(),
        target: target.to_string(),
        read_only,
        ..Default::default()
    }
}

/// `RUN <<EOF` (the command is nothing but the heredoc).
fn is_lone_heredoc(cmd: &str, name: &str) -> bool {
    let c = cmd.trim();
    let Some(rest) = c.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.trim_matches(|ch| ch == '"' || ch == '\'');
    rest == name
}

/// Streams one output pipe of a step to the reporter, line by line.
fn pump(sh: &Shared<'_>, v: usize, started: Instant, pipe: impl Read, stderr: bool) {
    let mut r = BufReader::new(pipe);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    buf.pop();
                }
                sh.reporter.event(Event::Log {
                    id: v,
                    line: String::from_utf8_lossy(&buf).into_owned(),
                    stderr,
                    elapsed: started.elapsed(),
                });
            }
        }
    }
}

/// An ADD URL, fetched and checked.
pub struct Download {
    pub name: String,
    pub path: PathBuf,
    pub digest: Digest,
    pub mtime: Option<i64>,
    _staging: Staging,
}

impl Shared<'_> {
    /// Fetches `url` to a staging file, hashing it on the way; with
    /// `--checksum`, a mismatch fails the step.
    pub fn download(
        &self,
        store: &Store,
        url: &str,
        checksum: Option<&str>,
        pos: &StepPos<'_>,
    ) -> Result<Download> {
        let err = |m: String| Error::Instruction {
            file: self.file().into(),
            line: pos.line,
            message: m,
        };
        let staging = store.stage()?;
        let path = staging.path().join("download");
        let mut resp = ureq::get(url)
            .call()
            .map_err(|e| err(format!("ADD {url}: {e}")))?;
        let mtime = resp
            .headers()
            .get("last-modified")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| chrono::DateTime::parse_from_rfc2822(v).ok())
            .map(|t| t.timestamp());
        let mut body = resp.body_mut().as_reader();
        let mut out = fs::File::create(&path).io("cannot create", &path)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| err(format!("ADD {url}: {e}")))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n]).io("cannot write", &path)?;
        }
        let digest = Digest::from_sha256_hex(&hex::encode(hasher.finalize())).expect("sha256 hex");
        if let Some(want) = checksum {
            if want != digest.as_str() {
                return Err(err(format!(
                    "ADD {url}: checksum mismatch: --checksum={want}, the download is {digest}"
                )));
            }
        }
        let name = url
            .split(['?', '#'])
            .next()
            .and_then(|u| u.rsplit('/').next())
            .filter(|n| !n.is_empty() && !n.contains(':'))
            .unwrap_or("download")
            .to_string();
        Ok(Download {
            name,
            path,
            digest,
            mtime,
            _staging: staging,
        })
    }
}
