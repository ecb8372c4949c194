//! Container records. The monitor of a container is the only writer of its
//! run state; commands read it and, where a monitor died, settle it.

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use crate::error::{Error, Result};
use crate::Store;

/// Docker's container states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerStatus {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
}

impl ContainerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "exited" => Self::Exited,
            _ => Self::Dead,
        }
    }

    /// Whether a process of the container may be alive.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Paused | Self::Restarting)
    }
}

/// The default is a container just created: no process, no exit yet.
#[derive(Debug, Clone, Default)]
pub struct ContainerRecord {
    pub id: String,
    pub name: String,
    pub image_id: String,
    pub image: String,
    /// JSON of what the container was created with; berth-runtime owns its shape.
    pub config: String,
    pub created: String,
    pub status: ContainerStatus,
    pub pid: i64,
    pub pid_start: i64,
    pub monitor_pid: i64,
    pub monitor_start: i64,
    pub exit_code: i64,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub oom_killed: bool,
    pub restart_count: i64,
    pub stop_requested: bool,
    pub error: String,
}

const COLUMNS: &str = "id, name, image_id, image, config, created, status, pid, pid_start, monitor_pid, \
     monitor_start, exit_code, started_at, finished_at, oom_killed, restart_count, stop_requested, error";

fn from_row(r: &Row<'_>) -> rusqlite::Result<ContainerRecord> {
    Ok(ContainerRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        image_id: r.get(2)?,
        image: r.get(3)?,
        config: r.get(4)?,
        created: r.get(5)?,
        status: ContainerStatus::parse(&r.get::<_, String>(6)?),
        pid: r.get(7)?,
        pid_start: r.get(8)?,
        monitor_pid: r.get(9)?,
        monitor_start: r.get(10)?,
        exit_code: r.get(11)?,
        started_at: r.get(12)?,
        finished_at: r.get(13)?,
        oom_killed: r.get::<_, i64>(14)? != 0,
        restart_count: r.get(15)?,
        stop_requested: r.get::<_, i64>(16)? != 0,
        error: r.get(17)?,
    })
}

/// The run state columns, written at creation and by every state change.
fn write_state(db: &rusqlite::Connection, c: &ContainerRecord) -> Result<()> {
    db.execute(
        "UPDATE containers SET status = ?2, pid = ?3, pid_start = ?4, monitor_pid = ?5,
         monitor_start = ?6, exit_code = ?7, started_at = ?8, finished_at = ?9, oom_killed = ?10,
         restart_count = ?11, stop_requested = ?12, error = ?13 WHERE id = ?1",
        params![
            c.id,
            c.status.as_str(),
            c.pid,
            c.pid_start,
            c.monitor_pid,
            c.monitor_start,
            c.exit_code,
            c.started_at,
            c.finished_at,
            c.oom_killed as i64,
            c.restart_count,
            c.stop_requested as i64,
            c.error
        ],
    )?;
    Ok(())
}

impl Store {
    /// Registers a new container; its name must be free.
    pub fn create_container(&mut self, c: &ContainerRecord) -> Result<()> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder: Option<String> = tx
            .query_row(
                "SELECT id FROM containers WHERE name = ?1",
                [&c.name],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = holder {
            return Err(Error::NameInUse {
                name: c.name.clone(),
                id,
            });
        }
        // Removed since the caller resolved it (an rmi or a prune meanwhile).
        let image_there = tx
            .query_row("SELECT 1 FROM images WHERE id = ?1", [&c.image_id], |_| {
                Ok(())
            })
            .optional()?
            .is_some();
        if !image_there {
            return Err(Error::NoSuchImage(c.image.clone()));
        }
        tx.execute(
            "INSERT INTO containers (id, name, image_id, image, config, created, status)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.id,
                c.name,
                c.image_id,
                c.image,
                c.config,
                c.created,
                c.status.as_str()
            ],
        )?;
        write_state(&tx, c)?;
        tx.commit()?;
        Ok(())
    }

    /// Writes back the run state of `c` (status, pids, exit, times, flags).
    pub fn save_container_state(&mut self, c: &ContainerRecord) -> Result<()> {
        write_state(&self.db, c)
    }

    /// Sets or clears the flag that tells a monitor not to restart.
    pub fn set_stop_requested(&mut self, id: &str, requested: bool) -> Result<()> {
        self.db.execute(
            "UPDATE containers SET stop_requested = ?2 WHERE id = ?1",
            params![id, requested as i64],
        )?;
        Ok(())
    }

    pub fn rename_container(&mut self, id: &str, name: &str) -> Result<()> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let holder: Option<String> = tx
            .query_row("SELECT id FROM containers WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(other) = holder {
            return Err(Error::NameInUse {
                name: name.to_string(),
                id: other,
            });
        }
        tx.execute(
            "UPDATE containers SET name = ?2 WHERE id = ?1",
            params![id, name],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// All containers, newest first.
    pub fn containers(&self) -> Result<Vec<ContainerRecord>> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT {COLUMNS} FROM containers ORDER BY created DESC, id"
        ))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Finds a container by full ID, name (with or without a leading '/'), or
    /// unique ID prefix, in Docker's order.
    pub fn container(&self, query: &str) -> Result<ContainerRecord> {
        let q = query.strip_prefix('/').unwrap_or(query);
        let by = |sql: &str, arg: &str| -> Result<Vec<ContainerRecord>> {
            let mut stmt = self.db.prepare(&format!(
                "SELECT {COLUMNS} FROM containers WHERE {sql} LIMIT 2"
            ))?;
            let rows = stmt.query_map([arg], from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        };
        if let Some(c) = by("id = ?1", q)?.pop() {
            return Ok(c);
        }
        if let Some(c) = by("name = ?1", q)?.pop() {
            return Ok(c);
        }
        if !q.is_empty() && q.bytes().all(|b| b.is_ascii_hexdigit()) {
            let mut found = by("id LIKE ?1", &format!("{}%", q.to_ascii_lowercase()))?;
            match found.len() {
                1 => return Ok(found.remove(0)),
                0 => {}
                _ => {
                    return Err(Error::AmbiguousId(query.to_string()));
                }
            }
        }
        Err(Error::NoSuchContainer(query.to_string()))
    }

    /// Forgets a container. Its directory is the caller's to remove (after
    /// unmounting); this only drops the record.
    pub fn delete_container(&mut self, id: &str) -> Result<()> {
        self.db
            .execute("DELETE FROM containers WHERE id = ?1", [id])?;
        Ok(())
    }

    /// Containers created from an image, for `rmi`'s checks.
    pub(crate) fn containers_of_image(&self, image_id: &str) -> Result<Vec<ContainerRecord>> {
        let mut stmt = self.db.prepare(&format!(
            "SELECT {COLUMNS} FROM containers WHERE image_id = ?1"
        ))?;
        let rows = stmt.query_map([image_id], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_container_of_a_removed_image_is_refused_by_name() {
        let root = tempfile::tempdir().unwrap();
        let mut store = Store::open(root.path()).unwrap();
        let record = ContainerRecord {
            id: "c".repeat(64),
            name: "late".into(),
            image_id: format!("sha256:{}", "a".repeat(64)),
            image: "gone:latest".into(),
            config: "{}".into(),
            created: "2026-01-01T00:00:00Z".into(),
            ..Default::default()
        };
        let err = store.create_container(&record).unwrap_err();
        assert_eq!(err.to_string(), "No such image: gone:latest");
    }
}
