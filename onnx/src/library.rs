//! Finding and loading the ONNX Runtime shared library, once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::ExecutionProvider;

use crate::OnnxError;

/// The ONNX Runtime version `ort` is built against (its API 31); `scripts/setup.sh` installs it.
pub const WANTED_VERSION: &str = "1.31.1";

/// The loaded runtime.
pub struct Runtime {
    /// The library file.
    pub library: PathBuf,
    /// Its version.
    pub version: String,
    /// Execution providers the library offers.
    pub providers: Vec<&'static str>,
    pub(crate) environment: Environment,
}

static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();

/// The process's runtime, loaded on first use.
///
/// # Errors
/// When no library is found, or it cannot be loaded (a wrong version among the reasons).
pub fn runtime() -> Result<&'static Runtime, OnnxError> {
    let loaded = RUNTIME.get_or_init(|| load().map_err(|e| e.to_string()));
    loaded.as_ref().map_err(|message| OnnxError::Unavailable(message.clone()))
}

fn load() -> Result<Runtime, OnnxError> {
    let found = locate_library()?;
    let library = std::fs::canonicalize(&found).unwrap_or(found);
    let path = library.display().to_string();
    let builder = ort::init_from(&library).map_err(|e| OnnxError::Library { path: path.clone(), message: e.to_string() })?;
    let environment = builder.with_name("clipline").build().map_err(|e| OnnxError::Library { path: path.clone(), message: e.to_string() })?;
    let version = version_of(&library, ort::info());
    let mut providers = vec!["CPU"];
    if ort::ep::CUDA::is_available().unwrap_or(false) {
        providers.push("CUDA");
    }
    tracing::debug!(library = %path, %version, ?providers, "loaded ONNX Runtime");
    Ok(Runtime { library, version, providers, environment })
}

/// The version from the build string (`git-branch=rel-1.31.1`), else from the file name.
fn version_of(library: &Path, build_info: &str) -> String {
    let from_info = build_info.split([',', ' ']).find_map(|part| part.trim().strip_prefix("git-branch=rel-")).filter(|v| !v.is_empty()).map(str::to_string);
    from_info.unwrap_or_else(|| {
        let name = library.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        name.split_once(".so.").map(|(_, v)| v.to_string()).unwrap_or_else(|| "unknown".into())
    })
}

/// Where the library is: `CLIPLINE_ORT_LIB` or `ORT_DYLIB_PATH` when set, else the set-up's
/// link under `$CLIPLINE_CACHE/lib` (default `~/.cache/clipline/lib`), else an `onnxruntime`
/// wheel in the set-up's virtual environment, else the system library directories.
///
/// # Errors
/// When none of these holds a library.
pub fn locate_library() -> Result<PathBuf, OnnxError> {
    for var in clipline_core::env::ORT_LIBRARY {
        if let Some(path) = clipline_core::env::path(var) {
            return if path.is_file() {
                Ok(path)
            } else {
                Err(OnnxError::Library { path: path.display().to_string(), message: format!("{var} names no file") })
            };
        }
    }
    let dirs = search_dirs();
    dirs.iter().find_map(|dir| library_in(dir)).ok_or_else(|| OnnxError::LibraryNotFound {
        searched: dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "),
    })
}

fn search_dirs() -> Vec<PathBuf> {
    let cache = clipline_core::cache::cache_dir();
    let mut dirs = vec![cache.join("lib")];
    let wheel = cache.join("venv/lib/python3*/site-packages/onnxruntime/capi");
    dirs.extend(glob::glob(&wheel.to_string_lossy()).into_iter().flatten().flatten());
    dirs.extend(["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu"].map(PathBuf::from));
    dirs
}

/// The library in `dir`: the plain name, else the highest versioned `libonnxruntime.so.X.Y.Z`.
fn library_in(dir: &Path) -> Option<PathBuf> {
    let plain = dir.join("libonnxruntime.so");
    if plain.is_file() {
        return Some(plain);
    }
    let mut versioned: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("libonnxruntime.so.")))
        .collect();
    versioned.sort();
    versioned.pop()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_comes_from_the_build_string_or_the_file_name() {
        let info = "ORT Build Info: git-branch=rel-1.31.1, git-commit-id=abc, build type=Release";
        assert_eq!(version_of(Path::new("/x/libonnxruntime.so"), info), "1.31.1");
        assert_eq!(version_of(Path::new("/x/libonnxruntime.so.1.30.0"), "custom build"), "1.30.0");
    }

    #[test]
    fn versioned_library_files_are_found() {
        let dir = tempfile::tempdir().unwrap();
        assert!(library_in(dir.path()).is_none());
        std::fs::write(dir.path().join("libonnxruntime.so.1.31.1"), b"").unwrap();
        assert_eq!(library_in(dir.path()).unwrap(), dir.path().join("libonnxruntime.so.1.31.1"));
    }
}
