//! The analysis decode: each source is decoded once, through ffmpeg (driven by ffmpeg-sidecar),
//! scaled inside ffmpeg to a small fixed size in RGB, and every frame is handed to a callback in
//! decode order. Shot detection and the per-frame scores share this one pass.
//!
//! `-fps_mode passthrough` keeps ffmpeg from duplicating or dropping frames, so frame `n` of the
//! callback is decoded frame `n` of the source, and a [`crate::tools::Watchdog`] kills a decoder
//! that stalls.
//!
//! A second size (TransNetV2's 48×27) comes from the same decode: the decoded frame is split in
//! ffmpeg, each copy scaled on its own (the second exactly as `-s WxH` scales, so the model sees
//! the frames its reference implementation sees), and the two stacked into one raw frame, which
//! is cut apart again here.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use ffmpeg_sidecar::command::FfmpegCommand;
use ffmpeg_sidecar::event::{FfmpegEvent, LogLevel};

use crate::tools::{Limits, Stopped, Tools, Watchdog};

/// What one analysis decode produced.
#[derive(Debug, Clone)]
pub struct DecodeReport {
    /// Frames decoded and handed to the callback.
    pub frames: u64,
    /// Error lines ffmpeg printed (decode errors in a damaged file), first few.
    pub errors: Vec<String>,
    /// Whether ffmpeg exited with status 0.
    pub clean_exit: bool,
}

/// A decode that could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// ffmpeg could not be started.
    #[error("cannot start ffmpeg: {0}")]
    Spawn(String),
    /// ffmpeg produced a frame of another size than asked: frame indices would no longer be
    /// decoded-frame indices, so the decode is abandoned rather than silently shifted.
    #[error("ffmpeg produced a {got}-byte frame after {frames} frames, expected {expected} bytes")]
    UnexpectedFrame {
        /// Bytes expected per frame.
        expected: usize,
        /// Bytes received.
        got: usize,
        /// Frames decoded before.
        frames: u64,
    },
    /// The watchdog killed it.
    #[error("ffmpeg {stopped} after {frames} frames")]
    Stopped {
        /// Why.
        stopped: Stopped,
        /// Frames decoded before.
        frames: u64,
    },
}

/// The sizes one analysis decode gives each frame at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The analysis frames (scaled with area averaging).
    pub main: (u32, u32),
    /// A second copy of each frame at this size (scaled as `ffmpeg -s` scales), if wanted.
    pub second: Option<(u32, u32)>,
}

impl Sizes {
    /// The `-vf` or `-filter_complex` arguments.
    fn filter_args(&self, stream_index: u32) -> Vec<String> {
        let (w, h) = self.main;
        match self.second {
            None => vec!["-map".into(), format!("0:{stream_index}"), "-vf".into(), format!("scale={w}:{h}:flags=area")],
            Some((w2, h2)) => {
                let wide = w.max(w2);
                let graph = format!(
                    "[0:{stream_index}]split=2[a][b];[a]scale={w}:{h}:flags=area,format=rgb24,pad={wide}:{h}[a1];[b]scale={w2}:{h2},format=rgb24,pad={wide}:{h2}[b1];[a1][b1]vstack=inputs=2[out]"
                );
                vec!["-filter_complex".into(), graph, "-map".into(), "[out]".into()]
            }
        }
    }

    /// Bytes of one raw output frame.
    fn frame_len(&self) -> usize {
        let (w, h) = self.main;
        match self.second {
            None => (w * h * 3) as usize,
            Some((w2, h2)) => (w.max(w2) * (h + h2) * 3) as usize,
        }
    }

    /// Cut one raw output frame into the main frame and the second. A part as wide as the
    /// stacked frame is borrowed; a narrower one is copied row by row into its scratch buffer.
    fn split<'a>(&self, raw: &'a [u8], main: &'a mut Vec<u8>, second: &'a mut Vec<u8>) -> (&'a [u8], Option<&'a [u8]>) {
        let Some((w2, h2)) = self.second else { return (raw, None) };
        let (w, h) = self.main;
        let stride = (w.max(w2) * 3) as usize;
        let part = |scratch: &'a mut Vec<u8>, first: u32, count: u32, width: u32| -> &'a [u8] {
            let (start, end) = (first as usize * stride, (first + count) as usize * stride);
            if width as usize * 3 == stride {
                return &raw[start..end];
            }
            scratch.clear();
            raw[start..end].chunks_exact(stride).for_each(|row| scratch.extend_from_slice(&row[..width as usize * 3]));
            scratch
        };
        (part(main, 0, h, w), Some(part(second, h, h2, w2)))
    }
}

/// Decode `stream_index` of `path` to RGB at `sizes`, calling `on_frame` for each frame with the
/// main frame and the second one when asked for.
///
/// # Errors
/// See [`DecodeError`]; an input that decodes badly is reported in [`DecodeReport::errors`].
pub fn decode_rgb(
    tools: &Tools,
    path: &Path,
    stream_index: u32,
    sizes: Sizes,
    limits: Limits,
    cancel: Arc<AtomicBool>,
    mut on_frame: impl FnMut(&[u8], Option<&[u8]>),
) -> Result<DecodeReport, DecodeError> {
    let mut inner = tools.untrusted(&tools.ffmpeg);
    inner.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut command = FfmpegCommand::from(inner);
    command
        .args(["-loglevel", "level+info", "-hide_banner", "-nostdin", "-nostats"])
        .input(path)
        .args(sizes.filter_args(stream_index))
        .args(["-an", "-sn", "-dn"])
        .args(["-fps_mode", "passthrough"])
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24"])
        .output("pipe:1");
    let mut child = command.spawn().map_err(|e| DecodeError::Spawn(e.to_string()))?;
    let events = child.iter().map_err(|e| DecodeError::Spawn(e.to_string()))?;
    let child = Arc::new(Mutex::new(child));
    let dog = {
        let child = child.clone();
        Watchdog::start(limits, cancel, move || {
            let _ = child.lock().expect("ffmpeg child lock").kill();
        })
    };
    let frame_len = sizes.frame_len();
    let (mut main, mut second) = (Vec::new(), Vec::new());
    let mut frames = 0u64;
    let mut errors = Vec::new();
    let mut unexpected = None;
    for event in events {
        dog.alive();
        match event {
            FfmpegEvent::OutputFrame(frame) if frame.data.len() == frame_len => {
                let (main, second) = sizes.split(&frame.data, &mut main, &mut second);
                on_frame(main, second);
                frames += 1;
            }
            FfmpegEvent::OutputFrame(frame) => {
                unexpected = Some(DecodeError::UnexpectedFrame { expected: frame_len, got: frame.data.len(), frames });
                let _ = child.lock().expect("ffmpeg child lock").kill();
                break;
            }
            FfmpegEvent::Log(LogLevel::Error | LogLevel::Fatal, line) | FfmpegEvent::Error(line)
                if errors.len() < 8 && !line.trim().is_empty() =>
            {
                errors.push(line.trim().to_string());
            }
            _ => {}
        }
    }
    let status = child.lock().expect("ffmpeg child lock").wait().ok();
    if let Some(stopped) = dog.finish() {
        return Err(DecodeError::Stopped { stopped, frames });
    }
    if let Some(err) = unexpected {
        return Err(err);
    }
    Ok(DecodeReport { frames, errors, clean_exit: status.is_some_and(|s| s.success()) })
}
