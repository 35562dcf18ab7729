//! Text encoders: T5-encoder, CLIP-text and BERT-style layouts, as optimum exports them.
//!
//! Inputs `input_ids` and, when the graph has them, `attention_mask` and `token_type_ids`
//! `[B,S]`; output `last_hidden_state` `[B,S,D]`. Captions are tokenized with the model's
//! `tokenizer.json`, cut at `max_tokens`, padded to the longest in the batch; each caption's
//! embedding keeps only its real tokens (`[L,D]`), which is what a trainer's cross-attention
//! masks down to anyway and a large saving over padding every caption to the maximum.

use std::path::Path;

use clipline_onnx::{open_session, tensor, ModelSession, SessionOptions};
use tokenizers::{Tokenizer, TruncationParams};

use crate::EmbedError;

/// A caption's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEmbedding {
    /// Tokens kept.
    pub tokens: usize,
    /// Width of each token's vector.
    pub width: usize,
    /// [tokens, width] values.
    pub values: Vec<f32>,
}

/// A loaded text encoder.
pub struct TextEncoder {
    session: ModelSession,
    tokenizer: Tokenizer,
    pad_id: i64,
    /// `name@hash` of the graph and tokenizer.
    pub model_id: String,
    /// Tokens kept at most.
    pub max_tokens: usize,
}

impl TextEncoder {
    /// Load `dir` (`model.onnx` and `tokenizer.json`, optionally `config.json`, directly or
    /// under `text_encoder/`).
    ///
    /// # Errors
    /// When files are missing or the graph lacks the `input_ids` → `last_hidden_state` signature.
    pub fn load(dir: &Path, max_tokens: usize, options: &SessionOptions) -> Result<Self, EmbedError> {
        let files = [dir.to_path_buf(), dir.join("text_encoder")]
            .into_iter()
            .find(|d| d.join("model.onnx").is_file() && d.join("tokenizer.json").is_file())
            .ok_or_else(|| EmbedError::ModelFiles(format!("{} holds no text encoder: expected model.onnx and tokenizer.json in it or in text_encoder/", dir.display())))?;
        let (model, tokenizer_path) = (files.join("model.onnx"), files.join("tokenizer.json"));
        let mut tokenizer = Tokenizer::from_file(&tokenizer_path).map_err(|e| EmbedError::ModelFiles(format!("{}: {e}", tokenizer_path.display())))?;
        // Each caption keeps its own length: padding is done here, to the batch's longest.
        tokenizer
            .with_padding(None)
            .with_truncation(Some(TruncationParams { max_length: max_tokens.max(1), ..Default::default() }))
            .map_err(|e| EmbedError::ModelFiles(format!("{}: {e}", tokenizer_path.display())))?;
        let config: serde_json::Value = std::fs::read_to_string(files.join("config.json")).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
        let session = open_session(&model, options)?;
        session.require(&["input_ids"], &["last_hidden_state"], "text encoder (T5 / CLIP / BERT)")?;
        Ok(Self {
            model_id: clipline_onnx::model_dir::model_id(dir, &[&model, &tokenizer_path]).map_err(EmbedError::ModelFiles)?,
            pad_id: config["pad_token_id"].as_i64().unwrap_or(0),
            session,
            tokenizer,
            max_tokens: max_tokens.max(1),
        })
    }

    /// Embed a batch of texts.
    ///
    /// # Errors
    /// When tokenizing or the model fails.
    pub fn encode(&mut self, texts: &[&str]) -> Result<Vec<TextEmbedding>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let encodings = self.tokenizer.encode_batch(texts.to_vec(), true).map_err(|e| EmbedError::Input(format!("cannot tokenize: {e}")))?;
        let lengths: Vec<usize> = encodings.iter().map(|e| e.get_ids().len().max(1)).collect();
        let seq = *lengths.iter().max().expect("non-empty batch");
        let (mut ids, mut mask) = (vec![self.pad_id; texts.len() * seq], vec![0i64; texts.len() * seq]);
        for (row, encoding) in encodings.iter().enumerate() {
            for (i, id) in encoding.get_ids().iter().enumerate() {
                ids[row * seq + i] = i64::from(*id);
            }
            mask[row * seq..row * seq + lengths[row]].fill(1);
        }
        let shape = [texts.len(), seq];
        let mut inputs = vec![("input_ids".to_string(), tensor::input(&shape, ids)?)];
        if self.session.has_input("attention_mask") {
            inputs.push(("attention_mask".to_string(), tensor::input(&shape, mask)?));
        }
        if self.session.has_input("token_type_ids") {
            inputs.push(("token_type_ids".to_string(), tensor::input(&shape, vec![0i64; shape[0] * seq])?));
        }
        let outputs = self.session.run(inputs)?;
        let (out_shape, values) = tensor::f32_output(&outputs["last_hidden_state"], "last_hidden_state")?;
        let [b, s, width] = out_shape[..] else {
            return Err(EmbedError::Input(format!("last_hidden_state has shape {out_shape:?}, expected [batch, tokens, width]")));
        };
        if b != texts.len() || s != seq {
            return Err(EmbedError::Input(format!("last_hidden_state has shape {out_shape:?} for a batch of {} by {seq} tokens", texts.len())));
        }
        Ok(lengths
            .iter()
            .enumerate()
            .map(|(row, &tokens)| TextEmbedding { tokens, width, values: values[row * seq * width..(row * seq + tokens) * width].to_vec() })
            .collect())
    }
}
