//! `berth lint`.

use super::Context;
use crate::cli::LintArgs;
use crate::error::CliError;

pub fn run(_ctx: &Context, _a: LintArgs) -> Result<(), CliError> {
    Err(CliError::new("lint is not available in this build"))
}
