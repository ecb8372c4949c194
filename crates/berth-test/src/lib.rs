#![allow(clippy::print_stderr)] // a test harness reports skips on stderr

//! Test harness for end-to-end tests: a temporary data root, the real `berth`
//! binary, and a busybox base image built from Debian's busybox-static.

use std::ffi::OsStr;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// A temporary data root and working directory, removed when dropped.
pub struct TestContext {
    bin: PathBuf,
    root: tempfile::TempDir,
    work: tempfile::TempDir,
}

/// What a finished command printed and how it exited.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Self {
        Self {
            status: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with the whole output unless the command succeeded.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(self.status, 0, "command failed:\n{self}");
        self
    }

    /// Panics unless the command failed with `status`.
    #[track_caller]
    pub fn fails(self, status: i32) -> Self {
        assert_eq!(self.status, status, "unexpected exit status:\n{self}");
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit: {}\n--- stdout\n{}--- stderr\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

impl TestContext {
    /// `bin` is the binary under test: `env!("CARGO_BIN_EXE_berth")`.
    pub fn new(bin: &str) -> Self {
        Self {
            bin: PathBuf::from(bin),
            root: tempfile::Builder::new()
                .prefix("berth-root-")
                .tempdir()
                .expect("temp root"),
            work: tempfile::Builder::new()
                .prefix("berth-work-")
                .tempdir()
                .expect("temp dir"),
        }
    }

    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// The names of the files in the root's blob directory (digests' hex).
    pub fn blob_names(&self) -> Vec<String> {
        fs::read_dir(self.root().join("blobs/sha256"))
            .expect("read the blob directory")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// A scratch directory for the test's own files; commands run in it.
    pub fn work(&self) -> &Path {
        self.work.path()
    }

    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// `berth --root <root> ARGS` as a command to adjust before running.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut c = Command::new(&self.bin);
        c.arg("--root")
            .arg(self.root())
            .args(args)
            .current_dir(self.work());
        c.env_remove("BERTH_ROOT");
        c.stdin(Stdio::null());
        c
    }

    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Run::from(self.command(args).output().expect("run berth"))
    }

    /// Runs with `input` on standard input.
    pub fn run_with_stdin<I, S>(&self, args: I, input: &[u8]) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("wait berth");
        writer.join().expect("stdin writer");
        Run::from(out)
    }

    /// Imports the busybox root filesystem as `name`; returns the image ID.
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_rootfs_tar();
        let run = self
            .run(["import".as_ref(), tar.as_os_str(), name.as_ref()])
            .ok();
        run.stdout.trim().to_string()
    }

    /// Imports [`fixture_rootfs_tar`] as `name` with a fixed creation time, so
    /// the image ID is the same on every run; returns it.
    pub fn import_fixture(&self, name: &str) -> String {
        let run = Run::from(
            self.command([
                "import".as_ref(),
                fixture_rootfs_tar().as_os_str(),
                name.as_ref(),
            ])
            .env("SOURCE_DATE_EPOCH", FIXTURE_EPOCH.to_string())
            .output()
            .expect("run berth"),
        )
        .ok();
        run.stdout.trim().to_string()
    }

    /// Filters for snapshots: volatile IDs, digests, times and paths become
    /// placeholders.
    pub fn filters(&self) -> Vec<(String, String)> {
        vec![
            (
                regex_escape(&self.root().display().to_string()),
                "[ROOT]".into(),
            ),
            (
                regex_escape(&self.work().display().to_string()),
                "[WORK]".into(),
            ),
            (
                r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z".into(),
                "[TIME]".into(),
            ),
            (
                r"(Less than a second|\d+ seconds|About a minute|\d+ minutes) ago".into(),
                "[SINCE]".into(),
            ),
            (r"\b\d years ago".into(), "N years ago".into()),
        ]
    }
}

impl Drop for TestContext {
    /// Containers a test left running are removed (their monitors would
    /// outlive the test), then network namespaces, volumes with driver
    /// mounts and root filesystems still mounted under the temporary root
    /// are unmounted, so the directory can go and nothing stays behind.
    fn drop(&mut self) {
        if self.root().join("berth.db").exists() {
            if let Ok(out) = self.command(["ps", "-aq", "--no-trunc"]).output() {
                let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm".to_string(), "-f".to_string()];
                    args.extend(ids);
                    let _ = self
                        .command(&args)
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .status();
                }
            }
        }
        for p in berth_fs::mounts_under(self.root()) {
            let _ = rustix::mount::unmount(&p, rustix::mount::UnmountFlags::DETACH);
        }
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// A file that every test process shares, made by the first that needs it:
/// one copy per process would pile up in /tmp, as every test is a process.
/// `depends_on` is what the content is made from (with this file's source,
/// which makes it); the file is written under a temporary name and renamed,
/// so no process reads half of one.
fn shared_file(name: &str, depends_on: &str, make: impl FnOnce(&Path)) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    include_str!("lib.rs").hash(&mut h);
    depends_on.hash(&mut h);
    let dir = std::env::temp_dir().join("berth-test-cache");
    fs::create_dir_all(&dir).expect("create the test cache");
    let path = dir.join(format!("{name}-{:016x}.tar", h.finish()));
    if !path.is_file() {
        let part = tempfile::Builder::new()
            .prefix(".part-")
            .tempfile_in(&dir)
            .expect("temp file");
        make(part.path());
        part.persist(&path).expect("keep the shared file");
    }
    path
}

