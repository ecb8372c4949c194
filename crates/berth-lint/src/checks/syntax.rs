//! Rules about how the Dockerfile is written: stage names, keyword casing,
//! deprecated forms, stage references and parser warnings.

use berth_dockerfile::instructions::{Command, Instruction};
use berth_dockerfile::stages::{GraphOptions, StageGraph, StageGraphError};

use crate::model::{raw_as_keyword, Ctx};
use crate::rule::Hit;
use crate::Location;

/// BuildKit's reserved stage names.
const RESERVED_STAGE_NAMES: &[&str] = &["context", "scratch"];

pub(crate) fn stage_name_casing(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (i, stage) in ctx.df.stages.iter().enumerate() {
        let Some(raw) = &ctx.stages[i].raw_name else {
            continue;
        };
        if *raw != raw.to_lowercase() {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &[raw]),
                message: format!(
                    "stage name {raw:?} is not lowercase; BuildKit stores it as {:?}",
                    raw.to_lowercase()
                ),
            });
        }
    }
    hits
}

fn is_upper(s: &str) -> bool {
    s == s.to_uppercase()
}

fn is_lower(s: &str) -> bool {
    s == s.to_lowercase()
}

pub(crate) fn from_as_casing(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let Some(as_kw) = raw_as_keyword(&stage.from) else {
            continue;
        };
        let from_kw = stage.from.keyword.as_str();
        if (is_upper(from_kw) && !is_upper(as_kw)) || (is_lower(from_kw) && !is_lower(as_kw)) {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &[as_kw]),
                message: format!("'{as_kw}' and '{from_kw}' keywords' casing do not match"),
            });
        }
    }
    hits
}

pub(crate) fn duplicate_stage_name(ctx: &Ctx) -> Vec<Hit> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let Some(name) = stage.name.as_deref() else {
            continue;
        };
        if let Some((_, line)) = seen.iter().find(|(n, _)| *n == name) {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &[name]),
                message: format!(
                    "stage name {name:?} is already used at line {line}: `--from={name}` and `--target {name}` can only mean one of them"
                ),
            });
        } else {
            seen.push((name, stage.from.span.start_line));
        }
    }
    hits
}

pub(crate) fn reserved_stage_name(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let Some(name) = stage.name.as_deref() else {
            continue;
        };
        if RESERVED_STAGE_NAMES.contains(&name) {
            hits.push(Hit {
                location: ctx.locate(&stage.from, &[name]),
                message: format!(
                    "stage name {name:?} is reserved: `{name}` already means something in FROM and COPY --from"
                ),
            });
        }
    }
    hits
}

/// Every keyword the casing rule judges: each stage's FROM and its commands
/// (not the meta ARGs, as BuildKit).
fn keywords<'a>(ctx: &Ctx<'a>) -> Vec<&'a Command> {
    let mut out = Vec::new();
    for stage in &ctx.df.stages {
        out.push(&stage.from);
        out.extend(stage.commands.iter());
    }
    out
}

pub(crate) fn consistent_instruction_casing(ctx: &Ctx) -> Vec<Hit> {
    let commands = keywords(ctx);
    let (mut lower, mut upper) = (0, 0);
    for c in &commands {
        if is_lower(&c.keyword) {
            lower += 1;
        } else if is_upper(&c.keyword) {
            upper += 1;
        }
    }
    let majority_lower = lower > upper;
    let mut hits = Vec::new();
    for c in commands {
        let kw = c.keyword.as_str();
        let wrong = if majority_lower {
            !is_lower(kw)
        } else {
            !is_upper(kw)
        };
        if wrong {
            let expected = if majority_lower {
                kw.to_lowercase()
            } else {
                kw.to_uppercase()
            };
            hits.push(Hit {
                location: ctx.locate(c, &[]),
                message: format!(
                    "'{kw}' should be '{expected}', as most instructions in this file are {}",
                    if majority_lower {
                        "lowercase"
                    } else {
                        "uppercase"
                    }
                ),
            });
        }
    }
    hits
}

pub(crate) fn maintainer_deprecated(ctx: &Ctx) -> Vec<Hit> {
    ctx.all_commands()
        .filter_map(|(_, _, c)| match &c.instruction {
            Instruction::Maintainer(m) => Some(Hit {
                location: ctx.at(c),
                message: format!(
                    "MAINTAINER is deprecated; write LABEL org.opencontainers.image.authors={:?}",
                    m
                ),
            }),
            _ => None,
        })
        .collect()
}

pub(crate) fn legacy_key_value_format(ctx: &Ctx) -> Vec<Hit> {
    ctx.all_commands()
        .filter_map(|(_, _, c)| {
            let kvs = match &c.instruction {
                Instruction::Env(kvs) | Instruction::Label(kvs) => kvs,
                _ => return None,
            };
            let kv = kvs.iter().find(|kv| kv.no_delim)?;
            // Continuation lines leave runs of blanks in the value; show one.
            let written = kv.value.split_whitespace().collect::<Vec<_>>().join(" ");
            let value = written.as_str();
            let value = if value.contains(char::is_whitespace) && !value.starts_with('"') {
                format!("\"{value}\"")
            } else {
                value.to_string()
            };
            Some(Hit {
                location: ctx.at(c),
                message: format!(
                    "`{kw} {key} {written}` is the legacy form; write `{kw} {key}={value}`",
                    kw = c.keyword.to_uppercase(),
                    key = kv.key,
                ),
            })
        })
        .collect()
}

