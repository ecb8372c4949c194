//! `login`, `logout`, `push`, `pull` against Debian's docker-registry (CNCF
//! distribution) on 127.0.0.1: with htpasswd basic auth, with token auth
//! from a small issuer in this file (JWTs signed by a key the registry
//! trusts), and without auth; and skopeo both ways.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use berth_test::{json, Run, TestContext};

const USER: &str = "tester";
const PASSWORD: &str = "s3cret-pw";
const SERVICE: &str = "berth-test-registry";
const ISSUER: &str = "berth-test-issuer";

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

/// Skips the test unless every tool is installed (CI installs them).
macro_rules! require {
    ($($tool:expr),*) => {
        $( if !berth_test::require_tool($tool) { return; } )*
    };
}

// ---------------------------------------------------------------- harness

/// A user's environment for berth: its own Docker config directory and, for
/// credential helpers, extra directories on PATH.
struct User<'a> {
    t: &'a TestContext,
    docker_config: tempfile::TempDir,
    path_prefix: Option<PathBuf>,
}

impl<'a> User<'a> {
    fn new(t: &'a TestContext) -> Self {
        Self {
            t,
            docker_config: tempfile::Builder::new()
                .prefix("berth-docker-config-")
                .tempdir()
                .unwrap(),
            path_prefix: None,
        }
    }

    fn config_json(&self) -> PathBuf {
        self.docker_config.path().join("config.json")
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = self.t.command(args);
        c.env("DOCKER_CONFIG", self.docker_config.path());
        if let Some(p) = &self.path_prefix {
            let path = std::env::var("PATH").unwrap_or_default();
            c.env("PATH", format!("{}:{path}", p.display()));
        }
        c
    }

    fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        to_run(self.command(args).output().expect("run berth"))
    }

    fn run_with_stdin<I, S>(&self, args: I, input: &str) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        to_run(child.wait_with_output().unwrap())
    }

    fn login(&self, host: &str) -> Run {
        self.run_with_stdin(
            ["login", "-u", USER, "--password-stdin", host],
            &format!("{PASSWORD}\n"),
        )
    }
}

fn to_run(out: std::process::Output) -> Run {
    Run {
        status: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

enum Auth {
    None,
    Basic,
    Token,
}

/// `docker-registry serve` on a free loopback port, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    issuer: Option<TokenIssuer>,
}

impl Registry {
    fn start(auth: Auth) -> Self {
        Self::start_with(auth, false)
    }

    /// `tls`: serve HTTPS with a fresh self-signed certificate.
    fn start_with(auth: Auth, tls: bool) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-registry-")
            .tempdir()
            .unwrap();
        let mut issuer = None;
        let auth_yaml = match auth {
            Auth::None => String::new(),
            Auth::Basic => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", USER, PASSWORD])
                    .output()
                    .expect("htpasswd");
                assert!(out.status.success(), "htpasswd failed");
                let file = dir.path().join("htpasswd");
                std::fs::write(&file, &out.stdout).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: berth-test\n    path: {}\n",
                    file.display()
                )
            }
            Auth::Token => {
                let i = TokenIssuer::start(dir.path());
                let yaml = format!(
                    "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {}\n",
                    i.port,
                    i.cert.display()
                );
                issuer = Some(i);
                yaml
            }
        };
        let tls_yaml = if tls {
            let (key, cert) = (dir.path().join("tls.key"), dir.path().join("tls.crt"));
            let out = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args([
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                ])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .output()
                .expect("openssl req");
            assert!(out.status.success(), "openssl req failed");
            format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                cert.display(),
                key.display()
            )
        } else {
            String::new()
        };
        let port = free_port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n{tls_yaml}{auth_yaml}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut r = Self {
            child,
            port,
            dir,
            issuer,
        };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "docker-registry exited ({status}):\n{}",
                    std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap()
                );
            }
            if let Ok(resp) = http(self.port, "GET", "/v2/", &[], b"") {
                if resp.status > 0 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry did not answer on port {}", self.port);
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Where the registry keeps a blob's bytes (distribution's filesystem
    /// driver layout).
    fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// A minimal HTTP/1.0 request, for what the tests do to a registry behind
/// berth's back.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut body = Vec::new();
    r.read_to_end(&mut body)?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn b64(data: &[u8], url_safe: bool) -> String {
    let alphabet: &[u8; 64] = if url_safe {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url_safe {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// A token service as distribution's token auth expects: checks basic
/// credentials, grants the scopes asked for, and signs an RS256 JWT whose
/// `x5c` header carries the certificate the registry trusts.
struct TokenIssuer {
    port: u16,
    cert: PathBuf,
    stop: Arc<AtomicBool>,
    /// The `scope` parameters of every token request, one list per request.
    scopes: Arc<Mutex<Vec<Vec<String>>>>,
    thread: Option<JoinHandle<()>>,
}

impl TokenIssuer {
    fn start(dir: &Path) -> Self {
        let key = dir.join("token.key");
        let cert = dir.join("token.crt");
        let out = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=berth-test-token"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl req");
        assert!(
            out.status.success(),
            "openssl req: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&cert)
            .output()
            .expect("openssl x509");
        assert!(der.status.success());
        let x5c = b64(&der.stdout, false);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let scopes = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let stop = Arc::clone(&stop);
            let scopes = Arc::clone(&scopes);
            let dir = dir.to_path_buf();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    if let Ok(s) = stream {
                        let _ = serve_token(s, &key, &x5c, &scopes, &dir);
                    }
                }
            })
        };
        Self {
            port,
            cert,
            stop,
            scopes,
            thread: Some(thread),
        }
    }

    fn scopes(&self) -> Vec<Vec<String>> {
        self.scopes.lock().unwrap().clone()
    }
}

