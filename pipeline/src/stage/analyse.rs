//! The analysis stage: one decode of the input at the small analysis size, with shot detection
//! and the per-frame scores the clip planner uses, and the `shots` rows. A damaged input keeps
//! the frames that decode. When `detect.method` runs TransNetV2, the same decode gives its 48×27
//! frames, which go to the model's worker once the decode ends.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clipline_core::manifest::{FailureKind, ShotRow};

use super::probe::{FrameTimes, Probed};
use super::{RunContext, VideoFailure};
use crate::decode::{decode_rgb, DecodeError, Sizes};
use crate::detect::transnet::{self, TransNetStage};
use crate::detect::{FrameRecord, Shot, ShotDetector};
use crate::tools::Limits;

/// An analysed input.
pub struct Analysed {
    /// Per-frame records (scores, hashes).
    pub records: Vec<FrameRecord>,
    /// The shots found.
    pub shots: Vec<Shot>,
    /// Frames decoded.
    pub frames: u64,
    /// Why only part of the input decoded, when it is damaged (the video is `partial`).
    pub damage: Option<String>,
}

/// The analysis stage.
pub struct AnalyseStage {
    ctx: Arc<RunContext>,
    /// TransNetV2, when `detect.method` runs it.
    transnet: Option<Arc<TransNetStage>>,
    /// Frames decoded so far in the run (for the progress display).
    frames: AtomicU64,
}

impl AnalyseStage {
    /// A stage decoding with the run's `[decode]`, `[detect]` and `[shots]` settings, running
    /// TransNetV2 through `transnet` when given.
    pub fn new(ctx: Arc<RunContext>, transnet: Option<Arc<TransNetStage>>) -> Self {
        Self { ctx, transnet, frames: AtomicU64::new(0) }
    }

    /// Decode `path` (probed as `probed`, known to the user as `uri`) once, detecting shots.
    ///
    /// # Errors
    /// When nothing decodes, or the decode stalls or runs past its time limit.
    pub async fn run(self: &Arc<Self>, path: &Path, probed: &Probed, uri: &str) -> Result<Analysed, VideoFailure> {
        let d = &self.ctx.config.decode;
        let probe = &probed.probe;
        let duration = probe.duration_s.unwrap_or(0.0).max(0.0);
        let limits = Limits {
            stall: Duration::from_secs(d.stall_timeout_s),
            total: Duration::from_secs_f64(d.timeout_base_s as f64 + d.timeout_per_video_second * duration),
        };
        let sizes = Sizes { main: (d.analysis_width, d.analysis_height), second: self.transnet.is_some().then_some((transnet::WIDTH, transnet::HEIGHT)) };
        let (me, path, stream) = (self.clone(), path.to_path_buf(), probe.video.index);
        let result = self
            .ctx
            .stages
            .decode
            .run_blocking(move || {
                let mut detector = ShotDetector::new(me.ctx.config.shots.clone(), sizes.main.0, sizes.main.1);
                let mut small = Vec::new();
                let report = decode_rgb(&me.ctx.tools, &path, stream, sizes, limits, me.ctx.cancel.flag(), |frame, second| {
                    detector.push(frame);
                    if let Some(second) = second {
                        small.extend_from_slice(second);
                    }
                    me.frames.fetch_add(1, Ordering::Relaxed);
                });
                report.map(|r| (r, detector.finish(), small))
            })
            .await;
        self.ctx.stages.decode.progress.note(format!("{} frames", self.frames.load(Ordering::Relaxed)));
        let (report, (records, shots), small) = match result {
            Ok(r) => r,
            Err(DecodeError::Stopped { stopped, frames }) => {
                let message = format!("{uri}: decoding {stopped} after {frames} frames");
                return Err(VideoFailure { frames_decoded: frames, ..VideoFailure::new(FailureKind::Timeout, message) });
            }
            Err(e) => return Err(VideoFailure::new(FailureKind::DecodeFailed, format!("{uri}: {e}"))),
        };
        let first_error = report.errors.first().cloned().unwrap_or_else(|| "no error message".into());
        if report.frames == 0 {
            let message = format!("{uri}: no frame could be decoded ({} {}): {first_error}", probe.video.codec, probe.video.pix_fmt);
            return Err(VideoFailure { decoded_frames: Some(0), ..VideoFailure::new(FailureKind::DecodeFailed, message) });
        }
        let claimed = probed.container_frames;
        let damaged = !report.clean_exit || !report.errors.is_empty() || report.frames * 100 < claimed * 98;
        let damage = (damaged && report.frames < claimed).then(|| {
            tracing::warn!(source = %uri, decoded = report.frames, claimed, "input is damaged; keeping the frames that decode");
            format!("{uri}: decoded {} of the {claimed} frames the container claims; first decoder error: {first_error}", report.frames)
        });
        let probabilities = match &self.transnet {
            Some(model) => match model.predict(small).await {
                Ok(p) => Some(p),
                Err(e) => {
                    let message = format!("{uri}: {e:#}");
                    return Err(VideoFailure { frames_decoded: report.frames, decoded_frames: Some(report.frames), ..VideoFailure::new(FailureKind::DetectFailed, message) });
                }
            },
            None => None,
        };
        let shots = crate::detect::shots(&self.ctx.config.detect, &self.ctx.config.shots, &records, shots, probabilities.as_ref());
        Ok(Analysed { records, shots, frames: report.frames, damage })
    }

    /// The `shots` rows of `shots` of video `video_id` (`uri`).
    pub fn shot_rows(&self, video_id: &str, uri: &str, shots: &[Shot], times: &FrameTimes) -> Vec<ShotRow> {
        shots
            .iter()
            .enumerate()
            .map(|(i, s)| ShotRow {
                video_id: video_id.to_string(),
                source_uri: uri.to_string(),
                shot_index: i as i64,
                start_frame: s.start as i64,
                end_frame: s.end as i64,
                num_frames: (s.end - s.start) as i64,
                start_pts: times.pts(s.start),
                end_pts: times.pts(s.end),
                transition: s.transition.as_str().to_string(),
                boundary_score: s.score,
                detector: self.ctx.detector.clone(),
                transition_start_frame: s.transition_start as i64,
                transition_end_frame: s.start as i64,
            })
            .collect()
    }
}
