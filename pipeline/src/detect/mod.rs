//! Shot detection, frame-exact, from the one analysis decode.
//!
//! The detector improves on PySceneDetect's AdaptiveDetector, whose core is sound: a hard cut is
//! a frame whose HSV content difference to its predecessor is several times the average
//! difference of its neighbours (so steady motion and pans, which raise every difference, do not
//! trigger). Three checks are added, each aimed at a known false cut:
//!
//! - **flashes**: when a frame within the next few returns close to the frame before the jump,
//!   the jump was a flash (photo flash, lightning, a glitch frame), not a cut;
//! - **lighting changes**: when the new frame is the old one under a global change of
//!   brightness and contrast (little luma difference remains once they are matched, hues and
//!   the coarse layout stay);
//! - **fades**: runs of blank (near-uniform) frames end one shot and start the next, and the
//!   blank frames belong to neither.
//!
//! [`features`] computes what one frame contributes; [`ShotDetector`] streams frames in and keeps
//! a small per-frame record (also the source of the per-clip scores); [`segment`] turns records
//! into shots and is a pure function, tested on its own.
//!
//! That detector cannot see gradual transitions (a dissolve changes every frame a little), so
//! `[detect] method` can add [`transnet`], the learned TransNetV2, which marks them as spans of
//! frames; [`combine`] merges what both found. Shots are the frames between [`Boundary`] spans:
//! a transition's frames belong to no shot, so no clip holds two scenes melting into each other.

pub mod features;
mod segment;
pub mod transnet;

pub use segment::{segment, Shot, Transition};
pub use transnet::Probabilities;

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use clipline_onnx::Device;
use features::Features;

/// Which detector finds the shots (`detect.method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectMethod {
    /// The frame-difference detector ([`ShotDetector`]): hard cuts and fades through blank
    /// frames; no model, about 20x faster on a CPU.
    Adaptive,
    /// TransNetV2 alone: hard cuts and gradual transitions.
    Transnetv2,
    /// TransNetV2's transitions and the adaptive detector's cuts and blank runs together, with the
    /// adaptive flash check vetoing TransNetV2 cuts on flashes.
    #[default]
    Combined,
}

impl std::str::FromStr for DetectMethod {
    type Err = String;

    /// The names `detect.method` takes.
    fn from_str(name: &str) -> Result<Self, String> {
        clipline_core::names::from_name(name)
    }
}

impl DetectMethod {
    /// Whether the method runs TransNetV2.
    pub fn uses_model(self) -> bool {
        self != DetectMethod::Adaptive
    }
}

/// How shots are detected (`[detect]`): the method, and TransNetV2's settings when it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectConfig {
    /// The detector.
    pub method: DetectMethod,
    /// TransNetV2: `transnetv2` (pulled with `clipline models pull transnetv2`) or a directory
    /// laid out like it.
    pub model: String,
    /// A frame whose `single` probability exceeds this marks a transition (the reference's 0.5).
    pub threshold: f32,
    /// A transition spans the frames around it whose `many` probability exceeds this.
    pub span_threshold: f32,
    /// Where the model runs.
    pub device: Device,
    /// Threads inside one operator (0: one per core).
    pub threads: usize,
    /// Windows of 100 frames per model call, from any videos in flight.
    pub batch_windows: usize,
    /// A gradual transition's span grows by this many frames on each side (its edge frames
    /// carry a few percent of the other shot, which the model's span can leave out).
    pub span_margin: u64,
    /// `combined`: a content jump this large (below `shots.min_content`) is a cut too when it
    /// passes every other test of the adaptive detector (ratio, flash, lighting) and TransNetV2
    /// gives it `jump_support` at least: the jump cuts of a steady camera, whose content moves
    /// less than a cut's between shots. Either evidence alone is too weak (see the README).
    pub jump_min_content: f64,
    /// See `jump_min_content`: TransNetV2's single-frame probability on the cut's frame or the
    /// two before it.
    pub jump_support: f32,
}

