//! The typed instruction model (BuildKit's `frontend/dockerfile/instructions`).
//!
//! [`parse_instruction`] turns one instruction [`Node`] into an [`Instruction`] with
//! its flags checked and its arguments shaped; [`Dockerfile::from_ast`] groups them
//! into stages, keeping the `ARG`s before the first `FROM` as meta arguments.
//!
//! Values are kept as written (quotes included, variables unexpanded): BuildKit
//! expands them only when the stage is built, with the build arguments then in scope.
//! [`Instruction::expand`] applies an expander to exactly the fields BuildKit expands.

use std::time::Duration;

use crate::ast::{Directive, Node, ParseResult, Span, Warning};
use crate::error::ParseError;
use crate::parser::{chomp_heredoc_content, parse, parse_heredoc};
use crate::shell::{ExpandError, Lex};
use crate::unicode::{equal_fold, go_to_lower, go_to_upper, trim_space};

/// Expands one word (BuildKit's `SingleWordExpander`); see [`word_expander`].
pub type SingleWordExpander<'a> = dyn FnMut(&str) -> Result<String, ExpandError> + 'a;

/// Why an instruction is not valid. Messages follow BuildKit's wording, after the
/// line number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    /// The text did not parse.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// A keyword BuildKit does not know.
    #[error("line {line}: unknown instruction: {instruction}")]
    UnknownInstruction {
        /// Line of the instruction.
        line: usize,
        /// The keyword as written.
        instruction: String,
    },
    /// An instruction other than ARG before the first FROM.
    #[error(
        "line {line}: no build stage in current context ({instruction} before the first FROM)"
    )]
    NoStage {
        /// Line of the instruction.
        line: usize,
        /// The keyword as written.
        instruction: String,
    },
    /// A wrong number of arguments, or an argument of the wrong shape.
    #[error("line {line}: {message}")]
    Arguments {
        /// Line of the instruction.
        line: usize,
        /// BuildKit's message, for example `WORKDIR requires exactly one argument`.
        message: String,
    },
    /// A flag problem: unknown, repeated, missing its value, or an invalid value.
    #[error("line {line}: {message}")]
    Flag {
        /// Line of the instruction.
        line: usize,
        /// BuildKit's message, for example `unknown flag: --form`.
        message: String,
    },
}

impl InstructionError {
    /// The 1-based line the error concerns.
    pub fn line(&self) -> usize {
        match self {
            Self::Parse(e) => e.line(),
            Self::UnknownInstruction { line, .. }
            | Self::NoStage { line, .. }
            | Self::Arguments { line, .. }
            | Self::Flag { line, .. } => *line,
        }
    }
}

/// An error before its line is attached.
enum Fail {
    Args(String),
    Flag(String),
    Unknown,
}

impl Fail {
    fn at(self, node: &Node) -> InstructionError {
        let line = node.span.start_line;
        match self {
            Self::Args(message) => InstructionError::Arguments { line, message },
            Self::Flag(message) => InstructionError::Flag { line, message },
            Self::Unknown => InstructionError::UnknownInstruction {
                line,
                instruction: node.value.clone(),
            },
        }
    }
}

fn args_err<T>(message: impl Into<String>) -> Result<T, Fail> {
    Err(Fail::Args(message.into()))
}

fn at_least_one(cmd: &str) -> Fail {
    Fail::Args(format!("{cmd} requires at least one argument"))
}

fn exactly_one(cmd: &str) -> Fail {
    Fail::Args(format!("{cmd} requires exactly one argument"))
}

/// `KEY=value` from ENV and LABEL. `no_delim` marks the legacy `ENV KEY value` form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    /// The key, unexpanded.
    pub key: String,
    /// The value, unexpanded (quotes still in place).
    pub value: String,
    /// True for the old `KEY value` form (BuildKit lints it).
    pub no_delim: bool,
}

/// One name of an ARG instruction, with its optional default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgDef {
    /// The name.
    pub key: String,
    /// The default value, unexpanded; `None` for `ARG NAME`.
    pub value: Option<String>,
}

/// Shell form or exec (JSON) form of RUN, CMD and ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdForm {
    /// `RUN echo hi`: run through the image's shell (`SHELL`, default `/bin/sh -c`).
    /// An instruction with no arguments is the empty command line.
    Shell(String),
    /// `RUN ["echo", "hi"]`: run directly.
    Exec(Vec<String>),
}

/// A heredoc used as an inline file by RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFile {
    /// The heredoc name.
    pub name: String,
    /// The content.
    pub data: String,
    /// `<<-`: leading tabs are to be removed.
    pub chomp: bool,
}

/// The command of RUN, CMD or ENTRYPOINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    /// Shell or exec form.
    pub form: CmdForm,
    /// Heredoc bodies (RUN only).
    pub files: Vec<InlineFile>,
}

impl CommandLine {
    /// True when the command is run through the shell.
    pub fn prepend_shell(&self) -> bool {
        matches!(self.form, CmdForm::Shell(_))
    }
}

/// A heredoc used as a COPY/ADD source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceContent {
    /// The heredoc name, used as the file name.
    pub path: String,
    /// The content (tabs already removed for `<<-`).
    pub data: String,
    /// Whether variables in the content are expanded.
    pub expand: bool,
}

/// Sources and destination of COPY and ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourcesAndDest {
    /// Paths (or URLs, for ADD) to copy.
    pub source_paths: Vec<String>,
    /// Heredoc sources.
    pub source_contents: Vec<SourceContent>,
    /// The destination.
    pub dest: String,
}

/// COPY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyInstruction {
    /// What to copy, and where.
    pub sources: SourcesAndDest,
    /// `--from`: a stage name, a stage index or an image; `None` for the context.
    pub from: Option<String>,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// ADD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddInstruction {
    /// What to add, and where.
    pub sources: SourcesAndDest,
    /// `--chown`.
    pub chown: Option<String>,
    /// `--chmod`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--keep-git-dir`, when given.
    pub keep_git_dir: Option<bool>,
    /// `--checksum`.
    pub checksum: Option<String>,
    /// `--unpack`, when given.
    pub unpack: Option<bool>,
    /// `--exclude` patterns.
    pub excludes: Vec<String>,
}

/// RUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInstruction {
    /// The command.
    pub cmd: CommandLine,
    /// `--mount` values as written; see [`Run::mounts`].
    pub mount_specs: Vec<String>,
    /// `--network`: `default`, `none` or `host`.
    pub network: String,
    /// `--security`: `sandbox` or `insecure`.
    pub security: String,
    /// `--device` values as written.
    pub devices: Vec<String>,
    /// The flags that were given, by name.
    pub flags_used: Vec<String>,
}

