//! One registry, spoken to over the distribution API: the `/v2/` ping that
//! picks HTTPS or plain HTTP and learns the auth challenge, requests that carry
//! the right credentials for their scope, and retries with backoff where a
//! request can be repeated safely.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine as _;
use berth_oci::Digest;
use ureq::http::{self, Method, Response, StatusCode};
use ureq::{Agent, SendBody};

use crate::auth::{parse_challenge, token_url, AuthState, Challenge, Scope, Token, TokenResponse};
use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::tls::{self, RegistryCerts};

/// How many times a request that can be repeated is tried.
const ATTEMPTS: u32 = 5;
/// The first retry waits this long; each next one twice as long (Docker's
/// push and pull retry on the same order: 5 tries, seconds apart).
const BACKOFF: Duration = Duration::from_millis(250);
/// Bodies berth reads whole (errors, tokens, manifests, configs) are small;
/// this bounds what a broken registry can make berth hold in memory.
pub const MAX_SMALL_BODY: u64 = 16 << 20;
/// Docker Hub's API host for the `docker.io` name.
const DOCKER_HUB_API: &str = "registry-1.docker.io";
const USER_AGENT: &str = concat!("berth/", env!("CARGO_PKG_VERSION"));

/// How to reach registries.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// `false` treats every registry as insecure (`--tls-verify=false`).
    pub tls_verify: bool,
    /// Docker's `/etc/docker/certs.d`.
    pub certs_dir: PathBuf,
    /// Registries (host[:port] or IPv4 CIDR) allowed without verified TLS.
    pub insecure_registries: Vec<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            tls_verify: true,
            certs_dir: PathBuf::from(tls::DEFAULT_CERTS_DIR),
            insecure_registries: tls::docker_insecure_registries(std::path::Path::new(
                "/etc/docker/daemon.json",
            )),
        }
    }
}

/// A request body that can be sent again on a retry.
pub enum Body<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// `len` bytes of `file` from `offset`; `progress` hears the bytes sent.
    File {
        file: &'a File,
        offset: u64,
        len: u64,
        progress: Option<&'a (dyn Fn(u64) + Sync)>,
    },
}

pub struct Request<'a> {
    pub method: Method,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
    pub scope: &'a Scope,
    /// Whether the request may be sent again after a failure: true for reads
    /// and for writes that name their content (PUT by digest); false for a
    /// PATCH, whose partial effect the registry may have kept.
    pub idempotent: bool,
}

impl<'a> Request<'a> {
    pub fn new(method: Method, url: String, scope: &'a Scope) -> Self {
        Self {
            method,
            url,
            headers: Vec::new(),
            body: Body::Empty,
            scope,
            idempotent: true,
        }
    }

    pub fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }

    pub fn body(mut self, b: Body<'a>) -> Self {
        self.body = b;
        self
    }

    pub fn not_idempotent(mut self) -> Self {
        self.idempotent = false;
        self
    }
}

/// A connection to one registry, shared by the threads of a push or pull.
pub struct Client {
    registry: String,
    base: String,
    agent: Agent,
    credentials: Option<Credentials>,
    auth: Mutex<AuthState>,
}

