#![allow(clippy::print_stderr)] // optional engines report skips on stderr

//! Interoperability: peers (skopeo, umoci, docker, podman) read what berth
//! writes, and berth reads what peers write.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use berth_test::{busybox_rootfs_tar, json, require_tool, sh, TestContext, BUSYBOX};
use serde_json::Value;

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

/// A path quoted for `sh -c`.
fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

/// `berth inspect IMAGE`, the one object of its array.
fn inspect(ctx: &TestContext, image: &str) -> Value {
    let out = ctx.run(["inspect", image]).ok();
    let v = json(&out.stdout);
    assert_eq!(v.as_array().map(Vec::len), Some(1), "{out}");
    v[0].clone()
}

fn rootfs_layers(ctx: &TestContext, image: &str) -> Value {
    let v = inspect(ctx, image);
    assert!(v["RootFS"]["Layers"].is_array(), "no RootFS.Layers: {v}");
    v["RootFS"]["Layers"].clone()
}

fn image_id(ctx: &TestContext, image: &str) -> String {
    inspect(ctx, image)["Id"]
        .as_str()
        .expect("Id is a string")
        .to_string()
}

/// Reads one member of a tar file; `None` if it is not there.
fn tar_member(tar: &Path, name: &str) -> Option<Vec<u8>> {
    let f = fs::File::open(tar).unwrap_or_else(|e| panic!("open {}: {e}", tar.display()));
    let mut archive = tar::Archive::new(f);
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        let path = entry.path().expect("entry path").into_owned();
        let path = path.to_string_lossy();
        if path.trim_start_matches("./").trim_start_matches('/') == name {
            let mut data = Vec::new();
            entry.read_to_end(&mut data).expect("read tar member");
            return Some(data);
        }
    }
    None
}

fn assert_system_check(ctx: &TestContext) {
    let run = ctx.run(["system", "check"]).ok();
    assert!(run.stdout.contains("is consistent"), "{run}");
}

#[test]
fn skopeo_reads_our_docker_archive() {
    if !require_tool("skopeo") {
        return;
    }
    let ctx = ctx();
    ctx.import_busybox("busybox:latest");
    let layers = rootfs_layers(&ctx, "busybox:latest");
    let archive = ctx.work().join("busybox-docker.tar");
    ctx.run([
        "save".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "busybox:latest".as_ref(),
    ])
    .ok();

    let seen = json(&sh(&format!(
        "skopeo inspect docker-archive:{}",
        q(&archive)
    )));
    assert_eq!(seen["Layers"], layers, "skopeo's view: {seen}");
    assert_eq!(seen["Os"], "linux", "skopeo's view: {seen}");

    // skopeo also reads the config by its digest, which is the image ID.
    let config = sh(&format!(
        "skopeo inspect --config docker-archive:{}",
        q(&archive)
    ));
    assert_eq!(json(&config)["rootfs"]["diff_ids"], layers);

    // A full copy reads and verifies every blob.
    let out = ctx.work().join("copied-oci");
    sh(&format!(
        "skopeo copy -q docker-archive:{} oci:{}:copied",
        q(&archive),
        q(&out)
    ));
    let copied = json(&sh(&format!("skopeo inspect oci:{}:copied", q(&out))));
    assert_eq!(
        copied["Layers"].as_array().map(Vec::len),
        Some(1),
        "{copied}"
    );
    let copied_config = json(&sh(&format!(
        "skopeo inspect --config oci:{}:copied",
        q(&out)
    )));
    assert_eq!(copied_config["rootfs"]["diff_ids"], layers);
}

#[test]
fn skopeo_and_umoci_read_our_oci_archive() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let ctx = ctx();
    ctx.import_busybox("busybox:latest");
    let layers = rootfs_layers(&ctx, "busybox:latest");
    let archive = ctx.work().join("busybox-oci.tar");
    ctx.run([
        "save".as_ref(),
        "--format".as_ref(),
        "oci".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        "busybox:latest".as_ref(),
    ])
    .ok();

    let index = json(
        &String::from_utf8(tar_member(&archive, "index.json").expect("index.json")).expect("utf8"),
    );
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    let manifest_digest = manifests[0]["digest"].as_str().expect("digest");

    let seen = json(&sh(&format!("skopeo inspect oci-archive:{}", q(&archive))));
    assert_eq!(seen["Digest"], manifest_digest, "skopeo's view: {seen}");
    let config = json(&sh(&format!(
        "skopeo inspect --config oci-archive:{}",
        q(&archive)
    )));
    assert_eq!(config["rootfs"]["diff_ids"], layers);

    // umoci unpacks the layout into a runtime bundle.
    let layout = ctx.work().join("layout");
    fs::create_dir(&layout).expect("mkdir layout");
    sh(&format!("tar -C {} -xf {}", q(&layout), q(&archive)));
    let bundle = ctx.work().join("bundle");
    sh(&format!(
        "umoci unpack --rootless --image {}:latest {}",
        q(&layout),
        q(&bundle)
    ));
    let rootfs = bundle.join("rootfs");
    let unpacked = fs::read(rootfs.join("bin/busybox")).expect("bundle has bin/busybox");
    let original = fs::read(BUSYBOX).expect("read /bin/busybox");
    assert!(
        unpacked == original,
        "bin/busybox differs from {BUSYBOX} ({} vs {} bytes)",
        unpacked.len(),
        original.len()
    );
    let passwd = fs::read(rootfs.join("etc/passwd")).expect("bundle has etc/passwd");
    let want = tar_member(busybox_rootfs_tar(), "etc/passwd").expect("etc/passwd in rootfs tar");
    assert_eq!(
        String::from_utf8_lossy(&passwd),
        String::from_utf8_lossy(&want)
    );
    let applet = fs::read_link(rootfs.join("bin/sh")).expect("bin/sh is a symlink");
    assert_eq!(applet, Path::new("busybox"));
}

