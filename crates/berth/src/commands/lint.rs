//! `berth lint [PATH|-]`: check a Dockerfile against the rules of berth-lint.
//!
//! Exit status: 0 when no finding reaches `--fail-on`, 1 when one does (the
//! report is printed either way), 125 when the Dockerfile, a flag, the
//! configuration or the context cannot be used.

use std::io::{Read, Write};
use std::path::Path;

use berth_lint::{catalog, render, Config, ContextFacts, Options, Severity};

use super::Context;
use crate::cli::LintArgs;
use crate::error::CliError;
use crate::output::{self, table};

enum Format {
    Human,
    Json,
    Sarif,
}

fn parse_format(s: &str) -> Result<Format, CliError> {
    match s {
        "human" => Ok(Format::Human),
        "json" => Ok(Format::Json),
        "sarif" => Ok(Format::Sarif),
        _ => Err(CliError::usage(format!(
            "invalid --format {s:?}: expected human, json or sarif"
        ))),
    }
}

/// `None` for `--fail-on none`.
fn parse_fail_on(s: &str) -> Result<Option<Severity>, CliError> {
    if s == "none" {
        return Ok(None);
    }
    s.parse().map(Some).map_err(|_| {
        CliError::usage(format!(
            "invalid --fail-on {s:?}: expected error, warning, info, style or none"
        ))
    })
}

pub fn run(_ctx: &Context, a: LintArgs) -> Result<(), CliError> {
    let format = parse_format(&a.format)?;
    let fail_on = parse_fail_on(&a.fail_on)?;
    let config = match &a.config {
        Some(path) => Config::load(path).map_err(|e| CliError::usage(e.to_string()))?,
        None => Config::default(),
    };
    if a.list {
        return list(&config);
    }

    let (display, source, file) = read_dockerfile(a.path.as_deref())?;
    let context = match &a.context {
        Some(dir) => Some(ContextFacts::load(dir, file.as_deref()).map_err(|e| {
            CliError::usage(format!(
                "cannot read the build context {}: {e}",
                dir.display()
            ))
        })?),
        None => None,
    };
    let options = Options { config, context };
    let report = berth_lint::lint(&source, &options)
        .map_err(|e| CliError::usage(format!("{display}: {e}")))?;

    let text = match format {
        Format::Human => render::human(&display, &source, &report),
        Format::Json => render::json(&display, &report),
        Format::Sarif => render::sarif(
            &display,
            &source,
            &report,
            &options.config,
            env!("CARGO_PKG_VERSION"),
        ),
    };
    let mut out = output::stdout();
    out.write_all(text.as_bytes())?;
    out.flush()?;

    match (fail_on, report.worst()) {
        (Some(threshold), Some(worst)) if worst >= threshold => Err(CliError::exit(1)),
        _ => Ok(()),
    }
}

/// The text to lint, the name reports show, and the file path (not for stdin).
fn read_dockerfile(
    path: Option<&str>,
) -> Result<(String, String, Option<std::path::PathBuf>), CliError> {
    match path {
        Some("-") => {
            let mut source = String::new();
            std::io::stdin().read_to_string(&mut source).map_err(|e| {
                CliError::usage(format!("cannot read the Dockerfile from stdin: {e}"))
            })?;
            Ok(("<stdin>".into(), source, None))
        }
        _ => {
            let path = path.unwrap_or("Dockerfile");
            let file = Path::new(path);
            let source = std::fs::read_to_string(file)
                .map_err(|e| CliError::usage(format!("cannot read {path}: {e}")))?;
            Ok((path.to_string(), source, Some(file.to_path_buf())))
        }
    }
}

/// `--list`: the catalog, with the levels the configuration gives.
fn list(config: &Config) -> Result<(), CliError> {
    let mut lines = vec!["ID\tSEVERITY\tTITLE\tHADOLINT\tBUILDKIT".to_string()];
    for rule in catalog::RULES {
        let severity = match config.severity(rule, false) {
            Some(s) => s.to_string(),
            None => "off".to_string(),
        };
        let or_dash = |ids: &[&str]| {
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.join(",")
            }
        };
        lines.push(format!(
            "{}\t{severity}\t{}\t{}\t{}",
            rule.id,
            rule.title,
            or_dash(rule.hadolint),
            or_dash(rule.buildkit)
        ));
    }
    let mut out = output::stdout();
    table::write_table(&mut out, &lines)?;
    out.flush()?;
    Ok(())
}
