//! `berth build` end to end on busybox bases: instructions, the cache rules,
//! multi-stage, mounts, outputs, the report and policy, failures.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_test::{json, Run, TestContext};

fn ctx() -> TestContext {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox");
    t
}

/// Writes `files` (path, content) under a new directory of the test's work dir.
fn context(t: &TestContext, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = t.work().join(name);
    for (p, data) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn build(t: &TestContext, dir: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&str> = vec!["build", "--progress", "plain"];
    args.extend_from_slice(extra);
    let d = dir.to_str().unwrap();
    args.push(d);
    t.run(args)
}

fn config(t: &TestContext, image: &str) -> serde_json::Value {
    json(&t.run(["image", "inspect", image]).ok().stdout)[0]["Config"].clone()
}

fn image_id(t: &TestContext, image: &str) -> String {
    t.run(["image", "inspect", "--format", "{{.Id}}", image])
        .ok()
        .stdout
        .trim()
        .to_string()
}

/// The `#N [...] NAME` steps that were and were not cached.
fn cached_steps(r: &Run) -> (Vec<String>, Vec<String>) {
    let mut names = std::collections::BTreeMap::new();
    let mut cached = Vec::new();
    for l in r.stderr.lines() {
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let Some((id, text)) = rest.split_once(' ') else {
            continue;
        };
        if text.starts_with('[') && !text.starts_with("[internal]") {
            names.insert(id.to_string(), text.to_string());
        }
        if text == "CACHED" {
            cached.push(id.to_string());
        }
    }
    let mut hit = Vec::new();
    let mut miss = Vec::new();
    for (id, name) in names {
        if name.contains("FROM ") {
            continue;
        }
        if cached.contains(&id) {
            hit.push(name);
        } else {
            miss.push(name);
        }
    }
    (hit, miss)
}

fn run_in(t: &TestContext, image: &str, script: &str) -> String {
    t.run(["run", "--rm", "--entrypoint", "sh", image, "-c", script])
        .ok()
        .stdout
}

#[test]
fn metadata_instructions_set_the_config() {
    let t = ctx();
    let dir = context(
        &t,
        "meta",
        &[(
            "Dockerfile",
            r#"FROM busybox
ARG VERSION=1.2
ENV APP_HOME=/srv/app VERSION=$VERSION
WORKDIR $APP_HOME
WORKDIR sub
USER nobody:nogroup
EXPOSE 80 53/udp
LABEL org.opencontainers.image.version=$VERSION maintainer="me"
VOLUME ["/data", "/logs"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=2 CMD wget -q localhost || exit 1
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/echo"]
CMD hello world
MAINTAINER someone
"#,
        )],
    );
    build(&t, &dir, &["-t", "meta:1", "--label", "extra=yes"]).ok();
    let c = config(&t, "meta:1");
    assert_eq!(c["User"], "nobody:nogroup");
    assert_eq!(c["WorkingDir"], "/srv/app/sub");
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "APP_HOME=/srv/app",
            "VERSION=1.2"
        ])
    );
    assert_eq!(
        c["ExposedPorts"],
        serde_json::json!({"53/udp": {}, "80/tcp": {}})
    );
    assert_eq!(c["Labels"]["org.opencontainers.image.version"], "1.2");
    assert_eq!(c["Labels"]["maintainer"], "me");
    assert_eq!(c["Labels"]["extra"], "yes");
    assert_eq!(c["Volumes"], serde_json::json!({"/data": {}, "/logs": {}}));
    assert_eq!(c["StopSignal"], "SIGQUIT");
    assert_eq!(c["Healthcheck"]["Test"][0], "CMD-SHELL");
    assert_eq!(c["Healthcheck"]["Interval"], 30_000_000_000u64);
    assert_eq!(c["Healthcheck"]["Retries"], 2);
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/echo"]));
    // The shell form uses the SHELL in force.
    assert_eq!(
        c["Cmd"],
        serde_json::json!(["/bin/sh", "-ec", "hello world"])
    );
    let full = json(&t.run(["image", "inspect", "meta:1"]).ok().stdout)[0].clone();
    assert_eq!(full["Author"], "someone");
    // WORKDIR made the directories.
    let out = t
        .run([
            "run",
            "--rm",
            "--entrypoint",
            "sh",
            "meta:1",
            "-c",
            "pwd; id -u",
        ])
        .ok()
        .stdout;
    assert_eq!(out, "/srv/app/sub\n65534\n");
    // The image runs: ENTRYPOINT + CMD.
    let out = t.run(["run", "--rm", "meta:1"]).ok().stdout;
    assert_eq!(out, "/bin/sh -ec hello world\n");
}

#[test]
fn run_shell_exec_and_heredoc_forms() {
    let t = ctx();
    let dir = context(
        &t,
        "runs",
        &[(
            "Dockerfile",
            "FROM busybox\n\
             ENV WHO=world\n\
             RUN echo \"hello $WHO\" > /shell.txt\n\
             RUN [\"/bin/sh\", \"-c\", \"echo exec $WHO > /exec.txt\"]\n\
             RUN <<EOT\n\
             echo one > /heredoc.txt\n\
             echo two >> /heredoc.txt\n\
             EOT\n\
             RUN <<EOT\n\
             #!/bin/sh -e\n\
             echo \"script $0\" > /script.txt\n\
             EOT\n\
             RUN cat <<A > /inline.txt\n\
             inline $WHO\n\
             A\n\
             COPY <<EOF /copied.txt\n\
             copied $WHO\n\
             EOF\n\
             SHELL [\"/bin/sh\", \"-c\", \"echo shell-changed >> /shells.txt; eval \\\"$1\\\"\", \"--\"]\n\
             RUN true\n",
        )],
    );
    let r = build(&t, &dir, &["-t", "runs"]).ok();
    assert!(r.stderr.contains("RUN echo \"hello $WHO\""), "{r}");
    let out = run_in(
        &t,
        "runs",
        "cat /shell.txt /exec.txt /heredoc.txt /script.txt /inline.txt /copied.txt /shells.txt; ls /dev/pipes 2>&1 | wc -l",
    );
    assert_eq!(
        out,
        "hello world\nexec world\none\ntwo\nscript /dev/pipes/EOT\ninline world\ncopied world\nshell-changed\n1\n"
    );
}

