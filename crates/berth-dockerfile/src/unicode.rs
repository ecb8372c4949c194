//! Go string and character semantics that BuildKit's output depends on.
//!
//! BuildKit is written in Go, and several of its observable behaviours come from Go's
//! standard library rather than from the Dockerfile grammar: `strconv.Quote` shapes the
//! AST dump, `unicode.IsLetter`/`unicode.IsDigit` decide where a `$NAME` ends, and
//! `strings.ToLower` is a per-character *simple* case mapping. The helpers here mirror
//! those functions so the parser and the lexer give byte-identical results.

use crate::unicode_tables::{DECIMAL_DIGIT, GRAPHIC, LETTER};

fn in_table(table: &[(u32, u32)], c: char) -> bool {
    let cp = u32::from(c);
    table
        .binary_search_by(|&(lo, hi)| {
            if hi < cp {
                std::cmp::Ordering::Less
            } else if lo > cp {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// Go `unicode.IsSpace`: the Unicode White_Space property, which is exactly what
/// Rust's `char::is_whitespace` implements (U+0085 and U+00A0 included).
pub(crate) fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go `unicode.IsLetter`: general category L.
pub(crate) fn is_letter(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphabetic();
    }
    in_table(LETTER, c)
}

/// Go `unicode.IsDigit`: general category Nd (not Rust's wider `is_numeric`).
pub(crate) fn is_digit(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_digit();
    }
    in_table(DECIMAL_DIGIT, c)
}

/// Go `unicode.IsPrint`: letters, marks, numbers, punctuation, symbols and U+0020.
pub(crate) fn is_print(c: char) -> bool {
    if c.is_ascii() {
        return (' '..='~').contains(&c);
    }
    in_table(GRAPHIC, c)
}

/// Go `strings.TrimSpace`.
pub(crate) fn trim_space(s: &str) -> &str {
    s.trim_matches(is_space)
}

/// Go `strings.TrimLeftFunc(s, unicode.IsSpace)`.
pub(crate) fn trim_left_space(s: &str) -> &str {
    s.trim_start_matches(is_space)
}

/// Go `unicode.ToLower`: the simple (one-to-one) lowercase mapping.
///
/// Rust's `char::to_lowercase` is the full mapping; the only character whose full
/// lowercase differs from its simple one is U+0130 (`İ`, full mapping `i̇`).
pub(crate) fn to_lower_char(c: char) -> char {
    if c == '\u{130}' {
        return 'i';
    }
    let mut it = c.to_lowercase();
    match (it.next(), it.next()) {
        (Some(l), None) => l,
        _ => c,
    }
}

/// Go `unicode.ToUpper`: characters whose uppercase is several characters (`ß` → `SS`)
/// keep their own value, as Go has no simple mapping for them.
pub(crate) fn to_upper_char(c: char) -> char {
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// Go `strings.ToLower` (no final-sigma rule, unlike `str::to_lowercase`).
pub fn go_to_lower(s: &str) -> String {
    s.chars().map(to_lower_char).collect()
}

/// Go `strings.ToUpper`.
pub fn go_to_upper(s: &str) -> String {
    s.chars().map(to_upper_char).collect()
}

/// Go `strings.EqualFold` (simple case folding, so `ſ` equals `s` and `K` (Kelvin) `k`).
pub(crate) fn equal_fold(a: &str, b: &str) -> bool {
    let mut ai = a.chars();
    let mut bi = b.chars();
    loop {
        match (ai.next(), bi.next()) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if x != y
                    && to_lower_char(x) != to_lower_char(y)
                    && to_upper_char(x) != to_upper_char(y)
                {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// Go `strconv.Quote`: a double-quoted Go string literal.
///
/// This is what BuildKit's `Node.Dump` prints for every argument (and, through `%q`,
/// for every flag). It is not JSON escaping: NUL becomes `\x00`, U+007F is escaped,
/// and printable non-ASCII characters are kept as raw UTF-8.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    go_quote_into(&mut out, s);
    out
}

pub(crate) fn go_quote_into(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            _ if is_print(c) => out.push(c),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            _ if c < ' ' || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            _ if u32::from(c) < 0x10000 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            _ => {
                let _ = write!(out, "\\U{:08x}", u32::from(c));
            }
        }
    }
    out.push('"');
}

/// Converts bytes that BuildKit treats one byte at a time back to a string.
///
/// A few BuildKit routines (`extractBuilderFlags`, `parseHealthConfig`) walk the line
/// byte by byte and can cut inside a multi-byte character; Go keeps the invalid bytes,
/// a Rust `String` cannot, so they become U+FFFD.
pub(crate) fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_matches_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("♥ ☃ à"), "\"♥ ☃ à\"");
        assert_eq!(
            go_quote("\" \\ / \u{8} \u{c} \n \r \t \u{0}"),
            r#""\" \\ / \b \f \n \r \t \x00""#
        );
        assert_eq!(go_quote("\u{7f}\u{a0}\u{2028}"), r#""\x7f\u00a0\u2028""#);
        assert_eq!(go_quote("\u{e0000}"), r#""\U000e0000""#);
        assert_eq!(go_quote("\u{7}\u{b}\u{1b}"), r#""\a\v\x1b""#);
    }

    #[test]
    fn case_mapping_is_simple() {
        assert_eq!(go_to_lower("RUN"), "run");
        assert_eq!(go_to_lower("ΟΔΟΣ"), "οδοσ");
        assert_eq!(go_to_lower("\u{130}"), "i");
        assert_eq!(go_to_upper("ß"), "ß");
        assert!(equal_fold("AS", "as"));
        assert!(equal_fold("aſ", "as"));
        assert!(!equal_fold("a", "as"));
    }

    #[test]
    fn predicates() {
        assert!(is_letter('한'));
        assert!(!is_letter('½'));
        assert!(is_digit('٣'));
        assert!(!is_digit('²'));
        assert!(is_print(' '));
        assert!(!is_print('\u{a0}'));
        assert!(!is_print('\u{ad}'));
        assert!(is_space('\u{85}'));
    }
}
