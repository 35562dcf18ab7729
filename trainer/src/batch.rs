//! A loader batch as tensors: latents [batch, C, T, H, W] and padded caption embeddings.

use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor, TensorData};
use clipline_shard::Sample;

use crate::model::{DataShape, TextInput};

/// Host-side tensors of one batch, before they go to the device.
#[derive(Debug, Clone)]
pub struct HostBatch {
    /// Latents, [batch, C, T, H, W] flattened.
    pub latents: Vec<f32>,
    /// Their shape.
    pub shape: [usize; 5],
    /// Caption embeddings, when the model takes them.
    pub text: Option<HostText>,
}

/// Caption embeddings [batch, tokens, width], zero-padded.
#[derive(Debug, Clone)]
pub struct HostText {
    /// The values.
    pub values: Vec<f32>,
    /// [batch, tokens], true at padding.
    pub pad: Vec<bool>,
    /// Tokens per row (the longest caption's).
    pub tokens: usize,
    /// Whether each sample has a caption (one without gets the null caption).
    pub captioned: Vec<bool>,
}

/// Gather `samples` (one bucket) into host tensors.
///
/// # Errors
/// Naming the sample whose tensors are missing or do not match the others' or the model's.
pub fn gather(samples: &[Sample], data: DataShape) -> Result<HostBatch, String> {
    let mut latents = Vec::new();
    let mut first: Option<Vec<usize>> = None;
    let mut texts = Vec::with_capacity(samples.len());
    for s in samples {
        let latent = s.tensor("latent").ok_or_else(|| format!("sample {} has no latent tensor", s.id()))?;
        let values = latent.as_bf16().ok_or_else(|| format!("sample {}: latent is not bf16", s.id()))?;
        let dims = latent.shape().to_vec();
        if dims.len() != 4 || dims[1] != data.channels {
            return Err(format!("sample {}: latent shape {dims:?} is not [T, {}, H, W]", s.id(), data.channels));
        }
        if first.get_or_insert_with(|| dims.clone()) != &dims {
            return Err(format!("sample {}: latent shape {dims:?} differs from its batch's {:?} (one bucket per batch)", s.id(), first));
        }
        // Stored [T, C, H, W]; the model takes [C, T, H, W].
        let (t, c, hw) = (dims[0], dims[1], dims[2] * dims[3]);
        for ch in 0..c {
            for frame in 0..t {
                let start = (frame * c + ch) * hw;
                latents.extend(values[start..start + hw].iter().map(|v| v.to_f32()));
            }
        }
        if data.text_width > 0 {
            let text = match s.tensor("text") {
                Some(view) if view.shape().len() == 2 && view.shape()[1] == data.text_width => view.as_bf16().map(|v| (view.shape()[0], v)),
                Some(view) => return Err(format!("sample {}: text shape {:?} is not [tokens, {}]", s.id(), view.shape(), data.text_width)),
                None => None,
            };
            texts.push(text);
        }
    }
    let dims = first.ok_or("an empty batch")?;
    let shape = [samples.len(), dims[1], dims[0], dims[2], dims[3]];
    let text = (data.text_width > 0).then(|| {
        let longest = texts.iter().map(|t| t.map_or(0, |(n, _)| n)).max().unwrap_or(0).max(1);
        let mut values = vec![0.0; samples.len() * longest * data.text_width];
        let mut pad = vec![true; samples.len() * longest];
        let mut captioned = vec![false; samples.len()];
        for (i, text) in texts.iter().enumerate() {
            if let Some((n, v)) = text.filter(|(n, _)| *n > 0) {
                let row = &mut values[i * longest * data.text_width..][..n * data.text_width];
                row.iter_mut().zip(v.iter()).for_each(|(o, x)| *o = x.to_f32());
                pad[i * longest..i * longest + n].iter_mut().for_each(|p| *p = false);
                captioned[i] = true;
            }
        }
        HostText { values, pad, tokens: longest, captioned }
    });
    Ok(HostBatch { latents, shape, text })
}

impl HostBatch {
    /// Move the batch to `device`: the latents, and the captions with `dropped[i]` replacing
    /// caption `i` by the null caption (as a missing caption does), seen through its first
    /// token only.
    pub fn into_device<B: Backend>(self, data: DataShape, dropped: &[bool], device: &B::Device) -> (Tensor<B, 5>, Option<TextInput<B>>) {
        let batch = self.shape[0];
        let latents = Tensor::from_data(TensorData::new(self.latents, self.shape), device);
        let text = self.text.map(|text| {
            let tokens = text.tokens;
            let mut pad = text.pad;
            let mut null = vec![0.0f32; batch];
            for i in (0..batch).filter(|&i| dropped[i] || !text.captioned[i]) {
                pad[i * tokens..(i + 1) * tokens].iter_mut().enumerate().for_each(|(k, p)| *p = k > 0);
                null[i] = 1.0;
            }
            TextInput {
                embeddings: Tensor::from_data(TensorData::new(text.values, [batch, tokens, data.text_width]), device),
                pad: Tensor::<B, 2, Bool>::from_data(TensorData::new(pad, [batch, tokens]), device),
                dropped: Tensor::from_data(TensorData::new(null, [batch, 1, 1]), device),
            }
        });
        (latents, text)
    }
}
