//! Credentials in Docker's `config.json` format, so `berth login` and
//! `docker login` share them: base64 `auths` entries, or a
//! `docker-credential-<name>` helper named by `credsStore` (all registries) or
//! `credHelpers` (per registry), spoken to with Docker's helper protocol
//! (`get`/`store`/`erase`, the server on stdin, JSON on stdout).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};

/// The key Docker files Docker Hub credentials under (a v1 index URL, for
/// historical reasons every Docker client keeps).
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a helper prints when it has nothing for a server.
const HELPER_NOT_FOUND: &str = "credentials not found";

/// The user name helpers use to mark the secret as an identity (refresh) token.
const TOKEN_USERNAME: &str = "<token>";

/// Where Docker keeps `config.json`: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn default_config_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
    PathBuf::from(home).join(".docker")
}

/// A user's credentials for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// An OAuth2 refresh token some registries hand out at login; used instead
    /// of the password to get bearer tokens.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print secrets, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// Where credentials for a registry are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// base64 in `config.json` (Docker's "stored unencrypted").
    File(PathBuf),
    /// A `docker-credential-<name>` program.
    Helper(String),
}

/// `config.json`, read once; other fields are kept as they are when it is
/// written back.
pub struct CredentialStore {
    path: PathBuf,
    json: Map<String, Value>,
}

/// The key a registry's credentials are filed under.
pub fn server_key(registry: &str) -> String {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    )
}

