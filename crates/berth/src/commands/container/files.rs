//! `diff`, `export` and `cp`: a container's filesystem seen from the host.
//!
//! A running container's root filesystem is mounted at `merged/` in the host's
//! mount namespace (the monitor mounts it there), so these commands read and
//! write through it and overlayfs does the copy-up and the whiteouts, exactly
//! as a process in the container would. A stopped container's root is mounted
//! for the length of the command. `diff` and `commit` read `upper/` directly.
//!
//! Paths inside the container are resolved with
//! [`resolve_in_root`](berth_runtime::command::resolve_in_root), so a symlink
//! in the container, absolute or full of `..`, never leads out of its root: a
//! link to `/etc` means the container's `/etc`, as Docker's chrooted copy reads it.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{self, File, Metadata};
use std::io::{self, BufWriter, IsTerminal, Read, Write};
use std::os::unix::fs::{lchown, symlink, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::thread::JoinHandle;

use berth_fs::AtomicFile;
use berth_image::diff::{self, skip_nothing, TreeWriter};
use berth_runtime::command::resolve_in_root;
use berth_runtime::rootfs::{is_mounted, mount_rootfs, unmount_rootfs, RootPaths};
use berth_runtime::ContainerConfig;
use berth_store::{ContainerRecord, Store};
use rustix::fs::{
    flock, mknodat, utimensat, AtFlags, FileType, FlockOperation, Mode, Timespec, Timestamps, CWD,
};

use super::{find, Context};
use crate::cli::{CpArgs, DiffArgs, ExportArgs};
use crate::error::CliError;
use crate::output::{self, units};

/// Mount points the runtime creates in the upper dir when the image lacks
/// them. Docker keeps these in a separate "init" layer under the container's
/// own, so they never show in `docker diff` nor land in a commit; berth has
/// no such layer and leaves them out instead.
const STUB_FILES: &[&str] = &["etc/hosts", "etc/hostname", "etc/resolv.conf"];
const STUB_DIRS: &[&str] = &["proc", "sys", "dev", "etc"];

pub fn diff(ctx: &Context, a: DiffArgs) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    let lowers = image_layers(&store, &c)?;
    let upper = RootPaths::new(&store.layout().container(&c.id)).upper;
    let stubs = Stubs::new(&upper, &lowers);
    let changes = diff::changes(&upper, &lowers, &|p, m| stubs.is_stub(p, m)).map_err(tar_error)?;
    let mut out = output::stdout();
    for change in changes {
        writeln!(out, "{change}")?;
    }
    Ok(())
}

pub fn export(ctx: &Context, a: ExportArgs) -> Result<(), CliError> {
    if a.output.is_none() && io::stdout().is_terminal() {
        // Docker's words.
        return Err(CliError::new(
            "cowardly refusing to save to a terminal. Use the -o flag or redirect",
        ));
    }
    let mut store = ctx.store()?;
    let c = find(&mut store, &a.container)?;
    let rootfs = Rootfs::open(ctx, &store, &c)?;
    match &a.output {
        Some(path) => {
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // A partial archive never appears under the requested name.
            let file = AtomicFile::new_in(dir).map_err(|e| {
                CliError::new(format!("cannot write {}: {}", path.display(), e.source))
            })?;
            let mut w = TreeWriter::new(BufWriter::with_capacity(1 << 20, file), false);
            w.append(rootfs.merged(), Path::new(""), &skip_nothing)
                .map_err(tar_error)?;
            let file =
                w.finish().map_err(tar_error)?.into_inner().map_err(|e| {
                    CliError::new(format!("write {}: {}", path.display(), e.error()))
                })?;
            file.commit(path)?;
        }
        None => {
            let mut w = TreeWriter::new(
                BufWriter::with_capacity(1 << 20, io::stdout().lock()),
                false,
            );
            w.append(rootfs.merged(), Path::new(""), &skip_nothing)
                .map_err(tar_error)?;
            w.finish().map_err(tar_error)?.flush()?;
        }
    }
    Ok(())
}

