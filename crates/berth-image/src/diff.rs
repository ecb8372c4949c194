//! The reverse of [`unpack_layer`](crate::unpack_layer): a directory tree in
//! overlayfs form (a container's `upper/`) read back as a layer, either as the
//! list of changes `docker diff` prints or as the layer tar `commit` stores.
//!
//! overlayfs records a deletion as a 0/0 character device and a directory that
//! replaces a lower one as the `trusted.overlay.opaque=y` xattr; the layer tar
//! says the same with `.wh.NAME` and `.wh..wh..opq` entries (the OCI image spec's
//! whiteouts), as Docker's overlay2 driver writes them.
//!
//! Tars written here are deterministic: entries in path order (each directory
//! before its contents, names by byte value), numeric owners only, no access or
//! change times, xattrs sorted. The same tree always gives the same diff ID.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use berth_fs::ResultExt;

use crate::unpack::{LayerStats, OPAQUE_WHITEOUT, WHITEOUT_PREFIX};

/// overlayfs keeps its own bookkeeping in this xattr namespace; none of it is
/// content, and none of it may travel in a layer.
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// With these overlayfs features a change lives partly in an xattr that points
/// elsewhere (a renamed directory, a file whose data is still in a lower
/// layer), so the upper tree alone is not the layer. berth mounts without
/// them; a tree that has them was made by something else.
const UNSUPPORTED_OVERLAY_XATTRS: &[(&str, &str)] = &[
    ("trusted.overlay.redirect", "redirect_dir"),
    ("trusted.overlay.metacopy", "metacopy"),
];
const XATTR_PAX_PREFIX: &str = "SCHILY.xattr.";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the tree failed; the error names the path.
    #[error(transparent)]
    Fs(#[from] berth_fs::Error),
    /// The tar could not be written: the reader went away or the disk is full.
    #[error("cannot write the tar stream: {0}")]
    Write(#[source] io::Error),
    /// The tree uses an overlayfs feature whose changes are not all in the
    /// upper directory.
    #[error("{} uses overlayfs {feature}, which berth cannot turn into a layer; mount without {feature} (berth's own mounts never use it)", path.display())]
    UnsupportedOverlay {
        path: PathBuf,
        feature: &'static str,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Decides which entries a walk leaves out (with everything under them). It
/// gets the path relative to the walked tree and the entry's metadata.
pub type Skip<'a> = &'a dyn Fn(&Path, &Metadata) -> bool;

/// Leaves nothing out.
pub fn skip_nothing(_: &Path, _: &Metadata) -> bool {
    false
}

/// What happened to a path, in `docker diff`'s letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// `C`: changed (content, metadata, type, or entries of a directory).
    Modified,
    /// `A`: not in the image.
    Added,
    /// `D`: in the image, removed in the container.
    Deleted,
}

impl ChangeKind {
    pub fn letter(self) -> char {
        match self {
            Self::Modified => 'C',
            Self::Added => 'A',
            Self::Deleted => 'D',
        }
    }
}

/// One line of `docker diff`: a kind and an absolute path in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub path: PathBuf,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind.letter(), self.path.display())
    }
}

/// The changes an overlay upper dir makes to its lower layers (`lowers`,
/// bottom first, as they are given to the mount), in the order Docker's
/// overlay2 driver walks them: by path, compared component by component.
///
/// This follows moby's `archive.OverlayChanges`: a whiteout is `D`; an entry
/// the lower layers lack is `A`, else `C`; a directory that is only in the
/// upper dir because something below it changed is not itself a change,
/// unless an entry was added to or deleted from it, which makes it `C`. Where
/// moby reports an opaque directory as deleted, berth reports it as changed
/// and lists the lower entries it hides as deleted, which is what happened.
///
/// Entries `skip` leaves out are not changes; a directory whose only
/// difference is the time stamp that creating them gave it is not one either.
pub fn changes(upper: &Path, lowers: &[PathBuf], skip: Skip<'_>) -> Result<Vec<Change>> {
    let walk = ChangeWalk {
        upper,
        lowers: Lowers::new(lowers),
        skip,
    };
    let mut found = Found::default();
    if fs::symlink_metadata(upper).is_ok() {
        walk.visit(Path::new(""), &mut found)?;
    }
    Ok(found
        .changes
        .into_iter()
        .map(|(path, kind)| Change {
            kind,
            path: Path::new("/").join(path),
        })
        .collect())
}

#[derive(Default)]
struct Found {
    /// `Path`'s ordering compares components, which is the walk order.
    changes: BTreeMap<PathBuf, ChangeKind>,
    /// Directories already reported, so that a parent is reported once.
    reported_dirs: HashSet<PathBuf>,
}

