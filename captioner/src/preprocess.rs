//! Image preprocessing as the model's `preprocessor_config.json` describes it (the ViT, CLIP,
//! SigLIP and Idefics3 image processors of transformers): resize, centre crop, rescale to 0..1,
//! normalise per channel, channels first.

use std::borrow::Cow;
use std::path::Path;

use image::imageops::FilterType;
use image::RgbImage;
use serde::Deserialize;

use crate::CaptionError;

/// The fields of `preprocessor_config.json` that decide the pixels.
#[derive(Debug, Clone, Deserialize)]
pub struct ImageProcessor {
    /// Whether to resize.
    #[serde(default = "yes")]
    pub do_resize: bool,
    /// Target size: `{height, width}`, `{shortest_edge}` or `{longest_edge}`.
    #[serde(default)]
    pub size: Size,
    /// PIL resampling filter: 0 nearest, 1 Lanczos, 2 bilinear, 3 bicubic.
    #[serde(default = "bicubic")]
    pub resample: u32,
    /// Whether to centre-crop after resizing.
    #[serde(default)]
    pub do_center_crop: bool,
    /// Crop size.
    #[serde(default)]
    pub crop_size: Option<Size>,
    /// Whether to multiply by `rescale_factor`.
    #[serde(default = "yes")]
    pub do_rescale: bool,
    /// Usually 1/255.
    #[serde(default = "one_over_255")]
    pub rescale_factor: f32,
    /// Whether to normalise.
    #[serde(default = "yes")]
    pub do_normalize: bool,
    /// Channel means.
    #[serde(default = "half3")]
    pub image_mean: [f32; 3],
    /// Channel standard deviations.
    #[serde(default = "half3")]
    pub image_std: [f32; 3],
    /// Idefics3: the side the vision encoder takes (`{longest_edge}`); tiles and the global
    /// image are resized to it.
    #[serde(default)]
    pub max_image_size: Option<Size>,
    /// Idefics3: cut frames into tiles of `max_image_size` plus a global image
    /// ([`crate::tiling`]).
    #[serde(default)]
    pub do_image_splitting: bool,
}

fn yes() -> bool {
    true
}
fn bicubic() -> u32 {
    3
}
fn one_over_255() -> f32 {
    1.0 / 255.0
}
fn half3() -> [f32; 3] {
    [0.5; 3]
}

/// A size in any of the forms transformers writes.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct Size {
    /// Exact height.
    pub height: Option<u32>,
    /// Exact width.
    pub width: Option<u32>,
    /// Scale so the short side is this.
    pub shortest_edge: Option<u32>,
    /// Scale so the long side is this.
    pub longest_edge: Option<u32>,
}

impl Size {
    /// The output size for an input of `(w, h)`.
    fn apply(&self, (w, h): (u32, u32)) -> (u32, u32) {
        let scale = |target: u32, side: u32| move |x: u32| ((x as f64 * target as f64 / side.max(1) as f64).round() as u32).max(1);
        match (self.height, self.width, self.shortest_edge, self.longest_edge) {
            (Some(height), Some(width), _, _) => (width, height),
            (_, _, Some(short), _) => {
                let s = scale(short, w.min(h));
                (s(w), s(h))
            }
            (_, _, _, Some(long)) => {
                let s = scale(long, w.max(h));
                (s(w), s(h))
            }
            _ => (w, h),
        }
    }
}