#[test]
fn skopeo_reads_the_data_root_as_an_oci_layout() {
    if !require_tool("skopeo") {
        return;
    }
    let ctx = ctx();
    let id = ctx.import_busybox("busybox:latest");
    ctx.run(["tag", "busybox:latest", "example.com/team/app:v1"])
        .ok();
    let layers = rootfs_layers(&ctx, "busybox:latest");
    let root = ctx.root();

    for reference in [
        "docker.io/library/busybox:latest",
        "example.com/team/app:v1",
    ] {
        let seen = json(&sh(&format!("skopeo inspect oci:{}:{reference}", q(root))));
        assert_eq!(seen["Layers"], layers, "{reference}: {seen}");
        // The config skopeo finds is the image: its digest is the image ID.
        let digest = sh(&format!(
            "skopeo inspect --raw --config oci:{}:{reference} | sha256sum",
            q(root)
        ));
        let hex = digest.split_whitespace().next().expect("sha256sum output");
        assert_eq!(format!("sha256:{hex}"), id, "{reference}");
    }

    // A full copy out of the data root reads and verifies every blob.
    let out = ctx.work().join("copied");
    sh(&format!(
        "skopeo copy -q oci:{}:docker.io/library/busybox:latest oci:{}:copy",
        q(root),
        q(&out)
    ));
    // Reading the root never changes it.
    assert_system_check(&ctx);
}

/// An OCI layout built by umoci alone: an empty image plus one layer holding
/// `app/hello.txt` (known content), a symlink and a nested config file.
///
/// The layer is made by `umoci unpack` + `umoci repack` rather than `umoci
/// insert`: umoci 0.4.7's insert writes layer tars without the end-of-archive
/// blocks and without the last member's padding (opencontainers/umoci#436,
/// fixed by #534), which GNU tar, Python and berth refuse.
fn umoci_layout(dir: &Path) -> std::path::PathBuf {
    let layout = dir.join("peer-layout");
    let bundle = dir.join("peer-bundle");
    sh(&format!("umoci init --layout {}", q(&layout)));
    sh(&format!("umoci new --image {}:latest", q(&layout)));
    sh(&format!(
        "umoci unpack --rootless --image {}:latest {}",
        q(&layout),
        q(&bundle)
    ));
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("app")).expect("mkdir app");
    fs::create_dir_all(rootfs.join("etc/app")).expect("mkdir etc/app");
    fs::write(rootfs.join("app/hello.txt"), HELLO).expect("write hello");
    fs::write(rootfs.join("etc/app/app.conf"), "level = 3\n").expect("write conf");
    std::os::unix::fs::symlink("hello.txt", rootfs.join("app/greeting")).expect("symlink");
    sh(&format!(
        "umoci repack --image {}:latest {}",
        q(&layout),
        q(&bundle)
    ));
    layout
}

const HELLO: &str = "hello from a peer-built image\n";

/// The bytes of `path` inside the first layer of `image` as berth saves it.
fn file_in_saved_image(ctx: &TestContext, image: &str, path: &str) -> Vec<u8> {
    let archive = ctx
        .work()
        .join(format!("resave-{}.tar", image.replace([':', '/'], "-")));
    ctx.run([
        "save".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        image.as_ref(),
    ])
    .ok();
    let manifest = json(
        &String::from_utf8(tar_member(&archive, "manifest.json").expect("manifest.json"))
            .expect("utf8"),
    );
    let layer = manifest[0]["Layers"][0].as_str().expect("a layer");
    let dir = ctx
        .work()
        .join(format!("resave-{}", image.replace([':', '/'], "-")));
    fs::create_dir_all(&dir).expect("mkdir");
    let layer_tar = dir.join("layer.tar");
    fs::write(
        &layer_tar,
        tar_member(&archive, layer).expect("layer in archive"),
    )
    .expect("write layer");
    tar_member(&layer_tar, path).unwrap_or_else(|| panic!("{path} missing from {image}"))
}

