//! Content checksums for the build cache (DESIGN §4.1 and §4.3).
//!
//! A `COPY`/`ADD` step's cache key includes a digest of the context entries it
//! selects, so the key changes exactly when the files the step would copy change.
//!
//! # What goes into the context digest, and why
//!
//! For each selected entry, sorted by path bytes with duplicates removed (so the
//! digest depends on the set, not on how the caller assembled it), one record:
//!
//! | field            | encoding              | why                                         |
//! |------------------|-----------------------|---------------------------------------------|
//! | kind             | 1 byte (`f d l p s c b`) | a file and a link with the same bytes differ |
//! | path             | u64 length + bytes    | the copy lands at that path; renames count  |
//! | mode             | u32                   | `COPY` keeps permission bits (`+x` matters) |
//! | uid, gid         | u32, u32              | DESIGN §4.1; `RUN --mount=type=bind` shows them. `COPY` resets them to 0:0, so a chown costs at most a rebuild, never a stale hit |
//! | size             | u64 (0 for dirs)      | cheap and catches truncation races          |
//! | content          | 32-byte sha256 (files) | what the copy contains                     |
//! | link target      | u64 length + bytes    | links are copied as links, never followed   |
//! | device numbers   | u32, u32 (devices)    | the node's identity                         |
//!
//! Integers are little-endian. The record stream starts with a version line, so
//! a change of this layout changes every key instead of aliasing old ones.
//!
//! Left out on purpose:
//! - modification and change times: a `git clone`, a CI checkout or `touch`
//!   must not invalidate the cache (Docker's tarsum and BuildKit drop them too);
//! - a directory's size: it depends on the filesystem, not on its content;
//! - inode numbers and hard-link structure: copies of equal content produce the
//!   same files in the image;
//! - extended attributes: the walk does not read them yet (`security.capability`
//!   will need to go in when it does).
//!
//! Excluded files are never in the selection, so changing them cannot change a key.

use std::io::Read;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Component, Path, PathBuf};

use berth_fs::ResultExt as _;
use berth_oci::Digest;
use sha2::{Digest as _, Sha256};

use crate::walk::{BuildContext, Entry, FileKind, WalkError};

/// Starts every context digest; bump it when the record layout changes.
const CONTEXT_DIGEST_VERSION: &[u8] = b"berth context digest v1\n";

/// Read size for hashing: large enough to amortize syscalls, small enough to
/// keep memory flat however big the file.
const HASH_BUFFER: usize = 64 * 1024;

/// A checksum that could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum ChecksumError {
    #[error(transparent)]
    Walk(#[from] WalkError),
    #[error(transparent)]
    Io(#[from] berth_fs::Error),
    /// The file's length differs from what the walk saw: it is being written.
    #[error(
        "{}: changed while the build context was hashed (walk saw {expected} bytes, read {read}); \
         retry once nothing writes to it",
        path.display()
    )]
    Changed {
        path: PathBuf,
        expected: u64,
        read: u64,
    },
}

impl BuildContext {
    /// The sha256 of a context file's content and its length, read in 64 KiB
    /// blocks (never whole into memory). The file must be included in the
    /// context and be a regular file.
    pub fn file_digest(&self, path: impl AsRef<Path>) -> Result<(Digest, u64), ChecksumError> {
        let path = path.as_ref();
        let file = self.open(path)?;
        let (sha, len) = hash_stream(file, &self.root().join(path))?;
        Ok((digest_of(&sha), len))
    }

