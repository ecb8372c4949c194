//! Networks: named bridges with an address range, and the containers attached
//! to them with their addresses. Addresses are allocated in the same
//! transaction that attaches a container, so two containers never share one.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use rusqlite::{params, OptionalExtension, Row, TransactionBehavior};

use crate::error::{Error, Result};
use crate::Store;

#[derive(Debug, Clone)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnet: String,
    pub gateway: String,
    pub internal: bool,
    pub labels: BTreeMap<String, String>,
    pub created: String,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub network_id: String,
    pub container_id: String,
    pub ip: String,
    pub aliases: Vec<String>,
    pub position: i64,
}

const COLUMNS: &str = "id, name, driver, subnet, gateway, internal, labels, created";

fn from_row(r: &Row<'_>) -> rusqlite::Result<NetworkRecord> {
    let labels: String = r.get(6)?;
    Ok(NetworkRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        driver: r.get(2)?,
        subnet: r.get(3)?,
        gateway: r.get(4)?,
        internal: r.get::<_, i64>(5)? != 0,
        labels: serde_json::from_str(&labels).unwrap_or_default(),
        created: r.get(7)?,
    })
}

fn endpoint_row(r: &Row<'_>) -> rusqlite::Result<Endpoint> {
    let aliases: String = r.get(3)?;
    Ok(Endpoint {
        network_id: r.get(0)?,
        container_id: r.get(1)?,
        ip: r.get(2)?,
        aliases: serde_json::from_str(&aliases).unwrap_or_default(),
        position: r.get(4)?,
    })
}

/// Parses `a.b.c.d/len` into (network address, prefix length).
pub fn parse_subnet(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (ip, len) = s.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u8 = len.parse().ok()?;
    if !(8..=30).contains(&len) {
        return None;
    }
    let mask = u32::MAX << (32 - len);
    Some((Ipv4Addr::from(u32::from(ip) & mask), len))
}

impl Store {
    pub fn create_network(&mut self, n: &NetworkRecord) -> Result<()> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let taken: Option<String> = tx
            .query_row("SELECT id FROM networks WHERE name = ?1", [&n.name], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_some() {
            return Err(Error::NetworkExists(n.name.clone()));
        }
        tx.execute(
            &format!("INSERT INTO networks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"),
            params![
                n.id,
                n.name,
                n.driver,
                n.subnet,
                n.gateway,
                n.internal as i64,
                serde_json::to_string(&n.labels).expect("json"),
                n.created
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    pub fn networks(&self) -> Result<Vec<NetworkRecord>> {
        let mut stmt = self
            .db
            .prepare(&format!("SELECT {COLUMNS} FROM networks ORDER BY name"))?;
        let rows = stmt.query_map([], from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// By name, full ID or unique ID prefix.
    pub fn network(&self, query: &str) -> Result<NetworkRecord> {
        let all = self.networks()?;
        if let Some(n) = all.iter().find(|n| n.name == query || n.id == query) {
            return Ok(n.clone());
        }
        let matches: Vec<&NetworkRecord> = all
            .iter()
            .filter(|n| !query.is_empty() && n.id.starts_with(query))
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::NoSuchNetwork(query.to_string())),
            _ => Err(Error::AmbiguousId(query.to_string())),
        }
    }

    pub fn delete_network(&mut self, id: &str) -> Result<()> {
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let users: Vec<String> = {
            let mut stmt =
                tx.prepare("SELECT container_id FROM network_endpoints WHERE network_id = ?1")?;
            let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !users.is_empty() {
            return Err(Error::NetworkInUse(users));
        }
        tx.execute("DELETE FROM networks WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(())
    }

    /// Subnets already in use, to pick a free one for a new network.
    pub fn network_subnets(&self) -> Result<Vec<String>> {
        Ok(self.networks()?.into_iter().map(|n| n.subnet).collect())
    }

    /// Attaches a container, giving it the lowest free address (after the
    /// gateway) or the one asked for.
    pub fn attach_network(
        &mut self,
        network: &NetworkRecord,
        container_id: &str,
        aliases: &[String],
        ip: Option<Ipv4Addr>,
    ) -> Result<Endpoint> {
        let (base, len) = parse_subnet(&network.subnet).ok_or_else(|| {
            Error::Corrupt(format!(
                "bad subnet {} of network {}",
                network.subnet, network.name
            ))
        })?;
        let tx = self
            .db
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM network_endpoints WHERE network_id = ?1 AND container_id = ?2",
                [&network.id, container_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if exists {
            return Err(Error::AlreadyAttached(network.name.clone()));
        }
        let used: Vec<String> = {
            let mut stmt = tx.prepare("SELECT ip FROM network_endpoints WHERE network_id = ?1")?;
            let rows = stmt.query_map([&network.id], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let size = 1u32 << (32 - len);
        let first = u32::from(base);
        let chosen = match ip {
            Some(ip) => {
                let v = u32::from(ip);
                if v <= first + 1 || v >= first + size - 1 || used.contains(&ip.to_string()) {
                    return Err(Error::AddressUnavailable(
                        ip.to_string(),
                        network.name.clone(),
                    ));
                }
                ip
            }
            None => (first + 2..first + size - 1)
                .map(Ipv4Addr::from)
                .find(|a| !used.contains(&a.to_string()))
                .ok_or_else(|| Error::AddressUnavailable("any".into(), network.name.clone()))?,
        };
        let position: i64 = tx.query_row(
            "SELECT COALESCE(MAX(position) + 1, 0) FROM network_endpoints WHERE container_id = ?1",
            [container_id],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO network_endpoints (network_id, container_id, ip, aliases, position) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![network.id, container_id, chosen.to_string(), serde_json::to_string(aliases).expect("json"), position],
        )?;
        tx.commit()?;
        Ok(Endpoint {
            network_id: network.id.clone(),
            container_id: container_id.to_string(),
            ip: chosen.to_string(),
            aliases: aliases.to_vec(),
            position,
        })
    }

    pub fn detach_network(&mut self, network_id: &str, container_id: &str) -> Result<bool> {
        let n = self.db.execute(
            "DELETE FROM network_endpoints WHERE network_id = ?1 AND container_id = ?2",
            [network_id, container_id],
        )?;
        Ok(n > 0)
    }

    /// The endpoints of a container, in attach order.
    pub fn container_endpoints(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        let mut stmt = self.db.prepare(
            "SELECT network_id, container_id, ip, aliases, position FROM network_endpoints
             WHERE container_id = ?1 ORDER BY position",
        )?;
        let rows = stmt.query_map([container_id], endpoint_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The endpoints on a network.
    pub fn network_endpoints(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        let mut stmt = self.db.prepare(
            "SELECT network_id, container_id, ip, aliases, position FROM network_endpoints
             WHERE network_id = ?1 ORDER BY ip",
        )?;
        let rows = stmt.query_map([network_id], endpoint_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn subnets_parse() {
        assert_eq!(
            super::parse_subnet("172.18.5.9/16").unwrap().0.to_string(),
            "172.18.0.0"
        );
        assert!(super::parse_subnet("172.18.0.0/4").is_none());
        assert!(super::parse_subnet("nope").is_none());
    }
}
