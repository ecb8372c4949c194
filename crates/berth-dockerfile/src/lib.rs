//! Dockerfile syntax for berth, compatible with BuildKit's Dockerfile frontend.
//!
//! The crate is pure: it takes `&str` and returns data, with no I/O. Its layers follow
//! BuildKit's packages, and the build pipeline consumes them in this order:
//!
//! * [`parse`] (BuildKit `frontend/dockerfile/parser`): text to a [`Node`] tree with
//!   [`Span`]s, handling parser directives, continuation lines with either escape
//!   token, heredocs, JSON (exec) versus shell form and instruction flags.
//!   [`Node::dump`] prints BuildKit's test format.
//! * [`shell`] (BuildKit `frontend/dockerfile/shell`): quotes, escapes and `$VAR`
//!   expansion with the `${VAR:-x}` family of operators.
//! * [`instructions`] (BuildKit `frontend/dockerfile/instructions`): the typed
//!   [`Instruction`] model with parsed flags, and [`Dockerfile`], the stages.
//! * [`stages`]: the stage graph, how `FROM <stage>`, `COPY --from` and
//!   `RUN --mount=from=` connect stages, and which stages a `--target` needs.
//!
//! Where BuildKit has a quirk, berth keeps it so a Dockerfile means the same to both;
//! the doc comments name each one.

mod ast;
mod directives;
mod error;
pub mod instructions;
mod json;
mod parser;
pub mod shell;
pub mod stages;
mod unicode;
mod unicode_tables;

#[cfg(test)]
mod conformance_tests;

pub use ast::{Directive, Heredoc, Node, ParseResult, Span, Warning};
pub use directives::{detect_syntax, parse_directive, DirectiveParser, DirectiveValue};
pub use error::{DirectiveError, HeredocError, ParseError};
pub use instructions::{parse_dockerfile, Dockerfile, Instruction, InstructionError};
pub use parser::{
    chomp_heredoc_content, parse, parse_heredoc, DEFAULT_ESCAPE_TOKEN, MAX_LINE_LENGTH,
    MAX_ONBUILD_NESTING,
};
pub use stages::{StageGraph, StageGraphError};
pub use unicode::{go_quote, go_to_lower, go_to_upper};
