//! The build: stages scheduled on threads, instructions dispatched on each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use berth_context::{BuildContext, Entry, FileKind, Filter, Matcher};
use berth_dockerfile::instructions::{
    word_expander, AddInstruction, CmdForm, CommandLine, CopyInstruction, Dockerfile, Instruction,
};
use berth_dockerfile::shell::{EnvGetter, Envs, Lex};
use berth_dockerfile::stages::{BaseRef, BuildPlan, GraphOptions, SourceRef, StageGraph};
use berth_oci::{Digest, ImageConfig, Reference};
use berth_store::{CacheRecord, NewImage, Store};

use crate::copy::{self, CopyOptions, Writer};
use crate::error::{Error, IoContext, Result};
use crate::key::KeyBuilder;
use crate::progress::{Event, Reporter, VertexId};
use crate::report::{self, ImageReport};
use crate::rootpath;
use crate::snapshot::Snapshot;
use crate::state::{self, StageState, PROXY_ARGS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkMode {
    /// The host's network (Docker's build default reaches the network too).
    Host,
    /// A private network namespace with loopback only.
    None,
}

/// A `--secret`: a file on the host, or a value (from `env=`).
#[derive(Debug, Clone)]
pub enum Secret {
    File(PathBuf),
    Value(String),
}

/// Everything a build is told.
pub struct BuildOptions {
    pub context_dir: PathBuf,
    /// Name of the Dockerfile in messages.
    pub dockerfile_name: String,
    pub dockerfile: String,
    /// The `.dockerignore` in force, if any, and its patterns.
    pub ignore_file: Option<PathBuf>,
    pub ignore_patterns: Vec<String>,
    pub build_args: BTreeMap<String, String>,
    pub target: Option<String>,
    pub no_cache: bool,
    pub labels: BTreeMap<String, String>,
    pub network: NetworkMode,
    pub secrets: BTreeMap<String, Secret>,
    /// `SOURCE_DATE_EPOCH`: every time the build records is this one, for
    /// bit-for-bit reproducible images.
    pub source_date_epoch: Option<i64>,
    /// The berth binary, which runs build steps (`berth __step`).
    pub exe: PathBuf,
    pub names: Vec<Reference>,
    /// Refuse the image when the checks find an error.
    pub strict: bool,
    /// The image size the report warns above.
    pub size_budget: u64,
    /// Set (by a signal handler) to stop the build: running steps are
    /// stopped, their mounts and staging removed, and nothing is committed.
    pub interrupt: std::sync::Arc<AtomicBool>,
}

pub struct Outcome {
    pub id: Digest,
    pub moved: Vec<(Reference, Digest)>,
    pub report: ImageReport,
    pub lint: Option<berth_lint::Report>,
}

/// The Dockerfile, its stages, and the ones the target needs.
fn parse_and_plan(opts: &BuildOptions) -> Result<(Dockerfile, StageGraph, BuildPlan)> {
    let file = &opts.dockerfile_name;
    let df = berth_dockerfile::parse_dockerfile(&opts.dockerfile).map_err(|source| {
        Error::Dockerfile {
            file: file.clone(),
            source,
        }
    })?;
    let graph = StageGraph::new(
        &df,
        &GraphOptions {
            build_args: opts.build_args.clone(),
            default_args: Envs::from_slice(&platform_args()),
        },
    )
    .map_err(|source| Error::Stages {
        file: file.clone(),
        source,
    })?;
    let plan = graph
        .plan(opts.target.as_deref())
        .map_err(|source| Error::Stages {
            file: file.clone(),
            source,
        })?;
    Ok((df, graph, plan))
}

/// The images the stages to build start from or copy from (not `scratch`,
/// not stages): what must be local before [`build`].
pub fn base_images(opts: &BuildOptions) -> Result<Vec<String>> {
    let (_, graph, plan) = parse_and_plan(opts)?;
    let mut out: Vec<String> = Vec::new();
    for &i in &plan.stages {
        let node = &graph.stages[i];
        let mut names = Vec::new();
        if let BaseRef::Image(n) = &node.base {
            names.push(n.clone());
        }
        for d in &node.deps {
            if let SourceRef::Image(n) = &d.source {
                names.push(n.clone());
            }
        }
        for n in names {
            if n != "scratch" && !out.contains(&n) {
                out.push(n);
            }
        }
    }
    Ok(out)
}

/// Builds the image `opts` describes in the store at `root`.
pub fn build(root: &Path, opts: &BuildOptions, reporter: &dyn Reporter) -> Result<Outcome> {
    let file = opts.dockerfile_name.clone();
    let (df, graph, plan) = parse_and_plan(opts)?;

    let filter =
        Filter::excluding(opts.ignore_patterns.iter().map(String::as_str)).map_err(|e| {
            Error::Context {
                path: opts.context_dir.join(".dockerignore"),
                message: e.to_string(),
            }
        })?;
    let ctx = BuildContext::new(&opts.context_dir, filter).map_err(|e| Error::Context {
        path: opts.context_dir.clone(),
        message: e.to_string(),
    })?;
    let started = Instant::now();
    let v = reporter_vertex(reporter, 1, "[internal] load build context".into());
    let entries = ctx
        .walk()
        .collect::<std::result::Result<Vec<Entry>, _>>()
        .map_err(|e| Error::Context {
            path: opts.context_dir.clone(),
            message: e.to_string(),
        })?;
    reporter.event(Event::Done {
        id: v,
        elapsed: started.elapsed(),
    });

    let lint = lint_report(opts, &ctx, &entries);
    if opts.strict {
        if let Some(l) = &lint {
            let errors: Vec<String> = l
                .findings
                .iter()
                .filter(|f| f.severity == berth_lint::Severity::Error)
                .map(|f| format!("{}:{} {}", file, f.location.line, f.message))
                .collect();
            if !errors.is_empty() {
                return Err(Error::Policy(errors.join("; ")));
            }
        }
    }

    let shared = Shared {
        opts,
        df: &df,
        graph: &graph,
        lex: Lex::new(df.escape_token),
        ctx,
        entries,
        reporter,
        next_vertex: AtomicUsize::new(2),
        results: Mutex::new(vec![None; df.stages.len()]),
        done: Condvar::new(),
        canceled: AtomicBool::new(false),
        used_args: Mutex::new(BTreeSet::new()),
        multi: df.stages.len() > 1,
    };

    // Every needed stage on its own thread; each waits for what it needs.
    let target_state = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for &i in &plan.stages {
            let shared = &shared;
            handles.push((
                i,
                s.spawn(move || {
                    let r = Store::open(root)
                        .map_err(Error::from)
                        .and_then(|mut store| shared.build_stage(&mut store, i));
                    shared.finish_stage(i, &r);
                    r
                }),
            ));
        }
        let mut target = None;
        let mut first_err = None;
        for (i, h) in handles {
            match h.join().expect("a build thread panicked") {
                Ok(st) if i == plan.target => target = Some(st),
                Ok(_) => {}
                Err(Error::Canceled) => {}
                Err(e) => {
                    if matches!(e, Error::Interrupted) && first_err.is_some() {
                        continue;
                    }
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        match (first_err, target) {
            (Some(e), _) => Err(e),
            (None, Some(t)) => Ok(t),
            (None, None) => Err(Error::Canceled),
        }
    })?;

    let unused: Vec<String> = {
        let used = shared.used_args.lock().expect("lock");
        opts.build_args
            .keys()
            .filter(|k| !used.contains(*k) && !PROXY_ARGS.contains(&k.as_str()))
            .filter(|k| !graph.global_args.keys().iter().any(|g| g == *k))
            .cloned()
            .collect()
    };
    if !unused.is_empty() {
        reporter.event(Event::Warning {
            message: format!(
                "One or more build-args [{}] were not consumed",
                unused.join(" ")
            ),
        });
    }

    let mut config = target_state.config;
    if !opts.labels.is_empty() {
        let cc = config.config.get_or_insert_with(Default::default);
        let labels = cc.labels.get_or_insert_with(Default::default);
        labels.extend(opts.labels.clone());
    }
    config.created = target_state
        .last_created
        .clone()
        .or_else(|| Some(shared.now()));
    let mut store = Store::open(root)?;
    let report = report::inspect(
        &store,
        &config,
        &target_state.chain,
        target_state.base_layers,
        opts.size_budget,
    )?;
    if opts.strict && !report.errors().is_empty() {
        return Err(Error::Policy(report.errors().join("; ")));
    }

    let v = shared.vertex("exporting to image".into());
    let started = Instant::now();
    let bytes = config.to_bytes();
    let layers = config.rootfs.diff_ids.iter().map(|_| None).collect();
    let outcome = store.commit_image(NewImage {
        config: bytes,
        layers,
        names: opts.names.clone(),
    })?;
    reporter.event(Event::Done {
        id: v,
        elapsed: started.elapsed(),
    });
    Ok(Outcome {
        id: outcome.id,
        moved: outcome.moved,
        report,
        lint,
    })
}

fn reporter_vertex(reporter: &dyn Reporter, id: VertexId, name: String) -> VertexId {
    reporter.event(Event::Started { id, name });
    id
}

/// The automatic platform ARGs of BuildKit, for this host.
fn platform_args() -> Vec<String> {
    let arch = berth_oci::host_architecture();
    let platform = format!("linux/{arch}");
    vec![
        format!("BUILDPLATFORM={platform}"),
        "BUILDOS=linux".into(),
        format!("BUILDARCH={arch}"),
        "BUILDVARIANT=".into(),
        format!("TARGETPLATFORM={platform}"),
        "TARGETOS=linux".into(),
        format!("TARGETARCH={arch}"),
        "TARGETVARIANT=".into(),
    ]
}

/// The lint findings, with the context facts taken from the build's own walk.
fn lint_report(
    opts: &BuildOptions,
    ctx: &BuildContext,
    entries: &[Entry],
) -> Option<berth_lint::Report> {
    let context = berth_lint::ContextFacts::from_walk(
        ctx,
        entries,
        opts.ignore_file.clone(),
        &opts.ignore_patterns,
    )
    .ok();
    berth_lint::lint(
        &opts.dockerfile,
        &berth_lint::Options {
            config: Default::default(),
            context,
        },
    )
    .ok()
}

pub(crate) struct Shared<'a> {
    pub opts: &'a BuildOptions,
    df: &'a Dockerfile,
    graph: &'a StageGraph,
    pub lex: Lex,
    pub ctx: BuildContext,
    pub entries: Vec<Entry>,
    pub reporter: &'a dyn Reporter,
    next_vertex: AtomicUsize,
    results: Mutex<Vec<Option<std::result::Result<StageState, ()>>>>,
    done: Condvar,
    canceled: AtomicBool,
    used_args: Mutex<BTreeSet<String>>,
    multi: bool,
}

/// Where a step is: for `[stage 2/5]` labels and error lines.
pub(crate) struct StepPos<'s> {
    pub index: usize,
    pub stage: &'s str,
    pub n: usize,
    pub total: usize,
    pub line: usize,
}

