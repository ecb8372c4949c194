//! Why a build stopped. Every variant names the problem and what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{file}: {source}")]
    Dockerfile {
        file: String,
        #[source]
        source: berth_dockerfile::InstructionError,
    },
    #[error("{file}: {source}")]
    Stages {
        file: String,
        #[source]
        source: berth_dockerfile::StageGraphError,
    },
    #[error("{file}:{line}: {message}")]
    Instruction {
        file: String,
        line: usize,
        message: String,
    },
    #[error("base image {0:?} is not in the local store; import, load, pull or build it first")]
    NoBaseImage(String),
    #[error("build context {}: {message}", path.display())]
    Context { path: PathBuf, message: String },
    /// A `RUN` exited with a status other than 0.
    #[error("process \"{command}\" did not complete successfully: exit code: {code}")]
    StepFailed { command: String, code: i32 },
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Runtime(#[from] berth_runtime::Error),
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error("cannot write the layer: {0}")]
    Layer(#[from] berth_image::diff::Error),
    #[error("{what} {}: {source}", path.display())]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The user stopped the build.
    #[error("build canceled")]
    Interrupted,
    /// Another stage of the same build failed first.
    #[error("canceled: another stage failed")]
    Canceled,
    #[error("the build policy refused the image: {0}")]
    Policy(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Attaches what was being done and to which path to an I/O error.
pub(crate) trait IoContext<T> {
    fn io(self, what: &'static str, path: &std::path::Path) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn io(self, what: &'static str, path: &std::path::Path) -> Result<T> {
        self.map_err(|source| Error::Io {
            what,
            path: path.to_path_buf(),
            source,
        })
    }
}

impl Error {
    /// The exit status of `berth build` for this error: Docker's CLI exits 1
    /// for a failed build, 125 for a command line or engine problem.
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::Store(_) | Error::Fs(_) | Error::Layer(_) => 125,
            // 128 + SIGINT, as a shell reports a Ctrl-C.
            Error::Interrupted => 130,
            _ => 1,
        }
    }
}
