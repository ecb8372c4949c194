//! The stage graph of a multi-stage Dockerfile, resolved as BuildKit's
//! `dockerfile2llb` does before it builds anything.
//!
//! * `FROM <base>`: `<base>` is expanded with the meta ARGs (those before the first
//!   FROM). If the result equals the name of an *earlier* stage, the stage builds on
//!   that stage; otherwise it is an image. The comparison is case-sensitive against
//!   the lowercased stage names, as upstream (`FROM Build` is an image).
//! * `COPY --from=<x>`: a stage index (`0`, `1` …), else a stage name
//!   (case-insensitive, any stage of the file), else an image. Variables are refused.
//! * `RUN --mount=…,from=<x>`: a stage name, else an image (never an index).
//! * A target (`--target`, default: the last stage) needs its base chain and every
//!   stage it copies or mounts from, transitively; only those are built.
//!
//! A reference cycle through `--from` is an error for the whole file; a reference to
//! a later stage is an error only when a stage that is built makes it, since BuildKit
//! reports it while dispatching.

use std::collections::BTreeMap;

use crate::instructions::{Dockerfile, Instruction};
use crate::shell::{EmptyEnv, EnvGetter, Envs, ExpandError, Lex};
use crate::unicode::go_to_lower;

/// Why the stages cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StageGraphError {
    /// The file has ARGs but no FROM.
    #[error("dockerfile contains no stages to build")]
    NoStages,
    /// A meta ARG default, FROM image or `--platform` could not be expanded.
    #[error("line {line}: {source}")]
    Expand {
        /// Line of the instruction.
        line: usize,
        /// The expansion error.
        source: ExpandError,
    },
    /// FROM expands to nothing.
    #[error("line {line}: base name ({base}) should not be blank")]
    BlankBaseName {
        /// Line of the FROM.
        line: usize,
        /// The base name as written.
        base: String,
    },
    /// `--platform` expands to nothing.
    #[error("line {line}: empty platform value from expression {expr}")]
    BlankPlatform {
        /// Line of the FROM.
        line: usize,
        /// The platform as written.
        expr: String,
    },
    /// `COPY --from=$X`.
    #[error("line {line}: variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround")]
    VariableInFrom {
        /// Line of the COPY.
        line: usize,
    },
    /// `COPY --from=<n>` with no stage `n`.
    #[error("line {line}: invalid stage index {index}")]
    InvalidStageIndex {
        /// Line of the COPY.
        line: usize,
        /// The index given.
        index: i64,
    },
    /// Stages that copy or mount from each other in a cycle.
    #[error("line {line}: circular dependency detected on stage: {stage}")]
    Circular {
        /// Line of the first `--from` on the cycle.
        line: usize,
        /// The stage where the cycle was found.
        stage: String,
    },
    /// A built stage copies from a stage defined after it.
    #[error("line {line}: cannot copy from stage {from:?}, it needs to be defined before current stage {stage:?}")]
    CopyFromLaterStage {
        /// Line of the COPY.
        line: usize,
        /// The `--from` value.
        from: String,
        /// The current stage.
        stage: String,
    },
    /// A built stage mounts from a stage defined after it.
    #[error("line {line}: cannot mount from stage {from:?}, stage needs to be defined before current command")]
    MountFromLaterStage {
        /// Line of the RUN.
        line: usize,
        /// The `from=` value.
        from: String,
    },
    /// `--target` names no stage.
    #[error("target stage {0:?} could not be found")]
    TargetNotFound(String),
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseRef {
    /// An earlier stage, by index.
    Stage(usize),
    /// An image reference (or `scratch`), expanded.
    Image(String),
}

/// Where a COPY or a mount takes files from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// A stage, by index.
    Stage(usize),
    /// An image reference.
    Image(String),
}

/// How a stage refers to another stage or image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DependencyKind {
    /// `COPY --from`.
    CopyFrom,
    /// `RUN --mount=from=`.
    MountFrom,
}

/// One `--from` reference of a stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// What it refers to.
    pub source: SourceRef,
    /// The value as written.
    pub reference: String,
    /// COPY or RUN --mount.
    pub kind: DependencyKind,
    /// Line of the instruction.
    pub line: usize,
}

/// A stage in the graph.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageNode {
    /// Position in the file, from 0.
    pub index: usize,
    /// `AS` name, lowercased.
    pub name: Option<String>,
    /// What the stage starts from.
    pub base: BaseRef,
    /// `--platform` after expansion.
    pub platform: Option<String>,
    /// `--from` references, in source order.
    pub deps: Vec<Dependency>,
    /// Line of the FROM.
    pub line: usize,
}

