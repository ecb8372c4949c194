//! Context hygiene: included files that look like secrets or bloat, for
//! `berth lint` and the build report (DESIGN §4.7).
//!
//! A context is sent whole, and a `COPY . .` puts every included file into a
//! layer, where deleting it later does not remove it. The rules below name the
//! usual suspects; each finding carries a `.dockerignore` line that fixes it.
//!
//! Rules are data: a stable id, what they guard against, and the shape of path
//! they match. Directory rules report the directory once with the number and
//! size of the files below it, rather than every file of a `node_modules`.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};

use crate::golang;
use crate::matcher::{matches_a_parent, Matcher};
use crate::walk::{Entry, FileKind};

/// Why an included path deserves a warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Concern {
    /// It may hold credentials that would end up in an image layer.
    Secret,
    /// It makes the context (and maybe the image) large for no benefit.
    Bloat,
}

/// One kind of path worth a warning.
#[derive(Debug)]
pub struct Rule {
    /// Stable kebab-case identifier, for reports and suppression.
    pub id: &'static str,
    pub concern: Concern,
    /// One-line reason shown to the user.
    pub summary: &'static str,
    /// A `.dockerignore` line that excludes what the rule matches.
    pub ignore_line: &'static str,
    shape: Shape,
}

#[derive(Debug)]
enum Shape {
    /// A directory with this exact name, at any depth.
    Dir(&'static str),
    /// A regular file whose name starts with this (ASCII case-insensitive).
    NamePrefix(&'static str),
    /// A regular file whose name ends with this (ASCII case-insensitive).
    NameSuffix(&'static str),
    /// `.env`, or `.env.<stage>` other than the usual committed templates.
    EnvFile,
}

/// The rules, in the order findings of equal paths are tried.
pub static RULES: &[Rule] = &[
    Rule {
        id: "git-directory",
        concern: Concern::Bloat,
        summary: "version-control history: large, and it keeps secrets that were ever committed",
        ignore_line: ".git",
        shape: Shape::Dir(".git"),
    },
    Rule {
        id: "node-modules",
        concern: Concern::Bloat,
        summary: "installed dependencies: install them in the image instead",
        ignore_line: "**/node_modules",
        shape: Shape::Dir("node_modules"),
    },
    Rule {
        id: "build-output",
        concern: Concern::Bloat,
        summary: "build output (Cargo, Maven): build it in the image instead",
        ignore_line: "**/target",
        shape: Shape::Dir("target"),
    },
    Rule {
        id: "aws-directory",
        concern: Concern::Secret,
        summary: "AWS CLI credentials and configuration",
        ignore_line: "**/.aws",
        shape: Shape::Dir(".aws"),
    },
    Rule {
        id: "credentials-file",
        concern: Concern::Secret,
        summary: "a credentials file",
        ignore_line: "**/credentials*",
        shape: Shape::NamePrefix("credentials"),
    },
    Rule {
        id: "pem-file",
        concern: Concern::Secret,
        summary: "a PEM file: a certificate or a private key",
        ignore_line: "**/*.pem",
        shape: Shape::NameSuffix(".pem"),
    },
    Rule {
        id: "key-file",
        concern: Concern::Secret,
        summary: "a private key",
        ignore_line: "**/*.key",
        shape: Shape::NameSuffix(".key"),
    },
    Rule {
        id: "ssh-key",
        concern: Concern::Secret,
        summary: "an SSH key",
        ignore_line: "**/id_rsa*",
        shape: Shape::NamePrefix("id_rsa"),
    },
    Rule {
        id: "env-file",
        concern: Concern::Secret,
        summary: "an environment file: settings, and often tokens and passwords",
        ignore_line: "**/.env*",
        shape: Shape::EnvFile,
    },
];

/// One included path that a rule flags.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The flagged directory or file, relative to the context root.
    pub path: PathBuf,
    pub rule: &'static Rule,
    /// Regular files included at or below `path`.
    pub files: u64,
    /// Their total size in bytes.
    pub bytes: u64,
    /// The `.dockerignore` exception (`!pattern`) that matches this path, if
    /// any: the user re-included it on purpose, so a report may say so rather
    /// than insist.
    pub reincluded_by: Option<String>,
}

/// Lists the entries of a context walk that look like secrets or bloat, in walk
/// order. `excludes` is the context's `.dockerignore` (to tell deliberate
/// re-inclusions apart); entries are assumed to be what the walk included.
///
/// A directory rule reports the outermost matching directory once (a `.git`
/// inside `node_modules` is part of the `node_modules` finding); a file rule
/// reports each matching regular file outside flagged directories.
pub fn audit(entries: &[Entry], excludes: Option<&Matcher>) -> Vec<Finding> {
    let mut findings: Vec<Finding> = Vec::new();
    let mut by_dir: HashMap<PathBuf, usize> = HashMap::new();
    for entry in entries {
        let names: Vec<&OsStr> = entry.path.iter().collect();
        let last = names.len().saturating_sub(1);
        let dir_hit = names.iter().enumerate().find_map(|(i, name)| {
            // A final component is a directory only if the entry is one.
            if i == last && entry.kind != FileKind::Dir {
                return None;
            }
            dir_rule(name).map(|rule| (i, rule))
        });
        let (files, bytes) = match entry.kind {
            FileKind::File => (1, entry.size),
            _ => (0, 0),
        };
        if let Some((i, rule)) = dir_hit {
            let dir: PathBuf = names[..=i].iter().collect();
            let index = *by_dir.entry(dir.clone()).or_insert_with(|| {
                findings.push(Finding {
                    reincluded_by: reincluded_by(excludes, &dir),
                    path: dir,
                    rule,
                    files: 0,
                    bytes: 0,
                });
                findings.len() - 1
            });
            findings[index].files += files;
            findings[index].bytes += bytes;
            continue;
        }
        if entry.kind != FileKind::File {
            continue;
        }
        let Some(name) = names.last() else { continue };
        if let Some(rule) = file_rule(name.as_bytes()) {
            findings.push(Finding {
                path: entry.path.clone(),
                rule,
                files,
                bytes,
                reincluded_by: reincluded_by(excludes, &entry.path),
            });
        }
    }
    findings
}

fn dir_rule(name: &OsStr) -> Option<&'static Rule> {
    RULES
        .iter()
        .find(|r| matches!(r.shape, Shape::Dir(d) if name.as_bytes() == d.as_bytes()))
}

fn file_rule(name: &[u8]) -> Option<&'static Rule> {
    RULES.iter().find(|r| match r.shape {
        Shape::Dir(_) => false,
        Shape::NamePrefix(prefix) => name
            .get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes())),
        Shape::NameSuffix(suffix) => name
            .len()
            .checked_sub(suffix.len())
            .is_some_and(|at| name[at..].eq_ignore_ascii_case(suffix.as_bytes())),
        Shape::EnvFile => is_env_file(name),
    })
}

