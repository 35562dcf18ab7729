//! From per-frame records to shots: the decision rules of the detector.

use serde::Serialize;

use super::{DetectorConfig, FrameRecord};

/// How a shot begins. Ordered by how much a merged transition says: a span that holds a cut and
/// blank frames is a fade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transition {
    /// At the first frame of the video.
    Start,
    /// After a hard cut.
    Cut,
    /// After a gradual transition without blank frames (a dissolve or a wipe), found by
    /// TransNetV2.
    Gradual,
    /// After blank frames (fade out/in, fade through black or white).
    Fade,
}

impl Transition {
    /// The name stored in the `shots` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Start => "start",
            Transition::Cut => "cut",
            Transition::Gradual => "gradual",
            Transition::Fade => "fade",
        }
    }
}

/// A shot: decoded frames `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    /// First frame.
    pub start: u64,
    /// Frame after the last.
    pub end: u64,
    /// How it begins.
    pub transition: Transition,
    /// Strength of the opening boundary (adaptive ratio for the adaptive detector's cuts,
    /// TransNetV2's probability for its transitions, 0 otherwise).
    pub score: f64,
    /// First frame of the transition that opens it: `start` after a cut or at the video's start,
    /// earlier after a fade or a gradual transition (whose frames belong to no shot).
    pub transition_start: u64,
}

/// Segment a video's records into shots.
pub fn segment(records: &[FrameRecord], cfg: &DetectorConfig) -> Vec<Shot> {
    let blank = blank_frames(records, cfg);
    let cuts = merge_close(cut_candidates(records, &blank, cfg), cfg.min_cut_gap);
    let mut cut_at = cuts.iter().peekable();

    let mut shots = Vec::new();
    let mut open: Option<(usize, Transition, f64)> = None;
    let mut after_blank = false;
    for (i, &is_blank) in blank.iter().enumerate() {
        let cut = match cut_at.peek() {
            Some(&&(t, score)) if t == i => {
                cut_at.next();
                Some(score)
            }
            _ => None,
        };
        if is_blank {
            if let Some((start, transition, score)) = open.take() {
                shots.push(Shot { start: start as u64, end: i as u64, transition, score, transition_start: 0 });
            }
            after_blank = true;
            continue;
        }
        match (open, cut) {
            (None, _) => {
                let transition = if i == 0 { Transition::Start } else if after_blank { Transition::Fade } else { Transition::Cut };
                open = Some((i, transition, cut.unwrap_or(0.0)));
            }
            (Some((start, transition, score)), Some(cut_score)) => {
                shots.push(Shot { start: start as u64, end: i as u64, transition, score, transition_start: 0 });
                open = Some((i, Transition::Cut, cut_score));
            }
            (Some(_), None) => {}
        }
        after_blank = false;
    }
    if let Some((start, transition, score)) = open {
        shots.push(Shot { start: start as u64, end: records.len() as u64, transition, score, transition_start: 0 });
    }
    // A shot's transition began where the previous shot ended (at 0 for the first).
    let mut previous_end = 0;
    for shot in &mut shots {
        shot.transition_start = if shot.transition == Transition::Start { shot.start } else { previous_end };
        previous_end = shot.end;
    }
    shots
}

/// The hard cuts of `records` (frame `t` starts a new shot) with their adaptive ratio, blank
/// frames excluded, close ones merged.
pub(crate) fn cuts(records: &[FrameRecord], cfg: &DetectorConfig) -> Vec<(usize, f64)> {
    merge_close(cut_candidates(records, &blank_frames(records, cfg), cfg), cfg.min_cut_gap)
}

/// Which frames are blank transition frames: near-uniform, except short runs after which the
/// scene comes back (a white flash is uniform too, but belongs to its shot).
pub(crate) fn blank_frames(records: &[FrameRecord], cfg: &DetectorConfig) -> Vec<bool> {
    let mut blank: Vec<bool> = records.iter().map(|r| (r.luma_std as f64) < cfg.uniform_std).collect();
    let mut i = 0;
    while i < blank.len() {
        if !blank[i] {
            i += 1;
            continue;
        }
        let start = i;
        while i < blank.len() && blank[i] {
            i += 1;
        }
        let jump = records[start].content as f64;
        let flash = start > 0 && i < blank.len() && i - start <= cfg.flash_frames && (records[start].flash_return as f64) < cfg.flash_return * jump;
        if flash {
            blank[start..i].iter_mut().for_each(|b| *b = false);
        }
    }
    blank
}

