//! Bridge networks, each inside a network namespace berth makes for it: a
//! bridge `br0` holding the network's gateway address, and per container a veth
//! pair from the container's namespace to the bridge. Nothing is connected to
//! the host's own interfaces, so container traffic never leaves the namespaces
//! berth made. Names resolve through each container's /etc/hosts, which berth
//! keeps current as containers join and leave.
//!
//! Links are set up with iproute2's `ip` run inside the namespaces (through
//! `nsenter`), which keeps berth free of a netlink implementation.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

const BRIDGE: &str = "br0";

fn ip_in(netns: &Path, args: &[&str]) -> Result<()> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .arg("ip")
        .args(args)
        .output()
        .map_err(|e| {
            Error::Runtime(format!(
                "cannot run ip (iproute2 and util-linux's nsenter are needed for networks): {e}"
            ))
        })?;
    if !out.status.success() {
        return Err(Error::Runtime(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The namespace of a network, in its directory.
pub fn netns_path(network_dir: &Path) -> PathBuf {
    network_dir.join("netns")
}

/// Creates the network's namespace and bridge (idempotent).
pub fn create(network_dir: &Path, gateway: &str, prefix: u8) -> Result<PathBuf> {
    fs::create_dir_all(network_dir)
        .map_err(|e| Error::Runtime(format!("create {}: {e}", network_dir.display())))?;
    // Containers starting at once all make sure the network exists.
    let _lock = berth_fs::FileLock::exclusive(&network_dir.join("lock"))?;
    let ns = crate::netns::create_at(&netns_path(network_dir))?;
    if ip_in(&ns, &["link", "show", BRIDGE]).is_err() {
        ip_in(&ns, &["link", "add", BRIDGE, "type", "bridge"])?;
        ip_in(
            &ns,
            &["addr", "add", &format!("{gateway}/{prefix}"), "dev", BRIDGE],
        )?;
        ip_in(&ns, &["link", "set", BRIDGE, "up"])?;
    }
    Ok(ns)
}

/// Removes the network's namespace (its bridge goes with it).
pub fn remove(network_dir: &Path) {
    crate::netns::release_at(&netns_path(network_dir));
    let _ = fs::remove_dir_all(network_dir);
}

/// Where `ip link set … netns NAME` finds namespaces by name.
const NAMED_NETNS_DIR: &str = "/run/netns";

/// A namespace made visible to iproute2 by name for as long as it lives.
struct NamedNetns {
    path: PathBuf,
    name: String,
}

impl NamedNetns {
    fn new(netns: &Path) -> Result<Self> {
        fs::create_dir_all(NAMED_NETNS_DIR)
            .map_err(|e| Error::Runtime(format!("create {NAMED_NETNS_DIR}: {e}")))?;
        let mut rand = [0u8; 6];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut rand))
            .map_err(|e| Error::Runtime(e.to_string()))?;
        let name = format!(
            "berth-{}",
            rand.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let path = Path::new(NAMED_NETNS_DIR).join(&name);
        fs::File::create(&path)
            .map_err(|e| Error::Runtime(format!("create {}: {e}", path.display())))?;
        if let Err(e) = rustix::mount::mount_bind(netns, &path) {
            let _ = fs::remove_file(&path);
            return Err(Error::Runtime(format!(
                "cannot name network namespace: {e}"
            )));
        }
        Ok(Self { path, name })
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.path, rustix::mount::UnmountFlags::DETACH);
        let _ = fs::remove_file(&self.path);
    }
}

/// What a container's interface on a network looks like.
pub struct Attachment<'a> {
    pub container_netns: &'a Path,
    pub network_netns: &'a Path,
    /// `eth<position>` in the container.
    pub position: i64,
    pub ip: &'a str,
    pub prefix: u8,
    pub gateway: &'a str,
    /// The first network gives the default route.
    pub default_route: bool,
}

