//! Several berth processes at once, and processes killed midway, never leave
//! the store inconsistent.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::Duration;

use berth_test::{busybox_rootfs_tar, json, TestContext};

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

/// A small root filesystem tar whose content is unique to `seed`.
fn small_rootfs(path: &Path, seed: &str) {
    let file = fs::File::create(path).expect("create tar");
    let mut b = tar::Builder::new(file);
    for dir in ["etc/", "srv/", "srv/data/"] {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(0);
        b.append_data(&mut h, dir, std::io::empty()).expect("dir");
    }
    let files = [
        ("etc/hostname", format!("{seed}\n")),
        ("srv/data/seed.txt", format!("seed={seed}\n").repeat(50)),
        ("srv/readme", format!("image built for {seed}\n")),
    ];
    for (name, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        h.set_mtime(0);
        b.append_data(&mut h, name, data.as_bytes()).expect("file");
    }
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_mode(0o777);
    h.set_size(0);
    h.set_mtime(0);
    b.append_link(&mut h, "srv/latest", "data/seed.txt")
        .expect("symlink");
    b.into_inner().expect("finish tar");
}

/// One berth invocation of a batch, and what the model does when it succeeds.
struct Job {
    args: Vec<OsString>,
    effect: Effect,
}

enum Effect {
    /// Read-only: nothing changes.
    None,
    /// `import`: the tag now names the image whose ID the command prints.
    Import(String),
    /// `tag SOURCE TARGET`: the target tag now names the source's image.
    AddTag(String, String),
    /// `rmi`: these tags are gone.
    RemoveTags(Vec<String>),
}

fn job<S: Into<OsString>>(args: impl IntoIterator<Item = S>, effect: Effect) -> Job {
    Job {
        args: args.into_iter().map(Into::into).collect(),
        effect,
    }
}

struct Finished {
    cmd: String,
    status: i32,
    stdout: String,
    stderr: String,
}

/// Starts every job at once, then waits for all; returns them in job order.
fn run_all(ctx: &TestContext, jobs: &[Job]) -> Vec<Finished> {
    let children: Vec<Child> = jobs
        .iter()
        .map(|j| {
            ctx.command(&j.args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn berth")
        })
        .collect();
    children
        .into_iter()
        .zip(jobs)
        .map(|(child, j)| {
            let out = child.wait_with_output().expect("wait berth");
            Finished {
                cmd: format!(
                    "berth {}",
                    j.args
                        .iter()
                        .map(|a| a.to_string_lossy())
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
                status: out.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            }
        })
        .collect()
}

/// `REPOSITORY:TAG` of every listed image (`<none>:<none>` for dangling ones).
fn listed_tags(ctx: &TestContext) -> BTreeSet<String> {
    let run = ctx.run(["images", "--format", "json"]).ok();
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v = json(l);
            format!(
                "{}:{}",
                v["Repository"].as_str().expect("Repository"),
                v["Tag"].as_str().expect("Tag")
            )
        })
        .collect()
}

fn dir_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect()
}

fn assert_consistent(ctx: &TestContext) {
    let run = ctx.run(["system", "check"]).ok();
    assert!(run.stdout.contains("is consistent"), "{run}");
    let run = ctx.run(["system", "check", "--deep"]).ok();
    assert!(run.stdout.contains("is consistent"), "{run}");
}

/// The chain ID (hex) of a one-layer image: its only diff ID.
fn only_layer(ctx: &TestContext, image: &str) -> String {
    let run = ctx.run(["inspect", image]).ok();
    let v = json(&run.stdout);
    let layers = v[0]["RootFS"]["Layers"].as_array().expect("RootFS.Layers");
    assert_eq!(layers.len(), 1, "{image}: {v}");
    let l = layers[0].as_str().expect("layer digest");
    l.strip_prefix("sha256:")
        .expect("sha256 digest")
        .to_string()
}

