//! Paths inside a root filesystem that is mounted on the host: symlinks are
//! followed as the container would see them, never out to the host's files
//! (an image's `/app -> /etc` must not send a COPY into the host's /etc).

use std::ffi::OsString;
use std::fs;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Symlinks followed before giving up (Linux's MAXSYMLINKS is 40).
const MAX_LINKS: usize = 40;

/// The host path of `logical` (absolute or relative to `/`) in `root`,
/// following symlinks within `root`; a missing component ends the walk and
/// the rest is appended as is. With `follow_last` false, a final symlink is
/// returned itself.
pub fn resolve(root: &Path, logical: &Path, follow_last: bool) -> Result<PathBuf> {
    let mut todo: Vec<OsString> = components(logical);
    todo.reverse();
    let mut current: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            current.pop();
            continue;
        }
        current.push(c);
        let host = join(root, &current);
        let Ok(meta) = fs::symlink_metadata(&host) else {
            // Missing: nothing further can be a symlink.
            while let Some(rest) = todo.pop() {
                if rest == ".." {
                    current.pop();
                } else {
                    current.push(rest);
                }
            }
            break;
        };
        if !meta.file_type().is_symlink() || (todo.is_empty() && !follow_last) {
            continue;
        }
        links += 1;
        if links > MAX_LINKS {
            return Err(Error::Invalid(format!(
                "too many levels of symbolic links in {}",
                logical.display()
            )));
        }
        let target = fs::read_link(&host).map_err(|source| Error::Io {
            what: "cannot read link",
            path: host.clone(),
            source,
        })?;
        current.pop();
        if target.is_absolute() {
            current.clear();
        }
        let mut t = components(&target);
        t.reverse();
        todo.extend(t);
    }
    Ok(join(root, &current))
}

fn components(p: &Path) -> Vec<OsString> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect()
}

fn join(root: &Path, parts: &[OsString]) -> PathBuf {
    let mut p = root.to_path_buf();
    for c in parts {
        p.push(c);
    }
    p
}

/// Cleans a container path lexically against `workdir`: `a/../b` relative to
/// `/app` is `/app/b`; the result is absolute, without a trailing slash.
pub fn absolute(workdir: &str, path: &str) -> PathBuf {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{workdir}/{path}")
    };
    PathBuf::from(berth_context::clean_path(&format!("/{joined}")))
}

/// A path of the build context as a Dockerfile names it (`src`, `/src`,
/// `./a/../src`): relative to the context root and cleaned, the root itself
/// as the empty path; it cannot climb out of the context.
pub fn context_relative(path: &str) -> PathBuf {
    let cleaned = berth_context::clean_path(&format!("/{path}"));
    PathBuf::from(cleaned.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn absolute_links_stay_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("usr/lib")).unwrap();
        symlink("/usr/lib", root.join("lib")).unwrap();
        symlink("../../..", root.join("usr/lib/up")).unwrap();
        assert_eq!(
            resolve(root, Path::new("/lib/x"), true).unwrap(),
            root.join("usr/lib/x")
        );
        assert_eq!(
            resolve(root, Path::new("lib/up/etc"), true).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve(root, Path::new("/lib"), false).unwrap(),
            root.join("lib")
        );
    }

    #[test]
    fn loops_are_refused() {
        let t = tempfile::tempdir().unwrap();
        symlink("b", t.path().join("a")).unwrap();
        symlink("a", t.path().join("b")).unwrap();
        assert!(resolve(t.path(), Path::new("a"), true).is_err());
    }

    #[test]
    fn relative_paths_join_the_workdir() {
        assert_eq!(absolute("/app", "x/../y/"), PathBuf::from("/app/y"));
        assert_eq!(absolute("/app", "/etc"), PathBuf::from("/etc"));
        assert_eq!(absolute("/", "."), PathBuf::from("/"));
    }

    #[test]
    fn context_paths_stay_in_the_context() {
        assert_eq!(context_relative("/src/"), PathBuf::from("src"));
        assert_eq!(context_relative("../../etc"), PathBuf::from("etc"));
        assert_eq!(context_relative("."), PathBuf::new());
    }
}
