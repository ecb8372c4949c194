//! The check functions of the rules in [`crate::catalog`], by subject.

pub(crate) mod context;
pub(crate) mod image;
pub(crate) mod instructions;
pub(crate) mod run;
pub(crate) mod syntax;
