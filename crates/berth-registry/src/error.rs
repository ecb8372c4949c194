use std::path::PathBuf;

use berth_oci::Digest;

/// Why a registry operation failed. Messages follow Docker's wording where a
/// user may search for it (`manifest unknown`, `unauthorized: …`) and say what
/// to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Image(#[from] berth_image::Error),
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),

    /// No connection could be made (refused, DNS, TLS handshake, timeout).
    #[error("cannot reach registry {registry} at {url}: {reason}")]
    Unreachable {
        registry: String,
        url: String,
        reason: String,
    },
    /// The registry (or its token service) refused the credentials.
    #[error("{registry}: unauthorized: {message}{hint}", hint = login_hint(.registry, .logged_in))]
    Unauthorized {
        registry: String,
        message: String,
        /// Whether credentials were sent: the hint differs.
        logged_in: bool,
    },
    /// `login` with credentials the registry does not accept.
    #[error("login to {registry} failed: incorrect username or password ({message})")]
    LoginFailed { registry: String, message: String },
    /// Authenticated, but this account may not do this (HTTP 403).
    #[error("{what}: denied: {message}")]
    Denied { what: String, message: String },
    /// The tag or digest does not exist in the repository.
    #[error("manifest for {reference} not found: {message}")]
    ManifestUnknown { reference: String, message: String },
    /// The repository does not exist (or hides behind authorization).
    #[error("repository {repository} not found: {message}")]
    NameUnknown { repository: String, message: String },
    /// Any other answer the protocol does not expect.
    #[error("{method} {url}: unexpected answer {status}: {message}")]
    Http {
        method: String,
        url: String,
        status: u16,
        message: String,
    },
    /// A transfer ended early or could not be read.
    #[error("{what}: {source}")]
    Transfer {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Content whose digest is not the one it was asked for by.
    #[error("{what}: digest mismatch: expected {expected}, got {actual}; the registry sent corrupt or different content")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// A manifest or index berth cannot use.
    #[error("invalid manifest for {reference}: {reason}")]
    BadManifest { reference: String, reason: String },
    #[error("unsupported manifest media type {media_type:?} for {reference}")]
    UnsupportedMediaType {
        reference: String,
        media_type: String,
    },
    #[error("no matching manifest for {platform} in the manifest list entries")]
    NoMatchingPlatform { platform: String },
    #[error("image with reference {reference} was found but does not match the specified platform: wanted {wanted}, actual: {actual}")]
    PlatformMismatch {
        reference: String,
        wanted: String,
        actual: String,
    },
    #[error("invalid platform {0:?}: expected os/arch[/variant], e.g. linux/amd64")]
    BadPlatform(String),
    /// The image config does not match its manifest.
    #[error("image {reference}: {reason}")]
    BadImage { reference: String, reason: String },
    /// A token service that answered with something that is not a token.
    #[error("token service {realm}: {reason}")]
    Token { realm: String, reason: String },
    /// Docker's `config.json` cannot be read or written.
    #[error("{}: {reason}", path.display())]
    Config { path: PathBuf, reason: String },
    /// A `docker-credential-*` helper failed.
    #[error("credential helper docker-credential-{helper} {action} failed: {reason}")]
    Helper {
        helper: String,
        action: &'static str,
        reason: String,
    },
    /// CA or client certificates from `certs.d` that cannot be used.
    #[error("certificates for {registry} in {}: {reason}", dir.display())]
    Certificates {
        registry: String,
        dir: PathBuf,
        reason: String,
    },
}

impl Error {
    /// Whether trying again may help: a dropped or refused connection, or a
    /// registry (or proxy) answering that it is overloaded or failing.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Transfer { .. } | Error::Unreachable { .. } => true,
            Error::Http { status, .. } => matches!(status, 408 | 429 | 500..=599),
            _ => false,
        }
    }
}

fn login_hint(registry: &str, logged_in: &bool) -> String {
    if *logged_in {
        String::new()
    } else {
        format!("; run `berth login {registry}` first")
    }
}

pub type Result<T> = std::result::Result<T, Error>;