    /// The digest over the selected entries, as described in the module
    /// documentation. `entries` normally come from [`Self::walk`], narrowed with
    /// [`select`].
    pub fn context_digest<'e>(
        &self,
        entries: impl IntoIterator<Item = &'e Entry>,
    ) -> Result<Digest, ChecksumError> {
        let mut entries: Vec<&Entry> = entries.into_iter().collect();
        entries.sort_by(|a, b| path_bytes(&a.path).cmp(path_bytes(&b.path)));
        entries.dedup_by(|a, b| a.path == b.path);

        let mut hasher = Sha256::new();
        hasher.update(CONTEXT_DIGEST_VERSION);
        for entry in entries {
            hasher.update([kind_tag(entry.kind)]);
            put_bytes(&mut hasher, path_bytes(&entry.path));
            hasher.update(entry.mode.to_le_bytes());
            hasher.update(entry.uid.to_le_bytes());
            hasher.update(entry.gid.to_le_bytes());
            let size = if entry.kind == FileKind::Dir {
                0
            } else {
                entry.size
            };
            hasher.update(size.to_le_bytes());
            match entry.kind {
                FileKind::File => hasher.update(self.content_sha(entry)?),
                FileKind::Symlink => {
                    let target = entry.link_target.as_deref().unwrap_or(Path::new(""));
                    put_bytes(&mut hasher, path_bytes(target));
                }
                FileKind::CharDevice | FileKind::BlockDevice => {
                    let (major, minor) = entry.device.unwrap_or_default();
                    hasher.update(major.to_le_bytes());
                    hasher.update(minor.to_le_bytes());
                }
                FileKind::Dir | FileKind::Fifo | FileKind::Socket => {}
            }
        }
        Ok(digest_of(&hasher.finalize().into()))
    }

    /// The content hash of a walked regular file, checked against its size.
    fn content_sha(&self, entry: &Entry) -> Result<[u8; 32], ChecksumError> {
        let file = self.open_beneath(&entry.path)?;
        let (sha, read) = hash_stream(file, &self.root().join(&entry.path))?;
        if read != entry.size {
            return Err(ChecksumError::Changed {
                path: entry.path.clone(),
                expected: entry.size,
                read,
            });
        }
        Ok(sha)
    }
}

/// The entries at or below any of `sources` (paths relative to the context
/// root; `.` selects everything), in their original order. Wildcards are not
/// expanded here: the caller resolves `COPY` sources first.
pub fn select<'e, S: AsRef<Path>>(entries: &'e [Entry], sources: &[S]) -> Vec<&'e Entry> {
    let sources: Vec<PathBuf> = sources
        .iter()
        .map(|s| {
            s.as_ref()
                .components()
                .filter(|c| !matches!(c, Component::CurDir | Component::RootDir))
                .collect()
        })
        .collect();
    entries
        .iter()
        .filter(|e| sources.iter().any(|s| e.path.starts_with(s)))
        .collect()
}

/// Streams `reader` through sha256; `path` names it in errors.
fn hash_stream(mut reader: impl Read, path: &Path) -> Result<([u8; 32], u64), ChecksumError> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; HASH_BUFFER];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e).at("cannot read", path)?,
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hasher.finalize().into(), total))
}

fn digest_of(sha: &[u8; 32]) -> Digest {
    // A 64-character lowercase hex string is always a valid digest.
    Digest::from_sha256_hex(&hex::encode(sha))
        .unwrap_or_else(|_| unreachable!("hex of 32 bytes is a valid sha256 digest"))
}

fn path_bytes(path: &Path) -> &[u8] {
    path.as_os_str().as_bytes()
}

