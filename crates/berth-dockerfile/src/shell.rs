//! Shell-word processing: quotes, escapes and `$VAR` expansion, as BuildKit does it.
//!
//! This is a port of BuildKit's `frontend/dockerfile/shell` package (`lex.go`). A
//! Dockerfile never runs a shell to expand `ENV`, `ARG`, `COPY` or `FROM` arguments;
//! the builder does it with this small lexer, which understands:
//!
//! * `'…'` (everything literal) and `"…"` (only `$`, `"` and the escape token special);
//! * the escape token (`\` or `` ` ``), which makes the next character literal;
//! * `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`,
//!   `${NAME+word}`, `${NAME:?msg}`, `${NAME?msg}`, `${NAME#pat}`, `${NAME##pat}`,
//!   `${NAME%pat}`, `${NAME%%pat}`, `${NAME/pat/rep}` and `${NAME//pat/rep}`,
//!   where patterns know `*`, `?` and `\` escapes but no bracket expressions;
//! * positional (`$1`) and special (`$@`, `$?` …) parameters, which are never set.
//!
//! [`Lex::process_word`] keeps the expansion as one word; [`Lex::process_words`] then
//! splits it on unquoted whitespace. [`Lex::process_word_with_matches`] also reports
//! which variables were referenced and set (`matched`) or referenced and unset
//! (`unmatched`), which the linter uses to flag undefined build arguments.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use crate::unicode::{is_digit, is_letter, is_space};

/// Errors from variable expansion. The message names the word being processed, as
/// BuildKit's does (`failed to process "${X": syntax error: missing '}'`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to process {input:?}: {kind}")]
pub struct ExpandError {
    /// The word that was being expanded.
    pub input: String,
    /// What went wrong.
    pub kind: ExpandErrorKind,
}

/// The reason an expansion failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandErrorKind {
    /// `${` without its closing brace.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${}`, `${{x}` or `${:x}`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// An operator BuildKit does not support, such as `${X=y}` or `${X:#y}`.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// A `'` without its closing quote.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnterminatedSingleQuote,
    /// A `"` without its closing quote.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnterminatedDoubleQuote,
    /// The input ended inside a construct that waits for this character.
    #[error("unexpected end of statement while looking for matching {0}")]
    UnexpectedEnd(char),
    /// `${X/pattern` without the `/` that starts the replacement.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// `${X?message}` or `${X:?message}` on an unset (or empty) variable.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The user's message, or BuildKit's default one.
        message: String,
    },
    /// `${A:-${B:-${C…}}}` nested deeper than [`MAX_EXPANSION_NESTING`].
    #[error("substitutions nested more than {MAX_EXPANSION_NESTING} levels deep")]
    TooDeep,
    /// A `#`, `%` or `/` pattern with an escape other than `\*`, `\?` or `\\`.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    InvalidPattern {
        /// The pattern after expansion.
        pattern: String,
        /// Why it is invalid.
        reason: String,
    },
}

/// How deeply `${…}` operators may nest.
///
/// BuildKit has no limit (Go stacks grow); berth recurses on the native stack, so it
/// refuses absurd nesting with an error instead of overflowing. Real Dockerfiles nest
/// two or three levels.
pub const MAX_EXPANSION_NESTING: usize = 128;

/// A source of variables for expansion.
pub trait EnvGetter {
    /// The value of `name`, or `None` when it is unset (an empty value is *set*).
    fn get(&self, name: &str) -> Option<&str>;
}

impl<T: EnvGetter + ?Sized> EnvGetter for &T {
    fn get(&self, name: &str) -> Option<&str> {
        (**self).get(name)
    }
}

impl EnvGetter for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

impl EnvGetter for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<&str> {
        BTreeMap::get(self, name).map(String::as_str)
    }
}

/// An environment with no variables (BuildKit's `emptyEnvs`).
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyEnv;