#[test]
fn run_output_streams_and_a_failed_step_leaves_no_image() {
    let t = ctx();
    let dir = context(
        &t,
        "fail",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo step-output; echo step-error >&2; exit 3\n",
        )],
    );
    let r = build(&t, &dir, &["-t", "broken:1"]).fails(1);
    assert!(r.stderr.contains("step-output"), "{r}");
    assert!(r.stderr.contains("step-error"), "{r}");
    assert!(
        r.stderr.contains(
            "process \"/bin/sh -c echo step-output; echo step-error >&2; exit 3\" did not complete successfully: exit code: 3"
        ),
        "{r}"
    );
    let images = t
        .run(["images", "--format", "{{.Repository}}:{{.Tag}}"])
        .ok()
        .stdout;
    assert_eq!(images, "busybox:latest\n", "no tag, no dangling image");
    assert_eq!(
        t.run(["images", "-q", "--filter", "dangling=true"])
            .ok()
            .stdout,
        ""
    );

    // A command that is not there fails the step, with the runtime's reason.
    let dir = context(
        &t,
        "missing",
        &[("Dockerfile", "FROM busybox\nRUN [\"nosuchcommand\"]\n")],
    );
    let r = build(&t, &dir, &[]).fails(1);
    assert!(r.stderr.contains("executable file not found"), "{r}");
    // An unknown base image, on a loopback registry that is not there: it
    // is pulled (as Docker does), and that fails with its name.
    let dir = context(
        &t,
        "nobase",
        &[("Dockerfile", "FROM 127.0.0.1:9/nosuch/image:1\n")],
    );
    let r = build(&t, &dir, &[]).fails(1);
    assert!(
        r.stderr.contains(
            "base image \"127.0.0.1:9/nosuch/image:1\" is not here and could not be pulled"
        ),
        "{r}"
    );
    // A Dockerfile error names the file and line.
    let dir = context(&t, "bad", &[("Dockerfile", "FROM busybox\nCOPY\n")]);
    let r = build(&t, &dir, &[]).fails(1);
    assert!(r.stderr.contains("Dockerfile"), "{r}");
}

#[test]
fn identical_rebuild_is_fully_cached_with_the_same_id() {
    let t = ctx();
    let dir = context(
        &t,
        "same",
        &[
            ("a.txt", "a\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /\nRUN date +%s%N > /stamp\nWORKDIR /w\nCMD [\"cat\", \"/stamp\"]\n",
            ),
        ],
    );
    build(&t, &dir, &["-t", "same:1"]).ok();
    let first = image_id(&t, "same:1");
    let r = build(&t, &dir, &["-t", "same:2"]).ok();
    let (hit, miss) = cached_steps(&r);
    assert!(miss.is_empty(), "everything cached: {r}");
    assert_eq!(hit.len(), 3, "{r}");
    assert_eq!(image_id(&t, "same:2"), first, "same image ID");
    // -q prints only the ID; --iidfile writes it.
    let iid = t.work().join("iid");
    let r = t
        .run([
            "build",
            "-q",
            "--iidfile",
            iid.to_str().unwrap(),
            dir.to_str().unwrap(),
        ])
        .ok();
    assert_eq!(r.stdout.trim(), first);
    assert_eq!(r.stderr, "");
    assert_eq!(fs::read_to_string(&iid).unwrap(), first);
    // --no-cache runs everything.
    let r = build(&t, &dir, &["--no-cache", "-t", "same:3"]).ok();
    let (hit, miss) = cached_steps(&r);
    assert!(hit.is_empty(), "{r}");
    assert_eq!(miss.len(), 3);
    assert_ne!(image_id(&t, "same:3"), first);
}

#[test]
fn a_changed_file_misses_from_the_first_copy_that_includes_it() {
    let t = ctx();
    let dir = context(
        &t,
        "change",
        &[
            ("deps.txt", "deps\n"),
            ("src/main.c", "int main;\n"),
            ("notes.log", "ignored\n"),
            ("keep.log", "kept\n"),
            (".dockerignore", "*.log\n!keep.log\n"),
            (
                "Dockerfile",
                "FROM busybox\nRUN echo base > /base\nCOPY deps.txt /app/\nRUN cat /app/deps.txt > /deps-built\nCOPY . /app/\nRUN ls /app > /listing\n",
            ),
        ],
    );
    build(&t, &dir, &["-t", "change"]).ok();
    assert_eq!(
        run_in(&t, "change", "cat /listing"),
        "Dockerfile\ndeps.txt\nkeep.log\nsrc\n",
        ".dockerignore applies, with its ! exception"
    );

    // An ignored file changes: nothing misses.
    fs::write(dir.join("notes.log"), "changed\n").unwrap();
    let (_, miss) = cached_steps(&build(&t, &dir, &[]).ok());
    assert!(miss.is_empty(), "{miss:?}");

    // A file only the second COPY takes: that COPY and what follows run.
    fs::write(dir.join("src/main.c"), "int main(void);\n").unwrap();
    let (hit, miss) = cached_steps(&build(&t, &dir, &[]).ok());
    assert_eq!(hit.len(), 3, "{hit:?}");
    assert_eq!(miss.len(), 2, "{miss:?}");
    assert!(miss[0].contains("COPY . /app/"), "{miss:?}");

    // The re-included keep.log is part of the context.
    fs::write(dir.join("keep.log"), "kept 2\n").unwrap();
    let (_, miss) = cached_steps(&build(&t, &dir, &[]).ok());
    assert_eq!(miss.len(), 2, "{miss:?}");

    // A file the first COPY takes: everything from it runs.
    fs::write(dir.join("deps.txt"), "deps 2\n").unwrap();
    let (hit, miss) = cached_steps(&build(&t, &dir, &[]).ok());
    assert_eq!(hit.len(), 1, "{hit:?}");
    assert_eq!(miss.len(), 4, "{miss:?}");
}

