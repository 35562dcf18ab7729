//! The fetching side of the loader: a thread with its own async runtime walks this rank's
//! batches ahead of the consumer, with a bounded number of ranged reads in flight and a bound
//! on the bytes held, and verifies and decompresses each frame on a pool of blocking threads.
//! Results come back in order through a bounded channel.

use std::cell::RefCell;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

use super::cache::BlockCache;
use super::plan::{Plan, PlannedBatch};
use super::state::Rank;
use crate::dataset::{Dataset, Location};
use crate::sample::{Sample, SampleDecoder};
use crate::ShardError;

/// The batch a fetched sample belongs to.
#[derive(Debug)]
pub(super) struct BatchInfo {
    pub epoch: u64,
    pub global: u64,
    pub bucket: String,
    pub len: usize,
}

/// One sample as it arrives at the consumer.
pub(super) struct Fetched {
    pub batch: Arc<BatchInfo>,
    pub position: usize,
    pub id: String,
    /// The sample, or why it could not be read.
    pub outcome: Result<Sample, ShardError>,
    /// Compressed bytes read for it.
    pub bytes: u64,
    /// Its share of the prefetch budget, returned when the consumer drops it.
    pub _budget: OwnedSemaphorePermit,
}

/// What the fetching thread shares.
pub(super) struct Fetcher {
    pub dataset: Arc<Dataset>,
    pub cache: Option<Arc<BlockCache>>,
    /// Decoded samples held ahead of the consumer, KiB (`prefetch_mib`).
    pub budget: Arc<Semaphore>,
    pub budget_kib: u32,
    /// Cache blocks being fetched, KiB: a budget of their own, as large as the samples', so
    /// that samples waiting for their blocks can never hold what the blocks need.
    pub blocks: Arc<Semaphore>,
}

thread_local! {
    static DECODER: RefCell<Option<SampleDecoder>> = const { RefCell::new(None) };
}

/// Start fetching this rank's batches from global batch `start` on.
///
/// # Errors
/// When the thread or its runtime cannot be started.
pub(super) fn start(fetcher: Fetcher, plan: Arc<Plan>, start: u64, rank: Rank, prefetch: usize, decode_threads: usize) -> std::io::Result<mpsc::Receiver<Fetched>> {
    // Finished samples wait in order inside the buffered stream; the channel only hands them over.
    let (tx, rx) = mpsc::channel(2);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().max_blocking_threads(decode_threads.max(1)).build()?;
    let fetcher = Arc::new(fetcher);
    std::thread::Builder::new().name("clipline-loader".into()).spawn(move || {
        runtime.block_on(async move {
            let jobs = plan.rank_stream(start, rank.rank, rank.world_size).flat_map(|batch| jobs_of(&plan, batch));
            let mut fetched = futures::stream::iter(jobs).map(|(batch, position, id)| fetch(fetcher.clone(), batch, position, id)).buffered(prefetch.max(1));
            while let Some(item) = fetched.next().await {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
    })?;
    Ok(rx)
}

fn jobs_of(plan: &Plan, batch: PlannedBatch) -> Vec<(Arc<BatchInfo>, usize, String)> {
    let info = Arc::new(BatchInfo { epoch: batch.epoch, global: batch.global, bucket: plan.buckets()[batch.bucket].name.clone(), len: batch.samples.len() });
    batch.samples.iter().enumerate().map(|(position, &s)| (info.clone(), position, plan.samples()[s as usize].id.clone())).collect()
}

async fn fetch(fetcher: Arc<Fetcher>, batch: Arc<BatchInfo>, position: usize, id: String) -> Fetched {
    let location = fetcher.dataset.location(&id).cloned();
    let need = location.as_ref().map_or(1, |l| (l.length + l.raw_length as u64).div_ceil(1024)).clamp(1, u64::from(fetcher.budget_kib)) as u32;
    let budget = fetcher.budget.clone().acquire_many_owned(need).await.expect("the budget is never closed");
    let (outcome, bytes) = match location {
        Some(loc) => match read(&fetcher, &id, &loc).await {
            Ok(sample) => (Ok(sample), loc.length),
            Err(e) => (Err(e), 0),
        },
        None => (Err(ShardError::NotFound { sample: id.clone(), dataset: fetcher.dataset.store().uri().into() }), 0),
    };
    Fetched { batch, position, id, outcome, bytes, _budget: budget }
}

/// The sample through the block cache when there is one, else with one ranged read.
async fn read(fetcher: &Fetcher, id: &str, loc: &Location) -> Result<Sample, ShardError> {
    if let (Some(cache), Some(shard_bytes)) = (&fetcher.cache, fetcher.dataset.shard_bytes(&loc.shard))
        && let Some(frame) = cached_frame(fetcher, cache, loc, shard_bytes).await?
    {
        match decode(frame, id, loc).await {
            Ok(sample) => return Ok(sample),
            Err(damaged) => {
                // The copy or the source is damaged: the source decides, and an error from it
                // (the sample is damaged there too) leaves the blocks, which match it, alone.
                let sample = decode(fetcher.dataset.frame(id, loc).await?, id, loc).await?;
                tracing::warn!(sample = id, error = %damaged, "the cached copy was damaged; dropped it");
                cache.remove(&loc.shard, loc.offset, loc.length);
                return Ok(sample);
            }
        }
    }
    decode(fetcher.dataset.frame(id, loc).await?, id, loc).await
}

/// A sample's frame from the cache's blocks, fetching the missing ones; `None` when a block
/// went missing before it could be read (the caller reads the frame directly).
async fn cached_frame(fetcher: &Fetcher, cache: &Arc<BlockCache>, loc: &Location, shard_bytes: u64) -> Result<Option<Bytes>, ShardError> {
    for block in cache.blocks(loc.offset, loc.length) {
        let fetch = |range: std::ops::Range<u64>| async move {
            let kib = (range.end - range.start).div_ceil(1024).clamp(1, u64::from(fetcher.budget_kib)) as u32;
            let _held = fetcher.blocks.acquire_many(kib).await.expect("the budget is never closed");
            fetcher.dataset.range(&loc.shard, range).await
        };
        cache.ensure(&loc.shard, block, shard_bytes, fetch).await?;
    }
    let (c, shard, offset, length) = (cache.clone(), loc.shard.clone(), loc.offset, loc.length);
    Ok(tokio::task::spawn_blocking(move || c.read(&shard, offset, length)).await.ok().flatten().map(Bytes::from))
}

async fn decode(frame: Bytes, id: &str, loc: &Location) -> Result<Sample, ShardError> {
    let (shard, sample) = (loc.shard.clone(), id.to_string());
    let (id, loc) = (id.to_string(), loc.clone());
    tokio::task::spawn_blocking(move || {
        DECODER.with(|cell| {
            let mut decoder = cell.borrow_mut();
            if decoder.is_none() {
                *decoder = Some(SampleDecoder::new().map_err(|e| ShardError::io(std::path::Path::new("zstd context"), e))?);
            }
            decoder.as_mut().expect("made above").decode(&frame, loc.expected(&id))
        })
    })
    .await
    .map_err(|e| ShardError::BadSample { shard, sample, message: format!("decoding panicked: {e}") })?
}
