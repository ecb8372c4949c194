//! The context walk: what `berth build` sends from a context directory, entry by
//! entry, as BuildKit's sender (tonistiigi/fsutil `FilterFS.Walk`) produces it.
//!
//! - Order: depth first, parents before children, each directory's names sorted
//!   bytewise (Go's `filepath.WalkDir`). That is not a global sort of the paths:
//!   `a/b` comes before `a.txt` because `a` sorts before `a.txt`.
//! - Symlinks are reported, never followed.
//! - An excluded entry is not reported. An excluded directory is not even read
//!   when no exception could re-include something below it: there are no `!`
//!   patterns, or every `!` pattern is a plain path (no `*[]?^\` apart from a
//!   trailing `/*` or `/**`) that does not start with `<dir>/`. Otherwise it is
//!   read, a permission error on it is ignored, and its own entry is reported just
//!   before the first descendant that is reported, if any.
//! - Exclusion follows patternmatcher's `MatchesUsingParentResults`, as both of
//!   Docker's senders do (see [`Matcher`] for how it differs from
//!   [`Matcher::matches`] in corner cases). [`BuildContext::open`] makes the same
//!   decision as the walk, so the two never disagree (fsutil's `Open` does not
//!   have that property).

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _};
use std::path::{Component, Path, PathBuf};

use berth_fs::ResultExt as _;
use rustix::fs::{FileType as RawFileType, Mode, OFlags};

use crate::golang;
use crate::matcher::Matcher;
use crate::pattern::{Pattern, PatternError};

/// Characters that make a pattern more than a plain path for fsutil's shortcut.
const PATTERN_CHARS: &[char] = &['*', '[', ']', '?', '^', '\\'];

/// A walk or open that failed.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error(transparent)]
    Io(#[from] berth_fs::Error),
    #[error("build context {}: not a directory", path.display())]
    NotADirectory { path: PathBuf },
    /// The path does not exist, or is excluded from the context, or lies below a
    /// symlink: it is not part of what the build can see.
    #[error("{}: no such file in the build context", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: not a path inside the build context (it must be relative, without `..`)", path.display())]
    InvalidPath { path: PathBuf },
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
}

impl WalkError {
    /// Whether this is Go's `os.ErrNotExist`: missing or excluded.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound { .. } => true,
            Self::Io(e) => e.source.kind() == io::ErrorKind::NotFound,
            _ => false,
        }
    }
}

/// What kind of file an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    /// The kind of a file from its type (`lstat`, not following links).
    pub fn of(ft: std::fs::FileType) -> Self {
        if ft.is_dir() {
            Self::Dir
        } else if ft.is_symlink() {
            Self::Symlink
        } else if ft.is_fifo() {
            Self::Fifo
        } else if ft.is_socket() {
            Self::Socket
        } else if ft.is_char_device() {
            Self::CharDevice
        } else if ft.is_block_device() {
            Self::BlockDevice
        } else {
            Self::File
        }
    }

    /// A short lowercase name: `file`, `dir`, `symlink`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Dir => "dir",
            Self::Symlink => "symlink",
            Self::Fifo => "fifo",
            Self::Socket => "socket",
            Self::CharDevice => "char-device",
            Self::BlockDevice => "block-device",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One file, directory or link of the context, with what the build needs of its
/// metadata (fsutil's `Stat` without the modification time and xattrs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the context root, `/`-separated, never empty.
    pub path: PathBuf,
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// `st_size`: the content length of a regular file, the target length of a
    /// symlink; 0 for directories (whose size depends on the filesystem).
    pub size: u64,
    /// The target of a symlink, as stored (never resolved).
    pub link_target: Option<PathBuf>,
    /// For a file with several hard links: the path under which the walk first
    /// reported the same inode.
    pub hardlink_of: Option<PathBuf>,
    /// `(major, minor)` of a character or block device.
    pub device: Option<(u32, u32)>,
}

/// Which paths of a context the build sees: `.dockerignore` exclusions and, for
/// BuildKit's "follow paths", include patterns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    excludes: Option<Matcher>,
    includes: Option<Matcher>,
    /// No include pattern (other than exceptions) has pattern characters.
    only_prefix_includes: bool,
    /// No exception among the exclude patterns has pattern characters.
    only_prefix_exclude_exceptions: bool,
}

