//! VAE encoders in ONNX: image VAEs applied frame by frame, and causal video VAEs applied to
//! whole clips in chunks.
//!
//! Both take `sample` and give `latent_parameters`, the mean and log-variance of the latent
//! distribution laid end to end along channels, as optimum's `vae_encoder` exports do:
//! - **image** (Stable Diffusion `AutoencoderKL`): `sample` `[B,3,H,W]` → `[B,2C,H/f,W/f]`;
//! - **video** (Wan-style causal 3D VAE): `sample` `[B,3,T,H,W]` → `[B,2C,1+(T-1)/k,H/f,W/f]`. Its
//!   export unrolls the time loop, so T is fixed in the graph. A clip of F = 1 + k·m frames is
//!   encoded in chunks of T frames that overlap by one frame; every chunk after the first drops
//!   its first latent (the overlap frame, which a causal VAE encodes alone), and the last chunk
//!   is padded with copies of the clip's last frame, whose latents are dropped: causality makes
//!   the kept ones independent of the padding.
//!
//! The latent kept is the mean, or a sample drawn with a recorded seed, normalised as the
//! model's `config.json` says: `(z - shift_factor) * scaling_factor` (SD family), or per channel
//! `(z - latents_mean[c]) / latents_std[c]` (Wan family). Latents come out as [T', C, h, w] for
//! both layouts (T' = frames for image VAEs).

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

/// How a clip's latent is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Draw {
    /// The mean.
    Mean,
    /// A sample whose noise stream is fixed by this seed.
    Sample(u64),
}

/// How the graph treats time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VaeLayout {
    /// One frame at a time.
    Image,
    /// Clips of exactly `frames` frames, `temporal` frames per latent after the first.
    Video {
        /// T fixed in the graph.
        frames: usize,
        /// Temporal compression.
        temporal: usize,
    },
}

/// How raw latents are normalised for the trainer.
#[derive(Debug, Clone, PartialEq)]
enum Normalization {
    /// `(z - shift) * scale`.
    Affine { shift: f32, scale: f32 },
    /// `(z - mean[c]) / std[c]`.
    PerChannel { mean: Vec<f32>, std: Vec<f32> },
}

impl Normalization {
    fn from_config(config: &Value, channels: usize, path: &Path) -> Result<Self, EmbedError> {
        let floats = |key: &str| config[key].as_array().map(|a| a.iter().filter_map(Value::as_f64).map(|v| v as f32).collect::<Vec<f32>>());
        match (floats("latents_mean"), floats("latents_std")) {
            (Some(mean), Some(std)) if mean.len() == channels && std.len() == channels && std.iter().all(|s| *s != 0.0) => Ok(Self::PerChannel { mean, std }),
            (Some(_), _) | (_, Some(_)) => Err(EmbedError::ModelFiles(format!("{}: latents_mean and latents_std need {channels} values each, none zero", path.display()))),
            _ => Ok(Self::Affine { shift: config["shift_factor"].as_f64().unwrap_or(0.0) as f32, scale: config["scaling_factor"].as_f64().unwrap_or(1.0) as f32 }),
        }
    }

    fn apply(&self, channel: usize, z: f32) -> f32 {
        match self {
            Self::Affine { shift, scale } => (z - shift) * scale,
            Self::PerChannel { mean, std } => (z - mean[channel]) / std[channel],
        }
    }
}

