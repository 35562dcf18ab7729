//! The tiny embedding models bundled in the binary (`bundled:tiny-vae`,
//! `bundled:tiny-video-vae`, `bundled:tiny-text-encoder`), made by `tests/models/make_embedders.py` at random weights:
//! they give the demo and the tests real graphs of the real layouts without a download.

use clipline_onnx::model_dir::Bundled;

/// The bundled image VAE encoder (AutoencoderKL layout, 8x downsampling, 4 latent channels).
pub const TINY_VAE: Bundled = Bundled {
    name: "tiny-vae",
    files: &[
        ("model.onnx", include_bytes!("../../tests/models/tiny-vae/model.onnx")),
        ("config.json", include_bytes!("../../tests/models/tiny-vae/config.json")),
    ],
};

/// The bundled causal video VAE (Wan layout, exported for clips of 9 frames, 4x temporal and
/// 8x spatial compression, 4 latent channels).
pub const TINY_VIDEO_VAE: Bundled = Bundled {
    name: "tiny-video-vae",
    files: &[
        ("model.onnx", include_bytes!("../../tests/models/tiny-video-vae/model.onnx")),
        ("config.json", include_bytes!("../../tests/models/tiny-video-vae/config.json")),
    ],
};

/// The bundled text encoder (T5 encoder layout, width 32).
pub const TINY_TEXT_ENCODER: Bundled = Bundled {
    name: "tiny-text-encoder",
    files: &[
        ("model.onnx", include_bytes!("../../tests/models/tiny-text-encoder/model.onnx")),
        ("tokenizer.json", include_bytes!("../../tests/models/tiny-text-encoder/tokenizer.json")),
        ("config.json", include_bytes!("../../tests/models/tiny-text-encoder/config.json")),
    ],
};

/// Every bundled embedding model.
pub const ALL: [Bundled; 3] = [TINY_VAE, TINY_VIDEO_VAE, TINY_TEXT_ENCODER];