#[test]
fn a_build_arg_invalidates_only_the_steps_that_use_it() {
    let t = ctx();
    let dir = context(
        &t,
        "args",
        &[
            ("f.txt", "f\n"),
            (
                "Dockerfile",
                "ARG BASE=busybox\nFROM $BASE\nRUN echo before > /before\nARG V=1\nCOPY f.txt /\nRUN echo \"v=$V\" > /v\nRUN echo \"$TARGETARCH\" > /arch\nARG TARGETARCH\nRUN echo \"$TARGETARCH\" > /arch2\n",
            ),
        ],
    );
    build(&t, &dir, &["-t", "args"]).ok();
    assert_eq!(run_in(&t, "args", "cat /v"), "v=1\n");
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    };
    assert_eq!(
        run_in(&t, "args", "cat /arch /arch2"),
        format!("\n{arch}\n"),
        "automatic platform args need an ARG"
    );
    let r = build(&t, &dir, &["--build-arg", "V=2", "-t", "args"]).ok();
    let (hit, miss) = cached_steps(&r);
    assert_eq!(hit.len(), 2, "RUN before the ARG and the COPY: {hit:?}");
    assert_eq!(miss.len(), 3, "{miss:?}");
    assert_eq!(run_in(&t, "args", "cat /v"), "v=2\n");
    // The environment of the image does not keep ARGs.
    let env = config(&t, "args")["Env"].to_string();
    assert!(!env.contains("V=2"), "{env}");
    // An unused build arg is reported.
    let r = build(&t, &dir, &["--build-arg", "UNUSED=1"]).ok();
    assert!(
        r.stderr
            .contains("One or more build-args [UNUSED] were not consumed"),
        "{r}"
    );
}

#[test]
fn cache_records_are_shared_by_tags_and_pruned_by_builder_prune() {
    let t = ctx();
    let dir = context(
        &t,
        "prune",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN head -c 100000 /dev/zero > /blob\n",
        )],
    );
    build(&t, &dir, &["-t", "one"]).ok();
    let (hit, _) = cached_steps(&build(&t, &dir, &["-t", "two"]).ok());
    assert_eq!(hit.len(), 1);
    // Images still use the layer: the default prune keeps it.
    let r = t.run(["builder", "prune", "-f"]).ok();
    assert!(r.stdout.contains("Total reclaimed space: 0B"), "{r}");
    t.run(["rmi", "one", "two"]).ok();
    let r = t.run(["builder", "prune", "-af"]).ok();
    assert!(r.stdout.contains("Deleted build cache objects:"), "{r}");
    assert!(!r.stdout.contains("Total reclaimed space: 0B"), "{r}");
    let (hit, miss) = cached_steps(&build(&t, &dir, &[]).ok());
    assert!(hit.is_empty() && miss.len() == 1, "{hit:?} {miss:?}");
}

#[test]
fn multi_stage_builds_only_what_the_target_needs() {
    let t = ctx();
    let dir = context(
        &t,
        "stages",
        &[(
            "Dockerfile",
            "FROM busybox AS build\n\
             RUN mkdir /out && echo artifact > /out/app.jar && echo build-ran\n\
             FROM busybox AS unused\n\
             RUN echo UNUSED-STAGE-RAN\n\
             FROM build AS test\n\
             RUN echo TEST-STAGE-RAN\n\
             FROM busybox\n\
             COPY --from=build /out/app.jar /app/\n\
             COPY --from=0 /out /out-by-index\n\
             COPY --from=busybox /etc/passwd /passwd-from-image\n\
             CMD [\"cat\", \"/app/app.jar\"]\n",
        )],
    );
    let r = build(&t, &dir, &["-t", "app"]).ok();
    assert!(r.stderr.contains("build-ran"), "{r}");
    assert!(!r.stderr.contains("UNUSED-STAGE-RAN"), "{r}");
    assert!(!r.stderr.contains("TEST-STAGE-RAN"), "{r}");
    assert!(r.stderr.contains("[build 2/2] RUN"), "{r}");
    assert_eq!(t.run(["run", "--rm", "app"]).ok().stdout, "artifact\n");
    assert_eq!(
        run_in(
            &t,
            "app",
            "cat /out-by-index/app.jar; head -1 /passwd-from-image; ls /out 2>&1 | wc -l"
        ),
        "artifact\nroot:x:0:0:root:/root:/bin/sh\n1\n"
    );
    // --target stops at a stage, and builds what it needs.
    let r = build(&t, &dir, &["--target", "test", "-t", "tested"]).ok();
    assert!(r.stderr.contains("TEST-STAGE-RAN"), "{r}");
    assert!(!r.stderr.contains("UNUSED-STAGE-RAN"), "{r}");
    assert_eq!(run_in(&t, "tested", "cat /out/app.jar"), "artifact\n");
    let r = build(&t, &dir, &["--target", "nosuch"]).fails(1);
    assert!(r.stderr.contains("nosuch"), "{r}");
}

