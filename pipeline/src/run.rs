//! `clipline run`: discover inputs (or read a partition's from the plan), resume from what is
//! committed, push the rest through the stages with a bounded number in flight, commit in order,
//! record the run, summarise.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clipline_core::cache::cache_dir;
use clipline_core::ids::fingerprint_parts;
use clipline_core::manifest::{encode, CaptionStatus, ClipStatus, FailureKind, RunRow, RunStatus, SampleStatus, Table, Timestamp, VideoStatus};
use clipline_core::storage::Store;
use futures::StreamExt;

use crate::caption::CaptionStage;
use crate::detect::transnet::TransNetStage;
use crate::embed::EmbedStage;
use clipline_shard::sink::ShardSink;
use crate::commit::{CommitError, Committed, Committer, Layout};
use crate::config::{cores, Config};
use crate::ingest::Ingest;
use crate::job::{discover_inputs, open_output};
use crate::stage::{filter, RunContext};
use crate::partition::{Lease, Partition, PartitionRequest, PartitionStatus, WorkerEnd, PARTITIONS_DIR};
use crate::plan_cmd::{chunk_keys, read_plan};
use crate::runtime::{Cancel, Observer, StageLimits, Stages};
use crate::sources::{Fetcher, Source};
use crate::tools::Tools;

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    /// How it ended.
    pub status: RunStatus,
    /// Output root.
    pub output: String,
    /// The partition this run processed, for a planned run.
    pub partition: Option<Partition>,
    /// Inputs discovered.
    pub inputs: usize,
    /// Inputs skipped because an earlier run committed them.
    pub resumed: usize,
    /// What this run committed.
    pub committed: Committed,
    /// Wall time, seconds.
    pub wall_s: f64,
}

impl fmt::Display for RunSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.committed;
        let processed = c.videos.total();
        let of = self.partition.map(|p| format!(" (partition {p})")).unwrap_or_default();
        writeln!(f, "clipline run{of} {}: {} inputs, {} already done, {} processed in {:.1} s", self.status.as_str(), self.inputs, self.resumed, processed, self.wall_s)?;
        writeln!(
            f,
            "  videos: {} ok, {} partial, {} skipped, {} failed, {} duplicate",
            c.videos.of(VideoStatus::Ok),
            c.videos.of(VideoStatus::Partial),
            c.videos.of(VideoStatus::Skipped),
            c.videos.of(VideoStatus::Failed),
            c.videos.of(VideoStatus::Duplicate)
        )?;
        let clips = &c.clips;
        writeln!(
            f,
            "  shots: {}; clips: {} ({} ok, {} filtered, {} failed)",
            c.shots,
            clips.total(),
            clips.of(ClipStatus::Ok),
            clips.of(ClipStatus::Filtered),
            clips.of(ClipStatus::Failed)
        )?;
        if !c.captions.is_empty() {
            writeln!(f, "  captions: {} ok, {} failed", c.captions.of(CaptionStatus::Ok), c.captions.of(CaptionStatus::Failed))?;
        }
        if !c.samples.is_empty() {
            writeln!(
                f,
                "  samples: {} ok, {} skipped, {} failed; {} shards, {:.1} MiB",
                c.samples.of(SampleStatus::Ok),
                c.samples.of(SampleStatus::Skipped),
                c.samples.of(SampleStatus::Failed),
                c.shards,
                c.shard_bytes as f64 / (1 << 20) as f64
            )?;
        }
        writeln!(f, "  frames decoded: {} ({:.0} frames/s)", c.frames, c.frames as f64 / self.wall_s.max(1e-9))?;
        for (uri, kind, message) in &c.failures {
            writeln!(f, "  failed [{}] {uri}: {message}", kind.map_or("", FailureKind::as_str))?;
        }
        let unlisted = c.videos.of(VideoStatus::Failed).saturating_sub(c.failures.len() as u64);
        if unlisted > 0 {
            writeln!(f, "  ... and {unlisted} more failed inputs: see the videos table (status = 'failed')")?;
        }
        let mut tables = vec!["videos", "shots", "clips"];
        if !c.captions.is_empty() {
            tables.push("captions");
        }
        if !c.samples.is_empty() {
            tables.extend(["samples", "shards"]);
        }
        tables.push("runs");
        let tables = tables.join(",");
        match self.partition {
            Some(p) => write!(f, "  staged in {}/{}; clipline commit --output {} publishes every partition at once", self.output, p.dir(), self.output),
            None => write!(f, "  manifests: {}/manifests/{{{tables}}}", self.output),
        }
    }
}

