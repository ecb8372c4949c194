//! What the prune commands share: Docker's confirmation, the `until` and
//! `label` filters, and the report that `system prune` strings together.

use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

use berth_store::Store;

use super::Context;
use crate::cli::SystemPruneArgs;
use crate::commands::parse_filters;
use crate::error::{status, CliError};
use crate::output::{self, units};

/// `system prune`: stopped containers, unused networks, dangling images (or
/// with `-a` all unused ones), and build cache; anonymous volumes with
/// `--volumes`. Docker's order and report.
pub fn system(ctx: &Context, a: SystemPruneArgs) -> Result<(), CliError> {
    let filters = Filters::parse(&a.filter)?;
    let mut warning = String::from(
        "This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    if a.all {
        warning.push_str(
            "  - all images without at least one container associated to them\n  - all build cache\n",
        );
    } else {
        warning.push_str("  - all dangling images\n  - unused build cache\n");
    }
    if !confirm(&warning, a.force)? {
        return Ok(());
    }
    let mut store = ctx.store()?;
    let mut parts = vec![super::container::prune::prune_containers(
        &mut store, &filters,
    )?];
    if a.volumes {
        parts.push(super::volume::prune_volumes(&mut store, false, &|l| {
            filters.matches_labels(l)
        })?);
    }
    parts.push(super::network::prune_networks(&mut store, &filters)?);
    parts.push(super::image_prune::prune_images(
        &mut store, a.all, &filters,
    )?);
    parts.push(build_cache(&mut store, a.all)?);
    report(&parts)
}

/// The build cache part of `builder prune` and `system prune`: dangling
/// records, or all with `all`, listed by the first 25 digits of their keys.
pub fn build_cache(store: &mut Store, all: bool) -> Result<Pruned, CliError> {
    let cache = store.prune_build_cache(all)?;
    let mut p = Pruned::new("Deleted build cache objects");
    p.bytes = cache.bytes;
    p.section.lines = cache
        .records
        .iter()
        .map(|r| {
            let hex = r.key.strip_prefix("sha256:").unwrap_or(&r.key);
            hex[..hex.len().min(25)].to_string()
        })
        .collect();
    p.deferred = cache.deferred;
    Ok(p)
}

/// Asks Docker's question unless `-f`; refuses without a terminal to ask on.
pub fn confirm(warning: &str, force: bool) -> Result<bool, CliError> {
    if force {
        return Ok(true);
    }
    if !std::io::stdin().is_terminal() {
        // One line: a list of what would go reads as a sentence.
        let warning = warning
            .trim_end()
            .replace(":\n  - ", ": ")
            .replace("\n  - ", ", ");
        let stop = if warning.ends_with('.') { "" } else { "." };
        return Err(CliError::new(format!(
            "{warning}{stop} Not asking without a terminal: add -f (--force) to confirm."
        )));
    }
    // Docker asks on standard output.
    let mut out = output::stdout();
    write!(
        out,
        "WARNING! {warning}\nAre you sure you want to continue? [y/N] "
    )?;
    out.flush()?;
    drop(out);
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "Yes"))
}

/// One "Deleted …:" section of a prune's report.
pub struct Section {
    pub heading: &'static str,
    pub lines: Vec<String>,
}

/// What one kind of prune removed.
pub struct Pruned {
    pub section: Section,
    pub bytes: u64,
    /// Something could not be removed (and was reported); the command fails.
    pub failed: bool,
    /// A running build holds a lease: layers were kept for it.
    pub deferred: bool,
}

impl Pruned {
    pub fn new(heading: &'static str) -> Self {
        Self {
            section: Section {
                heading,
                lines: Vec::new(),
            },
            bytes: 0,
            failed: false,
            deferred: false,
        }
    }
}

