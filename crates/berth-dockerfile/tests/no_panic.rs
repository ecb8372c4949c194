//! "Errors are fine; panics are bugs." A deterministic, in-tree stand-in for the
//! cargo-fuzz targets in `fuzz/`: a few hundred inputs mutated from real Dockerfiles
//! (the shared corpus and the parser's golden cases) go through the parser, the
//! instruction model, the stage graph and the expander, which must return, never
//! panic.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use berth_dockerfile::instructions::{parse_mount, word_expander};
use berth_dockerfile::shell::{Envs, Lex};
use berth_dockerfile::stages::{GraphOptions, StageGraph};
use berth_dockerfile::{detect_syntax, parse, parse_heredoc, Dockerfile};

const CONFORMANCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/conformance");

/// Number of mutated inputs; each also yields a few expander calls per line.
const MUTATIONS: usize = 1000;

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("Dockerfile"))
        {
            out.push(p);
        }
    }
}

fn seeds() -> Vec<String> {
    let mut paths = Vec::new();
    collect(&Path::new(CONFORMANCE).join("corpus"), &mut paths);
    collect(
        &Path::new(CONFORMANCE).join("dockerfile-parser"),
        &mut paths,
    );
    paths.sort();
    let mut out: Vec<String> = paths
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .collect();
    // Constructs the corpus rarely has.
    out.extend(
        [
            "# escape=`\nFROM a\nRUN echo `\n  hi\nCOPY <<EOF <<-'X' /d\nx\nEOF\n\ty\n\tX\n",
            "FROM a AS b\nONBUILD RUN <<EOF\nhi\nEOF\nHEALTHCHECK --interval=5s CMD [\"x\"]\n",
            "ARG A=${B:-c}\nFROM $A AS x\nCOPY --from=x --chown=${U%%:*} a b\nRUN --mount=type=cache,target=/c,from=x true\n",
            "FROM a\nENV A=\"${X//a\\/b/$Y}\" B=${C#*/} D='${E?no}'\nSHELL [\"sh\",\"-c\"]\n",
        ]
        .map(String::from),
    );
    out
}

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const INTERESTING: &[&str] = &[
    "\\",
    "`",
    "\"",
    "'",
    "$",
    "${",
    "}",
    "{",
    "<<",
    "<<-",
    "<<'E'",
    "\n",
    "\r\n",
    " ",
    "\t",
    "#",
    "[",
    "]",
    ",",
    "=",
    ":",
    "-",
    "--",
    "--from=",
    "--mount=",
    "%",
    "%%",
    "#",
    "##",
    "/",
    "//",
    "*",
    "?",
    ":-",
    ":+",
    ":?",
    "é",
    "\u{a0}",
    "\u{85}",
    "\u{feff}",
    "\0",
    "ONBUILD ",
    "RUN ",
    "COPY ",
    "EOF\n",
    "\\\n",
    "`\n",
    "# escape=`\n",
    "0",
    "9999999999999999999999",
];

fn mutate(rng: &mut Rng, seeds: &[String]) -> String {
    let base = &seeds[rng.below(seeds.len())];
    let mut chars: Vec<char> = base.chars().collect();
    for _ in 0..1 + rng.below(8) {
        let len = chars.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => {
                let end = (at + rng.below(16)).min(len);
                chars.drain(at.min(end)..end);
            }
            1 => {
                let tok = INTERESTING[rng.below(INTERESTING.len())];
                chars.splice(at..at, tok.chars());
            }
            2 if len > 0 => {
                let i = rng.below(len);
                chars[i] = INTERESTING[rng.below(INTERESTING.len())]
                    .chars()
                    .next()
                    .unwrap_or('x');
            }
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + rng.below(200)).min(len);
                let piece: Vec<char> = chars[start..end].to_vec();
                chars.splice(at..at, piece);
            }
            4 => {
                let other: Vec<char> = seeds[rng.below(seeds.len())].chars().collect();
                let start = rng.below(other.len());
                let end = (start + rng.below(400)).min(other.len());
                chars.splice(at..at, other[start..end].iter().copied());
            }
            5 => chars.truncate(at),
            _ => {
                let c = char::from_u32(rng.next() as u32 % 0x3000).unwrap_or('?');
                chars.insert(at, c);
            }
        }
    }
    chars.into_iter().collect()
}

