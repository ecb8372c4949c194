use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;

use berth_fs::{FileLock, ResultExt};
use berth_oci::Digest;
use rusqlite::TransactionBehavior;

use crate::error::Result;
use crate::images::parse_digest;
use crate::staging::owner_pid;
use crate::volumes::dir_size;
use crate::Store;

/// What a garbage collection freed.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Chain IDs of deleted layers, lowest layer first.
    pub layers: Vec<Digest>,
    pub blobs: usize,
    pub staging: usize,
    pub bytes: u64,
    /// Nothing was collected: a lease was held ([`Store::lease`]).
    pub deferred: bool,
}

impl Store {
    /// Removes what no image or build cache record references: layers, blobs,
    /// and staging left by processes that no longer run.
    pub fn gc(&mut self) -> Result<GcReport> {
        let _lock = self.lock()?;
        self.gc_locked()
    }

    pub(crate) fn gc_locked(&mut self) -> Result<GcReport> {
        let mut report = GcReport::default();
        let Some(_gc) = FileLock::try_exclusive(&self.layout.gc_lock())? else {
            report.deferred = true;
            return Ok(report);
        };

        // Layer rows no image uses, deepest last so the report reads bottom-up.
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let dead: Vec<(String, Option<String>)> = {
            let mut stmt = tx.prepare(
                // Roots: every layer of an image, and the snapshot of every
                // build cache record with the layers under it.
                "WITH RECURSIVE live(chain_id) AS (
                     SELECT chain_id FROM image_layers
                     UNION
                     SELECT chain_id FROM build_cache WHERE chain_id IS NOT NULL
                     UNION
                     SELECT layers.parent FROM layers JOIN live USING (chain_id)
                     WHERE layers.parent IS NOT NULL
                 )
                 SELECT chain_id, parent FROM layers
                 WHERE chain_id NOT IN (SELECT chain_id FROM live)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (cid, _) in &dead {
            tx.execute("DELETE FROM layers WHERE chain_id = ?1", [cid])?;
        }
        tx.commit()?;
        let parents: HashMap<&str, Option<&str>> = dead
            .iter()
            .map(|(c, p)| (c.as_str(), p.as_deref()))
            .collect();
        let mut ordered: Vec<&str> = parents.keys().copied().collect();
        ordered.sort_by_key(|c| (depth(&parents, c), c.to_string()));
        for cid in ordered {
            report.layers.push(parse_digest(cid)?);
        }

        // Layer directories the database does not know (deleted above, or left
        // by a crash between rename and commit).
        let live_layers: HashSet<String> = self.column("SELECT chain_id FROM layers")?;
        for entry in read_dir_names(&self.layout.layers_dir())? {
            if !live_layers.contains(&format!("sha256:{entry}")) {
                report.bytes += remove_tree(self, &self.layout.layers_dir().join(&entry))?;
            }
        }

        // Blobs: configs and manifests of images, tars of live layers.
        let mut live_blobs: HashSet<String> = self.column("SELECT id FROM images")?;
        live_blobs.extend(self.column::<HashSet<String>>("SELECT manifest_digest FROM images")?);
        live_blobs.extend(self.column::<HashSet<String>>("SELECT diff_id FROM layers")?);
        // Compressed forms of live layers, kept so a push does not compress
        // again; those of layers that are gone are forgotten with them.
        self.db.execute(
            "DELETE FROM layer_blobs WHERE diff_id NOT IN (SELECT diff_id FROM layers)",
            [],
        )?;
        live_blobs.extend(self.column::<HashSet<String>>("SELECT digest FROM layer_blobs")?);
        // Temporary files of atomic writes whose writer is gone.
        for dir in [self.layout.root().to_path_buf(), self.layout.blobs_dir()] {
            for entry in read_dir_names(&dir)? {
                if !entry.starts_with(berth_fs::TEMP_PREFIX) {
                    continue;
                }
                let writer_alive =
                    berth_fs::temp_owner(&entry).is_some_and(berth_fs::process_alive);
                if !writer_alive {
                    let p = dir.join(&entry);
                    report.bytes += fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0);
                    let _ = fs::remove_file(&p);
                }
            }
        }
        for entry in read_dir_names(&self.layout.blobs_dir())? {
            if entry.starts_with(berth_fs::TEMP_PREFIX) {
                continue; // an atomic write in flight
            }
            if !live_blobs.contains(&format!("sha256:{entry}")) {
                let p = self.layout.blobs_dir().join(&entry);
                report.bytes += fs::symlink_metadata(&p).map(|m| m.len()).unwrap_or(0);
                fs::remove_file(&p).at("cannot remove", &p)?;
                report.blobs += 1;
            }
        }

        // Staging of dead processes.
        for entry in read_dir_names(&self.layout.tmp())? {
            let alive = owner_pid(&entry).is_some_and(berth_fs::process_alive);
            if !alive {
                let p = self.layout.tmp().join(&entry);
                // A build killed mid-step leaves its overlay mounted here;
                // removing through the mount would be slow and leave it behind.
                for m in berth_fs::mounts_under(&p) {
                    let _ = rustix::mount::unmount(&m, rustix::mount::UnmountFlags::DETACH);
                }
                report.bytes += dir_size(&p);
                let _ = fs::remove_dir_all(&p).or_else(|_| fs::remove_file(&p));
                report.staging += 1;
            }
        }
        Ok(report)
    }

    pub(crate) fn column<C: FromIterator<String>>(&self, sql: &str) -> Result<C> {
        let mut stmt = self.db.prepare(sql)?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<C>>()?)
    }
}

/// How many of the given layers lie below `c`.
fn depth<'a>(parents: &HashMap<&'a str, Option<&'a str>>, mut c: &'a str) -> usize {
    let mut d = 0;
    while let Some(Some(p)) = parents.get(c) {
        d += 1;
        c = p;
    }
    d
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).at("cannot list", dir)? {
        let e = e.at("cannot list", dir)?;
        out.push(e.file_name().to_string_lossy().into_owned());
    }
    Ok(out)
}

/// Moves a tree into staging first, so it vanishes from its place atomically
/// even if the removal itself is interrupted.
fn remove_tree(store: &Store, path: &Path) -> Result<u64> {
    let staging = store.stage()?;
    let doomed = staging.path().join("doomed");
    fs::rename(path, &doomed).at("cannot move aside", path)?;
    let size = dir_size(&doomed);
    drop(staging);
    Ok(size)
}
