//! Rules about what RUN instructions do: package managers, layers, users,
//! permissions, and the order of COPY and dependency installs.
//!
//! Rules about image size look only at the stages whose layers end up in the
//! final image ([`Ctx::final_commands`]): a builder stage's layers are thrown
//! away, and a reviewer would not ask to trim them.

use berth_dockerfile::instructions::{Command, Instruction, RunInstruction};

use crate::model::{clean_path, glob_match, has_glob, path_within, unpersisted_mounts, Ctx, Scope};
use crate::rule::Hit;
use crate::shell::{Joiner, Script, SimpleCommand, Word};

/// The first argument that is not an option (skipping the values of options
/// listed in `with_value`), and its index.
fn subcommand<'w>(args: &'w [Word], with_value: &[&str]) -> Option<(usize, &'w str)> {
    let mut i = 0;
    while i < args.len() {
        let t = args[i].text.as_str();
        if t == "--" {
            return args.get(i + 1).map(|w| (i + 1, w.text.as_str()));
        }
        if t.starts_with('-') && t.len() > 1 {
            i += if with_value.contains(&t) { 2 } else { 1 };
            continue;
        }
        return Some((i, t));
    }
    None
}

/// The RUN instructions of some commands, with their scripts.
fn runs<'a>(
    ctx: &'a Ctx,
    commands: impl Iterator<Item = (usize, usize, &'a Command)> + 'a,
) -> impl Iterator<Item = (usize, usize, &'a Command, &'a RunInstruction, &'a Script)> + 'a {
    commands.filter_map(move |(s, ci, cmd)| match &cmd.instruction {
        Instruction::Run(r) => ctx.script(s, ci).map(|script| (s, ci, cmd, r, script)),
        _ => None,
    })
}

fn rm_targets(c: &SimpleCommand) -> Vec<&Word> {
    if c.name() != Some("rm") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut options = true;
    for w in c.args() {
        if options && w.text == "--" {
            options = false;
        } else if options && w.text.starts_with('-') {
            continue;
        } else {
            out.push(w);
        }
    }
    out
}

/// Whether the script removes a path under one of `prefixes`, or a cache or
/// tmpfs mount keeps those paths out of the layer.
fn cleans(script: &Script, run: &RunInstruction, prefixes: &[&str]) -> bool {
    let removed = script.named().any(|(_, c)| {
        rm_targets(c)
            .iter()
            .any(|w| prefixes.iter().any(|p| w.text.starts_with(p)))
    });
    removed
        || unpersisted_mounts(run).iter().any(|m| {
            prefixes
                .iter()
                .any(|p| m.starts_with(p) || p.starts_with(m.as_str()))
        })
}

// --- apt -------------------------------------------------------------------

const APT_OPTIONS_WITH_VALUE: &[&str] = &[
    "-o",
    "-c",
    "-t",
    "-a",
    "--option",
    "--config-file",
    "--target-release",
    "--default-release",
    "--host-architecture",
];

/// `apt-get` or `apt` and its subcommand.
fn apt(c: &SimpleCommand) -> Option<(&str, &str)> {
    let name = c.name()?;
    if !matches!(name, "apt-get" | "apt") {
        return None;
    }
    let (_, sub) = subcommand(c.args(), APT_OPTIONS_WITH_VALUE)?;
    Some((name, sub))
}

pub(crate) fn apt_lists_not_removed(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, run, script) in runs(ctx, ctx.final_commands()) {
        let updates = script.named().any(|(_, c)| match apt(c) {
            Some((_, "update")) => true,
            Some((_, "install")) => c.has_flag("--update"),
            _ => false,
        });
        if !updates {
            continue;
        }
        let dist_clean = script
            .named()
            .any(|(_, c)| matches!(apt(c), Some((_, "dist-clean"))));
        if dist_clean || cleans(script, run, &["/var/lib/apt/lists", "/var/lib/apt"]) {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &["update", "--update"]),
            message: "the package lists apt downloads stay in this layer (tens of MB): remove /var/lib/apt/lists/* at the end of the same RUN".into(),
        });
    }
    hits
}

/// Whether an earlier RUN (or this one) configures apt for the whole image.
fn apt_configured(ctx: &Ctx, upto: &Command, setting: &str) -> bool {
    ctx.final_commands()
        .take_while(|(_, _, c)| !std::ptr::eq(*c, upto))
        .chain(std::iter::once((0, 0, upto)))
        .any(|(_, _, c)| matches!(c.instruction, Instruction::Run(_)) && c.code.contains(setting))
}

pub(crate) fn apt_no_install_recommends(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, _, script) in runs(ctx, ctx.final_commands()) {
        let missing = script.named().find(|(_, c)| {
            matches!(apt(c), Some((_, "install")))
                && !c.has_flag("--no-install-recommends")
                && !c
                    .args()
                    .iter()
                    .any(|w| w.text.contains("Install-Recommends"))
        });
        if missing.is_none() || apt_configured(ctx, cmd, "Install-Recommends") {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &["install"]),
            message: "apt-get install without --no-install-recommends also installs every recommended package".into(),
        });
    }
    hits
}

