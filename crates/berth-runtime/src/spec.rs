//! The OCI runtime spec (config.json) for a container, with Docker's defaults:
//! its mounts, capability set, masked and read-only /proc paths, device rules
//! and namespaces. Written as the spec's JSON and checked by parsing it into
//! `oci_spec::runtime::Spec`.

use std::path::Path;

use oci_spec::runtime::Spec;
use serde_json::{json, Value};

use crate::config::ContainerConfig;
use crate::error::{Error, Result};
use crate::files::EtcFiles;
use crate::user::User;

/// Docker's default capabilities (moby oci/caps/defaults.go).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability, for `--privileged` and `--cap-add ALL`.
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Paths Docker hides from containers (moby oci/defaults.go).
/// Where the spec mounts something over the root filesystem, so the runtime
/// makes these paths when the image lacks them: mount points, not content.
pub const RUNTIME_MOUNT_POINTS: &[&str] = &[
    "/proc",
    "/dev",
    "/sys",
    "/etc/resolv.conf",
    "/etc/hostname",
    "/etc/hosts",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The CFS period Docker uses for `--cpus`.
const CPU_PERIOD: u64 = 100_000;
/// Docker's /dev/shm size.
const SHM_SIZE: u64 = 64 * 1024 * 1024;
/// Open files per container process, as Docker's daemon defaults give, where
/// this process's own hard limit allows (raising it needs privilege some
/// sandboxes withhold).
const NOFILE: u64 = 1_048_576;

fn nofile_limit() -> u64 {
    let hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(NOFILE);
    hard.min(NOFILE)
}

/// Whether a capability is in this process's bounding set (from
/// /proc/self/status; `ALL_CAPABILITIES` is in kernel bit order).
fn bounding_set() -> impl Fn(&str) -> bool {
    let mask = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    move |name: &str| {
        ALL_CAPABILITIES
            .iter()
            .position(|c| *c == name)
            .is_some_and(|bit| mask & (1u64 << bit) != 0)
    }
}

/// Normalizes a capability name (`NET_ADMIN`, `cap_net_admin`) to `CAP_NET_ADMIN`.
pub fn capability_name(c: &str) -> Result<String> {
    let up = c.to_ascii_uppercase();
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if name == "CAP_ALL" || ALL_CAPABILITIES.contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(Error::Invalid(format!(
            "unknown capability {c:?}: use a name from capabilities(7), e.g. NET_ADMIN"
        )))
    }
}

/// The capability set after `--cap-add`/`--cap-drop`, as Docker computes it.
pub fn capabilities(cfg: &ContainerConfig) -> Result<Vec<String>> {
    if cfg.host_config.privileged {
        let available = bounding_set();
        return Ok(ALL_CAPABILITIES
            .iter()
            .filter(|c| available(c))
            .map(|s| s.to_string())
            .collect());
    }
    let add: Vec<String> = cfg
        .host_config
        .cap_add
        .iter()
        .map(|c| capability_name(c))
        .collect::<Result<_>>()?;
    let drop: Vec<String> = cfg
        .host_config
        .cap_drop
        .iter()
        .map(|c| capability_name(c))
        .collect::<Result<_>>()?;
    // Docker: `--cap-add ALL` grants everything, `--cap-drop ALL` starts from
    // nothing; the capabilities named in the other list then apply.
    let mut caps: Vec<String> = if add.iter().any(|c| c == "CAP_ALL") {
        ALL_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    } else if drop.iter().any(|c| c == "CAP_ALL") {
        Vec::new()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect()
    };
    caps.retain(|c| !drop.contains(c));
    // A process can only pass on capabilities in its own bounding set; some
    // sandboxes withhold a few (CAP_SYS_RESOURCE, say).
    let available = bounding_set();
    for c in add.iter().filter(|c| *c != "CAP_ALL") {
        if !available(c) {
            return Err(Error::Invalid(format!(
                "capability {c} is not available to berth on this machine, so a container cannot be given it"
            )));
        }
    }
    caps.extend(add.into_iter().filter(|c| c != "CAP_ALL"));
    caps.retain(|c| available(c));
    caps.sort();
    caps.dedup();
    Ok(caps)
}

pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub argv: &'a [String],
    pub env: &'a [String],
    pub user: &'a User,
    pub rootfs: &'a Path,
    pub etc: &'a EtcFiles,
    /// A network namespace made beforehand, to join instead of a new one.
    pub netns: Option<&'a Path>,
    /// The init binary on the host, for `--init` (argv then starts with it).
    pub init: Option<&'a Path>,
    /// Host directories of the volume mounts, by target.
    pub volume_sources: std::collections::HashMap<String, std::path::PathBuf>,
}

/// Where `--init` puts the init process, as Docker does.
pub const INIT_PATH: &str = "/sbin/docker-init";

pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let cfg = input.config;
    let hc = &cfg.host_config;
    let caps = capabilities(cfg)?;
    let no_new_privs = hc.security_opt.iter().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });

    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", if hc.privileged { "rw" } else { "ro" }]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", format!("size={SHM_SIZE}")]}),
    ];
    for (dest, file) in [
        ("/etc/resolv.conf", &input.etc.resolv_conf),
        ("/etc/hostname", &input.etc.hostname),
        ("/etc/hosts", &input.etc.hosts),
    ] {
        mounts.push(json!({"destination": dest, "type": "bind", "source": file, "options": ["rbind", "rprivate"]}));
    }
    if let Some(init) = input.init {
        mounts.push(json!({"destination": INIT_PATH, "type": "bind", "source": init, "options": ["rbind", "ro", "rprivate"]}));
    }
    // Parents before children, as Docker sorts mounts.
    let mut user_mounts: Vec<&crate::config::MountSpec> = hc.mounts.iter().collect();
    user_mounts.sort_by_key(|m| Path::new(&m.target).components().count());
    for m in user_mounts {
        match m.kind.as_str() {
            "tmpfs" => {
                let mut o = vec![
                    "nosuid".to_string(),
                    "nodev".to_string(),
                    "noexec".to_string(),
                ];
                o.extend(
                    m.options
                        .split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_string),
                );
                if m.read_only {
                    o.push("ro".into());
                }
                mounts.push(json!({"destination": m.target, "type": "tmpfs", "source": "tmpfs", "options": o}));
            }
            _ => {
                let source = input
                    .volume_sources
                    .get(&m.target)
                    .cloned()
                    .unwrap_or_else(|| m.source.clone().into());
                let propagation = if m.options.is_empty() {
                    "rprivate"
                } else {
                    m.options.as_str()
                };
                let mut o = vec!["rbind".to_string(), propagation.to_string()];
                if m.read_only {
                    o.push("ro".into());
                }
                mounts.push(json!({"destination": m.target, "type": "bind", "source": source, "options": o}));
            }
        }
    }
    for (dest, opts) in &hc.tmpfs {
        let mut o = vec![
            "nosuid".to_string(),
            "nodev".to_string(),
            "noexec".to_string(),
        ];
        o.extend(
            opts.split(',')
                .filter(|x| !x.is_empty())
                .map(str::to_string),
        );
        mounts.push(json!({"destination": dest, "type": "tmpfs", "source": "tmpfs", "options": o}));
    }

    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    if let Some(path) = input.netns {
        namespaces.push(json!({"type": "network", "path": path}));
    } else if hc.network_mode != "host" {
        namespaces.push(json!({"type": "network"}));
    }

    let mut resources = json!({
        "devices": device_rules(hc.privileged),
    });
    if hc.memory > 0 {
        resources["memory"] = json!({"limit": hc.memory});
    }
    if hc.nano_cpus > 0 {
        let quota = (hc.nano_cpus as u128 * CPU_PERIOD as u128 / 1_000_000_000) as i64;
        resources["cpu"] = json!({"quota": quota, "period": CPU_PERIOD});
    }
    if hc.pids_limit > 0 {
        resources["pids"] = json!({"limit": hc.pids_limit});
    }

    let spec = json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": cfg.tty,
            "user": {
                "uid": input.user.uid,
                "gid": input.user.gid,
                "additionalGids": input.user.additional_gids,
            },
            "args": input.argv,
            "env": input.env,
            "cwd": if cfg.working_dir.is_empty() { "/" } else { cfg.working_dir.as_str() },
            "capabilities": {
                "bounding": caps,
                "effective": caps,
                "permitted": caps,
            },
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": nofile_limit(), "soft": nofile_limit()}],
            "noNewPrivileges": no_new_privs,
        },
        "root": {"path": input.rootfs, "readonly": hc.read_only_rootfs},
        "hostname": cfg.hostname,
        "mounts": mounts,
        "linux": {
            "cgroupsPath": format!("/berth/{}", input.id),
            "namespaces": namespaces,
            "resources": resources,
            "maskedPaths": if hc.privileged { vec![] } else { MASKED_PATHS.to_vec() },
            "readonlyPaths": if hc.privileged { vec![] } else { READONLY_PATHS.to_vec() },
        },
    });
    serde_json::from_value::<Spec>(spec)
        .map_err(|e| Error::Runtime(format!("invalid runtime spec: {e}")))
}

