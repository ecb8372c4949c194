//! The build context: what `berth build` sends from a context directory.
//!
//! ```text
//! .dockerignore ──parse_ignore_file──▶ patterns ──Filter──▶ BuildContext::walk ──▶ Entry…
//!                                                                │                   │
//!                                                   BuildContext::open     context_digest (cache keys)
//!                                                                                    │
//!                                                                            audit (lint, report)
//! ```
//!
//! Compatibility is the point: the same `.dockerignore` must select the same
//! files as Docker. Reading follows moby/patternmatcher's `ignorefile.ReadAll`,
//! matching its `MatchesOrParentMatches`, and the walk tonistiigi/fsutil's filtered
//! walk, which BuildKit uses to send a context. Conformance data transcribed from
//! those projects lives in `shared/conformance/dockerignore` and is tested here.
//!
//! Library code never prints; every error names the path or pattern it is about.

mod checksum;
mod golang;
mod hygiene;
mod ignorefile;
mod matcher;
mod pattern;
mod re2;
mod walk;

#[cfg(test)]
mod conformance;

pub use checksum::{select, ChecksumError};
pub use golang::{clean as clean_path, filepath_match, BadPattern};
pub use hygiene::{audit, Concern, Finding, Rule, RULES};
pub use ignorefile::{find_ignore_file, parse_ignore_file, read_ignore_file, IgnoreFileError};
pub use matcher::Matcher;
pub use pattern::{Pattern, PatternError};
pub use walk::{BuildContext, Entry, FileKind, Filter, Walk, WalkError};
