//! The embed stage: each clip's bucketed frames and its caption in, `samples` rows and
//! compressed sample records out (the commit puts them into shards).
//!
//! The frames come from the clip extraction, which decodes each clip anyway: its ffmpeg
//! process also writes the bucket's frames (subsampled, resized, centre-cropped) as raw RGB to
//! a scratch file, read only when the worker encodes them (a 720p bucket of 113 frames is 300
//! MB: the clips waiting in the queues must not hold theirs in memory).
//! One worker thread owns the VAE and text encoder; videos hand it their clips through a
//! bounded queue. A clip smaller or shorter than every bucket gets a `skipped` row, a clip that
//! fails a `failed` row with the reason; the run goes on.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use clipline_core::ids::{fingerprint_parts, hash_parts};
use clipline_core::manifest::{SampleRow, SampleStatus, Timestamp};
use clipline_embedder::{bundled, Bucket, BucketConfig, ClipFrames, Draw, LatentMode, TextEmbedding, TextEncoder, Vae};
use clipline_models::{resolve, Role};
use clipline_onnx::{Device, SessionOptions};
use clipline_shard::{EncodedSample, SampleEncoder, TensorData, TensorRef};
use serde::{Deserialize, Serialize};
use tempfile::TempPath;

use crate::batch::together_or_alone;
use crate::model_queue::{ModelQueue, Weighed};
use crate::runtime::Progress;
use clipline_shard::sink::ShardsConfig;

/// `[embed]`: the models, the latent taken, the buckets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmbedConfig {
    /// An image VAE directory (AutoencoderKL encoder, optimum layout) or `bundled:tiny-vae`;
    /// empty: no samples.
    pub vae: String,
    /// A text encoder directory (T5 / CLIP / BERT layout) or `bundled:tiny-text-encoder`;
    /// empty: samples without text embeddings.
    pub text_encoder: String,
    /// Caption tokens kept at most.
    pub text_max_tokens: usize,
    /// `mean` (deterministic) or `sample` (drawn with `seed`).
    pub latent: LatentMode,
    /// Seed of sampled latents.
    pub seed: u64,
    /// Frames per VAE run.
    pub batch_frames: usize,
    /// `auto`, `cpu` or `cuda`.
    pub device: Device,
    /// Threads per model run; 0 = one per core.
    pub threads: usize,
    /// The bucket set.
    pub buckets: BucketConfig,
}

impl Default for EmbedConfig {
    fn default() -> Self {
        Self {
            vae: String::new(),
            text_encoder: String::new(),
            text_max_tokens: 300,
            latent: LatentMode::Mean,
            seed: 0,
            batch_frames: 16,
            device: Device::Auto,
            threads: 0,
            buckets: BucketConfig::default(),
        }
    }
}

impl EmbedConfig {
    /// Whether samples are made.
    pub fn enabled(&self) -> bool {
        !self.vae.is_empty()
    }

    /// The settings that change samples (not batch size, device or threads).
    pub fn sample_settings(&self) -> (&str, &str, usize, LatentMode, u64, &BucketConfig) {
        (&self.vae, &self.text_encoder, self.text_max_tokens, self.latent, self.seed, &self.buckets)
    }

    /// Check values that parse but cannot work.
    ///
    /// # Errors
    /// Naming the field.
    pub fn validate(&self, captioning: bool) -> Result<(), String> {
        if !self.enabled() {
            return Ok(());
        }
        if !self.text_encoder.is_empty() && !captioning {
            return Err("embed.text_encoder embeds captions: set caption.model too, or leave embed.text_encoder empty".into());
        }
        if self.batch_frames == 0 || self.text_max_tokens == 0 {
            return Err("embed.batch_frames and embed.text_max_tokens must be at least 1".into());
        }
        self.buckets.validate()
    }
}

/// What one sample is made from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Frames of the clip, subsampled in time.
    Video,
    /// The clip's middle frame.
    Image,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Image => "image",
        }
    }
}

