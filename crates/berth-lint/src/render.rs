//! Reports as text: pure functions from a [`Report`] to a `String`, so the
//! binary decides where they go and tests compare them exactly.
//!
//! * [`human`]: rustc's layout: `severity[rule]: message`, `--> path:line:col`,
//!   the source line with an underline, then the why and the fix.
//! * [`json`]: one object with the path, the findings and a summary.
//! * [`sarif`]: a SARIF 2.1.0 log with the rule catalog, for code-scanning
//!   services.

use std::fmt::Write as _;

use serde_json::{json, Value};

use crate::catalog::RULES;
use crate::rule::{Rule, Severity};
use crate::{Config, Report};

/// Tab stops used when showing source lines (carets must line up).
const TAB_WIDTH: usize = 4;

fn display_line(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if c == '\t' {
            let pad = TAB_WIDTH - out.chars().count() % TAB_WIDTH;
            out.extend(std::iter::repeat_n(' ', pad));
        } else {
            out.push(c);
        }
    }
    out
}

/// Display width of the first `chars` characters of `line`, tabs expanded.
fn display_width(line: &str, chars: usize) -> usize {
    let mut width = 0;
    for c in line.chars().take(chars) {
        width = if c == '\t' {
            width + TAB_WIDTH - width % TAB_WIDTH
        } else {
            width + 1
        };
    }
    width
}

fn plural(n: usize, word: &str) -> String {
    match (n, word) {
        (1, _) | (_, "info" | "style") => format!("{n} {word}"),
        _ => format!("{n} {word}s"),
    }
}

/// A one-line summary: `Dockerfile: 1 error, 2 warnings` or `Dockerfile: no findings`.
pub fn summary(path: &str, report: &Report) -> String {
    let parts: Vec<String> = Severity::ALL
        .iter()
        .filter_map(|&s| {
            let n = report.count(s);
            (n > 0).then(|| plural(n, s.as_str()))
        })
        .collect();
    if parts.is_empty() {
        format!("{path}: no findings")
    } else {
        format!("{path}: {}", parts.join(", "))
    }
}

/// The rustc-like report.
pub fn human(path: &str, source: &str, report: &Report) -> String {
    let lines: Vec<&str> = source
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let gutter = report
        .findings
        .iter()
        .map(|f| f.location.line.to_string().len())
        .max()
        .unwrap_or(1);
    let pad = " ".repeat(gutter);
    let mut out = String::new();
    for f in &report.findings {
        let loc = f.location;
        let _ = writeln!(out, "{}[{}]: {}", f.severity, f.rule.id, f.message);
        let _ = writeln!(out, "{pad}--> {path}:{}:{}", loc.line, loc.column);
        let text = lines.get(loc.line.wrapping_sub(1)).copied().unwrap_or("");
        let _ = writeln!(out, "{pad} |");
        let shown = display_line(text);
        let _ = writeln!(
            out,
            "{}",
            format!("{:>gutter$} | {}", loc.line, shown.trim_end()).trim_end()
        );
        let start = display_width(text, loc.column.saturating_sub(1));
        let end = if loc.end_line == loc.line {
            display_width(text, loc.end_column.saturating_sub(1))
        } else {
            shown.trim_end().chars().count()
        };
        let carets = end.saturating_sub(start).max(1);
        let more = if loc.end_line > loc.line {
            format!(" (to line {})", loc.end_line)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{pad} | {}{}{more}",
            " ".repeat(start),
            "^".repeat(carets)
        );
        let _ = writeln!(out, "{pad} |");
        let _ = writeln!(out, "{pad} = why: {}", f.rule.why);
        let _ = writeln!(out, "{pad} = fix: {}", f.rule.fix);
        out.push('\n');
    }
    out.push_str(&summary(path, report));
    out.push('\n');
    out
}

fn counts(report: &Report) -> Value {
    let mut m = serde_json::Map::new();
    for s in Severity::ALL {
        m.insert(s.as_str().to_string(), json!(report.count(s)));
    }
    Value::Object(m)
}