impl Found {
    fn record(&mut self, path: PathBuf, kind: ChangeKind, is_dir: bool) {
        if matches!(kind, ChangeKind::Added | ChangeKind::Deleted) {
            // moby: "If /foo/bar/file.txt is modified, then /foo/bar must be
            // part of the changed files", even when its own stat is unchanged.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                if self.reported_dirs.insert(parent.to_path_buf()) {
                    self.changes
                        .entry(parent.to_path_buf())
                        .or_insert(ChangeKind::Modified);
                }
            }
        }
        if is_dir {
            self.reported_dirs.insert(path.clone());
        }
        self.changes.insert(path, kind);
    }
}

struct ChangeWalk<'a> {
    upper: &'a Path,
    lowers: Lowers,
    skip: Skip<'a>,
}

impl ChangeWalk<'_> {
    /// Records the changes in directory `rel` of the upper tree (and `rel`
    /// itself unless it is the root).
    fn visit(&self, rel: &Path, found: &mut Found) -> Result<()> {
        let dir = self.upper.join(rel);
        let children = sorted_entries(&dir)?;
        let mut kept = Vec::with_capacity(children.len());
        // The newest change time of a left-out entry: the directory's mtime
        // moved then, because that entry was made.
        let mut skipped_ctime: Option<Nanos> = None;
        for (name, meta) in children {
            let child = rel.join(&name);
            if (self.skip)(&child, &meta) {
                let t = ctime(&meta);
                skipped_ctime = Some(skipped_ctime.map_or(t, |s| s.max(t)));
            } else {
                kept.push((child, meta));
            }
        }

        let opaque = !rel.as_os_str().is_empty() && is_opaque(&dir)?;
        if !rel.as_os_str().is_empty() {
            let meta = fs::symlink_metadata(&dir).at("cannot read", &dir)?;
            let kind = match self.lowers.lookup(rel) {
                None => Some(ChangeKind::Added),
                Some(lower) if lower.is_dir() && !opaque => {
                    let explained = skipped_ctime.is_some_and(|s| {
                        mtime_from_skipped(&meta, s, kept.iter().map(|(_, m)| ctime(m)))
                    });
                    (!same_dir(&meta, &lower, explained)).then_some(ChangeKind::Modified)
                }
                Some(_) => Some(ChangeKind::Modified),
            };
            if let Some(kind) = kind {
                found.record(rel.to_path_buf(), kind, true);
            }
        }
        if opaque {
            let present: HashSet<&OsStr> = kept.iter().filter_map(|(p, _)| p.file_name()).collect();
            for name in self.lowers.children(rel) {
                if !present.contains(name.as_os_str()) {
                    found.record(rel.join(&name), ChangeKind::Deleted, false);
                }
            }
        }

        for (child, meta) in kept {
            if is_whiteout(&meta) {
                found.record(child, ChangeKind::Deleted, false);
            } else if meta.is_dir() {
                self.visit(&child, found)?;
            } else {
                let kind = if self.lowers.lookup(&child).is_some() {
                    ChangeKind::Modified
                } else {
                    ChangeKind::Added
                };
                found.record(child, kind, false);
            }
        }
        Ok(())
    }
}

/// moby compares size, mode and mtime; berth compares owner instead of size
/// (a directory's size is the filesystem's business and grows as entries are
/// made), and forgives an mtime that left-out entries explain.
fn same_dir(upper: &Metadata, lower: &Metadata, mtime_explained: bool) -> bool {
    upper.mode() == lower.mode()
        && upper.uid() == lower.uid()
        && upper.gid() == lower.gid()
        && (mtime_explained
            || same_fs_time(
                (upper.mtime(), upper.mtime_nsec()),
                (lower.mtime(), lower.mtime_nsec()),
            ))
}

/// A time in nanoseconds since the epoch.
type Nanos = i128;

fn ctime(m: &Metadata) -> Nanos {
    Nanos::from(m.ctime()) * 1_000_000_000 + Nanos::from(m.ctime_nsec())
}

/// How far apart two time stamps of one operation can be. Linux (6.13+) takes
/// a fine-grained time for an inode whose times were just read and a coarse
/// one (up to a clock tick behind) otherwise, so a directory's mtime can be
/// a few milliseconds after the ctime of the entry whose creation set it.
const SAME_MOMENT: Nanos = 20_000_000;