impl Filter {
    /// A filter with `.dockerignore` patterns (as [`crate::parse_ignore_file`]
    /// returns them) and optional include patterns: when `includes` is not empty,
    /// a path must also match one of them (fsutil `IncludePatterns`).
    pub fn new<E, I>(excludes: E, includes: I) -> Result<Self, PatternError>
    where
        E: IntoIterator,
        E::Item: AsRef<str>,
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let excludes: Vec<E::Item> = excludes.into_iter().collect();
        let includes: Vec<I::Item> = includes.into_iter().collect();
        // As fsutil: an empty list means no matcher at all.
        let excludes = (!excludes.is_empty())
            .then(|| Matcher::new(&excludes))
            .transpose()?;
        let includes = (!includes.is_empty())
            .then(|| Matcher::new(&includes))
            .transpose()?;
        let plain = |p: &Pattern| !without_trailing_glob(p).contains(PATTERN_CHARS);
        let only_prefix_includes = includes
            .as_ref()
            .is_none_or(|m| m.patterns().iter().filter(|p| !p.is_exclusion()).all(plain));
        let only_prefix_exclude_exceptions = excludes
            .as_ref()
            .is_none_or(|m| m.patterns().iter().filter(|p| p.is_exclusion()).all(plain));
        Ok(Self {
            excludes,
            includes,
            only_prefix_includes,
            only_prefix_exclude_exceptions,
        })
    }

    /// A filter with `.dockerignore` patterns only.
    pub fn excluding<E>(excludes: E) -> Result<Self, PatternError>
    where
        E: IntoIterator,
        E::Item: AsRef<str>,
    {
        Self::new(excludes, std::iter::empty::<&str>())
    }

    /// The `.dockerignore` patterns, if any.
    pub fn excludes(&self) -> Option<&Matcher> {
        self.excludes.as_ref()
    }

    /// Whether the walk would report `path` (slash-separated, relative to the
    /// context root; it is cleaned first, and the root itself is always in).
    /// Directories on the way are assumed to exist as directories.
    pub fn includes_path(&self, path: &str) -> Result<bool, PatternError> {
        let path = golang::clean(path);
        let path = path.trim_start_matches('/');
        if path.is_empty() || path == "." {
            return Ok(true);
        }
        let mut inc_parent: Option<Vec<bool>> = None;
        let mut exc_parent: Option<Vec<bool>> = None;
        let mut end = 0;
        loop {
            let next = path[end..].find('/').map(|i| end + i);
            let prefix = &path[..next.unwrap_or(path.len())];
            let is_dir = next.is_some();
            let mut inc_info = Vec::new();
            let mut exc_info = Vec::new();
            let decision = self.decide(
                prefix,
                is_dir,
                inc_parent.as_deref(),
                exc_parent.as_deref(),
                &mut inc_info,
                &mut exc_info,
            )?;
            match (decision, next) {
                (Decision::Prune, _) => return Ok(false),
                (decision, None) => return Ok(decision == Decision::Report),
                (_, Some(i)) => {
                    inc_parent = Some(inc_info);
                    exc_parent = Some(exc_info);
                    end = i + 1;
                }
            }
        }
    }

    /// fsutil's per-entry decision. Fills the per-pattern results a directory's
    /// children need.
    fn decide(
        &self,
        path: &str,
        is_dir: bool,
        inc_parent: Option<&[bool]>,
        exc_parent: Option<&[bool]>,
        inc_info: &mut Vec<bool>,
        exc_info: &mut Vec<bool>,
    ) -> Result<Decision, PatternError> {
        let mut decision = Decision::Report;
        if let Some(includes) = &self.includes {
            if !includes.matches_using_parent(path, inc_parent, is_dir.then_some(inc_info))? {
                // Shortcut: no include pattern can match anything below.
                if is_dir
                    && self.only_prefix_includes
                    && !could_match_below(includes, path, |p| !p.is_exclusion())
                {
                    return Ok(Decision::Prune);
                }
                decision = Decision::Hide;
            }
        }
        if let Some(excludes) = &self.excludes {
            if excludes.matches_using_parent(path, exc_parent, is_dir.then_some(exc_info))? {
                // Shortcut: no exception can re-include anything below.
                if is_dir
                    && self.only_prefix_exclude_exceptions
                    && (!excludes.has_exclusions()
                        || !could_match_below(excludes, path, Pattern::is_exclusion))
                {
                    return Ok(Decision::Prune);
                }
                decision = Decision::Hide;
            }
        }
        Ok(decision)
    }
}

