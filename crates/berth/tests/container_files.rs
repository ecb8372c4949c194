//! A container's filesystem from the host, end to end as root: `diff`,
//! `export`, `cp` in both directions, `commit`, and `container prune`.

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{chown, symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use berth_test::{json, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

/// A detached container, removed (with -f) when the test ends, pass or fail,
/// so no monitor outlives the test's data root.
struct Detached<'a> {
    t: &'a TestContext,
    name: &'a str,
}

impl<'a> Detached<'a> {
    fn start(t: &'a TestContext, name: &'a str) -> Self {
        t.run(["run", "-d", "--name", name, "busybox", "sleep", "600"])
            .ok();
        Self { t, name }
    }
}

impl Drop for Detached<'_> {
    fn drop(&mut self) {
        let _ = self.t.run(["rm", "-f", self.name]);
    }
}

fn container_id(t: &TestContext, name: &str) -> String {
    json(&t.run(["inspect", "--type", "container", name]).ok().stdout)[0]["Id"]
        .as_str()
        .expect("Id")
        .to_string()
}

fn upper(t: &TestContext, name: &str) -> std::path::PathBuf {
    t.root()
        .join("containers")
        .join(container_id(t, name))
        .join("upper")
}

fn mounted(path: &Path) -> bool {
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(&path.display().to_string()))
}

/// Names and contents of the entries of a tar.
fn tar_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (name, data)
        })
        .collect()
}

/// Files a test copies in: a directory owned by 1234:5678 with a file, a
/// subdirectory and a relative symlink.
fn local_tree(t: &TestContext) -> std::path::PathBuf {
    let src = t.work().join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("a.txt"), "alpha\n").unwrap();
    fs::write(src.join("sub/b.txt"), "beta\n").unwrap();
    fs::set_permissions(src.join("a.txt"), fs::Permissions::from_mode(0o640)).unwrap();
    symlink("a.txt", src.join("link")).unwrap();
    for p in ["", "a.txt", "sub", "sub/b.txt"] {
        chown(src.join(p), Some(1234), Some(5678)).unwrap();
    }
    src
}

#[test]
fn diff_lists_changes_like_docker() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "changed",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/x; rm /etc/group; mkdir -p /new/d; echo more >> /etc/passwd",
    ])
    .ok();
    assert_eq!(
        t.run(["diff", "changed"]).ok().stdout,
        "C /etc\nD /etc/group\nC /etc/passwd\nA /new\nA /new/d\nC /tmp\nA /tmp/x\n"
    );
    // `container diff` is the same command.
    assert_eq!(
        t.run(["container", "diff", "changed"]).ok().stdout,
        t.run(["diff", "changed"]).ok().stdout
    );

    // The runtime's mount points (/proc, /etc/hosts, …) are no change of the
    // container's, as in Docker, where they live in the init layer.
    t.run(["run", "--name", "quiet", "busybox", "true"]).ok();
    assert_eq!(t.run(["diff", "quiet"]).ok().stdout, "");
    // Nor is a container that never ran.
    t.run(["create", "--name", "fresh", "busybox", "true"]).ok();
    assert_eq!(t.run(["diff", "fresh"]).ok().stdout, "");

    let e = t.run(["diff", "nosuch"]).fails(1);
    assert!(e.stderr.contains("No such container: nosuch"), "{e}");
}

#[test]
fn diff_sees_a_running_container() {
    let t = ctx();
    let _web = Detached::start(&t, "web");
    let f = t.work().join("note");
    fs::write(&f, "n").unwrap();
    t.run(["cp", f.to_str().unwrap(), "web:/root/"]).ok();
    assert_eq!(
        t.run(["diff", "web"]).ok().stdout,
        "C /root\nA /root/note\n"
    );
}