pub fn cp(ctx: &Context, a: CpArgs) -> Result<(), CliError> {
    let src = Endpoint::parse(&a.src);
    let dest = Endpoint::parse(&a.dest);
    match (src, dest) {
        (Endpoint::Container { .. }, Endpoint::Container { .. }) => {
            Err(CliError::new("copying between containers is not supported"))
        }
        (Endpoint::Local(_), Endpoint::Local(_)) => {
            Err(CliError::new("must specify at least one container source"))
        }
        (Endpoint::Container { name, path }, Endpoint::Local(dest)) => {
            if path.is_empty() {
                return Err(CliError::new("source can not be empty"));
            }
            copy_from_container(ctx, &a, &name, &path, &dest)
        }
        (Endpoint::Local(src), Endpoint::Container { name, path }) => {
            if path.is_empty() {
                return Err(CliError::new("destination can not be empty"));
            }
            copy_to_container(ctx, &a, &src, &name, &path)
        }
    }
}

/// One side of `cp`, split as Docker's `splitCpArg` does: an absolute path or
/// one starting with `.` is local even with a colon in it.
enum Endpoint {
    Local(String),
    Container { name: String, path: String },
}

impl Endpoint {
    fn parse(arg: &str) -> Self {
        if arg.starts_with('/') {
            return Self::Local(arg.to_string());
        }
        match arg.split_once(':') {
            Some((name, path)) if !name.starts_with('.') => Self::Container {
                name: name.to_string(),
                path: path.to_string(),
            },
            _ => Self::Local(arg.to_string()),
        }
    }
}

fn copy_from_container(
    ctx: &Context,
    a: &CpArgs,
    name: &str,
    path: &str,
    dest: &str,
) -> Result<(), CliError> {
    let dest_abs = (dest != "-").then(|| absolute_local(dest)).transpose()?;
    if let Some(d) = &dest_abs {
        // Docker's ValidateOutputPath: the parent must exist before anything
        // is read.
        let parent = go_dir(&go_clean(d));
        if fs::metadata(&parent).is_err() {
            return Err(CliError::new(format!(
                "invalid output path: directory {parent:?} does not exist"
            )));
        }
    }
    let mut store = ctx.store()?;
    let c = find(&mut store, name)?;
    let rootfs = Rootfs::open(ctx, &store, &c)?;
    let src = container_source(&rootfs.cp_view(&c), path, a.follow_link)?
        .ok_or_else(|| not_found(path, name))?;

    let Some(dest_abs) = dest_abs else {
        let mut w = TreeWriter::new(
            BufWriter::with_capacity(1 << 20, io::stdout().lock()),
            false,
        );
        w.append(&src.host, Path::new(&src.name), &skip_nothing)
            .map_err(tar_error)?;
        w.finish().map_err(tar_error)?.flush()?;
        return Ok(());
    };
    let dst = local_destination(&dest_abs)?;
    let (dir, entry) = prepare_copy(src.is_dir, &src.name, &dst)?;
    let owner = if a.archive {
        Owner::Source
    } else {
        Owner::Caller
    };
    let copied = stream_copy(src.host, entry, Path::new("/"), &dir, owner)?;
    report(a, copied, dest);
    Ok(())
}

fn copy_to_container(
    ctx: &Context,
    a: &CpArgs,
    src: &str,
    name: &str,
    path: &str,
) -> Result<(), CliError> {
    let mut store = ctx.store()?;
    let c = find(&mut store, name)?;
    let config: ContainerConfig = serde_json::from_str(&c.config).unwrap_or_default();
    if config.host_config.read_only_rootfs {
        return Err(CliError::new("container rootfs is marked read-only"));
    }
    let rootfs = Rootfs::open(ctx, &store, &c)?;
    let view = rootfs.cp_view(&c);
    let root = view.as_path();
    // Owned by the container's root unless -a keeps the source's owners.
    let owner = if a.archive {
        Owner::Source
    } else {
        Owner::Fixed(0, 0)
    };

    // Docker's CLI stats the destination and follows it once if it is a symlink.
    let mut dst = Destination {
        path: container_abs(path),
        exists: false,
        is_dir: false,
    };
    if let Some(m) = stat_in_container(root, &dst.path) {
        if m.file_type().is_symlink() {
            let host = resolve_parent(root, &dst.path)
                .map(|(dir, base)| dir.join(base))
                .expect("stat found it");
            let target = fs::read_link(&host)?;
            let target = target.to_string_lossy();
            dst.path = if target.starts_with('/') {
                target.into_owned()
            } else {
                go_clean(&format!("{}/{target}", split_path_dir_entry(&dst.path).0))
            };
            if let Some(m) = stat_in_container(root, &dst.path) {
                dst.exists = true;
                dst.is_dir = m.is_dir();
            }
        } else {
            dst.exists = true;
            dst.is_dir = m.is_dir();
        }
    }

    if src == "-" {
        if !dst.is_dir {
            return Err(CliError::new(format!(
                "destination \"{name}:{path}\" must be a directory"
            )));
        }
        let target = extraction_point(root, &dst.path, path, name)?;
        let copied = extract(io::stdin().lock(), root, &target, owner)?;
        report(a, copied, &a.dest);
        return Ok(());
    }

    let src_abs = absolute_local(src)?;
    let source = local_source(&src_abs, a.follow_link)?;
    let (dir, entry) = prepare_copy(source.is_dir, &source.name, &dst)?;
    let target = extraction_point(root, &dir, &dir, name)?;
    let copied = stream_copy(source.host, entry, root, &target, owner)?;
    report(a, copied, &a.dest);
    Ok(())
}

