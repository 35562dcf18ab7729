//! Image VAE encoders in the Stable Diffusion `AutoencoderKL` layout, applied frame by frame.
//!
//! The graph is optimum's `vae_encoder` export: input `sample` [B,3,H,W] in [-1,1], output
//! `latent_parameters` [B,2C,H/f,W/f], the mean and log-variance of the latent distribution
//! laid end to end along channels. The latent kept is the mean, or a sample drawn with a seed
//! recorded in the settings, then shifted and scaled as the model's `config.json` says
//! (`(z - shift_factor) * scaling_factor`), which is what a diffusion trainer consumes.

use std::path::{Path, PathBuf};

use clipline_core::rng::SplitMix64;
use clipline_onnx::{open_session, tensor, ModelSession, SessionOptions};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::EmbedError;

/// Which latent is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LatentMode {
    /// The distribution's mean (deterministic; what most pipelines store).
    #[default]
    Mean,
    /// A sample `mean + exp(logvar / 2) * noise`, the noise drawn from a seeded stream.
    Sample,
}

/// How one frame's latent is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// The mean.
    Mean,
    /// A sample with this seed.
    Sample(u64),
}

/// A loaded image VAE encoder.
pub struct ImageVae {
    session: ModelSession,
    /// `name@hash` of the graph.
    pub model_id: String,
    /// Latent channels.
    pub channels: usize,
    /// Spatial downsampling factor.
    pub downsample: usize,
    scaling: f32,
    shift: f32,
}

/// The graph of a VAE directory: `model.onnx`, or optimum's `vae_encoder/model.onnx`.
fn graph_dir(dir: &Path) -> Result<PathBuf, EmbedError> {
    [dir.to_path_buf(), dir.join("vae_encoder")]
        .into_iter()
        .find(|d| d.join("model.onnx").is_file() && d.join("config.json").is_file())
        .ok_or_else(|| EmbedError::ModelFiles(format!("{} holds no VAE encoder: expected model.onnx and config.json in it or in vae_encoder/", dir.display())))
}