impl Drop for TokenIssuer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_token(
    stream: TcpStream,
    key: &Path,
    x5c: &str,
    scopes: &Mutex<Vec<Vec<String>>>,
    dir: &Path,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let target = line.split(' ').nth(1).unwrap_or("/").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let mut w = stream;
    let reply = |w: &mut TcpStream, status: &str, body: &str| {
        write!(
            w,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let want = format!(
        "Basic {}",
        b64(format!("{USER}:{PASSWORD}").as_bytes(), false)
    );
    if authorization.as_deref() != Some(want.as_str()) {
        return reply(
            &mut w,
            "401 Unauthorized",
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}"#,
        );
    }
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut asked = Vec::new();
    for pair in query.split('&') {
        if let Some(("scope", v)) = pair.split_once('=') {
            asked.push(percent_decode(v));
        }
    }
    scopes.lock().unwrap().push(asked.clone());
    let access: Vec<serde_json::Value> = asked
        .iter()
        .filter_map(|s| {
            let mut parts = s.splitn(3, ':');
            let kind = parts.next()?;
            let name = parts.next()?;
            let actions: Vec<&str> = parts.next()?.split(',').collect();
            Some(serde_json::json!({"type": kind, "name": name, "actions": actions}))
        })
        .collect();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": USER, "aud": SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now,
        "jti": format!("{now}-{}", asked.len()),
        "access": access,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes(), true),
        b64(claims.to_string().as_bytes(), true)
    );
    let input_file = tempfile::NamedTempFile::new_in(dir)?;
    std::fs::write(input_file.path(), &signing_input)?;
    let sig = Command::new("openssl")
        .args(["dgst", "-sha256", "-binary", "-sign"])
        .arg(key)
        .arg(input_file.path())
        .output()?;
    assert!(sig.status.success(), "openssl dgst failed");
    let token = format!("{signing_input}.{}", b64(&sig.stdout, true));
    reply(
        &mut w,
        "200 OK",
        &serde_json::json!({"token": token, "expires_in": 300}).to_string(),
    )
}

/// The short ID Docker shows for a layer.
fn short(digest: &str) -> &str {
    &digest.trim_start_matches("sha256:")[..12]
}

/// `TAG: digest: sha256:… size: N` -> (digest, size).
fn pushed_digest(out: &str) -> (String, u64) {
    let line = out
        .lines()
        .find(|l| l.contains(": digest: "))
        .unwrap_or_else(|| panic!("no digest line in:\n{out}"));
    let mut words = line.split_whitespace();
    let digest = words.nth(2).unwrap().to_string();
    let size = words.nth(1).unwrap().parse().unwrap();
    (digest, size)
}

fn skopeo_inspect(host: &str, image: &str, creds: bool) -> serde_json::Value {
    let mut c = Command::new("skopeo");
    c.args(["inspect", "--tls-verify=false"]);
    if creds {
        c.args(["--creds", &format!("{USER}:{PASSWORD}")]);
    }
    let out = c.arg(format!("docker://{host}/{image}")).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&String::from_utf8_lossy(&out.stdout))
}