pub(crate) fn apt_in_run(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, _, script) in runs(ctx, ctx.all_commands()) {
        let used = script.named().find_map(|(_, c)| match apt(c) {
            Some(("apt", sub)) => Some(sub.to_string()),
            _ => None,
        });
        if let Some(sub) = used {
            hits.push(Hit {
                location: ctx.locate(cmd, &["apt"]),
                message: format!(
                    "`apt {sub}` is meant for people at a terminal and warns that its interface may change; scripts use apt-get"
                ),
            });
        }
    }
    hits
}

// --- non-interactive installs ----------------------------------------------

fn short_cluster_has(w: &str, c: char) -> bool {
    w.starts_with('-') && !w.starts_with("--") && w[1..].contains(c)
}

fn apt_assumes_yes(c: &SimpleCommand) -> bool {
    c.args().iter().any(|w| {
        let t = w.text.as_str();
        matches!(t, "--yes" | "--assume-yes" | "--force-yes" | "-q=2")
            || t.starts_with("--assume-yes=")
            || t.contains("Assume-Yes=true")
            || t.contains("Assume-Yes=1")
            || short_cluster_has(t, 'y')
            // `-qq` implies `-y` (apt-get(8)).
            || (t.starts_with('-') && !t.starts_with("--") && t.matches('q').count() >= 2)
    })
}

fn yum_assumes_yes(c: &SimpleCommand) -> bool {
    c.args().iter().any(|w| {
        let t = w.text.as_str();
        matches!(t, "--assumeyes" | "--yes") || short_cluster_has(t, 'y')
    })
}

const YUM_OPTIONS_WITH_VALUE: &[&str] = &[
    "-c",
    "-d",
    "-e",
    "-x",
    "--config",
    "--exclude",
    "--enablerepo",
    "--disablerepo",
    "--repo",
    "--repoid",
    "--setopt",
    "--releasever",
    "--installroot",
];

const ZYPPER_OPTIONS_WITH_VALUE: &[&str] = &[
    "-R",
    "--root",
    "-D",
    "--reposd-dir",
    "-C",
    "--cache-dir",
    "--raw-cache-dir",
    "--solv-cache-dir",
    "--pkg-cache-dir",
    "-c",
    "--config",
];

/// A package-manager command that would stop at a yes/no prompt, if any.
fn prompts(c: &SimpleCommand, prev: Option<&SimpleCommand>) -> Option<String> {
    // `yes | apt-get install …` answers the prompt.
    if c.joiner == Joiner::Pipe && prev.and_then(SimpleCommand::name) == Some("yes") {
        return None;
    }
    let name = c.name()?;
    match name {
        "apt-get" | "apt" => {
            let (_, sub) = apt(c)?;
            let asks = matches!(
                sub,
                "install"
                    | "upgrade"
                    | "dist-upgrade"
                    | "full-upgrade"
                    | "remove"
                    | "purge"
                    | "autoremove"
                    | "build-dep"
                    | "reinstall"
            );
            (asks && !apt_assumes_yes(c)).then(|| format!("{name} {sub}"))
        }
        "yum" | "dnf" | "tdnf" => {
            let (_, sub) = subcommand(c.args(), YUM_OPTIONS_WITH_VALUE)?;
            let asks = matches!(
                sub,
                "install"
                    | "update"
                    | "upgrade"
                    | "remove"
                    | "erase"
                    | "reinstall"
                    | "downgrade"
                    | "groupinstall"
                    | "autoremove"
                    | "distro-sync"
            );
            (asks && !yum_assumes_yes(c)).then(|| format!("{name} {sub}"))
        }
        "zypper" => {
            let args = c.args();
            let (i, sub) = subcommand(args, ZYPPER_OPTIONS_WITH_VALUE)?;
            let global_yes = args[..i].iter().any(|w| {
                matches!(w.text.as_str(), "-n" | "--non-interactive")
                    || short_cluster_has(&w.text, 'n')
            });
            let yes = args[i..]
                .iter()
                .any(|w| matches!(w.text.as_str(), "-y" | "--no-confirm"));
            let asks = matches!(
                sub,
                "install"
                    | "in"
                    | "update"
                    | "up"
                    | "remove"
                    | "rm"
                    | "dist-upgrade"
                    | "dup"
                    | "patch"
            );
            (asks && !global_yes && !yes).then(|| format!("zypper {sub}"))
        }
        _ => None,
    }
}

pub(crate) fn non_interactive_install(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, _, script) in runs(ctx, ctx.all_commands()) {
        if cmd.code.contains("Assume-Yes") {
            continue;
        }
        let mut prev: Option<&SimpleCommand> = None;
        for c in &script.commands {
            if let Some(what) = prompts(c, prev) {
                let name = what.split(' ').next().unwrap_or("");
                hits.push(Hit {
                    location: ctx.locate(cmd, &[name]),
                    message: format!(
                        "`{what}` asks for confirmation, and a build has no one to answer: it aborts; add -y"
                    ),
                });
                break;
            }
            prev = Some(c);
        }
    }
    hits
}

// --- package caches --------------------------------------------------------