/// The JSON report.
pub fn json(path: &str, report: &Report) -> String {
    let findings: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            json!({
                "rule": f.rule.id,
                "severity": f.severity,
                "title": f.rule.title,
                "message": f.message,
                "line": f.location.line,
                "column": f.location.column,
                "end_line": f.location.end_line,
                "end_column": f.location.end_column,
                "why": f.rule.why,
                "fix": f.rule.fix,
                "hadolint": f.rule.hadolint,
                "buildkit": f.rule.buildkit,
            })
        })
        .collect();
    let doc = json!({
        "path": path,
        "findings": findings,
        "summary": counts(report),
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// SARIF's `level` for a severity (SARIF has no "style").
fn sarif_level(s: Severity) -> &'static str {
    match s {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Style => "note",
    }
}

/// The official location of the SARIF 2.1.0 schema (OASIS errata 01).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// Percent-encodes a path for a URI reference (RFC 3986 unreserved and `/` kept).
fn uri_path(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn sarif_rule(rule: &Rule, config: &Config) -> Value {
    let level = config.severity(rule, false);
    json!({
        "id": rule.id,
        "name": rule.title,
        "shortDescription": { "text": rule.title },
        "fullDescription": { "text": rule.why },
        "help": { "text": rule.fix },
        "defaultConfiguration": {
            "enabled": level.is_some(),
            "level": sarif_level(level.unwrap_or(rule.severity)),
        },
        "properties": {
            "severity": level.unwrap_or(rule.severity),
            "hadolint": rule.hadolint,
            "buildkit": rule.buildkit,
        },
    })
}

/// The SARIF 2.1.0 log. `config` sets the levels the catalog reports;
/// `version` is the tool's version.
pub fn sarif(path: &str, source: &str, report: &Report, config: &Config, version: &str) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    let rules: Vec<Value> = RULES.iter().map(|r| sarif_rule(r, config)).collect();
    let results: Vec<Value> = report
        .findings
        .iter()
        .map(|f| {
            let index = RULES
                .iter()
                .position(|r| r.id == f.rule.id)
                .expect("every finding's rule is in the catalog");
            let loc = f.location;
            let snippet = lines
                .get(loc.line.wrapping_sub(1))
                .copied()
                .unwrap_or("")
                .trim_end_matches('\r');
            json!({
                "ruleId": f.rule.id,
                "ruleIndex": index,
                "level": sarif_level(f.severity),
                "message": { "text": f.message },
                "locations": [{
                    "physicalLocation": {
                        "artifactLocation": { "uri": uri_path(path), "index": 0 },
                        "region": {
                            "startLine": loc.line,
                            "startColumn": loc.column,
                            "endLine": loc.end_line,
                            "endColumn": loc.end_column,
                            "snippet": { "text": snippet },
                        },
                    },
                }],
                "properties": { "severity": f.severity },
            })
        })
        .collect();
    let doc = json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": "berth-lint",
                    "version": version,
                    "informationUri": "https://github.com/berth-containers/berth",
                    "rules": rules,
                },
            },
            "artifacts": [{ "location": { "uri": uri_path(path) } }],
            "columnKind": "unicodeCodePoints",
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).expect("a JSON value serializes");
    s.push('\n');
    s
}

/// The rule catalog as Markdown (what `RULES.md` holds): a table, then each
/// rule with its why and fix. Generated so the documentation cannot drift from
/// the registry.
pub fn catalog_markdown() -> String {
    let mut out = String::from(
        "# berth lint rules\n\n\
         Generated from `crates/berth-lint/src/catalog.rs` by the test \
         `rules_md_is_generated_from_the_catalog` (run it with `BERTH_UPDATE_DOCS=1` \
         after changing a rule). `berth lint --list` prints the same catalog.\n\n\
         | id | severity | title | hadolint | BuildKit |\n\
         |---|---|---|---|---|\n",
    );
    let list = |ids: &[&str]| {
        if ids.is_empty() {
            "-".to_string()
        } else {
            ids.join(", ")
        }
    };
    for r in RULES {
        let severity = if r.enabled_by_default {
            r.severity.to_string()
        } else {
            format!("{} (off by default)", r.severity)
        };
        let _ = writeln!(
            out,
            "| [`{id}`](#{id}) | {severity} | {} | {} | {} |",
            r.title.replace('|', "\\|"),
            list(r.hadolint),
            list(r.buildkit),
            id = r.id,
        );
    }
    for r in RULES {
        let _ = write!(out, "\n## {}\n\n{} ({}).", r.id, r.title, r.severity);
        if r.needs_context {
            out.push_str(" Runs only with `--context DIR`.");
        }
        if !r.enabled_by_default {
            let _ = write!(
                out,
                " Off by default: enable it with `{} = \"on\"` in the configuration file.",
                r.id
            );
        }
        let _ = write!(out, "\n\n**Why.** {}\n\n**Fix.** {}\n", r.why, r.fix);
    }
    out.push_str("\n## BuildKit checks not covered\n\n");
    for (name, reason) in crate::catalog::NOT_COVERED {
        let _ = writeln!(out, "- `{name}`: {reason}.");
    }
    out
}
