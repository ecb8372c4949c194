//! Image contents on disk and in archives: layer tars in and out of directory
//! trees (with overlayfs whiteouts), compression, and the docker-archive and OCI
//! image layout formats `save`/`load` speak.

pub mod archive;
pub mod changes;
mod compression;
pub mod diff;
mod error;
mod layer_source;
pub mod manifest;
mod stage;
mod unpack;

pub use compression::{decompress, Compression};
pub use error::{Error, Result};
pub use layer_source::LayerSource;
pub use stage::{stage_compressed_layer, stage_layer, stage_upper, KeptBlob, StagedLayer};
pub use unpack::{blank_is_zero, unpack_layer, LayerStats};
