//! The bundled tiny VAEs (image and causal video) and text encoder through ONNX Runtime:
//! shapes, sampling, chunking, bad input, and parity with onnxruntime-python.

use std::path::PathBuf;
use std::process::Command;

use clipline_embedder::{ClipFrames, Draw, EmbedError, TextEncoder, Vae, VaeLayout};
use clipline_onnx::SessionOptions;
use half::bf16;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn vae() -> Vae {
    Vae::load(&repo().join("tests/models/tiny-vae"), &SessionOptions::default()).unwrap()
}

fn video_vae() -> Vae {
    Vae::load(&repo().join("tests/models/tiny-video-vae"), &SessionOptions::default()).unwrap()
}

/// `n` 32x48 frames of a square moving right on a gradient.
fn moving(n: usize) -> Vec<u8> {
    let (h, w) = (32, 48);
    let mut rgb = Vec::with_capacity(n * h * w * 3);
    for f in 0..n {
        for y in 0..h {
            for x in 0..w {
                let inside = (10..22).contains(&y) && (2 * f..2 * f + 12).contains(&x);
                rgb.extend(if inside { [230, 40, 40] } else { [(x * 5) as u8, (y * 7) as u8, 90] });
            }
        }
    }
    rgb
}

fn text_encoder() -> TextEncoder {
    TextEncoder::load(&repo().join("tests/models/tiny-text-encoder"), 16, &SessionOptions::default()).unwrap()
}

/// Two 32x48 frames: a gradient and a red square on white.
fn frames() -> Vec<u8> {
    let (h, w) = (32, 48);
    let mut rgb = Vec::with_capacity(2 * h * w * 3);
    for y in 0..h {
        for x in 0..w {
            rgb.extend([(x * 5) as u8, (y * 7) as u8, 128]);
        }
    }
    for y in 0..h {
        for x in 0..w {
            let inside = (8..24).contains(&y) && (16..32).contains(&x);
            rgb.extend(if inside { [220, 30, 30] } else { [255, 255, 255] });
        }
    }
    rgb
}

#[test]
fn latents_have_the_model_s_shape_and_sampling_is_seeded() {
    let mut vae = vae();
    assert_eq!(vae.layout, VaeLayout::Image);
    assert_eq!(vae.latent_shape(2, 32, 48).unwrap(), [2, 4, 4, 6]);
    let mean = vae.encode(&frames(), 2, (32, 48), Draw::Mean, 16).unwrap();
    assert_eq!(mean.len(), 2 * 4 * 4 * 6);
    assert_eq!(vae.encode(&frames(), 2, (32, 48), Draw::Mean, 1).unwrap(), mean, "batches do not change latents");
    let a = vae.encode(&frames(), 2, (32, 48), Draw::Sample(1), 16).unwrap();
    assert_eq!(a, vae.encode(&frames(), 2, (32, 48), Draw::Sample(1), 1).unwrap(), "a seed fixes the sample, whatever the batch");
    assert_ne!(a, vae.encode(&frames(), 2, (32, 48), Draw::Sample(2), 16).unwrap());
    assert_ne!(a, mean);
}

#[test]
fn clips_sharing_model_runs_get_the_latents_they_get_alone() {
    let mut vae = vae();
    let (two, one) = (frames(), moving(1));
    let clips = [ClipFrames { rgb: &two, frames: 2, draw: Draw::Sample(3) }, ClipFrames { rgb: &one, frames: 1, draw: Draw::Mean }];
    let together = vae.encode_clips(&clips, (32, 48), 16).unwrap();
    let alone: Vec<Vec<f32>> = clips.iter().map(|c| vae.encode(c.rgb, c.frames, (32, 48), c.draw, 16).unwrap()).collect();
    assert_eq!(together.len(), 2);
    for (t, a) in together.iter().zip(&alone) {
        let diff = t.iter().zip(a).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(t.len() == a.len() && diff < 1e-5, "batching changed latents by {diff}");
    }
}

#[test]
fn the_video_vae_chunks_clips_and_padding_does_not_reach_kept_latents() {
    let mut vae = video_vae();
    assert_eq!(vae.layout, VaeLayout::Video { frames: 9, temporal: 4 });
    assert_eq!(vae.latent_shape(17, 32, 48).unwrap(), [5, 4, 4, 6]);
    assert_eq!(vae.latent_shape(1, 32, 48).unwrap(), [1, 4, 4, 6]);
    let per_frame = 4 * 4 * 6;
    let nine = vae.encode(&moving(9), 9, (32, 48), Draw::Mean, 1).unwrap();
    // A causal VAE's first latents see only the first frames: a 5-frame clip (padded to 9 with
    // its last frame) gives exactly the first 2 latents of the 9-frame clip it starts.
    let five = vae.encode(&moving(5), 5, (32, 48), Draw::Mean, 1).unwrap();
    assert_eq!(five.len(), 2 * per_frame);
    let diff = five.iter().zip(&nine).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-4, "padding changed kept latents by {diff}");
    // The first chunk of a 17-frame clip is the 9-frame clip.
    let seventeen = vae.encode(&moving(17), 17, (32, 48), Draw::Mean, 1).unwrap();
    assert_eq!(seventeen.len(), 5 * per_frame);
    assert_eq!(&seventeen[..3 * per_frame], &nine[..]);
    // An image sample through a video VAE: one latent.
    assert_eq!(vae.encode(&moving(1), 1, (32, 48), Draw::Mean, 1).unwrap().len(), per_frame);
}