impl StageNode {
    /// BuildKit's display name: the `AS` name, or `stage-<index>`.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }

    /// The stages this one needs directly: its base and its `--from` stages.
    pub fn stage_deps(&self) -> Vec<usize> {
        let mut out = Vec::new();
        if let BaseRef::Stage(i) = self.base {
            out.push(i);
        }
        for d in &self.deps {
            if let SourceRef::Stage(i) = d.source {
                if !out.contains(&i) {
                    out.push(i);
                }
            }
        }
        out
    }
}

/// Inputs that decide how the graph resolves.
#[derive(Debug, Clone, Default)]
pub struct GraphOptions {
    /// `--build-arg` values. They override meta ARG defaults of the same name, and are
    /// otherwise not visible to FROM lines (as in BuildKit).
    pub build_args: BTreeMap<String, String>,
    /// Variables always in scope for FROM lines: BuildKit's automatic platform
    /// arguments (`TARGETPLATFORM`, `BUILDARCH` …), supplied by the caller.
    pub default_args: Envs,
}

/// The resolved stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageGraph {
    /// The stages in file order.
    pub stages: Vec<StageNode>,
    /// The global scope after the meta ARGs: default args plus meta ARG values.
    pub global_args: Envs,
}

/// A target and what building it takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildPlan {
    /// The target stage.
    pub target: usize,
    /// The stages to build, target included, in file order (each after all it needs).
    pub stages: Vec<usize>,
}

impl StageGraph {
    /// Resolves the stages of `df`.
    pub fn new(df: &Dockerfile, opts: &GraphOptions) -> Result<Self, StageGraphError> {
        if df.stages.is_empty() {
            return Err(StageGraphError::NoStages);
        }
        let lex = Lex::new(df.escape_token);

        // Meta ARGs, in order; a build arg replaces the default (BuildKit's
        // `buildMetaArgs`), and a default may use the ARGs before it.
        let mut global = opts.default_args.clone();
        for cmd in &df.meta_args {
            let Instruction::Arg(defs) = &cmd.instruction else {
                continue;
            };
            for def in defs {
                let value = match opts.build_args.get(&def.key) {
                    Some(v) => Some(v.clone()),
                    None => match &def.value {
                        Some(v) => Some(lex.process_word(v, &global).map_err(|source| {
                            StageGraphError::Expand {
                                line: cmd.span.start_line,
                                source,
                            }
                        })?),
                        None => None,
                    },
                };
                if let Some(v) = value {
                    global.set(&def.key, &v);
                }
            }
        }

        // FROM lines: a base names a stage only if that stage came earlier.
        let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
        let mut stages = Vec::new();
        for st in &df.stages {
            let line = st.from.span.start_line;
            let expand = |w: &str| {
                lex.process_word(w, &global)
                    .map_err(|source| StageGraphError::Expand { line, source })
            };
            let base_name = expand(&st.base_name)?;
            if base_name.is_empty() {
                return Err(StageGraphError::BlankBaseName {
                    line,
                    base: st.base_name.clone(),
                });
            }
            let platform = match &st.platform {
                Some(p) => {
                    let v = expand(p)?;
                    if v.is_empty() {
                        return Err(StageGraphError::BlankPlatform {
                            line,
                            expr: p.clone(),
                        });
                    }
                    Some(v)
                }
                None => None,
            };
            let base = match by_name.get(&base_name) {
                Some(&i) => BaseRef::Stage(i),
                None => BaseRef::Image(base_name),
            };
            if let Some(n) = &st.name {
                by_name.insert(n.clone(), st.index);
            }
            stages.push(StageNode {
                index: st.index,
                name: st.name.clone(),
                base,
                platform,
                deps: Vec::new(),
                line,
            });
        }

        // `--from` references may name any stage of the file.
        let lookup = |name: &str| by_name.get(&go_to_lower(name)).copied();
        for st in &df.stages {
            let mut deps = Vec::new();
            for cmd in &st.commands {
                let line = cmd.span.start_line;
                match &cmd.instruction {
                    Instruction::Copy(c) => {
                        let Some(from) = &c.from else { continue };
                        let unexpanded = lex
                            .process_word(from, &EmptyEnv)
                            .map_err(|source| StageGraphError::Expand { line, source })?;
                        if &unexpanded != from {
                            return Err(StageGraphError::VariableInFrom { line });
                        }
                        let source = match parse_go_atoi(from) {
                            Some(index) => {
                                if index < 0 || index >= stages.len() as i64 {
                                    return Err(StageGraphError::InvalidStageIndex { line, index });
                                }
                                SourceRef::Stage(index as usize)
                            }
                            None => match lookup(from) {
                                Some(i) => SourceRef::Stage(i),
                                None => SourceRef::Image(from.clone()),
                            },
                        };
                        deps.push(Dependency {
                            source,
                            reference: from.clone(),
                            kind: DependencyKind::CopyFrom,
                            line,
                        });
                    }
                    Instruction::Run(r) => {
                        for from in r.mount_froms().into_iter().flatten() {
                            let source = match lookup(&from) {
                                Some(i) => SourceRef::Stage(i),
                                None => SourceRef::Image(from.clone()),
                            };
                            deps.push(Dependency {
                                source,
                                reference: from,
                                kind: DependencyKind::MountFrom,
                                line,
                            });
                        }
                    }
                    _ => {}
                }
            }
            stages[st.index].deps = deps;
        }

        let graph = Self {
            stages,
            global_args: global,
        };
        graph.check_cycles()?;
        Ok(graph)
    }