impl EnvGetter for EmptyEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// An ordered environment built from `KEY=VALUE` entries (BuildKit's `EnvsFromSlice`).
///
/// An entry without `=` sets the name to the empty value, and the last entry for a
/// name wins. Names are case-sensitive, as on Linux.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envs {
    keys: Vec<String>,
    values: HashMap<String, String>,
}

impl Envs {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Builds an environment from `KEY=VALUE` strings.
    pub fn from_slice<S: AsRef<str>>(entries: &[S]) -> Self {
        let mut envs = Self::new();
        for e in entries {
            let (k, v) = e.as_ref().split_once('=').unwrap_or((e.as_ref(), ""));
            envs.set(k, v);
        }
        envs
    }

    /// Sets `key` to `value`, replacing any earlier value.
    pub fn set(&mut self, key: &str, value: &str) {
        if self
            .values
            .insert(key.to_string(), value.to_string())
            .is_none()
        {
            self.keys.push(key.to_string());
        }
    }

    /// Removes `key`.
    pub fn remove(&mut self, key: &str) {
        if self.values.remove(key).is_some() {
            self.keys.retain(|k| k != key);
        }
    }

    /// The names, in the order they were first set.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }

    /// `KEY=VALUE` entries in order.
    pub fn to_vec(&self) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| format!("{k}={}", self.values[k]))
            .collect()
    }
}

impl EnvGetter for Envs {
    fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// The outcome of [`Lex::process_word_with_matches`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessWordResult {
    /// The expanded word.
    pub result: String,
    /// Variables that were referenced and set (possibly to the empty string).
    pub matched: BTreeSet<String>,
    /// Variables that were referenced but unset.
    pub unmatched: BTreeSet<String>,
}

/// The shell-word lexer. Options mirror BuildKit's `Lex` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lex {
    escape_token: char,
    /// Keep quote characters in the output (used to tell quoted heredoc words apart).
    pub raw_quotes: bool,
    /// Keep escape tokens in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters.
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written (`$X`, `${X:-y}`).
    pub skip_unset_env: bool,
}

impl Default for Lex {
    fn default() -> Self {
        Self::new('\\')
    }
}

impl Lex {
    /// A lexer using `escape_token` (`\` or `` ` ``) for escapes.
    pub fn new(escape_token: char) -> Self {
        Self {
            escape_token,
            raw_quotes: false,
            raw_escapes: false,
            skip_process_quotes: false,
            skip_unset_env: false,
        }
    }

    /// The escape token this lexer uses.
    pub fn escape_token(&self) -> char {
        self.escape_token
    }

    /// Expands `word` into a single string (spaces between words are kept).
    pub fn process_word(&self, word: &str, env: &dyn EnvGetter) -> Result<String, ExpandError> {
        self.process_word_with_matches(word, env).map(|r| r.result)
    }

    /// Expands `word` and reports which variables it referenced.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &dyn EnvGetter,
    ) -> Result<ProcessWordResult, ExpandError> {
        let mut sw = ShellWord::new(self, word, env, true);
        let (result, _) = sw.process(word)?;
        Ok(ProcessWordResult {
            result,
            matched: sw.matches,
            unmatched: sw.nonmatches,
        })
    }

    /// Expands `word`, then splits it into words on unquoted whitespace.
    ///
    /// BuildKit quirk kept for compatibility: the lexer shares one word buffer between
    /// nesting levels, so the text of the current word that precedes a `${X:-…}`-style
    /// substitution is dropped (`abc${X:-def}` gives `["def"]`). Expansions with no
    /// operator (`$X`, `${X}`) are unaffected.
    pub fn process_words(
        &self,
        word: &str,
        env: &dyn EnvGetter,
    ) -> Result<Vec<String>, ExpandError> {
        let mut sw = ShellWord::new(self, word, env, false);
        sw.process(word).map(|(_, words)| words)
    }
}