impl ImageProcessor {
    /// Read `preprocessor_config.json`.
    ///
    /// # Errors
    /// When the file is missing or malformed, naming it.
    pub fn from_file(path: &Path) -> Result<Self, CaptionError> {
        let text = std::fs::read_to_string(path).map_err(|e| CaptionError::ModelFiles(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text).map_err(|e| CaptionError::ModelFiles(format!("{}: {e}", path.display())))
    }

    /// The square side the vision encoder takes, when the config fixes one.
    pub fn encoder_side(&self) -> Option<u32> {
        self.max_image_size.and_then(|s| s.longest_edge)
    }

    /// The resampling filter `resample` names.
    pub fn filter(&self) -> FilterType {
        match self.resample {
            0 => FilterType::Nearest,
            1 => FilterType::Lanczos3,
            2 => FilterType::Triangle,
            _ => FilterType::CatmullRom,
        }
    }

    /// Resize and crop one image as configured (borrowed when that changes nothing).
    pub fn resize<'a>(&self, image: &'a RgbImage) -> Cow<'a, RgbImage> {
        let mut out = Cow::Borrowed(image);
        if self.do_resize {
            let (w, h) = self.size.apply(image.dimensions());
            if (w, h) != image.dimensions() {
                out = Cow::Owned(image::imageops::resize(image, w, h, self.filter()));
            }
        }
        if let (true, Some(crop)) = (self.do_center_crop, self.crop_size) {
            let (cw, ch) = crop.apply(out.dimensions());
            let (w, h) = out.dimensions();
            let (cw, ch) = (cw.min(w), ch.min(h));
            if (cw, ch) != (w, h) {
                out = Cow::Owned(image::imageops::crop_imm(out.as_ref(), (w - cw) / 2, (h - ch) / 2, cw, ch).to_image());
            }
        }
        out
    }

    /// Append the channels-first normalised pixels of an already resized image to `out`.
    pub fn normalise_into(&self, image: &RgbImage, out: &mut Vec<f32>) {
        let (w, h) = image.dimensions();
        let plane = (w * h) as usize;
        let start = out.len();
        out.resize(start + 3 * plane, 0.0);
        let scale = if self.do_rescale { self.rescale_factor } else { 1.0 };
        for (i, pixel) in image.pixels().enumerate() {
            for c in 0..3 {
                let mut v = pixel.0[c] as f32 * scale;
                if self.do_normalize {
                    v = (v - self.image_mean[c]) / self.image_std[c];
                }
                out[start + c * plane + i] = v;
            }
        }
    }

    /// Resize, crop and normalise `images` into one `[N, 3, H, W]` buffer; every image must
    /// come out the same size (the model's input size).
    ///
    /// # Errors
    /// When they do not, naming the sizes.
    pub fn batch(&self, images: &[&RgbImage]) -> Result<(Vec<usize>, Vec<f32>), CaptionError> {
        let mut data = Vec::new();
        let mut size = None;
        for image in images {
            let resized = self.resize(image);
            let dims = resized.dimensions();
            if *size.get_or_insert(dims) != dims {
                return Err(CaptionError::Input(format!(
                    "frames of one batch preprocess to different sizes ({:?} and {dims:?}); the model's preprocessor_config.json needs a fixed size",
                    size.unwrap_or_default()
                )));
            }
            self.normalise_into(&resized, &mut data);
        }
        let (w, h) = size.unwrap_or((0, 0));
        Ok((vec![images.len(), 3, h as usize, w as usize], data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(json: &str) -> ImageProcessor {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn sizes_follow_each_form() {
        assert_eq!(Size { height: Some(64), width: Some(32), ..Size::default() }.apply((320, 240)), (32, 64));
        assert_eq!(Size { shortest_edge: Some(120), ..Size::default() }.apply((320, 240)), (160, 120));
        assert_eq!(Size { longest_edge: Some(160), ..Size::default() }.apply((320, 240)), (160, 120));
    }

    #[test]
    fn pixels_are_rescaled_normalised_and_channels_first() {
        let p = processor(r#"{"size": {"height": 2, "width": 2}, "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#);
        let image = RgbImage::from_pixel(2, 2, image::Rgb([255, 0, 51]));
        let (shape, data) = p.batch(&[&image]).unwrap();
        assert_eq!(shape, vec![1, 3, 2, 2]);
        assert_eq!(&data[0..4], &[1.0; 4]);
        assert_eq!(&data[4..8], &[-1.0; 4]);
        assert!((data[8] - (0.2 - 0.5) / 0.5).abs() < 1e-6);
    }

    #[test]
    fn centre_crop_takes_the_middle() {
        let p = processor(r#"{"size": {"shortest_edge": 4}, "do_center_crop": true, "crop_size": {"height": 4, "width": 4}}"#);
        let image = RgbImage::new(8, 4);
        assert_eq!(p.resize(&image).dimensions(), (4, 4));
    }
}
