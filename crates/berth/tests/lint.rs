//! `berth lint` end to end: the real binary on real Dockerfiles, every output
//! format, exit statuses and the flags. Needs no root and no images.
//!
//! The corpus snapshots (`snapshots/lint__corpus__*.snap`) are the review of
//! berth lint on real-world Dockerfiles: each was read against its Dockerfile
//! so that it holds the findings a careful reviewer would expect and none a
//! reviewer would call wrong.

use std::path::{Path, PathBuf};
use std::process::Output;

use berth_test::TestContext;

fn ctx() -> TestContext {
    TestContext::new(env!("CARGO_BIN_EXE_berth"))
}

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/corpus"
);

struct Out {
    status: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Out {
    fn from(o: Output) -> Self {
        Self {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// `berth lint ARGS` run in `dir`.
fn lint_in<I, S>(t: &TestContext, dir: &Path, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let mut c = t.command(["lint"]);
    c.args(args).current_dir(dir);
    c.output().expect("run berth").into()
}

fn lint<I, S>(t: &TestContext, args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    lint_in(t, t.work(), args)
}

/// Every Dockerfile of the corpus, relative to it, in a stable order.
fn corpus_dockerfiles() -> Vec<PathBuf> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, base, out);
            } else if p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("Dockerfile"))
            {
                out.push(p.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(Path::new(CORPUS), Path::new(CORPUS), &mut out);
    out
}

#[test]
fn corpus_snapshots() {
    let t = ctx();
    let files = corpus_dockerfiles();
    assert_eq!(files.len(), 30, "{files:?}");
    for rel in files {
        let out = lint_in(&t, Path::new(CORPUS), [&rel]);
        assert!(out.stderr.is_empty(), "{}: {}", rel.display(), out.stderr);
        // Exit 1 exactly when an error-level finding is reported (--fail-on error).
        let has_error = out.stdout.lines().any(|l| l.starts_with("error["));
        assert_eq!(out.status, i32::from(has_error), "{}", rel.display());
        let name = format!(
            "corpus__{}",
            rel.to_string_lossy().replace('/', "__").replace('.', "_")
        );
        insta::assert_snapshot!(name, format!("exit: {}\n{}", out.status, out.stdout));
    }
}

#[test]
fn list_prints_the_catalog() {
    let t = ctx();
    let out = lint(&t, ["--list"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    insta::assert_snapshot!("list", out.stdout);

    // With a configuration, the levels it sets.
    std::fs::write(
        t.work().join("lint.toml"),
        "[rules]\nconsecutive-runs = \"off\"\nroot-user = \"error\"\n",
    )
    .unwrap();
    let out = lint(&t, ["--list", "--config", "lint.toml"]);
    let line = |id: &str| {
        out.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap()
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(line("consecutive-runs"), "off");
    assert_eq!(line("root-user"), "error");
    assert_eq!(line("definition-description"), "off");
}

const BAD: &str =
    "FROM node\nWORKDIR /app\nCOPY . .\nRUN npm ci\nENV API_TOKEN=abc123\nCMD node index.js\n";

#[test]
fn human_report_from_the_default_path() {
    let t = ctx();
    std::fs::write(t.work().join("Dockerfile"), BAD).unwrap();
    let out = lint(&t, Vec::<&str>::new());
    assert_eq!(out.status, 1, "an error-level finding fails by default");
    assert!(out.stderr.is_empty(), "{}", out.stderr);
    insta::assert_snapshot!("human_default_path", out.stdout);
}

#[test]
fn stdin_and_json() {
    let t = ctx();
    let out = t.run_with_stdin(["lint", "--format", "json", "-"], BAD.as_bytes());
    assert_eq!(out.status, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["path"], "<stdin>");
    let rules: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(
        rules,
        [
            "root-user",
            "unpinned-base-image",
            "large-base-image",
            "cache-unfriendly-copy",
            "secret-in-env-or-arg",
            "shell-form-cmd"
        ]
    );
    assert_eq!(v["summary"]["error"], 1);
}

#[test]
fn sarif_output() {
    let t = ctx();
    std::fs::write(t.work().join("app.Dockerfile"), BAD).unwrap();
    let out = lint(&t, ["--format", "sarif", "app.Dockerfile"]);
    assert_eq!(out.status, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["version"], "2.1.0");
    let run = &v["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "berth-lint");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    let uri = &results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
    assert_eq!(uri, "app.Dockerfile");
}

#[test]
fn fail_on_threshold() {
    let t = ctx();
    // Warnings only.
    std::fs::write(t.work().join("Dockerfile"), "FROM alpine\nUSER app\n").unwrap();
    assert_eq!(lint(&t, Vec::<&str>::new()).status, 0);
    assert_eq!(lint(&t, ["--fail-on", "warning"]).status, 1);
    assert_eq!(lint(&t, ["--fail-on", "info"]).status, 1);
    // Errors, but nothing fails.
    std::fs::write(t.work().join("Dockerfile"), BAD).unwrap();
    assert_eq!(lint(&t, ["--fail-on", "none"]).status, 0);
    // A clean Dockerfile never fails.
    std::fs::write(t.work().join("Dockerfile"), "FROM alpine:3.20\nUSER app\n").unwrap();
    let out = lint(&t, ["--fail-on", "style"]);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Dockerfile: no findings\n")
    );
}

/// One `Error:` line on stderr, nothing on stdout, exit 125.
#[track_caller]
fn usage_error(out: &Out, expected: &str) {
    assert_eq!(out.status, 125, "{}{}", out.stdout, out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(
        out.stderr.starts_with("Error: ") && out.stderr.contains(expected),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_input_and_flags_exit_125() {
    let t = ctx();
    std::fs::write(t.work().join("Dockerfile"), "FROM alpine:3.20\nFOO bar\n").unwrap();
    usage_error(
        &lint(&t, Vec::<&str>::new()),
        "Dockerfile: line 2: unknown instruction: FOO",
    );
    std::fs::write(t.work().join("args.Dockerfile"), "ARG A=1\n").unwrap();
    usage_error(&lint(&t, ["args.Dockerfile"]), "has no FROM instruction");
    usage_error(
        &lint(&t, ["missing.Dockerfile"]),
        "cannot read missing.Dockerfile",
    );
    usage_error(
        &lint(&t, ["--format", "xml"]),
        "invalid --format \"xml\": expected human, json or sarif",
    );
    usage_error(
        &lint(&t, ["--fail-on", "fatal"]),
        "invalid --fail-on \"fatal\"",
    );
    std::fs::write(t.work().join("lint.toml"), "[rules]\nroot-usr = \"off\"\n").unwrap();
    usage_error(
        &lint(&t, ["--config", "lint.toml"]),
        "unknown rule \"root-usr\" (did you mean \"root-user\"?)",
    );
    usage_error(
        &lint(&t, ["--context", "no-such-dir"]),
        "cannot read the build context no-such-dir",
    );
}

#[test]
fn config_relevels_and_ignore_comments() {
    let t = ctx();
    std::fs::write(
        t.work().join("Dockerfile"),
        "FROM alpine:3.20\n# berth-lint ignore=apk-no-cache\nRUN apk add curl\nRUN apk add git\n",
    )
    .unwrap();
    std::fs::write(
        t.work().join("lint.toml"),
        "[rules]\nroot-user = \"error\"\nconsecutive-runs = \"off\"\n",
    )
    .unwrap();
    let out = lint(&t, ["--config", "lint.toml", "--format", "json"]);
    assert_eq!(out.status, 1);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let got: Vec<(String, String, u64)> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("root-user".to_string(), "error".to_string(), 1),
            ("apk-no-cache".to_string(), "warning".to_string(), 4),
        ]
    );
}

#[test]
fn context_hygiene() {
    let t = ctx();
    let app = t.work().join("app");
    for (path, content) in [
        ("Dockerfile", "FROM node:20-slim\nWORKDIR /app\nCOPY package.json ./\nRUN npm install\nCOPY . .\nUSER node\nCMD [\"node\", \"index.js\"]\n"),
        ("package.json", "{}"),
        ("index.js", ""),
        (".env", "TOKEN=x"),
        (".git/HEAD", "ref: refs/heads/main\n"),
        ("node_modules/left-pad/index.js", "module.exports = 1;\n"),
    ] {
        let p = app.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
    }
    let out = lint_in(&t, &app, ["--context", "."]);
    assert_eq!(out.status, 1, "{}", out.stdout);
    insta::assert_snapshot!("context_hygiene", out.stdout);

    // Without --context the context is not looked at.
    let out = lint_in(&t, &app, Vec::<&str>::new());
    assert_eq!(out.status, 0, "{}", out.stdout);
    assert_eq!(out.stdout, "Dockerfile: no findings\n");

    // A .dockerignore that excludes them fixes it.
    std::fs::write(app.join(".dockerignore"), ".git\nnode_modules\n.env\n").unwrap();
    let out = lint_in(&t, &app, ["--context", "."]);
    assert_eq!(
        (out.status, out.stdout.as_str()),
        (0, "Dockerfile: no findings\n")
    );
}

/// SARIF output validated against the SARIF 2.1.0 schema (rtm.5, as the
/// `@microsoft/sarif-matcher-utils` npm package ships it; scripts/test fetches
/// it and sets BERTH_SARIF_SCHEMA) with Python's jsonschema, for every corpus
/// file.
#[test]
fn sarif_is_valid_against_the_schema() {
    let Some(schema) = std::env::var_os("BERTH_SARIF_SCHEMA") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must set BERTH_SARIF_SCHEMA (scripts/test does)"
        );
        return;
    };
    let t = ctx();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/corpus");
    let mut files = Vec::new();
    let mut stack = vec![corpus];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("Dockerfile")
            {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 10, "corpus not found");
    for f in files {
        let out = lint(&t, ["--format".as_ref(), "sarif".as_ref(), f.as_os_str()]);
        assert!(
            out.status == 0 || out.status == 1,
            "{}: {}",
            f.display(),
            out.stderr
        );
        let doc = t.work().join("out.sarif");
        std::fs::write(&doc, &out.stdout).unwrap();
        let check = std::process::Command::new("python3")
            .args([
                "-c",
                "import json, sys, jsonschema\n\
                 schema = json.load(open(sys.argv[1]))\n\
                 doc = json.load(open(sys.argv[2]))\n\
                 jsonschema.validators.validator_for(schema)(schema).validate(doc)",
            ])
            .arg(&schema)
            .arg(&doc)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{} is not valid SARIF 2.1.0: {}",
            f.display(),
            String::from_utf8_lossy(&check.stderr)
        );
    }
}
