//! `image prune`, `system df` and `system prune`: the course's "what is
//! taking my disk" and `docker system prune -a`, with nothing in use lost.

use berth_test::{json, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

/// `images -a` as "REPOSITORY:TAG ID" lines.
fn images(t: &TestContext) -> Vec<String> {
    t.run([
        "images",
        "-a",
        "--format",
        "{{.Repository}}:{{.Tag}} {{.ID}}",
    ])
    .ok()
    .stdout
    .lines()
    .map(str::to_string)
    .collect()
}

/// `system df --format json`, by type.
fn df(t: &TestContext) -> std::collections::HashMap<String, serde_json::Value> {
    t.run(["system", "df", "--format", "json"])
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let v = json(l);
            (v["Type"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

#[test]
fn image_prune_takes_dangling_images_then_all_unused() {
    let t = ctx();
    t.run(["run", "--name", "c1", "busybox", "sh", "-c", "echo yo > /f"])
        .ok();
    // The second commit takes the tag: the first image is left dangling.
    let first = t
        .run(["commit", "c1", "app:1"])
        .ok()
        .stdout
        .trim()
        .to_string();
    t.run(["commit", "c1", "app:1"]).ok();
    assert!(images(&t).iter().any(|l| l.starts_with("<none>:<none>")));

    // Without -f there is nobody to ask.
    let r = t.run(["image", "prune"]).fails(1);
    assert!(r.stderr.contains("add -f"), "{r}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "{r}");
    // Filters that match nothing remove nothing.
    for f in ["label=nosuch", "until=1h"] {
        let r = t.run(["image", "prune", "-f", "--filter", f]).ok();
        assert_eq!(r.stdout, "Total reclaimed space: 0B\n", "{f}: {r}");
    }
    let r = t
        .run(["image", "prune", "--filter", "color=red", "-f"])
        .fails(1);
    assert!(r.stderr.contains("invalid filter 'color'"), "{r}");

    let r = t.run(["image", "prune", "-f"]).ok();
    assert!(
        r.stdout
            .starts_with(&format!("Deleted Images:\ndeleted: {first}\n")),
        "{r}"
    );
    assert!(r.stdout.contains("\n\nTotal reclaimed space: "), "{r}");
    let left = images(&t);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(!left.iter().any(|l| l.starts_with("<none>")), "{left:?}");

    // -a: busybox has a container, so only app:1 goes, with its layer.
    let r = t.run(["image", "prune", "-a", "-f"]).ok();
    assert!(r.stdout.contains("untagged: app:1\n"), "{r}");
    assert!(!r.stdout.contains("busybox"), "{r}");
    assert_ne!(r.stdout.lines().last(), Some("Total reclaimed space: 0B"));
    let left = images(&t);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("busybox:latest"), "{left:?}");
    t.run(["system", "check", "--deep"]).ok();
    t.run(["rm", "c1"]).ok();
    t.run(["image", "prune", "-a", "-f"]).ok();
    assert!(images(&t).is_empty());
    t.run(["system", "check", "--deep"]).ok();
}

macro_rules! snap {
    ($ctx:expr, $name:expr, $value:expr) => {
        insta::with_settings!({filters => $ctx.filters().iter().map(|(a, b)| (a.as_str(), b.as_str())).collect::<Vec<_>>()}, {
            insta::assert_snapshot!($name, $value);
        })
    };
}

/// The table, as the course shows it, for an image no container uses and a
/// volume with a file in it.
#[test]
fn system_df_table() {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_fixture("fixture:1.0");
    t.run(["volume", "create", "spare"]).ok();
    std::fs::write(t.root().join("volumes/spare/_data/x"), "0123456789").unwrap();
    snap!(t, "system_df", t.run(["system", "df"]).ok().stdout);
}

#[test]
fn system_df_shows_use_and_what_can_go() {
    let t = ctx();
    let df0 = df(&t);
    assert_eq!(df0["Images"]["TotalCount"], "1");
    assert_eq!(df0["Images"]["Active"], "0");
    let image_size = df0["Images"]["Size"].as_str().unwrap().to_string();
    assert_eq!(
        df0["Images"]["Reclaimable"],
        format!("{image_size} (100%)"),
        "an image no container uses can all go"
    );
    assert_eq!(df0["Containers"]["TotalCount"], "0");

    t.run([
        "run",
        "--name",
        "done",
        "-v",
        "data:/data",
        "busybox",
        "sh",
        "-c",
        "echo 12345 > /data/x; echo 1234567 > /f",
    ])
    .ok();
    t.run(["run", "-d", "--name", "up", "busybox", "sleep", "60"])
        .ok();
    t.run(["volume", "create", "spare"]).ok();
    let d = df(&t);
    assert_eq!(d["Images"]["Active"], "1");
    assert_eq!(d["Images"]["Reclaimable"], "0B (0%)");
    assert_eq!(d["Containers"]["TotalCount"], "2");
    assert_eq!(d["Containers"]["Active"], "1");
    assert_eq!(d["Containers"]["Size"], "8B");
    assert_eq!(d["Containers"]["Reclaimable"], "8B (100%)");
    assert_eq!(d["Local Volumes"]["TotalCount"], "2");
    assert_eq!(d["Local Volumes"]["Active"], "1");
    assert_eq!(d["Local Volumes"]["Size"], "6B");
    assert_eq!(d["Local Volumes"]["Reclaimable"], "0B (0%)");
    assert_eq!(d["Build Cache"]["TotalCount"], "0");

    let r = t.run(["system", "df"]).ok();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]
    );
    assert!(lines[2].starts_with("Containers "), "{r}");
    let r = t.run(["system", "df", "-v"]).ok();
    for heading in [
        "Images space usage:",
        "Containers space usage:",
        "Local Volumes space usage:",
        "Build cache usage: 0B",
    ] {
        assert!(r.stdout.contains(heading), "{heading}: {r}");
    }
    assert!(
        r.stdout
            .lines()
            .any(|l| l.starts_with("data ") && l.ends_with(" 6B")),
        "{r}"
    );
    // ps -s measures the same writable layers.
    let r = t.run(["ps", "-a", "-s", "--filter", "name=done"]).ok();
    assert!(r.stdout.lines().next().unwrap().ends_with("SIZE"), "{r}");
    assert!(
        r.stdout.contains(&format!(" 8B (virtual {image_size})")),
        "{r}"
    );
    let r = t
        .run([
            "ps",
            "-a",
            "--filter",
            "name=done",
            "--format",
            "{{.LocalVolumes}} {{.Mounts}}",
        ])
        .ok();
    assert_eq!(r.stdout, "1 data\n");
    let info = json(&t.run(["info", "--format", "json"]).ok().stdout);
    assert_eq!(info["Containers"], 2);
    assert_eq!(info["ContainersRunning"], 1);
    assert_eq!(info["ContainersStopped"], 1);
    t.run(["rm", "-f", "up"]).ok();
}

#[test]
fn system_prune_keeps_what_is_in_use() {
    let t = ctx();
    t.run(["run", "-d", "--name", "up", "busybox", "sleep", "60"])
        .ok();
    t.run([
        "run", "--name", "done", "-v", "/anon", "-v", "named:/n", "busybox", "true",
    ])
    .ok();
    t.run(["network", "create", "idle-net"]).ok();
    // A dangling image, and build cache.
    t.run(["commit", "done", "tmp:1"]).ok();
    t.run(["commit", "done", "tmp:1"]).ok();
    let dir = t.work().join("ctx");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM busybox\nRUN echo built > /b\n",
    )
    .unwrap();
    t.run(["build", "-q", "-t", "built", dir.to_str().unwrap()])
        .ok();
    let anon: Vec<String> = t
        .run(["volume", "ls", "-q"])
        .ok()
        .stdout
        .lines()
        .filter(|v| *v != "named")
        .map(str::to_string)
        .collect();
    assert_eq!(anon.len(), 1, "{anon:?}");

    let r = t.run(["system", "prune"]).fails(1);
    assert!(r.stderr.contains("all stopped containers"), "{r}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "{r}");

    let r = t.run(["system", "prune", "-f"]).ok();
    let up = t.run(["inspect", "-f", "{{.Id}}", "up"]).ok();
    assert!(r.stdout.starts_with("Deleted Containers:\n"), "{r}");
    assert!(
        !r.stdout.contains(up.stdout.trim()),
        "the running one stays: {r}"
    );
    assert!(r.stdout.contains("Deleted Networks:\nidle-net\n"), "{r}");
    assert!(
        r.stdout.contains("Deleted Images:\ndeleted: sha256:"),
        "{r}"
    );
    assert!(!r.stdout.contains("Deleted Volumes:"), "{r}");
    // The cache backs the image `built`: only -a takes it.
    assert!(!r.stdout.contains("Deleted build cache objects:"), "{r}");
    assert_eq!(t.run(["ps", "-aq"]).ok().stdout.lines().count(), 1);
    assert_eq!(t.run(["volume", "ls", "-q"]).ok().stdout.lines().count(), 2);

    // The label filters reach the volumes too.
    let r = t
        .run([
            "system",
            "prune",
            "-f",
            "--volumes",
            "--filter",
            "label=nosuch",
        ])
        .ok();
    assert!(!r.stdout.contains("Deleted Volumes:"), "{r}");
    assert_eq!(t.run(["volume", "ls", "-q"]).ok().stdout.lines().count(), 2);

    let r = t.run(["system", "prune", "-f", "--volumes"]).ok();
    assert!(
        r.stdout
            .contains(&format!("Deleted Volumes:\n{}\n", anon[0])),
        "{r}"
    );
    assert_eq!(t.run(["volume", "ls", "-q"]).ok().stdout, "named\n");

    let r = t.run(["system", "prune", "-a", "-f"]).ok();
    assert!(r.stdout.contains("untagged: built:latest\n"), "{r}");
    assert!(r.stdout.contains("untagged: tmp:1\n"), "{r}");
    assert!(r.stdout.contains("Deleted build cache objects:\n"), "{r}");
    // busybox runs `up`: it stays, and so does `up`.
    let left = images(&t);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with("busybox:latest"), "{left:?}");
    assert_eq!(t.run(["ps", "-q"]).ok().stdout.lines().count(), 1);
    t.run(["system", "check", "--deep"]).ok();
    t.run(["rm", "-f", "up"]).ok();
}
