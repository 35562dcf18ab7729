//! The training loop: batches from the loader, rectified-flow loss, gradient accumulation,
//! global-norm clipping, AdamW on a schedule, EMA, validation, metrics, checkpoints, resume.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::{ElementConversion, Tensor};
use clipline_core::storage::Store;
use clipline_shard::loader::{Loader, LoaderMetrics, Rank};
use clipline_shard::Sample;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use tokio::runtime::Handle;

use crate::backend::{on_backend, AttentionBackend, OnBackend, TrainBackend};
use crate::batch::gather;
use crate::checkpoint::{self, CheckpointState};
use crate::collective::{self, Collective};
use crate::config::TrainConfig;
use crate::data::{self, RunData};
use crate::grad_sync;
use crate::metrics_log::MetricsLog;
use crate::model::{DataShape, Stdit};
use crate::objective::noisy_and_target;
use crate::watchdog::{Phase, Watchdog};

/// How a run is started.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The dataset: a pipeline output directory or URI.
    pub data: String,
    /// Where metrics, checkpoints (unless configured elsewhere) and diagnostics go.
    pub run_dir: PathBuf,
    /// Stop at this step (the schedule still spans `train.steps`); default `train.steps`.
    pub stop_at: Option<u64>,
    /// The progress bar to drive (hidden for none).
    pub progress: ProgressBar,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// The step it started from (0, or a checkpoint's).
    pub resumed_from: u64,
    /// The step it stopped at.
    pub step: u64,
    /// Loss of the first step it ran.
    pub first_loss: Option<f64>,
    /// Loss of the last step.
    pub last_loss: Option<f64>,
    /// Loader totals.
    pub loader: LoaderMetrics,
}

/// Train as `config` says. Blocks; call it outside async code, with a handle to a runtime for
/// storage calls.
///
/// # Errors
/// On bad data or config, storage failures, a checkpoint that does not fit, or a loader failure.
pub fn train(config: &TrainConfig, options: &RunOptions, runtime: &Handle) -> anyhow::Result<Summary> {
    let rank = Rank::from_env()?;
    std::fs::create_dir_all(&options.run_dir).map_err(|e| anyhow::anyhow!("cannot create run directory {}: {e}", options.run_dir.display()))?;
    let data = data::open(&options.data, &config.data, runtime)?;
    let ranks = if rank.world_size > 1 {
        let wait = Duration::from_secs_f64(config.watchdog.step_timeout_s.max(60.0));
        Some(Collective::join(rank, collective::meeting_point()?, wait, Duration::from_secs_f64(config.watchdog.step_timeout_s))?)
    } else {
        None
    };
    on_backend(&config.train, Run { config, options, data, runtime, rank, ranks })
}

/// A training run, generic over the backend.
struct Run<'a> {
    config: &'a TrainConfig,
    options: &'a RunOptions,
    data: RunData,
    runtime: &'a Handle,
    rank: Rank,
    ranks: Option<Collective>,
}

impl OnBackend for Run<'_> {
    type Output = Summary;

    fn run<B: TrainBackend>(self, device: B::Device) -> anyhow::Result<Summary> {
        run::<B>(self, device)
    }
}

/// Where a run starts: fresh, from its own checkpoint, or from a previous stage's weights.
struct Start<B: TrainBackend> {
    step: u64,
    model: Stdit<B>,
    ema: Option<Stdit<B::InnerBackend>>,
    optimizer_from: Option<checkpoint::Fetched>,
    loader: Option<clipline_shard::loader::LoaderState>,
}

