//! Embeddings: latent patches to tokens, fixed sinusoidal positions in space and time, and
//! the diffusion timestep.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::silu;
use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};

/// Cuts a latent [batch, channels, T, H, W] into (pt, ph, pw) patches and projects each to a token.
#[derive(Module, Debug)]
pub struct PatchEmbed<B: Backend> {
    proj: Linear<B>,
    patch: [usize; 3],
}

/// The token grid of a latent: frames and spatial positions after patching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    /// Temporal positions.
    pub t: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
}

impl Grid {
    /// Spatial tokens per frame.
    pub fn spatial(&self) -> usize {
        self.h * self.w
    }
}

impl<B: Backend> PatchEmbed<B> {
    /// Patches of `patch` over `channels` channels, projected to `dim`.
    pub fn new(channels: usize, patch: [usize; 3], dim: usize, device: &B::Device) -> Self {
        Self { proj: LinearConfig::new(channels * patch.iter().product::<usize>(), dim).init(device), patch }
    }

    /// The token grid of a latent of shape [.., T, H, W], or why it does not divide into patches.
    pub fn grid(&self, dims: [usize; 5]) -> Result<Grid, String> {
        let [_, _, t, h, w] = dims;
        let [pt, ph, pw] = self.patch;
        if t % pt != 0 || h % ph != 0 || w % pw != 0 {
            return Err(format!("a latent of {t}x{h}x{w} (T x H x W) does not divide into patches of {pt}x{ph}x{pw}"));
        }
        Ok(Grid { t: t / pt, h: h / ph, w: w / pw })
    }

    /// Tokens [batch, T' * H' * W', dim], frame-major.
    pub fn forward(&self, x: Tensor<B, 5>, grid: Grid) -> Tensor<B, 3> {
        let [batch, channels, ..] = x.dims();
        let [pt, ph, pw] = self.patch;
        let patches = x
            .reshape([batch, channels, grid.t, pt, grid.h, ph, grid.w, pw])
            .permute([0, 2, 4, 6, 1, 3, 5, 7])
            .reshape([batch, grid.t * grid.spatial(), channels * pt * ph * pw]);
        self.proj.forward(patches)
    }

    /// The inverse of patching for the output projection: [batch, tokens, channels * patch] to
    /// [batch, channels, T, H, W].
    pub fn unpatchify(&self, tokens: Tensor<B, 3>, grid: Grid, channels: usize) -> Tensor<B, 5> {
        let batch = tokens.dims()[0];
        let [pt, ph, pw] = self.patch;
        tokens
            .reshape([batch, grid.t, grid.h, grid.w, channels, pt, ph, pw])
            .permute([0, 4, 1, 5, 2, 6, 3, 7])
            .reshape([batch, channels, grid.t * pt, grid.h * ph, grid.w * pw])
    }
}

/// Sinusoidal embedding of `positions` into `dim` values each (half sines, half cosines).
fn sinusoid(positions: &[f32], dim: usize) -> Vec<f32> {
    let half = dim / 2;
    let mut out = vec![0.0; positions.len() * dim];
    for (row, &p) in out.chunks_exact_mut(dim).zip(positions) {
        for i in 0..half {
            let freq = (-(10_000f32.ln()) * i as f32 / half as f32).exp();
            row[i] = (p * freq).sin();
            row[half + i] = (p * freq).cos();
        }
    }
    out
}

/// Fixed positions [1, T' * H' * W', dim]: a 2-D sinusoid over rows and columns (half the
/// width each) plus a 1-D sinusoid over time, so any bucket's grid has positions. Only the
/// spatial [H' * W', dim] and temporal [T', dim] tables are made on the host; their sum is
/// broadcast on the device.
pub fn positions<B: Backend>(grid: Grid, dim: usize, device: &B::Device) -> Tensor<B, 3> {
    let quarter = dim / 2;
    let rows: Vec<f32> = (0..grid.h).map(|r| r as f32).collect();
    let cols: Vec<f32> = (0..grid.w).map(|c| c as f32).collect();
    let frames: Vec<f32> = (0..grid.t).map(|t| t as f32).collect();
    let (row_emb, col_emb) = (sinusoid(&rows, quarter), sinusoid(&cols, dim - quarter));
    let mut spatial = Vec::with_capacity(grid.spatial() * dim);
    for r in 0..grid.h {
        for c in 0..grid.w {
            spatial.extend_from_slice(&row_emb[r * quarter..(r + 1) * quarter]);
            spatial.extend_from_slice(&col_emb[c * (dim - quarter)..(c + 1) * (dim - quarter)]);
        }
    }
    let spatial = Tensor::<B, 4>::from_data(TensorData::new(spatial, [1, 1, grid.spatial(), dim]), device);
    let time = Tensor::<B, 4>::from_data(TensorData::new(sinusoid(&frames, dim), [1, grid.t, 1, dim]), device);
    (spatial + time).reshape([1, grid.t * grid.spatial(), dim])
}

/// The timestep t in (0, 1) to a conditioning vector: sinusoid of 1000 t, then an MLP.
#[derive(Module, Debug)]
pub struct TimestepEmbed<B: Backend> {
    fc1: Linear<B>,
    fc2: Linear<B>,
    frequencies: usize,
}

impl<B: Backend> TimestepEmbed<B> {
    /// An embedder to width `dim`.
    pub fn new(dim: usize, device: &B::Device) -> Self {
        let frequencies = 256;
        Self { fc1: LinearConfig::new(frequencies, dim).init(device), fc2: LinearConfig::new(dim, dim).init(device), frequencies }
    }

    /// [batch] timesteps to [batch, dim].
    pub fn forward(&self, t: &[f32], device: &B::Device) -> Tensor<B, 2> {
        let scaled: Vec<f32> = t.iter().map(|t| t * 1000.0).collect();
        let emb = Tensor::from_data(TensorData::new(sinusoid(&scaled, self.frequencies), [t.len(), self.frequencies]), device);
        self.fc2.forward(silu(self.fc1.forward(emb)))
    }
}