/// The device cgroup rules Docker applies: deny everything but the standard
/// character devices (null, zero, full, random, urandom, tty, console, ptmx,
/// pts), and allow mknod of any device node.
fn device_rules(privileged: bool) -> Value {
    if privileged {
        return json!([{"allow": true, "access": "rwm"}]);
    }
    let c = |major: i64, minor: Option<i64>, access: &str| json!({"allow": true, "type": "c", "major": major, "minor": minor, "access": access});
    json!([
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "access": "m"},
        {"allow": true, "type": "b", "access": "m"},
        c(1, Some(3), "rwm"),
        c(1, Some(5), "rwm"),
        c(1, Some(7), "rwm"),
        c(1, Some(8), "rwm"),
        c(1, Some(9), "rwm"),
        c(5, Some(0), "rwm"),
        c(5, Some(1), "rwm"),
        c(5, Some(2), "rwm"),
        c(136, None, "rwm"),
        c(10, Some(200), "rwm"),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_follow_docker() {
        let mut cfg = ContainerConfig::default();
        assert_eq!(
            capabilities(&cfg).unwrap().len(),
            DEFAULT_CAPABILITIES.len()
        );
        cfg.host_config.cap_add = vec!["net_admin".into()];
        cfg.host_config.cap_drop = vec!["CAP_CHOWN".into(), "MKNOD".into()];
        let caps = capabilities(&cfg).unwrap();
        assert!(caps.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!caps.contains(&"CAP_CHOWN".to_string()));
        assert!(!caps.contains(&"CAP_MKNOD".to_string()));
        cfg.host_config.cap_drop = vec!["ALL".into()];
        cfg.host_config.cap_add = vec!["NET_BIND_SERVICE".into()];
        assert_eq!(capabilities(&cfg).unwrap(), ["CAP_NET_BIND_SERVICE"]);
        cfg.host_config.cap_add = vec!["NOPE".into()];
        assert!(capabilities(&cfg).is_err());
    }

    #[test]
    fn the_spec_parses() {
        let cfg = ContainerConfig {
            hostname: "abc".into(),
            ..ContainerConfig::default()
        };
        let d = tempfile::tempdir().unwrap();
        let etc = crate::files::write_etc_files(d.path(), "abc", false, &[]).unwrap();
        let user = User {
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            home: "/root".into(),
        };
        let spec = build(&SpecInput {
            id: "x",
            config: &cfg,
            argv: &["sh".into()],
            env: &["PATH=/bin".into()],
            user: &user,
            rootfs: d.path(),
            etc: &etc,
            netns: None,
            init: None,
            volume_sources: Default::default(),
        })
        .unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("abc"));
    }
}
