//! `berth network create|ls|inspect|rm|connect|disconnect|prune`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::Ipv4Addr;

use berth_store::{parse_subnet, NetworkRecord, Store};
use serde_json::{json, Value};

use super::{parse_filters, Context};
use crate::cli::{
    NetworkConnectArgs, NetworkCreateArgs, NetworkDisconnectArgs, NetworkInspectArgs,
    NetworkLsArgs, NetworkPruneArgs, NetworkRmArgs,
};
use crate::error::CliError;
use crate::output::{self, label_matches, render_rows};

const DEFAULT_TABLE: &str = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}";
const HEADERS: &[(&str, &str)] = &[
    ("ID", "NETWORK ID"),
    ("Name", "NAME"),
    ("Driver", "DRIVER"),
    ("Scope", "SCOPE"),
    ("Internal", "INTERNAL"),
    ("Labels", "LABELS"),
];
/// The modes every berth has, listed beside the networks made with `create`.
const BUILTIN: &[(&str, &str)] = &[("host", "host"), ("none", "null")];

/// Docker's default network: every container not given another joins it.
pub const DEFAULT_BRIDGE: &str = "bridge";
const DEFAULT_BRIDGE_SUBNET: &str = "172.17.0.0/16";

/// The default bridge network, made on first use.
pub fn default_bridge(store: &mut Store) -> Result<NetworkRecord, CliError> {
    if let Ok(n) = store.network(DEFAULT_BRIDGE) {
        return Ok(n);
    }
    let n = NetworkRecord {
        id: random_id()?,
        name: DEFAULT_BRIDGE.into(),
        driver: "bridge".into(),
        subnet: DEFAULT_BRIDGE_SUBNET.into(),
        gateway: "172.17.0.1".into(),
        internal: false,
        labels: BTreeMap::new(),
        created: super::rfc3339_nano(chrono::Utc::now()),
    };
    match store.create_network(&n) {
        Ok(()) => {}
        // Another berth made it at the same moment.
        Err(berth_store::Error::NetworkExists(_)) => return Ok(store.network(DEFAULT_BRIDGE)?),
        Err(e) => return Err(e.into()),
    }
    berth_runtime::network::create(&store.layout().network(&n.id), &n.gateway, 16)?;
    Ok(n)
}

/// The next free /16 in 172.18–172.31, as Docker picks its default pools.
fn free_subnet(store: &Store) -> Result<String, CliError> {
    let used = store.network_subnets()?;
    (18..=31)
        .map(|b| format!("172.{b}.0.0/16"))
        .find(|s| !used.contains(s))
        .ok_or_else(|| {
            CliError::new("all predefined address pools have been fully subnetted; give --subnet")
        })
}

