//! `-v`, `--mount`, `--volumes-from` and the image's VOLUMEs, read as Docker
//! reads them, plus the one place berth is stricter: binding the host's root.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

use berth_runtime::{ContainerConfig, MountSpec};
use berth_store::Store;

use crate::error::CliError;

/// Host paths whose bind mount gets a warning: a container with them can read
/// secrets or take over the host.
const SENSITIVE: &[&str] = &[
    "/etc",
    "/root",
    "/home",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/boot",
    "/proc",
    "/sys",
    "/dev",
];
const PROPAGATIONS: &[&str] = &[
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

fn bad(spec: &str, why: &str) -> CliError {
    CliError::usage(format!("invalid volume specification: '{spec}': {why}"))
}

/// Lexically normalizes an absolute path (no `.`/`..`, no trailing slash).
fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

fn check_target(spec: &str, target: &str) -> Result<String, CliError> {
    if !target.starts_with('/') {
        return Err(bad(spec, "the mount point must be an absolute path"));
    }
    let t = clean(Path::new(target));
    if t == Path::new("/") {
        return Err(bad(spec, "destination can't be '/'"));
    }
    Ok(t.display().to_string())
}

/// Docker's rule for container and volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn valid_volume_name(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// `-v SPEC`.
pub fn parse_volume_flag(spec: &str, cwd: &Path) -> Result<MountSpec, CliError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let is_mode = |m: &str| {
        m.split(',')
            .all(|o| matches!(o, "ro" | "rw" | "z" | "Z" | "nocopy") || PROPAGATIONS.contains(&o))
    };
    let (source, target, mode) = match parts.as_slice() {
        [t] => ("", *t, ""),
        [a, b] if a.starts_with('/') && is_mode(b) && !b.is_empty() => ("", *a, *b),
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => return Err(bad(spec, "too many colons")),
    };
    if !mode.is_empty() && !is_mode(mode) {
        return Err(bad(spec, &format!("invalid mode: {mode}")));
    }
    let target = check_target(spec, target)?;
    let opts: Vec<&str> = mode.split(',').filter(|o| !o.is_empty()).collect();
    let read_only = opts.contains(&"ro");
    let propagation = opts
        .iter()
        .find(|o| PROPAGATIONS.contains(o))
        .map(|s| s.to_string())
        .unwrap_or_default();
    let no_copy = opts.contains(&"nocopy");
    let relative =
        source == "." || source == ".." || source.starts_with("./") || source.starts_with("../");
    let m = if source.is_empty() {
        MountSpec {
            kind: "volume".into(),
            source: String::new(),
            target,
            read_only,
            no_copy,
            options: String::new(),
        }
    } else if source.starts_with('/') || relative {
        let host = if relative {
            clean(&cwd.join(source))
        } else {
            clean(Path::new(source))
        };
        MountSpec {
            kind: "bind".into(),
            source: host.display().to_string(),
            target,
            read_only,
            no_copy: false,
            options: propagation,
        }
    } else {
        if !valid_volume_name(source) {
            return Err(CliError::usage(format!(
                "\"{source}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
            )));
        }
        MountSpec {
            kind: "volume".into(),
            source: source.into(),
            target,
            read_only,
            no_copy,
            options: String::new(),
        }
    };
    Ok(m)
}

