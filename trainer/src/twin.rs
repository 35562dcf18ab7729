//! This model on given weights and inputs, for the check that clipline's weights mean the same
//! in the PyTorch twin (`clipline.stdit.Stdit`): `clipline bench stdit-forward` runs it, and
//! the e2e test runs the twin on the same safetensors and inputs and compares the outputs.

use std::path::Path;

use burn::backend::Flex;
use burn::tensor::{Bool, Tensor, TensorData};

use crate::checkpoint::load_safetensors;
use crate::model::{DataShape, ModelConfig, Stdit, TextInput};

/// One forward pass's inputs, host-side, in the twin's layouts.
#[derive(Debug, Clone)]
pub struct ForwardInputs {
    /// Noisy latents [B, C, T, H, W].
    pub x: (Vec<f32>, [usize; 5]),
    /// Timesteps [B], in [0, 1].
    pub t: Vec<f32>,
    /// Caption embeddings [B, tokens, width], zero-padded, with `pad` [B, tokens] true at padding.
    pub text: Option<(Vec<f32>, [usize; 3], Vec<bool>)>,
}

/// The predicted velocity [B, C, T, H, W] of the model `config` with the safetensors `weights`,
/// on the CPU in f32.
///
/// # Errors
/// When the weights do not fit the config or the latents the patch size.
pub fn forward(config: &ModelConfig, weights: &Path, inputs: &ForwardInputs) -> anyhow::Result<Vec<f32>> {
    let device = Default::default();
    let (x, dims) = &inputs.x;
    let text_width = inputs.text.as_ref().map_or(0, |(_, d, _)| d[2]);
    let model = load_safetensors(Stdit::<Flex>::new(config, DataShape { channels: dims[1], text_width }, &device), weights)?;
    let grid = model.grid(*dims).map_err(anyhow::Error::msg)?;
    let x = Tensor::<Flex, 5>::from_data(TensorData::new(x.clone(), *dims), &device);
    let text = inputs.text.as_ref().map(|(values, d, pad)| TextInput {
        embeddings: Tensor::from_data(TensorData::new(values.clone(), *d), &device),
        pad: Tensor::<Flex, 2, Bool>::from_data(TensorData::new(pad.clone(), [d[0], d[1]]), &device),
        dropped: Tensor::zeros([d[0], 1, 1], &device),
    });
    let out = model.forward(x, grid, &inputs.t, text.as_ref());
    out.into_data().convert::<f32>().to_vec::<f32>().map_err(|e| anyhow::anyhow!("{e:?}"))
}
