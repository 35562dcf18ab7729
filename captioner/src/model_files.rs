//! A captioning model on disk: which layout its ONNX files have, its tokenizer, configs, and
//! the id its captions are recorded under.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::CaptionError;

/// The graph layouts clipline can run, as optimum and the public ONNX releases export them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Vision encoder-decoder with past key values: `encoder_model.onnx`,
    /// `decoder_model_merged.onnx` (ViT-GPT2, Florence-2 family).
    EncoderDecoder,
    /// Idefics3 / SmolVLM: `vision_encoder.onnx`, `embed_tokens.onnx`,
    /// `decoder_model_merged.onnx`, with a chat prompt and several images.
    Idefics3,
}

impl Layout {
    /// The ONNX files of the layout.
    pub fn graphs(self) -> &'static [&'static str] {
        match self {
            Layout::EncoderDecoder => &["encoder_model.onnx", "decoder_model_merged.onnx"],
            Layout::Idefics3 => &["vision_encoder.onnx", "embed_tokens.onnx", "decoder_model_merged.onnx"],
        }
    }
}

/// What generating with a model's decoder needs from its configs, alike for every layout.
#[derive(Debug, Clone)]
pub struct DecoderConfig {
    /// End tokens.
    pub eos: Vec<u32>,
    /// The token fed to sequences that have ended (and left padding).
    pub pad: u32,
    /// `[key/value heads, head size]`, for cache inputs whose graph leaves them dynamic.
    pub cache_dims: Option<[usize; 2]>,
    /// Learned positions (GPT-2's `n_positions`, Llama's `max_position_embeddings`).
    pub positions: Option<usize>,
}

impl DecoderConfig {
    /// The end tokens and `extra` stop tokens.
    pub fn stops(&self, extra: &[u32]) -> Vec<u32> {
        self.eos.iter().chain(extra).copied().collect()
    }
}

/// The files of one model.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The model directory.
    pub dir: PathBuf,
    /// Its layout.
    pub layout: Layout,
    /// The ONNX graphs, in [`Layout::graphs`] order.
    pub graphs: Vec<PathBuf>,
    /// `tokenizer.json`.
    pub tokenizer: PathBuf,
    /// `preprocessor_config.json`.
    pub preprocessor: PathBuf,
    /// `config.json`.
    pub config: Value,
    /// `generation_config.json` (empty when absent).
    pub generation: Value,
}

fn read_json(path: &Path, required: bool) -> Result<Value, CaptionError> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| CaptionError::ModelFiles(format!("{} is not valid JSON: {e}", path.display()))),
        Err(_) if !required => Ok(Value::Null),
        Err(e) => Err(CaptionError::ModelFiles(format!("{}: {e}", path.display()))),
    }
}

impl ModelFiles {
    /// Find the layout of the model in `dir` (graphs in `dir` or `dir/onnx`).
    ///
    /// # Errors
    /// When the directory holds no known layout or misses a file, naming what is missing.
    pub fn open(dir: &Path) -> Result<Self, CaptionError> {
        if !dir.is_dir() {
            return Err(CaptionError::ModelFiles(format!("{} is not a directory; give a model directory or a known model id (clipline models list)", dir.display())));
        }
        let find = |name: &str| [dir.join(name), dir.join("onnx").join(name)].into_iter().find(|p| p.is_file());
        let layout = [Layout::Idefics3, Layout::EncoderDecoder]
            .into_iter()
            .find(|l| find(l.graphs()[0]).is_some())
            .ok_or_else(|| {
                CaptionError::ModelFiles(format!(
                    "{} holds neither layout: expected encoder_model.onnx + decoder_model_merged.onnx (vision encoder-decoder) \
                     or vision_encoder.onnx + embed_tokens.onnx + decoder_model_merged.onnx (Idefics3/SmolVLM)",
                    dir.display()
                ))
            })?;
        let graphs = layout
            .graphs()
            .iter()
            .map(|g| find(g).ok_or_else(|| CaptionError::ModelFiles(format!("{} lacks {g} (needed by the {layout:?} layout)", dir.display()))))
            .collect::<Result<Vec<_>, _>>()?;
        let file = |name: &str| {
            let path = dir.join(name);
            if path.is_file() { Ok(path) } else { Err(CaptionError::ModelFiles(format!("{} lacks {name}", dir.display()))) }
        };
        Ok(Self {
            dir: dir.to_path_buf(),
            layout,
            graphs,
            tokenizer: file("tokenizer.json")?,
            preprocessor: file("preprocessor_config.json")?,
            config: read_json(&dir.join("config.json"), true)?,
            generation: read_json(&dir.join("generation_config.json"), false)?,
        })
    }

    /// The id captions are recorded under: the directory name and a hash of the graphs and
    /// tokenizer, so a retrained or requantised model never passes for the old one.
    ///
    /// # Errors
    /// When a file cannot be read.
    pub fn model_id(&self) -> Result<String, CaptionError> {
        let files: Vec<&Path> = self.graphs.iter().chain([&self.tokenizer]).map(PathBuf::as_path).collect();
        clipline_onnx::model_dir::model_id(&self.dir, &files).map_err(CaptionError::ModelFiles)
    }

    /// A token id from `generation_config.json`, falling back to `config.json` (top level,
    /// then its `decoder` or `text_config` section); lists give all their ids.
    pub fn token_ids(&self, key: &str) -> Vec<u32> {
        let sections = [&self.generation, &self.config, &self.config["decoder"], &self.config["text_config"]];
        for section in sections {
            match &section[key] {
                Value::Number(n) => return n.as_u64().map(|n| vec![n as u32]).unwrap_or_default(),
                Value::Array(list) => return list.iter().filter_map(Value::as_u64).map(|n| n as u32).collect(),
                _ => {}
            }
        }
        Vec::new()
    }

    /// The decoder's end and pad tokens, cache dimensions and positions; the pad token falls
    /// back to the first end token, then to `default_pad`.
    pub fn decoder_config(&self, default_pad: u32) -> DecoderConfig {
        let eos = self.token_ids("eos_token_id");
        let pad = self.token_ids("pad_token_id").first().or(eos.first()).copied().unwrap_or(default_pad);
        let heads = self.config_number(&["n_head", "num_attention_heads", "decoder_attention_heads"]);
        let kv_heads = self.config_number(&["num_key_value_heads"]).or(heads);
        let hidden = self.config_number(&["n_embd", "hidden_size", "d_model"]);
        let cache_dims = kv_heads.zip(heads).zip(hidden).map(|((kv, h), d)| [kv as usize, (d / h.max(1)) as usize]);
        let positions = self.config_number(&["n_positions", "max_position_embeddings"]).map(|p| p as usize);
        DecoderConfig { eos, pad, cache_dims, positions }
    }

    /// A number from `config.json`: top level, or its `decoder` / `text_config` section.
    pub fn config_number(&self, keys: &[&str]) -> Option<u64> {
        let sections = [&self.config["decoder"], &self.config["text_config"], &self.config];
        sections.iter().find_map(|s| keys.iter().find_map(|k| s[*k].as_u64()))
    }
}
