//! Just enough of the POSIX shell grammar to see which commands a `RUN` runs.
//!
//! Rules ask questions such as "does this RUN call `apt-get install` without
//! `--no-install-recommends`?" or "does it remove `/var/lib/apt/lists` too?".
//! Answering them needs the simple commands of the script with their words,
//! quotes removed, split at `&&`, `||`, `;`, `|`, `&`, newlines and
//! parentheses. This is not a shell: nothing is expanded or run, and compound
//! commands are flattened (the body of an `if` or a `for` yields its commands,
//! the `if`/`for` header is dropped). Parameter expansions and command
//! substitutions are kept as written and marked, so a rule can tell a literal
//! path from `"$tempDir"`.
//!
//! A script that does not parse (an unterminated quote) still yields the
//! commands read so far: linting must not fail on what the shell would reject
//! at build time.

/// A word of a command, with its quotes removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Word {
    /// The text; `$X`, `${X}`, `$(…)` and backquotes are kept as written.
    pub text: String,
    /// True when the word contains an expansion the shell would substitute.
    pub dynamic: bool,
}

/// What joined a command to the one before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joiner {
    /// The script's first command, or after `;`, `&`, a newline or a bracket.
    Sequence,
    /// `&&`.
    And,
    /// `||`.
    Or,
    /// `|`: this command reads the previous one's output.
    Pipe,
}

/// One simple command: assignments, then a command name and its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SimpleCommand {
    /// `NAME=value` words before the command name.
    pub assignments: Vec<(String, String)>,
    /// The command name and its arguments (redirections removed).
    pub words: Vec<Word>,
    pub joiner: Joiner,
}

impl SimpleCommand {
    /// The command name without its directory (`/usr/bin/apt-get` → `apt-get`),
    /// looking through wrappers that run their arguments as a command (`sudo`,
    /// `env`, `exec`, `command`, `nohup`, `time`).
    pub fn name(&self) -> Option<&str> {
        self.effective_words().first().map(|w| basename(&w.text))
    }

    /// The words after wrapper commands and their options.
    pub fn effective_words(&self) -> &[Word] {
        let mut words = self.words.as_slice();
        loop {
            let Some(first) = words.first() else {
                return words;
            };
            let wrapper = basename(&first.text);
            if !matches!(
                wrapper,
                "sudo" | "env" | "exec" | "command" | "nohup" | "time"
            ) {
                return words;
            }
            let mut rest = &words[1..];
            // Options of the wrapper, and `env`'s assignments.
            while let Some(w) = rest.first() {
                let t = w.text.as_str();
                let option_with_value =
                    wrapper == "sudo" && matches!(t, "-u" | "-g" | "-C" | "-h" | "-p" | "-U");
                if option_with_value {
                    rest = rest.get(2..).unwrap_or(&[]);
                } else if t.starts_with('-') || (wrapper == "env" && is_assignment(t)) {
                    rest = &rest[1..];
                } else {
                    break;
                }
            }
            words = rest;
        }
    }

    /// The arguments after the (effective) command name.
    pub fn args(&self) -> &[Word] {
        self.effective_words().get(1..).unwrap_or(&[])
    }

    /// True when any argument is exactly `flag`, or starts with `flag=`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.args().iter().any(|w| {
            w.text == flag
                || w.text
                    .strip_prefix(flag)
                    .is_some_and(|rest| rest.starts_with('='))
        })
    }
}

/// A parsed script: its simple commands in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Script {
    pub commands: Vec<SimpleCommand>,
}

impl Script {
    /// The commands with a command name (assignment-only commands excluded).
    pub fn named(&self) -> impl Iterator<Item = (usize, &SimpleCommand)> {
        self.commands
            .iter()
            .enumerate()
            .filter(|(_, c)| c.name().is_some())
    }

    /// Commands that have a name, counted as the shell would run them.
    pub fn count(&self) -> usize {
        self.named().count()
    }
}