fn diff_ids(u: &User, image: &str) -> Vec<String> {
    let v = json(&u.run(["inspect", image]).ok().stdout);
    v[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

/// A second image on top of `base`: one more layer with /second.txt.
fn derive(u: &User, base: &str, name: &str) {
    let c = format!("mk-{}", std::process::id());
    u.run([
        "run",
        "--name",
        &c,
        base,
        "sh",
        "-c",
        "echo second > /second.txt",
    ])
    .ok();
    u.run(["commit", &c, name]).ok();
    u.run(["rm", &c]).ok();
}

/// The image runs and holds what [`derive`] put in it.
fn assert_second(u: &User, image: &str) {
    assert_eq!(
        u.run(["run", "--rm", image, "cat", "/second.txt"])
            .ok()
            .stdout,
        "second\n"
    );
}

// ------------------------------------------------------------------ tests

/// The whole course flow with basic auth: a clear error for a wrong
/// password, login, push (twice), a second repository mounting the shared
/// base layer, the digest as skopeo sees it, pull into an empty root, run.
#[test]
fn basic_auth_push_pull_and_run() {
    require!("docker-registry", "htpasswd", "skopeo");
    let reg = Registry::start(Auth::Basic);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);

    // Without login: a clear error that says what to do.
    let app = format!("{host}/team/app:v1");
    t.import_busybox(&app);
    let e = u.run(["push", &app]).fails(1);
    assert!(
        e.stderr.contains("unauthorized") && e.stderr.contains(&format!("berth login {host}")),
        "{e}"
    );

    // Wrong password: one line, exit 1, nothing stored.
    let e = u
        .run_with_stdin(["login", "-u", USER, "--password-stdin", &host], "wrong\n")
        .fails(1);
    assert_eq!(e.stderr.lines().count(), 1, "{e}");
    assert!(
        e.stderr.starts_with(&format!(
            "Error: login to {host} failed: incorrect username or password"
        )),
        "{e}"
    );
    assert!(!u.config_json().exists());

    let ok = u.login(&host).ok();
    assert_eq!(ok.stdout, "Login Succeeded\n");
    assert!(ok.stderr.contains("stored unencrypted"), "{ok}");
    let config = json(&std::fs::read_to_string(u.config_json()).unwrap());
    assert_eq!(
        config["auths"][&host]["auth"],
        b64(format!("{USER}:{PASSWORD}").as_bytes(), false)
    );

    // First push: Docker's lines, exactly.
    let layers = diff_ids(&u, &app);
    let r = u.run(["push", &app]).ok();
    let (digest, size) = pushed_digest(&r.stdout);
    let l = short(&layers[0]);
    assert_eq!(
        r.stdout,
        format!(
            "The push refers to repository [{host}/team/app]\n{l}: Preparing\n{l}: Pushed\nv1: digest: {digest} size: {size}\n"
        )
    );
    // The digest berth prints is the one the registry serves.
    let inspected = skopeo_inspect(&host, "team/app:v1", true);
    assert_eq!(inspected["Digest"], digest.as_str());
    // And the image records it, as Docker does.
    let v = json(&u.run(["inspect", &app]).ok().stdout);
    assert_eq!(
        v[0]["RepoDigests"],
        serde_json::json!([format!("{host}/team/app@{digest}")])
    );

    // Second push: nothing to send, same manifest.
    let r = u.run(["push", &app]).ok();
    assert!(
        r.stdout.contains(&format!("{l}: Layer already exists")),
        "{r}"
    );
    assert_eq!(pushed_digest(&r.stdout).0, digest);

    // A second repository sharing the base layer mounts it.
    let second = format!("{host}/team/second:v1");
    derive(&u, &app, &second);
    let layers2 = diff_ids(&u, &second);
    assert_eq!(layers2[0], layers[0]);
    let r = u.run(["push", &second]).ok();
    assert!(
        r.stdout.contains(&format!("{l}: Mounted from team/app")),
        "{r}"
    );
    assert!(
        r.stdout
            .contains(&format!("{}: Pushed", short(&layers2[1]))),
        "{r}"
    );
    let second_digest = pushed_digest(&r.stdout).0;

    // Pull into an empty root, run.
    let t2 = ctx();
    let u2 = User {
        t: &t2,
        docker_config: u.docker_config,
        path_prefix: None,
    };
    let r = u2.run(["pull", &app]).ok();
    let blob = inspected["Layers"][0].as_str().unwrap().to_string();
    let b = short(&blob);
    assert_eq!(
        r.stdout,
        format!(
            "v1: Pulling from team/app\n{b}: Pulling fs layer\n{b}: Download complete\n{b}: Pull complete\n\
             Digest: {digest}\nStatus: Downloaded newer image for {app}\n{app}\n"
        )
    );
    u2.run(["run", "--rm", &app, "true"]).ok();
    let r = u2.run(["pull", &app]).ok();
    assert!(
        r.stdout
            .contains(&format!("Status: Image is up to date for {app}")),
        "{r}"
    );
    // The shared base layer is not fetched again.
    let r = u2.run(["pull", &second]).ok();
    assert!(r.stdout.contains(&format!("{b}: Already exists")), "{r}");
    assert!(
        r.stdout.contains(&format!("Digest: {second_digest}")),
        "{r}"
    );
    assert_second(&u2, &second);
    let v = json(&u2.run(["inspect", &second]).ok().stdout);
    assert_eq!(
        v[0]["RepoDigests"],
        serde_json::json!([format!("{host}/team/second@{second_digest}")])
    );
    t2.run(["system", "check"]).ok();

    // Logout forgets the credentials.
    let r = u2.run(["logout", &host]).ok();
    assert_eq!(r.stdout, format!("Removing login credentials for {host}\n"));
    let r = u2.run(["logout", &host]).ok();
    assert_eq!(r.stdout, format!("Not logged in to {host}\n"));
    u2.run(["pull", &app]).fails(1);
}

/// Token auth: berth follows the Bearer challenge to the issuer, asks for
/// tokens scoped per repository (and for the source repository of a mount).
#[test]
fn token_auth_push_mount_and_pull() {
    require!("docker-registry", "openssl", "skopeo");
    let reg = Registry::start(Auth::Token);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);

    let e = u
        .run_with_stdin(["login", "-u", USER, "--password-stdin", &host], "wrong\n")
        .fails(1);
    assert_eq!(e.stderr.lines().count(), 1, "{e}");
    assert!(
        e.stderr.contains("incorrect username or password")
            && e.stderr.contains("invalid username or password"),
        "{e}"
    );
    assert_eq!(u.login(&host).ok().stdout, "Login Succeeded\n");

    let app = format!("{host}/base/app:1.0");
    t.import_busybox(&app);
    let r = u.run(["push", &app]).ok();
    let (digest, _) = pushed_digest(&r.stdout);
    assert_eq!(
        skopeo_inspect(&host, "base/app:1.0", true)["Digest"],
        digest.as_str()
    );
    let issued = reg.issuer.as_ref().unwrap().scopes();
    assert!(
        issued.contains(&vec!["repository:base/app:pull,push".to_string()]),
        "{issued:?}"
    );
    let r = u.run(["push", &app]).ok();
    assert!(r.stdout.contains("Layer already exists"), "{r}");

    let other = format!("{host}/other/app:2.0");
    derive(&u, &app, &other);
    let r = u.run(["push", &other]).ok();
    assert!(r.stdout.contains("Mounted from base/app"), "{r}");
    let issued = reg.issuer.as_ref().unwrap().scopes();
    assert!(
        issued.contains(&vec![
            "repository:other/app:pull,push".to_string(),
            "repository:base/app:pull".to_string()
        ]),
        "a mount asks for pull access to its source: {issued:?}"
    );

    let t2 = ctx();
    let u2 = User {
        t: &t2,
        docker_config: u.docker_config,
        path_prefix: None,
    };
    let r = u2.run(["pull", &other]).ok();
    assert!(r.stdout.contains("Pull complete"), "{r}");
    assert_second(&u2, &other);
    // Without credentials the issuer refuses: a clear error, exit 1.
    let u3 = User::new(&t2);
    let e = u3.run(["pull", &app]).fails(1);
    assert!(e.stderr.contains("unauthorized"), "{e}");
}