impl Client {
    /// Pings `registry` (`host[:port]` as in references; `docker.io` for Docker
    /// Hub) and learns how to talk to it.
    pub fn connect(
        registry: &str,
        credentials: Option<Credentials>,
        opts: &ClientOptions,
    ) -> Result<Self> {
        let api_host = if registry == berth_oci::DEFAULT_DOMAIN {
            DOCKER_HUB_API
        } else {
            registry
        };
        let insecure = !opts.tls_verify
            || tls::is_loopback(registry)
            || tls::is_listed_insecure(registry, &opts.insecure_registries);
        let certs = tls::load_registry_certs(&opts.certs_dir, registry)?;
        let attempts: &[(&str, bool)] = if insecure {
            // Docker's order for insecure registries: TLS without checks, then
            // plain HTTP.
            &[("https", false), ("http", false)]
        } else {
            &[("https", true)]
        };
        let mut errors = Vec::new();
        for (scheme, verify) in attempts {
            let certs = RegistryCerts {
                roots: certs.roots.clone(),
                client: certs.client.clone(),
            };
            let agent = make_agent(tls::tls_config(certs, *verify));
            let base = format!("{scheme}://{api_host}");
            let url = format!("{base}/v2/");
            let req = http::Request::get(&url)
                .header("User-Agent", USER_AGENT)
                .body(SendBody::none())
                .expect("valid request");
            match agent.run(req) {
                // 2xx, an auth challenge, or a registry that is failing for
                // now (requests retry 5xx): this is the way in.
                Ok(resp)
                    if resp.status().is_success()
                        || resp.status() == StatusCode::UNAUTHORIZED
                        || resp.status() == StatusCode::FORBIDDEN
                        || resp.status().is_server_error() =>
                {
                    let challenge = if resp.status() == StatusCode::UNAUTHORIZED {
                        www_authenticate(&resp)
                    } else {
                        None
                    };
                    drain(resp);
                    return Ok(Self {
                        registry: registry.to_string(),
                        base,
                        agent,
                        credentials,
                        auth: Mutex::new(AuthState {
                            challenge,
                            ..AuthState::default()
                        }),
                    });
                }
                // Something answers, but not the registry API (an HTTPS port
                // spoken to in plain HTTP answers 400, a web server 404).
                Ok(resp) => {
                    errors.push(Error::Http {
                        method: "GET".into(),
                        url,
                        status: resp.status().as_u16(),
                        message: "this server does not speak the registry v2 API".into(),
                    });
                    drain(resp);
                }
                Err(e) => errors.push(Error::Unreachable {
                    registry: registry.to_string(),
                    url,
                    reason: transport_reason(&e),
                }),
            }
        }
        // A TLS port answers plain HTTP with 400: then the TLS failure is
        // the one to report.
        let first_is_better = matches!(errors.last(), Some(Error::Http { status: 400, .. }));
        let mut errors = errors.into_iter();
        let first = errors.next().expect("at least one attempt");
        Err(if first_is_better {
            first
        } else {
            errors.last().unwrap_or(first)
        })
    }

