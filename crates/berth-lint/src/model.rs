//! What the rules look at: the Dockerfile with its stages resolved, the
//! variables and working directory in scope before each instruction, the
//! parsed shell of each `RUN`, and helpers to point at source text.
//!
//! Everything is computed once per lint run. Values are what the Dockerfile
//! itself says: a base image's own `ENV`, `WORKDIR` and `USER` are unknown
//! (berth lint never pulls), so scopes say "unknown" rather than guess.

use std::collections::BTreeMap;

use berth_dockerfile::instructions::{
    CmdForm, Command, CommandLine, Dockerfile, Instruction, MountType, RunInstruction, Stage,
};
use berth_dockerfile::shell::{EnvGetter, Lex};
use berth_oci::Reference;

use crate::context::ContextFacts;
use crate::shell::{self, Script};
use crate::Location;

/// BuildKit's automatic platform arguments: in scope for FROM lines, and in a
/// stage once it declares them with `ARG`.
pub(crate) const PLATFORM_ARGS: &[&str] = &[
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
];

/// A variable's value, as far as the Dockerfile tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Known(String),
    /// Declared (`ARG X` with no default, or set from an unknown value).
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Var {
    pub value: Value,
    /// Set by ENV (inherited by stages built on this one), not by ARG.
    pub from_env: bool,
}

/// The result of expanding a word with a scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Expanded {
    /// The value, when every variable it uses is known.
    pub value: Option<String>,
    /// Variables used that nothing in the Dockerfile declares.
    pub undefined: Vec<String>,
}

/// What is in force before an instruction runs.
#[derive(Debug, Clone, Default)]
pub(crate) struct Scope {
    pub vars: BTreeMap<String, Var>,
    /// The working directory, when the Dockerfile sets it (a base image's is unknown).
    pub workdir: Option<String>,
    /// Some WORKDIR in this stage or the stages it builds on was absolute.
    pub absolute_workdir_declared: bool,
    /// The last USER: its value and where it is (stage, command index).
    pub user: Option<(Value, usize, usize)>,
    /// A SHELL instruction changed the shell.
    pub shell_set: bool,
}

struct KnownVars<'a>(&'a BTreeMap<String, Var>);

impl EnvGetter for KnownVars<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        match self.0.get(name) {
            Some(Var {
                value: Value::Known(v),
                ..
            }) => Some(v),
            _ => None,
        }
    }
}

impl Scope {
    /// Expands `word` as BuildKit would, with what the Dockerfile defines.
    pub fn expand(&self, lex: &Lex, word: &str) -> Expanded {
        let Ok(res) = lex.process_word_with_matches(word, &KnownVars(&self.vars)) else {
            return Expanded {
                value: None,
                undefined: Vec::new(),
            };
        };
        let undefined: Vec<String> = res
            .unmatched
            .iter()
            .filter(|n| !self.vars.contains_key(*n))
            .cloned()
            .collect();
        Expanded {
            value: res.unmatched.is_empty().then_some(res.result),
            undefined,
        }
    }

    /// Whether `name` is declared (with a known value or not).
    pub fn defines(&self, name: &str) -> bool {
        self.vars.contains_key(name)
    }
}

/// An image reference as a FROM line gives it, after expanding meta ARGs.
#[derive(Debug, Clone)]
pub(crate) struct ImageRef {
    /// The expanded text.
    pub text: String,
    /// Parsed, when valid.
    pub reference: Option<Reference>,
}

impl ImageRef {
    /// `nginx` for `docker.io/library/nginx`, `bitnami/nginx` for
    /// `docker.io/bitnami/nginx`, `ghcr.io/x/y` otherwise.
    pub fn repository(&self) -> Option<String> {
        self.reference.as_ref().map(Reference::familiar_repository)
    }

    /// The last path component of the repository (`nginx`, `sdk`).
    pub fn short_name(&self) -> Option<String> {
        self.reference
            .as_ref()
            .map(|r| r.path().rsplit('/').next().unwrap_or("").to_string())
    }