const APK_OPTIONS_WITH_VALUE: &[&str] = &[
    "-X",
    "--repository",
    "-t",
    "--virtual",
    "-p",
    "--root",
    "--arch",
    "--repositories-file",
    "--keys-dir",
    "--cache-dir",
    "--cache-max-age",
];

pub(crate) fn apk_no_cache(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, run, script) in runs(ctx, ctx.final_commands()) {
        let caching = script.named().find_map(|(_, c)| {
            if c.name() != Some("apk") {
                return None;
            }
            let (_, sub) = subcommand(c.args(), APK_OPTIONS_WITH_VALUE)?;
            let writes_index = matches!(sub, "add" | "update" | "upgrade")
                && !c.has_flag("--no-cache")
                && !c.has_flag("--no-network");
            writes_index.then(|| sub.to_string())
        });
        let Some(sub) = caching else {
            continue;
        };
        let cache_cleaned = script.named().any(|(_, c)| {
            c.name() == Some("apk")
                && matches!(
                    subcommand(c.args(), APK_OPTIONS_WITH_VALUE),
                    Some((_, "cache"))
                )
        });
        if cache_cleaned || cleans(script, run, &["/var/cache/apk", "/etc/apk/cache"]) {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &[sub.as_str(), "apk"]),
            message: format!(
                "`apk {sub}` without --no-cache leaves the package index in /var/cache/apk, in this layer"
            ),
        });
    }
    hits
}

const PIP_GLOBAL_OPTIONS_WITH_VALUE: &[&str] = &[
    "--proxy",
    "--log",
    "--cache-dir",
    "--python",
    "--timeout",
    "--retries",
    "--exists-action",
    "--trusted-host",
    "--cert",
    "--client-cert",
];

/// The arguments of a pip invocation after `pip` (or `python -m pip`).
fn pip_args(c: &SimpleCommand) -> Option<&[Word]> {
    let name = c.name()?;
    let args = c.args();
    let is_pip = name
        .strip_prefix("pip")
        .is_some_and(|v| v.chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
    if is_pip {
        return Some(args);
    }
    let is_python = name
        .strip_prefix("python")
        .is_some_and(|v| v.chars().all(|ch| ch.is_ascii_digit() || ch == '.'));
    if is_python {
        let i = args.iter().position(|w| w.text == "-m")?;
        if args.get(i + 1).is_some_and(|w| w.text == "pip") {
            return Some(&args[i + 2..]);
        }
    }
    None
}

pub(crate) fn pip_no_cache_dir(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd, run, script) in runs(ctx, ctx.final_commands()) {
        if ctx.scope(s, ci).defines("PIP_NO_CACHE_DIR") || cmd.code.contains("PIP_NO_CACHE_DIR") {
            continue;
        }
        let installs = script.named().any(|(_, c)| {
            let Some(args) = pip_args(c) else {
                return false;
            };
            let is_install = matches!(
                subcommand(args, PIP_GLOBAL_OPTIONS_WITH_VALUE),
                Some((_, "install"))
            );
            is_install && !args.iter().any(|w| w.text.starts_with("--no-cache-dir"))
        });
        if !installs {
            continue;
        }
        let cache_removed = script.named().any(|(_, c)| {
            rm_targets(c).iter().any(|w| {
                w.text.contains(".cache/pip") || w.text.trim_end_matches('/').ends_with(".cache")
            })
        });
        let cache_mounted = unpersisted_mounts(run).iter().any(|m| m.contains(".cache"));
        if cache_removed || cache_mounted {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &["install", "pip"]),
            message: "pip install keeps downloaded wheels in ~/.cache/pip, in this layer: add --no-cache-dir".into(),
        });
    }
    hits
}

pub(crate) fn package_cache_not_cleaned(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, run, script) in runs(ctx, ctx.final_commands()) {
        let installing = script.named().find_map(|(_, c)| {
            let name = c.name()?;
            match name {
                "yum" | "dnf" | "microdnf" | "tdnf" => {
                    let (_, sub) = subcommand(c.args(), YUM_OPTIONS_WITH_VALUE)?;
                    matches!(
                        sub,
                        "install"
                            | "update"
                            | "upgrade"
                            | "groupinstall"
                            | "reinstall"
                            | "makecache"
                    )
                    .then(|| (name.to_string(), sub.to_string()))
                }
                "zypper" => {
                    let (_, sub) = subcommand(c.args(), ZYPPER_OPTIONS_WITH_VALUE)?;
                    matches!(
                        sub,
                        "install"
                            | "in"
                            | "update"
                            | "up"
                            | "dist-upgrade"
                            | "dup"
                            | "patch"
                            | "refresh"
                            | "ref"
                    )
                    .then(|| (name.to_string(), sub.to_string()))
                }
                _ => None,
            }
        });
        let Some((name, sub)) = installing else {
            continue;
        };
        let zypper = name == "zypper";
        let cleaned = script.named().any(|(_, c)| {
            let Some(n) = c.name() else { return false };
            let sub = if n == "zypper" {
                subcommand(c.args(), ZYPPER_OPTIONS_WITH_VALUE)
            } else {
                subcommand(c.args(), YUM_OPTIONS_WITH_VALUE)
            };
            matches!(
                (zypper, n, sub),
                (true, "zypper", Some((_, "clean" | "cc")))
                    | (
                        false,
                        "yum" | "dnf" | "microdnf" | "tdnf",
                        Some((_, "clean"))
                    )
            )
        });
        let dirs: &[&str] = if zypper {
            &["/var/cache/zypp"]
        } else {
            &[
                "/var/cache/yum",
                "/var/cache/dnf",
                "/var/cache/tdnf",
                "/var/cache/libdnf5",
            ]
        };
        if cleaned || cleans(script, run, dirs) {
            continue;
        }
        let clean = if zypper {
            "zypper clean --all"
        } else {
            &format!("{name} clean all")
        };
        hits.push(Hit {
            location: ctx.locate(cmd, &[&name]),
            message: format!(
                "`{name} {sub}` leaves its metadata and package cache in this layer: end the RUN with `{clean}`"
            ),
        });
    }
    hits
}

