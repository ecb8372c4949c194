//! `berth logs`.

use std::io::Write;
use std::time::Duration;

use berth_runtime::logs::{read_entries_from, Entry};
use berth_runtime::monitor::log_path;

use super::{find, Context};
use crate::cli::LogsArgs;
use crate::error::CliError;

const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// `--since`: an RFC 3339 time, a Unix timestamp, or a duration ago (`10m`).
fn since_cutoff(s: &str) -> Result<chrono::DateTime<chrono::Utc>, CliError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        return chrono::DateTime::from_timestamp(secs as i64, 0)
            .ok_or_else(|| CliError::usage(format!("invalid --since {s:?}")));
    }
    let (num, unit) = s.split_at(
        s.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(s.len()),
    );
    let n: f64 = num.parse().map_err(|_| {
        CliError::usage(format!(
            "invalid --since {s:?}: use e.g. 10m, 2h or 2024-01-02T15:04:05Z"
        ))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => {
            return Err(CliError::usage(format!(
                "invalid --since {s:?}: use e.g. 10m, 2h or 2024-01-02T15:04:05Z"
            )))
        }
    };
    Ok(chrono::Utc::now() - chrono::Duration::milliseconds((secs * 1000.0) as i64))
}

fn print(e: &Entry, timestamps: bool) -> Result<(), CliError> {
    let mut line = Vec::new();
    if timestamps {
        line.extend_from_slice(e.time.as_bytes());
        line.push(b' ');
    }
    line.extend_from_slice(e.log.as_bytes());
    if e.stream == "stderr" {
        std::io::stderr().write_all(&line)?;
    } else {
        let mut out = std::io::stdout();
        out.write_all(&line)?;
        out.flush()?;
    }
    Ok(())
}

pub fn run(ctx: &Context, a: LogsArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    let path = log_path(&store.layout().container(&c.id), &c.id);
    let cutoff = a.since.as_deref().map(since_cutoff).transpose()?;
    let tail: Option<usize> =
        match a.tail.as_str() {
            "all" | "-1" => None,
            n => Some(n.parse().map_err(|_| {
                CliError::usage(format!("invalid --tail {n:?}: use a number or all"))
            })?),
        };
    let keep = |e: &Entry| {
        cutoff.is_none_or(|c| {
            chrono::DateTime::parse_from_rfc3339(&e.time)
                .is_ok_and(|t| t.with_timezone(&chrono::Utc) >= c)
        })
    };
    let (all, mut offset) = read_entries_from(&path, 0)?;
    let entries: Vec<Entry> = all.into_iter().filter(keep).collect();
    let skip = tail.map_or(0, |n| entries.len().saturating_sub(n));
    for e in &entries[skip..] {
        print(e, a.timestamps)?;
    }
    if !a.follow {
        return Ok(());
    }
    loop {
        let (new, next) = read_entries_from(&path, offset)?;
        offset = next;
        for e in &new {
            print(e, a.timestamps)?;
        }
        let c = find(&mut store, &c.id)?;
        if !c.status.is_active() {
            // One more read: the last lines may have landed with the exit.
            for e in read_entries_from(&path, offset)?.0 {
                print(&e, a.timestamps)?;
            }
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}
