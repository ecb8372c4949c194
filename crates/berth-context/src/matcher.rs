//! An ordered `.dockerignore` pattern list and the question it answers: is this
//! path excluded from the build context?
//!
//! Semantics are moby/patternmatcher's `MatchesOrParentMatches`: patterns apply in
//! order, the last one that matches the path **or one of its parent directories**
//! wins, and an exception (`!pattern`) re-includes what it matches. A pattern is
//! only evaluated when it could flip the current answer, which is why an invalid
//! pattern may go unnoticed until some path reaches it (as in Docker).

use crate::golang;
use crate::pattern::{Pattern, PatternError};

/// A compiled `.dockerignore` pattern list.
///
/// [`Matcher::matches`] answers for one path in isolation. The context walk
/// ([`crate::BuildContext::walk`]) instead carries each directory's per-pattern
/// results down to its children, as both of Docker's context senders do
/// (patternmatcher's `MatchesUsingParentResults`). The two agree except when a
/// pattern matching a directory was skipped for it because it could not change
/// that directory's answer: `["d/*", "!d"]` leaves `d/x` excluded in the walk
/// (and in Docker) while `matches("d/x")` is false.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// Compiles patterns as `patternmatcher.New` does: each is trimmed and cleaned,
    /// blank ones are dropped, a leading `!` makes an exception, and each is
    /// syntax-checked. Patterns usually come from [`crate::parse_ignore_file`].
    pub fn new<I>(patterns: I) -> Result<Self, PatternError>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut matcher = Self::default();
        for raw in patterns {
            if let Some(pattern) = Pattern::parse(raw.as_ref())? {
                matcher.exclusions |= pattern.is_exclusion();
                matcher.patterns.push(pattern);
            }
        }
        Ok(matcher)
    }

    /// Whether `path` (slash-separated, relative to the context root) is excluded.
    ///
    /// The path is cleaned first (`./a/` is `a`), and the context root (`.` or the
    /// empty path) is never excluded, as in patternmatcher's package-level
    /// `MatchesOrParentMatches`.
    pub fn matches(&self, path: &str) -> Result<bool, PatternError> {
        let path = golang::clean(path);
        if path == "." {
            return Ok(false);
        }
        self.matches_or_parent_matches(&path)
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception (`!pattern`).
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether the list has no patterns (so nothing is excluded).
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Reports the first pattern whose regular expression is invalid.
    ///
    /// Docker accepts such a list and fails only when the pattern is evaluated,
    /// which may be never (an exception at the top of the list is never
    /// evaluated). A linter can use this to warn early; a build should not fail
    /// on it, to stay compatible.
    pub fn validate(&self) -> Result<(), PatternError> {
        self.patterns.iter().try_for_each(Pattern::check)
    }

    /// patternmatcher's `PatternMatcher.MatchesOrParentMatches` on an already
    /// clean path.
    fn matches_or_parent_matches(&self, path: &str) -> Result<bool, PatternError> {
        let mut matched = false;
        for pattern in &self.patterns {
            // Only a pattern that could change the answer is evaluated.
            if pattern.is_exclusion() != matched {
                continue;
            }
            let hit = pattern.is_match(path)? || matches_a_parent(pattern, path);
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }

    /// patternmatcher's `MatchesUsingParentResults`, which is what both of
    /// Docker's context senders use while walking (fsutil for BuildKit, the
    /// archive package for the classic builder).
    ///
    /// `parent` holds, per pattern, whether the parent directory's evaluation
    /// found the pattern matching; `None` for entries at the context root, which
    /// are then evaluated as [`Self::matches`] would. When `info` is given it is
    /// filled with this path's per-pattern results, for its children.
    ///
    /// See the type's documentation for how this differs from [`Self::matches`].
    pub(crate) fn matches_using_parent(
        &self,
        path: &str,
        parent: Option<&[bool]>,
        mut info: Option<&mut Vec<bool>>,
    ) -> Result<bool, PatternError> {
        if let Some(info) = info.as_deref_mut() {
            info.clear();
            info.resize(self.patterns.len(), false);
        }
        let mut matched = false;
        for (i, pattern) in self.patterns.iter().enumerate() {
            // A pattern the parent matched applies whatever the current answer.
            let mut hit = parent.is_some_and(|p| p.get(i).copied().unwrap_or(false));
            if !hit {
                if pattern.is_exclusion() != matched {
                    continue;
                }
                hit = pattern.is_match(path)?;
                if !hit && parent.is_none() {
                    hit = matches_a_parent(pattern, path);
                }
            }
            if let Some(info) = info.as_deref_mut() {
                info[i] = hit;
            }
            if hit {
                matched = !pattern.is_exclusion();
            }
        }
        Ok(matched)
    }
}

/// Whether `pattern` matches a parent directory of `path`: `a`, `a/b`, ... up to
/// Go's `filepath.Dir(path)`. Errors count as no match, as upstream (the path
/// itself was evaluated first, so an invalid pattern has already failed).
pub(crate) fn matches_a_parent(pattern: &Pattern, path: &str) -> bool {
    let parent = golang::dir(path);
    if parent == "." {
        return false;
    }
    let prefixes = parent
        .match_indices('/')
        .map(|(i, _)| &parent[..i])
        .chain(std::iter::once(parent.as_str()));
    for prefix in prefixes {
        if pattern.is_match(prefix).unwrap_or(false) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excluded(patterns: &[&str], path: &str) -> bool {
        Matcher::new(patterns).unwrap().matches(path).unwrap()
    }

    #[test]
    fn last_match_wins() {
        assert!(excluded(
            &["*.md", "!README*.md", "README-secret.md"],
            "README-secret.md"
        ));
        assert!(!excluded(
            &["*.md", "README-secret.md", "!README*.md"],
            "README-secret.md"
        ));
        assert!(!excluded(&["docs", "!docs/README.md"], "docs/README.md"));
        assert!(excluded(&["docs"], "docs/README.md"));
    }

    #[test]
    fn root_is_never_excluded() {
        assert!(!excluded(&["**"], "."));
        assert!(!excluded(&["**"], ""));
        assert!(!excluded(&["**"], "./"));
        assert!(excluded(&["**"], "./a"));
    }

    #[test]
    fn using_parent_results_differs_only_for_skipped_patterns() {
        let m = Matcher::new(["d/*", "!d"]).unwrap();
        let mut d = Vec::new();
        assert!(!m.matches_using_parent("d", None, Some(&mut d)).unwrap());
        assert!(m.matches_using_parent("d/x", Some(&d), None).unwrap());
        assert!(!m.matches("d/x").unwrap());
    }

    #[test]
    fn validate_reports_unevaluated_bad_patterns() {
        // Docker never evaluates a leading exception, so this list "works".
        let m = Matcher::new(["![Local-Only]", "foo"]).unwrap();
        assert!(m.matches("foo").unwrap());
        assert!(matches!(m.validate(), Err(PatternError::Regexp { .. })));
    }
}