#[test]
fn frames_that_do_not_fit_the_vae_are_refused_saying_why() {
    let mut vae = vae();
    let err = vae.encode(&[0u8; 30 * 30 * 3], 1, (30, 30), Draw::Mean, 1).unwrap_err();
    assert!(matches!(err, EmbedError::Input(_)) && err.to_string().contains("multiples of 8"), "{err}");
    let err = vae.encode(&[0u8; 10], 1, (32, 32), Draw::Mean, 1).unwrap_err();
    assert!(err.to_string().contains("10 bytes"), "{err}");
    let err = video_vae().encode(&moving(6), 6, (32, 48), Draw::Mean, 1).unwrap_err();
    assert!(err.to_string().contains("1 + 4k"), "{err}");
}

#[test]
fn a_directory_without_a_model_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Vae::load(dir.path(), &SessionOptions::default()).err().unwrap();
    assert!(err.to_string().contains(&dir.path().display().to_string()), "{err}");
    let err = TextEncoder::load(&repo().join("tests/models/tiny-vae"), 16, &SessionOptions::default()).err().unwrap();
    assert!(err.to_string().contains("tokenizer.json"), "{err}");
    // A VAE graph where a text encoder is expected: its signature is refused.
    let mixed = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("tests/models/tiny-vae/model.onnx"), mixed.path().join("model.onnx")).unwrap();
    std::fs::copy(repo().join("tests/models/tiny-text-encoder/tokenizer.json"), mixed.path().join("tokenizer.json")).unwrap();
    let err = TextEncoder::load(mixed.path(), 16, &SessionOptions::default()).err().unwrap();
    assert!(err.to_string().contains("input_ids"), "{err}");
}

#[test]
fn text_embeddings_keep_only_real_tokens_and_do_not_depend_on_the_batch() {
    let mut enc = text_encoder();
    let long = "a red circle on a white background";
    let batch = enc.encode(&["a blue square", long]).unwrap();
    let alone = enc.encode(&["a blue square"]).unwrap();
    assert!(batch[0].tokens < batch[1].tokens);
    assert_eq!(batch[0].values.len(), batch[0].tokens * batch[0].width);
    let max_diff = batch[0].values.iter().zip(&alone[0].values).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(max_diff < 1e-5, "padding changed the embedding by {max_diff}");
    let many = "a red circle ".repeat(20);
    assert_eq!(enc.encode(&[&many]).unwrap()[0].tokens, 16, "cut at max_tokens");
}

/// Within bf16 rounding of onnxruntime-python on the same inputs (`CLIPLINE_PYTHON` names an
/// interpreter with onnxruntime, numpy and tokenizers; scripts/test.sh sets it).
#[test]
fn matches_onnxruntime_python_within_bf16_rounding() {
    let Some(python) = clipline_testkit::reference_python() else { return };
    let reference = |args: &[&str]| -> serde_json::Value {
        let out = Command::new(&python).arg(repo().join("tests/models/reference_embedders.py")).args(args).output().expect("python runs");
        assert!(out.status.success(), "reference failed: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let floats = |v: &serde_json::Value| v["values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect::<Vec<f32>>();
    let within_bf16 = |ours: &[f32], theirs: &[f32], what: &str| {
        assert_eq!(ours.len(), theirs.len(), "{what}");
        for (a, b) in ours.iter().zip(theirs) {
            let stored = bf16::from_f32(*a).to_f32();
            assert!((stored - b).abs() <= b.abs() / 128.0 + 1e-6, "{what}: bf16 {stored} vs {b}");
        }
    };

    let dir = tempfile::tempdir().unwrap();
    let rgb = dir.path().join("frames.rgb");
    std::fs::write(&rgb, frames()).unwrap();
    let model = repo().join("tests/models/tiny-vae");
    let theirs = reference(&["vae", model.to_str().unwrap(), rgb.to_str().unwrap(), "2", "32", "48"]);
    assert_eq!(theirs["shape"], serde_json::json!([2, 4, 4, 6]));
    within_bf16(&vae().encode(&frames(), 2, (32, 48), Draw::Mean, 16).unwrap(), &floats(&theirs), "latents");

    // The video VAE over clips shorter than, as long as, and longer than its export (9 frames).
    let model = repo().join("tests/models/tiny-video-vae");
    for n in [5, 9, 17, 21] {
        std::fs::write(&rgb, moving(n)).unwrap();
        let theirs = reference(&["video-vae", model.to_str().unwrap(), rgb.to_str().unwrap(), &n.to_string(), "32", "48"]);
        assert_eq!(theirs["shape"], serde_json::json!([1 + (n - 1) / 4, 4, 4, 6]), "{n} frames");
        within_bf16(&video_vae().encode(&moving(n), n, (32, 48), Draw::Mean, 1).unwrap(), &floats(&theirs), &format!("video latents of {n} frames"));
    }

    let texts = ["a red circle on a white background", "a green triangle"];
    let model = repo().join("tests/models/tiny-text-encoder");
    let theirs = reference(&["text", model.to_str().unwrap(), texts[0], texts[1]]);
    for (ours, theirs) in text_encoder().encode(&texts).unwrap().iter().zip(theirs.as_array().unwrap()) {
        assert_eq!(theirs["shape"], serde_json::json!([ours.tokens, ours.width]));
        within_bf16(&ours.values, &floats(theirs), "text embedding");
    }
}