// --- layers ----------------------------------------------------------------

fn same_flags(a: &RunInstruction, b: &RunInstruction) -> bool {
    a.mount_specs == b.mount_specs && a.network == b.network && a.security == b.security
}

/// A RUN this short could join its neighbour; longer ones are usually split on
/// purpose (a verification step, a separate cache layer).
const SMALL_RUN_COMMANDS: usize = 2;

pub(crate) fn consecutive_runs(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for &s in &ctx.final_chain {
        let stage = &ctx.df.stages[s];
        let mut group: Vec<(&Command, &RunInstruction)> = Vec::new();
        let mut flush = |group: &mut Vec<(&Command, &RunInstruction)>| {
            if group.len() >= 2 {
                let (first, last) = (group[0].0, group[group.len() - 1].0);
                hits.push(Hit {
                    location: ctx.span_of(first, last),
                    message: format!(
                        "{} consecutive RUN instructions (lines {}-{}) each make a layer; join them with && into one RUN",
                        group.len(),
                        first.span.start_line,
                        last.span.start_line
                    ),
                });
            }
            group.clear();
        };
        for (ci, cmd) in stage.commands.iter().enumerate() {
            let small_run = match (&cmd.instruction, ctx.script(s, ci)) {
                (Instruction::Run(r), Some(script)) if script.count() <= SMALL_RUN_COMMANDS => {
                    Some(r)
                }
                _ => None,
            };
            match small_run {
                Some(r) if group.first().is_none_or(|(_, g)| same_flags(g, r)) => {
                    group.push((cmd, r));
                }
                Some(r) => {
                    flush(&mut group);
                    group.push((cmd, r));
                }
                None => flush(&mut group),
            }
        }
        flush(&mut group);
    }
    hits
}

/// A path an earlier instruction put in the image.
struct Added<'a> {
    /// Absolute path or glob pattern.
    path: String,
    /// Everything below `path` counts (a directory's contents).
    tree: bool,
    by: &'a Command,
}

/// What COPY or ADD adds, as paths: `dest/<source name>` for sources copied
/// into a directory, `dest` itself for one source to a named destination.
fn copied_paths(sources: &[String], dest: &str, workdir: Option<&str>) -> Vec<(String, bool)> {
    let dest_abs = if dest.starts_with('/') {
        dest.to_string()
    } else {
        match workdir {
            Some(w) => format!("{w}/{dest}"),
            None => return Vec::new(),
        }
    };
    let into_dir = dest.ends_with('/') || dest == "." || sources.len() > 1;
    let dest_abs = clean_path(&dest_abs);
    if !into_dir {
        return vec![(dest_abs, true)];
    }
    sources
        .iter()
        .map(|src| {
            let trimmed = src.trim_end_matches('/');
            let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
            if matches!(name, "" | ".") {
                // The whole context (or a directory's contents) lands in dest.
                (dest_abs.clone(), true)
            } else {
                (clean_path(&format!("{dest_abs}/{name}")), true)
            }
        })
        .collect()
}

/// Files a command downloads: `curl -o F`, `wget -O F`, `git clone URL DIR`.
fn downloads(c: &SimpleCommand) -> Vec<String> {
    let args = c.args();
    let value_after = |flags: &[&str], long: &str| -> Option<String> {
        for (i, w) in args.iter().enumerate() {
            if flags.contains(&w.text.as_str()) {
                return args.get(i + 1).map(|w| w.text.clone());
            }
            if let Some(v) = w.text.strip_prefix(long) {
                return Some(v.to_string());
            }
        }
        None
    };
    let out = match c.name() {
        Some("curl") => value_after(&["-o", "--output"], "--output="),
        Some("wget") => value_after(&["-O", "--output-document"], "--output-document="),
        Some("git") if args.first().is_some_and(|w| w.text == "clone") => {
            let positional: Vec<&Word> = args[1..]
                .iter()
                .filter(|w| !w.text.starts_with('-'))
                .collect();
            match positional.as_slice() {
                [_, dir, ..] => Some(dir.text.clone()),
                [url] => url
                    .text
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .map(|n| n.trim_end_matches(".git").to_string()),
                [] => None,
            }
        }
        _ => None,
    };
    out.into_iter()
        .filter(|f| f != "-" && !f.contains('$'))
        .collect()
}