/// Docker's closing line, on a terminal only and unless `-q`.
fn report(a: &CpArgs, bytes: u64, dest: &str) {
    if !a.quiet && io::stderr().is_terminal() {
        let _ = writeln!(
            io::stderr(),
            "Successfully copied {} to {dest}",
            units::human_size(bytes)
        );
    }
}

fn not_found(path: &str, container: &str) -> CliError {
    CliError::new(format!(
        "Could not find the file {path} in container {container}"
    ))
}

/// What `cp` reads: the host path, whether it is a directory, and the name
/// its top entry takes in the stream (`.` for "the contents of").
struct Source {
    host: PathBuf,
    is_dir: bool,
    name: OsString,
}

/// The daemon's `ResolvePath` + `StatPath`: the directory part is resolved in
/// the container's root, the last element is taken as it is (a symlink is
/// copied as a symlink) unless the path ends in `/` or `/.`, or `-L` asks to
/// follow it. `None` when there is nothing there.
fn container_source(root: &Path, path: &str, follow: bool) -> Result<Option<Source>, CliError> {
    let abs = container_abs(path);
    let Some((dir, base)) = resolve_parent(root, &abs) else {
        return Ok(None);
    };
    let mut host = if base.is_empty() || base == "." {
        dir
    } else {
        dir.join(&base)
    };
    let Ok(mut meta) = fs::symlink_metadata(&host) else {
        return Ok(None);
    };
    if follow && meta.file_type().is_symlink() {
        let Some(target) = resolve_in_root(root, &abs) else {
            return Ok(None);
        };
        host = target;
        meta = fs::symlink_metadata(&host)?;
    }
    if has_trailing_separator(path) && !meta.is_dir() {
        return Err(CliError::new(format!("lstat {abs}: not a directory")));
    }
    let name = match go_base(&abs).as_str() {
        "/" => ".".to_string(),
        b => b.to_string(),
    };
    Ok(Some(Source {
        host,
        is_dir: meta.is_dir(),
        name: name.into(),
    }))
}

/// Docker's `CopyInfoSourcePath`: symlinks in the directory part are
/// followed; the last element only with `-L`, where the copy keeps the name
/// the user gave.
fn local_source(abs: &str, follow: bool) -> Result<Source, CliError> {
    let lstat_err = |e: io::Error| CliError::new(format!("lstat {abs}: {}", go_errno(&e)));
    let base = go_base(abs);
    let host = if follow {
        fs::canonicalize(abs).map_err(lstat_err)?
    } else {
        let dir = fs::canonicalize(go_dir(abs)).map_err(lstat_err)?;
        if specifies_current_dir(abs) || abs.ends_with('/') {
            // "dir/" and "dir/." name the directory itself.
            fs::canonicalize(abs).map_err(lstat_err)?
        } else {
            dir.join(&base)
        }
    };
    let meta = fs::symlink_metadata(&host).map_err(lstat_err)?;
    if has_trailing_separator(abs) && !meta.is_dir() {
        return Err(lstat_err(io::Error::from(io::ErrorKind::NotADirectory)));
    }
    let name = if base == "/" { ".".to_string() } else { base };
    Ok(Source {
        host,
        is_dir: meta.is_dir(),
        name: name.into(),
    })
}

/// Where a copy goes, as Docker's `CopyInfo` describes a destination.
struct Destination {
    /// Absolute (in the container, or on the host).
    path: String,
    exists: bool,
    is_dir: bool,
}