/// `.env` and `.env.local`, `.env.production`, ...; not `.env.example` and the
/// other names projects use for a template that is meant to be committed.
fn is_env_file(name: &[u8]) -> bool {
    const TEMPLATES: &[&[u8]] = &[b"example", b"sample", b"template", b"dist"];
    match name.strip_prefix(b".env") {
        Some([]) => true,
        Some([b'.', stage @ ..]) => !stage.is_empty() && !TEMPLATES.contains(&stage),
        _ => false,
    }
}

/// The last exception pattern that matches `path` or one of its parents.
fn reincluded_by(excludes: Option<&Matcher>, path: &Path) -> Option<String> {
    let path = golang::go_lossy(path.as_os_str().as_bytes());
    excludes?
        .patterns()
        .iter()
        .rev()
        .filter(|p| p.is_exclusion())
        .find(|p| p.is_match(&path).unwrap_or(false) || matches_a_parent(p, &path))
        .map(ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: FileKind, size: u64) -> Entry {
        Entry {
            path: PathBuf::from(path),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            link_target: None,
            hardlink_of: None,
            device: None,
        }
    }

    fn file(path: &str, size: u64) -> Entry {
        entry(path, FileKind::File, size)
    }

    fn dir(path: &str) -> Entry {
        entry(path, FileKind::Dir, 0)
    }

    fn ids(findings: &[Finding]) -> Vec<(String, &'static str)> {
        findings
            .iter()
            .map(|f| (f.path.display().to_string(), f.rule.id))
            .collect()
    }

    #[test]
    fn directories_are_reported_once_with_totals() {
        let entries = [
            dir(".git"),
            file(".git/HEAD", 23),
            dir(".git/objects"),
            file(".git/objects/ab", 100),
            dir("web"),
            dir("web/node_modules"),
            dir("web/node_modules/left-pad"),
            file("web/node_modules/left-pad/index.js", 10),
            dir("web/node_modules/left-pad/.git"),
            file("web/node_modules/left-pad/.git/config", 5),
            file("web/app.js", 1),
        ];
        let findings = audit(&entries, None);
        assert_eq!(
            ids(&findings),
            [
                (".git".to_string(), "git-directory"),
                ("web/node_modules".to_string(), "node-modules"),
            ]
        );
        assert_eq!((findings[0].files, findings[0].bytes), (2, 123));
        assert_eq!((findings[1].files, findings[1].bytes), (2, 15));
        assert_eq!(findings[1].rule.concern, Concern::Bloat);
    }

    #[test]
    fn secret_files() {
        let entries = [
            file("credentials.json", 1),
            file("certs/server.PEM", 1),
            file("tls/server.key", 1),
            file("home/id_rsa", 1),
            file("home/id_rsa.pub", 1),
            file(".env", 1),
            file("app/.env.production", 1),
            file(".env.example", 1),
            file(".envrc", 1),
            dir(".aws"),
            file(".aws/credentials", 1),
            file("src/keys.rs", 1),
            entry("link.pem", FileKind::Symlink, 5),
            dir("target.key"),
        ];
        let findings = audit(&entries, None);
        assert_eq!(
            ids(&findings),
            [
                ("credentials.json".to_string(), "credentials-file"),
                ("certs/server.PEM".to_string(), "pem-file"),
                ("tls/server.key".to_string(), "key-file"),
                ("home/id_rsa".to_string(), "ssh-key"),
                ("home/id_rsa.pub".to_string(), "ssh-key"),
                (".env".to_string(), "env-file"),
                ("app/.env.production".to_string(), "env-file"),
                (".aws".to_string(), "aws-directory"),
            ]
        );
        assert!(findings.iter().all(|f| f.rule.concern == Concern::Secret));
    }

    #[test]
    fn a_file_named_like_a_directory_rule_is_not_one() {
        // A submodule's `.git` is a small file pointing at the real repository.
        assert!(audit(&[file("vendor/lib/.git", 30), file("target", 3)], None).is_empty());
    }

    #[test]
    fn deliberate_reinclusion_is_noted() {
        let m = Matcher::new(["*.pem", "!certs/ca.pem", "config", "!config/.env"]).unwrap();
        let findings = audit(
            &[
                file("certs/ca.pem", 1),
                file("config/.env", 1),
                file("other.key", 1),
            ],
            Some(&m),
        );
        let notes: Vec<_> = findings
            .iter()
            .map(|f| f.reincluded_by.as_deref())
            .collect();
        assert_eq!(notes, [Some("!certs/ca.pem"), Some("!config/.env"), None]);
    }

    #[test]
    fn rule_ids_are_unique_kebab_case() {
        let mut seen = std::collections::HashSet::new();
        for rule in RULES {
            assert!(seen.insert(rule.id), "duplicate {}", rule.id);
            assert!(rule.id.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'));
            // Each suggested line is a valid pattern.
            Matcher::new([rule.ignore_line])
                .unwrap()
                .validate()
                .unwrap();
        }
    }
}
