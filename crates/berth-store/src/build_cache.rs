//! Build cache records: what a build step made, by the step's cache key.
//!
//! A record names the snapshot (chain ID) the step left, so a later build with
//! the same key reuses it without running the step. The layer it points at is
//! a GC root while the record lives, which is why a step's layer and its
//! record are written in one transaction ([`Store::commit_build_step`]).

use berth_fs::fsync_dir;
use berth_image::StagedLayer;
use berth_oci::Digest;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::error::Result;
use crate::images::parse_digest;
use crate::Store;

/// One cached step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheRecord {
    pub key: String,
    /// The snapshot after the step; `None` is the empty filesystem.
    pub chain_id: Option<Digest>,
    /// The layer the step added; `None` when it changed nothing.
    pub diff_id: Option<Digest>,
    /// When the step first ran (RFC 3339), recorded as its history time so
    /// a cached rebuild gives the same image ID.
    pub created: String,
    pub last_used_unix: i64,
    pub description: String,
    pub size: u64,
}

/// What `builder prune` removed.
#[derive(Debug, Default)]
pub struct CachePruneReport {
    pub records: Vec<CacheRecord>,
    pub bytes: u64,
    /// A lease kept the layers on disk: they go with a later prune.
    pub deferred: bool,
}

impl Store {
    /// The record for `key`, if it and its snapshot are still there; marks it
    /// used.
    pub fn cache_lookup(&self, key: &str) -> Result<Option<CacheRecord>> {
        let Some(rec) = self.cache_record(key)? else {
            return Ok(None);
        };
        if let Some(chain) = &rec.chain_id {
            if !self.has_layer(chain)? {
                return Ok(None);
            }
        }
        self.db.execute(
            "UPDATE build_cache SET last_used_unix = ?2 WHERE key = ?1",
            params![key, chrono::Utc::now().timestamp()],
        )?;
        Ok(Some(rec))
    }

    fn cache_record(&self, key: &str) -> Result<Option<CacheRecord>> {
        let row = self
            .db
            .query_row(
                "SELECT key, chain_id, diff_id, created, last_used_unix, description, size
                 FROM build_cache WHERE key = ?1",
                [key],
                row_fields,
            )
            .optional()?;
        row.map(record_from).transpose()
    }

    /// All records, most recently used first.
    pub fn cache_records(&self) -> Result<Vec<CacheRecord>> {
        let mut stmt = self.db.prepare(
            "SELECT key, chain_id, diff_id, created, last_used_unix, description, size
             FROM build_cache ORDER BY last_used_unix DESC, key",
        )?;
        let rows = stmt.query_map([], row_fields)?;
        let mut out = Vec::new();
        for r in rows {
            out.push(record_from(r?)?);
        }
        Ok(out)
    }

    /// Stores what a step made: its layer on top of `parent` (moved out of
    /// staging unless the store has it already), and its cache record, in one
    /// transaction. `layer` is `None` for a step that changed nothing; the
    /// record then points at `parent`. Returns the snapshot after the step.
    pub fn commit_build_step(
        &mut self,
        parent: Option<&Digest>,
        layer: Option<&StagedLayer>,
        record: &CacheRecord,
    ) -> Result<Option<Digest>> {
        let chain = match layer {
            None => parent.cloned(),
            Some(l) => Some(match parent {
                None => l.diff_id.clone(),
                Some(p) => Digest::sha256_of(format!("{p} {}", l.diff_id).as_bytes()),
            }),
        };
        let _lock = self.lock()?;
        if let (Some(layer), Some(cid)) = (layer, &chain) {
            if !self.has_layer(cid)? {
                self.place_layer(cid, layer)?;
                fsync_dir(&self.layout.layers_dir())?;
                fsync_dir(&self.layout.blobs_dir())?;
            }
        }
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let (Some(layer), Some(cid)) = (layer, &chain) {
            crate::images::insert_layer(&tx, cid, layer, parent)?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO build_cache
             (key, chain_id, diff_id, created, last_used_unix, description, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                record.key,
                chain.as_ref().map(|c| c.to_string()),
                record.diff_id.as_ref().map(|d| d.to_string()),
                record.created,
                record.last_used_unix,
                record.description,
                record.size as i64
            ],
        )?;
        tx.commit()?;
        Ok(chain)
    }

    /// Removes build cache records, then what they alone kept. Without `all`,
    /// only records whose snapshot no image uses go (Docker's default prune
    /// keeps cache that backs an image); with `all`, every record.
    pub fn prune_build_cache(&mut self, all: bool) -> Result<CachePruneReport> {
        let _lock = self.lock()?;
        let victims: Vec<CacheRecord> = self
            .cache_records()?
            .into_iter()
            .filter(|r| {
                all || r.chain_id.as_ref().is_none_or(|c| {
                    self.db
                        .query_row(
                            "SELECT 1 FROM image_layers WHERE chain_id = ?1 LIMIT 1",
                            [c.as_str()],
                            |_| Ok(()),
                        )
                        .optional()
                        .ok()
                        .flatten()
                        .is_none()
                })
            })
            .collect();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for r in &victims {
            tx.execute("DELETE FROM build_cache WHERE key = ?1", [&r.key])?;
        }
        tx.commit()?;
        let gc = self.gc_locked()?;
        Ok(CachePruneReport {
            records: victims,
            bytes: gc.bytes,
            deferred: gc.deferred,
        })
    }
}

type Row = (
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    String,
    i64,
);

fn row_fields(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn record_from(
    (key, chain, diff, created, last_used_unix, description, size): Row,
) -> Result<CacheRecord> {
    Ok(CacheRecord {
        key,
        chain_id: chain.as_deref().map(parse_digest).transpose()?,
        diff_id: diff.as_deref().map(parse_digest).transpose()?,
        created,
        last_used_unix,
        description,
        size: size as u64,
    })
}
