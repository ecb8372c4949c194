//! Extended attributes of a path itself (never of a symlink's target): what
//! layers record (`security.capability` of a `setcap` binary, say) and what
//! copies keep.

use std::io;
use std::path::Path;

use rustix::fs::XattrFlags;
use rustix::io::Errno;

/// The names on `path`, sorted; none where the file system has no xattrs.
pub fn list(path: &Path) -> io::Result<Vec<String>> {
    loop {
        let size = match rustix::fs::llistxattr(path, &mut []) {
            Ok(n) => n,
            Err(Errno::NOTSUP) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size];
        match rustix::fs::llistxattr(path, &mut buf) {
            Ok(n) => {
                let mut names: Vec<String> = buf[..n]
                    .split(|&b| b == 0)
                    .filter(|n| !n.is_empty())
                    .map(|n| String::from_utf8_lossy(n).into_owned())
                    .collect();
                names.sort();
                return Ok(names);
            }
            // Grew between the two calls; ask again.
            Err(Errno::RANGE) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// The value of `name` on `path`, if it is set.
pub fn get(path: &Path, name: &str) -> io::Result<Option<Vec<u8>>> {
    loop {
        let size = match rustix::fs::lgetxattr(path, name, &mut []) {
            Ok(n) => n,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; size];
        match rustix::fs::lgetxattr(path, name, &mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => continue,
            Err(Errno::NODATA) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Whether `dir` is an opaque directory of an overlay layer (overlayfs'
/// `trusted.overlay.opaque=y`): it hides what the layers below hold there.
pub fn is_overlay_opaque(dir: &Path) -> bool {
    let mut buf = [0u8; 2];
    rustix::fs::lgetxattr(dir, "trusted.overlay.opaque", &mut buf).is_ok_and(|n| buf[..n] == *b"y")
}

/// Copies the xattrs of `from` onto `to`, except those `skip` names (an
/// overlay's own, for instance). Attributes the destination cannot hold
/// are passed over, as `cp -a` does.
pub fn copy_all(from: &Path, to: &Path, skip: impl Fn(&str) -> bool) -> io::Result<()> {
    for name in list(from)? {
        if skip(&name) {
            continue;
        }
        if let Some(value) = get(from, &name)? {
            match rustix::fs::lsetxattr(to, name.as_str(), &value, XattrFlags::empty()) {
                Ok(()) | Err(Errno::NOTSUP) | Err(Errno::PERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_user_xattrs() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "a").unwrap();
        std::fs::write(&b, "b").unwrap();
        if rustix::fs::lsetxattr(&a, "user.note", b"v", XattrFlags::empty()).is_err() {
            return; // no user xattrs on this file system
        }
        copy_all(&a, &b, |_| false).unwrap();
        assert_eq!(get(&b, "user.note").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(list(&b).unwrap(), ["user.note"]);
        assert_eq!(get(&b, "user.none").unwrap(), None);
    }
}
