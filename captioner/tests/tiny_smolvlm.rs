//! The Idefics3/SmolVLM layout on the tiny random SmolVLM (tests/models/tiny-smolvlm, made by
//! make_smolvlm.py): the prompt clipline builds tokenizes to exactly the ids transformers'
//! Idefics3Processor made for the same frames, the tiles' pixels match its pixel values, the
//! greedy tokens from raw frames are those torch's `generate` gave, they match onnxruntime-python
//! on the same inputs, and a clip's caption does not depend on the clips padded into its batch.

use std::path::{Path, PathBuf};
use std::process::Command;

use clipline_captioner::generate::GenerationSettings;
use clipline_captioner::{Captioner, CaptionerConfig};
use clipline_onnx::SessionOptions;
use image::{Rgb, RgbImage};
use serde_json::Value;

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/models/tiny-smolvlm")
}

fn smolvlm(max_new_tokens: usize) -> Captioner {
    Captioner::load(CaptionerConfig {
        model_dir: model_dir(),
        generation: GenerationSettings { max_new_tokens, ..GenerationSettings::default() },
        session: SessionOptions { intra_threads: 1, ..SessionOptions::default() },
        prompt: clipline_captioner::prompt::DEFAULT_PROMPT.to_string(),
    })
    .expect("tiny SmolVLM loads")
}

/// The frame make_smolvlm.py draws: integer arithmetic, so both sides draw the same pixels.
fn test_frame(shift: u32, (width, height): (u32, u32)) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| Rgb([((x * 7 + y * 3 + shift) % 256) as u8, ((x * 2 + y * 5) % 256) as u8, ((x / 4 * y / 4 + shift) % 256) as u8]))
}

fn reference() -> Value {
    serde_json::from_str(&std::fs::read_to_string(model_dir().join("reference.json")).unwrap()).unwrap()
}

#[test]
fn prompts_and_pixels_match_transformers() {
    let reference = reference();
    let frames: Vec<RgbImage> = reference["frames"].as_array().unwrap().iter().map(|s| test_frame(s.as_u64().unwrap() as u32, (320, 240))).collect();
    let mut captioner = smolvlm(12);
    assert!(captioner.model_id.starts_with("tiny-smolvlm@"), "{}", captioner.model_id);
    let (model, processor, tokenizer, prompt) = captioner.idefics3().unwrap();
    assert_eq!(prompt, reference["prompt"].as_str().unwrap());
    let prepared = model.prepare(&[&frames], prompt, processor, tokenizer).unwrap();
    let want: Vec<u32> = serde_json::from_value(reference["input_ids"].clone()).unwrap();
    assert_eq!(prepared.ids, want, "prompt token ids differ from transformers' Idefics3Processor");

    let shape: Vec<usize> = serde_json::from_value(reference["pixel_shape"].clone()).unwrap();
    assert_eq!(vec![prepared.tiles, 3, prepared.side, prepared.side], shape);
    let per_image = prepared.pixels.len() / prepared.tiles;
    let means: Vec<f64> = serde_json::from_value(reference["pixel_mean_per_image"].clone()).unwrap();
    for (tile, want) in prepared.pixels.chunks(per_image).zip(&means) {
        let mean = tile.iter().map(|&v| v as f64).sum::<f64>() / per_image as f64;
        assert!((mean - want).abs() < 0.01, "tile mean {mean} vs transformers' {want}");
    }
    // Lanczos in the image crate and in PIL round differently; values stay close.
    let samples: Vec<(usize, f32)> = serde_json::from_value(reference["pixel_samples"].clone()).unwrap();
    let worst = samples.iter().map(|&(i, v)| (prepared.pixels[i] - v).abs()).fold(0.0f32, f32::max);
    assert!(worst < 0.1, "sampled pixels differ by up to {worst}");

    // And the tokens torch's generate gave on transformers' inputs (make_smolvlm.py checked
    // that the ONNX graphs reproduce them).
    let batch = model.generate(prepared, &["clip"], &GenerationSettings { max_new_tokens: 12, ..Default::default() }, &[]).unwrap();
    let want: Vec<u32> = serde_json::from_value(reference["greedy_tokens"].clone()).unwrap();
    assert_eq!(batch.generated[0], want);
}

/// The reference needs onnxruntime-python: `CLIPLINE_PYTHON` (set by scripts/test.sh); unset,
/// the check is skipped, or fails under `CLIPLINE_REQUIRE_PYTHON_REFERENCE`.
#[test]
fn greedy_tokens_match_onnxruntime_python() {
    let Some(python) = clipline_testkit::reference_python() else { return };
    let frames: Vec<RgbImage> = [5, 60].iter().map(|&s| test_frame(s, (256, 192))).collect();
    let mut captioner = smolvlm(16);
    let (model, processor, tokenizer, prompt) = captioner.idefics3().unwrap();
    let prepared = model.prepare(&[&frames], prompt, processor, tokenizer).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ids.json"), serde_json::to_string(&prepared.ids).unwrap()).unwrap();
    std::fs::write(dir.path().join("pixels.bin"), prepared.pixels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
    let (tiles, side) = (prepared.tiles, prepared.side);
    let batch = model.generate(prepared, &["clip"], &GenerationSettings { max_new_tokens: 16, ..Default::default() }, &[]).unwrap();

    let out = Command::new(&python)
        .arg(model_dir().join("../reference_smolvlm.py"))
        .arg(model_dir())
        .arg(dir.path().join("ids.json"))
        .arg(dir.path().join("pixels.bin"))
        .args([tiles.to_string(), side.to_string(), "16".into()])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let want: Vec<u32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(!want.is_empty());
    assert_eq!(batch.generated[0], want, "greedy tokens differ from onnxruntime-python");
}

#[test]
fn a_caption_does_not_depend_on_the_clips_padded_beside_it() {
    let mut captioner = smolvlm(10);
    // A wide clip tiles 1×2 and a square one 2×2: their prompts differ in length, so the shorter
    // one is left-padded in the batch.
    let wide: Vec<RgbImage> = (0..2).map(|s| test_frame(s * 30, (400, 100))).collect();
    let square: Vec<RgbImage> = (0..2).map(|s| test_frame(s * 30 + 9, (200, 200))).collect();
    let (model, processor, tokenizer, prompt) = captioner.idefics3().unwrap();
    let lengths = [&wide, &square].map(|clip| model.prepare(&[clip], prompt, processor, tokenizer).unwrap().length);
    assert!(lengths[0] < lengths[1], "{lengths:?}");
    let together = captioner.caption(&[&wide, &square], &["w", "s"]).unwrap();
    let wide_alone = captioner.caption(&[&wide], &["w"]).unwrap();
    let square_alone = captioner.caption(&[&square], &["s"]).unwrap();
    assert_eq!(together[0], wide_alone[0]);
    assert_eq!(together[1], square_alone[0]);
    assert!(together.iter().all(|g| g.tokens > 0));
}

#[test]
fn a_preprocessor_without_a_tile_size_is_named() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let preprocessor = dir.path().join("preprocessor_config.json");
    let mut config: Value = serde_json::from_str(&std::fs::read_to_string(&preprocessor).unwrap()).unwrap();
    config.as_object_mut().unwrap().remove("max_image_size");
    std::fs::write(&preprocessor, config.to_string()).unwrap();
    let err = Captioner::load(CaptionerConfig {
        model_dir: dir.path().to_path_buf(),
        generation: GenerationSettings::default(),
        session: SessionOptions::default(),
        prompt: String::new(),
    })
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("preprocessor_config.json") && err.contains("max_image_size"), "{err}");
}
