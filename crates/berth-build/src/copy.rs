//! Writing COPY and ADD sources into a mounted root filesystem.
//!
//! Docker's rules: files are owned by root unless `--chown`; modes come from
//! the source unless `--chmod`; modification times are kept; directories
//! created for the destination are 0755; a directory source copies its
//! contents; symlinks are copied as links, hard links inside one copy stay
//! hard links. Every destination is resolved inside the root filesystem
//! ([`crate::rootpath`]), so an image's symlinks cannot lead a copy out of it.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_context::{BuildContext, Entry, FileKind, Matcher};
use rustix::fs::{AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

use crate::error::{Error, IoContext, Result};
use crate::rootpath;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

pub struct CopyOptions {
    /// `--chown`; root otherwise.
    pub owner: Option<Owner>,
    /// `--chmod`, for files and directories alike.
    pub chmod: Option<u32>,
    /// `--exclude`, matched against paths relative to each source.
    pub excludes: Option<Matcher>,
}

/// Writes into `root` (a mounted overlay).
pub struct Writer<'a> {
    root: &'a Path,
    opts: &'a CopyOptions,
    /// Host paths of directories already resolved or made, by logical path.
    dirs: HashMap<PathBuf, PathBuf>,
    /// Where each source inode (by its first path) was written, for hard links.
    links: HashMap<PathBuf, PathBuf>,
    /// Directories whose times are set last: writing into them changes them.
    dir_times: Vec<(PathBuf, Timestamps)>,
}

impl<'a> Writer<'a> {
    pub fn new(root: &'a Path, opts: &'a CopyOptions) -> Self {
        Self {
            root,
            opts,
            dirs: HashMap::new(),
            links: HashMap::new(),
            dir_times: Vec::new(),
        }
    }

    fn owner(&self) -> Owner {
        self.opts.owner.unwrap_or(Owner { uid: 0, gid: 0 })
    }

