//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::BTreeMap;
use std::io::Write;

use berth_store::{Store, VolumeRecord};
use serde_json::{json, Value};

use super::container::mounts::valid_volume_name;
use super::{parse_filters, Context};
use crate::cli::{
    VolumeCreateArgs, VolumeInspectArgs, VolumeLsArgs, VolumePruneArgs, VolumeRmArgs,
};
use crate::error::CliError;
use crate::output::{self, render_rows};

const DEFAULT_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
const HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Scope", "SCOPE"),
];

fn key_values(list: &[String], what: &str) -> Result<BTreeMap<String, String>, CliError> {
    list.iter()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv.as_str(), ""));
            if k.is_empty() {
                return Err(CliError::usage(format!(
                    "invalid {what} {kv:?}: use KEY=VALUE"
                )));
            }
            Ok((k.to_string(), v.to_string()))
        })
        .collect()
}

pub fn create(ctx: &Context, a: VolumeCreateArgs) -> Result<(), CliError> {
    if a.driver != "local" {
        return Err(CliError::new(format!(
            "error looking up volume plugin {}: plugin \"{}\" not found; berth has the local driver",
            a.driver, a.driver
        )));
    }
    let labels = key_values(&a.label, "label")?;
    let options = key_values(&a.opt, "option")?;
    berth_runtime::volume::check_options(&options).map_err(|e| CliError::new(e.to_string()))?;
    let mut store = ctx.store()?;
    let (name, anonymous) = match a.name {
        Some(n) => {
            if !valid_volume_name(&n) {
                return Err(CliError::new(format!(
                    "create {n}: \"{n}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed"
                )));
            }
            (n, false)
        }
        None => {
            let mut buf = [0u8; 32];
            let mut f = std::fs::File::open("/dev/urandom")?;
            std::io::Read::read_exact(&mut f, &mut buf)?;
            (hex::encode(buf), true)
        }
    };
    let (v, _) = store.create_volume(
        &name,
        &labels,
        &options,
        anonymous,
        &super::rfc3339_nano(chrono::Utc::now()),
    )?;
    writeln!(output::stdout(), "{}", v.name)?;
    Ok(())
}

fn volume_json(ctx: &Context, v: &VolumeRecord) -> Result<Value, CliError> {
    let store = ctx.store()?;
    Ok(json!({
        "CreatedAt": created_at(&v.created),
        "Driver": v.driver,
        "Labels": if v.labels.is_empty() { Value::Null } else { json!(v.labels) },
        "Mountpoint": store.layout().volume_data(&v.name),
        "Name": v.name,
        "Options": if v.options.is_empty() { Value::Null } else { json!(v.options) },
        "Scope": "local",
    }))
}

/// Docker prints volume times to the second.
fn created_at(t: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|t| {
            t.with_timezone(&chrono::Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|_| t.to_string())
}

pub fn ls(ctx: &Context, a: VolumeLsArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let filters = parse_filters(&a.filter, &["dangling", "name", "label", "driver"])?;
    let mut rows = Vec::new();
    for v in store.volumes()? {
        let keep = filters.iter().all(|&(k, val)| match k {
            "dangling" => (val == "true" || val == "1") == v.used_by.is_empty(),
            "name" => v.name.contains(val),
            "driver" => v.driver == val,
            "label" => output::label_matches(&v.labels, val),
            _ => true,
        });
        if !keep {
            continue;
        }
        let labels = v
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        rows.push(json!({
            "Availability": "N/A",
            "Driver": v.driver,
            "Group": "N/A",
            "Labels": labels,
            "Links": v.used_by.len().to_string(),
            "Mountpoint": store.layout().volume_data(&v.name),
            "Name": v.name,
            "Scope": "local",
            "Size": "N/A",
            "Status": "N/A",
        }));
    }
    let format = if a.quiet {
        Some("{{.Name}}")
    } else {
        a.format.as_deref()
    };
    render_rows(&mut output::stdout(), format, DEFAULT_TABLE, &rows, HEADERS)
}

pub fn inspect(ctx: &Context, a: VolumeInspectArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for n in &a.names {
        match store.volume(n) {
            Ok(v) => found.push(volume_json(ctx, &v)?),
            Err(berth_store::Error::NoSuchVolume(_)) => missing.push(n.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    super::inspect::print_inspect(found, &missing, a.format.as_deref(), "volume")
}

pub fn rm(ctx: &Context, a: VolumeRmArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    super::container::for_each(&a.names, |n| {
        match store.remove_volume(n) {
            Ok(_) => {}
            Err(berth_store::Error::NoSuchVolume(_)) if a.force => {}
            Err(e @ berth_store::Error::VolumeInUse { .. }) => {
                return Err(CliError::new(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
        writeln!(output::stdout(), "{n}")?;
        Ok(())
    })
}

pub fn prune(ctx: &Context, a: VolumePruneArgs) -> Result<(), CliError> {
    let warning = if a.all {
        "This will remove all local volumes not used by at least one container."
    } else {
        "This will remove anonymous local volumes not used by at least one container."
    };
    if !super::prune::confirm(warning, a.force)? {
        return Ok(());
    }
    let filters = parse_filters(&a.filter, &["label", "all"])?;
    let all = a.all
        || filters
            .iter()
            .any(|&(k, v)| k == "all" && (v == "true" || v == "1"));
    let labels: Vec<&str> = filters
        .iter()
        .filter(|(k, _)| *k == "label")
        .map(|&(_, v)| v)
        .collect();
    // Each `label` (`key` or `key=value`) must match.
    let labelled = |have: &BTreeMap<String, String>| {
        labels.iter().all(|val| match val.split_once('=') {
            Some((lk, lv)) => have.get(lk).is_some_and(|x| x == lv),
            None => have.contains_key(*val),
        })
    };
    let p = prune_volumes(&mut ctx.store()?, all, &labelled)?;
    super::prune::report(&[p])
}

/// Removes the volumes no container uses: anonymous ones, or all with
/// `all`; of those, the ones whose labels `labelled` accepts.
pub fn prune_volumes(
    store: &mut Store,
    all: bool,
    labelled: &dyn Fn(&BTreeMap<String, String>) -> bool,
) -> Result<super::prune::Pruned, CliError> {
    let mut p = super::prune::Pruned::new("Deleted Volumes");
    for v in store.volumes()? {
        if !v.used_by.is_empty() || !(all || v.anonymous) || !labelled(&v.labels) {
            continue;
        }
        match store.remove_volume(&v.name) {
            Ok(n) => {
                p.bytes += n;
                p.section.lines.push(v.name);
            }
            // Taken into use meanwhile: not garbage after all.
            Err(berth_store::Error::VolumeInUse { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(p)
}