/// One sample to make: its clip, bucket and frames, or why it cannot be made.
#[derive(Debug)]
pub struct EmbedInput {
    /// The clip.
    pub clip_id: String,
    /// Video or image sample.
    pub kind: Kind,
    /// Its bucket and frames, or what is missing.
    pub frames: SampleFrames,
    /// The clip's caption (set by the stage from the video's caption rows).
    pub caption: Option<String>,
}

/// What a sample has to be encoded from.
#[derive(Debug)]
pub enum SampleFrames {
    /// No bucket fits the clip: the sample is `skipped`, for this reason.
    NoBucket(String),
    /// Its bucket, and the scratch file of its frames, packed RGB at the bucket's size (deleted
    /// when dropped).
    Ready {
        /// The bucket.
        bucket: Bucket,
        /// The frames' file.
        frames: TempPath,
    },
    /// Its bucket, but the frames could not be taken: the sample is `failed`, for this reason.
    Missing {
        /// The bucket.
        bucket: Bucket,
        /// Why there are no frames.
        reason: String,
    },
}

impl SampleFrames {
    /// The sample's bucket, when one fits.
    pub fn bucket(&self) -> Option<&Bucket> {
        match self {
            SampleFrames::NoBucket(_) => None,
            SampleFrames::Ready { bucket, .. } | SampleFrames::Missing { bucket, .. } => Some(bucket),
        }
    }

    /// The bucket and the frames' file, when both are there.
    pub fn ready(&self) -> Option<(&Bucket, &TempPath)> {
        match self {
            SampleFrames::Ready { bucket, frames } => Some((bucket, frames)),
            _ => None,
        }
    }
}

impl Weighed for EmbedInput {
    /// The frames' scratch file (read into memory by the worker).
    fn bytes(&self) -> usize {
        self.frames.ready().map_or(0, |(b, _)| b.frames as usize * b.height as usize * b.width as usize * 3)
    }
}

/// A sample row and, when it is `ok`, its compressed record.
pub type Embedded = (SampleRow, Option<EncodedSample>);

/// The running stage.
pub struct EmbedStage {
    queue: ModelQueue<EmbedInput, Embedded>,
}

/// Ids and settings every sample row records.
struct Identity {
    vae_id: String,
    text_encoder_id: String,
    embed_hash: String,
}

impl EmbedStage {
    /// Load the models (failing early, before any video is read) and start the worker, which
    /// admits `queue_bytes` of frames at once.
    ///
    /// # Errors
    /// When a model cannot be loaded.
    pub fn start(config: &EmbedConfig, shards: &ShardsConfig, cache: &std::path::Path, queue_bytes: usize, progress: Progress) -> anyhow::Result<Self> {
        let session = SessionOptions { device: config.device, intra_threads: config.threads };
        let vae_dir = resolve(&config.vae, Role::Vae, &bundled::ALL, cache, "embed.vae")?;
        let vae = Vae::load(&vae_dir, &session).with_context(|| format!("cannot load the VAE {}", vae_dir.display()))?;
        let text = if config.text_encoder.is_empty() {
            None
        } else {
            let dir = resolve(&config.text_encoder, Role::TextEncoder, &bundled::ALL, cache, "embed.text_encoder")?;
            Some(TextEncoder::load(&dir, config.text_max_tokens, &session).with_context(|| format!("cannot load the text encoder {}", dir.display()))?)
        };
        let identity = Identity {
            vae_id: vae.model_id.clone(),
            text_encoder_id: text.as_ref().map(|t| t.model_id.clone()).unwrap_or_default(),
            embed_hash: fingerprint_parts([
                vae.model_id.clone(),
                text.as_ref().map(|t| t.model_id.clone()).unwrap_or_default(),
                serde_json::to_string(&config.sample_settings())?,
                serde_json::to_string(&shards.format_settings())?,
            ]),
        };
        tracing::info!(vae = %identity.vae_id, text_encoder = %identity.text_encoder_id, settings = %identity.embed_hash, "embedding models loaded");
        let encoder = SampleEncoder::new(shards.zstd_level, shards.byte_planes).context("zstd refused the level")?;
        let mut worker = Worker { vae, text, encoder, identity, latent: config.latent, seed: config.seed, batch_frames: config.batch_frames };
        let queue = ModelQueue::start("embedder", config.batch_frames, queue_bytes, progress, move |inputs| worker.embed(inputs))?;
        Ok(Self { queue })
    }