#[test]
fn independent_stages_run_at_the_same_time() {
    let t = ctx();
    // Each stage waits for the other's marker in a shared cache mount: they
    // finish only if both run at once.
    let dir = context(
        &t,
        "parallel",
        &[(
            "Dockerfile",
            "FROM busybox AS a\n\
             RUN --mount=type=cache,target=/sync,id=sync touch /sync/a; i=0; while [ ! -e /sync/b ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -e /sync/b\n\
             FROM busybox AS b\n\
             RUN --mount=type=cache,target=/sync,id=sync touch /sync/b; i=0; while [ ! -e /sync/a ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; test -e /sync/a\n\
             FROM busybox\n\
             COPY --from=a /etc/passwd /a\n\
             COPY --from=b /etc/passwd /b\n",
        )],
    );
    build(&t, &dir, &[]).ok();
}

/// The files of an image, via `--output type=local`.
fn rootfs(t: &TestContext, dir: &Path, tag: &str) -> PathBuf {
    let out = t.work().join(format!("rootfs-{tag}"));
    let dest = format!("type=local,dest={}", out.display());
    build(t, dir, &["-t", tag, "--output", &dest]).ok();
    out
}

fn mode(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn owner(p: &Path) -> (u32, u32) {
    let m = fs::symlink_metadata(p).unwrap();
    (m.uid(), m.gid())
}

#[test]
fn copy_follows_docker_rules() {
    let t = ctx();
    let dir = context(
        &t,
        "copy",
        &[
            ("a.txt", "a\n"),
            ("b.txt", "b\n"),
            ("c.md", "c\n"),
            ("tree/x/y.txt", "y\n"),
            ("tree/skip.tmp", "skip\n"),
            ("run.sh", "#!/bin/sh\n"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group && echo 'web:x:2000:' >> /etc/group\n\
                 WORKDIR /w\n\
                 COPY a.txt .\n\
                 COPY a.txt renamed.txt\n\
                 COPY *.txt /multi/\n\
                 COPY tree /contents/\n\
                 COPY tree/ /contents2\n\
                 COPY --exclude=*.tmp tree /excluded/\n\
                 COPY --chown=app a.txt /owned/\n\
                 COPY --chown=app:web b.txt /owned/\n\
                 COPY --chown=1234:5678 c.md /owned/\n\
                 COPY --chmod=0755 run.sh /bin/run\n\
                 COPY --link c.md /linked/\n\
                 COPY --parents tree/x/y.txt /parents/\n",
            ),
        ],
    );
    fs::set_permissions(dir.join("run.sh"), fs::Permissions::from_mode(0o600)).unwrap();
    let root = rootfs(&t, &dir, "copy");
    assert_eq!(fs::read_to_string(root.join("w/a.txt")).unwrap(), "a\n");
    assert_eq!(
        fs::read_to_string(root.join("w/renamed.txt")).unwrap(),
        "a\n"
    );
    assert!(root.join("multi/a.txt").is_file() && root.join("multi/b.txt").is_file());
    assert!(!root.join("multi/c.md").exists());
    // A directory source copies its contents.
    assert_eq!(
        fs::read_to_string(root.join("contents/x/y.txt")).unwrap(),
        "y\n"
    );
    assert!(root.join("contents2/skip.tmp").is_file());
    assert!(!root.join("contents/tree").exists());
    assert!(root.join("excluded/x/y.txt").is_file());
    assert!(!root.join("excluded/skip.tmp").exists());
    // Root owns copies, unless --chown (names from the image's own files).
    assert_eq!(owner(&root.join("w/a.txt")), (0, 0));
    assert_eq!(owner(&root.join("owned/a.txt")), (1000, 1000));
    assert_eq!(owner(&root.join("owned/b.txt")), (1000, 2000));
    assert_eq!(owner(&root.join("owned/c.md")), (1234, 5678));
    assert_eq!(mode(&root.join("bin/run")), 0o755);
    assert_eq!(mode(&root.join("w/a.txt")), 0o644);
    assert_eq!(mode(&root.join("multi")), 0o755);
    assert!(root.join("linked/c.md").is_file());
    assert!(root.join("parents/tree/x/y.txt").is_file());

    // Several sources need a directory destination.
    let bad = context(
        &t,
        "copy-bad",
        &[
            ("a.txt", "a"),
            ("b.txt", "b"),
            ("Dockerfile", "FROM busybox\nCOPY a.txt b.txt /dest\n"),
        ],
    );
    let r = build(&t, &bad, &[]).fails(1);
    assert!(
        r.stderr.contains("must be a directory and end with a /"),
        "{r}"
    );
    // A missing source names itself.
    let bad = context(
        &t,
        "copy-missing",
        &[("Dockerfile", "FROM busybox\nCOPY nosuch.txt /\n")],
    );
    let r = build(&t, &bad, &[]).fails(1);
    assert!(
        r.stderr
            .contains("\"nosuch.txt\" not found in the build context"),
        "{r}"
    );
    // A name that is not in the image.
    let bad = context(
        &t,
        "copy-user",
        &[
            ("a", "a"),
            ("Dockerfile", "FROM busybox\nCOPY --chown=nosuch a /\n"),
        ],
    );
    let r = build(&t, &bad, &[]).fails(1);
    assert!(r.stderr.contains("no such user: nosuch"), "{r}");
}

#[test]
fn copy_never_writes_through_the_images_symlinks_to_the_host() {
    let t = ctx();
    let marker = t.work().join("host-target");
    fs::create_dir_all(&marker).unwrap();
    let df = format!(
        "FROM busybox\nRUN ln -s {} /escape\nCOPY a.txt /escape/\n",
        marker.display()
    );
    let dir = context(&t, "escape", &[("a.txt", "a"), ("Dockerfile", &df)]);
    let root = rootfs(&t, &dir, "escape");
    assert!(!marker.join("a.txt").exists(), "the host was written");
    assert!(root
        .join(marker.strip_prefix("/").unwrap())
        .join("a.txt")
        .is_file());
}

#[test]
fn add_extracts_local_archives_and_fetches_urls() {
    let t = ctx();
    let dir = context(&t, "add", &[("plain.txt", "p\n")]);
    // A gzip tar with an owner and a mode of its own.
    let tgz = fs::File::create(dir.join("bundle.tar.gz")).unwrap();
    let gz = flate2::write::GzEncoder::new(tgz, flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o751);
    h.set_uid(42);
    h.set_gid(43);
    h.set_size(4);
    b.append_data(&mut h, "pkg/tool", &b"tool"[..]).unwrap();
    b.into_inner().unwrap().finish().unwrap();

    // A loopback HTTP server with one file.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf);
            let body = b"downloaded\n";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nLast-Modified: Wed, 21 Oct 2015 07:28:00 GMT\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    let sum = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"downloaded\n"))
    );
    let df = format!(
        "FROM busybox\nADD bundle.tar.gz /opt/\nADD plain.txt /plain/\nADD --checksum={sum} http://127.0.0.1:{port}/files/data.txt /dl/\n"
    );
    fs::write(dir.join("Dockerfile"), df).unwrap();
    let root = rootfs(&t, &dir, "add");
    let tool = root.join("opt/pkg/tool");
    assert_eq!(fs::read_to_string(&tool).unwrap(), "tool");
    assert_eq!(mode(&tool), 0o751);
    assert_eq!(owner(&tool), (42, 43));
    assert!(root.join("plain/plain.txt").is_file());
    let dl = root.join("dl/data.txt");
    assert_eq!(fs::read_to_string(&dl).unwrap(), "downloaded\n");
    assert_eq!(mode(&dl), 0o600);
    assert_eq!(fs::metadata(&dl).unwrap().mtime(), 1_445_412_480);

    // A wrong checksum fails the step.
    let df = format!(
        "FROM busybox\nADD --checksum=sha256:{} http://127.0.0.1:{port}/files/data.txt /dl/\n",
        "0".repeat(64)
    );
    fs::write(dir.join("Dockerfile"), df).unwrap();
    let r = build(&t, &dir, &[]).fails(1);
    assert!(r.stderr.contains("checksum mismatch"), "{r}");
    server.join().unwrap();
}

