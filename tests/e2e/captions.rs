//! The caption stage inside `clipline run`: one caption row per clip with the model's id and
//! the prompt's hash, resumed runs caption nothing twice, and a model that cannot load stops the
//! run before any video is read, naming the model.

use clipline_core::manifest::{CaptionRow, ClipRow};

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
    let mut want: Vec<&str> = clips.iter().filter(|c| c.status == "ok").map(|c| c.clip_id.as_str()).collect();
    want.sort();
    assert!(want.len() >= 2);
    assert_eq!(ids, want);
    for c in &captions {
        assert_eq!(c.status, "ok", "{:?}", c.error);
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
