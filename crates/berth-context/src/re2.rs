//! Reads a regular expression the way Go's `regexp` (RE2 syntax, `syntax.Perl`
//! flags) reads it, and writes the same expression in the syntax of the `regex`
//! crate.
//!
//! Why not hand the string to `regex` directly: patternmatcher builds its regexp by
//! pasting the pattern's `[`, `]` and escaped characters between its own pieces,
//! so what a class contains is decided by Go's parser. The two dialects read the
//! same text differently in places: inside a class Rust treats `[` as a nested
//! class and `&&`, `--`, `~~` as set operators, where Go sees literals; `\d`,
//! `\s`, `\w` and `\b` are Unicode-aware in Rust and ASCII in Go; Go accepts octal
//! escapes and rejects `\<`. So this module parses with Go's rules (ported from
//! `regexp/syntax/parse.go`) and emits every literal and range as an explicit
//! `\x{..}`, which both dialects read one way.
//!
//! The input is always what [`crate::pattern`]'s compiler produced: `{`, `}`, `|`,
//! `+` and `$` reach here escaped except for the final `$`, and `(` only as part
//! of `(.*/)?`. Constructs the compiler never emits (`{n,m}` repeats, `(?flags)`)
//! are reported as unsupported rather than half-handled.

use std::fmt::Write as _;

/// The largest Unicode scalar value (Go `unicode.MaxRune`).
const MAX_RUNE: u32 = 0x10_ffff;
const SURROGATES: std::ops::RangeInclusive<u32> = 0xd800..=0xdfff;

/// Why Go's `regexp.Compile` rejects an expression, worded as Go words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Re2Error(pub(crate) String);

impl Re2Error {
    fn new(code: &str, expr: &str) -> Self {
        if expr.is_empty() {
            Self(code.to_string())
        } else {
            Self(format!("{code}: `{expr}`"))
        }
    }
}

/// Translates a Go regexp into an equivalent `regex`-crate expression.
pub(crate) fn translate(src: &str) -> Result<String, Re2Error> {
    let mut out = String::with_capacity(src.len() * 2);
    let mut t = src;
    // Go's parse stack, reduced to what the repetition checks need.
    let mut operand = Operand::None;
    let mut last_was_repeat = false;
    let mut depth = 0usize;
    while let Some(c) = t.chars().next() {
        let mut repeat = false;
        match c {
            '(' => {
                if t[1..].starts_with('?') {
                    return Err(Re2Error::new("unsupported by berth", "(?"));
                }
                out.push_str("(?:");
                depth += 1;
                operand = Operand::None;
                t = &t[1..];
            }
            '|' => {
                out.push('|');
                operand = Operand::None;
                t = &t[1..];
            }
            ')' => {
                if depth == 0 {
                    return Err(Re2Error::new("unexpected )", src));
                }
                depth -= 1;
                out.push(')');
                operand = Operand::Some;
                t = &t[1..];
            }
            // Without the `m` flag both read `^` and `$` as the text's ends.
            '^' | '$' | '.' => {
                out.push(c);
                operand = Operand::Some;
                t = &t[1..];
            }
            '[' => {
                t = parse_class(t, &mut out)?;
                operand = Operand::Some;
            }
            '*' | '+' | '?' => {
                let before = t;
                let mut after = &t[1..];
                let lazy = after.starts_with('?');
                if lazy {
                    after = &after[1..];
                }
                let op = &before[..before.len() - after.len()];
                if last_was_repeat {
                    return Err(Re2Error::new("invalid nested repetition operator", op));
                }
                if operand == Operand::None {
                    return Err(Re2Error::new("missing argument to repetition operator", op));
                }
                out.push_str(op);
                repeat = true;
                t = after;
            }
            '{' => return Err(Re2Error::new("unsupported by berth", "{")),
            '\\' => {
                t = parse_backslash(t, &mut out, &mut operand)?;
            }
            _ => {
                push_literal(&mut out, u32::from(c));
                operand = Operand::Some;
                t = &t[c.len_utf8()..];
            }
        }
        last_was_repeat = repeat;
    }
    if depth != 0 {
        return Err(Re2Error::new("missing closing )", src));
    }
    Ok(out)
}