    /// BuildKit's `validateCircularDependency`, over `--from` edges only. Like
    /// upstream it names the stage the search started from.
    fn check_cycles(&self) -> Result<(), StageGraphError> {
        let n = self.stages.len();
        let mut visited = vec![false; n];
        let mut on_path = vec![false; n];
        for start in 0..n {
            if visited[start] {
                continue;
            }
            // Iterative depth-first search: (stage, next dependency to look at).
            let mut stack = vec![(start, 0usize)];
            visited[start] = true;
            on_path[start] = true;
            while let Some(top) = stack.last_mut() {
                let (s, next) = *top;
                let deps = &self.stages[s].deps;
                if next >= deps.len() {
                    on_path[s] = false;
                    stack.pop();
                    continue;
                }
                top.1 += 1;
                let dep = &deps[next];
                let SourceRef::Stage(d) = dep.source else {
                    continue;
                };
                if on_path[d] {
                    return Err(StageGraphError::Circular {
                        line: dep.line,
                        stage: self.stages[start].display_name(),
                    });
                }
                if !visited[d] {
                    visited[d] = true;
                    on_path[d] = true;
                    stack.push((d, 0));
                }
            }
        }
        Ok(())
    }

    /// The stage `--target` names (case-insensitive), or the last stage.
    pub fn resolve_target(&self, target: Option<&str>) -> Result<usize, StageGraphError> {
        match target {
            None | Some("") => Ok(self.stages.len() - 1),
            Some(t) => {
                let lower = go_to_lower(t);
                self.stages
                    .iter()
                    .rev()
                    .find(|s| s.name.as_deref() == Some(lower.as_str()))
                    .map(|s| s.index)
                    .ok_or_else(|| StageGraphError::TargetNotFound(t.to_string()))
            }
        }
    }

    /// Every stage `target` needs, itself included, in file order.
    pub fn needed_stages(&self, target: usize) -> Vec<usize> {
        let mut seen = vec![false; self.stages.len()];
        let mut todo = vec![target];
        while let Some(s) = todo.pop() {
            if std::mem::replace(&mut seen[s], true) {
                continue;
            }
            todo.extend(self.stages[s].stage_deps());
        }
        (0..self.stages.len()).filter(|&i| seen[i]).collect()
    }

    /// Resolves `target` and checks that every stage to build only uses stages
    /// defined before it.
    pub fn plan(&self, target: Option<&str>) -> Result<BuildPlan, StageGraphError> {
        let target = self.resolve_target(target)?;
        let stages = self.needed_stages(target);
        for &s in &stages {
            let node = &self.stages[s];
            for d in &node.deps {
                let SourceRef::Stage(i) = d.source else {
                    continue;
                };
                if i < s {
                    continue;
                }
                return Err(match d.kind {
                    DependencyKind::CopyFrom => StageGraphError::CopyFromLaterStage {
                        line: d.line,
                        from: d.reference.clone(),
                        stage: node.display_name(),
                    },
                    DependencyKind::MountFrom => StageGraphError::MountFromLaterStage {
                        line: d.line,
                        from: d.reference.clone(),
                    },
                });
            }
        }
        Ok(BuildPlan { target, stages })
    }
}

