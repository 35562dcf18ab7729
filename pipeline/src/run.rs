//! `clipline run`: discover inputs, resume from what is committed, push the rest through the
//! stages with a bounded number in flight, commit in order, record the run, summarise.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clipline_core::cache::cache_dir;
use clipline_core::ids::hash_parts;
use clipline_core::manifest::{encode, RunRow, Table, Timestamp};
use clipline_core::storage::Store;
use futures::StreamExt;
use indicatif::MultiProgress;

use crate::caption::CaptionStage;
use crate::embed::EmbedStage;
use crate::shards::ShardSink;
use crate::commit::{Committed, Committer};
use crate::config::{cores, Config};
use crate::ingest::Ingest;
use crate::runtime::{Cancel, StageLimits, Stages};
use crate::sources::{discover, Fetcher};
use crate::tools::Tools;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Every input committed, none failed.
    Completed,
    /// Every input committed, some failed (see the `videos` table).
    CompletedWithFailures,
    /// Stopped by Ctrl-C; started again, it resumes.
    Interrupted,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::CompletedWithFailures => "completed_with_failures",
            RunStatus::Interrupted => "interrupted",
        }
    }
}

/// What a run did.
#[derive(Debug)]
pub struct RunSummary {
    /// How it ended.
    pub status: RunStatus,
    /// Output root.
    pub output: String,
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
        let n = |m: &std::collections::HashMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0);
        let processed: u64 = c.videos.values().sum();
        writeln!(f, "clipline run {}: {} inputs, {} already done, {} processed in {:.1} s", self.status.as_str(), self.inputs, self.resumed, processed, self.wall_s)?;
        writeln!(
            f,
            "  videos: {} ok, {} partial, {} skipped, {} failed, {} duplicate",
            n(&c.videos, "ok"),
            n(&c.videos, "partial"),
            n(&c.videos, "skipped"),
            n(&c.videos, "failed"),
            n(&c.videos, "duplicate")
        )?;
        let clips: u64 = c.clips.values().sum();
        writeln!(f, "  shots: {}; clips: {} ({} ok, {} filtered, {} failed)", c.shots, clips, n(&c.clips, "ok"), n(&c.clips, "filtered"), n(&c.clips, "failed"))?;
        if !c.captions.is_empty() {
            writeln!(f, "  captions: {} ok, {} failed", n(&c.captions, "ok"), n(&c.captions, "failed"))?;
        }
        if !c.samples.is_empty() {
            writeln!(
                f,
                "  samples: {} ok, {} skipped, {} failed; {} shards, {:.1} MiB",
                n(&c.samples, "ok"),
                n(&c.samples, "skipped"),
                n(&c.samples, "failed"),
                c.shards,
                c.shard_bytes as f64 / (1 << 20) as f64
            )?;
        }
        writeln!(f, "  frames decoded: {} ({:.0} frames/s)", c.frames, c.frames as f64 / self.wall_s.max(1e-9))?;
        for (uri, kind, message) in &c.failures {
            writeln!(f, "  failed [{kind}] {uri}: {message}")?;
        }
        let unlisted = n(&c.videos, "failed").saturating_sub(c.failures.len() as u64);
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
        write!(f, "  manifests: {}/manifests/{{{tables}}}", self.output)
    }
}

/// Videos whose clips may wait for the model stages (caption, embed) at once: enough for the
/// captioner to batch clips of several short videos together.
const MODEL_QUEUE_VIDEOS: usize = 8;

