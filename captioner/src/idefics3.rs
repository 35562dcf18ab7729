//! The Idefics3 / SmolVLM layout (`vision_encoder.onnx`, `embed_tokens.onnx`,
//! `decoder_model_merged.onnx`), as the public SmolVLM ONNX releases are laid out.
//!
//! A clip becomes one chat turn: `<|im_start|>User:` then one image per frame, then the prompt,
//! `<end_of_utterance>\nAssistant:`. Each image is expanded as transformers' Idefics3 processor
//! does: per tile `<fake_token_around_image><row_R_col_C>` and `image_seq_len` `<image>` tokens,
//! a newline after each row, then the global image wrapped in `<fake_token_around_image>`
//! `<global-img>`. The vision encoder runs on every tile of the batch at once; its features
//! replace the embeddings of the `<image>` tokens in order. Prompts of a batch can differ in
//! length (frames of other aspect ratios tile differently), so they are left-padded, with an
//! attention mask and positions counted from each prompt's first real token.

use clipline_onnx::tensor::{f32_output, input};
use clipline_onnx::{open_session, ModelSession, SessionOptions};
use image::RgbImage;
use tokenizers::Tokenizer;

use crate::generate::{last_position_logits, Batch, GenerationSettings};
use crate::kv_cache::KvCache;
use crate::model_files::{DecoderConfig, ModelFiles};
use crate::preprocess::ImageProcessor;
use crate::tiling::{tile, Tiles};
use crate::CaptionError;

const FAKE: &str = "<fake_token_around_image>";
const IMAGE: &str = "<image>";
const GLOBAL: &str = "<global-img>";
const END_OF_UTTERANCE: &str = "<end_of_utterance>";

/// An open Idefics3 captioner.
pub struct Idefics3 {
    vision: ModelSession,
    embed: ModelSession,
    decoder: ModelSession,
    image_token: u32,
    image_seq_len: usize,
    hidden: usize,
    tokens: DecoderConfig,
}

/// A batch ready to decode: token ids (left-padded), the mask, and the tiles' pixels.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `[clips, length]` ids, row-major.
    pub ids: Vec<u32>,
    /// `[clips, length]`, 1 for real tokens.
    pub mask: Vec<i64>,
    /// Prompt length after padding.
    pub length: usize,
    /// `[tiles, 3, side, side]` pixels of every tile, in prompt order.
    pub pixels: Vec<f32>,
    /// Tiles in the batch.
    pub tiles: usize,
    /// Tile side.
    pub side: usize,
}

impl Idefics3 {
    /// Open the three graphs and check their signatures and the tokenizer's image tokens.
    ///
    /// # Errors
    /// When a graph lacks the layout's inputs or outputs, or the tokenizer lacks a token.
    pub fn open(files: &ModelFiles, tokenizer: &Tokenizer, options: &SessionOptions) -> Result<Self, CaptionError> {
        let vision = open_session(&files.graphs[0], options)?;
        vision.require(&["pixel_values"], &["image_features"], "Idefics3 vision encoder")?;
        let embed = open_session(&files.graphs[1], options)?;
        embed.require(&["input_ids"], &["inputs_embeds"], "Idefics3 token embedding")?;
        let decoder = open_session(&files.graphs[2], options)?;
        decoder.require(&["inputs_embeds", "attention_mask"], &["logits"], "Idefics3 merged decoder")?;
        let token = |t: &str| {
            tokenizer.token_to_id(t).ok_or_else(|| CaptionError::Tokenizer(format!("{} has no {t} token: it is not an Idefics3/SmolVLM tokenizer", files.tokenizer.display())))
        };
        for t in [FAKE, GLOBAL] {
            token(t)?;
        }
        let image_token = token(IMAGE)?;
        let mut tokens = files.decoder_config(0);
        tokens.eos.push(token(END_OF_UTTERANCE)?);
        let image_seq_len = image_seq_len(files)?;
        let hidden = files.config_number(&["hidden_size"]).ok_or_else(|| CaptionError::ModelFiles(format!("{}: config.json has no text_config.hidden_size", files.dir.display())))? as usize;
        Ok(Self { vision, embed, decoder, image_token, image_seq_len, hidden, tokens })
    }

    /// The chat prompt of a clip whose frames were cut into `tiles`.
    pub fn prompt(&self, instruction: &str, tiles: &[Tiles]) -> String {
        let mut text = String::from("<|im_start|>User:");
        for t in tiles {
            text.push_str(&image_prompt(t.rows, t.cols, self.image_seq_len));
        }
        text.push_str(instruction);
        text.push_str(END_OF_UTTERANCE);
        text.push_str("\nAssistant:");
        text
    }