/// What berth pushes, skopeo copies intact; what skopeo pushes (Docker
/// schema 2 and OCI), berth pulls and runs.
#[test]
fn skopeo_interop_both_ways() {
    require!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let app = format!("{host}/interop/app:v1");
    t.import_busybox(&app);
    let r = u.run(["push", &app]).ok();
    let (digest, _) = pushed_digest(&r.stdout);

    // skopeo verifies every blob against the manifest as it copies.
    let dest = t.work().join("copied");
    berth_test::sh(&format!(
        "skopeo copy --src-tls-verify=false docker://{app} dir:{}",
        dest.display()
    ));
    let manifest = std::fs::read(dest.join("manifest.json")).unwrap();
    assert_eq!(
        format!("sha256:{}", sha256_hex(&manifest)),
        digest,
        "skopeo got the manifest berth pushed"
    );
    let m = json(&String::from_utf8(manifest).unwrap());
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let tar = berth_test::sh(&format!(
        "gzip -dc {} | tar -t | grep -c busybox",
        dest.join(layer.trim_start_matches("sha256:")).display()
    ));
    assert!(tar.trim().parse::<u32>().unwrap() >= 1);

    // skopeo pushes from a berth-saved OCI archive, in both manifest formats.
    let archive = t.work().join("app.tar");
    u.run([
        "save",
        "--format",
        "oci",
        "-o",
        archive.to_str().unwrap(),
        &app,
    ])
    .ok();
    for format in ["v2s2", "oci"] {
        let name = format!("{host}/skopeo/{format}:latest");
        berth_test::sh(&format!(
            "skopeo copy --dest-tls-verify=false --format {format} oci-archive:{} docker://{name}",
            archive.display()
        ));
        let t2 = ctx();
        let u2 = User::new(&t2);
        let r = u2.run(["pull", &name]).ok();
        assert!(r.stdout.contains("Pull complete"), "{r}");
        let want = skopeo_inspect(&host, &format!("skopeo/{format}:latest"), false);
        assert!(
            r.stdout
                .contains(&format!("Digest: {}", want["Digest"].as_str().unwrap())),
            "{r}"
        );
        u2.run(["run", "--rm", &name, "true"]).ok();
    }
}

/// Multi-platform images: an index resolves to this machine's platform, or
/// to `--platform`; pulls by digest, `-q` and `-a`.
#[test]
fn pull_resolves_indexes_digests_and_all_tags() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let here = format!("{host}/multi/img:here");
    let there = format!("{host}/multi/img:there");
    let here_id = t.import_busybox(&here);
    let there_id = t.import_fixture(&there);
    let (here_digest, here_size) = pushed_digest(&u.run(["push", &here]).ok().stdout);
    let (there_digest, there_size) = pushed_digest(&u.run(["push", &there]).ok().stdout);

    let arch = berth_oci::host_architecture();
    let other = if arch == "arm64" { "amd64" } else { "arm64" };
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": there_digest, "size": there_size,
             "platform": {"architecture": other, "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
             "digest": here_digest, "size": here_size,
             "platform": {"architecture": arch, "os": "linux"}},
        ]
    })
    .to_string();
    let resp = http(
        reg.port,
        "PUT",
        "/v2/multi/img/manifests/latest",
        &[(
            "Content-Type",
            "application/vnd.docker.distribution.manifest.list.v2+json",
        )],
        index.as_bytes(),
    )
    .unwrap();
    assert_eq!(resp.status, 201, "{}", String::from_utf8_lossy(&resp.body));
    let index_digest = format!("sha256:{}", sha256_hex(index.as_bytes()));
    assert!(resp
        .headers
        .iter()
        .any(|(k, v)| k == "docker-content-digest" && *v == index_digest));

    let image_id = |u: &User, name: &str| {
        json(&u.run(["inspect", name]).ok().stdout)[0]["Id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let latest = format!("{host}/multi/img:latest");
    let name = format!("{host}/multi/img");
    let t2 = ctx();
    let u2 = User::new(&t2);
    let r = u2.run(["pull", &name]).ok();
    assert!(
        r.stdout
            .starts_with("Using default tag: latest\nlatest: Pulling from multi/img\n"),
        "{r}"
    );
    assert!(r.stdout.contains(&format!("Digest: {index_digest}")), "{r}");
    assert_eq!(image_id(&u2, &latest), here_id);

    let t3 = ctx();
    let u3 = User::new(&t3);
    u3.run(["pull", "--platform", &format!("linux/{other}"), &latest])
        .ok();
    assert_eq!(image_id(&u3, &latest), there_id);
    let e = u3
        .run(["pull", "--platform", "linux/s390x", &latest])
        .fails(1);
    assert_eq!(
        e.stderr,
        "Error: no matching manifest for linux/s390x in the manifest list entries\n"
    );

    // By digest: no tag, a repo digest, Docker's status naming the digest.
    let by_digest = format!("{name}@{here_digest}");
    let r = u3.run(["pull", &by_digest]).ok();
    assert!(
        r.stdout
            .contains(&format!("Status: Downloaded newer image for {by_digest}")),
        "{r}"
    );
    let v = json(&u3.run(["inspect", &by_digest]).ok().stdout);
    assert_eq!(v[0]["Id"], here_id.as_str());

    // -q prints the reference only.
    let t4 = ctx();
    let u4 = User::new(&t4);
    let r = u4.run(["pull", "-q", &here]).ok();
    assert_eq!(r.stdout, format!("{here}\n"));
    // -a pulls every tag.
    let r = u4.run(["pull", "-a", &name]).ok();
    assert!(r.stdout.ends_with(&format!("{name}\n")), "{r}");
    for tag in ["here", "there", "latest"] {
        u4.run(["inspect", &format!("{name}:{tag}")]).ok();
    }

    // Errors name what is missing.
    let e = u4.run(["pull", &format!("{name}:nope")]).fails(1);
    assert!(
        e.stderr.contains(&format!(
            "manifest for {name}:nope not found: manifest unknown"
        )),
        "{e}"
    );
    let e = u4
        .run(["pull", &format!("127.0.0.1:{}/x", free_port())])
        .fails(1);
    assert!(e.stderr.contains("cannot reach registry"), "{e}");
}

/// A pull that fails halfway (the registry serves a corrupt blob) leaves no
/// image and a consistent store; the next pull completes.
#[test]
fn failed_pull_leaves_no_image() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let base = format!("{host}/flaky/base:v1");
    let app = format!("{host}/flaky/app:v1");
    t.import_busybox(&base);
    derive(&u, &base, &app);
    u.run(["push", &app]).ok();
    let m = registry_manifest(&reg, "flaky/app", "v1");
    let top = m["layers"][1]["digest"].as_str().unwrap().to_string();
    let path = reg.blob_data(&top);
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();

    let t2 = ctx();
    let u2 = User::new(&t2);
    let e = u2.run(["pull", &app]).fails(1);
    assert!(e.stderr.contains("digest mismatch"), "{e}");
    assert_eq!(u2.run(["images", "-q"]).ok().stdout, "");
    t2.run(["system", "check"]).ok();

    std::fs::write(&path, &good).unwrap();
    let r = u2.run(["pull", &app]).ok();
    assert!(r.stdout.contains("Status: Downloaded newer image"), "{r}");
    assert_second(&u2, &app);
}

