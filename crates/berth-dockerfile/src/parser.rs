//! The Dockerfile parser: text to [`Node`] tree, as BuildKit's
//! `frontend/dockerfile/parser` does it.
//!
//! The work happens in two layers, as upstream:
//!
//! 1. **Logical lines.** Physical lines are read one by one. Leading parser directives
//!    set the escape token. A line ending in the escape token (not itself escaped)
//!    continues on the next line, which is appended *without* a separator and
//!    *without* stripping its indentation; comment lines and blank lines inside a
//!    continuation are dropped (blank ones with a warning). After an instruction that
//!    may hold heredocs (RUN, COPY, ADD, and ONBUILD of those), the following lines up
//!    to each terminator are its heredoc bodies.
//! 2. **Per-instruction argument parsing** (BuildKit's `line_parsers.go`): the keyword,
//!    the leading `--flags`, then arguments shaped by the instruction: JSON or shell
//!    form, whitespace-split lists, `key=value` pairs, or ONBUILD's nested instruction.
//!
//! Upstream's quirks are kept on purpose, because a Dockerfile must mean the same to
//! berth as to `docker build`; each is noted where it is implemented.

use crate::ast::{Directive, Heredoc, Node, ParseResult, Span, Warning};
use crate::directives::DirectiveParser;
use crate::error::{DirectiveError, HeredocError, ParseError};
use crate::json::{self, TopLevel};
use crate::shell::{EmptyEnv, Lex};
use crate::unicode::{go_to_lower, is_space, lossy, trim_left_space, trim_space};

/// The escape token when no `# escape=` directive is given.
pub const DEFAULT_ESCAPE_TOKEN: char = '\\';

/// The longest physical line BuildKit's scanner accepts (`bufio.MaxScanTokenSize - 1`).
pub const MAX_LINE_LENGTH: usize = 65535;

/// How deep `ONBUILD ONBUILD …` may nest before berth refuses the file.
///
/// BuildKit's parser has no limit, but its instruction layer rejects any nesting
/// (`Chaining ONBUILD via ONBUILD ONBUILD isn't allowed`), so no buildable file comes
/// near this. The limit keeps recursion over the tree bounded on hostile input.
pub const MAX_ONBUILD_NESTING: usize = 64;

const EMPTY_CONTINUATION_URL: &str =
    "https://docs.docker.com/go/dockerfile/rule/no-empty-continuation/";

/// Parses a Dockerfile.
///
/// ```
/// let res = berth_dockerfile::parse("FROM alpine\nRUN echo hi \\\n  there\n").unwrap();
/// assert_eq!(res.ast.dump(), "(from \"alpine\")\n(run \"echo hi   there\")");
/// assert_eq!(res.ast.children[1].span.end_line, 3);
/// ```
pub fn parse(input: &str) -> Result<ParseResult, ParseError> {
    Parser::new(input).run()
}

/// Reads physical lines with their newline, like BuildKit's `scanLines` split
/// function on a `bufio.Scanner`; a line too long for that scanner ends the input
/// and is reported after the lines before it have been parsed.
struct LineScanner<'a> {
    src: &'a str,
    pos: usize,
    too_long: bool,
}

impl<'a> LineScanner<'a> {
    /// The next line and its byte offset.
    fn scan(&mut self) -> Option<(&'a str, usize)> {
        if self.too_long || self.pos >= self.src.len() {
            return None;
        }
        let rest = &self.src[self.pos..];
        let (line, content_len) = match rest.find('\n') {
            Some(i) => (&rest[..=i], i),
            None => (rest, rest.len()),
        };
        if content_len > MAX_LINE_LENGTH {
            self.too_long = true;
            return None;
        }
        let start = self.pos;
        self.pos += line.len();
        Some((line, start))
    }
}

/// Parser state that instruction parsing depends on (BuildKit's `directives`).
struct Directives {
    parser: DirectiveParser,
    escape: char,
    found: Vec<Directive>,
}

impl Directives {
    /// Feeds a line to the directive parser; true when it was a directive.
    fn possible_parser_directive(&mut self, line: &str) -> Result<bool, DirectiveError> {
        let Some(d) = self.parser.parse_line(line)? else {
            return Ok(false);
        };
        if d.name == "escape" {
            self.escape = match d.value.as_str() {
                "`" => '`',
                "\\" => '\\',
                _ => return Err(DirectiveError::InvalidEscapeToken(d.value)),
            };
        }
        self.found.push(d);
        Ok(true)
    }
}

