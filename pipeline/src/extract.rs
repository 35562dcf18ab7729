//! Per-clip files: a frame-exact re-encoded clip, the middle frame as an image, the frames the
//! captioner sees, and the bucket's frames the embedder encodes.
//!
//! One seek per clip feeds them all: an accurate input seek to a time between the clip's first
//! frame and the one before it (taken from the packet timeline) makes ffmpeg decode from the
//! nearest keyframe and drop everything before that frame; `-frames:v` stops the clip exactly at
//! its end, and `select` picks single frames (the middle one, the caption frames) from the same
//! decoded frames. A few clips of a video share one ffmpeg process (one input each). Files are
//! written to a temporary directory and uploaded atomically to the output store.

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

/// One file an extraction writes.
pub enum Output<'a> {
    /// The clip: `frames` frames from the seek point, re-encoded.
    Clip {
        /// Frames to write.
        frames: u64,
        /// Encoder settings.
        cfg: &'a ClipsConfig,
        /// Where.
        dest: &'a Path,
    },
    /// One image: the frame `offset` frames after the seek point.
    Frame {
        /// Frames after the seek point.
        offset: u64,
        /// Largest side (0: source size).
        max_side: u32,
        /// Where; the extension picks the format.
        dest: &'a Path,
    },
    /// Raw RGB frames for the embedder: `count` frames `stride` apart from `first` (frames
    /// after the seek point), resized to cover `width × height` and centre-cropped to it.
    Raw {
        /// First frame after the seek point.
        first: u64,
        /// Frames taken.
        count: u64,
        /// Frames between two taken.
        stride: u64,
        /// Output width.
        width: u32,
        /// Output height.
        height: u32,
        /// Where (packed `rgb24`).
        dest: &'a Path,
    },
}

impl Output<'_> {
    fn dest(&self) -> &Path {
        match self {
            Output::Clip { dest, .. } | Output::Frame { dest, .. } | Output::Raw { dest, .. } => dest,
        }
    }

    fn append_to(&self, cmd: &mut Command, input: usize, stream: u32) {
        cmd.args(["-map", &format!("{input}:{stream}"), "-an", "-sn", "-dn"]);
        match self {
            Output::Clip { frames, cfg, dest } => {
                cmd.args(["-frames:v", &frames.to_string(), "-fps_mode", "passthrough"]);
                if let Some(filter) = scale_filter(cfg.max_side) {
                    cmd.args(["-vf", &filter]);
                }
                cmd.args(["-c:v", &cfg.codec, "-crf", &cfg.crf.to_string(), "-preset", &cfg.preset, "-pix_fmt", "yuv420p"])
                    .args(["-movflags", "+faststart"])
                    .arg(dest);
            }
            Output::Frame { offset, max_side, dest } => {
                let select = format!("select=eq(n\\,{offset})");
                let filter = match scale_filter(*max_side) {
                    Some(scale) => format!("{select},{scale}"),
                    None => select,
                };
                cmd.args(["-vf", &filter, "-frames:v", "1", "-q:v", "2"]).arg(dest);
            }
            Output::Raw { first, count, stride, width, height, dest } => {
                let last = first + (count - 1) * stride;
                let filter = format!(
                    "select=between(n\\,{first}\\,{last})*not(mod(n-{first}\\,{stride})),\
                     scale={width}:{height}:force_original_aspect_ratio=increase:flags=bicubic,crop={width}:{height}"
                );
                cmd.args(["-vf", &filter, "-fps_mode", "passthrough", "-frames:v", &count.to_string()])
                    .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
                    .arg(dest);
            }
        }
    }
}

/// The outputs that one seek feeds.
pub struct Job<'a> {
    /// Where to seek.
    pub seek: Seek,
    /// What to write from the frames after it.
    pub outputs: Vec<Output<'a>>,
}

impl Runner<'_> {
    /// Write every job's outputs in one ffmpeg process: one input per job, each with its own
    /// accurate seek (each start of Debian's ffmpeg costs about 80 ms of library loading, more
    /// than a short seek-and-decode). Keep batches small: each input holds a decoder.
    ///
    /// # Errors
    /// A message naming the file when ffmpeg fails, is killed, or leaves an output empty.
    pub fn extract(&self, source: &Path, jobs: &[Job]) -> Result<(), String> {
        let mut cmd = self.tools.untrusted(&self.tools.ffmpeg);
        cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-y"]);
        for job in jobs {
            cmd.args(["-ss", &format!("{:.6}", job.seek.time.max(0.0))]).arg("-i").arg(source);
        }
        for (input, job) in jobs.iter().enumerate() {
            for output in &job.outputs {
                output.append_to(&mut cmd, input, job.seek.stream);
            }
        }
        let done = run_limited(cmd, self.limits, self.cancel.clone()).map_err(|e| format!("ffmpeg {e}"))?;
        for output in jobs.iter().flat_map(|j| &j.outputs) {
            let written = std::fs::metadata(output.dest()).map(|m| m.len()).unwrap_or(0);
            if !done.success || written == 0 {
                return Err(format!("ffmpeg could not write {}: {}", output.dest().display(), last_error_line(&done.stderr)));
            }
        }
        Ok(())
    }
}

/// Upload a finished local file to `key` of the output store.
///
/// # Errors
/// The storage error, naming the key.
pub async fn upload(store: &Store, key: &str, file: &Path) -> Result<String, String> {
    store.put_file(key, file).await.map_err(|e| e.to_string())?;
    Ok(store.uri_of(key))
}