#[test]
fn export_writes_the_whole_filesystem() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "echo payload > /tmp/x; rm /etc/group",
    ])
    .ok();
    let out = t.work().join("box.tar");
    t.run(["export", "-o", out.to_str().unwrap(), "box"]).ok();
    let entries = tar_entries(&fs::read(&out).unwrap());
    let names: BTreeSet<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    for want in [
        "bin/",
        "bin/busybox",
        "bin/sh",
        "etc/",
        "etc/passwd",
        "tmp/x",
    ] {
        assert!(names.contains(want), "{want} missing from {names:?}");
    }
    assert!(!names.contains("etc/group"), "deleted files stay deleted");
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with('/') && !n.starts_with("./")),
        "{names:?}"
    );
    let data = |name: &str| entries.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert_eq!(data("bin/busybox"), fs::read(berth_test::BUSYBOX).unwrap());
    assert_eq!(data("tmp/x"), b"payload\n");

    // To standard output, the same archive; the temporary mount is gone after.
    let stdout = t.command(["export", "box"]).output().unwrap();
    assert!(stdout.status.success());
    let again: BTreeSet<String> = tar_entries(&stdout.stdout)
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert_eq!(
        again.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        names
    );
    let merged = t
        .root()
        .join("containers")
        .join(container_id(&t, "box"))
        .join("merged");
    assert!(
        !mounted(&merged),
        "export left {} mounted",
        merged.display()
    );
    // Only whole files appear under the requested name.
    let e = t
        .run(["export", "-o", out.to_str().unwrap(), "nosuch"])
        .fails(1);
    assert!(e.stderr.contains("No such container"), "{e}");
    assert_eq!(tar_entries(&fs::read(&out).unwrap()).len(), entries.len());
}

#[test]
fn cp_into_a_stopped_container() {
    let t = ctx();
    let src = local_tree(&t);
    t.run([
        "create",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "cd /dst && find . | sort && stat -c '%n %u:%g %a' copy copy/a.txt copy/sub archived/a.txt && readlink copy/link && cat renamed.txt",
    ])
    .ok();
    let s = src.to_str().unwrap();
    // The parent must exist: Docker's error names it.
    let e = t.run(["cp", s, "box:/dst/copy"]).fails(1);
    assert!(
        e.stderr
            .contains("Could not find the file /dst in container box"),
        "{e}"
    );
    let dir = t.work().join("dst");
    fs::create_dir(&dir).unwrap();
    t.run(["cp", dir.to_str().unwrap(), "box:/"]).ok();
    // A directory to a new name; its contents ("/.") with -a; a file to a new
    // name.
    t.run(["cp", s, "box:/dst/copy"]).ok();
    t.run(["cp", "-a", &format!("{s}/."), "box:/dst/archived"])
        .ok();
    t.run(["cp", &format!("{s}/a.txt"), "box:/dst/renamed.txt"])
        .ok();
    let r = t.run(["start", "-a", "box"]).ok();
    assert_eq!(
        r.stdout,
        "\
.
./archived
./archived/a.txt
./archived/link
./archived/sub
./archived/sub/b.txt
./copy
./copy/a.txt
./copy/link
./copy/sub
./copy/sub/b.txt
./renamed.txt
copy 0:0 755
copy/a.txt 0:0 640
copy/sub 0:0 755
archived/a.txt 1234:5678 640
a.txt
alpha
"
    );
    // Nothing stays mounted after a copy into a stopped container.
    let merged = upper(&t, "box").with_file_name("merged");
    assert!(!mounted(&merged));
}

#[test]
fn cp_into_a_running_container_goes_through_its_overlay() {
    let t = ctx();
    let _web = Detached::start(&t, "web");
    let src = local_tree(&t);
    t.run(["cp", src.to_str().unwrap(), "web:/tmp/"]).ok();
    t.run(["cp", src.join("a.txt").to_str().unwrap(), "web:/etc/passwd"])
        .ok();
    let up = upper(&t, "web");
    assert_eq!(
        fs::read_to_string(up.join("tmp/src/sub/b.txt")).unwrap(),
        "beta\n"
    );
    let m = fs::metadata(up.join("tmp/src/a.txt")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (0, 0, 0o640));
    assert_eq!(
        fs::read_to_string(up.join("etc/passwd")).unwrap(),
        "alpha\n"
    );
    // The container sees it: read back through the mounted root.
    let r = t
        .command(["cp", "web:/tmp/src/sub/b.txt", "-"])
        .output()
        .unwrap();
    assert!(r.status.success());
    assert_eq!(
        tar_entries(&r.stdout),
        [("b.txt".to_string(), b"beta\n".to_vec())]
    );
    // A tar stream on standard input is extracted into a directory.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_uid(42);
    h.set_gid(43);
    b.append_data(&mut h, "streamed/one", &b"one"[..]).unwrap();
    let tarball = b.into_inner().unwrap();
    t.run_with_stdin(["cp", "-a", "-", "web:/tmp"], &tarball)
        .ok();
    let m = fs::metadata(up.join("tmp/streamed/one")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (42, 43, 0o600));
    let e = t.run_with_stdin(["cp", "-", "web:/etc/passwd"], &tarball);
    assert_eq!(e.status, 1, "{e}");
    assert!(
        e.stderr
            .contains("destination \"web:/etc/passwd\" must be a directory"),
        "{e}"
    );
}