#[test]
fn run_mounts_secrets_caches_binds_and_tmpfs() {
    let t = ctx();
    let secret = t.work().join("token");
    fs::write(&secret, "s3cr3t").unwrap();
    let dir = context(
        &t,
        "mounts",
        &[
            ("data/seen.txt", "seen\n"),
            ("data/hidden.txt", "hidden\n"),
            (".dockerignore", "data/hidden.txt\n"),
            (
                "Dockerfile",
                "FROM busybox\n\
                 RUN --mount=type=secret,id=token,required wc -c < /run/secrets/token > /secret-len\n\
                 RUN --mount=type=secret,id=token,env=TOKEN echo ${#TOKEN} > /env-len\n\
                 RUN --mount=type=cache,target=/var/cache/app echo run >> /var/cache/app/runs && wc -l < /var/cache/app/runs > /runs\n\
                 RUN --mount=type=bind,source=data,target=/mnt ls /mnt > /bound\n\
                 RUN --mount=type=tmpfs,target=/scratch touch /scratch/x && grep -q ' /scratch tmpfs' /proc/mounts\n",
            ),
        ],
    );
    let sec = format!("id=token,src={}", secret.display());
    build(&t, &dir, &["--secret", &sec, "-t", "mounts"]).ok();
    let out = run_in(&t, "mounts", "cat /secret-len /env-len /runs /bound; ls -a /run /var/cache/app /mnt /scratch 2>&1 | grep -c 'No such file'");
    assert_eq!(
        out, "6\n6\n1\nseen.txt\n4\n",
        "mount points are not left in the image"
    );
    // The secret is in no layer and no history.
    let save = t.work().join("mounts.tar");
    t.run(["save", "-o", save.to_str().unwrap(), "mounts"]).ok();
    let bytes = fs::read(&save).unwrap();
    assert!(
        !bytes.windows(6).any(|w| w == b"s3cr3t"),
        "the secret leaked into the image"
    );
    // The cache mount keeps its content across builds.
    build(&t, &dir, &["--secret", &sec, "--no-cache", "-t", "mounts"]).ok();
    assert_eq!(run_in(&t, "mounts", "cat /runs"), "2\n");
    // A required secret that is not given fails the step.
    let r = build(&t, &dir, &["--no-cache"]).fails(1);
    assert!(r.stderr.contains("secret token"), "{r}");
}

#[test]
fn run_network_none_has_only_loopback() {
    let t = ctx();
    let dir = context(
        &t,
        "net",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN --network=none sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' > /none\nRUN sed 1,2d /proc/net/dev | cut -d: -f1 | tr -d ' ' > /default\n",
        )],
    );
    build(&t, &dir, &["-t", "net"]).ok();
    assert_eq!(run_in(&t, "net", "cat /none"), "lo\n");
    let r = build(&t, &dir, &["--network", "none", "--no-cache", "-t", "net2"]).ok();
    drop(r);
    assert_eq!(run_in(&t, "net2", "cat /default"), "lo\n");
}

#[test]
fn onbuild_triggers_fire_in_child_builds() {
    let t = ctx();
    let parent = context(
        &t,
        "parent",
        &[(
            "Dockerfile",
            "FROM busybox\nONBUILD COPY marker.txt /from-child/\nONBUILD RUN touch /triggered\n",
        )],
    );
    build(&t, &parent, &["-t", "parent"]).ok();
    assert_eq!(
        config(&t, "parent")["OnBuild"],
        serde_json::json!(["COPY marker.txt /from-child/", "RUN touch /triggered"])
    );
    let child = context(
        &t,
        "child",
        &[
            ("marker.txt", "m\n"),
            ("Dockerfile", "FROM parent\nRUN test -e /triggered\n"),
        ],
    );
    build(&t, &child, &["-t", "child"]).ok();
    assert_eq!(run_in(&t, "child", "cat /from-child/marker.txt"), "m\n");
    assert!(
        config(&t, "child")["OnBuild"].is_null(),
        "triggers fire once"
    );
}

