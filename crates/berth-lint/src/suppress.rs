//! Suppression written in the Dockerfile.
//!
//! * `# berth-lint ignore=ID[,ID]` on the comment lines right above an
//!   instruction: those rules are not reported for that instruction.
//! * `# berth-lint ignore-file=ID[,ID]` anywhere: not reported in the file.
//! * hadolint's `# hadolint ignore=DLxxxx` and `# hadolint global ignore=DLxxxx`
//!   suppress the berth rules whose metadata names those ids, so a Dockerfile
//!   already annotated for hadolint needs no second set of comments.
//! * BuildKit's `# check=skip=<Name,…>|all` directive skips the berth rules that
//!   cover those checks, and `experimental=<Name,…>|all` turns on the ones
//!   BuildKit runs only when asked.

use berth_dockerfile::instructions::{Command, Instruction};

use crate::catalog;
use crate::model::Ctx;
use crate::rule::{Hit, Rule};
use crate::Location;

#[derive(Debug, Default)]
struct Ignores {
    berth: Vec<&'static str>,
    hadolint: Vec<String>,
}

impl Ignores {
    fn covers(&self, rule: &Rule) -> bool {
        self.berth.contains(&rule.id)
            || rule
                .hadolint
                .iter()
                .any(|h| self.hadolint.iter().any(|x| x == h))
    }
}

#[derive(Debug, Default)]
enum Names {
    #[default]
    None,
    All,
    Some(Vec<String>),
}

impl Names {
    fn parse(value: &str) -> Self {
        if value.trim() == "all" {
            return Self::All;
        }
        Self::Some(
            value
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }

    fn any(&self, names: &[&str]) -> bool {
        match self {
            Self::None => false,
            Self::All => !names.is_empty(),
            Self::Some(list) => names.iter().any(|n| list.iter().any(|l| l == n)),
        }
    }
}

/// Everything the Dockerfile says about which findings to leave out.
#[derive(Debug, Default)]
pub(crate) struct Suppressions {
    file: Ignores,
    /// Per instruction: its first and last line, and the ignores above it.
    instructions: Vec<(usize, usize, Ignores)>,
    skip: Names,
    experimental: Names,
    unknown: Vec<Hit>,
}

impl Suppressions {
    pub fn read(ctx: &Ctx) -> Self {
        let mut s = Self::default();
        for d in &ctx.df.directives {
            if d.name != "check" {
                continue;
            }
            for part in d.value.split(';') {
                match part.split_once('=') {
                    Some((k, v)) if k.trim() == "skip" => s.skip = Names::parse(v),
                    Some((k, v)) if k.trim() == "experimental" => s.experimental = Names::parse(v),
                    _ => {}
                }
            }
        }

        let commands = all_instructions(ctx);
        let heredoc_bodies: Vec<(usize, usize)> = commands
            .iter()
            .filter(|c| has_heredoc(c))
            .map(|c| (c.span.start_line + 1, c.span.end_line))
            .collect();
        // File-level comments anywhere but inside heredoc bodies.
        for n in 1..=ctx.source.split('\n').count() {
            if heredoc_bodies.iter().any(|(a, b)| (*a..=*b).contains(&n)) {
                continue;
            }
            if let Some(directive) = comment_directive(ctx.line(n)) {
                if directive.file {
                    s.add(&directive, n, ctx, true);
                }
            }
        }
        let mut prev_end = 0;
        for cmd in &commands {
            let mut ignores = Ignores::default();
            let mut n = cmd.span.start_line;
            while n > prev_end + 1 {
                n -= 1;
                let Some(directive) = comment_directive(ctx.line(n)) else {
                    if ctx.line(n).trim_start().starts_with('#') {
                        continue;
                    }
                    break;
                };
                if !directive.file {
                    let (berth, hadolint) = s.resolve(&directive, n, ctx);
                    ignores.berth.extend(berth);
                    ignores.hadolint.extend(hadolint);
                }
            }
            prev_end = cmd.span.end_line.max(cmd.span.start_line);
            s.instructions
                .push((cmd.span.start_line, prev_end, ignores));
        }
        s
    }

    fn add(&mut self, directive: &Directive, line: usize, ctx: &Ctx, file: bool) {
        let (berth, hadolint) = self.resolve(directive, line, ctx);
        if file {
            self.file.berth.extend(berth);
            self.file.hadolint.extend(hadolint);
        }
    }

