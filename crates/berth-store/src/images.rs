use std::collections::{BTreeMap, HashMap};
use std::fs;

use berth_fs::{fsync_dir, write_atomic, ResultExt};
use berth_image::manifest::{image_manifest, ManifestLayer};
use berth_image::{LayerSource, StagedLayer};
use berth_oci::{chain_id, Digest, ImageConfig, Reference};
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use crate::distribution::LayerBlob;
use crate::error::{Error, Result};
use crate::Store;

/// A local image as `images`, `inspect` and `history` need it.
#[derive(Debug, Clone)]
pub struct ImageRecord {
    pub id: Digest,
    pub manifest_digest: Digest,
    pub created: Option<String>,
    pub created_unix: i64,
    pub last_tag_time: Option<String>,
    pub tags: Vec<Reference>,
    pub digests: Vec<Reference>,
    pub layers: Vec<LayerRecord>,
}

impl ImageRecord {
    /// Docker's image size: the sum of its layers' unpacked sizes.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }
}

#[derive(Debug, Clone)]
pub struct LayerRecord {
    pub chain_id: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub tar_size: u64,
}

/// An image to register: its config bytes (kept verbatim: their digest is the
/// image ID), its layers in order, and the names to point at it. A layer is
/// `None` when the caller found it already in the store ([`Store::has_layer`]),
/// so it need not be read again.
pub struct NewImage {
    pub config: Vec<u8>,
    pub layers: Vec<Option<StagedLayer>>,
    pub names: Vec<Reference>,
}

#[derive(Debug)]
pub struct CommitOutcome {
    pub id: Digest,
    /// Names that pointed at another image before, with that image's ID.
    pub moved: Vec<(Reference, Digest)>,
}

/// What `image prune` did: `rmi`'s events for every image, and the bytes
/// freed on disk.
#[derive(Debug, Default)]
pub struct ImagePruneReport {
    pub events: Vec<RemoveEvent>,
    pub bytes: u64,
    /// A lease kept the layers on disk: they go with a later prune.
    pub deferred: bool,
}

/// What `rmi` did, in Docker's order and wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveEvent {
    Untagged(Reference),
    Deleted(Digest),
}

/// Records a placed layer (within the caller's transaction), with the
/// compressed blob it keeps, if any: the two go live together, so a layer
/// without its tar always has the blob the tar is made from.
pub(crate) fn insert_layer(
    tx: &rusqlite::Transaction<'_>,
    cid: &Digest,
    layer: &StagedLayer,
    parent: Option<&Digest>,
) -> Result<()> {
    tx.execute(
        "INSERT OR IGNORE INTO layers (chain_id, diff_id, parent, size, tar_size)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            cid.as_str(),
            layer.diff_id.as_str(),
            parent.map(|p| p.to_string()),
            layer.stats.size as i64,
            layer.tar_size as i64
        ],
    )?;
    if let Some(b) = &layer.blob {
        crate::distribution::insert_layer_blob(
            tx,
            &LayerBlob {
                diff_id: layer.diff_id.clone(),
                digest: b.digest.clone(),
                size: b.size,
                media_type: b.media_type.clone(),
            },
        )?;
    }
    Ok(())
}

/// Drops name `r` (a tag or a digest reference), within the caller's
/// transaction, and says so in `events`.
fn untag(
    tx: &rusqlite::Transaction<'_>,
    r: &Reference,
    events: &mut Vec<RemoveEvent>,
) -> Result<()> {
    tx.execute("DELETE FROM tags WHERE name = ?1", [r.to_string()])?;
    tx.execute("DELETE FROM repo_digests WHERE name = ?1", [r.to_string()])?;
    events.push(RemoveEvent::Untagged(r.clone()));
    Ok(())
}