/// An absolute path for a word of a RUN, expanding the Dockerfile's own
/// variables; `None` when it depends on something else.
fn run_path(ctx: &Ctx, scope: &Scope, word: &Word, workdir: Option<&str>) -> Option<String> {
    let text = if word.dynamic {
        if word.text.contains("$(") || word.text.contains('`') {
            return None;
        }
        scope.expand(&ctx.lex, &word.text).value?
    } else {
        word.text.clone()
    };
    if text.starts_with('/') {
        Some(clean_path(&text))
    } else if text.starts_with('~') {
        None
    } else {
        workdir.map(|w| clean_path(&format!("{w}/{text}")))
    }
}

/// Whether removing `target` (maybe a glob) removes something at `added`.
fn removes(target: &str, added: &Added) -> bool {
    if target == "/" {
        return false;
    }
    // The target is the added path, or inside a directory it added.
    if added.tree && path_within(target, &added.path) && !has_glob(&added.path) {
        return true;
    }
    // The target is the added path or one of its parents (possibly a glob).
    path_within(&added.path, target)
}

pub(crate) fn rm_in_later_layer(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    let mut added: Vec<Added> = Vec::new();
    for (s, ci, cmd) in ctx.final_commands() {
        let scope = ctx.scope(s, ci);
        let workdir = scope.workdir.as_deref();
        match &cmd.instruction {
            Instruction::Copy(c) => {
                let sources: Vec<String> = c
                    .sources
                    .source_paths
                    .iter()
                    .filter_map(|p| scope.expand(&ctx.lex, p).value)
                    .chain(c.sources.source_contents.iter().map(|h| h.path.clone()))
                    .collect();
                if let Some(dest) = scope.expand(&ctx.lex, &c.sources.dest).value {
                    for (path, tree) in copied_paths(&sources, &dest, workdir) {
                        added.push(Added {
                            path,
                            tree,
                            by: cmd,
                        });
                    }
                }
            }
            Instruction::Add(a) => {
                let sources: Vec<String> = a
                    .sources
                    .source_paths
                    .iter()
                    .filter_map(|p| scope.expand(&ctx.lex, p).value)
                    .collect();
                if let Some(dest) = scope.expand(&ctx.lex, &a.sources.dest).value {
                    for (path, tree) in copied_paths(&sources, &dest, workdir) {
                        added.push(Added {
                            path,
                            tree,
                            by: cmd,
                        });
                    }
                }
            }
            Instruction::Run(_) => {
                let Some(script) = ctx.script(s, ci) else {
                    continue;
                };
                let mut reported = false;
                for (_, c) in script.named() {
                    for target in rm_targets(c) {
                        let Some(path) = run_path(ctx, scope, target, workdir) else {
                            continue;
                        };
                        if let Some(a) = added.iter().find(|a| removes(&path, a)) {
                            if !reported {
                                hits.push(Hit {
                                    location: ctx.locate(cmd, &[&target.text, "rm"]),
                                    message: format!(
                                        "rm {} deletes what the {} at line {} added: the files stay in that layer and the image does not shrink",
                                        target.text,
                                        a.by.instruction.keyword(),
                                        a.by.span.start_line
                                    ),
                                });
                                reported = true;
                            }
                        }
                    }
                }
                // Downloads of this RUN count for later ones only.
                for (_, c) in script.named() {
                    for file in downloads(c) {
                        let word = Word {
                            text: file,
                            dynamic: false,
                        };
                        if let Some(path) = run_path(ctx, scope, &word, workdir) {
                            added.push(Added {
                                path,
                                tree: true,
                                by: cmd,
                            });
                        }
                    }
                }
            }
            _ => {}
        }
    }
    hits
}

// --- shell habits ----------------------------------------------------------

/// Commands that only set up the shell, skipped when looking for the first
/// real command of a RUN.
const SHELL_SETUP: &[&str] = &["set", "export", "umask", "trap", "shopt"];

pub(crate) fn cd_in_run(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, _, script) in runs(ctx, ctx.all_commands()) {
        let mut named = script
            .named()
            .filter(|(_, c)| c.name().is_some_and(|n| !SHELL_SETUP.contains(&n)));
        let Some((i, first)) = named.next() else {
            continue;
        };
        if first.name() != Some("cd") {
            continue;
        }
        let [dir] = first.args() else {
            continue;
        };
        let d = dir.text.trim_end_matches('/');
        if dir.dynamic
            || matches!(d, "-" | ".." | "" | "~")
            || d.starts_with("/tmp")
            || d.starts_with("/var/tmp")
        {
            continue;
        }
        // A later cd back, or removing the directory, means it was temporary.
        let later = &script.commands[i + 1..];
        let temporary = later.iter().any(|c| {
            c.name() == Some("cd")
                || rm_targets(c)
                    .iter()
                    .any(|w| w.text.trim_end_matches('/') == d)
        });
        if temporary || later.iter().all(|c| c.name().is_none()) {
            continue;
        }
        hits.push(Hit {
            location: ctx.locate(cmd, &["cd"]),
            message: format!(
                "RUN starts with `cd {}`, which lasts only for this RUN; `WORKDIR {}` sets it for every instruction after it",
                dir.text, dir.text
            ),
        });
    }
    hits
}