/// `/usr/bin/apt-get` → `apt-get`.
pub(crate) fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

fn is_assignment(word: &str) -> bool {
    match word.split_once('=') {
        Some((name, _)) => {
            let mut chars = name.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        None => false,
    }
}

/// Reserved words that start or end a compound command, dropped where they
/// begin a command so the command inside is seen (`then apt-get …`).
const KEYWORDS: &[&str] = &[
    "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}", "esac",
];

/// Headers whose words are not a command at all.
const HEADERS: &[&str] = &["for", "case", "select", "function"];

/// A raw token: a word (with its `was_assignment_shape` evidence) or an operator.
#[derive(Debug)]
enum Token {
    Word(Word),
    Op(&'static str),
    /// A redirection operator: the next word is its target, not an argument.
    Redirect,
}

/// Splits a shell script into simple commands.
pub(crate) fn parse(script: &str) -> Script {
    let tokens = tokenize(script);
    let mut commands = Vec::new();
    let mut current: Vec<Word> = Vec::new();
    let mut joiner = Joiner::Sequence;
    let mut skip_next_word = false;
    let finish = |current: &mut Vec<Word>, commands: &mut Vec<SimpleCommand>, joiner: Joiner| {
        if let Some(cmd) = build(std::mem::take(current), joiner) {
            commands.push(cmd);
        }
    };
    // Inside `case … in`, the words before `)` are a pattern, not a command;
    // `|` separates alternatives there.
    let mut in_pattern = false;
    for token in tokens {
        match token {
            Token::Word(w) => {
                if skip_next_word {
                    skip_next_word = false;
                } else {
                    current.push(w);
                }
            }
            Token::Redirect => skip_next_word = true,
            Token::Op(op) => {
                skip_next_word = false;
                let case_header = current
                    .first()
                    .is_some_and(|w| !w.dynamic && w.text == "case");
                let esac = current
                    .first()
                    .is_some_and(|w| !w.dynamic && w.text == "esac");
                if case_header || (in_pattern && !esac && matches!(op, "|" | ")" | "\n")) {
                    current.clear();
                    in_pattern = op != ")";
                    continue;
                }
                in_pattern = op == ";;";
                finish(&mut current, &mut commands, joiner);
                joiner = match op {
                    "&&" => Joiner::And,
                    "||" => Joiner::Or,
                    "|" => Joiner::Pipe,
                    _ => Joiner::Sequence,
                };
            }
        }
    }
    finish(&mut current, &mut commands, joiner);
    Script { commands }
}

/// Turns a command's words into a [`SimpleCommand`], dropping keywords and
/// compound-command headers.
fn build(mut words: Vec<Word>, joiner: Joiner) -> Option<SimpleCommand> {
    while words
        .first()
        .is_some_and(|w| !w.dynamic && KEYWORDS.contains(&w.text.as_str()))
    {
        words.remove(0);
    }
    // `done`, `fi` … may also end a command line (`… ; done`): drop trailing ones.
    while words
        .last()
        .is_some_and(|w| !w.dynamic && matches!(w.text.as_str(), "}" | "fi" | "done" | "esac"))
        && words.len() > 1
    {
        words.pop();
    }
    let first = words.first()?;
    if !first.dynamic && HEADERS.contains(&first.text.as_str()) {
        return None;
    }
    let mut assignments = Vec::new();
    while words.first().is_some_and(|w| is_assignment(&w.text)) {
        let w = words.remove(0);
        let (k, v) = w.text.split_once('=').unwrap_or((&w.text, ""));
        assignments.push((k.to_string(), v.to_string()));
    }
    if words.is_empty() && assignments.is_empty() {
        return None;
    }
    Some(SimpleCommand {
        assignments,
        words,
        joiner,
    })
}

fn tokenize(script: &str) -> Vec<Token> {
    let chars: Vec<char> = script.chars().collect();
    let mut tokens = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut dynamic = false;
    let mut i = 0;

    macro_rules! end_word {
        () => {
            if in_word {
                tokens.push(Token::Word(Word {
                    text: std::mem::take(&mut word),
                    dynamic,
                }));
                in_word = false;
                dynamic = false;
            }
        };
    }

    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => {
                end_word!();
                i += 1;
            }
            '\n' => {
                end_word!();
                tokens.push(Token::Op("\n"));
                i += 1;
            }
            '#' if !in_word => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '\\' => {
                match chars.get(i + 1) {
                    Some('\n') => {}
                    Some(&next) => {
                        word.push(next);
                        in_word = true;
                    }
                    None => {}
                }
                i += 2;
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('$' | '`' | '"' | '\\')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                        }
                        '\\' if chars.get(i + 1) == Some(&'\n') => i += 2,
                        '$' | '`' => {
                            let end = skip_expansion(&chars, i);
                            word.extend(&chars[i..end]);
                            dynamic |= end > i + 1;
                            i = end;
                        }
                        ch => {
                            word.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
            }
            '$' | '`' => {
                let end = skip_expansion(&chars, i);
                word.extend(&chars[i..end]);
                dynamic |= end > i + 1;
                in_word = true;
                i = end;
            }
            '&' | '|' | ';' | '(' | ')' => {
                let next = chars.get(i + 1).copied();
                if c == '&' && next == Some('>') {
                    // `&>file`: both streams to a file.
                    end_word!();
                    tokens.push(Token::Redirect);
                    i += if chars.get(i + 2) == Some(&'>') { 3 } else { 2 };
                    continue;
                }
                end_word!();
                let (op, len) = match (c, next) {
                    ('&', Some('&')) => ("&&", 2),
                    ('|', Some('|')) => ("||", 2),
                    (';', Some(';')) => (";;", 2),
                    ('|', Some('&')) => ("|", 2),
                    ('&', _) => ("&", 1),
                    ('|', _) => ("|", 1),
                    (';', _) => (";", 1),
                    ('(', _) => ("(", 1),
                    _ => (")", 1),
                };
                tokens.push(Token::Op(op));
                i += len;
            }
            '<' | '>' => {
                // A file descriptor number right before the operator belongs to it.
                if in_word && !dynamic && word.chars().all(|d| d.is_ascii_digit()) {
                    word.clear();
                    in_word = false;
                }
                end_word!();
                let mut j = i + 1;
                while j < chars.len() && matches!(chars[j], '<' | '>' | '&' | '|' | '-') {
                    j += 1;
                }
                let op: String = chars[i..j].iter().collect();
                // `>&2`, `2>&1`: the target is a descriptor, glued to the operator.
                if op.ends_with('&') {
                    while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '-') {
                        j += 1;
                    }
                    i = j;
                    continue;
                }
                tokens.push(Token::Redirect);
                i = j;
            }
            _ => {
                word.push(c);
                in_word = true;
                i += 1;
            }
        }
    }
    if in_word {
        tokens.push(Token::Word(Word {
            text: word,
            dynamic,
        }));
    }
    tokens
}