pub(crate) fn empty_continuation(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for w in ctx
        .df
        .warnings
        .iter()
        .filter(|w| w.url.contains("no-empty-continuation"))
    {
        // BuildKit reports the instruction once, at its last line; point at
        // each empty line instead.
        let cmd = ctx
            .df
            .meta_args
            .iter()
            .chain(
                ctx.df
                    .stages
                    .iter()
                    .flat_map(|s| std::iter::once(&s.from).chain(&s.commands)),
            )
            .find(|c| (c.span.start_line..=c.span.end_line).contains(&w.line));
        let empty: Vec<usize> = match cmd {
            Some(c) => (c.span.start_line + 1..=c.span.end_line)
                .filter(|&n| ctx.line(n).trim().is_empty())
                .collect(),
            None => Vec::new(),
        };
        let keyword = cmd.map_or("instruction".to_string(), |c| c.keyword.to_uppercase());
        let start = cmd.map_or(w.line, |c| c.span.start_line);
        let lines = if empty.is_empty() {
            vec![w.line]
        } else {
            empty
        };
        for line in lines {
            hits.push(Hit {
                location: Location {
                    line,
                    column: 1,
                    end_line: line,
                    end_column: ctx.line(line).chars().count().max(1) + 1,
                },
                message: format!(
                    "an empty line inside the {keyword} that starts at line {start}: the instruction goes on after it, and a future BuildKit will reject it"
                ),
            });
        }
    }
    hits
}

fn graph_error_line(e: &StageGraphError) -> Option<usize> {
    match e {
        StageGraphError::Expand { line, .. }
        | StageGraphError::BlankBaseName { line, .. }
        | StageGraphError::BlankPlatform { line, .. }
        | StageGraphError::VariableInFrom { line }
        | StageGraphError::InvalidStageIndex { line, .. }
        | StageGraphError::Circular { line, .. }
        | StageGraphError::CopyFromLaterStage { line, .. }
        | StageGraphError::MountFromLaterStage { line, .. } => Some(*line),
        _ => None,
    }
}

pub(crate) fn invalid_stage_reference(ctx: &Ctx) -> Vec<Hit> {
    let error = match StageGraph::new(ctx.df, &GraphOptions::default()) {
        Ok(graph) => match graph.plan(None) {
            Ok(_) => return Vec::new(),
            Err(e) => e,
        },
        Err(e) => e,
    };
    // Errors about base names and expansion belong to other rules.
    if matches!(
        error,
        StageGraphError::Expand { .. }
            | StageGraphError::BlankBaseName { .. }
            | StageGraphError::BlankPlatform { .. }
    ) {
        return Vec::new();
    }
    let Some(line) = graph_error_line(&error) else {
        return Vec::new();
    };
    let cmd = ctx
        .all_commands()
        .map(|(_, _, c)| c)
        .find(|c| c.span.start_line == line);
    let location = match cmd {
        Some(c) => ctx.locate(c, &["--from"]),
        None => Location {
            line,
            column: 1,
            end_line: line,
            end_column: ctx.line(line).chars().count() + 1,
        },
    };
    let message = error.to_string();
    let message = message
        .strip_prefix(&format!("line {line}: "))
        .unwrap_or(&message)
        .to_string();
    vec![Hit {
        location,
        message: format!("the build cannot resolve this: {message}"),
    }]
}

pub(crate) fn definition_description(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut check = |cmd: &Command, what: &str, keys: Vec<String>| {
        let comments: Vec<&String> = cmd
            .comments
            .iter()
            .filter(|c| {
                let t = c.trim();
                !t.starts_with("berth-lint")
                    && !t.starts_with("hadolint")
                    && !t.starts_with("syntax=")
                    && !t.starts_with("check=")
            })
            .collect();
        let (Some(last), false) = (comments.last(), keys.is_empty()) else {
            return;
        };
        let first_word = last.split_whitespace().next().unwrap_or("");
        if keys.iter().any(|k| k == first_word) {
            return;
        }
        let example = if keys.len() > 1 {
            "<arg_key>"
        } else {
            &keys[0]
        };
        hits.push(Hit {
            location: ctx.at(cmd),
            message: format!(
                "the comment above this {what} reads as its description only if it starts with its name: `# {example} <description>`"
            ),
        });
    };
    for cmd in ctx.df.meta_args.iter() {
        if let Instruction::Arg(defs) = &cmd.instruction {
            check(cmd, "ARG", defs.iter().map(|d| d.key.clone()).collect());
        }
    }
    for (i, stage) in ctx.df.stages.iter().enumerate() {
        if let Some(raw) = &ctx.stages[i].raw_name {
            check(&stage.from, "stage", vec![raw.clone()]);
        }
        for cmd in &stage.commands {
            if let Instruction::Arg(defs) = &cmd.instruction {
                check(cmd, "ARG", defs.iter().map(|d| d.key.clone()).collect());
            }
        }
    }
    hits
}

pub(crate) fn unknown_rule_in_ignore(ctx: &Ctx) -> Vec<Hit> {
    crate::suppress::Suppressions::read(ctx).unknown_ids()
}
