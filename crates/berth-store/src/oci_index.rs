//! The root's `index.json`: one manifest descriptor per tag, so the data root is
//! itself an OCI image layout (`skopeo inspect oci:<root>:docker.io/library/x:tag`).

use berth_fs::write_atomic;
use berth_oci::media_types;
use serde_json::json;

use crate::error::Result;
use crate::Store;

impl Store {
    /// Rewrites index.json from the database. Called under the lock after every
    /// change to tags, so it is a pure function of committed state.
    pub(crate) fn write_oci_index(&self) -> Result<()> {
        let mut stmt = self.db.prepare(
            "SELECT t.name, i.manifest_digest, i.manifest_size FROM tags t
             JOIN images i ON i.id = t.image_id ORDER BY t.name",
        )?;
        let manifests = stmt
            .query_map([], |r| {
                let name: String = r.get(0)?;
                let digest: String = r.get(1)?;
                let size: i64 = r.get(2)?;
                Ok(json!({
                    "mediaType": media_types::OCI_MANIFEST,
                    "digest": digest,
                    "size": size,
                    "annotations": {
                        media_types::ANNOTATION_IMAGE_NAME: name,
                        media_types::ANNOTATION_REF_NAME: name,
                    }
                }))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let index = json!({
            "schemaVersion": 2,
            "mediaType": media_types::OCI_INDEX,
            "manifests": manifests,
        });
        write_atomic(
            &self.layout.index(),
            &serde_json::to_vec_pretty(&index).expect("json"),
        )?;
        Ok(())
    }
}
