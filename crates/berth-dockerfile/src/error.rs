//! Errors from parsing a Dockerfile into its syntax tree.

use crate::shell::ExpandError;
use crate::unicode::go_quote;

/// Why a Dockerfile could not be parsed. Every message starts with the (1-based) line
/// it concerns, so a user can go straight to it; [`ParseError::line`] gives the number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The file holds only comments, parser directives and blank lines.
    #[error("line {line}: file with no instructions")]
    NoInstructions {
        /// The last line of the file (1 for an empty file).
        line: usize,
    },
    /// A parser directive (`# escape=`, `# syntax=`, `# check=`) appears twice.
    #[error("line {line}: only one {name} parser directive can be used")]
    DuplicateDirective {
        /// Line of the repeated directive.
        line: usize,
        /// The directive name, lowercased.
        name: String,
    },
    /// `# escape=` names something other than `\` or `` ` ``.
    #[error("line {line}: invalid escape token '{token}' does not match ` or \\")]
    InvalidEscapeToken {
        /// Line of the directive.
        line: usize,
        /// The token given.
        token: String,
    },
    /// One physical line is longer than BuildKit's scanner accepts (64 KiB).
    #[error("line {line}: dockerfile line greater than max allowed size of {max}")]
    LineTooLong {
        /// The offending line.
        line: usize,
        /// The largest accepted length in bytes, 65535.
        max: usize,
    },
    /// `ENV KEY` or `LABEL KEY` in the old `KEY value` form without a value.
    #[error("line {line}: {instruction} must have two arguments")]
    MissingValue {
        /// First line of the instruction.
        line: usize,
        /// Last line of the instruction.
        end_line: usize,
        /// `ENV` or `LABEL`.
        instruction: &'static str,
    },
    /// A word of `ENV a=b c` or `LABEL a=b c` without `=`.
    #[error(
        "line {line}: Syntax error - can't find = in {}. Must be of the form: name=value",
        go_quote(.word)
    )]
    MissingEquals {
        /// First line of the instruction.
        line: usize,
        /// Last line of the instruction.
        end_line: usize,
        /// The word without `=`.
        word: String,
    },
    /// An exec-form (JSON) array holding something other than strings. BuildKit does
    /// not fall back to shell form for this; it is a hard error.
    #[error("line {line}: when using JSON array syntax, arrays must be comprised of strings only")]
    NotStringArray {
        /// First line of the instruction.
        line: usize,
        /// Last line of the instruction.
        end_line: usize,
    },
    /// `ONBUILD ONBUILD …` nested deeper than berth accepts (see [`crate::MAX_ONBUILD_NESTING`]).
    #[error("line {line}: ONBUILD nested more than {max} levels deep")]
    OnbuildTooDeep {
        /// First line of the instruction.
        line: usize,
        /// The limit.
        max: usize,
    },
    /// The input ended before a heredoc's terminator line.
    #[error("line {line}: unterminated heredoc {}", go_quote(.name))]
    UnterminatedHeredoc {
        /// First line of the instruction that opened the heredoc.
        line: usize,
        /// Last line of the file.
        end_line: usize,
        /// The terminator that was expected.
        name: String,
    },
    /// A heredoc word (`<<"EOF`) could not be lexed.
    #[error("line {line}: {source}")]
    Heredoc {
        /// First line of the instruction.
        line: usize,
        /// Last line of the instruction.
        end_line: usize,
        /// The lexing problem.
        source: HeredocError,
    },
}

impl ParseError {
    /// The 1-based line the error concerns (the first line of a multi-line instruction).
    pub fn line(&self) -> usize {
        match self {
            Self::NoInstructions { line }
            | Self::DuplicateDirective { line, .. }
            | Self::InvalidEscapeToken { line, .. }
            | Self::LineTooLong { line, .. }
            | Self::MissingValue { line, .. }
            | Self::MissingEquals { line, .. }
            | Self::NotStringArray { line, .. }
            | Self::OnbuildTooDeep { line, .. }
            | Self::UnterminatedHeredoc { line, .. }
            | Self::Heredoc { line, .. } => *line,
        }
    }

    /// The last line the error concerns.
    pub fn end_line(&self) -> usize {
        match self {
            Self::MissingValue { end_line, .. }
            | Self::MissingEquals { end_line, .. }
            | Self::NotStringArray { end_line, .. }
            | Self::UnterminatedHeredoc { end_line, .. }
            | Self::Heredoc { end_line, .. } => *end_line,
            other => other.line(),
        }
    }
}

/// Why a heredoc word (`<<EOF`, `<<'EOF'`, `<<-"EOF"`) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeredocError {
    /// The word has an unterminated quote or another lexing error.
    #[error("invalid heredoc word: {0}")]
    Lex(#[from] ExpandError),
    /// Lexing with and without quotes gave a different number of words.
    #[error("internal lexing of heredoc produced inconsistent results: {0}")]
    Inconsistent(String),
}

/// Why a parser directive line was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// The same directive twice.
    #[error("only one {0} parser directive can be used")]
    Duplicate(String),
    /// `# escape=` with something other than `\` or `` ` ``.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    InvalidEscapeToken(String),
}

impl DirectiveError {
    pub(crate) fn at(self, line: usize) -> ParseError {
        match self {
            Self::Duplicate(name) => ParseError::DuplicateDirective { line, name },
            Self::InvalidEscapeToken(token) => ParseError::InvalidEscapeToken { line, token },
        }
    }
}
