//! How berth talks TLS to a registry, as Docker decides it:
//! - a registry on a loopback address (127.0.0.0/8, ::1, `localhost`), one
//!   listed as insecure, or any with `--tls-verify=false` is *insecure*: HTTPS
//!   without certificate checks is tried first, then plain HTTP;
//! - every other registry is HTTPS with verification against the system's CA
//!   bundle plus `/etc/docker/certs.d/<host[:port]>/*.crt`, and a client
//!   certificate from `*.cert` with its `*.key` there.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

use crate::error::{Error, Result};

/// Where Docker looks for per-registry certificates.
pub const DEFAULT_CERTS_DIR: &str = "/etc/docker/certs.d";

/// The system CA bundle on Debian/Ubuntu, then Fedora/RHEL, then Alpine/BSD.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Whether `registry` (`host[:port]`) is on this machine, where Docker allows
/// plain HTTP without being told.
pub fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// `host` of `host:port`, `[v6]:port` or `host`.
fn host_of(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.split(']').next().map_or(registry, |h| &h[1..]);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    }
}

/// Whether `registry` matches an `insecure-registries` entry: a host[:port] or
/// an IPv4 CIDR (`10.0.0.0/8`), as in Docker's daemon.json.
pub fn is_listed_insecure(registry: &str, list: &[String]) -> bool {
    let host = host_of(registry);
    list.iter().any(|entry| {
        if entry == registry || entry == host {
            return true;
        }
        let Some((net, bits)) = entry.split_once('/') else {
            return false;
        };
        match (
            net.parse::<std::net::Ipv4Addr>(),
            bits.parse::<u32>(),
            host.parse::<std::net::Ipv4Addr>(),
        ) {
            (Ok(net), Ok(bits), Ok(ip)) if bits <= 32 => {
                let mask = if bits == 0 {
                    0
                } else {
                    u32::MAX << (32 - bits)
                };
                u32::from(net) & mask == u32::from(ip) & mask
            }
            _ => false,
        }
    })
}

/// `insecure-registries` from Docker's daemon.json, which users of a daemonless
/// engine still keep there; missing or unreadable means none.
pub fn docker_insecure_registries(daemon_json: &Path) -> Vec<String> {
    std::fs::read(daemon_json)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.get("insecure-registries")?.as_array().map(|a| {
                a.iter()
                    .filter_map(|e| e.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// The certificates `certs.d/<registry>/` holds.
#[derive(Default)]
pub struct RegistryCerts {
    /// Extra trusted roots (`*.crt`).
    pub roots: Vec<Certificate<'static>>,
    /// A client certificate chain and key (`*.cert` + `*.key`).
    pub client: Option<ClientCert>,
}

/// Reads `certs_dir/<registry>/` as Docker does; a missing directory is empty.
pub fn load_registry_certs(certs_dir: &Path, registry: &str) -> Result<RegistryCerts> {
    let dir = certs_dir.join(registry);
    let mut out = RegistryCerts::default();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(cert_error(registry, &dir, e.to_string())),
    };
    let mut names: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    names.sort();
    for path in names {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".crt") {
            out.roots.extend(read_pem_certs(registry, &path)?);
        } else if let Some(stem) = name.strip_suffix(".cert") {
            let key_path = path.with_file_name(format!("{stem}.key"));
            let chain = read_pem_certs(registry, &path)?;
            let key_pem = std::fs::read(&key_path).map_err(|e| {
                cert_error(
                    registry,
                    &dir,
                    format!("client certificate {name} needs its key {stem}.key: {e}"),
                )
            })?;
            let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
                cert_error(registry, &dir, format!("{stem}.key is not a PEM key: {e}"))
            })?;
            out.client = Some(ClientCert::new_with_certs(&chain, key));
        } else if let Some(stem) = name.strip_suffix(".key") {
            if !path.with_file_name(format!("{stem}.cert")).exists() {
                return Err(cert_error(
                    registry,
                    &dir,
                    format!("key {name} has no client certificate {stem}.cert"),
                ));
            }
        }
    }
    Ok(out)
}

fn read_pem_certs(registry: &str, path: &Path) -> Result<Vec<Certificate<'static>>> {
    let dir = path.parent().unwrap_or(path);
    let pem = std::fs::read(path).map_err(|e| cert_error(registry, dir, e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(cert_error(
                    registry,
                    dir,
                    format!("{}: {e}", path.display()),
                ))
            }
        }
    }
    if certs.is_empty() {
        return Err(cert_error(
            registry,
            dir,
            format!("{} holds no PEM certificate", path.display()),
        ));
    }
    Ok(certs)
}

fn cert_error(registry: &str, dir: &Path, reason: String) -> Error {
    Error::Certificates {
        registry: registry.to_string(),
        dir: dir.to_path_buf(),
        reason,
    }
}

