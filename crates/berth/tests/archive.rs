//! `save` and `load`: round trips, formats, and refusal of damaged archives.

use std::fs;
use std::path::Path;

use berth_test::{json, TestContext};
use sha2::Digest as _;

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

fn tar_names(path: &Path) -> Vec<String> {
    let mut a = tar::Archive::new(fs::File::open(path).unwrap());
    a.entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

fn read_entry(path: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut v).unwrap();
            return v;
        }
    }
    panic!("{name} not in {}", path.display());
}

#[test]
fn save_then_load_into_an_empty_root_keeps_the_image() {
    let a = ctx();
    let id = a.import_busybox("busybox:latest");
    a.run(["tag", "busybox", "course/busybox:v1"]).ok();
    let out = a.work().join("images.tar");
    a.run([
        "save".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "busybox".as_ref(),
        "course/busybox:v1".as_ref(),
    ])
    .ok();

    // docker-archive: manifest.json over an OCI layout, like Docker 25+.
    let names = tar_names(&out);
    for n in [
        "manifest.json",
        "index.json",
        "oci-layout",
        &format!("blobs/sha256/{}", &id[7..]),
    ] {
        assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
    }
    let manifest = json(std::str::from_utf8(&read_entry(&out, "manifest.json")).unwrap());
    assert_eq!(
        manifest.as_array().unwrap().len(),
        1,
        "one image, two names"
    );
    assert_eq!(
        manifest[0]["RepoTags"],
        serde_json::json!(["busybox:latest", "course/busybox:v1"])
    );
    assert_eq!(manifest[0]["Config"], format!("blobs/sha256/{}", &id[7..]));

    let b = ctx();
    let load = b
        .run(["load".as_ref(), "-i".as_ref(), out.as_os_str()])
        .ok();
    assert_eq!(
        load.stdout,
        "Loaded image: busybox:latest\nLoaded image: course/busybox:v1\n"
    );
    let v = json(&b.run(["inspect", "busybox"]).ok().stdout);
    assert_eq!(v[0]["Id"], id);
    let before = json(&a.run(["inspect", "busybox"]).ok().stdout);
    assert_eq!(v[0]["RootFS"], before[0]["RootFS"]);
    assert_eq!(v[0]["Size"], before[0]["Size"]);
    b.run(["system", "check", "--deep"]).ok();

    // The unpacked layer is the rootfs, byte for byte.
    let layer = v[0]["GraphDriver"]["Data"]["LowerDir"].as_str().unwrap();
    assert_eq!(
        fs::read(Path::new(layer).join("bin/busybox")).unwrap(),
        fs::read(berth_test::BUSYBOX).unwrap()
    );
    assert_eq!(
        fs::read_link(Path::new(layer).join("bin/sh")).unwrap(),
        Path::new("busybox")
    );

    // Loading again changes nothing; from stdin works too.
    let again = b.run_with_stdin(["load"], &fs::read(&out).unwrap()).ok();
    assert_eq!(again.stdout, load.stdout);
    assert_eq!(b.run(["images", "-q"]).ok().stdout.lines().count(), 2);
}

