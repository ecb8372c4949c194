//! A build step's root filesystem: the overlay of a chain of layers with a
//! fresh upper directory in staging, unmounted on drop so a failed step never
//! leaves a mount behind (and staging cleanup never reaches into layers).

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use berth_oci::Digest;
use berth_runtime::rootfs::{self, RootPaths};
use berth_store::Store;

use crate::error::{Error, IoContext, Result};

pub struct Snapshot {
    pub paths: RootPaths,
    /// The layer trees, bottom first.
    pub lowers: Vec<PathBuf>,
    mounted: bool,
}

impl Snapshot {
    /// Mounts `chain` (chain IDs, bottom first) at `dir/merged`.
    pub fn mount(store: &Store, chain: &[Digest], dir: &Path) -> Result<Self> {
        let lowers = chain.iter().map(|c| store.layout().layer_diff(c)).collect();
        Self::mount_lowers(lowers, dir)
    }

    /// Mounts layer trees (bottom first) at `dir/merged`.
    pub fn mount_lowers(lowers: Vec<PathBuf>, dir: &Path) -> Result<Self> {
        if rootfs::copy_requested() {
            return Err(Error::Invalid(
                "berth build needs overlayfs; unset BERTH_SNAPSHOTTER=copy".into(),
            ));
        }
        let paths = RootPaths::new(dir);
        rootfs::mount_rootfs(&lowers, &paths)?;
        Ok(Self {
            paths,
            lowers,
            mounted: true,
        })
    }

    pub fn merged(&self) -> &Path {
        &self.paths.merged
    }

    pub fn upper(&self) -> &Path {
        &self.paths.upper
    }

    pub fn unmount(&mut self) -> Result<()> {
        if std::mem::take(&mut self.mounted) {
            rootfs::unmount_rootfs(&self.paths)?;
        }
        Ok(())
    }

    /// For each of `points` (absolute paths in the container), the outermost
    /// ancestor-or-self that does not exist yet: what the runtime will create
    /// to mount something there, and what [`Self::remove_created`] takes back.
    pub fn missing(&self, points: &[String]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for p in points {
            let mut rel = PathBuf::new();
            for c in Path::new(p).components() {
                if let Component::Normal(n) = c {
                    rel.push(n);
                    if fs::symlink_metadata(self.merged().join(&rel)).is_err() {
                        if !out.contains(&rel) {
                            out.push(rel.clone());
                        }
                        break;
                    }
                }
            }
        }
        out
    }

    /// After unmounting: removes from the upper dir the mount points the step
    /// made (when they hold nothing but empty files and directories), then
    /// parent directories overlayfs copied up only to hold them.
    pub fn remove_created(&self, created: &[PathBuf]) -> Result<()> {
        for rel in created {
            let path = self.upper().join(rel);
            if fs::symlink_metadata(&path).is_ok() && only_empty(&path) {
                if path.is_dir() {
                    fs::remove_dir_all(&path).io("cannot remove", &path)?;
                } else {
                    fs::remove_file(&path).io("cannot remove", &path)?;
                }
            }
            let mut parent = rel.parent();
            while let Some(p) = parent.filter(|p| !p.as_os_str().is_empty()) {
                if !self.copied_up_unchanged(p) {
                    break;
                }
                let dir = self.upper().join(p);
                fs::remove_dir(&dir).io("cannot remove", &dir)?;
                parent = p.parent();
            }
        }
        Ok(())
    }

    /// An empty upper directory with the owner and mode of the same directory
    /// in the layers below: overlayfs' copy-up, not a change of the step.
    fn copied_up_unchanged(&self, rel: &Path) -> bool {
        let upper = self.upper().join(rel);
        let Ok(meta) = fs::symlink_metadata(&upper) else {
            return false;
        };
        if !meta.is_dir() || fs::read_dir(&upper).map_or(true, |mut d| d.next().is_some()) {
            return false;
        }
        if berth_fs::xattr::is_overlay_opaque(&upper) {
            return false;
        }
        self.lowers.iter().rev().find_map(|l| {
            let m = fs::symlink_metadata(l.join(rel)).ok()?;
            Some(
                m.is_dir()
                    && m.mode() == meta.mode()
                    && m.uid() == meta.uid()
                    && m.gid() == meta.gid(),
            )
        }) == Some(true)
    }

    /// Whether the upper dir holds no change at all.
    pub fn upper_is_empty(&self) -> bool {
        fs::read_dir(self.upper()).map_or(true, |mut d| d.next().is_none())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        let _ = self.unmount();
    }
}

/// True for an empty file, or a directory tree of only empty files and
/// directories.
fn only_empty(path: &Path) -> bool {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return true;
    };
    if meta.is_dir() {
        fs::read_dir(path).is_ok_and(|d| d.flatten().all(|e| only_empty(&e.path())))
    } else {
        meta.is_file() && meta.len() == 0
    }
}
