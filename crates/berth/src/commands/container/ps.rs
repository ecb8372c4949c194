//! `berth ps` / `container ls`.

use berth_runtime::ContainerConfig;
use serde_json::json;

use super::{settle, status_text, Context};
use crate::cli::PsArgs;
use crate::commands::{images::glob_match, parse_filters};
use crate::error::CliError;
use crate::output::{self, render_rows, units};

const DEFAULT_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
const SIZE_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}\t{{.Size}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("State", "STATE"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("Labels", "LABELS"),
    ("Size", "SIZE"),
    ("Mounts", "MOUNTS"),
    ("Networks", "NETWORKS"),
];
const FILTERS: &[&str] = &["status", "name", "id", "label", "exited", "ancestor"];
/// Docker cuts COMMAND at 20 characters unless `--no-trunc`.
const COMMAND_WIDTH: usize = 20;

pub fn run(ctx: &Context, a: PsArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let filters = parse_filters(&a.filter, FILTERS)?;
    let mut rows = Vec::new();
    let limit = if a.latest { Some(1) } else { a.last };
    let all = a.all
        || limit.is_some()
        || filters
            .iter()
            .any(|(k, _)| *k == "status" || *k == "exited");
    let mut containers = Vec::new();
    for c in store.containers()? {
        containers.push(settle(&mut store, c)?);
    }
    if let Some(n) = limit {
        containers.truncate(n);
    }
    let with_size = a.size || a.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let images: std::collections::HashMap<String, u64> = if with_size {
        store
            .images()?
            .into_iter()
            .map(|i| (i.id.to_string(), i.size()))
            .collect()
    } else {
        Default::default()
    };
    for c in containers {
        if !all && !c.status.is_active() {
            continue;
        }
        let cfg: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
        let keep = filters.iter().all(|&(k, v)| match k {
            "status" => c.status.as_str() == v,
            "name" => c.name.contains(v.trim_start_matches('/')),
            "id" => c.id.starts_with(v),
            "exited" => {
                !c.status.is_active() && c.started_at.is_some() && c.exit_code.to_string() == v
            }
            "label" => output::label_matches(&cfg.labels, v),
            "ancestor" => c.image == v || glob_match(v, &c.image) || c.image_id.contains(v),
            _ => true,
        });
        if !keep {
            continue;
        }
        let argv = super::argv(&cfg);
        let command = argv.join(" ");
        let command = if a.no_trunc {
            command
        } else {
            output::ellipsis(&command, COMMAND_WIDTH)
        };
        let created = chrono::DateTime::parse_from_rfc3339(&c.created).ok();
        let created_unix = created.map_or(0, |t| t.timestamp());
        let labels = cfg
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let volumes = store.container_volumes(&c.id)?;
        // Measuring walks the writable layer: only when asked, as in Docker.
        let size = if with_size {
            let rw = super::prune::upper_size(
                &berth_runtime::rootfs::RootPaths::new(&store.layout().container(&c.id)).upper,
            );
            let image = images.get(c.image_id.as_str()).copied().unwrap_or(0);
            format!(
                "{} (virtual {})",
                units::human_size(rw),
                units::human_size(rw + image)
            )
        } else {
            "0B".to_string()
        };
        rows.push(json!({
            "Command": format!("\"{command}\""),
            "CreatedAt": created.map(|t| t.format("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()).unwrap_or_default(),
            "ID": if a.no_trunc { c.id.clone() } else { c.id[..12].to_string() },
            "Image": c.image,
            "Labels": labels,
            "LocalVolumes": volumes.len().to_string(),
            "Mounts": volumes
                .iter()
                .map(|(v, _)| if a.no_trunc { v.clone() } else { output::ellipsis(v, 15) })
                .collect::<Vec<_>>()
                .join(","),
            "Names": c.name,
            "Networks": cfg.host_config.network_mode,
            "Ports": if c.status.is_active() {
                berth_runtime::ports::read_bound(&store.layout().container(&c.id))
                    .iter()
                    .map(|b| b.display())
                    .collect::<Vec<_>>()
                    .join(", ")
            } else {
                String::new()
            },
            "RunningFor": units::since(created_unix),
            "Size": size,
            "State": c.status.as_str(),
            "Status": status_text(&c),
        }));
    }
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    let table = if a.size { SIZE_TABLE } else { DEFAULT_TABLE };
    render_rows(&mut output::stdout(), format, table, &rows, HEADERS)
}

/// `berth port CONTAINER [PORT[/PROTO]]`.
pub fn port(ctx: &Context, a: crate::cli::PortArgs) -> Result<(), CliError> {
    use std::io::Write;
    let mut store = ctx.store()?;
    let c = super::find(&mut store, &a.container)?;
    let bound = if c.status.is_active() {
        berth_runtime::ports::read_bound(&store.layout().container(&c.id))
    } else {
        Vec::new()
    };
    let mut out = output::stdout();
    match a.port {
        None => {
            for b in &bound {
                writeln!(
                    out,
                    "{} -> {}:{}",
                    b.container_key(),
                    b.host_ip,
                    b.host_port
                )?;
            }
        }
        Some(p) => {
            let key = if p.contains('/') {
                p.clone()
            } else {
                format!("{p}/tcp")
            };
            let hits: Vec<_> = bound.iter().filter(|b| b.container_key() == key).collect();
            if hits.is_empty() {
                return Err(CliError::new(format!(
                    "No public port '{key}' published for {}",
                    a.container
                )));
            }
            for b in hits {
                writeln!(out, "{}:{}", b.host_ip, b.host_port)?;
            }
        }
    }
    Ok(())
}