/// A tar of a minimal busybox root filesystem: /bin/busybox with its applet
/// links, /etc/passwd and /etc/group with root and nobody, /tmp. Made once
/// for every test process.
pub fn busybox_rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let version = fs::metadata(BUSYBOX)
            .map(|m| format!("{} {:?}", m.len(), m.modified().ok()))
            .unwrap_or_default();
        shared_file("busybox-rootfs", &version, write_busybox_rootfs)
    })
}

/// Writes the busybox root filesystem tar to `path`.
pub fn write_busybox_rootfs(path: &Path) {
    assert!(
        Path::new(BUSYBOX).is_file(),
        "{BUSYBOX} is missing: install Debian's busybox-static (apt-get install busybox-static)"
    );
    let applets = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .expect("busybox --list");
    let applets = String::from_utf8(applets.stdout).expect("utf8 applet list");
    let file = fs::File::create(path).expect("create rootfs tar");
    let mut b = tar::Builder::new(file);
    let dir = |b: &mut tar::Builder<fs::File>, p: &str, mode: u32| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(mode);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, p, std::io::empty())
            .expect("dir entry");
    };
    let file_entry = |b: &mut tar::Builder<fs::File>, p: &str, mode: u32, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, p, data).expect("file entry");
    };
    dir(&mut b, "bin/", 0o755);
    dir(&mut b, "etc/", 0o755);
    dir(&mut b, "root/", 0o700);
    dir(&mut b, "tmp/", 0o1777);
    let busybox = fs::read(BUSYBOX).expect("read busybox");
    file_entry(&mut b, "bin/busybox", 0o755, &busybox);
    for applet in applets.split_whitespace().filter(|a| *a != "busybox") {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_mode(0o777);
        h.set_size(0);
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        b.append_link(&mut h, format!("bin/{applet}"), "busybox")
            .expect("applet link");
    }
    file_entry(
        &mut b,
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    );
    file_entry(&mut b, "etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    b.into_inner().expect("finish rootfs tar");
}

/// The creation time of fixture images: 2023-11-14T22:13:20Z.
pub const FIXTURE_EPOCH: i64 = 1_700_000_000;

/// A small root filesystem whose every byte is fixed, for snapshot tests whose
/// sizes and IDs must not change: 2 directories, 3 files (1500 bytes) and a
/// symlink.
pub fn fixture_rootfs_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| shared_file("fixture-rootfs", "", write_fixture_rootfs))
}

fn write_fixture_rootfs(path: &Path) {
    let mut b = tar::Builder::new(fs::File::create(path).expect("create fixture"));
    let mut add = |p: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
        h.set_size(data.len() as u64);
        h.set_mtime(FIXTURE_EPOCH as u64);
        h.set_uid(0);
        h.set_gid(0);
        match link {
            Some(l) => b.append_link(&mut h, p, l).expect("link"),
            None => b.append_data(&mut h, p, data).expect("entry"),
        }
    };
    add("etc/", tar::EntryType::Directory, b"", None);
    add(
        "etc/passwd",
        tar::EntryType::Regular,
        b"root:x:0:0:root:/root:/bin/sh\n",
        None,
    );
    add("app/", tar::EntryType::Directory, b"", None);
    add("app/data.bin", tar::EntryType::Regular, &[7u8; 1000], None);
    add(
        "app/readme.txt",
        tar::EntryType::Regular,
        &[b'x'; 470],
        None,
    );
    add(
        "app/current",
        tar::EntryType::Symlink,
        b"",
        Some("data.bin"),
    );
    b.into_inner().expect("finish fixture");
}

/// Whether an external tool is on PATH. In CI a missing tool is an error (its
/// install step is missing); elsewhere the caller skips.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found && std::env::var_os("CI").is_some() {
        panic!("{tool} is not installed; CI must install it");
    }
    if !found {
        eprintln!("skipping: {tool} is not installed");
    }
    found
}

/// Whether a container engine's CLI (`docker`, `podman`) reaches a working
/// engine: `TOOL info` succeeds.
pub fn engine_works(tool: &str) -> bool {
    Command::new(tool)
        .arg("info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `cond` until it holds, for up to 20 s: a bound on a hang, never a
/// speed assertion.
#[track_caller]
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while start.elapsed() < std::time::Duration::from_secs(20) {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("timed out waiting for: {what}");
}

/// Runs an external command, panicking with its output on failure.
#[track_caller]
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", cmd])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{cmd}` failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Parses JSON output, panicking with the text on failure.
#[track_caller]
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}):\n{text}"))
}
