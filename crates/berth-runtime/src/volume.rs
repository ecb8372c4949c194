//! Filling a new volume from the image, as Docker does: when an empty volume
//! is mounted where the image has files, those files (with their owners and
//! modes) are copied in first, so a non-root USER can write where the image
//! gave it a directory.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::{lchown, MetadataExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{mknodat, utimensat, AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::command::resolve_in_root;
use crate::error::{Error, Result};

/// Copies the image's content at `target` (a path inside the container whose
/// root is `rootfs`) into the empty volume directory `data`. Does nothing when
/// the volume has content or the image has nothing there.
pub fn populate(rootfs: &Path, target: &str, data: &Path) -> Result<bool> {
    let is_empty = fs::read_dir(data)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false);
    if !is_empty {
        return Ok(false);
    }
    let Some(src) = resolve_in_root(rootfs, target) else {
        return Ok(false);
    };
    let Ok(meta) = fs::symlink_metadata(&src) else {
        return Ok(false);
    };
    if !meta.is_dir() {
        return Ok(false);
    }
    let mut links = HashMap::new();
    let err = |e: io::Error| Error::Runtime(format!("cannot fill volume from {target}: {e}"));
    copy_dir_contents(&src, data, &mut links).map_err(err)?;
    copy_metadata(&src, data, &meta).map_err(err)?;
    Ok(true)
}

fn copy_dir_contents(
    src: &Path,
    dst: &Path,
    links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    let mut entries: Vec<_> = fs::read_dir(src)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let from = e.path();
        let to = dst.join(e.file_name());
        let meta = fs::symlink_metadata(&from)?;
        let ft = meta.file_type();
        if !ft.is_dir() && meta.nlink() > 1 {
            if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                fs::hard_link(first, &to)?;
                continue;
            }
            links.insert((meta.dev(), meta.ino()), to.clone());
        }
        if ft.is_dir() {
            fs::create_dir(&to)?;
            copy_dir_contents(&from, &to, links)?;
            copy_metadata(&from, &to, &meta)?;
        } else {
            copy_one(&from, &to, &meta, links)?;
        }
    }
    Ok(())
}

fn copy_one(
    from: &Path,
    to: &Path,
    meta: &fs::Metadata,
    _links: &mut HashMap<(u64, u64), std::path::PathBuf>,
) -> io::Result<()> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(from)?, to)?;
    } else if ft.is_file() {
        fs::copy(from, to)?;
    } else {
        use std::os::unix::fs::FileTypeExt;
        let kind = if ft.is_char_device() {
            FileType::CharacterDevice
        } else if ft.is_block_device() {
            FileType::BlockDevice
        } else if ft.is_fifo() {
            FileType::Fifo
        } else {
            return Ok(()); // sockets are not copied
        };
        mknodat(CWD, to, kind, Mode::from_raw_mode(0o600), meta.rdev())?;
    }
    copy_metadata(from, to, meta)
}

/// Copies one non-directory entry (file, symlink, device, fifo) with its
/// metadata; hard links are not preserved.
pub fn copy_entry(from: &Path, to: &Path) -> io::Result<()> {
    let mut links = HashMap::new();
    let meta = fs::symlink_metadata(from)?;
    copy_one(from, to, &meta, &mut links)
}

/// Copies owner, mode and times of `from` onto `to`.
pub fn copy_metadata_of(from: &Path, to: &Path) -> io::Result<()> {
    copy_metadata(from, to, &fs::symlink_metadata(from)?)
}

