//! `image prune`: removes dangling images (no tag), or with `-a` every
//! image no container uses, then the layers and blobs only they held.

use std::collections::HashSet;

use berth_oci::{Digest, ImageConfig};
use berth_store::{RemoveEvent, Store};

use super::prune::{self, Filters, Pruned};
use super::Context;
use crate::cli::ImagePruneArgs;
use crate::error::CliError;

pub fn run(ctx: &Context, a: ImagePruneArgs) -> Result<(), CliError> {
    let filters = Filters::parse(&a.filter)?;
    let warning = if a.all {
        "This will remove all images without at least one container associated to them."
    } else {
        "This will remove all dangling images."
    };
    if !prune::confirm(warning, a.force)? {
        return Ok(());
    }
    let p = prune_images(&mut ctx.store()?, a.all, &filters)?;
    prune::report(&[p])
}

/// The images part of `image prune` and `system prune`, in Docker's
/// lower-case "untagged:"/"deleted:" lines.
pub fn prune_images(store: &mut Store, all: bool, filters: &Filters) -> Result<Pruned, CliError> {
    // Labels live in the image configs, read before the store is locked.
    let labelled: Option<HashSet<Digest>> = if filters.has_label_filters() {
        let mut ids = HashSet::new();
        for img in store.images()? {
            let config = ImageConfig::from_slice(&store.image_config(&img.id)?)
                .map_err(|e| CliError::new(format!("image {}: {e}", img.id.short())))?;
            let labels = config.config.and_then(|c| c.labels).unwrap_or_default();
            if filters.matches_labels(&labels) {
                ids.insert(img.id);
            }
        }
        Some(ids)
    } else {
        None
    };
    let report = store.prune_images(all, &|img| {
        filters.matches_time(img.created_unix)
            && labelled.as_ref().is_none_or(|ids| ids.contains(&img.id))
    })?;
    let mut p = Pruned::new("Deleted Images");
    p.bytes = report.bytes;
    p.deferred = report.deferred;
    p.section.lines = report
        .events
        .into_iter()
        .map(|e| match e {
            RemoveEvent::Untagged(r) => format!("untagged: {}", r.familiar()),
            RemoveEvent::Deleted(d) => format!("deleted: {d}"),
        })
        .collect();
    Ok(p)
}
