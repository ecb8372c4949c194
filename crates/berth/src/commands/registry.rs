//! `login`, `logout`, `push`, `pull`.

use super::Context;
use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::error::CliError;

pub fn login(_ctx: &Context, _a: LoginArgs) -> Result<(), CliError> {
    Err(CliError::new("login is not available in this build"))
}

pub fn logout(_ctx: &Context, _a: LogoutArgs) -> Result<(), CliError> {
    Err(CliError::new("logout is not available in this build"))
}

pub fn push(_ctx: &Context, _a: PushArgs) -> Result<(), CliError> {
    Err(CliError::new("push is not available in this build"))
}

pub fn pull(_ctx: &Context, _a: PullArgs) -> Result<(), CliError> {
    Err(CliError::new("pull is not available in this build"))
}