fn copy_metadata(from: &Path, to: &Path, meta: &fs::Metadata) -> io::Result<()> {
    lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    // After the owner: a chown clears file capabilities.
    berth_fs::xattr::copy_all(from, to, |n| n.starts_with("trusted.overlay."))?;
    if !meta.file_type().is_symlink() {
        fs::set_permissions(to, fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    let ts = |s: i64, ns: i64| Timespec {
        tv_sec: s,
        tv_nsec: ns,
    };
    let times = Timestamps {
        last_access: ts(meta.atime(), meta.atime_nsec()),
        last_modification: ts(meta.mtime(), meta.mtime_nsec()),
    };
    utimensat(CWD, to, &times, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// The local driver's options (`-o type=tmpfs -o device=tmpfs -o o=size=64m`,
/// or `type=none,o=bind,device=/host/dir`) that berth mounts; network
/// filesystems (nfs, cifs) would reach beyond this machine and are refused.
pub fn check_options(options: &std::collections::BTreeMap<String, String>) -> Result<()> {
    for k in options.keys() {
        if !matches!(k.as_str(), "type" | "device" | "o") {
            return Err(Error::Invalid(format!(
                "invalid option key: {k:?}; the local driver takes type, device and o"
            )));
        }
    }
    match options.get("type").map(String::as_str) {
        None if options.is_empty() => Ok(()),
        Some("tmpfs") => Ok(()),
        Some("none") if options.get("o").is_some_and(|o| o.split(',').any(|x| x == "bind")) => {
            let dev = options.get("device").map(String::as_str).unwrap_or("");
            if !dev.starts_with('/') {
                return Err(Error::Invalid("a bind volume needs device=/absolute/host/path".into()));
            }
            Ok(())
        }
        Some(t) => Err(Error::Invalid(format!(
            "volume type {t:?} is not supported by this berth's local driver: use type=tmpfs, or type=none with o=bind"
        ))),
        None => Err(Error::Invalid("volume options need type=…".into())),
    }
}

/// Mounts a volume that has driver options over its data directory, once.
pub fn mount_options(
    data: &Path,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<()> {
    let Some(kind) = options.get("type") else {
        return Ok(());
    };
    if crate::rootfs::is_mounted(data) {
        return Ok(());
    }
    let o = options.get("o").cloned().unwrap_or_default();
    let device = options
        .get("device")
        .cloned()
        .unwrap_or_else(|| kind.clone());
    let result = if kind == "none" {
        rustix::mount::mount_bind(device.as_str(), data)
    } else {
        let data_opts: Vec<&str> = o.split(',').filter(|x| !x.is_empty()).collect();
        rustix::mount::mount(
            device.as_str(),
            data,
            kind.as_str(),
            rustix::mount::MountFlags::empty(),
            data_opts.join(",").as_str(),
        )
    };
    result.map_err(|e| Error::Mount {
        path: data.display().to_string(),
        source: e.into(),
    })
}

/// Unmounts a volume's driver mount, if any (before the volume is removed).
pub fn unmount_options(data: &Path) {
    if crate::rootfs::is_mounted(data) {
        let _ = rustix::mount::unmount(data, rustix::mount::UnmountFlags::DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_only_empty_volumes_keeping_owners() {
        let root = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let app = root.path().join("var/lib/app");
        fs::create_dir_all(app.join("sub")).unwrap();
        fs::write(app.join("sub/file"), b"x").unwrap();
        lchown(&app, Some(1000), Some(1000)).unwrap();
        fs::set_permissions(&app, fs::Permissions::from_mode(0o750)).unwrap();
        assert!(populate(root.path(), "/var/lib/app", data.path()).unwrap());
        assert_eq!(fs::read(data.path().join("sub/file")).unwrap(), b"x");
        let m = fs::metadata(data.path()).unwrap();
        assert_eq!((m.uid(), m.mode() & 0o777), (1000, 0o750));
        // Not empty any more: left alone.
        fs::write(app.join("new"), b"y").unwrap();
        assert!(!populate(root.path(), "/var/lib/app", data.path()).unwrap());
        assert!(!data.path().join("new").exists());
        // Nothing in the image there: nothing to do.
        let other = tempfile::tempdir().unwrap();
        assert!(!populate(root.path(), "/nowhere", other.path()).unwrap());
    }
}
