//! From shots to clips: length bounds, balanced splitting, per-clip scores and filters.
//!
//! Everything here is a pure function of the detector's records, so the scores cost no second
//! look at the video, and the rules are tested without ffmpeg.

use crate::config::{ClipsConfig, FiltersConfig};
use crate::detect::{FrameRecord, Shot};

/// Cheap per-clip scores, aggregated from the analysis decode.
#[derive(Debug, Clone, PartialEq)]
pub struct ClipScores {
    /// Mean absolute luma difference between consecutive frames, 0–255.
    pub motion: f64,
    /// Mean luma, 0–255.
    pub brightness: f64,
    /// Mean Laplacian variance.
    pub sharpness: f64,
    /// Perceptual hash of the middle frame.
    pub phash: u64,
}

/// A clip to be written: a frame range of a shot, scored and possibly filtered.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedClip {
    /// Index of the shot in the video.
    pub shot_index: usize,
    /// Index of the clip in the shot.
    pub clip_index: usize,
    /// First frame.
    pub start: u64,
    /// Frame after the last.
    pub end: u64,
    /// Scores.
    pub scores: ClipScores,
    /// Whether motion is below the static threshold.
    pub is_static: bool,
    /// Set when a filter marks the clip.
    pub filter_reason: Option<String>,
}

impl PlannedClip {
    /// The frame whose image represents the clip.
    pub fn middle_frame(&self) -> u64 {
        self.start + (self.end - self.start) / 2
    }
}

/// Split `[start, end)` into pieces of at most `max` frames whose lengths differ by at most one;
/// nothing when shorter than `min`.
pub fn split_range(start: u64, end: u64, min: u64, max: u64) -> Vec<(u64, u64)> {
    let len = end.saturating_sub(start);
    if len < min {
        return Vec::new();
    }
    let pieces = len.div_ceil(max);
    let (base, extra) = (len / pieces, len % pieces);
    let mut out = Vec::with_capacity(pieces as usize);
    let mut at = start;
    for i in 0..pieces {
        let size = base + u64::from(i < extra);
        out.push((at, at + size));
        at += size;
    }
    out
}

/// Scores of frames `[start, end)`.
pub fn score(records: &[FrameRecord], start: u64, end: u64) -> ClipScores {
    let frames = &records[start as usize..end as usize];
    let n = frames.len().max(1) as f64;
    let motion_frames = &frames[1.min(frames.len())..];
    ClipScores {
        motion: motion_frames.iter().map(|r| r.motion as f64).sum::<f64>() / motion_frames.len().max(1) as f64,
        brightness: frames.iter().map(|r| r.luma_mean as f64).sum::<f64>() / n,
        sharpness: frames.iter().map(|r| r.sharpness as f64).sum::<f64>() / n,
        phash: records[(start + (end - start) / 2) as usize].phash,
    }
}

/// Plan, score and filter the clips of a video's shots.
pub fn plan(shots: &[Shot], records: &[FrameRecord], clips: &ClipsConfig, filters: &FiltersConfig) -> Vec<PlannedClip> {
    let mut planned: Vec<PlannedClip> = Vec::new();
    for (shot_index, shot) in shots.iter().enumerate() {
        for (clip_index, (start, end)) in split_range(shot.start, shot.end, clips.min_frames, clips.max_frames).into_iter().enumerate() {
            let scores = score(records, start, end);
            let is_static = scores.motion < filters.static_motion;
            let filter_reason = filter_reason(&scores, is_static, filters, &planned);
            planned.push(PlannedClip { shot_index, clip_index, start, end, scores, is_static, filter_reason });
        }
    }
    planned
}

fn filter_reason(s: &ClipScores, is_static: bool, f: &FiltersConfig, earlier: &[PlannedClip]) -> Option<String> {
    if is_static && f.drop_static {
        return Some(format!("static: motion {:.2} < {:.2}", s.motion, f.static_motion));
    }
    if s.brightness < f.min_brightness {
        return Some(format!("too dark: brightness {:.1} < {:.1}", s.brightness, f.min_brightness));
    }
    if s.brightness > f.max_brightness {
        return Some(format!("too bright: brightness {:.1} > {:.1}", s.brightness, f.max_brightness));
    }
    if s.sharpness < f.min_sharpness {
        return Some(format!("blurry: sharpness {:.1} < {:.1}", s.sharpness, f.min_sharpness));
    }
    if f.near_duplicate_hamming >= 0 {
        let twin = earlier
            .iter()
            .filter(|c| c.filter_reason.is_none())
            .find(|c| (c.scores.phash ^ s.phash).count_ones() as i32 <= f.near_duplicate_hamming);
        if let Some(twin) = twin {
            return Some(format!(
                "near duplicate: phash distance {} to frames {}..{}",
                (twin.scores.phash ^ s.phash).count_ones(),
                twin.start,
                twin.end
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::Transition;

    #[test]
    fn short_shots_give_no_clip_and_long_ones_balanced_pieces() {
        assert!(split_range(10, 24, 15, 200).is_empty());
        assert_eq!(split_range(10, 25, 15, 200), vec![(10, 25)]);
        assert_eq!(split_range(0, 200, 15, 200), vec![(0, 200)]);
        assert_eq!(split_range(0, 201, 15, 200), vec![(0, 101), (101, 201)]);
        assert_eq!(split_range(0, 450, 15, 200), vec![(0, 150), (150, 300), (300, 450)]);
    }

    #[test]
    fn pieces_cover_the_shot_exactly_without_overlap() {
        for len in 15..1000u64 {
            let pieces = split_range(7, 7 + len, 15, 200);
            assert_eq!(pieces.first().unwrap().0, 7);
            assert_eq!(pieces.last().unwrap().1, 7 + len);
            assert!(pieces.windows(2).all(|w| w[0].1 == w[1].0));
            let sizes: Vec<u64> = pieces.iter().map(|(a, b)| b - a).collect();
            assert!(sizes.iter().all(|&s| (15..=200).contains(&s)));
            assert!(sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1);
        }
    }

    fn record(motion: f32, phash: u64) -> FrameRecord {
        FrameRecord {
            content: 0.0,
            hue: 0.0,
            relit_residual: 0.0,
            structure: 0.0,
            flash_return: f32::INFINITY,
            flash_back: f32::INFINITY,
            motion,
            luma_mean: 120.0,
            luma_std: 30.0,
            sharpness: 50.0,
            phash,
        }
    }

    #[test]
    fn static_clips_are_marked_not_dropped() {
        let records: Vec<_> = (0..60).map(|i| record(if i < 30 { 5.0 } else { 0.1 }, i)).collect();
        let shots = [
            Shot { start: 0, end: 30, transition: Transition::Start, score: 0.0, transition_start: 0 },
            Shot { start: 30, end: 60, transition: Transition::Cut, score: 4.0, transition_start: 30 },
        ];
        let clips = plan(&shots, &records, &ClipsConfig::default(), &FiltersConfig::default());
        assert_eq!(clips.len(), 2);
        assert_eq!(clips[0].filter_reason, None);
        assert!(clips[1].is_static);
        assert!(clips[1].filter_reason.as_deref().unwrap().starts_with("static: motion 0.10"));
        assert_eq!(clips[1].middle_frame(), 45);
    }
}