/// A loaded VAE encoder.
pub struct Vae {
    session: ModelSession,
    /// `name@hash` of the graph.
    pub model_id: String,
    /// Latent channels.
    pub channels: usize,
    /// Spatial downsampling factor.
    pub downsample: usize,
    /// Image or video.
    pub layout: VaeLayout,
    /// Height and width when the graph fixes them.
    fixed_size: [Option<usize>; 2],
    normalization: Normalization,
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

/// Latent channels and spatial downsampling from an `AutoencoderKL` or Wan config.
fn geometry(config: &Value, path: &Path) -> Result<(usize, usize), EmbedError> {
    let channels = config["latent_channels"].as_u64().or_else(|| config["z_dim"].as_u64()).unwrap_or(0) as usize;
    let downsample = match (config["block_out_channels"].as_array(), config["scale_factor_spatial"].as_u64()) {
        (Some(blocks), _) if !blocks.is_empty() => 1 << (blocks.len() - 1),
        (_, Some(f)) => f as usize,
        _ => 0,
    };
    if channels == 0 || downsample == 0 {
        return Err(EmbedError::ModelFiles(format!(
            "{}: needs latent_channels and block_out_channels (AutoencoderKL), or z_dim and scale_factor_spatial (Wan)",
            path.display()
        )));
    }
    Ok((channels, downsample))
}

impl Vae {
    /// Load the encoder of a VAE directory; its layout follows the rank of its `sample` input.
    ///
    /// # Errors
    /// When files are missing, the config lacks the channel count or downsampling, or the graph
    /// does not have the `sample` → `latent_parameters` signature of either layout.
    pub fn load(dir: &Path, options: &SessionOptions) -> Result<Self, EmbedError> {
        let graphs = graph_dir(dir)?;
        let config_path = graphs.join("config.json");
        let config = read_config(&config_path)?;
        let (channels, downsample) = geometry(&config, &config_path)?;
        let model = graphs.join("model.onnx");
        let session = open_session(&model, options)?;
        session.require(&["sample"], &["latent_parameters"], "VAE encoder (optimum vae_encoder)")?;
        let shape = session.input_shape("sample").unwrap_or_default();
        let layout = match shape.len() {
            4 => VaeLayout::Image,
            5 if shape[2] > 0 => VaeLayout::Video { frames: shape[2] as usize, temporal: config["scale_factor_temporal"].as_u64().unwrap_or(4) as usize },
            _ => {
                return Err(EmbedError::Onnx(session.signature_error(format!(
                    "input `sample` has shape {shape:?}: expected [B,3,H,W] (image VAE) or [B,3,T,H,W] with T fixed (video VAE)"
                ))));
            }
        };
        if let VaeLayout::Video { frames, temporal } = layout
            && (temporal == 0 || (frames - 1) % temporal != 0)
        {
            return Err(EmbedError::Onnx(session.signature_error(format!("its export takes {frames} frames, not 1 + {temporal}k"))));
        }
        let side = |i: usize| shape.get(i).and_then(|&d| usize::try_from(d).ok()).filter(|&d| d > 0);
        Ok(Self {
            model_id: clipline_onnx::model_dir::model_id(dir, &[&model]).map_err(EmbedError::ModelFiles)?,
            fixed_size: [side(shape.len() - 2), side(shape.len() - 1)],
            normalization: Normalization::from_config(&config, channels, &config_path)?,
            session,
            channels,
            downsample,
            layout,
        })
    }

    /// Latent shape [T', C, h, w] of `frames` frames of `height × width`.
    ///
    /// # Errors
    /// When the sides are not multiples of the downsampling factor or not the size the graph
    /// was exported for, or (video VAEs) the frame count is not 1 + k·m.
    pub fn latent_shape(&self, frames: usize, height: usize, width: usize) -> Result<[usize; 4], EmbedError> {
        fixed_size_fits(self.fixed_size, height, width).map_err(|e| EmbedError::Input(format!("{}: {e}", self.model_id)))?;
        let f = self.downsample;
        if !height.is_multiple_of(f) || !width.is_multiple_of(f) || frames == 0 {
            return Err(EmbedError::Input(format!("{frames} frames of {width}x{height} do not fit {}: sides must be multiples of {f}", self.model_id)));
        }
        let latent_frames = match self.layout {
            VaeLayout::Image => frames,
            VaeLayout::Video { temporal, .. } if (frames - 1).is_multiple_of(temporal) => 1 + (frames - 1) / temporal,
            VaeLayout::Video { temporal, .. } => {
                return Err(EmbedError::Input(format!("{frames} frames do not fit the causal video VAE {}: use frame counts 1 + {temporal}k", self.model_id)));
            }
        };
        Ok([latent_frames, self.channels, height / f, width / f])
    }

    /// Encode one clip: `frames` packed RGB frames of `height × width`; returns its latents
    /// [T', C, h, w], normalised. Image VAEs run `batch` frames at a time.
    ///
    /// # Errors
    /// When the bytes do not match the frame count and size, or the model fails.
    pub fn encode(&mut self, rgb: &[u8], frames: usize, size: (usize, usize), draw: Draw, batch: usize) -> Result<Vec<f32>, EmbedError> {
        let mut out = self.encode_clips(&[ClipFrames { rgb, frames, draw }], size, batch)?;
        Ok(out.pop().expect("one clip in, one out"))
    }

