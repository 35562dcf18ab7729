//! `clipline run`, `clipline plan` and `clipline commit`: the ingest job, alone or in
//! partitions, and how it ends (the exit codes batch schedulers read).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use clipline_core::manifest::RunStatus;
use clipline_pipeline::config::Config;
use clipline_pipeline::detect::DetectMethod;
use clipline_pipeline::partition::PartitionRequest;
use clipline_pipeline::run::run;
use clipline_pipeline::runtime::{Bars, Cancel};
use clipline_pipeline::{commit_cmd, plan_cmd};
use indicatif::MultiProgress;

/// What a job reads and writes: shared by `run` and `plan`.
#[derive(Args)]
pub struct JobArgs {
    /// A TOML config (defaults are used when absent; see configs/pipeline.toml).
    config: Option<PathBuf>,
    /// Inputs: files, directories, globs, s3:// or file:// prefixes, http(s):// URLs.
    #[arg(long = "input", short = 'i')]
    inputs: Vec<String>,
    /// Output root: a path, file://, s3://bucket/prefix.
    #[arg(long, short = 'o')]
    output: Option<String>,
    /// Videos per manifest commit.
    #[arg(long)]
    commit_every: Option<usize>,
}

impl JobArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        if !self.inputs.is_empty() {
            config.run.inputs = self.inputs.clone();
        }
        if self.output.is_some() {
            config.run.output = self.output.clone();
        }
        config.run.commit_every = self.commit_every.unwrap_or(config.run.commit_every).max(1);
        Ok(config)
    }
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Process partition i of N (from 0) of the output's plan (see `clipline plan`); taken from
    /// SLURM_ARRAY_TASK_ID/SLURM_ARRAY_TASK_COUNT or JOB_COMPLETION_INDEX when absent.
    #[arg(long, value_name = "i/N")]
    partition: Option<String>,
    /// Videos decoded at once.
    #[arg(long)]
    decode_concurrency: Option<usize>,
    /// ffmpeg extraction processes at once.
    #[arg(long)]
    extract_concurrency: Option<usize>,
    /// Do not write clip files.
    #[arg(long)]
    no_clip_files: bool,
    /// Do not write middle-frame images.
    #[arg(long)]
    no_middle_frames: bool,
    /// Caption clips with this model: a model directory, a pulled model's id (clipline models
    /// list) or `bundled:tiny-captioner` (replaces `caption.model`).
    #[arg(long, value_name = "MODEL")]
    caption_model: Option<String>,
    /// Find shots with this detector (replaces `detect.method`): `combined` (TransNetV2 and the
    /// adaptive detector), `transnetv2`, or `adaptive` (no model, hard cuts and blank fades only).
    #[arg(long, value_name = "METHOD")]
    detect: Option<DetectMethod>,
}

impl RunArgs {
    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = self.job.config()?;
        let r = &mut config.run;
        r.decode_concurrency = self.decode_concurrency.unwrap_or(r.decode_concurrency);
        r.extract_concurrency = self.extract_concurrency.unwrap_or(r.extract_concurrency);
        config.clips.write_clip_files &= !self.no_clip_files;
        config.clips.write_middle_frames &= !self.no_middle_frames;
        if let Some(model) = &self.caption_model {
            config.caption.model = model.clone();
        }
        if let Some(method) = self.detect {
            config.detect.method = method;
        }
        Ok(config)
    }

    pub fn partition(&self) -> anyhow::Result<Option<PartitionRequest>> {
        match &self.partition {
            Some(text) => Ok(Some(PartitionRequest::parse(text).map_err(anyhow::Error::msg)?)),
            None => PartitionRequest::from_env(clipline_core::env::text).map_err(anyhow::Error::msg),
        }
    }
}

/// Exit code when some inputs failed (the run itself completed).
pub const EXIT_INPUTS_FAILED: u8 = 3;
/// Exit code of `clipline commit` when partitions are missing or failed (nothing published).
pub const EXIT_PARTITIONS_UNFINISHED: u8 = 4;
/// Exit code after Ctrl-C (the run resumes when started again).
pub const EXIT_INTERRUPTED: u8 = 130;

/// `clipline plan`: deal the inputs to `partitions` (default: `run.partitions`).
///
/// # Errors
/// When no partition count is given, or the plan cannot be made or written.
pub async fn plan(job: &JobArgs, partitions: Option<u32>, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    let config = job.config()?;
    let partitions = partitions.unwrap_or(config.run.partitions);
    anyhow::ensure!(partitions > 0, "how many partitions? pass --partitions N or set run.partitions in the config");
    println!("{}", plan_cmd::plan(&config, partitions, progress).await?);
    Ok(ExitCode::SUCCESS)
}

/// `clipline commit`: publish every partition, or say which are unfinished.
///
/// # Errors
/// When the output cannot be read or written.
pub async fn commit(output: &str, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    let report = commit_cmd::commit(output, progress).await?;
    println!("{report}");
    Ok(if report.unfinished().is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTITIONS_UNFINISHED) })
}

/// Run `config` (or one partition of its output's plan) with Ctrl-C stopping it cleanly, print
/// the summary, and turn how it ended into the exit code.
///
/// # Errors
/// When the run fails.
pub async fn run_and_report(config: Config, partition: Option<PartitionRequest>, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    let cancel = Cancel::default();
    let on_interrupt = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            tracing::warn!("interrupted: stopping after the work in flight; run the same command again to resume");
            on_interrupt.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(EXIT_INTERRUPTED as i32);
            }
        }
    });
    let summary = run(config, partition, Arc::new(Bars::new(progress)), cancel).await?;
    println!("{summary}");
    Ok(match summary.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::CompletedWithFailures => ExitCode::from(EXIT_INPUTS_FAILED),
        RunStatus::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
    })
}