/// A run's settings, output and work, resolved once.
struct Job {
    config: Config,
    /// Fingerprint of the output-relevant settings: computed once, here.
    settings_hash: String,
    output: Store,
    work: Work,
}

/// What a run is to process: its sources in input order, each with its commit chunk.
struct Work {
    sources: Vec<(Source, usize)>,
    layout: Layout,
    partition: Option<Partition>,
}

impl Work {
    /// A single run: every input. Its chunks are cut later, every `commit_every` inputs from the
    /// first one not yet committed, once the committed ones are known.
    async fn discover(config: &Config, output: &Store) -> anyhow::Result<Self> {
        let in_progress = output.list(PARTITIONS_DIR).await?;
        anyhow::ensure!(
            in_progress.is_empty(),
            "{} has partitions of a plan in progress ({} files under {}): run this as a partition (--partition i/N), or finish them and publish with clipline commit --output {}",
            output.uri(),
            in_progress.len(),
            output.uri_of(PARTITIONS_DIR),
            output.uri()
        );
        let sources = discover_inputs(config).await?.into_iter().map(|s| (s, 0)).collect();
        Ok(Self { sources, layout: Layout::Whole, partition: None })
    }

    /// One partition of the output's plan: its inputs and chunks as the plan gives them.
    async fn planned(config: &Config, output: &Store, request: PartitionRequest, settings_hash: &str) -> anyhow::Result<Self> {
        let (info, rows) = read_plan(output).await?;
        let request = match (request.count, config.run.partitions) {
            (None, n) if n > 0 => PartitionRequest { count: Some(n), ..request },
            _ => request,
        };
        let partition = request.resolve(info.partitions).map_err(anyhow::Error::msg)?;
        anyhow::ensure!(
            info.settings_hash == settings_hash,
            "this config's settings ({settings_hash}) differ from those the plan at {} was made with ({}): run the partitions with the plan's config",
            output.uri(),
            info.settings_hash
        );
        let chunk_keys = chunk_keys(&info, &rows).swap_remove(partition.index as usize);
        let mut stores = std::collections::HashMap::new();
        let mut sources = Vec::new();
        for row in rows.iter().filter(|r| r.partition == i64::from(partition.index)) {
            sources.push((Source::from_uri(&row.uri, &mut stores)?, row.chunk as usize));
        }
        Ok(Self { sources, layout: Layout::Partition { markers_dir: partition.commits_dir(), chunk_keys }, partition: Some(partition) })
    }
}

/// What a run that cannot write to its output says: the fix is to run it again.
const STOPPED_WRITING: &str = "cannot write to the output, so the run stopped (what is committed stays: run the same command again to resume)";

/// `e`, with [`STOPPED_WRITING`] in front when it is a storage failure.
fn resumable(e: anyhow::Error) -> anyhow::Error {
    let storage = |e: &clipline_core::Error| matches!(e, clipline_core::Error::Storage { .. } | clipline_core::Error::Timeout { .. });
    let is_storage = e.chain().any(|c| {
        c.downcast_ref::<clipline_core::Error>().is_some_and(storage) || matches!(c.downcast_ref::<CommitError>(), Some(CommitError::Store(inner)) if storage(inner))
    });
    if is_storage { e.context(STOPPED_WRITING) } else { e }
}

/// Videos whose clips may wait for the model stages (caption, embed) at once: enough for the
/// captioner to batch clips of several short videos together.
const MODEL_QUEUE_VIDEOS: usize = 8;

/// Run the ingest described by `config` (output must be set; inputs too, unless `partition`
/// names a partition of the output's plan).
///
/// # Errors
/// When ffmpeg is missing, the output cannot be opened or committed to, or inputs cannot be
/// listed; a bad input is not an error.
pub async fn run(config: Config, partition: Option<PartitionRequest>, observer: Arc<dyn Observer>, cancel: Cancel) -> anyhow::Result<RunSummary> {
    let output = open_output(&config)?;
    let settings_hash = config.settings_hash();
    let work = match partition {
        Some(request) => Work::planned(&config, &output, request, &settings_hash).await?,
        None => Work::discover(&config, &output).await?,
    };
    let job = Job { config, settings_hash, output, work };
    match job.work.partition {
        Some(partition) => run_partition(job, partition, observer, cancel).await,
        None => run_work(job, observer, cancel).await,
    }
}

