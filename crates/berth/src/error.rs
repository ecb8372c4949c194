//! The binary's error: a message for the user and Docker's exit status.

use std::fmt;
use std::io;

/// Exit status of a failed command, as the `docker` CLI uses them.
pub mod status {
    /// A command failed (what `docker` returns for daemon errors).
    pub const FAILURE: i32 = 1;
    /// berth itself failed, or the command line is wrong.
    pub const ENGINE: i32 = 125;
}

#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub status: i32,
    /// Already reported (e.g. per-argument errors of `rmi`): only exit.
    pub silent: bool,
}

impl CliError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: status::FAILURE,
            silent: false,
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            status: status::ENGINE,
            silent: false,
        }
    }

    /// Exit with `status` without printing anything more.
    pub fn exit(status: i32) -> Self {
        Self {
            message: String::new(),
            status,
            silent: true,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

macro_rules! from_display {
    ($($t:ty),*) => {$(
        impl From<$t> for CliError {
            fn from(e: $t) -> Self {
                Self::new(e.to_string())
            }
        }
    )*};
}
from_display!(
    berth_store::Error,
    berth_image::Error,
    berth_fs::Error,
    berth_oci::ReferenceError,
    berth_oci::DigestError
);

impl From<berth_runtime::Error> for CliError {
    fn from(e: berth_runtime::Error) -> Self {
        Self {
            status: e.exit_status(),
            message: e.to_string(),
            silent: false,
        }
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            // The reader went away (`berth images | head`): not a failure.
            return Self::exit(0);
        }
        Self::new(e.to_string())
    }
}
