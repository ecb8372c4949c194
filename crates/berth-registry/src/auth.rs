//! The distribution auth flow: a registry answers 401 with a
//! `WWW-Authenticate` challenge; `Basic` means send the credentials with every
//! request, `Bearer realm=…,service=…` means trade them at the realm for a
//! token scoped to repositories and actions (`repository:app:pull,push`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a token without `expires_in` lives (the token spec's default).
const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(60);
/// Renew this long before expiry, so a token does not lapse mid-request.
const TOKEN_MARGIN: Duration = Duration::from_secs(10);

/// What a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` value; unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
        }),
        _ => None,
    }
}

/// `key="quoted \"value\"",key2=token` -> map (keys lowercased).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        while i < b.len() && (b[i] == b',' || b[i].is_ascii_whitespace()) {
            i += 1;
        }
        let k0 = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' {
            i += 1;
        }
        let key = s[k0..i].trim().to_ascii_lowercase();
        if i >= b.len() || b[i] != b'=' {
            continue;
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < b.len() && b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' && i + 1 < b.len() {
                    i += 1;
                }
                // Push whole UTF-8 characters.
                let ch = s[i..].chars().next().expect("in bounds");
                value.push(ch);
                i += ch.len_utf8();
            }
            i += 1;
        } else {
            let v0 = i;
            while i < b.len() && b[i] != b',' {
                i += 1;
            }
            value = s[v0..i].trim().to_string();
        }
        if !key.is_empty() {
            out.insert(key, value);
        }
    }
    out
}

/// The access a request needs: `repository:<path>:<actions>` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Scope(Vec<String>);

impl Scope {
    /// No scope: `/v2/` and login.
    pub fn none() -> Self {
        Self(Vec::new())
    }

    pub fn pull(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull")])
    }

    pub fn push(repository: &str) -> Self {
        Self(vec![format!("repository:{repository}:pull,push")])
    }

    /// Adds pull access to another repository, which a cross-repository
    /// mount needs from its source.
    pub fn with_pull(mut self, repository: &str) -> Self {
        let s = format!("repository:{repository}:pull");
        if !self.0.contains(&s) {
            self.0.push(s);
        }
        self
    }

    pub fn entries(&self) -> &[String] {
        &self.0
    }
}

/// A bearer token and when to stop using it.
#[derive(Debug, Clone)]
pub struct Token {
    pub value: String,
    pub expires: Instant,
}

impl Token {
    pub fn new(value: String, expires_in: Option<u64>) -> Self {
        let life = expires_in
            .filter(|s| *s > 0)
            .map(Duration::from_secs)
            .unwrap_or(DEFAULT_TOKEN_LIFETIME);
        Self {
            value,
            expires: Instant::now()
                + life
                    .saturating_sub(TOKEN_MARGIN)
                    .max(Duration::from_secs(1)),
        }
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.expires
    }
}

/// The answer of a token service (distribution's token spec and OAuth2).
#[derive(Debug, serde::Deserialize)]
pub struct TokenResponse {
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
    /// Handed out to OAuth2 logins; kept as the identity token.
    #[serde(default)]
    pub refresh_token: Option<String>,
}

impl TokenResponse {
    pub fn token(&self) -> Option<&str> {
        self.token
            .as_deref()
            .filter(|t| !t.is_empty())
            .or(self.access_token.as_deref().filter(|t| !t.is_empty()))
    }
}

/// What a client learned about a registry's auth: the challenge and the tokens
/// it holds, one per scope.
#[derive(Debug, Default)]
pub struct AuthState {
    pub challenge: Option<Challenge>,
    pub tokens: HashMap<Scope, Token>,
}

/// Percent-encodes a query component (RFC 3986 unreserved characters pass).
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The token request URL: `realm?service=…&scope=…&scope=…`.
pub fn token_url(realm: &str, service: Option<&str>, scope: &Scope) -> String {
    let mut params: Vec<String> = Vec::new();
    if let Some(s) = service {
        params.push(format!("service={}", query_escape(s)));
    }
    for s in scope.entries() {
        params.push(format!("scope={}", query_escape(s)));
    }
    if params.is_empty() {
        return realm.to_string();
    }
    let sep = if realm.contains('?') { '&' } else { '?' };
    format!("{realm}{sep}{}", params.join("&"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        assert_eq!(
            parse_challenge(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into())
            })
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="basic-realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(
            parse_challenge(r#"bearer realm=http://127.0.0.1:1/t, service = "a \"b\"""#),
            Some(Challenge::Bearer {
                realm: "http://127.0.0.1:1/t".into(),
                service: Some("a \"b\"".into())
            })
        );
        assert_eq!(parse_challenge("Bearer service=x"), None);
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }

    #[test]
    fn token_urls_carry_every_scope() {
        let scope = Scope::push("team/app").with_pull("base/img");
        assert_eq!(
            token_url("http://h/token", Some("reg"), &scope),
            "http://h/token?service=reg&scope=repository%3Ateam%2Fapp%3Apull%2Cpush&scope=repository%3Abase%2Fimg%3Apull"
        );
        assert_eq!(
            token_url("http://h/token?x=1", None, &Scope::none()),
            "http://h/token?x=1"
        );
        assert_eq!(
            token_url("http://h/token?x=1", None, &Scope::pull("a")),
            "http://h/token?x=1&scope=repository%3Aa%3Apull"
        );
    }

    #[test]
    fn token_answers_in_either_field() {
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(t.token(), Some("abc"));
        let t: TokenResponse =
            serde_json::from_str(r#"{"token":"x","access_token":"y","expires_in":300}"#).unwrap();
        assert_eq!(t.token(), Some("x"));
        assert!(Token::new("x".into(), t.expires_in).is_fresh());
    }
}