#[test]
fn parallel_imports_tags_and_removals_keep_the_store_consistent() {
    const ROUNDS: usize = 4;
    const UNIQUE: usize = 4;
    const BUSYBOX: usize = 2;

    let ctx = ctx();
    // Create the store once; concurrent first opens have a test of their own.
    ctx.run(["images", "-q"]).ok();

    let busybox = busybox_rootfs_tar();
    let shared = ctx.work().join("shared.tar");
    small_rootfs(&shared, "shared");

    // The model: every tag that should exist, and the ID each import printed.
    let mut expected: BTreeSet<String> = BTreeSet::new();
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();

    for r in 0..ROUNDS {
        let mut jobs: Vec<Job> = Vec::new();
        for i in 0..UNIQUE {
            let tar = ctx.work().join(format!("unique-{r}-{i}.tar"));
            small_rootfs(&tar, &format!("round {r} image {i}"));
            let tag = format!("uniq/r{r}:{i}");
            jobs.push(job(
                [OsString::from("import"), tar.into(), tag.clone().into()],
                Effect::Import(tag),
            ));
        }
        // The same content under several tags at once: one layer, raced for.
        for i in 0..BUSYBOX {
            let tag = format!("bb/r{r}:{i}");
            jobs.push(job(
                [OsString::from("import"), busybox.into(), tag.clone().into()],
                Effect::Import(tag),
            ));
        }
        // A layer whose only other user is removed in the same round.
        let tag = format!("shared/r{r}:latest");
        jobs.push(job(
            [
                OsString::from("import"),
                shared.clone().into(),
                tag.clone().into(),
            ],
            Effect::Import(tag),
        ));
        jobs.push(job(["images", "--format", "json"], Effect::None));
        if r >= 1 {
            let p = r - 1;
            // A second name for a surviving image.
            let source = format!("uniq/r{p}:0");
            let target = format!("tagged/r{r}:latest");
            jobs.push(job(
                ["tag".to_string(), source.clone(), target.clone()],
                Effect::AddTag(source, target),
            ));
            // Untagging an image's only tag deletes it; its layer is shared.
            let bb = format!("bb/r{p}:0");
            jobs.push(job(
                ["rmi".to_string(), bb.clone()],
                Effect::RemoveTags(vec![bb]),
            ));
            // The last user of the shared layer goes while the layer is
            // imported again.
            let sh = format!("shared/r{p}:latest");
            let sh_id = ids[&sh].clone();
            jobs.push(job(
                ["rmi".to_string(), "-f".to_string(), sh_id],
                Effect::RemoveTags(vec![sh]),
            ));
            // Force-removing by ID drops the image with its unique layer.
            let gone = format!("uniq/r{p}:2");
            let gone_id = ids[&gone].clone();
            jobs.push(job(
                ["rmi".to_string(), "-f".to_string(), gone_id],
                Effect::RemoveTags(vec![gone]),
            ));
            jobs.push(job(
                ["inspect".to_string(), format!("uniq/r{p}:1")],
                Effect::None,
            ));
        }
        if r >= 2 {
            // Untagging one of two tags leaves the image.
            let t = format!("tagged/r{}:latest", r - 1);
            jobs.push(job(
                ["rmi".to_string(), t.clone()],
                Effect::RemoveTags(vec![t]),
            ));
        }

        for (j, done) in jobs.iter().zip(run_all(&ctx, &jobs)) {
            if done.status != 0 {
                failures.push(format!(
                    "round {r}: `{}` exited {}\n--- stdout\n{}--- stderr\n{}",
                    done.cmd, done.status, done.stdout, done.stderr
                ));
                continue;
            }
            match &j.effect {
                Effect::None => {}
                Effect::Import(tag) => {
                    let id = done.stdout.trim().to_string();
                    assert!(
                        id.starts_with("sha256:") && id.len() == 71,
                        "`{}` printed {:?}",
                        done.cmd,
                        done.stdout
                    );
                    ids.insert(tag.clone(), id);
                    expected.insert(tag.clone());
                }
                Effect::AddTag(source, tag) => {
                    let id = ids[source].clone();
                    ids.insert(tag.clone(), id);
                    expected.insert(tag.clone());
                }
                Effect::RemoveTags(tags) => {
                    for t in tags {
                        expected.remove(t);
                    }
                }
            }
        }
        assert!(
            failures.is_empty(),
            "commands failed:\n{}",
            failures.join("\n")
        );
        assert_consistent(&ctx);
    }

    assert_eq!(
        listed_tags(&ctx),
        expected,
        "images lists exactly the model's tags"
    );
    let leftovers = dir_names(&ctx.root().join("tmp"));
    assert!(leftovers.is_empty(), "tmp/ is not empty: {leftovers:?}");
    let partial: Vec<String> = dir_names(&ctx.root().join("blobs/sha256"))
        .into_iter()
        .filter(|n| n.starts_with(".tmp"))
        .collect();
    assert!(partial.is_empty(), "half-written blobs: {partial:?}");

    // Exactly the layers of the surviving images remain: removed images freed
    // theirs, and no layer a surviving image needs was collected.
    let wanted_layers: BTreeSet<String> = expected.iter().map(|t| only_layer(&ctx, t)).collect();
    assert_eq!(dir_names(&ctx.root().join("layers")), wanted_layers);

    // Every surviving image can be saved (in parallel: readers only) ...
    let saves: Vec<Job> = expected
        .iter()
        .map(|t| {
            let out = ctx
                .work()
                .join(format!("save-{}.tar", t.replace([':', '/'], "-")));
            job(
                [OsString::from("save"), "-o".into(), out.into(), t.into()],
                Effect::None,
            )
        })
        .collect();
    for done in run_all(&ctx, &saves) {
        assert_eq!(
            done.status, 0,
            "`{}` failed:\n{}{}",
            done.cmd, done.stdout, done.stderr
        );
    }
    // ... and all of them together load into a new store as the same images.
    let all = ctx.work().join("all.tar");
    let mut args: Vec<OsString> = vec!["save".into(), "-o".into(), all.clone().into()];
    args.extend(expected.iter().map(OsString::from));
    ctx.run(&args).ok();
    let fresh = self::ctx();
    fresh
        .run(["load".as_ref(), "-i".as_ref(), all.as_os_str()])
        .ok();
    assert_eq!(listed_tags(&fresh), expected);
    for t in &expected {
        let run = fresh.run(["inspect", "--format", "{{.Id}}", t]).ok();
        assert_eq!(run.stdout.trim(), ids[t.as_str()].as_str(), "{t}");
    }
    assert_consistent(&fresh);
}

