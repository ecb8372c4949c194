//! The OCI manifest berth keeps for each local image, pointing at its config and
//! at its layers as uncompressed tars (what `save` exports and the store's own
//! OCI layout lists).

use berth_oci::{media_types, Digest};
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

pub struct ManifestLayer {
    pub diff_id: Digest,
    pub size: u64,
}

/// Returns the manifest JSON and its digest.
pub fn image_manifest(
    config: &Digest,
    config_size: u64,
    layers: &[ManifestLayer],
) -> (Vec<u8>, Digest) {
    let desc = |mt: &str, size: u64, d: &Digest| {
        Descriptor::new(
            MediaType::from(mt),
            size,
            oci_spec::image::Digest::try_from(d.as_str()).expect("valid sha256 digest"),
        )
    };
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(desc(media_types::OCI_CONFIG, config_size, config))
        .layers(
            layers
                .iter()
                .map(|l| desc(media_types::OCI_LAYER, l.size, &l.diff_id))
                .collect::<Vec<_>>(),
        )
        .build()
        .expect("all required manifest fields are set");
    let bytes = serde_json::to_vec(&manifest).expect("manifest serializes");
    let digest = Digest::sha256_of(&bytes);
    (bytes, digest)
}