    /// The registry as references name it (`127.0.0.1:5000`, `docker.io`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `https://host` or `http://host`, as the ping settled.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// A URL under `/v2/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}/v2/{path}", self.base)
    }

    /// Resolves a `Location` header, which may be relative to the registry.
    pub fn absolute(&self, location: &str) -> String {
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            format!("{}/{location}", self.base)
        }
    }

    /// Checks the credentials as `docker login` does: basic auth against
    /// `/v2/`, or a token from the realm and then `/v2/` with it. Returns an
    /// identity token if the token service handed one out.
    pub fn login(&self) -> Result<Option<String>> {
        let challenge = self.auth.lock().expect("auth lock").challenge.clone();
        let scope = Scope::none();
        let refresh = match &challenge {
            None => return Ok(None),
            Some(Challenge::Basic) => None,
            Some(Challenge::Bearer { realm, service }) => {
                let (token, refresh) = self
                    .fetch_token(realm, service.as_deref(), &scope)
                    .map_err(into_login_error)?;
                self.auth
                    .lock()
                    .expect("auth lock")
                    .tokens
                    .insert(scope.clone(), token);
                refresh
            }
        };
        let resp = self
            .send(Request::new(Method::GET, self.url(""), &scope))
            .map_err(into_login_error)?;
        if !resp.status().is_success() {
            return Err(into_login_error(self.unexpected(
                "GET",
                &self.url(""),
                resp,
            )));
        }
        Ok(refresh)
    }

    /// Sends a request with the credentials its scope needs, answering a 401
    /// challenge once and retrying idempotent requests on dropped connections
    /// and 5xx answers.
    pub fn send(&self, req: Request<'_>) -> Result<Response<ureq::Body>> {
        let mut attempt = 0;
        let mut answered_challenge = false;
        loop {
            let authorization = self.authorization(req.scope)?;
            let result = self.run_once(&req, authorization.as_deref());
            let retry_left = req.idempotent && attempt + 1 < ATTEMPTS;
            match result {
                Err(e) if retry_left && is_transient(&e) => {}
                Err(e) => {
                    return Err(Error::Unreachable {
                        registry: self.registry.clone(),
                        url: req.url.clone(),
                        reason: transport_reason(&e),
                    })
                }
                Ok(resp) if resp.status() == StatusCode::UNAUTHORIZED && !answered_challenge => {
                    answered_challenge = true;
                    let challenge = www_authenticate(&resp);
                    let try_again = {
                        let mut auth = self.auth.lock().expect("auth lock");
                        auth.tokens.remove(req.scope);
                        let changed = challenge.is_some() && challenge != auth.challenge;
                        if challenge.is_some() {
                            auth.challenge = challenge;
                        }
                        match &auth.challenge {
                            // A fresh token, perhaps with the scope the
                            // registry now wants.
                            Some(Challenge::Bearer { .. }) => true,
                            // The same credentials again would get the same
                            // answer.
                            Some(Challenge::Basic) => {
                                self.credentials.is_some() && (changed || authorization.is_none())
                            }
                            None => false,
                        }
                    };
                    if !try_again {
                        return Ok(resp);
                    }
                    drain(resp);
                    continue;
                }
                Ok(resp) if retry_left && is_transient_status(resp.status()) => {
                    drain(resp);
                }
                Ok(resp) => return Ok(resp),
            }
            std::thread::sleep(BACKOFF * 2u32.pow(attempt));
            attempt += 1;
        }
    }

    /// Runs `f` again, with backoff, while it fails in a way that may pass
    /// (a body cut short after the answer began, a 5xx): for small reads
    /// whose whole exchange can be repeated.
    pub fn retry<T>(&self, mut f: impl FnMut() -> Result<T>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match f() {
                Err(e) if e.is_transient() && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(BACKOFF * 2u32.pow(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    fn run_once(
        &self,
        req: &Request<'_>,
        authorization: Option<&str>,
    ) -> std::result::Result<Response<ureq::Body>, ureq::Error> {
        let mut b = http::Request::builder()
            .method(req.method.clone())
            .uri(&req.url)
            .header("User-Agent", USER_AGENT);
        if let Some(a) = authorization {
            b = b.header("Authorization", a);
        }
        for (k, v) in &req.headers {
            b = b.header(*k, v);
        }
        match &req.body {
            Body::Empty => {
                if req.method == Method::PUT || req.method == Method::POST {
                    b = b.header("Content-Length", "0");
                }
                self.agent
                    .run(b.body(SendBody::none()).map_err(ureq::Error::Http)?)
            }
            Body::Bytes(bytes) => {
                let mut r: &[u8] = bytes;
                b = b.header("Content-Length", bytes.len().to_string());
                self.agent.run(
                    b.body(SendBody::from_reader(&mut r))
                        .map_err(ureq::Error::Http)?,
                )
            }
            Body::File {
                file,
                offset,
                len,
                progress,
            } => {
                let mut r = FileRange {
                    file,
                    pos: *offset,
                    end: offset + len,
                    sent: 0,
                    progress: *progress,
                };
                b = b.header("Content-Length", len.to_string());
                self.agent.run(
                    b.body(SendBody::from_reader(&mut r))
                        .map_err(ureq::Error::Http)?,
                )
            }
        }
    }

    /// The `Authorization` header for `scope`, fetching a token if needed.
    fn authorization(&self, scope: &Scope) -> Result<Option<String>> {
        // Held while a token is fetched, so parallel layers share one.
        let mut auth = self.auth.lock().expect("auth lock");
        match auth.challenge.clone() {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.credentials.as_ref().map(basic_header)),
            Some(Challenge::Bearer { realm, service }) => {
                if let Some(t) = auth.tokens.get(scope).filter(|t| t.is_fresh()) {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let (token, _) = self.fetch_token(&realm, service.as_deref(), scope)?;
                let header = format!("Bearer {}", token.value);
                auth.tokens.insert(scope.clone(), token);
                Ok(Some(header))
            }
        }
    }

    /// Trades the credentials (or nothing, for anonymous pulls) for a token.
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &Scope,
    ) -> Result<(Token, Option<String>)> {
        let creds = self.credentials.as_ref();
        let mut attempt = 0;
        loop {
            let result = match creds.and_then(|c| c.identity_token.as_deref()) {
                // OAuth2 refresh-token grant, as Docker does with identity tokens.
                Some(refresh) => {
                    let mut form = format!(
                        "grant_type=refresh_token&client_id=berth&refresh_token={}",
                        crate::auth::query_escape(refresh)
                    );
                    if let Some(s) = service {
                        form.push_str(&format!("&service={}", crate::auth::query_escape(s)));
                    }
                    if !scope.entries().is_empty() {
                        form.push_str(&format!(
                            "&scope={}",
                            crate::auth::query_escape(&scope.entries().join(" "))
                        ));
                    }
                    let mut r: &[u8] = form.as_bytes();
                    let req = http::Request::post(realm)
                        .header("User-Agent", USER_AGENT)
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .header("Content-Length", form.len().to_string())
                        .body(SendBody::from_reader(&mut r))
                        .map_err(ureq::Error::Http);
                    req.and_then(|r| self.agent.run(r))
                }
                None => {
                    let mut b = http::Request::get(token_url(realm, service, scope))
                        .header("User-Agent", USER_AGENT);
                    if let Some(c) = creds.filter(|c| !c.username.is_empty()) {
                        b = b.header("Authorization", basic_header(c));
                    }
                    b.body(SendBody::none())
                        .map_err(ureq::Error::Http)
                        .and_then(|r| self.agent.run(r))
                }
            };
            let resp = match result {
                Ok(r) if is_transient_status(r.status()) && attempt + 1 < ATTEMPTS => {
                    drain(r);
                    std::thread::sleep(BACKOFF * 2u32.pow(attempt));
                    attempt += 1;
                    continue;
                }
                Ok(r) => r,
                Err(e) if is_transient(&e) && attempt + 1 < ATTEMPTS => {
                    std::thread::sleep(BACKOFF * 2u32.pow(attempt));
                    attempt += 1;
                    continue;
                }
                Err(e) => {
                    return Err(Error::Unreachable {
                        registry: self.registry.clone(),
                        url: realm.to_string(),
                        reason: transport_reason(&e),
                    })
                }
            };
            let status = resp.status();
            let body = read_small(resp).unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(Error::Unauthorized {
                    registry: self.registry.clone(),
                    message: error_message(&body, status),
                    logged_in: creds.is_some(),
                });
            }
            if !status.is_success() {
                return Err(Error::Token {
                    realm: realm.to_string(),
                    reason: format!("answered {status}: {}", error_message(&body, status)),
                });
            }
            let parsed: TokenResponse =
                serde_json::from_slice(&body).map_err(|e| Error::Token {
                    realm: realm.to_string(),
                    reason: format!("invalid answer: {e}"),
                })?;
            let value = parsed.token().ok_or_else(|| Error::Token {
                realm: realm.to_string(),
                reason: "the answer holds no token".into(),
            })?;
            return Ok((
                Token::new(value.to_string(), parsed.expires_in),
                parsed.refresh_token.clone(),
            ));
        }
    }

    /// The error for an answer the caller did not expect, in the registry's
    /// own words (`code: message` from its JSON error body).
    pub fn unexpected(&self, method: &str, url: &str, resp: Response<ureq::Body>) -> Error {
        let status = resp.status();
        let body = read_small(resp).unwrap_or_default();
        let message = error_message(&body, status);
        match status {
            StatusCode::UNAUTHORIZED => Error::Unauthorized {
                registry: self.registry.clone(),
                message,
                logged_in: self.credentials.is_some(),
            },
            StatusCode::FORBIDDEN => Error::Denied {
                what: self.registry.clone(),
                message,
            },
            _ => Error::Http {
                method: method.to_string(),
                url: url.to_string(),
                status: status.as_u16(),
                message,
            },
        }
    }

    /// `HEAD /v2/<repo>/blobs/<digest>`: the blob's size if the repository
    /// holds it.
    pub fn blob_exists(&self, repo: &str, digest: &Digest, scope: &Scope) -> Result<Option<u64>> {
        let url = self.url(&format!("{repo}/blobs/{digest}"));
        let resp = self.send(Request::new(Method::HEAD, url.clone(), scope))?;
        match resp.status() {
            s if s.is_success() => Ok(Some(
                header(&resp, "Content-Length")
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(self.unexpected("HEAD", &url, resp)),
        }
    }

    /// `GET /v2/<repo>/tags/list`, following pagination.
    pub fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        let scope = Scope::pull(repo);
        let mut url = self.url(&format!("{repo}/tags/list"));
        let mut tags = Vec::new();
        loop {
            let resp = self.send(Request::new(Method::GET, url.clone(), &scope))?;
            if resp.status() == StatusCode::NOT_FOUND {
                let body = read_small(resp).unwrap_or_default();
                return Err(Error::NameUnknown {
                    repository: format!("{}/{repo}", self.registry),
                    message: error_message(&body, StatusCode::NOT_FOUND),
                });
            }
            if !resp.status().is_success() {
                return Err(self.unexpected("GET", &url, resp));
            }
            let next = header(&resp, "Link").and_then(|l| next_link(&l));
            let body = read_small(resp).map_err(|e| Error::Transfer {
                what: format!("tag list of {repo}"),
                source: e,
            })?;
            #[derive(serde::Deserialize)]
            struct TagList {
                #[serde(default)]
                tags: Option<Vec<String>>,
            }
            let list: TagList = serde_json::from_slice(&body).map_err(|e| Error::Http {
                method: "GET".into(),
                url: url.clone(),
                status: 200,
                message: format!("invalid tag list: {e}"),
            })?;
            tags.extend(list.tags.unwrap_or_default());
            match next {
                Some(n) => url = self.absolute(&n),
                None => return Ok(tags),
            }
        }
    }
}

fn make_agent(tls: ureq::tls::TlsConfig) -> Agent {
    Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(30)))
        // A peer that stops sending or reading for this long is gone.
        .timeout_per_read(Some(Duration::from_secs(120)))
        .timeout_per_write(Some(Duration::from_secs(120)))
        .max_idle_connections_per_host(8)
        .build()
        .new_agent()
}