/// Whether the parse stack has something a repetition operator can apply to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operand {
    /// Start of the expression or just after `(` or `|`.
    None,
    Some,
}

/// A backslash outside a class: assertion, `\Q...\E`, class escape or literal.
fn parse_backslash<'a>(
    t: &'a str,
    out: &mut String,
    operand: &mut Operand,
) -> Result<&'a str, Re2Error> {
    let next = t[1..].chars().next();
    match next {
        Some('A') => out.push_str(r"\A"),
        Some('z') => out.push_str(r"\z"),
        // Go's word boundary is ASCII-only.
        Some('b') => out.push_str(r"(?-u:\b)"),
        Some('B') => out.push_str(r"(?-u:\B)"),
        Some('C') => return Err(Re2Error::new("invalid escape sequence", r"\C")),
        Some('Q') => {
            // Everything up to `\E` (or the end) is literal text.
            let body = &t[2..];
            let (lit, rest) = match body.find(r"\E") {
                Some(i) => (&body[..i], &body[i + 2..]),
                None => (body, ""),
            };
            for c in lit.chars() {
                push_literal(out, u32::from(c));
                *operand = Operand::Some;
            }
            return Ok(rest);
        }
        _ => {
            let mut class = String::new();
            if let Some(rest) = parse_unicode_class(t, &mut class)? {
                let _ = write!(out, "[{class}]");
                *operand = Operand::Some;
                return Ok(rest);
            }
            if let Some(rest) = parse_perl_class(t, &mut class) {
                let _ = write!(out, "[{class}]");
                *operand = Operand::Some;
                return Ok(rest);
            }
            let (r, rest) = parse_escape(t)?;
            push_literal(out, r);
            *operand = Operand::Some;
            return Ok(rest);
        }
    }
    *operand = Operand::Some;
    Ok(&t[2..])
}

/// Go `parseClass`: `t` starts with `[`. Appends a Rust class, returns the rest.
fn parse_class<'a>(s: &'a str, out: &mut String) -> Result<&'a str, Re2Error> {
    let mut t = &s[1..];
    let negated = t.starts_with('^');
    if negated {
        t = &t[1..];
    }
    let mut body = String::new();
    // `]` is a literal as the first member.
    let mut first = true;
    while t.is_empty() || !t.starts_with(']') || first {
        first = false;
        // POSIX [:alnum:] and friends.
        if t.len() > 2 && t.starts_with("[:") {
            if let Some(i) = t[2..].find(":]") {
                let name = &t[..i + 4];
                let Some(ranges) = posix_group(name) else {
                    return Err(Re2Error::new("invalid character class range", name));
                };
                push_ranges(&mut body, &ranges);
                t = &t[i + 4..];
                continue;
            }
        }
        if let Some(rest) = parse_unicode_class(t, &mut body)? {
            t = rest;
            continue;
        }
        if let Some(rest) = parse_perl_class(t, &mut body) {
            t = rest;
            continue;
        }
        // A single character or a range.
        let range_start = t;
        let (lo, rest) = parse_class_char(t, s)?;
        t = rest;
        let mut hi = lo;
        // `[a-]` means a or `-`, so look for the closing `]`.
        if t.len() >= 2 && t.starts_with('-') && !t[1..].starts_with(']') {
            let (h, rest) = parse_class_char(&t[1..], s)?;
            hi = h;
            t = rest;
            if hi < lo {
                let expr = &range_start[..range_start.len() - t.len()];
                return Err(Re2Error::new("invalid character class range", expr));
            }
        }
        push_ranges(&mut body, &[(lo, hi)]);
    }
    t = &t[1..];
    if body.is_empty() {
        // Only surrogates, which never match: an empty class.
        body.push_str(r"\x{0}-\x{10FFFF}");
        out.push_str(if negated { "[" } else { "[^" });
    } else {
        out.push_str(if negated { "[^" } else { "[" });
    }
    out.push_str(&body);
    out.push(']');
    Ok(t)
}