    /// Make a video's samples; `captions` maps clip ids to their captions (waits while the
    /// queue is full).
    ///
    /// # Errors
    /// When the worker has stopped.
    pub async fn embed(&self, mut inputs: Vec<EmbedInput>, captions: HashMap<String, String>) -> anyhow::Result<Vec<Embedded>> {
        for input in &mut inputs {
            input.caption = captions.get(&input.clip_id).cloned();
        }
        self.queue.submit(inputs).await
    }
}

/// What a sample is: its id, clip, bucket and caption.
struct Target<'a> {
    sample_id: &'a str,
    clip_id: &'a str,
    bucket: &'a Bucket,
    caption: Option<&'a String>,
}

struct Worker {
    vae: Vae,
    text: Option<TextEncoder>,
    encoder: SampleEncoder,
    identity: Identity,
    latent: LatentMode,
    seed: u64,
    batch_frames: usize,
}

/// A sample's latents, or why there are none (`None`: nothing to encode).
type Latents = Option<Result<Vec<f32>, String>>;

/// Frames of an input's bucket (0 without one).
fn frames_of(input: &EmbedInput) -> usize {
    input.frames.bucket().map_or(0, |b| b.frames as usize)
}

/// An input's frames from its scratch file, checked against its bucket's size and count.
fn read_frames(input: &EmbedInput) -> Result<Vec<u8>, String> {
    let Some((b, path)) = input.frames.ready() else { return Err("no frames".into()) };
    let want = b.frames as usize * b.height as usize * b.width as usize * 3;
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read bucket frames {}: {e}", path.display()))?;
    if bytes.len() != want {
        return Err(format!("ffmpeg wrote {} bytes of {}x{} frames, {} frames ({want} bytes) wanted for bucket {}", bytes.len(), b.width, b.height, b.frames, b.name));
    }
    Ok(bytes)
}

impl Worker {
    /// Samples of inputs gathered from several videos: caption embeddings in one model run,
    /// latents in full runs per frame size, then one record each.
    fn embed(&mut self, inputs: Vec<EmbedInput>) -> Vec<Embedded> {
        let ids: Vec<String> = inputs.iter().map(|i| self.sample_id(i)).collect();
        let texts = self.embed_texts(&inputs);
        let latents = self.encode_latents(&inputs, &ids);
        inputs
            .into_iter()
            .zip(ids)
            .zip(latents)
            .map(|((input, sample_id), latents)| {
                let text = texts.get(&input.clip_id);
                self.sample(input, sample_id, latents, text)
            })
            .collect()
    }

    fn sample_id(&self, input: &EmbedInput) -> String {
        hash_parts([self.identity.embed_hash.as_str(), &input.clip_id, input.kind.as_str()])
    }

