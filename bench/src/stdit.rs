//! `clipline bench stdit-forward`: the STDiT on given safetensors weights and inputs, on the
//! backend the config selects in this build (Flex, or LibTorch in a `libtorch` build;
//! `--cpu-backend` overrides), for the check that clipline's weights mean the same in the
//! PyTorch twin (`clipline.stdit.Stdit`): `tests/python/check_twin.py` runs the twin on the
//! same weights and inputs and compares.

use std::path::Path;

use burn::tensor::{Bool, Tensor, TensorData};
use clipline_trainer::backend::{on_backend, AttentionBackend, OnBackend, TrainBackend};
use clipline_trainer::checkpoint::load_safetensors;
use clipline_trainer::model::{DataShape, ModelConfig, Stdit, TextInput};

/// One forward pass's inputs, host-side, in the twin's layouts.
struct Inputs {
    /// Noisy latents [B, C, T, H, W].
    x: (Vec<f32>, [usize; 5]),
    /// Timesteps [B], in [0, 1].
    t: Vec<f32>,
    /// Caption embeddings [B, tokens, width], zero-padded, with `pad` [B, tokens] true at padding.
    text: Option<(Vec<f32>, [usize; 3], Vec<bool>)>,
}

struct Forward<'a> {
    model: &'a ModelConfig,
    weights: &'a Path,
    inputs: Inputs,
}

impl OnBackend for Forward<'_> {
    type Output = Vec<f32>;

    fn run<B: TrainBackend>(self, device: B::Device) -> anyhow::Result<Vec<f32>> {
        run::<B::InnerBackend>(self, &device)
    }
}

fn run<B: AttentionBackend>(job: Forward<'_>, device: &B::Device) -> anyhow::Result<Vec<f32>> {
    let (x, dims) = job.inputs.x;
    let text_width = job.inputs.text.as_ref().map_or(0, |(_, d, _)| d[2]);
    let model = load_safetensors(Stdit::<B>::new(job.model, DataShape { channels: dims[1], text_width }, device), job.weights)?;
    let grid = model.grid(dims).map_err(anyhow::Error::msg)?;
    let x = Tensor::<B, 5>::from_data(TensorData::new(x, dims), device);
    let text = job.inputs.text.map(|(values, d, pad)| TextInput {
        embeddings: Tensor::from_data(TensorData::new(values, d), device),
        pad: Tensor::<B, 2, Bool>::from_data(TensorData::new(pad, [d[0], d[1]]), device),
        dropped: Tensor::zeros([d[0], 1, 1], device),
    });
    let out = model.forward(x, grid, &job.inputs.t, text.as_ref());
    out.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))
}

/// Read the inputs (JSON: `x`, `x_shape`, `t`, optional `y`, `y_shape`, `pad`), run the model of
/// `config` with `weights`, print the output as JSON (`{"out": [...]}`).
///
/// # Errors
/// When a file cannot be read, the weights do not fit the config, or the backend is missing.
pub fn forward(config: &Path, weights: &Path, inputs: &Path, backend: crate::BackendChoice) -> anyhow::Result<()> {
    let mut config = clipline_trainer::TrainConfig::load(config)?;
    backend.apply(&mut config.train);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(inputs)?)?;
    let field = |key: &str| -> anyhow::Result<serde_json::Value> { json.get(key).cloned().ok_or_else(|| anyhow::anyhow!("{}: no {key}", inputs.display())) };
    let floats = |key: &str| -> anyhow::Result<Vec<f32>> { Ok(serde_json::from_value(field(key)?)?) };
    let text = match json.get("y") {
        Some(_) => Some((floats("y")?, serde_json::from_value(field("y_shape")?)?, serde_json::from_value(field("pad")?)?)),
        None => None,
    };
    let inputs = Inputs { x: (floats("x")?, serde_json::from_value(field("x_shape")?)?), t: floats("t")?, text };
    let out = on_backend(&config.train, Forward { model: &config.model, weights, inputs })?;
    println!("{}", serde_json::json!({ "out": out }));
    Ok(())
}
