//! The per-user caches: clipline's own, shared by its scripts and crates (`scripts/setup.sh`
//! links the ONNX Runtime library into `lib/` there; bundled and wheel-laid models live in
//! `models/`), and the Hugging Face hub cache, shared with transformers and `huggingface-cli`,
//! where models from the hub are pulled.

use std::path::PathBuf;

/// `$CLIPLINE_CACHE`, else `~/.cache/clipline` (the default of `scripts/env.sh`), else a
/// directory under the system's temporary directory when there is no home.
pub fn cache_dir() -> PathBuf {
    crate::env::path(crate::env::CLIPLINE_CACHE)
        .or_else(|| crate::env::path("HOME").map(|h| h.join(".cache/clipline")))
        .unwrap_or_else(|| std::env::temp_dir().join("clipline"))
}

/// The Hugging Face hub cache, found as the hub's own clients find it: `$HF_HUB_CACHE`, else
/// `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
pub fn hub_cache_dir() -> PathBuf {
    crate::env::path(crate::env::HF_HUB_CACHE)
        .or_else(|| crate::env::path(crate::env::HF_HOME).map(|h| h.join("hub")))
        .or_else(|| crate::env::path("HOME").map(|h| h.join(".cache/huggingface/hub")))
        .unwrap_or_else(|| std::env::temp_dir().join("huggingface/hub"))
}
