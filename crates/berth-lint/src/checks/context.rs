//! Rules about the build context: what a `COPY` from it takes along, and
//! sources the `.dockerignore` excludes.

use std::path::{Component, Path};

use berth_context::Concern;
use berth_dockerfile::instructions::{Command, Instruction};

use crate::model::{glob_match, has_glob, Ctx};
use crate::rule::Hit;

/// COPY and ADD instructions that read the context, with their source paths
/// expanded (sources that depend on unknown values are left out).
fn context_copies<'a>(ctx: &Ctx<'a>) -> Vec<(&'a Command, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let paths = match &cmd.instruction {
            Instruction::Copy(c) if c.from.is_none() => &c.sources.source_paths,
            Instruction::Add(a) => &a.sources.source_paths,
            _ => continue,
        };
        let scope = ctx.scope(s, ci);
        let sources: Vec<(String, String)> = paths
            .iter()
            .filter_map(|raw| {
                let value = scope.expand(&ctx.lex, raw).value?;
                (!value.contains("://") && !value.starts_with("git@")).then(|| (raw.clone(), value))
            })
            .collect();
        if !sources.is_empty() {
            out.push((cmd, sources));
        }
    }
    out
}

/// `./a/b/` → `["a", "b"]`; the context root is the empty list.
fn components(path: &str) -> Vec<String> {
    Path::new(path)
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect()
}

/// Whether copying `source` takes `flagged` (or part of it) along.
fn takes(source: &str, flagged: &Path) -> bool {
    let src = components(source);
    let flagged: Vec<String> = flagged
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let n = src.len().min(flagged.len());
    src[..n].iter().zip(&flagged[..n]).all(|(s, f)| {
        if has_glob(s) {
            glob_match(s, f)
        } else {
            s == f
        }
    })
}

fn context_rule(ctx: &Ctx, concern: Concern) -> Vec<Hit> {
    let Some(facts) = ctx.context else {
        return Vec::new();
    };
    let flagged: Vec<&berth_context::Finding> = facts
        .hygiene
        .iter()
        .filter(|f| f.rule.concern == concern && f.reincluded_by.is_none())
        .collect();
    if flagged.is_empty() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for (cmd, sources) in context_copies(ctx) {
        let taken: Vec<&&berth_context::Finding> = flagged
            .iter()
            .filter(|f| sources.iter().any(|(_, v)| takes(v, &f.path)))
            .collect();
        if taken.is_empty() {
            continue;
        }
        const SHOWN: usize = 4;
        let mut names: Vec<String> = taken
            .iter()
            .take(SHOWN)
            .map(|f| {
                let p = f.path.display();
                if f.files > 1 {
                    format!("{p} ({} files, {})", f.files, human_bytes(f.bytes))
                } else {
                    p.to_string()
                }
            })
            .collect();
        if taken.len() > SHOWN {
            names.push(format!("and {} more", taken.len() - SHOWN));
        }
        let mut lines: Vec<&str> = Vec::new();
        for f in &taken {
            if !lines.contains(&f.rule.ignore_line) {
                lines.push(f.rule.ignore_line);
            }
        }
        let what = match concern {
            Concern::Secret => "credential-like files",
            Concern::Bloat => "files that do not belong in an image",
        };
        let (raw, _) = &sources[0];
        hits.push(Hit {
            location: ctx.locate(cmd, &[raw]),
            message: format!(
                "{} {} takes {what} from the context: {}; no .dockerignore excludes them (add: {})",
                cmd.instruction.keyword(),
                sources
                    .iter()
                    .map(|(r, _)| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                names.join(", "),
                lines.join(", ")
            ),
        });
    }
    hits
}

pub(crate) fn context_secret(ctx: &Ctx) -> Vec<Hit> {
    context_rule(ctx, Concern::Secret)
}

pub(crate) fn context_bloat(ctx: &Ctx) -> Vec<Hit> {
    context_rule(ctx, Concern::Bloat)
}

pub(crate) fn copy_ignored_file(ctx: &Ctx) -> Vec<Hit> {
    let Some(facts) = ctx.context else {
        return Vec::new();
    };
    let Some(matcher) = &facts.ignore else {
        return Vec::new();
    };
    // As BuildKit: with exceptions (`!pattern`) in the file, a source could be
    // re-included below an excluded directory, so nothing is reported.
    if matcher.has_exclusions() {
        return Vec::new();
    }
    let mut hits = Vec::new();
    for (cmd, sources) in context_copies(ctx) {
        for (raw, value) in sources {
            let clean = components(&value).join("/");
            if clean.is_empty() || has_glob(&clean) {
                continue;
            }
            if matcher.matches(&clean).unwrap_or(false) {
                hits.push(Hit {
                    location: ctx.locate(cmd, &[&raw]),
                    message: format!(
                        "{} {raw}: the .dockerignore excludes {clean}, so the build does not see it and fails",
                        cmd.instruction.keyword()
                    ),
                });
            }
        }
    }
    hits
}

/// `1.2 MB`, as Docker prints sizes (decimal units).
fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_take_paths() {
        assert!(takes(".", Path::new(".git")));
        assert!(takes("./", Path::new("web/node_modules")));
        assert!(takes("web", Path::new("web/node_modules")));
        assert!(takes("web/node_modules/x", Path::new("web/node_modules")));
        assert!(takes("*.pem", Path::new("server.pem")));
        assert!(!takes("src", Path::new(".git")));
        assert!(!takes("*.js", Path::new("server.pem")));
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_234_567), "1.2 MB");
    }
}