struct Parser<'a> {
    scanner: LineScanner<'a>,
    d: Directives,
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(line: &str) -> bool {
    trim_left_space(line).starts_with('#')
}

fn is_empty_continuation_line(line: &str) -> bool {
    trim_left_space(trim_newline(line)).is_empty()
}

/// BuildKit's continuation test, the regexp `([^E])E[ \t]*$|^E[ \t]*$` for escape
/// token `E`, replaced by `$1`. A line ending in two escape tokens (`foo\\`) is not a
/// continuation; neither is `foo \\\` (a documented upstream limitation: Go's regexp
/// has no look-behind). Returns the line without the token and whether the logical
/// line ends here.
pub(crate) fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    if let Some(before) = t.strip_suffix(escape) {
        if before.is_empty() || !before.ends_with(escape) {
            return (before, false);
        }
    }
    (line, true)
}

/// Trims the newline, optionally leading whitespace, feeds the directive parser, and
/// blanks out comment lines (BuildKit's `processLine`).
fn process_line<'l>(
    d: &mut Directives,
    token: &'l str,
    strip_left: bool,
) -> Result<(&'l str, bool), DirectiveError> {
    let token = trim_newline(token);
    let token = if strip_left {
        trim_left_space(token)
    } else {
        token
    };
    let ok = d.possible_parser_directive(token)?;
    Ok((if is_comment(token) { "" } else { token }, ok))
}

impl<'a> Parser<'a> {
    fn new(input: &'a str) -> Self {
        Self {
            scanner: LineScanner {
                src: input,
                pos: 0,
                too_long: false,
            },
            d: Directives {
                parser: DirectiveParser::new(),
                escape: DEFAULT_ESCAPE_TOKEN,
                found: Vec::new(),
            },
        }
    }

    fn run(mut self) -> Result<ParseResult, ParseError> {
        let mut current_line = 0usize;
        let mut root = Node::default();
        let mut warnings = Vec::new();
        let mut comments: Vec<String> = Vec::new();

        while let Some((raw, offset)) = self.scanner.scan() {
            let mut bytes_read = raw;
            let mut start_offset = offset;
            if current_line == 0 {
                if let Some(r) = bytes_read.strip_prefix('\u{feff}') {
                    bytes_read = r;
                    start_offset += '\u{feff}'.len_utf8();
                }
            }
            if is_comment(bytes_read) {
                // BuildKit drops the first byte, not the `#`: an indented comment keeps
                // its `#` in the recorded text.
                let comment = lossy(&bytes_read.as_bytes()[1..]);
                let comment = trim_space(&comment);
                if comment.is_empty() {
                    comments.clear();
                } else {
                    comments.push(comment.to_string());
                }
            }
            let (first, directive_ok) =
                process_line(&mut self.d, bytes_read, true).map_err(|e| e.at(current_line + 1))?;
            if directive_ok {
                comments.pop();
            }
            current_line += 1;
            let start_line = current_line;
            let untrimmed = trim_newline(bytes_read);
            let column = untrimmed[..untrimmed.len() - trim_left_space(untrimmed).len()]
                .chars()
                .count()
                + 1;

            let (first, mut is_end) = trim_continuation(first, self.d.escape);
            if is_end && first.is_empty() {
                continue;
            }
            let mut line = first.to_string();
            let mut has_empty_continuation = false;
            while !is_end {
                let Some((raw, _)) = self.scanner.scan() else {
                    break;
                };
                let (next, _) =
                    process_line(&mut self.d, raw, false).map_err(|e| e.at(current_line + 1))?;
                current_line += 1;
                if is_comment(raw) {
                    continue;
                }
                if is_empty_continuation_line(next) {
                    has_empty_continuation = true;
                    continue;
                }
                let (next, end) = trim_continuation(next, self.d.escape);
                line.push_str(next);
                is_end = end;
            }

            if has_empty_continuation {
                warnings.push(Warning {
                    short: format!("Empty continuation line found in: {line}"),
                    detail: vec![
                        "Empty continuation lines will become errors in a future release"
                            .to_string(),
                    ],
                    url: EMPTY_CONTINUATION_URL.to_string(),
                    line: current_line,
                });
            }

            let mut child =
                new_node_from_line(&line, self.d.escape, std::mem::take(&mut comments), 0)
                    .map_err(|e| e.at(start_line, current_line))?;

            if can_contain_heredoc(&child) && line.contains("<<") {
                let heredocs = heredocs_from_line(&line).map_err(|source| ParseError::Heredoc {
                    line: start_line,
                    end_line: current_line,
                    source,
                })?;
                for mut heredoc in heredocs {
                    let mut terminated = false;
                    let mut content = std::mem::take(&mut heredoc.content);
                    while let Some((raw, _)) = self.scanner.scan() {
                        current_line += 1;
                        let mut possible_terminator = trim_newline(raw);
                        if heredoc.chomp {
                            possible_terminator = possible_terminator.trim_start_matches('\t');
                        }
                        if possible_terminator == heredoc.name {
                            terminated = true;
                            break;
                        }
                        content.push_str(raw);
                    }
                    if !terminated {
                        return Err(ParseError::UnterminatedHeredoc {
                            line: start_line,
                            end_line: current_line,
                            name: heredoc.name,
                        });
                    }
                    heredoc.content = content;
                    child.heredocs.push(heredoc);
                }
            }

            let span = Span {
                start_line,
                end_line: current_line,
                column: Some(column),
                start_offset,
                end_offset: self.scanner.pos,
            };
            set_spans(&mut child, span);
            if root.children.is_empty() {
                root.span.start_line = start_line;
                root.span.start_offset = start_offset;
            }
            root.span.end_line = current_line;
            root.span.end_offset = self.scanner.pos;
            root.children.push(child);
        }

        if root.children.is_empty() {
            return Err(ParseError::NoInstructions {
                line: current_line.max(1),
            });
        }
        if self.scanner.too_long {
            return Err(ParseError::LineTooLong {
                line: current_line + 1,
                max: MAX_LINE_LENGTH,
            });
        }
        Ok(ParseResult {
            ast: root,
            escape_token: self.d.escape,
            directives: self.d.found,
            warnings,
        })
    }
}

