//! What a rule is: data plus a check function (STYLE.md, "Lint rules are data").

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::model::Ctx;
use crate::Location;

/// How much a finding matters. Ordered: `Style < Info < Warning < Error`, so
/// `--fail-on warning` fails on warnings and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Consistency and readability; nothing behaves differently.
    Style,
    /// Worth knowing: a smaller or clearer image is within reach.
    Info,
    /// A practice with real consequences: security, size, rebuild time.
    Warning,
    /// The build fails, or a secret leaks.
    Error,
}

impl Severity {
    /// Every severity, most severe first.
    pub const ALL: [Severity; 4] = [Self::Error, Self::Warning, Self::Info, Self::Style];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
            Self::Info => "info",
            Self::Style => "style",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A severity name that is not one of `error`, `warning`, `info`, `style`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity {0:?}: expected error, warning, info or style")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "error" => Ok(Self::Error),
            "warning" => Ok(Self::Warning),
            "info" => Ok(Self::Info),
            "style" => Ok(Self::Style),
            _ => Err(UnknownSeverity(s.to_string())),
        }
    }
}

/// One place a rule fires, before configuration and suppression apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hit {
    pub location: Location,
    /// What is wrong here, in terms of this Dockerfile.
    pub message: String,
}

/// The check function of a rule: every place in the Dockerfile it applies to.
pub(crate) type Check = fn(&Ctx) -> Vec<Hit>;

/// A lint rule: everything `--list`, the reports and the documentation say
/// about it, and the function that finds it.
pub struct Rule {
    /// Stable kebab-case identifier, used in reports, ignore comments and the
    /// configuration file. Never reused for a different meaning.
    pub id: &'static str,
    /// The default severity; the configuration file can change it.
    pub severity: Severity,
    /// One line: what the rule looks for.
    pub title: &'static str,
    /// Two sentences: the practice the rule teaches and what goes wrong without it.
    pub why: &'static str,
    /// What to change.
    pub fix: &'static str,
    /// hadolint rules that cover the same ground (`DL3002`).
    pub hadolint: &'static [&'static str],
    /// BuildKit checks (`docker build --check`) that cover the same ground.
    pub buildkit: &'static [&'static str],
    /// False for rules that run only when the configuration turns them on.
    pub enabled_by_default: bool,
    /// True for rules about the build context: they run only when one is given.
    pub needs_context: bool,
    pub(crate) check: Check,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rule")
            .field("id", &self.id)
            .field("severity", &self.severity)
            .finish_non_exhaustive()
    }
}