#[test]
fn source_date_epoch_gives_reproducible_images() {
    let t = ctx();
    let dir = context(
        &t,
        "repro",
        &[
            ("a.txt", "a\n"),
            (
                "Dockerfile",
                "FROM busybox\nCOPY a.txt /\nRUN echo built > /b.txt\n",
            ),
        ],
    );
    let ids: Vec<String> = (0..2)
        .map(|_| {
            t.run([
                "build",
                "-q",
                "--no-cache",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                dir.to_str().unwrap(),
            ])
            .ok()
            .stdout
            .trim()
            .to_string()
        })
        .collect();
    assert_eq!(ids[0], ids[1], "bit-for-bit the same config and layers");
    let created = t
        .run(["image", "inspect", "--format", "{{.Created}}", &ids[0]])
        .ok()
        .stdout;
    assert_eq!(created.trim(), "2023-11-14T22:13:20Z");
}

#[test]
fn dockerfile_and_context_from_stdin() {
    let t = ctx();
    // A Dockerfile on stdin: no context.
    let r = t
        .run_with_stdin(
            ["build", "-q", "-t", "stdin1", "-"],
            b"FROM busybox\nRUN echo hi > /hi\n",
        )
        .ok();
    assert!(r.stdout.starts_with("sha256:"), "{r}");
    assert_eq!(run_in(&t, "stdin1", "cat /hi"), "hi\n");
    // A tar context on stdin.
    let mut tar = tar::Builder::new(Vec::new());
    for (p, d) in [
        ("Dockerfile", "FROM busybox\nCOPY f.txt /\n"),
        ("f.txt", "from tar\n"),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(d.len() as u64);
        tar.append_data(&mut h, p, d.as_bytes()).unwrap();
    }
    let bytes = tar.into_inner().unwrap();
    t.run_with_stdin(["build", "-q", "-t", "stdin2", "-"], &bytes)
        .ok();
    assert_eq!(run_in(&t, "stdin2", "cat /f.txt"), "from tar\n");
    // -f picks another Dockerfile.
    let dir = context(
        &t,
        "other",
        &[(
            "build/Custom.Dockerfile",
            "FROM busybox\nLABEL picked=yes\n",
        )],
    );
    let f = dir.join("build/Custom.Dockerfile");
    build(&t, &dir, &["-f", f.to_str().unwrap(), "-t", "custom"]).ok();
    assert_eq!(config(&t, "custom")["Labels"]["picked"], "yes");
    let r = t.run(["build", "/nonexistent/dir"]).fails(125);
    assert!(
        r.stderr.contains("path \"/nonexistent/dir\" not found"),
        "{r}"
    );
}

#[test]
fn outputs_write_archives_peers_can_read() {
    let t = ctx();
    let dir = context(
        &t,
        "out",
        &[("Dockerfile", "FROM busybox\nRUN echo x > /x\n")],
    );
    let oci = t.work().join("image-oci.tar");
    let docker = t.work().join("image-docker.tar");
    build(
        &t,
        &dir,
        &[
            "-t",
            "out:1",
            "--output",
            &format!("type=oci,dest={}", oci.display()),
            "--output",
            &format!("type=docker-archive,dest={}", docker.display()),
        ],
    )
    .ok();
    assert!(oci.is_file() && docker.is_file());
    if berth_test::require_tool("skopeo") {
        let out = berth_test::sh(&format!(
            "skopeo inspect --config docker-archive:{} | grep -c '\"diff_ids\"'",
            docker.display()
        ));
        assert_eq!(out.trim(), "1");
    }
}

/// Files of the base image that the build deletes are named as the base's:
/// the advice is about the base, not about the step.
#[test]
fn the_report_tells_base_waste_from_the_builds_own() {
    let t = ctx();
    t.run([
        "run",
        "--name",
        "fat",
        "busybox",
        "sh",
        "-c",
        "head -c 3000000 /dev/zero > /cache.bin",
    ])
    .ok();
    t.run(["commit", "fat", "fat-base"]).ok();
    let dir = context(
        &t,
        "base-waste",
        &[(
            "Dockerfile",
            "FROM fat-base\nRUN rm /cache.bin\nRUN head -c 2000000 /dev/zero > /own && rm /own\n",
        )],
    );
    let r = build(&t, &dir, &["-t", "slimmed"]).ok();
    assert!(r.stderr.contains("wasted    3MB"), "{r}");
    assert!(
        r.stderr
            .contains("3MB of the base image is deleted or replaced by this build"),
        "{r}"
    );
    assert!(r.stderr.contains("/cache.bin (3MB)"), "{r}");
    assert!(!r.stderr.contains("remove files in the step"), "{r}");
}