/// Per-call lexer state (BuildKit's `shellWord`).
struct ShellWord<'a> {
    lex: &'a Lex,
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn EnvGetter,
    raw_escapes: bool,
    capture: bool,
    matches: BTreeSet<String>,
    nonmatches: BTreeSet<String>,
    /// Shared by every nesting level of `process_stop_on`, as in BuildKit.
    words_buffer: String,
    /// Current nesting of `process_stop_on`.
    depth: usize,
}

/// Word splitting state of one `process_stop_on` level (BuildKit's `wordsStruct`).
#[derive(Default)]
struct Words {
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, buf: &mut String, ch: char) {
        if is_space(ch) && self.in_word {
            if !buf.is_empty() {
                self.words.push(std::mem::take(buf));
                self.in_word = false;
            }
        } else if !is_space(ch) {
            self.add_raw_char(buf, ch);
        }
    }

    fn add_raw_char(&mut self, buf: &mut String, ch: char) {
        buf.push(ch);
        self.in_word = true;
    }

    fn add_string(&mut self, buf: &mut String, s: &str) {
        for ch in s.chars() {
            self.add_char(buf, ch);
        }
    }

    fn add_raw_string(&mut self, buf: &mut String, s: &str) {
        buf.push_str(s);
        self.in_word = true;
    }

    fn get_words(mut self, buf: &mut String) -> Vec<String> {
        if !buf.is_empty() {
            self.words.push(std::mem::take(buf));
        }
        self.words
    }
}

fn char_str(ch: Option<char>) -> String {
    // Go's `string(rune(-1))` for EOF is the replacement character.
    ch.unwrap_or('\u{fffd}').to_string()
}