fn exercise(input: &str) {
    let _ = detect_syntax(input);
    for escape in ['\\', '`'] {
        let mut lex = Lex::new(escape);
        let env = Envs::from_slice(&["A=a", "B=", "PATH=/bin:/usr/bin", "X=*/"]);
        for line in input.lines().take(200) {
            let _ = lex.process_word(line, &env);
            let _ = lex.process_words(line, &env);
            let _ = lex.process_word_with_matches(line, &env);
            lex.raw_quotes = !lex.raw_quotes;
            lex.skip_unset_env = !lex.skip_unset_env;
            lex.raw_escapes = !lex.raw_escapes;
            let _ = parse_heredoc(line);
            let _ = parse_mount(line, None);
        }
    }
    let Ok(res) = parse(input) else { return };
    let _ = res.ast.dump();
    for node in &res.ast.children {
        let _ = node.arg_values();
    }
    let Ok(df) = Dockerfile::from_ast(&res) else {
        return;
    };
    let lex = Lex::new(df.escape_token);
    let env = Envs::from_slice(&["A=a", "TARGETARCH=amd64"]);
    for stage in &df.stages {
        for cmd in &stage.commands {
            let mut i = cmd.instruction.clone();
            let _ = i.expand(&mut word_expander(&lex, &env));
            if let berth_dockerfile::Instruction::Onbuild(o) = &cmd.instruction {
                let _ = o.trigger();
            }
            if let berth_dockerfile::Instruction::Run(r) = &cmd.instruction {
                let _ = r.mounts(&mut word_expander(&lex, &env));
            }
        }
    }
    if let Ok(g) = StageGraph::new(&df, &GraphOptions::default()) {
        let _ = g.plan(None);
        for s in &g.stages {
            if let Some(n) = &s.name {
                let _ = g.plan(Some(n));
            }
        }
    }
}

#[test]
fn mutated_inputs_never_panic() {
    let seeds = seeds();
    assert!(
        seeds.len() > 60,
        "expected the corpus and golden files, got {}",
        seeds.len()
    );
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut panics = Vec::new();
    let mut inputs: Vec<String> = seeds.clone();
    inputs.extend((0..MUTATIONS).map(|_| mutate(&mut rng, &seeds)));
    for input in &inputs {
        if catch_unwind(AssertUnwindSafe(|| exercise(input))).is_err() {
            panics.push(input.chars().take(300).collect::<String>());
        }
    }
    assert!(
        panics.is_empty(),
        "{} of {} inputs panicked; first: {:?}",
        panics.len(),
        inputs.len(),
        panics.first()
    );
}

#[test]
fn hostile_shapes_stay_bounded() {
    // Deep JSON nesting, long flag runs, many heredocs, pathological patterns.
    let deep_json = format!(
        "FROM a\nCMD {}\"x\"{}\n",
        "[".repeat(20_000),
        "]".repeat(20_000)
    );
    assert!(
        parse(&deep_json).is_ok(),
        "too deep for JSON: falls back to shell form"
    );
    let nested_ok = format!("FROM a\nCMD {}1{}\n", "[".repeat(500), "]".repeat(500));
    assert!(parse(&nested_ok).is_err(), "valid JSON, not strings");
    let many_flags = format!("FROM a\nCOPY {} a b\n", "--x=1 ".repeat(5000));
    assert!(parse(&many_flags).is_ok());
    let heredocs = format!("FROM a\nRUN {}\n", "<<E ".repeat(2000));
    assert!(parse(&heredocs).is_err(), "unterminated heredocs");
    let lex = Lex::new('\\');
    let env = Envs::from_slice(&[format!("V={}", "a".repeat(3000))]);
    let word = format!("${{V//{}b/x}}", "*a".repeat(40));
    assert_eq!(lex.process_word(&word, &env).unwrap(), "a".repeat(3000));
    let deep_default = format!("{}x{}", "${A:-".repeat(2000), "}".repeat(2000));
    assert!(lex.process_word(&deep_default, &env).is_err());
}