fn put_bytes(hasher: &mut Sha256, bytes: &[u8]) {
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn kind_tag(kind: FileKind) -> u8 {
    match kind {
        FileKind::File => b'f',
        FileKind::Dir => b'd',
        FileKind::Symlink => b'l',
        FileKind::Fifo => b'p',
        FileKind::Socket => b's',
        FileKind::CharDevice => b'c',
        FileKind::BlockDevice => b'b',
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt as _};

    use super::*;
    use crate::walk::Filter;

    struct Fixture {
        dir: tempfile::TempDir,
        ignore: Vec<&'static str>,
    }

    impl Fixture {
        fn new(ignore: &[&'static str]) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path();
            fs::create_dir_all(root.join("src/sub")).unwrap();
            fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
            fs::write(root.join("src/sub/lib.rs"), "pub fn f() {}\n").unwrap();
            fs::write(root.join("README.md"), "hello\n").unwrap();
            fs::write(root.join("secret.env"), "TOKEN=1\n").unwrap();
            symlink("main.rs", root.join("src/link")).unwrap();
            Self {
                dir,
                ignore: ignore.to_vec(),
            }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn digest_of(&self, sources: &[&str]) -> Digest {
            let ctx = BuildContext::new(self.dir.path(), Filter::excluding(&self.ignore).unwrap())
                .unwrap();
            let entries: Vec<Entry> = ctx.walk().collect::<Result<_, _>>().unwrap();
            ctx.context_digest(select(&entries, sources)).unwrap()
        }

        fn digest(&self) -> Digest {
            self.digest_of(&["."])
        }
    }

    #[test]
    fn file_digest_streams_content() {
        let f = Fixture::new(&[]);
        let big = vec![7u8; 3 * HASH_BUFFER + 17];
        fs::write(f.path("big"), &big).unwrap();
        let ctx = BuildContext::new(f.dir.path(), Filter::default()).unwrap();
        let (digest, len) = ctx.file_digest("big").unwrap();
        assert_eq!(len, big.len() as u64);
        assert_eq!(digest, Digest::sha256_of(&big));
        assert!(
            ctx.file_digest("src/link").is_err(),
            "a symlink has no content"
        );
    }

    #[test]
    fn digest_is_stable() {
        let f = Fixture::new(&[]);
        assert_eq!(f.digest(), f.digest());
        assert!(f.digest().as_str().starts_with("sha256:"));
    }

    #[test]
    fn content_change_changes_digest() {
        let f = Fixture::new(&[]);
        let before = f.digest();
        fs::write(f.path("src/main.rs"), "fn main() { }\n").unwrap();
        assert_ne!(f.digest(), before);
    }

    #[test]
    fn same_size_content_change_changes_digest() {
        let f = Fixture::new(&[]);
        let before = f.digest();
        fs::write(f.path("README.md"), "HELLO\n").unwrap();
        assert_ne!(f.digest(), before);
    }

    #[test]
    fn mode_change_changes_digest() {
        let f = Fixture::new(&[]);
        let before = f.digest();
        fs::set_permissions(f.path("src/main.rs"), fs::Permissions::from_mode(0o755)).unwrap();
        assert_ne!(f.digest(), before);
    }

    #[test]
    fn rename_changes_digest() {
        let f = Fixture::new(&[]);
        let before = f.digest();
        fs::rename(f.path("src/sub/lib.rs"), f.path("src/sub/lib2.rs")).unwrap();
        assert_ne!(f.digest(), before);
    }

    #[test]
    fn link_target_change_changes_digest() {
        let f = Fixture::new(&[]);
        let before = f.digest();
        fs::remove_file(f.path("src/link")).unwrap();
        symlink("sub/lib.rs", f.path("src/link")).unwrap();
        assert_ne!(f.digest(), before);
    }

    #[test]
    fn excluded_file_change_keeps_digest() {
        let f = Fixture::new(&["*.env"]);
        let before = f.digest();
        fs::write(f.path("secret.env"), "TOKEN=2 and longer\n").unwrap();
        assert_eq!(f.digest(), before);
        // Adding an excluded file does not change it either.
        fs::write(f.path("other.env"), "x").unwrap();
        assert_eq!(f.digest(), before);
    }

    #[test]
    fn unselected_change_keeps_digest_and_mtime_is_ignored() {
        let f = Fixture::new(&[]);
        let before = f.digest_of(&["src"]);
        fs::write(f.path("README.md"), "changed\n").unwrap();
        assert_eq!(f.digest_of(&["./src/"]), before);
        // Rewriting the same bytes (new mtime) keeps the digest.
        fs::write(f.path("src/main.rs"), "fn main() {}\n").unwrap();
        assert_eq!(f.digest_of(&["src"]), before);
    }

    #[test]
    fn selection_order_and_duplicates_do_not_matter() {
        let f = Fixture::new(&[]);
        assert_eq!(f.digest_of(&["src", "src/sub"]), f.digest_of(&["src"]));
        assert_eq!(
            f.digest_of(&["README.md", "src"]),
            f.digest_of(&["src", "README.md"])
        );
    }

    #[test]
    fn changed_size_is_detected() {
        let f = Fixture::new(&[]);
        let ctx = BuildContext::new(f.dir.path(), Filter::default()).unwrap();
        let entries: Vec<Entry> = ctx.walk().collect::<Result<_, _>>().unwrap();
        fs::write(f.path("README.md"), "grown since the walk\n").unwrap();
        let err = ctx.context_digest(&entries).unwrap_err();
        assert!(matches!(err, ChecksumError::Changed { .. }), "{err}");
    }
}
