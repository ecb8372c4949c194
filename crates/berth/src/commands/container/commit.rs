//! `commit`: a container's changes become a new image layer.

use super::Context;
use crate::cli::CommitArgs;
use crate::error::CliError;

pub fn run(_ctx: &Context, a: CommitArgs) -> Result<(), CliError> {
    Err(CliError::new(format!(
        "commit of {} is not available in this build",
        a.container
    )))
}
