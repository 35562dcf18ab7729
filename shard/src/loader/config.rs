//! What a training run reads: which samples, in which batches, held out how, fetched how.

use std::path::PathBuf;

use clipline_core::manifest::{SampleRow, SampleStatus};
use serde::{Deserialize, Serialize};

use super::batch_size::BatchSizes;
use super::plan::PlanSample;

/// The `[data]` section of a training config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Seed of the global sample order.
    pub seed: u64,
    /// Batch size per bucket (see [`BatchSizes`]).
    pub batch_size: BatchSizes,
    /// Sample kinds to train on (`video`, `image`); empty: all.
    pub kinds: Vec<String>,
    /// Leave out samples with fewer frames (a fine-tuning stage on long clips).
    pub min_frames: i64,
    /// Leave out samples whose frames are lower than this, pixels.
    pub min_height: i64,
    /// Samples held out for the validation loss, chosen by a hash of their ids.
    pub val_samples: usize,
    /// How samples are fetched.
    pub loader: LoaderConfig,
}

/// The `[data.loader]` section: prefetching, the local cache, the corrupt-sample policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoaderConfig {
    /// Samples fetched ahead of the consumer at most (requests in flight plus decoded ones waiting).
    pub prefetch_samples: usize,
    /// Decoded bytes held ahead of the consumer at most, MiB; cache blocks being fetched are
    /// bounded by as much again.
    pub prefetch_mib: u64,
    /// Threads that verify and decompress samples.
    pub decode_threads: usize,
    /// A local directory that keeps copies of shard blocks: the cold epoch fetches whole blocks
    /// (one request for many samples) and later epochs read local disk; none when unset.
    pub cache_dir: Option<PathBuf>,
    /// The cache's size limit, MiB (below the dataset's size, later epochs fetch again).
    pub cache_mib: u64,
    /// The cache's block size, MiB.
    pub cache_block_mib: u64,
    /// Fraction of the samples read that may be corrupt and skipped before the run stops
    /// (at least 16 are always tolerated).
    pub max_skipped_fraction: f64,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self { prefetch_samples: 64, prefetch_mib: 512, decode_threads: cores.clamp(1, 8), cache_dir: None, cache_mib: 10_240, cache_block_mib: 8, max_skipped_fraction: 0.01 }
    }
}

/// The samples a config trains on and the ones it holds out.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Samples to train on.
    pub train: Vec<PlanSample>,
    /// Ids of held-out samples, sorted.
    pub validation: Vec<String>,
}

impl DataConfig {
    /// Split the readable rows into training and validation samples.
    pub fn select<'a>(&self, rows: impl IntoIterator<Item = &'a SampleRow>) -> Selection {
        let mut chosen: Vec<(&SampleRow, [u8; 8])> = rows
            .into_iter()
            .filter(|r| r.status == SampleStatus::Ok)
            .filter(|r| self.kinds.is_empty() || self.kinds.contains(&r.kind))
            .filter(|r| r.frames >= self.min_frames && r.height >= self.min_height)
            .map(|r| {
                let hash = blake3::hash(format!("validation {}", r.sample_id).as_bytes());
                (r, hash.as_bytes()[..8].try_into().expect("8 bytes"))
            })
            .collect();
        chosen.sort_by(|a, b| a.1.cmp(&b.1).then_with(|| a.0.sample_id.cmp(&b.0.sample_id)));
        let held = self.val_samples.min(chosen.len());
        let mut validation: Vec<String> = chosen[..held].iter().map(|(r, _)| r.sample_id.clone()).collect();
        validation.sort();
        let train = chosen[held..].iter().map(|(r, _)| PlanSample { id: r.sample_id.clone(), bucket: r.bucket.clone() }).collect();
        Selection { train, validation }
    }
}