    /// Encode several clips of one frame size; returns each one's latents [T', C, h, w].
    /// Image VAEs fill each run with `batch` frames taken across the clips (a video's image
    /// samples, one frame each, share runs); video VAEs run clip by clip.
    ///
    /// # Errors
    /// When a clip's bytes do not match its frame count and the size, or the model fails.
    pub fn encode_clips(&mut self, clips: &[ClipFrames<'_>], (height, width): (usize, usize), batch: usize) -> Result<Vec<Vec<f32>>, EmbedError> {
        let frame = height * width * 3;
        let mut shapes = Vec::with_capacity(clips.len());
        for clip in clips {
            shapes.push(self.latent_shape(clip.frames, height, width)?);
            if clip.rgb.len() != clip.frames * frame {
                return Err(EmbedError::Input(format!("{} bytes of frames for {} frames of {width}x{height}", clip.rgb.len(), clip.frames)));
            }
        }
        let mut outs: Vec<Vec<f32>> = shapes.iter().map(|s| Vec::with_capacity(s.iter().product())).collect();
        match self.layout {
            VaeLayout::Image => {
                // Every (clip, frame) pair in order, `batch` per run.
                let pairs: Vec<(usize, usize)> = clips.iter().enumerate().flat_map(|(c, clip)| (0..clip.frames).map(move |f| (c, f))).collect();
                for run in pairs.chunks(batch.max(1)) {
                    let rgb: Vec<&[u8]> = run.iter().map(|&(c, f)| &clips[c].rgb[f * frame..(f + 1) * frame]).collect();
                    let params = self.run(pixels(&rgb, 1, height * width), &[run.len(), 3, height, width])?;
                    let per_item = params.len() / run.len();
                    for (item, &(c, f)) in run.iter().enumerate() {
                        self.take(&params[item * per_item..(item + 1) * per_item], 1, 0..1, (clips[c].draw, f), &mut outs[c]);
                    }
                }
            }
            VaeLayout::Video { frames: t, temporal } => {
                let per_chunk = 1 + (t - 1) / temporal;
                for ((clip, out), shape) in clips.iter().zip(&mut outs).zip(&shapes) {
                    let wanted_total = shape[0];
                    let chunks = (clip.frames - 1).div_ceil(t - 1).max(1);
                    let mut kept = 0;
                    for c in 0..chunks {
                        let chunk = padded_chunk(clip.rgb, clip.frames, frame, c * (t - 1), t);
                        let params = self.run(pixels(&chunk, t, height * width), &[1, 3, t, height, width])?;
                        let first = usize::from(c > 0);
                        let wanted = (wanted_total - kept).min(per_chunk - first);
                        self.take(&params, per_chunk, first..first + wanted, (clip.draw, kept), out);
                        kept += wanted;
                    }
                }
            }
        }
        Ok(outs)
    }

    fn run(&mut self, pixels: Vec<f32>, shape: &[usize]) -> Result<Vec<f32>, EmbedError> {
        let input = tensor::input(shape, pixels)?;
        let outputs = self.session.run(vec![("sample".to_string(), input)])?;
        let (out_shape, params) = tensor::f32_output(&outputs["latent_parameters"], "latent_parameters")?;
        if out_shape.len() != shape.len() || out_shape[0] != shape[0] || out_shape[1] != 2 * self.channels {
            return Err(EmbedError::Input(format!("latent_parameters has shape {out_shape:?} for input {shape:?}")));
        }
        Ok(params.to_vec())
    }

    /// Append latent frames `keep` of one item's parameters [2C, t, h, w] as [frame, C, h, w],
    /// drawn and normalised; `(draw, first_frame)` fix the noise stream of the first frame
    /// appended (frame numbers count from the clip's first latent).
    fn take(&self, params: &[f32], t: usize, keep: std::ops::Range<usize>, (draw, first_frame): (Draw, usize), out: &mut Vec<f32>) {
        let c = self.channels;
        let plane = params.len() / (2 * c * t);
        for (k, frame) in keep.enumerate() {
            let mut noise = match draw {
                Draw::Mean => None,
                Draw::Sample(seed) => Some(Normal::new(SplitMix64::keyed(seed, &(first_frame + k).to_string()).next_u64())),
            };
            for channel in 0..c {
                let at = |ch: usize| (ch * t + frame) * plane;
                let (mean, logvar) = (&params[at(channel)..at(channel) + plane], &params[at(c + channel)..at(c + channel) + plane]);
                out.extend(mean.iter().zip(logvar).map(|(m, lv)| {
                    let z = match &mut noise {
                        None => *m,
                        Some(noise) => m + (0.5 * lv.clamp(-30.0, 20.0)).exp() * noise.next(),
                    };
                    self.normalization.apply(channel, z)
                }));
            }
        }
    }
}

/// Whether frames of `height × width` fit a graph whose height and width may be fixed.
fn fixed_size_fits([fixed_h, fixed_w]: [Option<usize>; 2], height: usize, width: usize) -> Result<(), String> {
    if fixed_h.is_some_and(|h| h != height) || fixed_w.is_some_and(|w| w != width) {
        let side = |d: Option<usize>| d.map_or("any".to_string(), |d| d.to_string());
        return Err(format!(
            "its graph takes frames of {}x{} only, the bucket's are {width}x{height}: export it with dynamic height and width, or use buckets of its size",
            side(fixed_w),
            side(fixed_h)
        ));
    }
    Ok(())
}

/// One clip to encode.
#[derive(Debug, Clone, Copy)]
pub struct ClipFrames<'a> {
    /// Packed RGB frames.
    pub rgb: &'a [u8],
    /// How many.
    pub frames: usize,
    /// Which latent to take.
    pub draw: Draw,
}

/// Packed RGB frames, `t` per clip in clip order, as [clips, 3, t, plane] floats in [-1, 1]
/// (t = 1: [clips, 3, H, W]).
fn pixels(frames: &[&[u8]], t: usize, plane: usize) -> Vec<f32> {
    // A byte's value in [-1, 1], computed as onnxruntime-python references do (v / 127.5 - 1).
    let table: [f32; 256] = std::array::from_fn(|v| v as f32 / 127.5 - 1.0);
    let mut out = vec![0f32; frames.len() * 3 * plane];
    for (index, frame) in frames.iter().enumerate() {
        let (item, time) = (index / t, index % t);
        // This frame's red, green and blue planes lie `t * plane` apart.
        let red = (item * 3 * t + time) * plane;
        let (r, rest) = out[red..red + 2 * t * plane + plane].split_at_mut(t * plane);
        let (g, b) = rest.split_at_mut(t * plane);
        let (r, g, b) = (&mut r[..plane], &mut g[..plane], &mut b[..plane]);
        for (((px, r), g), b) in frame.chunks_exact(3).zip(r).zip(g).zip(b) {
            *r = table[usize::from(px[0])];
            *g = table[usize::from(px[1])];
            *b = table[usize::from(px[2])];
        }
    }
    out
}

/// Frames `[start, start + t)` of a clip, the last frame repeated past its end.
fn padded_chunk(rgb: &[u8], frames: usize, frame_bytes: usize, start: usize, t: usize) -> Vec<&[u8]> {
    (start..start + t).map(|i| i.min(frames - 1)).map(|f| &rgb[f * frame_bytes..(f + 1) * frame_bytes]).collect()
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
    use super::{fixed_size_fits, padded_chunk, pixels, Normal};

    #[test]
    fn a_graph_exported_for_one_size_refuses_others_naming_both() {
        assert!(fixed_size_fits([None, None], 144, 256).is_ok());
        assert!(fixed_size_fits([Some(512), Some(512)], 512, 512).is_ok());
        let err = fixed_size_fits([Some(512), Some(512)], 144, 256).unwrap_err();
        assert!(err.contains("512x512") && err.contains("256x144"), "{err}");
        assert!(fixed_size_fits([Some(144), None], 144, 1000).is_ok());
    }

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

    #[test]
    fn pixels_are_channels_first_with_time_inside_channels() {
        // Two clips of two frames of one pixel: values say clip, frame and channel.
        let rgb: Vec<u8> = (0..2).flat_map(|clip| (0..2).flat_map(move |t| (0..3).map(move |c| (100 * clip + 10 * t + c) as u8))).collect();
        let frames: Vec<&[u8]> = rgb.chunks(3).collect();
        let p = pixels(&frames, 2, 1);
        let back: Vec<u8> = p.iter().map(|v| ((v + 1.0) * 127.5).round() as u8).collect();
        assert_eq!(back, vec![0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112]);
    }

    #[test]
    fn a_chunk_past_the_clip_repeats_its_last_frame() {
        let rgb = [1u8, 2, 3];
        assert_eq!(padded_chunk(&rgb, 3, 1, 1, 4).concat(), vec![2, 3, 3, 3]);
    }
}
