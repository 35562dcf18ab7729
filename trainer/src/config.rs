//! The training config: one TOML file with the data, model, optimiser, schedule, objective,
//! checkpoint and watchdog sections. Stages (image pre-training, video pre-training,
//! high-quality fine-tuning) are configs whose `init_from` names the previous stage's run.

use std::path::Path;

use clipline_shard::loader::DataConfig;
use serde::{Deserialize, Serialize};

use crate::model::ModelConfig;
use crate::schedule::ScheduleConfig;

/// A training run's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Which samples, batched how.
    pub data: DataConfig,
    /// The transformer's size.
    pub model: ModelConfig,
    /// AdamW and gradient handling.
    pub optim: OptimConfig,
    /// The learning-rate schedule.
    pub schedule: ScheduleConfig,
    /// The rectified-flow objective.
    pub objective: ObjectiveConfig,
    /// Steps, logging, validation, EMA, device.
    pub train: LoopConfig,
    /// Where and how often checkpoints are saved.
    pub checkpoint: CheckpointConfig,
    /// Limits on a step and on a wait for data.
    pub watchdog: WatchdogConfig,
}

/// `[optim]`: AdamW with global-norm clipping and gradient accumulation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimConfig {
    /// Peak learning rate.
    pub lr: f64,
    /// Adam's beta1 and beta2.
    pub betas: [f32; 2],
    /// Adam's epsilon.
    pub eps: f32,
    /// Decoupled weight decay.
    pub weight_decay: f32,
    /// Largest global gradient norm (0: no clipping).
    pub grad_clip: f64,
    /// Batches whose gradients add up to one optimiser step.
    pub grad_accum: usize,
}

impl Default for OptimConfig {
    fn default() -> Self {
        Self { lr: 1e-4, betas: [0.9, 0.999], eps: 1e-8, weight_decay: 0.0, grad_clip: 1.0, grad_accum: 1 }
    }
}

/// `[objective]`: rectified flow with logit-normal timesteps (Open-Sora 1.2+, SD3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    /// Mean of the normal whose sigmoid is the timestep.
    pub logit_mean: f64,
    /// Its standard deviation.
    pub logit_std: f64,
    /// Probability that a sample's caption is replaced by the learned null caption.
    pub text_dropout: f64,
    /// Timesteps at which the validation loss is measured.
    pub val_timesteps: Vec<f32>,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self { logit_mean: 0.0, logit_std: 1.0, text_dropout: 0.1, val_timesteps: vec![0.1, 0.3, 0.5, 0.7, 0.9] }
    }
}

/// `[train]`: the loop.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopConfig {
    /// Optimiser steps of the run (the schedule spans them).
    pub steps: u64,
    /// Seed of the weights, the noise and the timesteps.
    pub seed: u64,
    /// Steps between metrics lines.
    pub log_every: u64,
    /// Steps between validation losses (0: never).
    pub val_every: u64,
    /// EMA decay per step (0: no EMA).
    pub ema_decay: f64,
    /// Where the model trains.
    pub device: Device,
    /// What it computes in.
    pub precision: Precision,
    /// Which CPU backend trains on `device = "cpu"`.
    pub cpu_backend: CpuBackend,
    /// Where this run's weights start: a previous stage's run directory (its newest
    /// checkpoint), or a `.safetensors` file (path or URI) named as the PyTorch twin names its
    /// parameters, such as a checkpoint's `model.safetensors` or weights trained in PyTorch.
    pub init_from: Option<String>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self { steps: 1000, seed: 0, log_every: 10, val_every: 0, ema_decay: 0.999, device: Device::Cpu, precision: Precision::F32, cpu_backend: CpuBackend::Auto, init_from: None }
    }
}

/// `train.device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// The host's cores (the backend `cpu_backend` names).
    Cpu,
    /// An NVIDIA GPU through CubeCL (a build with the `cuda` feature).
    Cuda,
}

/// `train.precision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Weights, activations and gradients in f32.
    F32,
    /// Everything in bf16, CUDA only: burn has no autocast, so there are no f32 master weights,
    /// and CPUs without bf16 arithmetic (AVX-512 BF16, AMX) would only be slower.
    Bf16,
}

/// `train.cpu_backend`: which burn backend computes on the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CpuBackend {
    /// LibTorch where the build has it (the fastest here), else Flex.
    Auto,
    /// burn's own CPU backend: pure Rust, in every build.
    Flex,
    /// PyTorch's libtorch through burn-tch, with its fused attention kernels (a build with the
    /// `libtorch` feature).
    Libtorch,
}

/// `[checkpoint]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// Steps between checkpoints (the last step is always saved).
    pub every: u64,
    /// Checkpoints kept; older ones are deleted.
    pub keep: usize,
    /// Where they go: a path or `s3://` URI; default `<run dir>/checkpoints`.
    pub dir: Option<String>,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self { every: 500, keep: 3, dir: None }
    }
}

/// `[watchdog]`: a hung step or data wait stops the run with diagnostics instead of idling GPUs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchdogConfig {
    /// Longest optimiser step, seconds.
    pub step_timeout_s: f64,
    /// Longest wait for one batch, seconds.
    pub data_timeout_s: f64,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        Self { step_timeout_s: 1800.0, data_timeout_s: 600.0 }
    }
}

impl TrainConfig {
    /// Read and check a config file.
    ///
    /// # Errors
    /// When it cannot be read or parsed, or its settings do not fit together.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read training config {}: {e}", path.display()))?;
        let config: Self = toml::from_str(&text).map_err(|e| anyhow::anyhow!("training config {}: {e}", path.display()))?;
        config.check().map_err(|e| anyhow::anyhow!("training config {}: {e}", path.display()))?;
        Ok(config)
    }

    /// Check the settings fit together.
    ///
    /// # Errors
    /// Naming the setting that is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.model.check()?;
        self.schedule.check(self.train.steps)?;
        if self.optim.grad_accum == 0 || self.train.log_every == 0 || self.checkpoint.every == 0 || self.checkpoint.keep == 0 {
            return Err("optim.grad_accum, train.log_every, checkpoint.every and checkpoint.keep must be positive".into());
        }
        if !(0.0..1.0).contains(&self.train.ema_decay) || !(0.0..=1.0).contains(&self.objective.text_dropout) {
            return Err("train.ema_decay must be in [0, 1) and objective.text_dropout in [0, 1]".into());
        }
        if let Some(key) = self.data.batch_size.zero_keys().first() {
            return Err(format!("data.batch_size.{key} is 0; a bucket needs at least 1"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_training_config_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
        let mut found = 0;
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if name.starts_with("train-") && name.ends_with(".toml") {
                TrainConfig::load(&entry.path()).unwrap();
                found += 1;
            }
        }
        assert!(found >= 4, "the tiny config and three stages");
    }

    #[test]
    fn mistakes_are_named() {
        let bad = |toml_text: &str| toml::from_str::<TrainConfig>(toml_text).map_err(|e| e.to_string()).and_then(|c| c.check()).unwrap_err();
        assert!(bad("[model]\nhidden = 30\nheads = 4").contains("hidden 30"));
        assert!(bad("[data.batch_size]\ndefault = 0").contains("data.batch_size.default is 0"));
        assert!(bad("[train]\nsteps = 10\n[schedule]\nwarmup_steps = 20").contains("warmup_steps 20"));
        assert!(bad("[optim]\nlearning_rate = 1").contains("unknown field"));
    }
}
