//! Docker-shaped `inspect` JSON for containers.

use berth_runtime::monitor::log_path;
use berth_runtime::ContainerConfig;
use berth_store::{ContainerRecord, ContainerStatus, Store};
use serde_json::{json, Value};

pub fn container_json(store: &Store, c: &ContainerRecord) -> Value {
    let cfg: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
    let dir = store.layout().container(&c.id);
    let argv = super::argv(&cfg);
    let hc = &cfg.host_config;
    let lower: Vec<String> = store
        .resolve_image(&c.image_id)
        .map(|img| {
            img.layers
                .iter()
                .rev()
                .map(|l| store.layout().layer_diff(&l.chain_id).display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let bound = if c.status.is_active() {
        berth_runtime::ports::read_bound(&dir)
    } else {
        Vec::new()
    };
    // Each user network: its address, gateway and aliases.
    let endpoints: Vec<(Value, String)> = store
        .container_endpoints(&c.id)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|ep| {
            let n = store.network(&ep.network_id).ok()?;
            let prefix = berth_store::parse_subnet(&n.subnet).map_or(16, |(_, l)| l);
            Some((
                json!({
                    "Aliases": ep.aliases,
                    "NetworkID": n.id,
                    "Gateway": n.gateway,
                    "IPAddress": ep.ip,
                    "IPPrefixLen": prefix,
                }),
                n.name,
            ))
        })
        .collect();
    let mut ports = serde_json::Map::new();
    for b in &bound {
        let entry = ports.entry(b.container_key()).or_insert_with(|| json!([]));
        entry
            .as_array_mut()
            .expect("array")
            .push(json!({"HostIp": b.host_ip, "HostPort": b.host_port.to_string()}));
    }
    json!({
        "Id": c.id,
        "Created": c.created,
        "Path": argv.first().cloned().unwrap_or_default(),
        "Args": argv.iter().skip(1).collect::<Vec<_>>(),
        "State": {
            "Status": c.status.as_str(),
            "Running": matches!(c.status, ContainerStatus::Running | ContainerStatus::Paused),
            "Paused": c.status == ContainerStatus::Paused,
            "Restarting": c.status == ContainerStatus::Restarting,
            "OOMKilled": c.oom_killed,
            "Dead": c.status == ContainerStatus::Dead,
            "Pid": if c.status.is_active() { c.pid } else { 0 },
            "ExitCode": c.exit_code,
            "Error": c.error,
            "StartedAt": c.started_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "FinishedAt": c.finished_at.clone().unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        },
        "Image": c.image_id,
        "ResolvConfPath": dir.join("resolv.conf"),
        "HostnamePath": dir.join("hostname"),
        "HostsPath": dir.join("hosts"),
        "LogPath": log_path(&dir, &c.id),
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": {
            "NetworkMode": hc.network_mode,
            "RestartPolicy": {"Name": hc.restart_policy.name, "MaximumRetryCount": hc.restart_policy.maximum_retry_count},
            "AutoRemove": hc.auto_remove,
            "CapAdd": hc.cap_add,
            "CapDrop": hc.cap_drop,
            "Privileged": hc.privileged,
            "ReadonlyRootfs": hc.read_only_rootfs,
            "SecurityOpt": hc.security_opt,
            "Tmpfs": hc.tmpfs,
            "Memory": hc.memory,
            "NanoCpus": hc.nano_cpus,
            "PidsLimit": if hc.pids_limit > 0 { json!(hc.pids_limit) } else { Value::Null },
            "Init": hc.init,
        },
        "GraphDriver": {
            "Data": {
                "LowerDir": lower.join(":"),
                "MergedDir": dir.join("merged"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
            },
            "Name": "overlay",
        },
        "Mounts": hc.mounts.iter().map(|m| {
            let volume = m.kind == "volume";
            json!({
                "Type": m.kind,
                "Name": if volume { json!(m.source) } else { Value::Null },
                "Source": if volume { store.layout().volume_data(&m.source).display().to_string() } else { m.source.clone() },
                "Destination": m.target,
                "Driver": if volume { "local" } else { "" },
                "Mode": if volume { "z" } else { "" },
                "RW": !m.read_only,
                "Propagation": if m.kind == "bind" { if m.options.is_empty() { "rprivate".to_string() } else { m.options.clone() } } else { String::new() },
            })
        }).collect::<Vec<_>>(),
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": "",
            "User": cfg.user,
            "AttachStdin": cfg.open_stdin,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": cfg.tty,
            "OpenStdin": cfg.open_stdin,
            "StdinOnce": cfg.open_stdin,
            "Env": cfg.env,
            "Cmd": cfg.cmd,
            "Image": cfg.image,
            "Volumes": if cfg.volumes.is_empty() { Value::Null } else { json!(cfg.volumes) },
            "WorkingDir": cfg.working_dir,
            "Entrypoint": cfg.entrypoint,
            "OnBuild": null,
            "Labels": cfg.labels,
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
        },
        "NetworkSettings": {
            "Ports": ports,
            "IPAddress": endpoints.first().map(|e| e.0["IPAddress"].clone()).unwrap_or(json!("")),
            "Networks": if endpoints.is_empty() {
                json!({hc.network_mode.clone(): {}})
            } else {
                Value::Object(endpoints.into_iter().map(|(v, name)| (name, v)).collect())
            },
        },
    })
}
