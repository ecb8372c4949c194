//! Registries over the OCI distribution API: `login`, `push` and `pull`.
//!
//! ```text
//! credentials  Docker's config.json, docker-credential-* helpers
//! tls          HTTPS or plain HTTP, certs.d CAs and client certificates
//! auth         WWW-Authenticate challenges, bearer tokens per scope
//! client       one registry: ping, authorized requests, retries
//! manifest     schema 2 / OCI manifests and indexes, platforms
//! gzip         parallel, deterministic gzip for layers
//! push, pull   the two directions, layer by layer, in parallel
//! progress     events for the binary to render
//! ```
//!
//! The store keeps layers uncompressed (DESIGN §4.5); a push compresses each
//! layer once, keeps the result in `blobs/` and records its digest
//! ([`berth_store::LayerBlob`]), so later pushes ask the registry about that
//! digest first and mount it across repositories where it already is.

mod auth;
mod client;
mod credentials;
mod error;
mod gzip;
mod manifest;
mod progress;
mod pull;
mod push;
mod tls;
mod work;

pub use auth::Scope;
pub use client::{Client, ClientOptions};
pub use credentials::{default_config_dir, server_key, Backend, CredentialStore, Credentials};
pub use error::{Error, Result};
pub use manifest::Platform;
pub use progress::{LayerEvent, Progress, Silent};
pub use pull::{pull, PullOptions, Pulled};
pub use push::{push, Pushed};
pub use tls::is_loopback;

/// Parallel gzip, for other crates that compress layers (`save`, `build`).
pub mod compress {
    pub use crate::gzip::{compress as gzip, BLOCK_SIZE, DEFAULT_LEVEL};
}