impl Shared<'_> {
    pub fn vertex(&self, name: String) -> VertexId {
        let id = self.next_vertex.fetch_add(1, Ordering::Relaxed);
        self.reporter.event(Event::Started { id, name });
        id
    }

    pub fn file(&self) -> &str {
        &self.opts.dockerfile_name
    }

    /// The time recorded for a new step.
    pub fn now(&self) -> String {
        match self.opts.source_date_epoch {
            Some(e) => chrono::DateTime::from_timestamp(e, 0)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        }
    }

    fn finish_stage(&self, i: usize, r: &Result<StageState>) {
        let mut results = self.results.lock().expect("lock");
        results[i] = Some(match r {
            Ok(s) => Ok(s.clone()),
            Err(_) => Err(()),
        });
        if r.is_err() {
            self.canceled.store(true, Ordering::Relaxed);
        }
        self.done.notify_all();
    }

    /// The final state of stage `i`, once it is built.
    pub fn wait_for(&self, i: usize) -> Result<StageState> {
        let mut results = self.results.lock().expect("lock");
        loop {
            match &results[i] {
                Some(Ok(s)) => return Ok(s.clone()),
                Some(Err(())) => return Err(Error::Canceled),
                None if self.canceled.load(Ordering::Relaxed) => return Err(Error::Canceled),
                None if self.interrupted() => return Err(Error::Interrupted),
                None => {
                    results = self
                        .done
                        .wait_timeout(results, std::time::Duration::from_millis(100))
                        .expect("lock")
                        .0
                }
            }
        }
    }

    fn check_canceled(&self) -> Result<()> {
        if self.interrupted() {
            Err(Error::Interrupted)
        } else if self.canceled.load(Ordering::Relaxed) {
            Err(Error::Canceled)
        } else {
            Ok(())
        }
    }

    /// The user asked the build to stop (Ctrl-C, SIGTERM).
    pub fn interrupted(&self) -> bool {
        self.opts.interrupt.load(Ordering::Relaxed)
    }

    fn build_stage(&self, store: &mut Store, idx: usize) -> Result<StageState> {
        let node = &self.graph.stages[idx];
        let stage = &self.df.stages[idx];
        let name = node.display_name();
        let label = if self.multi {
            format!("{name} ")
        } else {
            String::new()
        };
        let total = 1 + stage
            .commands
            .iter()
            .filter(|c| makes_vertex(&c.instruction))
            .count();
        let line = stage.from.span.start_line;
        let v = self.vertex(format!(
            "[{label}1/{total}] FROM {}",
            match &node.base {
                BaseRef::Stage(i) => self.graph.stages[*i].display_name(),
                BaseRef::Image(n) => n.clone(),
            }
        ));
        let started = Instant::now();
        let mut st = match &node.base {
            BaseRef::Stage(i) => {
                let mut s = self.wait_for(*i)?;
                s.args = Envs::new();
                s.cmd_set = false;
                s
            }
            BaseRef::Image(n) if n == "scratch" => StageState::scratch(),
            BaseRef::Image(n) => self.image_state(store, n)?,
        };
        self.reporter.event(Event::Done {
            id: v,
            elapsed: started.elapsed(),
        });
        let mut n = 1;
        // ONBUILD triggers of the base run first, then leave the config.
        let triggers = st.cc().on_build.take().unwrap_or_default();
        for t in &triggers {
            let inst = berth_dockerfile::instructions::Onbuild {
                expression: t.clone(),
            }
            .trigger()
            .map_err(|e| Error::Instruction {
                file: self.file().into(),
                line,
                message: format!("ONBUILD trigger {t:?} of the base image: {e}"),
            })?;
            if makes_vertex(&inst) {
                n += 1;
            }
            let pos = StepPos {
                index: idx,
                stage: &label,
                n,
                total: total + triggers.len(),
                line,
            };
            self.dispatch(store, &mut st, inst, t, &pos)?;
        }
        for cmd in &stage.commands {
            self.check_canceled()?;
            if makes_vertex(&cmd.instruction) {
                n += 1;
            }
            let pos = StepPos {
                index: idx,
                stage: &label,
                n,
                total,
                line: cmd.span.start_line,
            };
            self.dispatch(store, &mut st, cmd.instruction.clone(), &cmd.code, &pos)?;
        }
        Ok(st)
    }

    fn image_state(&self, store: &Store, name: &str) -> Result<StageState> {
        let img = store
            .resolve_image(name)
            .map_err(|_| Error::NoBaseImage(name.to_string()))?;
        let bytes = store.image_config(&img.id)?;
        let config = ImageConfig::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("the config of {name} is not valid: {e}")))?;
        let chain = img.layers.iter().map(|l| l.chain_id.clone()).collect();
        Ok(StageState::new(config, chain))
    }

    fn instruction_error(&self, pos: &StepPos<'_>, message: impl std::fmt::Display) -> Error {
        Error::Instruction {
            file: self.file().into(),
            line: pos.line,
            message: message.to_string(),
        }
    }

    fn dispatch(
        &self,
        store: &mut Store,
        st: &mut StageState,
        mut inst: Instruction,
        code: &str,
        pos: &StepPos<'_>,
    ) -> Result<()> {
        let env = st.expansion_env();
        inst.expand(&mut word_expander(&self.lex, &env))
            .map_err(|e| self.instruction_error(pos, e))?;
        let created_by = code.to_string();
        match inst {
            Instruction::Env(kvs) => {
                let mut e = st.env();
                state::set_env(&mut e, &kvs);
                st.cc().env = Some(e);
                st.history_empty(created_by);
            }
            Instruction::Label(kvs) => {
                let labels = st.cc().labels.get_or_insert_with(Default::default);
                state::set_labels(labels, &kvs);
                st.history_empty(created_by);
            }
            Instruction::Arg(defs) => {
                for d in defs {
                    let given = self.opts.build_args.get(&d.key).cloned();
                    if given.is_some() {
                        self.used_args.lock().expect("lock").insert(d.key.clone());
                    }
                    // The global scope holds the meta ARGs and the automatic
                    // platform ARGs alike.
                    let value = given.or(d.value.clone()).or_else(|| {
                        EnvGetter::get(&self.graph.global_args, &d.key).map(str::to_string)
                    });
                    if let Some(v) = value {
                        st.args.set(&d.key, &v);
                    }
                }
                st.history_empty(created_by);
            }
            Instruction::Expose(ports) => {
                let ports =
                    state::exposed_ports(&ports).map_err(|e| self.instruction_error(pos, e))?;
                let set = st.cc().exposed_ports.get_or_insert_with(Default::default);
                for p in ports {
                    set.insert(p, serde_json::json!({}));
                }
                st.history_empty(created_by);
            }
            Instruction::Volume(vols) => {
                let set = st.cc().volumes.get_or_insert_with(Default::default);
                for v in vols {
                    if v.trim().is_empty() {
                        return Err(self.instruction_error(
                            pos,
                            "VOLUME specified can not be an empty string",
                        ));
                    }
                    set.insert(v, serde_json::json!({}));
                }
                st.history_empty(created_by);
            }
            Instruction::User(u) => {
                st.cc().user = Some(u);
                st.history_empty(created_by);
            }
            Instruction::StopSignal(s) => {
                st.cc().stop_signal = Some(s);
                st.history_empty(created_by);
            }
            Instruction::Shell(s) => {
                st.cc().shell = Some(s);
                st.history_empty(created_by);
            }
            Instruction::Maintainer(m) => {
                st.config.author = Some(m);
                st.history_empty(created_by);
            }
            Instruction::Onbuild(o) => {
                st.cc()
                    .on_build
                    .get_or_insert_with(Default::default)
                    .push(o.expression.trim().to_string());
                st.history_empty(created_by);
            }
            Instruction::Healthcheck(h) => {
                st.cc().healthcheck = Some(state::healthcheck_value(&h));
                st.history_empty(created_by);
            }
            Instruction::Cmd(c) => {
                let argv = self.argv(st, &c);
                st.cc().cmd = Some(argv);
                st.cmd_set = true;
                st.history_empty(created_by);
            }
            Instruction::Entrypoint(c) => {
                let argv = self.argv(st, &c);
                let cmd_set = st.cmd_set;
                let cc = st.cc();
                cc.entrypoint = Some(argv);
                // Docker: an ENTRYPOINT resets a CMD inherited from the base.
                if !cmd_set {
                    cc.cmd = None;
                }
                st.history_empty(created_by);
            }
            Instruction::Workdir(w) => {
                let path = rootpath::absolute(&st.workdir(), &w);
                st.cc().working_dir = Some(path.display().to_string());
                self.workdir_step(store, st, &path, created_by, pos)?;
            }
            Instruction::Run(r) => crate::run::run_step(self, store, st, &r, created_by, pos)?,
            Instruction::Copy(c) => {
                self.copy_step(store, st, CopyKind::Copy(&c), created_by, pos)?
            }
            Instruction::Add(a) => self.copy_step(store, st, CopyKind::Add(&a), created_by, pos)?,
            Instruction::From(_) => {}
        }
        Ok(())
    }

    pub fn argv(&self, st: &StageState, c: &CommandLine) -> Vec<String> {
        match &c.form {
            CmdForm::Exec(v) => v.clone(),
            CmdForm::Shell(s) => {
                let mut v = st.shell();
                v.push(s.clone());
                v
            }
        }
    }

    /// Runs one step as a vertex: started, then failed with the reason
    /// unless it succeeds (success is reported where the step ends).
    pub fn step<T>(
        &self,
        pos: &StepPos<'_>,
        text: &str,
        f: impl FnOnce(VertexId, Instant) -> Result<T>,
    ) -> Result<T> {
        let v = self.vertex(self.step_name(pos, text));
        let started = Instant::now();
        let r = f(v, started);
        if let Err(e) = &r {
            if !matches!(e, Error::Canceled) {
                self.reporter.event(Event::Failed {
                    id: v,
                    message: e.to_string(),
                    elapsed: started.elapsed(),
                });
            }
        }
        r
    }

    fn step_name(&self, pos: &StepPos<'_>, text: &str) -> String {
        let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        format!("[{}{}/{}] {}", pos.stage, pos.n, pos.total, one_line)
    }

    /// Runs a layer-making step, or takes its result from the cache.
    #[allow(clippy::too_many_arguments)]
    pub fn layer_step(
        &self,
        store: &mut Store,
        st: &mut StageState,
        key: String,
        created_by: String,
        vertex: VertexId,
        started: Instant,
        work: impl FnOnce(&mut Snapshot, &Path) -> Result<()>,
    ) -> Result<()> {
        if !self.opts.no_cache {
            if let Some(rec) = store.cache_lookup(&key)? {
                self.reporter.event(Event::Cached { id: vertex });
                st.push_step(rec.chain_id, rec.diff_id, rec.created, created_by);
                return Ok(());
            }
        }
        let result = (|| -> Result<()> {
            let staging = store.stage()?;
            let mut snap = Snapshot::mount(store, &st.chain, staging.path())?;
            work(&mut snap, staging.path())?;
            snap.unmount()?;
            let clamp = self.opts.source_date_epoch.map(|e| e.max(0) as u64);
            let layer = if snap.upper_is_empty() {
                None
            } else {
                Some(berth_image::stage_upper(
                    snap.upper(),
                    staging.path(),
                    clamp,
                )?)
            };
            let created = self.now();
            let record = CacheRecord {
                key,
                chain_id: None,
                diff_id: layer.as_ref().map(|l| l.diff_id.clone()),
                created: created.clone(),
                last_used_unix: chrono::Utc::now().timestamp(),
                description: created_by.clone(),
                size: layer.as_ref().map_or(0, |l| l.stats.size),
            };
            let chain = store.commit_build_step(st.top(), layer.as_ref(), &record)?;
            st.push_step(chain, record.diff_id, created, created_by);
            Ok(())
        })();
        // Failures are reported by the step, which also sees those before
        // this point.
        if result.is_ok() {
            self.reporter.event(Event::Done {
                id: vertex,
                elapsed: started.elapsed(),
            });
        }
        result
    }

    fn workdir_step(
        &self,
        store: &mut Store,
        st: &mut StageState,
        path: &Path,
        created_by: String,
        pos: &StepPos<'_>,
    ) -> Result<()> {
        let text = created_by.clone();
        self.step(pos, &text, |v, started| {
            self.workdir_inner(store, st, path, created_by, v, started)
        })
    }

    fn workdir_inner(
        &self,
        store: &mut Store,
        st: &mut StageState,
        path: &Path,
        created_by: String,
        v: VertexId,
        started: Instant,
    ) -> Result<()> {
        let user = st.user();
        let mut key = KeyBuilder::new("workdir", st.top());
        key.field(&path.display().to_string()).field(&user);
        self.layer_step(
            store,
            st,
            key.finish(),
            created_by,
            v,
            started,
            |snap, _| {
                let owner = if user.is_empty() {
                    None
                } else {
                    Some(copy::resolve_chown_user(snap.merged(), &user)?)
                };
                let opts = CopyOptions {
                    owner,
                    chmod: None,
                    excludes: None,
                };
                let mut w = Writer::new(snap.merged(), &opts);
                w.ensure_dir(path)?;
                w.finish()
            },
        )
    }

    fn copy_step(
        &self,
        store: &mut Store,
        st: &mut StageState,
        kind: CopyKind<'_>,
        created_by: String,
        pos: &StepPos<'_>,
    ) -> Result<()> {
        // A step that copies from another stage shows once that stage is done.
        if let CopyKind::Copy(CopyInstruction { from: Some(f), .. }) = &kind {
            if let SourceRef::Stage(i) = self.stage_source(f, pos) {
                self.wait_for(i)?;
            }
        }
        let text = created_by.clone();
        self.step(pos, &text, |v, started| {
            self.copy_step_inner(store, st, kind, created_by, v, started, pos)
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn copy_step_inner(
        &self,
        store: &mut Store,
        st: &mut StageState,
        kind: CopyKind<'_>,
        created_by: String,
        v: VertexId,
        started: Instant,
        pos: &StepPos<'_>,
    ) -> Result<()> {
        let (sources, from, chown, chmod, excludes, parents) = match kind {
            CopyKind::Copy(c) => (
                &c.sources,
                c.from.clone(),
                &c.chown,
                &c.chmod,
                &c.excludes,
                c.parents,
            ),
            CopyKind::Add(a) => (&a.sources, None, &a.chown, &a.chmod, &a.excludes, false),
        };
        let is_add = matches!(kind, CopyKind::Add(_));
        let checksum = match kind {
            CopyKind::Add(a) => a.checksum.clone(),
            _ => None,
        };
        let chmod = chmod.as_deref().map(copy::parse_chmod).transpose()?;
        let exclude_matcher = if excludes.is_empty() {
            None
        } else {
            Some(
                Matcher::new(excludes.iter().map(String::as_str))
                    .map_err(|e| self.instruction_error(pos, e))?,
            )
        };
        let workdir = st.workdir();
        let dest_raw = &sources.dest;
        let dest = rootpath::absolute(&workdir, dest_raw);
        let dest_slash = dest_raw.ends_with('/') || dest_raw == "." || dest_raw.ends_with("/.");

        let mut key = KeyBuilder::new(if is_add { "add" } else { "copy" }, st.top());
        key.field(&dest.display().to_string())
            .field(if dest_slash { "dir" } else { "path" })
            .field(chown.as_deref().unwrap_or(""))
            .field(&chmod.map(|m| format!("{m:o}")).unwrap_or_default())
            .list(excludes)
            .field(if parents { "parents" } else { "" });
        // Heredoc sources, expanded once: their text is both key and content.
        let env = st.expansion_env();
        let contents: Vec<(String, String)> = sources
            .source_contents
            .iter()
            .map(|c| {
                let data = if c.expand {
                    self.lex
                        .process_word(&c.data, &env)
                        .unwrap_or_else(|_| c.data.clone())
                } else {
                    c.data.clone()
                };
                (c.path.clone(), data)
            })
            .collect();
        for (path, data) in &contents {
            key.field(path).field(data);
        }

        // Sources: context entries, another stage's or image's files, URLs.
        let mut plan = SourcePlan::default();
        match &from {
            Some(f) => {
                let chain = self.chain_of(store, self.stage_source(f, pos))?;
                key.field("from")
                    .field(chain.last().map_or("scratch", |c| c.as_str()))
                    .list(&sources.source_paths);
                plan.from_chain = Some(chain);
            }
            None => {
                for src in &sources.source_paths {
                    if is_add && (src.starts_with("http://") || src.starts_with("https://")) {
                        let dl = self.download(store, src, checksum.as_deref(), pos)?;
                        key.field("url").field(src).field(dl.digest.as_str());
                        plan.urls.push(dl);
                        continue;
                    }
                    if is_add && (src.starts_with("git@") || src.ends_with(".git")) {
                        return Err(self.instruction_error(pos, format!("ADD {src}: git sources are not supported; clone in a RUN step or COPY a checkout")));
                    }
                    let matched = self.match_context(src, pos)?;
                    for m in matched {
                        plan.context.push(m);
                    }
                }
                let selected = berth_context::select(&self.entries, &plan.context);
                let digest = self
                    .ctx
                    .context_digest(selected.iter().copied())
                    .map_err(|e| Error::Context {
                        path: self.opts.context_dir.clone(),
                        message: e.to_string(),
                    })?;
                let paths: Vec<String> = plan
                    .context
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                key.list(&paths).field(digest.as_str());
            }
        }
        let n_sources = plan.context.len()
            + plan.urls.len()
            + contents.len()
            + if plan.from_chain.is_some() {
                sources.source_paths.len()
            } else {
                0
            };

        let source_paths = sources.source_paths.clone();
        let from_lowers: Option<Vec<PathBuf>> = plan
            .from_chain
            .as_ref()
            .map(|c| c.iter().map(|d| store.layout().layer_diff(d)).collect());
        self.layer_step(store, st, key.finish(), created_by, v, started, |snap, staging| {
            let owner = chown
                .as_deref()
                .map(|c| copy::resolve_chown(snap.merged(), c))
                .transpose()?;
            let opts = CopyOptions {
                owner,
                chmod,
                excludes: exclude_matcher,
            };
            let mut w = Writer::new(snap.merged(), &opts);
            let dest_is_dir = dest_slash || w.is_dir(&dest);
            if n_sources > 1 && !dest_is_dir {
                return Err(Error::Invalid(format!(
                    "{}:{}: when using COPY with more than one source file, the destination must be a directory and end with a /",
                    self.file(),
                    pos.line
                )));
            }
            if dest_is_dir {
                w.ensure_dir(&dest)?;
            }
            let file_dest = |name: &std::ffi::OsStr| {
                if dest_is_dir {
                    dest.join(name)
                } else {
                    dest.clone()
                }
            };
            // Context sources.
            for src in &plan.context {
                let entry = self.entries.iter().find(|e| &e.path == src);
                let is_dir = src.as_os_str().is_empty() || entry.is_some_and(|e| e.kind == FileKind::Dir);
                let selected = berth_context::select(&self.entries, std::slice::from_ref(src));
                let target = if parents {
                    dest.join(src)
                } else if is_dir {
                    dest.clone()
                } else {
                    file_dest(src.file_name().unwrap_or_default())
                };
                if is_add && !is_dir && entry.is_some_and(|e| e.kind == FileKind::File) {
                    let host = self.ctx.root().join(src);
                    if let Some(k) = copy::archive_kind(&host) {
                        let mut r = copy::open_archive(&host, &k)?;
                        w.extract(&mut r, &dest)?;
                        continue;
                    }
                }
                if is_dir {
                    let children: Vec<&Entry> = selected
                        .into_iter()
                        .filter(|e| e.path != *src || src.as_os_str().is_empty())
                        .collect();
                    w.ensure_dir(&target)?;
                    w.copy_tree(&self.ctx, &children, src, &target)?;
                } else {
                    w.copy_tree(&self.ctx, &selected, src, &target)?;
                }
            }
            // URL sources.
            for dl in &plan.urls {
                let mut f = std::fs::File::open(&dl.path).io("cannot open", &dl.path)?;
                let target = file_dest(std::ffi::OsStr::new(&dl.name));
                w.write_stream(&mut f, &target, 0o600, dl.mtime)?;
            }
            // Heredoc sources.
            for (path, data) in &contents {
                let target = file_dest(std::ffi::OsStr::new(path));
                w.write_stream(&mut data.as_bytes(), &target, 0o644, None)?;
            }
            // Another stage's or image's files.
            if let Some(lowers) = from_lowers {
                let src_snap = Snapshot::mount_lowers(lowers, &staging.join("from"))?;
                for src in &source_paths {
                    self.copy_from_root(&mut w, src_snap.merged(), src, &dest, dest_is_dir, parents)?;
                }
                drop(src_snap);
            }
            w.finish()
        })
    }

    /// The context paths a COPY source names: itself, or what its wildcards
    /// match; relative to the context root, the root itself as the empty path.
    fn match_context(&self, src: &str, pos: &StepPos<'_>) -> Result<Vec<PathBuf>> {
        let rel = rootpath::context_relative(src);
        if rel.as_os_str().is_empty() {
            return Ok(vec![rel]);
        }
        let pattern = rel.to_string_lossy();
        let found: Vec<PathBuf> = if copy::has_wildcards(&pattern) {
            self.entries
                .iter()
                .filter(|e| {
                    e.path.to_str().is_some_and(|p| {
                        berth_context::filepath_match(&pattern, p).unwrap_or(false)
                    })
                })
                .map(|e| e.path.clone())
                .collect()
        } else {
            self.entries
                .iter()
                .find(|e| e.path == rel)
                .map(|e| vec![e.path.clone()])
                .unwrap_or_default()
        };
        if found.is_empty() {
            return Err(self.instruction_error(
                pos,
                format!(
                    "source {src:?} not found in the build context (or excluded by .dockerignore)"
                ),
            ));
        }
        Ok(found)
    }

    /// `COPY --from`: `src` (wildcards allowed) of the mounted `root`.
    fn copy_from_root(
        &self,
        w: &mut Writer<'_>,
        root: &Path,
        src: &str,
        dest: &Path,
        dest_is_dir: bool,
        parents: bool,
    ) -> Result<()> {
        let logical = rootpath::absolute("/", src);
        let matches = if copy::has_wildcards(src) {
            glob_in_root(root, &logical)?
        } else {
            vec![logical.clone()]
        };
        if matches.is_empty() {
            return Err(Error::Invalid(format!(
                "COPY --from source {src:?} matches nothing"
            )));
        }
        for m in matches {
            let host = rootpath::resolve(root, &m, true)?;
            let meta = std::fs::symlink_metadata(&host).map_err(|_| {
                Error::Invalid(format!("COPY --from source {}: not found", m.display()))
            })?;
            let rel = m.strip_prefix("/").unwrap_or(&m).to_path_buf();
            if meta.is_dir() {
                let ctx = BuildContext::new(&host, Filter::default())
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                let entries = ctx
                    .walk()
                    .collect::<std::result::Result<Vec<Entry>, _>>()
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                let refs: Vec<&Entry> = entries.iter().collect();
                let target = if parents {
                    dest.join(&rel)
                } else {
                    dest.to_path_buf()
                };
                w.ensure_dir(&target)?;
                w.copy_tree(&ctx, &refs, Path::new(""), &target)?;
            } else {
                let parent = host.parent().unwrap_or(root);
                let name = PathBuf::from(host.file_name().unwrap_or_default());
                let ctx = BuildContext::new(parent, Filter::default())
                    .map_err(|e| Error::Invalid(e.to_string()))?;
                let entry = copy::entry_of(&name, &meta);
                let target = if parents {
                    dest.join(&rel)
                } else if dest_is_dir {
                    dest.join(m.file_name().unwrap_or_default())
                } else {
                    dest.to_path_buf()
                };
                w.copy_tree(&ctx, &[&entry], &name, &target)?;
            }
        }
        Ok(())
    }

    /// What `--from=<f>` of a step in stage `pos.index` names.
    pub fn stage_source(&self, f: &str, pos: &StepPos<'_>) -> SourceRef {
        let dep = self.graph.stages[pos.index]
            .deps
            .iter()
            .find(|d| d.reference == f)
            .map(|d| d.source.clone());
        // ONBUILD triggers are not in the graph: a stage name, else an image.
        dep.unwrap_or_else(|| {
            let lower = berth_dockerfile::go_to_lower(f);
            match self
                .graph
                .stages
                .iter()
                .find(|n| n.name.as_deref() == Some(lower.as_str()))
            {
                Some(n) if n.index < pos.index => SourceRef::Stage(n.index),
                _ => SourceRef::Image(f.to_string()),
            }
        })
    }

    /// The layers of a stage (once built) or an image.
    pub fn chain_of(&self, store: &Store, source: SourceRef) -> Result<Vec<Digest>> {
        match source {
            SourceRef::Stage(i) => Ok(self.wait_for(i)?.chain),
            SourceRef::Image(name) if name == "scratch" => Ok(Vec::new()),
            SourceRef::Image(name) => Ok(self.image_state(store, &name)?.chain),
        }
    }
}

/// The paths of `root` a wildcard path matches, component by component.
fn glob_in_root(root: &Path, logical: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![PathBuf::from("/")];
    for c in logical.components().skip(1) {
        let c = c.as_os_str().to_string_lossy().into_owned();
        let mut next = Vec::new();
        for base in &found {
            if copy::has_wildcards(&c) {
                let host = rootpath::resolve(root, base, true)?;
                let Ok(rd) = std::fs::read_dir(&host) else {
                    continue;
                };
                let mut names: Vec<String> = rd
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| berth_context::filepath_match(&c, n).unwrap_or(false))
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| base.join(n)));
            } else {
                let p = base.join(&c);
                if std::fs::symlink_metadata(rootpath::resolve(root, &p, false)?).is_ok() {
                    next.push(p);
                }
            }
        }
        found = next;
    }
    Ok(found)
}

fn makes_vertex(i: &Instruction) -> bool {
    matches!(
        i,
        Instruction::Run(_) | Instruction::Copy(_) | Instruction::Add(_) | Instruction::Workdir(_)
    )
}

enum CopyKind<'a> {
    Copy(&'a CopyInstruction),
    Add(&'a AddInstruction),
}

#[derive(Default)]
struct SourcePlan {
    context: Vec<PathBuf>,
    urls: Vec<crate::run::Download>,
    from_chain: Option<Vec<Digest>>,
}