/// `credsStore`: login stores through the helper (and warns of nothing),
/// push and pull read through it, logout erases it.
#[test]
fn credential_helper_protocol() {
    require!("docker-registry", "htpasswd");
    let reg = Registry::start(Auth::Basic);
    let host = reg.host();
    let t = ctx();
    let mut u = User::new(&t);
    let bin = t.work().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let helper = bin.join("docker-credential-berthtest");
    std::fs::write(
        &helper,
        r#"#!/bin/sh
store="$(dirname "$0")/store.json"
case "$1" in
  store) cat > "$store" ;;
  get) read -r server
       if [ -f "$store" ]; then cat "$store"; else echo "credentials not found in native keychain"; exit 1; fi ;;
  erase) read -r server; rm -f "$store" ;;
esac
"#,
    )
    .unwrap();
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&helper)
        .status()
        .unwrap();
    std::fs::write(u.config_json(), r#"{"credsStore":"berthtest"}"#).unwrap();
    u.path_prefix = Some(bin.clone());

    let r = u.login(&host).ok();
    assert_eq!(r.stdout, "Login Succeeded\n");
    assert!(!r.stderr.contains("unencrypted"), "{r}");
    let stored = json(&std::fs::read_to_string(bin.join("store.json")).unwrap());
    assert_eq!(stored["ServerURL"], host.as_str());
    assert_eq!(stored["Username"], USER);
    assert_eq!(stored["Secret"], PASSWORD);
    let config = std::fs::read_to_string(u.config_json()).unwrap();
    assert!(!config.contains(PASSWORD), "{config}");

    let app = format!("{host}/helper/app:v1");
    t.import_busybox(&app);
    u.run(["push", &app]).ok();
    let r = u.run(["logout", &host]).ok();
    assert_eq!(r.stdout, format!("Removing login credentials for {host}\n"));
    assert!(!bin.join("store.json").exists());
    u.run(["push", &app]).fails(1);
}

/// A loopback registry serving HTTPS: berth tries TLS first (without
/// certificate checks, as Docker does for loopback) and stays on it.
#[test]
fn tls_registry_on_loopback() {
    require!("docker-registry", "openssl", "htpasswd", "skopeo");
    let reg = Registry::start_with(Auth::Basic, true);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    assert_eq!(u.login(&host).ok().stdout, "Login Succeeded\n");
    let app = format!("{host}/secure/app:v1");
    t.import_busybox(&app);
    let r = u.run(["push", &app]).ok();
    let (digest, _) = pushed_digest(&r.stdout);
    assert_eq!(
        skopeo_inspect(&host, "secure/app:v1", true)["Digest"],
        digest.as_str()
    );
    let t2 = ctx();
    let u2 = User {
        t: &t2,
        docker_config: u.docker_config,
        path_prefix: None,
    };
    u2.run(["pull", &app]).ok();
    u2.run(["run", "--rm", &app, "true"]).ok();
}

/// A push of several tags with `--all-tags`, and Docker's errors for a
/// missing image.
#[test]
fn push_all_tags_and_missing_images() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let repo = format!("{host}/tags/app");
    t.import_busybox(&format!("{repo}:a"));
    t.run(["tag", &format!("{repo}:a"), &format!("{repo}:b")])
        .ok();
    let r = u.run(["push", "--all-tags", &repo]).ok();
    assert!(r.stdout.contains("\na: digest: sha256:"), "{r}");
    assert!(r.stdout.contains("\nb: digest: sha256:"), "{r}");
    assert_eq!(
        r.stdout.matches("The push refers to repository").count(),
        1,
        "{r}"
    );
    let e = u.run(["push", &format!("{repo}:zzz")]).fails(1);
    assert_eq!(
        e.stderr,
        format!("Error: An image does not exist locally with the tag: {repo}:zzz\n")
    );
    let r = u.run(["push", "-q", &format!("{repo}:a")]).ok();
    assert_eq!(r.stdout, format!("{repo}:a\n"));
}

/// What a [`FlakyProxy`] does to one matching request.
#[derive(Clone, Copy)]
enum Fault {
    /// Answer with this status without asking the registry.
    Status(u16),
    /// Forward, then cut the response after this many bytes.
    Cut(usize),
    /// Forward this many bytes, then hold the connection open, silent.
    Stall(usize),
}