/// Run a partition under its lease, and record how it ended for `clipline commit`.
async fn run_partition(job: Job, partition: Partition, observer: Arc<dyn Observer>, cancel: Cancel) -> anyhow::Result<RunSummary> {
    let (inputs, output, lease_s) = (job.work.sources.len() as u64, job.output.clone(), job.config.run.lease_s);
    let lease = Arc::new(Lease::acquire(&output, partition, Duration::from_secs(lease_s)).await?);
    let heartbeat = tokio::spawn(keep_lease(lease.clone(), partition, lease_s, cancel.clone()));
    let result = run_work(job, observer, cancel).await;
    heartbeat.abort();
    let lost = heartbeat.await.is_ok_and(|lost| lost);
    let status = match &result {
        _ if lost => Some(PartitionStatus::now(WorkerEnd::Interrupted, Some("another worker took the partition over".into()), inputs)),
        // Everything was published by an earlier `clipline commit`: leave nothing to publish.
        Ok(summary) if summary.resumed == summary.inputs && output.list(&partition.commits_dir()).await?.is_empty() => None,
        Ok(summary) => Some(PartitionStatus::now(summary.status.into(), None, inputs)),
        Err(e) => Some(PartitionStatus::now(WorkerEnd::Failed, Some(clipline_core::error::error_line(e.as_ref())), inputs)),
    };
    if let Some(status) = status
        && let Err(e) = status.write(&output, partition).await
    {
        tracing::warn!(partition = %partition, error = %e, "cannot record the partition's status");
    }
    if !lost && let Err(e) = lease.release().await {
        tracing::warn!(partition = %partition, error = %e, "cannot release the partition's lease; another worker waits run.lease_s for it");
    }
    anyhow::ensure!(!lost, "partition {partition}: another worker took the partition over (this worker went quiet for over run.lease_s); it finishes the work");
    result
}

/// Renew `lease` until aborted; cancels the run and returns true if another worker takes the
/// partition over.
async fn keep_lease(lease: Arc<Lease>, partition: Partition, lease_s: u64, cancel: Cancel) -> bool {
    let mut every = tokio::time::interval(Duration::from_millis(lease_s * 1000 / 4));
    every.tick().await;
    loop {
        every.tick().await;
        match lease.heartbeat().await {
            Ok(true) => {}
            Ok(false) => {
                tracing::error!(partition = %partition, "another worker took this partition over; stopping");
                cancel.cancel();
                return true;
            }
            Err(e) => tracing::warn!(partition = %partition, error = %e, "cannot renew the partition's lease; retrying"),
        }
    }
}