/// Whether a directory's mtime was set by making the left-out entries
/// (newest at `skipped`), and not by a change of its own: it is no later
/// than that moment, and no other entry in it changed around then. (An
/// entry changed later without moving the directory's mtime, such as a file
/// copied up and written, leaves the mtime explained.)
fn mtime_from_skipped(dir: &Metadata, skipped: Nanos, kept: impl Iterator<Item = Nanos>) -> bool {
    let mtime = Nanos::from(dir.mtime()) * 1_000_000_000 + Nanos::from(dir.mtime_nsec());
    mtime <= skipped + SAME_MOMENT
        && !kept
            .into_iter()
            .any(|c| c >= skipped - SAME_MOMENT && c <= mtime + SAME_MOMENT)
}

/// moby's `sameFsTime`: tar keeps whole seconds, so a time with no
/// nanoseconds matches any time in the same second.
fn same_fs_time(a: (i64, i64), b: (i64, i64)) -> bool {
    a == b || (a.0 == b.0 && (a.1 == 0 || b.1 == 0))
}

/// The image's layers as overlayfs merges them, for lookups by path.
struct Lowers {
    top_first: Vec<PathBuf>,
}

impl Lowers {
    fn new(bottom_first: &[PathBuf]) -> Self {
        Self {
            top_first: bottom_first.iter().rev().cloned().collect(),
        }
    }

    /// What `rel` is in the merged lower layers, resolving whiteouts and
    /// opaque directories as overlayfs does.
    fn lookup(&self, rel: &Path) -> Option<Metadata> {
        let parts: Vec<&OsStr> = rel.iter().collect();
        'layers: for layer in &self.top_first {
            let mut cur = layer.clone();
            for (i, part) in parts.iter().enumerate() {
                cur.push(part);
                match fs::symlink_metadata(&cur) {
                    Ok(m) if is_whiteout(&m) => return None,
                    Ok(m) if i + 1 == parts.len() => return Some(m),
                    Ok(m) if m.is_dir() => {}
                    // A non-directory in a higher layer hides what is below it.
                    Ok(_) => return None,
                    Err(_) => {
                        let parent = cur.parent().expect("pushed a component");
                        if i > 0 && is_opaque(parent).unwrap_or(false) {
                            return None;
                        }
                        continue 'layers;
                    }
                }
            }
            // `rel` is the root.
            return fs::symlink_metadata(layer).ok();
        }
        None
    }

    /// The names in directory `rel` of the merged lower layers.
    fn children(&self, rel: &Path) -> Vec<OsString> {
        let mut names = BTreeSet::new();
        for layer in &self.top_first {
            if let Ok(entries) = fs::read_dir(layer.join(rel)) {
                names.extend(entries.flatten().map(|e| e.file_name()));
            }
        }
        names
            .into_iter()
            .filter(|n| self.lookup(&rel.join(n)).is_some())
            .collect()
    }
}

fn fs_err(op: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Fs(berth_fs::Error {
        op,
        path: path.to_path_buf(),
        source,
    })
}

fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

fn is_opaque(dir: &Path) -> Result<bool> {
    let mut buf = [0u8; 2];
    match rustix::fs::lgetxattr(dir, OVERLAY_OPAQUE_XATTR, &mut buf) {
        Ok(n) => Ok(buf[..n] == *b"y"),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP | rustix::io::Errno::RANGE) => {
            Ok(false)
        }
        Err(e) => Err(fs_err("cannot read overlay xattrs of", dir, e.into())),
    }
}

/// A directory's entries with their metadata, sorted by name bytes. Entries
/// that vanish between the listing and the stat (a running container deleting
/// files) are left out.
fn sorted_entries(dir: &Path) -> Result<Vec<(OsString, Metadata)>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).at("cannot list", dir)? {
        let entry = entry.at("cannot list", dir)?;
        let path = entry.path();
        match fs::symlink_metadata(&path) {
            Ok(m) => out.push((entry.file_name(), m)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(fs_err("cannot read", &path, e)),
        }
    }
    out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok(out)
}

/// Writes the overlay upper dir `upper` to `out` as an OCI layer tar: the
/// entries relative to `upper` (no entry for the root), whiteouts as
/// `.wh.` entries. Returns `out` after the end-of-archive blocks.
pub fn write_layer<W: Write>(upper: &Path, out: W, skip: Skip<'_>) -> Result<W> {
    let mut w = TreeWriter::new(out, true);
    w.append(upper, Path::new(""), skip)?;
    w.finish()
}

