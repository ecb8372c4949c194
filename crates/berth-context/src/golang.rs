//! Ports of the few Go standard-library behaviours `.dockerignore` semantics rest on.
//!
//! moby/patternmatcher is written against Go's `path/filepath` (Unix flavour) and Go
//! strings, which are byte strings. Each function here names the Go function it
//! reproduces; the differences that remain are documented where they are.

use std::borrow::Cow;

/// Go `path/filepath.Clean` on Unix: the shortest lexically equivalent path.
///
/// Multiple slashes collapse, `.` elements go, `..` removes the element before it
/// (or is dropped right after the root), a trailing slash goes except for `/`
/// itself, and an empty result is `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                // `/..` is `/`; a relative path keeps its leading `..`s.
                _ if rooted => {}
                _ => parts.push(".."),
            },
            _ => parts.push(part),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go `path/filepath.Dir` on Unix: everything before the last slash, cleaned.
pub(crate) fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".to_string(),
    }
}

/// Turns bytes into a string the way Go code sees them when it decodes runes:
/// every byte that is not part of valid UTF-8 becomes one U+FFFD.
///
/// Go strings may hold any bytes, and Go's decoders (`text/scanner`, `regexp`,
/// `utf8.DecodeRune`) read each invalid byte as one `RuneError`. Rust's own
/// lossy conversion can fold several invalid bytes into one U+FFFD, which would
/// change what `?` matches, hence this version.
pub(crate) fn go_lossy(bytes: &[u8]) -> Cow<'_, str> {
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 8);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        // An invalid chunk is a lead byte plus the continuation bytes that fit
        // it; none of them can start a valid character, so Go restarting one
        // byte later yields one RuneError per byte as well.
        for _ in chunk.invalid() {
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
    Cow::Owned(out)
}

/// The error Go's `filepath.Match` reports (`filepath.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadPattern;

/// Go `path/filepath.Match` on Unix (Go 1.16 and later, which keeps checking a
/// chunk's syntax after the first mismatch).
///
/// patternmatcher calls it as `filepath.Match(pattern, ".")` only for its error,
/// to reject malformed patterns when the matcher is built. Note that Go stops at
/// the first chunk (a run between `*`s) that cannot match, so a syntax error in
/// a later chunk is not reported here; it surfaces when the pattern's regexp is
/// compiled instead, as upstream.
pub fn filepath_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        // Look for a match at the current position.
        let (t, ok) = match_chunk(chunk, name)?;
        // If this is the last chunk the name must be exhausted, otherwise a
        // later star could still match.
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if star {
            // Look for a match skipping i+1 bytes; a star cannot skip `/`.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok) = match_chunk(chunk, &name[i + 1..])?;
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'pattern;
                }
                i += 1;
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// The next chunk of a pattern: a star-free run, possibly preceded by stars.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    let mut pattern = pattern;
    while let Some((b'*', rest)) = pattern.split_first() {
        pattern = rest;
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            // The error check for a trailing backslash is in match_chunk.
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => return (star, &pattern[..i], &pattern[i..]),
            _ => {}
        }
        i += 1;
    }
    (star, pattern, &[])
}

/// Whether `chunk` matches the start of `s`; if so, the rest of `s`. After a
/// mismatch the rest of the chunk is still parsed, to report syntax errors.
fn match_chunk<'s>(chunk: &[u8], s: &'s [u8]) -> Result<(&'s [u8], bool), BadPattern> {
    let mut chunk = chunk;
    let mut s = s;
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        failed = failed || s.is_empty();
        match c {
            b'[' => {
                let mut r = 0;
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if chunk.first() == Some(&b']') && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    // get_esc never leaves the chunk empty.
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    matched = matched || (lo <= r && r <= hi);
                    nrange += 1;
                }
                failed = failed || matched == negated;
            }
            b'?' => {
                if !failed {
                    failed = s[0] == b'/';
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    failed = chunk[0] != s[0];
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed {
        Ok((&[], false))
    } else {
        Ok((s, true))
    }
}

/// A possibly escaped character of a character class.
fn get_esc(chunk: &[u8]) -> Result<(u32, &[u8]), BadPattern> {
    let mut chunk = chunk;
    match chunk.first() {
        None | Some(b'-') | Some(b']') => return Err(BadPattern),
        Some(b'\\') => {
            chunk = &chunk[1..];
            if chunk.is_empty() {
                return Err(BadPattern);
            }
        }
        Some(_) => {}
    }
    let (r, n) = decode_rune(chunk);
    if r == u32::from(char::REPLACEMENT_CHARACTER) && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

/// Go `utf8.DecodeRune`: the first character and its width; an invalid byte is
/// U+FFFD of width 1, an empty input U+FFFD of width 0.
fn decode_rune(s: &[u8]) -> (u32, usize) {
    let Some(&b0) = s.first() else {
        return (u32::from(char::REPLACEMENT_CHARACTER), 0);
    };
    let width = match b0 {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        0xf0..=0xf7 => 4,
        _ => 0,
    };
    if width > 0 && width <= s.len() {
        if let Some(c) = std::str::from_utf8(&s[..width])
            .ok()
            .and_then(|t| t.chars().next())
        {
            return (u32::from(c), width);
        }
    }
    (u32::from(char::REPLACEMENT_CHARACTER), 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // Cases from Go's path/filepath cleantests.
        for (input, want) in [
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("", "."),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("a/b/c/", "a/b/c"),
            ("./", "."),
            ("../", ".."),
            ("../../", "../.."),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("/../abc", "/abc"),
            ("../../.././../abc", "../../../../abc"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
            ("!/../x", "x"),
        ] {
            assert_eq!(clean(input), want, "clean({input:?})");
        }
    }

    #[test]
    fn dir_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a", "."),
            ("a/b", "a"),
            ("a/b/c", "a/b"),
            ("file/", "file"),
            ("/", "/"),
            ("/a", "/"),
            ("/any/path/there", "/any/path"),
        ] {
            assert_eq!(dir(input), want, "dir({input:?})");
        }
    }

    #[test]
    fn go_lossy_replaces_each_invalid_byte() {
        assert_eq!(go_lossy(b"abc"), "abc");
        assert_eq!(go_lossy(b"a\xffb"), "a\u{fffd}b");
        // A truncated 3-byte sequence is two RuneErrors in Go.
        assert_eq!(go_lossy(b"\xe2\x82A"), "\u{fffd}\u{fffd}A");
    }

    #[test]
    fn filepath_match_syntax_errors() {
        for bad in [
            "[", "[^", "[^bc", "a[", "\\", "[]a]", "[-]", "[x-]", "[-x]", "[a-b-c]",
        ] {
            assert_eq!(filepath_match(bad, "."), Err(BadPattern), "{bad:?}");
        }
        for good in [
            "*",
            "a*",
            "[\\]a]",
            "[x\\-]",
            "[Local-Only]/",
            "*x",
            "a*[",
            "a*\\",
        ] {
            assert!(filepath_match(good, ".").is_ok(), "{good:?}");
        }
        assert_eq!(filepath_match("a*/b", "abc/b"), Ok(true));
        assert_eq!(filepath_match("a*/b", "a/c/b"), Ok(false));
        assert_eq!(filepath_match("a?b", "a☺b"), Ok(true));
        assert_eq!(filepath_match("[a-ζ]*", "α"), Ok(true));
    }
}
