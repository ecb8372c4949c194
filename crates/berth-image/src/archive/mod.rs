//! `save`/`load` archives. Two formats are written:
//! - docker-archive: `manifest.json` (what every `docker load` reads) laid over an
//!   OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`), exactly as
//!   Docker 25+ `docker save` writes it, so Docker, podman and skopeo all read it;
//! - OCI image layout: the same without `manifest.json`.
//!
//! Both are read back, as are legacy docker-archives (`<id>/layer.tar`, with
//! symlinked duplicate layers) and OCI layouts from skopeo or umoci.

mod read;
mod write;

pub use read::{extract_archive, read_extracted, ArchiveImage};
pub use write::{write_archive, ArchiveFormat, ExportImage, ExportLayer};

const MANIFEST_JSON: &str = "manifest.json";
const INDEX_JSON: &str = "index.json";
const OCI_LAYOUT: &str = "oci-layout";
const OCI_LAYOUT_CONTENT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;
