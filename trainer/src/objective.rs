//! Rectified flow: x_t = (1 - t) x_0 + t ε, the model predicts the velocity ε - x_0, with
//! t = sigmoid(n), n normal (logit-normal timesteps). Timesteps and caption dropout come from
//! a stream keyed by (seed, global batch, position) and the noise from the backend's generator
//! seeded by (seed, global batch), so a batch gets the same draws whenever and on whichever
//! rank it is trained: that is what makes a resumed run repeat an uninterrupted one.

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use clipline_core::rng::SplitMix64;

use crate::config::ObjectiveConfig;

/// The random draws of one batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Draws {
    /// Timestep per sample, in (0, 1).
    pub t: Vec<f32>,
    /// Whether each sample's caption is dropped.
    pub dropped: Vec<bool>,
    /// Seed of the noise.
    pub noise_seed: u64,
}

/// A standard normal from two uniforms (Box–Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl ObjectiveConfig {
    /// The draws for `samples` samples of global batch `global`.
    pub fn draws(&self, seed: u64, global: u64, samples: usize) -> Draws {
        let mut t = Vec::with_capacity(samples);
        let mut dropped = Vec::with_capacity(samples);
        for i in 0..samples {
            let mut rng = SplitMix64::keyed(seed, &format!("batch {global} sample {i}"));
            let n = self.logit_mean + self.logit_std * normal(&mut rng);
            t.push((1.0 / (1.0 + (-n).exp())) as f32);
            dropped.push(rng.next_f64() < self.text_dropout);
        }
        Draws { t, dropped, noise_seed: SplitMix64::keyed(seed, &format!("noise {global}")).next_u64() }
    }
}

/// The noisy input and the velocity target for clean latents `x0` at timesteps `t`.
pub fn noisy_and_target<B: Backend>(x0: Tensor<B, 5>, t: &[f32], noise_seed: u64) -> (Tensor<B, 5>, Tensor<B, 5>) {
    let device = x0.device();
    B::seed(&device, noise_seed);
    let noise = Tensor::<B, 5>::random(x0.dims(), Distribution::Normal(0.0, 1.0), &device);
    let t = Tensor::<B, 1>::from_floats(t, &device).reshape([t.len(), 1, 1, 1, 1]);
    let noisy = x0.clone() * (t.clone().neg() + 1.0) + noise.clone() * t;
    (noisy, noise - x0)
}