/// `--mount type=…,source=…,target=…`.
pub fn parse_mount_flag(spec: &str, cwd: &Path) -> Result<MountSpec, CliError> {
    let bad = |why: String| {
        CliError::usage(format!(
            "invalid argument \"{spec}\" for \"--mount\" flag: {why}"
        ))
    };
    let mut kind = "volume".to_string();
    let mut source = String::new();
    let mut target = String::new();
    let mut read_only = false;
    let mut no_copy = false;
    let mut options: Vec<String> = Vec::new();
    for field in spec.split(',') {
        let (k, v) = field
            .split_once('=')
            .map_or((field, None), |(k, v)| (k, Some(v)));
        let flag = |v: Option<&str>| -> Result<bool, CliError> {
            match v.map(str::to_ascii_lowercase).as_deref() {
                None | Some("true") | Some("1") => Ok(true),
                Some("false") | Some("0") => Ok(false),
                Some(o) => Err(bad(format!("invalid value for {k}: {o}"))),
            }
        };
        match k.to_ascii_lowercase().as_str() {
            "type" => kind = v.unwrap_or_default().to_string(),
            "source" | "src" => source = v.unwrap_or_default().to_string(),
            "target" | "destination" | "dst" => target = v.unwrap_or_default().to_string(),
            "readonly" | "ro" => read_only = flag(v)?,
            "volume-nocopy" => no_copy = flag(v)?,
            "bind-propagation" => {
                let p = v.unwrap_or_default();
                if !PROPAGATIONS.contains(&p) {
                    return Err(bad(format!("invalid bind-propagation: {p}")));
                }
                options.push(p.to_string());
            }
            "tmpfs-size" => options.push(format!("size={}", v.unwrap_or_default())),
            "tmpfs-mode" => options.push(format!("mode={}", v.unwrap_or_default())),
            "consistency" | "bind-nonrecursive" => {}
            other => return Err(bad(format!("unexpected key '{other}' in '{field}'"))),
        }
    }
    if target.is_empty() {
        return Err(bad("target is required".into()));
    }
    let target = check_target(spec, &target)?;
    match kind.as_str() {
        "bind" => {
            if source.is_empty() {
                return Err(bad(
                    "source is required when specifying volume-specific options".into(),
                ));
            }
            let host = clean(&cwd.join(&source));
            if !host.exists() {
                return Err(CliError::usage(format!(
                    "invalid mount config for type \"bind\": bind source path does not exist: {}",
                    host.display()
                )));
            }
            Ok(MountSpec {
                kind,
                source: host.display().to_string(),
                target,
                read_only,
                no_copy: false,
                options: options.join(","),
            })
        }
        "volume" => {
            if !source.is_empty() && !valid_volume_name(&source) {
                return Err(bad(format!("invalid volume name {source:?}")));
            }
            Ok(MountSpec {
                kind,
                source,
                target,
                read_only,
                no_copy,
                options: String::new(),
            })
        }
        "tmpfs" => {
            if !source.is_empty() {
                return Err(bad("source is not supported for tmpfs mounts".into()));
            }
            Ok(MountSpec {
                kind,
                source,
                target,
                read_only,
                no_copy: false,
                options: options.join(","),
            })
        }
        other => Err(bad(format!(
            "invalid mount type {other:?}: use bind, volume or tmpfs"
        ))),
    }
}

/// Refuses a bind of the host's root unless allowed, warns about other
/// whole-host paths, and (for `-v`) creates a missing source directory.
pub fn check_bind(
    m: &MountSpec,
    data_root: &Path,
    allow_host_root: bool,
    create_missing: bool,
) -> Result<(), CliError> {
    let host = Path::new(&m.source);
    if !host.exists() && create_missing {
        std::fs::create_dir_all(host)
            .map_err(|e| CliError::new(format!("create bind source {}: {e}", host.display())))?;
    }
    let real = std::fs::canonicalize(host).unwrap_or_else(|_| host.to_path_buf());
    if real == Path::new("/") {
        if !allow_host_root {
            return Err(CliError::usage(format!(
                "refusing to bind-mount the host's root directory (/) at {}: the container would see and could change every file on this machine, /etc/shadow and the berth data root included. If that is really what you want, add --allow-host-root",
                m.target
            )));
        }
        warn(&format!("the host's root directory is mounted at {}: the container can change every file on this machine", m.target));
        return Ok(());
    }
    let sensitive = SENSITIVE
        .iter()
        .any(|s| real == Path::new(s) || Path::new(s).starts_with(&real))
        || data_root.starts_with(&real);
    if sensitive {
        warn(&format!(
            "{} is bind-mounted at {}: it holds host secrets or control files, and a container running as root can read and change them",
            real.display(),
            m.target
        ));
    }
    Ok(())
}

fn warn(msg: &str) {
    let _ = writeln!(std::io::stderr(), "WARNING: {msg}");
}