    /// The latents of every input with a bucket and frames. Inputs of one frame size are
    /// encoded together, about `batch_frames` frames at a time, so model runs are full (a
    /// video's image samples share runs); a group that fails is retried clip by clip, so one bad
    /// clip fails alone.
    fn encode_latents(&mut self, inputs: &[EmbedInput], ids: &[String]) -> Vec<Latents> {
        let mut groups: BTreeMap<(u32, u32), Vec<Vec<usize>>> = BTreeMap::new();
        for (i, input) in inputs.iter().enumerate() {
            if let Some((bucket, _)) = input.frames.ready() {
                let group = groups.entry((bucket.height, bucket.width)).or_default();
                let frames = |g: &Vec<usize>| g.iter().map(|&j| frames_of(&inputs[j])).sum::<usize>();
                match group.last_mut() {
                    Some(last) if frames(last) + bucket.frames as usize <= self.batch_frames => last.push(i),
                    _ => group.push(vec![i]),
                }
            }
        }
        let mut out: Vec<Latents> = vec![None; inputs.len()];
        for ((h, w), members) in groups.into_iter().flat_map(|(size, groups)| groups.into_iter().map(move |g| (size, g))) {
            let size = (h as usize, w as usize);
            // A group with unreadable frames, or whose run fails, goes clip by clip.
            let latents = together_or_alone(&members, |group| {
                let frames: Vec<Vec<u8>> = group.iter().map(|&i| read_frames(&inputs[i])).collect::<Result<_, _>>()?;
                let clips: Vec<ClipFrames<'_>> = group.iter().zip(&frames).map(|(&i, rgb)| ClipFrames { rgb, frames: frames_of(&inputs[i]), draw: self.draw(&ids[i]) }).collect();
                self.vae.encode_clips(&clips, size, self.batch_frames).map_err(|e| e.to_string())
            });
            for (&i, latent) in members.iter().zip(latents) {
                out[i] = Some(latent);
            }
        }
        out
    }

    fn draw(&self, sample_id: &str) -> Draw {
        match self.latent {
            LatentMode::Mean => Draw::Mean,
            LatentMode::Sample => Draw::Sample(clipline_core::rng::SplitMix64::keyed(self.seed, sample_id).next_u64()),
        }
    }

    /// Each clip's caption embedding (one model run for all the clips), or why there is none.
    fn embed_texts(&mut self, inputs: &[EmbedInput]) -> HashMap<String, Result<TextEmbedding, String>> {
        let Some(encoder) = &mut self.text else { return HashMap::new() };
        let mut clips: Vec<(&str, Option<&str>)> =
            inputs.iter().filter(|i| i.frames.ready().is_some()).map(|i| (i.clip_id.as_str(), i.caption.as_deref())).collect();
        clips.sort_unstable();
        clips.dedup();
        let (with, without): (Vec<_>, Vec<_>) = clips.into_iter().partition(|(_, caption)| caption.is_some());
        let mut out: HashMap<String, Result<TextEmbedding, String>> =
            without.iter().map(|(c, _)| (c.to_string(), Err("no caption to embed (its caption failed)".to_string()))).collect();
        let texts: Vec<&str> = with.iter().filter_map(|(_, caption)| *caption).collect();
        let with: Vec<&str> = with.iter().map(|(c, _)| *c).collect();
        match encoder.encode(&texts) {
            Ok(embeddings) => out.extend(with.iter().map(|c| c.to_string()).zip(embeddings.into_iter().map(Ok))),
            Err(e) => out.extend(with.iter().map(|c| (c.to_string(), Err(format!("text encoder: {e}"))))),
        }
        out
    }

    /// The row and record of one sample: `skipped` without a bucket, `failed` without frames,
    /// latents or text, else `ok` with its compressed record.
    fn sample(&mut self, input: EmbedInput, sample_id: String, latents: Latents, text: Option<&Result<TextEmbedding, String>>) -> Embedded {
        let mut row = self.row(&sample_id, &input);
        let (bucket, frames) = match input.frames {
            SampleFrames::NoBucket(reason) => {
                row.status = SampleStatus::Skipped;
                row.error = Some(format!("clip {}: {reason}", input.clip_id));
                return (row, None);
            }
            SampleFrames::Ready { bucket, frames } => (bucket, Ok(frames)),
            SampleFrames::Missing { bucket, reason } => (bucket, Err(reason)),
        };
        let made = frames.and_then(|_frames| {
            let latent = latents.unwrap_or_else(|| Err("no latents".into()))?;
            let text = match text {
                Some(Ok(t)) => Some(t),
                Some(Err(e)) => return Err(e.clone()),
                None => None,
            };
            let target = Target { sample_id: &sample_id, clip_id: &input.clip_id, bucket: &bucket, caption: input.caption.as_ref() };
            self.record(&target, &latent, text, &mut row)
        });
        match made {
            Ok(encoded) => (row, Some(encoded)),
            Err(e) => {
                tracing::warn!(clip = %input.clip_id, sample = %sample_id, "embedding failed: {e}");
                row.status = SampleStatus::Failed;
                row.error = Some(format!("clip {}: {e}", input.clip_id));
                (row, None)
            }
        }
    }

