//! Rules about single instructions: CMD/ENTRYPOINT form and count, EXPOSE,
//! WORKDIR, ADD, COPY destinations, ENV and ARG.

use berth_dockerfile::instructions::{CmdForm, Command, Instruction, KeyValue};
use berth_dockerfile::shell::EmptyEnv;

use crate::model::{suggest, Base, Ctx, Scope, PLATFORM_ARGS};
use crate::rule::Hit;

/// Characters that make a command line need a shell.
const SHELL_SYNTAX: &[char] = &[
    '$', '&', '|', ';', '<', '>', '*', '?', '(', ')', '`', '"', '\'', '\\', '~', '{', '}', '[', '#',
];

pub(crate) fn shell_form_cmd(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let (kw, line) = match &cmd.instruction {
            Instruction::Cmd(c) => ("CMD", c),
            Instruction::Entrypoint(c) => ("ENTRYPOINT", c),
            _ => continue,
        };
        let CmdForm::Shell(text) = &line.form else {
            continue;
        };
        // BuildKit does not recommend JSON when SHELL chose another shell.
        if text.trim().is_empty() || ctx.scope(s, ci).shell_set {
            continue;
        }
        let exec = if text.contains(SHELL_SYNTAX) {
            String::new()
        } else {
            let words: Vec<String> = text.split_whitespace().map(|w| format!("{w:?}")).collect();
            format!(": {kw} [{}]", words.join(", "))
        };
        hits.push(Hit {
            location: ctx.at(cmd),
            message: format!(
                "{kw} in shell form runs under /bin/sh -c, which does not pass SIGTERM on to the program; use the JSON form{exec}"
            ),
        });
    }
    hits
}

pub(crate) fn multiple_cmd_entrypoint(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for stage in &ctx.df.stages {
        let mut last: [Option<&Command>; 3] = [None, None, None];
        for cmd in &stage.commands {
            let slot = match cmd.instruction {
                Instruction::Cmd(_) => 0,
                Instruction::Entrypoint(_) => 1,
                Instruction::Healthcheck(_) => 2,
                _ => continue,
            };
            if let Some(prev) = last[slot] {
                hits.push(Hit {
                    location: ctx.at(prev),
                    message: format!(
                        "this {kw} is replaced by the {kw} at line {line}: only the last {kw} of a stage takes effect",
                        kw = prev.instruction.keyword(),
                        line = cmd.span.start_line
                    ),
                });
            }
            last[slot] = Some(cmd);
        }
    }
    hits
}

/// What is wrong with one EXPOSE argument, if anything.
enum PortProblem {
    /// `8080:80` or `127.0.0.1:80:80`: a publishing spec, not a port.
    Mapping,
    Invalid(String),
}

fn check_port(spec: &str) -> Option<PortProblem> {
    if spec.contains(':') {
        return Some(PortProblem::Mapping);
    }
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, Some(proto)),
        None => (spec, None),
    };
    if let Some(proto) = proto {
        if !matches!(proto.to_lowercase().as_str(), "tcp" | "udp" | "sctp") {
            return Some(PortProblem::Invalid(format!(
                "{proto:?} is not a protocol (tcp, udp or sctp)"
            )));
        }
    }
    let valid_port = |p: &str| {
        !p.is_empty()
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| n <= 65535)
    };
    let ok = match ports.split_once('-') {
        Some((a, b)) => {
            valid_port(a) && valid_port(b) && a.parse::<u32>().ok() <= b.parse::<u32>().ok()
        }
        None => valid_port(ports),
    };
    (!ok).then(|| {
        PortProblem::Invalid(format!(
            "{ports:?} is not a port (0-65535) or a range of ports"
        ))
    })
}

fn expose_specs<'c>(ctx: &Ctx, s: usize, ci: usize, cmd: &'c Command) -> Vec<(String, &'c str)> {
    let Instruction::Expose(ports) = &cmd.instruction else {
        return Vec::new();
    };
    let scope = ctx.scope(s, ci);
    ports
        .iter()
        .filter_map(|raw| {
            let value = scope.expand(&ctx.lex, raw).value?;
            Some(
                value
                    .split_whitespace()
                    .map(|v| (v.to_string(), raw.as_str()))
                    .collect::<Vec<_>>(),
            )
        })
        .flatten()
        .collect()
}