/// Everything that gets mounted, in order: `--volumes-from`, then `-v` and
/// `--mount` (a later one for the same target is an error), then the image's
/// VOLUMEs not already covered, as anonymous volumes.
pub fn collect(
    store: &Store,
    image_volumes: &BTreeMap<String, serde_json::Value>,
    volume_flags: &[String],
    mount_flags: &[String],
    volumes_from: &[String],
    allow_host_root: bool,
) -> Result<Vec<MountSpec>, CliError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CliError::new(format!("cannot read the working directory: {e}")))?;
    let mut mounts: Vec<MountSpec> = Vec::new();
    let mut explicit: Vec<MountSpec> = Vec::new();
    for v in volume_flags {
        let m = parse_volume_flag(v, &cwd)?;
        if m.kind == "bind" {
            check_bind(&m, store.root(), allow_host_root, true)?;
        }
        explicit.push(m);
    }
    for v in mount_flags {
        let m = parse_mount_flag(v, &cwd)?;
        if m.kind == "bind" {
            check_bind(&m, store.root(), allow_host_root, false)?;
        }
        explicit.push(m);
    }
    for (i, m) in explicit.iter().enumerate() {
        if explicit[..i].iter().any(|o| o.target == m.target) {
            return Err(CliError::usage(format!(
                "Duplicate mount point: {}",
                m.target
            )));
        }
    }
    for from in volumes_from {
        let (name, mode) = match from.rsplit_once(':') {
            Some((n, m)) if m == "ro" || m == "rw" => (n, Some(m)),
            _ => (from.as_str(), None),
        };
        let other = store.container(name)?;
        let cfg: ContainerConfig = serde_json::from_str(&other.config).unwrap_or_default();
        for mut m in cfg
            .host_config
            .mounts
            .into_iter()
            .filter(|m| m.kind != "tmpfs")
        {
            if let Some(mode) = mode {
                m.read_only = mode == "ro";
            }
            if !explicit.iter().any(|e| e.target == m.target)
                && !mounts.iter().any(|e| e.target == m.target)
            {
                mounts.push(m);
            }
        }
    }
    for m in explicit {
        mounts.retain(|o| o.target != m.target);
        mounts.push(m);
    }
    for target in image_volumes.keys() {
        let t = clean(Path::new(target)).display().to_string();
        if !mounts.iter().any(|m| m.target == t) {
            mounts.push(MountSpec {
                kind: "volume".into(),
                source: String::new(),
                target: t,
                ..MountSpec::default()
            });
        }
    }
    Ok(mounts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_flags_parse_like_docker() {
        let cwd = Path::new("/work/app");
        let m = parse_volume_flag("data:/var/lib/mysql", cwd).unwrap();
        assert_eq!(
            (
                m.kind.as_str(),
                m.source.as_str(),
                m.target.as_str(),
                m.read_only
            ),
            ("volume", "data", "/var/lib/mysql", false)
        );
        let m = parse_volume_flag("/srv/site:/usr/share/nginx/html:ro", cwd).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.source.as_str(), m.read_only),
            ("bind", "/srv/site", true)
        );
        let m = parse_volume_flag("./site:/www", cwd).unwrap();
        assert_eq!(m.source, "/work/app/site");
        let m = parse_volume_flag("../shared:/s", cwd).unwrap();
        assert_eq!(m.source, "/work/shared");
        let m = parse_volume_flag("/data", cwd).unwrap();
        assert_eq!((m.kind.as_str(), m.source.as_str()), ("volume", ""));
        let m = parse_volume_flag("/data:ro", cwd).unwrap();
        assert!(m.read_only && m.source.is_empty());
        assert!(parse_volume_flag("data:relative", cwd).is_err());
        assert!(parse_volume_flag("/x:/", cwd).is_err());
        assert!(parse_volume_flag("bad name:/x", cwd).is_err());
        assert!(parse_volume_flag("a:/b:wat", cwd).is_err());
    }

    #[test]
    fn mount_flags_parse_like_docker() {
        let cwd = Path::new("/");
        let m = parse_mount_flag(
            "type=volume,source=db,target=/data,readonly,volume-nocopy",
            cwd,
        )
        .unwrap();
        assert!(m.read_only && m.no_copy && m.kind == "volume" && m.source == "db");
        let m = parse_mount_flag("type=tmpfs,dst=/cache,tmpfs-size=1m", cwd).unwrap();
        assert_eq!(m.options, "size=1m");
        let e = parse_mount_flag("type=bind,source=/nonexistent-berth,target=/x", cwd).unwrap_err();
        assert!(
            e.message.contains("bind source path does not exist"),
            "{}",
            e.message
        );
        assert!(parse_mount_flag("type=volume,target=/x,colour=red", cwd).is_err());
        assert!(parse_mount_flag("type=nfs,target=/x", cwd).is_err());
    }
}