impl<'a> ShellWord<'a> {
    fn new(lex: &'a Lex, word: &str, env: &'a dyn EnvGetter, capture: bool) -> Self {
        let mut chars: Vec<char> = word.chars().collect();
        // Go's text/scanner skips a byte-order mark at the very start of its input.
        if chars.first() == Some(&'\u{feff}') {
            chars.remove(0);
        }
        Self {
            lex,
            chars,
            pos: 0,
            env,
            raw_escapes: lex.raw_escapes,
            capture,
            matches: BTreeSet::new(),
            nonmatches: BTreeSet::new(),
            words_buffer: String::new(),
            depth: 0,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn process(&mut self, source: &str) -> Result<(String, Vec<String>), ExpandError> {
        let raw = self.raw_escapes;
        self.process_stop_on(None, raw).map_err(|kind| ExpandError {
            input: source.to_string(),
            kind,
        })
    }

    /// Processes characters until `stop` (consumed) or the end of input.
    fn process_stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<String>), ExpandErrorKind> {
        if self.depth >= MAX_EXPANSION_NESTING {
            return Err(ExpandErrorKind::TooDeep);
        }
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        self.depth += 1;
        let r = self.process_stop_on_inner(stop);
        self.depth -= 1;
        self.raw_escapes = saved;
        r
    }

    fn process_stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<String>), ExpandErrorKind> {
        let mut result = String::new();
        self.words_buffer.clear();
        let mut words = Words::default();
        let esc = self.lex.escape_token;
        let quotes = !self.lex.skip_process_quotes;

        while let Some(ch) = self.peek() {
            if stop == Some(ch) {
                self.next();
                let w = words.get_words(&mut self.words_buffer);
                return Ok((result, w));
            }
            match ch {
                '$' => {
                    let tmp = self.process_dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&mut self.words_buffer, &tmp);
                }
                '<' => {
                    let tmp = self.process_possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                '\'' if quotes => {
                    let tmp = self.process_single_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                '"' if quotes => {
                    let tmp = self.process_double_quote()?;
                    result.push_str(&tmp);
                    words.add_raw_string(&mut self.words_buffer, &tmp);
                }
                _ => {
                    let mut ch = ch;
                    self.next();
                    if ch == esc {
                        if self.raw_escapes {
                            words.add_raw_char(&mut self.words_buffer, ch);
                            result.push(ch);
                        }
                        // The escape token escapes the next character; at the end of
                        // the input it is dropped.
                        match self.next() {
                            None => break,
                            Some(c) => {
                                ch = c;
                                words.add_raw_char(&mut self.words_buffer, ch);
                            }
                        }
                    } else {
                        words.add_char(&mut self.words_buffer, ch);
                    }
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(ExpandErrorKind::UnexpectedEnd(stop));
        }
        let w = words.get_words(&mut self.words_buffer);
        Ok((result, w))
    }

    fn process_single_quote(&mut self) -> Result<String, ExpandErrorKind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err(ExpandErrorKind::UnterminatedSingleQuote),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> Result<String, ExpandErrorKind> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        let esc = self.lex.escape_token;
        loop {
            match self.peek() {
                None => return Err(ExpandErrorKind::UnterminatedDoubleQuote),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(mut ch) => {
                    self.next();
                    if ch == esc {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape token at the very end is ignored; the missing
                            // quote is then reported.
                            None => continue,
                            // Only these can be escaped inside double quotes; before
                            // anything else the escape token stays literal.
                            Some(c) if c == '"' || c == '$' || c == esc => {
                                self.next();
                                ch = c;
                            }
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn process_dollar(&mut self) -> Result<String, ExpandErrorKind> {
        self.next(); // '$'

        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".to_string());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }

        self.next(); // '{'
        match self.peek() {
            None => return Err(ExpandErrorKind::MissingBrace),
            Some('{' | '}' | ':') => return Err(ExpandErrorKind::BadSubstitution),
            Some(_) => {}
        }
        let name = self.process_name();
        let first = self.next();
        let mut chs = char_str(first);

        match first {
            Some('}') => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            Some(c @ (':' | '+' | '-' | '?' | '#' | '%')) => {
                let null_is_unset = c == ':';
                let op = if null_is_unset {
                    let n = self.next();
                    chs.push_str(&char_str(n));
                    n
                } else {
                    Some(c)
                };
                let raw_escapes = matches!(op, Some('#' | '%'));
                if null_is_unset && raw_escapes {
                    return Err(ExpandErrorKind::UnsupportedModifier(chs));
                }
                let word = match self.process_stop_on(Some('}'), raw_escapes) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingBrace);
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let set = value.is_some();
                let value = value.unwrap_or_default();
                match op {
                    Some('-') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(word)
                        } else {
                            Ok(value)
                        }
                    }
                    Some('+') => {
                        if !set || (null_is_unset && value.is_empty()) {
                            Ok(String::new())
                        } else {
                            Ok(word)
                        }
                    }
                    Some('?') => {
                        if !set {
                            let message = if word.is_empty() {
                                "is not allowed to be unset".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        if null_is_unset && value.is_empty() {
                            let message = if word.is_empty() {
                                "is not allowed to be empty".to_string()
                            } else {
                                word
                            };
                            return Err(ExpandErrorKind::Required { name, message });
                        }
                        Ok(value)
                    }
                    Some(op @ ('%' | '#')) => {
                        // `%`/`#` remove the shortest match, `%%`/`##` the longest.
                        let (pattern, greedy) = match word.strip_prefix(op) {
                            Some(rest) => (rest.to_string(), true),
                            None => (word, false),
                        };
                        if op == '%' {
                            trim_suffix(&pattern, &value, greedy)
                        } else {
                            trim_prefix(&pattern, &value, greedy)
                        }
                    }
                    _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
                }
            }
            Some('/') => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingSlash);
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err(ExpandErrorKind::MissingBrace);
                        }
                        return Err(e);
                    }
                };
                let Some(value) = self.get_env(&name).or_else(|| {
                    if self.lex.skip_unset_env {
                        None
                    } else {
                        Some(String::new())
                    }
                }) else {
                    return Ok(format!("${{{name}/{pattern}/{replacement}}}"));
                };
                let re = Pattern::compile(&pattern, true).map_err(|reason| {
                    ExpandErrorKind::InvalidPattern {
                        pattern: pattern.clone(),
                        reason,
                    }
                })?;
                if replace_all {
                    Ok(re.replace_all(&value, &replacement))
                } else {
                    let chars: Vec<char> = value.chars().collect();
                    Ok(match re.matcher(&chars).find(0, false) {
                        Some((s, e)) => {
                            let mut out: String = chars[..s].iter().collect();
                            out.push_str(&replacement);
                            out.extend(&chars[e..]);
                            out
                        }
                        None => value,
                    })
                }
            }
            _ => Err(ExpandErrorKind::UnsupportedModifier(chs)),
        }
    }

    /// Reads a variable name: letters, digits and `_`; or a run of digits (positional
    /// parameter); or one special parameter character.
    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && is_digit(ch) {
                while let Some(c) = self.peek() {
                    if !is_digit(c) {
                        break;
                    }
                    self.next();
                    name.push(c);
                }
                return name;
            }
            if name.is_empty() && is_special_param(ch) {
                self.next();
                return ch.to_string();
            }
            if !is_letter(ch) && !is_digit(ch) && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }

