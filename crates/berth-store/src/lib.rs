//! The data root: everything berth knows lives here, and nothing else.
//!
//! ```text
//! <root>/
//!   berth.db                 SQLite (WAL): images, layers, tags, repo digests,
//!                            compressed forms of layers and where registries hold them
//!   lock                     flock taken while the set of live objects changes
//!   oci-layout, index.json   the root is an OCI image layout of the tagged images
//!   blobs/sha256/<hex>       configs, manifests, uncompressed layer tars (by diff ID),
//!                            compressed layers once pushed or pulled (a cache)
//!   layers/<chain hex>/diff  unpacked layers, overlayfs lower-layer form
//!   containers/<id>/         upper/, work/, merged/, runtime state, json log
//!   volumes/<name>/_data     named and anonymous volumes
//!   networks/<id>/netns      a network's namespace, holding its bridge
//!   tmp/<pid>.<rand>/        staging of an operation in flight; garbage once its
//!                            process is gone
//! ```
//!
//! Crash safety comes from ordering: content is staged in `tmp/`, moved into
//! place by rename under the lock, and only then made reachable by one SQLite
//! transaction. A crash before the commit leaves unreferenced files that
//! [`Store::gc`] removes; a crash after leaves a complete image.

mod build_cache;
mod check;
mod containers;
mod db;
mod distribution;
mod error;
mod export;
mod gc;
mod images;
mod layout;
mod networks;
mod oci_index;
mod staging;
mod volumes;

pub use build_cache::{CachePruneReport, CacheRecord};
pub use containers::{ContainerRecord, ContainerStatus};
pub use distribution::LayerBlob;
pub use error::{Error, Result};
pub use gc::GcReport;
pub use images::{
    CommitOutcome, ImagePruneReport, ImageRecord, LayerRecord, NewImage, RemoveEvent,
};
pub use layout::{default_root, Layout};
pub use networks::{parse_subnet, Endpoint, NetworkRecord};
pub use staging::Staging;
pub use volumes::VolumeRecord;

use std::path::{Path, PathBuf};

use berth_fs::FileLock;

/// See [`Store::lease`].
pub struct Lease {
    _lock: FileLock,
}

/// An open data root.
pub struct Store {
    layout: Layout,
    db: rusqlite::Connection,
}

impl Store {
    /// Opens (creating if needed) the data root at `root`.
    pub fn open(root: &Path) -> Result<Self> {
        let layout = Layout::create(root)?;
        let db = db::open(&layout.db())?;
        Ok(Self { layout, db })
    }

    pub fn root(&self) -> &Path {
        self.layout.root()
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A fresh staging directory under `tmp/`, removed when dropped.
    pub fn stage(&self) -> Result<Staging> {
        Staging::new(&self.layout.tmp())
    }

    /// Serializes changes to the set of live objects (commits and garbage
    /// collection) across processes.
    fn lock(&self) -> Result<FileLock> {
        Ok(FileLock::exclusive(&self.layout.lock())?)
    }

    /// Keeps garbage collection away while it is held: what the holder uses
    /// (a build's base layers, the layers of its cache) stays on disk even
    /// when another process removes the last image that names it. Removing
    /// images still works meanwhile; their layers go with the first
    /// collection after the lease ends. Released on drop or when the process
    /// dies.
    pub fn lease(&self) -> Result<Lease> {
        Ok(Lease {
            _lock: FileLock::shared(&self.layout.gc_lock())?,
        })
    }

    pub fn blob_path(&self, digest: &berth_oci::Digest) -> PathBuf {
        self.layout.blob(digest)
    }
}
