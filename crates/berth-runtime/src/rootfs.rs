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

/// Set to `copy` to use the copy snapshotter even where overlayfs works.
pub const SNAPSHOTTER_ENV: &str = "BERTH_SNAPSHOTTER";
/// Marks a root filesystem made by copying (it is a plain directory).
const COPY_MARKER: &str = ".berth-copied";

/// Whether the copy snapshotter is asked for.
pub fn copy_requested() -> bool {
    std::env::var(SNAPSHOTTER_ENV).is_ok_and(|v| v == "copy")
}

/// Mounts the overlay at `paths.merged`. `layers` are the image's layer trees,
/// bottom first. An image with no layers gets an empty lower directory. Where
/// the kernel has no overlayfs, the layers are copied into `merged` instead
/// (once; the container then writes there directly).
pub fn mount_rootfs(layers: &[PathBuf], paths: &RootPaths) -> Result<()> {
    for d in [&paths.upper, &paths.work, &paths.merged] {
        fs::create_dir_all(d).at("cannot create", d)?;
    }
    if is_mounted(&paths.merged) || paths.merged.join(COPY_MARKER).exists() {
        return Ok(());
    }
    if copy_requested() {
        return copy_rootfs(layers, &paths.merged);
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
    let mounted = if data.len() <= MOUNT_DATA_MAX {
        mount(
            "overlay",
            &paths.merged,
            "overlay",
            MountFlags::empty(),
            data.as_str(),
        )
    } else {
        // Past one page of options the layers go one by one (Linux 6.8+),
        // so the limit is overlayfs's own stack depth (500), not the length
        // of the data root's path times the layer count.
        match mount_layer_by_layer(&lowers, paths) {
            Err(rustix::io::Errno::INVAL) => {
                return Err(Error::Invalid(format!(
                    "the image has too many layers ({}) for one overlay mount on this kernel (Linux 6.8 or later mounts up to 500); squash it into fewer layers",
                    layers.len()
                )))
            }
            other => other,
        }
    };
    match mounted {
        Ok(()) => Ok(()),
        // No overlayfs in this kernel: fall back to copying.
        Err(rustix::io::Errno::NODEV) => copy_rootfs(layers, &paths.merged),
        Err(e) => Err(Error::Mount {
            path: paths.merged.display().to_string(),
            source: e.into(),
        }),
    }
}

/// The overlay through the new mount API, each lower layer given on its
/// own (`lowerdir+`), topmost first as in `lowerdir`.
fn mount_layer_by_layer(lowers: &[String], paths: &RootPaths) -> rustix::io::Result<()> {
    use rustix::fd::AsFd;
    use rustix::mount::{
        fsconfig_create, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags,
        FsOpenFlags, MountAttrFlags, MoveMountFlags,
    };
    let fs = fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for l in lowers {
        fsconfig_set_string(fs.as_fd(), "lowerdir+", l.as_str())?;
    }
    fsconfig_set_string(fs.as_fd(), "upperdir", &paths.upper)?;
    fsconfig_set_string(fs.as_fd(), "workdir", &paths.work)?;
    fsconfig_create(fs.as_fd())?;
    let mnt = fsmount(
        fs.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::empty(),
    )?;
    move_mount(
        mnt.as_fd(),
        "",
        rustix::fs::CWD,
        &paths.merged,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
}

/// The copy snapshotter: applies the layers bottom up into `merged`, honouring
/// their whiteouts (0/0 character devices delete, the opaque xattr empties a
/// directory) as overlayfs would present them.
fn copy_rootfs(layers: &[PathBuf], merged: &Path) -> Result<()> {
    let err = |e: std::io::Error| Error::Mount {
        path: merged.display().to_string(),
        source: e,
    };
    for layer in layers {
        apply_layer_dir(layer, merged).map_err(err)?;
    }
    fs::write(merged.join(COPY_MARKER), b"").map_err(err)?;
    Ok(())
}

fn apply_layer_dir(src: &Path, dst: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let from = entry.path();
        let to = dst.join(entry.file_name());
        let meta = fs::symlink_metadata(&from)?;
        if meta.file_type().is_char_device() && meta.rdev() == 0 {
            remove_any(&to)?;
            continue;
        }
        if meta.is_dir() {
            let opaque = berth_fs::xattr::is_overlay_opaque(&from);
            let existing_dir = fs::symlink_metadata(&to).is_ok_and(|m| m.is_dir());
            if !existing_dir || opaque {
                remove_any(&to)?;
                fs::create_dir(&to)?;
            }
            apply_layer_dir(&from, &to)?;
            crate::volume::copy_metadata_of(&from, &to)?;
        } else {
            remove_any(&to)?;
            crate::volume::copy_entry(&from, &to)?;
        }
    }
    Ok(())
}

fn remove_any(p: &Path) -> std::io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(_) => Ok(()),
    }
}

/// Unmounts the root filesystem if mounted (lazily: a process still inside
/// cannot keep the container from being cleaned up).
pub fn unmount_rootfs(paths: &RootPaths) -> Result<()> {
    // A copied root stays as it is: it is the container's writable layer.
    if !is_mounted(&paths.merged) {
        return Ok(());
    }
    unmount(&paths.merged, UnmountFlags::DETACH).map_err(|e| Error::Mount {
        path: paths.merged.display().to_string(),
        source: e.into(),
    })
}

/// Whether `path` is a mount point.
pub fn is_mounted(path: &Path) -> bool {
    berth_fs::is_mount_point(path)
}
