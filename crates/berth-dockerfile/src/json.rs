//! The slice of Go's `encoding/json` that the Dockerfile parser observes.
//!
//! BuildKit decodes exec-form arguments (`CMD ["a", "b"]`) with `json.Unmarshal` into
//! `[]any`, and JSON parser directives into `map[string]any`. Whether a line is exec
//! form, shell form, or a hard error depends on the exact outcome, so this decoder
//! reproduces Go's rules rather than delegating to a general JSON crate:
//!
//! * the whole input must be one JSON value with only JSON whitespace around it;
//! * nesting deeper than 10000 is a syntax error (Go's `maxNestingDepth`);
//! * a number that overflows `float64` makes `Unmarshal` fail (so the line falls back
//!   to shell form instead of being rejected as "not a string array");
//! * a lone UTF-16 surrogate in `\uXXXX` decodes to U+FFFD instead of failing.
//!
//! The parser is iterative, so hostile nesting cannot overflow the stack.

/// Go's `encoding/json` nesting limit.
const MAX_NESTING_DEPTH: usize = 10_000;

/// The decoded top level of a JSON document, reduced to what callers need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TopLevel {
    /// An array; each element is `Some(string)` for a JSON string, else `None`.
    Array(Vec<Option<String>>),
    /// An object; each member's value is `Some(string)` for a JSON string, else `None`.
    Object(Vec<(String, Option<String>)>),
    /// Any other value.
    Other,
}

/// The document is not something `json.Unmarshal` accepts (syntax or range error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid;

