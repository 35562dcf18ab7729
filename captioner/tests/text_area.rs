//! The text-area score with the real PP-OCRv4 detector (fetched by scripts/setup.sh from the
//! PyPI wheel): frames with lines of rendered text score high, frames without text score nothing.

use std::process::Command;

use clipline_captioner::text_area::{TextDetector, TextSettings};
use clipline_onnx::SessionOptions;
use clipline_testkit::Need;
use image::RgbImage;

/// The detector (`CLIPLINE_TEXT_DETECTOR`, set by scripts/test.sh); absent: skipped, or a
/// failure under `CLIPLINE_REQUIRE_TEXT_DETECTOR`.
fn detector() -> Option<TextDetector> {
    let path = Need::TextDetector.path_from("CLIPLINE_TEXT_DETECTOR")?;
    Some(TextDetector::open(&path, &SessionOptions { intra_threads: 2, ..SessionOptions::default() }, TextSettings::default()).unwrap())
}

/// A 640×360 frame of ffmpeg's `lavfi` source `source`, with `filter` drawn on it.
fn frame(source: &str, filter: &str) -> RgbImage {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frame.png");
    let source = if source.contains('=') { format!("{source}:s=640x360") } else { format!("{source}=s=640x360") };
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &source, "-frames:v", "1", "-vf", filter])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success(), "ffmpeg could not draw {source} {filter}");
    image::open(&out).unwrap().to_rgb8()
}

fn text(lines: &[&str], size: u32) -> RgbImage {
    let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    assert!(std::path::Path::new(font).is_file(), "{font} missing (Debian fonts-dejavu-core; scripts/setup.sh --test installs it)");
    let draws: Vec<String> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| format!("drawtext=fontfile={font}:text='{line}':fontsize={size}:fontcolor=black:x=40:y={}", 40 + i as u32 * size * 2))
        .collect();
    frame("color=c=0xd8d8d8", &draws.join(","))
}

#[test]
fn rendered_text_covers_the_frame_and_pictures_do_not() {
    let Some(mut detector) = detector() else { return };
    let slide = text(&["QUARTERLY RESULTS 2026", "Revenue up by 12 percent", "Thank you for watching"], 32);
    let caption = text(&["subtitle line"], 24);
    // Flat blocks of colour fire the detector (it is used without recognition, as Open-Sora
    // uses it), so the text-free frames are textured: a fractal and a gradient.
    let shapes = frame("mandelbrot", "null");
    let gradient = frame("gradients", "null");

    let slide_area = detector.text_area(&[&slide]).unwrap();
    let caption_area = detector.text_area(&[&caption]).unwrap();
    let shapes_area = detector.text_area(&[&shapes, &gradient]).unwrap();
    eprintln!("text area: slide {slide_area:.3}, subtitle {caption_area:.3}, no text {shapes_area:.4}");
    assert!(slide_area > 0.12 && slide_area < 0.6, "three lines of 32 px text on 640×360: {slide_area}");
    assert!(caption_area > 0.01 && caption_area < slide_area / 2.0, "one short line: {caption_area}");
    assert!(shapes_area < 0.005, "no text: {shapes_area}");
    // A clip's score is the mean over its frames.
    let clip = detector.text_area(&[&slide, &shapes]).unwrap();
    assert!((clip - (slide_area + shapes_area) / 2.0).abs() < 1e-9);
}
