//! The vocabulary of images shared by every berth crate: digests, Docker-normalized
//! references, the image config as Docker writes it, and layer chain IDs.

mod config;
mod digest;
pub mod media_types;
mod reference;

pub use config::{ContainerConfig, History, ImageConfig, RootFs};
pub use digest::{chain_id, Digest, DigestError};
pub use reference::{Reference, ReferenceError, DEFAULT_DOMAIN, DEFAULT_TAG};

/// The architecture name OCI and Docker use for the machine berth runs on.
pub fn host_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        "arm" => "arm",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}
