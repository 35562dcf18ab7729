//! The tiny captioner bundled in the binary (`bundled:tiny-captioner`), so the demo and a fresh
//! machine caption without a download. It is the model `tests/models/make_captioner.py` trains
//! on drawn shapes: it describes the demo's shapes and nothing else.

use clipline_onnx::model_dir::Bundled;

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