fn random_id() -> Result<String, CliError> {
    let mut buf = [0u8; 32];
    let mut f = std::fs::File::open("/dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut buf)?;
    Ok(hex::encode(buf))
}

pub fn create(ctx: &Context, a: NetworkCreateArgs) -> Result<(), CliError> {
    if a.driver != "bridge" {
        return Err(CliError::new(format!(
            "plugin \"{}\" not found: berth networks use the bridge driver",
            a.driver
        )));
    }
    if BUILTIN.iter().any(|(n, _)| *n == a.name) || a.name == DEFAULT_BRIDGE {
        return Err(CliError::new(format!(
            "network with name {} already exists",
            a.name
        )));
    }
    let mut store = ctx.store()?;
    let subnet = match &a.subnet {
        Some(s) => {
            let (base, len) = parse_subnet(s).ok_or_else(|| {
                CliError::usage(format!(
                    "invalid subnet {s:?}: use a.b.c.d/LEN with LEN from 8 to 30"
                ))
            })?;
            let canonical = format!("{base}/{len}");
            if store.network_subnets()?.contains(&canonical) {
                return Err(CliError::new(format!(
                    "Pool overlaps with other one on this address space: {canonical}"
                )));
            }
            canonical
        }
        None => free_subnet(&store)?,
    };
    let (base, len) = parse_subnet(&subnet).expect("checked");
    let gateway = match &a.gateway {
        Some(g) => {
            let ip: Ipv4Addr = g
                .parse()
                .map_err(|_| CliError::usage(format!("invalid gateway {g:?}")))?;
            let mask = u32::MAX << (32 - len);
            if u32::from(ip) & mask != u32::from(base) {
                return Err(CliError::usage(format!(
                    "gateway {g} is not in subnet {subnet}"
                )));
            }
            ip
        }
        None => Ipv4Addr::from(u32::from(base) + 1),
    };
    let labels: BTreeMap<String, String> = a
        .label
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    let n = NetworkRecord {
        id: random_id()?,
        name: a.name.clone(),
        driver: "bridge".into(),
        subnet,
        gateway: gateway.to_string(),
        internal: a.internal,
        labels,
        created: super::rfc3339_nano(chrono::Utc::now()),
    };
    store.create_network(&n)?;
    if let Err(e) = berth_runtime::network::create(&store.layout().network(&n.id), &n.gateway, len)
    {
        let _ = store.delete_network(&n.id);
        berth_runtime::network::remove(&store.layout().network(&n.id));
        return Err(e.into());
    }
    writeln!(output::stdout(), "{}", n.id)?;
    Ok(())
}

pub fn ls(ctx: &Context, a: NetworkLsArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let filters = parse_filters(&a.filter, &["name", "driver", "label", "id"])?;
    let short = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            id[..12.min(id.len())].to_string()
        }
    };
    let mut rows: Vec<(String, Value)> = Vec::new();
    for (name, driver) in BUILTIN {
        let id = format!("{:0<64}", hex::encode(name.as_bytes()));
        rows.push((name.to_string(), json!({"CreatedAt": "", "Driver": driver, "ID": short(&id), "IPv6": "false", "Internal": "false", "Labels": "", "Name": name, "Scope": "local"})));
    }
    for n in store.networks()? {
        let labels = n
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",");
        let keep = filters.iter().all(|&(k, v)| match k {
            "name" => n.name.contains(v),
            "driver" => n.driver == v,
            "id" => n.id.starts_with(v),
            "label" => label_matches(&n.labels, v),
            _ => true,
        });
        if keep {
            rows.push((n.name.clone(), json!({"CreatedAt": n.created, "Driver": n.driver, "ID": short(&n.id), "IPv6": "false", "Internal": n.internal.to_string(), "Labels": labels, "Name": n.name, "Scope": "local"})));
        }
    }
    // Built-ins only pass name/driver filters, as in Docker.
    rows.retain(|(name, row)| {
        !BUILTIN.iter().any(|(b, _)| b == name)
            || filters.iter().all(|&(k, v)| match k {
                "name" => name.contains(v),
                "driver" => row["Driver"] == v,
                _ => false,
            })
    });
    rows.sort_by(|x, y| x.0.cmp(&y.0));
    let rows: Vec<Value> = rows.into_iter().map(|(_, r)| r).collect();
    let format = if a.quiet {
        Some("{{.ID}}")
    } else {
        a.format.as_deref()
    };
    render_rows(&mut output::stdout(), format, DEFAULT_TABLE, &rows, HEADERS)
}

fn network_json(store: &Store, n: &NetworkRecord) -> Result<Value, CliError> {
    let (_, len) = parse_subnet(&n.subnet).unwrap_or((Ipv4Addr::UNSPECIFIED, 16));
    let mut containers = serde_json::Map::new();
    for ep in store.network_endpoints(&n.id)? {
        let Ok(c) = store.container(&ep.container_id) else {
            continue;
        };
        if !c.status.is_active() {
            continue;
        }
        containers.insert(
            c.id.clone(),
            json!({"Name": c.name, "EndpointID": "", "MacAddress": "", "IPv4Address": format!("{}/{len}", ep.ip), "IPv6Address": ""}),
        );
    }
    Ok(json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv6": false,
        "IPAM": {"Driver": "default", "Options": {}, "Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
        "Internal": n.internal,
        "Attachable": false,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": {},
        "Labels": n.labels,
    }))
}