/// Docker's `ConvertToHostname`: `https://host:5000/v2/` -> `host:5000`, so keys
/// written by any client version match.
fn key_hostname(key: &str) -> &str {
    let k = key
        .strip_prefix("http://")
        .or_else(|| key.strip_prefix("https://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, registry: &str) -> bool {
    let host = key_hostname(key);
    host == registry || (is_docker_hub(host) && is_docker_hub(registry))
}

impl CredentialStore {
    /// Reads `dir/config.json`; a missing file is an empty configuration.
    pub fn open(dir: &Path) -> Result<Self> {
        let path = dir.join("config.json");
        let json = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(Error::Config {
                        path,
                        reason: "not a JSON object".into(),
                    })
                }
                Err(e) => {
                    return Err(Error::Config {
                        path,
                        reason: format!("invalid JSON: {e}; fix or remove the file"),
                    })
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
            Err(e) => {
                return Err(Error::Config {
                    path,
                    reason: e.to_string(),
                })
            }
        };
        Ok(Self { path, json })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where `registry`'s credentials live: its `credHelpers` entry, else
    /// `credsStore`, else the file.
    pub fn backend(&self, registry: &str) -> Backend {
        let helper = self
            .json
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|h| {
                h.iter()
                    .find(|(k, _)| same_registry(k, registry))
                    .and_then(|(_, v)| v.as_str())
            })
            .or_else(|| self.json.get("credsStore").and_then(Value::as_str))
            .filter(|h| !h.is_empty());
        match helper {
            Some(h) => Backend::Helper(h.to_string()),
            None => Backend::File(self.path.clone()),
        }
    }

    /// The credentials for `registry` (`host[:port]`, `docker.io` for Hub).
    pub fn get(&self, registry: &str) -> Result<Option<Credentials>> {
        match self.backend(registry) {
            Backend::Helper(h) => helper_get(&h, &server_key(registry)),
            Backend::File(_) => self.file_get(registry),
        }
    }

    fn file_get(&self, registry: &str) -> Result<Option<Credentials>> {
        let Some(auths) = self.json.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        // An exact key first, then any spelling of the same host.
        let key = server_key(registry);
        let entry = auths.get(&key).or_else(|| {
            auths
                .iter()
                .find(|(k, _)| same_registry(k, registry))
                .map(|(_, v)| v)
        });
        let Some(entry) = entry.and_then(Value::as_object) else {
            return Ok(None);
        };
        let identity_token = entry
            .get("identitytoken")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let (username, password) = match entry.get("auth").and_then(Value::as_str) {
            Some(a) if !a.is_empty() => decode_auth(a).map_err(|reason| Error::Config {
                path: self.path.clone(),
                reason: format!("auths entry for {key}: {reason}"),
            })?,
            _ => (str_field(entry, "username"), str_field(entry, "password")),
        };
        if username.is_empty() && password.is_empty() && identity_token.is_none() {
            return Ok(None);
        }
        Ok(Some(Credentials {
            username,
            password,
            identity_token,
        }))
    }

    /// Saves credentials for `registry`; returns where they went.
    pub fn save(&mut self, registry: &str, creds: &Credentials) -> Result<Backend> {
        let key = server_key(registry);
        let backend = self.backend(registry);
        let entry = match &backend {
            Backend::Helper(h) => {
                let (user, secret) = match &creds.identity_token {
                    Some(t) => (TOKEN_USERNAME, t.as_str()),
                    None => (creds.username.as_str(), creds.password.as_str()),
                };
                helper_run(
                    h,
                    "store",
                    &json!({"ServerURL": key, "Username": user, "Secret": secret}).to_string(),
                )?;
                // Docker keeps an empty entry so the file says which servers
                // have credentials somewhere.
                json!({})
            }
            Backend::File(_) => {
                let mut e = Map::new();
                e.insert(
                    "auth".into(),
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{}:{}", creds.username, creds.password))
                        .into(),
                );
                if let Some(t) = &creds.identity_token {
                    e.insert("identitytoken".into(), t.clone().into());
                }
                Value::Object(e)
            }
        };
        self.remove_file_entries(registry);
        self.auths_mut().insert(key, entry);
        self.write()?;
        Ok(backend)
    }

    /// Removes `registry`'s credentials; false when there were none.
    pub fn erase(&mut self, registry: &str) -> Result<bool> {
        let mut found = self.remove_file_entries(registry);
        if let Backend::Helper(h) = self.backend(registry) {
            let key = server_key(registry);
            if helper_get(&h, &key)?.is_some() {
                helper_run(&h, "erase", &key)?;
                found = true;
            }
        }
        if found {
            self.write()?;
        }
        Ok(found)
    }

    fn remove_file_entries(&mut self, registry: &str) -> bool {
        let auths = self.auths_mut();
        let keys: Vec<String> = auths
            .keys()
            .filter(|k| same_registry(k, registry))
            .cloned()
            .collect();
        for k in &keys {
            auths.remove(k);
        }
        !keys.is_empty()
    }

    fn auths_mut(&mut self) -> &mut Map<String, Value> {
        let auths = self
            .json
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        auths.as_object_mut().expect("made an object above")
    }

    /// Atomically, private to the user (the file holds passwords).
    fn write(&self) -> Result<()> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::Config {
            path: dir.to_path_buf(),
            reason: format!("cannot create: {e}"),
        })?;
        let mut bytes = serde_json::to_vec_pretty(&self.json).expect("JSON object");
        bytes.push(b'\n');
        // AtomicFile creates its temp file with mode 0600.
        let mut f = berth_fs::AtomicFile::new_in(dir)?;
        f.write_all(&bytes).map_err(|e| Error::Config {
            path: self.path.clone(),
            reason: format!("cannot write: {e}"),
        })?;
        f.commit(&self.path)?;
        Ok(())
    }
}

fn str_field(m: &Map<String, Value>, k: &str) -> String {
    m.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn decode_auth(a: &str) -> std::result::Result<(String, String), String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(a.trim())
        .map_err(|e| format!("auth is not base64: {e}"))?;
    let s = String::from_utf8(raw).map_err(|_| "auth is not UTF-8".to_string())?;
    let (u, p) = s
        .split_once(':')
        .ok_or_else(|| "auth is not user:password".to_string())?;
    Ok((u.to_string(), p.to_string()))
}