/// Gives every node of an instruction the instruction's lines; only the instruction
/// node itself knows its column.
fn set_spans(node: &mut Node, span: Span) {
    node.span = span;
    let inner = Span {
        column: None,
        ..span
    };
    for a in &mut node.args {
        set_spans(a, inner);
    }
    for c in &mut node.children {
        set_spans(c, inner);
    }
}

/// An argument-parsing failure, before line numbers are known.
#[derive(Debug)]
pub(crate) enum NodeError {
    MissingValue(&'static str),
    MissingEquals(String),
    NotStringArray,
    OnbuildTooDeep,
}

impl NodeError {
    fn at(self, line: usize, end_line: usize) -> ParseError {
        match self {
            Self::MissingValue(instruction) => ParseError::MissingValue {
                line,
                end_line,
                instruction,
            },
            Self::MissingEquals(word) => ParseError::MissingEquals {
                line,
                end_line,
                word,
            },
            Self::NotStringArray => ParseError::NotStringArray { line, end_line },
            Self::OnbuildTooDeep => ParseError::OnbuildTooDeep {
                line,
                max: MAX_ONBUILD_NESTING,
            },
        }
    }
}

fn value_node(value: impl Into<String>) -> Node {
    Node {
        value: value.into(),
        ..Node::default()
    }
}

/// Splits a logical line into keyword, flags and arguments and dispatches on the
/// keyword (BuildKit's `newNodeFromLine`).
pub(crate) fn new_node_from_line(
    line: &str,
    escape: char,
    comments: Vec<String>,
    depth: usize,
) -> Result<Node, NodeError> {
    let (cmd, flags, args) = split_command(line, escape);
    let (next, json) = match go_to_lower(&cmd).as_str() {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(&args)?,
        "arg" => (
            parse_words(&args, escape)
                .into_iter()
                .map(value_node)
                .collect(),
            false,
        ),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(&args)?,
        "env" => (parse_name_val(&args, "ENV", escape)?, false),
        "label" => (parse_name_val(&args, "LABEL", escape)?, false),
        "expose" | "from" => (parse_strings_whitespace_delimited(&args), false),
        "healthcheck" => parse_health_config(&args)?,
        "maintainer" | "stopsignal" | "user" | "workdir" => (parse_string(&args), false),
        "onbuild" => {
            if args.is_empty() {
                (Vec::new(), false)
            } else {
                if depth >= MAX_ONBUILD_NESTING {
                    return Err(NodeError::OnbuildTooDeep);
                }
                let child = new_node_from_line(&args, escape, Vec::new(), depth + 1)?;
                let wrapper = Node {
                    children: vec![child],
                    ..Node::default()
                };
                (vec![wrapper], false)
            }
        }
        // BuildKit's parseIgnore: unknown instructions parse, with one empty argument;
        // the instruction layer reports them.
        _ => (vec![Node::default()], false),
    };
    Ok(Node {
        value: cmd,
        args: next,
        json,
        original: line.to_string(),
        flags,
        prev_comment: comments,
        ..Node::default()
    })
}

/// `[\t\v\f\r ]`, BuildKit's `reWhitespace` class (no newline, no Unicode spaces).
fn is_re_whitespace(b: u8) -> bool {
    matches!(b, b'\t' | 0x0b | 0x0c | b'\r' | b' ')
}

/// Go's `reWhitespace.Split(s, n)` with `regexp.Split`'s edge cases.
pub(crate) fn split_whitespace_n(s: &str, n: isize) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    if s.is_empty() {
        return vec![String::new()];
    }
    let b = s.as_bytes();
    let mut matches = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if n > 0 && matches.len() == n as usize {
            break;
        }
        if is_re_whitespace(b[i]) {
            let start = i;
            while i < b.len() && is_re_whitespace(b[i]) {
                i += 1;
            }
            matches.push((start, i));
        } else {
            i += 1;
        }
    }
    let mut out = Vec::new();
    let (mut beg, mut end) = (0, 0);
    for (ms, me) in matches {
        if n > 0 && out.len() == (n - 1) as usize {
            break;
        }
        end = ms;
        if me != 0 {
            out.push(s[beg..end].to_string());
        }
        beg = me;
    }
    if end != s.len() {
        out.push(s[beg..].to_string());
    }
    out
}

