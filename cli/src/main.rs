//! The `clipline` command line: the arguments, and which module runs each command (one module
//! per command, or per family of commands).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use clipline_bench as bench;
use clipline_core::error::error_line;
use clipline_pipeline::runtime::progress_display;
use logging::LogFormat;
use models_cmd::ModelsCmd;
use run_cmd::{JobArgs, RunArgs};
use shards_cmd::ShardsCmd;

mod atomic_file;
mod demo;
mod doctor;
mod logging;
mod malloc;
mod models_cmd;
mod probe_cmd;
mod report;
mod run_cmd;
mod shards_cmd;
mod sql_cmd;
mod train_cmd;

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
        Cmd::Run(args) => run_cmd::run_and_report(args.config()?, args.partition()?, progress).await,
        Cmd::Plan { job, partitions } => run_cmd::plan(&job, partitions, progress).await,
        Cmd::Commit { output } => run_cmd::commit(&output, progress).await,
        Cmd::Probe { input } => probe_cmd::probe(&input).await,
        Cmd::Bench(bench) => {
            tokio::task::spawn_blocking(move || bench::run(bench)).await??;
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Shards(command) => shards_cmd::shards(command, progress).await,
        Cmd::Buckets { config, data, world_size } => train_cmd::buckets(&config, &data, world_size).await,
        Cmd::Train { config, data, run_dir, steps } => train_cmd::train_run(&config, data, run_dir, steps, progress).await,
        Cmd::Models(command) => models_cmd::models(command, progress).await,
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
        Cmd::Demo { output } => demo::demo(&output, progress).await,
    }
}