    /// A sample's compressed record from its latents and text embedding; fills the row's shapes.
    fn record(&mut self, target: &Target<'_>, latent: &[f32], text: Option<&TextEmbedding>, row: &mut SampleRow) -> Result<EncodedSample, String> {
        let Target { sample_id, clip_id, bucket, caption } = *target;
        let latent_shape = self.vae.latent_shape(bucket.frames as usize, bucket.height as usize, bucket.width as usize).map_err(|e| e.to_string())?.to_vec();
        let mut tensors = vec![TensorRef { name: "latent", shape: latent_shape.clone(), data: TensorData::F32AsBf16(latent) }];
        if let Some(t) = text {
            tensors.push(TensorRef { name: "text", shape: vec![t.tokens, t.width], data: TensorData::F32AsBf16(&t.values) });
            row.text_shape = vec![t.tokens as i64, t.width as i64];
        }
        let mut attributes = BTreeMap::from([("frame_stride".to_string(), bucket.stride.to_string())]);
        if let Some(caption) = caption {
            attributes.insert("caption".into(), caption.clone());
        }
        let encoded = self.encoder.encode(sample_id, clip_id, &bucket.name, attributes, &tensors).map_err(|e| e.to_string())?;
        row.latent_shape = latent_shape.iter().map(|&d| d as i64).collect();
        Ok(encoded)
    }

    fn row(&self, sample_id: &str, input: &EmbedInput) -> SampleRow {
        let b = input.frames.bucket();
        SampleRow {
            sample_id: sample_id.to_string(),
            clip_id: input.clip_id.clone(),
            kind: input.kind.as_str().into(),
            status: SampleStatus::Ok,
            bucket: b.map(|b| b.name.clone()).unwrap_or_default(),
            frames: b.map_or(0, |b| i64::from(b.frames)),
            height: b.map_or(0, |b| i64::from(b.height)),
            width: b.map_or(0, |b| i64::from(b.width)),
            frame_stride: b.map_or(0, |b| i64::from(b.stride)),
            shard: None,
            offset: None,
            length: None,
            raw_length: None,
            checksum: None,
            latent_shape: Vec::new(),
            text_shape: Vec::new(),
            dtype: "bf16".into(),
            vae_id: self.identity.vae_id.clone(),
            text_encoder_id: self.identity.text_encoder_id.clone(),
            embed_hash: self.identity.embed_hash.clone(),
            error: None,
            created_at: Timestamp::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(bytes: &[u8]) -> (tempfile::TempDir, EmbedInput) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-embed0.rgb");
        std::fs::write(&path, bytes).unwrap();
        let bucket = Bucket { name: "64p-9f-1:1".into(), height: 16, width: 16, frames: 9, stride: 1 };
        let input = EmbedInput { clip_id: "c".into(), kind: Kind::Video, frames: SampleFrames::Ready { bucket, frames: TempPath::try_from_path(&path).unwrap() }, caption: None };
        (dir, input)
    }

    #[test]
    fn frames_of_the_wrong_size_are_refused_naming_the_bucket() {
        let (_dir, short) = input(&[0; 100]);
        let err = read_frames(&short).unwrap_err();
        assert!(err.contains("100 bytes") && err.contains("64p-9f-1:1") && err.contains("6912"), "{err}");
        let (_dir, whole) = input(&[7; 9 * 16 * 16 * 3]);
        assert_eq!(read_frames(&whole).unwrap().len(), 6912);
    }

    #[test]
    fn scratch_frames_are_deleted_with_their_input() {
        let (dir, whole) = input(&[7; 9 * 16 * 16 * 3]);
        drop(whole);
        assert!(!dir.path().join("c-embed0.rgb").exists());
    }
}
