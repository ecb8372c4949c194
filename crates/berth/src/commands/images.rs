//! `berth images` / `berth image ls`.

use std::collections::{BTreeMap, HashMap};

use berth_oci::{ImageConfig, Reference};
use berth_store::ImageRecord;
use serde_json::{json, Value};

use super::{parse_filters, Context};
use crate::cli::ImagesArgs;
use crate::error::CliError;
use crate::output::{self, render_rows, units};

const DEFAULT_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const DIGEST_TABLE: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
const QUIET: &str = "{{.ID}}";
const NONE: &str = "<none>";
const HEADERS: &[(&str, &str)] = &[
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("ID", "IMAGE ID"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];
const FILTERS: &[&str] = &["dangling", "reference", "label", "before", "since"];

pub fn run(ctx: &Context, a: ImagesArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut filters = parse_filters(&a.filter, FILTERS)?;
    if let Some(r) = &a.reference {
        filters.push(("reference", r.as_str()));
    }
    // `before=`/`since=` compare creation times with a named image.
    let mut pivots = HashMap::new();
    for &(k, v) in &filters {
        if k == "before" || k == "since" {
            pivots.insert(v.to_string(), store.resolve_image(v)?.created_unix);
        }
    }
    let mut images = Vec::new();
    for img in &store.images()? {
        if let Some(shown) = keep(&store, &pivots, img, &filters)? {
            images.push(shown);
        }
    }
    let mut rows = Vec::new();
    for img in &images {
        rows.extend(image_rows(img, a.digests, !a.no_trunc));
    }
    let format = if a.quiet {
        Some(QUIET)
    } else {
        a.format.as_deref()
    };
    let default = if a.digests {
        DIGEST_TABLE
    } else {
        DEFAULT_TABLE
    };
    render_rows(&mut output::stdout(), format, default, &rows, HEADERS)
}

/// Applies the filters; returns the image with only the names that matched a
/// `reference` filter (as Docker shows only those), or `None` to hide it.
fn keep(
    store: &berth_store::Store,
    pivots: &HashMap<String, i64>,
    img: &ImageRecord,
    filters: &[(&str, &str)],
) -> Result<Option<ImageRecord>, CliError> {
    let mut img = img.clone();
    let mut config: Option<ImageConfig> = None;
    for &(key, value) in filters {
        let ok = match key {
            "dangling" => {
                let want = match value {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    _ => return Err(CliError::new(format!("Invalid filter 'dangling={value}'"))),
                };
                img.tags.is_empty() == want
            }
            "reference" => {
                let matching: Vec<Reference> = img
                    .tags
                    .iter()
                    .chain(&img.digests)
                    .filter(|r| {
                        glob_match(value, &r.familiar_repository())
                            || glob_match(value, &r.familiar())
                    })
                    .cloned()
                    .collect();
                img.tags.retain(|t| matching.contains(t));
                img.digests.retain(|d| matching.contains(d));
                !matching.is_empty()
            }
            "label" => {
                if config.is_none() {
                    config = Some(
                        ImageConfig::from_slice(&store.image_config(&img.id)?)
                            .map_err(|e| CliError::new(format!("image {}: {e}", img.id.short())))?,
                    );
                }
                let labels = config
                    .as_ref()
                    .and_then(|c| c.config.as_ref())
                    .and_then(|c| c.labels.clone())
                    .unwrap_or_default();
                output::label_matches(&labels, value)
            }
            "before" | "since" => {
                let pivot = pivots[value];
                if key == "before" {
                    img.created_unix < pivot
                } else {
                    img.created_unix > pivot
                }
            }
            _ => unreachable!("checked by parse_filters"),
        };
        if !ok {
            return Ok(None);
        }
    }
    Ok(Some(img))
}

/// One row per repository:tag (and per digest with `--digests`), following the
/// docker CLI's imageFormat.
fn image_rows(img: &ImageRecord, show_digests: bool, trunc: bool) -> Vec<Value> {
    let id = if trunc {
        img.id.short().to_string()
    } else {
        img.id.to_string()
    };
    let size = units::human_size(img.size());
    let created_at = chrono::DateTime::from_timestamp(img.created_unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string())
        .unwrap_or_default();
    let row = |repo: &str, tag: &str, digest: &str| {
        // Keys in alphabetical order, as Go marshals the row for `--format json`.
        json!({
            "Containers": "N/A",
            "CreatedAt": created_at,
            "CreatedSince": units::since(img.created_unix),
            "Digest": digest,
            "ID": id,
            "Repository": repo,
            "SharedSize": "N/A",
            "Size": size,
            "Tag": tag,
            "UniqueSize": "N/A",
            "VirtualSize": size,
        })
    };
    if img.tags.is_empty() && img.digests.is_empty() {
        return vec![row(NONE, NONE, NONE)];
    }
    let mut by_repo: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for t in &img.tags {
        by_repo
            .entry(t.familiar_repository())
            .or_default()
            .0
            .push(t.tag().unwrap_or(NONE).to_string());
    }
    for d in &img.digests {
        by_repo
            .entry(d.familiar_repository())
            .or_default()
            .1
            .push(d.digest().map(|x| x.to_string()).unwrap_or_default());
    }
    let mut rows = Vec::new();
    for (repo, (tags, digests)) in by_repo {
        if tags.is_empty() {
            if show_digests {
                rows.extend(digests.iter().map(|d| row(&repo, NONE, d)));
            } else {
                rows.push(row(&repo, NONE, NONE));
            }
            continue;
        }
        for tag in &tags {
            if show_digests && !digests.is_empty() {
                rows.extend(digests.iter().map(|d| row(&repo, tag, d)));
            } else {
                let digest = digests.first().map_or(NONE, String::as_str);
                rows.push(row(&repo, tag, if show_digests { digest } else { NONE }));
            }
        }
    }
    rows
}

/// Go's `path.Match` for the patterns Docker users write: `*` and `?` within a
/// path segment, `[...]` classes.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len())
                .take_while(|&i| i == 0 || n[i - 1] != '/')
                .any(|i| go(&p[1..], &n[i..])),
            Some('?') => !n.is_empty() && n[0] != '/' && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(end) = p.iter().position(|&c| c == ']') else {
                    return false;
                };
                let Some(&c) = n.first() else {
                    return false;
                };
                let class = &p[1..end];
                let (negate, class) = match class.first() {
                    Some('^') | Some('!') => (true, &class[1..]),
                    _ => (false, class),
                };
                let mut hit = false;
                let mut i = 0;
                while i < class.len() {
                    if i + 2 < class.len() && class[i + 1] == '-' {
                        hit |= class[i] <= c && c <= class[i + 2];
                        i += 3;
                    } else {
                        hit |= class[i] == c;
                        i += 1;
                    }
                }
                hit != negate && go(&p[end + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_like_go_path_match() {
        assert!(glob_match("busy*", "busybox"));
        assert!(glob_match("busybox:1.*", "busybox:1.36"));
        assert!(!glob_match("*", "user/app"));
        assert!(glob_match("*/app", "user/app"));
        assert!(glob_match("b?sybox", "busybox"));
        assert!(glob_match("[a-c]usybox", "busybox"));
        assert!(!glob_match("busy", "busybox"));
    }
}