    /// `<<` and the blanks after it stay attached to the heredoc word that follows.
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_string();
        }
        self.next();
        let mut result = "<<".to_string();
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            result.push(c);
            self.next();
        }
        result
    }

    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.get(name) {
            Some(v) => {
                if self.capture {
                    self.matches.insert(name.to_string());
                }
                Some(v.to_string())
            }
            None => {
                if self.capture {
                    self.nonmatches.insert(name.to_string());
                }
                None
            }
        }
    }
}

/// POSIX special parameters, never set in a Dockerfile.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// One element of a shell pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Lit(char),
    /// `?`: one character (Go's `.`, so not a newline).
    Any,
    /// `*`: any run of characters without a newline.
    Star,
}

/// A shell pattern, matched as BuildKit's regular-expression translation would be.
///
/// BuildKit turns `*` into `.*` (or `.*?`), `?` into `.` and runs Go's leftmost-first
/// regexp engine, which prefers the longest (greedy) or shortest (lazy) length for
/// each star in turn. [`Pattern::table`] computes that preferred match directly in
/// O(tokens × length); huge inputs fall back to backtracking in the same order.
#[derive(Debug, Clone)]
struct Pattern {
    toks: Vec<Tok>,
    greedy: bool,
}

impl Pattern {
    fn compile(pattern: &str, greedy: bool) -> Result<Self, String> {
        let mut chars = pattern.chars().peekable();
        if chars.peek() == Some(&'\u{feff}') {
            chars.next();
        }
        let mut toks = Vec::new();
        while let Some(c) = chars.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => {
                    // `}` and `/` must be escaped inside `${}`; that escape is not part
                    // of the pattern.
                    if matches!(chars.peek(), Some('}' | '/')) {
                        continue;
                    }
                    match chars.next() {
                        Some(e @ ('*' | '?' | '\\')) => toks.push(Tok::Lit(e)),
                        other => {
                            return Err(format!("invalid escape '\\{}'", char_str(other)));
                        }
                    }
                }
                _ => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Self { toks, greedy })
    }

    /// Prepares matching against `s`.
    fn matcher<'a>(&'a self, s: &'a [char]) -> Matcher<'a> {
        let cells = self.toks.len().saturating_mul(s.len() + 1);
        let engine = if cells <= MAX_TABLE_CELLS {
            self.table(s)
        } else {
            Engine::Backtrack {
                failed: HashSet::new(),
            }
        };
        Matcher {
            pat: self,
            s,
            engine,
        }
    }

    /// Dynamic programming from the last token backwards: which (token, position)
    /// states can still complete a match, and for each star the position its
    /// preferred (longest or shortest) choice leads to.
    fn table(&self, s: &[char]) -> Engine {
        let n = s.len();
        let mut next_row = vec![true; n + 1];
        let mut star_next: Vec<Option<Vec<u32>>> = vec![None; self.toks.len()];
        for (ti, tok) in self.toks.iter().enumerate().rev() {
            let mut row = vec![false; n + 1];
            match *tok {
                Tok::Lit(c) => {
                    for pos in 0..n {
                        row[pos] = s[pos] == c && next_row[pos + 1];
                    }
                }
                Tok::Any => {
                    for pos in 0..n {
                        row[pos] = s[pos] != '\n' && next_row[pos + 1];
                    }
                }
                Tok::Star => {
                    let mut best = vec![NO_MATCH; n + 1];
                    for pos in (0..=n).rev() {
                        let extend = pos < n && s[pos] != '\n';
                        let here = next_row[pos];
                        best[pos] = if self.greedy {
                            if extend && best[pos + 1] != NO_MATCH {
                                best[pos + 1]
                            } else if here {
                                pos as u32
                            } else {
                                NO_MATCH
                            }
                        } else if here {
                            pos as u32
                        } else if extend {
                            best[pos + 1]
                        } else {
                            NO_MATCH
                        };
                        row[pos] = best[pos] != NO_MATCH;
                    }
                    star_next[ti] = Some(best);
                }
            }
            next_row = row;
        }
        Engine::Table {
            can_start: next_row,
            star_next,
        }
    }

    /// Go's `Regexp.ReplaceAllString`, including its template expansion of `$`.
    fn replace_all(&self, value: &str, replacement: &str) -> String {
        let s: Vec<char> = value.chars().collect();
        let mut m = self.matcher(&s);
        let mut out = String::new();
        let mut last_match_end = 0;
        let mut search_pos = 0;
        while search_pos <= s.len() {
            let Some((a0, a1)) = m.find(search_pos, false) else {
                break;
            };
            out.extend(&s[last_match_end..a0]);
            // An empty match right after a previous match is not replaced again.
            if a1 > last_match_end || a0 == 0 {
                let matched: String = s[a0..a1].iter().collect();
                expand_template(&mut out, replacement, &matched);
            }
            last_match_end = a1;
            search_pos = if search_pos + 1 > a1 {
                search_pos + 1
            } else {
                a1
            };
        }
        out.extend(&s[last_match_end..]);
        out
    }
}