#[test]
fn cp_out_of_a_container_follows_docker_path_rules() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "box",
        "busybox",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo one > /data/one && echo two > /data/sub/two && chown -R 1234:5678 /data && chmod 600 /data/one && ln -s one /data/link",
    ])
    .ok();
    let w = t.work();
    let out = |p: &str| w.join(p).to_str().unwrap().to_string();
    // A directory to a new name: the name is the destination's.
    t.run(["cp", "box:/data", &out("copy")]).ok();
    assert_eq!(fs::read_to_string(w.join("copy/sub/two")).unwrap(), "two\n");
    // Into an existing directory: under its own name.
    fs::create_dir(w.join("into")).unwrap();
    t.run(["cp", "box:/data", &out("into")]).ok();
    assert!(w.join("into/data/one").is_file());
    // "/." copies the contents.
    fs::create_dir(w.join("contents")).unwrap();
    t.run(["cp", "box:/data/.", &out("contents")]).ok();
    assert!(w.join("contents/one").is_file());
    assert!(!w.join("contents/data").exists());
    // A file over a file, and into a directory.
    fs::write(w.join("existing"), "old").unwrap();
    t.run(["cp", "box:/data/one", &out("existing")]).ok();
    assert_eq!(fs::read_to_string(w.join("existing")).unwrap(), "one\n");
    // A symlink is copied as a symlink, or followed with -L.
    t.run(["cp", "box:/data/link", &out("l1")]).ok();
    assert_eq!(fs::read_link(w.join("l1")).unwrap(), Path::new("one"));
    t.run(["cp", "-L", "box:/data/link", &out("l2")]).ok();
    assert_eq!(fs::read_to_string(w.join("l2")).unwrap(), "one\n");

    // Modes are kept; owners only with -a.
    let m = fs::metadata(w.join("copy/one")).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (0, 0o600));
    t.run(["cp", "-a", "box:/data", &out("archived")]).ok();
    let m = fs::metadata(w.join("archived/one")).unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (1234, 5678, 0o600));

    // Docker's errors.
    let e = t.run(["cp", "box:/nope", &out("x")]).fails(1);
    assert_eq!(
        e.stderr,
        "Error: Could not find the file /nope in container box\n"
    );
    let e = t.run(["cp", "box:/data/one", &out("newdir/")]).fails(1);
    assert!(e.stderr.contains("no such directory"), "{e}");
    let e = t.run(["cp", "box:/data", &out("existing")]).fails(1);
    assert!(e.stderr.contains("cannot copy directory"), "{e}");
    let e = t.run(["cp", "a", "b"]).fails(1);
    assert!(
        e.stderr
            .contains("must specify at least one container source"),
        "{e}"
    );
    let e = t.run(["cp", "box:/a", "box:/b"]).fails(1);
    assert!(
        e.stderr
            .contains("copying between containers is not supported"),
        "{e}"
    );
    let e = t.run(["cp", &out("missing"), "box:/tmp"]).fails(1);
    assert!(
        e.stderr.contains("missing: no such file or directory"),
        "{e}"
    );
}

