//! Volumes and bind mounts end to end: the course's volume lessons, with no
//! data lost.

use std::fs;

use berth_test::{eventually, json, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

fn volumes(t: &TestContext) -> Vec<String> {
    t.run(["volume", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect()
}

/// The course's first example: a host directory with index.html served by a
/// busybox httpd; a change on the host is seen at once.
#[test]
fn bind_mounted_site_is_served_and_live() {
    let t = ctx();
    let site = t.work().join("site");
    fs::create_dir(&site).unwrap();
    fs::write(site.join("index.html"), "<h1>version 1</h1>\n").unwrap();
    t.run([
        "run",
        "-d",
        "--name",
        "web",
        "-v",
        &format!("{}:/www", site.display()),
        "busybox",
        "httpd",
        "-f",
        "-p",
        "8080",
        "-h",
        "/www",
    ])
    .ok();
    let fetch = || {
        t.run(["exec", "web", "wget", "-qO-", "http://127.0.0.1:8080/"])
            .stdout
    };
    eventually("the page is served", || fetch() == "<h1>version 1</h1>\n");
    fs::write(site.join("index.html"), "<h1>version 2</h1>\n").unwrap();
    assert_eq!(fetch(), "<h1>version 2</h1>\n");
    // ./rel resolves against the working directory, as the modern CLI does.
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            "./site:/www:ro",
            "busybox",
            "cat",
            "/www/index.html",
        ])
        .ok();
    assert_eq!(r.stdout, "<h1>version 2</h1>\n");
    t.run(["rm", "-f", "web"]).ok();
    assert!(
        site.join("index.html").exists(),
        "a bind source is never touched"
    );
}

#[test]
fn named_volume_data_survives_its_containers() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "writer",
        "-v",
        "appdata:/data",
        "busybox",
        "sh",
        "-c",
        "echo kept > /data/file",
    ])
    .ok();
    assert_eq!(volumes(&t), ["appdata"]);
    t.run(["rm", "-v", "writer"]).ok();
    assert_eq!(volumes(&t), ["appdata"], "rm -v keeps named volumes");
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            "appdata:/data",
            "busybox",
            "cat",
            "/data/file",
        ])
        .ok();
    assert_eq!(r.stdout, "kept\n");
    // Read-only is enforced inside the container.
    let r = t.run([
        "run",
        "--rm",
        "-v",
        "appdata:/data:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /data/new",
    ]);
    assert_ne!(r.status, 0);
    assert!(r.stderr.contains("Read-only file system"), "{r}");
    let v = json(&t.run(["volume", "inspect", "appdata"]).ok().stdout);
    assert_eq!(v[0]["Name"], "appdata");
    assert_eq!(v[0]["Driver"], "local");
    assert_eq!(v[0]["Scope"], "local");
    let mp = v[0]["Mountpoint"].as_str().unwrap();
    assert_eq!(fs::read_to_string(format!("{mp}/file")).unwrap(), "kept\n");
    // system prune-like removals never take it: only volume rm does.
    t.run(["volume", "rm", "appdata"]).ok();
    assert!(volumes(&t).is_empty());
}

