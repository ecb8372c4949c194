//! `berth save`: images to a docker-archive or an OCI layout tar.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;

use berth_fs::AtomicFile;
use berth_image::archive::{write_archive, ArchiveFormat, ExportImage};
use berth_oci::{Digest, Reference};
use berth_store::ImageRecord;

use super::Context;
use crate::cli::SaveArgs;
use crate::error::CliError;

pub fn run(ctx: &Context, a: SaveArgs) -> Result<(), CliError> {
    let format = match a.format.as_str() {
        "docker-archive" | "docker" => ArchiveFormat::DockerArchive,
        "oci" | "oci-archive" => ArchiveFormat::OciLayout,
        other => {
            return Err(CliError::usage(format!(
                "unknown --format {other:?}: use docker-archive or oci"
            )))
        }
    };
    if a.output.is_none() && io::stdout().is_terminal() {
        return Err(CliError::new(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let store = ctx.store()?;

    // Group names by image, keeping the order images were asked for.
    let mut order: Vec<Digest> = Vec::new();
    let mut chosen: BTreeMap<Digest, (ImageRecord, Vec<Reference>)> = BTreeMap::new();
    for arg in &a.images {
        for (img, names) in select(&store, arg)? {
            let entry = chosen.entry(img.id.clone()).or_insert_with(|| {
                order.push(img.id.clone());
                (img, Vec::new())
            });
            for n in names {
                if !entry.1.contains(&n) {
                    entry.1.push(n);
                }
            }
        }
    }
    let exports = order
        .iter()
        .map(|id| {
            let (img, names) = &chosen[id];
            store.export_image(img, names.clone())
        })
        .collect::<Result<Vec<_>, _>>()?;

    match &a.output {
        Some(path) => write_archive_file(path, &exports, format)?,
        None => {
            let out = io::stdout().lock();
            let mut w = write_archive(BufWriter::with_capacity(1 << 20, out), &exports, format)?;
            w.flush()?;
        }
    }
    Ok(())
}

/// Writes `images` as an archive at `path` (`save -o`, `build --output`);
/// a partial archive never appears under that name.
pub fn write_archive_file(
    path: &Path,
    images: &[ExportImage],
    format: ArchiveFormat,
) -> Result<(), CliError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| ".".into());
    fs::create_dir_all(&dir)
        .map_err(|e| CliError::new(format!("create {}: {e}", dir.display())))?;
    let file = AtomicFile::new_in(&dir)?;
    let mut w = write_archive(BufWriter::with_capacity(1 << 20, file), images, format)?;
    w.flush()?;
    let file = w.into_inner().map_err(|e| CliError::new(e.to_string()))?;
    file.commit(path)?;
    Ok(())
}

/// What one `save` argument means, as Docker reads it: an ID saves the image
/// untagged; `name:tag` saves that tag; a bare repository saves every image of
/// the repository with all its tags there.
fn select(
    store: &berth_store::Store,
    arg: &str,
) -> Result<Vec<(ImageRecord, Vec<Reference>)>, CliError> {
    if let Ok(bare) = Reference::parse_normalized_name(arg) {
        if bare.tag().is_none() && bare.digest().is_none() {
            let repo = bare.repository();
            let found: Vec<_> = store
                .images()?
                .into_iter()
                .filter_map(|i| {
                    let names: Vec<Reference> = i
                        .tags
                        .iter()
                        .filter(|t| t.repository() == repo)
                        .cloned()
                        .collect();
                    (!names.is_empty()).then_some((i, names))
                })
                .collect();
            if !found.is_empty() {
                return Ok(found);
            }
        }
    }
    let img = store.resolve_image(arg)?;
    let names = match Reference::parse_normalized(arg) {
        Ok(r) if img.tags.contains(&r) => vec![r],
        _ => Vec::new(),
    };
    Ok(vec![(img, names)])
}
