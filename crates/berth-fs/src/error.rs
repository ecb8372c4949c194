use std::io;
use std::path::{Path, PathBuf};

/// An I/O failure together with the path and the operation that failed.
#[derive(Debug, thiserror::Error)]
#[error("{op} {}: {source}", path.display())]
pub struct Error {
    /// What was being done, e.g. "cannot create".
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

pub type Result<T> = std::result::Result<T, Error>;

/// Attaches a path and operation to a bare `io::Result`.
pub trait ResultExt<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T>;
}

impl<T> ResultExt<T> for io::Result<T> {
    fn at(self, op: &'static str, path: &Path) -> Result<T> {
        self.map_err(|source| Error {
            op,
            path: path.to_path_buf(),
            source,
        })
    }
}