pub(crate) fn invalid_expose(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        for (spec, raw) in expose_specs(ctx, s, ci, cmd) {
            let message = match check_port(&spec) {
                None => continue,
                Some(PortProblem::Mapping) => format!(
                    "EXPOSE {spec} names a host address or port: EXPOSE takes the container's port only; publishing is `docker run -p`'s job"
                ),
                Some(PortProblem::Invalid(why)) => format!("EXPOSE {spec}: {why}"),
            };
            hits.push(Hit {
                location: ctx.locate(cmd, &[raw]),
                message,
            });
        }
    }
    hits
}

pub(crate) fn expose_proto_casing(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        for (spec, raw) in expose_specs(ctx, s, ci, cmd) {
            let Some((_, proto)) = spec.split_once('/') else {
                continue;
            };
            if proto != proto.to_lowercase()
                && matches!(proto.to_lowercase().as_str(), "tcp" | "udp" | "sctp")
            {
                hits.push(Hit {
                    location: ctx.locate(cmd, &[raw]),
                    message: format!(
                        "protocol {proto:?} in EXPOSE {spec} should be lowercase: {}",
                        proto.to_lowercase()
                    ),
                });
            }
        }
    }
    hits
}

pub(crate) fn relative_workdir(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let Instruction::Workdir(w) = &cmd.instruction else {
            continue;
        };
        let scope = ctx.scope(s, ci);
        let Some(path) = scope.expand(&ctx.lex, w).value else {
            continue;
        };
        if path.starts_with('/') || scope.absolute_workdir_declared {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &[w]),
            message: format!(
                "WORKDIR {path} is relative to the base image's working directory, which this Dockerfile does not set"
            ),
        });
    }
    hits
}

/// File names ADD would extract, or might (a compressed file).
const ARCHIVE_SUFFIXES: &[&str] = &[
    ".tar", ".tgz", ".tbz", ".tbz2", ".txz", ".tzst", ".gz", ".bz2", ".xz", ".zst", ".lz4",
];

pub(crate) fn add_instead_of_copy(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let Instruction::Add(add) = &cmd.instruction else {
            continue;
        };
        if add.checksum.is_some() || add.keep_git_dir.is_some() || add.unpack == Some(true) {
            continue;
        }
        let scope = ctx.scope(s, ci);
        let mut local = Vec::new();
        let mut plain = true;
        for src in &add.sources.source_paths {
            let Some(value) = scope.expand(&ctx.lex, src).value else {
                plain = false;
                break;
            };
            let lower = value.to_lowercase();
            if lower.contains("://")
                || lower.starts_with("git@")
                || ARCHIVE_SUFFIXES.iter().any(|x| lower.ends_with(x))
            {
                plain = false;
                break;
            }
            local.push(value);
        }
        if !plain {
            continue;
        }
        let what = if local.is_empty() {
            "an inline file".to_string()
        } else {
            local.join(" ")
        };
        hits.push(Hit {
            location: ctx.locate(cmd, &[&cmd.keyword]),
            message: format!(
                "ADD {what} copies local files, which is what COPY does; ADD would also unpack archives and fetch URLs"
            ),
        });
    }
    hits
}

pub(crate) fn copy_dest_not_dir(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd) in ctx.all_commands() {
        let sources = match &cmd.instruction {
            Instruction::Copy(c) => &c.sources,
            Instruction::Add(a) => &a.sources,
            _ => continue,
        };
        let count = sources.source_paths.len() + sources.source_contents.len();
        let dest = sources.dest.as_str();
        if count < 2
            || dest.ends_with('/')
            || matches!(dest, "." | ".." | "./")
            || dest.contains('$')
        {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &[dest]),
            message: format!(
                "{} of {count} sources needs a directory destination ending in /: write {dest}/",
                cmd.instruction.keyword()
            ),
        });
    }
    hits
}

/// Variables a word uses, expanded or not.
fn referenced(ctx: &Ctx, word: &str) -> Vec<String> {
    ctx.lex
        .process_word_with_matches(word, &EmptyEnv)
        .map(|r| r.unmatched.into_iter().collect())
        .unwrap_or_default()
}

