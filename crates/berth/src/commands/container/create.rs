//! `run` and `create`: a container record from an image and the command line.

use std::collections::BTreeMap;
use std::io::Write;

use berth_oci::ImageConfig;
use berth_runtime::{ContainerConfig, HostConfig, RestartPolicy};
use berth_store::ContainerRecord;

use super::{spawn_monitor, stream, Context, MonitorEvent};
use crate::cli::RunArgs;
use crate::error::{status, CliError};
use crate::output;

/// Names Docker generates look like "sleepy_turing"; berth's do too.
const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "eager", "fair", "gentle", "happy", "keen", "kind",
    "lucid", "merry", "nimble", "quiet", "proud", "sharp", "steady", "swift", "witty",
];
const NAMES: &[&str] = &[
    "babbage", "curie", "darwin", "euler", "fermat", "gauss", "hopper", "hypatia", "knuth",
    "lamarr", "lovelace", "noether", "pascal", "ritchie", "shannon", "tesla", "thompson", "turing",
    "wozniak", "yonath",
];

fn random_bytes(n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let mut f = std::fs::File::open("/dev/urandom").expect("/dev/urandom");
    std::io::Read::read_exact(&mut f, &mut buf).expect("read /dev/urandom");
    buf
}

fn new_id() -> String {
    hex::encode(random_bytes(32))
}

fn generated_name(store: &berth_store::Store) -> String {
    loop {
        let r = random_bytes(2);
        let name = format!(
            "{}_{}",
            ADJECTIVES[r[0] as usize % ADJECTIVES.len()],
            NAMES[r[1] as usize % NAMES.len()]
        );
        if store.container(&name).is_err() {
            return name;
        }
        // Taken: try again, with a number as Docker does when names run out.
        let name = format!("{name}{}", random_bytes(1)[0] % 10);
        if store.container(&name).is_err() {
            return name;
        }
    }
}

/// `512m`, `1g`, `100000` as Docker's RAMInBytes reads them (base 1024).
pub fn parse_bytes(s: &str) -> Result<i64, CliError> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.parse::<f64>()
        .ok()
        .filter(|n| *n >= 0.0)
        .map(|n| (n * mult as f64) as i64)
        .ok_or_else(|| {
            CliError::usage(format!(
                "invalid size {s:?}: use a number with an optional unit, e.g. 512m or 1g"
            ))
        })
}

fn read_env_file(path: &std::path::Path) -> Result<Vec<String>, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::usage(format!("open {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(env_entry)
        .collect())
}

/// `K=V` as is; a bare `K` takes the value from berth's own environment, or is
/// dropped when unset (Docker's rule).
fn env_entry(e: &str) -> Option<String> {
    if e.contains('=') {
        Some(e.to_string())
    } else {
        std::env::var(e).ok().map(|v| format!("{e}={v}"))
    }
}

fn merge_env(base: &mut Vec<String>, extra: impl IntoIterator<Item = String>) {
    for e in extra {
        let key = e.split_once('=').map_or(e.as_str(), |(k, _)| k).to_string();
        base.retain(|x| x.split_once('=').map_or(x.as_str(), |(k, _)| k) != key);
        base.push(e);
    }
}

