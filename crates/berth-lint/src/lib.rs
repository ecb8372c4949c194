//! Best-practice rules for Dockerfiles, as a reviewer would apply them.
//!
//! ```text
//! &str ──berth_dockerfile::parse_dockerfile──▶ Dockerfile ──model──▶ Ctx (stages, scopes, RUN scripts)
//!                                                                     │
//!                      catalog::RULES (id, severity, why, fix, check) ┤
//!                                                                     ▼
//!        Config (re-level, disable) + ignore comments ──▶ Report { findings with spans }
//!                                                                     │
//!                                         render::{human, json, sarif} ┘ (pure functions → String)
//! ```
//!
//! The rules are data ([`catalog::RULES`]): a stable id, a severity, a title, a
//! two-sentence why, a fix, the hadolint rules and BuildKit checks that cover
//! the same ground, and a check function. `berth lint --list` prints them.
//!
//! The library never prints and never pulls images: it sees only the Dockerfile
//! text and, when given, facts about the build context ([`ContextFacts`]).
//! Rules that would need a base image's configuration (its `USER`, `ENV` or
//! platform) say so in their messages, or are listed in
//! [`catalog::NOT_COVERED`] with the reason.
//!
//! Suppression, in the Dockerfile:
//!
//! ```dockerfile
//! # berth-lint ignore-file=large-base-image
//! # berth-lint ignore=consecutive-runs,apt-no-install-recommends
//! RUN apt-get update
//! ```
//!
//! `ignore=` applies to the instruction right below the comment (comment lines
//! may stack); `ignore-file=` anywhere in the file applies to the whole file.
//! hadolint's `# hadolint ignore=DL3008` and BuildKit's `# check=skip=Name`
//! directive are honoured for the berth rules that name those ids.

pub mod catalog;
mod checks;
pub mod config;
mod context;
mod model;
pub mod render;
mod rule;
mod shell;
mod suppress;

use serde::Serialize;

pub use config::{Config, ConfigError, Level};
pub use context::{ContextError, ContextFacts};
pub use rule::{Rule, Severity, UnknownSeverity};

/// Where a finding is: 1-based lines and columns (columns count characters).
/// `end_column` is exclusive and refers to `end_line`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

/// One finding: a rule, how much it matters here, and where.
#[derive(Debug, Clone)]
pub struct Finding {
    /// The rule that fired.
    pub rule: &'static Rule,
    /// The rule's severity after configuration.
    pub severity: Severity,
    /// What is wrong at this place, in terms of this Dockerfile.
    pub message: String,
    pub location: Location,
}

impl Finding {
    pub fn rule_id(&self) -> &'static str {
        self.rule.id
    }
}

/// The result of linting one Dockerfile.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Findings in source order (then by rule order).
    pub findings: Vec<Finding>,
}

impl Report {
    /// How many findings have `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// The most severe finding's severity, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}

/// What besides the Dockerfile text a lint run uses.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Disabled and re-levelled rules.
    pub config: Config,
    /// The build context, for the rules about what a `COPY` would take.
    pub context: Option<ContextFacts>,
}

/// Why a Dockerfile cannot be linted at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LintError {
    /// The text is not a valid Dockerfile (BuildKit would refuse it too).
    #[error(transparent)]
    Dockerfile(#[from] berth_dockerfile::InstructionError),
    /// There is nothing to build.
    #[error("the Dockerfile has no FROM instruction: there is nothing to build")]
    NoStages,
}

/// Lints a Dockerfile's text.
///
/// ```
/// let report = berth_lint::lint("FROM alpine\nCMD sleep 1\n", &Default::default()).unwrap();
/// let ids: Vec<_> = report.findings.iter().map(|f| f.rule_id()).collect();
/// assert_eq!(ids, ["root-user", "unpinned-base-image", "shell-form-cmd"]);
/// ```
pub fn lint(source: &str, options: &Options) -> Result<Report, LintError> {
    let df = berth_dockerfile::parse_dockerfile(source)?;
    if df.stages.is_empty() {
        return Err(LintError::NoStages);
    }
    let ctx = model::Ctx::new(source, &df, options.context.as_ref());
    let suppressions = suppress::Suppressions::read(&ctx);
    let mut findings = Vec::new();
    for (order, rule) in catalog::RULES.iter().enumerate() {
        let Some(severity) = options
            .config
            .severity(rule, suppressions.enabled_experimental(rule))
        else {
            continue;
        };
        if rule.needs_context && ctx.context.is_none() {
            continue;
        }
        if suppressions.skips_rule(rule) {
            continue;
        }
        for hit in (rule.check)(&ctx) {
            if suppressions.suppressed(rule, &hit.location) {
                continue;
            }
            findings.push((
                order,
                Finding {
                    rule,
                    severity,
                    message: hit.message,
                    location: hit.location,
                },
            ));
        }
    }
    findings.sort_by(|(ao, a), (bo, b)| {
        (a.location.line, a.location.column, ao).cmp(&(b.location.line, b.location.column, bo))
    });
    Ok(Report {
        findings: findings.into_iter().map(|(_, f)| f).collect(),
    })
}
