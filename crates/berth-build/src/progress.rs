//! What a build tells its user, as events: the library never prints. The CLI
//! turns them into BuildKit-style plain lines or a redrawn TTY view.

use std::time::Duration;

/// A unit of work the user sees: `#N [stage 2/5] RUN make`.
pub type VertexId = usize;

#[derive(Debug, Clone)]
pub enum Event {
    /// Work started (or, for a cached step, was found done).
    Started { id: VertexId, name: String },
    /// The step's result came from the build cache.
    Cached { id: VertexId },
    /// One line of a RUN's output (without its newline); `stderr` tells the
    /// stream apart.
    Log {
        id: VertexId,
        line: String,
        stderr: bool,
        elapsed: Duration,
    },
    /// Work finished.
    Done { id: VertexId, elapsed: Duration },
    /// Work failed; the build stops.
    Failed {
        id: VertexId,
        message: String,
        elapsed: Duration,
    },
    /// A note that belongs to no step (unused build args …).
    Warning { message: String },
}

/// Receives events from every build thread.
pub trait Reporter: Send + Sync {
    fn event(&self, event: Event);
}