/// Creates the container record and directory; returns (record, config).
pub fn create(ctx: &Context, a: &RunArgs) -> Result<ContainerRecord, CliError> {
    let mut store = ctx.store()?;
    let img = store.resolve_image(&a.image).map_err(|e| CliError {
        message: match e {
            berth_store::Error::NoSuchImage(n) => format!(
                "Unable to find image '{n}' locally; import, load or build it first (registries come with `berth pull`)"
            ),
            other => other.to_string(),
        },
        status: status::ENGINE,
        silent: false,
    })?;
    let image = ImageConfig::from_slice(&store.image_config(&img.id)?)
        .map_err(|e| CliError::new(format!("image {}: bad config: {e}", img.id.short())))?;
    let ic = image.container_config();

    let usage = |m: String| CliError::usage(m);
    if let Some(n) = &a.name {
        if !super::mounts::valid_volume_name(n) {
            return Err(usage(format!(
                "Invalid container name ({n}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
    }
    let restart = RestartPolicy::parse(&a.restart).map_err(usage)?;
    if a.rm && restart.name != "no" {
        return Err(usage("Conflicting options: --restart and --rm".into()));
    }
    let user_network = match a.network.as_str() {
        "none" | "host" => None,
        "bridge" | "default" => Some(crate::commands::network::default_bridge(&mut store)?),
        other => Some(store.network(other).map_err(|_| {
            usage(format!(
                "network {other} not found: use none, host, or a network made with `berth network create`"
            ))
        })?),
    };
    let user_defined = user_network
        .as_ref()
        .is_some_and(|n| n.name != crate::commands::network::DEFAULT_BRIDGE);
    if !user_defined && (!a.network_alias.is_empty() || a.ip.is_some()) {
        return Err(usage(
            "network-scoped aliases and --ip are supported only for containers in user defined networks".into(),
        ));
    }
    for h in &a.add_host {
        let ok = h
            .split_once(':')
            .is_some_and(|(n, ip)| !n.is_empty() && ip.parse::<std::net::IpAddr>().is_ok());
        if !ok {
            return Err(usage(format!(
                "invalid argument {h:?} for --add-host: use host:ip"
            )));
        }
    }
    let requested_ip =
        a.ip.as_deref()
            .map(|s| {
                s.parse::<std::net::Ipv4Addr>()
                    .map_err(|_| usage(format!("invalid IP address {s:?}")))
            })
            .transpose()?;
    if let Some(s) = &a.stop_signal {
        berth_runtime::signal::parse(s).map_err(|e| usage(e.to_string()))?;
    }
    let mut tmpfs = BTreeMap::new();
    for t in &a.tmpfs {
        let (path, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        if !path.starts_with('/') {
            return Err(usage(format!(
                "invalid --tmpfs {t:?}: the mount point must be an absolute path"
            )));
        }
        tmpfs.insert(path.to_string(), opts.to_string());
    }
    for c in a.cap_add.iter().chain(&a.cap_drop) {
        berth_runtime::spec::capability_name(c).map_err(|e| usage(e.to_string()))?;
    }
    if a.privileged {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: --privileged gives the container every capability and all host devices; it can take over this machine. Prefer --cap-add for the one capability you need."
        );
    }

    let mut env = ic.env.clone().unwrap_or_default();
    for f in &a.env_file {
        merge_env(&mut env, read_env_file(f)?);
    }
    merge_env(&mut env, a.env.iter().filter_map(|e| env_entry(e)));

    let (entrypoint, cmd) = match &a.entrypoint {
        Some(e) if e.is_empty() => (None, (!a.command.is_empty()).then(|| a.command.clone())),
        Some(e) => (
            Some(vec![e.clone()]),
            (!a.command.is_empty()).then(|| a.command.clone()),
        ),
        None => (
            ic.entrypoint.clone(),
            if a.command.is_empty() {
                ic.cmd.clone()
            } else {
                Some(a.command.clone())
            },
        ),
    };
    if entrypoint.as_ref().is_none_or(|e| e.is_empty()) && cmd.as_ref().is_none_or(|c| c.is_empty())
    {
        return Err(usage("no command specified: the image has no CMD or ENTRYPOINT; give one after the image name".into()));
    }

    let id = new_id();
    let mut labels = ic.labels.clone().unwrap_or_default();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let config = ContainerConfig {
        hostname: a.hostname.clone().unwrap_or_else(|| id[..12].to_string()),
        user: a.user.clone().or(ic.user.clone()).unwrap_or_default(),
        tty: a.tty,
        open_stdin: a.interactive,
        env,
        cmd,
        entrypoint,
        image: a.image.clone(),
        working_dir: a
            .workdir
            .clone()
            .or(ic.working_dir.clone())
            .unwrap_or_default(),
        labels,
        stop_signal: a.stop_signal.clone().or(ic.stop_signal.clone()),
        stop_timeout: a.stop_timeout,
        exposed_ports: ic.exposed_ports.clone().unwrap_or_default(),
        volumes: ic.volumes.clone().unwrap_or_default(),
        host_config: HostConfig {
            network_mode: a.network.clone(),
            restart_policy: restart,
            auto_remove: a.rm,
            privileged: a.privileged,
            read_only_rootfs: a.read_only,
            cap_add: a.cap_add.clone(),
            cap_drop: a.cap_drop.clone(),
            security_opt: a.security_opt.clone(),
            memory: a
                .memory
                .as_deref()
                .map(parse_bytes)
                .transpose()?
                .unwrap_or(0),
            nano_cpus: a.cpus.map_or(0, |c| (c * 1e9) as i64),
            pids_limit: a.pids_limit.unwrap_or(0),
            tmpfs,
            init: a.init,
            mounts: Vec::new(),
            port_bindings: Vec::new(),
            extra_hosts: Vec::new(),
            dns: Vec::new(),
        },
    };
    if !config.working_dir.is_empty() && !config.working_dir.starts_with('/') {
        return Err(usage(format!(
            "the working directory '{}' is invalid, it needs to be an absolute path",
            config.working_dir
        )));
    }
    let name = match &a.name {
        Some(n) => n.clone(),
        None => generated_name(&store),
    };
    let mut config = config;
    let mut mounts = super::mounts::collect(
        &store,
        &config.volumes,
        &a.volume,
        &a.mount,
        &a.volumes_from,
        a.allow_host_root,
    )?;
    for m in mounts
        .iter_mut()
        .filter(|m| m.kind == "volume" && m.source.is_empty())
    {
        m.source = new_id();
    }
    config.host_config.mounts = mounts;
    let mut ports = Vec::new();
    for p in &a.publish {
        ports.extend(berth_runtime::ports::parse_publish(p).map_err(|e| usage(e.to_string()))?);
    }
    if a.publish_all {
        ports.extend(
            berth_runtime::ports::publish_all(&config.exposed_ports)
                .map_err(|e| usage(e.to_string()))?,
        );
    }
    if a.network == "host" && !ports.is_empty() {
        let _ = writeln!(
            std::io::stderr(),
            "WARNING: Published ports are discarded when using host network mode"
        );
        ports.clear();
    }
    config.host_config.port_bindings = ports;
    config.host_config.extra_hosts = a.add_host.clone();
    config.host_config.dns = a.dns.clone();
    let record = ContainerRecord {
        id: id.clone(),
        name,
        image_id: img.id.to_string(),
        image: a.image.clone(),
        config: serde_json::to_string(&config).expect("config serializes"),
        created: berth_runtime::monitor::now(),
        ..Default::default()
    };
    let dir = store.layout().container(&id);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::new(format!("create {}: {e}", dir.display())))?;
    let engine = |e: berth_store::Error| CliError {
        message: e.to_string(),
        status: status::ENGINE,
        silent: false,
    };
    if let Err(e) = store.create_container(&record) {
        let _ = std::fs::remove_dir_all(&dir);
        return Err(engine(e));
    }
    if let Some(net) = &user_network {
        if let Err(e) = store.attach_network(net, &id, &a.network_alias, requested_ip) {
            let _ = store.delete_container(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(engine(e));
        }
    }
    // Volumes are made (named ones on first use) and tied to the container, so
    // none can be removed while it exists.
    let now = berth_runtime::monitor::now();
    for m in config
        .host_config
        .mounts
        .iter()
        .filter(|m| m.kind == "volume")
    {
        let anonymous = m.source.len() == 64 && m.source.bytes().all(|b| b.is_ascii_hexdigit());
        let made = store
            .create_volume(
                &m.source,
                &BTreeMap::new(),
                &BTreeMap::new(),
                anonymous,
                &now,
            )
            .and_then(|_| store.attach_volume(&id, &m.source, &m.target));
        if let Err(e) = made {
            let _ = store.delete_container(&id);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(engine(e));
        }
    }
    Ok(record)
}

pub fn run_create(ctx: &Context, a: RunArgs) -> Result<(), CliError> {
    let c = create(ctx, &a)?;
    writeln!(output::stdout(), "{}", c.id)?;
    Ok(())
}

/// `berth run`: create, start, and (unless -d) stream the output and return the
/// container's exit status.
pub fn run(ctx: &Context, a: RunArgs) -> Result<(), CliError> {
    let c = create(ctx, &a)?;
    let store = ctx.store()?;
    let dir = store.layout().container(&c.id);
    if a.detach {
        let mut m = spawn_monitor(ctx, &store, &c.id, false)?;
        start_or_clean(ctx, &c, a.rm, m.started())?;
        writeln!(output::stdout(), "{}", c.id)?;
        return Ok(());
    }
    let mut m = spawn_monitor(ctx, &store, &c.id, true)?;
    match m.next()? {
        MonitorEvent::Ready => {}
        MonitorEvent::Started => {}
        MonitorEvent::Failed(code, msg) => {
            return start_or_clean(
                ctx,
                &c,
                a.rm,
                Err(CliError {
                    message: msg,
                    status: code,
                    silent: false,
                }),
            );
        }
    }
    let sock = berth_runtime::attach::connect(&dir)?;
    start_or_clean(ctx, &c, a.rm, m.started())?;
    let code = stream(
        sock,
        super::attach_options(ctx, &c.id, a.interactive, a.tty),
    )?;
    exit_with(ctx, &c.id, code)
}

/// After a failed start, a `--rm` container goes at once (Docker's behaviour).
fn start_or_clean(
    ctx: &Context,
    c: &ContainerRecord,
    rm: bool,
    r: Result<(), CliError>,
) -> Result<(), CliError> {
    if r.is_err() && rm {
        if let Ok(mut store) = ctx.store() {
            let _ = store.delete_container(&c.id);
            let _ = std::fs::remove_dir_all(store.layout().container(&c.id));
        }
    }
    r
}

/// Exits with the container's status; when the stream ended without one (the
/// monitor was killed), the recorded status decides.
pub fn exit_with(ctx: &Context, id: &str, code: i32) -> Result<(), CliError> {
    let code = if code >= 0 {
        code
    } else {
        let mut store = ctx.store()?;
        match super::wait_inactive(&mut store, id, None) {
            Ok(c) => c.exit_code as i32,
            Err(_) => 255,
        }
    };
    if code == 0 {
        Ok(())
    } else {
        Err(CliError::exit(code))
    }
}