impl Store {
    /// Moves a staged layer's tree, and its tar or compressed blob, into
    /// place as `cid` (the caller holds the lock and records it in a
    /// transaction after).
    pub(crate) fn place_layer(&self, cid: &Digest, layer: &StagedLayer) -> Result<()> {
        let dest = self.layout.layer(cid);
        if dest.exists() {
            // A leftover of a crash between rename and commit.
            fs::remove_dir_all(&dest).at("cannot remove stale layer", &dest)?;
        }
        if let Some(tar) = &layer.tar {
            let blob = self.layout.blob(&layer.diff_id);
            if !blob.exists() {
                fs::rename(tar, &blob).at("cannot move layer tar to", &blob)?;
            }
        }
        if let Some(kept) = &layer.blob {
            let blob = self.layout.blob(&kept.digest);
            // Gone from `path` when another place of the same blob in this
            // image moved it already.
            if kept.path != blob && kept.path.exists() {
                fs::rename(&kept.path, &blob).at("cannot move layer blob to", &blob)?;
            }
            if !blob.is_file() {
                return Err(Error::Corrupt(format!(
                    "blob {} was removed while this image was being added; try again",
                    kept.digest
                )));
            }
        }
        if layer.tar.is_none() && layer.blob.is_none() {
            return Err(Error::Corrupt(format!(
                "layer {} was staged with neither its tar nor a compressed blob",
                layer.diff_id
            )));
        }
        fs::create_dir(&dest).at("cannot create", &dest)?;
        fs::rename(&layer.dir, dest.join("diff")).at("cannot move layer into", &dest)?;
        Ok(())
    }

    /// Where the tar of stored layer `diff_id` comes from: the tar itself, or
    /// a compressed blob of it that the store keeps in its place.
    pub fn layer_source(&self, diff_id: &Digest) -> Result<LayerSource> {
        let tar = self.layout.blob(diff_id);
        if tar.is_file() {
            return Ok(LayerSource::Tar(tar));
        }
        for b in self.layer_blobs(diff_id)? {
            let p = self.layout.blob(&b.digest);
            if fs::metadata(&p).is_ok_and(|m| m.len() == b.size) {
                return Ok(LayerSource::Compressed(p));
            }
        }
        Err(Error::Corrupt(format!(
            "layer {diff_id} has neither its tar nor a compressed blob in the store; remove the image and pull or build it again"
        )))
    }

    /// Registers an image whose layers are staged; atomic as a whole.
    pub fn commit_image(&mut self, img: NewImage) -> Result<CommitOutcome> {
        let config =
            ImageConfig::from_slice(&img.config).map_err(|e| Error::BadConfig(e.to_string()))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != img.layers.len() {
            return Err(Error::LayerCount {
                expected: diff_ids.len(),
                actual: img.layers.len(),
            });
        }
        let chain = chain_id(diff_ids);
        for (i, (want, got)) in diff_ids.iter().zip(&img.layers).enumerate() {
            if let Some(got) = got {
                if *want != got.diff_id {
                    return Err(Error::LayerMismatch {
                        index: i + 1,
                        expected: want.clone(),
                        actual: got.diff_id.clone(),
                    });
                }
            }
        }
        let id = Digest::sha256_of(&img.config);
        let mut manifest_layers = Vec::with_capacity(chain.len());
        for (layer, cid) in img.layers.iter().zip(&chain) {
            let size = match layer {
                Some(l) => l.tar_size,
                None => self.layer_tar_size(cid)?,
            };
            manifest_layers.push(ManifestLayer {
                diff_id: diff_ids[manifest_layers.len()].clone(),
                size,
            });
        }
        let (manifest, manifest_digest) =
            image_manifest(&id, img.config.len() as u64, &manifest_layers);
        let created_unix = config
            .created
            .as_deref()
            .and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok())
            .map_or(0, |t| t.timestamp());
        let now = chrono::Utc::now();

