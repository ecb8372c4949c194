//! Parser directives: `# syntax=`, `# escape=` and `# check=` at the top of a file.
//!
//! Directives are comments of the form `# key = value` that BuildKit reads only until
//! the first line that is not one (a blank line, an ordinary comment or an
//! instruction). A repeated directive is an error. [`detect_syntax`] additionally
//! accepts `//` comments and a JSON object, and skips a `#!` shebang line, as
//! BuildKit's frontend selection does.

use std::collections::HashSet;

use crate::ast::Directive;
use crate::error::DirectiveError;
use crate::json::{self, TopLevel};
use crate::unicode::trim_left_space;

/// The directives BuildKit knows; any other `# key=value` ends the directive block.
const VALID_DIRECTIVES: [&str; 3] = ["syntax", "escape", "check"];

/// bufio.Scanner's default limit; a longer line stops BuildKit's directive scan.
const MAX_SCAN_TOKEN: usize = 64 * 1024;

/// Reads directives line by line (BuildKit's `DirectiveParser`).
#[derive(Debug, Clone)]
pub struct DirectiveParser {
    line: usize,
    comment: String,
    seen: HashSet<String>,
    done: bool,
}

impl Default for DirectiveParser {
    fn default() -> Self {
        Self::new()
    }
}

/// Go regexp `\s`: ASCII blanks without `\v`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns (key, value).
fn match_directive(line: &str) -> Option<(&str, &str)> {
    let key_len = line
        .char_indices()
        .take_while(|&(i, c)| {
            if i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = line.split_at(key_len);
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    // `.` does not match a newline, so neither may the value.
    if rest.contains('\n') {
        return None;
    }
    let trimmed = rest.trim_start_matches(is_re_space);
    let value = if trimmed.is_empty() {
        // All blanks: the greedy `\s*` gives one back so `(.+?)` can match it.
        let last = rest.chars().next_back()?;
        &rest[rest.len() - last.len_utf8()..]
    } else {
        trimmed.trim_end_matches(is_re_space)
    };
    Some((key, value))
}

impl DirectiveParser {
    /// A parser for `#` comments.
    pub fn new() -> Self {
        Self::with_comment("#")
    }

    /// A parser for another comment prefix (BuildKit also tries `//`).
    pub fn with_comment(prefix: &str) -> Self {
        Self {
            line: 0,
            comment: prefix.to_string(),
            seen: HashSet::new(),
            done: false,
        }
    }

    fn starting_at(mut self, line: usize) -> Self {
        self.line = line;
        self
    }

    /// Whether the directive block has ended.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Looks at one line (without its newline). Returns the directive it holds, or
    /// `None` when it holds none (which ends the block).
    pub fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, DirectiveError> {
        self.line += 1;
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix(self.comment.as_str()) else {
            self.done = true;
            return Ok(None);
        };
        let Some((key, value)) = match_directive(trim_left_space(rest)) else {
            self.done = true;
            return Ok(None);
        };
        let key = key.to_ascii_lowercase();
        if !VALID_DIRECTIVES.contains(&key.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if !self.seen.insert(key.clone()) {
            return Err(DirectiveError::Duplicate(key));
        }
        Ok(Some(Directive {
            name: key,
            value: value.to_string(),
            line: self.line,
        }))
    }

    /// Reads the directives at the top of `data` (BuildKit's `ParseAll`).
    pub fn parse_all(&mut self, data: &str) -> Result<Vec<Directive>, DirectiveError> {
        let mut out = Vec::new();
        for line in scan_lines(data) {
            if self.done {
                break;
            }
            let Some(line) = line else { break };
            if let Some(d) = self.parse_line(line)? {
                out.push(d);
            }
        }
        Ok(out)
    }
}

/// bufio.ScanLines: lines without `\n` and one trailing `\r`; `None` for a line too
/// long for the scanner, after which BuildKit stops.
fn scan_lines(data: &str) -> impl Iterator<Item = Option<&str>> {
    let mut rest = Some(data).filter(|d| !d.is_empty());
    std::iter::from_fn(move || {
        let r = rest?;
        let (line, next) = match r.find('\n') {
            Some(i) => (&r[..i], Some(&r[i + 1..]).filter(|n| !n.is_empty())),
            None => (r, None),
        };
        if line.len() >= MAX_SCAN_TOKEN {
            rest = None;
            return Some(None);
        }
        rest = next;
        Some(Some(line.strip_suffix('\r').unwrap_or(line)))
    })
}

/// A directive found by [`detect_syntax`] or [`parse_directive`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectiveValue {
    /// The value up to its first space (for `syntax`, the frontend image reference).
    pub value: String,
    /// The whole value.
    pub cmdline: String,
    /// The line it was found on (for the JSON form, 0, or 1 after a shebang, as
    /// BuildKit reports it).
    pub line: usize,
}

/// Finds the `syntax` directive the way BuildKit selects a frontend: `# syntax=`,
/// then `// syntax=`, then a JSON object `{"syntax": "…"}`; a UTF-8 BOM and a leading
/// `#!` line are skipped.
pub fn detect_syntax(data: &str) -> Option<DirectiveValue> {
    find_directive("syntax", data, true)
}

/// Finds directive `key` (`# key=value` only), skipping a BOM and a shebang line.
pub fn parse_directive(key: &str, data: &str) -> Option<DirectiveValue> {
    find_directive(key, data, false)
}

fn find_directive(key: &str, data: &str, any_format: bool) -> Option<DirectiveValue> {
    let data = data.strip_prefix('\u{feff}').unwrap_or(data);
    let (first, rest) = data.split_once('\n').unwrap_or((data, ""));
    let (data, line) = if first.starts_with("#!") {
        (rest, 1)
    } else {
        (data, 0)
    };

    let from_parser = |p: DirectiveParser| {
        let mut p = p.starting_at(line);
        // Like BuildKit, keep what was found before an error.
        let mut found = Vec::new();
        for l in scan_lines(data) {
            if p.is_done() {
                break;
            }
            let Some(l) = l else { break };
            match p.parse_line(l) {
                Ok(Some(d)) => found.push(d),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        found
            .into_iter()
            .find(|d| d.name == key)
            .map(|d| DirectiveValue {
                value: d.value.split(' ').next().unwrap_or("").to_string(),
                cmdline: d.value,
                line: d.line,
            })
    };

    if let Some(v) = from_parser(DirectiveParser::new()) {
        return Some(v);
    }
    if !any_format {
        return None;
    }
    if let Some(v) = from_parser(DirectiveParser::with_comment("//")) {
        return Some(v);
    }
    if let Ok(TopLevel::Object(members)) = json::decode(data) {
        // encoding/json into a map: the last duplicate key wins.
        if let Some((_, Some(v))) = members.iter().rev().find(|(k, _)| k == key) {
            return Some(DirectiveValue {
                value: v.clone(),
                cmdline: v.clone(),
                line,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_regex() {
        assert_eq!(match_directive("escape=\\"), Some(("escape", "\\")));
        assert_eq!(match_directive("key = FOO bar "), Some(("key", "FOO bar")));
        assert_eq!(match_directive("k=   "), Some(("k", " ")));
        assert_eq!(match_directive("k="), None);
        assert_eq!(match_directive("1k=a"), None);
        assert_eq!(match_directive("k x=a"), None);
    }

    #[test]
    fn duplicate_is_error() {
        let mut p = DirectiveParser::new();
        assert!(p.parse_line("# syntax=a").unwrap().is_some());
        assert_eq!(
            p.parse_line("# syntax=b"),
            Err(DirectiveError::Duplicate("syntax".into()))
        );
    }
}
