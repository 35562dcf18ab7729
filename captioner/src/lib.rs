//! Captioning clips with ONNX vision-language models.
//!
//! A clip is shown to the model as a few frames (20%, 50% and 80% of the way through, by
//! default), because image models describe space well and time badly; the pipeline takes them
//! from frames it already decodes. Two graph layouts run: vision encoder-decoder (ViT-GPT2,
//! Florence-2 family; the frames' states are laid end to end for the decoder) and
//! Idefics3/SmolVLM (a chat prompt with every frame as tiled images), both as the public
//! exporters write them. Generation
//! is batched across clips, greedy unless sampling is asked for, with a KV cache. The same frames
//! can be scored for text in frame ([`text_area`], a PP-OCR detector).

pub mod bundled;
pub mod encoder_decoder;
pub mod generate;
pub mod idefics3;
pub mod kv_cache;
pub mod model_files;
pub mod preprocess;
pub mod prompt;
pub mod text_area;
pub mod tiling;

use std::path::PathBuf;

use clipline_onnx::{OnnxError, SessionOptions};
use image::RgbImage;
use tokenizers::Tokenizer;

use crate::encoder_decoder::EncoderDecoder;
use crate::generate::GenerationSettings;
use crate::idefics3::Idefics3;
use crate::model_files::{Layout, ModelFiles};
use crate::preprocess::ImageProcessor;

/// Why captioning could not start or a batch failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CaptionError {
    /// Model files missing or malformed.
    #[error("model files: {0}")]
    ModelFiles(String),
    /// The tokenizer cannot be loaded or does not fit the model.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// Frames that cannot be shown to the model.
    #[error("input: {0}")]
    Input(String),
    /// ONNX Runtime.
    #[error(transparent)]
    Onnx(#[from] OnnxError),
}

/// What to load and how to generate.
#[derive(Debug, Clone)]
pub struct CaptionerConfig {
    /// The model directory.
    pub model_dir: PathBuf,
    /// Generation settings.
    pub generation: GenerationSettings,
    /// Device and threads.
    pub session: SessionOptions,
    /// The instruction (chat models; the encoder-decoder layout takes no prompt).
    pub prompt: String,
}

/// One clip's caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The text.
    pub text: String,
    /// Tokens generated (end token excluded).
    pub tokens: usize,
    /// Whether generation hit the token limit.
    pub truncated: bool,
    /// Reserved answers recognised (see [`prompt::flags`]).
    pub flags: Vec<String>,
}

enum Model {
    EncoderDecoder(EncoderDecoder),
    Idefics3(Idefics3),
}

/// A loaded captioner.
pub struct Captioner {
    /// `name@hash` of the model files.
    pub model_id: String,
    /// The model's files.
    pub files: ModelFiles,
    model: Model,
    tokenizer: Tokenizer,
    processor: ImageProcessor,
    extra_stops: Vec<u32>,
    generation: GenerationSettings,
    prompt: String,
}

impl Captioner {
    /// Load the model in `config.model_dir`.
    ///
    /// # Errors
    /// Missing or incompatible files, a tokenizer that does not fit, a runtime that cannot load.
    pub fn load(config: CaptionerConfig) -> Result<Self, CaptionError> {
        let files = ModelFiles::open(&config.model_dir)?;
        let tokenizer = Tokenizer::from_file(&files.tokenizer).map_err(|e| CaptionError::Tokenizer(format!("{}: {e}", files.tokenizer.display())))?;
        let mut processor = ImageProcessor::from_file(&files.preprocessor)?;
        let model = match files.layout {
            Layout::EncoderDecoder => {
                let model = EncoderDecoder::open(&files, &config.session)?;
                if let (Some(side), preprocess::Size { height: None, width: None, .. }) = (model.input_side(), processor.size) {
                    processor.size = preprocess::Size { height: Some(side), width: Some(side), ..Default::default() };
                }
                Model::EncoderDecoder(model)
            }
            Layout::Idefics3 => {
                if processor.encoder_side().is_none() {
                    return Err(CaptionError::ModelFiles(format!(
                        "{} has no max_image_size.longest_edge, which the Idefics3 layout tiles frames by",
                        files.preprocessor.display()
                    )));
                }
                Model::Idefics3(Idefics3::open(&files, &tokenizer, &config.session)?)
            }
        };
        check_vocabulary(&files, &tokenizer)?;
        let extra_stops = config
            .generation
            .stop_tokens
            .iter()
            .map(|t| tokenizer.token_to_id(t).ok_or_else(|| CaptionError::Tokenizer(format!("stop token {t:?} is not in {}", files.tokenizer.display()))))
            .collect::<Result<_, _>>()?;
        Ok(Self { model_id: files.model_id()?, files, model, tokenizer, processor, extra_stops, generation: config.generation, prompt: config.prompt })
    }