fn start<B: TrainBackend>(config: &TrainConfig, shape: DataShape, ckpt: &Store, device: &B::Device, runtime: &Handle) -> anyhow::Result<Start<B>> {
    B::seed(device, config.train.seed);
    let model = Stdit::<B>::new(&config.model, shape, device);
    let ema = (config.train.ema_decay > 0.0).then(|| model.valid());
    let (fetched, resuming) = match runtime.block_on(checkpoint::newest(ckpt))? {
        Some(own) => (own, true),
        None => match &config.train.init_from {
            Some(file) if file.ends_with(".safetensors") => {
                let model = runtime.block_on(checkpoint::weights_from(file, model))?;
                tracing::info!(from = %file, "starting from safetensors weights");
                let ema = ema.map(|_| model.valid());
                return Ok(Start { step: 0, model, ema, optimizer_from: None, loader: None });
            }
            Some(previous) => {
                let store = Store::open(&format!("{}/checkpoints", previous.trim_end_matches('/')))?;
                let theirs = runtime.block_on(checkpoint::newest(&store))?.ok_or_else(|| anyhow::anyhow!("train.init_from {previous}: no complete checkpoint under {}", store.uri()))?;
                (theirs, false)
            }
            None => return Ok(Start { step: 0, model, ema, optimizer_from: None, loader: None }),
        },
    };
    let saved = &fetched.state;
    let same_model = saved.config.model == config.model && saved.data_shape == shape;
    if resuming && !(same_model && saved.config.data == config.data) {
        anyhow::bail!("the checkpoint at {} was made with different [model] or [data] settings or data; resume with its config, or start a new --run-dir (set train.init_from to start from its weights)", ckpt.uri_of(&format!("step-{:09}", saved.step)));
    }
    if !same_model {
        anyhow::bail!("train.init_from: the previous stage's [model] settings or data shape differ from this stage's");
    }
    let model = fetched.model(model, device)?;
    let ema = ema.map(|e| fetched.ema(e, device)).transpose()?;
    if !resuming {
        tracing::info!(from = config.train.init_from.as_deref(), step = saved.step, "starting from the previous stage's weights");
        return Ok(Start { step: 0, model, ema, optimizer_from: None, loader: None });
    }
    tracing::info!(step = saved.step, checkpoint = ckpt.uri(), "resuming");
    let (step, loader) = (saved.step, Some(saved.loader.clone()));
    Ok(Start { step, model, ema, optimizer_from: Some(fetched), loader })
}