impl RunInstruction {
    /// Parses the `--mount` flags, expanding each value with `expander` (BuildKit
    /// expands mount options with the build arguments when the step runs).
    pub fn mounts(&self, expander: &mut SingleWordExpander) -> Result<Vec<Mount>, MountError> {
        self.mount_specs
            .iter()
            .map(|s| parse_mount(s, Some(&mut *expander)))
            .collect()
    }

    /// The `from=` of each mount as written (no expansion), which is what links
    /// stages in the graph.
    pub fn mount_froms(&self) -> Vec<Option<String>> {
        self.mount_specs
            .iter()
            .map(|s| parse_mount(s, None).ok().and_then(|m| m.from))
            .collect()
    }
}

/// FROM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FromInstruction {
    /// The image or stage, unexpanded.
    pub base_name: String,
    /// `AS name`, lowercased as BuildKit does.
    pub name: Option<String>,
    /// `--platform`.
    pub platform: Option<String>,
}

/// HEALTHCHECK, in the shape of the image config's `Healthcheck`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthcheckConfig {
    /// `["NONE"]`, `["CMD", args…]` (exec form) or `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// `--interval` (zero: the default).
    pub interval: Duration,
    /// `--timeout`.
    pub timeout: Duration,
    /// `--start-period`.
    pub start_period: Duration,
    /// `--start-interval`.
    pub start_interval: Duration,
    /// `--retries` (zero: the default).
    pub retries: u32,
}

/// ONBUILD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Onbuild {
    /// The trigger's source (with heredocs appended), stored in the image and parsed
    /// again when a build starts `FROM` that image.
    pub expression: String,
}

impl Onbuild {
    /// Parses the trigger, as BuildKit does when a child image runs it.
    pub fn trigger(&self) -> Result<Instruction, InstructionError> {
        let ast = parse(&self.expression)?;
        match ast.ast.children.as_slice() {
            [node] => parse_instruction(node),
            _ => Err(InstructionError::Arguments {
                line: 1,
                message: "onbuild trigger should be a single expression".to_string(),
            }),
        }
    }
}

/// One instruction with its arguments and flags parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    /// `FROM [--platform=…] image [AS name]`.
    From(FromInstruction),
    /// `RUN`.
    Run(RunInstruction),
    /// `CMD`.
    Cmd(CommandLine),
    /// `ENTRYPOINT`.
    Entrypoint(CommandLine),
    /// `COPY`.
    Copy(CopyInstruction),
    /// `ADD`.
    Add(AddInstruction),
    /// `ENV`.
    Env(Vec<KeyValue>),
    /// `LABEL`.
    Label(Vec<KeyValue>),
    /// `ARG`.
    Arg(Vec<ArgDef>),
    /// `EXPOSE` ports, sorted as BuildKit sorts them.
    Expose(Vec<String>),
    /// `USER`.
    User(String),
    /// `WORKDIR`.
    Workdir(String),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `HEALTHCHECK`.
    Healthcheck(HealthcheckConfig),
    /// `SHELL` (exec form only).
    Shell(Vec<String>),
    /// `STOPSIGNAL`.
    StopSignal(String),
    /// `ONBUILD`.
    Onbuild(Onbuild),
    /// `MAINTAINER` (deprecated).
    Maintainer(String),
}

fn expand_kvs(kvs: &mut [KeyValue], f: &mut SingleWordExpander) -> Result<(), ExpandError> {
    for kv in kvs {
        kv.key = f(&kv.key)?;
        kv.value = f(&kv.value)?;
    }
    Ok(())
}

fn expand_all(v: &mut [String], f: &mut SingleWordExpander) -> Result<(), ExpandError> {
    for s in v {
        *s = f(s)?;
    }
    Ok(())
}

fn expand_opt(v: &mut Option<String>, f: &mut SingleWordExpander) -> Result<(), ExpandError> {
    if let Some(s) = v {
        *s = f(s)?;
    }
    Ok(())
}

impl Instruction {
    /// The keyword, uppercase.
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::From(_) => "FROM",
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Env(_) => "ENV",
            Self::Label(_) => "LABEL",
            Self::Arg(_) => "ARG",
            Self::Expose(_) => "EXPOSE",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Volume(_) => "VOLUME",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::StopSignal(_) => "STOPSIGNAL",
            Self::Onbuild(_) => "ONBUILD",
            Self::Maintainer(_) => "MAINTAINER",
        }
    }

    /// Expands variables in the fields BuildKit expands (its `Expand` methods): ENV
    /// and LABEL keys and values, ARG names and defaults, COPY/ADD sources,
    /// destination, `--chown`, `--chmod` (and ADD's `--checksum`), WORKDIR, USER,
    /// VOLUME and STOPSIGNAL. RUN, CMD, ENTRYPOINT and SHELL are left to the shell.
    pub fn expand(&mut self, f: &mut SingleWordExpander) -> Result<(), ExpandError> {
        match self {
            Self::Env(kvs) | Self::Label(kvs) => expand_kvs(kvs, f),
            Self::Arg(args) => {
                for a in args {
                    a.key = f(&a.key)?;
                    expand_opt(&mut a.value, f)?;
                }
                Ok(())
            }
            Self::Copy(c) => {
                expand_opt(&mut c.chown, f)?;
                expand_opt(&mut c.chmod, f)?;
                expand_all(&mut c.sources.source_paths, f)?;
                c.sources.dest = f(&c.sources.dest)?;
                Ok(())
            }
            Self::Add(c) => {
                expand_opt(&mut c.chown, f)?;
                expand_opt(&mut c.chmod, f)?;
                expand_opt(&mut c.checksum, f)?;
                expand_all(&mut c.sources.source_paths, f)?;
                c.sources.dest = f(&c.sources.dest)?;
                Ok(())
            }
            Self::Workdir(s) | Self::User(s) | Self::StopSignal(s) => {
                *s = f(s)?;
                Ok(())
            }
            Self::Volume(v) => expand_all(v, f),
            _ => Ok(()),
        }
    }
}

/// An instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// The parsed instruction.
    pub instruction: Instruction,
    /// The keyword as written (`run`, `RUN`).
    pub keyword: String,
    /// The logical source line, trimmed.
    pub code: String,
    /// Comment lines directly above.
    pub comments: Vec<String>,
    /// Source position.
    pub span: Span,
}

