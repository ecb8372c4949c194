//! How results reach the terminal: Docker's tables, units and `--format`
//! templates. Only this binary prints; libraries return data.

pub mod table;
pub mod template;
pub mod units;

use std::io::{self, Write};

use serde_json::Value;

use crate::error::CliError;
use template::Template;

/// Renders rows as Docker's `--format` does: `table` (the default, with
/// `default_table`), `json` (one object per line), or a Go-style template.
pub fn render_rows(
    out: &mut dyn Write,
    format: Option<&str>,
    default_table: &str,
    rows: &[Value],
    headers: &[(&str, &str)],
) -> Result<(), CliError> {
    let format = format.unwrap_or(default_table);
    if format == "json" {
        for r in rows {
            writeln!(out, "{}", serde_json::to_string(r).expect("json"))?;
        }
        return Ok(());
    }
    let (is_table, body) = match format.strip_prefix("table") {
        Some(rest) => (
            true,
            if rest.trim().is_empty() {
                default_table.strip_prefix("table").unwrap_or(default_table)
            } else {
                rest
            },
        ),
        None => (false, format),
    };
    let body = body.trim().replace("\\t", "\t").replace("\\n", "\n");
    let tpl = Template::parse(&body)?;
    if is_table {
        let mut lines = vec![tpl.render_header(headers)];
        for r in rows {
            lines.push(tpl.render(r)?);
        }
        table::write_table(out, &lines)?;
    } else {
        for r in rows {
            writeln!(out, "{}", tpl.render(r)?)?;
        }
    }
    Ok(())
}

/// Standard output, locked once per command. A reader that goes away early
/// (`berth images | head`) surfaces as `BrokenPipe`, which `CliError` turns
/// into a quiet success.
pub fn stdout() -> io::StdoutLock<'static> {
    io::stdout().lock()
}

/// Docker's stringutils.Ellipsis: cut to `max` characters, the last being "…".
pub fn ellipsis(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// Docker's `label=KEY` / `label=KEY=VALUE` filter.
pub fn label_matches(labels: &std::collections::BTreeMap<String, String>, filter: &str) -> bool {
    match filter.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(filter),
    }
}