/// Whether a chmod mode makes files writable by everyone (`777`, `o+w`),
/// leaving out sticky directories (`1777`, as /tmp).
fn world_writable(mode: &str) -> bool {
    if !mode.is_empty() && mode.len() <= 4 && mode.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        let digits: Vec<u8> = mode.bytes().map(|b| b - b'0').collect();
        let others = digits[digits.len() - 1];
        let sticky = digits.len() == 4 && digits[0] & 1 == 1;
        return others & 2 == 2 && !sticky;
    }
    mode.split(',').any(|clause| {
        let who_end = clause.find(['+', '=', '-']).unwrap_or(clause.len());
        let (who, rest) = clause.split_at(who_end);
        let all = who.contains('a') || who.contains('o');
        let grants = rest.starts_with('+') || rest.starts_with('=');
        all && grants && rest.contains('w') && !rest.contains('t')
    })
}

/// The mode and files of a chmod command: its options dropped, but not a
/// symbolic mode that starts with `-` (`chmod -w file`).
fn chmod_operands(c: &SimpleCommand) -> Vec<&Word> {
    c.args()
        .iter()
        .filter(|w| {
            let t = w.text.as_str();
            !t.starts_with("--")
                && (!t.starts_with('-') || t[1..].starts_with(|ch: char| "rwxXst".contains(ch)))
        })
        .collect()
}

pub(crate) fn chmod_777(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, ci, cmd) in ctx.final_commands() {
        match &cmd.instruction {
            Instruction::Copy(_) | Instruction::Add(_) => {
                let chmod = match &cmd.instruction {
                    Instruction::Copy(c) => c.chmod.as_deref(),
                    Instruction::Add(a) => a.chmod.as_deref(),
                    _ => None,
                };
                if let Some(mode) = chmod.filter(|m| world_writable(m)) {
                    hits.push(Hit {
                        location: ctx.locate(cmd, &[&format!("--chmod={mode}")]),
                        message: format!(
                            "--chmod={mode} makes the copied files writable by every user in the container"
                        ),
                    });
                }
            }
            Instruction::Run(_) => {
                let Some(script) = ctx.script(s, ci) else {
                    continue;
                };
                for (i, c) in script.named() {
                    if c.name() != Some("chmod") {
                        continue;
                    }
                    let operands = chmod_operands(c);
                    let Some((mode, targets)) = operands.split_first() else {
                        continue;
                    };
                    if !world_writable(&mode.text) {
                        continue;
                    }
                    // A directory made writable and removed in the same RUN never ships.
                    let later = &script.commands[i + 1..];
                    let removed = !targets.is_empty()
                        && targets.iter().all(|t| {
                            later
                                .iter()
                                .any(|l| rm_targets(l).iter().any(|r| r.text == t.text))
                        });
                    if removed {
                        continue;
                    }
                    let names: Vec<&str> = targets.iter().map(|t| t.text.as_str()).collect();
                    hits.push(Hit {
                        location: ctx.locate(cmd, &[&mode.text, "chmod"]),
                        message: format!(
                            "chmod {} makes {} writable by every user in the container",
                            mode.text,
                            names.join(" ")
                        ),
                    });
                    break;
                }
            }
            _ => {}
        }
    }
    hits
}

pub(crate) fn sudo_in_run(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (_, _, cmd, _, script) in runs(ctx, ctx.all_commands()) {
        let uses = script.named().any(|(_, c)| {
            c.words
                .first()
                .is_some_and(|w| crate::shell::basename(&w.text) == "sudo")
        });
        if uses {
            hits.push(Hit {
                location: ctx.locate(cmd, &["sudo"]),
                message: "sudo in a RUN: RUN already runs as the USER in force, and sudo in an image is a way back to root for anyone who gets in".into(),
            });
        }
    }
    hits
}

// --- cache order -----------------------------------------------------------

/// A dependency manager: its manifest files, and how to recognise its
/// dependency install.
struct Ecosystem {
    /// Manifest and lock file names (shell patterns on the last path component).
    manifests: &'static [&'static str],
    /// What to copy first, for the message.
    copy_first: &'static str,
    installs: fn(&str, &[Word]) -> bool,
}

fn positional(args: &[Word]) -> usize {
    args.iter().filter(|w| !w.text.starts_with('-')).count()
}

fn js_install(name: &str, args: &[Word]) -> bool {
    let Some((i, sub)) = subcommand(args, &[]) else {
        return name == "yarn";
    };
    let rest = &args[i + 1..];
    let global = args
        .iter()
        .any(|w| matches!(w.text.as_str(), "-g" | "--global"));
    match name {
        "npm" => {
            matches!(
                sub,
                "install" | "i" | "ci" | "clean-install" | "install-clean"
            ) && positional(rest) == 0
                && !global
        }
        "yarn" => sub == "install",
        "pnpm" => matches!(sub, "install" | "i" | "fetch") && positional(rest) == 0,
        "bun" => sub == "install" && positional(rest) == 0,
        _ => false,
    }
}

