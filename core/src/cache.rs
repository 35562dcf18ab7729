//! The per-user cache shared by clipline's scripts and crates: `scripts/setup.sh` links the
//! ONNX Runtime library into `lib/` there, bundled and downloaded models live in `models/`.

use std::path::PathBuf;

/// `$CLIPLINE_CACHE`, else `~/.cache/clipline` (the default of `scripts/env.sh`), else a
/// directory under the system's temporary directory when there is no home.
pub fn cache_dir() -> PathBuf {
    crate::env::path(crate::env::CLIPLINE_CACHE)
        .or_else(|| crate::env::path("HOME").map(|h| h.join(".cache/clipline")))
        .unwrap_or_else(|| std::env::temp_dir().join("clipline"))
}
