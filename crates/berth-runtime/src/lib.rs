//! Containers: what a container is made of (config, OCI runtime spec, root
//! filesystem), and the monitor that runs one.
//!
//! berth generates an OCI runtime spec, as Docker does for runc, and runs it with
//! youki's `libcontainer`, which does the namespaces, pivot_root, capabilities,
//! cgroups (v1, v2 and this machine's hybrid layout) and the exec. Around that,
//! this crate owns what Docker's daemon and shim own: image config semantics,
//! users, the overlay root, /etc files, logs, restarts and exit statuses.

pub mod attach;
pub mod command;
pub mod config;
mod error;
pub mod exec;
pub mod files;
pub mod logs;
pub mod monitor;
pub mod netns;
pub mod network;
pub mod ports;
pub mod proc;
pub mod proxy;
pub mod rootfs;
pub mod signal;
pub mod spec;
pub mod step;
pub mod user;
pub mod volume;

pub use config::{ContainerConfig, HostConfig, MountSpec, RestartPolicy};

/// The static init process for `--init`, built from init/berth-init.c.
pub const INIT_BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/berth-init"));
pub use error::{Error, Result};