/// Go `parseClassChar`: one class member character, escapes allowed.
fn parse_class_char<'a>(s: &'a str, whole_class: &str) -> Result<(u32, &'a str), Re2Error> {
    match s.chars().next() {
        None => Err(Re2Error::new("missing closing ]", whole_class)),
        Some('\\') => parse_escape(s),
        Some(c) => Ok((u32::from(c), &s[c.len_utf8()..])),
    }
}

/// Go `parseEscape`: `s` starts with a backslash; the character it stands for.
fn parse_escape(s: &str) -> Result<(u32, &str), Re2Error> {
    let t = &s[1..];
    let Some(c) = t.chars().next() else {
        return Err(Re2Error::new("trailing backslash at end of expression", ""));
    };
    let mut t = &t[c.len_utf8()..];
    let invalid = |t: &str| Re2Error::new("invalid escape sequence", &s[..s.len() - t.len()]);
    let is_octal = |t: &str| {
        t.as_bytes()
            .first()
            .is_some_and(|b| (b'0'..=b'7').contains(b))
    };
    match c {
        // Escaped punctuation always stands for itself.
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok((u32::from(c), t)),
        // A lone non-zero digit would be a backreference, which RE2 lacks.
        '1'..='7' if !is_octal(t) => Err(invalid(t)),
        '0'..='7' => {
            // Up to three octal digits in all.
            let mut r = u32::from(c) - u32::from('0');
            for _ in 1..3 {
                if !is_octal(t) {
                    break;
                }
                r = r * 8 + u32::from(t.as_bytes()[0] - b'0');
                t = &t[1..];
            }
            Ok((r, t))
        }
        'x' => {
            let Some(c) = t.chars().next() else {
                return Err(invalid(t));
            };
            t = &t[c.len_utf8()..];
            if c == '{' {
                // Any number of hex digits (at least one) in braces.
                let mut r: u32 = 0;
                let mut digits = 0;
                loop {
                    let Some(c) = t.chars().next() else {
                        return Err(invalid(t));
                    };
                    t = &t[c.len_utf8()..];
                    if c == '}' {
                        break;
                    }
                    let Some(v) = c.to_digit(16) else {
                        return Err(invalid(t));
                    };
                    r = r * 16 + v;
                    if r > MAX_RUNE {
                        return Err(invalid(t));
                    }
                    digits += 1;
                }
                if digits == 0 {
                    return Err(invalid(t));
                }
                return Ok((r, t));
            }
            // Exactly two hex digits.
            let x = c.to_digit(16);
            let y = t.chars().next().and_then(|c| c.to_digit(16));
            match (x, y) {
                (Some(x), Some(y)) => Ok((x * 16 + y, &t[1..])),
                _ => Err(invalid(t)),
            }
        }
        'a' => Ok((0x07, t)),
        'f' => Ok((0x0c, t)),
        'n' => Ok((0x0a, t)),
        'r' => Ok((0x0d, t)),
        't' => Ok((0x09, t)),
        'v' => Ok((0x0b, t)),
        _ => Err(invalid(t)),
    }
}

/// Go `parseUnicodeClass`: `\pL`, `\p{Greek}`, `\PL`, `\p{^Greek}`. Appends the
/// class members (for use inside `[...]`) and returns the rest, or `None` when
/// `t` does not start with `\p` or `\P`.
///
/// The property name is handed to the `regex` crate, whose Unicode tables may be
/// a different Unicode version than the Go toolchain Docker was built with; only
/// names made of letters, digits, `_`, `-` and spaces are accepted, so Rust-only
/// forms such as `\p{sc=Greek}` are rejected as Go rejects them.
fn parse_unicode_class<'a>(t: &'a str, body: &mut String) -> Result<Option<&'a str>, Re2Error> {
    let mut sign = match t.as_bytes() {
        [b'\\', b'p', ..] => true,
        [b'\\', b'P', ..] => false,
        _ => return Ok(None),
    };
    let after = &t[2..];
    let (seq, mut name, rest) = match after.chars().next() {
        Some('{') => {
            let Some(end) = t.find('}') else {
                return Err(Re2Error::new("invalid character class range", t));
            };
            (&t[..=end], &t[3..end], &t[end + 1..])
        }
        Some(c) => {
            let len = 2 + c.len_utf8();
            (&t[..len], &t[2..len], &t[len..])
        }
        None => (t, "", ""),
    };
    if let Some(stripped) = name.strip_prefix('^') {
        sign = !sign;
        name = stripped;
    }
    let plausible = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ' '));
    if !plausible {
        return Err(Re2Error::new("invalid character class range", seq));
    }
    let _ = write!(body, "{}{{{name}}}", if sign { r"\p" } else { r"\P" });
    Ok(Some(rest))
}