/// Docker's `CopyInfoDestinationPath` for a local path: symlinks are followed
/// (the copy goes where the link points), and when nothing is there the
/// parent must be a directory.
fn local_destination(path: &str) -> Result<Destination, CliError> {
    let mut path = path.to_string();
    for _ in 0..=10 {
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = fs::read_link(&path)?;
                let target = target.to_string_lossy();
                path = if target.starts_with('/') {
                    target.into_owned()
                } else {
                    go_clean(&format!("{}/{target}", split_path_dir_entry(&path).0))
                };
            }
            Ok(m) => {
                return Ok(Destination {
                    path,
                    exists: true,
                    is_dir: m.is_dir(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = split_path_dir_entry(&path).0;
                match fs::metadata(&parent) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => return Err(CliError::new("not a directory")),
                    Err(e) => {
                        return Err(CliError::new(format!("stat {parent}: {}", go_errno(&e))))
                    }
                }
                return Ok(Destination {
                    path,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(CliError::new(format!("lstat {path}: {}", go_errno(&e)))),
        }
    }
    Err(CliError::new(format!("too many symlinks in {path}")))
}

/// Docker's `PrepareArchiveCopy`: the directory to extract into and the name
/// the source's top entry takes there.
fn prepare_copy(
    src_is_dir: bool,
    src_name: &OsStr,
    dst: &Destination,
) -> Result<(String, OsString), CliError> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    if dst.exists && dst.is_dir {
        // Copied into the directory under its own name ("." = its contents).
        return Ok((dst.path.clone(), src_name.to_owned()));
    }
    if dst.exists && src_is_dir {
        return Err(CliError::new("cannot copy directory"));
    }
    if !dst.exists && !src_is_dir && asserts_directory(&dst.path) {
        // "dir/" that does not exist cannot be made from a file.
        return Err(CliError::new("no such directory"));
    }
    Ok((dst_dir, dst_base.into()))
}

/// The daemon's `ContainerExtractToDir` check: the directory must exist (its
/// last element followed if a symlink) and be a directory.
fn extraction_point(
    root: &Path,
    path: &str,
    shown: &str,
    container: &str,
) -> Result<String, CliError> {
    let host = resolve_in_root(root, path).ok_or_else(|| not_found(shown, container))?;
    if !host.is_dir() {
        return Err(CliError::new("extraction point is not a directory"));
    }
    // Back to a path in the container, now free of symlinks.
    let rel = host.strip_prefix(root).expect("resolved under the root");
    Ok(format!("/{}", rel.display()))
}

/// Writes `src` as a tar named `name` in one thread and extracts it under
/// `dir` of `root` in this one: the same stream `cp -` reads and writes, so
/// both directions share one set of rules. Returns the bytes streamed.
fn stream_copy(
    src: PathBuf,
    name: OsString,
    root: &Path,
    dir: &str,
    owner: Owner,
) -> Result<u64, CliError> {
    let (reader, writer) = rustix::pipe::pipe().map_err(io::Error::from)?;
    let writer: JoinHandle<Result<(), diff::Error>> = std::thread::spawn(move || {
        let mut w = TreeWriter::new(BufWriter::with_capacity(1 << 16, File::from(writer)), false);
        w.append(&src, Path::new(&name), &skip_nothing)?;
        w.finish()?.flush().map_err(diff::Error::Write)
    });
    let extracted = extract(File::from(reader), root, dir, owner);
    let written = writer.join().expect("the tar writer does not panic");
    match (written, extracted) {
        // The reader stopped early; its error says why.
        (Err(diff::Error::Write(e)), Err(x)) if e.kind() == io::ErrorKind::BrokenPipe => Err(x),
        (Err(e), _) => Err(tar_error(e)),
        (Ok(()), r) => r,
    }
}

/// Who owns what `cp` writes.
#[derive(Clone, Copy)]
enum Owner {
    /// The uid/gid recorded in the stream (`-a`).
    Source,
    /// These ids (into a container: its root).
    Fixed(u32, u32),
    /// Whoever runs berth (out of a container, as Docker does).
    Caller,
}

/// Extracts a tar stream into directory `dir` (absolute, inside `root`), as
/// Docker's `Untar` with `NoOverwriteDirNonDir` does: directories merge, other
/// entries replace what is there, a directory is never replaced by a
/// non-directory or the reverse. Every parent is resolved inside `root`, and an
/// entry is created in place of (never through) a symlink, so nothing in the
/// stream or in the tree can write outside `root`. Returns the bytes read.
fn extract(input: impl Read, root: &Path, dir: &str, owner: Owner) -> Result<u64, CliError> {
    let mut input = CountingReader { inner: input, n: 0 };
    let bad = |e: io::Error| CliError::new(format!("invalid tar stream: {e}"));
    let mut resolver = Resolver {
        root,
        owner,
        dirs: HashMap::new(),
    };
    let mut dir_times: Vec<(PathBuf, i64)> = Vec::new();
    {
        let mut archive = tar::Archive::new(&mut input);
        for entry in archive.entries().map_err(bad)? {
            let mut entry = entry.map_err(bad)?;
            let raw = entry.path().map_err(bad)?.into_owned();
            let Some(rel) = clean_entry_path(&raw)? else {
                // The extraction directory itself ("./"): left as it is.
                continue;
            };
            let cpath = Path::new(dir).join(&rel);
            let name = cpath.file_name().expect("a clean entry has a name");
            let parent = resolver.dir(cpath.parent().expect("under dir"))?;
            let target = parent.join(name);
            let header = entry.header().clone();
            let kind = header.entry_type();
            let is_dir = kind == tar::EntryType::Directory;
            if let Ok(m) = fs::symlink_metadata(&target) {
                if m.is_dir() && !is_dir {
                    return Err(CliError::new(format!(
                        "cannot overwrite directory {:?} with non-directory {:?}",
                        cpath.display().to_string(),
                        dir
                    )));
                }
                if !m.is_dir() && is_dir {
                    return Err(CliError::new(format!(
                        "cannot overwrite non-directory {:?} with directory {:?}",
                        cpath.display().to_string(),
                        dir
                    )));
                }
                if !m.is_dir() {
                    fs::remove_file(&target).map_err(|e| at("remove", &target, e))?;
                }
            }
            let mode =
                berth_image::blank_is_zero(header.mode().map(u64::from), &header.as_old().mode)
                    .map_err(bad)? as u32
                    & 0o7777;
            match kind {
                tar::EntryType::Directory => {
                    if !target.is_dir() {
                        fs::create_dir(&target).map_err(|e| at("mkdir", &target, e))?;
                    }
                    resolver.dirs.insert(cpath.clone(), target.clone());
                }
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    let mut f = File::create(&target).map_err(|e| at("create", &target, e))?;
                    io::copy(&mut entry, &mut f).map_err(|e| at("write", &target, e))?;
                }
                tar::EntryType::Symlink => {
                    let link = header
                        .link_name()
                        .map_err(bad)?
                        .ok_or_else(|| CliError::new(format!("symlink {raw:?} has no target")))?;
                    symlink(&link, &target).map_err(|e| at("symlink", &target, e))?;
                }
                tar::EntryType::Link => {
                    let link = header
                        .link_name()
                        .map_err(bad)?
                        .ok_or_else(|| CliError::new(format!("hard link {raw:?} has no target")))?;
                    let link_rel = clean_entry_path(&link)?.ok_or_else(|| {
                        CliError::new(format!("hard link {raw:?} points at the extraction root"))
                    })?;
                    let link_c = Path::new(dir).join(link_rel);
                    let link_parent = resolver.dir(link_c.parent().expect("under dir"))?;
                    let source = link_parent.join(link_c.file_name().expect("has a name"));
                    fs::hard_link(&source, &target).map_err(|e| at("link", &target, e))?;
                    // One inode: its owner and mode came with the first name.
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
                    mknodat(
                        CWD,
                        &target,
                        ft,
                        Mode::from_raw_mode(0o600),
                        rustix::fs::makedev(major, minor),
                    )
                    .map_err(|e| at("mknod", &target, e.into()))?;
                }
                // PAX and GNU metadata entries are consumed by the reader;
                // anything else has no file to make.
                _ => continue,
            }
            if let Some(exts) = entry.pax_extensions().map_err(bad)? {
                for ext in exts.flatten() {
                    if let Some(name) = ext.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr."))
                    {
                        // As Docker's Untar: an xattr the filesystem refuses
                        // (trusted.* unprivileged, no xattr support) is dropped.
                        let _ = rustix::fs::lsetxattr(
                            &target,
                            name,
                            ext.value_bytes(),
                            rustix::fs::XattrFlags::empty(),
                        );
                    }
                }
            }
            let ids = match owner {
                Owner::Source => Some((
                    berth_image::blank_is_zero(header.uid(), &header.as_old().uid).map_err(bad)?
                        as u32,
                    berth_image::blank_is_zero(header.gid(), &header.as_old().gid).map_err(bad)?
                        as u32,
                )),
                Owner::Fixed(u, g) => Some((u, g)),
                Owner::Caller => None,
            };
            if let Some((uid, gid)) = ids {
                lchown(&target, Some(uid), Some(gid)).map_err(|e| at("chown", &target, e))?;
            }
            if kind != tar::EntryType::Symlink {
                // After chown, which clears setuid and setgid.
                fs::set_permissions(&target, fs::Permissions::from_mode(mode))
                    .map_err(|e| at("chmod", &target, e))?;
            }
            let mtime = berth_image::blank_is_zero(header.mtime(), &header.as_old().mtime)
                .map_err(bad)? as i64;
            if is_dir {
                dir_times.push((target, mtime));
            } else {
                set_mtime(&target, mtime)?;
            }
        }
    }
    // Last, and deepest first: making entries in a directory moves its mtime.
    for (d, t) in dir_times.iter().rev() {
        set_mtime(d, *t)?;
    }
    Ok(input.n)
}

/// Finds (or makes) directories inside the root for `extract`.
struct Resolver<'a> {
    root: &'a Path,
    owner: Owner,
    /// Container path -> host path of directories already resolved.
    dirs: HashMap<PathBuf, PathBuf>,
}