    pub fn tag(&self) -> Option<&str> {
        self.reference.as_ref().and_then(Reference::tag)
    }

    /// An official Docker Hub image (`docker.io/library/<name>`).
    pub fn official(&self) -> Option<&str> {
        let r = self.reference.as_ref()?;
        if r.domain() != berth_oci::DEFAULT_DOMAIN {
            return None;
        }
        r.path().strip_prefix("library/")
    }
}

/// What a stage starts from.
#[derive(Debug, Clone)]
pub(crate) enum Base {
    Scratch,
    /// An earlier stage, by index.
    Stage(usize),
    Image(ImageRef),
    /// A variable without a default: nothing is known.
    Unresolved,
}

/// A stage and what the model knows about it.
#[derive(Debug, Clone)]
pub(crate) struct StageFacts {
    pub base: Base,
    /// `AS name` as written (BuildKit lowercases the stage's name).
    pub raw_name: Option<String>,
    /// The scope before each command, by index.
    pub scopes: Vec<Scope>,
    /// The scope after the last command.
    pub end: Scope,
    /// The shell script of each RUN, by command index.
    pub scripts: Vec<Option<Script>>,
}

pub(crate) struct Ctx<'a> {
    pub source: &'a str,
    lines: Vec<&'a str>,
    pub df: &'a Dockerfile,
    pub lex: Lex,
    /// The meta ARGs (before the first FROM), with their defaults.
    pub meta: Scope,
    pub stages: Vec<StageFacts>,
    /// The stages whose layers make up the final image, base first.
    pub final_chain: Vec<usize>,
    pub context: Option<&'a ContextFacts>,
}

impl<'a> Ctx<'a> {
    pub fn new(source: &'a str, df: &'a Dockerfile, context: Option<&'a ContextFacts>) -> Self {
        let lex = Lex::new(df.escape_token);
        let lines = source
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        let mut meta = Scope::default();
        for cmd in &df.meta_args {
            if let Instruction::Arg(defs) = &cmd.instruction {
                for def in defs {
                    let value = match &def.value {
                        Some(v) => match meta.expand(&lex, v).value {
                            Some(v) => Value::Known(v),
                            None => Value::Unknown,
                        },
                        None => Value::Unknown,
                    };
                    meta.vars.insert(
                        def.key.clone(),
                        Var {
                            value,
                            from_env: false,
                        },
                    );
                }
            }
        }
        let mut ctx = Self {
            source,
            lines,
            df,
            lex,
            meta,
            stages: Vec::new(),
            final_chain: Vec::new(),
            context,
        };
        for (i, stage) in df.stages.iter().enumerate() {
            let facts = ctx.stage_facts(i, stage);
            ctx.stages.push(facts);
        }
        let mut chain = vec![df.stages.len() - 1];
        while let Base::Stage(i) = ctx.stages[*chain.last().unwrap_or(&0)].base {
            if chain.contains(&i) {
                break;
            }
            chain.push(i);
        }
        chain.reverse();
        ctx.final_chain = chain;
        ctx
    }

    fn resolve_base(&self, index: usize, stage: &Stage) -> Base {
        let expanded = self.meta.expand(&self.lex, &stage.base_name);
        let Some(text) = expanded.value else {
            return Base::Unresolved;
        };
        if text.eq_ignore_ascii_case("scratch") {
            return Base::Scratch;
        }
        // As BuildKit: a base names a stage only if that stage came earlier.
        if let Some(j) = self.df.stages[..index]
            .iter()
            .rposition(|s| s.name.as_deref() == Some(text.as_str()))
        {
            return Base::Stage(j);
        }
        Base::Image(ImageRef {
            reference: Reference::parse_normalized_name(&text).ok(),
            text,
        })
    }

