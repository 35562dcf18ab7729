//! Text in frame: the share of a clip's frames covered by text, from a PP-OCR (DB) text
//! detector, so a filter can drop title cards, slides and subtitled footage (Open-Sora drops
//! clips with too much text).
//!
//! The detector gives a per-pixel text probability. As PP-OCR's own post-processing does, the
//! map is thresholded and dilated, each connected region is kept when its mean probability is
//! high enough, and its box is grown back by the unclip distance (DB shrinks text regions when
//! training). The fraction of the frame those boxes cover is the frame's text area; a clip's is
//! the mean over its sampled frames. Boxes are axis-aligned (PP-OCR fits rotated rectangles),
//! which only matters for slanted text and errs on the side of more area.

use std::path::Path;

use clipline_onnx::tensor::{f32_output, input};
use clipline_onnx::{open_session, ModelSession, SessionOptions};
use image::imageops::FilterType;
use image::RgbImage;
use serde::{Deserialize, Serialize};

use crate::CaptionError;

/// Detection settings (`[caption.text]`), with PP-OCRv4's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextSettings {
    /// Frames are scaled so that their longer side is this (rounded to multiples of 32).
    pub max_side: u32,
    /// Probability above which a pixel is text.
    pub threshold: f32,
    /// Mean probability a region needs to count.
    pub box_threshold: f32,
    /// How far a region's box is grown back: area × ratio / perimeter.
    pub unclip_ratio: f32,
}

impl Default for TextSettings {
    fn default() -> Self {
        Self { max_side: 640, threshold: 0.3, box_threshold: 0.5, unclip_ratio: 1.6 }
    }
}

/// An open PP-OCR detection model.
pub struct TextDetector {
    session: ModelSession,
    input: String,
    output: String,
    settings: TextSettings,
}

impl TextDetector {
    /// Open the detector at `path` (a DB model taking `[1, 3, H, W]` BGR in [-1, 1] and giving
    /// `[1, 1, H, W]` probabilities, like PP-OCR's `det` models).
    ///
    /// # Errors
    /// When the model cannot be opened or does not have one input and one output.
    pub fn open(path: &Path, options: &SessionOptions, settings: TextSettings) -> Result<Self, CaptionError> {
        let session = open_session(path, options)?;
        let (input, output) = match (session.inputs(), session.outputs()) {
            ([i], [o, ..]) => (i.clone(), o.clone()),
            (i, o) => return Err(session.signature_error(format!("not a text detector: expected one image input and a probability map, got inputs {i:?}, outputs {o:?}")).into()),
        };
        if settings.max_side < 32 {
            return Err(CaptionError::Input(format!("caption.text.max_side must be at least 32, got {}", settings.max_side)));
        }
        Ok(Self { session, input, output, settings })
    }

    /// Mean text-covered fraction of `frames` (0 to 1).
    ///
    /// # Errors
    /// When the model fails on a frame.
    pub fn text_area(&mut self, frames: &[&RgbImage]) -> Result<f64, CaptionError> {
        let path = self.session.path.display().to_string();
        let mut total = 0.0;
        for frame in frames {
            let (width, height) = detector_size(frame.width(), frame.height(), self.settings.max_side);
            let pixels = bgr_planes(frame, width, height);
            let tensor = input::<f32>(&[1, 3, height as usize, width as usize], pixels)?;
            let outputs = self.session.run(vec![(self.input.clone(), tensor)])?;
            let (dims, map) = f32_output(&outputs[self.output.as_str()], &self.output)?;
            let [.., h, w] = dims[..] else {
                return Err(clipline_onnx::OnnxError::Signature { path: path.clone(), message: format!("probability map has shape {dims:?}") }.into());
            };
            total += covered_fraction(map, w, h, &self.settings);
        }
        Ok(if frames.is_empty() { 0.0 } else { total / frames.len() as f64 })
    }
}

/// The detector's input size: longer side `max_side` (never enlarged), both sides multiples of 32.
fn detector_size(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let scale = (max_side as f64 / width.max(height) as f64).min(1.0);
    let round = |side: u32| ((side as f64 * scale / 32.0).round() as u32).max(1) * 32;
    (round(width), round(height))
}

/// `[3, H, W]` planes in B, G, R order (PP-OCR was trained on OpenCV's BGR), scaled to [-1, 1].
fn bgr_planes(frame: &RgbImage, width: u32, height: u32) -> Vec<f32> {
    let resized = image::imageops::resize(frame, width, height, FilterType::Triangle);
    let plane = (width * height) as usize;
    let mut out = vec![0.0; 3 * plane];
    for (i, p) in resized.pixels().enumerate() {
        for c in 0..3 {
            out[(2 - c) * plane + i] = p.0[c] as f32 / 127.5 - 1.0;
        }
    }
    out
}