/// What the walk does with an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    /// Report it (and for a directory, walk into it).
    Report,
    /// Do not report it; a directory is still walked, for what may be re-included.
    Hide,
    /// Do not report it, and do not read a directory.
    Prune,
}

/// fsutil `patternWithoutTrailingGlob`.
fn without_trailing_glob(p: &Pattern) -> &str {
    let s = p.as_str();
    let s = s.strip_suffix("/**").unwrap_or(s);
    s.strip_suffix("/*").unwrap_or(s)
}

/// Whether a plain pattern selected by `which` names something below `dir`.
fn could_match_below(m: &Matcher, dir: &str, which: impl Fn(&Pattern) -> bool) -> bool {
    // fsutil: strings.HasPrefix(pattern + "/", dir + "/").
    m.patterns().iter().filter(|p| which(p)).any(|p| {
        let pat = without_trailing_glob(p);
        pat == dir
            || pat
                .strip_prefix(dir)
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// Lists a directory: names with their types. A trait so tests can inject the
/// permission errors a non-root user meets, whoever runs them.
pub(crate) trait DirReader: fmt::Debug + Send + Sync {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>>;
}

#[derive(Debug)]
pub(crate) struct RealDirs;

impl DirReader for RealDirs {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
        std::fs::read_dir(dir)?
            .map(|e| e.and_then(|e| Ok((e.file_name(), e.file_type()?))))
            .collect()
    }
}

/// A context directory and the filter that decides what of it the build sees.
#[derive(Debug)]
pub struct BuildContext {
    root: PathBuf,
    filter: Filter,
    dirs: &'static dyn DirReader,
}

impl BuildContext {
    /// Opens a context. Symlinks in `root` itself are resolved (as fsutil does);
    /// it must be a directory.
    pub fn new(root: impl AsRef<Path>, filter: Filter) -> Result<Self, WalkError> {
        let root = root.as_ref();
        let root = std::fs::canonicalize(root).at("cannot resolve build context", root)?;
        if !root.is_dir() {
            return Err(WalkError::NotADirectory { path: root });
        }
        Ok(Self {
            root,
            filter,
            dirs: &RealDirs,
        })
    }

    #[cfg(test)]
    pub(crate) fn with_dir_reader(mut self, dirs: &'static dyn DirReader) -> Self {
        self.dirs = dirs;
        self
    }

    /// The resolved context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// Walks the context; see the module documentation for order and filtering.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            ctx: self,
            stack: Vec::new(),
            ready: VecDeque::new(),
            hardlinks: HashMap::new(),
            started: false,
            done: false,
        }
    }

    /// Opens a regular file of the context for reading.
    ///
    /// Fails with [`WalkError::NotFound`] when the walk would not report the path
    /// (excluded, missing, or below a symlink). The file is opened one component
    /// at a time without following symlinks, so nothing outside the context can
    /// be reached, even if the tree changes meanwhile.
    pub fn open(&self, path: impl AsRef<Path>) -> Result<File, WalkError> {
        let path = path.as_ref();
        let rel = relative(path)?;
        if !self
            .filter
            .includes_path(&golang::go_lossy(rel.as_os_str().as_bytes()))?
        {
            return Err(WalkError::NotFound {
                path: path.to_path_buf(),
            });
        }
        self.open_beneath(&rel)
    }

    /// Opens `rel` below the root without following symlinks; no filter check.
    pub(crate) fn open_beneath(&self, rel: &Path) -> Result<File, WalkError> {
        let not_found = || WalkError::NotFound {
            path: rel.to_path_buf(),
        };
        let io_err = |e: rustix::io::Errno| berth_fs::Error {
            op: "cannot open",
            path: self.root.join(rel),
            source: io::Error::from(e),
        };
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let mut dir = rustix::fs::open(&self.root, dir_flags, Mode::empty()).map_err(io_err)?;
        let names: Vec<_> = rel.components().collect();
        let Some((last, parents)) = names.split_last() else {
            return Err(not_found());
        };
        for name in parents {
            dir = match rustix::fs::openat(&dir, name.as_os_str(), dir_flags, Mode::empty()) {
                Ok(fd) => fd,
                // A symlink (ELOOP) or a file (ENOTDIR) on the way: nothing the
                // walk reports lies below it.
                Err(e)
                    if e == rustix::io::Errno::NOENT
                        || e == rustix::io::Errno::LOOP
                        || e == rustix::io::Errno::NOTDIR =>
                {
                    return Err(not_found())
                }
                Err(e) => return Err(io_err(e).into()),
            };
        }
        // O_NONBLOCK: a FIFO swapped in must not block the build.
        let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&dir, last.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) if e == rustix::io::Errno::NOENT => return Err(not_found()),
            Err(e) if e == rustix::io::Errno::LOOP => {
                return Err(WalkError::NotAFile {
                    path: rel.to_path_buf(),
                })
            }
            Err(e) => return Err(io_err(e).into()),
        };
        let stat = rustix::fs::fstat(&fd).map_err(io_err)?;
        if RawFileType::from_raw_mode(stat.st_mode) != RawFileType::RegularFile {
            return Err(WalkError::NotAFile {
                path: rel.to_path_buf(),
            });
        }
        Ok(File::from(fd))
    }
}