fn python_install(name: &str, args: &[Word]) -> bool {
    match name {
        "poetry" => matches!(subcommand(args, &[]), Some((_, "install"))),
        "pipenv" => matches!(subcommand(args, &[]), Some((_, "install" | "sync"))),
        "uv" => match subcommand(args, &[]) {
            Some((_, "sync")) => true,
            Some((i, "pip")) => args[i + 1..]
                .iter()
                .any(|w| w.text.starts_with("-r") || w.text.starts_with("--requirement")),
            _ => false,
        },
        _ => {
            let pip = name.starts_with("pip") || name.starts_with("python");
            pip && args.iter().any(|w| w.text == "install")
                && args
                    .iter()
                    .any(|w| w.text.starts_with("-r") || w.text.starts_with("--requirement"))
        }
    }
}

fn maven_install(name: &str, _args: &[Word]) -> bool {
    matches!(name, "mvn" | "mvnw")
}

fn gradle_install(name: &str, _args: &[Word]) -> bool {
    matches!(name, "gradle" | "gradlew")
}

fn go_install(name: &str, args: &[Word]) -> bool {
    if name != "go" {
        return false;
    }
    match subcommand(args, &[]) {
        Some((i, "mod")) => args.get(i + 1).is_some_and(|w| w.text == "download"),
        Some((_, "build" | "test" | "generate")) => true,
        Some((_, "install")) => !args.iter().any(|w| w.text.contains('@')),
        _ => false,
    }
}

fn ruby_install(name: &str, args: &[Word]) -> bool {
    name == "bundle" && matches!(subcommand(args, &[]), Some((_, "install")) | None)
}

fn php_install(name: &str, args: &[Word]) -> bool {
    name == "composer" && matches!(subcommand(args, &[]), Some((_, "install" | "update")))
}

fn rust_install(name: &str, args: &[Word]) -> bool {
    name == "cargo"
        && match subcommand(args, &[]) {
            Some((_, "build" | "fetch" | "test")) => true,
            Some((_, "install")) => args.iter().any(|w| w.text == "--path"),
            _ => false,
        }
}

const ECOSYSTEMS: &[Ecosystem] = &[
    Ecosystem {
        manifests: &[
            "package.json",
            "package-lock.json",
            "npm-shrinkwrap.json",
            "yarn.lock",
            ".yarnrc",
            ".yarnrc.yml",
            ".yarn",
            ".npmrc",
            "pnpm-lock.yaml",
            "pnpm-workspace.yaml",
            ".pnpmfile.cjs",
            "bun.lockb",
            "bun.lock",
            "patches",
            ".nvmrc",
            ".node-version",
        ],
        copy_first: "package.json and the lock file",
        installs: js_install,
    },
    Ecosystem {
        manifests: &[
            "requirements*.txt",
            "requirements",
            "requirements*.in",
            "constraints*.txt",
            "pyproject.toml",
            "poetry.lock",
            "poetry.toml",
            "setup.cfg",
            "setup.py",
            "Pipfile",
            "Pipfile.lock",
            "uv.lock",
            ".python-version",
            "pip.conf",
        ],
        copy_first: "the requirements file (or pyproject.toml and the lock file)",
        installs: python_install,
    },
    Ecosystem {
        manifests: &["pom.xml", ".mvn", "mvnw", "mvnw.cmd", "settings.xml"],
        copy_first: "pom.xml, then RUN mvn dependency:go-offline,",
        installs: maven_install,
    },
    Ecosystem {
        manifests: &[
            "build.gradle",
            "build.gradle.kts",
            "settings.gradle",
            "settings.gradle.kts",
            "gradle.properties",
            "gradle",
            "gradlew",
            "gradlew.bat",
            "libs.versions.toml",
        ],
        copy_first: "the Gradle build and settings files, then RUN gradle dependencies,",
        installs: gradle_install,
    },
    Ecosystem {
        manifests: &["go.mod", "go.sum", "go.work", "go.work.sum"],
        copy_first: "go.mod and go.sum, then RUN go mod download,",
        installs: go_install,
    },
    Ecosystem {
        manifests: &[
            "Gemfile",
            "Gemfile.lock",
            "*.gemspec",
            ".ruby-version",
            ".bundle",
        ],
        copy_first: "Gemfile and Gemfile.lock",
        installs: ruby_install,
    },
    Ecosystem {
        manifests: &["composer.json", "composer.lock", "auth.json"],
        copy_first: "composer.json and composer.lock",
        installs: php_install,
    },
    Ecosystem {
        manifests: &[
            "Cargo.toml",
            "Cargo.lock",
            ".cargo",
            "rust-toolchain",
            "rust-toolchain.toml",
        ],
        copy_first: "Cargo.toml and Cargo.lock (with a stub main, or cargo-chef)",
        installs: rust_install,
    },
];

