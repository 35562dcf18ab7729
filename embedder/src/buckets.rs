//! Buckets: the (resolution, frame count, aspect ratio) shapes a trainer batches by.
//!
//! A trainer can only stack samples of one shape, so every clip is brought to one of a few:
//! Open-Sora-style resolutions named by their height at 16:9 (`240p` is an area of 240×426),
//! a list of aspect ratios, and a list of frame counts. A clip gets the largest resolution it
//! does not have to be upscaled for, the aspect ratio nearest its own, and the most frames its
//! length allows after subsampling to the target frame rate. Its middle frame makes an image
//! sample (one frame) at the same resolution and aspect.

use serde::{Deserialize, Serialize};

/// The standard bucket set (`configs/buckets.toml`), built into the binary.
pub const DEFAULT_BUCKETS: &str = include_str!("../../configs/buckets.toml");

/// A resolution class.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resolution {
    /// Its name (`240p`).
    pub name: String,
    /// Height at 16:9; the class's area is `height × height × 16 / 9`.
    pub height: u32,
}

/// `[embed.buckets]`: the bucket set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BucketConfig {
    /// Resolution classes, any order.
    pub resolutions: Vec<Resolution>,
    /// Aspect ratios as `W:H` (`16:9`, `1:1`, `9:16`).
    pub aspect_ratios: Vec<String>,
    /// Frame counts of video samples; for a causal video VAE use `1 + 4k` (17, 33, ...).
    pub frame_counts: Vec<u32>,
    /// Frame rate that clips are subsampled towards (every `round(fps / target)`-th frame); 0 keeps every frame.
    pub target_fps: f64,
    /// Bucket sides are multiples of this (the VAE's downsampling × the trainer's patch size).
    pub multiple_of: u32,
    /// Whether each clip's middle frame also becomes an image sample.
    pub image_samples: bool,
}

impl Default for BucketConfig {
    fn default() -> Self {
        toml::from_str(DEFAULT_BUCKETS).expect("configs/buckets.toml parses")
    }
}

/// What a clip is, for bucketing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipShape {
    /// Width of its frames, pixels.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Frames.
    pub frames: u64,
    /// Frame rate.
    pub fps: f64,
}

/// A clip's place in a bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Bucket {
    /// `<resolution>-<frames>f-<aspect>`.
    pub name: String,
    /// Frame height after resize and centre crop.
    pub height: u32,
    /// Frame width.
    pub width: u32,
    /// Frames taken.
    pub frames: u32,
    /// Source frames between two taken frames.
    pub stride: u32,
}

impl Bucket {
    /// The source frame offsets (from the clip's start) this bucket takes from a clip of
    /// `clip_frames` frames: centred in the clip, `stride` apart.
    pub fn frame_offsets(&self, clip_frames: u64) -> Vec<u64> {
        let span = u64::from(self.frames - 1) * u64::from(self.stride) + 1;
        let start = clip_frames.saturating_sub(span) / 2;
        (0..u64::from(self.frames)).map(|i| start + i * u64::from(self.stride)).collect()
    }
}

fn parse_ratio(text: &str) -> Option<f64> {
    let (w, h) = text.split_once(':')?;
    let (w, h): (f64, f64) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0.0 && h > 0.0).then_some(w / h)
}