/// Content difference below which a frame repeats its predecessor (frame-rate conversion
/// duplicates frames); repeats say nothing about motion, so they stay out of the adaptive average.
const REPEATED_FRAME: f32 = 0.5;

/// How far (in multiples of the window) to look for changing neighbours past repeated frames.
const NEIGHBOUR_REACH: usize = 5;

/// Frames `t` where a hard cut separates `t - 1` and `t`, with their adaptive ratio.
fn cut_candidates(records: &[FrameRecord], blank: &[bool], cfg: &DetectorConfig) -> Vec<(usize, f64)> {
    let n = records.len();
    let usable = |j: usize| j >= 1 && j < n && !blank[j] && !blank[j - 1];
    let mut cuts = Vec::new();
    for t in 1..n {
        if !usable(t) {
            continue;
        }
        let r = &records[t];
        let d = r.content as f64;
        // The nearest `window` changing frames on each side (repeats skipped, within reach).
        let evidence = |j: &usize| usable(*j) && records[*j].content > REPEATED_FRAME;
        let reach = cfg.window * NEIGHBOUR_REACH;
        let before = (1..=reach).filter_map(|k| t.checked_sub(k)).filter(evidence).take(cfg.window);
        let after = (1..=reach).map(|k| t + k).filter(evidence).take(cfg.window);
        let neighbours: Vec<f64> = before.chain(after).map(|j| records[j].content as f64).collect();
        let average = if neighbours.is_empty() { 0.0 } else { neighbours.iter().sum::<f64>() / neighbours.len() as f64 };
        let ratio = d / average.max(1.0);
        if ratio >= 2.0 {
            tracing::trace!(frame = t, content = d, ratio, flash_return = r.flash_return, flash_back = r.flash_back, structure = r.structure, relit = r.relit_residual, motion = r.motion, "boundary candidate");
        }
        let floor = if r.structure as f64 >= cfg.structural_change { cfg.structural_min_content } else { cfg.min_content };
        if ratio < cfg.adaptive_ratio || d < floor {
            continue;
        }
        if (r.flash_return.min(r.flash_back) as f64) < cfg.flash_return * d {
            continue;
        }
        let relit = (r.relit_residual as f64) < cfg.lighting_residual * r.motion as f64;
        if relit && (r.hue as f64) < cfg.lighting_hue && (r.structure as f64) < cfg.lighting_structure {
            continue;
        }
        cuts.push((t, ratio));
    }
    cuts
}

/// Of cuts closer than `gap` frames, keep the strongest.
fn merge_close(cuts: Vec<(usize, f64)>, gap: usize) -> Vec<(usize, f64)> {
    let mut kept: Vec<(usize, f64)> = Vec::new();
    for cut in cuts {
        match kept.last_mut() {
            Some(last) if cut.0 - last.0 < gap => {
                if cut.1 > last.1 {
                    *last = cut;
                }
            }
            _ => kept.push(cut),
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(content: f32) -> FrameRecord {
        FrameRecord {
            content,
            hue: 20.0,
            relit_residual: 10.0,
            structure: 0.8,
            flash_return: f32::INFINITY,
            flash_back: f32::INFINITY,
            motion: 0.0,
            luma_mean: 100.0,
            luma_std: 40.0,
            sharpness: 10.0,
            phash: 0,
        }
    }

    #[test]
    fn steady_high_motion_does_not_cut_but_a_spike_does() {
        let mut records: Vec<_> = (0..30).map(|_| rec(20.0)).collect();
        records[0] = rec(0.0);
        assert_eq!(segment(&records, &DetectorConfig::default()).len(), 1);
        records[15] = rec(90.0);
        let shots = segment(&records, &DetectorConfig::default());
        assert_eq!(shots.len(), 2);
        assert_eq!((shots[1].start, shots[1].transition), (15, Transition::Cut));
    }

    #[test]
    fn repeated_frames_do_not_make_ordinary_changes_look_like_cuts() {
        // 25 fps made from 8 fps: every third frame changes, the others repeat.
        let records: Vec<_> = (0..60).map(|i| rec(if i % 3 == 0 { 15.0 } else { 0.0 })).collect();
        assert_eq!(segment(&records, &DetectorConfig::default()).len(), 1);
    }

    #[test]
    fn close_cuts_keep_the_strongest() {
        assert_eq!(merge_close(vec![(10, 3.5), (12, 6.0), (30, 4.0)], 4), vec![(12, 6.0), (30, 4.0)]);
    }
}