/// Checks that `path` is a plain relative path and drops `.` components.
fn relative(path: &Path) -> Result<PathBuf, WalkError> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(name) => out.push(name),
            Component::CurDir => {}
            _ => {
                return Err(WalkError::InvalidPath {
                    path: path.to_path_buf(),
                })
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(WalkError::InvalidPath {
            path: path.to_path_buf(),
        });
    }
    Ok(out)
}

/// The iterator [`BuildContext::walk`] returns. It stops after the first error.
#[derive(Debug)]
pub struct Walk<'a> {
    ctx: &'a BuildContext,
    /// The directories being walked, the root first.
    stack: Vec<Frame>,
    ready: VecDeque<Result<Entry, WalkError>>,
    /// First reported path of each multiply linked inode, by (device, inode).
    hardlinks: HashMap<(u64, u64), PathBuf>,
    started: bool,
    done: bool,
}

#[derive(Debug)]
struct Frame {
    /// The path as the patterns see it (`""` for the root).
    match_path: String,
    /// The real relative path.
    path: PathBuf,
    /// This directory is hidden and its entry not reported yet.
    pending: bool,
    /// Per-pattern results for the children; `None` at the root.
    inc_info: Option<Vec<bool>>,
    exc_info: Option<Vec<bool>>,
    children: std::vec::IntoIter<(OsString, std::fs::FileType)>,
}

impl Iterator for Walk<'_> {
    type Item = Result<Entry, WalkError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.pop_front() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.step() {
                self.ready.push_back(Err(e));
                self.done = true;
            }
        }
    }
}