impl Default for DetectConfig {
    fn default() -> Self {
        Self {
            method: DetectMethod::default(),
            model: "transnetv2".into(),
            threshold: 0.5,
            span_threshold: 0.2,
            device: Device::Auto,
            threads: 0,
            batch_windows: 4,
            span_margin: 1,
            jump_min_content: 5.0,
            jump_support: 0.02,
        }
    }
}

impl DetectConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        let unit = |v: f32| v > 0.0 && v < 1.0;
        if !unit(self.threshold) || !unit(self.span_threshold) || self.batch_windows == 0 || self.jump_min_content < 0.0 {
            return Err("detect: need 0 < threshold < 1, 0 < span_threshold < 1 and batch_windows >= 1".into());
        }
        Ok(())
    }

    /// The detector and the settings that change shots, as recorded with every shot and clip
    /// (`adaptive` the frame-difference detector's `shots` settings).
    pub fn describe(&self, adaptive: &DetectorConfig) -> String {
        let model = || format!("transnetv2 model={} threshold={} span={} margin={}", self.model, self.threshold, self.span_threshold, self.span_margin);
        match self.method {
            DetectMethod::Adaptive => adaptive.describe(),
            DetectMethod::Transnetv2 => model(),
            DetectMethod::Combined => format!("{} + {} jump={}/{}", model(), adaptive.describe(), self.jump_min_content, self.jump_support),
        }
    }
}

/// A transition between two shots: frames `[start, end)` belong to no shot (none for a hard
/// cut), and the next shot begins at `end`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Boundary {
    /// First frame of the transition.
    pub start: u64,
    /// Frame after its last: the first frame of the next shot.
    pub end: u64,
    /// Its kind.
    pub kind: Transition,
    /// The detector's confidence.
    pub score: f64,
}

impl Boundary {
    /// Take `other`, which touches or overlaps this one, into it.
    fn absorb(&mut self, other: &Boundary) {
        self.start = self.start.min(other.start);
        self.end = self.end.max(other.end);
        self.score = self.score.max(other.score);
        self.kind = self.kind.max(other.kind);
    }
}

/// The shots of an `n`-frame video between `boundaries` (sorted, not overlapping).
pub fn shots_between(n: u64, boundaries: &[Boundary]) -> Vec<Shot> {
    let mut shots = Vec::new();
    let mut open = Shot { start: 0, end: n, transition: Transition::Start, score: 0.0, transition_start: 0 };
    for b in boundaries {
        if b.start > open.start {
            shots.push(Shot { end: b.start, ..open });
        }
        open = Shot { start: b.end, end: n, transition: b.kind, score: b.score, transition_start: b.start };
    }
    if open.start < n {
        shots.push(open);
    }
    shots
}

/// The boundaries between `shots` of an `n`-frame video (the blank frames before the first and
/// after the last included): the inverse of [`shots_between`].
pub fn boundaries_of(shots: &[Shot], n: u64) -> Vec<Boundary> {
    let mut out: Vec<Boundary> =
        shots.iter().filter(|s| s.transition != Transition::Start).map(|s| Boundary { start: s.transition_start, end: s.start, kind: s.transition, score: s.score }).collect();
    if let Some(last) = shots.last().filter(|s| s.end < n) {
        out.push(Boundary { start: last.end, end: n, kind: Transition::Fade, score: 0.0 });
    }
    out
}

/// The shots of a video by `detect.method`, from the adaptive detector's records and shots and,
/// when the method runs it, TransNetV2's probabilities.
pub fn shots(detect: &DetectConfig, adaptive_cfg: &DetectorConfig, records: &[FrameRecord], adaptive: Vec<Shot>, model: Option<&Probabilities>) -> Vec<Shot> {
    let Some(p) = model.filter(|_| detect.method.uses_model()) else { return adaptive };
    let blank = segment::blank_frames(records, adaptive_cfg);
    let spans = transnet::spans(p, detect.threshold, detect.span_threshold, detect.span_margin, &blank);
    let boundaries = match detect.method {
        DetectMethod::Combined => {
            let jump_cfg = DetectorConfig { min_content: detect.jump_min_content.min(adaptive_cfg.min_content), ..adaptive_cfg.clone() };
            let supported = |t: usize| {
                let end = (t + 1).min(p.single.len());
                p.single[t.saturating_sub(2).min(end)..end].iter().any(|&s| s >= detect.jump_support)
            };
            let jumps: Vec<Boundary> = segment::cuts(records, &jump_cfg)
                .into_iter()
                .filter(|&(t, _)| supported(t))
                .map(|(t, ratio)| Boundary { start: t as u64, end: t as u64, kind: Transition::Cut, score: ratio })
                .collect();
            combine(&spans, &adaptive, &jumps, records, adaptive_cfg)
        }
        _ => spans,
    };
    shots_between(records.len() as u64, &boundaries)
}