/// Prints the sections that have lines, each followed by a blank line, then
/// Docker's total; says why less than expected was freed when a build's
/// lease kept layers; fails when a part could not remove something.
pub fn report(parts: &[Pruned]) -> Result<(), CliError> {
    let mut out = output::stdout();
    for s in parts.iter().map(|p| &p.section) {
        if s.lines.is_empty() {
            continue;
        }
        writeln!(out, "{}:", s.heading)?;
        for l in &s.lines {
            writeln!(out, "{l}")?;
        }
        writeln!(out)?;
    }
    let reclaimed: u64 = parts.iter().map(|p| p.bytes).sum();
    writeln!(
        out,
        "Total reclaimed space: {}",
        units::human_size(reclaimed)
    )?;
    drop(out);
    if parts.iter().any(|p| p.deferred) {
        let _ = writeln!(
            std::io::stderr(),
            "note: a build is running, so the layers it may use stay on disk; the next prune frees them"
        );
    }
    if parts.iter().any(|p| p.failed) {
        return Err(CliError::exit(status::FAILURE));
    }
    Ok(())
}

/// `--filter until=…`, `label=…` and `label!=…`, all of which must match.
pub struct Filters {
    /// What was created before this (unix seconds) matches.
    until: Option<i64>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
}

impl Filters {
    pub fn parse(raw: &[String]) -> Result<Self, CliError> {
        let mut f = Self {
            until: None,
            labels: Vec::new(),
            not_labels: Vec::new(),
        };
        // `label!=k` reads as key "label!" with value "k" when split at '='.
        for (k, v) in parse_filters(raw, &["until", "label", "label!"])? {
            match k {
                "until" => {
                    if f.until.is_some() {
                        return Err(CliError::new("more than one until filter specified"));
                    }
                    f.until = Some(parse_until(v)?);
                }
                "label" | "label!" => {
                    let pair = match v.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (v.to_string(), None),
                    };
                    if k == "label" {
                        f.labels.push(pair);
                    } else {
                        f.not_labels.push(pair);
                    }
                }
                _ => unreachable!("parse_filters allows only these"),
            }
        }
        Ok(f)
    }

    /// Whether something created at `created` (unix seconds) is old enough.
    pub fn matches_time(&self, created: i64) -> bool {
        self.until.is_none_or(|until| created < until)
    }

    /// Whether any label filter was given (reading labels may cost a parse).
    pub fn has_label_filters(&self) -> bool {
        !(self.labels.is_empty() && self.not_labels.is_empty())
    }

    pub fn matches_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        let has = |(k, v): &(String, Option<String>)| match (labels.get(k), v) {
            (Some(_), None) => true,
            (Some(actual), Some(want)) => actual == want,
            (None, _) => false,
        };
        self.labels.iter().all(has) && !self.not_labels.iter().any(has)
    }
}

/// Docker's `until`: a Go duration before now (`10m`, `1h30m`), a unix time
/// (`1700000000`, `1700000000.5`), or an RFC 3339 date or time.
fn parse_until(v: &str) -> Result<i64, CliError> {
    let now = chrono::Utc::now();
    if let Some(d) = go_duration(v) {
        return Ok((now - chrono::Duration::milliseconds((d * 1000.0) as i64)).timestamp());
    }
    if let Ok(secs) = v.parse::<f64>() {
        return Ok(secs.floor() as i64);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp());
    }
    for fmt in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(t.and_utc().timestamp());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(d
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp());
    }
    Err(CliError::new(format!(
        "failed to parse value as time or duration: {v:?}"
    )))
}

/// Go's `time.ParseDuration`, in seconds: numbers with units h, m, s, ms,
/// us (µs), ns, e.g. `1h30m` or `1.5h`.
fn go_duration(s: &str) -> Option<f64> {
    let mut rest = s;
    let mut total = 0.0;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_len == 0 {
            return None;
        }
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += n * scale;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(go_duration("10m"), Some(600.0));
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("1.5h"), Some(5400.0));
        assert_eq!(go_duration("500ms"), Some(0.5));
        assert_eq!(go_duration("10"), None);
        assert_eq!(go_duration("m"), None);
        assert_eq!(go_duration(""), None);
    }

    #[test]
    fn until_takes_times_and_durations() {
        assert_eq!(parse_until("1700000000").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2023-11-14T22:13:20Z").unwrap(), 1_700_000_000);
        assert_eq!(parse_until("2023-11-14").unwrap(), 1_699_920_000);
        let an_hour_ago = parse_until("1h").unwrap();
        assert!((chrono::Utc::now().timestamp() - 3600 - an_hour_ago).abs() <= 2);
        assert!(parse_until("yesterday").is_err());
    }
}
