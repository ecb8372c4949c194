//! One `.dockerignore` pattern: how moby/patternmatcher cleans, checks, classifies
//! and matches it.
//!
//! A pattern is compiled into the cheapest test that gives the same answer as its
//! regular expression (upstream `Pattern.compile`):
//!
//! | class   | example    | test on the slash-separated path             |
//! |---------|------------|----------------------------------------------|
//! | exact   | `abc.def`  | equal to the pattern                         |
//! | prefix  | `dir/**`   | starts with `dir/` (so not `dir` itself)     |
//! | suffix  | `**/foo`   | ends with `/foo`, or is `foo`                |
//! | regexp  | `a*/b`     | Go's regexp `^a[^/]*/b$`                     |

use std::fmt;

use regex::Regex;

use crate::golang;
use crate::re2;

/// A pattern that cannot be used, named as written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    /// A line holding only `!`: an exception with nothing to re-include.
    /// (The wording is Docker's.)
    #[error("illegal exclusion pattern: \"!\"")]
    LoneExclamation,
    /// Rejected by Go's `filepath.Match` syntax check when the list is built.
    #[error(
        "syntax error in pattern {pattern:?}: look for an unclosed `[`, a trailing `\\` \
         or a character range with a missing end"
    )]
    Syntax {
        /// The pattern as cleaned, with its leading `!` if it has one.
        pattern: String,
    },
    /// Passed the syntax check but its regular expression is invalid, e.g. the
    /// reversed range `l-O` in `[Local-Only]`. As in Docker, this is reported
    /// only when the pattern is evaluated against a path.
    #[error("syntax error in pattern {pattern:?}: {reason}")]
    Regexp {
        /// The pattern as cleaned, with its leading `!` if it has one.
        pattern: String,
        /// What Go's regexp parser objects to.
        reason: String,
    },
}

/// A cleaned, compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern without its leading `!`.
    text: String,
    exclusion: bool,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Exact,
    /// Byte prefix (the pattern minus its trailing `**`).
    Prefix(Vec<u8>),
    /// Byte suffix (the pattern minus its leading `**`). Bytes, because Go slices
    /// the string by bytes and a pattern may start with a multi-byte character.
    Suffix(Vec<u8>),
    Regexp(Regex),
    /// The regexp did not compile; every evaluation reports this reason.
    Invalid(String),
}

/// The classification upstream's `compile` makes (see `compile-cases.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MatchType {
    Exact,
    Prefix,
    Suffix,
    Regexp,
}

