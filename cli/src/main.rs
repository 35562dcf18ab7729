//! The `clipline` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use clipline_pipeline::config::Config;
use clipline_pipeline::run::run;
use clipline_pipeline::runtime::{progress_display, Cancel};
use clipline_pipeline::sources::{discover, Fetcher};
use clipline_pipeline::tools::Tools;
use clipline_core::manifest::RunStatus;
use clipline_core::storage::Store;
use clipline_shard::loader::{DryRun, Plan};
use clipline_shard::Dataset;
use clipline_trainer::{train, RunOptions, TrainConfig};
use clipline_pipeline::partition::PartitionRequest;
use clipline_bench as bench;
use clipline_core::error::error_line;
use clipline_models as models;
use clipline_pipeline::{commit_cmd, plan_cmd, probe};
use clipline_shard::output::verify_output;
use logging::LogFormat;

mod atomic_file;
mod demo;
mod doctor;
mod logging;
mod malloc;
mod report;
mod sql_cmd;

/// clipline: cut raw videos into clean clips with Parquet manifests, ready for captioning,
/// embedding and training.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// No progress bars.
    #[arg(long, short, global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the ingest dataflow (resumes what an earlier run into the same output left); with
    /// --partition (or inside a Slurm array task or a Kubernetes Indexed Job), one partition of
    /// the output's plan.
    Run(RunArgs),
    /// Split the inputs into N partitions balanced by size, for workers running
    /// `clipline run --partition i/N`; the work list goes to OUTPUT/plan/.
    Plan {
        #[command(flatten)]
        job: JobArgs,
        /// Partitions (default: run.partitions of the config).
        #[arg(long)]
        partitions: Option<u32>,
    },
    /// Publish every partition of the output's plan at once; refuses, naming them, while some
    /// are missing or failed.
    Commit {
        /// Output root: a path, file://, s3://bucket/prefix.
        #[arg(long, short = 'o')]
        output: String,
    },
    /// Print what ffprobe says of a video (a path, file://, s3:// or http(s):// URL) as JSON.
    Probe {
        /// The video.
        input: String,
    },
    /// Report what clipline found: ffmpeg, ffprobe, encoders, ONNX Runtime, models, storage.
    Doctor {
        /// Also check that this output location is writable.
        #[arg(long)]
        output: Option<String>,
    },
    /// Benchmarks' clipline side (run by the scripts under benches/).
    #[command(subcommand, hide = true)]
    Bench(bench::Bench),
    /// Shard tools.
    #[command(subcommand)]
    Shards(ShardsCmd),
    /// Dry-run a training config's buckets on a dataset: samples and full batches per bucket,
    /// steps per epoch at a world size, and loud warnings for buckets that yield no batch.
    Buckets {
        /// The training config (see configs/train-tiny.toml).
        config: PathBuf,
        /// The dataset: a pipeline output (path, file://, s3://).
        #[arg(long)]
        data: String,
        /// Ranks that would read it together.
        #[arg(long, default_value_t = 1)]
        world_size: usize,
    },
    /// Train the STDiT model on a dataset's shards; resumes from the newest checkpoint in the
    /// run directory.
    Train {
        /// The training config (see configs/train-tiny.toml).
        config: PathBuf,
        /// The dataset: a pipeline output (path, file://, s3://).
        #[arg(long)]
        data: String,
        /// Where metrics.jsonl, checkpoints and diagnostics go.
        #[arg(long)]
        run_dir: PathBuf,
        /// Stop at this step (the schedule still spans train.steps of the config).
        #[arg(long)]
        steps: Option<u64>,
    },
    /// Production models clipline knows: list them, pull one into the cache.
    #[command(subcommand)]
    Models(ModelsCmd),
    /// Query the manifests with SQL: tables videos, shots, clips, captions, samples, shards and
    /// runs of one or more outputs (`clipline sql --list` shows the ready queries).
    Sql(sql_cmd::SqlArgs),
    /// Write an HTML report of an output: the ready queries' tables and charts, and a contact
    /// sheet of clips' middle frames with their captions.
    Report(report::ReportArgs),
    /// Make synthetic videos with known shots and run the pipeline on them.
    Demo {
        /// Local output directory (inputs are written to OUTPUT/inputs).
        #[arg(long, default_value = "clipline-demo")]
        output: PathBuf,
    },
}

