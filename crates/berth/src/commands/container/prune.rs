//! `container prune`.

use super::Context;
use crate::cli::PruneArgs;
use crate::error::CliError;

pub fn run(_ctx: &Context, _a: PruneArgs) -> Result<(), CliError> {
    Err(CliError::new(
        "container prune is not available in this build",
    ))
}
