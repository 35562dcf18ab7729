//! The per-video stages of an ingest run, each a type with one job, and the messages between
//! them:
//!
//! ```text
//! Source ─fetch─► Fetched ─probe─► Probed ─analyse─► Analysed ─plan─► [PlannedClip] ─extract─► Extracted
//! ```
//!
//! then the model stages ([`crate::caption`], [`crate::embed`], fed through byte-bounded queues)
//! and the text filter ([`filter`]) before the commit. A stage takes the message before it and
//! gives its own, or a [`VideoFailure`] that becomes the video's row; no stage writes into the
//! rows of another. [`crate::ingest`] chains them for one video; they share the run's
//! [`RunContext`].

pub mod analyse;
pub mod extract;
pub mod fetch;
pub mod filter;
pub mod probe;

use std::path::PathBuf;

use clipline_core::manifest::FailureKind;
use clipline_core::storage::Store;

use crate::config::Config;
use crate::runtime::{Cancel, Stages};
use crate::tools::Tools;

/// What the stages of one run share.
pub struct RunContext {
    /// The configuration.
    pub config: Config,
    /// ffmpeg and ffprobe.
    pub tools: Tools,
    /// The output store.
    pub output: Store,
    /// Fingerprint of the output-relevant settings, computed once for the run.
    pub settings_hash: String,
    /// The detector description recorded with shots and clips.
    pub detector: String,
    /// Cancellation.
    pub cancel: Cancel,
    /// Where temporary files are written before upload.
    pub scratch: PathBuf,
    /// The stages' limits and progress bars.
    pub stages: Stages,
}

/// Why a video goes no further: becomes its `videos` row's `error_kind` and `error`.
#[derive(Debug)]
pub struct VideoFailure {
    /// The reason class.
    pub kind: FailureKind,
    /// What happened, naming the input.
    pub message: String,
    /// Frames decoded before it failed (counted in the run's total).
    pub frames_decoded: u64,
    /// The row's `decoded_frames`, when the analysis decode ran to its end.
    pub decoded_frames: Option<u64>,
}

impl VideoFailure {
    /// A failure before any frame was decoded.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), frames_decoded: 0, decoded_frames: None }
    }
}