/// Writes directory trees and files into a tar stream, as `export`, `cp` and
/// `commit` need them.
pub struct TreeWriter<W: Write> {
    builder: tar::Builder<W>,
    /// Read overlay whiteouts and opaque markers (an upper dir), rather than
    /// taking every entry as it is (a merged view or a plain directory).
    overlay: bool,
    /// The archive name each multiply-linked inode was first written under.
    links: HashMap<(u64, u64), PathBuf>,
    /// Modification times later than this are written as this
    /// (`SOURCE_DATE_EPOCH`, as BuildKit's rewrite-timestamp does).
    clamp_mtime: Option<u64>,
    stats: LayerStats,
}

impl<W: Write> TreeWriter<W> {
    /// `overlay`: `src` trees are overlay upper dirs (whiteouts become
    /// `.wh.` entries, and overlayfs features berth cannot carry are refused).
    pub fn new(out: W, overlay: bool) -> Self {
        let mut builder = tar::Builder::new(out);
        builder.follow_symlinks(false);
        Self {
            builder,
            overlay,
            links: HashMap::new(),
            clamp_mtime: None,
            stats: LayerStats::default(),
        }
    }

    /// Writes no modification time later than `epoch` (seconds).
    pub fn clamp_mtime(mut self, epoch: Option<u64>) -> Self {
        self.clamp_mtime = epoch;
        self
    }

    /// What was written so far: entries, and Docker's size of them.
    pub fn stats(&self) -> LayerStats {
        self.stats
    }

    fn header(&self, meta: &Metadata, kind: tar::EntryType, mode: u32) -> tar::Header {
        let mut h = header(meta, kind, mode);
        if let Some(max) = self.clamp_mtime {
            let t = h.mtime().unwrap_or(0);
            h.set_mtime(t.min(max));
        }
        h
    }