/// Above this many table cells (tokens × text length) the matcher backtracks
/// instead, which needs no table but can be slow on hostile patterns.
const MAX_TABLE_CELLS: usize = 1 << 24;

/// Marks a star position from which no match can complete.
const NO_MATCH: u32 = u32::MAX;

enum Engine {
    /// See [`Pattern::table`].
    Table {
        can_start: Vec<bool>,
        star_next: Vec<Option<Vec<u32>>>,
    },
    /// Preference-ordered backtracking that remembers (star, position) states that
    /// cannot complete.
    Backtrack { failed: HashSet<(usize, usize)> },
}

/// A pattern bound to the text it searches.
struct Matcher<'a> {
    pat: &'a Pattern,
    s: &'a [char],
    engine: Engine,
}

impl Matcher<'_> {
    /// The end of the preferred match starting exactly at `start`.
    fn match_at(&mut self, start: usize) -> Option<usize> {
        match &mut self.engine {
            Engine::Table {
                can_start,
                star_next,
            } => {
                if !can_start[start] {
                    return None;
                }
                let mut pos = start;
                for next in star_next.iter() {
                    pos = match next {
                        Some(best) => best[pos] as usize,
                        None => pos + 1,
                    };
                }
                Some(pos)
            }
            Engine::Backtrack { failed } => backtrack(self.pat, self.s, start, failed),
        }
    }

    /// The leftmost match at or after `from` (only at `from` when `anchored`).
    fn find(&mut self, from: usize, anchored: bool) -> Option<(usize, usize)> {
        let last = if anchored { from } else { self.s.len() };
        (from..=last).find_map(|start| self.match_at(start).map(|end| (start, end)))
    }
}

