//! `login`, `logout`, `push`, `pull`, with Docker's output: status lines per
//! layer when piped, redrawn lines with progress bars on a terminal.

use std::collections::BTreeSet;
use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Mutex;

use berth_oci::Reference;
use berth_registry::{
    Backend, Client, ClientOptions, CredentialStore, Credentials, LayerEvent, Platform, Progress,
    PullOptions, Silent,
};

use super::Context;
use crate::cli::{LoginArgs, LogoutArgs, PullArgs, PushArgs};
use crate::error::CliError;
use crate::output;

/// Docker's wording, so scripts that grep for it keep working.
const UNENCRYPTED_WARNING: &str = "WARNING! Your password will be stored unencrypted in";

impl From<berth_registry::Error> for CliError {
    fn from(e: berth_registry::Error) -> Self {
        CliError::new(e.to_string())
    }
}

/// `host[:port]` of a `login`/`logout` argument, which may be a URL
/// (`https://index.docker.io/v1/`) as Docker accepts; Docker Hub is `docker.io`.
fn registry_host(server: Option<&str>) -> String {
    let Some(s) = server.map(str::trim).filter(|s| !s.is_empty()) else {
        return berth_oci::DEFAULT_DOMAIN.to_string();
    };
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s);
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            berth_oci::DEFAULT_DOMAIN.to_string()
        }
        h => h.to_string(),
    }
}

fn credential_store() -> Result<CredentialStore, CliError> {
    Ok(CredentialStore::open(&berth_registry::default_config_dir())?)
}

fn connect(registry: &str, tls_verify: bool) -> Result<Client, CliError> {
    let creds = credential_store()?.get(registry)?;
    let opts = ClientOptions {
        tls_verify,
        ..ClientOptions::default()
    };
    Ok(Client::connect(registry, creds, &opts)?)
}

pub fn login(_ctx: &Context, a: LoginArgs) -> Result<(), CliError> {
    let registry = registry_host(a.server.as_deref());
    let mut store = credential_store()?;
    if a.password.is_some() && a.password_stdin {
        return Err(CliError::new(
            "--password and --password-stdin are mutually exclusive",
        ));
    }
    let opts = ClientOptions {
        tls_verify: a.tls_verify,
        ..ClientOptions::default()
    };
    let mut out = output::stdout();
    let password = if a.password_stdin {
        if a.username.is_none() {
            return Err(CliError::new(
                "Must provide --username with --password-stdin",
            ));
        }
        let mut line = String::new();
        io::stdin().lock().read_line(&mut line)?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    } else {
        if a.password.is_some() {
            let _ = writeln!(
                io::stderr(),
                "WARNING! Using --password via the CLI is insecure. Use --password-stdin."
            );
        }
        a.password.clone()
    };

    // Docker first tries what it has stored when not given new credentials.
    if a.username.is_none() && password.is_none() {
        if let Some(stored) = store.get(&registry)? {
            let client = Client::connect(&registry, Some(stored.clone()), &opts)?;
            if client.login().is_ok() {
                writeln!(out, "Authenticating with existing credentials...")?;
                writeln!(out, "Login Succeeded")?;
                return Ok(());
            }
        }
    }
    let interactive = io::stdin().is_terminal();
    let username = match a.username.clone() {
        Some(u) => u,
        None if interactive => prompt(&mut out, "Username: ", true)?,
        None => {
            return Err(CliError::new(
                "Cannot perform an interactive login from a non TTY device",
            ))
        }
    };
    let password = match password {
        Some(p) => p,
        None if interactive => prompt(&mut out, "Password: ", false)?,
        None => {
            return Err(CliError::new(
                "Cannot perform an interactive login from a non TTY device",
            ))
        }
    };
    if username.is_empty() {
        return Err(CliError::new("Username is required"));
    }
    if password.is_empty() {
        return Err(CliError::new("Password is required"));
    }
    let mut creds = Credentials {
        username,
        password,
        identity_token: None,
    };
    let client = Client::connect(&registry, Some(creds.clone()), &opts)?;
    if let Some(token) = client.login()? {
        // Docker keeps the registry's refresh token instead of the password.
        creds.password.clear();
        creds.identity_token = Some(token);
    }
    if let Backend::File(path) = store.save(&registry, &creds)? {
        let _ = writeln!(
            io::stderr(),
            "{UNENCRYPTED_WARNING} {}.\nConfigure a credential helper to remove this warning. See\n\
             https://docs.docker.com/engine/reference/commandline/login/#credentials-store\n",
            path.display()
        );
    }
    writeln!(out, "Login Succeeded")?;
    Ok(())
}