#[test]
fn saving_twice_gives_the_same_bytes() {
    let t = ctx();
    t.import_fixture("fixture:1");
    let one = t.work().join("one.tar");
    let two = t.work().join("two.tar");
    t.run([
        "save".as_ref(),
        "-o".as_ref(),
        one.as_os_str(),
        "fixture:1".as_ref(),
    ])
    .ok();
    t.run([
        "save".as_ref(),
        "-o".as_ref(),
        two.as_os_str(),
        "fixture:1".as_ref(),
    ])
    .ok();
    assert_eq!(fs::read(&one).unwrap(), fs::read(&two).unwrap());
    let out = t.command(["save", "fixture:1"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, fs::read(&one).unwrap(), "stdout and -o agree");
}

#[test]
fn oci_format_and_untagged_images() {
    let t = ctx();
    let id = t.import_fixture("fixture:1");
    let out = t.work().join("oci.tar");
    t.run([
        "save".as_ref(),
        "--format".as_ref(),
        "oci".as_ref(),
        "-o".as_ref(),
        out.as_os_str(),
        "fixture:1".as_ref(),
    ])
    .ok();
    let names = tar_names(&out);
    assert!(!names.iter().any(|n| n == "manifest.json"), "{names:?}");
    let index = json(std::str::from_utf8(&read_entry(&out, "index.json")).unwrap());
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(
        ann["io.containerd.image.name"],
        "docker.io/library/fixture:1"
    );
    assert_eq!(ann["org.opencontainers.image.ref.name"], "1");

    let b = ctx();
    let r = b
        .run(["load".as_ref(), "-i".as_ref(), out.as_os_str()])
        .ok();
    assert_eq!(r.stdout, "Loaded image: fixture:1\n");

    // Saved by ID: no names in the archive; loads as a dangling image.
    let by_id = t.work().join("by-id.tar");
    t.run([
        "save".as_ref(),
        "-o".as_ref(),
        by_id.as_os_str(),
        id[7..19].as_ref(),
    ])
    .ok();
    let c = ctx();
    let r = c
        .run(["load".as_ref(), "-i".as_ref(), by_id.as_os_str()])
        .ok();
    assert_eq!(r.stdout, format!("Loaded image ID: {id}\n"));
    assert_eq!(
        c.run(["images", "--filter", "dangling=true", "-q", "--no-trunc"])
            .ok()
            .stdout
            .trim(),
        id
    );
}

#[test]
fn load_moves_an_existing_tag_like_docker() {
    let a = ctx();
    a.import_fixture("app:1");
    let archive = a.work().join("a.tar");
    a.run([
        "save".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "app:1".as_ref(),
    ])
    .ok();

    let b = ctx();
    let old = b.import_busybox("app:1");
    let r = b
        .run(["load".as_ref(), "-i".as_ref(), archive.as_os_str()])
        .ok();
    assert_eq!(
        r.stdout,
        format!(
            "The image app:1 already exists, renaming the old one with ID {old} to empty string\nLoaded image: app:1\n"
        )
    );
}

/// An archive as Docker before 25 wrote it: `<id>/layer.tar`, a legacy
/// `repositories` file, and a duplicate layer stored as a symlink.
#[test]
fn loads_legacy_docker_archives_with_symlinked_layers() {
    let src = ctx();
    let id = src.import_fixture("legacy:1");
    let config = fs::read(src.root().join("blobs/sha256").join(&id[7..])).unwrap();
    let cfg = json(std::str::from_utf8(&config).unwrap());
    let diff = cfg["rootfs"]["diff_ids"][0].as_str().unwrap().to_string();
    let layer_tar = fs::read(src.root().join("blobs/sha256").join(&diff[7..])).unwrap();

    // Two images sharing the same layer: the second links to the first's tar.
    let mut cfg2 = cfg.clone();
    cfg2["comment"] = "second".into();
    let config2 = serde_json::to_vec(&cfg2).unwrap();
    let id2 = hex::encode(sha2::Sha256::digest(&config2));

    let path = src.work().join("legacy.tar");
    let mut b = tar::Builder::new(fs::File::create(&path).unwrap());
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        b.append_data(&mut h, name, data).unwrap();
    };
    add("aaaa/layer.tar", &layer_tar);
    add("aaaa/VERSION", b"1.0");
    add(&format!("{}.json", &id[7..]), &config);
    add(&format!("{id2}.json"), &config2);
    add(
        "manifest.json",
        serde_json::json!([
            {"Config": format!("{}.json", &id[7..]), "RepoTags": ["legacy:1"], "Layers": ["aaaa/layer.tar"]},
            {"Config": format!("{id2}.json"), "RepoTags": ["legacy:2"], "Layers": ["bbbb/layer.tar"]}
        ])
        .to_string()
        .as_bytes(),
    );
    add("repositories", br#"{"legacy":{"1":"aaaa"}}"#);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    h.set_mode(0o777);
    h.set_uid(0);
    h.set_gid(0);
    b.append_link(&mut h, "bbbb/layer.tar", "../aaaa/layer.tar")
        .unwrap();
    b.into_inner().unwrap();

    let t = ctx();
    let r = t
        .run(["load".as_ref(), "-i".as_ref(), path.as_os_str()])
        .ok();
    assert_eq!(r.stdout, "Loaded image: legacy:1\nLoaded image: legacy:2\n");
    let v = json(&t.run(["inspect", "legacy:2"]).ok().stdout);
    assert_eq!(v[0]["Id"], format!("sha256:{id2}"));
    t.run(["system", "check", "--deep"]).ok();
}

#[test]
fn damaged_archives_are_refused_and_register_nothing() {
    let a = ctx();
    a.import_fixture("fixture:1");
    let good = a.work().join("good.tar");
    a.run([
        "save".as_ref(),
        "-o".as_ref(),
        good.as_os_str(),
        "fixture:1".as_ref(),
    ])
    .ok();
    let bytes = fs::read(&good).unwrap();

    // Flip one byte inside app/data.bin's content in the layer tar (after the
    // headers and data of etc/, etc/passwd, app/ and its own header).
    let layer_offset = {
        let mut a = tar::Archive::new(&bytes[..]);
        let mut off = None;
        for e in a.entries().unwrap() {
            let e = e.unwrap();
            if e.size() > 1500 {
                off = Some(e.raw_file_position() as usize);
            }
        }
        off.expect("layer entry")
    };
    let mut flipped = bytes.clone();
    flipped[layer_offset + 2560 + 100] ^= 0xff;

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("flipped.tar", flipped, "does not match"),
        (
            "truncated.tar",
            bytes[..bytes.len() / 2].to_vec(),
            "not a valid tar archive",
        ),
        ("noise.tar", vec![0x42; 5000], "not a valid tar archive"),
    ];
    for (name, data, why) in cases {
        let p = a.work().join(name);
        fs::write(&p, data).unwrap();
        let t = ctx();
        let r = t
            .run(["load".as_ref(), "-i".as_ref(), p.as_os_str()])
            .fails(1);
        assert!(r.stderr.contains(why), "{name}: {r}");
        assert_eq!(r.stderr.lines().count(), 1, "{name}: {r}");
        assert_eq!(t.run(["images", "-q", "-a"]).ok().stdout, "", "{name}");
        for dir in ["layers", "blobs/sha256", "tmp"] {
            assert_eq!(
                fs::read_dir(t.root().join(dir)).unwrap().count(),
                0,
                "{name}: {dir}"
            );
        }
    }
}

