//! The analysis decode: each source is decoded once, through ffmpeg (driven by ffmpeg-sidecar),
//! scaled inside ffmpeg to a small fixed size in RGB, and every frame is handed to a callback in
//! decode order. Shot detection and the per-frame scores share this one pass.
//!
//! `-fps_mode passthrough` keeps ffmpeg from duplicating or dropping frames, so frame `n` of the
//! callback is decoded frame `n` of the source, and a [`crate::tools::Watchdog`] kills a decoder
//! that stalls.

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

/// Decode `stream_index` of `path` to `width`x`height` RGB, calling `on_frame` for each frame.
///
/// # Errors
/// See [`DecodeError`]; an input that decodes badly is reported in [`DecodeReport::errors`].
pub fn decode_rgb(
    tools: &Tools,
    path: &Path,
    stream_index: u32,
    (width, height): (u32, u32),
    limits: Limits,
    cancel: Arc<AtomicBool>,
    mut on_frame: impl FnMut(&[u8]),
) -> Result<DecodeReport, DecodeError> {
    let mut inner = tools.untrusted(&tools.ffmpeg);
    inner.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut command = FfmpegCommand::from(inner);
    command
        .args(["-loglevel", "level+info", "-hide_banner", "-nostdin", "-nostats"])
        .input(path)
        .args(["-map", &format!("0:{stream_index}"), "-an", "-sn", "-dn"])
        .args(["-vf", &format!("scale={width}:{height}:flags=area")])
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
    let frame_len = (width * height * 3) as usize;
    let mut frames = 0u64;
    let mut errors = Vec::new();
    let mut unexpected = None;
    for event in events {
        dog.alive();
        match event {
            FfmpegEvent::OutputFrame(frame) if frame.data.len() == frame_len => {
                on_frame(&frame.data);
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
