//! `berth system check`: verifies that what the database says is on disk.

use berth_fs::HashingReader;
use berth_oci::{chain_id, ImageConfig};

use crate::error::Result;
use crate::Store;

impl Store {
    /// Returns one line per problem; an empty list means the store is
    /// consistent. `deep` also re-hashes every blob.
    pub fn check(&self, deep: bool) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let images = self.images()?;
        for img in &images {
            let short = img.id.short();
            let cfg_path = self.layout.blob(&img.id);
            let config = match std::fs::read(&cfg_path) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(format!("image {short}: config blob unreadable: {e}"));
                    continue;
                }
            };
            if berth_oci::Digest::sha256_of(&config) != img.id {
                problems.push(format!(
                    "image {short}: config blob does not match its digest"
                ));
            }
            match ImageConfig::from_slice(&config) {
                Ok(c) => {
                    let want = chain_id(&c.rootfs.diff_ids);
                    let have: Vec<_> = img.layers.iter().map(|l| l.chain_id.clone()).collect();
                    if want != have {
                        problems.push(format!("image {short}: layer list differs from its config"));
                    }
                }
                Err(e) => problems.push(format!("image {short}: config unreadable: {e}")),
            }
            if !self.layout.blob(&img.manifest_digest).is_file() {
                problems.push(format!("image {short}: manifest blob missing"));
            }
            for l in &img.layers {
                if !self.layout.layer_diff(&l.chain_id).is_dir() {
                    problems.push(format!(
                        "image {short}: layer {} directory missing",
                        l.chain_id
                    ));
                }
                match self.layer_source(&l.diff_id) {
                    Err(_) => problems.push(format!(
                        "image {short}: layer tar {} missing (and no compressed blob of it)",
                        l.diff_id
                    )),
                    Ok(source) if deep => {
                        let read =
                            source
                                .open(&l.diff_id)
                                .map_err(|e| e.to_string())
                                .and_then(|r| {
                                    HashingReader::new(r).finish().map_err(|e| e.to_string())
                                });
                        match read {
                            Ok((_, hex, _)) if hex == l.diff_id.hex() => {}
                            Ok(_) => problems
                                .push(format!("layer tar {} does not match its digest", l.diff_id)),
                            Err(e) => problems.push(e),
                        }
                    }
                    Ok(_) => {}
                }
            }
        }
        let integrity: String = self
            .db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        if integrity != "ok" {
            problems.push(format!("database: {integrity}"));
        }
        Ok(problems)
    }
}
