//! `container prune`: removes every container that is not running, paused or
//! restarting, and says how much space their writable layers held.

use std::collections::HashSet;
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_runtime::rootfs::RootPaths;
use berth_runtime::ContainerConfig;
use berth_store::ContainerRecord;

use super::lifecycle::remove;
use super::{settle, Context};
use crate::cli::PruneArgs;
use crate::commands::parse_filters;
use crate::error::CliError;
use crate::output::{self, units};

const WARNING: &str =
    "WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ";

pub fn run(ctx: &Context, a: PruneArgs) -> Result<(), CliError> {
    let filters = Filters::parse(&a.filter)?;
    if !a.force && !confirmed()? {
        // Docker says nothing more than the total of what it did: nothing.
        writeln!(output::stdout(), "Total reclaimed space: 0B")?;
        return Ok(());
    }
    let mut store = ctx.store()?;
    let mut deleted = Vec::new();
    let mut reclaimed = 0u64;
    let mut failed = false;
    for c in store.containers()? {
        let c = settle(&mut store, c)?;
        if c.status.is_active() || !filters.matches(&c) {
            continue;
        }
        let size = upper_size(&RootPaths::new(&store.layout().container(&c.id)).upper);
        match remove(&mut store, &c) {
            Ok(()) => {
                deleted.push(c.id);
                reclaimed += size;
            }
            Err(e) => {
                // Docker goes on with the others and reports the failure.
                failed = true;
                let _ = writeln!(
                    io::stderr(),
                    "Error: cannot remove container {}: {e}",
                    c.name
                );
            }
        }
    }
    let mut out = output::stdout();
    if !deleted.is_empty() {
        writeln!(out, "Deleted Containers:")?;
        for id in &deleted {
            writeln!(out, "{id}")?;
        }
        writeln!(out)?;
    }
    writeln!(
        out,
        "Total reclaimed space: {}",
        units::human_size(reclaimed)
    )?;
    if failed {
        return Err(CliError::exit(crate::error::status::FAILURE));
    }
    Ok(())
}

/// Docker's prompt, answered on a terminal. Without one there is no one to
/// ask, and reading a pipe could wait forever (a CI job's open stdin), so the
/// command refuses rather than guess.
fn confirmed() -> Result<bool, CliError> {
    if !io::stdin().is_terminal() {
        return Err(CliError::new(
            "container prune needs a confirmation, and standard input is not a terminal to ask on; use --force (-f) to remove all stopped containers without a prompt",
        ));
    }
    let mut out = output::stdout();
    write!(out, "{WARNING}")?;
    out.flush()?;
    drop(out);
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim().eq_ignore_ascii_case("y"))
}

/// `--filter until=…`, `label=…` and `label!=…`, all of which must match.
struct Filters {
    /// Containers created before this (unix seconds) match.
    until: Option<i64>,
    labels: Vec<(String, Option<String>)>,
    not_labels: Vec<(String, Option<String>)>,
}

impl Filters {
    fn parse(raw: &[String]) -> Result<Self, CliError> {
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

    fn matches(&self, c: &ContainerRecord) -> bool {
        if let Some(until) = self.until {
            let created = chrono::DateTime::parse_from_rfc3339(&c.created)
                .map(|t| t.timestamp())
                .unwrap_or(0);
            if created >= until {
                return false;
            }
        }
        if self.labels.is_empty() && self.not_labels.is_empty() {
            return true;
        }
        let config: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
        let has = |(k, v): &(String, Option<String>)| match (config.labels.get(k), v) {
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

/// Bytes in a writable layer, counted as Docker's SizeRw: regular files by
/// size (hard links once), symlinks by target length, directories nothing.
fn upper_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
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