/// Explores star lengths in the regexp engine's preference order.
fn backtrack(
    pat: &Pattern,
    s: &[char],
    start: usize,
    failed: &mut HashSet<(usize, usize)>,
) -> Option<usize> {
    // Frames for stars: (token index, base position, chosen length, max length).
    let mut stack: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut ti = 0;
    let mut pos = start;
    loop {
        if ti == pat.toks.len() {
            return Some(pos);
        }
        let ok = match pat.toks[ti] {
            Tok::Lit(c) => s.get(pos) == Some(&c),
            Tok::Any => matches!(s.get(pos), Some(&c) if c != '\n'),
            Tok::Star => !failed.contains(&(ti, pos)),
        };
        if ok {
            if pat.toks[ti] == Tok::Star {
                let max = s[pos..].iter().take_while(|&&c| c != '\n').count();
                let len = if pat.greedy { max } else { 0 };
                stack.push((ti, pos, len, max));
                pos += len;
            } else {
                pos += 1;
            }
            ti += 1;
            continue;
        }
        // Back to the most recent star with an untried length.
        loop {
            let (sti, base, len, max) = stack.pop()?;
            let next = if pat.greedy {
                len.checked_sub(1)
            } else if len < max {
                Some(len + 1)
            } else {
                None
            };
            if let Some(len) = next {
                stack.push((sti, base, len, max));
                ti = sti + 1;
                pos = base + len;
                break;
            }
            failed.insert((sti, base));
        }
    }
}

/// Go's `Regexp.Expand` for a pattern whose only group is the whole match: `$$` is a
/// dollar, `$0`/`${0}` the match, any other well-formed `$name` empty, and a malformed
/// reference a literal `$`.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        rest = &rest[i + 1..];
        if let Some(r) = rest.strip_prefix('$') {
            out.push('$');
            rest = r;
            continue;
        }
        let (brace, body) = match rest.strip_prefix('{') {
            Some(b) => (true, b),
            None => (false, rest),
        };
        let name_len: usize = body
            .chars()
            .take_while(|&c| is_letter(c) || is_digit(c) || c == '_')
            .map(char::len_utf8)
            .sum();
        if name_len == 0 || (brace && !body[name_len..].starts_with('}')) {
            out.push('$');
            continue;
        }
        let name = &body[..name_len];
        rest = &body[name_len + usize::from(brace)..];
        let mut num: i64 = 0;
        for b in name.bytes() {
            if !b.is_ascii_digit() || num >= 100_000_000 {
                num = -1;
                break;
            }
            num = num * 10 + i64::from(b - b'0');
        }
        if name.len() > 1 && name.starts_with('0') {
            num = -1;
        }
        if num == 0 {
            out.push_str(matched);
        }
    }
    out.push_str(rest);
}

fn trim_prefix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandErrorKind> {
    let re =
        Pattern::compile(pattern, greedy).map_err(|reason| ExpandErrorKind::InvalidPattern {
            pattern: pattern.to_string(),
            reason,
        })?;
    let chars: Vec<char> = value.chars().collect();
    Ok(match re.matcher(&chars).find(0, true) {
        Some((_, end)) => chars[end..].iter().collect(),
        None => value.to_string(),
    })
}

/// Reverses a pattern but keeps each `\x` escape pair in order (`a\*c` → `c\*a`).
fn reverse_pattern(pattern: &str) -> String {
    let runes: Vec<char> = pattern.chars().collect();
    let n = runes.len();
    let mut out = vec!['\0'; n];
    let mut i = 0;
    while i < n {
        let tok = runes[i];
        let out_idx = n - 1 - i;
        if tok == '\\' && i != n - 1 {
            out[out_idx - 1] = tok;
            out[out_idx] = runes[i + 1];
            i += 2;
        } else {
            out[out_idx] = tok;
            i += 1;
        }
    }
    out.into_iter().collect()
}