/// TransNetV2's transitions (`model`), the adaptive detector's shots (`adaptive`) and its weaker
/// jump cuts (`jumps`) merged: a TransNetV2 cut on a frame the flash check calls a flash is
/// dropped; boundaries that overlap or lie within `cfg.min_cut_gap` frames of each other are one
/// transition, the model's position kept for two cuts and the union taken when either has frames
/// (with the model's score when it took part).
pub fn combine(model: &[Boundary], adaptive: &[Shot], jumps: &[Boundary], records: &[FrameRecord], cfg: &DetectorConfig) -> Vec<Boundary> {
    let n = records.len() as u64;
    let flash = |t: u64| {
        let r = records.get(t as usize);
        r.is_some_and(|r| (r.flash_return.min(r.flash_back) as f64) < cfg.flash_return * r.content as f64)
    };
    let mut all: Vec<(Boundary, bool)> = model.iter().filter(|b| !(b.kind == Transition::Cut && flash(b.start))).map(|b| (*b, true)).collect();
    all.extend(boundaries_of(adaptive, n).into_iter().chain(jumps.iter().copied()).map(|b| (b, false)));
    all.sort_by_key(|(b, _)| (b.start, b.end));
    let gap = cfg.min_cut_gap as u64;
    let mut out: Vec<(Boundary, bool)> = Vec::new();
    for (b, from_model) in all {
        match out.last_mut() {
            Some((last, last_from_model)) if b.start < last.end + gap => {
                if last.kind == Transition::Cut && b.kind == Transition::Cut {
                    if from_model && !*last_from_model {
                        *last = b;
                        *last_from_model = true;
                    }
                } else {
                    // Scores are on the scale of the detector that found the boundary: the
                    // model's probability wins over an adaptive ratio.
                    let score = match (*last_from_model, from_model) {
                        (true, false) => last.score,
                        (false, true) => b.score,
                        _ => last.score.max(b.score),
                    };
                    last.absorb(&b);
                    last.score = score;
                    *last_from_model |= from_model;
                }
            }
            _ => out.push((b, from_model)),
        }
    }
    out.into_iter().map(|(b, _)| b).collect()
}

/// Detector settings; recorded with every shot and clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// A cut's content difference must be this many times the mean of its neighbours'.
    pub adaptive_ratio: f64,
    /// ... and at least this large (HSV mean absolute difference, 0–255) ...
    pub min_content: f64,
    /// ... or at least this large when the coarse layout changes completely (dissimilarity at
    /// least `structural_change`): a small object that jumps on a plain background.
    pub structural_min_content: f64,
    /// See `structural_min_content`.
    pub structural_change: f64,
    /// Neighbours on each side that form the adaptive average.
    pub window: usize,
    /// Frames after a jump searched for a return to the frame before it (flash check).
    pub flash_frames: usize,
    /// A jump is a flash when a later frame comes within this fraction of the jump of the frame
    /// before it.
    pub flash_return: f64,
    /// A jump is a lighting change, not a cut, when the luma difference left after matching
    /// brightness and contrast is below this fraction of the raw luma difference ...
    pub lighting_residual: f64,
    /// ... and the mean hue difference (0–180 scale) is below this ...
    pub lighting_hue: f64,
    /// ... and the coarse layout's dissimilarity (1 − correlation) is below this: the light
    /// changed, not the scene.
    pub lighting_structure: f64,
    /// Cuts closer than this many frames are merged, keeping the strongest.
    pub min_cut_gap: usize,
    /// Frames whose luma standard deviation is below this are blank (fade or slate).
    pub uniform_std: f64,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            adaptive_ratio: 3.0,
            min_content: 12.0,
            structural_min_content: 4.0,
            structural_change: 0.5,
            window: 2,
            flash_frames: 3,
            flash_return: 0.4,
            lighting_residual: 0.35,
            lighting_hue: 8.0,
            lighting_structure: 0.25,
            min_cut_gap: 4,
            uniform_std: 6.0,
        }
    }
}