    /// Appends `src` (a file, a symlink or a directory with all it holds)
    /// under the archive name `name`. With an empty `name`, `src` must be a
    /// directory, and its entries are written at the top of the archive.
    /// `skip` gets archive names.
    pub fn append(&mut self, src: &Path, name: &Path, skip: Skip<'_>) -> Result<()> {
        let meta = fs::symlink_metadata(src).at("cannot read", src)?;
        if name.as_os_str().is_empty() {
            if !meta.is_dir() {
                return Err(fs_err(
                    "cannot archive the contents of",
                    src,
                    io::Error::from(io::ErrorKind::NotADirectory),
                ));
            }
            return self.append_children(src, name, skip);
        }
        self.append_entry(src, name, &meta, skip)
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(self) -> Result<W> {
        self.builder.into_inner().map_err(Error::Write)
    }

    fn append_children(&mut self, dir: &Path, name: &Path, skip: Skip<'_>) -> Result<()> {
        for (child, meta) in sorted_entries(dir)? {
            let child_name = name.join(&child);
            if skip(&child_name, &meta) {
                continue;
            }
            self.append_entry(&dir.join(&child), &child_name, &meta, skip)?;
        }
        Ok(())
    }

    fn append_entry(
        &mut self,
        src: &Path,
        name: &Path,
        meta: &Metadata,
        skip: Skip<'_>,
    ) -> Result<()> {
        let ft = meta.file_type();
        if self.overlay && is_whiteout(meta) {
            // moby's overlay whiteout converter: a regular file, mode 0600,
            // keeping the whiteout's owner and time.
            let mut h = self.header(meta, tar::EntryType::Regular, 0o600);
            let hidden = name.file_name().expect("entries have names");
            let mut wh = OsString::from(WHITEOUT_PREFIX);
            wh.push(hidden);
            let path = name.with_file_name(wh);
            return self.write(&mut h, &path, io::empty());
        }
        if ft.is_socket() {
            // Sockets cannot be archived; Docker leaves them out too.
            return Ok(());
        }
        let perm = meta.mode() & 0o7777;
        if !ft.is_dir() && !ft.is_symlink() && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            if let Some(first) = self.links.get(&key).cloned() {
                // Same inode: its metadata and xattrs went with the first name.
                let mut h = self.header(meta, tar::EntryType::Link, perm);
                self.stats.entries += 1;
                return self
                    .builder
                    .append_link(&mut h, name, first)
                    .map_err(Error::Write);
            }
            self.links.insert(key, name.to_path_buf());
        }
        let xattrs = self.xattrs(src)?;
        let pax: Vec<(String, &[u8])> = xattrs
            .iter()
            .map(|(k, v)| (format!("{XATTR_PAX_PREFIX}{k}"), v.as_slice()))
            .collect();
        self.builder
            .append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
            .map_err(Error::Write)?;

        if ft.is_dir() {
            let mut h = self.header(meta, tar::EntryType::Directory, perm);
            let mut dir_name = name.as_os_str().to_owned();
            if !dir_name.as_bytes().ends_with(b"/") {
                dir_name.push("/");
            }
            self.write(&mut h, Path::new(&dir_name), io::empty())?;
            if self.overlay && is_opaque(src)? {
                // moby: "it should inherit some properties from the parent,
                // but be a regular file", with no time.
                let mut h = self.header(meta, tar::EntryType::Regular, perm);
                h.set_mtime(0);
                self.write(&mut h, &name.join(OPAQUE_WHITEOUT), io::empty())?;
            }
            return self.append_children(src, name, skip);
        }
        if ft.is_symlink() {
            let target = fs::read_link(src).at("cannot read symlink", src)?;
            let mut h = self.header(meta, tar::EntryType::Symlink, 0o777);
            self.stats.entries += 1;
            self.stats.size += target.as_os_str().len() as u64;
            return self
                .builder
                .append_link(&mut h, name, target)
                .map_err(Error::Write);
        }
        if ft.is_file() {
            let mut h = self.header(meta, tar::EntryType::Regular, perm);
            let size = meta.len();
            h.set_size(size);
            let file = match File::open(src) {
                Ok(f) => f,
                // Gone since the listing (a running container): write what the
                // listing saw, with no bytes, rather than fail the whole tar.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return self.write(&mut h, name, io::repeat(0).take(size));
                }
                Err(e) => return Err(fs_err("cannot open", src, e)),
            };
            // Exactly `size` bytes, whatever the file does meanwhile: a header
            // that disagrees with its data would corrupt the rest of the tar.
            let data = file.take(size).chain(io::repeat(0)).take(size);
            return self.write(&mut h, name, data);
        }
        let kind = if ft.is_char_device() {
            tar::EntryType::Char
        } else if ft.is_block_device() {
            tar::EntryType::Block
        } else {
            tar::EntryType::Fifo
        };
        let mut h = self.header(meta, kind, perm);
        if kind != tar::EntryType::Fifo {
            let rdev = meta.rdev();
            h.set_device_major(rustix::fs::major(rdev))
                .map_err(Error::Write)?;
            h.set_device_minor(rustix::fs::minor(rdev))
                .map_err(Error::Write)?;
        }
        self.write(&mut h, name, io::empty())
    }

    fn write(&mut self, h: &mut tar::Header, name: &Path, data: impl Read) -> Result<()> {
        self.stats.entries += 1;
        if h.entry_type() != tar::EntryType::Directory {
            self.stats.size += h.size().unwrap_or(0);
        }
        self.builder
            .append_data(h, name, data)
            .map_err(Error::Write)
    }

    /// The entry's xattrs in name order, without overlayfs' own.
    fn xattrs(&self, path: &Path) -> Result<Vec<(String, Vec<u8>)>> {
        let names = list_xattrs(path)?;
        let mut out = Vec::new();
        for name in names {
            if let Some((_, feature)) = UNSUPPORTED_OVERLAY_XATTRS
                .iter()
                .find(|(x, _)| *x == name)
                .filter(|_| self.overlay)
            {
                return Err(Error::UnsupportedOverlay {
                    path: path.to_path_buf(),
                    feature,
                });
            }
            if name.starts_with(OVERLAY_XATTR_PREFIX) {
                continue;
            }
            if let Some(value) = get_xattr(path, &name)? {
                out.push((name, value));
            }
        }
        Ok(out)
    }
}

/// A header with only what the entry's content is: no user or group names,
/// no access or change times, so equal trees give equal bytes.
fn header(meta: &Metadata, kind: tar::EntryType, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(u64::from(meta.uid()));
    h.set_gid(u64::from(meta.gid()));
    h.set_mtime(meta.mtime().max(0) as u64);
    h.set_size(0);
    // Written as zeros for every entry, as Go's archive/tar does; readers
    // (berth's own among them) parse them for fifos too.
    h.set_device_major(0)
        .expect("a GNU header has device fields");
    h.set_device_minor(0)
        .expect("a GNU header has device fields");
    h
}

fn list_xattrs(path: &Path) -> Result<Vec<String>> {
    berth_fs::xattr::list(path).map_err(|e| fs_err("cannot list xattrs of", path, e))
}