/// The index just past the expansion starting at `i` (`$X`, `${…}`, `$(…)`,
/// `$((…))` or a backquoted command). A lone `$` is one character.
fn skip_expansion(chars: &[char], i: usize) -> usize {
    match (chars[i], chars.get(i + 1)) {
        ('`', _) => {
            let mut j = i + 1;
            while j < chars.len() && chars[j] != '`' {
                j += if chars[j] == '\\' { 2 } else { 1 };
            }
            (j + 1).min(chars.len())
        }
        ('$', Some('(')) => skip_balanced(chars, i + 1, '(', ')'),
        ('$', Some('{')) => skip_balanced(chars, i + 1, '{', '}'),
        ('$', Some(c)) if c.is_ascii_alphabetic() || *c == '_' => {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            j
        }
        ('$', Some(c)) if c.is_ascii_digit() || "@*#?$!-".contains(*c) => i + 2,
        _ => i + 1,
    }
}

/// From an opening bracket at `i`, the index past its match, skipping quoted
/// text (a `)` inside `'…'` does not close a `$(`).
fn skip_balanced(chars: &[char], i: usize, open: char, close: char) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while j < chars.len() {
        match chars[j] {
            '\\' => j += 1,
            '\'' => {
                j += 1;
                while j < chars.len() && chars[j] != '\'' {
                    j += 1;
                }
            }
            '"' => {
                j += 1;
                while j < chars.len() && chars[j] != '"' {
                    if chars[j] == '\\' {
                        j += 1;
                    }
                    j += 1;
                }
            }
            c if c == open => depth += 1,
            c if c == close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    chars.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(script: &str) -> Vec<String> {
        parse(script)
            .named()
            .map(|(_, c)| {
                c.effective_words()
                    .iter()
                    .map(|w| w.text.clone())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn splits_on_operators_and_removes_quotes() {
        assert_eq!(
            names("apt-get update && apt-get install -y 'a b' \"c\"; rm -rf /x || true"),
            [
                "apt-get update",
                "apt-get install -y a b c",
                "rm -rf /x",
                "true"
            ]
        );
    }

    #[test]
    fn keeps_expansions_whole_and_marks_them() {
        let s = parse(
            r#"ARCH="$(dpkg --print-architecture | awk -F- '{ print $NF }')"; echo "$ARCH" ${X:-a b}"#,
        );
        assert_eq!(s.commands.len(), 2);
        assert_eq!(s.commands[0].assignments[0].0, "ARCH");
        assert!(s.commands[0].words.is_empty());
        let echo = &s.commands[1];
        assert_eq!(echo.words[1].text, "$ARCH");
        assert!(echo.words[1].dynamic);
        assert_eq!(echo.words[2].text, "${X:-a b}");
    }

    #[test]
    fn compound_commands_yield_their_bodies() {
        assert_eq!(
            names("if [ -f x ]; then apt-get install -y a; else exit 1; fi; for k in a b; do gpg --recv $k; done"),
            [
                "[ -f x ]",
                "apt-get install -y a",
                "exit 1",
                "gpg --recv $k"
            ]
        );
        assert_eq!(
            names(
                "case \"$a\" in x | y) a=1 ;;\n *) echo no ;; esac; case $b in\n z) make ;; esac"
            ),
            ["echo no", "make"]
        );
    }

    #[test]
    fn redirections_are_not_arguments() {
        assert_eq!(
            names("echo hi > /etc/x 2>&1; cat < in >>out; make &>/dev/null; apt-mark auto '.*' > /dev/null"),
            ["echo hi", "cat", "make", "apt-mark auto .*"]
        );
    }

    #[test]
    fn wrappers_and_assignments() {
        let s = parse("DEBIAN_FRONTEND=noninteractive sudo -u root /usr/bin/apt-get install x");
        let c = &s.commands[0];
        assert_eq!(
            c.assignments,
            [("DEBIAN_FRONTEND".into(), "noninteractive".into())]
        );
        assert_eq!(c.name(), Some("apt-get"));
        assert_eq!(c.words[0].text, "sudo");
        assert!(c.has_flag("install") && !c.has_flag("-y"));
        assert_eq!(
            parse("env A=1 pip install --no-cache-dir=1 x").commands[0].name(),
            Some("pip")
        );
        assert!(parse("pip install --no-cache-dir=1 x").commands[0].has_flag("--no-cache-dir"));
    }

    #[test]
    fn comments_pipes_and_continuations() {
        let s = parse("a | b # c && d\n e \\\n f");
        assert_eq!(s.commands.len(), 3);
        assert_eq!(s.commands[1].joiner, Joiner::Pipe);
        assert_eq!(s.commands[2].words.len(), 2);
        // Errors are fine, panics are not.
        for bad in ["'unterminated", "\"x $(", "$", "`", "a >", "((", "${", "\\"] {
            let _ = parse(bad);
        }
    }
}