impl Resolver<'_> {
    /// The host path of directory `cpath` (absolute in the root), following
    /// symlinks inside the root and creating what is missing (0755, as
    /// Docker's `Untar` does).
    fn dir(&mut self, cpath: &Path) -> Result<PathBuf, CliError> {
        if let Some(h) = self.dirs.get(cpath) {
            return Ok(h.clone());
        }
        let mut host = self.root.to_path_buf();
        let mut cur = PathBuf::from("/");
        for part in cpath.components() {
            let Component::Normal(part) = part else {
                continue;
            };
            cur.push(part);
            if let Some(h) = self.dirs.get(&cur) {
                host = h.clone();
                continue;
            }
            match resolve_in_root(self.root, &cur.to_string_lossy()) {
                Some(h) if h.is_dir() => host = h,
                Some(_) => {
                    return Err(CliError::new(format!("{}: not a directory", cur.display())))
                }
                None => {
                    let made = host.join(part);
                    fs::create_dir(&made).map_err(|e| at("mkdir", &made, e))?;
                    fs::set_permissions(&made, fs::Permissions::from_mode(0o755))
                        .map_err(|e| at("chmod", &made, e))?;
                    let ids = match self.owner {
                        Owner::Fixed(u, g) => Some((u, g)),
                        Owner::Source => Some((0, 0)),
                        Owner::Caller => None,
                    };
                    if let Some((u, g)) = ids {
                        lchown(&made, Some(u), Some(g)).map_err(|e| at("chown", &made, e))?;
                    }
                    host = made;
                }
            }
            self.dirs.insert(cur.clone(), host.clone());
        }
        Ok(host)
    }
}

