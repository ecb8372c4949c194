//! The configuration file: turn rules off, on, or to another severity.
//!
//! It is TOML, like Cargo's and uv's configuration, so a project keeps one
//! syntax for its tool settings:
//!
//! ```toml
//! # berth-lint.toml
//! [rules]
//! consecutive-runs = "off"        # never report
//! root-user = "error"             # report at another severity
//! definition-description = "on"   # enable a rule that is off by default
//! ```
//!
//! Values are `off`, `on` (the rule's default severity) or a severity:
//! `error`, `warning`, `info`, `style`. An unknown rule id or value is an error
//! that names it, so a typo does not silently leave a rule on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::catalog;
use crate::rule::{Rule, Severity};

/// What the configuration says about one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Off,
    /// On, at the rule's default severity.
    On,
    At(Severity),
}

/// Rules disabled, enabled or re-levelled. The default changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    levels: BTreeMap<&'static str, Level>,
}

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the lint configuration {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Syntax { path: PathBuf, message: String },
    #[error("{}: unknown rule {id:?}{}; `berth lint --list` shows the rules", path.display(), suggestion.as_ref().map(|s| format!(" (did you mean {s:?}?)")).unwrap_or_default())]
    UnknownRule {
        path: PathBuf,
        id: String,
        suggestion: Option<String>,
    },
    #[error("{}: rule {id:?}: unknown level {value:?}: expected off, on, error, warning, info or style", path.display())]
    BadLevel {
        path: PathBuf,
        id: String,
        value: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    rules: BTreeMap<String, String>,
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses configuration text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let mut config = Self::default();
        for (id, value) in raw.rules {
            let Some(rule) = catalog::rule(&id) else {
                let ids: Vec<String> = catalog::RULES.iter().map(|r| r.id.to_string()).collect();
                return Err(ConfigError::UnknownRule {
                    path: path.to_path_buf(),
                    suggestion: crate::model::suggest(&id, &ids).map(str::to_string),
                    id,
                });
            };
            let level = match value.as_str() {
                "off" => Level::Off,
                "on" => Level::On,
                other => Level::At(other.parse().map_err(|_| ConfigError::BadLevel {
                    path: path.to_path_buf(),
                    id: id.clone(),
                    value: value.clone(),
                })?),
            };
            config.levels.insert(rule.id, level);
        }
        Ok(config)
    }

    /// Sets one rule's level (for callers that build a configuration in code).
    pub fn set(&mut self, rule: &Rule, level: Level) {
        self.levels.insert(rule.id, level);
    }

    /// The severity `rule` reports at, or `None` when it is off.
    /// `enabled_elsewhere` turns on a rule that is off by default (BuildKit's
    /// `# check=experimental=` directive).
    pub fn severity(&self, rule: &Rule, enabled_elsewhere: bool) -> Option<Severity> {
        match self.levels.get(rule.id) {
            Some(Level::Off) => None,
            Some(Level::At(s)) => Some(*s),
            Some(Level::On) => Some(rule.severity),
            None => (rule.enabled_by_default || enabled_elsewhere).then_some(rule.severity),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("berth-lint.toml"))
    }

    #[test]
    fn levels() {
        let c = parse(
            "[rules]\nconsecutive-runs = \"off\"\nroot-user = \"error\"\ndefinition-description = \"on\"\n",
        )
        .unwrap();
        let rule = |id| catalog::rule(id).unwrap();
        assert_eq!(c.severity(rule("consecutive-runs"), false), None);
        assert_eq!(c.severity(rule("root-user"), false), Some(Severity::Error));
        assert_eq!(
            c.severity(rule("definition-description"), false),
            Some(Severity::Style)
        );
        assert_eq!(
            c.severity(rule("unpinned-base-image"), false),
            Some(Severity::Warning)
        );
        assert_eq!(Config::default(), parse("").unwrap());
    }

    #[test]
    fn errors_name_the_problem() {
        let e = parse("[rules]\nroot-usr = \"off\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown rule \"root-usr\" (did you mean \"root-user\"?)"),
            "{e}"
        );
        let e = parse("[rules]\nroot-user = \"fatal\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown level \"fatal\""), "{e}");
        let e = parse("[rulez]\n").unwrap_err().to_string();
        assert!(e.starts_with("berth-lint.toml: "), "{e}");
        assert!(e.contains("rulez"), "{e}");
        let e = parse("[rules\n").unwrap_err().to_string();
        assert!(!e.contains('\n'), "{e}");
    }
}
