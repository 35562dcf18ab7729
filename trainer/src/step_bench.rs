//! Step time of the model on synthetic batches of a fixed shape: the Rust side of
//! `benches/train.py`, which times a PyTorch eager implementation of the same model on the
//! same shapes. Forward, backward and an AdamW step, as in training; the first steps (kernel
//! compilation, allocator warm-up) are not timed.

use std::time::Instant;

use burn::module::Module;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::{Distribution, ElementConversion, Tensor};
use serde::Serialize;

use crate::backend::{on_backend, OnBackend, TrainBackend};
use crate::model::{DataShape, Stdit, TextInput};
use crate::TrainConfig;

/// The batch shape to time.
#[derive(Debug, Clone, Copy)]
pub struct StepShape {
    /// Samples per batch.
    pub batch: usize,
    /// Latent [C, T, H, W].
    pub latent: [usize; 4],
    /// Text tokens and width (0 tokens: no text).
    pub text: [usize; 2],
}

/// What was measured.
#[derive(Debug, Clone, Serialize)]
pub struct StepTimes {
    /// Parameters of the model.
    pub parameters: usize,
    /// Mean seconds per step.
    pub step_s: f64,
    /// Samples per second.
    pub samples_per_s: f64,
    /// Steps timed.
    pub steps: usize,
    /// Loss of the last step (a sanity check that it computed).
    pub last_loss: f64,
}

struct Job<'a> {
    config: &'a TrainConfig,
    shape: StepShape,
    warmup: usize,
    steps: usize,
}

/// Time `steps` training steps on `shape` after `warmup` untimed ones.
///
/// # Errors
/// When the backend is not in this build or the shape does not fit the model.
pub fn time_steps(config: &TrainConfig, shape: StepShape, warmup: usize, steps: usize) -> anyhow::Result<StepTimes> {
    on_backend(&config.train, Job { config, shape, warmup, steps })
}

impl OnBackend for Job<'_> {
    type Output = StepTimes;

    fn run<B: TrainBackend>(self, device: B::Device) -> anyhow::Result<StepTimes> {
        let StepShape { batch, latent: [c, t, h, w], text: [tokens, width] } = self.shape;
        B::seed(&device, self.config.train.seed);
        let mut model = Stdit::<B>::new(&self.config.model, DataShape { channels: c, text_width: if tokens > 0 { width } else { 0 } }, &device);
        let parameters = model.num_params();
        let grid = model.grid([batch, c, t, h, w]).map_err(anyhow::Error::msg)?;
        let mut optimizer = AdamWConfig::new().init::<B, Stdit<B>>();
        let x = Tensor::<B, 5>::random([batch, c, t, h, w], Distribution::Normal(0.0, 1.0), &device);
        let target = Tensor::<B, 5>::random([batch, c, t, h, w], Distribution::Normal(0.0, 1.0), &device);
        let text = (tokens > 0).then(|| TextInput {
            embeddings: Tensor::random([batch, tokens, width], Distribution::Normal(0.0, 1.0), &device),
            pad: Tensor::<B, 2>::zeros([batch, tokens], &device).greater_elem(1.0),
            dropped: Tensor::zeros([batch, 1, 1], &device),
        });
        let ts: Vec<f32> = (0..batch).map(|i| (i as f32 + 0.5) / batch as f32).collect();
        let mut last_loss = 0.0;
        let mut started = Instant::now();
        for step in 0..self.warmup + self.steps {
            if step == self.warmup {
                started = Instant::now();
            }
            let loss = (model.forward(x.clone(), grid, &ts, text.as_ref()) - target.clone()).powi_scalar(2).mean();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optimizer.step(1e-4, model, grads);
            // Reading the loss waits for the device, so each step is timed whole.
            last_loss = f64::from(loss.into_scalar().elem::<f32>());
        }
        let step_s = started.elapsed().as_secs_f64() / self.steps.max(1) as f64;
        Ok(StepTimes { parameters, step_s, samples_per_s: batch as f64 / step_s, steps: self.steps, last_loss })
    }
}
