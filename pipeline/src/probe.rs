//! What a video file claims to be, from ffprobe: container, codec, size, rotation, frame rate,
//! audio, and the presentation timestamps of its video packets.
//!
//! The packet timestamps (a demux-only read, far cheaper than a decode) give every decoded frame
//! its PTS, so clips carry exact times without asking the decoder to print per-frame info (which
//! costs about 12% of the decode here).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use clipline_core::manifest::FailureKind;
use serde::Serialize;
use serde_json::Value;

use crate::tools::{last_error_line, run_limited, Limits, RunError, Tools};

/// The container and its first video stream.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Container format names, as ffprobe gives them (`mov,mp4,m4a,3gp,3g2,mj2`).
    pub container: String,
    /// Duration claimed by the container, seconds.
    pub duration_s: Option<f64>,
    /// Start time of the container, seconds (seeking is relative to it).
    pub start_time: f64,
    /// Whether an audio stream exists.
    pub has_audio: bool,
    /// The video stream that clipline decodes.
    pub video: VideoStream,
}

/// The decoded video stream.
#[derive(Debug, Clone, Serialize)]
pub struct VideoStream {
    /// Stream index in the container (for `-map 0:N`).
    pub index: u32,
    /// Codec name.
    pub codec: String,
    /// Pixel format.
    pub pix_fmt: String,
    /// Coded width.
    pub width: u32,
    /// Coded height.
    pub height: u32,
    /// Display rotation, degrees.
    pub rotation: i64,
    /// Average frame rate.
    pub avg_fps: Option<f64>,
    /// Frame count in the container's index, when it has one (MP4 does, Matroska does not).
    pub indexed_frames: Option<u64>,
}

impl VideoStream {
    /// Width and height as displayed (after rotation), which is how ffmpeg decodes by default.
    pub fn display_size(&self) -> (u32, u32) {
        if self.rotation.rem_euclid(180) == 90 { (self.height, self.width) } else { (self.width, self.height) }
    }
}

/// Presentation times of the video packets, in presentation order.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timeline {
    /// PTS in seconds, sorted.
    pub pts: Vec<f64>,
}

impl Timeline {
    /// The typical frame duration (median of the gaps), seconds.
    pub fn frame_duration(&self, fallback_fps: Option<f64>) -> f64 {
        let mut gaps: Vec<f64> = self.pts.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 0.0).collect();
        if gaps.is_empty() {
            return 1.0 / fallback_fps.filter(|f| *f > 0.0).unwrap_or(25.0);
        }
        gaps.sort_by(f64::total_cmp);
        gaps[gaps.len() / 2]
    }

    /// Whether frame durations vary by more than 1% around the median.
    pub fn is_variable(&self) -> bool {
        let median = self.frame_duration(None);
        self.pts.windows(2).any(|w| ((w[1] - w[0]) - median).abs() > median * 0.01 + 1e-6)
    }
}

/// Why a file cannot be used, in terms a user can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// ffprobe does not recognise the data as media.
    #[error("not a readable video: {0}")]
    NotMedia(String),
    /// Media, but without a video stream.
    #[error("{0}")]
    NoVideo(String),
    /// Dimensions beyond the configured limit.
    #[error("dimensions {width}x{height} exceed the limit of {max} pixels per side")]
    TooLarge {
        /// Coded width.
        width: u32,
        /// Coded height.
        height: u32,
        /// The limit.
        max: u32,
    },
    /// ffprobe could not be run to completion.
    #[error("ffprobe {0}")]
    Process(#[from] RunError),
}

impl ProbeError {
    /// The `error_kind` recorded in the `videos` table.
    pub fn kind(&self) -> FailureKind {
        match self {
            ProbeError::NotMedia(_) => FailureKind::NotVideo,
            ProbeError::NoVideo(_) => FailureKind::NoVideoStream,
            ProbeError::TooLarge { .. } => FailureKind::TooLarge,
            ProbeError::Process(RunError::Stopped(_)) => FailureKind::Timeout,
            ProbeError::Process(_) => FailureKind::ProbeFailed,
        }
    }
}

/// Probe a local file: one ffprobe call for the container, the streams and the packet times
/// (each ffprobe start costs tens of milliseconds of library loading).
///
/// # Errors
/// See [`ProbeError`].
pub fn probe(tools: &Tools, path: &Path, timeout: Duration, max_dimension: u32, cancel: Arc<AtomicBool>) -> Result<(Probe, Timeline), ProbeError> {
    let limits = Limits { stall: timeout, total: timeout };
    let mut cmd = tools.untrusted(&tools.ffprobe);
    cmd.args(["-v", "error", "-print_format", "json", "-show_entries", "format:stream:packet=stream_index,pts_time"]).arg(path);
    let out = run_limited(cmd, limits, cancel)?;
    if !out.success {
        return Err(ProbeError::NotMedia(last_error_line(&out.stderr)));
    }
    let json: Value = serde_json::from_slice(&out.stdout).map_err(|e| ProbeError::NotMedia(format!("unreadable ffprobe output: {e}")))?;
    let probe = parse_probe(&json)?;
    let (w, h) = (probe.video.width, probe.video.height);
    if w > max_dimension || h > max_dimension {
        return Err(ProbeError::TooLarge { width: w, height: h, max: max_dimension });
    }
    let timeline = parse_timeline(&json, probe.video.index);
    Ok((probe, timeline))
}