#[test]
fn the_report_names_size_waste_user_and_secrets() {
    let t = ctx();
    let dir = context(
        &t,
        "report",
        &[
            ("id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----\n"),
            (
                "Dockerfile",
                "FROM busybox\nRUN head -c 2000000 /dev/zero > /big\nRUN rm /big\nCOPY id_rsa /root/.ssh/id_rsa\nRUN rm /root/.ssh/id_rsa\n",
            ),
        ],
    );
    let r = build(&t, &dir, &["-t", "report"]).ok();
    assert!(r.stderr.contains("Best practices:"), "{r}");
    assert!(r.stderr.contains("wasted    2MB"), "{r}");
    assert!(r.stderr.contains("/big (2MB)"), "{r}");
    assert!(r.stderr.contains("user      root"), "{r}");
    assert!(
        r.stderr.contains("/root/.ssh/id_rsa"),
        "a deleted key is still in its layer: {r}"
    );
    // --policy strict refuses it, and tags nothing.
    let r = build(&t, &dir, &["--policy", "strict", "-t", "strict"]).fails(1);
    assert!(r.stderr.contains("policy"), "{r}");
    assert!(t.run(["image", "inspect", "strict"]).status != 0);
    // --check reports without building.
    let r = t
        .run(["build", "--check", "-t", "checked", dir.to_str().unwrap()])
        .fails(1);
    assert!(
        r.stdout.contains("context-secret") || r.stdout.contains("root-user"),
        "{r}"
    );
    assert!(t.run(["image", "inspect", "checked"]).status != 0);
    let clean = context(
        &t,
        "clean",
        &[("Dockerfile", "FROM busybox:latest@sha256:0000000000000000000000000000000000000000000000000000000000000000\nUSER nobody\nCMD [\"true\"]\n")],
    );
    let r = t.run(["build", "--check", clean.to_str().unwrap()]);
    assert!(r.stdout.contains("Check complete"), "{r}");
}

#[test]
fn bad_flags_are_engine_errors() {
    let t = ctx();
    let dir = context(&t, "flags", &[("Dockerfile", "FROM busybox\n")]);
    let d = dir.to_str().unwrap();
    for args in [
        vec!["build", "--progress", "fancy", d],
        vec!["build", "--network", "bridge0", d],
        vec!["build", "--policy", "lax", d],
        vec!["build", "-t", "Bad:Name", d],
        vec!["build", "--platform", "linux/s390x", d],
        vec!["build", "--output", "type=registry", d],
        vec!["build", "--secret", "src=/x", d],
    ] {
        let r = t.run(&args);
        assert_eq!(r.status, 125, "{args:?}: {r}");
        assert!(r.stderr.lines().count() == 1, "one line: {r}");
    }
}

#[test]
fn a_500_mb_file_is_copied_in_bounded_memory() {
    if !Path::new("/usr/bin/time").is_file() {
        panic!("/usr/bin/time is missing: install Debian's time package (scripts/test does)");
    }
    let t = ctx();
    let dir = context(
        &t,
        "big",
        &[("Dockerfile", "FROM busybox\nCOPY big.bin /\n")],
    );
    let f = fs::File::create(dir.join("big.bin")).unwrap();
    f.set_len(500 * 1024 * 1024).unwrap();
    let out = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M"])
        .arg(t.bin())
        .arg("--root")
        .arg(t.root())
        .args(["build", "-q", "-t", "big"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let peak_kb: u64 = stderr.lines().last().unwrap().trim().parse().unwrap();
    assert!(peak_kb < 100 * 1024, "peak RSS {peak_kb} kB");
    let img = json(&t.run(["image", "inspect", "big"]).ok().stdout)[0].clone();
    assert!(img["Size"].as_u64().unwrap() >= 500 * 1024 * 1024, "{img}");
}

#[test]
fn from_scratch_and_progress_modes() {
    let t = ctx();
    let dir = context(
        &t,
        "scratch",
        &[
            ("hello.txt", "hi\n"),
            (
                "Dockerfile",
                "FROM scratch\nCOPY hello.txt /\nCMD [\"/hello\"]\n",
            ),
        ],
    );
    let r = t
        .run([
            "build",
            "--progress",
            "tty",
            "-t",
            "scratch-img",
            dir.to_str().unwrap(),
        ])
        .ok();
    assert!(r.stderr.contains("[+] Building"), "{r}");
    assert!(r.stderr.contains("FINISHED"), "{r}");
    assert!(r.stderr.contains(" => [2/2] COPY hello.txt /"), "{r}");
    let r = t
        .run(["build", "--progress", "tty", dir.to_str().unwrap()])
        .ok();
    assert!(
        r.stderr.contains(" => CACHED [2/2] COPY hello.txt /"),
        "{r}"
    );
    let img = json(&t.run(["image", "inspect", "scratch-img"]).ok().stdout)[0].clone();
    assert_eq!(
        img["RootFS"]["Layers"].as_array().unwrap().len(),
        1,
        "{img}"
    );
    let out = t.work().join("scratch-root");
    build(
        &t,
        &dir,
        &["--output", &format!("type=local,dest={}", out.display())],
    )
    .ok();
    let names: Vec<String> = fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["hello.txt"]);
}

#[test]
fn proxy_build_args_reach_run_but_not_the_image() {
    let t = ctx();
    let dir = context(
        &t,
        "proxy",
        &[(
            "Dockerfile",
            "FROM busybox\nRUN echo \"proxy=$HTTP_PROXY\" > /seen\n",
        )],
    );
    build(
        &t,
        &dir,
        &[
            "--build-arg",
            "HTTP_PROXY=http://127.0.0.1:3128",
            "-t",
            "proxy",
        ],
    )
    .ok();
    assert_eq!(
        run_in(&t, "proxy", "cat /seen"),
        "proxy=http://127.0.0.1:3128\n"
    );
    let img = t.run(["image", "inspect", "proxy"]).ok().stdout;
    assert!(!img.contains("3128"), "{img}");
    let hist = t.run(["history", "--no-trunc", "proxy"]).ok().stdout;
    assert!(!hist.contains("3128"), "{hist}");
    // A proxy change does not invalidate the cache.
    let r = build(
        &t,
        &dir,
        &["--build-arg", "HTTP_PROXY=http://127.0.0.1:8080"],
    )
    .ok();
    let (hit, miss) = cached_steps(&r);
    assert!(miss.is_empty() && hit.len() == 1, "{r}");
}

/// What a user sees: the plain progress, a cached rebuild, and the report.
#[test]
fn plain_progress_and_report_snapshot() {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_fixture("fixture:1");
    let dir = context(
        &t,
        "snap",
        &[
            ("a.txt", "a\n"),
            ("Dockerfile", "FROM fixture:1\nENV MODE=prod\nCOPY a.txt /srv/\nUSER nobody\nCMD [\"/srv/a.txt\"]\n"),
        ],
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain", "-t", "snap:1"];
        args.extend_from_slice(extra);
        args.push(dir.to_str().unwrap());
        let out = t
            .command(args)
            .env("SOURCE_DATE_EPOCH", "1700000000")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut filters = t.filters();
    filters.push((r"DONE \d+\.\ds".into(), "DONE [T]".into()));
    let filters: Vec<(&str, &str)> = filters
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!("build_plain", run(&[]));
        insta::assert_snapshot!("build_plain_cached", run(&[]));
    });
}

