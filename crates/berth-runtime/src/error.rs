/// Errors of container setup. `exit_status` maps them to Docker's codes: 127
/// when the command is not found, 126 when it cannot be invoked, 125 otherwise.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(
        "failed to create task for container: exec: \"{0}\": executable file not found in $PATH"
    )]
    NotFound(String),
    #[error("failed to create task for container: exec: \"{0}\": permission denied")]
    NotExecutable(String),
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoSuchUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoSuchGroup(String),
    #[error(
        "no command specified: the image has no CMD or ENTRYPOINT; give one after the image name"
    )]
    NoCommand,
    #[error("invalid signal {0:?}; use a name such as SIGTERM or TERM, or a number")]
    BadSignal(String),
    #[error("cannot mount the container's root filesystem at {path}: {source}")]
    Mount {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container runtime: {0}")]
    Runtime(String),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::NotFound(_) => 127,
            Error::NotExecutable(_) => 126,
            _ => 125,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