    /// `mkdir -p` of a logical directory, each new directory 0755 and owned
    /// by the copy's owner; returns its host path.
    pub fn ensure_dir(&mut self, logical: &Path) -> Result<PathBuf> {
        if let Some(p) = self.dirs.get(logical) {
            return Ok(p.clone());
        }
        let host = rootpath::resolve(self.root, logical, true)?;
        match fs::metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::Invalid(format!(
                    "cannot copy to {}: it is not a directory in the image",
                    logical.display()
                )))
            }
            Err(_) => {
                // Through a symlink: make the directory it leads to instead.
                let real = Path::new("/").join(host.strip_prefix(self.root).unwrap_or(&host));
                if real != logical {
                    let made = self.ensure_dir(&real)?;
                    self.dirs.insert(logical.to_path_buf(), made.clone());
                    return Ok(made);
                }
                // No link on the way: `host` is where it goes once the
                // parents are made.
                if let Some(parent) = logical.parent() {
                    self.ensure_dir(parent)?;
                }
                fs::create_dir(&host).io("cannot create", &host)?;
                chown(&host, self.owner())?;
                fs::set_permissions(&host, fs::Permissions::from_mode(0o755))
                    .io("cannot set mode of", &host)?;
            }
        }
        self.dirs.insert(logical.to_path_buf(), host.clone());
        Ok(host)
    }

    /// Whether `logical` is a directory in the image (following its links).
    pub fn is_dir(&self, logical: &Path) -> bool {
        rootpath::resolve(self.root, logical, true).is_ok_and(|p| p.is_dir())
    }

    /// The host path for a new entry at `logical`: its parent made, an
    /// existing non-directory there removed.
    fn place(&mut self, logical: &Path) -> Result<PathBuf> {
        let parent = logical.parent().unwrap_or(Path::new("/"));
        let name = logical
            .file_name()
            .ok_or_else(|| Error::Invalid(format!("cannot copy to {}", logical.display())))?;
        let host = self.ensure_dir(parent)?.join(name);
        if let Ok(m) = fs::symlink_metadata(&host) {
            if m.is_dir() {
                return Err(Error::Invalid(format!(
                    "cannot copy a file to {}: a directory is there",
                    logical.display()
                )));
            }
            fs::remove_file(&host).io("cannot replace", &host)?;
        }
        Ok(host)
    }

    /// Copies the walked `entries` of `ctx` that are at or below `base` to
    /// `target`: `base` itself becomes `target`.
    pub fn copy_tree(
        &mut self,
        ctx: &BuildContext,
        entries: &[&Entry],
        base: &Path,
        target: &Path,
    ) -> Result<()> {
        for e in entries {
            let Ok(rel) = e.path.strip_prefix(base) else {
                continue;
            };
            if let Some(m) = &self.opts.excludes {
                let r = rel.to_string_lossy();
                if !r.is_empty() && m.matches(&r).unwrap_or(false) {
                    continue;
                }
            }
            let dest = if rel.as_os_str().is_empty() {
                target.to_path_buf()
            } else {
                target.join(rel)
            };
            self.copy_entry(ctx, e, &dest)?;
        }
        Ok(())
    }

    fn copy_entry(&mut self, ctx: &BuildContext, e: &Entry, dest: &Path) -> Result<()> {
        let src = ctx.root().join(&e.path);
        let smeta = fs::symlink_metadata(&src).io("cannot read", &src)?;
        let times = timestamps(&smeta);
        let owner = self.owner();
        match e.kind {
            FileKind::Dir => {
                let existed = self.is_dir(dest);
                let host = self.ensure_dir(dest)?;
                if !existed {
                    chown(&host, owner)?;
                    let mode = self.opts.chmod.unwrap_or(e.mode);
                    fs::set_permissions(&host, fs::Permissions::from_mode(mode))
                        .io("cannot set mode of", &host)?;
                }
                copy_xattrs(&src, &host)?;
                self.dir_times.push((host, times));
            }
            FileKind::File => {
                let host = self.place(dest)?;
                let first = e
                    .hardlink_of
                    .as_ref()
                    .and_then(|p| self.links.get(p).cloned());
                if let Some(first) = first {
                    fs::hard_link(&first, &host).io("cannot link", &host)?;
                    return Ok(());
                }
                let mut from = ctx.open(&e.path).map_err(|err| Error::Context {
                    path: e.path.clone(),
                    message: err.to_string(),
                })?;
                let mode = self.opts.chmod.unwrap_or(e.mode);
                write_file(&mut from, &host, mode, owner, times)?;
                copy_xattrs(&src, &host)?;
                self.links.insert(e.path.clone(), host);
            }
            FileKind::Symlink => {
                let host = self.place(dest)?;
                let target = e.link_target.clone().unwrap_or_default();
                std::os::unix::fs::symlink(&target, &host).io("cannot create link", &host)?;
                lchown(&host, owner)?;
                set_times(&host, times)?;
            }
            FileKind::Fifo | FileKind::CharDevice | FileKind::BlockDevice => {
                let host = self.place(dest)?;
                let kind = match e.kind {
                    FileKind::Fifo => FileType::Fifo,
                    FileKind::CharDevice => FileType::CharacterDevice,
                    _ => FileType::BlockDevice,
                };
                rustix::fs::mknodat(CWD, &host, kind, Mode::from_raw_mode(e.mode), smeta.rdev())
                    .map_err(io::Error::from)
                    .io("cannot create", &host)?;
                chown(&host, owner)?;
                set_times(&host, times)?;
            }
            FileKind::Socket => {}
        }
        Ok(())
    }

    /// A file from a stream (a heredoc, a download), 0644 unless `--chmod`.
    pub fn write_stream(
        &mut self,
        from: &mut dyn Read,
        dest: &Path,
        mode: u32,
        mtime: Option<i64>,
    ) -> Result<()> {
        let host = self.place(dest)?;
        let mode = self.opts.chmod.unwrap_or(mode);
        let now = chrono::Utc::now().timestamp();
        let t = Timespec {
            tv_sec: mtime.unwrap_or(now),
            tv_nsec: 0,
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        write_file(from, &host, mode, self.owner(), times)
    }

    /// Unpacks a tar archive (compressed or not) into the directory `dest`,
    /// keeping the archive's owners and modes, as Docker's ADD does.
    pub fn extract(&mut self, archive: &mut dyn Read, dest: &Path) -> Result<()> {
        let host = self.ensure_dir(dest)?;
        let mut ar = tar::Archive::new(archive);
        ar.set_preserve_permissions(true);
        ar.set_preserve_ownerships(true);
        ar.set_preserve_mtime(true);
        ar.set_unpack_xattrs(true);
        ar.set_overwrite(true);
        ar.unpack(&host).io("cannot extract an archive into", &host)
    }

    /// Sets directory times after everything is in place.
    pub fn finish(self) -> Result<()> {
        for (host, times) in self.dir_times.iter().rev() {
            set_times(host, clone_times(times))?;
        }
        Ok(())
    }
}

fn write_file(
    from: &mut dyn Read,
    host: &Path,
    mode: u32,
    owner: Owner,
    times: Timestamps,
) -> Result<()> {
    let mut out = File::create(host).io("cannot create", host)?;
    io::copy(from, &mut out).io("cannot write", host)?;
    std::os::unix::fs::fchown(&out, Some(owner.uid), Some(owner.gid))
        .io("cannot change owner of", host)?;
    // After chown, which clears setuid bits.
    out.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
        .io("cannot set mode of", host)?;
    rustix::fs::futimens(&out, &times)
        .map_err(io::Error::from)
        .io("cannot set times of", host)?;
    Ok(())
}

/// Keeps a source's xattrs (file capabilities, say), but not an overlay's
/// own bookkeeping when the source is another stage's merged view.
fn copy_xattrs(src: &Path, host: &Path) -> Result<()> {
    berth_fs::xattr::copy_all(src, host, |n| n.starts_with("trusted.overlay."))
        .io("cannot copy extended attributes to", host)
}

