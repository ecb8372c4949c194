use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

use crate::error::{Result, ResultExt};

/// An advisory whole-file lock (flock), released when dropped or when the process
/// dies, so a killed berth never leaves the store locked.
pub struct FileLock {
    _file: File,
}

impl FileLock {
    pub fn exclusive(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockExclusive)
    }

    pub fn shared(path: &Path) -> Result<Self> {
        Self::take(path, FlockOperation::LockShared)
    }

    /// The exclusive lock if nobody holds the file locked now; `None` if
    /// somebody does.
    pub fn try_exclusive(path: &Path) -> Result<Option<Self>> {
        match Self::take(path, FlockOperation::NonBlockingLockExclusive) {
            Ok(l) => Ok(Some(l)),
            Err(e) if e.source.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn take(path: &Path, op: FlockOperation) -> Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(path)
            .at("cannot open lock file", path)?;
        flock(&file, op)
            .map_err(std::io::Error::from)
            .at("cannot lock", path)?;
        Ok(Self { _file: file })
    }
}