#[test]
fn a_volume_in_use_is_never_removed() {
    let t = ctx();
    let id = t
        .run(["run", "-d", "-v", "busy:/data", "busybox", "sleep", "600"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let e = t.run(["volume", "rm", "busy"]).fails(1);
    assert!(
        e.stderr.contains("volume is in use") && e.stderr.contains(&id),
        "{e}"
    );
    let e = t.run(["volume", "rm", "-f", "busy"]).fails(1);
    assert!(e.stderr.contains("volume is in use"), "{e}");
    // Even stopped, the container holds it.
    t.run(["stop", "-t", "1", &id]).ok();
    t.run(["volume", "rm", "busy"]).fails(1);
    let p = t.run(["volume", "prune", "-a", "-f"]).ok();
    assert!(!p.stdout.contains("busy"), "{p}");
    t.run(["rm", &id]).ok();
    assert_eq!(t.run(["volume", "rm", "busy"]).ok().stdout, "busy\n");
}

#[test]
fn anonymous_volumes_follow_docker_rules() {
    let t = ctx();
    let tar = berth_test::busybox_rootfs_tar();
    t.run([
        "import".as_ref(),
        "-c".as_ref(),
        "VOLUME /cache".as_ref(),
        tar.as_os_str(),
        "withvol".as_ref(),
    ])
    .ok();
    let id = t
        .run(["create", "-v", "/scratch", "withvol", "true"])
        .ok()
        .stdout
        .trim()
        .to_string();
    let v = json(&t.run(["inspect", &id]).ok().stdout);
    let mounts = v[0]["Mounts"].as_array().unwrap();
    let targets: Vec<&str> = mounts
        .iter()
        .map(|m| m["Destination"].as_str().unwrap())
        .collect();
    assert_eq!(targets, ["/scratch", "/cache"]);
    assert!(mounts
        .iter()
        .all(|m| m["Type"] == "volume" && m["Name"].as_str().unwrap().len() == 64));
    assert_eq!(volumes(&t).len(), 2);
    // rm without -v keeps them; a named one beside them survives rm -v.
    let id2 = t
        .run(["create", "-v", "/a", "-v", "named:/n", "busybox", "true"])
        .ok()
        .stdout
        .trim()
        .to_string();
    t.run(["rm", &id]).ok();
    assert_eq!(volumes(&t).len(), 4);
    t.run(["rm", "-v", &id2]).ok();
    let left = volumes(&t);
    assert_eq!(left.len(), 3, "{left:?}");
    assert!(left.contains(&"named".to_string()));
    // run --rm takes its anonymous volumes along.
    t.run(["run", "--rm", "-v", "/tmpvol", "busybox", "true"])
        .ok();
    assert_eq!(volumes(&t).len(), 3);
    // prune without -a: only anonymous unused ones; with -a: named too.
    let p = t.run(["volume", "prune", "-f"]).ok();
    assert!(p.stdout.starts_with("Deleted Volumes:\n"), "{p}");
    assert!(p.stdout.contains("Total reclaimed space: "), "{p}");
    assert_eq!(volumes(&t), ["named"]);
    t.run(["volume", "prune", "-a", "-f"]).ok();
    assert!(volumes(&t).is_empty());
    let e = t.run(["volume", "prune"]).fails(1);
    assert!(e.stderr.contains("add -f"), "{e}");
}

/// A new volume is filled from the image with ownership kept, so a non-root
/// USER can write where the image gave it a directory (the course's
/// mysql-as-non-root image).
#[test]
fn new_volumes_are_filled_from_the_image_with_ownership() {
    let t = ctx();
    let tar = t.work().join("app.tar");
    {
        let base = fs::read(berth_test::busybox_rootfs_tar()).unwrap();
        let mut out = tar::Builder::new(fs::File::create(&tar).unwrap());
        let mut a = tar::Archive::new(&base[..]);
        for e in a.entries().unwrap() {
            let mut e = e.unwrap();
            let mut h = e.header().clone();
            let path = e.path().unwrap().into_owned();
            if h.entry_type().is_symlink() {
                let link = e.link_name().unwrap().unwrap().into_owned();
                out.append_link(&mut h, &path, &link).unwrap();
            } else {
                out.append_data(&mut h, &path, &mut e).unwrap();
            }
        }
        let mut dir = |p: &str, uid: u64, mode: u32| {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Directory);
            h.set_mode(mode);
            h.set_uid(uid);
            h.set_gid(uid);
            h.set_size(0);
            out.append_data(&mut h, p, std::io::empty()).unwrap();
        };
        dir("var/", 0, 0o755);
        dir("var/lib/", 0, 0o755);
        dir("var/lib/app/", 999, 0o750);
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o640);
        h.set_uid(999);
        h.set_gid(999);
        h.set_size(5);
        out.append_data(&mut h, "var/lib/app/seed", &b"seed\n"[..])
            .unwrap();
        out.finish().unwrap();
    }
    t.run([
        "import".as_ref(),
        "-c".as_ref(),
        "USER 999".as_ref(),
        tar.as_os_str(),
        "app".as_ref(),
    ])
    .ok();
    let r = t
        .run(["run", "--rm", "-v", "appvol:/var/lib/app", "app", "sh", "-c", "cat /var/lib/app/seed; echo more > /var/lib/app/new && echo written; stat -c '%u %a' /var/lib/app"])
        .ok();
    assert_eq!(r.stdout, "seed\nwritten\n999 750\n");
    // Filled once: the new file is still there, the seed is not re-copied over it.
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            "appvol:/var/lib/app",
            "busybox",
            "ls",
            "/var/lib/app",
        ])
        .ok();
    assert_eq!(r.stdout, "new\nseed\n");
    // A bind mount is never filled.
    let empty = t.work().join("empty");
    fs::create_dir(&empty).unwrap();
    t.run([
        "run",
        "--rm",
        "-v",
        &format!("{}:/var/lib/app", empty.display()),
        "app",
        "true",
    ])
    .ok();
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
    // Nor a volume with nocopy.
    let r = t
        .run([
            "run",
            "--rm",
            "--mount",
            "type=volume,source=bare,target=/var/lib/app,volume-nocopy",
            "busybox",
            "ls",
            "/var/lib/app",
        ])
        .ok();
    assert_eq!(r.stdout, "");
}