fn clone_times(t: &Timestamps) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: t.last_access.tv_sec,
            tv_nsec: t.last_access.tv_nsec,
        },
        last_modification: Timespec {
            tv_sec: t.last_modification.tv_sec,
            tv_nsec: t.last_modification.tv_nsec,
        },
    }
}

fn timestamps(m: &fs::Metadata) -> Timestamps {
    Timestamps {
        last_access: Timespec {
            tv_sec: m.atime(),
            tv_nsec: m.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: m.mtime(),
            tv_nsec: m.mtime_nsec(),
        },
    }
}

fn set_times(host: &Path, times: Timestamps) -> Result<()> {
    rustix::fs::utimensat(CWD, host, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io::Error::from)
        .io("cannot set times of", host)
}

fn chown(host: &Path, o: Owner) -> Result<()> {
    std::os::unix::fs::chown(host, Some(o.uid), Some(o.gid)).io("cannot change owner of", host)
}

fn lchown(host: &Path, o: Owner) -> Result<()> {
    std::os::unix::fs::lchown(host, Some(o.uid), Some(o.gid)).io("cannot change owner of", host)
}

/// `--chmod=0755` (octal only, as Docker before 1.7 labs).
pub fn parse_chmod(s: &str) -> Result<u32> {
    u32::from_str_radix(s, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "invalid --chmod={s}: use an octal mode such as 0755"
            ))
        })
}

/// `--chown=user[:group]`, names looked up in the image being built. A user
/// without a group gets the user's UID as GID, as Docker documents.
pub fn resolve_chown(root: &Path, spec: &str) -> Result<Owner> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => berth_runtime::user::resolve(root, user)
            .map_err(|_| {
                Error::Invalid(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
                ))
            })?
            .uid,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => berth_runtime::user::resolve(root, &format!("0:{g}"))
                .map_err(|_| {
                    Error::Invalid(format!(
                        "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                    ))
                })?
                .gid,
        },
    };
    Ok(Owner { uid, gid })
}

/// The owner of directories a WORKDIR creates: the stage's USER.
pub fn resolve_chown_user(root: &Path, user: &str) -> Result<Owner> {
    let u = berth_runtime::user::resolve(root, user)?;
    Ok(Owner {
        uid: u.uid,
        gid: u.gid,
    })
}

/// What a file starts with, for ADD's rule that local tar archives are
/// extracted.
pub enum ArchiveKind {
    Tar,
    Gzip,
    Zstd,
}

pub fn archive_kind(path: &Path) -> Option<ArchiveKind> {
    let mut head = [0u8; 512];
    let mut f = File::open(path).ok()?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let head = &head[..n];
    if head.starts_with(&[0x1f, 0x8b]) {
        // A gzip file is extracted only when it holds a tar.
        let mut gz = flate2::read::GzDecoder::new(File::open(path).ok()?);
        let mut inner = [0u8; 512];
        return gz
            .read_exact(&mut inner)
            .ok()
            .filter(|_| is_tar_header(&inner))
            .map(|_| ArchiveKind::Gzip);
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let mut z = zstd::stream::read::Decoder::new(File::open(path).ok()?).ok()?;
        let mut inner = [0u8; 512];
        return z
            .read_exact(&mut inner)
            .ok()
            .filter(|_| is_tar_header(&inner))
            .map(|_| ArchiveKind::Zstd);
    }
    (head.len() == 512 && is_tar_header(head)).then_some(ArchiveKind::Tar)
}

fn is_tar_header(h: &[u8]) -> bool {
    if h.len() < 512 || &h[257..262] != b"ustar" && h[148..156].iter().all(|b| *b == 0) {
        return false;
    }
    // The checksum field: the sum of the header with the field as spaces.
    let stored = std::str::from_utf8(&h[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = h
        .iter()
        .enumerate()
        .map(|(i, b)| {
            if (148..156).contains(&i) {
                32
            } else {
                *b as u32
            }
        })
        .sum();
    stored == Some(sum)
}

pub fn open_archive(path: &Path, kind: &ArchiveKind) -> Result<Box<dyn Read>> {
    let f = File::open(path).io("cannot open", path)?;
    Ok(match kind {
        ArchiveKind::Tar => Box::new(f),
        ArchiveKind::Gzip => Box::new(flate2::read::GzDecoder::new(f)),
        ArchiveKind::Zstd => Box::new(zstd::stream::read::Decoder::new(f).io("cannot read", path)?),
    })
}

/// Whether a COPY source has wildcards (Go's `filepath.Match` syntax).
pub fn has_wildcards(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// A context-walk entry for a file outside the context (another stage's,
/// a layer's).
pub fn entry_of(name: &Path, meta: &std::fs::Metadata) -> Entry {
    let kind = FileKind::of(meta.file_type());
    let rdev = meta.rdev();
    Entry {
        path: name.to_path_buf(),
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.len(),
        link_target: None,
        hardlink_of: None,
        device: matches!(kind, FileKind::CharDevice | FileKind::BlockDevice)
            .then(|| (libc::major(rdev), libc::minor(rdev))),
    }
}
