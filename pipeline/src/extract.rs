//! Per-clip files: a frame-exact re-encoded clip and the middle frame as an image.
//!
//! Each is one ffmpeg call with an accurate input seek to a time between the wanted frame and the
//! one before it (taken from the packet timeline), so ffmpeg decodes from the nearest keyframe
//! and drops everything before the wanted frame; `-frames:v` then stops exactly at the clip's
//! end. The file is written to a temporary directory and uploaded atomically to the output store.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clipline_core::storage::Store;

use crate::config::ClipsConfig;
use crate::tools::{last_error_line, run_limited, Limits, Tools};

/// Where a clip's frames are in the source.
#[derive(Debug, Clone, Copy)]
pub struct Seek {
    /// Input seek time, seconds from the container start, between the wanted frame's PTS and
    /// its predecessor's.
    pub time: f64,
    /// Stream index to map.
    pub stream: u32,
}

fn scale_filter(max_side: u32) -> Option<String> {
    (max_side > 0).then(|| {
        format!("scale=w='min({max_side},iw)':h='min({max_side},ih)':force_original_aspect_ratio=decrease:force_divisible_by=2")
    })
}

/// How extraction runs ffmpeg: which binary, under which limits, cancelled by which flag.
pub struct Runner<'a> {
    /// ffmpeg and ffprobe.
    pub tools: &'a Tools,
    /// Time limits per process.
    pub limits: Limits,
    /// The run's cancellation flag.
    pub cancel: Arc<AtomicBool>,
}

impl Runner<'_> {
    fn run(&self, cmd: Command, dest: &Path) -> Result<(), String> {
        let done = run_limited(cmd, self.limits, self.cancel.clone()).map_err(|e| format!("ffmpeg {e}"))?;
        let written = std::fs::metadata(dest).map(|m| m.len()).unwrap_or(0);
        if !done.success || written == 0 {
            return Err(format!("ffmpeg could not write {}: {}", dest.display(), last_error_line(&done.stderr)));
        }
        Ok(())
    }
}

fn base_command(tools: &Tools, source: &Path, seek: Seek) -> Command {
    let mut cmd = Command::new(&tools.ffmpeg);
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-ss", &format!("{:.6}", seek.time.max(0.0))])
        .arg("-i")
        .arg(source)
        .args(["-map", &format!("0:{}", seek.stream), "-an", "-sn", "-dn"]);
    cmd
}

/// Write frames `seek..seek+frames` of `source` as a video file at `dest`.
///
/// # Errors
/// A message naming the clip when ffmpeg fails or is killed.
pub fn write_clip(runner: &Runner, source: &Path, seek: Seek, frames: u64, cfg: &ClipsConfig, dest: &Path) -> Result<(), String> {
    let mut cmd = base_command(runner.tools, source, seek);
    cmd.args(["-frames:v", &frames.to_string(), "-fps_mode", "passthrough"]);
    if let Some(filter) = scale_filter(cfg.max_side) {
        cmd.args(["-vf", &filter]);
    }
    cmd.args(["-c:v", &cfg.codec, "-crf", &cfg.crf.to_string(), "-preset", &cfg.preset, "-pix_fmt", "yuv420p"])
        .args(["-movflags", "+faststart"])
        .arg(dest);
    runner.run(cmd, dest)
}

/// Write the frame at `seek` of `source` as an image at `dest` (format from its extension).
///
/// # Errors
/// A message naming the frame when ffmpeg fails or is killed.
pub fn write_frame(runner: &Runner, source: &Path, seek: Seek, max_side: u32, dest: &Path) -> Result<(), String> {
    let mut cmd = base_command(runner.tools, source, seek);
    cmd.args(["-frames:v", "1", "-q:v", "2"]);
    if let Some(filter) = scale_filter(max_side) {
        cmd.args(["-vf", &filter]);
    }
    cmd.arg(dest);
    runner.run(cmd, dest)
}

/// Upload a finished local file to `key` of the output store.
///
/// # Errors
/// The storage error, naming the key.
pub async fn upload(store: &Store, key: &str, file: &Path) -> Result<String, String> {
    store.put_file(key, file).await.map_err(|e| e.to_string())?;
    Ok(store.uri_of(key))
}
