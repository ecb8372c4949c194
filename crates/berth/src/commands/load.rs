//! `berth load`: images from a docker-archive or OCI layout tar.

use std::fs::File;
use std::io::{self, IsTerminal, Read, Write};

use berth_image::archive::{extract_archive, read_extracted};
use berth_image::stage_layer;
use berth_oci::{chain_id, ImageConfig};
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
            let f = File::open(path)
                .map_err(|e| CliError::new(format!("open {}: {e}", path.display())))?;
            let layer_what = format!(
                "layer {} ({}) of {what}",
                i + 1,
                path.file_name().unwrap_or_default().to_string_lossy()
            );
            let staged = stage_layer(f, &staging.subdir(&format!("layer-{n}-{i}"))?, &layer_what)?;
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
