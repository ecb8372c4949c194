//! `container prune`: removes every container that is not running, paused or
//! restarting, and says how much space their writable layers held.

use std::collections::HashSet;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use berth_runtime::rootfs::RootPaths;
use berth_runtime::ContainerConfig;
use berth_store::{ContainerRecord, Store};

use super::lifecycle::remove;
use super::{settle, Context};
use crate::cli::PruneArgs;
use crate::commands::prune::{self, Filters, Pruned};
use crate::error::CliError;
use crate::output;

pub fn run(ctx: &Context, a: PruneArgs) -> Result<(), CliError> {
    let filters = Filters::parse(&a.filter)?;
    if !prune::confirm("This will remove all stopped containers.", a.force)? {
        // Docker says nothing more than the total of what it did: nothing.
        writeln!(output::stdout(), "Total reclaimed space: 0B")?;
        return Ok(());
    }
    let mut store = ctx.store()?;
    let p = prune_containers(&mut store, &filters)?;
    prune::report(&[p])
}

/// Removes the containers that are not running, paused or restarting and
/// that `filters` accept; a failure is reported and the rest go on, as in
/// Docker.
pub fn prune_containers(store: &mut Store, filters: &Filters) -> Result<Pruned, CliError> {
    let mut p = Pruned::new("Deleted Containers");
    for c in store.containers()? {
        let c = settle(store, c)?;
        if c.status.is_active() || !matches(filters, &c) {
            continue;
        }
        let size = upper_size(&RootPaths::new(&store.layout().container(&c.id)).upper);
        match remove(store, &c) {
            Ok(()) => {
                p.section.lines.push(c.id);
                p.bytes += size;
            }
            Err(e) => {
                p.failed = true;
                let _ = writeln!(
                    io::stderr(),
                    "Error: cannot remove container {}: {e}",
                    c.name
                );
            }
        }
    }
    Ok(p)
}

fn matches(f: &Filters, c: &ContainerRecord) -> bool {
    if !f.matches_time(output::units::unix_time(&c.created)) {
        return false;
    }
    if !f.has_label_filters() {
        return true;
    }
    let config: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
    f.matches_labels(&config.labels)
}

/// Bytes in a writable layer, counted as Docker's SizeRw: regular files by
/// size (hard links once), symlinks by target length, directories nothing.
pub fn upper_size(dir: &Path) -> u64 {
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.path().symlink_metadata() else {
                continue;
            };
            if m.is_dir() {
                stack.push(e.path());
            } else if m.nlink() <= 1 || seen.insert((m.dev(), m.ino())) {
                total += m.len();
            }
        }
    }
    total
}