    fn stage_facts(&self, index: usize, stage: &Stage) -> StageFacts {
        let base = self.resolve_base(index, stage);
        let mut scope = match &base {
            Base::Stage(i) => {
                let mut s = self.stages[*i].end.clone();
                // ARGs do not cross FROM; ENV is part of the image config.
                s.vars.retain(|_, v| v.from_env);
                s
            }
            Base::Scratch => Scope {
                workdir: Some("/".into()),
                absolute_workdir_declared: false,
                user: Some((Value::Known("root".into()), index, usize::MAX)),
                ..Scope::default()
            },
            _ => Scope::default(),
        };
        let mut scopes = Vec::with_capacity(stage.commands.len());
        let mut scripts = Vec::with_capacity(stage.commands.len());
        for (ci, cmd) in stage.commands.iter().enumerate() {
            scopes.push(scope.clone());
            scripts.push(match &cmd.instruction {
                Instruction::Run(r) => Some(run_script(r)),
                _ => None,
            });
            self.apply(&mut scope, index, ci, cmd);
        }
        StageFacts {
            base,
            raw_name: raw_stage_name(&stage.from),
            scopes,
            end: scope,
            scripts,
        }
    }

    /// Updates `scope` with what `cmd` declares.
    fn apply(&self, scope: &mut Scope, stage: usize, ci: usize, cmd: &Command) {
        match &cmd.instruction {
            Instruction::Arg(defs) => {
                for def in defs {
                    let value = match &def.value {
                        Some(v) => known(scope.expand(&self.lex, v)),
                        // `ARG X` in a stage takes the meta ARG's default.
                        None => match self.meta.vars.get(&def.key) {
                            Some(v) => v.value.clone(),
                            None => Value::Unknown,
                        },
                    };
                    scope.vars.insert(
                        def.key.clone(),
                        Var {
                            value,
                            from_env: false,
                        },
                    );
                }
            }
            Instruction::Env(kvs) => {
                // Every pair sees the variables from before the instruction.
                let before = scope.clone();
                for kv in kvs {
                    scope.vars.insert(
                        kv.key.clone(),
                        Var {
                            value: known(before.expand(&self.lex, &kv.value)),
                            from_env: true,
                        },
                    );
                }
            }
            Instruction::Workdir(w) => match scope.expand(&self.lex, w).value {
                Some(p) if p.starts_with('/') => {
                    scope.workdir = Some(clean_path(&p));
                    scope.absolute_workdir_declared = true;
                }
                Some(p) => {
                    scope.workdir = scope
                        .workdir
                        .as_ref()
                        .map(|base| clean_path(&format!("{base}/{p}")));
                }
                None => {
                    scope.workdir = None;
                    // Most likely an absolute path from a variable; do not
                    // report later relative WORKDIRs on a guess.
                    scope.absolute_workdir_declared = true;
                }
            },
            Instruction::User(u) => {
                scope.user = Some((known(scope.expand(&self.lex, u)), stage, ci));
            }
            Instruction::Shell(_) => scope.shell_set = true,
            _ => {}
        }
    }