/// The TLS settings for one registry. `verify` false skips certificate checks
/// (insecure registries); otherwise the system roots plus `certs` are trusted.
pub fn tls_config(certs: RegistryCerts, verify: bool) -> TlsConfig {
    let mut b = TlsConfig::builder().client_cert(certs.client);
    if !verify {
        return b.disable_verification(true).build();
    }
    let mut roots = certs.roots;
    let bundle = SYSTEM_CA_BUNDLES.iter().find_map(|p| std::fs::read(p).ok());
    if let Some(bundle) = &bundle {
        roots.extend(ureq::tls::parse_pem(bundle).filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        }));
    }
    b = if roots.is_empty() {
        // No system bundle and no certs.d roots: Mozilla's, compiled in.
        b.root_certs(RootCerts::WebPki)
    } else {
        b.root_certs(RootCerts::new_with_certs(&roots))
    };
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for r in [
            "127.0.0.1:5000",
            "127.1.2.3",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["docker.io", "10.0.0.1:5000", "reg.example:443", "[::2]:1"] {
            assert!(!is_loopback(r), "{r}");
        }
    }

    #[test]
    fn insecure_lists_match_hosts_and_cidrs() {
        let list = vec!["reg.lan:5000".to_string(), "10.1.0.0/16".to_string()];
        assert!(is_listed_insecure("reg.lan:5000", &list));
        assert!(!is_listed_insecure("reg.lan:5001", &list));
        assert!(is_listed_insecure("10.1.2.3:5000", &list));
        assert!(!is_listed_insecure("10.2.0.1:5000", &list));
    }

    /// A throwaway self-signed EC certificate and its key (test fixture).
    const TEST_CERT: &str = "-----BEGIN CERTIFICATE-----
MIIBiDCCAS2gAwIBAgIURJ6+nGnCYst8fk/MkinEri9s4PAwCgYIKoZIzj0EAwIw
GDEWMBQGA1UEAwwNYmVydGgtdGVzdC1jYTAgFw0yNjExMjkxMjM3MzBaGA8yMTI2
MTEwNTEyMzczMFowGDEWMBQGA1UEAwwNYmVydGgtdGVzdC1jYTBZMBMGByqGSM49
AgEGCCqGSM49AwEHA0IABEqCKjocFM3OEI1wvEV2zBOAhUa9XcSDvmpQmagVF8wI
cFW750cdU14A9mg5XnKrPiKRBU+OUvETMSABCgJgOTejUzBRMB0GA1UdDgQWBBTR
14hXqjG68biUx35+5upXhgFE/jAfBgNVHSMEGDAWgBTR14hXqjG68biUx35+5upX
hgFE/jAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kAMEYCIQDzTZe66Dhp
5NMRaeghGc8gwiD8XUMzy1Nd+rk4LgsBRAIhAL0fg5xTgfGiKOHor7H7OmxrB64r
wXlT1AyRCwY7rZ/0
-----END CERTIFICATE-----
";
    const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg0PRR0dQOFowG2o/4
ftAEv7j0X/VD3inBCDAM9jnTwPqhRANCAARKgio6HBTNzhCNcLxFdswTgIVGvV3E
g75qUJmoFRfMCHBVu+dHHVNeAPZoOV5yqz4ikQVPjlLxEzEgAQoCYDk3
-----END PRIVATE KEY-----
";

    #[test]
    fn certs_d_gives_roots_and_client_certificates() {
        let dir = tempfile::tempdir().unwrap();
        let reg = dir.path().join("reg.example:5000");
        std::fs::create_dir(&reg).unwrap();
        std::fs::write(reg.join("ca.crt"), TEST_CERT).unwrap();
        std::fs::write(reg.join("client.cert"), TEST_CERT).unwrap();
        std::fs::write(reg.join("client.key"), TEST_KEY).unwrap();
        let certs = load_registry_certs(dir.path(), "reg.example:5000").unwrap();
        assert_eq!(certs.roots.len(), 1);
        assert!(certs.client.is_some());
        // Another registry's directory is not read.
        assert!(load_registry_certs(dir.path(), "reg.example:5001")
            .unwrap()
            .roots
            .is_empty());
        let config = tls_config(certs, true);
        assert!(config.client_cert().is_some());
        assert!(matches!(config.root_certs(), RootCerts::Specific(r) if !r.is_empty()));
    }

    #[test]
    fn certs_d_needs_pairs_and_pem() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_registry_certs(dir.path(), "reg:5000")
            .unwrap()
            .roots
            .is_empty());
        let reg = dir.path().join("reg:5000");
        std::fs::create_dir(&reg).unwrap();
        std::fs::write(reg.join("ca.crt"), "not pem").unwrap();
        let e = load_registry_certs(dir.path(), "reg:5000")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no PEM certificate"), "{e}");
        std::fs::remove_file(reg.join("ca.crt")).unwrap();
        std::fs::write(reg.join("client.key"), "x").unwrap();
        let e = load_registry_certs(dir.path(), "reg:5000")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no client certificate client.cert"), "{e}");
    }
}