/// Connects a container's namespace to a network's bridge.
pub fn attach(a: &Attachment<'_>) -> Result<()> {
    let iface = format!("eth{}", a.position);
    // Already attached (a restart keeps the namespace).
    if ip_in(a.container_netns, &["link", "show", &iface]).is_ok() {
        return Ok(());
    }
    let mut rand = [0u8; 4];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut rand))
        .map_err(|e| Error::Runtime(e.to_string()))?;
    let tag: String = rand.iter().map(|b| format!("{b:02x}")).collect();
    let (host_end, cont_end) = (format!("vb{tag}"), format!("vc{tag}"));
    ip_in(
        a.container_netns,
        &[
            "link", "add", &cont_end, "type", "veth", "peer", "name", &host_end,
        ],
    )?;
    {
        let named = NamedNetns::new(a.network_netns)?;
        ip_in(
            a.container_netns,
            &["link", "set", &host_end, "netns", &named.name],
        )?;
    }
    ip_in(
        a.network_netns,
        &["link", "set", &host_end, "master", BRIDGE],
    )?;
    ip_in(a.network_netns, &["link", "set", &host_end, "up"])?;
    ip_in(
        a.container_netns,
        &["link", "set", &cont_end, "name", &iface],
    )?;
    ip_in(
        a.container_netns,
        &[
            "addr",
            "add",
            &format!("{}/{}", a.ip, a.prefix),
            "dev",
            &iface,
        ],
    )?;
    ip_in(a.container_netns, &["link", "set", &iface, "up"])?;
    if a.default_route {
        ip_in(
            a.container_netns,
            &["route", "add", "default", "via", a.gateway],
        )?;
    }
    Ok(())
}

/// Disconnects: removing the container's end removes the pair.
pub fn detach(container_netns: &Path, position: i64) -> Result<()> {
    ip_in(container_netns, &["link", "del", &format!("eth{position}")])
}

/// Rewrites a container's /etc/hosts in place (it is bind-mounted, so the
/// inode must stay): the base entries, the container's own address, then its
/// peers by name and alias.
pub fn write_hosts(
    path: &Path,
    hostname: &str,
    own_ip: Option<&str>,
    peers: &[(String, Vec<String>)],
) -> Result<()> {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    match own_ip {
        Some(ip) => s.push_str(&format!("{ip}\t{hostname}\n")),
        None => s.push_str(&format!("127.0.1.1\t{hostname}\n")),
    }
    for (ip, names) in peers {
        s.push_str(&format!("{ip}\t{}\n", names.join(" ")));
    }
    // Unchanged content is not rewritten: a rewrite in place (truncate, then
    // write) can be seen half done by a process reading the file.
    if fs::read_to_string(path).is_ok_and(|old| old == s) {
        return Ok(());
    }
    fs::write(path, s).map_err(|e| Error::Runtime(format!("write {}: {e}", path.display())))
}

/// Rewrites /etc/hosts of every running container on these networks, so each
/// sees the others by container name and alias (and its extra hosts).
pub fn refresh_hosts(store: &berth_store::Store, network_ids: &[String]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for nid in network_ids {
        for ep in store.network_endpoints(nid)? {
            if seen.insert(ep.container_id.clone()) {
                write_hosts_for(store, &ep.container_id, false)?;
            }
        }
    }
    Ok(())
}

/// Rewrites one running container's /etc/hosts from its current networks.
pub fn refresh_one(store: &berth_store::Store, id: &str) -> Result<()> {
    write_hosts_for(store, id, false)
}

/// Writes a container's /etc/hosts; `starting` skips the check that it runs
/// (its monitor writes the file before the process starts, so the first name
/// lookup already finds its peers).
pub fn write_hosts_for(store: &berth_store::Store, id: &str, starting: bool) -> Result<()> {
    let Ok(c) = store.container(id) else {
        return Ok(());
    };
    if !starting && !c.status.is_active() {
        return Ok(());
    }
    let cfg: crate::ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
    let mine = store.container_endpoints(id)?;
    let mut peers: Vec<(String, Vec<String>)> = Vec::new();
    for ep in &mine {
        for other in store.network_endpoints(&ep.network_id)? {
            if other.container_id == id {
                continue;
            }
            let Ok(oc) = store.container(&other.container_id) else {
                continue;
            };
            if !oc.status.is_active() {
                continue;
            }
            let mut names = vec![oc.name.clone()];
            names.extend(other.aliases.iter().cloned());
            names.push(oc.id[..12].to_string());
            peers.push((other.ip.clone(), names));
        }
    }
    for h in &cfg.host_config.extra_hosts {
        if let Some((name, ip)) = h.split_once(':') {
            peers.push((ip.to_string(), vec![name.to_string()]));
        }
    }
    let path = store.layout().container(id).join("hosts");
    if !path.exists() {
        return Ok(());
    }
    write_hosts(
        &path,
        &cfg.hostname,
        mine.first().map(|e| e.ip.as_str()),
        &peers,
    )
}