/// A build stage: a FROM and the commands after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    /// Position among the stages, from 0 (what `COPY --from=0` refers to).
    pub index: usize,
    /// `AS name`, lowercased.
    pub name: Option<String>,
    /// The base image or stage, unexpanded.
    pub base_name: String,
    /// `--platform`, unexpanded.
    pub platform: Option<String>,
    /// The FROM command itself.
    pub from: Command,
    /// The instructions of the stage, in order.
    pub commands: Vec<Command>,
}

/// A Dockerfile as stages (BuildKit's `instructions.Parse`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dockerfile {
    /// ARGs before the first FROM; they are in scope for FROM lines only.
    pub meta_args: Vec<Command>,
    /// The stages.
    pub stages: Vec<Stage>,
    /// The escape token in force.
    pub escape_token: char,
    /// Parser directives.
    pub directives: Vec<Directive>,
    /// Parser warnings.
    pub warnings: Vec<Warning>,
}

impl Dockerfile {
    /// Groups a parsed file into stages.
    pub fn from_ast(res: &ParseResult) -> Result<Self, InstructionError> {
        let mut meta_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &res.ast.children {
            let instruction = parse_instruction(node)?;
            let cmd = Command {
                instruction,
                keyword: node.value.clone(),
                code: trim_space(&node.original).to_string(),
                comments: node.prev_comment.clone(),
                span: node.span,
            };
            if let Instruction::From(f) = &cmd.instruction {
                stages.push(Stage {
                    index: stages.len(),
                    name: f.name.clone(),
                    base_name: f.base_name.clone(),
                    platform: f.platform.clone(),
                    from: cmd,
                    commands: Vec::new(),
                });
                continue;
            }
            match stages.last_mut() {
                Some(stage) => stage.commands.push(cmd),
                None if matches!(cmd.instruction, Instruction::Arg(_)) => meta_args.push(cmd),
                None => {
                    return Err(InstructionError::NoStage {
                        line: node.span.start_line,
                        instruction: node.value.clone(),
                    })
                }
            }
        }
        Ok(Self {
            meta_args,
            stages,
            escape_token: res.escape_token,
            directives: res.directives.clone(),
            warnings: res.warnings.clone(),
        })
    }

    /// The stage called `name` (case-insensitive), the last one if several share it.
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let name = go_to_lower(name);
        self.stages
            .iter()
            .rev()
            .find(|s| s.name.as_deref() == Some(name.as_str()))
    }
}

