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
    r#"
CREATE TABLE volumes (
    name      TEXT PRIMARY KEY,
    driver    TEXT NOT NULL DEFAULT 'local',
    labels    TEXT NOT NULL DEFAULT '{}',   -- JSON object
    options   TEXT NOT NULL DEFAULT '{}',   -- JSON object
    anonymous INTEGER NOT NULL DEFAULT 0,
    created   TEXT NOT NULL
);
CREATE TABLE container_volumes (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    volume       TEXT NOT NULL REFERENCES volumes(name),
    destination  TEXT NOT NULL,
    PRIMARY KEY (container_id, destination)
);
CREATE INDEX container_volumes_volume ON container_volumes(volume);
"#,
    // Registry knowledge (berth-registry): the compressed forms a layer has had
    // on the wire, so a second push neither recompresses nor re-uploads, and
    // which repositories of which registry hold a blob, so a push can mount it
    // across repositories instead of uploading it.
    r#"
CREATE TABLE layer_blobs (
    diff_id    TEXT NOT NULL,             -- sha256 of the uncompressed tar
    digest     TEXT NOT NULL,             -- sha256 of the blob as sent or received
    size       INTEGER NOT NULL,
    media_type TEXT NOT NULL,
    PRIMARY KEY (diff_id, digest)
);
CREATE INDEX layer_blobs_digest ON layer_blobs(digest);
CREATE TABLE blob_sources (
    digest     TEXT NOT NULL,
    registry   TEXT NOT NULL,             -- host[:port] as in references: docker.io
    repository TEXT NOT NULL,             -- path inside the registry: library/busybox
    PRIMARY KEY (digest, registry, repository)
);
"#,
    r#"
CREATE TABLE networks (
    id       TEXT PRIMARY KEY,           -- 64 hex
    name     TEXT NOT NULL UNIQUE,
    driver   TEXT NOT NULL DEFAULT 'bridge',
    subnet   TEXT NOT NULL,              -- 172.18.0.0/16
    gateway  TEXT NOT NULL,
    internal INTEGER NOT NULL DEFAULT 0,
    labels   TEXT NOT NULL DEFAULT '{}', -- JSON object
    created  TEXT NOT NULL
);
CREATE TABLE network_endpoints (
    network_id   TEXT NOT NULL REFERENCES networks(id),
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    ip           TEXT NOT NULL,
    aliases      TEXT NOT NULL DEFAULT '[]', -- JSON array
    position     INTEGER NOT NULL,           -- eth<position> in the container
    PRIMARY KEY (network_id, container_id),
    UNIQUE (network_id, ip)
);
"#,
    // Build cache (berth-build): one record per step that made a snapshot. The
    // layer a record points at, and its parents, stay alive while the record
    // does, whether or not an image uses them.
    r#"
CREATE TABLE build_cache (
    key            TEXT PRIMARY KEY,     -- sha256 of the step and everything it read
    chain_id       TEXT,                 -- the snapshot after the step; NULL: empty (scratch)
    diff_id        TEXT,                 -- the step's own layer; NULL when it changed nothing
    created        TEXT NOT NULL,        -- RFC 3339: the history time of the step
    last_used_unix INTEGER NOT NULL,
    description    TEXT NOT NULL,        -- the instruction, as progress shows it
    size           INTEGER NOT NULL      -- unpacked size of the step's own layer
);
CREATE INDEX build_cache_chain ON build_cache(chain_id);
"#,
];

pub fn open(path: &Path) -> Result<Connection> {
    let mut db = Connection::open(path)?;
    db.busy_timeout(BUSY_TIMEOUT)?;
    // WAL lets readers (ps, images) run while a writer commits; NORMAL sync is
    // durable against a killed process, which is the failure berth must survive.
    // Switching a new database to WAL needs an exclusive lock and SQLite does
    // not wait for it through the busy handler, so several processes opening a
    // fresh root at once retry here.
    let start = std::time::Instant::now();
    loop {
        match db.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => break,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(
                    e.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && start.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e.into()),
        }
    }
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