fn run<B: TrainBackend>(run: Run<'_>, device: B::Device) -> anyhow::Result<Summary> {
    let Run { config, options, data, runtime, rank, mut ranks } = run;
    let RunData { dataset, plan, shape, validation } = data;
    // Rank 0 writes checkpoints, metrics and the progress bar; every rank computes the same
    // model from the same summed gradients.
    let leader = rank.rank == 0;
    let ckpt_uri = config.checkpoint.dir.clone().unwrap_or_else(|| options.run_dir.join("checkpoints").display().to_string());
    let ckpt = Store::open(&ckpt_uri)?;
    let Start { mut step, mut model, mut ema, optimizer_from, loader } = start::<B>(config, shape, &ckpt, &device, runtime)?;
    let resumed_from = step;
    let o = &config.optim;
    let mut optimizer = AdamWConfig::new().with_beta_1(o.betas[0]).with_beta_2(o.betas[1]).with_epsilon(o.eps).with_weight_decay(o.weight_decay).init::<B, Stdit<B>>();
    if let Some(fetched) = &optimizer_from {
        optimizer = fetched.optimizer(optimizer, &device)?;
    }
    let mut loader = Loader::start(dataset, plan, rank, loader.as_ref(), &config.data.loader)?;
    let mut log = leader.then(|| MetricsLog::open(&options.run_dir, step)).transpose()?;
    let watchdog = Watchdog::start(Duration::from_secs_f64(config.watchdog.step_timeout_s), Duration::from_secs_f64(config.watchdog.data_timeout_s), &options.run_dir, rank);
    let total = config.train.steps;
    let stop = options.stop_at.unwrap_or(total).min(total);
    let hidden = ProgressBar::hidden();
    let bar = if leader { &options.progress } else { &hidden };
    // Each rank's share of the global batch: the loss is scaled so that the sum over ranks and
    // accumulation steps is the mean, as one rank accumulating them all computes it.
    let share = (o.grad_accum * rank.world_size) as f64;
    bar.set_length(stop);
    bar.set_position(step);
    bar.set_style(ProgressStyle::with_template("train {bar:30} {pos}/{len} steps [{elapsed} < {eta}] {msg}").expect("valid template"));
    let (mut first_loss, mut last_loss) = (None, None);
    let mut window = (Instant::now(), loader.metrics());
    // Time spent summing gradients across ranks (waiting for the slowest included) since the last log line.
    let mut syncing = Duration::ZERO;
    while step < stop {
        let lr = config.schedule.lr(o.lr, step, total);
        let mut accumulator = GradientsAccumulator::<Stdit<B>>::new();
        let (mut loss_sum, mut batches) = (0.0, 0);
        for _ in 0..o.grad_accum {
            watchdog.enter(Phase::Data, step, || format!("{:?}", loader.metrics()));
            let batch = loader.next_batch()?;
            watchdog.enter(Phase::Step, step, || format!("bucket {} batch {}", batch.bucket, batch.global));
            if batch.samples.is_empty() {
                continue;
            }
            let (loss, scaled) = batch_loss(&model, config, shape, &batch.samples, batch.global, share, &device)?;
            accumulator.accumulate(&model, GradientsParams::from_grads(scaled.backward(), &model));
            loss_sum += loss;
            batches += 1;
        }
        let mut grads = accumulator.grads();
        if let Some(ranks) = ranks.as_mut() {
            watchdog.enter(Phase::Step, step, || format!("summing gradients over {} ranks", rank.world_size));
            let mut totals = [loss_sum as f32, batches as f32];
            let began = Instant::now();
            let summed = grad_sync::all_reduce(&model, &mut grads, &mut totals, ranks);
            syncing += began.elapsed();
            if let Err(e) = summed {
                watchdog.rank_failed(e.rank(), &e);
            }
            (loss_sum, batches) = (f64::from(totals[0]), totals[1] as u32);
        }
        let grad_norm = crate::grad_clip::clip_global_norm(&model, &mut grads, o.grad_clip);
        if batches > 0 {
            model = optimizer.step(lr, model, grads);
        }
        if batches > 0 {
            ema = ema.map(|e| crate::ema::update(e, &model.valid(), config.train.ema_decay));
        }
        step += 1;
        watchdog.enter(Phase::Other, step, String::new);
        let loss = (batches > 0).then(|| loss_sum / f64::from(batches));
        first_loss = first_loss.or(loss);
        last_loss = loss.or(last_loss);
        if let Some(log) = log.as_mut().filter(|_| step % config.train.log_every == 0 || step == stop) {
            let now = loader.metrics();
            let (since, before) = window;
            let wall = since.elapsed().as_secs_f64().max(1e-9);
            let mut line = json!({
                "step": step, "loss": loss, "lr": lr, "grad_norm": grad_norm, "epoch": loader.epoch(),
                "samples": now.samples, "skipped": now.skipped,
                "samples_per_s": (now.samples - before.samples) as f64 / wall,
                "mb_per_s": (now.bytes - before.bytes) as f64 / 1e6 / wall,
                "data_wait_pct": 100.0 * (now.waited - before.waited).as_secs_f64() / wall,
            });
            if rank.world_size > 1 {
                line["ranks"] = json!(rank.world_size);
                line["sync_pct"] = json!(100.0 * syncing.as_secs_f64() / wall);
                syncing = Duration::ZERO;
            }
            if config.train.val_every > 0 && (step % config.train.val_every == 0 || step == stop) && !validation.is_empty() {
                line["val_loss"] = json!(validation_loss(&model.valid(), config, shape, &validation, &device)?);
                if let Some(e) = &ema {
                    line["val_loss_ema"] = json!(validation_loss(e, config, shape, &validation, &device)?);
                }
            }
            log.write(&line)?;
            bar.set_message(format!("loss {:.4} · {:.1} samples/s · data wait {:.1}%", loss.unwrap_or(f64::NAN), line["samples_per_s"].as_f64().unwrap_or(0.0), line["data_wait_pct"].as_f64().unwrap_or(0.0)));
            window = (Instant::now(), now);
        }
        bar.set_position(step);
        if leader && (step % config.checkpoint.every == 0 || step == stop) {
            let state = CheckpointState { step, loader: loader.state(), data_shape: shape, config: config.clone(), rng: "none: timesteps, caption dropout and noise are keyed by (train.seed, global batch)".into() };
            runtime.block_on(checkpoint::save(&ckpt, &state, &model, &optimizer, ema.as_ref(), config.checkpoint.keep))?;
        }
    }
    bar.finish_and_clear();
    tracing::info!(step, rank = rank.rank, checkpoints = ckpt.uri(), "training stopped");
    Ok(Summary { resumed_from, step, first_loss, last_loss, loader: loader.metrics() })
}

