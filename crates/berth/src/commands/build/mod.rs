//! `berth build` and `berth builder prune`: arguments to a
//! [`berth_build::BuildOptions`], progress to the terminal, the report after.

mod input;
mod output;
mod progress;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};

use berth_build::report::{self, ImageReport};
use berth_build::{BuildOptions, NetworkMode, Secret};
use berth_oci::Reference;

use super::Context;
use crate::cli::{BuildArgs, BuilderPruneArgs};
use crate::error::CliError;
use progress::{Mode, Printer};

pub fn run(ctx: &Context, a: BuildArgs) -> Result<(), CliError> {
    let mode = match (a.quiet, a.progress.as_str()) {
        (true, _) | (_, "quiet") => Mode::Quiet,
        (_, "plain") => Mode::Plain,
        (_, "tty") => Mode::Tty,
        (_, "auto") if std::io::stderr().is_terminal() => Mode::Tty,
        (_, "auto") => Mode::Plain,
        (_, other) => {
            return Err(CliError::usage(format!(
                "invalid --progress {other:?}: use auto, plain, tty or quiet"
            )))
        }
    };
    let network = match a.network.as_str() {
        "default" | "host" => NetworkMode::Host,
        "none" => NetworkMode::None,
        other => {
            return Err(CliError::usage(format!(
                "invalid --network {other:?}: use default, host or none"
            )))
        }
    };
    let strict = match a.policy.as_str() {
        "warn" => false,
        "strict" => true,
        other => {
            return Err(CliError::usage(format!(
                "invalid --policy {other:?}: use warn or strict"
            )))
        }
    };
    if let Some(p) = &a.platform {
        let host = format!("linux/{}", berth_oci::host_architecture());
        if p != &host {
            return Err(CliError::usage(format!(
                "--platform {p} is not this machine's platform ({host}); berth builds for {host} only"
            )));
        }
    }
    let names = a
        .tags
        .iter()
        .map(|t| {
            Reference::parse_normalized(t).map_err(|e| {
                CliError::usage(format!(
                    "invalid argument {t:?} for \"-t, --tag\" flag: {e}"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let build_args = key_values(&a.build_args, "--build-arg", true)?;
    let labels = key_values(&a.labels, "--label", false)?;
    let secrets = parse_secrets(&a.secrets)?;
    let outputs = a
        .outputs
        .iter()
        .map(|o| output::Output::parse(o))
        .collect::<Result<Vec<_>, _>>()?;
    let source_date_epoch = match build_args
        .get("SOURCE_DATE_EPOCH")
        .cloned()
        .or_else(|| std::env::var("SOURCE_DATE_EPOCH").ok())
    {
        Some(v) if !v.is_empty() => Some(v.parse::<i64>().map_err(|_| {
            CliError::usage(format!(
                "invalid SOURCE_DATE_EPOCH {v:?}: use seconds since 1970 (git log -1 --format=%ct)"
            ))
        })?),
        _ => None,
    };

    let input = input::Input::prepare(ctx, &a.context, a.file.as_deref())?;

    if a.check {
        return check(&input);
    }

    let exe = std::env::current_exe()
        .map_err(|e| CliError::new(format!("cannot find the berth binary: {e}")))?;
    let opts = BuildOptions {
        context_dir: input.context_dir.clone(),
        dockerfile_name: input.dockerfile_name.clone(),
        dockerfile: input.dockerfile.clone(),
        ignore_file: input.ignore_file.clone(),
        ignore_patterns: input.ignore_patterns.clone(),
        build_args,
        target: a.target.clone(),
        no_cache: a.no_cache,
        labels,
        network,
        secrets,
        source_date_epoch,
        exe,
        names: names.clone(),
        strict,
        size_budget: report::DEFAULT_BUDGET,
        interrupt: std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false)),
    };
    // From here to the end no garbage collection of another process takes
    // the layers this build reads or makes.
    let _lease = ctx.store()?.lease()?;
    // Base images come from a registry when they are not here (as Docker
    // pulls them), or always with --pull.
    let bases = berth_build::base_images(&opts)
        .map_err(|e| CliError::new(format!("failed to build: {e}")))?;
    let missing: Vec<String> = {
        let store = ctx.store()?;
        bases
            .into_iter()
            .filter(|b| a.pull || store.resolve_image(b).is_err())
            .collect()
    };
    for b in &missing {
        if mode != Mode::Quiet {
            eprintln_safe(&format!("pulling {b}"));
        }
        super::registry::pull_quietly(ctx, b).map_err(|e| {
            CliError::new(format!(
                "failed to build: base image {b:?} is not here and could not be pulled: {}",
                e.message
            ))
        })?;
    }
    // Ctrl-C (or SIGTERM, SIGHUP) stops the build cleanly: the library sees
    // the flag, stops the running steps and unmounts what it mounted.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        signal_hook::flag::register(sig, std::sync::Arc::clone(&opts.interrupt))
            .map_err(|e| CliError::new(format!("cannot handle signals: {e}")))?;
    }
    let printer = Printer::new(mode);
    let result = berth_build::build(ctx.root(), &opts, &printer);
    printer.finish();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            printer.print_failure_logs();
            return Err(CliError {
                message: format!("failed to build: {e}"),
                status: e.exit_status(),
                silent: false,
            });
        }
    };
    let id = outcome.id.to_string();
    if mode != Mode::Quiet {
        let mut err = std::io::stderr().lock();
        for n in &names {
            let _ = writeln!(err, "naming to {n} done");
        }
        for (name, old) in &outcome.moved {
            if old != &outcome.id {
                let _ = writeln!(err, "{name} moved from {}", short(old.as_str()));
            }
        }
        let _ = writeln!(err, "writing image {id} done");
        print_report(
            &mut err,
            &input.dockerfile_name,
            &outcome.report,
            outcome.lint.as_ref(),
        );
    }
    if let Some(path) = &a.iidfile {
        berth_fs::write_atomic(path, id.as_bytes()).map_err(|e| {
            CliError::new(format!("cannot write --iidfile {}: {e}", path.display()))
        })?;
    }
    for o in &outputs {
        o.write(ctx, &outcome.id, &names)?;
    }
    if mode == Mode::Quiet {
        let mut out = crate::output::stdout();
        let _ = writeln!(out, "{id}");
    }
    Ok(())
}

fn eprintln_safe(line: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn short(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// `K=V` flags; with `from_env`, a bare `K` takes the value of the
/// environment variable (and is skipped when it is unset), as Docker does.
fn key_values(
    raw: &[String],
    flag: &str,
    from_env: bool,
) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for kv in raw {
        match kv.split_once('=') {
            Some(("", _)) => {
                return Err(CliError::usage(format!(
                    "invalid {flag} {kv:?}: the name before = is empty"
                )))
            }
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None if from_env => {
                if let Ok(v) = std::env::var(kv) {
                    out.insert(kv.clone(), v);
                }
            }
            None => {
                out.insert(kv.clone(), String::new());
            }
        }
    }
    Ok(out)
}

/// `--secret id=ID[,src=FILE|,env=VAR]`; with neither, the environment
/// variable named ID, else the file at ID (Docker's rule).
fn parse_secrets(raw: &[String]) -> Result<BTreeMap<String, Secret>, CliError> {
    let mut out = BTreeMap::new();
    for s in raw {
        let mut id = None;
        let mut src = None;
        let mut env = None;
        for part in s.split(',') {
            match part.split_once('=') {
                Some(("id", v)) => id = Some(v.to_string()),
                Some(("src" | "source", v)) => src = Some(v.to_string()),
                Some(("env", v)) => env = Some(v.to_string()),
                Some(("type", "file" | "env")) => {}
                _ => {
                    return Err(CliError::usage(format!(
                        "invalid --secret {s:?}: use id=NAME,src=FILE or id=NAME,env=VARIABLE"
                    )))
                }
            }
        }
        let id =
            id.ok_or_else(|| CliError::usage(format!("invalid --secret {s:?}: id= is required")))?;
        let secret = match (src, env) {
            (Some(f), _) => file_secret(&f)?,
            (None, Some(var)) => Secret::Value(std::env::var(&var).map_err(|_| {
                CliError::usage(format!(
                    "--secret id={id}: environment variable {var} is not set"
                ))
            })?),
            (None, None) => match std::env::var(&id) {
                Ok(v) => Secret::Value(v),
                Err(_) => file_secret(&id)?,
            },
        };
        out.insert(id, secret);
    }
    Ok(out)
}

fn file_secret(path: &str) -> Result<Secret, CliError> {
    let p = std::fs::canonicalize(path)
        .map_err(|e| CliError::usage(format!("--secret: cannot read {path}: {e}")))?;
    if !p.is_file() {
        return Err(CliError::usage(format!("--secret: {path} is not a file")));
    }
    Ok(Secret::File(p))
}

/// `--check`: the lint rules and the context audit, nothing built. Exits 1
/// when a finding is a warning or worse, as `docker build --check` does.
fn check(input: &input::Input) -> Result<(), CliError> {
    let facts =
        berth_lint::ContextFacts::load(&input.context_dir, input.dockerfile_path.as_deref()).ok();
    let report = berth_lint::lint(
        &input.dockerfile,
        &berth_lint::Options {
            config: Default::default(),
            context: facts,
        },
    )
    .map_err(|e| CliError::new(format!("{}: {e}", input.dockerfile_name)))?;
    let text = berth_lint::render::human(&input.dockerfile_name, &input.dockerfile, &report);
    let mut out = crate::output::stdout();
    let _ = write!(out, "{text}");
    let serious = report
        .findings
        .iter()
        .filter(|f| f.severity >= berth_lint::Severity::Warning)
        .count();
    if serious == 0 {
        let _ = writeln!(out, "Check complete, no warnings found.");
        Ok(())
    } else {
        let _ = writeln!(out, "Check complete, {serious} warning(s) have been found!");
        Err(CliError::exit(1))
    }
}

fn print_report(
    err: &mut dyn Write,
    file: &str,
    r: &ImageReport,
    lint: Option<&berth_lint::Report>,
) {
    let _ = writeln!(err, "\nBest practices:");
    let _ = writeln!(
        err,
        "  size      {} of a {} budget",
        report::human(r.size),
        report::human(r.budget)
    );
    let _ = writeln!(
        err,
        "  user      {}",
        if r.runs_as_root() {
            "root".to_string()
        } else {
            r.user.clone()
        }
    );
    if r.wasted + r.base_wasted > 0 {
        let _ = writeln!(
            err,
            "  wasted    {}",
            report::human(r.wasted + r.base_wasted)
        );
    }
    for e in r.errors() {
        let _ = writeln!(err, "  error     {e}");
    }
    for w in r.warnings() {
        let _ = writeln!(err, "  warning   {w}");
    }
    if let Some(l) = lint {
        for f in &l.findings {
            let _ = writeln!(
                err,
                "  {:<9} {file}:{} {} [{}]",
                f.severity.to_string(),
                f.location.line,
                f.message,
                f.rule_id()
            );
        }
    }
}

pub fn prune(ctx: &Context, a: BuilderPruneArgs) -> Result<(), CliError> {
    let warning = if a.all {
        "This will remove all build cache."
    } else {
        "This will remove all dangling build cache."
    };
    if !super::prune::confirm(warning, a.force)? {
        return Ok(());
    }
    let p = super::prune::build_cache(&mut ctx.store()?, a.all)?;
    super::prune::report(&[p])
}
