//! BuildKit's shell-lexer tables: `envVarTest`, `wordsTest` and the facts of
//! `lex_test.go`, read from the shared conformance data.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use berth_dockerfile::shell::{Envs, Lex};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/../../../shared/conformance/dockerfile-parser/shell/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

fn string_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().map(|s| str_of(s).to_string()).collect())
        .unwrap_or_default()
}

fn env_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), str_of(v).to_string()))
        .collect()
}

#[test]
fn env_var_test() {
    let data = load("envVarTest.json");
    let env = env_map(&data["envs"]);
    let lex = Lex::new('\\');
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 230);
    let (mut run, mut skipped, mut failures) = (0, 0, Vec::new());
    for c in cases {
        // berth expands with Linux semantics: Windows-only rows do not apply.
        if str_of(&c["platform"]) == "W" {
            skipped += 1;
            continue;
        }
        run += 1;
        let input = str_of(&c["input"]);
        let got = lex.process_word(input, &env);
        let ok = if c["error"].as_bool() == Some(true) {
            got.is_err()
        } else {
            got.as_deref().ok() == Some(str_of(&c["expected"]))
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {c}",
                c["line"]
            ));
        }
    }
    assert_eq!((run, skipped), (228, 2));
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn words_test() {
    let data = load("wordsTest.json");
    let lex = Lex::new('\\');
    let cases = data["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 24);
    let mut failures = Vec::new();
    for c in cases {
        let env = Envs::from_slice(&string_list(&c["envs"]));
        let input = str_of(&c["input"]);
        let got = lex.process_words(input, &env);
        let ok = if c["error"].as_bool() == Some(true) {
            got.is_err()
        } else {
            got.as_ref().ok() == Some(&string_list(&c["expected_words"]))
        };
        if !ok {
            failures.push(format!(
                "line {}: {input:?} -> {got:?}, want {c}",
                c["line"]
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn set_of(v: &Value) -> BTreeSet<String> {
    string_list(v).into_iter().collect()
}

#[test]
fn lex_process_word_with_matches() {
    let data = load("lex-cases.json");
    let cases = data["process_word_with_matches"]["cases"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 47);
    let lex = Lex::new('\\');
    let mut failures = Vec::new();
    for c in cases {
        let input = str_of(&c["input"]);
        let env = env_map(&c["envs"]);
        let got = lex.process_word_with_matches(input, &env);
        let ok = match (&got, c["error"].as_bool() == Some(true)) {
            (Err(_), true) => true,
            (Ok(r), false) => {
                r.result == str_of(&c["expected"])
                    && r.matched == set_of(&c["matched"])
                    && r.unmatched == set_of(&c["unmatched"])
            }
            _ => false,
        };
        if !ok {
            failures.push(format!("{input:?} -> {got:?}, want {c}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn lex_process_word_platform() {
    let data = load("lex-cases.json");
    let section = &data["process_word_platform"];
    let input = str_of(&section["input"]);
    let cases = section["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    let lex = Lex::new('\\');
    for c in cases {
        let env = env_map(&c["envs"]);
        assert_eq!(
            lex.process_word(input, &env).unwrap(),
            str_of(&c["expected"]),
            "{c}"
        );
    }
}

#[test]
fn lex_mandatory_env_vars() {
    let data = load("lex-cases.json");
    let cases = data["mandatory_env_vars"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 6);
    let lex = Lex::new('\\');
    for c in cases {
        let env = Envs::from_slice(&string_list(&c["envs"]));
        let got = lex.process_word(str_of(&c["input"]), &env);
        match c.get("error_contains") {
            Some(text) => {
                let err = got.expect_err(&c.to_string());
                assert!(err.to_string().contains(str_of(text)), "{err} / {c}");
            }
            None => assert_eq!(got.unwrap(), str_of(&c["expected"]), "{c}"),
        }
    }
}

#[test]
fn lex_env_lookup() {
    use berth_dockerfile::shell::EnvGetter;
    let data = load("lex-cases.json");
    let cases = data["env_lookup"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 7);
    for c in cases {
        let env = Envs::from_slice(&string_list(&c["envs"]));
        assert_eq!(
            env.get(str_of(&c["name"])).unwrap_or(""),
            str_of(&c["value"]),
            "{c}"
        );
    }
}

#[test]
fn lex_internal_pattern_tables_through_the_public_api() {
    // `internal_shell_pattern_to_regex`: the valid patterns compile and match what
    // their regex matches; the invalid ones are errors.
    let data = load("lex-cases.json");
    let lex = Lex::new('\\');
    let section = &data["internal_shell_pattern_to_regex"];
    assert_eq!(section["valid"].as_array().unwrap().len(), 4);
    let env = Envs::from_slice(&["V=(()[]{}^$.*?|\\tail"]);
    assert_eq!(
        lex.process_word("${V#(()[]{\\}^$.\\*\\?|\\\\}", &env)
            .unwrap(),
        "tail"
    );
    for pattern in section["invalid"].as_array().unwrap() {
        let word = format!("${{V#{}}}", str_of(pattern));
        assert!(lex.process_word(&word, &env).is_err(), "{word}");
    }
    // `internal_reverse_pattern` is exercised by suffix removal.
    let env = Envs::from_slice(&["V=abc*c"]);
    assert_eq!(lex.process_word("${V%\\*c}", &env).unwrap(), "abc");
}
