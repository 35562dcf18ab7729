//! The streaming loader: the dataset's samples in per-bucket batches, in a global order that
//! survives restarts on any number of ranks, fetched ahead with bounded memory.
//!
//! Peers taught the shape of it. Hotshot found IO, not compute, bounding their GPUs, so
//! fetching runs ahead of the consumer with many ranged reads in flight and decoding on a
//! thread pool. Users of MosaicML Streaming, WebDataset and HF streaming complain most that
//! resumption is inexact, and none of them resumes exactly on a different number of GPUs; here
//! the order is a pure function of (seed, epoch, position) ([`plan`]) and the state is three
//! numbers ([`LoaderState`]). Open-Sora users lose days to bucket configs that silently yield
//! no batches, so every bucket has an explicit batch size and a dry run
//! ([`DryRun`]) says which yield none. A corrupt sample is skipped, logged and
//! counted, never handed over as zeros; too many of them stop the run.

pub mod batch_size;
pub mod cache;
pub mod config;
pub mod dry_run;
pub mod plan;
pub mod state;
mod stream;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, Semaphore};

pub use batch_size::BatchSizes;
pub use cache::BlockCache;
pub use config::{DataConfig, LoaderConfig, Selection};
pub use dry_run::{BucketLine, DryRun};
pub use plan::{Plan, PlanSample};
pub use state::{LoaderState, Rank};

use crate::dataset::Dataset;
use crate::sample::Sample;
use crate::ShardError;
use stream::{Fetched, Fetcher};

/// What stops a loader.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoaderError {
    /// A saved state that does not belong to this dataset or config.
    #[error("{0}")]
    Resume(String),
    /// A rank or world size out of range.
    #[error("{0}")]
    Rank(String),
    /// No bucket yields a full batch.
    #[error("no bucket yields a full batch: {0}; lower the batch sizes in [data.batch_size] (see `clipline buckets`)")]
    NoBatches(String),
    /// More corrupt samples than the policy tolerates.
    #[error("{skipped} of {read} samples read were corrupt and skipped, more than max_skipped_fraction {fraction} allows; last: {last}. Run `clipline shards verify` on the dataset")]
    TooManyCorrupt {
        /// Samples skipped so far.
        skipped: u64,
        /// Samples read so far, skipped ones included.
        read: u64,
        /// The configured fraction.
        fraction: f64,
        /// The last skip's reason.
        last: String,
    },
    /// A read that failed for a reason other than the sample's own damage (the store is down).
    #[error("reading sample {sample}: {source}")]
    Read {
        /// The sample.
        sample: String,
        /// Why.
        #[source]
        source: ShardError,
    },
    /// The fetching thread stopped.
    #[error("the loader's fetching thread stopped unexpectedly")]
    Stopped,
    /// Opening the cache or starting the thread failed.
    #[error(transparent)]
    Setup(#[from] ShardError),
}

/// One batch: samples of one bucket.
#[derive(Debug)]
pub struct Batch {
    /// Epoch it belongs to.
    pub epoch: u64,
    /// Its place in the global stream.
    pub global: u64,
    /// The bucket.
    pub bucket: String,
    /// Its samples, in order; fewer than the batch size when some were skipped, and none when
    /// all were (the consumer still counts the batch, so all ranks stay in step).
    pub samples: Vec<Sample>,
    /// Samples skipped as corrupt: id and reason.
    pub skipped: Vec<(String, String)>,
}

/// Totals since the loader started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoaderMetrics {
    /// Batches handed over.
    pub batches: u64,
    /// Samples handed over.
    pub samples: u64,
    /// Samples skipped as corrupt.
    pub skipped: u64,
    /// Compressed bytes of the samples handed over.
    pub bytes: u64,
    /// Time the consumer waited for data.
    pub waited: Duration,
    /// Time since the loader started.
    pub elapsed: Duration,
}