    /// The image processor in use.
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Caption a batch of clips, each shown as the same number of frames; `keys` (one per
    /// clip, its id) seed sampling.
    ///
    /// # Errors
    /// When the frames cannot be preprocessed or the model fails; the caller retries clips
    /// alone to find the bad one.
    pub fn caption(&mut self, clips: &[&[RgbImage]], keys: &[&str]) -> Result<Vec<Generated>, CaptionError> {
        let frames = clips.first().map_or(0, |c| c.len());
        if frames == 0 || clips.iter().any(|c| c.len() != frames) {
            let counts: Vec<usize> = clips.iter().map(|c| c.len()).collect();
            return Err(CaptionError::Input(format!("every clip of a batch needs the same, non-zero number of frames (got {counts:?})")));
        }
        let batch = match &mut self.model {
            Model::EncoderDecoder(model) => {
                let images: Vec<&RgbImage> = clips.iter().flat_map(|c| c.iter()).collect();
                let (shape, pixels) = self.processor.batch(&images)?;
                let states = model.encode(&shape, pixels, frames)?;
                model.generate(&states, keys, &self.generation, &self.extra_stops)?
            }
            Model::Idefics3(model) => {
                let prepared = model.prepare(clips, &self.prompt, &self.processor, &self.tokenizer)?;
                model.generate(prepared, keys, &self.generation, &self.extra_stops)?
            }
        };
        batch
            .generated
            .iter()
            .zip(&batch.stopped)
            .map(|(tokens, &stopped)| {
                let text = self.tokenizer.decode(tokens, true).map_err(|e| CaptionError::Tokenizer(e.to_string()))?.trim().to_string();
                Ok(Generated { flags: prompt::flags(&text), tokens: tokens.len(), truncated: !stopped, text })
            })
            .collect()
    }

    /// The encoder-decoder model, for checks against other runtimes.
    pub fn encoder_decoder(&mut self) -> Option<&mut EncoderDecoder> {
        match &mut self.model {
            Model::EncoderDecoder(m) => Some(m),
            Model::Idefics3(_) => None,
        }
    }

    /// The Idefics3 model and what preparing its inputs needs, for checks against other
    /// runtimes.
    pub fn idefics3(&mut self) -> Option<(&mut Idefics3, &ImageProcessor, &Tokenizer, &str)> {
        match &mut self.model {
            Model::Idefics3(m) => Some((m, &self.processor, &self.tokenizer, &self.prompt)),
            Model::EncoderDecoder(_) => None,
        }
    }
}

/// The tokenizer must not produce ids the decoder has no logits for.
fn check_vocabulary(files: &ModelFiles, tokenizer: &Tokenizer) -> Result<(), CaptionError> {
    let model_vocab = files.config_number(&["vocab_size"]);
    let tokenizer_vocab = tokenizer.get_vocab_size(true) as u64;
    match model_vocab {
        Some(v) if tokenizer_vocab > v => Err(CaptionError::Tokenizer(format!(
            "{} has {tokenizer_vocab} tokens but the model's vocabulary is {v}: the tokenizer belongs to another model",
            files.tokenizer.display()
        ))),
        _ => Ok(()),
    }
}
