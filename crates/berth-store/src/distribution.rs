//! What berth remembers about images' life in registries, so that `push` and
//! `pull` do no work twice:
//!
//! - `layer_blobs`: the compressed forms (digest, size, media type) a layer has
//!   had on the wire. A second push finds the digest here and asks the registry
//!   about it without recompressing; the blob file itself is kept in
//!   `blobs/sha256/` while it lasts, and recompressing is deterministic, so a
//!   collected file is made again with the same digest.
//! - `blob_sources`: which repositories of which registry hold a blob (pushed,
//!   pulled, found there), the candidates for a cross-repository mount.
//! - repo digests (`name@sha256:…` pointing at an image), which `push` and
//!   `pull` record as Docker does.

use berth_oci::{Digest, Reference};
use rusqlite::{params, TransactionBehavior};

use crate::error::{Error, Result};
use crate::images::parse_digest;
use crate::Store;

/// One compressed form of a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// The layer's uncompressed digest.
    pub diff_id: Digest,
    /// The digest of the blob as a registry stores it.
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
}

impl Store {
    /// The compressed forms known for a layer, most recently recorded first.
    pub fn layer_blobs(&self, diff_id: &Digest) -> Result<Vec<LayerBlob>> {
        let mut stmt = self.db.prepare(
            "SELECT digest, size, media_type FROM layer_blobs WHERE diff_id = ?1
             ORDER BY rowid DESC",
        )?;
        let rows = stmt.query_map([diff_id.as_str()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (digest, size, media_type) = row?;
            out.push(LayerBlob {
                diff_id: diff_id.clone(),
                digest: parse_digest(&digest)?,
                size: size as u64,
                media_type,
            });
        }
        Ok(out)
    }

    /// Remembers a compressed form of a layer (idempotent).
    pub fn record_layer_blob(&self, blob: &LayerBlob) -> Result<()> {
        insert_layer_blob(&self.db, blob)
    }

    /// Repositories of `registry` known to hold `digest`, most recent first.
    pub fn blob_sources(&self, digest: &Digest, registry: &str) -> Result<Vec<String>> {
        let mut stmt = self.db.prepare(
            "SELECT repository FROM blob_sources WHERE digest = ?1 AND registry = ?2
             ORDER BY rowid DESC",
        )?;
        let rows = stmt.query_map(params![digest.as_str(), registry], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }

    /// Remembers that `registry`'s `repository` holds `digest` (idempotent).
    pub fn record_blob_source(
        &self,
        digest: &Digest,
        registry: &str,
        repository: &str,
    ) -> Result<()> {
        self.db.execute(
            "INSERT OR IGNORE INTO blob_sources (digest, registry, repository)
             VALUES (?1, ?2, ?3)",
            params![digest.as_str(), registry, repository],
        )?;
        Ok(())
    }

    /// Points the digest reference `name` (`repo@sha256:…`) at image `id`, as
    /// Docker records a manifest digest after a push or pull (`RepoDigests`).
    pub fn add_repo_digest(&mut self, id: &Digest, name: &Reference) -> Result<()> {
        if name.digest().is_none() || name.tag().is_some() {
            return Err(Error::Corrupt(format!(
                "{name} is not a digest reference (repository@sha256:…)"
            )));
        }
        let _lock = self.lock()?;
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists: i64 = tx.query_row(
            "SELECT count(*) FROM images WHERE id = ?1",
            [id.as_str()],
            |r| r.get(0),
        )?;
        if exists == 0 {
            return Err(Error::NoSuchImage(id.to_string()));
        }
        tx.execute(
            "INSERT INTO repo_digests (name, repository, image_id) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
            params![name.to_string(), name.repository(), id.as_str()],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// The row behind [`Store::record_layer_blob`], on a connection or in a
/// transaction.
pub(crate) fn insert_layer_blob(db: &rusqlite::Connection, blob: &LayerBlob) -> Result<()> {
    db.execute(
        "INSERT OR IGNORE INTO layer_blobs (diff_id, digest, size, media_type)
         VALUES (?1, ?2, ?3, ?4)",
        params![
            blob.diff_id.as_str(),
            blob.digest.as_str(),
            blob.size as i64,
            blob.media_type
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[test]
    fn layer_blobs_and_sources_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let blob = LayerBlob {
            diff_id: d('a'),
            digest: d('b'),
            size: 42,
            media_type: "application/vnd.docker.image.rootfs.diff.tar.gzip".into(),
        };
        store.record_layer_blob(&blob).unwrap();
        store.record_layer_blob(&blob).unwrap();
        assert_eq!(store.layer_blobs(&d('a')).unwrap(), vec![blob]);
        assert!(store.layer_blobs(&d('c')).unwrap().is_empty());

        store
            .record_blob_source(&d('b'), "127.0.0.1:5000", "one")
            .unwrap();
        store
            .record_blob_source(&d('b'), "127.0.0.1:5000", "two")
            .unwrap();
        store
            .record_blob_source(&d('b'), "other:5000", "three")
            .unwrap();
        assert_eq!(
            store.blob_sources(&d('b'), "127.0.0.1:5000").unwrap(),
            vec!["two".to_string(), "one".to_string()]
        );
    }

    #[test]
    fn repo_digest_needs_an_image() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let name = Reference::parse_normalized(&format!("busybox@{}", d('e'))).unwrap();
        assert!(matches!(
            store.add_repo_digest(&d('f'), &name),
            Err(Error::NoSuchImage(_))
        ));
    }
}