impl LoaderMetrics {
    /// Samples per second handed over.
    pub fn samples_per_s(&self) -> f64 {
        self.samples as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Compressed megabytes (10^6) per second handed over.
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Reads one rank's share of the global stream of batches.
pub struct Loader {
    plan: Arc<Plan>,
    rank: Rank,
    start: u64,
    rounds: u64,
    rx: mpsc::Receiver<Fetched>,
    max_skipped_fraction: f64,
    metrics: LoaderMetrics,
    started: Instant,
}

impl Loader {
    /// Start reading `plan` over `dataset` as `rank`, from the beginning or from `resume`.
    ///
    /// # Errors
    /// When `resume` does not belong to this plan, no bucket yields a batch, or the cache or
    /// the fetching thread cannot be set up.
    pub fn start(dataset: Arc<Dataset>, plan: Arc<Plan>, rank: Rank, resume: Option<&LoaderState>, config: &LoaderConfig) -> Result<Self, LoaderError> {
        if plan.batches_per_epoch() == 0 {
            let buckets: Vec<String> = plan.buckets().iter().map(|b| format!("{} has {} samples, batch size {}", b.name, b.members.len(), b.batch_size.map_or("unset".into(), |n| n.to_string()))).collect();
            return Err(LoaderError::NoBatches(if buckets.is_empty() { "the selection has no samples".into() } else { buckets.join("; ") }));
        }
        let start = match resume {
            Some(state) => state.resume_at(&plan)?,
            None => 0,
        };
        let cache = match (&config.cache_dir, dataset.store().local_root()) {
            (Some(_), Some(root)) => {
                tracing::info!(dataset = %root.display(), "the dataset is on local disk; reading it directly, without the cache");
                None
            }
            (Some(dir), None) => Some(Arc::new(BlockCache::open(dir, config.cache_mib << 20, config.cache_block_mib.max(1) << 20)?)),
            (None, _) => None,
        };
        let budget_kib = u32::try_from(config.prefetch_mib.max(1) << 10).unwrap_or(u32::MAX >> 3).min(Semaphore::MAX_PERMITS as u32);
        let fetcher = Fetcher { dataset, cache, budget: Arc::new(Semaphore::new(budget_kib as usize)), budget_kib, blocks: Arc::new(Semaphore::new(budget_kib as usize)) };
        let rx = stream::start(fetcher, plan.clone(), start, rank, config.prefetch_samples, config.decode_threads).map_err(|e| ShardError::io(std::path::Path::new("loader thread"), e))?;
        Ok(Self { plan, rank, start, rounds: 0, rx, max_skipped_fraction: config.max_skipped_fraction, metrics: LoaderMetrics::default(), started: Instant::now() })
    }

    /// The next batch of this rank. Blocks until it is fetched; must not be called from async code.
    ///
    /// # Errors
    /// When a sample cannot be read for a reason other than its own damage, too many samples
    /// are corrupt, or the fetching thread stopped.
    pub fn next_batch(&mut self) -> Result<Batch, LoaderError> {
        let mut samples = Vec::new();
        let mut skipped = Vec::new();
        let mut bytes = 0;
        loop {
            let waiting = Instant::now();
            let fetched = self.rx.blocking_recv().ok_or(LoaderError::Stopped)?;
            self.metrics.waited += waiting.elapsed();
            match fetched.outcome {
                Ok(sample) => {
                    samples.push(sample);
                    bytes += fetched.bytes;
                }
                Err(e) if is_damage(&e) => {
                    tracing::warn!(sample = fetched.id, bucket = fetched.batch.bucket, error = %e, "skipping a corrupt sample");
                    skipped.push((fetched.id, e.to_string()));
                }
                Err(source) => return Err(LoaderError::Read { sample: fetched.id, source }),
            }
            if fetched.position + 1 == fetched.batch.len {
                let info = fetched.batch;
                self.rounds += 1;
                self.metrics.batches += 1;
                self.metrics.samples += samples.len() as u64;
                self.metrics.skipped += skipped.len() as u64;
                self.metrics.bytes += bytes;
                self.check_skips(&skipped)?;
                return Ok(Batch { epoch: info.epoch, global: info.global, bucket: info.bucket.clone(), samples, skipped });
            }
        }
    }

    fn check_skips(&self, skipped: &[(String, String)]) -> Result<(), LoaderError> {
        let read = self.metrics.samples + self.metrics.skipped;
        let tolerated = (self.max_skipped_fraction * read as f64).max(16.0);
        if self.metrics.skipped as f64 > tolerated {
            let last = skipped.last().map_or_else(String::new, |(_, reason)| reason.clone());
            return Err(LoaderError::TooManyCorrupt { skipped: self.metrics.skipped, read, fraction: self.max_skipped_fraction, last });
        }
        Ok(())
    }

    /// The state after every rank has taken as many batches as this one: save it with a
    /// checkpoint to resume exactly, on any world size.
    pub fn state(&self) -> LoaderState {
        LoaderState::at(&self.plan, self.next_global())
    }

    /// The epoch of the next batch.
    pub fn epoch(&self) -> u64 {
        self.next_global() / self.plan.batches_per_epoch().max(1)
    }

    /// The global batch the ranks read next (once each has taken as many as this one).
    fn next_global(&self) -> u64 {
        self.start + self.rounds * self.rank.world_size as u64
    }

    /// Totals so far.
    pub fn metrics(&self) -> LoaderMetrics {
        LoaderMetrics { elapsed: self.started.elapsed(), ..self.metrics }
    }

    /// The plan it reads.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }
}

/// Whether a read failed because of the sample or its shard (skip it), not the store (stop).
fn is_damage(e: &ShardError) -> bool {
    match e {
        ShardError::BadSample { .. } | ShardError::Corrupt { .. } | ShardError::NotFound { .. } => true,
        ShardError::Store(inner) => inner.is_not_found(),
        _ => false,
    }
}
