//! Applying a layer tar to a directory, in the form overlayfs reads as a lower
//! layer: `.wh.NAME` becomes a 0/0 character device, `.wh..wh..opq` the
//! `trusted.overlay.opaque` xattr (as containerd's and Docker's overlay
//! snapshotters store layers).

use std::collections::HashSet;
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{lchown, symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use berth_fs::ResultExt;
use rustix::fs::{mknodat, utimensat, AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::error::{Error, Result};

pub const WHITEOUT_PREFIX: &str = ".wh.";
pub const OPAQUE_WHITEOUT: &str = ".wh..wh..opq";
/// aufs bookkeeping entries (`.wh..wh.plnk`, `.wh..wh.aufs`) that carry no meaning
/// for overlay and are skipped, as Docker does.
const AUFS_META_PREFIX: &str = ".wh..wh.";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";
/// What the tar reader says when the stream ends inside the padding after an
/// entry's data (a header cut short is "failed to read entire block" instead,
/// and stays an error).
const TAR_SKIP_EOF: &str = "unexpected EOF during skip";

/// What unpacking learned about the layer.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LayerStats {
    /// Docker's layer size: the bytes of every non-directory entry, hard links
    /// counted once, symlinks by the length of their target (what Docker's
    /// overlay2 driver reports as the diff size).
    pub size: u64,
    pub entries: u64,
}

/// The largest write unpacking makes: `io::copy` writes 8 KiB at a time,
/// and for a layer of large files the system calls then cost more than the
/// copying.
const WRITE_BUFFER: usize = 1 << 20;

/// Fills `buf` as far as the input goes: a decompressor returns a little at
/// a time, and fewer, larger hand-overs (to a queue, to a write) are cheaper.
/// Returns the bytes read (0 at the end) and the error that stopped it, if
/// one did.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Copies `r` to the end into `w` through `buf` (grown as a file needs, up
/// to [`WRITE_BUFFER`], and kept for the next file). Returns the bytes copied.
fn copy_in_large_writes(
    r: &mut dyn Read,
    w: &mut dyn io::Write,
    buf: &mut Vec<u8>,
) -> io::Result<u64> {
    let mut total = 0u64;
    loop {
        if buf.is_empty() {
            buf.resize(8 << 10, 0);
        }
        let (n, error) = read_full(r, buf);
        if let Some(e) = error {
            return Err(e);
        }
        if n == 0 {
            return Ok(total);
        }
        w.write_all(&buf[..n])?;
        total += n as u64;
        if n == buf.len() && buf.len() < WRITE_BUFFER {
            let grown = (buf.len() * 4).min(WRITE_BUFFER);
            buf.resize(grown, 0);
        }
    }
}

/// Unpacks the tar stream `input` into `dest` (which must exist). Returns an
/// error on a malformed tar or an entry that would escape `dest`.
pub fn unpack_layer<R: Read>(input: R, dest: &Path, what: &str) -> Result<LayerStats> {
    let bad = |source: io::Error| Error::BadTar {
        what: what.to_string(),
        source,
    };
    let running_as_root = rustix::process::geteuid().is_root();
    let mut archive = tar::Archive::new(input);
    let mut stats = LayerStats::default();
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    let mut seen_dirs: HashSet<PathBuf> = HashSet::new();
    let mut copy_buf = Vec::new();

    let mut entries = archive.entries().map_err(bad)?;
    loop {
        let entry = match entries.next() {
            None => break,
            Some(Ok(e)) => e,
            // Some writers (umoci 0.4's `insert`) end a layer right after the
            // last file's data, without its padding or the end-of-archive
            // blocks. Docker reads those layers, so berth does too: every
            // entry before was complete (their sizes are checked below).
            Some(Err(e)) if stats.entries > 0 && e.to_string() == TAR_SKIP_EOF => break,
            Some(Err(e)) => return Err(bad(e)),
        };
        let mut entry = entry;
        let raw_path = entry.path().map_err(bad)?.into_owned();
        let Some(rel) = clean_path(&raw_path)? else {
            continue; // the root itself
        };
        stats.entries += 1;
        let target = dest.join(&rel);
        let parent = target.parent().expect("a joined path has a parent");
        ensure_parents(dest, &rel, &mut seen_dirs)?;

        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if name == OPAQUE_WHITEOUT {
            rustix::fs::lsetxattr(
                parent,
                OVERLAY_OPAQUE_XATTR,
                b"y",
                rustix::fs::XattrFlags::empty(),
            )
            .map_err(io::Error::from)
            .at("cannot mark opaque", parent)?;
            continue;
        }
        if name.starts_with(AUFS_META_PREFIX) {
            continue;
        }
        if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
            let wh = parent.join(hidden);
            remove_existing(&wh)?;
            mknodat(CWD, &wh, FileType::CharacterDevice, Mode::empty(), 0)
                .map_err(io::Error::from)
                .at("cannot create whiteout", &wh)?;
            continue;
        }

        let header = entry.header().clone();
        let kind = header.entry_type();
        let old = header.as_old();
        let mode =
            blank_is_zero(header.mode().map(u64::from), &old.mode).map_err(bad)? as u32 & 0o7777;
        let uid = blank_is_zero(header.uid(), &old.uid).map_err(bad)? as u32;
        let gid = blank_is_zero(header.gid(), &old.gid).map_err(bad)? as u32;
        let mtime = blank_is_zero(header.mtime(), &old.mtime).map_err(bad)? as i64;

        // An existing non-directory (or a directory replaced by a non-directory)
        // is overwritten, as a later layer entry replaces an earlier one.
        if let Ok(meta) = fs::symlink_metadata(&target) {
            if !(meta.is_dir() && kind.is_dir()) {
                remove_existing(&target)?;
            }
        }

        match kind {
            tar::EntryType::Directory => {
                if !target.is_dir() {
                    fs::create_dir(&target).at("cannot create directory", &target)?;
                }
                seen_dirs.insert(rel.clone());
                dir_times.push((target.clone(), mtime));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&target)
                    .at("cannot create", &target)?;
                let n = copy_in_large_writes(&mut entry, &mut f, &mut copy_buf).map_err(bad)?;
                if n != entry.size() {
                    return Err(bad(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{} is cut short ({n} of {} bytes)",
                            raw_path.display(),
                            entry.size()
                        ),
                    )));
                }
                stats.size += n;
            }
            tar::EntryType::Symlink => {
                let link = header.link_name().map_err(bad)?.ok_or_else(|| {
                    Error::InvalidArchive(format!("symlink {raw_path:?} has no target"))
                })?;
                stats.size += link.as_os_str().len() as u64;
                symlink(&link, &target).at("cannot create symlink", &target)?;
            }
            tar::EntryType::Link => {
                let link = header.link_name().map_err(bad)?.ok_or_else(|| {
                    Error::InvalidArchive(format!("hard link {raw_path:?} has no target"))
                })?;
                let Some(src_rel) = clean_path(&link)? else {
                    return Err(Error::UnsafePath {
                        path: raw_path,
                        why: "hard link to the layer root",
                    });
                };
                let src = dest.join(src_rel);
                fs::hard_link(&src, &target).at("cannot create hard link", &target)?;
                // Same inode: its metadata was set when its first name was made.
                continue;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let ft = match kind {
                    tar::EntryType::Char => FileType::CharacterDevice,
                    tar::EntryType::Block => FileType::BlockDevice,
                    _ => FileType::Fifo,
                };
                let major = header.device_major().map_err(bad)?.unwrap_or(0);
                let minor = header.device_minor().map_err(bad)?.unwrap_or(0);
                let dev = rustix::fs::makedev(major, minor);
                mknodat(CWD, &target, ft, Mode::from_raw_mode(0o600), dev)
                    .map_err(io::Error::from)
                    .at("cannot create device node", &target)?;
            }
            // Metadata-only entries (PAX and GNU long names) are consumed by the
            // tar reader; anything else has no file to make.
            _ => continue,
        }

        if let Some(exts) = entry.pax_extensions().map_err(bad)? {
            for ext in exts {
                let ext = ext.map_err(bad)?;
                if let Ok(key) = ext.key() {
                    if let Some(xattr) = key.strip_prefix(XATTR_PAX_PREFIX) {
                        rustix::fs::lsetxattr(
                            &target,
                            xattr,
                            ext.value_bytes(),
                            rustix::fs::XattrFlags::empty(),
                        )
                        .map_err(io::Error::from)
                        .at("cannot set xattr on", &target)?;
                    }
                }
            }
        }
        if running_as_root {
            lchown(&target, Some(uid), Some(gid)).at("cannot set owner of", &target)?;
        }
        if kind != tar::EntryType::Symlink {
            // After chown, which clears setuid/setgid bits.
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                .at("cannot set mode of", &target)?;
        }
        if !kind.is_dir() {
            set_mtime(&target, mtime)?;
        }
    }
    // Directory times last: creating entries inside a directory changes its mtime.
    for (dir, mtime) in dir_times.iter().rev() {
        set_mtime(dir, *mtime)?;
    }
    Ok(stats)
}

