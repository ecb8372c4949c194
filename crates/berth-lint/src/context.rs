//! Facts about a build context that the context rules need: what a `COPY`
//! could take that should not be in an image, and the `.dockerignore`.
//!
//! Loading walks the context as a build would (with the `.dockerignore`
//! applied), so a finding is about files the build would really send.

use std::path::{Path, PathBuf};

use berth_context::{
    audit, find_ignore_file, read_ignore_file, BuildContext, Entry, Filter, IgnoreFileError,
    Matcher, PatternError, WalkError,
};

/// A context that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error(transparent)]
    IgnoreFile(#[from] IgnoreFileError),
    #[error("{}: {source}", path.display())]
    Pattern { path: PathBuf, source: PatternError },
    #[error(transparent)]
    Walk(#[from] WalkError),
}

/// What the lint rules know about a build context.
#[derive(Debug, Clone, Default)]
pub struct ContextFacts {
    /// Included paths that look like secrets or bloat (berth-context's hygiene rules).
    pub hygiene: Vec<berth_context::Finding>,
    /// The `.dockerignore` patterns in force, if there is a file.
    pub ignore: Option<Matcher>,
    /// Where they come from.
    pub ignore_file: Option<PathBuf>,
}

impl ContextFacts {
    /// Walks the context at `dir`. `dockerfile` is the Dockerfile's path, for
    /// BuildKit's `<Dockerfile>.dockerignore` next to it.
    pub fn load(dir: &Path, dockerfile: Option<&Path>) -> Result<Self, ContextError> {
        let ignore_file = find_ignore_file(dir, dockerfile);
        let patterns = match &ignore_file {
            Some(path) => read_ignore_file(path)?,
            None => Vec::new(),
        };
        let pattern_error = |source| ContextError::Pattern {
            path: ignore_file
                .clone()
                .unwrap_or_else(|| dir.join(".dockerignore")),
            source,
        };
        let filter = Filter::excluding(&patterns).map_err(pattern_error)?;
        let context = BuildContext::new(dir, filter)?;
        let entries = context.walk().collect::<Result<Vec<_>, _>>()?;
        Self::from_walk(&context, &entries, ignore_file, &patterns)
    }

    /// The facts of a context already walked (a build's), with the
    /// `.dockerignore` it was walked with (`patterns` from `ignore_file`).
    pub fn from_walk(
        context: &BuildContext,
        entries: &[Entry],
        ignore_file: Option<PathBuf>,
        patterns: &[String],
    ) -> Result<Self, ContextError> {
        let hygiene = audit(entries, context.filter().excludes());
        let ignore = match &ignore_file {
            Some(path) => Some(
                Matcher::new(patterns).map_err(|source| ContextError::Pattern {
                    path: path.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        Ok(Self {
            hygiene,
            ignore,
            ignore_file,
        })
    }
}