    /// The rule ids a directive names; unknown berth ids become findings.
    fn resolve(
        &mut self,
        directive: &Directive,
        line: usize,
        ctx: &Ctx,
    ) -> (Vec<&'static str>, Vec<String>) {
        if directive.hadolint {
            return (Vec::new(), directive.ids.clone());
        }
        let mut berth = Vec::new();
        for id in &directive.ids {
            match catalog::rule(id) {
                Some(rule) => berth.push(rule.id),
                None => {
                    let text = ctx.line(line);
                    let column = text
                        .find(id.as_str())
                        .map_or(1, |b| text[..b].chars().count() + 1);
                    let hit = Hit {
                        location: Location {
                            line,
                            column,
                            end_line: line,
                            end_column: column + id.chars().count(),
                        },
                        message: match crate::model::suggest(
                            id,
                            &catalog::RULES.iter().map(|r| r.id.to_string()).collect::<Vec<_>>(),
                        ) {
                            Some(s) => format!("the ignore comment names {id:?}, which is not a berth-lint rule (did you mean {s:?}?)"),
                            None => format!("the ignore comment names {id:?}, which is not a berth-lint rule"),
                        },
                    };
                    if !self.unknown.contains(&hit) {
                        self.unknown.push(hit);
                    }
                }
            }
        }
        (berth, Vec::new())
    }

    /// Whether a finding of `rule` at `location` is suppressed by a comment.
    pub fn suppressed(&self, rule: &Rule, location: &Location) -> bool {
        if self.file.covers(rule) {
            return true;
        }
        self.instructions
            .iter()
            .find(|(start, end, _)| (*start..=*end).contains(&location.line))
            .is_some_and(|(_, _, ignores)| ignores.covers(rule))
    }

    /// Whether `# check=skip=` turns the rule off.
    pub fn skips_rule(&self, rule: &Rule) -> bool {
        self.skip.any(rule.buildkit)
    }

    /// Whether `# check=experimental=` turns on a rule that is off by default.
    pub fn enabled_experimental(&self, rule: &Rule) -> bool {
        self.experimental.any(rule.buildkit)
    }

    /// Ignore comments that name rules berth does not have.
    pub fn unknown_ids(&self) -> Vec<Hit> {
        self.unknown.clone()
    }
}

/// Every instruction in source order: meta ARGs, FROMs and stage commands.
fn all_instructions<'a>(ctx: &Ctx<'a>) -> Vec<&'a Command> {
    let df = ctx.df;
    let mut out: Vec<&Command> = df.meta_args.iter().collect();
    for st in &df.stages {
        out.push(&st.from);
        out.extend(st.commands.iter());
    }
    out.sort_by_key(|c| c.span.start_line);
    out
}

fn has_heredoc(cmd: &Command) -> bool {
    match &cmd.instruction {
        Instruction::Run(r) => !r.cmd.files.is_empty(),
        Instruction::Copy(c) => !c.sources.source_contents.is_empty(),
        Instruction::Add(a) => !a.sources.source_contents.is_empty(),
        _ => false,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Directive {
    file: bool,
    hadolint: bool,
    ids: Vec<String>,
}

/// Reads `# berth-lint ignore=…`, `# berth-lint ignore-file=…`,
/// `# hadolint ignore=…` and `# hadolint global ignore=…`.
fn comment_directive(line: &str) -> Option<Directive> {
    let body = line.trim_start().strip_prefix('#')?.trim();
    let (tool, rest) = body.split_once(char::is_whitespace)?;
    let hadolint = match tool {
        "berth-lint" => false,
        "hadolint" => true,
        _ => return None,
    };
    let mut words = rest.split_whitespace().peekable();
    let global = hadolint && words.peek() == Some(&"global");
    if global {
        words.next();
    }
    let word = words.next()?;
    let (key, ids) = word.split_once('=')?;
    let file = match (hadolint, key) {
        (false, "ignore") => false,
        (false, "ignore-file") => true,
        (true, "ignore") => global,
        _ => return None,
    };
    Some(Directive {
        file,
        hadolint,
        ids: ids
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives() {
        assert_eq!(
            comment_directive("  # berth-lint ignore=a,b"),
            Some(Directive {
                file: false,
                hadolint: false,
                ids: vec!["a".into(), "b".into()]
            })
        );
        assert!(
            comment_directive("# berth-lint ignore-file=a")
                .unwrap()
                .file
        );
        let h = comment_directive("# hadolint global ignore=DL3008").unwrap();
        assert!(h.file && h.hadolint);
        assert!(comment_directive("# berth-lint please=x").is_none());
        assert!(comment_directive("# just a comment").is_none());
        assert!(comment_directive("RUN x # berth-lint ignore=a").is_none());
    }
}
