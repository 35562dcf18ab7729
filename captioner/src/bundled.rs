//! The tiny captioner bundled in the binary (`bundled:tiny-captioner`), so the demo and a fresh
//! machine caption without a download. It is the model `tests/models/make_captioner.py` trains
//! on drawn shapes: it describes the demo's shapes and nothing else.

use std::path::{Path, PathBuf};

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

/// The model directory a config's `model` names: a bundled model (written under `cache` on
/// first use, in a directory named by its content) or a directory path.
///
/// # Errors
/// When a bundled model cannot be written, or the name is neither bundled nor a directory.
pub fn resolve_model(spec: &str, cache: &Path) -> Result<PathBuf, CaptionError> {
    if spec != TINY_CAPTIONER {
        let dir = PathBuf::from(spec);
        return if dir.is_dir() {
            Ok(dir)
        } else {
            Err(CaptionError::ModelFiles(format!("caption model {spec:?} is neither a model directory nor {TINY_CAPTIONER}")))
        };
    }
    let mut hasher = blake3::Hasher::new();
    for (name, bytes) in FILES {
        hasher.update(name.as_bytes());
        hasher.update(bytes);
    }
    let dir = cache.join("models").join(format!("tiny-captioner-{}", &hasher.finalize().to_hex()[..12]));
    if !dir.join(FILES[0].0).is_file() {
        let staging = cache.join("models").join(format!(".staging-{}", std::process::id()));
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&staging)?;
            for (name, bytes) in FILES {
                std::fs::write(staging.join(name), bytes)?;
            }
            match std::fs::rename(&staging, &dir) {
                Err(_) if dir.join(FILES[0].0).is_file() => std::fs::remove_dir_all(&staging),
                other => other,
            }
        };
        write().map_err(|e| CaptionError::ModelFiles(format!("cannot write the bundled model to {}: {e}", dir.display())))?;
    }
    Ok(dir)
}
