//! The per-user cache shared by clipline's scripts and crates: `scripts/setup.sh` links the
//! ONNX Runtime library into `lib/` there, bundled and downloaded models live in `models/`.

use std::path::PathBuf;

/// `$CLIPLINE_CACHE`, else `~/.cache/clipline` (the default of `scripts/env.sh`), else a
/// directory under the system's temporary directory when there is no home.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("CLIPLINE_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/clipline")))
        .unwrap_or_else(|| std::env::temp_dir().join("clipline"))
}
