//! `berth history`.

use berth_oci::ImageConfig;
use serde_json::{json, Value};

use super::Context;
use crate::cli::HistoryArgs;
use crate::error::CliError;
use crate::output::{self, render_rows, units};

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("CreatedBy", "CREATED BY"),
    ("Size", "SIZE"),
    ("Comment", "COMMENT"),
];
/// Docker cuts CREATED BY at 45 characters unless `--no-trunc`.
const CREATED_BY_WIDTH: usize = 45;
const MISSING: &str = "<missing>";

pub fn run(ctx: &Context, a: HistoryArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let img = store.resolve_image(&a.image)?;
    let config = ImageConfig::from_slice(&store.image_config(&img.id)?)
        .map_err(|e| CliError::new(format!("image {}: bad config: {e}", img.id.short())))?;

    // Pair history entries with layers: each entry that is not an empty layer
    // consumed the next layer, bottom up.
    let mut layers = img.layers.iter();
    let mut entries: Vec<(Option<&berth_oci::History>, u64)> = Vec::new();
    if config.history.is_empty() {
        entries.extend(img.layers.iter().map(|l| (None, l.size)));
    } else {
        for h in &config.history {
            let size = if h.empty_layer {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            };
            entries.push((Some(h), size));
        }
    }
    entries.reverse();

    let now = chrono::Utc::now();
    let rows: Vec<Value> = entries
        .iter()
        .enumerate()
        .map(|(i, (h, size))| {
            let id = if i > 0 {
                MISSING.to_string()
            } else if a.no_trunc {
                img.id.to_string()
            } else {
                img.id.short().to_string()
            };
            let created = h
                .and_then(|h| h.created.as_deref())
                .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok());
            let created_since = match created {
                Some(t) if a.human => format!(
                    "{} ago",
                    units::human_duration((now - t.with_timezone(&chrono::Utc)).num_seconds())
                ),
                Some(t) => super::rfc3339_nano(t.with_timezone(&chrono::Utc)),
                None => "N/A".into(),
            };
            let created_by = h
                .and_then(|h| h.created_by.clone())
                .unwrap_or_default()
                .replace('\t', " ");
            let created_by = if a.no_trunc { created_by } else { output::ellipsis(&created_by, CREATED_BY_WIDTH) };
            json!({
                "Comment": h.and_then(|h| h.comment.clone()).unwrap_or_default(),
                "CreatedAt": created.map(|t| super::rfc3339_nano(t.with_timezone(&chrono::Utc))).unwrap_or_default(),
                "CreatedBy": created_by,
                "CreatedSince": created_since,
                "ID": id,
                "Size": if a.human { units::human_size(*size) } else { size.to_string() },
            })
        })
        .collect();
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    render_rows(&mut output::stdout(), format, DEFAULT_TABLE, &rows, HEADERS)
}
