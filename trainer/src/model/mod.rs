//! An STDiT-style latent diffusion transformer (Open-Sora's spatial-temporal DiT).
//!
//! The latent [batch, C, T, H, W] is cut into 3-D patches, one token each, with fixed
//! sinusoidal positions in space and time. Each block runs spatial self-attention (tokens of
//! one frame), temporal self-attention (one position across frames), cross-attention to the
//! caption's text embedding, and an MLP. The timestep conditions every block by adaLN-zero:
//! shift, scale and gate vectors from one shared projection of the timestep embedding plus a
//! per-block table (PixArt's adaLN-single, which keeps a 28-block model from carrying 28 such
//! projections), all zero at initialisation so every block starts as the identity.

mod attention;
mod embed;

use burn::module::{Module, Param};
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::activation::{gelu, silu};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};
use serde::{Deserialize, Serialize};

use crate::backend::AttentionBackend;

use attention::Attention;
pub use embed::Grid;
use embed::{positions, PatchEmbed, TimestepEmbed};

/// The `[model]` section: the transformer's size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Token width.
    pub hidden: usize,
    /// Blocks.
    pub depth: usize,
    /// Attention heads (must divide `hidden`).
    pub heads: usize,
    /// MLP width as a multiple of `hidden`.
    pub mlp_ratio: f64,
    /// Patch size over (T, H, W) of the latent.
    pub patch: [usize; 3],
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self { hidden: 1152, depth: 28, heads: 16, mlp_ratio: 4.0, patch: [1, 2, 2] }
    }
}

impl ModelConfig {
    /// Check the sizes fit together.
    ///
    /// # Errors
    /// Naming the setting that is wrong.
    pub fn check(&self) -> Result<(), String> {
        if self.hidden == 0 || self.depth == 0 || self.heads == 0 || !self.hidden.is_multiple_of(self.heads) {
            return Err(format!("[model] hidden {} must be a positive multiple of heads {} and depth {} positive", self.hidden, self.heads, self.depth));
        }
        if !self.hidden.is_multiple_of(4) || self.patch.contains(&0) {
            return Err(format!("[model] hidden {} must be a multiple of 4 and patch {:?} positive", self.hidden, self.patch));
        }
        Ok(())
    }
}

/// The data-dependent sizes: latent channels and text-embedding width (0: no captions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataShape {
    /// Latent channels.
    pub channels: usize,
    /// Width of the text embedding; 0 when the dataset has none.
    pub text_width: usize,
}

/// The caption side of a batch.
#[derive(Debug, Clone)]
pub struct TextInput<B: Backend> {
    /// Embeddings [batch, tokens, width], zero-padded.
    pub embeddings: Tensor<B, 3>,
    /// [batch, tokens], true at padding.
    pub pad: Tensor<B, 2, Bool>,
    /// [batch, 1, 1]: 1 where the caption is dropped for classifier-free guidance.
    pub dropped: Tensor<B, 3>,
}

/// Number of modulation vectors per block: shift, scale, gate for spatial, temporal, MLP.
const MODULATIONS: usize = 9;

/// One spatial-temporal block.
#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    norm_spatial: LayerNorm<B>,
    spatial: Attention<B>,
    norm_temporal: LayerNorm<B>,
    temporal: Attention<B>,
    norm_cross: LayerNorm<B>,
    cross: Option<Attention<B>>,
    norm_mlp: LayerNorm<B>,
    fc1: Linear<B>,
    fc2: Linear<B>,
    table: Param<Tensor<B, 2>>,
}

fn modulate<B: Backend>(x: Tensor<B, 3>, shift: Tensor<B, 3>, scale: Tensor<B, 3>) -> Tensor<B, 3> {
    x * (scale + 1.0) + shift
}

impl<B: AttentionBackend> Block<B> {
    fn new(config: &ModelConfig, text: usize, device: &B::Device) -> Self {
        let d = config.hidden;
        let mlp = (d as f64 * config.mlp_ratio).round() as usize;
        Self {
            norm_spatial: LayerNormConfig::new(d).init(device),
            spatial: Attention::new(d, d, config.heads, device),
            norm_temporal: LayerNormConfig::new(d).init(device),
            temporal: Attention::new(d, d, config.heads, device),
            norm_cross: LayerNormConfig::new(d).init(device),
            cross: (text > 0).then(|| Attention::new(d, d, config.heads, device)),
            norm_mlp: LayerNormConfig::new(d).init(device),
            fc1: LinearConfig::new(d, mlp).init(device),
            fc2: LinearConfig::new(mlp, d).init(device),
            table: Initializer::Zeros.init([MODULATIONS, d], device),
        }
    }

    fn forward(&self, x: Tensor<B, 3>, grid: Grid, modulation: Tensor<B, 3>, text: Option<(&Tensor<B, 3>, &Tensor<B, 2, Bool>)>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let m = modulation + self.table.val().unsqueeze_dim::<3>(0);
        let part = |i: usize| m.clone().narrow(1, i, 1);
        // Spatial: the tokens of each frame attend to each other.
        let h = modulate(self.norm_spatial.forward(x.clone()), part(0), part(1)).reshape([batch * grid.t, grid.spatial(), dim]);
        let h = self.spatial.forward_self(h).reshape([batch, tokens, dim]);
        let x = x + part(2) * h;
        // Temporal: each position attends across frames.
        let h = modulate(self.norm_temporal.forward(x.clone()), part(3), part(4)).reshape([batch, grid.t, grid.spatial(), dim]).swap_dims(1, 2).reshape([batch * grid.spatial(), grid.t, dim]);
        let h = self.temporal.forward_self(h).reshape([batch, grid.spatial(), grid.t, dim]).swap_dims(1, 2).reshape([batch, tokens, dim]);
        let x = x + part(5) * h;
        // Cross: every token attends to the caption.
        let x = match (&self.cross, text) {
            (Some(cross), Some((y, pad))) => x.clone() + cross.forward(self.norm_cross.forward(x), y.clone(), Some(pad.clone())),
            _ => x,
        };
        let h = modulate(self.norm_mlp.forward(x.clone()), part(6), part(7));
        let h = self.fc2.forward(gelu(self.fc1.forward(h)));
        x + part(8) * h
    }
}

