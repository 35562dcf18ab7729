//! The caption stage: clips' sampled frames in, `captions` rows out.
//!
//! The frames come from the clip extraction, which decodes each clip anyway: its ffmpeg
//! process writes them beside the clip file, at `frame_positions` of the clip. One worker
//! thread owns the model; videos hand it their clips through a bounded queue, and it gathers
//! clips of several videos into one batch when they are waiting, so small videos still fill the
//! model's batches. A batch that fails is retried clip by clip, so one bad clip gets a `failed`
//! row with the reason and the others their captions. With `text_detector` set, the same worker
//! scores the same frames for text (`text_area`), which `filters.max_text_area` can filter on.

use std::time::Instant;

use anyhow::Context;
use clipline_captioner::generate::GenerationSettings;
use clipline_captioner::text_area::{TextDetector, TextSettings};
use clipline_captioner::{bundled, prompt, Captioner, CaptionerConfig, Generated};
use clipline_core::manifest::{CaptionRow, CaptionStatus, Timestamp};
use clipline_onnx::{Device, SessionOptions};
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::batch::together_or_alone;
use crate::model_queue::{ModelQueue, Weighed};
use crate::runtime::Progress;
use clipline_models::{resolve, Role};

/// `[caption]`: the captioning model, its prompt, the frames it sees, generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaptionConfig {
    /// A model directory or `bundled:tiny-captioner`; empty: no captions.
    pub model: String,
    /// File of the instruction prompt; empty: the built-in default.
    pub prompt_file: String,
    /// Frames shown per clip, as positions in the clip (0 to 1).
    pub frame_positions: Vec<f64>,
    /// Largest side of the frames taken (the model's preprocessing resizes from there).
    pub frame_max_side: u32,
    /// Clips per model batch.
    pub batch_size: usize,
    /// `auto`, `cpu` or `cuda`.
    pub device: Device,
    /// Threads per model run; 0 = one per core.
    pub threads: usize,
    /// Generation settings.
    pub generation: GenerationSettings,
    /// Text detector for the `text_area` score: `ppocr-v4-det` (pulled or installed by
    /// scripts/setup.sh) or a path to a DB detection model; empty: no score.
    pub text_detector: String,
    /// Text detection settings.
    pub text: TextSettings,
}

impl Default for CaptionConfig {
    fn default() -> Self {
        Self {
            model: String::new(),
            prompt_file: String::new(),
            frame_positions: vec![0.2, 0.5, 0.8],
            frame_max_side: 512,
            batch_size: 16,
            device: Device::Auto,
            threads: 0,
            generation: GenerationSettings::default(),
            text_detector: String::new(),
            text: TextSettings::default(),
        }
    }
}

impl CaptionConfig {
    /// Whether captioning is on.
    pub fn enabled(&self) -> bool {
        !self.model.is_empty()
    }

    /// Frame offsets in a clip of `frames` frames.
    pub fn frame_offsets(&self, frames: u64) -> Vec<u64> {
        let last = frames.saturating_sub(1) as f64;
        self.frame_positions.iter().map(|p| (p.clamp(0.0, 1.0) * last).round() as u64).collect()
    }

    /// The settings that change caption rows (not batch size, device or threads).
    pub fn caption_settings(&self) -> (&str, &str, &[f64], u32, &GenerationSettings, &str, &TextSettings) {
        (&self.model, &self.prompt_file, &self.frame_positions, self.frame_max_side, &self.generation, &self.text_detector, &self.text)
    }

    /// Check values that parse but cannot work.
    ///
    /// # Errors
    /// Naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.enabled() && (self.frame_positions.is_empty() || self.frame_positions.iter().any(|p| !(0.0..=1.0).contains(p))) {
            return Err(format!("caption.frame_positions must be one or more numbers from 0 to 1, got {:?}", self.frame_positions));
        }
        if self.batch_size == 0 || self.frame_max_side < 16 {
            return Err("caption.batch_size must be at least 1 and caption.frame_max_side at least 16".into());
        }
        Ok(())
    }

    fn prompt(&self) -> anyhow::Result<String> {
        if self.prompt_file.is_empty() {
            return Ok(prompt::DEFAULT_PROMPT.to_string());
        }
        std::fs::read_to_string(&self.prompt_file).with_context(|| format!("cannot read caption.prompt_file {}", self.prompt_file))
    }
}

/// One clip to caption.
#[derive(Debug, Clone)]
pub struct ClipFrames {
    /// Its id.
    pub clip_id: String,
    /// Its sampled frames, in order.
    pub frames: Vec<RgbImage>,
}

impl Weighed for ClipFrames {
    fn bytes(&self) -> usize {
        self.frames.iter().map(|f| f.as_raw().len()).sum()
    }
}

/// The running stage.
pub struct CaptionStage {
    queue: ModelQueue<ClipFrames, CaptionRow>,
    /// `name@hash` of the model.
    pub model_id: String,
    /// Hash of prompt, frame positions and generation settings.
    pub prompt_hash: String,
}