#[test]
fn cp_resolves_symlinks_inside_the_container() {
    let t = ctx();
    let _web = Detached::start(&t, "web");
    // Links that would leave the root if followed on the host.
    let f = t.work().join("links.tar");
    let mut b = tar::Builder::new(fs::File::create(&f).unwrap());
    for (name, target) in [("esc", "/"), ("up", "../../../../../../etc")] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, name, target).unwrap();
    }
    b.into_inner().unwrap();
    t.run_with_stdin(["cp", "-", "web:/tmp"], &fs::read(&f).unwrap())
        .ok();

    // Reading: the container's /etc/passwd, not the host's.
    let container_passwd =
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
    for path in ["web:/tmp/esc/etc/passwd", "web:/tmp/up/passwd"] {
        let dest = t.work().join("passwd");
        t.run(["cp", path, dest.to_str().unwrap()]).ok();
        assert_eq!(
            fs::read_to_string(&dest).unwrap(),
            container_passwd,
            "{path}"
        );
    }
    // Writing: into the container's /etc, not the host's.
    let unique = format!("berth-cp-escape-{}", std::process::id());
    let local = t.work().join(&unique);
    fs::write(&local, "inside").unwrap();
    t.run(["cp", local.to_str().unwrap(), "web:/tmp/up/"]).ok();
    t.run(["cp", local.to_str().unwrap(), "web:/tmp/esc/etc/"])
        .ok();
    assert!(!Path::new("/etc").join(&unique).exists());
    assert_eq!(
        fs::read_to_string(upper(&t, "web").join("etc").join(&unique)).unwrap(),
        "inside"
    );
    // A stream entry cannot climb out either.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    b.append_data(&mut h, "esc/etc/streamed", &b"s"[..])
        .unwrap();
    let data = b.into_inner().unwrap();
    t.run_with_stdin(["cp", "-", "web:/tmp"], &data).ok();
    assert!(upper(&t, "web").join("etc/streamed").is_file());
    assert!(!Path::new("/etc/streamed").exists());
}

#[test]
fn commit_makes_an_image_of_the_changes() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "src",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sh",
        "-c",
        "echo committed > /data.txt; rm /etc/group",
    ])
    .ok();
    let r = t
        .run([
            "commit",
            "-m",
            "add data",
            "-a",
            "Tester <t@example.com>",
            "--change",
            "ENV FOO=bar",
            "--change",
            "CMD [\"cat\", \"/data.txt\"]",
            "src",
            "snap:v1",
        ])
        .ok();
    let id = r.stdout.trim();
    assert!(
        id.len() == 71 && id.starts_with("sha256:"),
        "commit prints the image ID: {r}"
    );

    // The new image runs with the file, and the deleted file stays deleted.
    assert_eq!(t.run(["run", "--rm", "snap:v1"]).ok().stdout, "committed\n");
    let r = t
        .run([
            "run",
            "--rm",
            "snap:v1",
            "sh",
            "-c",
            "ls /etc; echo $FOO $FROM_RUN; test -e /etc/group || echo gone",
        ])
        .ok();
    // hostname, hosts and resolv.conf are the new container's mount points.
    assert_eq!(
        r.stdout,
        "hostname\nhosts\npasswd\nresolv.conf\nbar 1\ngone\n"
    );

    let img = &json(&t.run(["image", "inspect", "snap:v1"]).ok().stdout)[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["Comment"], "add data");
    assert_eq!(img["Author"], "Tester <t@example.com>");
    assert_eq!(
        img["Config"]["Cmd"],
        serde_json::json!(["cat", "/data.txt"])
    );
    let layers = img["RootFS"]["Layers"].as_array().unwrap();
    let base = &json(&t.run(["image", "inspect", "busybox"]).ok().stdout)[0];
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], base["RootFS"]["Layers"][0]);
    let history = t
        .run([
            "history",
            "--no-trunc",
            "--format",
            "{{.CreatedBy}}|{{.Comment}}",
            "snap:v1",
        ])
        .ok();
    assert_eq!(
        history.stdout.lines().next().unwrap(),
        "sh -c echo committed > /data.txt; rm /etc/group|add data"
    );

    // The new layer holds only the changes, in OCI form.
    let saved = t.work().join("snap.tar");
    t.run(["save", "-o", saved.to_str().unwrap(), "snap:v1"])
        .ok();
    let outer = tar_entries(&fs::read(&saved).unwrap());
    let layer_name = format!(
        "blobs/sha256/{}",
        layers[1].as_str().unwrap().trim_start_matches("sha256:")
    );
    let layer = &outer
        .iter()
        .find(|(n, _)| *n == layer_name)
        .expect("layer blob")
        .1;
    let names: Vec<String> = tar_entries(layer).into_iter().map(|e| e.0).collect();
    assert_eq!(names, ["data.txt", "etc/", "etc/.wh.group"]);

    // Committing a container with no changes adds no layer (Docker's
    // empty_layer), and an unnamed image is fine.
    t.run(["run", "--name", "idle", "busybox", "true"]).ok();
    let id2 = t.run(["commit", "idle"]).ok().stdout.trim().to_string();
    let img2 = &json(&t.run(["image", "inspect", &id2]).ok().stdout)[0];
    assert_eq!(img2["RootFS"]["Layers"].as_array().unwrap().len(), 1);

    let e = t.run(["commit", "nosuch"]).fails(1);
    assert!(e.stderr.contains("No such container"), "{e}");
    let e = t.run(["commit", "--change", "RUN true", "src"]).fails(1);
    assert!(
        e.stderr.contains("RUN is not a valid change command"),
        "{e}"
    );
}