/// Parses and groups a Dockerfile in one step.
///
/// ```
/// let df = berth_dockerfile::parse_dockerfile(
///     "ARG V=1\nFROM alpine:$V AS build\nRUN make\nFROM scratch\nCOPY --from=build /out /\n",
/// ).unwrap();
/// assert_eq!(df.meta_args.len(), 1);
/// assert_eq!(df.stages[0].name.as_deref(), Some("build"));
/// assert_eq!(df.stages[1].commands.len(), 1);
/// ```
pub fn parse_dockerfile(src: &str) -> Result<Dockerfile, InstructionError> {
    Dockerfile::from_ast(&parse(src)?)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

/// Flag values after BuildKit's `BFlags.Parse`.
struct Flags {
    defs: Vec<(&'static str, FlagType)>,
    bools: Vec<Option<bool>>,
    strings: Vec<Option<String>>,
    lists: Vec<Vec<String>>,
    used: Vec<String>,
}

impl Flags {
    /// Checks `args` against the flags an instruction accepts.
    fn parse(args: &[String], defs: &[(&'static str, FlagType)]) -> Result<Self, Fail> {
        let mut f = Self {
            defs: defs.to_vec(),
            bools: vec![None; defs.len()],
            strings: vec![None; defs.len()],
            lists: vec![Vec::new(); defs.len()],
            used: Vec::new(),
        };
        for a in args {
            // A bare `--` ends the flags (POSIX utility syntax guidelines).
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(Fail::Flag(format!("arg should start with -- : {a}")));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let flag_name = format!("--{name}");
            let Some(i) = defs.iter().position(|(n, _)| *n == name) else {
                return Err(Fail::Flag(format!("unknown flag: {flag_name}")));
            };
            let typ = defs[i].1;
            if f.used.iter().any(|u| u == name) && typ != FlagType::Strings {
                return Err(Fail::Flag(format!("duplicate flag specified: {flag_name}")));
            }
            if !f.used.iter().any(|u| u == name) {
                f.used.push(name.to_string());
            }
            match typ {
                FlagType::Bool => {
                    if value == Some("") {
                        return Err(Fail::Flag(format!("missing a value on flag: {flag_name}")));
                    }
                    f.bools[i] = Some(match value.map(go_to_lower).as_deref() {
                        None | Some("true") => true,
                        Some("false") => false,
                        Some(_) => {
                            return Err(Fail::Flag(format!(
                                "expecting boolean value for flag {flag_name}, not: {}",
                                value.unwrap_or_default()
                            )))
                        }
                    });
                }
                FlagType::String => {
                    let Some(v) = value else {
                        return Err(Fail::Flag(format!("missing a value on flag: {flag_name}")));
                    };
                    f.strings[i] = Some(v.to_string());
                }
                FlagType::Strings => {
                    let Some(v) = value else {
                        return Err(Fail::Flag(format!("missing a value on flag: {flag_name}")));
                    };
                    f.lists[i].push(v.to_string());
                }
            }
        }
        Ok(f)
    }

    fn idx(&self, name: &str) -> usize {
        self.defs
            .iter()
            .position(|(n, _)| *n == name)
            .unwrap_or(usize::MAX)
    }

    /// A string flag; an empty value counts as not given, as in BuildKit.
    fn string(&self, name: &str) -> Option<String> {
        self.strings
            .get(self.idx(name))
            .cloned()
            .flatten()
            .filter(|s| !s.is_empty())
    }

    fn string_or(&self, name: &str, default: &str) -> String {
        self.strings
            .get(self.idx(name))
            .cloned()
            .flatten()
            .unwrap_or_else(|| default.to_string())
    }

    fn bool(&self, name: &str) -> Option<bool> {
        self.bools.get(self.idx(name)).copied().flatten()
    }

    fn list(&self, name: &str) -> Vec<String> {
        self.lists.get(self.idx(name)).cloned().unwrap_or_default()
    }
}

/// Converts one instruction node (BuildKit's `ParseInstruction`).
pub fn parse_instruction(node: &Node) -> Result<Instruction, InstructionError> {
    parse_instruction_inner(node).map_err(|f| f.at(node))
}

fn parse_instruction_inner(node: &Node) -> Result<Instruction, Fail> {
    let args = node.arg_values();
    let flags = node.flags.as_slice();
    let no_flags = |flags: &[String]| Flags::parse(flags, &[]);
    Ok(match node.keyword().as_str() {
        "env" => {
            no_flags(flags)?;
            Instruction::Env(parse_kvps(&args, "ENV")?)
        }
        "label" => {
            no_flags(flags)?;
            Instruction::Label(parse_kvps(&args, "LABEL")?)
        }
        "maintainer" => {
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags(flags)?;
            Instruction::Maintainer(args[0].clone())
        }
        "add" => parse_add(node, &args)?,
        "copy" => parse_copy(node, &args)?,
        "from" => parse_from(flags, &args)?,
        "onbuild" => parse_onbuild(node, &args)?,
        "workdir" => {
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags(flags)?;
            Instruction::Workdir(args[0].clone())
        }
        "run" => {
            let f = Flags::parse(
                flags,
                &[
                    ("mount", FlagType::Strings),
                    ("network", FlagType::String),
                    ("security", FlagType::String),
                    ("device", FlagType::Strings),
                ],
            )?;
            let network = f.string_or("network", "default");
            if !matches!(network.as_str(), "default" | "none" | "host") {
                return args_err(format!("invalid network mode {network:?}"));
            }
            let security = f.string_or("security", "sandbox");
            if !matches!(security.as_str(), "sandbox" | "insecure") {
                return args_err(format!("security {security:?} is not valid"));
            }
            let mount_specs = f.list("mount");
            for m in &mount_specs {
                parse_mount(m, None).map_err(|e| Fail::Flag(e.to_string()))?;
            }
            Instruction::Run(RunInstruction {
                cmd: command_line(node, &args),
                mount_specs,
                network,
                security,
                devices: f.list("device"),
                flags_used: f.used,
            })
        }
        "cmd" => {
            no_flags(flags)?;
            Instruction::Cmd(command_line(node, &args))
        }
        "entrypoint" => {
            no_flags(flags)?;
            Instruction::Entrypoint(command_line(node, &args))
        }
        "healthcheck" => parse_healthcheck(node, &args)?,
        "expose" => {
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(flags)?;
            let mut ports = args;
            ports.sort();
            Instruction::Expose(ports)
        }
        "user" => {
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            no_flags(flags)?;
            Instruction::User(args[0].clone())
        }
        "volume" => {
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(flags)?;
            let mut vols = Vec::new();
            for v in &args {
                let v = trim_space(v);
                if v.is_empty() {
                    return args_err("VOLUME specified can not be an empty string");
                }
                vols.push(v.to_string());
            }
            Instruction::Volume(vols)
        }
        "stopsignal" => {
            // BuildKit does not check STOPSIGNAL's flags.
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Instruction::StopSignal(args[0].clone())
        }
        "arg" => {
            // Nor ARG's.
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut defs = Vec::new();
            for a in &args {
                defs.push(match a.split_once('=') {
                    Some(("", _)) => return args_err("ARG names can not be blank"),
                    Some((k, v)) => ArgDef {
                        key: k.to_string(),
                        value: Some(v.to_string()),
                    },
                    None => ArgDef {
                        key: a.clone(),
                        value: None,
                    },
                });
            }
            Instruction::Arg(defs)
        }
        "shell" => {
            no_flags(flags)?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return args_err("SHELL requires the arguments to be in JSON form");
            }
            Instruction::Shell(args)
        }
        _ => return Err(Fail::Unknown),
    })
}

fn parse_kvps(args: &[String], cmd: &str) -> Result<Vec<KeyValue>, Fail> {
    if args.is_empty() {
        return Err(at_least_one(cmd));
    }
    if args.len() % 3 != 0 {
        return args_err(format!("Bad input to {cmd}, too many arguments"));
    }
    let mut out = Vec::new();
    for chunk in args.chunks(3) {
        if chunk[0].is_empty() {
            return args_err(format!("{cmd} names can not be blank"));
        }
        out.push(KeyValue {
            key: chunk[0].clone(),
            value: chunk[1].clone(),
            no_delim: chunk[2].is_empty(),
        });
    }
    Ok(out)
}

/// BuildKit's `handleJSONArgs` plus the heredocs as inline files.
fn command_line(node: &Node, args: &[String]) -> CommandLine {
    let form = if node.json {
        CmdForm::Exec(args.to_vec())
    } else {
        CmdForm::Shell(args.join(" "))
    };
    CommandLine {
        form,
        files: node
            .heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                data: h.content.clone(),
                chomp: h.chomp,
            })
            .collect(),
    }
}

fn parse_sources_and_dest(node: &Node, args: &[String], cmd: &str) -> Result<SourcesAndDest, Fail> {
    let (dest, srcs) = args.split_last().ok_or_else(|| no_destination(cmd))?;
    if matches!(parse_heredoc(dest), Ok(Some(_))) {
        return args_err(format!("{cmd} cannot accept a heredoc as a destination"));
    }
    let mut source_paths = Vec::new();
    let mut source_contents = Vec::new();
    for src in srcs {
        match parse_heredoc(src) {
            Ok(Some(h)) => {
                // The last heredoc with that name wins, as in BuildKit's lookup map.
                let content = node
                    .heredocs
                    .iter()
                    .rev()
                    .find(|d| d.name == h.name)
                    .map(|d| d.content.clone())
                    .unwrap_or_default();
                let data = if h.chomp {
                    chomp_heredoc_content(&content)
                } else {
                    content
                };
                source_contents.push(SourceContent {
                    path: h.name,
                    data,
                    expand: h.expand,
                });
            }
            _ => source_paths.push(src.clone()),
        }
    }
    Ok(SourcesAndDest {
        source_paths,
        source_contents,
        dest: dest.clone(),
    })
}

fn no_destination(cmd: &str) -> Fail {
    Fail::Args(format!(
        "{cmd} requires at least two arguments, but only one was provided. Destination could not be determined"
    ))
}

fn parse_add(node: &Node, args: &[String]) -> Result<Instruction, Fail> {
    if args.len() < 2 {
        return Err(no_destination("ADD"));
    }
    let f = Flags::parse(
        &node.flags,
        &[
            ("chown", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("keep-git-dir", FlagType::Bool),
            ("checksum", FlagType::String),
            ("unpack", FlagType::Bool),
            ("exclude", FlagType::Strings),
        ],
    )?;
    Ok(Instruction::Add(AddInstruction {
        sources: parse_sources_and_dest(node, args, "ADD")?,
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        keep_git_dir: f.bool("keep-git-dir"),
        checksum: f.string("checksum"),
        unpack: f.bool("unpack"),
        excludes: f.list("exclude"),
    }))
}

fn parse_copy(node: &Node, args: &[String]) -> Result<Instruction, Fail> {
    if args.len() < 2 {
        return Err(no_destination("COPY"));
    }
    let f = Flags::parse(
        &node.flags,
        &[
            ("chown", FlagType::String),
            ("from", FlagType::String),
            ("chmod", FlagType::String),
            ("link", FlagType::Bool),
            ("exclude", FlagType::Strings),
            ("parents", FlagType::Bool),
        ],
    )?;
    Ok(Instruction::Copy(CopyInstruction {
        sources: parse_sources_and_dest(node, args, "COPY")?,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod: f.string("chmod"),
        link: f.bool("link").unwrap_or(false),
        parents: f.bool("parents").unwrap_or(false),
        excludes: f.list("exclude"),
    }))
}

/// Stage names: `^[a-z][a-z0-9-_.]*$` after lowercasing.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

fn parse_from(flags: &[String], args: &[String]) -> Result<Instruction, Fail> {
    let name = match args {
        [_, as_kw, name] if equal_fold(as_kw, "as") => {
            let lower = go_to_lower(name);
            if !valid_stage_name(&lower) {
                return args_err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return args_err("FROM requires either one or three arguments"),
    };
    let f = Flags::parse(flags, &[("platform", FlagType::String)])?;
    Ok(Instruction::From(FromInstruction {
        base_name: args[0].clone(),
        name,
        platform: f.string("platform"),
    }))
}

fn parse_onbuild(node: &Node, args: &[String]) -> Result<Instruction, Fail> {
    let Some(first) = args.first() else {
        return Err(at_least_one("ONBUILD"));
    };
    Flags::parse(&node.flags, &[])?;
    let trigger = go_to_upper(trim_space(first));
    match trigger.as_str() {
        "ONBUILD" => return args_err("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
        "MAINTAINER" | "FROM" => {
            return args_err(format!("{trigger} isn't allowed as an ONBUILD trigger"))
        }
        _ => {}
    }
    // BuildKit strips `(?i)^\s*ONBUILD\s*` from the original line.
    let is_blank = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let original = node.original.trim_start_matches(is_blank);
    let original = match original.get(..7) {
        Some(kw) if kw.eq_ignore_ascii_case("onbuild") => {
            original[7..].trim_start_matches(is_blank)
        }
        _ => original,
    };
    let mut expression = original.to_string();
    for h in &node.heredocs {
        expression.push('\n');
        expression.push_str(&h.content);
        expression.push_str(&h.name);
    }
    Ok(Instruction::Onbuild(Onbuild { expression }))
}

/// Go's `time.ParseDuration`, in nanoseconds.
fn parse_go_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {orig:?}");
    let mut s = orig;
    let mut neg = false;
    if let Some(r) = s.strip_prefix('-') {
        neg = true;
        s = r;
    } else if let Some(r) = s.strip_prefix('+') {
        s = r;
    }
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut d: u64 = 0;
    while !s.is_empty() {
        let b = s.as_bytes();
        if !(b[0] == b'.' || b[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // Integer part.
        let int_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let mut v: u64 = 0;
        for &c in &b[..int_len] {
            if v > (LIMIT - 1) / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
        }
        s = &s[int_len..];
        let pre = int_len > 0;
        // Fraction.
        let (mut f, mut scale, mut post) = (0u64, 1f64, false);
        if let Some(r) = s.strip_prefix('.') {
            s = r;
            let frac_len = s.bytes().take_while(u8::is_ascii_digit).count();
            let mut overflow = false;
            for c in s[..frac_len].bytes() {
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = frac_len > 0;
            s = &s[frac_len..];
        }
        if !pre && !post {
            return Err(invalid());
        }
        let unit_len = s
            .bytes()
            .take_while(|&c| c != b'.' && !c.is_ascii_digit())
            .count();
        if unit_len == 0 {
            return Err(format!("time: missing unit in duration {orig:?}"));
        }
        let unit: u64 = match &s[..unit_len] {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            u => return Err(format!("time: unknown unit {u:?} in duration {orig:?}")),
        };
        s = &s[unit_len..];
        if v > LIMIT / unit {
            return Err(invalid());
        }
        v *= unit;
        if f > 0 {
            v += (f as f64 * (unit as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        d += v;
        if d > LIMIT {
            return Err(invalid());
        }
    }
    if neg {
        return Ok((d as i64).wrapping_neg());
    }
    if d > LIMIT - 1 {
        return Err(invalid());
    }
    Ok(d as i64)
}

/// BuildKit's `parseOptInterval`: empty or zero is "default"; otherwise at least 1ms.
fn parse_opt_interval(name: &str, value: Option<String>) -> Result<Duration, Fail> {
    let Some(s) = value else {
        return Ok(Duration::ZERO);
    };
    let ns = parse_go_duration(&s).map_err(Fail::Flag)?;
    if ns == 0 {
        return Ok(Duration::ZERO);
    }
    if ns < 1_000_000 {
        return Err(Fail::Flag(format!(
            "Interval {name:?} cannot be less than 1ms"
        )));
    }
    Ok(Duration::from_nanos(ns as u64))
}

fn parse_healthcheck(node: &Node, args: &[String]) -> Result<Instruction, Fail> {
    let Some(first) = args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let typ = go_to_upper(first);
    let rest = &args[1..];
    if typ == "NONE" {
        // BuildKit does not look at the flags of HEALTHCHECK NONE.
        if !rest.is_empty() {
            return args_err("HEALTHCHECK NONE takes no arguments");
        }
        return Ok(Instruction::Healthcheck(HealthcheckConfig {
            test: vec![typ],
            interval: Duration::ZERO,
            timeout: Duration::ZERO,
            start_period: Duration::ZERO,
            start_interval: Duration::ZERO,
            retries: 0,
        }));
    }
    let f = Flags::parse(
        &node.flags,
        &[
            ("interval", FlagType::String),
            ("timeout", FlagType::String),
            ("start-period", FlagType::String),
            ("start-interval", FlagType::String),
            ("retries", FlagType::String),
        ],
    )?;
    if typ != "CMD" {
        return args_err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    let mut test = if node.json {
        rest.to_vec()
    } else if rest.is_empty() {
        Vec::new()
    } else {
        vec![rest.join(" ")]
    };
    if test.is_empty() {
        return args_err("Missing command after HEALTHCHECK CMD");
    }
    test.insert(0, if node.json { "CMD" } else { "CMD-SHELL" }.to_string());
    let retries = match f.string("retries") {
        None => 0,
        Some(r) => {
            let n: i32 = r.parse().map_err(|_| {
                Fail::Flag(format!("strconv.ParseInt: parsing {r:?}: invalid syntax"))
            })?;
            if n < 0 {
                return Err(Fail::Flag(format!("--retries cannot be negative ({n})")));
            }
            n as u32
        }
    };
    Ok(Instruction::Healthcheck(HealthcheckConfig {
        test,
        interval: parse_opt_interval("interval", f.string("interval"))?,
        timeout: parse_opt_interval("timeout", f.string("timeout"))?,
        start_period: parse_opt_interval("start-period", f.string("start-period"))?,
        start_interval: parse_opt_interval("start-interval", f.string("start-interval"))?,
        retries,
    }))
}

/// The kind of a RUN `--mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountType {
    /// Bind a directory of the context or another stage (the default).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// A tmpfs.
    Tmpfs,
    /// A build secret.
    Secret,
    /// The SSH agent socket.
    Ssh,
}

impl MountType {
    fn as_str(self) -> &'static str {
        match self {
            Self::Bind => "bind",
            Self::Cache => "cache",
            Self::Tmpfs => "tmpfs",
            Self::Secret => "secret",
            Self::Ssh => "ssh",
        }
    }
}

/// A RUN `--mount`, as BuildKit's `instructions.Mount`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `type=`.
    pub typ: MountType,
    /// `from=`: a stage or image to mount from.
    pub from: Option<String>,
    /// `source=`/`src=`.
    pub source: Option<String>,
    /// `target=`/`dst=`/`destination=`.
    pub target: Option<String>,
    /// Read-only (bind and secret mounts are read-only unless told otherwise).
    pub read_only: bool,
    /// `size=` of a tmpfs, in bytes.
    pub size_limit: i64,
    /// `id=` of a cache or secret.
    pub cache_id: Option<String>,
    /// `sharing=`: `shared`, `private` or `locked`.
    pub cache_sharing: Option<String>,
    /// `required` (secret and ssh).
    pub required: bool,
    /// `env=` of a secret.
    pub env: Option<String>,
    /// `mode=` (octal).
    pub mode: Option<u32>,
    /// `uid=`.
    pub uid: Option<u32>,
    /// `gid=`.
    pub gid: Option<u32>,
}

/// Why a `--mount` value is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// The value is not valid CSV.
    #[error("failed to parse csv mounts: {0}")]
    Csv(String),
    /// An option's value could not be expanded.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// Any other problem, in BuildKit's words.
    #[error("{0}")]
    Invalid(String),
}

/// Splits one CSV record (RFC 4180 quoting, as `go-csvvalue`).
fn csv_fields(val: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut chars = val.chars().peekable();
    loop {
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("extraneous or missing \" in quoted-field".into()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    out.push(field);
                    return Ok(out);
                }
                Some(',') => out.push(field),
                Some(_) => return Err("extraneous or missing \" in quoted-field".into()),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        out.push(field);
                        return Ok(out);
                    }
                    Some(',') => break,
                    Some('"') => return Err("bare \" in non-quoted-field".into()),
                    Some(c) => field.push(c),
                }
            }
            out.push(field);
        }
    }
}

/// docker/go-units `RAMInBytes`.
fn ram_in_bytes(size: &str) -> Option<i64> {
    let sep = size.rfind(|c: char| c.is_ascii_digit() || c == '.' || c == ' ')?;
    let (num, sfx) = if size.as_bytes()[sep] == b' ' {
        (&size[..sep], &size[sep + 1..])
    } else {
        (&size[..=sep], &size[sep + 1..])
    };
    let n: f64 = num.parse().ok()?;
    if n < 0.0 || n.is_nan() {
        return None;
    }
    if sfx.is_empty() {
        return Some(n as i64);
    }
    if sfx.len() > 3 {
        return None;
    }
    let sfx = sfx.to_ascii_lowercase();
    let b = sfx.as_bytes();
    if b[0] == b'b' {
        return (b.len() == 1).then_some(n as i64);
    }
    let mul: f64 = match b[0] {
        b'k' => 1024.0,
        b'm' => 1024.0 * 1024.0,
        b'g' => 1024.0 * 1024.0 * 1024.0,
        b't' => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        b'p' => 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    if (b.len() == 2 && b[1] != b'b') || (b.len() == 3 && &sfx[1..] != "ib") {
        return None;
    }
    Some((n * mul) as i64)
}

/// Go `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Parses one `--mount` value (BuildKit's `parseMount`).
///
/// Without an expander only `from=` is read (and must not use variables), as when
/// BuildKit parses the Dockerfile; everything else is read when the step runs.
pub fn parse_mount(
    val: &str,
    mut expander: Option<&mut SingleWordExpander>,
) -> Result<Mount, MountError> {
    let fields = csv_fields(val).map_err(MountError::Csv)?;
    let mut m = Mount {
        typ: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        size_limit: 0,
        cache_id: None,
        cache_sharing: None,
        required: false,
        env: None,
        mode: None,
        uid: None,
        gid: None,
    };
    let invalid = |s: String| MountError::Invalid(s);
    let mut ro_auto = true;
    for field in &fields {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (go_to_lower(k), Some(v.to_string())),
            None => (go_to_lower(field), None),
        };
        let Some(value) = value else {
            if expander.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if matches!(m.typ, MountType::Secret | MountType::Ssh) => {
                    m.required = true;
                }
                "required" => {
                    return Err(invalid(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    )))
                }
                _ => {
                    return Err(invalid(format!(
                        "invalid field '{field}' must be a key=value pair"
                    )))
                }
            }
            continue;
        };
        let value = match expander.as_mut() {
            Some(e) => e(&value)?,
            None if key == "from" => {
                if value.find('$').is_some_and(|i| i != value.len() - 1) {
                    return Err(invalid(format!(
                        "'{key}' doesn't support variable expansion, define alias stage instead"
                    )));
                }
                value
            }
            None => continue,
        };
        let bad_value = || invalid(format!("invalid value for {key}: {value}"));
        match key.as_str() {
            "type" => {
                m.typ = match go_to_lower(&value).as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => return Err(invalid(format!("unsupported mount type {value:?}"))),
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.read_only = parse_go_bool(&value).ok_or_else(bad_value)?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !parse_go_bool(&value).ok_or_else(bad_value)?;
                ro_auto = false;
            }
            "required" => {
                if !matches!(m.typ, MountType::Secret | MountType::Ssh) {
                    return Err(invalid(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    )));
                }
                m.required = parse_go_bool(&value).ok_or_else(bad_value)?;
            }
            "size" => {
                if m.typ != MountType::Tmpfs {
                    return Err(invalid(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        m.typ.as_str()
                    )));
                }
                m.size_limit = ram_in_bytes(&value).ok_or_else(bad_value)?;
            }
            "id" => m.cache_id = Some(value),
            "sharing" => {
                let v = go_to_lower(&value);
                if !matches!(v.as_str(), "shared" | "private" | "locked") {
                    return Err(invalid(format!("unsupported sharing value {value:?}")));
                }
                m.cache_sharing = Some(v);
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| invalid(format!("invalid value {value} for mode")))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("invalid value {value} for uid")))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| invalid(format!("invalid value {value} for gid")))?,
                )
            }
            "env" => m.env = Some(value),
            _ => return Err(invalid(format!("unexpected key '{key}' in '{field}'"))),
        }
    }
    let file_info_allowed = matches!(m.typ, MountType::Secret | MountType::Ssh | MountType::Cache);
    if !file_info_allowed {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(invalid(format!(
                    "{what} not allowed for {:?} type mounts",
                    m.typ.as_str()
                )));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.typ, MountType::Cache | MountType::Tmpfs);
    }
    if m.typ == MountType::Secret {
        if m.from.is_some() {
            return Err(invalid("secret mount should not have a from".into()));
        }
        if m.cache_sharing.is_some() {
            return Err(invalid("secret mount should not define sharing".into()));
        }
        if m.source.is_none() && m.target.is_none() && m.cache_id.is_none() {
            return Err(invalid(
                "invalid secret mount. one of source, target required".into(),
            ));
        }
        if m.source.is_some() && m.cache_id.is_some() {
            return Err(invalid("both source and id can't be set".into()));
        }
    }
    if m.cache_sharing.is_some() && m.typ != MountType::Cache {
        return Err(invalid(format!(
            "invalid cache sharing set for {} mount",
            m.typ.as_str()
        )));
    }
    Ok(m)
}