/// A loopback HTTP proxy in front of a registry that breaks chosen requests
/// (one request per connection, so it needs no HTTP parsing past headers).
struct FlakyProxy {
    port: u16,
    stop: Arc<AtomicBool>,
    faults: Arc<Faults>,
    /// Requests that were broken, as "METHOD path".
    broken: Arc<Mutex<Vec<String>>>,
    /// Requests with a Range header, as "path range".
    ranged: Arc<Mutex<Vec<String>>>,
    /// Every request, as "METHOD path".
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl FlakyProxy {
    fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let faults = Arc::new(Mutex::new(Vec::new()));
        let broken = Arc::new(Mutex::new(Vec::new()));
        let ranged = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let thread = {
            let (stop, faults, broken, ranged, requests) = (
                stop.clone(),
                faults.clone(),
                broken.clone(),
                ranged.clone(),
                requests.clone(),
            );
            std::thread::spawn(move || {
                for client in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(client) = client else { continue };
                    let (faults, broken, ranged, requests) = (
                        faults.clone(),
                        broken.clone(),
                        ranged.clone(),
                        requests.clone(),
                    );
                    std::thread::spawn(move || {
                        let log = Logs {
                            broken: &broken,
                            ranged: &ranged,
                            requests: &requests,
                        };
                        let _ = proxy_one(client, upstream, &faults, log);
                    });
                }
            })
        };
        Self {
            port,
            stop,
            faults,
            broken,
            ranged,
            requests,
            thread: Some(thread),
        }
    }

    fn fail(&self, method: &str, path_part: &str, fault: Fault, times: usize) {
        self.faults
            .lock()
            .unwrap()
            .push((method.into(), path_part.into(), fault, times));
    }

    fn broken(&self) -> Vec<String> {
        self.broken.lock().unwrap().clone()
    }

    fn ranged(&self) -> Vec<String> {
        self.ranged.lock().unwrap().clone()
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FlakyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// (method, path fragment, fault, how many more times).
type Faults = Mutex<Vec<(String, String, Fault, usize)>>;

/// What a proxy records of the requests it passes on.
struct Logs<'a> {
    broken: &'a Mutex<Vec<String>>,
    ranged: &'a Mutex<Vec<String>>,
    requests: &'a Mutex<Vec<String>>,
}

fn proxy_one(client: TcpStream, upstream: u16, faults: &Faults, log: Logs) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut head = Vec::new();
    let mut content_length = 0usize;
    let mut request_line = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        if request_line.is_empty() {
            request_line = line.trim_end().to_string();
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            content_length = v.trim().parse().unwrap_or(0);
        }
        if line == "\r\n" {
            break;
        }
        // One request per connection: the registry closes after answering.
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; content_length];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split(' ');
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    log.requests
        .lock()
        .unwrap()
        .push(format!("{method} {path}"));
    if let Some(range) = String::from_utf8_lossy(&head).lines().find_map(|l| {
        l.to_ascii_lowercase()
            .strip_prefix("range:")
            .map(|v| v.trim().to_string())
    }) {
        log.ranged.lock().unwrap().push(format!("{path} {range}"));
    }
    let fault = {
        let mut f = faults.lock().unwrap();
        f.iter_mut()
            .find(|(m, p, _, n)| m == method && path.contains(p.as_str()) && *n > 0)
            .map(|e| {
                e.3 -= 1;
                e.2
            })
    };
    let mut client = client;
    if let Some(fault) = fault {
        log.broken.lock().unwrap().push(format!("{method} {path}"));
        if let Fault::Status(code) = fault {
            write!(
                client,
                "HTTP/1.1 {code} Flaky\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )?;
            return Ok(());
        }
    }
    let mut up = TcpStream::connect(("127.0.0.1", upstream))?;
    up.write_all(&head)?;
    up.write_all(&body)?;
    match fault {
        Some(Fault::Stall(n)) => {
            let mut buf = vec![0u8; n];
            up.read_exact(&mut buf)?;
            client.write_all(&buf)?;
            client.flush()?;
            std::thread::sleep(Duration::from_secs(30));
        }
        Some(Fault::Cut(n)) => {
            let mut buf = vec![0u8; n];
            let mut got = 0;
            while got < n {
                let k = up.read(&mut buf[got..])?;
                if k == 0 {
                    break;
                }
                got += k;
            }
            client.write_all(&buf[..got])?;
            client.shutdown(std::net::Shutdown::Both)?;
        }
        _ => {
            std::io::copy(&mut up, &mut client)?;
        }
    }
    Ok(())
}

/// Pushes and pulls go through a registry that answers 5xx and drops
/// connections mid-transfer: berth retries with backoff and completes.
#[test]
fn retries_through_5xx_and_dropped_connections() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let proxy = FlakyProxy::start(reg.port);
    let host = format!("127.0.0.1:{}", proxy.port);
    let t = ctx();
    let u = User::new(&t);
    let app = format!("{host}/retry/app:v1");
    t.import_busybox(&app);

    proxy.fail("HEAD", "/blobs/sha256:", Fault::Status(503), 2);
    proxy.fail("PATCH", "/blobs/uploads/", Fault::Status(500), 1);
    proxy.fail("PUT", "/manifests/v1", Fault::Status(502), 1);
    let r = u.run(["push", &app]).ok();
    assert!(r.stdout.contains(": Retrying in 1 second\n"), "{r}");
    assert!(r.stdout.contains(": Pushed\n"), "{r}");
    let (digest, _) = pushed_digest(&r.stdout);
    assert_eq!(proxy.broken().len(), 4, "{:?}", proxy.broken());

    // A config and a layer download cut short are fetched again.
    let m = registry_manifest(&reg, "retry/app", "v1");
    let config = m["config"]["digest"].as_str().unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    proxy.fail("GET", config, Fault::Cut(300), 1);
    proxy.fail("GET", layer, Fault::Cut(100_000), 1);
    proxy.fail("GET", "/manifests/v1", Fault::Status(503), 1);
    let t2 = ctx();
    let u2 = User::new(&t2);
    let r = u2.run(["pull", &app]).ok();
    assert!(r.stdout.contains(&format!("Digest: {digest}")), "{r}");
    assert_eq!(proxy.broken().len(), 7, "{:?}", proxy.broken());
    // The layer cut short resumed where it stopped instead of starting over.
    let ranged = proxy.ranged();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    assert!(ranged[0].contains(layer), "{ranged:?}");
    let from: u64 = ranged[0]
        .rsplit("bytes=")
        .next()
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap();
    assert!(from > 0 && from <= 100_000, "{ranged:?}");
    assert!(
        !r.stdout
            .contains(&format!("{}: Retrying in 1 second\n", short(layer))),
        "{r}"
    );
    u2.run(["run", "--rm", &app, "true"]).ok();
}

