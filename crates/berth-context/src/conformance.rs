//! Conformance with moby/patternmatcher and tonistiigi/fsutil: table-driven tests
//! over `shared/conformance/dockerignore`, read in place (see its README.md).

use std::fmt::Write as _;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use serde_json::Value;

use crate::golang;
use crate::pattern::{compile, MatchType};
use crate::walk::{DirReader, RealDirs};
use crate::{parse_ignore_file, BuildContext, Filter, Matcher};

const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/dockerignore/"
);

fn load(name: &str) -> Value {
    let path = format!("{DATA}{name}");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

/// Fails with every mismatch listed, not just the first.
fn finish(name: &str, ran: usize, expected: usize, failures: &str) {
    assert!(failures.is_empty(), "{name}: failures:\n{failures}");
    assert_eq!(ran, expected, "{name}: number of cases run");
}

#[test]
fn cases_json() {
    let data = load("cases.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = String::new();
    let mut ran = 0;
    for case in cases {
        // Every case is valid on Unix; "windows"-only cases would be skipped.
        if case["platform"].as_str().is_some_and(|p| p != "unix") {
            continue;
        }
        ran += 1;
        let patterns = strings(&case["patterns"]);
        let path = case["path"].as_str().unwrap();
        let result = Matcher::new(&patterns).and_then(|m| m.matches(path));
        let ok = match (&result, case["error"].as_bool().unwrap_or(false)) {
            (Err(_), true) => true,
            (Ok(excluded), false) => *excluded == case["excluded"].as_bool().unwrap(),
            _ => false,
        };
        if !ok {
            let _ = writeln!(
                failures,
                "  {patterns:?} {path:?}: got {result:?}, want {}",
                case
            );
        }
    }
    finish("cases.json", ran, 138, &failures);
}

#[test]
fn cases_json_errors_name_the_pattern() {
    let err = Matcher::new(["a[x-]"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "syntax error in pattern \"a[x-]\": look for an unclosed `[`, a trailing `\\` \
         or a character range with a missing end"
    );
    let err = Matcher::new(["!"]).unwrap_err();
    assert_eq!(err.to_string(), "illegal exclusion pattern: \"!\"");
}

#[test]
fn readall_cases_json() {
    let data = load("readall-cases.json");
    let mut failures = String::new();
    let mut ran = 0;
    for case in data["readall_cases"].as_array().unwrap() {
        ran += 1;
        let input = case["input"].as_str().unwrap();
        let got = parse_ignore_file(input.as_bytes()).unwrap();
        let want = strings(&case["expected"]);
        if got != want {
            let _ = writeln!(failures, "  {input:?}: got {got:?}, want {want:?}");
        }
    }
    for case in data["matcher_construction_cases"].as_array().unwrap() {
        ran += 1;
        let patterns = strings(&case["patterns"]);
        let got = Matcher::new(&patterns);
        let ok = match &got {
            Err(e) => case["error"].as_str() == Some(e.to_string().as_str()),
            Ok(m) => {
                case["error"].is_null()
                    && case["pattern_count"]
                        .as_u64()
                        .is_none_or(|n| n == m.patterns().len() as u64)
                    && case["has_exclusions"]
                        .as_bool()
                        .is_none_or(|b| b == m.has_exclusions())
            }
        };
        if !ok {
            let _ = writeln!(failures, "  {patterns:?}: got {got:?}, want {case}");
        }
    }
    finish("readall-cases.json", ran, 7, &failures);
}

#[test]
fn compile_cases_json() {
    let data = load("compile-cases.json");
    let mut failures = String::new();
    let mut ran = 0;
    for case in data["cases"].as_array().unwrap() {
        ran += 1;
        let pattern = case["pattern"].as_str().unwrap();
        let (match_type, regexp) = compile(&golang::clean(pattern));
        let want_type = case["match_type"].as_str().unwrap();
        let got_type = match match_type {
            MatchType::Exact => "exact",
            MatchType::Prefix => "prefix",
            MatchType::Suffix => "suffix",
            MatchType::Regexp => "regexp",
        };
        let mut ok = got_type == want_type;
        if let Some(want_re) = case["regexp_unix"].as_str() {
            ok &= regexp == want_re;
            // And the translation for the regex crate must compile.
            ok &= crate::re2::translate(&regexp)
                .ok()
                .and_then(|rust| regex::Regex::new(&rust).ok())
                .is_some();
        }
        if !ok {
            let _ = writeln!(
                failures,
                "  {pattern:?}: got {got_type} {regexp:?}, want {case}"
            );
        }
    }
    finish("compile-cases.json", ran, 21, &failures);
}

/// Reads directories as a non-root owner would: a directory without its owner
/// read bit cannot be listed. Lets the permission cases run under root too.
#[derive(Debug)]
struct AsNonRootOwner;

impl DirReader for AsNonRootOwner {
    fn read_dir(&self, dir: &Path) -> io::Result<Vec<(std::ffi::OsString, fs::FileType)>> {
        let mode = fs::symlink_metadata(dir)?.permissions().mode();
        if mode & 0o400 == 0 {
            return Err(io::Error::from(rustix::io::Errno::ACCESS));
        }
        RealDirs.read_dir(dir)
    }
}

/// Builds a case's tree: files empty with mode 0644, directories 0700.
fn build_tree(root: &Path, tree: &Value) {
    for item in tree.as_array().unwrap() {
        let rel = item[0].as_str().unwrap();
        let path = root.join(rel);
        match item[1].as_str().unwrap() {
            "file" => {
                fs::write(&path, b"").unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            }
            "dir" => {
                fs::create_dir(&path).unwrap();
                fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
            }
            other => panic!("unknown tree entry type {other}"),
        }
    }
}

/// The directory a case's `requires` text makes unreadable, if any
/// ("... directory foo/bar has mode 0000").
fn unreadable_dir(case: &Value) -> Option<String> {
    let text = case["requires"].as_str()?;
    let start = text.find("directory ")? + "directory ".len();
    let end = text[start..].find(" has mode 0000")? + start;
    Some(text[start..end].to_string())
}

/// Runs one walk case (or variant); returns a description of each mismatch.
fn run_walk_case(
    root: &Path,
    spec: &Value,
    dirs: Option<&'static dyn DirReader>,
    failures: &mut String,
) {
    let excludes = strings(&spec["exclude_patterns"]);
    let includes = strings(&spec["include_patterns"]);
    let label = format!("excludes {excludes:?} includes {includes:?}");
    let filter = match Filter::new(&excludes, &includes) {
        Ok(filter) => filter,
        Err(e) => {
            if !spec["expected_error"].as_bool().unwrap_or(false) {
                let _ = writeln!(failures, "  {label}: unexpected error {e}");
            }
            return;
        }
    };
    if spec["expected_error"].as_bool().unwrap_or(false) {
        let _ = writeln!(failures, "  {label}: expected an error building the filter");
        return;
    }
    let mut ctx = BuildContext::new(root, filter).unwrap();
    if let Some(dirs) = dirs {
        ctx = ctx.with_dir_reader(dirs);
    }
    let mut listing = Vec::new();
    let mut error = None;
    for item in ctx.walk() {
        match item {
            Ok(entry) => listing.push(format!("{} {}", entry.kind, entry.path.display())),
            Err(e) => error = Some(e.to_string()),
        }
    }
    match (spec["expected_error_contains"].as_str(), &error) {
        (Some(want), Some(got)) if got.to_lowercase().contains(want) => {}
        (None, None) => {
            let want = strings(&spec["expected_walk"]);
            if !spec["expected_walk"].is_null() && listing != want {
                let _ = writeln!(failures, "  {label}: walk {listing:?}, want {want:?}");
            }
        }
        (want, got) => {
            let _ = writeln!(failures, "  {label}: error {got:?}, want {want:?}");
        }
    }
    for path in strings(&spec["open_ok"]) {
        if let Err(e) = ctx.open(&path) {
            let _ = writeln!(failures, "  {label}: open {path}: {e}, want success");
        }
    }
    for path in strings(&spec["open_not_exist"]) {
        match ctx.open(&path) {
            Err(e) if e.is_not_found() => {}
            other => {
                let _ = writeln!(
                    failures,
                    "  {label}: open {path}: {other:?}, want not-exist"
                );
            }
        }
    }
}

#[test]
fn walk_cases_json() {
    let data = load("walk-cases.json");
    let mut failures = String::new();
    let mut ran = 0;
    let non_root = !rustix::process::geteuid().is_root();
    for case in data["cases"].as_array().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        build_tree(dir.path(), &case["tree"]);
        let locked = unreadable_dir(case).map(|rel| dir.path().join(rel));
        if let Some(locked) = &locked {
            fs::set_permissions(locked, fs::Permissions::from_mode(0o000)).unwrap();
        }
        let variants = match case["variants"].as_array() {
            Some(variants) => variants.iter().collect(),
            None => vec![case],
        };
        for spec in variants {
            ran += 1;
            let mut case_failures = String::new();
            if locked.is_some() {
                // Emulate the non-root user the case requires; when not root,
                // also check the real thing.
                run_walk_case(dir.path(), spec, Some(&AsNonRootOwner), &mut case_failures);
                if non_root {
                    run_walk_case(dir.path(), spec, None, &mut case_failures);
                }
            } else {
                run_walk_case(dir.path(), spec, None, &mut case_failures);
            }
            if !case_failures.is_empty() {
                let _ = write!(failures, "{}:\n{case_failures}", case["source_test"]);
            }
        }
        if let Some(locked) = &locked {
            fs::set_permissions(locked, fs::Permissions::from_mode(0o700)).unwrap();
        }
    }
    // 4 single cases and 5 variants of the permission case.
    finish("walk-cases.json", ran, 9, &failures);
}