#[test]
fn host_root_and_sensitive_paths() {
    let t = ctx();
    let e = t
        .run(["run", "--rm", "-v", "/:/spam", "busybox", "true"])
        .fails(125);
    assert!(
        e.stderr
            .contains("refusing to bind-mount the host's root directory")
            && e.stderr.contains("--allow-host-root"),
        "{e}"
    );
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout, "", "nothing was created");
    let r = t.run([
        "run",
        "--rm",
        "--allow-host-root",
        "-v",
        "/:/spam:ro",
        "busybox",
        "test",
        "-e",
        "/spam/etc/hostname",
    ]);
    assert_eq!(r.status, 0, "{r}");
    assert!(r.stderr.contains("WARNING"), "{r}");
    let r = t
        .run(["run", "--rm", "-v", "/etc:/hostetc:ro", "busybox", "true"])
        .ok();
    assert!(r.stderr.starts_with("WARNING: /etc is bind-mounted"), "{r}");
    let root = t.root().display().to_string();
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            &format!("{root}:/berth:ro"),
            "busybox",
            "true",
        ])
        .ok();
    assert!(r.stderr.contains("WARNING"), "the data root: {r}");
}

#[test]
fn missing_bind_sources_follow_docker() {
    let t = ctx();
    let made = t.work().join("made/by/v");
    t.run([
        "run",
        "--rm",
        "-v",
        &format!("{}:/x", made.display()),
        "busybox",
        "true",
    ])
    .ok();
    assert!(made.is_dir(), "-v creates a missing source directory");
    let missing = t.work().join("missing");
    let e = t
        .run([
            "run",
            "--rm",
            "--mount",
            &format!("type=bind,source={},target=/x", missing.display()),
            "busybox",
            "true",
        ])
        .fails(125);
    assert!(e.stderr.contains("bind source path does not exist"), "{e}");
    assert!(!missing.exists());
    let e = t
        .run([
            "run", "--rm", "-v", "aa:/x", "-v", "bb:/x", "busybox", "true",
        ])
        .fails(125);
    assert!(e.stderr.contains("Duplicate mount point: /x"), "{e}");
}

#[test]
fn volumes_from_shares_mounts() {
    let t = ctx();
    t.run([
        "create",
        "--name",
        "store",
        "-v",
        "shared:/shared",
        "busybox",
        "true",
    ])
    .ok();
    t.run([
        "run",
        "--rm",
        "--volumes-from",
        "store",
        "busybox",
        "sh",
        "-c",
        "echo via-from > /shared/f",
    ])
    .ok();
    let r = t
        .run(["run", "--rm", "-v", "shared:/s", "busybox", "cat", "/s/f"])
        .ok();
    assert_eq!(r.stdout, "via-from\n");
    let r = t.run([
        "run",
        "--rm",
        "--volumes-from",
        "store:ro",
        "busybox",
        "sh",
        "-c",
        "echo x > /shared/g",
    ]);
    assert_ne!(r.status, 0, "read-only through --volumes-from :ro");
}

#[test]
fn volume_commands_speak_docker() {
    let t = ctx();
    assert_eq!(
        t.run(["volume", "create", "--label", "tier=db", "dbdata"])
            .ok()
            .stdout,
        "dbdata\n"
    );
    assert_eq!(
        t.run(["volume", "create", "dbdata"]).ok().stdout,
        "dbdata\n",
        "create is idempotent"
    );
    let anon = t.run(["volume", "create"]).ok().stdout.trim().to_string();
    assert_eq!(anon.len(), 64);
    let ls = t.run(["volume", "ls"]).ok();
    assert!(ls.stdout.starts_with("DRIVER    VOLUME NAME\n"), "{ls}");
    assert!(ls.stdout.contains("local     dbdata\n"), "{ls}");
    assert_eq!(
        t.run(["volume", "ls", "-q", "--filter", "label=tier=db"])
            .ok()
            .stdout,
        "dbdata\n"
    );
    assert_eq!(
        t.run(["volume", "ls", "-q", "--filter", "name=dbd"])
            .ok()
            .stdout,
        "dbdata\n"
    );
    t.run(["create", "-v", "dbdata:/d", "busybox", "true"]).ok();
    assert_eq!(
        t.run(["volume", "ls", "-q", "--filter", "dangling=true"])
            .ok()
            .stdout,
        format!("{anon}\n")
    );
    let j = json(
        t.run([
            "volume",
            "ls",
            "--format",
            "json",
            "--filter",
            "name=dbdata",
        ])
        .ok()
        .stdout
        .trim(),
    );
    assert_eq!(j["Name"], "dbdata");
    let v = json(&t.run(["volume", "inspect", "dbdata"]).ok().stdout);
    assert_eq!(v[0]["Labels"], serde_json::json!({"tier": "db"}));
    let e = t.run(["volume", "inspect", "nosuch"]).fails(1);
    assert_eq!(e.stderr, "Error: No such volume: nosuch\n");
    let e = t.run(["volume", "rm", "nosuch"]).fails(1);
    assert!(e.stderr.contains("no such volume"), "{e}");
    t.run(["volume", "rm", "-f", "nosuch"]).ok();
    let e = t.run(["volume", "create", "bad name"]).fails(1);
    assert!(e.stderr.contains("invalid characters"), "{e}");
}

