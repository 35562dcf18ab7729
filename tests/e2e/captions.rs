//! The caption stage inside `clipline run`: one caption row per clip with the model's id and
//! the prompt's hash, resumed runs caption nothing twice, and a model that cannot load stops the
//! run before any video is read, naming the model.

use clipline_core::manifest::{CaptionRow, CaptionStatus, ClipRow, ClipStatus};

use crate::support::{clipline, ingest, lavfi_video, output, rows, tree};

const CAPTIONED: &str = "[clips]\nwrite_middle_frames = false\n\n[caption]\nmodel = \"bundled:tiny-captioner\"\nframe_positions = [0.1, 0.9]\nbatch_size = 3\n";

#[test]
fn every_clip_gets_one_caption_and_a_rerun_adds_none() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    lavfi_video(&input.join("a.mp4"), "testsrc2=s=320x240:r=25", 120);
    lavfi_video(&input.join("b.mp4"), "mandelbrot=s=320x240:r=25", 60);
    let out = ingest(dir.path(), CAPTIONED, &input);
    let clips: Vec<ClipRow> = rows(&out);
    let captions: Vec<CaptionRow> = rows(&out);
    let mut ids: Vec<&str> = captions.iter().map(|c| c.clip_id.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = clips.iter().filter(|c| c.status == ClipStatus::Ok).map(|c| c.clip_id.as_str()).collect();
    want.sort();
    assert!(want.len() >= 2);
    assert_eq!(ids, want);
    for c in &captions {
        assert_eq!(c.status, CaptionStatus::Ok, "{:?}", c.error);
        assert!(!c.caption.is_empty() && c.tokens > 0 && c.latency_ms > 0.0);
        assert_eq!(c.frame_positions, "0.1,0.9");
        assert!(c.model_id.starts_with("tiny-captioner-") && c.model_id.contains('@'));
    }
    assert!(!tree(&out).iter().any(|f| f.ends_with(".ppm")), "caption frames stay in scratch");

    let before = tree(&out.join("manifests/captions"));
    ingest(dir.path(), CAPTIONED, &input);
    assert_eq!(tree(&out.join("manifests/captions")), before, "a rerun captions nothing again");
}

#[test]
fn a_model_that_cannot_load_stops_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    lavfi_video(&dir.path().join("a.mp4"), "testsrc2=s=320x240:r=25", 30);
    let model = dir.path().join("no-such-model");
    let out = output(clipline().arg("run").arg("--input").arg(dir.path().join("a.mp4")).arg("--output").arg(dir.path().join("out")).arg("--caption-model").arg(&model));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no-such-model") && stderr.contains("model directory"), "{stderr}");
    assert!(!dir.path().join("out/manifests/videos").exists(), "nothing is committed");

    std::fs::create_dir_all(&model).unwrap();
    std::fs::write(model.join("encoder_model.onnx"), b"junk").unwrap();
    let out = output(clipline().arg("run").arg("--input").arg(dir.path().join("a.mp4")).arg("--output").arg(dir.path().join("out")).arg("--caption-model").arg(&model));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("decoder_model_merged.onnx"), "{stderr}");
}

/// With a text detector (`CLIPLINE_TEXT_DETECTOR`, set by scripts/test.sh; absent: skipped, or a
/// failure under `CLIPLINE_REQUIRE_TEXT_DETECTOR`), every caption gets a `text_area`, and
/// `filters.max_text_area` filters the clip full of text.
#[test]
fn clips_full_of_text_are_scored_and_filtered() {
    let Some(detector) = clipline_testkit::Need::TextDetector.path_from("CLIPLINE_TEXT_DETECTOR") else { return };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    let font = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";
    let lines: Vec<String> = ["BREAKING NEWS TONIGHT", "Markets close higher", "More at eleven"]
        .iter()
        .enumerate()
        .map(|(i, t)| format!("drawtext=fontfile={font}:text='{t}':fontsize=30:fontcolor=white:x=20+n:y={}", 30 + 60 * i))
        .collect();
    let slide = input.join("slide.mp4");
    let filter = lines.join(",");
    crate::support::ffmpeg(&["-f", "lavfi", "-i", "mandelbrot=s=480x270:r=25", "-frames:v", "50", "-vf", &filter, "-c:v", "libx264", "-pix_fmt", "yuv420p", slide.to_str().unwrap()]);
    lavfi_video(&input.join("plain.mp4"), "mandelbrot", 50);
    let config = format!("{CAPTIONED}text_detector = {:?}\n\n[filters]\nmax_text_area = 0.1\n", detector.to_str().unwrap());
    let out = ingest(dir.path(), &config, &input);
    let clips: Vec<ClipRow> = rows(&out);
    let captions: Vec<CaptionRow> = rows(&out);
    assert_eq!(captions.len(), 2, "{captions:?}");
    for caption in &captions {
        let clip = clips.iter().find(|c| c.clip_id == caption.clip_id).unwrap();
        let area = caption.text_area.expect("every caption has a text area");
        if clip.source_uri.ends_with("slide.mp4") {
            assert!(area > 0.1, "{area}");
            assert_eq!(clip.status, ClipStatus::Filtered);
            assert!(clip.filter_reason.as_deref().unwrap().contains("filters.max_text_area"), "{:?}", clip.filter_reason);
        } else {
            assert!(area < 0.01, "{area}");
            assert_eq!(clip.status, ClipStatus::Ok);
        }
    }
}

/// The Idefics3/SmolVLM layout inside `clipline run`: the tiny random SmolVLM captions every
/// clip through its chat prompt (its words are noise; the rows are what is checked).
#[test]
fn a_smolvlm_layout_model_captions_in_the_dataflow() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    lavfi_video(&input.join("a.mp4"), "testsrc2", 60);
    let model = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/tiny-smolvlm");
    let config = format!("[clips]\nwrite_middle_frames = false\n\n[caption]\nmodel = {:?}\n\n[caption.generation]\nmax_new_tokens = 8\n", model.to_str().unwrap());
    let out = ingest(dir.path(), &config, &input);
    let captions: Vec<CaptionRow> = rows(&out);
    assert!(!captions.is_empty());
    for c in &captions {
        assert_eq!(c.status, CaptionStatus::Ok, "{:?}", c.error);
        assert!(c.model_id.starts_with("tiny-smolvlm@") && c.tokens > 0 && c.tokens <= 8, "{c:?}");
    }
}
