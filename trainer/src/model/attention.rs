//! Multi-head attention over a token axis: self-attention for the spatial and temporal
//! passes, cross-attention from video tokens to text tokens with a padding mask.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::backend::Backend;
use burn::tensor::{Bool, Tensor};

use crate::backend::AttentionBackend;

/// Attention with its own query, key, value and output projections.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    query: Linear<B>,
    key_value: Linear<B>,
    out: Linear<B>,
    heads: usize,
}

impl<B: AttentionBackend> Attention<B> {
    /// Attention of width `dim` with `heads` heads, attending to a context of width `context`.
    pub fn new(dim: usize, context: usize, heads: usize, device: &B::Device) -> Self {
        Self {
            query: LinearConfig::new(dim, dim).init(device),
            key_value: LinearConfig::new(context, 2 * dim).init(device),
            out: LinearConfig::new(dim, dim).init(device),
            heads,
        }
    }

    /// `x` [batch, tokens, dim] attends to `context` [batch, context tokens, context dim];
    /// `pad` [batch, context tokens] is true where the context is padding.
    pub fn forward(&self, x: Tensor<B, 3>, context: Tensor<B, 3>, pad: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 3> {
        let [batch, tokens, dim] = x.dims();
        let context_tokens = context.dims()[1];
        let head_dim = dim / self.heads;
        let split = |t: Tensor<B, 3>, n: usize| t.reshape([batch, n, self.heads, head_dim]).swap_dims(1, 2);
        let q = split(self.query.forward(x), tokens);
        let kv = self.key_value.forward(context).chunk(2, 2);
        let (k, v) = (split(kv[0].clone(), context_tokens), split(kv[1].clone(), context_tokens));
        let out = B::scaled_attention(q, k, v, pad);
        self.out.forward(out.swap_dims(1, 2).reshape([batch, tokens, dim]))
    }

    /// Self-attention of `x` [batch, tokens, dim].
    pub fn forward_self(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        self.forward(x.clone(), x, None)
    }
}
