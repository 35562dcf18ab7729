//! The bundled tiny captioner (tests/models/tiny-captioner) through clipline's ONNX Runtime
//! sessions: it captions drawn shapes, and its encoder states, first-step logits and greedy
//! tokens match onnxruntime-python run the same way (tests/models/reference_captioner.py).

use std::path::{Path, PathBuf};
use std::process::Command;

use clipline_captioner::generate::GenerationSettings;
use clipline_captioner::{CaptionError, Captioner, CaptionerConfig};
use clipline_onnx::SessionOptions;
use image::{Rgb, RgbImage};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn config(model_dir: PathBuf) -> CaptionerConfig {
    CaptionerConfig {
        model_dir,
        generation: GenerationSettings { max_new_tokens: 24, ..GenerationSettings::default() },
        session: SessionOptions { intra_threads: 1, ..SessionOptions::default() },
        prompt: clipline_captioner::prompt::DEFAULT_PROMPT.to_string(),
    }
}

fn tiny() -> Captioner {
    Captioner::load(config(repo().join("tests/models/tiny-captioner"))).expect("tiny captioner loads")
}

/// A frame like the demo's: a filled disk of `colour` on `background`, centred at `(x, y)`.
fn disk(colour: [u8; 3], background: [u8; 3], (x, y): (f32, f32)) -> RgbImage {
    RgbImage::from_fn(320, 240, |px, py| {
        let (dx, dy) = (px as f32 + 0.5 - x, py as f32 + 0.5 - y);
        if dx * dx + dy * dy <= 28.0 * 28.0 { Rgb(colour) } else { Rgb(background) }
    })
}

fn clip(colour: [u8; 3], background: [u8; 3]) -> Vec<RgbImage> {
    [(110.0, 100.0), (160.0, 120.0), (210.0, 140.0)].into_iter().map(|at| disk(colour, background, at)).collect()
}

#[test]
fn captions_drawn_shapes_in_one_batch_as_alone() {
    let mut captioner = tiny();
    assert!(captioner.model_id.starts_with("tiny-captioner@"), "{}", captioner.model_id);
    let (red, blue) = (clip([220, 30, 30], [255, 255, 255]), clip([30, 60, 220], [0, 0, 0]));
    let together = captioner.caption(&[&red, &blue], &["a", "b"]).unwrap();
    assert_eq!(together[0].text, "a red circle on a white background");
    assert_eq!(together[1].text, "a blue circle on a black background");
    assert!(together.iter().all(|g| !g.truncated && g.tokens > 3 && g.flags.is_empty()));
    let alone = captioner.caption(&[&blue], &["b"]).unwrap();
    assert_eq!(alone[0], together[1], "a caption must not depend on its batch");
}

#[test]
fn token_limit_truncates() {
    let mut cfg = config(repo().join("tests/models/tiny-captioner"));
    cfg.generation.max_new_tokens = 2;
    let mut captioner = Captioner::load(cfg).unwrap();
    let out = captioner.caption(&[&clip([220, 30, 30], [255, 255, 255])], &["a"]).unwrap();
    assert_eq!(out[0].tokens, 2);
    assert!(out[0].truncated);
}

#[test]
fn bad_model_directories_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let err = Captioner::load(config(dir.path().to_path_buf())).err().unwrap();
    assert!(matches!(err, CaptionError::ModelFiles(_)));
    assert!(err.to_string().contains("encoder_model.onnx"), "{err}");

    for name in ["encoder_model.onnx", "tokenizer.json", "preprocessor_config.json", "config.json", "generation_config.json"] {
        std::fs::copy(repo().join("tests/models/tiny-captioner").join(name), dir.path().join(name)).unwrap();
    }
    let err = Captioner::load(config(dir.path().to_path_buf())).err().unwrap().to_string();
    assert!(err.contains("decoder_model_merged.onnx"), "{err}");

    std::fs::write(dir.path().join("decoder_model_merged.onnx"), b"not a model").unwrap();
    let err = Captioner::load(config(dir.path().to_path_buf())).err().unwrap().to_string();
    assert!(err.contains("decoder_model_merged.onnx") && err.contains("cannot load model"), "{err}");
}

#[test]
fn a_tokenizer_of_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(repo().join("tests/models/tiny-captioner")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    let config_path = dir.path().join("config.json");
    let mut model_config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&config_path).unwrap()).unwrap();
    model_config["decoder"]["vocab_size"] = 50.into();
    std::fs::write(&config_path, model_config.to_string()).unwrap();
    let err = Captioner::load(config(dir.path().to_path_buf())).err().unwrap().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("another model"), "{err}");
}

/// The reference needs onnxruntime-python: `CLIPLINE_PYTHON` names the interpreter
/// (scripts/test.sh sets it to the set-up's venv); unset, the check is skipped, or fails under
/// `CLIPLINE_REQUIRE_PYTHON_REFERENCE`.
#[test]
fn matches_onnxruntime_python() {
    let Some(python) = clipline_testkit::reference_python() else { return };
    let mut captioner = tiny();
    let clips = [clip([240, 220, 40], [30, 60, 220]), clip([30, 170, 60], [255, 255, 255])];
    let images: Vec<&RgbImage> = clips.iter().flatten().collect();
    let (shape, pixels) = captioner.processor().batch(&images).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("pixels.bin");
    std::fs::write(&bin, pixels.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).unwrap();

    let model = captioner.encoder_decoder().unwrap();
    let states = model.encode(&shape, pixels.clone(), 3).unwrap();
    let logits = model.first_logits(&states).unwrap();
    let batch = model.generate(&states, &["x", "y"], &GenerationSettings { max_new_tokens: 24, ..Default::default() }, &[]).unwrap();

    let out = Command::new(&python)
        .arg(repo().join("tests/models/reference_captioner.py"))
        .arg(repo().join("tests/models/tiny-captioner"))
        .arg(&bin)
        .args(["2", "3", &shape[2].to_string(), &shape[3].to_string(), "24"])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
    let reference: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let floats = |key: &str| reference[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    let max_diff = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
    };
    assert!(max_diff(states.values(), &floats("states")) < 1e-5, "encoder states differ");
    assert!(max_diff(&logits, &floats("first_logits")) < 1e-4, "first-step logits differ");
    let tokens: Vec<Vec<u32>> = serde_json::from_value(reference["tokens"].clone()).unwrap();
    assert_eq!(batch.generated, tokens, "greedy tokens differ");
}

/// The decoder has 32 learned positions (`n_positions`): a caption that does not end is cut
/// there and marked truncated, instead of failing the model run. Sampling at a very high
/// temperature draws nearly uniform tokens, so this seeded run does not end on its own.
#[test]
fn generation_stops_at_the_decoders_last_position() {
    let mut cfg = config(repo().join("tests/models/tiny-captioner"));
    cfg.generation.max_new_tokens = 500;
    cfg.generation.temperature = 50.0;
    cfg.generation.seed = 1;
    let out = Captioner::load(cfg).unwrap().caption(&[&clip([220, 30, 30], [255, 255, 255])], &["t"]).unwrap();
    assert!(out[0].truncated && out[0].tokens == 31, "{:?}", out[0]);
}
