//! What a container was created with, stored as JSON in the container record.
//! The field names follow Docker's Config and HostConfig so `inspect` can show
//! them as Docker does.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    pub hostname: String,
    pub user: String,
    pub tty: bool,
    pub open_stdin: bool,
    pub env: Vec<String>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub exposed_ports: BTreeMap<String, serde_json::Value>,
    pub volumes: BTreeMap<String, serde_json::Value>,
    pub host_config: HostConfig,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub network_mode: String,
    pub restart_policy: RestartPolicy,
    pub auto_remove: bool,
    pub privileged: bool,
    pub read_only_rootfs: bool,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub security_opt: Vec<String>,
    /// Bytes; 0 is unlimited.
    pub memory: i64,
    /// Billionths of a CPU; 0 is unlimited.
    pub nano_cpus: i64,
    /// 0 or negative is unlimited.
    pub pids_limit: i64,
    /// Mount point -> options (`size=64m,mode=1777`).
    pub tmpfs: BTreeMap<String, String>,
    pub init: bool,
    /// Binds, volumes and tmpfs mounts, as `-v`, `--mount`, `--tmpfs`,
    /// `--volumes-from` and the image's VOLUMEs asked for them.
    #[serde(default)]
    pub mounts: Vec<MountSpec>,
    /// `-p`/`-P`, with host port 0 for "any free port".
    #[serde(default)]
    pub port_bindings: Vec<crate::ports::PortBinding>,
    /// `--add-host NAME:IP`.
    #[serde(default)]
    pub extra_hosts: Vec<String>,
    /// `--dns`: nameservers for /etc/resolv.conf.
    #[serde(default)]
    pub dns: Vec<String>,
}

/// One mount of a container (Docker's `mount.Mount`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MountSpec {
    /// "bind", "volume" or "tmpfs".
    #[serde(rename = "Type")]
    pub kind: String,
    /// The host path of a bind, the name of a volume; empty for tmpfs.
    pub source: String,
    pub target: String,
    pub read_only: bool,
    /// For volumes: do not fill a new, empty volume from the image.
    #[serde(default)]
    pub no_copy: bool,
    /// Bind propagation (rprivate when empty), or tmpfs options.
    #[serde(default)]
    pub options: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct RestartPolicy {
    /// "no", "on-failure", "always" or "unless-stopped" ("" means "no").
    pub name: String,
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// `--restart no|on-failure[:N]|always|unless-stopped`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (name, count) = match s.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (s, None),
        };
        let max = match count {
            None => 0,
            Some(c) => c.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                format!("invalid restart policy count {c:?}: use a number, e.g. on-failure:3")
            })?,
        };
        match name {
            "no" | "always" | "unless-stopped" if count.is_some() => Err(format!(
                "invalid restart policy {s:?}: a maximum retry count can only be used with on-failure"
            )),
            "no" | "" | "always" | "unless-stopped" | "on-failure" => Ok(Self {
                name: if name.is_empty() { "no".into() } else { name.into() },
                maximum_retry_count: max,
            }),
            _ => Err(format!(
                "invalid restart policy {s:?}: use no, on-failure[:N], always or unless-stopped"
            )),
        }
    }

    /// Whether a container that exited with `code` after `restarts` restarts
    /// should start again. A stop the user asked for is never undone.
    pub fn should_restart(&self, code: i64, restarts: i64, stop_requested: bool) -> bool {
        if stop_requested {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0 && (self.maximum_retry_count == 0 || restarts < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_like_docker() {
        assert_eq!(
            RestartPolicy::parse("on-failure:3")
                .unwrap()
                .maximum_retry_count,
            3
        );
        assert!(RestartPolicy::parse("always:3").is_err());
        assert!(RestartPolicy::parse("sometimes").is_err());
        let p = RestartPolicy::parse("on-failure:2").unwrap();
        assert!(p.should_restart(1, 1, false));
        assert!(!p.should_restart(1, 2, false));
        assert!(!p.should_restart(0, 0, false));
        assert!(!RestartPolicy::parse("always")
            .unwrap()
            .should_restart(0, 9, true));
    }
}
