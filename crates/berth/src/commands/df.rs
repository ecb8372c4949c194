//! `system df`: how much space images, containers, local volumes and the
//! build cache take, and how much of it a prune would give back.

use std::collections::{HashMap, HashSet};
use std::io::Write;

use berth_runtime::rootfs::RootPaths;
use berth_runtime::ContainerConfig;
use serde_json::{json, Value};

use super::container::prune::upper_size;
use super::container::{settle, status_text};
use super::Context;
use crate::cli::DfArgs;
use crate::error::CliError;
use crate::output::{self, render_rows, units};

const SUMMARY_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const SUMMARY_HEADERS: &[(&str, &str)] = &[
    ("Type", "TYPE"),
    ("TotalCount", "TOTAL"),
    ("Active", "ACTIVE"),
    ("Size", "SIZE"),
    ("Reclaimable", "RECLAIMABLE"),
];

/// Docker's "SIZE (PCT%)", the percentage left out when there is nothing.
fn reclaimable(part: u64, total: u64) -> String {
    if total == 0 {
        return units::human_size(part);
    }
    format!("{} ({}%)", units::human_size(part), part * 100 / total)
}

pub fn run(ctx: &Context, a: DfArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let images = store.images()?;
    let mut containers = Vec::new();
    for c in store.containers()? {
        containers.push(settle(&mut store, c)?);
    }
    let volumes = store.volumes()?;
    let cache = store.cache_records()?;

    // Images: a layer counts once however many images share it; what the
    // images some container uses hold is not reclaimable.
    let used: HashMap<&str, usize> = containers.iter().fold(HashMap::new(), |mut m, c| {
        *m.entry(c.image_id.as_str()).or_default() += 1;
        m
    });
    let mut layer_users: HashMap<&str, usize> = HashMap::new();
    let mut layer_size: HashMap<&str, u64> = HashMap::new();
    for img in &images {
        for l in &img.layers {
            *layer_users.entry(l.chain_id.as_str()).or_default() += 1;
            layer_size.insert(l.chain_id.as_str(), l.size);
        }
    }
    let images_total: u64 = layer_size.values().sum();
    let kept: HashSet<&str> = images
        .iter()
        .filter(|i| used.contains_key(i.id.as_str()))
        .flat_map(|i| i.layers.iter().map(|l| l.chain_id.as_str()))
        .collect();
    let images_kept: u64 = kept.iter().map(|c| layer_size[c]).sum();
    let images_active = images
        .iter()
        .filter(|i| used.contains_key(i.id.as_str()))
        .count();

    let container_sizes: Vec<u64> = containers
        .iter()
        .map(|c| upper_size(&RootPaths::new(&store.layout().container(&c.id)).upper))
        .collect();
    let containers_total: u64 = container_sizes.iter().sum();
    let containers_idle: u64 = containers
        .iter()
        .zip(&container_sizes)
        .filter(|(c, _)| !c.status.is_active())
        .map(|(_, s)| s)
        .sum();

    let volume_sizes: Vec<u64> = volumes.iter().map(|v| store.volume_size(&v.name)).collect();
    let volumes_total: u64 = volume_sizes.iter().sum();
    let volumes_unused: u64 = volumes
        .iter()
        .zip(&volume_sizes)
        .filter(|(v, _)| v.used_by.is_empty())
        .map(|(_, s)| s)
        .sum();
    let cache_total: u64 = cache.iter().map(|r| r.size).sum();

    let mut out = output::stdout();
    if a.verbose {
        writeln!(out, "Images space usage:\n")?;
        let rows: Vec<Value> = images
            .iter()
            .map(|img| {
                let size = img.size();
                let shared: u64 = img
                    .layers
                    .iter()
                    .filter(|l| layer_users[l.chain_id.as_str()] > 1)
                    .map(|l| l.size)
                    .sum();
                let name = img.tags.first();
                json!({
                    "Repository": name.map_or("<none>".into(), |r| r.familiar_repository()),
                    "Tag": name.and_then(|r| r.tag()).unwrap_or("<none>"),
                    "ID": img.id.short(),
                    "CreatedSince": units::since(img.created_unix),
                    "Size": units::human_size(size),
                    "SharedSize": units::human_size(shared),
                    "UniqueSize": units::human_size(size - shared),
                    "Containers": used.get(img.id.as_str()).copied().unwrap_or(0).to_string(),
                })
            })
            .collect();
        render_rows(
            &mut out,
            None,
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
            &rows,
            &[
                ("Repository", "REPOSITORY"),
                ("Tag", "TAG"),
                ("ID", "IMAGE ID"),
                ("CreatedSince", "CREATED"),
                ("Size", "SIZE"),
                ("SharedSize", "SHARED SIZE"),
                ("UniqueSize", "UNIQUE SIZE"),
                ("Containers", "CONTAINERS"),
            ],
        )?;
        writeln!(out, "\nContainers space usage:\n")?;
        let mut rows = Vec::new();
        for (c, size) in containers.iter().zip(&container_sizes) {
            let cfg: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
            let command = super::container::argv(&cfg);
            let created = units::unix_time(&c.created);
            rows.push(json!({
                "ID": &c.id[..12],
                "Image": c.image,
                "Command": format!("\"{}\"", output::ellipsis(&command.join(" "), 20)),
                "LocalVolumes": store.container_volumes(&c.id)?.len().to_string(),
                "Size": units::human_size(*size),
                "RunningFor": units::since(created),
                "Status": status_text(c),
                "Names": c.name,
            }));
        }
        render_rows(
            &mut out,
            None,
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
            &rows,
            &[
                ("ID", "CONTAINER ID"),
                ("Image", "IMAGE"),
                ("Command", "COMMAND"),
                ("LocalVolumes", "LOCAL VOLUMES"),
                ("Size", "SIZE"),
                ("RunningFor", "CREATED"),
                ("Status", "STATUS"),
                ("Names", "NAMES"),
            ],
        )?;
        writeln!(out, "\nLocal Volumes space usage:\n")?;
        let rows: Vec<Value> = volumes
            .iter()
            .zip(&volume_sizes)
            .map(|(v, size)| {
                json!({
                    "Name": v.name,
                    "Links": v.used_by.len().to_string(),
                    "Size": units::human_size(*size),
                })
            })
            .collect();
        render_rows(
            &mut out,
            None,
            "table {{.Name}}\t{{.Links}}\t{{.Size}}",
            &rows,
            &[
                ("Name", "VOLUME NAME"),
                ("Links", "LINKS"),
                ("Size", "SIZE"),
            ],
        )?;
        writeln!(
            out,
            "\nBuild cache usage: {}\n",
            units::human_size(cache_total)
        )?;
        let rows: Vec<Value> = cache
            .iter()
            .map(|r| {
                let hex = r.key.strip_prefix("sha256:").unwrap_or(&r.key);
                let created = units::unix_time(&r.created);
                json!({
                    "ID": &hex[..hex.len().min(12)],
                    "CacheType": if r.chain_id.is_some() { "regular" } else { "internal" },
                    "Size": units::human_size(r.size),
                    "CreatedSince": units::since(created),
                    "LastUsedSince": units::since(r.last_used_unix),
                    "UsageCount": "",
                    "Shared": "false",
                })
            })
            .collect();
        render_rows(
            &mut out,
            None,
            "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.Shared}}",
            &rows,
            &[
                ("ID", "CACHE ID"),
                ("CacheType", "CACHE TYPE"),
                ("Size", "SIZE"),
                ("CreatedSince", "CREATED"),
                ("LastUsedSince", "LAST USED"),
                ("Shared", "SHARED"),
            ],
        )?;
        return Ok(());
    }

    let row = |kind: &str, total: usize, active: usize, size: u64, free: String| {
        json!({
            "Type": kind,
            "TotalCount": total.to_string(),
            "Active": active.to_string(),
            "Size": units::human_size(size),
            "Reclaimable": free,
        })
    };
    let rows = [
        row(
            "Images",
            images.len(),
            images_active,
            images_total,
            reclaimable(images_total - images_kept, images_total),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| c.status.is_active()).count(),
            containers_total,
            reclaimable(containers_idle, containers_total),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|v| !v.used_by.is_empty()).count(),
            volumes_total,
            reclaimable(volumes_unused, volumes_total),
        ),
        // Nothing holds cache between builds: all of it can go.
        row(
            "Build Cache",
            cache.len(),
            0,
            cache_total,
            units::human_size(cache_total),
        ),
    ];
    render_rows(
        &mut out,
        a.format.as_deref(),
        SUMMARY_TABLE,
        &rows,
        SUMMARY_HEADERS,
    )
}