/// Splits off the keyword and the builder flags (BuildKit's `splitCommand`).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let parts = split_whitespace_n(trim_space(line), 2);
    let mut parts = parts.into_iter();
    let cmd = parts.next().unwrap_or_default();
    match parts.next() {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(&rest, escape);
            (cmd, flags, trim_space(&args).to_string())
        }
        None => (cmd, Vec::new(), String::new()),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Spaces,
    Word,
    Quote,
}

/// Takes the leading `--flag` words off `line` (BuildKit's `extractBuilderFlags`).
///
/// Quotes are removed and the escape token escapes the next character; a bare `--`
/// ends the flags. BuildKit walks this text byte by byte and appends each byte as a
/// Latin-1 character, so a non-ASCII character inside a flag comes out re-encoded
/// (`é` becomes `Ã©`) and the UTF-8 bytes 0x85 and 0xA0 count as blanks. That is
/// kept, since it decides what the flag means to BuildKit.
pub(crate) fn extract_builder_flags(line: &str, escape: char) -> (String, Vec<String>) {
    let b = line.as_bytes();
    let n = b.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut quote = 0u8;
    let mut blank_ok = false;
    let mut ch = 0u8;
    let mut pos = 0;
    while pos <= n {
        if pos != n {
            ch = b[pos];
        }
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(char::from(ch)) {
                pos += 1;
                continue;
            }
            if ch != b'-' || pos + 1 == n || b[pos + 1] != b'-' {
                return (lossy(&b[pos..]), words);
            }
            phase = Phase::Word;
        }
        if pos == n {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(char::from(ch)) {
                let w = std::mem::take(&mut word);
                phase = Phase::Spaces;
                if w == "--" {
                    return (lossy(&b[pos..]), words);
                }
                if blank_ok || !w.is_empty() {
                    words.push(w);
                }
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == b'\'' || ch == b'"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if char::from(ch) == escape {
                if pos + 1 == n {
                    pos += 1;
                    continue;
                }
                pos += 1;
                ch = b[pos];
            }
            word.push(char::from(ch));
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if char::from(ch) == escape {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            ch = b[pos];
        }
        word.push(char::from(ch));
        pos += 1;
    }
    (String::new(), words)
}

