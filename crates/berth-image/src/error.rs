use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error("{what} is not a valid tar archive ({source}); check that the file is complete and is a tar, tar.gz or tar.zst")]
    BadTar {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{0} is {1}-compressed, which berth does not read; decompress it first or use gzip or zstd"
    )]
    UnsupportedCompression(String, &'static str),
    #[error("unsafe path {path:?} in layer: {why}")]
    UnsafePath { path: PathBuf, why: &'static str },
    #[error("invalid archive: {0}")]
    InvalidArchive(String),
    #[error("invalid --change {0:?}: {1}")]
    Change(String, String),
    #[error("cannot write archive: {0}")]
    Write(#[source] std::io::Error),
}

pub type Result<T> = std::result::Result<T, Error>;
