//! One module per command group; each turns parsed arguments into store calls
//! and output.

pub mod build;
pub mod container;
pub mod df;
pub mod history;
pub mod image_prune;
pub mod images;
pub mod import;
pub mod inspect;
pub mod lint;
pub mod load;
pub mod network;
pub mod prune;
pub mod registry;
pub mod rmi;
pub mod save;
pub mod system;
pub mod tag;
pub mod volume;

use std::path::PathBuf;

use berth_store::Store;

use crate::error::CliError;

/// What every command needs: where the data root is.
pub struct Context {
    root: PathBuf,
}

impl Context {
    pub fn new(root: Option<PathBuf>) -> Self {
        Self {
            root: root.unwrap_or_else(berth_store::default_root),
        }
    }

    pub fn store(&self) -> Result<Store, CliError> {
        Store::open(&self.root).map_err(|e| {
            CliError::new(format!(
                "cannot open the data root {}: {e}",
                self.root.display()
            ))
        })
    }

    pub fn root(&self) -> &PathBuf {
        &self.root
    }
}

/// Docker's RFC 3339 with nanoseconds trimmed of trailing zeros (Go's
/// `time.RFC3339Nano`).
pub fn rfc3339_nano(t: chrono::DateTime<chrono::Utc>) -> String {
    let s = t.format("%Y-%m-%dT%H:%M:%S%.9f").to_string();
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("{s}Z")
}

/// Parses `key=value` filters, accepting only `allowed` keys, with Docker's error.
pub fn parse_filters<'a>(
    raw: &'a [String],
    allowed: &[&str],
) -> Result<Vec<(&'a str, &'a str)>, CliError> {
    raw.iter()
        .map(|f| {
            let (k, v) = f.split_once('=').ok_or_else(|| {
                CliError::new(format!("bad format of filter (expected name=value): {f}"))
            })?;
            if !allowed.contains(&k) {
                return Err(CliError::new(format!("invalid filter '{k}'")));
            }
            Ok((k, v))
        })
        .collect()
}