pub(crate) fn env_self_reference(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let Instruction::Env(kvs) = &cmd.instruction else {
            continue;
        };
        let scope = ctx.scope(s, ci);
        for (j, kv) in kvs.iter().enumerate() {
            for name in referenced(ctx, &kv.value) {
                let set_here = kvs[..j].iter().any(|earlier| earlier.key == name);
                if set_here && !scope.defines(&name) {
                    hits.push(Hit {
                        location: ctx.locate(cmd, &[&format!("{}=", kv.key), &kv.key]),
                        message: format!(
                            "{} uses ${name}, which this same ENV sets: every value of an ENV sees the variables from before it, so ${name} is empty here",
                            kv.key
                        ),
                    });
                }
            }
        }
    }
    hits
}

/// Words of a name that make it look like a secret (BuildKit's list, with
/// `pass` and `pwd` added).
const SECRET_WORDS: &[&str] = &[
    "apikey",
    "auth",
    "credential",
    "credentials",
    "key",
    "password",
    "pword",
    "passwd",
    "pass",
    "pwd",
    "passphrase",
    "secret",
    "token",
];

/// Words that make such a name about something else: a path, a public key, a
/// setting (BuildKit's `public`, `file`, `version`, and more).
const NOT_SECRET_WORDS: &[&str] = &[
    "public",
    "file",
    "version",
    "gpg",
    "pgp",
    "fingerprint",
    "path",
    "dir",
    "url",
    "uri",
    "host",
    "port",
    "name",
    "user",
    "username",
    "method",
    "type",
    "algorithm",
    "length",
    "size",
    "server",
    "endpoint",
    "domain",
    "realm",
    "provider",
    "mode",
    "allow",
    "random",
    "empty",
    "required",
    "enabled",
    "policy",
    "header",
];

/// Whether a variable name looks like it holds a secret.
pub(crate) fn secret_name(name: &str) -> bool {
    let words: Vec<String> = name.split('_').map(str::to_lowercase).collect();
    words.iter().any(|w| SECRET_WORDS.contains(&w.as_str()))
        && !words.iter().any(|w| NOT_SECRET_WORDS.contains(&w.as_str()))
}

/// A value written out in the Dockerfile (no variables), other than a flag.
fn literal_value(ctx: &Ctx, value: &str) -> Option<String> {
    let res = ctx.lex.process_word_with_matches(value, &EmptyEnv).ok()?;
    if !res.matched.is_empty() || !res.unmatched.is_empty() {
        return None;
    }
    let v = res.result;
    let flag = matches!(
        v.to_lowercase().as_str(),
        "" | "true" | "false" | "yes" | "no" | "on" | "off" | "0" | "1"
    );
    (!flag).then_some(v)
}

/// A secret-looking ARG or ENV: (command, key, value as written, is ENV).
struct SecretDef<'a> {
    cmd: &'a Command,
    key: &'a str,
    value: Option<&'a str>,
    env: bool,
}

fn secret_defs<'a>(ctx: &Ctx<'a>) -> Vec<SecretDef<'a>> {
    let mut out = Vec::new();
    let commands = ctx
        .df
        .meta_args
        .iter()
        .chain(ctx.df.stages.iter().flat_map(|s| s.commands.iter()));
    for cmd in commands {
        match &cmd.instruction {
            Instruction::Arg(defs) => {
                for d in defs.iter().filter(|d| secret_name(&d.key)) {
                    out.push(SecretDef {
                        cmd,
                        key: &d.key,
                        value: d.value.as_deref(),
                        env: false,
                    });
                }
            }
            Instruction::Env(kvs) => {
                for KeyValue { key, value, .. } in kvs.iter().filter(|kv| secret_name(&kv.key)) {
                    out.push(SecretDef {
                        cmd,
                        key,
                        value: Some(value),
                        env: true,
                    });
                }
            }
            _ => {}
        }
    }
    out
}

fn key_location(ctx: &Ctx, cmd: &Command, key: &str) -> crate::Location {
    ctx.locate(cmd, &[&format!("{key}="), key])
}

pub(crate) fn secret_in_env_or_arg(ctx: &Ctx) -> Vec<Hit> {
    secret_defs(ctx)
        .into_iter()
        .filter(|d| d.value.and_then(|v| literal_value(ctx, v)).is_some())
        .map(|d| Hit {
            location: key_location(ctx, d.cmd, d.key),
            message: format!(
                "{} {} is given a literal value: it is in the Dockerfile and {}",
                d.cmd.instruction.keyword(),
                d.key,
                if d.env {
                    "in the image config, where `docker inspect` shows it"
                } else {
                    "in the build history of the RUN steps after it"
                }
            ),
        })
        .collect()
}