/// The sorted PTS of one stream's packets.
fn parse_timeline(json: &Value, stream: u32) -> Timeline {
    let packets = json["packets"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut pts: Vec<f64> = packets
        .iter()
        .filter(|p| p["stream_index"].as_u64() == Some(stream as u64))
        .filter_map(|p| num(&p["pts_time"]))
        .collect();
    pts.sort_by(f64::total_cmp);
    Timeline { pts }
}

fn parse_probe(json: &Value) -> Result<Probe, ProbeError> {
    let streams = json["streams"].as_array().cloned().unwrap_or_default();
    let is_video = |s: &&Value| {
        s["codec_type"] == "video" && s["disposition"]["attached_pic"].as_i64().unwrap_or(0) == 0
    };
    let has_audio = streams.iter().any(|s| s["codec_type"] == "audio");
    let Some(v) = streams.iter().find(is_video) else {
        return Err(ProbeError::NoVideo(if has_audio {
            "audio only: the file has no video stream".into()
        } else {
            "the file has no video stream".into()
        }));
    };
    let width = v["width"].as_u64().unwrap_or(0) as u32;
    let height = v["height"].as_u64().unwrap_or(0) as u32;
    if width == 0 || height == 0 {
        return Err(ProbeError::NotMedia(format!("video stream has no dimensions ({width}x{height})")));
    }
    let format = &json["format"];
    Ok(Probe {
        container: format["format_name"].as_str().unwrap_or("unknown").to_string(),
        duration_s: num(&format["duration"]).or_else(|| num(&v["duration"])),
        start_time: num(&format["start_time"]).unwrap_or(0.0),
        has_audio,
        video: VideoStream {
            index: v["index"].as_u64().unwrap_or(0) as u32,
            codec: v["codec_name"].as_str().unwrap_or("unknown").to_string(),
            pix_fmt: v["pix_fmt"].as_str().unwrap_or("unknown").to_string(),
            width,
            height,
            rotation: rotation(v),
            avg_fps: rate(&v["avg_frame_rate"]).or_else(|| rate(&v["r_frame_rate"])),
            indexed_frames: num(&v["nb_frames"]).map(|n| n as u64),
        },
    })
}

fn num(v: &Value) -> Option<f64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_f64())
}

fn rate(v: &Value) -> Option<f64> {
    let (n, d) = v.as_str()?.split_once('/')?;
    let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
    (n > 0.0 && d > 0.0).then_some(n / d)
}

fn rotation(v: &Value) -> i64 {
    let from_side_data = v["side_data_list"]
        .as_array()
        .and_then(|l| l.iter().find_map(|sd| sd["rotation"].as_i64().or_else(|| num(&sd["rotation"]).map(|r| r as i64))));
    let from_tag = || v["tags"]["rotate"].as_str().and_then(|s| s.parse().ok());
    from_side_data.or_else(from_tag).unwrap_or(0).rem_euclid(360)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_streams_swap_display_size() {
        let json: Value = serde_json::from_str(
            r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","pix_fmt":"yuv420p","width":640,"height":360,
                "avg_frame_rate":"30000/1001","side_data_list":[{"rotation":-90}]},{"codec_type":"audio"}],
                "format":{"format_name":"mov","duration":"2.5","start_time":"0.000"}}"#,
        )
        .unwrap();
        let p = parse_probe(&json).unwrap();
        assert_eq!(p.video.rotation, 270);
        assert_eq!(p.video.display_size(), (360, 640));
        assert!((p.video.avg_fps.unwrap() - 29.97).abs() < 0.01);
        assert!(p.has_audio);
    }

    #[test]
    fn audio_only_is_named_as_such() {
        let json: Value = serde_json::from_str(r#"{"streams":[{"codec_type":"audio"}],"format":{}}"#).unwrap();
        let err = parse_probe(&json).unwrap_err();
        assert_eq!(err.kind(), FailureKind::NoVideoStream);
        assert!(err.to_string().contains("audio only"));
    }

    #[test]
    fn cover_art_is_not_taken_for_video() {
        let json: Value = serde_json::from_str(
            r#"{"streams":[{"codec_type":"video","width":300,"height":300,"disposition":{"attached_pic":1}},{"codec_type":"audio"}],"format":{}}"#,
        )
        .unwrap();
        assert_eq!(parse_probe(&json).unwrap_err().kind(), FailureKind::NoVideoStream);
    }

    #[test]
    fn the_timeline_takes_the_video_packets_in_presentation_order() {
        let json: Value = serde_json::from_str(
            r#"{"packets":[{"stream_index":0,"pts_time":"0.08"},{"stream_index":1,"pts_time":"0.01"},
                {"stream_index":0,"pts_time":"0.00"},{"stream_index":0,"pts_time":"0.04"},{"stream_index":0,"pts_time":"N/A"}]}"#,
        )
        .unwrap();
        assert_eq!(parse_timeline(&json, 0).pts, vec![0.0, 0.04, 0.08]);
    }

    #[test]
    fn variable_frame_rate_is_detected_from_gaps() {
        assert!(!Timeline { pts: vec![0.0, 0.04, 0.08, 0.12] }.is_variable());
        assert!(Timeline { pts: vec![0.0, 0.1, 0.2, 0.29, 0.37] }.is_variable());
    }
}
