//! The tiny captioner bundled in the binary (`bundled:tiny-captioner`), so the demo and a fresh
//! machine caption without a download. It is the model `tests/models/make_captioner.py` trains
//! on drawn shapes: it describes the demo's shapes and nothing else.

use std::path::{Path, PathBuf};

use clipline_onnx::model_dir::{resolve_model_dir, Bundled};

use crate::CaptionError;

/// Name of the bundled model in configs.
pub const TINY_CAPTIONER: &str = "bundled:tiny-captioner";

const FILES: [(&str, &[u8]); 6] = [
    ("encoder_model.onnx", include_bytes!("../../tests/models/tiny-captioner/encoder_model.onnx")),
    ("decoder_model_merged.onnx", include_bytes!("../../tests/models/tiny-captioner/decoder_model_merged.onnx")),
    ("tokenizer.json", include_bytes!("../../tests/models/tiny-captioner/tokenizer.json")),
    ("preprocessor_config.json", include_bytes!("../../tests/models/tiny-captioner/preprocessor_config.json")),
    ("config.json", include_bytes!("../../tests/models/tiny-captioner/config.json")),
    ("generation_config.json", include_bytes!("../../tests/models/tiny-captioner/generation_config.json")),
];

/// The bundled captioner.
pub const BUNDLED: Bundled = Bundled { name: "tiny-captioner", files: &FILES };

/// The model directory a config's `model` names: the bundled model (written under `cache` on
/// first use, in a directory named by its content) or a directory path.
///
/// # Errors
/// When a bundled model cannot be written, or the name is neither bundled nor a directory.
pub fn resolve_model(spec: &str, cache: &Path) -> Result<PathBuf, CaptionError> {
    resolve_model_dir(spec, &[BUNDLED], cache, "caption model").map_err(CaptionError::ModelFiles)
}
