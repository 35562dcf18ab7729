//! `clipline buckets` (a training config's dry run over a dataset) and `clipline train`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clipline_core::storage::Store;
use clipline_shard::loader::{DryRun, Plan};
use clipline_shard::Dataset;
use clipline_trainer::{train, RunOptions, TrainConfig};
use indicatif::MultiProgress;

/// `clipline buckets`: samples, full batches and steps per bucket at `world_size`; fails when
/// no bucket yields a batch.
///
/// # Errors
/// When the config or the dataset cannot be read.
pub async fn buckets(config: &std::path::Path, data: &str, world_size: usize) -> anyhow::Result<ExitCode> {
    let config = TrainConfig::load(config)?;
    let dataset = Dataset::open(Store::open(data).with_context(|| format!("cannot open {data}"))?).await?;
    let selection = config.data.select(dataset.rows());
    let held_out = selection.validation.len();
    let plan = Plan::new(config.data.seed, selection.train, &config.data.batch_size);
    let dry_run = DryRun::new(&plan, world_size, config.optim.grad_accum, held_out);
    print!("{dry_run}");
    Ok(if dry_run.batches() == 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `clipline train`: train until `steps` (or the config's), resuming from the run directory.
///
/// # Errors
/// When the config, the data or a checkpoint cannot be read, or training fails.
pub async fn train_run(config: &std::path::Path, data: String, run_dir: PathBuf, steps: Option<u64>, progress: &MultiProgress) -> anyhow::Result<ExitCode> {
    let config = TrainConfig::load(config)?;
    let options = RunOptions { data, run_dir, stop_at: steps, progress: progress.add(indicatif::ProgressBar::new(0)) };
    let handle = tokio::runtime::Handle::current();
    let summary = tokio::task::spawn_blocking(move || train(&config, &options, &handle)).await??;
    println!("{summary}");
    Ok(ExitCode::SUCCESS)
}