    /// Tile every frame, build and tokenize every clip's prompt, pad them to one length.
    ///
    /// # Errors
    /// When the tokenizer fails or the image token count does not match the tiles.
    pub fn prepare(&self, clips: &[&[RgbImage]], instruction: &str, processor: &ImageProcessor, tokenizer: &Tokenizer) -> Result<Prepared, CaptionError> {
        let mut encoded = Vec::with_capacity(clips.len());
        let mut pixels = Vec::new();
        let (mut tiles, mut side) = (0, 0);
        for frames in clips {
            let cut: Vec<Tiles> = frames.iter().map(|f| tile(processor, f)).collect::<Result<_, _>>()?;
            for image in cut.iter().flat_map(|t| &t.images) {
                side = image.width() as usize;
                processor.normalise_into(image, &mut pixels);
                tiles += 1;
            }
            let text = self.prompt(instruction, &cut);
            let ids = tokenizer.encode(text, true).map_err(|e| CaptionError::Tokenizer(e.to_string()))?.get_ids().to_vec();
            encoded.push(ids);
        }
        let length = encoded.iter().map(Vec::len).max().unwrap_or(0);
        let (mut ids, mut mask) = (Vec::with_capacity(length * clips.len()), Vec::with_capacity(length * clips.len()));
        for row in &encoded {
            let padding = length - row.len();
            ids.extend(std::iter::repeat_n(self.tokens.pad, padding).chain(row.iter().copied()));
            mask.extend(std::iter::repeat_n(0, padding).chain(std::iter::repeat_n(1, row.len())));
        }
        let image_tokens = ids.iter().filter(|&&t| t == self.image_token).count();
        if image_tokens != tiles * self.image_seq_len {
            return Err(CaptionError::Tokenizer(format!(
                "the prompts hold {image_tokens} image tokens for {tiles} tiles of {} features each: the tokenizer splits {IMAGE}",
                self.image_seq_len
            )));
        }
        Ok(Prepared { ids, mask, length, pixels, tiles, side })
    }

    /// Generate for every clip of `batch`; `keys` (one per clip) seed sampling.
    ///
    /// # Errors
    /// When a graph fails.
    pub fn generate(&mut self, batch: Prepared, keys: &[&str], settings: &GenerationSettings, extra_stops: &[u32]) -> Result<Batch, CaptionError> {
        let clips = keys.len();
        let Prepared { ids, mut mask, length, pixels, tiles, side } = batch;
        if let Some(limit) = self.tokens.positions.filter(|&p| length >= p) {
            return Err(CaptionError::Input(format!(
                "the prompt takes {length} tokens but the model has {limit} positions: show fewer or smaller frames (caption.frame_positions, caption.frame_max_side)"
            )));
        }
        let settings = &settings.within(self.tokens.positions.map(|p| p - length));
        let features = self.image_features(pixels, tiles, side)?;
        let mut embeds = self.embed(&ids, clips)?;
        let mut next = features.chunks_exact(self.hidden);
        for (i, _) in ids.iter().enumerate().filter(|(_, t)| **t == self.image_token) {
            let row = next.next().ok_or_else(|| CaptionError::Input("fewer image features than image tokens".into()))?;
            embeds[i * self.hidden..(i + 1) * self.hidden].copy_from_slice(row);
        }
        let mut positions: Vec<i64> = mask
            .chunks(length)
            .flat_map(|row| row.iter().scan(0i64, |seen, &m| { *seen += m; Some((*seen - 1).max(0)) }).collect::<Vec<_>>())
            .collect();
        let mut cache = KvCache::new(&self.decoder, self.tokens.cache_dims)?;
        let mut generation = Batch::new(keys, settings.seed);
        let stops = self.tokens.stops(extra_stops);
        let prompts: Vec<Vec<u32>> = ids.chunks(length).map(<[u32]>::to_vec).collect();
        let mut step_len = length;
        loop {
            let (mut logits, vocab) = self.decode(embeds, &mask, &positions, clips, step_len, &mut cache)?;
            let feed = generation.step(&mut logits, vocab, &prompts, &stops, self.tokens.pad, settings);
            if generation.finished() {
                return Ok(generation);
            }
            embeds = self.embed(&feed, clips)?;
            let total = mask.len() / clips;
            mask = mask.chunks(total).flat_map(|row| row.iter().copied().chain([1])).collect();
            positions = positions.chunks(step_len).map(|row| row[row.len() - 1] + 1).collect();
            step_len = 1;
        }
    }