fn get_xattr(path: &Path, name: &str) -> Result<Option<Vec<u8>>> {
    berth_fs::xattr::get(path, name).map_err(|e| fs_err("cannot read xattrs of", path, e))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{symlink, PermissionsExt};

    use rustix::fs::{mknodat, utimensat, AtFlags, FileType, Mode, Timespec, Timestamps, CWD};

    use super::*;
    use crate::unpack_layer;

    /// Whiteouts and `trusted.*` xattrs need root, as overlayfs itself does.
    fn root() -> bool {
        rustix::process::geteuid().is_root()
    }

    fn whiteout(path: &Path) {
        mknodat(CWD, path, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
    }

    fn opaque(dir: &Path) {
        rustix::fs::lsetxattr(
            dir,
            OVERLAY_OPAQUE_XATTR,
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
    }

    fn set_mtime(path: &Path, sec: i64, nsec: i64) {
        let t = Timespec {
            tv_sec: sec,
            tv_nsec: nsec,
        };
        let times = Timestamps {
            last_access: t,
            last_modification: t,
        };
        utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
    }

    fn mkdir(path: &Path, mode: u32) {
        fs::create_dir_all(path).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// An upper dir with one of everything a container leaves behind.
    fn sample_upper(dir: &Path) {
        mkdir(&dir.join("etc"), 0o755);
        fs::write(dir.join("etc/new"), b"hello").unwrap();
        fs::hard_link(dir.join("etc/new"), dir.join("etc/new2")).unwrap();
        whiteout(&dir.join("etc/gone"));
        rustix::fs::lsetxattr(
            dir.join("etc/new"),
            "user.note",
            b"kept",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        rustix::fs::lsetxattr(
            dir.join("etc"),
            "trusted.overlay.origin",
            b"\x00",
            rustix::fs::XattrFlags::empty(),
        )
        .unwrap();
        mkdir(&dir.join("var/cache"), 0o700);
        opaque(&dir.join("var/cache"));
        fs::write(dir.join("var/cache/keep"), b"k").unwrap();
        std::os::unix::fs::lchown(dir.join("var/cache/keep"), Some(1000), Some(1001)).unwrap();
        fs::set_permissions(
            dir.join("var/cache/keep"),
            fs::Permissions::from_mode(0o4751),
        )
        .unwrap();
        symlink("/etc/new", dir.join("link")).unwrap();
        mknodat(
            CWD,
            dir.join("fifo"),
            FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Option<String>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                    e.link_name().unwrap().map(|l| l.display().to_string()),
                )
            })
            .collect()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_become_oci_entries() {
        if !root() {
            return;
        }
        let upper = tempfile::tempdir().unwrap();
        sample_upper(upper.path());
        let tar_bytes = write_layer(upper.path(), Vec::new(), &skip_nothing).unwrap();
        use tar::EntryType as T;
        let link = |s: &str| Some(s.to_string());
        assert_eq!(
            entries(&tar_bytes),
            [
                ("etc/".into(), T::Directory, None),
                ("etc/.wh.gone".into(), T::Regular, None),
                ("etc/new".into(), T::Regular, None),
                ("etc/new2".into(), T::Link, link("etc/new")),
                ("fifo".into(), T::Fifo, None),
                ("link".into(), T::Symlink, link("/etc/new")),
                ("var/".into(), T::Directory, None),
                ("var/cache/".into(), T::Directory, None),
                ("var/cache/.wh..wh..opq".into(), T::Regular, None),
                ("var/cache/keep".into(), T::Regular, None),
            ]
        );
        // overlayfs' own xattrs stay behind; the others travel as PAX records.
        let mut a = tar::Archive::new(&tar_bytes[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let keys: Vec<String> = e
                .pax_extensions()
                .unwrap()
                .map(|exts| {
                    exts.map(|x| x.unwrap().key().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            match path.as_str() {
                "etc/new" => assert_eq!(keys, ["SCHILY.xattr.user.note"]),
                _ => assert!(keys.is_empty(), "{path}: {keys:?}"),
            }
            assert_eq!(e.header().username().unwrap(), Some(""), "{path}");
        }
    }

    #[test]
    fn layers_are_deterministic() {
        if !root() {
            return;
        }
        let upper = tempfile::tempdir().unwrap();
        sample_upper(upper.path());
        let a = write_layer(upper.path(), Vec::new(), &skip_nothing).unwrap();
        let b = write_layer(upper.path(), Vec::new(), &skip_nothing).unwrap();
        assert_eq!(a, b);
        // An empty upper dir is a valid, empty layer: just the end blocks.
        let empty = tempfile::tempdir().unwrap();
        let e = write_layer(empty.path(), Vec::new(), &skip_nothing).unwrap();
        assert_eq!(e, vec![0u8; 1024]);
    }

    #[test]
    fn round_trips_through_unpack_layer() {
        if !root() {
            return;
        }
        let upper = tempfile::tempdir().unwrap();
        sample_upper(upper.path());
        set_mtime(&upper.path().join("etc/new"), 1_600_000_000, 0);
        let tar_bytes = write_layer(upper.path(), Vec::new(), &skip_nothing).unwrap();
        let out = tempfile::tempdir().unwrap();
        let stats = unpack_layer(&tar_bytes[..], out.path(), "test").unwrap();
        assert_eq!(stats.entries, 10);
        let o = out.path();

        let gone = fs::symlink_metadata(o.join("etc/gone")).unwrap();
        assert!(is_whiteout(&gone), "whiteout back as a 0/0 device");
        assert!(is_opaque(&o.join("var/cache")).unwrap());
        assert!(!is_opaque(&o.join("var")).unwrap());
        assert!(!o.join("var/cache/.wh..wh..opq").exists());

        assert_eq!(fs::read(o.join("etc/new")).unwrap(), b"hello");
        let new = fs::metadata(o.join("etc/new")).unwrap();
        let new2 = fs::metadata(o.join("etc/new2")).unwrap();
        assert_eq!(new.ino(), new2.ino(), "hard link kept");
        assert_eq!(new.mtime(), 1_600_000_000);
        assert_eq!(
            get_xattr(&o.join("etc/new"), "user.note").unwrap(),
            Some(b"kept".to_vec())
        );
        assert_eq!(
            get_xattr(&o.join("etc"), "trusted.overlay.origin").unwrap(),
            None
        );

        let keep = fs::metadata(o.join("var/cache/keep")).unwrap();
        assert_eq!((keep.uid(), keep.gid()), (1000, 1001));
        assert_eq!(keep.mode() & 0o7777, 0o4751, "setuid survives the chown");
        assert_eq!(
            fs::metadata(o.join("var/cache")).unwrap().mode() & 0o7777,
            0o700
        );
        assert_eq!(
            fs::read_link(o.join("link")).unwrap(),
            Path::new("/etc/new")
        );
        assert!(fs::symlink_metadata(o.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo());

        // And the unpacked tree, read again, is the same layer.
        let again = write_layer(o, Vec::new(), &skip_nothing).unwrap();
        assert_eq!(entries(&again), entries(&tar_bytes));
    }

    #[test]
    fn skipped_entries_are_left_out() {
        if !root() {
            return;
        }
        let upper = tempfile::tempdir().unwrap();
        sample_upper(upper.path());
        let skip = |p: &Path, _: &Metadata| p == Path::new("var") || p == Path::new("etc/new");
        let tar_bytes = write_layer(upper.path(), Vec::new(), &skip).unwrap();
        let names: Vec<String> = entries(&tar_bytes).into_iter().map(|e| e.0).collect();
        // etc/new2 is now the first name of the inode, so a regular file.
        assert_eq!(names, ["etc/", "etc/.wh.gone", "etc/new2", "fifo", "link"]);
        assert_eq!(entries(&tar_bytes)[2].1, tar::EntryType::Regular);
    }

    /// A lower layer like an image's, and the container changes made over it.
    fn image_and_container(lower: &Path, upper: &Path) {
        for d in ["etc", "var/cache", "usr/bin"] {
            mkdir(&lower.join(d), 0o755);
        }
        fs::write(lower.join("etc/passwd"), b"root").unwrap();
        fs::write(lower.join("etc/group"), b"root").unwrap();
        fs::write(lower.join("var/cache/old"), b"old").unwrap();
        fs::write(lower.join("usr/bin/tool"), b"t").unwrap();
        for d in ["var/cache", "var", "usr/bin", "usr", "etc"] {
            set_mtime(&lower.join(d), 1_500_000_000, 0);
        }

        // /etc: a file modified, one deleted.
        mkdir(&upper.join("etc"), 0o755);
        fs::write(upper.join("etc/passwd"), b"root\nuser").unwrap();
        whiteout(&upper.join("etc/group"));
        // /new/d/file: all new.
        mkdir(&upper.join("new/d"), 0o755);
        fs::write(upper.join("new/d/file"), b"x").unwrap();
        // /var/cache emptied and refilled (rm -rf; mkdir); /var itself only
        // copied up, with the lower's metadata, as overlayfs copies up.
        mkdir(&upper.join("var/cache"), 0o755);
        opaque(&upper.join("var/cache"));
        fs::write(upper.join("var/cache/fresh"), b"f").unwrap();
        set_mtime(&upper.join("var"), 1_500_000_000, 0);
        // /usr/bin/tool: modified in place; the directories keep their times.
        mkdir(&upper.join("usr/bin"), 0o755);
        fs::write(upper.join("usr/bin/tool"), b"t2").unwrap();
        set_mtime(&upper.join("usr/bin"), 1_500_000_000, 0);
        set_mtime(&upper.join("usr"), 1_500_000_000, 0);
        // The runtime's mount points.
        mkdir(&upper.join("proc"), 0o755);
        fs::write(upper.join("etc/hosts"), b"").unwrap();
    }

    fn listing(changes: &[Change]) -> Vec<String> {
        changes.iter().map(|c| c.to_string()).collect()
    }

    #[test]
    fn changes_read_like_docker_diff() {
        if !root() {
            return;
        }
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        image_and_container(lower.path(), upper.path());
        let skip = |p: &Path, _: &Metadata| p == Path::new("proc") || p == Path::new("etc/hosts");
        let found = changes(upper.path(), &[lower.path().to_path_buf()], &skip).unwrap();
        assert_eq!(
            listing(&found),
            [
                "C /etc",
                "D /etc/group",
                "C /etc/passwd",
                "A /new",
                "A /new/d",
                "A /new/d/file",
                "C /usr/bin/tool",
                "C /var/cache",
                "A /var/cache/fresh",
                "D /var/cache/old",
            ]
        );

        let all = changes(upper.path(), &[lower.path().to_path_buf()], &skip_nothing).unwrap();
        assert!(listing(&all).contains(&"A /proc".to_string()));
        assert!(listing(&all).contains(&"A /etc/hosts".to_string()));
    }

    #[test]
    fn a_directory_touched_only_by_skipped_entries_is_unchanged() {
        if !root() {
            return;
        }
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        mkdir(&lower.path().join("etc"), 0o755);
        fs::write(lower.path().join("etc/passwd"), b"root").unwrap();
        set_mtime(&lower.path().join("etc"), 1_500_000_000, 0);
        mkdir(&upper.path().join("etc"), 0o755);
        fs::write(upper.path().join("etc/hostname"), b"").unwrap();
        // The directory's mtime is when the stub was made.
        let stub = fs::metadata(upper.path().join("etc/hostname")).unwrap();
        set_mtime(&upper.path().join("etc"), stub.ctime(), stub.ctime_nsec());
        let lowers = [lower.path().to_path_buf()];
        let skip = |p: &Path, _: &Metadata| p == Path::new("etc/hostname");
        assert!(changes(upper.path(), &lowers, &skip).unwrap().is_empty());
        assert_eq!(
            listing(&changes(upper.path(), &lowers, &skip_nothing).unwrap()),
            ["C /etc", "A /etc/hostname"]
        );
        // A fine-grained mtime a moment after a coarse ctime: the same event.
        let (sec, nsec) = (stub.ctime(), stub.ctime_nsec() + 3_000_000);
        let (sec, nsec) = (sec + nsec / 1_000_000_000, nsec % 1_000_000_000);
        set_mtime(&upper.path().join("etc"), sec, nsec);
        assert!(changes(upper.path(), &lowers, &skip).unwrap().is_empty());
        // Touched later than the stub: a change of its own.
        set_mtime(&upper.path().join("etc"), stub.ctime() + 5, 0);
        assert_eq!(
            listing(&changes(upper.path(), &lowers, &skip).unwrap()),
            ["C /etc"]
        );
        // A file replaced at that moment (`sed -i`) may have moved it too.
        set_mtime(&upper.path().join("etc"), stub.ctime(), stub.ctime_nsec());
        fs::write(upper.path().join("etc/passwd"), b"root\nuser").unwrap();
        assert_eq!(
            listing(&changes(upper.path(), &lowers, &skip).unwrap()),
            ["C /etc", "C /etc/passwd"]
        );
    }

    #[test]
    fn lookups_follow_overlay_rules_across_layers() {
        if !root() {
            return;
        }
        let bottom = tempfile::tempdir().unwrap();
        let top = tempfile::tempdir().unwrap();
        mkdir(&bottom.path().join("a/b"), 0o755);
        fs::write(bottom.path().join("a/b/f"), b"").unwrap();
        fs::write(bottom.path().join("a/g"), b"").unwrap();
        fs::write(bottom.path().join("x"), b"").unwrap();
        mkdir(&top.path().join("a/b"), 0o755);
        opaque(&top.path().join("a/b"));
        whiteout(&top.path().join("x"));
        let lowers = Lowers::new(&[bottom.path().to_path_buf(), top.path().to_path_buf()]);
        assert!(
            lowers.lookup(Path::new("a/b/f")).is_none(),
            "hidden by opaque"
        );
        assert!(lowers.lookup(Path::new("a/g")).is_some());
        assert!(lowers.lookup(Path::new("x")).is_none(), "whited out");
        assert_eq!(lowers.children(Path::new("a")), ["b", "g"]);
        assert!(lowers.children(Path::new("a/b")).is_empty());
    }
}
