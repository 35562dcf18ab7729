//! The clipline shard format, its writer, the pipeline's shard sink, the shard and output
//! verifiers, and the reader.
//!
//! Training on precomputed latents only pays when reading them is cheap and safe: a trainer on
//! another cluster range-reads one sample from object storage, decompresses it without the rest
//! of the shard, checks it, and views its bf16 tensors without copying. So a shard is a run of
//! independently decompressible zstd frames, one per sample, with a compact index (16 bytes per
//! sample before compression, checksum included) and a footer; each sample's record aligns its
//! tensors for zero-copy views. Shard names are the hash of their content, so shards can be
//! cached and shared and a half-written one never has a name. `docs/SHARD_FORMAT.md` specifies
//! the bytes.
//!
//! This crate does not link ONNX Runtime: the trainer reads shards with it alone.

pub mod dataset;
pub mod format;
pub mod loader;
pub mod output;
pub mod record;
pub mod sample;
pub mod sink;
pub mod verify;
pub mod writer;

pub use dataset::Dataset;
pub use record::{DType, TensorData, TensorRef};
pub use sample::{Sample, SampleDecoder, TensorView};
pub use verify::{verify_shard, ShardReport};
pub use writer::{EncodedSample, FinishedShard, Placed, SampleEncoder, ShardWriter};

/// Directory of shard files under an output root.
pub const SHARDS_DIR: &str = "shards";

/// The key of shard file `name` under an output root.
pub fn shard_key(name: &str) -> String {
    format!("{SHARDS_DIR}/{name}")
}

/// What went wrong writing or reading shards. Every variant names the shard or sample.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ShardError {
    /// A shard's structure is damaged: header, index, footer, or its name does not match its content.
    #[error("shard {shard} is corrupt: {message}")]
    Corrupt {
        /// The shard.
        shard: String,
        /// What is wrong.
        message: String,
    },
    /// A sample read from a shard is damaged: checksum mismatch, bad record.
    #[error("sample {sample} in shard {shard} is corrupt: {message}")]
    BadSample {
        /// The shard.
        shard: String,
        /// The sample (its id, or its position when the id is unknown).
        sample: String,
        /// What is wrong.
        message: String,
    },
    /// A sample cannot be written as given.
    #[error("sample {sample}: {message}")]
    Sample {
        /// The sample.
        sample: String,
        /// What is wrong.
        message: String,
    },
    /// A sample alone is larger than the shard size limit.
    #[error("sample {sample} is {bytes} bytes compressed, more than the shard size limit of {limit} bytes; raise shards.target_mib")]
    TooLarge {
        /// The sample.
        sample: String,
        /// Its compressed size.
        bytes: u64,
        /// The limit.
        limit: u64,
    },
    /// The dataset has no such sample.
    #[error("no sample {sample} in {dataset}")]
    NotFound {
        /// The sample asked for.
        sample: String,
        /// The dataset root.
        dataset: String,
    },
    /// A local file could not be written or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Storage or manifest failure.
    #[error(transparent)]
    Store(#[from] clipline_core::Error),
}

impl ShardError {
    pub(crate) fn corrupt(shard: &str, message: impl Into<String>) -> Self {
        ShardError::Corrupt { shard: shard.into(), message: message.into() }
    }

    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        ShardError::Io { path: path.display().to_string(), source }
    }
}
