//! `import`, `images`, `tag`, `rmi`, `history`, `inspect` on a real store.

use berth_test::{busybox_rootfs_tar, json, sh, TestContext};

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

macro_rules! snap {
    ($ctx:expr, $name:expr, $value:expr) => {
        insta::with_settings!({filters => $ctx.filters().iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>()}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

#[test]
fn import_then_list_history_and_inspect() {
    let t = ctx();
    let id = t.import_busybox("busybox:latest");
    assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");

    let images = t.run(["images"]).ok();
    let line = images.stdout.lines().nth(1).unwrap();
    assert!(
        line.starts_with(&format!("busybox      latest    {}   ", &id[7..19])),
        "{line}"
    );

    let v = json(&t.run(["inspect", "busybox"]).ok().stdout);
    let img = &v[0];
    assert_eq!(img["Id"], id);
    assert_eq!(img["RepoTags"], serde_json::json!(["busybox:latest"]));
    assert_eq!(img["Os"], "linux");
    assert_eq!(img["RootFS"]["Type"], "layers");
    assert_eq!(img["RootFS"]["Layers"].as_array().unwrap().len(), 1);
    assert_eq!(img["Comment"], "Imported from -");
    for key in [
        "Env",
        "Cmd",
        "Entrypoint",
        "User",
        "WorkingDir",
        "Volumes",
        "Labels",
    ] {
        assert!(img["Config"].get(key).is_some(), "Config.{key} missing");
    }
    // Size is the unpacked layer: busybox itself plus the applet links' targets.
    let busybox_len = std::fs::metadata(berth_test::BUSYBOX).unwrap().len();
    let size = img["Size"].as_u64().unwrap();
    assert!(size > busybox_len && size < busybox_len + 10_000, "{size}");
    // The ID is the digest of the stored config, as Docker computes it.
    let config_hex = &id[7..];
    let stored = t.root().join("blobs/sha256").join(config_hex);
    let digest = sh(&format!("sha256sum {}", stored.display()));
    assert!(digest.starts_with(config_hex));
}

/// The fixture image is identical on every run (fixed content and creation
/// time), so its output is compared whole, IDs included.
#[test]
fn fixed_image_output_matches_docker_layout() {
    let t = ctx();
    let id = t.import_fixture("fixture:1.0");
    assert_eq!(
        id,
        t.import_fixture("fixture:1.0"),
        "import is reproducible"
    );
    t.run([
        "tag",
        "fixture:1.0",
        "registry.example:5000/team/fixture:v1",
    ])
    .ok();
    snap!(t, "images", t.run(["images"]).ok().stdout);
    snap!(
        t,
        "images_digests",
        t.run(["images", "--digests"]).ok().stdout
    );
    snap!(
        t,
        "images_no_trunc",
        t.run(["images", "--no-trunc"]).ok().stdout
    );
    snap!(
        t,
        "images_json",
        t.run(["images", "--format", "json"]).ok().stdout
    );
    snap!(
        t,
        "images_custom_table",
        t.run([
            "images",
            "--format",
            "table {{.ID}}\\t{{.Repository}}:{{.Tag}}\\t{{.Size}}"
        ])
        .ok()
        .stdout
    );
    snap!(t, "history", t.run(["history", "fixture:1.0"]).ok().stdout);
    snap!(
        t,
        "history_no_trunc",
        t.run(["history", "--no-trunc", "fixture:1.0"]).ok().stdout
    );
    snap!(t, "inspect", t.run(["inspect", "fixture:1.0"]).ok().stdout);
    snap!(t, "rmi", t.run(["rmi", "-f", &id]).ok().stdout);
}

#[test]
fn the_id_is_the_same_for_the_same_input_and_config() {
    let t = ctx();
    let tar = busybox_rootfs_tar();
    let a = t.run(["import".as_ref(), tar.as_os_str()]).ok();
    let v = json(&t.run(["inspect", a.stdout.trim()]).ok().stdout);
    // Layers are content-addressed: the same rootfs gives the same diff ID.
    let b = t.run(["import".as_ref(), tar.as_os_str()]).ok();
    let w = json(&t.run(["inspect", b.stdout.trim()]).ok().stdout);
    assert_eq!(v[0]["RootFS"], w[0]["RootFS"]);
    assert_eq!(
        std::fs::read_dir(t.root().join("layers")).unwrap().count(),
        1
    );
}

#[test]
fn import_reads_gzip_zstd_and_stdin_with_changes() {
    let t = ctx();
    let tar = busybox_rootfs_tar();
    let gz = t.work().join("rootfs.tar.gz");
    let zst = t.work().join("rootfs.tar.zst");
    sh(&format!("gzip -c {} > {}", tar.display(), gz.display()));
    sh(&format!("zstd -q -c {} > {}", tar.display(), zst.display()));
    let a = t
        .run(["import".as_ref(), gz.as_os_str(), "gz:1".as_ref()])
        .ok();
    let b = t
        .run(["import".as_ref(), zst.as_os_str(), "zst:1".as_ref()])
        .ok();
    let c = t
        .run_with_stdin(
            [
                "import",
                "-m",
                "from stdin",
                "-c",
                r#"CMD ["/bin/sh"]"#,
                "-c",
                "ENV APP=demo",
                "-c",
                "WORKDIR /srv",
                "-c",
                "USER nobody",
                "-c",
                "EXPOSE 8080",
                "-c",
                "LABEL course=docker",
                "-",
                "stdin:1",
            ],
            &std::fs::read(tar).unwrap(),
        )
        .ok();
    let layer = |out: &str| {
        json(&t.run(["inspect", out.trim()]).ok().stdout)[0]["RootFS"]["Layers"][0].clone()
    };
    // Compression does not change the layer: its diff ID is of the plain tar.
    assert_eq!(layer(&a.stdout), layer(&b.stdout));
    assert_eq!(layer(&a.stdout), layer(&c.stdout));

    let v = json(&t.run(["inspect", "stdin:1"]).ok().stdout);
    let cfg = &v[0]["Config"];
    assert_eq!(cfg["Cmd"], serde_json::json!(["/bin/sh"]));
    assert_eq!(cfg["Env"], serde_json::json!(["APP=demo"]));
    assert_eq!(cfg["WorkingDir"], "/srv");
    assert_eq!(cfg["User"], "nobody");
    assert_eq!(cfg["ExposedPorts"], serde_json::json!({"8080/tcp": {}}));
    assert_eq!(cfg["Labels"], serde_json::json!({"course": "docker"}));
    assert_eq!(v[0]["Comment"], "from stdin");
    let f = t
        .run([
            "inspect",
            "-f",
            "{{.Config.Cmd}} {{json .Config.Env}} {{.Os}}",
            "stdin:1",
        ])
        .ok();
    assert_eq!(f.stdout, "[/bin/sh] [\"APP=demo\"] linux\n");

    let bad = t.run(["import", "-c", "RUN rm -rf /", "-"]).fails(1);
    assert!(
        bad.stderr.contains("RUN is not a valid change command"),
        "{bad}"
    );
}

#[test]
fn images_flags_and_filters() {
    let t = ctx();
    let id = t.import_busybox("busybox:latest");
    t.run(["tag", "busybox", "busybox:1.36"]).ok();
    t.run(["tag", "busybox", "localhost:5000/team/app:v1"]).ok();
    let tar = busybox_rootfs_tar();
    let dangling = t
        .run([
            "import".as_ref(),
            tar.as_os_str(),
            "-m".as_ref(),
            "other".as_ref(),
        ])
        .ok()
        .stdout
        .trim()
        .to_string();

    let q = t.run(["images", "-q"]).ok();
    let short = &id[7..19];
    assert_eq!(q.stdout.lines().filter(|l| *l == short).count(), 3, "{q}");
    assert!(q.stdout.lines().any(|l| *l == dangling[7..19]));

    let all = t.run(["images", "-a", "--no-trunc", "-q"]).ok();
    assert!(all.stdout.lines().any(|l| l == id), "{all}");

    let d = t.run(["images", "--filter", "dangling=true", "-q"]).ok();
    assert_eq!(d.stdout.trim(), &dangling[7..19]);

    let r = t
        .run([
            "images",
            "--filter",
            "reference=busybox:1.*",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ])
        .ok();
    assert_eq!(r.stdout, "busybox:1.36\n");
    let r = t.run(["images", "busybox", "--format", "{{.Tag}}"]).ok();
    assert_eq!(r.stdout, "1.36\nlatest\n");
    let r = t
        .run([
            "images",
            "--format",
            "{{.Repository}}",
            "--filter",
            "reference=*/team/*",
        ])
        .ok();
    assert_eq!(r.stdout, "localhost:5000/team/app\n");

    let j = t.run(["images", "--format", "json", "busybox:latest"]).ok();
    let row = json(j.stdout.trim());
    for key in [
        "Containers",
        "CreatedAt",
        "CreatedSince",
        "Digest",
        "ID",
        "Repository",
        "SharedSize",
        "Size",
        "Tag",
        "UniqueSize",
        "VirtualSize",
    ] {
        assert!(row.get(key).is_some(), "{key} missing in {row}");
    }
    assert_eq!(row["ID"], short);

    let bad = t.run(["images", "--filter", "color=red"]).fails(1);
    assert_eq!(bad.stderr, "Error: invalid filter 'color'\n");
    t.run(["images", "--nope"]).fails(125);
}

#[test]
fn rmi_untags_then_deletes_like_docker() {
    let t = ctx();
    let id = t.import_busybox("busybox:latest");
    t.run(["tag", "busybox", "busybox:extra"]).ok();
    t.run(["tag", "busybox", "other/app:v1"]).ok();

    // By ID with names in two repositories: refused without -f.
    let e = t.run(["rmi", &id[7..19]]).fails(1);
    assert_eq!(
        e.stderr,
        format!(
            "Error: conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories\n",
            &id[7..19]
        )
    );

    // By name while other names remain: only untags.
    let u = t.run(["rmi", "busybox:extra"]).ok();
    assert_eq!(u.stdout, "Untagged: busybox:extra\n");
    let u = t.run(["rmi", "other/app:v1"]).ok();
    assert_eq!(u.stdout, "Untagged: other/app:v1\n");

    // The last name: untag, delete the image and its now unused layer.
    let layer = json(&t.run(["inspect", "busybox"]).ok().stdout)[0]["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    let d = t.run(["rmi", "busybox"]).ok();
    assert_eq!(
        d.stdout,
        format!("Untagged: busybox:latest\nDeleted: {id}\nDeleted: {layer}\n")
    );
    assert_eq!(
        std::fs::read_dir(t.root().join("layers")).unwrap().count(),
        0
    );
    assert_eq!(
        std::fs::read_dir(t.root().join("blobs/sha256"))
            .unwrap()
            .count(),
        0
    );
    t.run(["system", "check"]).ok();

    // -f removes an image with names in several repositories.
    let id = t.import_busybox("a:1");
    t.run(["tag", "a:1", "b:1"]).ok();
    let f = t.run(["rmi", "-f", &id]).ok();
    assert_eq!(
        f.stdout,
        format!("Untagged: a:1\nUntagged: b:1\nDeleted: {id}\nDeleted: {layer}\n")
    );

    // Several arguments: each is tried, the failure is reported, status 1.
    t.import_busybox("keep:1");
    let m = t.run(["rmi", "nosuch", "keep:1"]).fails(1);
    assert_eq!(m.stderr, "Error: No such image: nosuch:latest\n");
    assert!(m.stdout.starts_with("Untagged: keep:1\n"), "{m}");
}

#[test]
fn a_layer_shared_by_two_images_stays_until_the_last_goes() {
    let t = ctx();
    let tar = busybox_rootfs_tar();
    let a = t
        .run(["import".as_ref(), tar.as_os_str(), "one".as_ref()])
        .ok();
    t.run([
        "import".as_ref(),
        "-m".as_ref(),
        "two".as_ref(),
        tar.as_os_str(),
        "two".as_ref(),
    ])
    .ok();
    assert_ne!(a.stdout, "");
    let d = t.run(["rmi", "one"]).ok();
    assert_eq!(d.stdout.lines().count(), 2, "only untag and image: {d}");
    assert_eq!(
        std::fs::read_dir(t.root().join("layers")).unwrap().count(),
        1
    );
    t.run(["system", "check"]).ok();
    let d = t.run(["rmi", "two"]).ok();
    assert_eq!(d.stdout.lines().count(), 3, "{d}");
}

#[test]
fn tags_move_and_names_normalize() {
    let t = ctx();
    let a = t.import_busybox("app");
    let b = t
        .run([
            "import".as_ref(),
            busybox_rootfs_tar().as_os_str(),
            "-m".as_ref(),
            "new".as_ref(),
            "docker.io/library/app:latest".as_ref(),
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(a, b);
    // The tag moved to the new image; the old one is dangling now.
    let v = json(&t.run(["inspect", "app:latest"]).ok().stdout);
    assert_eq!(v[0]["Id"], b);
    let v = json(&t.run(["inspect", &a]).ok().stdout);
    assert_eq!(v[0]["RepoTags"], serde_json::json!([]));

    let e = t.run(["tag", "app", "Bad/Name"]).fails(1);
    assert!(e.stderr.contains("must be lowercase"), "{e}");
    let e = t.run(["tag", "nosuch", "x"]).fails(1);
    assert_eq!(e.stderr, "Error: No such image: nosuch:latest\n");
    // ID prefixes resolve, ambiguous or not.
    t.run(["tag", &a[7..15], "byprefix"]).ok();
    let v = json(&t.run(["inspect", "byprefix"]).ok().stdout);
    assert_eq!(v[0]["Id"], a);
}

#[test]
fn inspect_errors_like_docker() {
    let t = ctx();
    t.import_busybox("busybox");
    let e = t.run(["inspect", "busybox", "nosuch"]).fails(1);
    assert_eq!(e.stderr, "Error: No such object: nosuch\n");
    assert_eq!(json(&e.stdout).as_array().unwrap().len(), 1);
    let e = t.run(["image", "inspect", "nosuch"]).fails(1);
    assert_eq!(e.stderr, "Error: No such image: nosuch\n");
    assert_eq!(e.stdout, "[]\n");
    let e = t.run(["history", "nosuch"]).fails(1);
    assert_eq!(e.stderr, "Error: No such image: nosuch:latest\n");
}

#[test]
fn bad_input_is_refused_and_leaves_nothing_behind() {
    let t = ctx();
    let tar = std::fs::read(busybox_rootfs_tar()).unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "garbage.tar",
            b"this is not a tar archive at all, just some text".repeat(20),
        ),
        ("empty.tar", Vec::new()),
        ("truncated.tar", tar[..tar.len() / 2 + 100].to_vec()),
        ("truncated.tar.gz", {
            let gz = t.work().join("full.tar.gz");
            std::fs::write(t.work().join("full.tar"), &tar).unwrap();
            sh(&format!(
                "gzip -c {} > {}",
                t.work().join("full.tar").display(),
                gz.display()
            ));
            let data = std::fs::read(&gz).unwrap();
            data[..data.len() / 2].to_vec()
        }),
    ];
    for (name, data) in cases {
        let p = t.work().join(name);
        std::fs::write(&p, data).unwrap();
        let r = t.run(["import".as_ref(), p.as_os_str(), "broken:1".as_ref()]);
        assert_eq!(r.status, 1, "{name}: {r}");
        assert!(
            r.stderr.starts_with("Error: ") && r.stderr.lines().count() == 1,
            "{name}: {r}"
        );
        assert!(r.stderr.contains(name), "the error names the input: {r}");
    }
    let missing = t.run(["import", "/nonexistent/rootfs.tar"]).fails(1);
    assert!(
        missing.stderr.contains("/nonexistent/rootfs.tar"),
        "{missing}"
    );
    assert_eq!(t.run(["images", "-q"]).ok().stdout, "");
    for dir in ["layers", "blobs/sha256", "tmp"] {
        assert_eq!(
            std::fs::read_dir(t.root().join(dir)).unwrap().count(),
            0,
            "{dir} not empty"
        );
    }
    t.run(["system", "check"]).ok();
}

#[test]
fn layer_paths_cannot_escape() {
    let t = ctx();
    let p = t.work().join("evil.tar");
    {
        let mut b = tar::Builder::new(std::fs::File::create(&p).unwrap());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "etc", "/etc").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        b.append_data(&mut h, "etc/evil-berth-test", &b"evil"[..])
            .unwrap();
        b.finish().unwrap();
    }
    let r = t.run(["import".as_ref(), p.as_os_str()]).fails(1);
    assert!(r.stderr.contains("unsafe path"), "{r}");
    assert!(!std::path::Path::new("/etc/evil-berth-test").exists());
}

#[test]
fn system_info_reports_the_store() {
    let t = ctx();
    t.import_busybox("busybox");
    let info = t.run(["system", "info"]).ok();
    assert!(info.stdout.contains(" Images: 1\n"), "{info}");
    assert!(
        info.stdout
            .contains(&format!(" Berth Root Dir: {}\n", t.root().display())),
        "{info}"
    );
    assert!(info.stdout.contains(" Storage Driver: "), "{info}");
    let j = json(&t.run(["info", "--format", "json"]).ok().stdout);
    assert_eq!(j["Images"], 1);
    assert_eq!(j["Layers"], 1);
    let f = t.run(["info", "--format", "{{.Images}} {{.OSType}}"]).ok();
    assert_eq!(f.stdout, "1 linux\n");
}

#[test]
fn root_comes_from_the_environment_too() {
    let t = ctx();
    let out = std::process::Command::new(t.bin())
        .args(["images", "-q"])
        .env("BERTH_ROOT", t.root())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(t.root().join("berth.db").is_file());
    assert!(t.root().join("oci-layout").is_file());
}
