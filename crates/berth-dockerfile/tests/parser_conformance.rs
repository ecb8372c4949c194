//! BuildKit's parser golden files: `positive/<case>/{Dockerfile,result}`, the
//! `negative/` cases and `line-info/`, read from the shared conformance data.

use std::fs;
use std::path::{Path, PathBuf};

use berth_dockerfile::{parse, ParseError};

fn data_dir() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/conformance/dockerfile-parser"
    ))
    .to_path_buf()
}

fn case_dirs(kind: &str) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(data_dir().join(kind))
        .unwrap_or_else(|e| panic!("reading {kind} cases: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn positive_cases_dump_byte_for_byte() {
    let dirs = case_dirs("positive");
    assert_eq!(dirs.len(), 33, "the README lists 33 positive cases");
    let mut failures = Vec::new();
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let expected = fs::read_to_string(dir.join("result")).unwrap();
        match parse(&src) {
            Ok(res) => {
                let got = res.ast.dump() + "\n";
                if got != expected {
                    failures.push(format!("{name}:\n--- expected\n{expected}--- got\n{got}"));
                }
            }
            Err(e) => failures.push(format!("{name}: parse failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} positive cases differ:\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
}

#[test]
fn negative_cases_fail_with_a_clear_error_naming_the_line() {
    let dirs = case_dirs("negative");
    assert_eq!(dirs.len(), 4, "the README lists 4 negative cases");
    for dir in &dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let src = fs::read_to_string(dir.join("Dockerfile")).unwrap();
        let err = parse(&src).expect_err(&name);
        let (line, text) = match name.as_str() {
            "empty_dockerfile" => (1, "file with no instructions"),
            "only_comments" => (3, "file with no instructions"),
            "env_no_value" => (3, "ENV must have two arguments"),
            "shykes-nested-json" => (
                1,
                "when using JSON array syntax, arrays must be comprised of strings only",
            ),
            other => panic!("unexpected negative case {other}"),
        };
        assert_eq!(err.line(), line, "{name}: {err}");
        assert_eq!(err.to_string(), format!("line {line}: {text}"), "{name}");
    }
}

#[test]
fn env_without_value_is_the_missing_value_error() {
    let src = fs::read_to_string(data_dir().join("negative/env_no_value/Dockerfile")).unwrap();
    assert_eq!(
        parse(&src).unwrap_err(),
        ParseError::MissingValue {
            line: 3,
            end_line: 3,
            instruction: "ENV"
        }
    );
}

#[test]
fn line_info_spans() {
    // unit-cases.json `line_numbers`: root 5..31, children [5,5] [11,12] [17,31].
    let src = fs::read_to_string(data_dir().join("line-info/Dockerfile")).unwrap();
    let res = parse(&src).unwrap();
    let root = &res.ast.span;
    assert_eq!((root.start_line, root.end_line), (5, 31));
    let got: Vec<(usize, usize)> = res
        .ast
        .children
        .iter()
        .map(|c| (c.span.start_line, c.span.end_line))
        .collect();
    assert_eq!(got, [(5, 5), (11, 12), (17, 31)]);
    // Each instruction's span text starts with its keyword at the recorded column.
    for c in &res.ast.children {
        let text = c.span.text(&src);
        let col = c.span.column.unwrap();
        assert!(text
            .chars()
            .skip(col - 1)
            .collect::<String>()
            .starts_with(&c.value));
    }
    assert_eq!(res.escape_token, '\\');
    assert_eq!(res.directives.len(), 1);
    assert_eq!(res.directives[0].name, "escape");
}
