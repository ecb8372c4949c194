//! Published ports: `-p`/`-P` read as Docker reads them, and the bindings a
//! container actually got (a port of 0 means "any free port").

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One published port: host address and port -> container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortBinding {
    pub host_ip: String,
    /// 0 until bound: then the port the proxy got.
    pub host_port: u16,
    pub container_port: u16,
    /// "tcp" or "udp".
    pub proto: String,
}

impl PortBinding {
    /// `80/tcp`
    pub fn container_key(&self) -> String {
        format!("{}/{}", self.container_port, self.proto)
    }

    /// Docker's PORTS column entry: `0.0.0.0:8080->80/tcp`.
    pub fn display(&self) -> String {
        format!(
            "{}:{}->{}/{}",
            self.host_ip, self.host_port, self.container_port, self.proto
        )
    }
}

fn bad(spec: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "invalid publish spec {spec:?}: {why}; use [HOSTIP:][HOSTPORT:]CONTAINERPORT[/tcp|/udp]"
    ))
}

fn range(spec: &str, s: &str) -> Result<(u16, u16)> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u16 = a
        .parse()
        .map_err(|_| bad(spec, &format!("{s:?} is not a port")))?;
    let b: u16 = b
        .parse()
        .map_err(|_| bad(spec, &format!("{s:?} is not a port")))?;
    if b < a {
        return Err(bad(spec, "a range must go up"));
    }
    Ok((a, b))
}

/// `-p [HOSTIP:][HOSTPORT:]CONTAINERPORT[/PROTO]`, ranges allowed
/// (`8000-8002:80-82`). An empty host port is any free port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortBinding>> {
    let (main, proto) = match spec.rsplit_once('/') {
        Some((m, p)) => (m, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if proto != "tcp" && proto != "udp" {
        return Err(bad(spec, &format!("unknown protocol {proto:?}")));
    }
    // An IPv6 host address is written in brackets.
    let (ip, rest) = if let Some(r) = main.strip_prefix('[') {
        let (ip, rest) = r
            .split_once("]:")
            .ok_or_else(|| bad(spec, "unclosed IPv6 address"))?;
        (ip.to_string(), rest.to_string())
    } else {
        let parts: Vec<&str> = main.split(':').collect();
        match parts.as_slice() {
            [c] => (String::new(), format!(":{c}")),
            [h, c] => (String::new(), format!("{h}:{c}")),
            [ip, h, c] => (ip.to_string(), format!("{h}:{c}")),
            _ => return Err(bad(spec, "too many colons")),
        }
    };
    let (host, container) = rest.split_once(':').expect("built with a colon");
    let (c0, c1) = range(spec, container)?;
    if c0 == 0 {
        return Err(bad(spec, "the container port must not be 0"));
    }
    let hosts: Option<(u16, u16)> = if host.is_empty() {
        None
    } else {
        Some(range(spec, host)?)
    };
    if let Some((h0, h1)) = hosts {
        if h1 - h0 != c1 - c0 && h0 != h1 {
            return Err(bad(spec, "the host and container ranges differ in size"));
        }
    }
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(spec, &format!("{ip:?} is not an IP address")));
    }
    let host_ip = if ip.is_empty() {
        "0.0.0.0".to_string()
    } else {
        ip
    };
    Ok((c0..=c1)
        .enumerate()
        .map(|(i, cp)| PortBinding {
            host_ip: host_ip.clone(),
            host_port: hosts.map_or(0, |(h0, h1)| if h0 == h1 { h0 } else { h0 + i as u16 }),
            container_port: cp,
            proto: proto.clone(),
        })
        .collect())
}

/// `-P`: every EXPOSEd port of the image to a free host port.
pub fn publish_all(exposed: &BTreeMap<String, serde_json::Value>) -> Result<Vec<PortBinding>> {
    let mut out = Vec::new();
    for key in exposed.keys() {
        let (port, proto) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        out.extend(parse_publish(&format!("{port}/{proto}"))?);
    }
    Ok(out)
}

const PORTS_FILE: &str = "ports.json";

/// The bindings a running container got, as its monitor recorded them.
pub fn read_bound(container_dir: &Path) -> Vec<PortBinding> {
    std::fs::read(container_dir.join(PORTS_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write_bound(container_dir: &Path, bindings: &[PortBinding]) -> Result<()> {
    berth_fs::write_atomic(
        &container_dir.join(PORTS_FILE),
        &serde_json::to_vec(bindings).expect("json"),
    )?;
    Ok(())
}

pub fn clear_bound(container_dir: &Path) {
    let _ = std::fs::remove_file(container_dir.join(PORTS_FILE));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> PortBinding {
        let v = parse_publish(s).unwrap();
        assert_eq!(v.len(), 1);
        v[0].clone()
    }

    #[test]
    fn publish_specs_parse_like_docker() {
        assert_eq!(one("8080:80").display(), "0.0.0.0:8080->80/tcp");
        assert_eq!(one("127.0.0.1:8080:80").display(), "127.0.0.1:8080->80/tcp");
        assert_eq!(one("80").host_port, 0);
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        assert_eq!(one("53:53/udp").proto, "udp");
        assert_eq!(one("[::1]:8080:80").host_ip, "::1");
        let r = parse_publish("8000-8002:80-82").unwrap();
        assert_eq!(
            r.iter()
                .map(|b| (b.host_port, b.container_port))
                .collect::<Vec<_>>(),
            [(8000, 80), (8001, 81), (8002, 82)]
        );
        assert!(parse_publish("8080:80/sctp").is_err());
        assert!(parse_publish("a:b").is_err());
        assert!(parse_publish("1:2:3:4").is_err());
        assert!(parse_publish("8000-8001:80-83").is_err());
        assert!(parse_publish("nothost:80:80").is_err());
    }
}