pub fn inspect(ctx: &Context, a: NetworkInspectArgs) -> Result<(), CliError> {
    let store = ctx.store()?;
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for q in &a.names {
        match store.network(q) {
            Ok(n) => found.push(network_json(&store, &n)?),
            Err(berth_store::Error::NoSuchNetwork(_)) => missing.push(q.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    super::inspect::print_inspect(found, &missing, a.format.as_deref(), "network")
}

pub fn rm(ctx: &Context, a: NetworkRmArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    super::container::for_each(&a.names, |q| {
        if BUILTIN.iter().any(|(n, _)| *n == q) || q == DEFAULT_BRIDGE {
            return Err(CliError::new(format!(
                "{q} is a pre-defined network and cannot be removed"
            )));
        }
        let n = match store.network(q) {
            Ok(n) => n,
            Err(berth_store::Error::NoSuchNetwork(_)) if a.force => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        store.delete_network(&n.id)?;
        berth_runtime::network::remove(&store.layout().network(&n.id));
        writeln!(output::stdout(), "{q}")?;
        Ok(())
    })
}

/// Attaches a container now (and, if it runs, wires it up at once).
pub fn connect(ctx: &Context, a: NetworkConnectArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let n = store.network(&a.network)?;
    let c = super::container::find(&mut store, &a.container)?;
    let ip =
        a.ip.as_deref()
            .map(|s| {
                s.parse::<Ipv4Addr>()
                    .map_err(|_| CliError::usage(format!("invalid IP address {s:?}")))
            })
            .transpose()?;
    let ep = store.attach_network(&n, &c.id, &a.alias, ip)?;
    if c.status.is_active() {
        let dir = store.layout().container(&c.id);
        let (_, prefix) = parse_subnet(&n.subnet).expect("stored subnets parse");
        let net_ns =
            berth_runtime::network::create(&store.layout().network(&n.id), &n.gateway, prefix)?;
        let wired = berth_runtime::network::attach(&berth_runtime::network::Attachment {
            container_netns: &dir.join("netns"),
            network_netns: &net_ns,
            position: ep.position,
            ip: &ep.ip,
            prefix,
            gateway: &n.gateway,
            default_route: ep.position == 0,
        });
        if let Err(e) = wired {
            store.detach_network(&n.id, &c.id)?;
            return Err(e.into());
        }
        berth_runtime::network::refresh_hosts(&store, std::slice::from_ref(&n.id))?;
    }
    Ok(())
}

pub fn disconnect(ctx: &Context, a: NetworkDisconnectArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let n = store.network(&a.network)?;
    let c = super::container::find(&mut store, &a.container)?;
    let ep = store
        .container_endpoints(&c.id)?
        .into_iter()
        .find(|e| e.network_id == n.id);
    let Some(ep) = ep else {
        if a.force {
            return Ok(());
        }
        return Err(CliError::new(format!(
            "container {} is not connected to network {}",
            &c.id[..12],
            n.name
        )));
    };
    if c.status.is_active() {
        let dir = store.layout().container(&c.id);
        berth_runtime::network::detach(&dir.join("netns"), ep.position)?;
    }
    store.detach_network(&n.id, &c.id)?;
    // The network's members forget the container, and it forgets them.
    berth_runtime::network::refresh_hosts(&store, std::slice::from_ref(&n.id))?;
    berth_runtime::network::refresh_one(&store, &c.id)?;
    Ok(())
}

pub fn prune(ctx: &Context, a: NetworkPruneArgs) -> Result<(), CliError> {
    let filters = super::prune::Filters::parse(&a.filter)?;
    if !super::prune::confirm(
        "This will remove all custom networks not used by at least one container.",
        a.force,
    )? {
        return Ok(());
    }
    let p = prune_networks(&mut ctx.store()?, &filters)?;
    // Docker reports no space for networks.
    let mut out = output::stdout();
    if !p.section.lines.is_empty() {
        writeln!(out, "{}:", p.section.heading)?;
        for n in &p.section.lines {
            writeln!(out, "{n}")?;
        }
    }
    Ok(())
}

/// Removes the user networks no container is connected to that `filters`
/// accept.
pub fn prune_networks(
    store: &mut Store,
    filters: &super::prune::Filters,
) -> Result<super::prune::Pruned, CliError> {
    let mut p = super::prune::Pruned::new("Deleted Networks");
    for n in store.networks()? {
        let created = crate::output::units::unix_time(&n.created);
        if n.name == DEFAULT_BRIDGE
            || !filters.matches_time(created)
            || !filters.matches_labels(&n.labels)
            || !store.network_endpoints(&n.id)?.is_empty()
        {
            continue;
        }
        store.delete_network(&n.id)?;
        berth_runtime::network::remove(&store.layout().network(&n.id));
        p.section.lines.push(n.name);
    }
    Ok(p)
}