pub(crate) fn secret_via_build_arg(ctx: &Ctx) -> Vec<Hit> {
    secret_defs(ctx)
        .into_iter()
        .filter_map(|d| {
            let literal = d.value.and_then(|v| literal_value(ctx, v));
            if literal.is_some() {
                return None;
            }
            let empty = d.value.is_none_or(|v| referenced(ctx, v).is_empty());
            let message = if d.env {
                if empty {
                    return None;
                }
                format!(
                    "ENV {} copies a value into the image config, where anyone who pulls the image can read it",
                    d.key
                )
            } else {
                format!(
                    "ARG {} passes a secret as a build argument: build arguments are recorded in the image history and build provenance",
                    d.key
                )
            };
            Some(Hit {
                location: key_location(ctx, d.cmd, d.key),
                message,
            })
        })
        .collect()
}

/// The words of an instruction that BuildKit expands (RUN, CMD and
/// ENTRYPOINT are left to the shell).
fn expanded_words(inst: &Instruction) -> Vec<&str> {
    match inst {
        Instruction::Env(kvs) | Instruction::Label(kvs) => {
            kvs.iter().map(|kv| kv.value.as_str()).collect()
        }
        Instruction::Arg(defs) => defs.iter().filter_map(|d| d.value.as_deref()).collect(),
        Instruction::Copy(c) => c
            .sources
            .source_paths
            .iter()
            .map(String::as_str)
            .chain([c.sources.dest.as_str()])
            .chain(c.chown.as_deref())
            .chain(c.chmod.as_deref())
            .collect(),
        Instruction::Add(a) => a
            .sources
            .source_paths
            .iter()
            .map(String::as_str)
            .chain([a.sources.dest.as_str()])
            .chain(a.chown.as_deref())
            .chain(a.chmod.as_deref())
            .collect(),
        Instruction::Workdir(w) | Instruction::User(w) | Instruction::StopSignal(w) => {
            vec![w.as_str()]
        }
        Instruction::Volume(v) | Instruction::Expose(v) => v.iter().map(String::as_str).collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn undefined_var(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.all_commands() {
        let scope: &Scope = ctx.scope(s, ci);
        let (_, root) = ctx.root_base(s);
        let from_scratch = matches!(root, Base::Scratch);
        let declared: Vec<String> = scope.vars.keys().cloned().collect();
        let mut reported: Vec<String> = Vec::new();
        for word in expanded_words(&cmd.instruction) {
            for name in scope.expand(&ctx.lex, word).undefined {
                if reported.contains(&name) {
                    continue;
                }
                let message = if ctx.meta.defines(&name) || PLATFORM_ARGS.contains(&name.as_str()) {
                    format!(
                        "${name} is not in scope in this stage: an ARG before FROM is visible to FROM lines only; add `ARG {name}` to the stage"
                    )
                } else if let Some(s) = suggest(&name, &declared) {
                    format!("${name} is not defined (did you mean ${s}?)")
                } else if from_scratch {
                    format!("${name} is not defined: this stage starts from scratch, so it expands to nothing")
                } else {
                    // The base image may define it: berth does not pull images.
                    continue;
                };
                reported.push(name.clone());
                hits.push(Hit {
                    location: ctx.locate(cmd, &[&format!("${{{name}}}"), &format!("${name}")]),
                    message,
                });
            }
        }
    }
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        for ok in [
            "80",
            "80/tcp",
            "53/udp",
            "8000-8010",
            "65535",
            "0",
            "80/TCP",
        ] {
            assert!(check_port(ok).is_none(), "{ok}");
        }
        for bad in [
            "8080:80",
            "127.0.0.1:80:80",
            "65536",
            "http",
            "80/http",
            "90-80",
            "",
            "-1",
        ] {
            assert!(check_port(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn secret_names() {
        for s in [
            "PASSWORD",
            "MYSQL_ROOT_PASSWORD",
            "api_key",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASS",
            "AUTH",
        ] {
            assert!(secret_name(s), "{s}");
        }
        for s in [
            "GPG_KEY",
            "PASSWORD_FILE",
            "TOKEN_URL",
            "KEY_VERSION",
            "MYSQL_ALLOW_EMPTY_PASSWORD",
            "POSTGRES_HOST_AUTH_METHOD",
            "KEYBOARD",
            "MONKEY",
            "PUBLIC_KEY",
        ] {
            assert!(!secret_name(s), "{s}");
        }
    }
}