#[test]
fn local_driver_options_and_cp_into_volumes() {
    let t = ctx();
    t.run([
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=1m",
        "scratch",
    ])
    .ok();
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            "scratch:/s",
            "busybox",
            "sh",
            "-c",
            "grep ' /s ' /proc/mounts | cut -d' ' -f3",
        ])
        .ok();
    assert_eq!(r.stdout, "tmpfs\n", "{r}");
    let host = t.work().join("bound");
    fs::create_dir(&host).unwrap();
    fs::write(host.join("f"), "from host\n").unwrap();
    t.run([
        "volume",
        "create",
        "-o",
        "type=none",
        "-o",
        "o=bind",
        "-o",
        &format!("device={}", host.display()),
        "hostdir",
    ])
    .ok();
    let r = t
        .run(["run", "--rm", "-v", "hostdir:/h", "busybox", "cat", "/h/f"])
        .ok();
    assert_eq!(r.stdout, "from host\n");
    t.run(["volume", "rm", "hostdir"]).ok();
    assert_eq!(
        fs::read_to_string(host.join("f")).unwrap(),
        "from host\n",
        "a bound directory is not deleted with the volume"
    );
    let e = t
        .run([
            "volume",
            "create",
            "-o",
            "type=nfs",
            "-o",
            "device=:/x",
            "remote",
        ])
        .fails(1);
    assert!(e.stderr.contains("not supported"), "{e}");
    // cp into a running container's volume lands in the volume.
    t.run([
        "run",
        "-d",
        "--name",
        "holder",
        "-v",
        "cpvol:/data",
        "busybox",
        "sleep",
        "600",
    ])
    .ok();
    let src = t.work().join("note.txt");
    fs::write(&src, "copied\n").unwrap();
    t.run(["cp", src.to_str().unwrap(), "holder:/data/"]).ok();
    assert_eq!(
        t.run(["exec", "holder", "cat", "/data/note.txt"])
            .ok()
            .stdout,
        "copied\n"
    );
    t.run(["rm", "-f", "holder"]).ok();
}

#[test]
fn data_survives_rm_f_and_a_killed_cli() {
    let t = ctx();
    t.run([
        "run",
        "-d",
        "--name",
        "w1",
        "-v",
        "keep:/data",
        "busybox",
        "sh",
        "-c",
        "echo one > /data/a; sleep 600",
    ])
    .ok();
    eventually("written", || {
        t.run(["exec", "w1", "cat", "/data/a"]).stdout == "one\n"
    });
    t.run(["rm", "-f", "-v", "w1"]).ok();
    // A foreground run whose CLI is killed: the container and its writes go on.
    let mut cli = t
        .command([
            "run",
            "--name",
            "w2",
            "-v",
            "keep:/data",
            "busybox",
            "sh",
            "-c",
            "echo two > /data/b; sleep 600",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    eventually("second write", || {
        t.run(["run", "--rm", "-v", "keep:/d", "busybox", "cat", "/d/b"])
            .stdout
            == "two\n"
    });
    cli.kill().unwrap();
    cli.wait().unwrap();
    t.run(["rm", "-f", "w2"]).ok();
    let r = t
        .run([
            "run",
            "--rm",
            "-v",
            "keep:/data",
            "busybox",
            "sh",
            "-c",
            "cat /data/a /data/b",
        ])
        .ok();
    assert_eq!(r.stdout, "one\ntwo\n");
    assert_eq!(volumes(&t), ["keep"]);
}