    /// The source line `n` (1-based), without its newline.
    pub fn line(&self, n: usize) -> &'a str {
        self.lines.get(n.wrapping_sub(1)).copied().unwrap_or("")
    }

    /// The whole first line of an instruction, from its keyword.
    pub fn at(&self, cmd: &Command) -> Location {
        let line = cmd.span.start_line;
        let text = self.line(line);
        let column = cmd.span.column.unwrap_or(1);
        let end = text.trim_end().trim_end_matches('\\').trim_end();
        Location {
            line,
            column,
            end_line: line,
            end_column: end.chars().count().max(column) + 1,
        }
    }

    /// An instruction from its first line to the end of its last line.
    pub fn span_of(&self, first: &Command, last: &Command) -> Location {
        let start = self.at(first);
        let end_line = last.span.end_line.max(last.span.start_line);
        let end_text = self.line(end_line).trim_end();
        Location {
            end_line,
            end_column: end_text.chars().count() + 1,
            ..start
        }
    }

    /// The first occurrence of `needle` as a whole word in the instruction's
    /// lines (comment lines skipped), at or after `from_line`.
    pub fn find(&self, cmd: &Command, needle: &str) -> Option<Location> {
        if needle.is_empty() {
            return None;
        }
        let first = cmd.span.start_line;
        let last = cmd.span.end_line.max(first);
        for n in first..=last {
            let text = self.line(n);
            if n > first && text.trim_start().starts_with('#') {
                continue;
            }
            let mut from = 0;
            // On the first line, skip the keyword itself.
            if n == first {
                from = cmd
                    .span
                    .column
                    .map(|c| char_to_byte(text, c.saturating_sub(1)) + cmd.keyword.len())
                    .unwrap_or(0)
                    .min(text.len());
            }
            while let Some(pos) = text[from..].find(needle) {
                let start = from + pos;
                let end = start + needle.len();
                if is_boundary(text, start, end, needle) {
                    let column = text[..start].chars().count() + 1;
                    return Some(Location {
                        line: n,
                        column,
                        end_line: n,
                        end_column: column + needle.chars().count(),
                    });
                }
                from = start + needle.chars().next().map_or(1, char::len_utf8);
            }
        }
        None
    }

    /// The first of `needles` found in the instruction, else the instruction.
    pub fn locate(&self, cmd: &Command, needles: &[&str]) -> Location {
        needles
            .iter()
            .find_map(|n| self.find(cmd, n))
            .unwrap_or_else(|| self.at(cmd))
    }

    /// `cmd_index`-th command of `stage`.
    pub fn command(&self, stage: usize, cmd_index: usize) -> &'a Command {
        let st = &self.df.stages[stage];
        st.commands.get(cmd_index).unwrap_or(&st.from)
    }

    /// The image at the root of a stage's chain of `FROM <stage>`s.
    pub fn root_base(&self, mut stage: usize) -> (usize, &Base) {
        let mut seen = 0;
        while let Base::Stage(i) = self.stages[stage].base {
            stage = i;
            seen += 1;
            if seen > self.stages.len() {
                break;
            }
        }
        (stage, &self.stages[stage].base)
    }

    /// Every command of the stages in the final image, in build order, with
    /// its stage and index.
    pub fn final_commands(&self) -> impl Iterator<Item = (usize, usize, &'a Command)> + '_ {
        self.final_chain.iter().flat_map(move |&s| {
            self.df.stages[s]
                .commands
                .iter()
                .enumerate()
                .map(move |(i, c)| (s, i, c))
        })
    }

    /// Every command of every stage, with its stage and index.
    pub fn all_commands(&self) -> impl Iterator<Item = (usize, usize, &'a Command)> + '_ {
        self.df
            .stages
            .iter()
            .enumerate()
            .flat_map(|(s, st)| st.commands.iter().enumerate().map(move |(i, c)| (s, i, c)))
    }

    /// The RUN script of a command, when it is a RUN.
    pub fn script(&self, stage: usize, cmd_index: usize) -> Option<&Script> {
        self.stages[stage].scripts.get(cmd_index)?.as_ref()
    }

    /// The scope before a command.
    pub fn scope(&self, stage: usize, cmd_index: usize) -> &Scope {
        let facts = &self.stages[stage];
        facts.scopes.get(cmd_index).unwrap_or(&facts.end)
    }
}

fn known(e: Expanded) -> Value {
    e.value.map_or(Value::Unknown, Value::Known)
}

/// The script a RUN runs: a heredoc when the command is only `<<EOF`, a
/// `sh -c` argument in exec form, else the command line.
fn run_script(run: &RunInstruction) -> Script {
    script_of(&run.cmd)
}

pub(crate) fn script_of(cmd: &CommandLine) -> Script {
    match &cmd.form {
        CmdForm::Shell(text) => {
            let trimmed = text.trim();
            if trimmed.starts_with("<<") && !cmd.files.is_empty() {
                let mut script = Script::default();
                for f in &cmd.files {
                    script.commands.extend(shell::parse(&f.data).commands);
                }
                script
            } else {
                shell::parse(text)
            }
        }
        CmdForm::Exec(args) => {
            let is_shell = args
                .first()
                .is_some_and(|a| matches!(shell::basename(a), "sh" | "bash" | "ash" | "dash"));
            match args.iter().position(|a| a == "-c") {
                Some(i) if is_shell => shell::parse(args.get(i + 1).map_or("", String::as_str)),
                _ => {
                    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
                    shell::parse(&quoted.join(" "))
                }
            }
        }
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The targets of cache and tmpfs mounts of a RUN: what is written there does
/// not end up in the layer.
pub(crate) fn unpersisted_mounts(run: &RunInstruction) -> Vec<String> {
    let mut identity = |s: &str| Ok::<_, berth_dockerfile::shell::ExpandError>(s.to_string());
    run.mounts(&mut identity)
        .unwrap_or_default()
        .into_iter()
        .filter(|m| matches!(m.typ, MountType::Cache | MountType::Tmpfs))
        .filter_map(|m| m.target)
        .collect()
}

/// `AS name` as written on the FROM line.
fn raw_stage_name(from: &Command) -> Option<String> {
    let words: Vec<&str> = from.code.split_whitespace().collect();
    match words.as_slice() {
        [.., kw, name] if kw.eq_ignore_ascii_case("as") && words.len() >= 4 => {
            Some((*name).to_string())
        }
        _ => None,
    }
}

/// The `AS` keyword as written on the FROM line.
pub(crate) fn raw_as_keyword(from: &Command) -> Option<&str> {
    let words: Vec<&str> = from.code.split_whitespace().collect();
    match words.as_slice() {
        [.., kw, _] if kw.eq_ignore_ascii_case("as") && words.len() >= 4 => {
            from.code.split_whitespace().rev().nth(1)
        }
        _ => None,
    }
}

/// Cleans an absolute path lexically (`/a/./b/../c/` → `/a/c`).
pub(crate) fn clean_path(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn char_to_byte(s: &str, chars: usize) -> usize {
    s.char_indices().nth(chars).map_or(s.len(), |(b, _)| b)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '-'
}

fn is_boundary(text: &str, start: usize, end: usize, needle: &str) -> bool {
    let before_ok = !needle.starts_with(is_word_char)
        || !text[..start].chars().next_back().is_some_and(is_word_char);
    let after_ok =
        !needle.ends_with(is_word_char) || !text[end..].chars().next().is_some_and(is_word_char);
    before_ok && after_ok
}

/// Levenshtein distance, for "did you mean" suggestions.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The closest of `candidates` to `name`, if close enough to be a typo.
pub(crate) fn suggest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c String>,
) -> Option<&'c str> {
    let limit = if name.len() >= 6 { 2 } else { 1 };
    candidates
        .into_iter()
        .filter(|c| c.as_str() != name)
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.as_str()))
        .map(|(_, c)| c.as_str())
}