impl Walk<'_> {
    /// Advances by one directory entry, queueing what it reports.
    fn step(&mut self) -> Result<(), WalkError> {
        if !self.started {
            self.started = true;
            // Unlike fsutil, which silently walks nothing, an unreadable root is
            // an error.
            let children = self
                .read_dir(Path::new(""))
                .at("cannot read directory", &self.ctx.root)?;
            self.stack.push(Frame {
                match_path: String::new(),
                path: PathBuf::new(),
                pending: false,
                inc_info: None,
                exc_info: None,
                children: children.into_iter(),
            });
            return Ok(());
        }
        let Some(frame) = self.stack.last_mut() else {
            self.done = true;
            return Ok(());
        };
        let Some((name, file_type)) = frame.children.next() else {
            self.stack.pop();
            return Ok(());
        };
        let name_str = golang::go_lossy(name.as_bytes());
        let match_path = if frame.match_path.is_empty() {
            name_str.into_owned()
        } else {
            format!("{}/{}", frame.match_path, name_str)
        };
        let path = frame.path.join(&name);
        let is_dir = file_type.is_dir();
        let mut inc_info = Vec::new();
        let mut exc_info = Vec::new();
        let decision = self.ctx.filter.decide(
            &match_path,
            is_dir,
            frame.inc_info.as_deref(),
            frame.exc_info.as_deref(),
            &mut inc_info,
            &mut exc_info,
        )?;
        let hidden = match decision {
            Decision::Prune => return Ok(()),
            Decision::Hide => true,
            Decision::Report => false,
        };
        if !hidden {
            self.report(&path)?;
        }
        if is_dir {
            let children = match self.read_dir(&path) {
                Ok(children) => children,
                // fsutil ignores permission errors on excluded directories.
                Err(e) if hidden && e.kind() == io::ErrorKind::PermissionDenied => Vec::new(),
                Err(e) => Err(e).at("cannot read directory", &self.ctx.root.join(&path))?,
            };
            self.stack.push(Frame {
                match_path,
                path,
                pending: hidden,
                inc_info: self.ctx.filter.includes.is_some().then_some(inc_info),
                exc_info: self.ctx.filter.excludes.is_some().then_some(exc_info),
                children: children.into_iter(),
            });
        }
        Ok(())
    }

    fn read_dir(&self, rel: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
        let mut children = self.ctx.dirs.read_dir(&self.ctx.root.join(rel))?;
        // Go's os.ReadDir sorts by name, bytewise.
        children.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        Ok(children)
    }

    /// Queues `path`, after the hidden directories above it that were not
    /// reported yet.
    fn report(&mut self, path: &Path) -> Result<(), WalkError> {
        for i in 0..self.stack.len() {
            if self.stack[i].pending {
                self.stack[i].pending = false;
                let dir = self.stack[i].path.clone();
                if let Some(entry) = self.entry(&dir)? {
                    self.ready.push_back(Ok(entry));
                }
            }
        }
        if let Some(entry) = self.entry(path)? {
            self.ready.push_back(Ok(entry));
        }
        Ok(())
    }

    /// Reads an entry's metadata; `None` if it vanished since it was listed.
    fn entry(&mut self, rel: &Path) -> Result<Option<Entry>, WalkError> {
        let full = self.ctx.root.join(rel);
        let meta = match std::fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => Err(e).at("cannot stat", &full)?,
        };
        let kind = FileKind::of(meta.file_type());
        let link_target = match kind {
            FileKind::Symlink => Some(std::fs::read_link(&full).at("cannot read link", &full)?),
            _ => None,
        };
        let device = matches!(kind, FileKind::CharDevice | FileKind::BlockDevice).then(|| {
            (
                rustix::fs::major(meta.rdev()),
                rustix::fs::minor(meta.rdev()),
            )
        });
        let mut hardlink_of = None;
        if kind != FileKind::Dir && meta.nlink() > 1 {
            let key = (meta.dev(), meta.ino());
            match self.hardlinks.get(&key) {
                Some(first) => hardlink_of = Some(first.clone()),
                None => {
                    self.hardlinks.insert(key, rel.to_path_buf());
                }
            }
        }
        Ok(Some(Entry {
            path: rel.to_path_buf(),
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            size: if kind == FileKind::Dir {
                0
            } else {
                meta.size()
            },
            link_target,
            hardlink_of,
            device,
        }))
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::symlink;

    use super::*;

    /// Creates files (content: their own path) and, for names ending in `/`,
    /// empty directories.
    fn tree(files: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for rel in files {
            let path = dir.path().join(rel);
            if rel.ends_with('/') {
                fs::create_dir_all(&path).unwrap();
            } else {
                fs::create_dir_all(path.parent().unwrap()).unwrap();
                fs::write(&path, rel.as_bytes()).unwrap();
            }
        }
        dir
    }

    fn listing(root: &Path, excludes: &[&str], includes: &[&str]) -> Vec<String> {
        let ctx = BuildContext::new(root, Filter::new(excludes, includes).unwrap()).unwrap();
        ctx.walk()
            .map(|e| {
                let e = e.unwrap();
                format!("{} {}", e.kind, e.path.display())
            })
            .collect()
    }

    #[test]
    fn depth_first_with_sorted_names() {
        let dir = tree(&["a.txt", "a/b", "B", "a/c/d"]);
        assert_eq!(
            listing(dir.path(), &[], &[]),
            [
                "file B",
                "dir a",
                "file a/b",
                "dir a/c",
                "file a/c/d",
                "file a.txt"
            ]
        );
    }

    #[test]
    fn hidden_directories_appear_before_their_first_reported_child() {
        let dir = tree(&["x/y/z/keep", "x/y/z/drop", "x/other", "x/y/empty/"]);
        assert_eq!(
            listing(dir.path(), &["x", "!x/y/z/keep"], &[]),
            ["dir x", "dir x/y", "dir x/y/z", "file x/y/z/keep"]
        );
    }

    #[test]
    fn symlinks_are_reported_not_followed() {
        let dir = tree(&["real/f"]);
        symlink("real", dir.path().join("link")).unwrap();
        symlink("/etc", dir.path().join("abs")).unwrap();
        let ctx = BuildContext::new(dir.path(), Filter::default()).unwrap();
        let entries: Vec<Entry> = ctx.walk().collect::<Result<_, _>>().unwrap();
        let link = entries
            .iter()
            .find(|e| e.path == Path::new("link"))
            .unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        assert_eq!(link.link_target.as_deref(), Some(Path::new("real")));
        assert_eq!(link.size, 4);
        assert!(!entries.iter().any(|e| e.path == Path::new("link/f")));
        // Nothing is opened through a link, inside the context or out of it.
        assert!(ctx.open("link/f").unwrap_err().is_not_found());
        assert!(ctx.open("abs/hostname").unwrap_err().is_not_found());
        assert!(matches!(ctx.open("link"), Err(WalkError::NotAFile { .. })));
        assert!(ctx.open("real/f").is_ok());
        assert!(ctx.open("./real/f").is_ok());
    }

    #[test]
    fn open_rejects_paths_leaving_the_context() {
        let dir = tree(&["f"]);
        let ctx = BuildContext::new(dir.path(), Filter::default()).unwrap();
        for bad in ["../f", "a/../../f", "/etc/passwd", "", "."] {
            assert!(
                matches!(ctx.open(bad), Err(WalkError::InvalidPath { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn metadata_and_hardlinks() {
        let dir = tree(&["a", "sub/"]);
        fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let ctx = BuildContext::new(dir.path(), Filter::default()).unwrap();
        let entries: Vec<Entry> = ctx.walk().collect::<Result<_, _>>().unwrap();
        let meta = fs::metadata(dir.path().join("a")).unwrap();
        assert_eq!(entries[0].path, Path::new("a"));
        assert_eq!(entries[0].mode, meta.mode() & 0o7777);
        assert_eq!((entries[0].uid, entries[0].gid), (meta.uid(), meta.gid()));
        assert_eq!(entries[0].size, 1);
        assert_eq!(entries[0].hardlink_of, None);
        assert_eq!(entries[1].hardlink_of.as_deref(), Some(Path::new("a")));
        assert_eq!((entries[2].kind, entries[2].size), (FileKind::Dir, 0));
    }

    #[test]
    fn walk_and_open_follow_docker_where_matches_or_parent_matches_differs() {
        // `d/*` excludes d/x; `!d` re-includes d only: Docker (fsutil and the
        // classic builder) keep d/x out, though MatchesOrParentMatches lets it in.
        let dir = tree(&["d/x"]);
        assert_eq!(listing(dir.path(), &["d/*", "!d"], &[]), ["dir d"]);
        let ctx = BuildContext::new(dir.path(), Filter::excluding(["d/*", "!d"]).unwrap()).unwrap();
        assert!(ctx.open("d/x").unwrap_err().is_not_found());
        assert!(!Matcher::new(["d/*", "!d"]).unwrap().matches("d/x").unwrap());
        // The other direction: reported by the walk, so it must open.
        let patterns = ["d", "!d/*", "d"];
        assert_eq!(listing(dir.path(), &patterns, &[]), ["dir d", "file d/x"]);
        let ctx = BuildContext::new(dir.path(), Filter::excluding(patterns).unwrap()).unwrap();
        assert!(ctx.open("d/x").is_ok());
    }

    #[test]
    fn excluded_directories_are_pruned_unless_an_exception_reaches_inside() {
        let dir = tree(&["node_modules/a/b", "node_modules/keep", "src/x"]);
        // Pruned: never read, so an unreadable directory there is no error.
        #[derive(Debug)]
        struct Refuse;
        impl DirReader for Refuse {
            fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
                if dir.ends_with("node_modules") {
                    return Err(io::Error::from(rustix::io::Errno::ACCESS));
                }
                RealDirs.read_dir(dir)
            }
        }
        let filter = Filter::excluding(["node_modules"]).unwrap();
        let ctx = BuildContext::new(dir.path(), filter)
            .unwrap()
            .with_dir_reader(&Refuse);
        let got: Vec<_> = ctx.walk().map(|e| e.unwrap().path).collect();
        assert_eq!(got, [Path::new("src"), Path::new("src/x")]);
        // A wildcard exception forces a read; the permission error is ignored
        // because the directory itself is excluded.
        let filter = Filter::excluding(["node_modules", "!**/keep"]).unwrap();
        let ctx = BuildContext::new(dir.path(), filter)
            .unwrap()
            .with_dir_reader(&Refuse);
        assert_eq!(ctx.walk().filter(Result::is_err).count(), 0);
        // Without that read permission problem, the exception finds its file.
        assert_eq!(
            listing(dir.path(), &["node_modules", "!**/keep"], &[]),
            [
                "dir node_modules",
                "file node_modules/keep",
                "dir src",
                "file src/x"
            ]
        );
    }

    #[test]
    fn include_patterns_select_paths() {
        let dir = tree(&["app/main.go", "app/web/x.js", "docs/a.md"]);
        assert_eq!(
            listing(dir.path(), &[], &["app", "!app/web"]),
            ["dir app", "file app/main.go"]
        );
        assert_eq!(
            listing(dir.path(), &["**/*.js"], &["app"]),
            ["dir app", "file app/main.go", "dir app/web"]
        );
    }

    #[test]
    fn errors_name_paths_and_stop_the_walk() {
        #[derive(Debug)]
        struct Broken;
        impl DirReader for Broken {
            fn read_dir(&self, dir: &Path) -> io::Result<Vec<(OsString, std::fs::FileType)>> {
                if dir.ends_with("b") {
                    return Err(io::Error::from(rustix::io::Errno::IO));
                }
                RealDirs.read_dir(dir)
            }
        }
        let dir = tree(&["a", "b/c", "d"]);
        let ctx = BuildContext::new(dir.path(), Filter::default())
            .unwrap()
            .with_dir_reader(&Broken);
        let items: Vec<_> = ctx.walk().collect();
        assert_eq!(items.len(), 3, "a, b, then the error; d is never reached");
        let err = items[2].as_ref().unwrap_err().to_string();
        assert!(err.starts_with("cannot read directory "), "{err}");
        assert!(err.contains("/b: "), "{err}");
        let missing = BuildContext::new(dir.path().join("nope"), Filter::default()).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
        let file = BuildContext::new(dir.path().join("a"), Filter::default()).unwrap_err();
        assert!(matches!(file, WalkError::NotADirectory { .. }));
    }

    #[test]
    fn invalid_pattern_fails_the_walk_when_reached() {
        let dir = tree(&["a"]);
        let ctx =
            BuildContext::new(dir.path(), Filter::excluding(["[Local-Only]"]).unwrap()).unwrap();
        let err = ctx.walk().next().unwrap().unwrap_err();
        assert!(
            matches!(err, WalkError::Pattern(PatternError::Regexp { .. })),
            "{err}"
        );
    }

    #[test]
    fn includes_path_matches_the_walk() {
        let filter =
            Filter::excluding(["foo", "!foo/bar", "foo/bar/baz", "!foo/bar/baz/x"]).unwrap();
        for (path, want) in [
            ("foo", false),
            ("foo/bar", true),
            ("foo/bar/baz", false),
            ("foo/bar/baz/x", true),
            ("foo/bar/baz/y", false),
            ("other", true),
            ("", true),
            ("./foo/bar/", true),
        ] {
            assert_eq!(filter.includes_path(path).unwrap(), want, "{path}");
        }
    }
}