impl BucketConfig {
    /// Check values that parse but cannot work.
    ///
    /// # Errors
    /// Naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.resolutions.is_empty() || self.resolutions.iter().any(|r| r.height < 8) {
            return Err("embed.buckets.resolutions must list at least one resolution of height 8 or more".into());
        }
        if let Some(bad) = self.aspect_ratios.iter().find(|a| parse_ratio(a).is_none()) {
            return Err(format!("embed.buckets.aspect_ratios: {bad:?} is not W:H"));
        }
        if self.aspect_ratios.is_empty() || self.frame_counts.is_empty() || self.frame_counts.contains(&0) {
            return Err("embed.buckets needs aspect ratios and frame counts (each at least 1)".into());
        }
        if self.multiple_of == 0 || self.target_fps < 0.0 {
            return Err("embed.buckets.multiple_of must be at least 1 and target_fps 0 or more".into());
        }
        Ok(())
    }

    /// The aspect ratio (as written) nearest to `width / height`, by log ratio.
    fn nearest_aspect(&self, width: u32, height: u32) -> (&str, f64) {
        let own = (f64::from(width) / f64::from(height)).ln();
        self.aspect_ratios
            .iter()
            .filter_map(|a| parse_ratio(a).map(|r| (a.as_str(), r)))
            .min_by(|a, b| (a.1.ln() - own).abs().total_cmp(&(b.1.ln() - own).abs()))
            .expect("validated: aspect ratios parse")
    }

    /// Height and width of resolution `r` at aspect ratio `ratio` (W/H), multiples of `multiple_of`.
    fn size(&self, r: &Resolution, ratio: f64) -> (u32, u32) {
        let area = f64::from(r.height) * f64::from(r.height) * 16.0 / 9.0;
        let m = f64::from(self.multiple_of);
        let h = ((area / ratio).sqrt() / m).round().max(1.0) * m;
        let w = ((area * ratio).sqrt() / m).round().max(1.0) * m;
        (h as u32, w as u32)
    }

    /// The video and image buckets of a clip.
    ///
    /// # Errors
    /// When no resolution fits without upscaling, or the clip is shorter than every frame count
    /// (for the video bucket; the image bucket needs one frame).
    pub fn assign(&self, clip: ClipShape) -> (Result<Bucket, String>, Option<Result<Bucket, String>>) {
        let (aspect, ratio) = self.nearest_aspect(clip.width, clip.height);
        let mut fitting: Vec<(&Resolution, (u32, u32))> =
            self.resolutions.iter().map(|r| (r, self.size(r, ratio))).filter(|(_, (h, w))| *h <= clip.height && *w <= clip.width).collect();
        fitting.sort_by_key(|(_, (h, w))| u64::from(*h) * u64::from(*w));
        let Some((resolution, (height, width))) = fitting.last().copied() else {
            let smallest = self.resolutions.iter().min_by_key(|r| r.height).expect("validated: resolutions");
            let (h, w) = self.size(smallest, ratio);
            let err = format!("{}x{} is smaller than every bucket (the smallest at {aspect} is {w}x{h})", clip.width, clip.height);
            return (Err(err.clone()), self.image_samples.then_some(Err(err)));
        };
        let bucket = |frames: u32, stride: u32| Bucket {
            name: format!("{}-{frames}f-{aspect}", resolution.name),
            height,
            width,
            frames,
            stride,
        };
        let stride = if self.target_fps > 0.0 && clip.fps > 0.0 { (clip.fps / self.target_fps).round().max(1.0) as u32 } else { 1 };
        let video = self
            .frame_counts
            .iter()
            .copied()
            .filter(|&f| f > 1 && u64::from(f - 1) * u64::from(stride) < clip.frames)
            .max()
            .map(|frames| bucket(frames, stride))
            .ok_or_else(|| format!("{} frames (every {stride}) is shorter than every frame count {:?}", clip.frames, self.frame_counts));
        (video, self.image_samples.then(|| Ok(bucket(1, 1))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(width: u32, height: u32, frames: u64, fps: f64) -> ClipShape {
        ClipShape { width, height, frames, fps }
    }

    #[test]
    fn the_standard_set_parses_and_validates() {
        BucketConfig::default().validate().unwrap();
    }

    #[test]
    fn a_clip_gets_the_largest_resolution_without_upscaling_and_its_nearest_aspect() {
        let b = BucketConfig::default();
        let (video, image) = b.assign(clip(1920, 1080, 200, 30.0));
        let video = video.unwrap();
        assert!(video.name.starts_with("720p-") && video.name.ends_with("-16:9"), "{}", video.name);
        assert_eq!((video.height, video.width), (720, 1280));
        assert_eq!(video.stride, 1, "30 fps towards 24 rounds to every frame");
        assert_eq!(image.unwrap().unwrap().frames, 1);
        let portrait = b.assign(clip(480, 854, 200, 24.0)).0.unwrap();
        assert!(portrait.name.ends_with("-9:16") && portrait.height > portrait.width, "{portrait:?}");
    }

    #[test]
    fn frames_are_subsampled_towards_the_target_rate_and_centred() {
        let b = BucketConfig::default();
        let video = b.assign(clip(640, 360, 120, 48.0)).0.unwrap();
        assert_eq!(video.stride, 2);
        assert!(u64::from(video.frames - 1) * 2 < 120, "{video:?}");
        let offsets = video.frame_offsets(120);
        assert_eq!(offsets.len(), video.frames as usize);
        assert!(offsets.windows(2).all(|w| w[1] - w[0] == 2));
        assert!(*offsets.last().unwrap() < 120);
        let (before, after) = (offsets[0], 120 - (offsets.last().unwrap() + 1));
        assert!(before.abs_diff(after) <= 1, "centred: {before} frames before, {after} after");
    }

    #[test]
    fn a_clip_smaller_than_every_bucket_is_refused_saying_so() {
        let (video, image) = BucketConfig::default().assign(clip(100, 60, 50, 24.0));
        let err = video.unwrap_err();
        assert!(err.contains("100x60") && err.contains("smaller than every bucket"), "{err}");
        assert!(image.unwrap().is_err());
    }
}
