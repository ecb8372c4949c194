//! The container's root filesystem: an overlay of the image's layers (lowest
//! last in `lowerdir`, as overlayfs wants) under the container's own writable
//! `upper/`.

use std::fs;
use std::path::{Path, PathBuf};

use berth_fs::ResultExt;
use rustix::mount::{mount, unmount, MountFlags, UnmountFlags};

use crate::error::{Error, Result};

/// The kernel takes mount options in one page.
const MOUNT_DATA_MAX: usize = 4095;

pub struct RootPaths {
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
}

impl RootPaths {
    pub fn new(container_dir: &Path) -> Self {
        Self {
            upper: container_dir.join("upper"),
            work: container_dir.join("work"),
            merged: container_dir.join("merged"),
        }
    }
}

/// Mounts the overlay at `paths.merged`. `layers` are the image's layer trees,
/// bottom first. An image with no layers gets an empty lower directory.
pub fn mount_rootfs(layers: &[PathBuf], paths: &RootPaths) -> Result<()> {
    for d in [&paths.upper, &paths.work, &paths.merged] {
        fs::create_dir_all(d).at("cannot create", d)?;
    }
    if is_mounted(&paths.merged) {
        return Ok(());
    }
    let mut lowers: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    if lowers.is_empty() {
        let empty = paths.merged.with_file_name("empty");
        fs::create_dir_all(&empty).at("cannot create", &empty)?;
        lowers.push(empty.display().to_string());
    }
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lowers.join(":"),
        paths.upper.display(),
        paths.work.display()
    );
    if data.len() > MOUNT_DATA_MAX {
        return Err(Error::Invalid(format!(
            "the image has too many layers ({}) for one overlay mount; squash it into fewer layers",
            layers.len()
        )));
    }
    mount(
        "overlay",
        &paths.merged,
        "overlay",
        MountFlags::empty(),
        data.as_str(),
    )
    .map_err(|e| Error::Mount {
        path: paths.merged.display().to_string(),
        source: e.into(),
    })
}

/// Unmounts the root filesystem if mounted (lazily: a process still inside
/// cannot keep the container from being cleaned up).
pub fn unmount_rootfs(paths: &RootPaths) -> Result<()> {
    if !is_mounted(&paths.merged) {
        return Ok(());
    }
    unmount(&paths.merged, UnmountFlags::DETACH).map_err(|e| Error::Mount {
        path: paths.merged.display().to_string(),
        source: e.into(),
    })
}

/// Whether `path` is a mount point, from /proc/self/mountinfo.
pub fn is_mounted(path: &Path) -> bool {
    let Ok(info) = fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = path.display().to_string();
    info.lines()
        .filter_map(|l| l.split(' ').nth(4))
        .any(|mp| unescape_mount_path(mp) == want)
}

/// mountinfo escapes space, tab, newline and backslash as octal.
fn unescape_mount_path(s: &str) -> String {
    let mut out = String::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            let n = u8::from_str_radix(&s[i + 1..i + 4], 8).unwrap_or(b'?');
            out.push(n as char);
            i += 4;
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}
