//! The files Docker writes for every container and bind-mounts over the
//! image's: /etc/hostname, /etc/hosts, /etc/resolv.conf.

use std::path::{Path, PathBuf};

use berth_fs::write_atomic_mode;

/// /etc/hosts, /etc/hostname and /etc/resolv.conf are readable by every
/// user of the container, as Docker makes them.
const ETC_MODE: u32 = 0o644;

fn write_atomic(dest: &std::path::Path, data: &[u8]) -> Result<()> {
    Ok(write_atomic_mode(dest, data, ETC_MODE)?)
}

use crate::error::Result;

pub struct EtcFiles {
    pub hostname: PathBuf,
    pub hosts: PathBuf,
    pub resolv_conf: PathBuf,
}

/// Writes the three files into `dir`. With the host network the host's own
/// hosts file and resolver are used, as Docker does.
pub fn write_etc_files(
    dir: &Path,
    hostname: &str,
    host_network: bool,
    dns: &[String],
) -> Result<EtcFiles> {
    let files = EtcFiles {
        hostname: dir.join("hostname"),
        hosts: dir.join("hosts"),
        resolv_conf: dir.join("resolv.conf"),
    };
    write_atomic(&files.hostname, format!("{hostname}\n").as_bytes())?;
    let hosts = if host_network {
        std::fs::read_to_string("/etc/hosts").unwrap_or_default()
    } else {
        format!(
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
             fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
             ff02::2\tip6-allrouters\n127.0.1.1\t{hostname}\n"
        )
    };
    write_atomic(&files.hosts, hosts.as_bytes())?;
    let host_resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let resolv = if dns.is_empty() {
        resolv_conf(&host_resolv, host_network)
    } else {
        // `--dns` replaces the nameservers, keeping the host's search domains.
        let mut s: String = dns.iter().map(|d| format!("nameserver {d}\n")).collect();
        s.extend(
            host_resolv
                .lines()
                .filter(|l| l.starts_with("search") || l.starts_with("options"))
                .map(|l| format!("{l}\n")),
        );
        s
    };
    write_atomic(&files.resolv_conf, resolv.as_bytes())?;
    Ok(files)
}

/// The host's resolver configuration; in a private network namespace its
/// loopback nameservers cannot answer, so they are dropped (as Docker does).
fn resolv_conf(host: &str, host_network: bool) -> String {
    if host_network {
        return host.to_string();
    }
    host.lines()
        .filter(|l| {
            let mut w = l.split_whitespace();
            !(w.next() == Some("nameserver")
                && w.next()
                    .is_some_and(|a| a.starts_with("127.") || a == "::1"))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn drops_loopback_nameservers_in_private_networks() {
        let host = "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\n";
        assert_eq!(
            super::resolv_conf(host, false),
            "nameserver 10.0.0.2\nsearch lan\n"
        );
        assert_eq!(super::resolv_conf(host, true), host);
    }
}
