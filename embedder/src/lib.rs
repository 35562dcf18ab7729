//! Precomputing what a video diffusion trainer consumes, so its GPUs never wait on decoding.
//!
//! Each clip is brought to a bucket ([`buckets`]), its frames are encoded by an image or video VAE in
//! ONNX ([`vae`]) and its caption by a text encoder ([`text`]); both outputs are stored as
//! bf16 by the shard stage. Models come from directories in optimum's export layout, or are the
//! tiny ones bundled for the demo and tests ([`bundled`]).

pub mod buckets;
pub mod bundled;
pub mod text;
pub mod vae;

pub use buckets::{Bucket, BucketConfig, ClipShape};
pub use text::{TextEmbedding, TextEncoder};
pub use vae::{ClipFrames, Draw, LatentMode, Vae, VaeLayout};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmbedError {
    /// A model directory is missing files or its config lacks what the layout needs.
    #[error("model files: {0}")]
    ModelFiles(String),
    /// Inputs that do not fit the model.
    #[error("input: {0}")]
    Input(String),
    /// ONNX Runtime failed.
    #[error(transparent)]
    Onnx(#[from] clipline_onnx::OnnxError),
}