    /// Features of every tile, `[tiles * image_seq_len, hidden]`; every pixel of a tile is real.
    fn image_features(&mut self, pixels: Vec<f32>, tiles: usize, side: usize) -> Result<Vec<f32>, CaptionError> {
        let inputs = vec![
            ("pixel_values".to_string(), input::<f32>(&[1, tiles, 3, side, side], pixels)?),
            ("pixel_attention_mask".to_string(), input::<bool>(&[1, tiles, side, side], vec![true; tiles * side * side])?),
        ];
        let inputs = inputs.into_iter().filter(|(name, _)| self.vision.has_input(name)).collect();
        let outputs = self.vision.run(inputs)?;
        Ok(f32_output(&outputs["image_features"], "image_features")?.1.to_vec())
    }

    fn embed(&mut self, ids: &[u32], clips: usize) -> Result<Vec<f32>, CaptionError> {
        let ids = input::<i64>(&[clips, ids.len() / clips], ids.iter().map(|&t| t as i64).collect())?;
        let outputs = self.embed.run(vec![("input_ids".to_string(), ids)])?;
        Ok(f32_output(&outputs["inputs_embeds"], "inputs_embeds")?.1.to_vec())
    }

    /// One decoder step over `step_len` new positions per clip; returns the last position's
    /// logits, `[clips, vocab]`, and `vocab`.
    fn decode(&mut self, embeds: Vec<f32>, mask: &[i64], positions: &[i64], clips: usize, step_len: usize, cache: &mut KvCache) -> Result<(Vec<f32>, usize), CaptionError> {
        let mut inputs = vec![
            ("inputs_embeds".to_string(), input::<f32>(&[clips, step_len, self.hidden], embeds)?),
            ("attention_mask".to_string(), input::<i64>(&[clips, mask.len() / clips], mask.to_vec())?),
            ("position_ids".to_string(), input::<i64>(&[clips, step_len], positions.to_vec())?),
        ];
        inputs.extend(cache.inputs(clips)?);
        let inputs = inputs.into_iter().filter(|(name, _)| self.decoder.has_input(name)).collect();
        let mut outputs = self.decoder.run(inputs)?;
        let (dims, logits) = f32_output(&outputs["logits"], "logits")?;
        let (last, vocab) = last_position_logits(&dims, logits);
        cache.update(&mut outputs, step_len)?;
        Ok((last, vocab))
    }
}

/// `processor_config.json`'s `image_seq_len`, else what the vision config implies:
/// (image_size / patch_size)² / scale_factor².
fn image_seq_len(files: &ModelFiles) -> Result<usize, CaptionError> {
    let processor = files.dir.join("processor_config.json");
    if let Some(n) = std::fs::read_to_string(&processor).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["image_seq_len"].as_u64()) {
        return Ok(n as usize);
    }
    let vision = &files.config["vision_config"];
    let (size, patch) = (vision["image_size"].as_u64(), vision["patch_size"].as_u64());
    let scale = files.config["scale_factor"].as_u64().unwrap_or(2);
    match (size, patch) {
        (Some(s), Some(p)) if p > 0 && scale > 0 => Ok(((s / p).pow(2) / scale.pow(2)) as usize),
        _ => Err(CaptionError::ModelFiles(format!("{}: neither processor_config.json image_seq_len nor vision_config image_size/patch_size", files.dir.display()))),
    }
}

/// The text an image stands for in the prompt, as transformers' Idefics3 processor writes it.
pub fn image_prompt(rows: usize, cols: usize, seq_len: usize) -> String {
    let image = IMAGE.repeat(seq_len);
    if rows == 0 && cols == 0 {
        return format!("{FAKE}{GLOBAL}{image}{FAKE}");
    }
    let mut text = String::new();
    for r in 1..=rows {
        for c in 1..=cols {
            text.push_str(&format!("{FAKE}<row_{r}_col_{c}>{image}"));
        }
        text.push('\n');
    }
    text.push_str(&format!("\n{FAKE}{GLOBAL}{image}{FAKE}"));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_prompts_follow_the_processor() {
        assert_eq!(image_prompt(0, 0, 2), "<fake_token_around_image><global-img><image><image><fake_token_around_image>");
        assert_eq!(
            image_prompt(1, 2, 1),
            "<fake_token_around_image><row_1_col_1><image><fake_token_around_image><row_1_col_2><image>\n\n<fake_token_around_image><global-img><image><fake_token_around_image>"
        );
    }
}