fn read_config(path: &Path) -> Result<Value, EmbedError> {
    let text = std::fs::read_to_string(path).map_err(|e| EmbedError::ModelFiles(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| EmbedError::ModelFiles(format!("{}: not JSON: {e}", path.display())))
}

impl ImageVae {
    /// Load the encoder of a VAE directory and check its signature and config.
    ///
    /// # Errors
    /// When files are missing, the config lacks the downsampling or channel count, or the graph
    /// does not have the `sample` → `latent_parameters` signature.
    pub fn load(dir: &Path, options: &SessionOptions) -> Result<Self, EmbedError> {
        let graphs = graph_dir(dir)?;
        let config_path = graphs.join("config.json");
        let config = read_config(&config_path)?;
        let blocks = config["block_out_channels"].as_array().map_or(0, Vec::len);
        let channels = config["latent_channels"].as_u64().unwrap_or(0) as usize;
        if blocks == 0 || channels == 0 {
            return Err(EmbedError::ModelFiles(format!("{}: needs block_out_channels and latent_channels (an AutoencoderKL config)", config_path.display())));
        }
        let model = graphs.join("model.onnx");
        let session = open_session(&model, options)?;
        session.require(&["sample"], &["latent_parameters"], "AutoencoderKL encoder (optimum vae_encoder)")?;
        Ok(Self {
            model_id: clipline_onnx::model_dir::model_id(dir, &[&model]).map_err(EmbedError::ModelFiles)?,
            session,
            channels,
            downsample: 1 << (blocks - 1),
            scaling: config["scaling_factor"].as_f64().unwrap_or(1.0) as f32,
            shift: config["shift_factor"].as_f64().unwrap_or(0.0) as f32,
        })
    }

    /// Latent shape [C, h, w] of an `height × width` frame.
    ///
    /// # Errors
    /// When the sides are not multiples of the downsampling factor.
    pub fn latent_shape(&self, height: usize, width: usize) -> Result<[usize; 3], EmbedError> {
        if height % self.downsample != 0 || width % self.downsample != 0 {
            return Err(EmbedError::Input(format!("frames of {width}x{height} do not fit {}: sides must be multiples of {}", self.model_id, self.downsample)));
        }
        Ok([self.channels, height / self.downsample, width / self.downsample])
    }

    /// Encode `draws.len()` frames of `height × width` packed RGB bytes; returns their latents
    /// [N, C, h, w], shifted and scaled.
    ///
    /// # Errors
    /// When the bytes do not match the frame count and size, or the model fails.
    pub fn encode(&mut self, rgb: &[u8], height: usize, width: usize, draws: &[Draw]) -> Result<Vec<f32>, EmbedError> {
        let n = draws.len();
        let [c, h, w] = self.latent_shape(height, width)?;
        let plane = height * width;
        if rgb.len() != n * plane * 3 {
            return Err(EmbedError::Input(format!("{} bytes of frames for {n} frames of {width}x{height}", rgb.len())));
        }
        let mut pixels = vec![0f32; n * 3 * plane];
        for (frame, out) in rgb.chunks_exact(plane * 3).zip(pixels.chunks_exact_mut(plane * 3)) {
            let (r, rest) = out.split_at_mut(plane);
            let (g, b) = rest.split_at_mut(plane);
            for (((px, r), g), b) in frame.chunks_exact(3).zip(r).zip(g).zip(b) {
                *r = f32::from(px[0]) / 127.5 - 1.0;
                *g = f32::from(px[1]) / 127.5 - 1.0;
                *b = f32::from(px[2]) / 127.5 - 1.0;
            }
        }
        let input = tensor::input(&[n, 3, height, width], pixels)?;
        let outputs = self.session.run(vec![("sample".to_string(), input)])?;
        let (shape, params) = tensor::f32_output(&outputs["latent_parameters"], "latent_parameters")?;
        if shape != [n, 2 * c, h, w] {
            return Err(EmbedError::Input(format!("latent_parameters has shape {shape:?}, expected {:?}", [n, 2 * c, h, w])));
        }
        let per = c * h * w;
        let mut latents = Vec::with_capacity(n * per);
        for (frame, draw) in params.chunks_exact(2 * per).zip(draws) {
            let (mean, logvar) = frame.split_at(per);
            match draw {
                Draw::Mean => latents.extend(mean.iter().map(|m| (m - self.shift) * self.scaling)),
                Draw::Sample(seed) => {
                    let mut noise = Normal::new(*seed);
                    latents.extend(mean.iter().zip(logvar).map(|(m, lv)| (m + (0.5 * lv.clamp(-30.0, 20.0)).exp() * noise.next() - self.shift) * self.scaling));
                }
            }
        }
        Ok(latents)
    }
}

/// A seeded standard normal stream (Box-Muller over splitmix64): the same seed gives the same
/// noise on every machine, so a sampled latent is reproducible from its recorded seed.
struct Normal {
    stream: SplitMix64,
    spare: Option<f32>,
}

impl Normal {
    fn new(seed: u64) -> Self {
        Self { stream: SplitMix64::new(seed), spare: None }
    }

    fn next(&mut self) -> f32 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.stream.next_f64().max(f64::MIN_POSITIVE), self.stream.next_f64());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::Normal;

    #[test]
    fn the_noise_stream_is_standard_normal_and_reproducible() {
        let draw = |seed| {
            let mut n = Normal::new(seed);
            (0..20_000).map(|_| n.next()).collect::<Vec<f32>>()
        };
        let a = draw(5);
        assert_eq!(a, draw(5));
        assert_ne!(a, draw(6));
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        let var = a.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / a.len() as f32;
        assert!(mean.abs() < 0.03 && (var - 1.0).abs() < 0.05, "mean {mean} var {var}");
    }
}
