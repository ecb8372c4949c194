use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use crate::error::{Error, Result};

/// How long a writer waits for another process's transaction before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// Schema migrations, applied in order; `PRAGMA user_version` records how many
/// have run. Append only.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE images (
    id              TEXT PRIMARY KEY,      -- sha256:<hex> of the config
    manifest_digest TEXT NOT NULL,
    manifest_size   INTEGER NOT NULL,
    config_size     INTEGER NOT NULL,
    created         TEXT,                  -- the config's `created`, RFC 3339
    created_unix    INTEGER NOT NULL,
    added_unix      INTEGER NOT NULL,
    last_tag_time   TEXT
);
CREATE TABLE layers (
    chain_id  TEXT PRIMARY KEY,
    diff_id   TEXT NOT NULL,
    parent    TEXT,
    size      INTEGER NOT NULL,            -- Docker's diff size of the unpacked layer
    tar_size  INTEGER NOT NULL
);
CREATE TABLE image_layers (
    image_id  TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    chain_id  TEXT NOT NULL REFERENCES layers(chain_id),
    PRIMARY KEY (image_id, position)
);
CREATE INDEX image_layers_chain ON image_layers(chain_id);
CREATE TABLE tags (
    name       TEXT PRIMARY KEY,           -- docker.io/library/busybox:latest
    repository TEXT NOT NULL,
    image_id   TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX tags_image ON tags(image_id);
CREATE TABLE repo_digests (
    name       TEXT PRIMARY KEY,           -- docker.io/library/busybox@sha256:…
    repository TEXT NOT NULL,
    image_id   TEXT NOT NULL REFERENCES images(id)
);
CREATE INDEX repo_digests_image ON repo_digests(image_id);
"#,
    r#"
CREATE TABLE containers (
    id             TEXT PRIMARY KEY,      -- 64 hex
    name           TEXT NOT NULL UNIQUE,  -- without Docker's leading '/'
    image_id       TEXT NOT NULL REFERENCES images(id),
    image          TEXT NOT NULL,         -- the image as the user named it
    config         TEXT NOT NULL,         -- JSON: what `run` was asked for
    created        TEXT NOT NULL,
    status         TEXT NOT NULL,         -- created|running|paused|restarting|exited|dead
    pid            INTEGER NOT NULL DEFAULT 0,
    pid_start      INTEGER NOT NULL DEFAULT 0, -- /proc start time: guards against PID reuse
    monitor_pid    INTEGER NOT NULL DEFAULT 0,
    monitor_start  INTEGER NOT NULL DEFAULT 0,
    exit_code      INTEGER NOT NULL DEFAULT 0,
    started_at     TEXT,
    finished_at    TEXT,
    oom_killed     INTEGER NOT NULL DEFAULT 0,
    restart_count  INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    error          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX containers_image ON containers(image_id);
"#,
];

pub fn open(path: &Path) -> Result<Connection> {
    let mut db = Connection::open(path)?;
    db.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers (ps, images) run while a writer commits; NORMAL sync is
    // durable against a killed process, which is the failure berth must survive.
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "NORMAL")?;
    db.pragma_update(None, "foreign_keys", "ON")?;
    migrate(&mut db, path)?;
    Ok(db)
}

fn migrate(db: &mut Connection, path: &Path) -> Result<()> {
    let known = MIGRATIONS.len() as i64;
    let current: i64 = db.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if current > known {
        return Err(Error::NewerSchema {
            path: path.display().to_string(),
            found: current,
            known,
        });
    }
    if current == known {
        return Ok(());
    }
    // IMMEDIATE so two processes opening a new store do not both migrate.
    let tx = db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let current: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}
