use std::collections::HashSet;
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;

use berth_fs::ResultExt;
use berth_oci::{media_types, Digest, Reference};
use serde_json::{json, Value};

use super::{INDEX_JSON, MANIFEST_JSON, OCI_LAYOUT, OCI_LAYOUT_CONTENT};
use crate::error::{Error, Result};
use crate::LayerSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    DockerArchive,
    OciLayout,
}

pub struct ExportLayer {
    pub diff_id: Digest,
    pub source: LayerSource,
    pub size: u64,
}

pub struct ExportImage {
    pub config_digest: Digest,
    pub config_path: PathBuf,
    pub manifest: Vec<u8>,
    pub manifest_digest: Digest,
    pub layers: Vec<ExportLayer>,
    /// The names to record for this image in the archive.
    pub names: Vec<Reference>,
}

/// Streams the archive to `out`. Entries are in a fixed order with fixed
/// metadata, so saving the same images twice gives the same bytes.
pub fn write_archive<W: Write>(out: W, images: &[ExportImage], format: ArchiveFormat) -> Result<W> {
    let mut tar = tar::Builder::new(out);
    let mut written: HashSet<Digest> = HashSet::new();
    dir_entry(&mut tar, "blobs/")?;
    dir_entry(&mut tar, "blobs/sha256/")?;

    let mut index_entries: Vec<Value> = Vec::new();
    let mut docker_manifest: Vec<Value> = Vec::new();
    for img in images {
        for layer in &img.layers {
            if written.insert(layer.diff_id.clone()) {
                let mut f = layer.source.open(&layer.diff_id)?;
                file_entry(&mut tar, &blob_path(&layer.diff_id), layer.size, &mut f)?;
            }
        }
        if written.insert(img.config_digest.clone()) {
            let mut f = File::open(&img.config_path).at("cannot open config", &img.config_path)?;
            let size = f.metadata().at("cannot stat", &img.config_path)?.len();
            file_entry(&mut tar, &blob_path(&img.config_digest), size, &mut f)?;
        }
        if written.insert(img.manifest_digest.clone()) {
            bytes_entry(&mut tar, &blob_path(&img.manifest_digest), &img.manifest)?;
        }
        let descriptor = |annotations: Option<Value>| {
            let mut d = json!({
                "mediaType": media_types::OCI_MANIFEST,
                "digest": img.manifest_digest,
                "size": img.manifest.len(),
            });
            if let Some(a) = annotations {
                d["annotations"] = a;
            }
            d
        };
        if img.names.is_empty() {
            index_entries.push(descriptor(None));
        }
        for name in &img.names {
            index_entries.push(descriptor(Some(json!({
                media_types::ANNOTATION_IMAGE_NAME: name.to_string(),
                media_types::ANNOTATION_REF_NAME: name.tag().unwrap_or(berth_oci::DEFAULT_TAG),
            }))));
        }
        let tags: Vec<String> = img.names.iter().map(Reference::familiar).collect();
        docker_manifest.push(json!({
            "Config": blob_path(&img.config_digest),
            "RepoTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "Layers": img.layers.iter().map(|l| blob_path(&l.diff_id)).collect::<Vec<_>>(),
        }));
    }
    let index = json!({
        "schemaVersion": 2,
        "mediaType": media_types::OCI_INDEX,
        "manifests": index_entries,
    });
    bytes_entry(
        &mut tar,
        INDEX_JSON,
        &serde_json::to_vec(&index).expect("json"),
    )?;
    if format == ArchiveFormat::DockerArchive {
        bytes_entry(
            &mut tar,
            MANIFEST_JSON,
            &serde_json::to_vec(&docker_manifest).expect("json"),
        )?;
    }
    bytes_entry(&mut tar, OCI_LAYOUT, OCI_LAYOUT_CONTENT.as_bytes())?;
    tar.into_inner().map_err(Error::Write)
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn dir_entry<W: Write>(tar: &mut tar::Builder<W>, path: &str) -> Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, path, std::io::empty())
        .map_err(Error::Write)
}

fn file_entry<W: Write, R: std::io::Read>(
    tar: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: R,
) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    tar.append_data(&mut h, path, data).map_err(Error::Write)
}

fn bytes_entry<W: Write>(tar: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    file_entry(tar, path, data.len() as u64, data)
}