/// A tar entry's path as a relative path with no `..`, or `None` for the
/// root of the stream.
fn clean_entry_path(p: &Path) -> Result<Option<PathBuf>, CliError> {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(CliError::new(format!(
                    "invalid tar stream: the entry {:?} points outside the destination",
                    p.display().to_string()
                )))
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

struct CountingReader<R> {
    inner: R,
    n: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.n += n as u64;
        Ok(n)
    }
}

fn set_mtime(path: &Path, secs: i64) -> Result<(), CliError> {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(|e| at("set times of", path, e.into()))
}

fn at(op: &str, path: &Path, e: io::Error) -> CliError {
    CliError::new(format!("{op} {}: {}", path.display(), go_errno(&e)))
}

/// Go's lower-case errno text, as Docker's messages carry it.
fn go_errno(e: &io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        // "No such file or directory (os error 2)" -> "no such file or directory"
        Some(n) => text
            .trim_end_matches(&format!(" (os error {n})"))
            .to_lowercase(),
        None => text,
    }
}

fn tar_error(e: diff::Error) -> CliError {
    match e {
        diff::Error::Write(io) => CliError::from(io),
        other => CliError::new(other.to_string()),
    }
}

/// The image layers of `c`, bottom first, as its overlay mounts them.
pub(super) fn image_layers(store: &Store, c: &ContainerRecord) -> Result<Vec<PathBuf>, CliError> {
    let img = store.resolve_image(&c.image_id)?;
    Ok(img
        .layers
        .iter()
        .map(|l| store.layout().layer_diff(&l.chain_id))
        .collect())
}

/// Tells the runtime's mount points (see [`STUB_FILES`]) from the container's
/// own changes in its upper dir.
pub(super) struct Stubs<'a> {
    upper: &'a Path,
    lowers: &'a [PathBuf],
}