#[test]
fn berth_loads_archives_written_by_skopeo() {
    if !require_tool("skopeo") || !require_tool("umoci") {
        return;
    }
    let ctx = ctx();
    let layout = umoci_layout(ctx.work());
    let docker_archive = ctx.work().join("A.tar");
    let oci_archive = ctx.work().join("B.tar");
    sh(&format!(
        "skopeo copy -q oci:{}:latest docker-archive:{}:peer/app:1",
        q(&layout),
        q(&docker_archive)
    ));
    sh(&format!(
        "skopeo copy -q oci:{}:latest oci-archive:{}:peer/app:2",
        q(&layout),
        q(&oci_archive)
    ));
    let raw = json(&sh(&format!(
        "skopeo inspect --raw oci:{}:latest",
        q(&layout)
    )));
    let peer_id = raw["config"]["digest"]
        .as_str()
        .expect("config digest")
        .to_string();
    let peer_diff_ids = json(&sh(&format!(
        "skopeo inspect --config oci:{}:latest",
        q(&layout)
    )))["rootfs"]["diff_ids"]
        .clone();

    let run = ctx
        .run(["load".as_ref(), "-i".as_ref(), docker_archive.as_os_str()])
        .ok();
    assert_eq!(run.stdout, "Loaded image: peer/app:1\n", "{run}");
    let run = ctx
        .run(["load".as_ref(), "-i".as_ref(), oci_archive.as_os_str()])
        .ok();
    assert_eq!(run.stdout, "Loaded image: peer/app:2\n", "{run}");

    let listed = ctx
        .run(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok();
    let mut names: Vec<&str> = listed.stdout.lines().collect();
    names.sort();
    assert_eq!(names, ["peer/app:1", "peer/app:2"], "{listed}");

    // The docker-archive lists uncompressed layers; skopeo reports them as is.
    let seen = json(&sh(&format!(
        "skopeo inspect docker-archive:{}",
        q(&docker_archive)
    )));
    for tag in ["peer/app:1", "peer/app:2"] {
        let layers = rootfs_layers(&ctx, tag);
        assert_eq!(layers, peer_diff_ids, "{tag}");
        assert_eq!(layers, seen["Layers"], "{tag}");
        assert_eq!(image_id(&ctx, tag), peer_id, "{tag}");
        assert_eq!(
            String::from_utf8_lossy(&file_in_saved_image(&ctx, tag, "app/hello.txt")),
            HELLO,
            "{tag}"
        );
    }
    assert_system_check(&ctx);

    // What berth saves of a peer's image loads elsewhere as the same image.
    for (tag, format) in [("peer/app:1", "docker-archive"), ("peer/app:2", "oci")] {
        let again = ctx.work().join(format!("again-{format}.tar"));
        ctx.run([
            "save".as_ref(),
            "--format".as_ref(),
            format.as_ref(),
            "-o".as_ref(),
            again.as_os_str(),
            tag.as_ref(),
        ])
        .ok();
        let fresh = self::ctx();
        let run = fresh
            .run(["load".as_ref(), "-i".as_ref(), again.as_os_str()])
            .ok();
        assert_eq!(run.stdout, format!("Loaded image: {tag}\n"), "{run}");
        assert_eq!(image_id(&fresh, tag), peer_id, "{tag} via {format}");
        assert_eq!(
            rootfs_layers(&fresh, tag),
            peer_diff_ids,
            "{tag} via {format}"
        );
        assert_system_check(&fresh);
    }
}

/// Whether `tool` is on PATH and `tool info` succeeds (a reachable engine).

#[test]
fn docker_and_podman_load_our_archive() {
    let docker = berth_test::engine_works("docker");
    let podman = berth_test::engine_works("podman");
    if !docker && !podman {
        eprintln!("skipping: neither docker nor podman has a working engine here");
        return;
    }
    let ctx = ctx();
    // A name of its own, so the test never touches the engines' other images.
    let name = format!("berth-interop-test/busybox:{}", std::process::id());
    ctx.import_busybox(&name);
    let archive = ctx.work().join("for-engines.tar");
    ctx.run([
        "save".as_ref(),
        "-o".as_ref(),
        archive.as_os_str(),
        name.as_ref(),
    ])
    .ok();

    if docker {
        let out = sh(&format!("docker load -i {}", q(&archive)));
        let result = std::panic::catch_unwind(|| {
            assert!(out.contains(&format!("Loaded image: {name}")), "{out}");
            sh(&format!(
                "docker run --rm --network none {name} /bin/busybox true"
            ));
        });
        let _ = Command::new("docker")
            .args(["rmi", "-f", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    } else {
        eprintln!("skipping docker: no working docker engine (`docker info` failed)");
    }

    if podman {
        let out = sh(&format!("podman load -i {}", q(&archive)));
        let result = std::panic::catch_unwind(|| {
            // podman prints the name fully qualified (docker.io/…).
            assert!(out.contains(&name), "{out}");
            sh(&format!("podman image exists docker.io/{name}"));
        });
        let _ = Command::new("podman")
            .args(["rmi", "-f", &format!("docker.io/{name}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    } else {
        eprintln!("skipping podman: not installed or `podman info` failed");
    }
}
