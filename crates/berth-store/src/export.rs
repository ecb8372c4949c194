use berth_image::archive::{ExportImage, ExportLayer};
use berth_oci::Reference;

use crate::error::Result;
use crate::images::ImageRecord;
use crate::Store;

impl Store {
    /// What `save` needs to write `img` under `names`.
    pub fn export_image(&self, img: &ImageRecord, names: Vec<Reference>) -> Result<ExportImage> {
        Ok(ExportImage {
            config_digest: img.id.clone(),
            config_path: self.layout.blob(&img.id),
            manifest: self.image_manifest(img)?,
            manifest_digest: img.manifest_digest.clone(),
            layers: img
                .layers
                .iter()
                .map(|l| {
                    Ok(ExportLayer {
                        diff_id: l.diff_id.clone(),
                        source: self.layer_source(&l.diff_id)?,
                        size: l.tar_size,
                    })
                })
                .collect::<Result<_>>()?,
            names,
        })
    }
}
