#![allow(clippy::print_stderr)] // an absent engine reports its skip on stderr
//! `berth build` against `docker build` on the same Dockerfiles and the same
//! base image: the final root filesystems (paths, types, modes, owners,
//! sizes, contents, link targets) and the run config must be equal. Skips
//! when no Docker engine answers (scripts/test starts a private one).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use std::process::{Command, Stdio};

use berth_test::{json, TestContext};
use sha2::{Digest, Sha256};

/// What is compared of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    /// Size and content hash of regular files; link target of symlinks.
    content: String,
}

/// Paths the engines add to every container, not part of the image.
fn engine_path(p: &str) -> bool {
    let top = p.split('/').next().unwrap_or("");
    matches!(top, "dev" | "proc" | "sys" | ".dockerenv")
        || matches!(
            p,
            "etc/hosts" | "etc/hostname" | "etc/resolv.conf" | "etc/mtab"
        )
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// A directory tree, as berth's `--output type=local` writes it.
fn tree_of_dir(root: &Path) -> BTreeMap<String, Node> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<String, Node>) {
        let mut names: Vec<_> = fs::read_dir(root.join(rel))
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for n in names {
            let r = rel.join(&n);
            let p = root.join(&r);
            let m = fs::symlink_metadata(&p).unwrap();
            let ft = m.file_type();
            let (kind, content) = if ft.is_dir() {
                ('d', String::new())
            } else if ft.is_symlink() {
                ('l', fs::read_link(&p).unwrap().display().to_string())
            } else if ft.is_fifo() {
                ('p', String::new())
            } else {
                ('f', format!("{} {}", m.len(), sha(&fs::read(&p).unwrap())))
            };
            let key = r.display().to_string();
            if !engine_path(&key) {
                out.insert(
                    key,
                    Node {
                        kind,
                        mode: if kind == 'l' {
                            0o777
                        } else {
                            m.mode() & 0o7777
                        },
                        uid: m.uid() as u64,
                        gid: m.gid() as u64,
                        content,
                    },
                );
            }
            if ft.is_dir() {
                walk(root, &r, out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

/// A flattened root filesystem tar, as `docker export` writes it.
fn tree_of_tar(tar_path: &Path) -> BTreeMap<String, Node> {
    let mut out: BTreeMap<String, Node> = BTreeMap::new();
    let mut ar = tar::Archive::new(fs::File::open(tar_path).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        let path = e.path().unwrap().display().to_string();
        let path = path
            .trim_start_matches("./")
            .trim_end_matches('/')
            .to_string();
        if path.is_empty() || path == "." || engine_path(&path) {
            continue;
        }
        let mode = h.mode().unwrap() & 0o7777;
        let (uid, gid) = (h.uid().unwrap(), h.gid().unwrap());
        let node = match h.entry_type() {
            tar::EntryType::Directory => Node {
                kind: 'd',
                mode,
                uid,
                gid,
                content: String::new(),
            },
            tar::EntryType::Symlink => Node {
                kind: 'l',
                mode: 0o777,
                uid,
                gid,
                content: e.link_name().unwrap().unwrap().display().to_string(),
            },
            tar::EntryType::Link => {
                let target = e.link_name().unwrap().unwrap().display().to_string();
                let target = target.trim_start_matches("./").to_string();
                out[&target].clone()
            }
            tar::EntryType::Fifo => Node {
                kind: 'p',
                mode,
                uid,
                gid,
                content: String::new(),
            },
            _ => {
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                Node {
                    kind: 'f',
                    mode,
                    uid,
                    gid,
                    content: format!("{} {}", data.len(), sha(&data)),
                }
            }
        };
        out.insert(path, node);
    }
    out
}

fn sh(cmd: &str) -> String {
    berth_test::sh(cmd)
}

struct Engine {
    images: Vec<String>,
}

impl Drop for Engine {
    fn drop(&mut self) {
        for i in &self.images {
            let _ = Command::new("docker")
                .args(["rmi", "-f", i])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

const CONFIG_FIELDS: &[&str] = &[
    "Env",
    "Cmd",
    "Entrypoint",
    "User",
    "WorkingDir",
    "ExposedPorts",
    "Volumes",
    "Labels",
    "StopSignal",
];

/// Builds `dockerfile` with both and compares.
fn compare(t: &TestContext, engine: &mut Engine, name: &str, files: &[(&str, &[u8])]) {
    let dir = t.work().join(name);
    for (p, data) in files {
        let p = dir.join(p);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, data).unwrap();
    }
    let tag = format!("berth-build-eq-{}-{name}:1", std::process::id());
    engine.images.push(tag.clone());

    let docker_out = sh(&format!(
        "docker build -q --network none -t {tag} {}",
        dir.display()
    ));
    assert!(!docker_out.is_empty());
    let export = t.work().join(format!("{name}-docker.tar"));
    let cid = sh(&format!("docker create {tag} /bin/true"))
        .trim()
        .to_string();
    sh(&format!("docker export -o {} {cid}", export.display()));
    sh(&format!("docker rm {cid}"));
    let docker_tree = tree_of_tar(&export);
    let docker_config = json(&sh(&format!("docker image inspect {tag}")))[0]["Config"].clone();

    let ours = t.work().join(format!("{name}-berth"));
    let dest = format!("type=local,dest={}", ours.display());
    t.run([
        "build",
        "-q",
        "--network",
        "none",
        "-t",
        &tag,
        "--output",
        &dest,
        dir.to_str().unwrap(),
    ])
    .ok();
    let berth_tree = tree_of_dir(&ours);
    let berth_config = json(&t.run(["image", "inspect", &tag]).ok().stdout)[0]["Config"].clone();

    assert!(
        docker_tree.contains_key("bin/busybox") && docker_tree.len() > 100,
        "{name}: the export is a whole root filesystem"
    );
    let mut diffs = Vec::new();
    for (p, n) in &docker_tree {
        match berth_tree.get(p) {
            None => diffs.push(format!("only docker: {p} {n:?}")),
            Some(b) if b != n => diffs.push(format!("{p}: docker {n:?} berth {b:?}")),
            _ => {}
        }
    }
    for p in berth_tree.keys() {
        if !docker_tree.contains_key(p) {
            diffs.push(format!("only berth: {p} {:?}", berth_tree[p]));
        }
    }
    assert!(
        diffs.is_empty(),
        "{name}: root filesystems differ:\n{}",
        diffs.join("\n")
    );
    for f in CONFIG_FIELDS {
        let norm = |v: &serde_json::Value| match v {
            serde_json::Value::Null => serde_json::json!(null),
            serde_json::Value::String(s) if s.is_empty() => serde_json::json!(null),
            serde_json::Value::Object(o) if o.is_empty() => serde_json::json!(null),
            other => other.clone(),
        };
        assert_eq!(
            norm(&berth_config[f]),
            norm(&docker_config[f]),
            "{name}: Config.{f} differs"
        );
    }
}

fn gzip_tar(entries: &[(&str, u32, u64, &[u8])]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut b = tar::Builder::new(gz);
    for (p, mode, owner, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mode(*mode);
        h.set_uid(*owner);
        h.set_gid(*owner);
        h.set_size(data.len() as u64);
        h.set_mtime(1_600_000_000);
        b.append_data(&mut h, p, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn berth_builds_what_docker_builds() {
    if !berth_test::engine_works("docker") {
        eprintln!("skipping: no working docker engine (`docker info` failed)");
        return;
    }
    let t = TestContext::new(env!("CARGO_BIN_EXE_berth"));
    t.import_busybox("busybox-raw");
    // One base for both engines, with PATH set (BuildKit adds it to images
    // that lack it; Docker's classic builder does not).
    let base_dir = t.work().join("base");
    fs::create_dir_all(&base_dir).unwrap();
    fs::write(
        base_dir.join("Dockerfile"),
        "FROM busybox-raw\nENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
         RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group && echo 'web:x:2000:app' >> /etc/group\n",
    )
    .unwrap();
    let base = format!("berth-build-eq-base-{}:1", std::process::id());
    t.run(["build", "-q", "-t", &base, base_dir.to_str().unwrap()])
        .ok();
    let archive = t.work().join("base.tar");
    t.run(["save", "-o", archive.to_str().unwrap(), &base]).ok();
    let mut engine = Engine {
        images: vec![base.clone()],
    };
    sh(&format!("docker load -i {}", archive.display()));

    let from = format!("FROM {base}\n");
    let basics = format!(
        "{from}ENV APP=/srv/app GREETING=\"hello world\"\n\
         WORKDIR $APP\n\
         COPY app.txt .\n\
         COPY conf/ /etc/app/\n\
         COPY conf /etc/app2\n\
         RUN mkdir -p /data/sub && echo data > /data/sub/f && chmod 0750 /data/sub && ln -s /data/sub/f /data/link && ln /data/sub/f /data/hard && mkfifo /data/fifo\n\
         RUN rm /etc/group && rm -rf /data/sub && mkdir /data/sub && echo new > /data/sub/g\n\
         RUN chmod 4755 /bin/busybox && touch -d @0 /srv/app/app.txt\n\
         EXPOSE 8080 53/udp\n\
         VOLUME /data\n\
         LABEL a=b \"c d\"=e\n\
         STOPSIGNAL SIGINT\n\
         USER app\n\
         ENTRYPOINT [\"/bin/sh\", \"-c\"]\n\
         CMD echo $GREETING\n"
    );
    compare(
        &t,
        &mut engine,
        "basics",
        &[
            ("Dockerfile", basics.as_bytes()),
            ("app.txt", b"app\n"),
            ("conf/a.conf", b"a=1\n"),
            ("conf/nested/b.conf", b"b=2\n"),
        ],
    );

    let chown = format!(
        "{from}COPY --chown=app a.txt /owned/by-user/\n\
         COPY --chown=app:web a.txt /owned/by-both/\n\
         COPY --chown=1234:5678 dir /owned/numeric/\n\
         COPY *.txt /glob/\n\
         COPY a.txt b.txt /several/\n\
         ADD bundle.tar.gz /opt/\n\
         ADD b.txt /added/\n"
    );
    let bundle = gzip_tar(&[
        ("pkg/tool", 0o751, 42, b"tool"),
        ("pkg/README", 0o644, 0, b"read me"),
    ]);
    compare(
        &t,
        &mut engine,
        "chown",
        &[
            ("Dockerfile", chown.as_bytes()),
            ("a.txt", b"a\n"),
            ("b.txt", b"b\n"),
            ("dir/x", b"x\n"),
            ("bundle.tar.gz", &bundle),
        ],
    );

    let stages = format!(
        "FROM {base} AS build\n\
         ARG FLAVOR=plain\n\
         RUN mkdir /out && echo \"built $FLAVOR\" > /out/app.jar\n\
         FROM {base}\n\
         ARG FLAVOR\n\
         ENV FLAVOR=${{FLAVOR:-none}}\n\
         COPY --from=build /out/app.jar /app/app.jar\n\
         COPY --from=build /out /out\n\
         CMD [\"cat\", \"/app/app.jar\"]\n"
    );
    compare(
        &t,
        &mut engine,
        "stages",
        &[("Dockerfile", stages.as_bytes())],
    );

    let ignore = format!("{from}COPY . /ctx/\nRUN ls -R /ctx > /listing\n");
    compare(
        &t,
        &mut engine,
        "ignore",
        &[
            ("Dockerfile", ignore.as_bytes()),
            (".dockerignore", b"*.log\n!keep.log\nsecret/\n**/*.tmp\n"),
            ("x.log", b"x"),
            ("keep.log", b"k"),
            ("secret/key", b"k"),
            ("src/a.tmp", b"t"),
            ("src/main.c", b"m"),
        ],
    );
}