impl CaptionStage {
    /// Load the model (failing early, before any video is read) and start the worker, which
    /// admits `queue_bytes` of frames at once.
    ///
    /// # Errors
    /// When the model or prompt cannot be loaded.
    pub fn start(config: &CaptionConfig, cache: &std::path::Path, queue_bytes: usize, progress: Progress) -> anyhow::Result<Self> {
        let model_dir = resolve(&config.model, Role::Captioner, &[bundled::BUNDLED], cache, "caption.model")?;
        let session = SessionOptions { device: config.device, intra_threads: config.threads };
        let text_detector = match config.text_detector.as_str() {
            "" => None,
            spec => {
                let path = resolve(spec, Role::TextDetector, &[], cache, "caption.text_detector")?;
                let detector = TextDetector::open(&path, &session, config.text.clone()).with_context(|| format!("cannot load caption.text_detector {spec}"))?;
                Some(detector)
            }
        };
        let prompt = config.prompt()?;
        let prompt_hash = clipline_core::ids::fingerprint_parts([
            prompt.clone(),
            serde_json::to_string(&config.frame_positions)?,
            config.frame_max_side.to_string(),
            serde_json::to_string(&config.generation)?,
        ]);
        let captioner = Captioner::load(CaptionerConfig {
            model_dir: model_dir.clone(),
            generation: config.generation.clone(),
            session,
            prompt,
        })
        .with_context(|| format!("cannot load caption model {}", model_dir.display()))?;
        let model_id = captioner.model_id.clone();
        tracing::info!(model = %model_id, prompt = %prompt_hash, "caption model loaded");
        let positions = positions_text(&config.frame_positions);
        let mut worker = Worker { captioner, text_detector, batch_size: config.batch_size, positions, model_id: model_id.clone(), prompt_hash: prompt_hash.clone() };
        let queue = ModelQueue::start("captioner", config.batch_size, queue_bytes, progress, move |clips| worker.caption(&clips))?;
        Ok(Self { queue, model_id, prompt_hash })
    }

    /// Caption a video's clips (waits while the queue is full).
    ///
    /// # Errors
    /// When the worker has stopped.
    pub async fn caption(&self, clips: Vec<ClipFrames>) -> anyhow::Result<Vec<CaptionRow>> {
        self.queue.submit(clips).await
    }
}

fn positions_text(positions: &[f64]) -> String {
    positions.iter().map(|p| format!("{p}")).collect::<Vec<_>>().join(",")
}

struct Worker {
    captioner: Captioner,
    text_detector: Option<TextDetector>,
    batch_size: usize,
    positions: String,
    model_id: String,
    prompt_hash: String,
}

impl Worker {
    /// Rows for clips gathered from several videos, `batch_size` per model batch.
    fn caption(&mut self, clips: &[ClipFrames]) -> Vec<CaptionRow> {
        clips.chunks(self.batch_size).flat_map(|batch| self.caption_batch(batch)).collect()
    }

    /// Rows for a batch; a failed batch is retried clip by clip to find the bad one.
    fn caption_batch(&mut self, batch: &[ClipFrames]) -> Vec<CaptionRow> {
        let captioner = &mut self.captioner;
        let results = together_or_alone(batch, |clips| {
            let started = Instant::now();
            let frames: Vec<&[RgbImage]> = clips.iter().map(|c| c.frames.as_slice()).collect();
            let keys: Vec<&str> = clips.iter().map(|c| c.clip_id.as_str()).collect();
            let ms = |n: usize| started.elapsed().as_secs_f64() * 1000.0 / n as f64;
            match captioner.caption(&frames, &keys) {
                Ok(generated) => Ok(generated.into_iter().map(|g| (g, ms(clips.len()))).collect()),
                Err(e) => Err((e, ms(1))),
            }
        });
        batch
            .iter()
            .zip(results)
            .map(|(clip, result)| match result {
                Ok((generated, latency)) => self.row(clip, Ok(generated), latency),
                Err((e, latency)) => {
                    tracing::warn!(clip = %clip.clip_id, "captioning failed: {e}");
                    self.row(clip, Err(e.to_string()), latency)
                }
            })
            .collect()
    }

    /// The clip's text-covered fraction, when a detector is configured; a detector failure is
    /// logged and leaves the score empty rather than failing the caption. A failed run is tried
    /// once more first: ONNX Runtime now and then fails a run of a good input with "GetElementType
    /// is not implemented" (microsoft/onnxruntime#22075), and the score should not depend on that.
    fn text_area(&mut self, clip: &ClipFrames) -> Option<f64> {
        let detector = self.text_detector.as_mut()?;
        let frames: Vec<&RgbImage> = clip.frames.iter().collect();
        detector
            .text_area(&frames)
            .or_else(|e| {
                tracing::debug!(clip = %clip.clip_id, "text detection failed, trying once more: {e}");
                detector.text_area(&frames)
            })
            .map_err(|e| tracing::warn!(clip = %clip.clip_id, "text detection failed: {e}"))
            .ok()
    }

    fn row(&mut self, clip: &ClipFrames, result: Result<Generated, String>, latency_ms: f64) -> CaptionRow {
        let clip_id = clip.clip_id.as_str();
        let (status, caption, flags, tokens, truncated, error) = match result {
            Ok(g) => (CaptionStatus::Ok, g.text, g.flags, g.tokens as i64, g.truncated, None),
            Err(e) => (CaptionStatus::Failed, String::new(), Vec::new(), 0, false, Some(format!("{clip_id}: {e}"))),
        };
        CaptionRow {
            clip_id: clip_id.to_string(),
            model_id: self.model_id.clone(),
            prompt_hash: self.prompt_hash.clone(),
            status,
            caption,
            flags,
            tokens,
            truncated,
            text_area: self.text_area(clip),
            frame_positions: self.positions.clone(),
            latency_ms,
            error,
            created_at: Timestamp::now(),
        }
    }
}
