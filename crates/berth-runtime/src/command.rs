//! The command a container runs, as Docker derives it from ENTRYPOINT, CMD and
//! the `run` arguments, and the lookup of its executable inside the root
//! filesystem (so "not found" is 127 and "cannot execute" 126, before start).

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Symlink hops allowed while resolving, as Linux's MAXSYMLINKS.
const MAX_SYMLINKS: usize = 40;

/// The PATH Docker gives a container whose image sets none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// ENTRYPOINT + CMD, where arguments after the image replace CMD and
/// `--entrypoint` replaces ENTRYPOINT (and then drops the image's CMD).
pub fn argv(
    image_entrypoint: Option<&[String]>,
    image_cmd: Option<&[String]>,
    entrypoint_override: Option<&[String]>,
    args: &[String],
) -> Result<Vec<String>> {
    let entrypoint: Vec<String> = match entrypoint_override {
        Some(e) => e.to_vec(),
        None => image_entrypoint.map(<[String]>::to_vec).unwrap_or_default(),
    };
    let cmd: Vec<String> = if !args.is_empty() {
        args.to_vec()
    } else if entrypoint_override.is_some() {
        Vec::new()
    } else {
        image_cmd.map(<[String]>::to_vec).unwrap_or_default()
    };
    let all: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if all.is_empty() {
        return Err(Error::NoCommand);
    }
    Ok(all)
}

/// Resolves `path` (absolute, as seen inside the container) to a host path
/// under `root`, following symlinks without ever leaving `root`.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut pending: Vec<String> = components(path);
    pending.reverse();
    let mut cur = PathBuf::new();
    let mut hops = 0;
    while let Some(c) = pending.pop() {
        match c.as_str() {
            ".." => {
                cur.pop();
                continue;
            }
            "." | "" => continue,
            _ => {}
        }
        let next = cur.join(&c);
        let host = root.join(&next);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                let target = std::fs::read_link(&host).ok()?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    cur = PathBuf::new();
                }
                let mut t = components(&target);
                t.reverse();
                pending.extend(t);
            }
            Ok(_) => cur = next,
            Err(_) if pending.is_empty() => return None,
            Err(_) => return None,
        }
    }
    Some(root.join(cur))
}

fn components(p: &str) -> Vec<String> {
    Path::new(p)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

/// Checks that `argv0` names an executable file in `root`, searching `path`
/// when it has no '/', as execvp would inside the container.
pub fn check_executable(root: &Path, argv0: &str, path: &str) -> Result<()> {
    let candidates: Vec<String> = if argv0.contains('/') {
        vec![argv0.to_string()]
    } else {
        path.split(':')
            .filter(|d| !d.is_empty())
            .map(|d| format!("{}/{argv0}", d.trim_end_matches('/')))
            .collect()
    };
    let mut denied = false;
    for c in candidates {
        let abs = if c.starts_with('/') {
            c
        } else {
            format!("/{c}")
        };
        let Some(host) = resolve_in_root(root, &abs) else {
            continue;
        };
        match std::fs::metadata(&host) {
            Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => return Ok(()),
            Ok(_) => denied = true,
            Err(_) => {}
        }
    }
    if denied {
        Err(Error::NotExecutable(argv0.to_string()))
    } else {
        Err(Error::NotFound(argv0.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn entrypoint_and_cmd_combine_like_docker() {
        let ep = s(&["/entry.sh"]);
        let cmd = s(&["serve"]);
        assert_eq!(
            argv(Some(&ep), Some(&cmd), None, &[]).unwrap(),
            s(&["/entry.sh", "serve"])
        );
        assert_eq!(
            argv(Some(&ep), Some(&cmd), None, &s(&["x"])).unwrap(),
            s(&["/entry.sh", "x"])
        );
        assert_eq!(
            argv(Some(&ep), Some(&cmd), Some(&s(&["sh"])), &[]).unwrap(),
            s(&["sh"])
        );
        assert_eq!(
            argv(None, Some(&cmd), None, &s(&["ls", "-l"])).unwrap(),
            s(&["ls", "-l"])
        );
        assert!(matches!(argv(None, None, None, &[]), Err(Error::NoCommand)));
    }

    #[test]
    fn resolves_symlinks_inside_the_root() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"x").unwrap();
        std::fs::set_permissions(
            r.join("bin/busybox"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("busybox", r.join("bin/sh")).unwrap();
        std::os::unix::fs::symlink("/bin/busybox", r.join("bin/abs")).unwrap();
        std::os::unix::fs::symlink("../../../../etc/shadow", r.join("bin/escape")).unwrap();
        assert_eq!(
            resolve_in_root(r, "/bin/sh").unwrap(),
            r.join("bin/busybox")
        );
        assert_eq!(
            resolve_in_root(r, "/bin/abs").unwrap(),
            r.join("bin/busybox")
        );
        assert!(
            resolve_in_root(r, "/bin/escape").is_none(),
            "stays inside the root"
        );
        check_executable(r, "sh", DEFAULT_PATH).unwrap();
        assert!(matches!(
            check_executable(r, "nosuch", DEFAULT_PATH),
            Err(Error::NotFound(_))
        ));
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(r.join("etc/passwd"), b"x").unwrap();
        assert!(matches!(
            check_executable(r, "/etc/passwd", DEFAULT_PATH),
            Err(Error::NotExecutable(_))
        ));
        assert!(matches!(
            check_executable(r, "/etc", DEFAULT_PATH),
            Err(Error::NotExecutable(_))
        ));
    }
}