impl Pattern {
    /// Builds one entry of the list as `patternmatcher.New` does: trim, clean, take
    /// the `!`, syntax-check. `Ok(None)` for a blank entry, which is skipped.
    pub(crate) fn parse(raw: &str) -> Result<Option<Self>, PatternError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = golang::clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(PatternError::LoneExclamation),
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        if golang::filepath_match(&text, ".").is_err() {
            return Err(PatternError::Syntax {
                pattern: display(exclusion, &text),
            });
        }
        let test = match compile(&text) {
            (MatchType::Exact, _) => Test::Exact,
            (MatchType::Prefix, _) => Test::Prefix(text.as_bytes()[..text.len() - 2].to_vec()),
            (MatchType::Suffix, _) => Test::Suffix(text.as_bytes()[2..].to_vec()),
            (MatchType::Regexp, go_regexp) => {
                match re2::translate(&go_regexp)
                    .and_then(|rust| Regex::new(&rust).map_err(|e| re2::Re2Error(e.to_string())))
                {
                    Ok(re) => Test::Regexp(re),
                    Err(e) => Test::Invalid(e.0),
                }
            }
        };
        Ok(Some(Self {
            text,
            exclusion,
            test,
        }))
    }

    /// The cleaned pattern, without the `!` of an exception.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this is an exception (`!pattern`), which re-includes what it matches.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// Whether the pattern matches exactly this path (not its parents).
    pub(crate) fn is_match(&self, path: &str) -> Result<bool, PatternError> {
        let path_bytes = path.as_bytes();
        Ok(match &self.test {
            Test::Exact => path == self.text,
            Test::Prefix(prefix) => path_bytes.starts_with(prefix),
            Test::Suffix(suffix) => {
                // `**/foo` also matches `foo` itself.
                path_bytes.ends_with(suffix)
                    || (suffix.first() == Some(&b'/') && path_bytes == &suffix[1..])
            }
            Test::Regexp(re) => re.is_match(path),
            Test::Invalid(reason) => {
                return Err(PatternError::Regexp {
                    pattern: self.to_string(),
                    reason: reason.clone(),
                })
            }
        })
    }

    /// The error evaluating this pattern would report, if any.
    pub(crate) fn check(&self) -> Result<(), PatternError> {
        self.is_match("").map(drop)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

fn display(exclusion: bool, text: &str) -> String {
    if exclusion {
        format!("!{text}")
    } else {
        text.to_string()
    }
}

/// Upstream `Pattern.compile` for a `/`-separated system: the match class and the
/// Go regexp it builds (the regexp is only meaningful for [`MatchType::Regexp`]).
pub(crate) fn compile(pattern: &str) -> (MatchType, String) {
    // Characters that are special in a regexp but plain in a glob.
    const ESCAPE: &str = ".+()|{}$";
    let mut regexp = String::from("^");
    let mut match_type = MatchType::Exact;
    let mut chars = pattern.chars().peekable();
    // Go's text/scanner, which upstream reads the pattern with, skips a byte
    // order mark at the very start.
    chars.next_if_eq(&'\u{feff}');
    let mut i = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                // `**/` is treated as `**`.
                chars.next_if_eq(&'/');
                if chars.peek().is_none() {
                    // `**` at the end: like .gitignore, accept everything below.
                    if match_type == MatchType::Exact {
                        match_type = MatchType::Prefix;
                    } else {
                        regexp.push_str(".*");
                        match_type = MatchType::Regexp;
                    }
                } else {
                    // Any number of directories, including none.
                    regexp.push_str("(.*/)?");
                    match_type = MatchType::Regexp;
                }
                if i == 0 {
                    match_type = MatchType::Suffix;
                }
            }
            '*' => {
                regexp.push_str("[^/]*");
                match_type = MatchType::Regexp;
            }
            '?' => {
                regexp.push_str("[^/]");
                match_type = MatchType::Regexp;
            }
            c if ESCAPE.contains(c) => {
                regexp.push('\\');
                regexp.push(c);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    regexp.push('\\');
                    regexp.push(next);
                    match_type = MatchType::Regexp;
                }
                // A trailing backslash is kept as is (it then escapes the `$`).
                None => regexp.push('\\'),
            },
            '[' | ']' => {
                regexp.push(ch);
                match_type = MatchType::Regexp;
            }
            _ => regexp.push(ch),
        }
        i += 1;
    }
    if match_type == MatchType::Regexp {
        regexp.push('$');
    }
    (match_type, regexp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(raw: &str) -> Pattern {
        Pattern::parse(raw).unwrap().unwrap()
    }

    #[test]
    fn parse_trims_cleans_and_flags_exceptions() {
        assert!(Pattern::parse("   ").unwrap().is_none());
        let p = pattern("  !docs/README.md  ");
        assert!(p.is_exclusion());
        assert_eq!(p.as_str(), "docs/README.md");
        assert_eq!(p.to_string(), "!docs/README.md");
        assert_eq!(pattern("docs/").as_str(), "docs");
        assert_eq!(
            Pattern::parse("!").unwrap_err(),
            PatternError::LoneExclamation
        );
        assert_eq!(
            Pattern::parse("!a[").unwrap_err(),
            PatternError::Syntax {
                pattern: "!a[".into()
            }
        );
    }

    #[test]
    fn invalid_regexp_is_reported_on_every_match() {
        let p = pattern("[Local-Only]/");
        for _ in 0..2 {
            let err = p.is_match("x").unwrap_err();
            assert_eq!(
                err.to_string(),
                "syntax error in pattern \"[Local-Only]\": invalid character class range: `l-O`"
            );
        }
    }

    #[test]
    fn quirks_kept_from_upstream() {
        // `a**` is a prefix test, so it also matches `abc`.
        assert!(pattern("a**").is_match("abc").unwrap());
        // `**file` is a plain suffix test.
        assert!(pattern("**file").is_match("dir/xfile").unwrap());
        // A trailing backslash escapes the regexp's final `$`.
        let p = pattern("a*\\");
        assert!(p.is_match("ab$").unwrap());
        assert!(!p.is_match("ab").unwrap());
        // `[*]` pastes `[^/]*` inside the class: Go reads `[[^/]` then `*` then `]`.
        let p = pattern("[*]");
        assert!(p.is_match("^]").unwrap());
        assert!(!p.is_match("*").unwrap());
    }
}