/// Splits on Unicode whitespace outside quotes, keeping quotes and escapes in the
/// words (BuildKit's `parseWords`; they are removed later, at expansion time).
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let n = chars.len();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut word = String::new();
    let mut ch = '\0';
    let mut pos = 0;
    while pos <= n {
        if pos != n {
            ch = chars[pos];
        }
        if phase == Phase::Spaces {
            if pos == n {
                break;
            }
            if is_space(ch) {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if pos == n {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        if phase == Phase::Word {
            if is_space(ch) {
                phase = Phase::Spaces;
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if ch == '\'' || ch == '"' {
                quote = ch;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if ch == escape {
                if pos + 1 == n {
                    // An escape token at the very end is dropped.
                    pos += 1;
                    continue;
                }
                // Outside quotes the escape token and what it escapes are both kept,
                // even when that is a quote.
                word.push(ch);
                pos += 1;
                ch = chars[pos];
            }
            word.push(ch);
            pos += 1;
            continue;
        }
        // Phase::Quote
        if ch == quote {
            phase = Phase::Word;
        }
        // Nothing can be escaped inside single quotes.
        if ch == escape && quote != '\'' {
            if pos + 1 == n {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            word.push(ch);
            ch = chars[pos];
        }
        word.push(ch);
        pos += 1;
    }
    words
}

fn key_value_nodes(out: &mut Vec<Node>, key: &str, value: &str, sep: &str) {
    out.push(value_node(key));
    out.push(value_node(value));
    out.push(value_node(sep));
}

/// ENV and LABEL: `KEY value` (old form, chain `[KEY, value, ""]`) or
/// `k=v k2=v2` (chain `[k, v, "=", k2, v2, "="]`) (BuildKit's `parseNameVal`).
pub(crate) fn parse_name_val(
    rest: &str,
    key: &'static str,
    escape: char,
) -> Result<Vec<Node>, NodeError> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if !first.contains('=') {
        let parts = split_whitespace_n(rest, 2);
        if parts.len() < 2 {
            return Err(NodeError::MissingValue(key));
        }
        key_value_nodes(&mut out, &parts[0], &parts[1], "");
        return Ok(out);
    }
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(NodeError::MissingEquals(word));
        };
        key_value_nodes(&mut out, k, v, "=");
    }
    Ok(out)
}

fn parse_strings_whitespace_delimited(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        return Vec::new();
    }
    split_whitespace_n(rest, -1)
        .into_iter()
        .map(value_node)
        .collect()
}

fn parse_string(rest: &str) -> Vec<Node> {
    if rest.is_empty() {
        Vec::new()
    } else {
        vec![value_node(rest)]
    }
}

/// Outcome of trying the JSON (exec) form.
pub(crate) enum JsonForm {
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// Does not start with `[`, or is not valid JSON: use the shell form.
    NotJson,
    /// Valid JSON array with a non-string element: a hard error.
    NotStringArray,
}

/// BuildKit's `parseJSON`.
pub(crate) fn parse_json(rest: &str) -> JsonForm {
    let rest = trim_left_space(rest);
    if !rest.starts_with('[') {
        return JsonForm::NotJson;
    }
    match json::decode(rest) {
        Ok(TopLevel::Array(items)) => match items.into_iter().collect::<Option<Vec<_>>>() {
            Some(strings) => JsonForm::Strings(strings),
            None => JsonForm::NotStringArray,
        },
        _ => JsonForm::NotJson,
    }
}

/// RUN, CMD, ENTRYPOINT, SHELL: JSON array, else the whole text as one argument.
fn parse_maybe_json(rest: &str) -> Result<(Vec<Node>, bool), NodeError> {
    if rest.is_empty() {
        return Ok((Vec::new(), false));
    }
    match parse_json(rest) {
        JsonForm::Strings(s) => Ok((s.into_iter().map(value_node).collect(), true)),
        JsonForm::NotStringArray => Err(NodeError::NotStringArray),
        JsonForm::NotJson => Ok((vec![value_node(rest)], false)),
    }
}

/// ADD, COPY, VOLUME: JSON array, else a whitespace-separated list.
fn parse_maybe_json_to_list(rest: &str) -> Result<(Vec<Node>, bool), NodeError> {
    match parse_json(rest) {
        JsonForm::Strings(s) => Ok((s.into_iter().map(value_node).collect(), true)),
        JsonForm::NotStringArray => Err(NodeError::NotStringArray),
        JsonForm::NotJson => Ok((parse_strings_whitespace_delimited(rest), false)),
    }
}

/// HEALTHCHECK: the type word (`CMD`, `NONE`), then the RUN/CMD rule. BuildKit finds
/// the first word byte by byte, like [`extract_builder_flags`].
fn parse_health_config(rest: &str) -> Result<(Vec<Node>, bool), NodeError> {
    let b = rest.as_bytes();
    let mut sep = 0;
    while sep < b.len() && !is_space(char::from(b[sep])) {
        sep += 1;
    }
    let mut next = sep;
    while next < b.len() && is_space(char::from(b[next])) {
        next += 1;
    }
    if sep == 0 {
        return Ok((Vec::new(), false));
    }
    let typ = lossy(&b[..sep]);
    let (cmd, json) = parse_maybe_json(&lossy(&b[next..]))?;
    let mut out = vec![value_node(typ)];
    out.extend(cmd);
    Ok((out, json))
}

/// RUN, COPY and ADD (directly or under ONBUILD) may have heredocs, unless written in
/// JSON form.
fn can_contain_heredoc(node: &Node) -> bool {
    let mut node = node;
    if node.keyword() == "onbuild" {
        if let Some(inner) = node.onbuild_trigger() {
            node = inner;
        }
    }
    matches!(node.keyword().as_str(), "add" | "copy" | "run") && !node.json
}

/// The heredocs a logical line opens, in order (BuildKit's `heredocsFromLine`).
///
/// The line is split into words with quotes and escapes kept, always with `\` as the
/// escape token, whatever `# escape=` says (as upstream); a line that does not lex
/// has no heredocs.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<Heredoc>, HeredocError> {
    let mut lex = Lex::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &EmptyEnv).unwrap_or_default();
    let mut docs = Vec::new();
    for word in words {
        if let Some(h) = parse_heredoc(&word)? {
            docs.push(h);
        }
    }
    Ok(docs)
}