impl DetectorConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.adaptive_ratio <= 1.0 || self.window == 0 || self.min_cut_gap == 0 {
            return Err("shots: need adaptive_ratio > 1, window >= 1, min_cut_gap >= 1".into());
        }
        Ok(())
    }

    /// The detector and its settings, as recorded in the manifests.
    pub fn describe(&self) -> String {
        format!(
            "clipline-adaptive/2 ratio={} min={} structural={}/{} window={} flash={}/{} lighting={}/{}/{} gap={} uniform={}",
            self.adaptive_ratio,
            self.min_content,
            self.structural_min_content,
            self.structural_change,
            self.window,
            self.flash_frames,
            self.flash_return,
            self.lighting_residual,
            self.lighting_hue,
            self.lighting_structure,
            self.min_cut_gap,
            self.uniform_std
        )
    }
}

/// What the detector keeps of each frame: the boundary evidence against the previous frame and
/// the frame's own scores. About 40 bytes, so a whole video's records fit in memory.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameRecord {
    /// HSV content difference to the previous frame (0 for frame 0).
    pub content: f32,
    /// Mean circular hue difference to the previous frame (0–180 scale).
    pub hue: f32,
    /// Luma difference to the previous frame left after matching brightness and contrast.
    pub relit_residual: f32,
    /// 1 − correlation of the coarse luma grid with the previous frame's.
    pub structure: f32,
    /// Smallest content difference between the previous frame and the next `flash_frames`
    /// frames (infinite when none follow): small when a jump into this frame is undone.
    pub flash_return: f32,
    /// Smallest content difference between this frame and the `flash_frames` frames before the
    /// previous one (infinite when none): small when this frame undoes an earlier jump.
    pub flash_back: f32,
    /// Mean absolute luma difference to the previous frame.
    pub motion: f32,
    /// Mean luma.
    pub luma_mean: f32,
    /// Standard deviation of luma.
    pub luma_std: f32,
    /// Variance of the Laplacian of luma.
    pub sharpness: f32,
    /// 64-bit DCT perceptual hash.
    pub phash: u64,
}

/// Streams analysis frames in; [`ShotDetector::finish`] gives the records and the shots.
pub struct ShotDetector {
    config: DetectorConfig,
    width: usize,
    height: usize,
    recent: VecDeque<Features>,
    records: Vec<FrameRecord>,
}

impl ShotDetector {
    /// A detector for frames of the given analysis size.
    pub fn new(config: DetectorConfig, width: u32, height: u32) -> Self {
        Self { config, width: width as usize, height: height as usize, recent: VecDeque::new(), records: Vec::new() }
    }

    /// Add the next decoded frame (packed RGB, `width * height * 3` bytes).
    pub fn push(&mut self, rgb: &[u8]) {
        let f = Features::from_rgb(rgb, self.width, self.height);
        let mut record = FrameRecord {
            content: 0.0,
            hue: 0.0,
            relit_residual: 0.0,
            structure: 0.0,
            flash_return: f32::INFINITY,
            flash_back: f32::INFINITY,
            motion: 0.0,
            luma_mean: f.luma_mean,
            luma_std: f.luma_std,
            sharpness: f.sharpness,
            phash: f.phash,
        };
        if let Some(prev) = self.recent.back() {
            let [hue, sat, val] = prev.channel_diffs(&f);
            record.content = (hue + sat + val) / 3.0;
            record.hue = hue;
            record.relit_residual = prev.relit_residual(&f);
            record.structure = prev.structure_dissimilarity(&f);
            record.motion = prev.luma_diff(&f);
        }
        // The newest frame is j, and `recent` ends with frame j - 1. For k = 1..=flash_frames,
        // frame j - 1 - k is both the frame before a jump into t = j - k (which j may undo) and
        // one of the frames before j's predecessor (which j may return to).
        let j = self.records.len();
        for k in 1..=self.config.flash_frames {
            if self.recent.len() < k + 1 {
                break;
            }
            let diff = self.recent[self.recent.len() - 1 - k].content_diff(&f);
            let t = j - k;
            self.records[t].flash_return = self.records[t].flash_return.min(diff);
            record.flash_back = record.flash_back.min(diff);
        }
        self.records.push(record);
        self.recent.push_back(f);
        if self.recent.len() > self.config.flash_frames + 1 {
            self.recent.pop_front();
        }
    }