/// A `SingleWordExpander` built from a lexer and an environment, for
/// [`Instruction::expand`].
pub fn word_expander<'a>(
    lex: &'a Lex,
    env: &'a dyn crate::shell::EnvGetter,
) -> impl FnMut(&str) -> Result<String, ExpandError> + 'a {
    move |w| lex.process_word(w, env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shell::Envs;

    fn one(src: &str) -> Result<Instruction, InstructionError> {
        let res = parse(src)?;
        parse_instruction(&res.ast.children[0])
    }

    #[test]
    fn from_with_platform_and_name() {
        assert_eq!(
            one("FROM --platform=$BUILDPLATFORM golang:1.22 AS Build\n").unwrap(),
            Instruction::From(FromInstruction {
                base_name: "golang:1.22".into(),
                name: Some("build".into()),
                platform: Some("$BUILDPLATFORM".into()),
            })
        );
        assert!(one("FROM a AS 1x\n")
            .unwrap_err()
            .to_string()
            .contains("invalid name for build stage"));
        assert!(one("FROM a b\n")
            .unwrap_err()
            .to_string()
            .contains("one or three"));
        assert_eq!(
            one("FROM --plat=x a\n").unwrap_err().to_string(),
            "line 1: unknown flag: --plat"
        );
    }

    #[test]
    fn run_forms_and_flags() {
        let Instruction::Run(r) =
            one("RUN --mount=type=cache,target=/root/.cache --network=none pip install x\n")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(r.cmd.form, CmdForm::Shell("pip install x".into()));
        assert_eq!(r.network, "none");
        let mounts = r.mounts(&mut |s: &str| Ok(s.to_string())).unwrap();
        assert_eq!(mounts[0].typ, MountType::Cache);
        assert_eq!(mounts[0].target.as_deref(), Some("/root/.cache"));
        assert!(!mounts[0].read_only);

        let Instruction::Run(r) = one("RUN [\"echo\", \"hi\"]\n").unwrap() else {
            panic!()
        };
        assert_eq!(r.cmd.form, CmdForm::Exec(vec!["echo".into(), "hi".into()]));
        assert!(one("RUN --network=bogus x\n").is_err());
        assert!(one("RUN --mount=from=$X,target=/a x\n").is_err());

        let Instruction::Run(r) = one("RUN <<EOF\necho hi\nEOF\n").unwrap() else {
            panic!()
        };
        assert_eq!(r.cmd.form, CmdForm::Shell("<<EOF".into()));
        assert_eq!(r.cmd.files[0].data, "echo hi\n");
    }

    #[test]
    fn copy_and_add() {
        let Instruction::Copy(c) = one("COPY --from=build --chown=1:1 --link a b /dst/\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(c.from.as_deref(), Some("build"));
        assert_eq!(c.chown.as_deref(), Some("1:1"));
        assert!(c.link);
        assert_eq!(c.sources.source_paths, ["a", "b"]);
        assert_eq!(c.sources.dest, "/dst/");

        let Instruction::Copy(c) = one("COPY <<-EOF /x\n\thi\nEOF\n").unwrap() else {
            panic!()
        };
        assert_eq!(c.sources.source_contents[0].data, "hi\n");
        assert!(one("COPY a\n")
            .unwrap_err()
            .to_string()
            .contains("at least two arguments"));
        assert!(one("COPY a <<EOF\nx\nEOF\n")
            .unwrap_err()
            .to_string()
            .contains("heredoc as a destination"));
        assert!(one("COPY --link=maybe a b\n")
            .unwrap_err()
            .to_string()
            .contains("expecting boolean"));

        let Instruction::Add(a) =
            one("ADD --checksum=sha256:abc --unpack=false http://x/y.tgz /\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(a.checksum.as_deref(), Some("sha256:abc"));
        assert_eq!(a.unpack, Some(false));
        assert_eq!(a.keep_git_dir, None);
    }

    #[test]
    fn key_values() {
        assert_eq!(
            one("ENV A=1 B=\"two words\"\n").unwrap(),
            Instruction::Env(vec![
                KeyValue {
                    key: "A".into(),
                    value: "1".into(),
                    no_delim: false
                },
                KeyValue {
                    key: "B".into(),
                    value: "\"two words\"".into(),
                    no_delim: false
                },
            ])
        );
        assert_eq!(
            one("LABEL a b c\n").unwrap(),
            Instruction::Label(vec![KeyValue {
                key: "a".into(),
                value: "b c".into(),
                no_delim: true
            }])
        );
        assert_eq!(
            one("ARG A B=2\n").unwrap(),
            Instruction::Arg(vec![
                ArgDef {
                    key: "A".into(),
                    value: None
                },
                ArgDef {
                    key: "B".into(),
                    value: Some("2".into())
                },
            ])
        );
        assert!(one("ARG =x\n").is_err());
        assert!(one("ENV\n")
            .unwrap_err()
            .to_string()
            .contains("at least one argument"));
    }

    #[test]
    fn expand_uses_buildkit_fields() {
        let mut i = one("ENV A=\"$X y\"\n").unwrap();
        let env = Envs::from_slice(&["X=x"]);
        let lex = Lex::new('\\');
        i.expand(&mut word_expander(&lex, &env)).unwrap();
        assert_eq!(
            i,
            Instruction::Env(vec![KeyValue {
                key: "A".into(),
                value: "x y".into(),
                no_delim: false
            }])
        );
    }

    #[test]
    fn simple_instructions() {
        assert_eq!(
            one("EXPOSE 8080 443/tcp 80\n").unwrap(),
            Instruction::Expose(vec!["443/tcp".into(), "80".into(), "8080".into()])
        );
        assert_eq!(
            one("USER app:app\n").unwrap(),
            Instruction::User("app:app".into())
        );
        assert_eq!(
            one("WORKDIR /a b\n").unwrap(),
            Instruction::Workdir("/a b".into())
        );
        assert_eq!(
            one("VOLUME [\"/a\", \"/b\"]\n").unwrap(),
            Instruction::Volume(vec!["/a".into(), "/b".into()])
        );
        assert_eq!(
            one("STOPSIGNAL SIGTERM\n").unwrap(),
            Instruction::StopSignal("SIGTERM".into())
        );
        assert_eq!(
            one("MAINTAINER me <me@x>\n").unwrap(),
            Instruction::Maintainer("me <me@x>".into())
        );
        assert_eq!(
            one("SHELL [\"/bin/bash\", \"-c\"]\n").unwrap(),
            Instruction::Shell(vec!["/bin/bash".into(), "-c".into()])
        );
        assert!(one("SHELL /bin/bash -c\n")
            .unwrap_err()
            .to_string()
            .contains("JSON form"));
        assert!(one("USER\n").is_err());
        assert_eq!(
            one("FOO bar\n").unwrap_err().to_string(),
            "line 1: unknown instruction: FOO"
        );
        assert_eq!(
            one("CMD\n").unwrap(),
            Instruction::Cmd(CommandLine {
                form: CmdForm::Shell(String::new()),
                files: vec![]
            })
        );
    }

    #[test]
    fn healthcheck() {
        let Instruction::Healthcheck(h) =
            one("HEALTHCHECK --interval=30s --timeout=1m30s --start-period=5s --retries=3 CMD curl -f http://localhost/ || exit 1\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(h.test, ["CMD-SHELL", "curl -f http://localhost/ || exit 1"]);
        assert_eq!(h.interval, Duration::from_secs(30));
        assert_eq!(h.timeout, Duration::from_secs(90));
        assert_eq!(h.start_period, Duration::from_secs(5));
        assert_eq!(h.retries, 3);
        let Instruction::Healthcheck(h) =
            one("HEALTHCHECK CMD [\"/bin/check\", \"-q\"]\n").unwrap()
        else {
            panic!()
        };
        assert_eq!(h.test, ["CMD", "/bin/check", "-q"]);
        let Instruction::Healthcheck(h) = one("HEALTHCHECK NONE\n").unwrap() else {
            panic!()
        };
        assert_eq!(h.test, ["NONE"]);
        assert!(one("HEALTHCHECK --interval=1us CMD x\n")
            .unwrap_err()
            .to_string()
            .contains("cannot be less than 1ms"));
        assert!(one("HEALTHCHECK --retries=-1 CMD x\n").is_err());
        assert!(one("HEALTHCHECK CONNECT x\n")
            .unwrap_err()
            .to_string()
            .contains("Unknown type"));
        assert!(one("HEALTHCHECK CMD\n")
            .unwrap_err()
            .to_string()
            .contains("Missing command"));
    }

    #[test]
    fn onbuild() {
        let Instruction::Onbuild(o) = one("ONBUILD RUN echo hi\n").unwrap() else {
            panic!()
        };
        assert_eq!(o.expression, "RUN echo hi");
        assert!(matches!(o.trigger().unwrap(), Instruction::Run(_)));
        let Instruction::Onbuild(o) = one("onbuild COPY <<EOF /x\nhello\nEOF\n").unwrap() else {
            panic!()
        };
        assert_eq!(o.expression, "COPY <<EOF /x\nhello\nEOF");
        let Instruction::Copy(c) = o.trigger().unwrap() else {
            panic!()
        };
        assert_eq!(c.sources.source_contents[0].data, "hello\n");
        assert!(one("ONBUILD ONBUILD RUN x\n").is_err());
        assert!(one("ONBUILD FROM x\n").is_err());
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(parse_go_duration("1h2m3.5s"), Ok(3_723_500_000_000));
        assert_eq!(parse_go_duration("1.5µs"), Ok(1500));
        assert_eq!(parse_go_duration("0"), Ok(0));
        assert_eq!(parse_go_duration("-1s"), Ok(-1_000_000_000));
        assert!(parse_go_duration("1").is_err());
        assert!(parse_go_duration("s").is_err());
        assert!(parse_go_duration("1x").is_err());
        assert!(parse_go_duration("9999999999h").is_err());
    }

    #[test]
    fn stages_and_meta_args() {
        let df = parse_dockerfile("ARG A\nFROM x AS One\nRUN a\nFROM one\n").unwrap();
        assert_eq!(df.meta_args.len(), 1);
        assert_eq!(df.stages.len(), 2);
        assert_eq!(df.stage_by_name("ONE").unwrap().index, 0);
        let err = parse_dockerfile("RUN a\nFROM x\n").unwrap_err();
        assert_eq!(err.line(), 1);
        assert!(err.to_string().contains("no build stage"));
    }

    #[test]
    fn mount_parsing() {
        let id = &mut |s: &str| Ok::<_, ExpandError>(s.to_string());
        let m = parse_mount("type=secret,id=tok,required", Some(id)).unwrap();
        assert_eq!(m.typ, MountType::Secret);
        assert!(m.required && m.read_only);
        assert!(
            parse_mount("type=tmpfs,size=64m", Some(id))
                .unwrap()
                .size_limit
                == 64 << 20
        );
        assert!(parse_mount("type=bind,mode=0755", Some(id)).is_err());
        assert!(parse_mount("type=secret", Some(id)).is_err());
        assert!(parse_mount("bogus=1", Some(id)).is_err());
        assert_eq!(csv_fields("a,\"b,c\",d").unwrap(), ["a", "b,c", "d"]);
        assert!(csv_fields("a\"b").is_err());
    }
}