/// The manifest of a tag, read with plain HTTP (the registry has no auth).
fn registry_manifest(reg: &Registry, repo: &str, tag: &str) -> serde_json::Value {
    let resp = http(
        reg.port,
        "GET",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[(
            "Accept",
            "application/vnd.docker.distribution.manifest.v2+json",
        )],
        b"",
    )
    .unwrap();
    assert_eq!(resp.status, 200);
    json(&String::from_utf8(resp.body).unwrap())
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(data))
}

/// `build` pulls a base image that is not local, as Docker does; `--pull`
/// checks the registry even when it is.
#[test]
fn build_pulls_missing_base_images() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let base = format!("{host}/build/base:v1");
    t.import_busybox(&base);
    u.run(["push", &base]).ok();

    let t2 = ctx();
    let u2 = User::new(&t2);
    let dir = t2.work().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {base}\nRUN echo built > /b\n"),
    )
    .unwrap();
    let r = u2
        .run([
            "build",
            "--progress",
            "plain",
            "-t",
            "app",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stderr.contains(&format!("pulling {base}")), "{r}");
    assert_eq!(
        u2.run(["run", "--rm", "app", "cat", "/b"]).ok().stdout,
        "built\n"
    );
    let r = u2
        .run(["build", "--pull", "-q", dir.to_str().unwrap()])
        .ok();
    assert!(r.stdout.starts_with("sha256:"), "{r}");
    // A base that is nowhere fails with its name.
    std::fs::write(
        dir.join("Dockerfile"),
        format!("FROM {host}/build/nosuch:v1\n"),
    )
    .unwrap();
    let r = u2.run(["build", dir.to_str().unwrap()]).fails(1);
    assert!(r.stderr.contains("build/nosuch:v1"), "{r}");
}

