use std::fs;
use std::path::{Path, PathBuf};

use berth_fs::ResultExt;

use crate::error::Result;

/// A private directory under `tmp/` for one operation. Its name starts with the
/// owning process ID so garbage collection can tell live staging from the
/// leftovers of a killed process.
pub struct Staging {
    dir: PathBuf,
}

impl Staging {
    pub(crate) fn new(tmp: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("{}.", std::process::id()))
            .tempdir_in(tmp)
            .at("cannot create staging directory in", tmp)?
            .keep();
        Ok(Self { dir })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// A new empty subdirectory, for one layer or one archive.
    pub fn subdir(&self, name: &str) -> Result<PathBuf> {
        let p = self.dir.join(name);
        fs::create_dir_all(&p).at("cannot create", &p)?;
        Ok(p)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The process ID a staging entry's name starts with.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    name.split('.').next()?.parse().ok()
}
