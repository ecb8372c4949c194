//! `diff`, `export` and `cp`: a container's filesystem seen from the host.

use super::Context;
use crate::cli::{CpArgs, DiffArgs, ExportArgs};
use crate::error::CliError;

pub fn diff(_ctx: &Context, a: DiffArgs) -> Result<(), CliError> {
    Err(CliError::new(format!(
        "diff of {} is not available in this build",
        a.container
    )))
}

pub fn export(_ctx: &Context, a: ExportArgs) -> Result<(), CliError> {
    Err(CliError::new(format!(
        "export of {} is not available in this build",
        a.container
    )))
}

pub fn cp(_ctx: &Context, a: CpArgs) -> Result<(), CliError> {
    Err(CliError::new(format!(
        "cp {} {} is not available in this build",
        a.src, a.dest
    )))
}