impl<'a> Stubs<'a> {
    pub(super) fn new(upper: &'a Path, lowers: &'a [PathBuf]) -> Self {
        Self { upper, lowers }
    }

    /// Whether `rel` (relative to the upper dir) is an empty mount point the
    /// runtime made, or a directory holding only such: the image does not
    /// have it, and nothing was written to it.
    pub(super) fn is_stub(&self, rel: &Path, meta: &Metadata) -> bool {
        let Some(name) = rel.to_str() else {
            return false;
        };
        let in_image = || {
            self.lowers
                .iter()
                .any(|l| fs::symlink_metadata(l.join(rel)).is_ok())
        };
        if meta.is_file() {
            return STUB_FILES.contains(&name) && meta.len() == 0 && !in_image();
        }
        if meta.is_dir() && STUB_DIRS.contains(&name) && !in_image() {
            let Ok(entries) = fs::read_dir(self.upper.join(rel)) else {
                return false;
            };
            return entries.flatten().all(|e| {
                e.metadata()
                    .is_ok_and(|m| self.is_stub(&rel.join(e.file_name()), &m))
            });
        }
        false
    }
}

/// A container's root filesystem, mounted for as long as this lives. A
/// running container's is already mounted; a stopped one's is mounted here and
/// unmounted by the last command using it, unless the container was started
/// meanwhile (its monitor then uses this very mount).
///
/// Commands share the mount through a lock file: exclusive to check and
/// mount, shared while in use, so one `cp` never unmounts the root another is
/// still writing into (whose writes would then land in the bare `merged/`
/// directory).
pub(super) struct Rootfs {
    paths: RootPaths,
    lock: File,
    data_root: PathBuf,
    id: String,
}

impl Rootfs {
    pub(super) fn open(
        ctx: &Context,
        store: &Store,
        c: &ContainerRecord,
    ) -> Result<Self, CliError> {
        let dir = store.layout().container(&c.id);
        let paths = RootPaths::new(&dir);
        let lock_path = dir.join("rootfs.lock");
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&lock_path)
            .map_err(|e| at("open", &lock_path, e))?;
        let take = |op| flock(&lock, op).map_err(|e| at("lock", &lock_path, e.into()));
        take(FlockOperation::LockExclusive)?;
        if !is_mounted(&paths.merged) {
            if c.status.is_active() {
                return Err(CliError::new(format!(
                    "the root filesystem of running container {} is not mounted at {}; stop and start it again",
                    c.name,
                    paths.merged.display()
                )));
            }
            mount_rootfs(&image_layers(store, c)?, &paths)?;
        }
        take(FlockOperation::LockShared)?;
        Ok(Self {
            paths,
            lock,
            data_root: ctx.root().clone(),
            id: c.id.clone(),
        })
    }

    pub(super) fn merged(&self) -> &Path {
        &self.paths.merged
    }

    /// What `cp` reads and writes: a running container's own view of its
    /// filesystem (through /proc/PID/root, so its volumes and bind mounts are
    /// where the container sees them), else the root filesystem alone.
    pub(super) fn cp_view(&self, c: &ContainerRecord) -> PathBuf {
        if c.status.is_active() && berth_runtime::proc::alive(c.pid, c.pid_start) {
            PathBuf::from(format!("/proc/{}/root", c.pid))
        } else {
            self.paths.merged.clone()
        }
    }
}

impl Drop for Rootfs {
    fn drop(&mut self) {
        if flock(&self.lock, FlockOperation::NonBlockingLockExclusive).is_err() {
            // Another command is using it; the last one out unmounts.
            return;
        }
        let active = Store::open(&self.data_root)
            .and_then(|s| s.container(&self.id))
            .is_ok_and(|c| c.status.is_active());
        if !active {
            let _ = unmount_rootfs(&self.paths);
        }
    }
}

/// An absolute path in the container, cleaned, keeping a trailing `/` or
/// `/.` (Docker's `PreserveTrailingDotOrSeparator`): relative paths are
/// relative to the root.
fn container_abs(path: &str) -> String {
    preserve_trailing(&go_clean(&format!("/{path}")), path)
}

/// An absolute local path, relative ones from the working directory, keeping
/// a trailing `/` or `/.`.
fn absolute_local(path: &str) -> Result<String, CliError> {
    if path.starts_with('/') {
        return Ok(preserve_trailing(&go_clean(path), path));
    }
    let cwd = std::env::current_dir()?;
    Ok(preserve_trailing(
        &go_clean(&format!("{}/{path}", cwd.display())),
        path,
    ))
}

