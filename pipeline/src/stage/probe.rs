//! The probe stage: what ffprobe says of a fetched input (container, video stream, packet
//! times), and the presentation time of every frame the analysis will decode.

use std::sync::Arc;
use std::time::Duration;

use clipline_core::manifest::VideoRow;

use super::{RunContext, VideoFailure};
use crate::extract::Seek;
use crate::probe::{self, Probe, Timeline};
use crate::sources::Fetched;

/// A probed input.
pub struct Probed {
    /// What ffprobe said.
    pub probe: Probe,
    /// Its frames' presentation times.
    pub times: FrameTimes,
    /// Whether its frame rate varies.
    pub variable_fps: bool,
    /// Frames the container claims.
    pub container_frames: u64,
}

impl Probed {
    /// Fill the `videos` row's probe columns.
    pub fn record(&self, row: &mut VideoRow) {
        let (probe, v) = (&self.probe, &self.probe.video);
        row.container = Some(probe.container.clone());
        row.codec = Some(v.codec.clone());
        row.pix_fmt = Some(v.pix_fmt.clone());
        row.width = Some(v.width as i64);
        row.height = Some(v.height as i64);
        row.rotation = Some(v.rotation);
        row.fps = v.avg_fps;
        row.variable_fps = Some(self.variable_fps);
        row.has_audio = Some(probe.has_audio);
        row.duration_s = probe.duration_s;
        row.container_frames = Some(self.container_frames as i64);
    }
}

/// The probe stage.
pub struct ProbeStage {
    ctx: Arc<RunContext>,
}

impl ProbeStage {
    /// A stage probing with the run's ffprobe and `[decode]` limits.
    pub fn new(ctx: Arc<RunContext>) -> Self {
        Self { ctx }
    }

    /// Probe `fetched`, known to the user as `uri`.
    ///
    /// # Errors
    /// When ffprobe fails, stalls, or finds no usable video stream.
    pub async fn run(&self, fetched: &Fetched, uri: &str) -> Result<Probed, VideoFailure> {
        let ctx = &self.ctx;
        let (tools, path, cancel) = (ctx.tools.clone(), fetched.path.clone(), ctx.cancel.flag());
        let (timeout, max_dim) = (Duration::from_secs(ctx.config.decode.probe_timeout_s), ctx.config.decode.max_dimension);
        let probed = ctx.stages.probe.run_blocking(move || probe::probe(&tools, &path, timeout, max_dim, cancel)).await;
        let (probe, timeline) = probed.map_err(|e| VideoFailure::new(e.kind(), format!("{uri}: {e}")))?;
        let (variable_fps, container_frames) = (timeline.is_variable(), probe.video.indexed_frames.unwrap_or(timeline.pts.len() as u64));
        Ok(Probed { times: FrameTimes::new(&probe, timeline), probe, variable_fps, container_frames })
    }
}

/// Presentation times of decoded frames, from the packet timeline (extrapolated past its end).
pub struct FrameTimes {
    pts: Vec<f64>,
    frame_duration: f64,
    start_time: f64,
}

impl FrameTimes {
    fn new(probe: &Probe, timeline: Timeline) -> Self {
        let frame_duration = timeline.frame_duration(probe.video.avg_fps);
        Self { pts: timeline.pts, frame_duration, start_time: probe.start_time }
    }

    /// PTS of frame `i`, seconds.
    pub fn pts(&self, i: u64) -> f64 {
        let i = i as usize;
        match self.pts.get(i) {
            Some(&t) => t,
            None => match self.pts.last() {
                Some(&last) => last + (i + 1 - self.pts.len()) as f64 * self.frame_duration,
                None => self.start_time + i as f64 * self.frame_duration,
            },
        }
    }

    /// An input seek that lands exactly on frame `i`: halfway between it and its predecessor,
    /// relative to the container start.
    pub fn seek(&self, i: u64, stream: u32) -> Seek {
        let time = if i == 0 { 0.0 } else { (self.pts(i - 1) + self.pts(i)) / 2.0 - self.start_time };
        Seek { time, stream }
    }
}
