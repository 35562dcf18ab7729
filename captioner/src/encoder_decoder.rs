//! The vision encoder-decoder layout (`encoder_model.onnx` + `decoder_model_merged.onnx`).
//!
//! A clip is shown as several frames: the encoder runs on every frame of the batch at once,
//! and each clip's frame states are laid end to end along the sequence axis, so the decoder's
//! cross-attention sees all of them. Decoding is batched across clips: every sequence starts
//! from the decoder start token, so no padding is needed, and ended sequences are fed the pad
//! token until the batch finishes.

use clipline_onnx::tensor::{f32_output, input};
use clipline_onnx::{open_session, ModelSession, OnnxError, SessionOptions};
use ort::value::Tensor;

use crate::generate::{last_position_logits, Batch, GenerationSettings};
use crate::kv_cache::KvCache;
use crate::model_files::{DecoderConfig, ModelFiles};
use crate::CaptionError;

/// An open encoder-decoder captioner.
pub struct EncoderDecoder {
    encoder: ModelSession,
    decoder: ModelSession,
    start: u32,
    tokens: DecoderConfig,
}

/// Encoder states of a batch, `[clips, frames * tokens, hidden]`, ready to feed every decoder
/// step without a copy.
pub struct States {
    tensor: Tensor<f32>,
    clips: usize,
}

impl States {
    /// The values, row-major.
    pub fn values(&self) -> &[f32] {
        self.tensor.extract_tensor().1
    }
}

impl EncoderDecoder {
    /// Open the two graphs and check their signatures.
    ///
    /// # Errors
    /// When a graph cannot be opened or lacks the layout's inputs and outputs.
    pub fn open(files: &ModelFiles, options: &SessionOptions) -> Result<Self, CaptionError> {
        let encoder = open_session(&files.graphs[0], options)?;
        encoder.require(&["pixel_values"], &["last_hidden_state"], "vision encoder")?;
        let decoder = open_session(&files.graphs[1], options)?;
        decoder.require(&["input_ids", "encoder_hidden_states", "use_cache_branch"], &["logits"], "merged decoder with past")?;
        let start = files
            .token_ids("decoder_start_token_id")
            .first()
            .or(files.token_ids("bos_token_id").first())
            .copied()
            .ok_or_else(|| CaptionError::ModelFiles(format!("{}: no decoder_start_token_id or bos_token_id in its configs", files.dir.display())))?;
        Ok(Self { encoder, decoder, start, tokens: files.decoder_config(start) })
    }

    /// The pixel size the encoder takes, when its graph fixes it.
    pub fn input_side(&self) -> Option<u32> {
        let shape = self.encoder.input_shape("pixel_values")?;
        shape.get(2).filter(|&&h| h > 0).map(|&h| h as u32)
    }

    /// Run the encoder on `[clips * frames, 3, H, W]` pixels.
    ///
    /// # Errors
    /// When the encoder fails (a wrong image size among the reasons).
    pub fn encode(&mut self, shape: &[usize], pixels: Vec<f32>, frames: usize) -> Result<States, CaptionError> {
        let input = input::<f32>(shape, pixels)?;
        let path = self.encoder.path.display().to_string();
        let outputs = self.encoder.run(vec![("pixel_values".into(), input)])?;
        let (dims, data) = f32_output(&outputs["last_hidden_state"], "last_hidden_state")?;
        let [n, tokens, hidden] = dims[..] else {
            return Err(OnnxError::Signature { path, message: format!("last_hidden_state has shape {dims:?}, expected 3 axes") }.into());
        };
        let clips = n / frames.max(1);
        // The one copy: out of the encoder's output (which the session owns) into the
        // decoder's input, laid out as [clips, frames * tokens, hidden].
        let tensor = Tensor::from_array(([clips, frames * tokens, hidden], data.to_vec()))
            .map_err(|e| OnnxError::Run { path: "encoder_hidden_states".into(), message: e.to_string() })?;
        Ok(States { tensor, clips })
    }

    /// Generate for every clip of `states`; `keys` (one per clip) seed sampling.
    ///
    /// # Errors
    /// When a decoder step fails.
    pub fn generate(&mut self, states: &States, keys: &[&str], settings: &GenerationSettings, extra_stops: &[u32]) -> Result<Batch, CaptionError> {
        // The start token takes the first position.
        let settings = &settings.within(self.tokens.positions.map(|p| p.saturating_sub(1)));
        let mut cache = KvCache::new(&self.decoder, self.tokens.cache_dims)?;
        let mut batch = Batch::new(keys, settings.seed);
        let stops = self.tokens.stops(extra_stops);
        let prompts = vec![vec![self.start]; states.clips];
        let mut feed = vec![self.start; states.clips];
        while !batch.finished() {
            let (mut logits, vocab) = self.step(&feed, states, &mut cache)?;
            feed = batch.step(&mut logits, vocab, &prompts, &stops, self.tokens.pad, settings);
        }
        Ok(batch)
    }

    /// Logits of the first decoder step, `[clips, vocab]` (for checks against other runtimes).
    ///
    /// # Errors
    /// When the decoder fails.
    pub fn first_logits(&mut self, states: &States) -> Result<Vec<f32>, CaptionError> {
        let mut cache = KvCache::new(&self.decoder, self.tokens.cache_dims)?;
        Ok(self.step(&vec![self.start; states.clips], states, &mut cache)?.0)
    }

    /// One decoder step: feed one token per clip, keep the presents in `cache`; returns the
    /// logits of the new position, `[clips, vocab]`, and `vocab`.
    fn step(&mut self, feed: &[u32], states: &States, cache: &mut KvCache) -> Result<(Vec<f32>, usize), CaptionError> {
        let mut inputs = vec![
            ("input_ids".to_string(), input::<i64>(&[feed.len(), 1], feed.iter().map(|&t| t as i64).collect())?),
            ("encoder_hidden_states".to_string(), (&states.tensor).into()),
            ("use_cache_branch".to_string(), input::<bool>(&[1], vec![cache.length > 0])?),
        ];
        inputs.extend(cache.inputs(feed.len())?);
        let mut outputs = self.decoder.run(inputs)?;
        let (dims, logits) = f32_output(&outputs["logits"], "logits")?;
        let (last, vocab) = last_position_logits(&dims, logits);
        cache.update(&mut outputs, 1)?;
        Ok((last, vocab))
    }
}