/// Suffix removal: regular expressions find leftmost matches, so BuildKit reverses
/// both the pattern and the value and removes a prefix instead.
fn trim_suffix(pattern: &str, value: &str, greedy: bool) -> Result<String, ExpandErrorKind> {
    let reversed: String = value.chars().rev().collect();
    let trimmed = trim_prefix(&reverse_pattern(pattern), &reversed, greedy)?;
    Ok(trimmed.chars().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_pattern_keeps_escapes() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
        assert_eq!(reverse_pattern("\\\\b"), "b\\\\");
    }

    #[test]
    fn pattern_escapes() {
        assert!(Pattern::compile("\\", true).is_err());
        assert!(Pattern::compile("\\x", true).is_err());
        assert!(Pattern::compile("\\\\\\", true).is_err());
        assert!(Pattern::compile("(()[]{\\}^$.\\*\\?|\\\\", true).is_ok());
    }

    #[test]
    fn replace_all_follows_go() {
        let p = Pattern::compile("", true).unwrap();
        assert_eq!(p.replace_all("ab", "-"), "-a-b-");
        // Shell `b*` is the regexp `b.*`, and `.` stops at a newline.
        let p = Pattern::compile("b*", true).unwrap();
        assert_eq!(p.replace_all("abba\nab", "X"), "aX\naX");
        let p = Pattern::compile("o", true).unwrap();
        assert_eq!(p.replace_all("foo", "[$0$$${0}$1$x$]"), "f[o$o$][o$o$]");
    }

    #[test]
    fn heredoc_prefix_kept_raw() {
        let lex = Lex::new('\\');
        assert_eq!(
            lex.process_words("RUN <<  EOF  > foo", &EmptyEnv).unwrap(),
            vec!["RUN", "<<  EOF", ">", "foo"]
        );
    }

    #[test]
    fn process_words_drops_prefix_before_operator_like_buildkit() {
        let lex = Lex::new('\\');
        assert_eq!(
            lex.process_words("abc${X:-def} ghi", &EmptyEnv).unwrap(),
            vec!["def", "ghi"]
        );
    }

    #[test]
    fn skip_unset_env_keeps_references() {
        let mut lex = Lex::new('\\');
        lex.skip_unset_env = true;
        assert_eq!(
            lex.process_word("$A ${B} ${C:-x} ${D/a/b}", &EmptyEnv)
                .unwrap(),
            "$A ${B} ${C:-x} ${D/a/b}"
        );
    }

    #[test]
    fn table_and_backtracking_agree() {
        // Exhaustive over small patterns and texts: both engines must pick the same
        // (leftmost-first) match.
        let alphabet = ['a', 'b', '*', '?'];
        let texts = [
            "", "a", "ab", "ba", "aab", "abab", "a\nb", "bba\nab", "aaaa",
        ];
        let mut patterns = vec![String::new()];
        for _ in 0..4 {
            let next: Vec<String> = patterns
                .iter()
                .flat_map(|p| alphabet.iter().map(move |c| format!("{p}{c}")))
                .collect();
            patterns.extend(next);
            patterns.dedup();
        }
        for p in &patterns {
            for greedy in [true, false] {
                let pat = Pattern::compile(p, greedy).unwrap();
                for t in texts {
                    let s: Vec<char> = t.chars().collect();
                    let mut table = pat.matcher(&s);
                    let mut failed = HashSet::new();
                    for start in 0..=s.len() {
                        assert_eq!(
                            table.match_at(start),
                            backtrack(&pat, &s, start, &mut failed),
                            "pattern {p:?} greedy {greedy} text {t:?} start {start}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let lex = Lex::new('\\');
        let ok = format!("{}x{}", "${A:-".repeat(100), "}".repeat(100));
        assert_eq!(lex.process_word(&ok, &EmptyEnv).unwrap(), "x");
        let deep = format!("{}x{}", "${A:-".repeat(2000), "}".repeat(2000));
        assert_eq!(
            lex.process_word(&deep, &EmptyEnv).unwrap_err().kind,
            ExpandErrorKind::TooDeep
        );
    }

    #[test]
    fn backtick_escape() {
        let lex = Lex::new('`');
        assert_eq!(lex.process_word("a`$b \\c", &EmptyEnv).unwrap(), "a$b \\c");
    }
}