/// Decodes `input` as Go's `json.Unmarshal` would.
pub(crate) fn decode(input: &str) -> Result<TopLevel, Invalid> {
    let mut p = Parser {
        s: input.as_bytes(),
        i: 0,
    };
    p.ws();
    let top = match p.peek() {
        Some(b'[') => {
            p.i += 1;
            let mut items = Vec::new();
            p.ws();
            if p.peek() == Some(b']') {
                p.i += 1;
            } else {
                loop {
                    p.ws();
                    if p.peek() == Some(b'"') {
                        items.push(Some(p.string()?));
                    } else {
                        p.value(1)?;
                        items.push(None);
                    }
                    p.ws();
                    match p.bump() {
                        Some(b',') => continue,
                        Some(b']') => break,
                        _ => return Err(Invalid),
                    }
                }
            }
            TopLevel::Array(items)
        }
        Some(b'{') => {
            p.i += 1;
            let mut members = Vec::new();
            p.ws();
            if p.peek() == Some(b'}') {
                p.i += 1;
            } else {
                loop {
                    p.ws();
                    let key = p.string()?;
                    p.ws();
                    if p.bump() != Some(b':') {
                        return Err(Invalid);
                    }
                    p.ws();
                    let value = if p.peek() == Some(b'"') {
                        Some(p.string()?)
                    } else {
                        p.value(1)?;
                        None
                    };
                    members.push((key, value));
                    p.ws();
                    match p.bump() {
                        Some(b',') => continue,
                        Some(b'}') => break,
                        _ => return Err(Invalid),
                    }
                }
            }
            TopLevel::Object(members)
        }
        _ => {
            p.value(0)?;
            TopLevel::Other
        }
    };
    p.ws();
    if p.i != p.s.len() {
        return Err(Invalid);
    }
    Ok(top)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    /// JSON whitespace only (not Unicode spaces, not `\v`/`\f`).
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    /// Validates one value of any kind, iteratively. `depth` is the nesting already
    /// entered by the caller.
    fn value(&mut self, depth: usize) -> Result<(), Invalid> {
        // Each entry is the closing byte of an open container.
        let mut stack: Vec<u8> = Vec::new();
        'value: loop {
            self.ws();
            match self.peek() {
                Some(open @ (b'[' | b'{')) => {
                    self.i += 1;
                    if depth + stack.len() + 1 > MAX_NESTING_DEPTH {
                        return Err(Invalid);
                    }
                    let close = if open == b'[' { b']' } else { b'}' };
                    stack.push(close);
                    self.ws();
                    if self.peek() == Some(close) {
                        self.i += 1;
                        stack.pop();
                    } else {
                        if close == b'}' {
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'n') => self.literal(b"null")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                _ => return Err(Invalid),
            }
            // After a complete value: close containers or move to the next element.
            loop {
                let Some(&close) = stack.last() else {
                    return Ok(());
                };
                self.ws();
                match self.bump() {
                    Some(b',') => {
                        if close == b'}' {
                            self.ws();
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                    Some(b) if b == close => {
                        stack.pop();
                    }
                    _ => return Err(Invalid),
                }
            }
        }
    }

    fn member_key(&mut self) -> Result<(), Invalid> {
        if self.peek() != Some(b'"') {
            return Err(Invalid);
        }
        self.string()?;
        self.ws();
        if self.bump() != Some(b':') {
            return Err(Invalid);
        }
        Ok(())
    }

    fn literal(&mut self, word: &[u8]) -> Result<(), Invalid> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<(), Invalid> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(Invalid),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if self.digits() == 0 {
                return Err(Invalid);
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return Err(Invalid);
            }
        }
        // Decoding into `any` makes a float64; Go reports overflow as an error.
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| Invalid)?;
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(()),
            _ => Err(Invalid),
        }
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        let h = self.s.get(at..at + 4)?;
        let mut v = 0u32;
        for &b in h {
            v = v * 16 + char::from(b).to_digit(16)?;
        }
        Some(v)
    }

    /// Decodes a string starting at the opening quote.
    fn string(&mut self) -> Result<String, Invalid> {
        if self.bump() != Some(b'"') {
            return Err(Invalid);
        }
        let mut out: Vec<u8> = Vec::new();
        loop {
            let b = self.bump().ok_or(Invalid)?;
            match b {
                b'"' => break,
                b'\\' => match self.bump().ok_or(Invalid)? {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'/' => out.push(b'/'),
                    b'b' => out.push(0x08),
                    b'f' => out.push(0x0c),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'u' => {
                        let r = self.hex4(self.i).ok_or(Invalid)?;
                        self.i += 4;
                        let c = if (0xD800..0xE000).contains(&r) {
                            // Go: a valid high+low pair is combined; anything else is
                            // U+FFFD and the following escape is decoded on its own.
                            let pair = if self.s.get(self.i) == Some(&b'\\')
                                && self.s.get(self.i + 1) == Some(&b'u')
                            {
                                self.hex4(self.i + 2)
                            } else {
                                None
                            };
                            match pair {
                                Some(lo)
                                    if (0xD800..0xDC00).contains(&r)
                                        && (0xDC00..0xE000).contains(&lo) =>
                                {
                                    self.i += 6;
                                    char::from_u32(0x10000 + ((r - 0xD800) << 10) + (lo - 0xDC00))
                                        .unwrap_or('\u{fffd}')
                                }
                                _ => '\u{fffd}',
                            }
                        } else {
                            char::from_u32(r).unwrap_or('\u{fffd}')
                        };
                        let mut buf = [0u8; 4];
                        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                    _ => return Err(Invalid),
                },
                0..=0x1f => return Err(Invalid),
                _ => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arr(items: &[Option<&str>]) -> TopLevel {
        TopLevel::Array(items.iter().map(|s| s.map(str::to_string)).collect())
    }

    #[test]
    fn arrays() {
        assert_eq!(decode("[]"), Ok(arr(&[])));
        assert_eq!(
            decode(" [ \"a\" , 1, {\"x\": [null]} ] "),
            Ok(arr(&[Some("a"), None, None]))
        );
        assert_eq!(decode("[\"a\",]"), Err(Invalid));
        assert_eq!(decode("['a']"), Err(Invalid));
        assert_eq!(decode("[\"a\"] x"), Err(Invalid));
        assert_eq!(decode("[1e400]"), Err(Invalid));
        assert_eq!(decode("[01]"), Err(Invalid));
        assert_eq!(decode("[\"\\ud800\"]"), Ok(arr(&[Some("\u{fffd}")])));
        assert_eq!(decode("[\"\\ud83d\\ude00\"]"), Ok(arr(&[Some("😀")])));
        assert_eq!(
            decode("[\"\\ud800\\u0041\"]"),
            Ok(arr(&[Some("\u{fffd}A")]))
        );
        assert_eq!(decode("[\"a\tb\"]"), Err(Invalid));
    }

    #[test]
    fn nesting_limit() {
        let ok = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(decode(&ok).is_ok());
        let deep = format!("{}{}", "[".repeat(10_001), "]".repeat(10_001));
        assert_eq!(decode(&deep), Err(Invalid));
    }

    #[test]
    fn objects() {
        assert_eq!(
            decode("{\"syntax\": \"foo\", \"bar\": [\"abc\"]}"),
            Ok(TopLevel::Object(vec![
                ("syntax".into(), Some("foo".into())),
                ("bar".into(), None)
            ]))
        );
        assert_eq!(decode("{\"syntax\": \"foo\""), Err(Invalid));
        assert_eq!(decode("null"), Ok(TopLevel::Other));
    }
}
