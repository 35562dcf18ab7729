//! Idefics3 image tiling, as transformers' `Idefics3ImageProcessor` does it, so that SmolVLM sees
//! frames the way it was trained to: the frame is scaled so its longer side is
//! `size.longest_edge` (odd sides rounded up to even), then, with `do_image_splitting`, scaled
//! up to whole multiples of the encoder side `max_image_size.longest_edge` and cut into that
//! many square tiles, row by row, followed by the whole frame squeezed to one tile (the global
//! image). Without splitting the frame is squeezed to one tile. Every tile is exactly the
//! encoder's side, so no padding is needed and every pixel is real.

use image::RgbImage;

use crate::preprocess::ImageProcessor;
use crate::CaptionError;

/// Transformers' absolute cap on a resized side.
const MAX_SIDE: u32 = 4096;

/// One frame cut into tiles.
pub struct Tiles {
    /// The tiles row by row, then the global image; each `side × side`.
    pub images: Vec<RgbImage>,
    /// Tile rows (0 when the frame was not split).
    pub rows: usize,
    /// Tile columns (0 when the frame was not split).
    pub cols: usize,
}

/// The tiles of `frame` under `processor`'s Idefics3 settings.
///
/// # Errors
/// When the config names no `max_image_size.longest_edge`.
pub fn tile(processor: &ImageProcessor, frame: &RgbImage) -> Result<Tiles, CaptionError> {
    let side = processor
        .encoder_side()
        .ok_or_else(|| CaptionError::ModelFiles("preprocessor_config.json has no max_image_size.longest_edge (needed by the Idefics3 layout)".into()))?;
    let filter = processor.filter();
    let mut image = std::borrow::Cow::Borrowed(frame);
    if let (true, Some(longest)) = (processor.do_resize, processor.size.longest_edge) {
        let (w, h) = longest_edge_size(frame.dimensions(), longest);
        image = resized(frame, (w, h), filter);
    }
    if !processor.do_image_splitting {
        return Ok(Tiles { images: vec![resized(&image, (side, side), filter).into_owned()], rows: 0, cols: 0 });
    }
    let (w, h) = multiple_of_side(image.dimensions(), side);
    let image = resized(&image, (w, h), filter);
    if w <= side && h <= side {
        return Ok(Tiles { images: vec![image.into_owned()], rows: 0, cols: 0 });
    }
    let (rows, cols) = (h.div_ceil(side), w.div_ceil(side));
    let mut images = Vec::with_capacity((rows * cols + 1) as usize);
    for r in 0..rows {
        for c in 0..cols {
            images.push(image::imageops::crop_imm(image.as_ref(), c * side, r * side, side, side).to_image());
        }
    }
    images.push(resized(&image, (side, side), filter).into_owned());
    Ok(Tiles { images, rows: rows as usize, cols: cols as usize })
}

fn resized<'a>(image: &'a RgbImage, (w, h): (u32, u32), filter: image::imageops::FilterType) -> std::borrow::Cow<'a, RgbImage> {
    if image.dimensions() == (w, h) {
        std::borrow::Cow::Borrowed(image)
    } else {
        std::borrow::Cow::Owned(image::imageops::resize(image, w, h, filter))
    }
}

/// The longer side set to `longest` (up or down), the other kept in proportion (truncated, then
/// rounded up to even), both capped at 4096.
fn longest_edge_size((width, height): (u32, u32), longest: u32) -> (u32, u32) {
    let aspect = width as f64 / height.max(1) as f64;
    let (mut w, mut h) = if width >= height {
        let h = (longest as f64 / aspect) as u32;
        (longest, h + h % 2)
    } else {
        let w = (longest as f64 * aspect) as u32;
        (w + w % 2, longest)
    };
    if w >= h && w > MAX_SIDE {
        (w, h) = (MAX_SIDE, (MAX_SIDE as f64 / aspect) as u32);
    } else if h > w && h > MAX_SIDE {
        (w, h) = ((MAX_SIDE as f64 * aspect) as u32, MAX_SIDE);
    }
    (w.max(1), h.max(1))
}

/// Both sides scaled up to whole multiples of `side`, the longer one first.
fn multiple_of_side((width, height): (u32, u32), side: u32) -> (u32, u32) {
    let aspect = width as f64 / height.max(1) as f64;
    let up = |v: f64| ((v / side as f64).ceil() as u32).max(1) * side;
    if width >= height {
        let w = up(width as f64);
        (w, up((w as f64 / aspect).trunc()))
    } else {
        let h = up(height as f64);
        (up((h as f64 * aspect).trunc()), h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn processor(splitting: bool) -> ImageProcessor {
        serde_json::from_str(&format!(
            r#"{{"size": {{"longest_edge": 128}}, "max_image_size": {{"longest_edge": 64}}, "do_image_splitting": {splitting}, "resample": 1}}"#
        ))
        .unwrap()
    }

    #[test]
    fn sizes_follow_transformers() {
        assert_eq!(longest_edge_size((320, 240), 128), (128, 96));
        assert_eq!(longest_edge_size((240, 321), 128), (96, 128));
        assert_eq!(longest_edge_size((100, 33), 512), (512, 168));
        assert_eq!(multiple_of_side((128, 96), 64), (128, 128));
        assert_eq!(multiple_of_side((512, 168), 512), (512, 512));
        assert_eq!(multiple_of_side((1024, 600), 512), (1024, 1024));
    }

    #[test]
    fn frames_split_into_rows_of_tiles_and_a_global_image() {
        let frame = RgbImage::new(320, 240);
        let tiles = tile(&processor(true), &frame).unwrap();
        assert_eq!((tiles.rows, tiles.cols, tiles.images.len()), (2, 2, 5));
        assert!(tiles.images.iter().all(|t| t.dimensions() == (64, 64)));
        let single = tile(&processor(false), &frame).unwrap();
        assert_eq!((single.rows, single.cols, single.images.len()), (0, 0, 1));
    }
}
