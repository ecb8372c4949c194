//! Filesystem primitives every store write goes through.
//!
//! Each error names the path it concerns, so a user sees *which* file failed, and
//! every write that others may observe lands with temp file + fsync + rename: a
//! process killed at any instant leaves either the old content or the new, never a
//! torn file.

mod atomic;
mod error;
mod hash;
mod lock;
mod mounts;
pub mod xattr;

pub use atomic::{
    fsync_dir, process_alive, temp_owner, write_atomic, write_atomic_mode, AtomicFile, TEMP_PREFIX,
};
pub use error::{Error, Result, ResultExt};
pub use hash::{sha256_hex_of_file, HashingReader, HashingWriter};
pub use lock::FileLock;
pub use mounts::{is_mount_point, mounts_under};