/// Go's Perl classes `\d \D \s \S \w \W`, which are ASCII-only in RE2.
fn parse_perl_class<'a>(t: &'a str, body: &mut String) -> Option<&'a str> {
    let ranges: &[(u32, u32)] = match t.as_bytes() {
        [b'\\', b'd' | b'D', ..] => &[(0x30, 0x39)],
        [b'\\', b's' | b'S', ..] => &[(0x09, 0x0a), (0x0c, 0x0d), (0x20, 0x20)],
        [b'\\', b'w' | b'W', ..] => &[(0x30, 0x39), (0x41, 0x5a), (0x5f, 0x5f), (0x61, 0x7a)],
        _ => return None,
    };
    if t.as_bytes()[1].is_ascii_uppercase() {
        push_ranges(body, &complement(ranges));
    } else {
        push_ranges(body, ranges);
    }
    Some(&t[2..])
}

/// Go's POSIX groups (`[:alpha:]`, `[:^alpha:]`, ...), all ASCII.
fn posix_group(name: &str) -> Option<Vec<(u32, u32)>> {
    let inner = name.strip_prefix("[:")?.strip_suffix(":]")?;
    let (negated, inner) = match inner.strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, inner),
    };
    let ranges: &[(u32, u32)] = match inner {
        "alnum" => &[(0x30, 0x39), (0x41, 0x5a), (0x61, 0x7a)],
        "alpha" => &[(0x41, 0x5a), (0x61, 0x7a)],
        "ascii" => &[(0x00, 0x7f)],
        "blank" => &[(0x09, 0x09), (0x20, 0x20)],
        "cntrl" => &[(0x00, 0x1f), (0x7f, 0x7f)],
        "digit" => &[(0x30, 0x39)],
        "graph" => &[(0x21, 0x7e)],
        "lower" => &[(0x61, 0x7a)],
        "print" => &[(0x20, 0x7e)],
        "punct" => &[(0x21, 0x2f), (0x3a, 0x40), (0x5b, 0x60), (0x7b, 0x7e)],
        "space" => &[(0x09, 0x0d), (0x20, 0x20)],
        "upper" => &[(0x41, 0x5a)],
        "word" => &[(0x30, 0x39), (0x41, 0x5a), (0x61, 0x7a), (0x5f, 0x5f)],
        "xdigit" => &[(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
        _ => return None,
    };
    Some(if negated {
        complement(ranges)
    } else {
        ranges.to_vec()
    })
}

/// The ranges not covered by `ranges` (which must be sorted and disjoint).
fn complement(ranges: &[(u32, u32)]) -> Vec<(u32, u32)> {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    let mut out = Vec::new();
    let mut next = 0;
    for (lo, hi) in sorted {
        if lo > next {
            out.push((next, lo - 1));
        }
        next = next.max(hi + 1);
    }
    if next <= MAX_RUNE {
        out.push((next, MAX_RUNE));
    }
    out
}

/// Appends class ranges as `\x{lo}-\x{hi}`. Rust classes cannot name surrogate
/// code points, and no text contains them, so range ends inside the surrogate
/// block are moved out of it (a range of only surrogates disappears).
fn push_ranges(body: &mut String, ranges: &[(u32, u32)]) {
    for &(lo, hi) in ranges {
        let lo = if SURROGATES.contains(&lo) { 0xe000 } else { lo };
        let hi = if SURROGATES.contains(&hi) { 0xd7ff } else { hi };
        if lo > hi {
            continue;
        }
        if lo == hi {
            let _ = write!(body, r"\x{{{lo:X}}}");
        } else {
            let _ = write!(body, r"\x{{{lo:X}}}-\x{{{hi:X}}}");
        }
    }
}

/// Appends one literal character. Letters, digits, `_`, `/` and non-ASCII text
/// are never special; everything else is written as a hex escape.
fn push_literal(out: &mut String, r: u32) {
    match char::from_u32(r) {
        Some(c) if c.is_ascii_alphanumeric() || c == '_' || c == '/' || !c.is_ascii() => {
            out.push(c);
        }
        Some(_) => {
            let _ = write!(out, r"\x{{{r:X}}}");
        }
        // A surrogate code point: Go accepts it, nothing ever matches it.
        None => out.push_str(r"[^\x{0}-\x{10FFFF}]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiles(go: &str) -> regex::Regex {
        let rust = translate(go).unwrap_or_else(|e| panic!("{go:?}: {e:?}"));
        regex::Regex::new(&rust).unwrap_or_else(|e| panic!("{go:?} -> {rust:?}: {e}"))
    }

    #[test]
    fn literals_and_fragments() {
        let re = compiles(r"^(.*/)?dir2/[^/]*$");
        assert!(re.is_match("dir2/x"));
        assert!(re.is_match("a/b/dir2/x"));
        assert!(!re.is_match("dir2/x/y"));
        let re = compiles(r"^a\.\|\)\$\(\}\+\{bc$");
        assert!(re.is_match("a.|)$(}+{bc"));
    }

    #[test]
    fn classes_read_as_go_reads_them() {
        // `[` inside a class is a literal in Go, a nested class in Rust.
        let re = compiles(r"^[[^/]*]$");
        assert!(re.is_match("[^/]"));
        assert!(re.is_match("]"));
        assert!(!re.is_match("a]"));
        // `&&` is not an intersection in Go.
        let re = compiles(r"^[a&&b]$");
        assert!(re.is_match("&"));
        // First `]` is a member.
        assert!(compiles(r"^[]a]$").is_match("]"));
        assert!(compiles(r"^[\]a]$").is_match("]"));
        assert!(compiles(r"^[x\-]$").is_match("-"));
        assert!(compiles(r"^[[:alpha:]]$").is_match("q"));
        assert!(!compiles(r"^[[:^alpha:]]$").is_match("q"));
        assert!(compiles(r"^[^a]$").is_match("\n"));
        assert!(compiles(r"^[\d]$").is_match("7"));
        assert!(!compiles(r"^\d$").is_match("٣"), "Go's \\d is ASCII");
        assert!(compiles(r"^[a-ζ]$").is_match("α"));
    }

    #[test]
    fn go_errors() {
        for bad in [
            r"^[Local-Only]/$",
            r"^a[^/]*[$",
            r"^a\",
            r"^\8$",
            r"^\C$",
            r"^[[:foo:]]$",
            r"^\p{sc=Greek}$",
            r"^[z-a]$",
            r"^\x{110000}$",
            r"^a**$",
            r"*a",
            r"^(a$",
        ] {
            assert!(translate(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            translate(r"^[Local-Only]/$").unwrap_err().0,
            "invalid character class range: `l-O`"
        );
    }

    #[test]
    fn escapes() {
        assert!(compiles(r"^\x41\x{42}\103$").is_match("ABC"));
        assert!(compiles(r"^a\$$").is_match("a$"));
        assert!(compiles(r"^\Qa[^/]*$").is_match("a[^/]*$"));
        assert!(compiles(r"^\Qa\E[^/]*$").is_match("abc"));
        assert!(compiles(r"^\t$").is_match("\t"));
        assert!(compiles(r"^\pL$").is_match("é"));
        assert!(!compiles(r"^\p{^Greek}$").is_match("α"));
        // A surrogate never matches; Go also accepts repeating `^`.
        assert!(!compiles(r"^\x{D800}?a$").is_match("b"));
        assert!(compiles(r"^*a$").is_match("a"));
    }
}
