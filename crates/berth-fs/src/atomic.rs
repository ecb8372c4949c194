use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Result, ResultExt};

/// Temporary files start with this and the writer's PID
/// (`.tmp-<pid>-<random>`), so a cleanup can tell a write in flight from the
/// leftover of a killed process.
pub const TEMP_PREFIX: &str = ".tmp-";

/// The PID that wrote a temporary file, from its name.
pub fn temp_owner(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// Whether process `pid` still runs: the owner of a temporary file or a
/// staging directory, before they are taken for leftovers.
pub fn process_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A file written under a temporary name in `tmp_dir` that appears at its final
/// path only on [`AtomicFile::commit`]. Dropping it uncommitted removes the temp file.
pub struct AtomicFile {
    file: Option<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// `tmp_dir` must be on the same filesystem as the final destination so that
    /// the commit is a rename, not a copy.
    pub fn new_in(tmp_dir: &Path) -> Result<Self> {
        let file = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .tempfile_in(tmp_dir)
            .at("cannot create a temporary file in", tmp_dir)?;
        Ok(Self { file: Some(file) })
    }

    pub fn path(&self) -> &Path {
        self.file.as_ref().expect("present until commit").path()
    }

    pub fn file_mut(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("present until commit")
            .as_file_mut()
    }

    /// Flushes the data to disk, renames it to `dest` and syncs the directory, so
    /// the new name survives a power cut.
    pub fn commit(mut self, dest: &Path) -> Result<()> {
        let file = self.file.take().expect("present until commit");
        file.as_file().sync_all().at("cannot sync", file.path())?;
        let tmp_path = file.path().to_path_buf();
        file.persist(dest)
            .map_err(|e| e.error)
            .at("cannot rename into place", &tmp_path)?;
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        fsync_dir(parent)?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file_mut().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file_mut().flush()
    }
}

/// Writes `data` to `dest` atomically, staging it in `dest`'s own directory.
pub fn write_atomic(dest: &Path, data: &[u8]) -> Result<()> {
    let dir: PathBuf = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut f = AtomicFile::new_in(&dir)?;
    f.write_all(data).at("cannot write", &dir)?;
    f.commit(dest)
}

/// [`write_atomic`] with the file's permission bits set before it appears,
/// for files other users read (a container's /etc/hosts).
pub fn write_atomic_mode(dest: &Path, data: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir: PathBuf = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut f = AtomicFile::new_in(&dir)?;
    f.write_all(data).at("cannot write", &dir)?;
    f.file_mut()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .at("cannot set mode of", &dir)?;
    f.commit(dest)
}

/// Makes a directory's entries (creations, renames) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .at("cannot sync directory", dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut f = AtomicFile::new_in(dir.path()).unwrap();
            f.write_all(b"half").unwrap();
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn commit_replaces_content() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("x");
        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