        let _lock = self.lock()?;
        // Files first (content-addressed, harmless if left unreferenced), then the
        // one transaction that makes them live.
        let mut placed: Vec<Digest> = Vec::new();
        let result = (|| -> Result<CommitOutcome> {
            for (layer, cid) in img.layers.iter().zip(&chain) {
                if self.has_layer(cid)? {
                    continue;
                }
                let Some(layer) = layer else {
                    return Err(Error::Corrupt(format!(
                        "layer {cid} was removed while this image was being added; try again"
                    )));
                };
                self.place_layer(cid, layer)?;
                placed.push(cid.clone());
            }
            for (digest, bytes) in [(&id, &img.config[..]), (&manifest_digest, &manifest[..])] {
                let p = self.layout.blob(digest);
                if !p.exists() {
                    write_atomic(&p, bytes)?;
                }
            }
            fsync_dir(&self.layout.layers_dir())?;
            fsync_dir(&self.layout.blobs_dir())?;

            let tx = self
                .db
                .transaction_with_behavior(TransactionBehavior::Immediate)?;
            for (i, (layer, cid)) in img.layers.iter().zip(&chain).enumerate() {
                let Some(layer) = layer else { continue };
                let parent = i.checked_sub(1).map(|p| &chain[p]);
                insert_layer(&tx, cid, layer, parent)?;
            }
            let inserted = tx.execute(
                "INSERT OR IGNORE INTO images
                 (id, manifest_digest, manifest_size, config_size, created, created_unix, added_unix)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    id.as_str(),
                    manifest_digest.as_str(),
                    manifest.len() as i64,
                    img.config.len() as i64,
                    config.created,
                    created_unix,
                    now.timestamp()
                ],
            )?;
            if inserted == 1 {
                for (pos, cid) in chain.iter().enumerate() {
                    tx.execute(
                        "INSERT INTO image_layers (image_id, position, chain_id) VALUES (?1, ?2, ?3)",
                        params![id.as_str(), pos as i64, cid.as_str()],
                    )?;
                }
            }
            let mut moved = Vec::new();
            for name in &img.names {
                if let Some(old) = set_tag(&tx, name, &id)? {
                    moved.push((name.clone(), old));
                }
            }
            if !img.names.is_empty() {
                touch_tag_time(&tx, &id)?;
            }
            tx.commit()?;
            Ok(CommitOutcome {
                id: id.clone(),
                moved,
            })
        })();
        match result {
            Ok(outcome) => {
                self.write_oci_index()?;
                Ok(outcome)
            }
            Err(e) => {
                for cid in placed {
                    let _ = fs::remove_dir_all(self.layout.layer(&cid));
                }
                Err(e)
            }
        }
    }

    /// Points `name` at image `id` (`docker tag`).
    pub fn tag(&mut self, id: &Digest, name: &Reference) -> Result<Option<Digest>> {
        let _lock = self.lock()?;
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM images WHERE id = ?1", [id.as_str()], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::NoSuchImage(id.to_string()));
        }
        let old = set_tag(&tx, name, id)?;
        touch_tag_time(&tx, id)?;
        tx.commit()?;
        self.write_oci_index()?;
        Ok(old)
    }

    /// All images, newest first (as `docker images` lists them).
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let mut names: HashMap<String, (Vec<Reference>, Vec<Reference>)> = HashMap::new();
        for (table, is_tag) in [("tags", true), ("repo_digests", false)] {
            let mut stmt = self
                .db
                .prepare(&format!("SELECT name, image_id FROM {table} ORDER BY name"))?;
            let rows =
                stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (name, image) = row?;
                let r = Reference::parse_normalized(&name)
                    .map_err(|e| Error::Corrupt(format!("bad name {name:?} in database: {e}")))?;
                let entry = names.entry(image).or_default();
                if is_tag {
                    entry.0.push(r);
                } else {
                    entry.1.push(r);
                }
            }
        }
        let mut layers: HashMap<String, Vec<LayerRecord>> = HashMap::new();
        {
            let mut stmt = self.db.prepare(
                "SELECT il.image_id, l.chain_id, l.diff_id, l.size, l.tar_size
                 FROM image_layers il JOIN layers l ON l.chain_id = il.chain_id
                 ORDER BY il.image_id, il.position",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                ))
            })?;
            for row in rows {
                let (image, cid, did, size, tar_size) = row?;
                layers.entry(image).or_default().push(LayerRecord {
                    chain_id: parse_digest(&cid)?,
                    diff_id: parse_digest(&did)?,
                    size: size as u64,
                    tar_size: tar_size as u64,
                });
            }
        }
        let mut stmt = self.db.prepare(
            "SELECT id, manifest_digest, created, created_unix, last_tag_time FROM images
             ORDER BY created_unix DESC, added_unix DESC, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, Option<String>>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, manifest, created, created_unix, last_tag_time) = row?;
            let (tags, digests) = names.remove(&id).unwrap_or_default();
            out.push(ImageRecord {
                layers: layers.remove(&id).unwrap_or_default(),
                id: parse_digest(&id)?,
                manifest_digest: parse_digest(&manifest)?,
                created,
                created_unix,
                last_tag_time,
                tags,
                digests,
            });
        }
        Ok(out)
    }

    /// Finds an image as Docker does: a full ID, a name (`busybox` is
    /// `busybox:latest`), a name with digest, or a unique ID prefix.
    pub fn resolve_image(&self, query: &str) -> Result<ImageRecord> {
        let id = self.resolve_image_id(query)?;
        self.images()?
            .into_iter()
            .find(|i| i.id == id)
            .ok_or_else(|| Error::NoSuchImage(query.to_string()))
    }

    fn resolve_image_id(&self, query: &str) -> Result<Digest> {
        if let Ok(d) = query.parse::<Digest>() {
            if self.image_exists(&d)? {
                return Ok(d);
            }
            return Err(Error::NoSuchImage(query.to_string()));
        }
        let parsed = Reference::parse_normalized(query);
        if let Ok(r) = &parsed {
            let table = if r.digest().is_some() {
                "repo_digests"
            } else {
                "tags"
            };
            let found: Option<String> = self
                .db
                .query_row(
                    &format!("SELECT image_id FROM {table} WHERE name = ?1"),
                    [r.to_string()],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(id) = found {
                return parse_digest(&id);
            }
        }
        let prefix = query.strip_prefix("sha256:").unwrap_or(query);
        if !prefix.is_empty() && prefix.len() <= 64 && prefix.bytes().all(|b| b.is_ascii_hexdigit())
        {
            let pattern = format!("sha256:{}%", prefix.to_ascii_lowercase());
            let mut stmt = self
                .db
                .prepare("SELECT id FROM images WHERE id LIKE ?1 LIMIT 2")?;
            let ids = stmt
                .query_map([pattern], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            match ids.as_slice() {
                [one] => return parse_digest(one),
                [] => {}
                _ => return Err(Error::AmbiguousId(query.to_string())),
            }
        }
        Err(Error::NoSuchImage(match parsed {
            Ok(r) => r.familiar(),
            Err(_) => query.to_string(),
        }))
    }

    /// Whether a layer with this chain ID is in the store.
    pub fn has_layer(&self, chain_id: &Digest) -> Result<bool> {
        Ok(self
            .db
            .query_row(
                "SELECT 1 FROM layers WHERE chain_id = ?1",
                [chain_id.as_str()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    fn layer_tar_size(&self, chain_id: &Digest) -> Result<u64> {
        let size: Option<i64> = self
            .db
            .query_row(
                "SELECT tar_size FROM layers WHERE chain_id = ?1",
                [chain_id.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        size.map(|s| s as u64).ok_or_else(|| {
            Error::Corrupt(format!(
                "layer {chain_id} was removed while this image was being added; try again"
            ))
        })
    }

    fn image_exists(&self, id: &Digest) -> Result<bool> {
        Ok(self
            .db
            .query_row("SELECT 1 FROM images WHERE id = ?1", [id.as_str()], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    /// The config bytes of an image, exactly as stored.
    pub fn image_config(&self, id: &Digest) -> Result<Vec<u8>> {
        let p = self.layout.blob(id);
        Ok(fs::read(&p).at("cannot read image config", &p)?)
    }

    pub fn image_manifest(&self, img: &ImageRecord) -> Result<Vec<u8>> {
        let p = self.layout.blob(&img.manifest_digest);
        Ok(fs::read(&p).at("cannot read image manifest", &p)?)
    }

    /// `docker rmi` for one argument: untag a name, or delete by ID, then free
    /// the layers no other image uses.
    pub fn remove_image(&mut self, query: &str, force: bool) -> Result<Vec<RemoveEvent>> {
        let _lock = self.lock()?;
        let id = self.resolve_image_id(query)?;
        let img = self.resolve_image(id.as_str())?;
        let by_name = Reference::parse_normalized(query)
            .ok()
            .filter(|r| img.tags.contains(r) || img.digests.contains(r));

        let users = self.containers_of_image(id.as_str())?;
        let running = users.iter().find(|c| c.status.is_active());
        let mut events = Vec::new();
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let names: Vec<Reference> = img.tags.iter().chain(&img.digests).cloned().collect();
        match by_name {
            Some(r) => {
                let remaining_tags = img.tags.iter().filter(|t| **t != r).count();
                if remaining_tags == 0 {
                    if let Some(c) = users.first().filter(|_| !force) {
                        return Err(Error::ReferenceUsed {
                            reference: r.familiar(),
                            container: c.id[..12].to_string(),
                            short: id.short().to_string(),
                        });
                    }
                }
                untag(&tx, &r, &mut events)?;
                // Docker also drops the digest references of the image when its
                // last tag goes.
                if remaining_tags == 0 {
                    for d in img.digests.iter().filter(|d| **d != r) {
                        untag(&tx, d, &mut events)?;
                    }
                }
                if remaining_tags > 0 || !users.is_empty() {
                    // Containers keep the image (now untagged) alive.
                    tx.commit()?;
                    self.write_oci_index()?;
                    return Ok(events);
                }
            }
            None => {
                if let Some(c) = running {
                    return Err(Error::ImageUsedByRunning {
                        short: id.short().to_string(),
                        container: c.id[..12].to_string(),
                    });
                }
                let repos: std::collections::BTreeSet<String> =
                    img.tags.iter().map(Reference::repository).collect();
                if !force && repos.len() > 1 {
                    return Err(Error::MultipleRepositories {
                        short: id.short().to_string(),
                    });
                }
                if let Some(c) = users.first() {
                    if !force {
                        return Err(Error::ImageUsedByStopped {
                            short: id.short().to_string(),
                            container: c.id[..12].to_string(),
                        });
                    }
                    // Forced: the names go, the image stays for its containers.
                    for r in &names {
                        untag(&tx, r, &mut events)?;
                    }
                    tx.commit()?;
                    self.write_oci_index()?;
                    return Ok(events);
                }
                for r in &names {
                    untag(&tx, r, &mut events)?;
                }
            }
        }
        tx.execute("DELETE FROM images WHERE id = ?1", [id.as_str()])?;
        events.push(RemoveEvent::Deleted(id.clone()));
        tx.commit()?;
        let report = self.gc_locked()?;
        // Docker lists the released layers top first.
        events.extend(report.layers.into_iter().rev().map(RemoveEvent::Deleted));
        self.write_oci_index()?;
        Ok(events)
    }

    /// `image prune`: removes the images no container uses, only the
    /// untagged ones unless `all`, and of those the ones `chosen` accepts;
    /// then frees what they alone held. One transaction, so a killed prune
    /// leaves every image whole or gone.
    pub fn prune_images(
        &mut self,
        all: bool,
        chosen: &dyn Fn(&ImageRecord) -> bool,
    ) -> Result<ImagePruneReport> {
        let _lock = self.lock()?;
        let used: std::collections::HashSet<String> =
            self.column("SELECT DISTINCT image_id FROM containers")?;
        let victims: Vec<ImageRecord> = self
            .images()?
            .into_iter()
            .filter(|i| !used.contains(i.id.as_str()))
            .filter(|i| all || i.tags.is_empty())
            .filter(|i| chosen(i))
            .collect();
        let mut report = ImagePruneReport::default();
        if victims.is_empty() {
            return Ok(report);
        }
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for img in &victims {
            for r in img.tags.iter().chain(&img.digests) {
                untag(&tx, r, &mut report.events)?;
            }
            tx.execute("DELETE FROM images WHERE id = ?1", [img.id.as_str()])?;
            report.events.push(RemoveEvent::Deleted(img.id.clone()));
        }
        tx.commit()?;
        let gc = self.gc_locked()?;
        report
            .events
            .extend(gc.layers.into_iter().rev().map(RemoveEvent::Deleted));
        report.bytes = gc.bytes;
        report.deferred = gc.deferred;
        self.write_oci_index()?;
        Ok(report)
    }

    /// Counts for `system info`.
    pub fn counts(&self) -> Result<BTreeMap<&'static str, i64>> {
        let mut m = BTreeMap::new();
        for (k, sql) in [
            ("images", "SELECT count(*) FROM images"),
            ("layers", "SELECT count(*) FROM layers"),
            ("tags", "SELECT count(*) FROM tags"),
        ] {
            m.insert(k, self.db.query_row(sql, [], |r| r.get(0))?);
        }
        Ok(m)
    }
}

/// Points a name at an image; returns the image it pointed at before, if any.
fn set_tag(tx: &rusqlite::Transaction, name: &Reference, id: &Digest) -> Result<Option<Digest>> {
    let old: Option<String> = tx
        .query_row(
            "SELECT image_id FROM tags WHERE name = ?1",
            [name.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    tx.execute(
        "INSERT INTO tags (name, repository, image_id) VALUES (?1, ?2, ?3)
         ON CONFLICT(name) DO UPDATE SET image_id = excluded.image_id",
        params![name.to_string(), name.repository(), id.as_str()],
    )?;
    match old {
        Some(o) if o != id.as_str() => Ok(Some(parse_digest(&o)?)),
        _ => Ok(None),
    }
}

fn touch_tag_time(tx: &rusqlite::Transaction, id: &Digest) -> Result<()> {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    tx.execute(
        "UPDATE images SET last_tag_time = ?1 WHERE id = ?2",
        params![now, id.as_str()],
    )?;
    Ok(())
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest> {
    s.parse()
        .map_err(|e| Error::Corrupt(format!("bad digest in database: {e}")))
}