/// Run the ingest described by `config` (inputs and output must be set).
///
/// # Errors
/// When ffmpeg is missing, the output cannot be opened or committed to, or inputs cannot be
/// listed; a bad input is not an error.
pub async fn run(config: Config, progress: &MultiProgress, cancel: Cancel) -> anyhow::Result<RunSummary> {
    let started = Instant::now();
    let started_at = Timestamp::now();
    let tools = Tools::locate()?;
    let output_uri = config.run.output.clone().context("no output given: pass --output URI or set run.output in the config")?;
    anyhow::ensure!(!config.run.inputs.is_empty(), "no inputs given: pass --input URI (files, directories, globs, s3:// prefixes or URLs)");
    let output = Store::open(&output_uri).with_context(|| format!("cannot open output {output_uri}"))?;
    let sources = discover(&config.run.inputs, &config.sources).await?;
    let settings_hash = config.settings_hash();
    let scratch = tempfile::Builder::new().prefix("clipline-").tempdir().context("cannot create a scratch directory")?;
    let sink = config.embed.enabled().then(|| ShardSink::new(output.clone(), &config.shards, &scratch.path().join("shards")));
    let (mut committer, resume) = Committer::open(output.clone(), settings_hash.clone(), config.run.commit_every, sink).await?;
    let pending: Vec<_> = sources.iter().filter(|s| !resume.done.contains(&s.uri())).cloned().collect();
    let resumed = sources.len() - pending.len();
    tracing::info!(
        inputs = sources.len(),
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
    let stages = Stages::new(progress, limits, pending.len() as u64);
    let captioner = if config.caption.enabled() { Some(CaptionStage::start(&config.caption, &cache_dir(), stages.caption.bar.clone())?) } else { None };
    let embedder =
        if config.embed.enabled() { Some(EmbedStage::start(&config.embed, &config.shards, &cache_dir(), stages.embed.bar.clone())?) } else { None };
    let fetcher = Fetcher::new(config.sources.clone(), scratch.path().join("spool"))?;
    let ingest = Arc::new(Ingest::new(config.clone(), tools, output.clone(), fetcher, stages, cancel.clone(), scratch.path().to_path_buf()));

    let (captioner, embedder) = (captioner.as_ref(), embedder.as_ref());
    let max_text_area = config.filters.max_text_area;
    let mut results = futures::stream::iter(pending.into_iter().enumerate())
        .take_while(|_| std::future::ready(!cancel.is_cancelled()))
        .map(|(index, source)| tokio::spawn(ingest.clone().process(index, source)))
        .buffered(Stages::in_flight(limits))
        .map(|outcome| async move {
            let mut outcome = outcome.context("a video task panicked")?;
            if let Some(stage) = captioner {
                outcome.captions = stage.caption(std::mem::take(&mut outcome.caption_frames)).await?;
                outcome.filter_text_area(max_text_area);
            }
            if let Some(stage) = embedder {
                let captions = outcome.captions.iter().filter(|c| c.status == "ok").map(|c| (c.clip_id.clone(), c.caption.clone())).collect();
                outcome.samples = stage.embed(std::mem::take(&mut outcome.embed_inputs), captions).await?;
            }
            anyhow::Ok(outcome)
        })
        .buffered(MODEL_QUEUE_VIDEOS);
    let mut interrupted = false;
    while let Some(outcome) = results.next().await {
        let outcome = outcome?;
        if outcome.cancelled || cancel.is_cancelled() {
            interrupted = true;
            break;
        }
        ingest.stages.commit.run(committer.add(outcome)).await?;
    }
    drop(results);
    interrupted |= cancel.is_cancelled();
    if !interrupted {
        committer.flush().await?;
    }
    ingest.stages.finish();

    let committed = committer.committed.clone();
    let failed = committed.videos.get("failed").copied().unwrap_or(0);
    let status = match (interrupted, failed) {
        (true, _) => RunStatus::Interrupted,
        (false, 0) => RunStatus::Completed,
        (false, _) => RunStatus::CompletedWithFailures,
    };
    let summary = RunSummary { status, output: output.uri().to_string(), inputs: sources.len(), resumed, committed, wall_s: started.elapsed().as_secs_f64() };
    record_run(&output, &config, &settings_hash, started_at, &summary).await?;
    Ok(summary)
}

fn nonzero_or_cores(n: usize) -> usize {
    if n == 0 { cores() } else { n }
}

async fn record_run(output: &Store, config: &Config, settings_hash: &str, started_at: Timestamp, s: &RunSummary) -> anyhow::Result<()> {
    let run_id = hash_parts([started_at.0.to_le_bytes().to_vec(), std::process::id().to_le_bytes().to_vec()])[..16].to_string();
    let c = &s.committed;
    let count = |k: &str| c.videos.get(k).copied().unwrap_or(0) as i64;
    let row = RunRow {
        run_id: run_id.clone(),
        started_at,
        finished_at: Timestamp::now(),
        status: s.status.as_str().into(),
        inputs: s.inputs as i64,
        inputs_resumed: s.resumed as i64,
        videos_ok: count("ok") + count("partial"),
        videos_failed: count("failed"),
        clips: c.clips.values().sum::<u64>() as i64,
        frames_decoded: c.frames as i64,
        wall_s: s.wall_s,
        settings_hash: settings_hash.into(),
        config: config.to_toml(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let key = format!("manifests/{}/part-{run_id}.parquet", RunRow::NAME);
    output.put(&key, encode(&[row])?).await?;
    Ok(())
}
