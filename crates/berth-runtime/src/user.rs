//! `USER` / `-u` resolved as Docker does, in the container's own /etc/passwd and
//! /etc/group (never the host's).

use std::path::Path;

use crate::command::resolve_in_root;
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn read_in_root(root: &Path, file: &str) -> String {
    resolve_in_root(root, file)
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

fn passwd(root: &Path) -> Vec<PasswdEntry> {
    read_in_root(root, "/etc/passwd")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 7).then(|| PasswdEntry {
                name: f[0].to_string(),
                uid: f[2].parse().unwrap_or(u32::MAX),
                gid: f[3].parse().unwrap_or(u32::MAX),
                home: f[5].to_string(),
            })
        })
        .filter(|e| e.uid != u32::MAX && e.gid != u32::MAX)
        .collect()
}

fn groups(root: &Path) -> Vec<GroupEntry> {
    read_in_root(root, "/etc/group")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4).then(|| GroupEntry {
                name: f[0].to_string(),
                gid: f[2].parse().unwrap_or(u32::MAX),
                members: f[3]
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .filter(|g| g.gid != u32::MAX)
        .collect()
}

/// Resolves `spec` (`""`, `name`, `uid`, `name:group`, `uid:gid`, …) in the root
/// filesystem at `root`. A numeric user that is not in /etc/passwd is allowed,
/// as in Docker, with group 0 and home `/`.
pub fn resolve(root: &Path, spec: &str) -> Result<User> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let users = passwd(root);
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = users.iter().find(|e| e.name == user_part).or_else(|| {
        user_part
            .parse::<u32>()
            .ok()
            .and_then(|uid| users.iter().find(|e| e.uid == uid))
    });
    let (uid, mut gid, home, name) = match (entry, user_part.parse::<u32>()) {
        (Some(e), _) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        (None, Ok(uid)) => (uid, 0, "/".to_string(), None),
        (None, Err(_)) => return Err(Error::NoSuchUser(user_part.to_string())),
    };
    let all_groups = groups(root);
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = match all_groups.iter().find(|e| e.name == g) {
            Some(e) => e.gid,
            None => g
                .parse::<u32>()
                .map_err(|_| Error::NoSuchGroup(g.to_string()))?,
        };
    }
    // Supplementary groups: those that list the user by name (only when the
    // group was not given explicitly, as Docker does).
    let mut additional_gids: Vec<u32> = match (&name, group_part) {
        (Some(n), None) => all_groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == n))
            .map(|g| g.gid)
            .filter(|g| *g != gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.dedup();
    Ok(User {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() { "/".into() } else { home },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("etc")).unwrap();
        std::fs::write(
            d.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            d.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nstaff:x:50:app\n",
        )
        .unwrap();
        d
    }

    #[test]
    fn resolves_like_docker() {
        let r = root();
        assert_eq!(resolve(r.path(), "").unwrap().uid, 0);
        let app = resolve(r.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![50])
        );
        assert_eq!(app.home, "/home/app");
        let u = resolve(r.path(), "1000:staff").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 50));
        let u = resolve(r.path(), "4242:4242").unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 4242, "/"));
        assert!(matches!(
            resolve(r.path(), "nosuch"),
            Err(Error::NoSuchUser(_))
        ));
        assert!(matches!(
            resolve(r.path(), "app:nogroup"),
            Err(Error::NoSuchGroup(_))
        ));
    }
}
