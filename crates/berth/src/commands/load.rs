//! `berth load`: images from a docker-archive or OCI layout tar.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};

use berth_image::archive::{extract_archive, read_extracted};
use berth_image::{stage_compressed_layer, stage_layer, KeptBlob, StagedLayer};
use berth_oci::{chain_id, media_types, ImageConfig};
use berth_store::NewImage;

use super::Context;
use crate::cli::LoadArgs;
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, a: LoadArgs) -> Result<(), CliError> {
    let (input, what): (Box<dyn Read>, String) = match &a.input {
        Some(p) => (
            Box::new(
                File::open(p).map_err(|e| CliError::new(format!("open {}: {e}", p.display())))?,
            ),
            p.display().to_string(),
        ),
        None => {
            if io::stdin().is_terminal() {
                return Err(CliError::new(
                    "requested load from stdin, but stdin is empty: pipe an archive in or use -i FILE",
                ));
            }
            (Box::new(io::stdin().lock()), "stdin".to_string())
        }
    };
    let mut store = ctx.store()?;
    let staging = store.stage()?;
    let extracted = staging.subdir("archive")?;
    extract_archive(input, &extracted, &what)?;
    let images = read_extracted(&extracted)?;
    if images.is_empty() {
        return Err(CliError::new(format!("{what} contains no images")));
    }

    let mut out = output::stdout();
    for (n, img) in images.into_iter().enumerate() {
        let config = ImageConfig::from_slice(&img.config)
            .map_err(|e| CliError::new(format!("{what}: invalid image config: {e}")))?;
        let chain = chain_id(&config.rootfs.diff_ids);
        if chain.len() != img.layers.len() {
            return Err(CliError::new(format!(
                "{what}: image config lists {} layers but the archive has {}; the archive is corrupt",
                chain.len(),
                img.layers.len()
            )));
        }
        let mut layers = Vec::with_capacity(img.layers.len());
        for (i, ((path, expected), cid)) in img.layers.iter().zip(&chain).enumerate() {
            if store.has_layer(cid)? {
                layers.push(None);
                continue;
            }
            let layer_what = format!(
                "layer {} ({}) of {what}",
                i + 1,
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let dir = staging.subdir(&format!("layer-{n}-{i}"))?;
            let staged = stage_archive_layer(path, &dir, &layer_what)?;
            if let Some(want) = expected {
                if *want != staged.input_digest {
                    return Err(CliError::new(format!(
                        "{what}: layer {want} does not match its content ({}); the archive is corrupt",
                        staged.input_digest
                    )));
                }
            }
            layers.push(Some(staged));
        }
        let names = img.names.clone();
        let outcome = store.commit_image(NewImage {
            config: img.config,
            layers,
            names: names.clone(),
        })?;
        if a.quiet {
            continue;
        }
        for (name, old) in &outcome.moved {
            writeln!(
                out,
                "The image {} already exists, renaming the old one with ID {old} to empty string",
                name.familiar()
            )?;
        }
        if names.is_empty() {
            writeln!(out, "Loaded image ID: {}", outcome.id)?;
        }
        for name in &names {
            writeln!(out, "Loaded image: {}", name.familiar())?;
        }
    }
    Ok(())
}

/// Stages one layer file of an extracted archive. A compressed one is kept
/// as it is, in place of an uncompressed copy (as a pull keeps what the
/// registry sent): the store then holds the layer's bytes once besides its
/// tree, and a push of it has nothing to compress. The kept file is a hard
/// link, so another image of the archive can still read the layer.
fn stage_archive_layer(
    path: &std::path::Path,
    dir: &std::path::Path,
    what: &str,
) -> Result<StagedLayer, CliError> {
    let open = |p: &std::path::Path| {
        File::open(p).map_err(|e| CliError::new(format!("open {}: {e}", p.display())))
    };
    let mut head = [0u8; 4];
    let n = open(path)?.read(&mut head).unwrap_or(0);
    let media_type = match &head[..n] {
        [0x1f, 0x8b, ..] => media_types::OCI_LAYER_GZIP,
        [0x28, 0xb5, 0x2f, 0xfd] => media_types::OCI_LAYER_ZSTD,
        _ => return Ok(stage_layer(open(path)?, dir, what)?),
    };
    let kept = dir.join("blob");
    std::fs::hard_link(path, &kept)
        .map_err(|e| CliError::new(format!("link {}: {e}", path.display())))?;
    let file = open(&kept)?;
    let mut staged = stage_compressed_layer(&file, dir, what)?;
    // Extracted without a sync: it is about to be the layer's only copy.
    file.sync_all()
        .map_err(|e| CliError::new(format!("sync {}: {e}", kept.display())))?;
    let size = file
        .metadata()
        .map_err(|e| CliError::new(format!("stat {}: {e}", kept.display())))?
        .len();
    staged.blob = Some(KeptBlob {
        path: kept,
        digest: staged.input_digest.clone(),
        size,
        media_type: media_type.to_string(),
    });
    Ok(staged)
}
