//! What a push or pull reports as it goes, per layer, for the binary to render
//! (Docker's status lines, bars on a terminal). Libraries never print.

/// One step of one layer. Layers are named by the 12-hex short ID Docker
/// shows: the blob digest when pulling, the diff ID when pushing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayerEvent {
    /// Pull: queued for download ("Pulling fs layer").
    Queued,
    /// Push: looked at before anything is sent ("Preparing").
    Preparing,
    /// Push: waiting for a free upload slot ("Waiting").
    Waiting,
    /// Pull: the store has this layer ("Already exists").
    AlreadyExists,
    /// Pull: bytes received so far of `total`.
    Downloading { current: u64, total: u64 },
    /// Pull: all bytes received and verified ("Download complete").
    DownloadComplete,
    /// Pull: unpacked and ready to commit ("Pull complete").
    PullComplete,
    /// Push: compressing the layer for the first time.
    Compressing,
    /// Push: bytes sent so far of `total`.
    Pushing { current: u64, total: u64 },
    /// Push: uploaded ("Pushed").
    Pushed,
    /// Push: the repository had it ("Layer already exists").
    Exists,
    /// Push: mounted from another repository of the same registry.
    Mounted { from: String },
    /// A transfer failed and is tried again after `seconds`.
    Retrying { seconds: u64 },
}

impl LayerEvent {
    /// Docker's words for the event, as its non-terminal output prints them.
    pub fn docker_text(&self) -> String {
        match self {
            Self::Queued => "Pulling fs layer".into(),
            Self::Preparing => "Preparing".into(),
            Self::Waiting => "Waiting".into(),
            Self::AlreadyExists => "Already exists".into(),
            Self::Downloading { .. } => "Downloading".into(),
            Self::DownloadComplete => "Download complete".into(),
            Self::PullComplete => "Pull complete".into(),
            Self::Compressing => "Preparing".into(),
            Self::Pushing { .. } => "Pushing".into(),
            Self::Pushed => "Pushed".into(),
            Self::Exists => "Layer already exists".into(),
            Self::Mounted { from } => format!("Mounted from {from}"),
            Self::Retrying { seconds } => format!(
                "Retrying in {seconds} second{}",
                if *seconds == 1 { "" } else { "s" }
            ),
        }
    }

    /// Byte progress, for bars.
    pub fn bytes(&self) -> Option<(u64, u64)> {
        match self {
            Self::Downloading { current, total } | Self::Pushing { current, total } => {
                Some((*current, *total))
            }
            _ => None,
        }
    }
}

/// Receives events from the threads of a push or pull.
pub trait Progress: Sync {
    fn layer(&self, id: &str, event: LayerEvent);
}

/// Reports nothing (`-q`).
pub struct Silent;

impl Progress for Silent {
    fn layer(&self, _: &str, _: LayerEvent) {}
}