/// Whether a COPY source is only manifests of `eco`.
fn is_manifest(eco: &Ecosystem, source: &str) -> bool {
    let trimmed = source.trim_end_matches('/');
    let name = trimmed.rsplit('/').next().unwrap_or(trimmed);
    if matches!(name, "" | "." | "*") {
        return false;
    }
    eco.manifests.iter().any(|m| {
        glob_match(m, name) || name == *m || {
            // `package*.json`: a pattern with a literal start that names a manifest.
            let literal_start = name.split(['*', '?', '[']).next().unwrap_or("");
            has_glob(name) && !literal_start.is_empty() && glob_match(name, m)
        }
    })
}

pub(crate) fn cache_unfriendly_copy(ctx: &Ctx) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (s, stage) in ctx.df.stages.iter().enumerate() {
        let mut handled = [false; ECOSYSTEMS.len()];
        for (ci, cmd) in stage.commands.iter().enumerate() {
            let Some(script) = ctx.script(s, ci) else {
                continue;
            };
            for (_, c) in script.named() {
                let name = c.name().unwrap_or("");
                let name = name.trim_start_matches("./");
                for (e, eco) in ECOSYSTEMS.iter().enumerate() {
                    if handled[e] || !(eco.installs)(name, c.args()) {
                        continue;
                    }
                    handled[e] = true;
                    let install: Vec<&str> = c
                        .effective_words()
                        .iter()
                        .take(3)
                        .map(|w| w.text.as_str())
                        .collect();
                    if let Some((copy, source)) = source_copy_before(ctx, s, ci, eco) {
                        hits.push(Hit {
                            location: ctx.locate(copy, &[&source]),
                            message: format!(
                                "{} {source} comes before `{}` (line {}): any change to those files re-runs the install; copy {} first, install, then copy the rest",
                                copy.instruction.keyword(),
                                install.join(" "),
                                cmd.span.start_line,
                                eco.copy_first
                            ),
                        });
                    }
                }
            }
        }
    }
    hits
}

/// The first COPY (or ADD) from the context before command `upto` of stage
/// `s` that copies something other than `eco`'s manifests.
fn source_copy_before<'a>(
    ctx: &Ctx<'a>,
    s: usize,
    upto: usize,
    eco: &Ecosystem,
) -> Option<(&'a Command, String)> {
    let stage = &ctx.df.stages[s];
    for (ci, cmd) in stage.commands[..upto].iter().enumerate() {
        let paths = match &cmd.instruction {
            Instruction::Copy(c) if c.from.is_none() => &c.sources.source_paths,
            Instruction::Add(a) => &a.sources.source_paths,
            _ => continue,
        };
        let scope = ctx.scope(s, ci);
        for p in paths {
            let Some(value) = scope.expand(&ctx.lex, p).value else {
                continue;
            };
            if value.contains("://") {
                continue;
            }
            if !is_manifest(eco, &value) {
                return Some((cmd, p.clone()));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        for m in [
            "777", "0777", "666", "o+w", "a+rwx", "ugo+rwx", "u+x,o+w", "a=rwx", "0002",
        ] {
            assert!(world_writable(m), "{m}");
        }
        for m in [
            "755", "1777", "3777", "0644", "+x", "u+w", "o-w", "a+rwxt", "go-w",
        ] {
            assert!(!world_writable(m), "{m}");
        }
    }

    fn words(s: &str) -> Vec<Word> {
        crate::shell::parse(s).commands.remove(0).words
    }

    #[test]
    fn manifests_and_installs() {
        let js = &ECOSYSTEMS[0];
        assert!(is_manifest(js, "package.json"));
        assert!(is_manifest(js, "package*.json"));
        assert!(is_manifest(js, "./app/yarn.lock"));
        assert!(!is_manifest(js, "*.js"));
        assert!(!is_manifest(js, "*.json"));
        assert!(!is_manifest(js, "."));
        assert!(!is_manifest(js, "src/"));
        assert!(js_install("npm", &words("npm ci")[1..]));
        assert!(js_install("npm", &words("npm install --omit=dev")[1..]));
        assert!(!js_install("npm", &words("npm install -g pm2")[1..]));
        assert!(!js_install("npm", &words("npm i express")[1..]));
        assert!(js_install("yarn", &[]));
        assert!(python_install(
            "pip",
            &words("pip install -r requirements.txt")[1..]
        ));
        assert!(!python_install("pip", &words("pip install flask")[1..]));
        assert!(go_install("go", &words("go mod download")[1..]));
        assert!(!go_install("go", &words("go install x@v1")[1..]));
    }

    #[test]
    fn copy_destinations() {
        assert_eq!(
            copied_paths(&["a".into(), "b/".into()], "/app/", None),
            [("/app/a".to_string(), true), ("/app/b".to_string(), true)]
        );
        assert_eq!(
            copied_paths(&[".".into()], ".", Some("/srv")),
            [("/srv".to_string(), true)]
        );
        assert_eq!(
            copied_paths(&["x.conf".into()], "/etc/x.conf", None),
            [("/etc/x.conf".to_string(), true)]
        );
        assert!(copied_paths(&["x".into()], "rel", None).is_empty());
    }
}