fn preserve_trailing(cleaned: &str, original: &str) -> String {
    let mut out = cleaned.to_string();
    if specifies_current_dir(original) && !specifies_current_dir(&out) {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    } else if has_trailing_separator(original) && !out.ends_with('/') {
        out.push('/');
    }
    out
}

/// What `lstat` sees of a path in the container, the directory part
/// resolved inside the root and the last element not followed.
fn stat_in_container(root: &Path, path: &str) -> Option<Metadata> {
    let (dir, base) = resolve_parent(root, path)?;
    let host = if base.is_empty() || base == "." {
        dir
    } else {
        dir.join(base)
    };
    fs::symlink_metadata(host).ok()
}

/// Splits `path` (absolute in the container) after its last `/` and resolves
/// the directory part inside `root`.
fn resolve_parent(root: &Path, path: &str) -> Option<(PathBuf, String)> {
    let cut = path.rfind('/').map_or(0, |i| i + 1);
    let (dir, base) = path.split_at(cut);
    let dir = if dir.is_empty() { "/" } else { dir };
    Some((resolve_in_root(root, dir)?, base.to_string()))
}

fn has_trailing_separator(p: &str) -> bool {
    p.len() > 1 && p.ends_with('/')
}

fn specifies_current_dir(p: &str) -> bool {
    go_base(p) == "."
}

fn asserts_directory(p: &str) -> bool {
    has_trailing_separator(p) || specifies_current_dir(p)
}

/// Docker's `SplitPathDirEntry`: clean, but keep a trailing `.`.
fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = go_clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (go_dir(&cleaned), go_base(&cleaned))
}

/// Go's `path.Clean`.
fn go_clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `path.Base`.
fn go_base(p: &str) -> String {
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return if p.is_empty() { ".".into() } else { "/".into() };
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

/// Go's `path.Dir`.
fn go_dir(p: &str) -> String {
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    go_clean(&p[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_like_go() {
        assert_eq!(go_clean("/a/./b/../c/"), "/a/c");
        assert_eq!(go_clean("/../x"), "/x");
        assert_eq!(go_clean(""), ".");
        assert_eq!(go_base("/a/b/"), "b");
        assert_eq!(go_base("/"), "/");
        assert_eq!(go_base("/a/."), ".");
        assert_eq!(go_dir("/a/b"), "/a");
        assert_eq!(go_dir("b"), ".");
        assert_eq!(
            split_path_dir_entry("/a/b/."),
            ("/a/b".to_string(), ".".to_string())
        );
        assert_eq!(container_abs("etc/"), "/etc/");
        assert_eq!(container_abs("/etc/."), "/etc/.");
        assert_eq!(container_abs("/"), "/");
        assert_eq!(container_abs("a/../../b"), "/b");
    }

    #[test]
    fn cp_arguments_split_like_docker() {
        let is_container = |a: &str| matches!(Endpoint::parse(a), Endpoint::Container { .. });
        assert!(is_container("web:/etc"));
        assert!(is_container("web:"));
        assert!(!is_container("/tmp/a:b"));
        assert!(!is_container("./a:b"));
        assert!(!is_container("plain"));
        assert!(!is_container("-"));
    }

    #[test]
    fn copy_rules_follow_docker() {
        let dst = |path: &str, exists: bool, is_dir: bool| Destination {
            path: path.into(),
            exists,
            is_dir,
        };
        let name = OsStr::new("src");
        // Into an existing directory, under the source's name.
        assert_eq!(
            prepare_copy(false, name, &dst("/d", true, true)).unwrap(),
            ("/d".to_string(), OsString::from("src"))
        );
        // Over an existing file, taking its name.
        assert_eq!(
            prepare_copy(false, name, &dst("/d/f", true, false)).unwrap(),
            ("/d".to_string(), OsString::from("f"))
        );
        // A directory to a new name.
        assert_eq!(
            prepare_copy(true, name, &dst("/d/new", false, false)).unwrap(),
            ("/d".to_string(), OsString::from("new"))
        );
        assert_eq!(
            prepare_copy(true, name, &dst("/d/f", true, false))
                .unwrap_err()
                .message,
            "cannot copy directory"
        );
        assert_eq!(
            prepare_copy(false, name, &dst("/d/new/", false, false))
                .unwrap_err()
                .message,
            "no such directory"
        );
    }
}