/// Go regexp `\s`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Recognises a heredoc word: `[fd]<<[-][blanks]name`, where the name may be partly
/// quoted (then the body is not expanded). Returns `None` when `src` is not a heredoc
/// word (BuildKit's `ParseHeredoc`, regexp `^(\d*)<<(-?)\s*([^<]*)$`).
///
/// ```
/// let h = berth_dockerfile::parse_heredoc("<<-'EOF'").unwrap().unwrap();
/// assert_eq!((h.name.as_str(), h.chomp, h.expand), ("EOF", true, false));
/// assert!(berth_dockerfile::parse_heredoc("<<EOF sh").unwrap().is_none());
/// ```
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, HeredocError> {
    let digits = src.bytes().take_while(u8::is_ascii_digit).count();
    let Some(after) = src[digits..].strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, after) = match after.strip_prefix('-') {
        Some(a) => (true, a),
        None => (false, after),
    };
    let rest = after.trim_start_matches(is_re_space);
    if rest.contains('<') || rest.is_empty() {
        return Ok(None);
    }
    // strconv.ParseUint: empty gives 0, overflow the largest value.
    let fd = if digits == 0 {
        0
    } else {
        src[..digits].parse::<u64>().unwrap_or(u64::MAX)
    };

    // Lex the word with and without quote removal: if the counts of quote characters
    // differ, part of the word was quoted, so the content must not be expanded.
    let mut lex = Lex::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &EmptyEnv)?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let words_raw = lex.process_words(rest, &EmptyEnv)?;
    if words_raw.len() != words.len() {
        return Err(HeredocError::Inconsistent(rest.to_string()));
    }
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    let word = words.into_iter().next().unwrap_or_default();
    let expand = quotes(&word) == quotes(&words_raw[0]);
    Ok(Some(Heredoc {
        name: word,
        file_descriptor: fd,
        expand,
        chomp,
        content: String::new(),
    }))
}