#[derive(Subcommand)]
enum ShardsCmd {
    /// Read every committed shard, check every checksum and every sample's manifest row; exits
    /// non-zero naming each bad shard and sample.
    Verify {
        /// The output root (a path, file://, s3://bucket/prefix).
        output: String,
    },
}

#[derive(Subcommand)]
enum ModelsCmd {
    /// The known models, their sources and whether they are in the cache.
    List,
    /// Download a known model into the cache (resumes an interrupted pull; checks every file's
    /// checksum). HF_ENDPOINT and HF_TOKEN are honoured.
    Pull {
        /// The model's id (see `clipline models list`) or its hub repository.
        id: String,
        /// Use the cache only (also HF_HUB_OFFLINE=1): succeed when the model is there.
        #[arg(long)]
        offline: bool,
    },
}

/// What a job reads and writes: shared by `run` and `plan`.
#[derive(Args)]
struct JobArgs {
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
    fn config(&self) -> anyhow::Result<Config> {
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
struct RunArgs {
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
}

impl RunArgs {
    fn config(&self) -> anyhow::Result<Config> {
        let mut config = self.job.config()?;
        let r = &mut config.run;
        r.decode_concurrency = self.decode_concurrency.unwrap_or(r.decode_concurrency);
        r.extract_concurrency = self.extract_concurrency.unwrap_or(r.extract_concurrency);
        config.clips.write_clip_files &= !self.no_clip_files;
        config.clips.write_middle_frames &= !self.no_middle_frames;
        if let Some(model) = &self.caption_model {
            config.caption.model = model.clone();
        }
        Ok(config)
    }

    fn partition(&self) -> anyhow::Result<Option<PartitionRequest>> {
        match &self.partition {
            Some(text) => Ok(Some(PartitionRequest::parse(text).map_err(anyhow::Error::msg)?)),
            None => PartitionRequest::from_env(clipline_core::env::text).map_err(anyhow::Error::msg),
        }
    }
}

/// Exit code when some inputs failed (the run itself completed).
const EXIT_INPUTS_FAILED: u8 = 3;
/// Exit code of `clipline commit` when partitions are missing or failed (nothing published).
const EXIT_PARTITIONS_UNFINISHED: u8 = 4;
/// Exit code after Ctrl-C (the run resumes when started again).
const EXIT_INTERRUPTED: u8 = 130;

fn main() -> ExitCode {
    malloc::limit_arenas();
    let cli = Cli::parse();
    let progress = progress_display(cli.quiet);
    logging::init(cli.log_format, &progress);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command, &progress)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_line(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(command: Cmd, progress: &indicatif::MultiProgress) -> anyhow::Result<ExitCode> {
    match command {
        Cmd::Run(args) => run_and_report(args.config()?, args.partition()?, progress).await,
        Cmd::Plan { job, partitions } => {
            let config = job.config()?;
            let partitions = partitions.unwrap_or(config.run.partitions);
            anyhow::ensure!(partitions > 0, "how many partitions? pass --partitions N or set run.partitions in the config");
            println!("{}", plan_cmd::plan(&config, partitions, progress).await?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Commit { output } => {
            let report = commit_cmd::commit(&output, progress).await?;
            println!("{report}");
            Ok(if report.unfinished().is_empty() { ExitCode::SUCCESS } else { ExitCode::from(EXIT_PARTITIONS_UNFINISHED) })
        }
        Cmd::Probe { input } => {
            let config = Config::default();
            let tools = Tools::locate()?.with_memory_limit(config.decode.max_memory_mib);
            let source = discover(std::slice::from_ref(&input), &config.sources).await?.into_iter().next().context("nothing to probe")?;
            let spool = tempfile::tempdir()?;
            let fetched = Fetcher::new(config.sources, spool.path().to_path_buf())?.fetch(&source).await?;
            let (path, d) = (fetched.path.clone(), config.decode);
            let result = tokio::task::spawn_blocking(move || {
                probe::probe(&tools, &path, std::time::Duration::from_secs(d.probe_timeout_s), d.max_dimension, Default::default())
            })
            .await?;
            let (probe, timeline) = result.with_context(|| format!("cannot probe {input}"))?;
            let report = serde_json::json!({
                "source": source.uri(),
                "video_id": fetched.video_id,
                "size_bytes": fetched.size,
                "probe": probe,
                "container_frames": timeline.pts.len(),
                "variable_fps": timeline.is_variable(),
                "frame_duration_s": timeline.frame_duration(probe.video.avg_fps),
            });
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Bench(bench) => {
            tokio::task::spawn_blocking(move || bench::run(bench)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Shards(ShardsCmd::Verify { output }) => {
            let store = Store::open(&output).with_context(|| format!("cannot open {output}"))?;
            let bar = clipline_pipeline::runtime::stage_bar(progress, "verify", "shards");
            let verification = verify_output(&store, |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })
            .await?;
            bar.finish_and_clear();
            println!("{verification}");
            Ok(if verification.problems.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Cmd::Buckets { config, data, world_size } => {
            let config = TrainConfig::load(&config)?;
            let dataset = Dataset::open(Store::open(&data).with_context(|| format!("cannot open {data}"))?).await?;
            let selection = config.data.select(dataset.rows());
            let held_out = selection.validation.len();
            let plan = Plan::new(config.data.seed, selection.train, &config.data.batch_size);
            let dry_run = DryRun::new(&plan, world_size, config.optim.grad_accum, held_out);
            print!("{dry_run}");
            Ok(if dry_run.batches() == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Cmd::Train { config, data, run_dir, steps } => {
            let config = TrainConfig::load(&config)?;
            let options = RunOptions { data, run_dir, stop_at: steps, progress: progress.add(indicatif::ProgressBar::new(0)) };
            let handle = tokio::runtime::Handle::current();
            let summary = tokio::task::spawn_blocking(move || train(&config, &options, &handle)).await??;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Models(ModelsCmd::List) => {
            let cache = clipline_core::cache::cache_dir();
            for m in models::CATALOGUE {
                let state = m.installed(&cache).map_or("not pulled".to_string(), |d| format!("in {}", d.display()));
                println!("{:<26} {:<13} {} [{state}]", m.id, format!("{:?}", m.role), m.about);
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Models(ModelsCmd::Pull { id, offline }) => {
            let model = models::known(&id).with_context(|| {
                let ids: Vec<&str> = models::CATALOGUE.iter().map(|m| m.id).collect();
                format!("unknown model {id:?}; known: {}", ids.join(", "))
            })?;
            let bar = progress.add(indicatif::ProgressBar::new(0));
            let dir = models::pull(model, &clipline_core::cache::cache_dir(), offline || models::offline_from_env(), &bar).await?;
            bar.finish_and_clear();
            println!("{}: {}", model.id, model.entry(&dir).display());
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Sql(args) => {
            tokio::task::spawn_blocking(move || clipline_sql::detached(|runtime| sql_cmd::sql(&args, runtime))).await??;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Report(args) => {
            let progress = progress.clone();
            tokio::task::spawn_blocking(move || clipline_sql::detached(|runtime| report::report(&args, runtime, &progress))).await??;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Doctor { output } => Ok(if doctor::doctor(output.as_deref()).await { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        Cmd::Demo { output } => {
            let tools = Tools::locate()?;
            let inputs = demo::inputs_dir(&output);
            tracing::info!(dir = %inputs.display(), "writing synthetic demo videos");
            let truth = tokio::task::spawn_blocking(move || demo::write_inputs(&tools, &inputs)).await??;
            let mut config = Config::parse(include_str!("../../configs/demo.toml"), "configs/demo.toml")?;
            config.run.inputs = vec![demo::inputs_dir(&output).display().to_string()];
            config.run.output = Some(output.display().to_string());
            let code = run_and_report(config, None, progress).await?;
            let shots: usize = truth.iter().map(|t| t.segments.len()).sum();
            println!("demo: {} synthetic videos with {shots} true segments; ground truth in {}", truth.len(), demo::inputs_dir(&output).join("truth.json").display());
            Ok(code)
        }
    }
}

async fn run_and_report(config: Config, partition: Option<PartitionRequest>, progress: &indicatif::MultiProgress) -> anyhow::Result<ExitCode> {
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
    let summary = run(config, partition, progress, cancel).await?;
    println!("{summary}");
    Ok(match summary.status {
        RunStatus::Completed => ExitCode::SUCCESS,
        RunStatus::CompletedWithFailures => ExitCode::from(EXIT_INPUTS_FAILED),
        RunStatus::Interrupted => ExitCode::from(EXIT_INTERRUPTED),
    })
}