/// Reads a line from the terminal; without echo for passwords.
fn prompt(out: &mut dyn Write, text: &str, echo: bool) -> Result<String, CliError> {
    write!(out, "{text}")?;
    out.flush()?;
    let stdin = io::stdin();
    let saved = if echo {
        None
    } else {
        rustix::termios::tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        })
    };
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        writeln!(out)?;
    }
    read?;
    Ok(line.trim_end_matches(['\n', '\r']).trim().to_string())
}

pub fn logout(_ctx: &Context, a: LogoutArgs) -> Result<(), CliError> {
    let registry = registry_host(a.server.as_deref());
    let shown = berth_registry::server_key(&registry);
    let mut store = credential_store()?;
    let mut out = output::stdout();
    if store.erase(&registry)? {
        writeln!(out, "Removing login credentials for {shown}")?;
    } else {
        writeln!(out, "Not logged in to {shown}")?;
    }
    Ok(())
}

pub fn push(ctx: &Context, a: PushArgs) -> Result<(), CliError> {
    let name = Reference::parse_normalized_name(&a.name)?;
    if name.digest().is_some() {
        return Err(CliError::new(format!(
            "cannot push a digest reference ({}); push a tag",
            a.name
        )));
    }
    let mut store = ctx.store()?;
    let mut out = output::stdout();
    let tags: Vec<Reference> = if a.all_tags {
        if name.tag().is_some() {
            return Err(CliError::new("tag can't be used with --all-tags/-a"));
        }
        let repo = name.repository();
        let tags: BTreeSet<Reference> = store
            .images()?
            .into_iter()
            .flat_map(|i| i.tags)
            .filter(|t| t.repository() == repo)
            .collect();
        if tags.is_empty() {
            return Err(no_local_image(&name));
        }
        tags.into_iter().collect()
    } else {
        if name.tag().is_none() && !a.quiet {
            writeln!(out, "Using default tag: {}", berth_oci::DEFAULT_TAG)?;
        }
        vec![name.with_tag(name.tag().unwrap_or(berth_oci::DEFAULT_TAG))?]
    };
    // Resolve every image before talking to the registry.
    let images = tags
        .iter()
        .map(|t| {
            store.resolve_image(&t.to_string()).map_err(|e| match e {
                berth_store::Error::NoSuchImage(_) => no_local_image(t),
                other => other.into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if !a.quiet {
        writeln!(out, "The push refers to repository [{}]", name.repository())?;
    }
    drop(out);
    let client = connect(name.domain(), a.tls_verify)?;
    for (target, image) in tags.iter().zip(&images) {
        let pushed = if a.quiet {
            berth_registry::push(&client, &mut store, image, target, &Silent)?
        } else {
            let r = Renderer::new();
            let p = berth_registry::push(&client, &mut store, image, target, &r);
            r.finish();
            p?
        };
        let mut out = output::stdout();
        if a.quiet {
            writeln!(out, "{target}")?;
        } else {
            writeln!(
                out,
                "{}: digest: {} size: {}",
                target.tag().unwrap_or(berth_oci::DEFAULT_TAG),
                pushed.digest,
                pushed.size
            )?;
        }
    }
    Ok(())
}

fn no_local_image(name: &Reference) -> CliError {
    CliError::new(format!(
        "An image does not exist locally with the tag: {}",
        name.familiar()
    ))
}

pub fn pull(ctx: &Context, a: PullArgs) -> Result<(), CliError> {
    let name = Reference::parse_normalized_name(&a.name)?;
    let opts = match &a.platform {
        Some(p) => PullOptions {
            platform: Platform::parse(p)?,
            platform_explicit: true,
        },
        None => PullOptions::default(),
    };
    let mut store = ctx.store()?;
    let mut out = output::stdout();
    if a.all_tags && (name.tag().is_some() || name.digest().is_some()) {
        return Err(CliError::new("tag can't be used with --all-tags/-a"));
    }
    if !a.all_tags && name.tag().is_none() && name.digest().is_none() && !a.quiet {
        writeln!(out, "Using default tag: {}", berth_oci::DEFAULT_TAG)?;
    }
    let client = connect(name.domain(), a.tls_verify)?;
    let targets: Vec<Reference> = if a.all_tags {
        let mut tags = client.list_tags(name.path())?;
        tags.sort();
        tags.iter()
            .map(|t| name.with_tag(t))
            .collect::<Result<_, _>>()?
    } else if name.tag().is_none() && name.digest().is_none() {
        vec![name.with_tag(berth_oci::DEFAULT_TAG)?]
    } else {
        vec![name.clone()]
    };
    let mut any_updated = false;
    for target in &targets {
        if !a.quiet {
            let what = match (target.digest(), target.tag()) {
                (Some(d), _) => d.to_string(),
                (None, t) => t.unwrap_or(berth_oci::DEFAULT_TAG).to_string(),
            };
            writeln!(out, "{what}: Pulling from {}", target.path())?;
            out.flush()?;
        }
        // The renderer writes from the download threads: release stdout.
        drop(out);
        let pulled = if a.quiet {
            berth_registry::pull(&client, &mut store, target, &opts, &Silent)?
        } else {
            let r = Renderer::new();
            let p = berth_registry::pull(&client, &mut store, target, &opts, &r);
            r.finish();
            p?
        };
        any_updated |= pulled.updated;
        out = output::stdout();
        if !a.quiet {
            writeln!(out, "Digest: {}", pulled.digest)?;
            if !a.all_tags {
                let status = if pulled.updated {
                    "Downloaded newer image for"
                } else {
                    "Image is up to date for"
                };
                writeln!(out, "Status: {status} {}", target.familiar())?;
            }
        }
    }
    if a.all_tags {
        if !a.quiet {
            let status = if any_updated {
                "Downloaded newer image for"
            } else {
                "Image is up to date for"
            };
            writeln!(out, "Status: {status} {}", name.familiar_repository())?;
        }
        writeln!(out, "{}", name.repository())?;
    } else {
        writeln!(out, "{}", targets[0])?;
    }
    Ok(())
}

/// Pulls `name` (a base image of a build) without output; the image's ID.
pub fn pull_quietly(ctx: &Context, name: &str) -> Result<(), CliError> {
    let mut target = Reference::parse_normalized_name(name)?;
    if target.tag().is_none() && target.digest().is_none() {
        target = target.with_tag(berth_oci::DEFAULT_TAG)?;
    }
    let mut store = ctx.store()?;
    let client = connect(target.domain(), true)?;
    berth_registry::pull(
        &client,
        &mut store,
        &target,
        &PullOptions::default(),
        &Silent,
    )?;
    Ok(())
}

/// Renders layer events as Docker does: on a terminal one line per layer,
/// redrawn in place with a progress bar; otherwise one line per status
/// change, without byte counts.
struct Renderer {
    tty: bool,
    /// Terminal columns: a line that wraps would break the redrawing.
    columns: usize,
    state: Mutex<RenderState>,
}

#[derive(Default)]
struct RenderState {
    /// Layer IDs in the order their lines were printed.
    lines: Vec<String>,
    last: Vec<String>,
    /// When a progress bar was last drawn: bars redraw at most every
    /// [`REDRAW_EVERY`], as Docker's do.
    drawn: Option<std::time::Instant>,
}

const REDRAW_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Width of Docker's progress bar, between the brackets.
const BAR_WIDTH: u64 = 50;

impl Renderer {
    fn new() -> Self {
        let columns = rustix::termios::tcgetwinsize(io::stdout())
            .map(|w| w.ws_col as usize)
            .unwrap_or(80);
        Self {
            tty: io::stdout().is_terminal(),
            columns,
            state: Mutex::new(RenderState::default()),
        }
    }

    fn finish(&self) {
        let _ = io::stdout().flush();
    }

    fn text(&self, event: &LayerEvent) -> Option<String> {
        match event.bytes() {
            Some((current, total)) if self.tty => {
                let filled = (current.min(total) * BAR_WIDTH)
                    .checked_div(total)
                    .unwrap_or(BAR_WIDTH);
                let mut bar = "=".repeat(filled as usize);
                if filled < BAR_WIDTH {
                    bar.push('>');
                }
                let counts = format!("{}/{}", human(current), human(total));
                // "0123456789ab: Downloading [bar]  12.3MB/45.6MB"
                if self.columns < 14 + 12 + BAR_WIDTH as usize + 4 + counts.len() {
                    return Some(format!("{}  {counts}", event.docker_text()));
                }
                Some(format!(
                    "{:<11} [{bar:<width$}]  {counts}",
                    event.docker_text(),
                    width = BAR_WIDTH as usize
                ))
            }
            // Piped output has no byte progress (Docker's choice too), and
            // compressing is part of "Preparing".
            Some(_) => None,
            None if !self.tty && *event == LayerEvent::Compressing => None,
            None => Some(event.docker_text()),
        }
    }
}

impl Progress for Renderer {
    fn layer(&self, id: &str, event: LayerEvent) {
        let Some(text) = self.text(&event) else {
            return;
        };
        let mut st = self.state.lock().expect("render lock");
        if event.bytes().is_some() {
            if st.drawn.is_some_and(|t| t.elapsed() < REDRAW_EVERY) {
                return;
            }
            st.drawn = Some(std::time::Instant::now());
        }
        let mut out = io::stdout().lock();
        let line = format!("{id}: {text}");
        if !self.tty {
            let _ = writeln!(out, "{line}");
            return;
        }
        match st.lines.iter().position(|l| l == id) {
            Some(i) => {
                if st.last[i] == line {
                    return;
                }
                let up = st.lines.len() - i;
                // Up to the layer's line, rewrite it, back down.
                let _ = write!(out, "\x1b[{up}A\r\x1b[2K{line}\r\x1b[{up}B");
                st.last[i] = line;
            }
            None => {
                let _ = writeln!(out, "{line}");
                st.lines.push(id.to_string());
                st.last.push(line);
            }
        }
        let _ = out.flush();
    }
}

/// Sizes as Docker's progress prints them: decimal units, three significant
/// digits (`12.3MB`, `1.5kB`, `157MB`).
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut s = format!("{v:.digits$}");
    if s.contains('.') {
        s = s.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{s}{}", UNITS[u])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_from_login_arguments() {
        assert_eq!(registry_host(None), "docker.io");
        assert_eq!(
            registry_host(Some("https://index.docker.io/v1/")),
            "docker.io"
        );
        assert_eq!(registry_host(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(registry_host(Some("http://reg:5000/v2/")), "reg:5000");
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(999), "999B");
        assert_eq!(human(1_500), "1.5kB");
        assert_eq!(human(12_345_678), "12.3MB");
        assert_eq!(human(156_700_000), "157MB");
    }
}