/// Go `strconv.Atoi`: an optional sign and decimal digits that fit in 64 bits.
fn parse_go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl EnvGetter for StageGraph {
    fn get(&self, name: &str) -> Option<&str> {
        self.global_args.get(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instructions::parse_dockerfile;

    fn graph(src: &str) -> Result<StageGraph, StageGraphError> {
        StageGraph::new(&parse_dockerfile(src).unwrap(), &GraphOptions::default())
    }

    const MULTI: &str = "\
ARG GO=1.22
FROM golang:${GO} AS build
RUN go build -o /out/app
FROM alpine AS tools
RUN apk add curl
FROM build AS test
RUN go test
FROM scratch AS final
COPY --from=build /out/app /app
COPY --from=1 /usr/bin/curl /curl
COPY --from=busybox:1.36 /bin/sh /sh
";

    #[test]
    fn resolves_bases_and_from_references() {
        let g = graph(MULTI).unwrap();
        assert_eq!(g.stages[0].base, BaseRef::Image("golang:1.22".into()));
        assert_eq!(g.stages[2].base, BaseRef::Stage(0));
        assert_eq!(g.stages[3].base, BaseRef::Image("scratch".into()));
        let sources: Vec<_> = g.stages[3].deps.iter().map(|d| d.source.clone()).collect();
        assert_eq!(
            sources,
            [
                SourceRef::Stage(0),
                SourceRef::Stage(1),
                SourceRef::Image("busybox:1.36".into())
            ]
        );
        assert_eq!(g.global_args.get("GO"), Some("1.22"));
    }

    #[test]
    fn target_needs_only_what_it_uses() {
        let g = graph(MULTI).unwrap();
        assert_eq!(
            g.plan(None).unwrap(),
            BuildPlan {
                target: 3,
                stages: vec![0, 1, 3]
            }
        );
        assert_eq!(g.plan(Some("TEST")).unwrap().stages, [0, 2]);
        assert_eq!(g.plan(Some("tools")).unwrap().stages, [1]);
        assert_eq!(
            g.plan(Some("nope")),
            Err(StageGraphError::TargetNotFound("nope".into()))
        );
    }

    #[test]
    fn build_args_override_meta_args() {
        let df = parse_dockerfile(MULTI).unwrap();
        let mut opts = GraphOptions::default();
        opts.build_args.insert("GO".into(), "1.21".into());
        let g = StageGraph::new(&df, &opts).unwrap();
        assert_eq!(g.stages[0].base, BaseRef::Image("golang:1.21".into()));
    }

    #[test]
    fn from_base_must_be_earlier_and_lowercase() {
        let g = graph("FROM a AS x\nFROM x\nFROM X\nFROM y\nFROM alpine AS y\n").unwrap();
        assert_eq!(g.stages[1].base, BaseRef::Stage(0));
        assert_eq!(g.stages[2].base, BaseRef::Image("X".into()));
        assert_eq!(g.stages[3].base, BaseRef::Image("y".into()));
    }

    #[test]
    fn mounts_link_stages_by_name_only() {
        let g = graph("FROM a AS deps\nFROM b\nRUN --mount=type=bind,from=deps,target=/d --mount=from=0,target=/z true\n").unwrap();
        let deps = &g.stages[1].deps;
        assert_eq!(deps[0].source, SourceRef::Stage(0));
        assert_eq!(deps[1].source, SourceRef::Image("0".into()));
        assert_eq!(g.plan(None).unwrap().stages, [0, 1]);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            graph("FROM a AS s0\nCOPY --from=s0 f /\n"),
            Err(StageGraphError::Circular { line: 2, .. })
        ));
        assert!(matches!(
            graph("FROM a AS s0\nCOPY --from=s2 f /\nFROM a AS s1\nCOPY --from=s0 f /\nFROM a AS s2\nCOPY --from=s1 f /\n"),
            Err(StageGraphError::Circular { ref stage, .. }) if stage == "s0"
        ));
        assert!(matches!(
            graph("FROM a\nCOPY --from=5 f /\n"),
            Err(StageGraphError::InvalidStageIndex { index: 5, .. })
        ));
        assert!(matches!(
            graph("FROM a\nCOPY --from=$X f /\n"),
            Err(StageGraphError::VariableInFrom { line: 2 })
        ));
        assert!(matches!(
            graph("ARG X\nFROM $X\n"),
            Err(StageGraphError::BlankBaseName { line: 2, .. })
        ));
        assert_eq!(graph("ARG X\n"), Err(StageGraphError::NoStages));

        let g = graph("FROM a AS first\nCOPY --from=later f /\nFROM b AS later\nFROM c\n").unwrap();
        assert!(matches!(
            g.plan(Some("first")),
            Err(StageGraphError::CopyFromLaterStage { line: 2, .. })
        ));
        // Not built, so not an error.
        assert_eq!(g.plan(None).unwrap().stages, [2]);
    }
}