    /// The per-frame records and the shots they segment into.
    pub fn finish(self) -> (Vec<FrameRecord>, Vec<Shot>) {
        let shots = segment(&self.records, &self.config);
        (self.records, shots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: usize = 64;
    const H: usize = 36;

    fn solid(rgb: [u8; 3]) -> Vec<u8> {
        (0..W * H).flat_map(|_| rgb).collect()
    }

    /// A textured frame: a diagonal gradient in one hue, shifted by `offset` pixels.
    fn textured(hue: usize, offset: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(W * H * 3);
        for y in 0..H {
            for x in 0..W {
                let g = (((x + offset) * 4 + y * 3) % 200 + 30) as u8;
                let px = match hue {
                    0 => [g, g / 3, g / 4],
                    1 => [g / 4, g, g / 3],
                    _ => [g / 3, g / 4, g],
                };
                v.extend_from_slice(&px);
            }
        }
        v
    }

    fn run(frames: &[Vec<u8>]) -> Vec<Shot> {
        let mut d = ShotDetector::new(DetectorConfig::default(), W as u32, H as u32);
        for f in frames {
            d.push(f);
        }
        d.finish().1
    }

    #[test]
    fn hard_cut_is_found_at_the_exact_frame() {
        let frames: Vec<_> = (0..40).map(|i| if i < 23 { textured(0, i) } else { textured(2, i) }).collect();
        let shots = run(&frames);
        assert_eq!(shots.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(), vec![(0, 23), (23, 40)]);
        assert_eq!(shots[1].transition, Transition::Cut);
    }

    #[test]
    fn a_one_frame_flash_is_not_a_cut() {
        let frames: Vec<_> = (0..40).map(|i| if i == 20 { solid([250, 250, 250]) } else { textured(1, i) }).collect();
        assert_eq!(run(&frames).len(), 1);
    }

    #[test]
    fn a_brightness_change_is_not_a_cut() {
        let frames: Vec<_> = (0..40)
            .map(|i| {
                let f = textured(0, i);
                if i < 20 { f } else { f.iter().map(|&c| (c as u16 * 3 / 2).min(255) as u8).collect() }
            })
            .collect();
        assert_eq!(run(&frames).len(), 1);
    }

    #[test]
    fn blank_frames_separate_shots_as_a_fade() {
        let frames: Vec<_> = (0..50)
            .map(|i| match i {
                0..20 => textured(0, i),
                20..26 => solid([0, 0, 0]),
                _ => textured(2, i),
            })
            .collect();
        let shots = run(&frames);
        assert_eq!(shots.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(), vec![(0, 20), (26, 50)]);
        assert_eq!(shots[1].transition, Transition::Fade);
        assert_eq!(shots[1].transition_start, 20);
    }

    fn cut(t: u64) -> Boundary {
        Boundary { start: t, end: t, kind: Transition::Cut, score: 0.9 }
    }

    fn span(start: u64, end: u64, kind: Transition) -> Boundary {
        Boundary { start, end, kind, score: 0.8 }
    }

    #[test]
    fn shots_lie_between_boundaries_and_transition_frames_belong_to_none() {
        let shots = shots_between(100, &[cut(30), span(50, 62, Transition::Gradual), span(90, 100, Transition::Fade)]);
        let got: Vec<_> = shots.iter().map(|s| (s.start, s.end, s.transition, s.transition_start)).collect();
        assert_eq!(got, vec![(0, 30, Transition::Start, 0), (30, 50, Transition::Cut, 30), (62, 90, Transition::Gradual, 50)]);
        // The inverse gives the boundaries back (the trailing blank run included).
        assert_eq!(boundaries_of(&shots, 100), vec![Boundary { score: 0.9, ..cut(30) }, span(50, 62, Transition::Gradual), Boundary { score: 0.0, ..span(90, 100, Transition::Fade) }]);
        // A video that opens with a transition has no shot before it.
        assert_eq!(shots_between(40, &[span(0, 8, Transition::Fade)])[0].start, 8);
    }

    fn still(n: usize) -> Vec<FrameRecord> {
        let mut r = FrameRecord { content: 0.0, hue: 0.0, relit_residual: 0.0, structure: 0.0, flash_return: f32::INFINITY, flash_back: f32::INFINITY, motion: 0.0, luma_mean: 100.0, luma_std: 40.0, sharpness: 1.0, phash: 0 };
        r.content = 1.0;
        vec![r; n]
    }

    #[test]
    fn combining_keeps_the_models_cut_merges_spans_and_vetoes_flashes() {
        let cfg = DetectorConfig::default();
        let mut records = still(120);
        // Frame 80 jumps and frame 81 returns to frame 79: a flash.
        records[80].content = 40.0;
        records[80].flash_return = 2.0;
        let adaptive = vec![
            Shot { start: 0, end: 31, transition: Transition::Start, score: 0.0, transition_start: 0 },
            Shot { start: 31, end: 52, transition: Transition::Cut, score: 5.0, transition_start: 31 },
            Shot { start: 52, end: 120, transition: Transition::Cut, score: 4.0, transition_start: 52 },
        ];
        let model = [cut(30), span(50, 60, Transition::Gradual), cut(80)];
        let merged = combine(&model, &adaptive, &[cut(100)], &records, &cfg);
        // The model's cut at 30 wins over the adaptive one at 31; the adaptive cut at 52 falls
        // inside the dissolve; the model's cut on the flash is dropped; the jump cut stays.
        assert_eq!(merged, vec![cut(30), span(50, 60, Transition::Gradual), cut(100)]);
        // A span that touches a blank run becomes one transition of the stronger kind.
        let fade_shots = vec![
            Shot { start: 0, end: 40, transition: Transition::Start, score: 0.0, transition_start: 0 },
            Shot { start: 46, end: 120, transition: Transition::Fade, score: 0.0, transition_start: 40 },
        ];
        let merged = combine(&[span(36, 44, Transition::Gradual)], &fade_shots, &[], &records, &cfg);
        assert_eq!(merged, vec![span(36, 46, Transition::Fade)]);
    }

    #[test]
    fn the_method_decides_which_detector_gives_the_shots() {
        let records = still(100);
        let adaptive = vec![Shot { start: 0, end: 100, transition: Transition::Start, score: 0.0, transition_start: 0 }];
        let mut p = Probabilities { single: vec![0.0; 100], many: vec![0.0; 100] };
        (40..52).for_each(|i| p.many[i] = 0.9);
        p.single[46] = 0.8;
        let detect = |method| DetectConfig { method, ..DetectConfig::default() };
        let cfg = DetectorConfig::default();
        assert_eq!(shots(&detect(DetectMethod::Adaptive), &cfg, &records, adaptive.clone(), Some(&p)).len(), 1);
        for method in [DetectMethod::Transnetv2, DetectMethod::Combined] {
            let found = shots(&detect(method), &cfg, &records, adaptive.clone(), Some(&p));
            let got: Vec<_> = found.iter().map(|s| (s.start, s.end, s.transition, s.transition_start)).collect();
            // The dissolve's frames, widened by the one-frame margin, belong to no shot.
            assert_eq!(got, vec![(0, 39, Transition::Start, 0), (53, 100, Transition::Gradual, 39)], "{method:?}");
        }
        assert_eq!("transnetv2".parse::<DetectMethod>(), Ok(DetectMethod::Transnetv2));
        assert!("dissolve".parse::<DetectMethod>().is_err());
    }
}