/// Go's archive/tar (and so Docker) reads an empty numeric header field as 0;
/// some tar writers leave uid, gid or mtime blank.
pub fn blank_is_zero(parsed: io::Result<u64>, raw: &[u8]) -> io::Result<u64> {
    match parsed {
        Err(_) if raw.iter().all(|&b| b == 0 || b == b' ') => Ok(0),
        other => other,
    }
}

/// Turns a tar entry path into a relative path with no `..` and no root, or
/// `None` for the root entry itself (`./`).
fn clean_path(p: &Path) -> Result<Option<PathBuf>> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                return Err(Error::UnsafePath {
                    path: p.to_path_buf(),
                    why: "contains '..'",
                })
            }
            Component::Prefix(_) => {
                return Err(Error::UnsafePath {
                    path: p.to_path_buf(),
                    why: "has a prefix",
                })
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Creates missing parent directories (0755, as Docker does) and refuses any
/// parent that is a symlink: following it could write outside the layer.
fn ensure_parents(dest: &Path, rel: &Path, seen: &mut HashSet<PathBuf>) -> Result<()> {
    let Some(parent_rel) = rel.parent() else {
        return Ok(());
    };
    if parent_rel.as_os_str().is_empty() || seen.contains(parent_rel) {
        return Ok(());
    }
    let mut cur = PathBuf::new();
    for c in parent_rel.components() {
        cur.push(c);
        if seen.contains(&cur) {
            continue;
        }
        let abs = dest.join(&cur);
        match fs::symlink_metadata(&abs) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::UnsafePath {
                    path: rel.to_path_buf(),
                    why: "a parent directory is a symlink",
                })
            }
            Ok(_) => {
                return Err(Error::InvalidArchive(format!(
                    "{} is not a directory but holds entries",
                    cur.display()
                )))
            }
            Err(_) => {
                fs::create_dir(&abs).at("cannot create directory", &abs)?;
                fs::set_permissions(&abs, fs::Permissions::from_mode(0o755))
                    .at("cannot set mode of", &abs)?;
            }
        }
        seen.insert(cur.clone());
    }
    Ok(())
}

