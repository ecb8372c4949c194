//! The state of a stage while it is built: the image config so far, the
//! layers under it, and the ARGs in scope; and the instructions that only
//! change the config.

use std::collections::BTreeMap;

use berth_dockerfile::instructions::{HealthcheckConfig, KeyValue};
use berth_dockerfile::shell::Envs;
use berth_oci::{ContainerConfig, Digest, History, ImageConfig};
use serde_json::Value;

/// Build args every stage sees without declaring them, and that are kept
/// out of the image history and cache keys (Docker's proxy variables).
pub const PROXY_ARGS: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

#[derive(Debug, Clone)]
pub struct StageState {
    pub config: ImageConfig,
    /// Chain IDs of the layers, bottom first (parallel to `config.rootfs.diff_ids`).
    pub chain: Vec<Digest>,
    /// ARGs declared in this stage that have a value.
    pub args: Envs,
    /// The time recorded for the last step, used for the history entries
    /// that follow it, so a cached rebuild writes the same config.
    pub last_created: Option<String>,
    /// A CMD was set in this stage (an ENTRYPOINT then keeps it).
    pub cmd_set: bool,
    /// How many of `chain`'s layers (the lowest) come from the base image
    /// rather than from this Dockerfile's steps.
    pub base_layers: usize,
}

impl StageState {
    /// A stage on `base` (a config of an image or an earlier stage).
    pub fn new(mut base: ImageConfig, chain: Vec<Digest>) -> Self {
        let last_created = base.created.clone();
        // PATH is always set, as BuildKit makes sure.
        let cc = base.config.get_or_insert_with(Default::default);
        let env = cc.env.get_or_insert_with(Vec::new);
        if !env.iter().any(|e| e.starts_with("PATH=")) {
            env.push(format!("PATH={}", berth_runtime::command::DEFAULT_PATH));
        }
        Self {
            config: base,
            base_layers: chain.len(),
            chain,
            args: Envs::new(),
            last_created,
            cmd_set: false,
        }
    }

    pub fn scratch() -> Self {
        let config = ImageConfig {
            architecture: berth_oci::host_architecture().into(),
            os: "linux".into(),
            rootfs: berth_oci::RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            },
            config: Some(ContainerConfig::default()),
            ..Default::default()
        };
        Self::new(config, Vec::new())
    }

    pub fn top(&self) -> Option<&Digest> {
        self.chain.last()
    }

    pub fn cc(&mut self) -> &mut ContainerConfig {
        self.config.config.get_or_insert_with(Default::default)
    }

    pub fn env(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.env.clone())
            .unwrap_or_default()
    }

    /// The variables `$X` expands to: ARGs, overridden by ENV (Docker's rule).
    pub fn expansion_env(&self) -> Envs {
        let mut envs = self.args.clone();
        for e in self.env() {
            let (k, v) = e.split_once('=').unwrap_or((&e, ""));
            envs.set(k, v);
        }
        envs
    }

    /// The environment of a RUN: ENV, then the ARGs ENV does not set.
    pub fn run_env(&self) -> Vec<String> {
        let mut env = self.env();
        let set: Vec<String> = env
            .iter()
            .map(|e| e.split_once('=').map_or(e.clone(), |(k, _)| k.to_string()))
            .collect();
        for e in self.args.to_vec() {
            let k = e.split_once('=').map_or(e.as_str(), |(k, _)| k);
            if !set.iter().any(|s| s == k) {
                env.push(e);
            }
        }
        env
    }

    pub fn user(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.user.clone())
            .unwrap_or_default()
    }

    pub fn workdir(&self) -> String {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.working_dir.clone())
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into())
    }

    pub fn shell(&self) -> Vec<String> {
        self.config
            .config
            .as_ref()
            .and_then(|c| c.shell.clone())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// Records a step that changed the config only.
    pub fn history_empty(&mut self, created_by: String) {
        self.config.history.push(History {
            created: self.last_created.clone(),
            created_by: Some(created_by),
            comment: Some("berth build".into()),
            empty_layer: true,
            author: None,
        });
    }

    /// Records a step that ran (or came from the cache): its layer, if it
    /// made one (a `diff_id`; `chain` is then the snapshot it made), and its
    /// history entry.
    pub fn push_step(
        &mut self,
        chain: Option<Digest>,
        diff_id: Option<Digest>,
        created: String,
        created_by: String,
    ) {
        let empty = diff_id.is_none();
        if let (Some(c), Some(d)) = (chain, diff_id) {
            self.chain.push(c);
            self.config.rootfs.diff_ids.push(d);
        }
        self.last_created = Some(created.clone());
        self.config.history.push(History {
            created: Some(created),
            created_by: Some(created_by),
            comment: Some("berth build".into()),
            empty_layer: empty,
            author: None,
        });
    }
}

/// `ENV` / `LABEL` pairs applied to an ordered `K=V` list.
pub fn set_env(env: &mut Vec<String>, pairs: &[KeyValue]) {
    for kv in pairs {
        let entry = format!("{}={}", kv.key, kv.value);
        match env
            .iter_mut()
            .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == kv.key)
        {
            Some(slot) => *slot = entry,
            None => env.push(entry),
        }
    }
}

pub fn set_labels(labels: &mut BTreeMap<String, String>, pairs: &[KeyValue]) {
    for kv in pairs {
        labels.insert(kv.key.clone(), kv.value.clone());
    }
}

/// `EXPOSE 80 53/udp 8000-8002`: Docker's port set, protocol defaulting to tcp.
pub fn exposed_ports(specs: &[String]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for spec in specs {
        let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
        let proto = proto.to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(format!("invalid proto: {proto}"));
        }
        let (lo, hi) = ports.split_once('-').unwrap_or((ports, ports));
        let parse = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("invalid containerPort: {ports}"))
        };
        let (lo, hi) = (parse(lo)?, parse(hi)?);
        if hi < lo {
            return Err(format!(
                "invalid range specified for containerPort: {ports}"
            ));
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// Docker's `Healthcheck` config object; `NONE` disables an inherited one.
pub fn healthcheck_value(h: &HealthcheckConfig) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("Test".into(), Value::from(h.test.clone()));
    let mut dur = |k: &str, d: std::time::Duration| {
        if !d.is_zero() {
            m.insert(k.into(), Value::from(d.as_nanos() as u64));
        }
    };
    dur("Interval", h.interval);
    dur("Timeout", h.timeout);
    dur("StartPeriod", h.start_period);
    dur("StartInterval", h.start_interval);
    if h.retries != 0 {
        m.insert("Retries".into(), Value::from(h.retries));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expose_ranges_and_protocols() {
        let ports = exposed_ports(&["80".into(), "53/UDP".into(), "8000-8001".into()]).unwrap();
        assert_eq!(ports, ["80/tcp", "53/udp", "8000/tcp", "8001/tcp"]);
        assert!(exposed_ports(&["x".into()]).is_err());
    }

    #[test]
    fn env_replaces_in_place() {
        let mut env = vec!["A=1".to_string(), "B=2".to_string()];
        set_env(
            &mut env,
            &[KeyValue {
                key: "A".into(),
                value: "3".into(),
                no_delim: false,
            }],
        );
        assert_eq!(env, ["A=3", "B=2"]);
    }
}