/// Share of a `width` × `height` probability map covered by the grown boxes of its text regions.
pub fn covered_fraction(map: &[f32], width: usize, height: usize, settings: &TextSettings) -> f64 {
    let mut text = vec![false; width * height];
    // Threshold, then dilate with a 2×2 kernel, as PP-OCR does.
    for y in 0..height {
        for x in 0..width {
            let hit = |dx: usize, dy: usize| x >= dx && y >= dy && map[(y - dy) * width + x - dx] > settings.threshold;
            text[y * width + x] = hit(0, 0) || hit(1, 0) || hit(0, 1) || hit(1, 1);
        }
    }
    let mut covered = vec![false; width * height];
    let mut seen = vec![false; width * height];
    let mut stack = Vec::new();
    for start in 0..text.len() {
        if !text[start] || seen[start] {
            continue;
        }
        let mut region = Region::new(start % width, start / width);
        seen[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = (i % width, i / width);
            region.add(x, y, map[i]);
            let neighbours = [(x > 0).then(|| i - 1), (x + 1 < width).then(|| i + 1), (y > 0).then(|| i - width), (y + 1 < height).then(|| i + width)];
            for n in neighbours.into_iter().flatten() {
                if text[n] && !seen[n] {
                    seen[n] = true;
                    stack.push(n);
                }
            }
        }
        if let Some((x0, y0, x1, y1)) = region.grown_box(settings, width, height) {
            for y in y0..y1 {
                covered[y * width + x0..y * width + x1].fill(true);
            }
        }
    }
    covered.iter().filter(|&&c| c).count() as f64 / (width * height).max(1) as f64
}

/// A connected text region being measured.
struct Region {
    min: (usize, usize),
    max: (usize, usize),
    pixels: usize,
    probability: f64,
}

impl Region {
    fn new(x: usize, y: usize) -> Self {
        Self { min: (x, y), max: (x, y), pixels: 0, probability: 0.0 }
    }

    fn add(&mut self, x: usize, y: usize, p: f32) {
        self.min = (self.min.0.min(x), self.min.1.min(y));
        self.max = (self.max.0.max(x), self.max.1.max(y));
        self.pixels += 1;
        self.probability += p as f64;
    }

    /// The region's box grown by the unclip distance and clipped to the map, as
    /// `(x0, y0, x1, y1)` (end exclusive); `None` for regions too small or too unsure.
    fn grown_box(&self, settings: &TextSettings, width: usize, height: usize) -> Option<(usize, usize, usize, usize)> {
        let (w, h) = ((self.max.0 - self.min.0 + 1) as f64, (self.max.1 - self.min.1 + 1) as f64);
        if w.min(h) < 3.0 || self.probability / (self.pixels as f64) < settings.box_threshold as f64 {
            return None;
        }
        let grow = w * h * settings.unclip_ratio as f64 / (2.0 * (w + h));
        let clip = |v: f64, limit: usize| v.round().clamp(0.0, limit as f64) as usize;
        Some((
            clip(self.min.0 as f64 - grow, width),
            clip(self.min.1 as f64 - grow, height),
            clip(self.max.0 as f64 + 1.0 + grow, width),
            clip(self.max.1 as f64 + 1.0 + grow, height),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_multiples_of_32_and_never_enlarged() {
        assert_eq!(detector_size(1920, 1080, 640), (640, 352));
        assert_eq!(detector_size(320, 240, 640), (320, 256));
    }

    #[test]
    fn a_confident_region_covers_its_grown_box() {
        let (w, h) = (40, 20);
        let mut map = vec![0.0; w * h];
        for y in 8..12 {
            for x in 10..30 {
                map[y * w + x] = 0.9;
            }
        }
        let settings = TextSettings::default();
        // Dilation makes the region x 10..=30, y 8..=12 (21 × 5); grown by 21·5·1.6/52 ≈ 3.2
        // on every side: x 7..34, y 5..16.
        let fraction = covered_fraction(&map, w, h, &settings);
        let expected = ((34 - 7) * (16 - 5)) as f64 / (w * h) as f64;
        assert!((fraction - expected).abs() < 1e-9, "{fraction} vs {expected}");
    }

    #[test]
    fn unsure_and_tiny_regions_count_for_nothing() {
        let (w, h) = (40, 20);
        let mut map = vec![0.0; w * h];
        for y in 2..10 {
            for x in 2..20 {
                map[y * w + x] = 0.4;
            }
        }
        map[15 * w + 35] = 0.99;
        assert_eq!(covered_fraction(&map, w, h, &TextSettings::default()), 0.0);
    }
}