fn remove_existing(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Ok(fs::remove_dir_all(path).at("cannot remove", path)?),
        Ok(_) => Ok(fs::remove_file(path).at("cannot remove", path)?),
        Err(_) => Ok(()),
    }
}

fn set_mtime(path: &Path, secs: i64) -> Result<()> {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io::Error::from)
        .at("cannot set time of", path)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            h.set_mtime(1_000_000);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn counts_size_like_docker() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[
            ("etc/", tar::EntryType::Directory, b"", None),
            ("etc/a", tar::EntryType::Regular, b"hello", None),
            ("etc/b", tar::EntryType::Link, b"", Some("etc/a")),
            ("etc/c", tar::EntryType::Symlink, b"", Some("a")),
        ]);
        let stats = unpack_layer(&t[..], dir.path(), "test").unwrap();
        assert_eq!(stats.size, 5 + 1);
        assert_eq!(fs::read(dir.path().join("etc/b")).unwrap(), b"hello");
        assert_eq!(
            fs::read_link(dir.path().join("etc/c")).unwrap(),
            Path::new("a")
        );
    }

    #[test]
    fn refuses_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[("x", tar::EntryType::Symlink, b"", Some("/etc"))]);
        unpack_layer(&t[..], dir.path(), "test").unwrap();
        let t = tar_of(&[("x/passwd", tar::EntryType::Regular, b"evil", None)]);
        assert!(matches!(
            unpack_layer(&t[..], dir.path(), "test"),
            Err(Error::UnsafePath { .. })
        ));
    }

    #[test]
    fn accepts_a_layer_without_end_blocks_but_not_a_cut_file() {
        let full = tar_of(&[("a", tar::EntryType::Regular, b"hello", None)]);
        // Header (512) + data (5), no padding, no end-of-archive blocks.
        let dir = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&full[..517], dir.path(), "test").unwrap();
        assert_eq!(stats.size, 5);
        let dir = tempfile::tempdir().unwrap();
        assert!(
            unpack_layer(&full[..515], dir.path(), "test").is_err(),
            "data cut short"
        );
        let two = tar_of(&[
            ("a", tar::EntryType::Regular, b"hello", None),
            ("b", tar::EntryType::Regular, b"x", None),
        ]);
        let dir = tempfile::tempdir().unwrap();
        assert!(
            unpack_layer(&two[..1024 + 100], dir.path(), "test").is_err(),
            "header cut short"
        );
    }

    #[test]
    fn makes_parents() {
        let dir = tempfile::tempdir().unwrap();
        let t = tar_of(&[("a/b/c", tar::EntryType::Regular, b"x", None)]);
        unpack_layer(&t[..], dir.path(), "test").unwrap();
        assert!(dir.path().join("a/b/c").is_file());
    }
}
