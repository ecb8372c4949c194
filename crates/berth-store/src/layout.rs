use std::fs;
use std::path::{Path, PathBuf};

use berth_fs::{write_atomic, ResultExt};
use berth_oci::Digest;

use crate::error::Result;

const OCI_LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Where a root-run berth keeps its data, as Docker uses /var/lib/docker.
const SYSTEM_ROOT: &str = "/var/lib/berth";

/// `/var/lib/berth` for root, `$XDG_DATA_HOME/berth` (or `~/.local/share/berth`)
/// for other users.
pub fn default_root() -> PathBuf {
    if rustix::process::geteuid().is_root() {
        return PathBuf::from(SYSTEM_ROOT);
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("berth");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".local/share/berth")
}

/// Paths inside the data root.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn create(root: &Path) -> Result<Self> {
        let root = if root.is_absolute() {
            root.to_path_buf()
        } else {
            std::env::current_dir()
                .at("cannot resolve", root)?
                .join(root)
        };
        let l = Self { root };
        for d in [
            l.root.clone(),
            l.blobs_dir(),
            l.layers_dir(),
            l.containers_dir(),
            l.volumes_dir(),
            l.networks_dir(),
            l.tmp(),
        ] {
            fs::create_dir_all(&d).at("cannot create", &d)?;
        }
        let layout = l.root.join("oci-layout");
        if !layout.exists() {
            write_atomic(&layout, OCI_LAYOUT.as_bytes())?;
        }
        Ok(l)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
    pub fn db(&self) -> PathBuf {
        self.root.join("berth.db")
    }
    pub fn lock(&self) -> PathBuf {
        self.root.join("lock")
    }
    /// Held shared by every [`crate::Lease`], exclusively by a garbage
    /// collection.
    pub fn gc_lock(&self) -> PathBuf {
        self.root.join("gc.lock")
    }
    pub fn index(&self) -> PathBuf {
        self.root.join("index.json")
    }
    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub fn blob(&self, d: &Digest) -> PathBuf {
        self.blobs_dir().join(d.hex())
    }
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    /// The directory of a layer; its tree is in `diff/` beneath it.
    pub fn layer(&self, chain_id: &Digest) -> PathBuf {
        self.layers_dir().join(chain_id.hex())
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    /// A container's own directory: its writable layer, runtime state, logs.
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    pub fn networks_dir(&self) -> PathBuf {
        self.root.join("networks")
    }
    pub fn network(&self, id: &str) -> PathBuf {
        self.networks_dir().join(id)
    }
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }
    /// Where a volume's data lives (Docker's `Mountpoint`).
    pub fn volume_data(&self, name: &str) -> PathBuf {
        self.volumes_dir().join(name).join("_data")
    }
    pub fn layer_diff(&self, chain_id: &Digest) -> PathBuf {
        self.layer(chain_id).join("diff")
    }
}