/// Several processes opening a data root that does not exist yet.
///
/// Regression: `PRAGMA journal_mode=WAL` on a new database file does not wait
/// for the busy timeout, so some of them failed with `database is locked`.
#[test]
fn concurrent_first_open_of_a_fresh_root() {
    let tar = busybox_rootfs_tar();
    for attempt in 0..25 {
        let ctx = ctx();
        let jobs: Vec<Job> = (0..8)
            .map(|i| {
                let tag = format!("first/open:{i}");
                job(
                    [OsString::from("import"), tar.into(), tag.clone().into()],
                    Effect::Import(tag),
                )
            })
            .collect();
        let failed: Vec<String> = run_all(&ctx, &jobs)
            .into_iter()
            .filter(|d| d.status != 0)
            .map(|d| format!("`{}` exited {}: {}", d.cmd, d.status, d.stderr))
            .collect();
        assert!(
            failed.is_empty(),
            "attempt {attempt}: {}",
            failed.join("\n")
        );
        assert_eq!(listed_tags(&ctx).len(), 8);
        assert_consistent(&ctx);
    }
}

/// Writes a tar header for one file of `size` bytes, then `written` bytes of
/// its content, into a running berth's stdin; then kills berth with SIGKILL
/// while stdin is still open, so the input is never complete.
fn kill_midway(ctx: &TestContext, args: &[&str], member: &str, size: u64, written: u64) {
    let mut child = ctx
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn berth");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut h = tar::Header::new_gnu();
    h.set_path(member).expect("member path");
    h.set_mode(0o644);
    h.set_size(size);
    h.set_mtime(0);
    h.set_cksum();
    let mut fed = stdin.write_all(h.as_bytes());
    // Not all zeros, so nothing can treat it as an end-of-archive block.
    let chunk: Vec<u8> = (0..1usize << 20).map(|i| (i % 251) as u8 + 1).collect();
    let mut sent = 0;
    while fed.is_ok() && sent < written {
        fed = stdin.write_all(&chunk);
        sent += chunk.len() as u64;
    }
    // Every write returned: berth has consumed all but a pipe buffer of it
    // and is blocked reading the rest, which never comes.
    if let Err(e) = fed {
        let out = child.wait_with_output().expect("wait berth");
        panic!(
            "berth {args:?} stopped reading its input ({e}):\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.kill().expect("SIGKILL berth");
    let out = child.wait_with_output().expect("wait berth");
    drop(stdin);
    assert_eq!(
        out.status.signal(),
        Some(9),
        "berth {args:?} was not killed: {:?}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn import_killed_midway_leaves_no_trace() {
    let ctx = ctx();
    let keep = ctx.import_busybox("keep:1");
    let before = listed_tags(&ctx);

    // A 200 MiB file, killed after 48 MiB of it went in.
    kill_midway(
        &ctx,
        &["import", "-", "half:done"],
        "big/file.bin",
        200 << 20,
        48 << 20,
    );
    assert_consistent(&ctx);
    assert_eq!(
        listed_tags(&ctx),
        before,
        "the half-imported tag is not listed"
    );
    ctx.run(["inspect", "half:done"]).fails(1);
    let run = ctx.run(["inspect", "--format", "{{.Id}}", "keep:1"]).ok();
    assert_eq!(run.stdout.trim(), keep);

    // The same name imports fine afterwards.
    let tar = ctx.work().join("small.tar");
    small_rootfs(&tar, "after the crash");
    let run = ctx
        .run(["import".as_ref(), tar.as_os_str(), "half:done".as_ref()])
        .ok();
    let id = run.stdout.trim().to_string();
    let run = ctx
        .run(["inspect", "--format", "{{.Id}}", "half:done"])
        .ok();
    assert_eq!(run.stdout.trim(), id);
    assert!(listed_tags(&ctx).contains("half:done"));
    assert_consistent(&ctx);

    // The killed process's staging is garbage, collected by the next removal.
    ctx.run(["rmi", "half:done"]).ok();
    let leftovers = dir_names(&ctx.root().join("tmp"));
    assert!(leftovers.is_empty(), "tmp/ is not empty: {leftovers:?}");
    assert_consistent(&ctx);
    let saved = ctx.work().join("keep.tar");
    ctx.run([
        "save".as_ref(),
        "-o".as_ref(),
        saved.as_os_str(),
        "keep:1".as_ref(),
    ])
    .ok();
}

#[test]
fn load_killed_midway_leaves_no_trace() {
    let ctx = ctx();
    ctx.import_busybox("keep:1");
    let before = listed_tags(&ctx);
    kill_midway(
        &ctx,
        &["load"],
        "blobs/sha256/0000000000000000000000000000000000000000000000000000000000000000",
        200 << 20,
        48 << 20,
    );
    assert_consistent(&ctx);
    assert_eq!(listed_tags(&ctx), before);
    // A complete archive loads afterwards.
    let saved = ctx.work().join("keep.tar");
    ctx.run([
        "save".as_ref(),
        "-o".as_ref(),
        saved.as_os_str(),
        "keep:1".as_ref(),
    ])
    .ok();
    ctx.run(["rmi", "keep:1"]).ok();
    let run = ctx
        .run(["load".as_ref(), "-i".as_ref(), saved.as_os_str()])
        .ok();
    assert_eq!(run.stdout, "Loaded image: keep:1\n");
    assert_consistent(&ctx);
}

/// Kills imports at many different moments (while reading, unpacking,
/// committing, or after finishing): whatever the moment, the store stays
/// consistent and the tag either names a complete image or does not exist.
#[test]
fn import_killed_at_any_moment_leaves_the_store_consistent() {
    let ctx = ctx();
    ctx.run(["images", "-q"]).ok();
    let tar: PathBuf = busybox_rootfs_tar().to_path_buf();
    for attempt in 0..12u64 {
        let tag = format!("killed/at:{attempt}");
        let mut child = ctx
            .command(["import".as_ref(), tar.as_os_str(), tag.as_ref()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn berth");
        // The moment varies; the checks below hold for every moment.
        std::thread::sleep(Duration::from_millis(attempt * 3));
        let _ = child.kill();
        child.wait().expect("wait berth");

        assert_consistent(&ctx);
        if listed_tags(&ctx).contains(&tag) {
            let saved = ctx.work().join("killed.tar");
            ctx.run([
                "save".as_ref(),
                "-o".as_ref(),
                saved.as_os_str(),
                tag.as_ref(),
            ])
            .ok();
        } else {
            ctx.run(["inspect", &tag]).fails(1);
        }
        // The name can always be (re)imported afterwards.
        ctx.run(["import".as_ref(), tar.as_os_str(), tag.as_ref()])
            .ok();
        assert_consistent(&ctx);
    }
    // Removing everything leaves no layer, blob or staging behind. By ID: an
    // import killed after its commit left an image that the re-import then
    // untagged (`<none>:<none>`, as in Docker).
    let ids: BTreeSet<String> = ctx
        .run(["images", "-a", "-q", "--no-trunc"])
        .ok()
        .stdout
        .lines()
        .map(str::to_string)
        .collect();
    let mut args = vec!["rmi".to_string(), "-f".to_string()];
    args.extend(ids);
    ctx.run(&args).ok();
    assert!(listed_tags(&ctx).is_empty());
    assert_consistent(&ctx);
    for dir in ["tmp", "layers", "blobs/sha256"] {
        // Temporary files of killed writers are garbage too: their names
        // carry the writer's PID, so the collection above removed them.
        let left = dir_names(&ctx.root().join(dir));
        assert!(left.is_empty(), "{dir}/ is not empty: {left:?}");
    }
    let stray: Vec<String> = dir_names(ctx.root())
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(
        stray.is_empty(),
        "temporary files left in the root: {stray:?}"
    );
}