fn helper_get(helper: &str, server: &str) -> Result<Option<Credentials>> {
    let out = match helper_run(helper, "get", server) {
        Ok(out) => out,
        Err(Error::Helper { reason, .. }) if reason.contains(HELPER_NOT_FOUND) => return Ok(None),
        Err(e) => return Err(e),
    };
    let v: Value = serde_json::from_str(&out).map_err(|e| Error::Helper {
        helper: helper.to_string(),
        action: "get",
        reason: format!("invalid JSON answer: {e}"),
    })?;
    let username = v["Username"].as_str().unwrap_or_default().to_string();
    let secret = v["Secret"].as_str().unwrap_or_default().to_string();
    if username.is_empty() && secret.is_empty() {
        return Ok(None);
    }
    Ok(Some(if username == TOKEN_USERNAME {
        Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(secret),
        }
    } else {
        Credentials {
            username,
            password: secret,
            identity_token: None,
        }
    }))
}

/// Runs `docker-credential-<helper> <action>` with `input` on stdin; returns
/// its stdout.
fn helper_run(helper: &str, action: &'static str, input: &str) -> Result<String> {
    let program = format!("docker-credential-{helper}");
    let fail = |reason: String| Error::Helper {
        helper: helper.to_string(),
        action,
        reason,
    };
    let mut child = Command::new(&program)
        .arg(action)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            fail(if e.kind() == std::io::ErrorKind::NotFound {
                format!("{program} is not on PATH; install it or remove it from config.json")
            } else {
                e.to_string()
            })
        })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is reported by its status below.
        let _ = stdin.write_all(input.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| fail(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let msg = [stdout.as_str(), stderr.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("; ");
        return Err(fail(if msg.is_empty() {
            format!("exited with {}", out.status)
        } else {
            msg
        }));
    }
    Ok(stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
            identity_token: None,
        }
    }

    #[test]
    fn file_round_trip_keeps_other_fields() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"psFormat":"table {{.ID}}","auths":{"other:1":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        let mut s = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(
            s.save("127.0.0.1:5000", &creds("u", "p:w")).unwrap(),
            Backend::File(dir.path().join("config.json"))
        );
        let s = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(s.get("127.0.0.1:5000").unwrap(), Some(creds("u", "p:w")));
        assert_eq!(s.get("other:1").unwrap(), Some(creds("a", "b")));
        let text = std::fs::read_to_string(s.path()).unwrap();
        assert!(text.contains("psFormat"), "{text}");
        assert!(text.contains("\"auth\": \"dTpwOnc=\""), "{text}");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "config.json must be private: {mode:o}");
    }

    #[test]
    fn keys_match_any_spelling_of_the_host() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://reg.example:5000/v2/":{"auth":"YTpi"},
                "https://index.docker.io/v1/":{"auth":"aHViOnB3"}}}"#,
        )
        .unwrap();
        let mut s = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(s.get("reg.example:5000").unwrap(), Some(creds("a", "b")));
        assert_eq!(s.get("docker.io").unwrap(), Some(creds("hub", "pw")));
        assert_eq!(s.get("reg.example").unwrap(), None);
        assert!(s.erase("reg.example:5000").unwrap());
        assert!(!s.erase("reg.example:5000").unwrap());
        assert_eq!(
            CredentialStore::open(dir.path())
                .unwrap()
                .get("reg.example:5000")
                .unwrap(),
            None
        );
    }

    #[test]
    fn helpers_are_chosen_per_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"desktop","credHelpers":{"1.dkr.ecr.us-east-1.amazonaws.com":"ecr-login"}}"#,
        )
        .unwrap();
        let s = CredentialStore::open(dir.path()).unwrap();
        assert_eq!(
            s.backend("1.dkr.ecr.us-east-1.amazonaws.com"),
            Backend::Helper("ecr-login".into())
        );
        assert_eq!(s.backend("docker.io"), Backend::Helper("desktop".into()));
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"credsStore":"berth-test-no-such-helper"}"#,
        )
        .unwrap();
        let s = CredentialStore::open(dir.path()).unwrap();
        let e = s.get("x:1").unwrap_err().to_string();
        assert!(e.contains("is not on PATH"), "{e}");
    }

    #[test]
    fn bad_json_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let e = CredentialStore::open(dir.path()).err().unwrap().to_string();
        assert!(
            e.contains("config.json") && e.contains("invalid JSON"),
            "{e}"
        );
    }
}