async fn run_work(job: Job, observer: Arc<dyn Observer>, cancel: Cancel) -> anyhow::Result<RunSummary> {
    let Job { config, settings_hash, output, work } = job;
    let started = Instant::now();
    let started_at = Timestamp::now();
    let tools = Tools::locate()?.with_memory_limit(config.decode.max_memory_mib);
    let scratch = tempfile::Builder::new().prefix("clipline-").tempdir().context("cannot create a scratch directory")?;
    let sink = config.embed.enabled().then(|| ShardSink::new(output.clone(), &config.shards, &scratch.path().join("shards")));
    let (mut committer, resume) = Committer::open(output.clone(), settings_hash.clone(), work.layout.clone(), sink).await?;
    let inputs = work.sources.len();
    let mut pending: Vec<(Source, usize)> = work.sources.into_iter().filter(|(s, _)| !resume.done.contains(&s.uri())).collect();
    if work.partition.is_none() {
        let every = config.run.commit_every.max(1);
        pending.iter_mut().enumerate().for_each(|(i, (_, chunk))| *chunk = i / every);
    }
    let resumed = inputs - pending.len();
    tracing::info!(
        inputs,
        already_done = resumed,
        orphans_removed = resume.orphans_removed,
        output = %output.uri(),
        settings = %settings_hash,
        "starting ingest"
    );

    let limits = StageLimits {
        fetch: config.run.fetch_concurrency,
        decode: nonzero_or_cores(config.run.decode_concurrency),
        extract: nonzero_or_cores(config.run.extract_concurrency),
    };
    let stages = Stages::new(observer, limits, pending.len() as u64);
    let captioner = if config.caption.enabled() { Some(CaptionStage::start(&config.caption, &cache_dir(), config.run.queue_bytes(), stages.caption.progress.clone())?) } else { None };
    let embedder =
        if config.embed.enabled() { Some(EmbedStage::start(&config.embed, &config.shards, &cache_dir(), config.run.queue_bytes(), stages.embed.progress.clone())?) } else { None };
    let transnet = if config.detect.method.uses_model() { Some(TransNetStage::start(&config.detect, &cache_dir(), config.run.queue_bytes(), stages.detect.progress.clone())?) } else { None };
    let fetcher = Fetcher::new(config.sources.clone(), scratch.path().join("spool"))?;
    let ctx = Arc::new(RunContext {
        config: config.clone(),
        tools,
        output: output.clone(),
        settings_hash: settings_hash.clone(),
        detector: config.detector(),
        cancel: cancel.clone(),
        scratch: scratch.path().to_path_buf(),
        stages,
    });
    let ingest = Arc::new(Ingest::new(ctx.clone(), fetcher, transnet));

    let (captioner, embedder) = (captioner.as_ref(), embedder.as_ref());
    let max_text_area = config.filters.max_text_area;
    let chunks: Vec<usize> = pending.iter().map(|(_, chunk)| *chunk).collect();
    let mut results = futures::stream::iter(pending.into_iter().map(|(source, _)| source).enumerate())
        .take_while(|_| std::future::ready(!cancel.is_cancelled()))
        .map(|(index, source)| tokio::spawn(ingest.clone().process(index, source)))
        .buffered(Stages::in_flight(limits))
        .map(|outcome| async move {
            let mut outcome = outcome.context("a video task panicked")?.map_err(|failure| anyhow::anyhow!("{STOPPED_WRITING}: {failure}"))?;
            if let Some(stage) = captioner {
                outcome.captions = stage.caption(std::mem::take(&mut outcome.caption_frames)).await?;
                filter::text_area(&mut outcome.clips, &outcome.captions, &mut outcome.embed_inputs, max_text_area);
            }
            if let Some(stage) = embedder {
                let captions = outcome.captions.iter().filter(|c| c.status == CaptionStatus::Ok).map(|c| (c.clip_id.clone(), c.caption.clone())).collect();
                outcome.samples = stage.embed(std::mem::take(&mut outcome.embed_inputs), captions).await?;
            }
            anyhow::Ok(outcome)
        })
        .buffered(MODEL_QUEUE_VIDEOS);
    let mut interrupted = false;
    let mut chunks = chunks.into_iter();
    while let Some(outcome) = results.next().await {
        let outcome = outcome?;
        if outcome.cancelled || cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        let chunk = chunks.next().expect("one chunk per source");
        ctx.stages.commit.run(committer.add(outcome, chunk)).await.map_err(|e| resumable(e.into()))?;
    }
    drop(results);
    interrupted |= cancel.is_cancelled();
    if !interrupted {
        committer.flush().await.map_err(|e| resumable(e.into()))?;
    }
    ctx.stages.finish();

    let committed = committer.committed.clone();
    let failed = committed.videos.of(VideoStatus::Failed);
    let status = match (interrupted, failed) {
        (true, _) => RunStatus::Interrupted,
        (false, 0) => RunStatus::Completed,
        (false, _) => RunStatus::CompletedWithFailures,
    };
    let summary =
        RunSummary { status, output: output.uri().to_string(), partition: work.partition, inputs, resumed, committed, wall_s: started.elapsed().as_secs_f64() };
    record_run(&output, &config, &settings_hash, started_at, &summary).await?;
    Ok(summary)
}

fn nonzero_or_cores(n: usize) -> usize {
    if n == 0 { cores() } else { n }
}

async fn record_run(output: &Store, config: &Config, settings_hash: &str, started_at: Timestamp, s: &RunSummary) -> anyhow::Result<()> {
    let run_id = fingerprint_parts([started_at.0.to_le_bytes().to_vec(), std::process::id().to_le_bytes().to_vec()]);
    let c = &s.committed;
    let count = |status| c.videos.of(status) as i64;
    let row = RunRow {
        run_id: run_id.clone(),
        started_at,
        finished_at: Timestamp::now(),
        status: s.status,
        inputs: s.inputs as i64,
        inputs_resumed: s.resumed as i64,
        videos_ok: count(VideoStatus::Ok) + count(VideoStatus::Partial),
        videos_failed: count(VideoStatus::Failed),
        clips: c.clips.total() as i64,
        frames_decoded: c.frames as i64,
        wall_s: s.wall_s,
        settings_hash: settings_hash.into(),
        config: config.to_toml(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let key = clipline_core::manifest::commits::part_key(RunRow::NAME, &run_id);
    output.put(&key, encode(&[row])?).await?;
    Ok(())
}