#[test]
fn commit_of_a_running_container() {
    let t = ctx();
    let _web = Detached::start(&t, "web");
    let f = t.work().join("live.txt");
    fs::write(&f, "live\n").unwrap();
    t.run(["cp", f.to_str().unwrap(), "web:/"]).ok();
    t.run(["commit", "web", "live"]).ok();
    assert_eq!(
        t.run(["run", "--rm", "live", "cat", "/live.txt"])
            .ok()
            .stdout,
        "live\n"
    );
    // Still running afterwards (the pause was undone).
    let s = json(&t.run(["inspect", "--type", "container", "web"]).ok().stdout)[0]["State"]
        ["Status"]
        .clone();
    assert_eq!(s, "running");
}

#[test]
fn prune_removes_only_stopped_containers() {
    let t = ctx();
    let _web = Detached::start(&t, "web");
    t.run([
        "run",
        "--name",
        "exited",
        "busybox",
        "sh",
        "-c",
        "echo x > /f",
    ])
    .ok();
    t.run(["create", "--name", "created", "busybox", "true"])
        .ok();
    t.run([
        "create", "--name", "labelled", "--label", "keep=no", "busybox", "true",
    ])
    .ok();
    let exited = container_id(&t, "exited");
    let created = container_id(&t, "created");
    let labelled = container_id(&t, "labelled");

    // No terminal to ask on: refused, nothing removed.
    let e = t.run(["container", "prune"]).fails(1);
    assert!(e.stderr.contains("--force"), "{e}");
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout.lines().count(), 4);

    // Filters pick among the stopped ones.
    let r = t
        .run(["container", "prune", "-f", "--filter", "until=1h"])
        .ok();
    assert_eq!(r.stdout, "Total reclaimed space: 0B\n");
    let r = t
        .run(["container", "prune", "-f", "--filter", "label=keep=no"])
        .ok();
    assert_eq!(
        r.stdout,
        format!("Deleted Containers:\n{labelled}\n\nTotal reclaimed space: 0B\n")
    );

    let r = t.run(["container", "prune", "--force"]).ok();
    let mut lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.remove(0), "Deleted Containers:");
    assert_eq!(lines.pop(), Some("Total reclaimed space: 2B"));
    assert_eq!(lines.pop(), Some(""));
    lines.sort_unstable();
    let mut want = vec![exited.as_str(), created.as_str()];
    want.sort_unstable();
    assert_eq!(lines, want);
    assert!(!t.root().join("containers").join(&exited).exists());

    let left = t.run(["ps", "-a", "--format", "{{.Names}}"]).ok();
    assert_eq!(left.stdout, "web\n");
    let e = t
        .run(["container", "prune", "-f", "--filter", "color=red"])
        .fails(1);
    assert!(e.stderr.contains("invalid filter 'color'"), "{e}");
}

/// Copies into one stopped container at once share its temporary mount: all
/// land in the container's layer (none in the bare `merged/` directory of a
/// root another copy unmounted), and nothing is left mounted. (A smoke test:
/// the race it guards against is narrow and timing-dependent.)
#[test]
fn concurrent_copies_into_a_stopped_container() {
    let t = ctx();
    t.run(["create", "--name", "box", "busybox", "true"]).ok();
    let children: Vec<_> = (0..6)
        .map(|i| {
            let f = t.work().join(format!("f{i}"));
            fs::write(&f, vec![b'x'; 1 << 20]).unwrap();
            t.command(["cp", f.to_str().unwrap(), "box:/tmp/"])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let up = upper(&t, "box");
    for i in 0..6 {
        let m = fs::metadata(up.join(format!("tmp/f{i}"))).unwrap();
        assert_eq!(m.len(), 1 << 20, "f{i}");
    }
    assert!(!mounted(&up.with_file_name("merged")));
    assert!(fs::read_dir(up.with_file_name("merged"))
        .unwrap()
        .next()
        .is_none());
}