/// A pull killed in the middle of a layer leaves what it downloaded; the
/// next pull asks only for the rest (Range) and completes.
#[test]
fn a_killed_pull_resumes_where_it_stopped() {
    require!("docker-registry");
    let reg = Registry::start(Auth::None);
    let proxy = FlakyProxy::start(reg.port);
    let host = format!("127.0.0.1:{}", proxy.port);
    let t = ctx();
    let u = User::new(&t);
    let app = format!("{host}/resume/app:v1");
    t.import_busybox(&app);
    u.run(["push", &app]).ok();
    let m = registry_manifest(&reg, "resume/app", "v1");
    let layer = m["layers"][0]["digest"].as_str().unwrap().to_string();
    let size = m["layers"][0]["size"].as_u64().unwrap();
    assert!(
        size > 700_000,
        "the layer is big enough to stall in: {size}"
    );

    proxy.fail("GET", &layer, Fault::Stall(600_000), 1);
    let t2 = ctx();
    let u2 = User::new(&t2);
    let mut child = u2
        .command(["pull", "-q", &app])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let blobs = t2.root().join("blobs/sha256");
    berth_test::eventually("a partial download on disk", || {
        std::fs::read_dir(&blobs).is_ok_and(|d| {
            d.flatten().any(|e| {
                e.file_name().to_string_lossy().contains("-partial-")
                    && e.metadata().is_ok_and(|m| m.len() >= 256 * 1024)
            })
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let r = u2.run(["pull", &app]).ok();
    assert!(r.stdout.contains("Status: Downloaded newer image"), "{r}");
    let ranged = proxy.ranged();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    let from: u64 = ranged[0]
        .rsplit("bytes=")
        .next()
        .and_then(|r| r.trim_end_matches('-').parse().ok())
        .unwrap();
    assert!((256 * 1024..=600_000).contains(&from), "{ranged:?}");
    u2.run(["run", "--rm", &app, "true"]).ok();
    t2.run(["system", "check", "--deep"]).ok();
    let left: Vec<String> = std::fs::read_dir(&blobs)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A pulled layer is kept as the compressed blob it came in, not as a
/// second, uncompressed copy; run, save, load and push all read it from
/// there, whether it is gzip or zstd.
#[test]
fn pulled_layers_stay_compressed() {
    require!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let base = format!("{host}/keep/base:v1");
    let app = format!("{host}/keep/app:v1");
    t.import_busybox(&base);
    derive(&u, &base, &app);
    u.run(["push", &app]).ok();
    let zstd = format!("{host}/keep/zstd:v1");
    berth_test::sh(&format!(
        "skopeo copy --format oci --dest-compress-format zstd \
         --src-tls-verify=false --dest-tls-verify=false docker://{app} docker://{zstd}"
    ));
    let m = skopeo_inspect(&host, "keep/zstd:v1", false);
    let layers: Vec<String> = m["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect();
    let manifest = http(
        reg.port,
        "GET",
        "/v2/keep/zstd/manifests/v1",
        &[("Accept", "application/vnd.oci.image.manifest.v1+json")],
        b"",
    )
    .unwrap();
    let manifest = json(&String::from_utf8(manifest.body).unwrap());
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let t2 = ctx();
    let u2 = User::new(&t2);
    u2.run(["pull", &zstd]).ok();
    let blobs = t2.blob_names();
    for l in &layers {
        assert!(blobs.contains(&l[7..].to_string()), "{l} kept: {blobs:?}");
    }
    let diffs = diff_ids(&u2, &zstd);
    assert_eq!(diffs, diff_ids(&u, &app));
    for d in &diffs {
        assert!(!blobs.contains(&d[7..].to_string()), "no tar for {d}");
    }
    assert_second(&u2, &zstd);
    t2.run(["system", "check", "--deep"]).ok();

    // save reads the tars out of the zstd blobs; another root loads and runs it.
    let archive = t2.work().join("zstd.tar");
    u2.run(["save", "-o", archive.to_str().unwrap(), &zstd])
        .ok();
    let t3 = ctx();
    let u3 = User::new(&t3);
    u3.run(["load", "-i", archive.to_str().unwrap()]).ok();
    assert_second(&u3, &zstd);

    // push gzips from the zstd blobs (schema 2 carries gzip only).
    let again = format!("{host}/keep/again:v1");
    u2.run(["tag", &zstd, &again]).ok();
    let r = u2.run(["push", &again]).ok();
    let (digest, _) = pushed_digest(&r.stdout);
    assert_eq!(
        skopeo_inspect(&host, "keep/again:v1", false)["Digest"],
        digest.as_str()
    );
    let t4 = ctx();
    let u4 = User::new(&t4);
    u4.run(["pull", &again]).ok();
    assert_second(&u4, &again);
}

/// A manifest may list one blob twice (a layer that undoes nothing, made
/// twice); the pull downloads it once and the image has both layers.
#[test]
fn a_layer_listed_twice_is_downloaded_once() {
    require!("docker-registry", "skopeo");
    let reg = Registry::start(Auth::None);
    let host = reg.host();
    let t = ctx();
    let u = User::new(&t);
    let one = format!("{host}/dup/one:v1");
    t.import_busybox(&one);
    u.run(["push", &one]).ok();

    // An OCI layout of the image, rewritten to list its layer twice.
    let dir = t.work().join("layout");
    berth_test::sh(&format!(
        "skopeo copy --src-tls-verify=false docker://{one} oci:{}",
        dir.display()
    ));
    let blob = |d: &str| dir.join("blobs/sha256").join(&d[7..]);
    let write_blob = |data: &[u8]| {
        let d = format!("sha256:{}", sha256_hex(data));
        std::fs::write(blob(&d), data).unwrap();
        (d, data.len())
    };
    let mut index = json(&std::fs::read_to_string(dir.join("index.json")).unwrap());
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = json(&std::fs::read_to_string(blob(&mdigest)).unwrap());
    let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config = json(&std::fs::read_to_string(blob(&cdigest)).unwrap());
    let layer = manifest["layers"][0].clone();
    assert_eq!(
        layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip",
        "the compressed path is the one under test"
    );
    manifest["layers"] = serde_json::json!([layer, layer]);
    let diff = config["rootfs"]["diff_ids"][0].clone();
    config["rootfs"]["diff_ids"] = serde_json::json!([diff, diff]);
    if let Some(h) = config["history"].as_array().cloned() {
        let mut twice = h.clone();
        twice.extend(h);
        config["history"] = serde_json::Value::Array(twice);
    }
    let (cd, cs) = write_blob(config.to_string().as_bytes());
    manifest["config"]["digest"] = cd.into();
    manifest["config"]["size"] = cs.into();
    let (md, ms) = write_blob(manifest.to_string().as_bytes());
    index["manifests"][0]["digest"] = md.into();
    index["manifests"][0]["size"] = ms.into();
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();

    let twice = format!("{host}/dup/twice:v1");
    berth_test::sh(&format!(
        "skopeo copy --dest-tls-verify=false oci:{} docker://{twice}",
        dir.display()
    ));
    let proxy = FlakyProxy::start(reg.port);
    let through = format!("127.0.0.1:{}/dup/twice:v1", proxy.port);
    let t2 = ctx();
    let u2 = User::new(&t2);
    let r = u2.run(["pull", &through]).ok();
    assert!(r.stdout.contains("Status: Downloaded newer image"), "{r}");
    let want = format!(
        "GET /v2/dup/twice/blobs/{}",
        layer["digest"].as_str().unwrap()
    );
    let gets = proxy.requests().iter().filter(|r| **r == want).count();
    assert_eq!(gets, 1, "{:?}", proxy.requests());
    assert_eq!(diff_ids(&u2, &through), vec![diff.as_str().unwrap(); 2]);
    u2.run(["run", "--rm", &through, "true"]).ok();
    t2.run(["system", "check", "--deep"]).ok();
    let left: Vec<String> = t2
        .blob_names()
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A push that fails after compressing a layer keeps what it compressed:
/// the next push uploads that very file instead of gzipping again.
#[test]
fn a_failed_push_keeps_its_compressed_layers() {
    require!("docker-registry");
    use std::os::unix::fs::MetadataExt;
    let reg = Registry::start(Auth::None);
    let proxy = FlakyProxy::start(reg.port);
    let host = format!("127.0.0.1:{}", proxy.port);
    let t = ctx();
    let u = User::new(&t);
    let app = format!("{host}/again/app:v1");
    t.import_busybox(&app);
    let before = t.blob_names();

    proxy.fail("POST", "/blobs/uploads/", Fault::Status(400), 1);
    let r = u.run(["push", &app]).fails(1);
    assert!(r.stderr.contains("400"), "{r}");
    let made: Vec<String> = t
        .blob_names()
        .into_iter()
        .filter(|n| !before.contains(n))
        .collect();
    assert_eq!(made.len(), 1, "one gzip blob: {made:?}");
    let inode = |n: &str| {
        std::fs::metadata(t.root().join("blobs/sha256").join(n))
            .unwrap()
            .ino()
    };
    let first = inode(&made[0]);
    t.run(["system", "check", "--deep"]).ok();

    let r = u.run(["push", &app]).ok();
    assert!(r.stdout.contains(": Pushed\n"), "{r}");
    let m = registry_manifest(&reg, "again/app", "v1");
    assert_eq!(m["layers"][0]["digest"], format!("sha256:{}", made[0]));
    assert_eq!(inode(&made[0]), first, "the same file, not a new gzip");
}