/// Shell-style wildcard match of one path component (`*`, `?`, `[…]`).
pub(crate) fn glob_match(pattern: &str, text: &str) -> bool {
    fn rec(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('*', rest)) => (0..=t.len()).any(|i| rec(rest, &t[i..])),
            Some(('?', rest)) => !t.is_empty() && rec(rest, &t[1..]),
            Some(('[', rest)) => {
                let Some(close) = rest.iter().position(|&c| c == ']') else {
                    return t.first() == Some(&'[') && rec(rest, &t[1..]);
                };
                let Some((&c, t_rest)) = t.split_first() else {
                    return false;
                };
                let (negate, set) = match rest[..close].split_first() {
                    Some(('!' | '^', set)) => (true, set),
                    _ => (false, &rest[..close]),
                };
                let mut hit = false;
                let mut i = 0;
                while i < set.len() {
                    if i + 2 < set.len() && set[i + 1] == '-' {
                        hit |= set[i] <= c && c <= set[i + 2];
                        i += 3;
                    } else {
                        hit |= set[i] == c;
                        i += 1;
                    }
                }
                hit != negate && rec(&rest[close + 1..], t_rest)
            }
            Some((&c, rest)) => t.first() == Some(&c) && rec(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    rec(&p, &t)
}

/// Whether a path or pattern has wildcard characters.
pub(crate) fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Whether `path` (absolute, clean) is `pattern` or below it, where
/// `pattern` may have wildcards in any component.
pub(crate) fn path_within(path: &str, pattern: &str) -> bool {
    let p: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let t: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    t.len() >= p.len() && p.iter().zip(&t).all(|(pc, tc)| glob_match(pc, tc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_paths() {
        assert!(glob_match("package*.json", "package.json"));
        assert!(glob_match("*.js", "index.js"));
        assert!(!glob_match("*.js", "index.json"));
        assert!(glob_match("[a-c]?", "bx"));
        assert!(!glob_match("[!a-c]?", "bx"));
        assert!(path_within("/app/tests/x", "/app/tests"));
        assert!(path_within("/usr/share/html/code", "/usr/share/html/*"));
        assert!(!path_within("/app", "/app/tests"));
        assert_eq!(clean_path("/a/./b/../c/"), "/a/c");
    }

    #[test]
    fn suggestions_are_close() {
        let c = ["MAVEN_HOME".to_string(), "JAVA_HOME".to_string()];
        assert_eq!(suggest("MAVEN_HOM", &c), Some("MAVEN_HOME"));
        assert_eq!(suggest("PATH", &c), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn scopes_follow_buildkit() {
        let src = "ARG V=1\nFROM alpine:$V AS base\nENV A=x B=$A\nWORKDIR /app\nARG V\nFROM base\nWORKDIR sub\nUSER $NOPE\n";
        let df = berth_dockerfile::parse_dockerfile(src).unwrap();
        let ctx = Ctx::new(src, &df, None);
        assert!(matches!(ctx.stages[1].base, Base::Stage(0)));
        assert_eq!(ctx.final_chain, [0, 1]);
        let end0 = &ctx.stages[0].end;
        assert_eq!(end0.vars["A"].value, Value::Known("x".into()));
        // B saw A from before the ENV: unset, so unknown.
        assert_eq!(end0.vars["B"].value, Value::Unknown);
        assert_eq!(end0.vars["V"].value, Value::Known("1".into()));
        let end1 = &ctx.stages[1].end;
        assert!(!end1.vars.contains_key("V"), "ARGs do not cross FROM");
        assert_eq!(end1.workdir.as_deref(), Some("/app/sub"));
        assert_eq!(end1.user.as_ref().unwrap().0, Value::Unknown);
        let Base::Image(img) = &ctx.stages[0].base else {
            panic!()
        };
        assert_eq!(img.text, "alpine:1");
        assert_eq!(img.official(), Some("alpine"));
    }

    #[test]
    fn find_points_at_words() {
        let src = "FROM x\nRUN apt-get update \\\n  # note\n  && apt-get install -y foo\n";
        let df = berth_dockerfile::parse_dockerfile(src).unwrap();
        let ctx = Ctx::new(src, &df, None);
        let run = &df.stages[0].commands[0];
        let loc = ctx.find(run, "install").unwrap();
        assert_eq!((loc.line, loc.column, loc.end_column), (4, 14, 21));
        assert!(ctx.find(run, "note").is_none());
        assert!(ctx.find(run, "apt").is_none(), "whole words only");
        let at = ctx.at(run);
        assert_eq!((at.line, at.column, at.end_column), (2, 1, 19));
    }
}