/// The loss of one batch, and that loss divided by `share` (the batches of a global step), to
/// back-propagate.
fn batch_loss<B: TrainBackend>(model: &Stdit<B>, config: &TrainConfig, shape: DataShape, samples: &[Sample], global: u64, share: f64, device: &B::Device) -> anyhow::Result<(f64, Tensor<B, 1>)> {
    let host = gather(samples, shape).map_err(|e| anyhow::anyhow!("batch {global}: {e}"))?;
    let grid = model.grid(host.shape).map_err(|e| anyhow::anyhow!("batch {global}: {e}; choose [model] patch to divide the latents"))?;
    let draws = config.objective.draws(config.train.seed, global, samples.len());
    let dims = host.shape;
    let (latents, text) = host.into_device::<B>(shape, &draws.dropped, device);
    let (noisy, target) = noisy_and_target(latents, &draws.t, draws.noise_seed);
    let loss = (model.forward(noisy, grid, &draws.t, text.as_ref()) - target).powi_scalar(2).mean();
    let value = f64::from(loss.clone().into_scalar().elem::<f32>());
    if !value.is_finite() {
        anyhow::bail!("batch {global} (latents {dims:?}): the loss is {value}; lower optim.lr or raise optim.grad_accum");
    }
    Ok((value, loss / share))
}

/// Mean loss over the held-out samples at the configured timesteps, with fixed noise and
/// their captions.
fn validation_loss<B: AttentionBackend>(model: &Stdit<B>, config: &TrainConfig, shape: DataShape, samples: &[Sample], device: &B::Device) -> anyhow::Result<f64> {
    let mut total = 0.0;
    let mut n = 0;
    for (i, sample) in samples.iter().enumerate() {
        let host = gather(std::slice::from_ref(sample), shape).map_err(|e| anyhow::anyhow!("validation: {e}"))?;
        let grid = model.grid(host.shape).map_err(|e| anyhow::anyhow!("validation sample {}: {e}", sample.id()))?;
        let (latents, text) = host.into_device::<B>(shape, &[false], device);
        for (k, &t) in config.objective.val_timesteps.iter().enumerate() {
            let seed = clipline_core::rng::SplitMix64::keyed(config.train.seed, &format!("validation {i} {k}")).next_u64();
            let (noisy, target) = noisy_and_target(latents.clone(), &[t], seed);
            let loss = (model.forward(noisy, grid, &[t], text.as_ref()) - target).powi_scalar(2).mean();
            total += f64::from(loss.into_scalar().elem::<f32>());
            n += 1;
        }
    }
    Ok(total / f64::from(n.max(1)))
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let loss = |l: Option<f64>| l.map_or_else(|| "-".into(), |l| format!("{l:.4}"));
        let wall = self.loader.elapsed.as_secs_f64().max(1e-9);
        write!(
            f,
            "train: steps {}..{}, loss {} -> {}; {} samples ({} skipped), {:.1} samples/s, {:.2} MB/s, data wait {:.1}% of the time",
            self.resumed_from,
            self.step,
            loss(self.first_loss),
            loss(self.last_loss),
            self.loader.samples,
            self.loader.skipped,
            self.loader.samples_per_s(),
            self.loader.mb_per_s(),
            100.0 * self.loader.waited.as_secs_f64() / wall
        )
    }
}