/// The diffusion transformer.
#[derive(Module, Debug)]
pub struct Stdit<B: Backend> {
    patch: PatchEmbed<B>,
    time: TimestepEmbed<B>,
    time_modulation: Linear<B>,
    text_fc1: Option<Linear<B>>,
    text_fc2: Option<Linear<B>>,
    null_text: Option<Param<Tensor<B, 2>>>,
    blocks: Vec<Block<B>>,
    final_norm: LayerNorm<B>,
    final_modulation: Linear<B>,
    final_table: Param<Tensor<B, 2>>,
    out: Linear<B>,
    channels: usize,
    hidden: usize,
}

impl<B: AttentionBackend> Stdit<B> {
    /// A freshly initialised model (its random weights come from the backend's seeded stream).
    pub fn new(config: &ModelConfig, shape: DataShape, device: &B::Device) -> Self {
        let d = config.hidden;
        let zeros = |i: usize, o: usize| LinearConfig::new(i, o).with_initializer(Initializer::Zeros).init(device);
        let text = shape.text_width;
        Self {
            patch: PatchEmbed::new(shape.channels, config.patch, d, device),
            time: TimestepEmbed::new(d, device),
            time_modulation: zeros(d, MODULATIONS * d),
            text_fc1: (text > 0).then(|| LinearConfig::new(text, d).init(device)),
            text_fc2: (text > 0).then(|| LinearConfig::new(d, d).init(device)),
            null_text: (text > 0).then(|| Initializer::Normal { mean: 0.0, std: 0.02 }.init([1, d], device)),
            blocks: (0..config.depth).map(|_| Block::new(config, text, device)).collect(),
            final_norm: LayerNormConfig::new(d).init(device),
            final_modulation: zeros(d, 2 * d),
            final_table: Initializer::Zeros.init([2, d], device),
            out: zeros(d, shape.channels * config.patch.iter().product::<usize>()),
            channels: shape.channels,
            hidden: d,
        }
    }

    /// The token grid of a latent shape, or why it does not fit the patch size.
    ///
    /// # Errors
    /// When T, H or W is not a multiple of the patch.
    pub fn grid(&self, dims: [usize; 5]) -> Result<Grid, String> {
        self.patch.grid(dims)
    }

    /// The predicted velocity for noisy latents `x` [batch, C, T, H, W] at timesteps `t`.
    pub fn forward(&self, x: Tensor<B, 5>, grid: Grid, t: &[f32], text: Option<&TextInput<B>>) -> Tensor<B, 5> {
        let device = x.device();
        let batch = x.dims()[0];
        let d = self.hidden;
        let tokens = self.patch.forward(x, grid) + positions::<B>(grid, d, &device);
        let c = silu(self.time.forward(t, &device));
        let modulation = self.time_modulation.forward(c.clone()).reshape([batch, MODULATIONS, d]);
        let caption = match (text, &self.text_fc1, &self.text_fc2, &self.null_text) {
            (Some(text), Some(fc1), Some(fc2), Some(null)) => {
                let y = fc2.forward(gelu(fc1.forward(text.embeddings.clone())));
                let null = null.val().unsqueeze_dim::<3>(0);
                let keep = text.dropped.clone().neg() + 1.0;
                Some((y * keep + null * text.dropped.clone(), text.pad.clone()))
            }
            _ => None,
        };
        let mut x = tokens;
        for block in &self.blocks {
            x = block.forward(x, grid, modulation.clone(), caption.as_ref().map(|(y, pad)| (y, pad)));
        }
        let m = self.final_modulation.forward(c).reshape([batch, 2, d]) + self.final_table.val().unsqueeze_dim::<3>(0);
        let x = modulate(self.final_norm.forward(x), m.clone().narrow(1, 0, 1), m.narrow(1, 1, 1));
        self.patch.unpatchify(self.out.forward(x), grid, self.channels)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    #[test]
    fn velocity_has_the_latent_shape_and_starts_at_zero() {
        let device = Default::default();
        let config = ModelConfig { hidden: 16, depth: 2, heads: 2, mlp_ratio: 2.0, patch: [1, 2, 2] };
        let model = Stdit::<Flex>::new(&config, DataShape { channels: 4, text_width: 8 }, &device);
        let x = Tensor::<Flex, 5>::random([2, 4, 3, 6, 8], Distribution::Normal(0.0, 1.0), &device);
        let grid = model.grid(x.dims()).unwrap();
        assert_eq!((grid.t, grid.h, grid.w), (3, 3, 4));
        let text = TextInput {
            embeddings: Tensor::random([2, 5, 8], Distribution::Normal(0.0, 1.0), &device),
            pad: Tensor::from_data(TensorData::new(vec![false, false, true, true, true, false, true, true, true, true], [2, 5]), &device),
            dropped: Tensor::from_data(TensorData::new(vec![0.0f32, 1.0], [2, 1, 1]), &device),
        };
        let v = model.forward(x, grid, &[0.3, 0.8], Some(&text));
        assert_eq!(v.dims(), [2, 4, 3, 6, 8]);
        // adaLN-zero: gates and the output projection start at zero.
        assert_eq!(v.abs().max().into_scalar(), 0.0);
        assert!(model.grid([1, 4, 3, 5, 8]).unwrap_err().contains("does not divide"));
    }
}
