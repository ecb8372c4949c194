//! Volumes: directories under `volumes/<name>/_data` whose life is their own.
//! A volume is never removed while a container record uses it, and removing a
//! container keeps its volumes unless asked (and then only anonymous ones).

use std::collections::BTreeMap;
use std::fs;

use berth_fs::ResultExt;
use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use crate::error::{Error, Result};
use crate::Store;

#[derive(Debug, Clone)]
pub struct VolumeRecord {
    pub name: String,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    pub anonymous: bool,
    pub created: String,
    /// IDs of the containers that use it.
    pub used_by: Vec<String>,
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<VolumeRecord> {
    let labels: String = r.get(2)?;
    let options: String = r.get(3)?;
    Ok(VolumeRecord {
        name: r.get(0)?,
        driver: r.get(1)?,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        options: serde_json::from_str(&options).unwrap_or_default(),
        anonymous: r.get::<_, i64>(4)? != 0,
        created: r.get(5)?,
        used_by: Vec::new(),
    })
}

const COLUMNS: &str = "name, driver, labels, options, anonymous, created";

impl Store {
    /// Creates a volume, or returns the existing one of that name (Docker's
    /// `volume create` is idempotent). The data directory exists on return.
    pub fn create_volume(
        &mut self,
        name: &str,
        labels: &BTreeMap<String, String>,
        options: &BTreeMap<String, String>,
        anonymous: bool,
        created: &str,
    ) -> Result<(VolumeRecord, bool)> {
        let data = self.layout.volume_data(name);
        fs::create_dir_all(&data).at("cannot create volume", &data)?;
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let inserted = tx.execute(
            &format!(
                "INSERT OR IGNORE INTO volumes ({COLUMNS}) VALUES (?1, 'local', ?2, ?3, ?4, ?5)"
            ),
            params![
                name,
                serde_json::to_string(labels).expect("json"),
                serde_json::to_string(options).expect("json"),
                anonymous as i64,
                created
            ],
        )?;
        tx.commit()?;
        Ok((self.volume(name)?, inserted == 1))
    }

    pub fn volume(&self, name: &str) -> Result<VolumeRecord> {
        let mut v = self
            .db
            .query_row(
                &format!("SELECT {COLUMNS} FROM volumes WHERE name = ?1"),
                [name],
                from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NoSuchVolume(name.to_string()))?;
        v.used_by = self.volume_users(name)?;
        Ok(v)
    }

    pub fn volumes(&self) -> Result<Vec<VolumeRecord>> {
        let mut stmt = self
            .db
            .prepare(&format!("SELECT {COLUMNS} FROM volumes ORDER BY name"))?;
        let mut out: Vec<VolumeRecord> = stmt
            .query_map([], from_row)?
            .collect::<rusqlite::Result<_>>()?;
        for v in &mut out {
            v.used_by = self.volume_users(&v.name)?;
        }
        Ok(out)
    }

    fn volume_users(&self, name: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .db
            .prepare("SELECT DISTINCT container_id FROM container_volumes WHERE volume = ?1 ORDER BY container_id")?;
        let rows = stmt.query_map([name], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records that container `id` mounts `volume` at `destination`.
    pub fn attach_volume(&mut self, id: &str, volume: &str, destination: &str) -> Result<()> {
        self.db.execute(
            "INSERT OR REPLACE INTO container_volumes (container_id, volume, destination) VALUES (?1, ?2, ?3)",
            params![id, volume, destination],
        )?;
        Ok(())
    }

    /// The volumes a container uses, with their mount points.
    pub fn container_volumes(&self, id: &str) -> Result<Vec<(String, String)>> {
        let mut stmt = self
            .db
            .prepare("SELECT volume, destination FROM container_volumes WHERE container_id = ?1 ORDER BY destination")?;
        let rows = stmt.query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The bytes in a volume's data directory (`system df`). A bind or tmpfs
    /// driver volume that is mounted is measured as what it shows.
    pub fn volume_size(&self, name: &str) -> u64 {
        dir_size(&self.layout.volume_data(name))
    }

    /// Removes a volume and its data; refused while any container uses it.
    /// Returns the bytes freed.
    pub fn remove_volume(&mut self, name: &str) -> Result<u64> {
        let _lock = self.lock()?;
        let staging = self.stage()?;
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row("SELECT 1 FROM volumes WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(Error::NoSuchVolume(name.to_string()));
        }
        let users: Vec<String> = {
            let mut stmt = tx
                .prepare("SELECT DISTINCT container_id FROM container_volumes WHERE volume = ?1")?;
            let rows = stmt.query_map([name], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !users.is_empty() {
            return Err(Error::VolumeInUse {
                name: name.to_string(),
                containers: users,
            });
        }
        tx.execute("DELETE FROM volumes WHERE name = ?1", [name])?;
        tx.commit()?;
        // Data goes after the record: a crash in between leaves an orphan
        // directory, never a record without its data.
        let dir = self.layout.volumes_dir().join(name);
        // A tmpfs or bind driver mount goes first: its data is not ours to delete.
        let data = self.layout.volume_data(name);
        if berth_fs::is_mount_point(&data) {
            let _ = rustix::mount::unmount(&data, rustix::mount::UnmountFlags::DETACH);
        }
        if berth_fs::is_mount_point(&data) {
            return Err(Error::Corrupt(format!(
                "{} is still mounted; unmount it before removing the volume",
                data.display()
            )));
        }
        let doomed = staging.path().join("volume");
        let moved = fs::rename(&dir, &doomed).is_ok();
        let size = if moved { dir_size(&doomed) } else { 0 };
        drop(staging);
        Ok(size)
    }
}

pub(crate) fn dir_size(path: &std::path::Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    fs::read_dir(path)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}