/// Whether a process whose command line holds `marker` runs (a build
/// step's, told by an unusual argument).
fn process_running(marker: &str) -> bool {
    fs::read_dir("/proc").unwrap().flatten().any(|p| {
        fs::read(p.path().join("cmdline"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(marker))
    })
}

/// Stopped in the middle of a RUN (Ctrl-C, SIGTERM): the step's container
/// goes, its mounts and staging go, nothing is tagged, and the exit is 130.
#[test]
fn an_interrupted_build_cleans_up() {
    let t = ctx();
    let dir = context(
        &t,
        "interrupt",
        &[("Dockerfile", "FROM busybox\nRUN sleep 37.25\n")],
    );
    let running = || process_running("37.25");
    let mut child = t
        .command(["build", "-q", "-t", "interrupted", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    berth_test::eventually("the step runs", running);
    let pid = rustix::process::Pid::from_raw(child.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::Term).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    berth_test::eventually("the step's container is gone", || !running());
    assert_eq!(
        berth_fs::mounts_under(&t.root().join("tmp")),
        Vec::<PathBuf>::new(),
        "a build mount is left"
    );
    assert_eq!(fs::read_dir(t.root().join("tmp")).unwrap().count(), 0);
    assert!(t.run(["image", "inspect", "interrupted"]).status != 0);
}

#[test]
fn copy_keeps_extended_attributes() {
    let t = ctx();
    let dir = context(
        &t,
        "xattr",
        &[
            ("tool", "#!/bin/sh\n"),
            ("Dockerfile", "FROM busybox\nCOPY tool /usr/local/bin/\n"),
        ],
    );
    if rustix::fs::lsetxattr(
        dir.join("tool"),
        "user.berth.note",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    )
    .is_err()
    {
        return; // the work directory's file system has no user xattrs
    }
    build(&t, &dir, &["-t", "xattr"]).ok();
    let save = t.work().join("xattr.tar");
    t.run(["save", "-o", save.to_str().unwrap(), "xattr"]).ok();
    let bytes = fs::read(&save).unwrap();
    let needle = b"SCHILY.xattr.user.berth.note=kept";
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "the layer records the xattr"
    );
    // And a root filesystem written out keeps it.
    let root = rootfs(&t, &dir, "xattr");
    let mut buf = [0u8; 16];
    let n = rustix::fs::lgetxattr(root.join("usr/local/bin/tool"), "user.berth.note", &mut buf)
        .expect("the xattr is on the written-out file");
    assert_eq!(&buf[..n], b"kept");
}

/// A build's base image removed and pruned by another process while the
/// build runs: the build holds a lease, so its layers stay until it ends,
/// it completes, and the next prune frees what nothing uses any more.
#[test]
fn a_prune_during_a_build_leaves_its_layers() {
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("base");
    let dir = context(
        &t,
        "leased",
        &[(
            "Dockerfile",
            "FROM base\nRUN sleep 2.37\nRUN cat /etc/passwd > /copy\n",
        )],
    );
    let running = || process_running("2.37");
    let child = t
        .command(["build", "-q", "-t", "leased", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    berth_test::eventually("the step runs", running);
    let r = t.run(["image", "prune", "-a", "-f"]).ok();
    assert!(r.stdout.contains("untagged: base:latest"), "{r}");
    assert!(r.stderr.contains("a build is running"), "{r}");
    t.run(["builder", "prune", "-a", "-f"]).ok();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = t.run(["run", "--rm", "leased", "cat", "/copy"]).ok().stdout;
    assert!(copy.starts_with("root:"), "{copy}");
    t.run(["system", "check", "--deep"]).ok();

    // No lease now: pruning frees the image and every layer.
    t.run(["builder", "prune", "-a", "-f"]).ok();
    let r = t.run(["image", "prune", "-a", "-f"]).ok();
    assert!(!r.stderr.contains("a build is running"), "{r}");
    assert!(r.stdout.contains("untagged: leased:latest"), "{r}");
    assert_eq!(fs::read_dir(t.root().join("layers")).unwrap().count(), 0);
}

/// More layers than one page of overlay mount options holds (about 40 with
/// a data root's paths): a container still runs on all of them.
#[test]
fn an_image_of_many_layers_runs() {
    let t = ctx();
    let mut files: Vec<(String, String)> = (1..=70)
        .map(|i| (format!("f{i}"), format!("{i}\n")))
        .collect();
    let mut dockerfile = String::from("FROM busybox\n");
    for i in 1..=70 {
        dockerfile.push_str(&format!("COPY f{i} /f{i}\n"));
    }
    files.push(("Dockerfile".into(), dockerfile));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let dir = context(&t, "layers", &refs);
    build(&t, &dir, &["-q", "-t", "layered"]).ok();
    let layers = json(&t.run(["inspect", "layered"]).ok().stdout)[0]["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 71);
    assert_eq!(
        t.run(["run", "--rm", "layered", "cat", "/f1", "/f70"])
            .ok()
            .stdout,
        "1\n70\n"
    );
}