fn basic_header(c: &Credentials) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

pub fn header(resp: &Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

fn www_authenticate(resp: &Response<ureq::Body>) -> Option<Challenge> {
    resp.headers()
        .get_all("WWW-Authenticate")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(parse_challenge)
        // Prefer tokens when a registry offers both.
        .max_by_key(|c| matches!(c, Challenge::Bearer { .. }))
}

/// `<url>; rel="next"` from a `Link` header.
fn next_link(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (url, params) = part.split_once(';')?;
        params.contains("rel=\"next\"").then(|| {
            url.trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

/// Reads a small body whole.
pub fn read_small(resp: Response<ureq::Body>) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    resp.into_body()
        .into_reader()
        .take(MAX_SMALL_BODY)
        .read_to_end(&mut out)?;
    Ok(out)
}

/// Reads and drops a body so the connection can be reused.
pub fn drain(resp: Response<ureq::Body>) {
    let _ = io::copy(
        &mut resp.into_body().into_reader().take(MAX_SMALL_BODY),
        &mut io::sink(),
    );
}

/// `code: message` from distribution's `{"errors":[…]}`, lowercased and
/// spaced as Docker prints error codes; else the status text.
pub fn error_message(body: &[u8], status: StatusCode) -> String {
    #[derive(serde::Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(serde::Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_lowercase().replace('_', " ");
                match (code.is_empty(), e.message.is_empty()) {
                    (false, false) => format!("{code}: {}", e.message),
                    (false, true) => code,
                    _ => e.message.clone(),
                }
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return parts.join("; ");
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if !text.is_empty() && text.len() < 200 && !text.starts_with('<') {
        return format!("{status}: {text}");
    }
    status.to_string()
}

/// The distribution error code of a JSON error body (`MANIFEST_UNKNOWN`).
pub fn error_code(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["errors"][0]["code"].as_str().map(str::to_string)
}

/// Failures worth another try: the connection dropped or timed out.
fn is_transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::Protocol(_)
            | ureq::Error::BodyStalled
    )
}

/// Answers worth another try: the registry or a proxy before it is
/// overloaded or restarting.
fn is_transient_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

fn transport_reason(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Io(io) => io.to_string(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::HostNotFound => "host not found".into(),
        other => other.to_string(),
    }
}

fn into_login_error(e: Error) -> Error {
    match e {
        Error::Unauthorized {
            registry, message, ..
        } => Error::LoginFailed { registry, message },
        other => other,
    }
}

/// A byte range of a file, read with `pread` so one open file serves several
/// threads and retries (and survives the blob being unlinked meanwhile).
struct FileRange<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
    sent: u64,
    progress: Option<&'a (dyn Fn(u64) + Sync)>,
}

impl Read for FileRange<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.pos).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.pos)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shorter than expected",
            ));
        }
        self.pos += n as u64;
        self.sent += n as u64;
        if let Some(p) = self.progress {
            p(self.sent);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_read_as_docker_prints_them() {
        let body = br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#;
        assert_eq!(
            error_message(body, StatusCode::NOT_FOUND),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(error_code(body).as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(
            error_message(b"", StatusCode::UNAUTHORIZED),
            "401 Unauthorized"
        );
        assert_eq!(
            error_message(b"<html>long</html>", StatusCode::BAD_GATEWAY),
            "502 Bad Gateway"
        );
    }

    #[test]
    fn pagination_links() {
        assert_eq!(
            next_link(r#"</v2/a/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/a/tags/list?last=b&n=2")
        );
        assert_eq!(next_link(r#"</x>; rel="prev""#), None);
    }
}
