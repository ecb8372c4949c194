//! `berth build`: Dockerfile to image, one layer per RUN/COPY/ADD, with a
//! content-addressed cache (DESIGN.md §4).
//!
//! ```text
//! Dockerfile ──parse──▶ stages ──plan(target)──▶ stage threads (each waits for
//!   the stages it needs) ──step──▶ cache lookup ─hit─▶ recorded snapshot
//!                                      └─miss─▶ overlay(layers) + upper ──RUN/COPY──▶
//!                                              upper → layer (tar hashed while written)
//!                                              → store (layer + cache record, one tx)
//! target stage ──▶ config ──▶ report + policy ──▶ commit image and names
//! ```
//!
//! The library reports through [`progress::Reporter`] and never prints.

mod builder;
mod copy;
pub mod error;
mod key;
pub mod progress;
pub mod report;
mod rootpath;
mod run;
mod snapshot;
mod state;

pub use builder::{base_images, build, BuildOptions, NetworkMode, Outcome, Secret};
pub use error::{Error, Result};
pub use progress::{Event, Reporter};