#[test]
fn save_errors() {
    let t = ctx();
    let r = t.run(["save", "-o", "x.tar", "nosuch"]).fails(1);
    assert_eq!(r.stderr, "Error: No such image: nosuch:latest\n");
    assert!(!t.work().join("x.tar").exists(), "no partial archive");
    t.import_fixture("fixture:1");
    let r = t
        .run(["save", "--format", "zip", "-o", "x.tar", "fixture:1"])
        .fails(125);
    assert!(r.stderr.contains("docker-archive or oci"), "{r}");
    let r = t.run(["load", "-i", "missing.tar"]).fails(1);
    assert!(r.stderr.contains("missing.tar"), "{r}");
}

/// An archive with gzip layers (skopeo compresses what it writes to an
/// OCI archive) loads without a second, uncompressed copy of each layer;
/// the image runs, checks and saves again with the same ID.
#[test]
fn compressed_layers_are_kept_as_they_came() {
    if !berth_test::require_tool("skopeo") {
        return;
    }
    let t = ctx();
    let id = t.import_busybox("bb:1");
    let plain = t.work().join("plain.tar");
    t.run([
        "save",
        "--format",
        "oci",
        "-o",
        plain.to_str().unwrap(),
        "bb:1",
    ])
    .ok();
    let gz = t.work().join("gz.tar");
    berth_test::sh(&format!(
        "skopeo copy -q oci-archive:{} oci-archive:{}:bb:1",
        plain.display(),
        gz.display()
    ));

    let b = ctx();
    b.run(["load", "-i", gz.to_str().unwrap()]).ok();
    let blobs = b.blob_names();
    let diff_id = json(&b.run(["inspect", &id]).ok().stdout)[0]["RootFS"]["Layers"][0]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!blobs.contains(&diff_id[7..].to_string()), "{blobs:?}");
    let gz_layers: Vec<&String> = blobs
        .iter()
        .filter(|n| {
            let mut head = [0u8; 2];
            fs::File::open(b.root().join("blobs/sha256").join(n))
                .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
                .is_ok()
                && head == [0x1f, 0x8b]
        })
        .collect();
    assert_eq!(gz_layers.len(), 1, "{blobs:?}");
    let group = b.run(["run", "--rm", &id, "cat", "/etc/group"]).ok().stdout;
    assert!(group.starts_with("root:x:0:\n"), "{group}");
    b.run(["system", "check", "--deep"]).ok();

    let again = b.work().join("again.tar");
    b.run(["tag", &id, "bb:2"]).ok();
    b.run(["save", "-o", again.to_str().unwrap(), "bb:2"]).ok();
    let c = ctx();
    c.run(["load", "-i", again.to_str().unwrap()]).ok();
    assert_eq!(
        c.run(["images", "-q", "--no-trunc", "bb:2"])
            .ok()
            .stdout
            .trim(),
        id
    );
}