/// Removes leading tabs from every line, as `<<-` asks (BuildKit's
/// `ChompHeredocContent`, regexp `(?m)^\t+`).
pub fn chomp_heredoc_content(src: &str) -> String {
    src.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuation_regex() {
        assert_eq!(trim_continuation("foo \\", '\\'), ("foo ", false));
        assert_eq!(trim_continuation("foo\\ \t", '\\'), ("foo", false));
        assert_eq!(trim_continuation("foo\\\\", '\\'), ("foo\\\\", true));
        assert_eq!(trim_continuation("\\", '\\'), ("", false));
        assert_eq!(trim_continuation(" \\", '\\'), (" ", false));
        assert_eq!(trim_continuation("a`", '`'), ("a", false));
        assert_eq!(trim_continuation("a\\", '`'), ("a\\", true));
    }

    #[test]
    fn split_matches_go_regexp_split() {
        assert_eq!(split_whitespace_n("a b  c", -1), ["a", "b", "c"]);
        assert_eq!(split_whitespace_n("a b  c", 2), ["a", "b  c"]);
        assert_eq!(split_whitespace_n(" a ", -1), ["", "a", ""]);
        assert_eq!(split_whitespace_n("", 2), [""]);
        assert_eq!(split_whitespace_n("a\u{a0}b", -1), ["a\u{a0}b"]);
    }

    #[test]
    fn builder_flags() {
        assert_eq!(
            extract_builder_flags("--a=1 --b='x y' rest of it", '\\'),
            (
                "rest of it".to_string(),
                vec!["--a=1".to_string(), "--b=x y".to_string()]
            )
        );
        assert_eq!(
            extract_builder_flags("--doit -- [ ]", '\\'),
            (" [ ]".to_string(), vec!["--doit".to_string()])
        );
        assert_eq!(
            extract_builder_flags("--a", '\\'),
            (String::new(), vec!["--a".to_string()])
        );
        // Byte-wise, as BuildKit: UTF-8 is re-encoded as Latin-1 characters.
        assert_eq!(
            extract_builder_flags("--chown=é x", '\\'),
            ("x".to_string(), vec!["--chown=Ã©".to_string()])
        );
    }

    #[test]
    fn chomp() {
        assert_eq!(
            chomp_heredoc_content("\thello\n\t\tworld\n"),
            "hello\nworld\n"
        );
    }

    #[test]
    fn onbuild_nesting_is_bounded() {
        let deep = format!("{}RUN x\n", "ONBUILD ".repeat(MAX_ONBUILD_NESTING + 1));
        assert!(matches!(
            parse(&deep),
            Err(ParseError::OnbuildTooDeep { line: 1, .. })
        ));
        let ok = format!("{}RUN x\n", "ONBUILD ".repeat(MAX_ONBUILD_NESTING));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn spans_and_columns() {
        let src = "# syntax=x\n\n  RUN a \\\n  # c\n  b\nCOPY <<EOF /x\nhi\nEOF\n";
        let res = parse(src).unwrap();
        let run = &res.ast.children[0];
        assert_eq!(
            (run.span.start_line, run.span.end_line, run.span.column),
            (3, 5, Some(3))
        );
        assert_eq!(run.span.text(src), "  RUN a \\\n  # c\n  b\n");
        let copy = &res.ast.children[1];
        assert_eq!((copy.span.start_line, copy.span.end_line), (6, 8));
        assert_eq!(copy.heredocs[0].content, "hi\n");
        assert_eq!(res.directives[0].name, "syntax");
    }

    #[test]
    fn error_messages_name_the_line() {
        let err = parse("FROM a\n\nENV X\n").unwrap_err();
        assert_eq!(err.to_string(), "line 3: ENV must have two arguments");
        let err = parse("FROM a\nLABEL a=b c\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: Syntax error - can't find = in \"c\". Must be of the form: name=value"
        );
        let err = parse("# escape=x\nFROM a\n").unwrap_err();
        assert_eq!(err.line(), 1);
        let err = parse("# escape=`\n# Escape=\\\nFROM a\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: only one escape parser directive can be used"
        );
        let err = parse("FROM a\nRUN <<EOF\nno end\n").unwrap_err();
        assert_eq!(err.to_string(), "line 2: unterminated heredoc \"EOF\"");
        assert_eq!(err.end_line(), 3);
    }

    #[test]
    fn unknown_instruction_has_empty_argument() {
        assert_eq!(parse("FOO bar\n").unwrap().ast.dump(), "(foo \"\")");
    }
}
