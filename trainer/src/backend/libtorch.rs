//! LibTorch (PyTorch's C++ library, through burn-tch) on the CPU, with PyTorch's own attention
//! kernels. burn-tch alone gets attention wrong one way and slow the other: it hands burn's
//! mask (true = masked out) to `scaled_dot_product_attention`, whose boolean mask means the
//! opposite, and burn's autodiff decomposes attention into matmuls and a softmax that keep every
//! [tokens × tokens] score for the backward pass. So the forward pass here calls
//! `scaled_dot_product_attention` with the mask the right way round (as the PyTorch twin
//! does), and training calls the CPU flash-attention kernel and its backward kernel, as PyTorch
//! eager does, as one autodiff op.

use burn::backend::libtorch::{LibTorch, TchTensor};
use burn::backend::Autodiff;
use burn::tensor::{Bool, Tensor, TensorPrimitive};
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::AttentionBackend;

/// LibTorch in f32.
type Torch = LibTorch<f32>;
/// What trains on it.
pub type Train = Autodiff<Torch>;

fn raw(t: Tensor<Torch, 4>) -> tch::Tensor {
    t.into_primitive().tensor().tensor
}

fn wrap<B: burn::tensor::backend::Backend>(t: B::FloatTensorPrimitive) -> Tensor<B, 4> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// `pad` [batch, context] (true: padding) as [batch, 1, 1, context], which broadcasts over
/// heads and query tokens.
fn broadcastable(pad: Tensor<Torch, 2, Bool>) -> tch::Tensor {
    let pad = pad.into_primitive().tensor;
    let [batch, context] = [pad.size()[0], pad.size()[1]];
    pad.view([batch, 1, 1, context])
}

/// The boolean mask `scaled_dot_product_attention` takes: true where a token may attend.
fn keep_mask(pad: Tensor<Torch, 2, Bool>) -> tch::Tensor {
    broadcastable(pad).logical_not()
}

/// The additive mask the flash kernels take: 0 where a token may attend, −∞ at padding.
fn additive_mask(pad: Tensor<Torch, 2, Bool>) -> tch::Tensor {
    let pad = broadcastable(pad);
    tch::Tensor::zeros(pad.size(), (tch::Kind::Float, pad.device())).masked_fill(&pad, f64::NEG_INFINITY)
}

impl AttentionBackend for Torch {
    fn scaled_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>, pad: Option<Tensor<Self, 2, Bool>>) -> Tensor<Self, 4> {
        let keep = pad.map(keep_mask);
        let out = tch::Tensor::scaled_dot_product_attention(&raw(q), &raw(k), &raw(v), keep, 0.0, false, None, false);
        wrap::<Self>(TchTensor::new(out))
    }
}

/// What the flash kernel's backward pass needs from its forward pass.
#[derive(Debug, Clone)]
struct Saved {
    q: TchTensor,
    k: TchTensor,
    v: TchTensor,
    out: TchTensor,
    logsumexp: TchTensor,
    mask: Option<TchTensor>,
}

#[derive(Debug)]
struct FlashAttention;

impl Backward<Torch, 3> for FlashAttention {
    type State = Saved;

    fn backward(self, ops: Ops<Saved, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<Torch>(&ops.node);
        let s = ops.state;
        let (dq, dk, dv) = tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu_backward(
            &grad.tensor,
            &s.q.tensor,
            &s.k.tensor,
            &s.v.tensor,
            &s.out.tensor,
            &s.logsumexp.tensor,
            0.0,
            false,
            s.mask.as_ref().map(|m| &m.tensor),
            None,
        );
        for (parent, grad) in ops.parents.into_iter().zip([dq, dk, dv]) {
            if let Some(node) = parent {
                grads.register::<Torch>(node.id, TchTensor::new(grad));
            }
        }
    }
}

impl AttentionBackend for Train {
    fn scaled_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>, pad: Option<Tensor<Self, 2, Bool>>) -> Tensor<Self, 4> {
        let [q, k, v] = [q, k, v].map(|t| t.into_primitive().tensor());
        let pad = pad.map(|p| Tensor::<Torch, 2, Bool>::from_primitive(p.into_primitive()));
        let out = match FlashAttention.prepare::<NoCheckpointing>([q.node.clone(), k.node.clone(), v.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let mask = pad.map(|p| TchTensor::new(additive_mask(p)));
                let (out, logsumexp) = tch::Tensor::internal_scaled_dot_product_flash_attention_for_cpu(
                    &q.primitive.tensor,
                    &k.primitive.tensor,
                    &v.primitive.tensor,
                    0.0,
                    false,
                    mask.as_ref().map(|m| &m.tensor),
                    None,
                );
                let out = TchTensor::new(out);
                let saved = Saved { q: q.primitive, k: k.primitive, v: v.primitive, out: out.clone(), logsumexp: TchTensor::new(logsumexp), mask };
                prep.finish(saved, out)
            }
            OpsKind::UnTracked(prep) => {
                let [q, k, v] = [q, k, v].map(|t| wrap::<Torch>(t.primitive));
                prep.finish(Torch::scaled_attention(q, k, v, pad).into_primitive().tensor())
            }
        };
        wrap::<Self>(out)
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::backend::Backend;
    use burn::tensor::{ElementConversion, Tensor, TensorData};

    use super::*;
    use crate::backend::burn_attention;

    /// q, k, v and a weight for the loss, from a fixed sequence (torch's seed is global, and
    /// tests run in parallel).
    fn inputs<B: Backend>(device: &B::Device) -> [Tensor<B, 4>; 4] {
        let mut state = 0x2545_f491_u32;
        let mut values = |dims: [usize; 4]| {
            let data: Vec<f32> = (0..dims.iter().product::<usize>())
                .map(|_| {
                    state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (state >> 8) as f32 / (1u32 << 23) as f32 - 1.0
                })
                .collect();
            Tensor::from_data(TensorData::new(data, dims), device)
        };
        [values([2, 3, 9, 8]), values([2, 3, 5, 8]), values([2, 3, 5, 8]), values([2, 3, 9, 8])]
    }

    fn pad<B: Backend>(device: &B::Device) -> Tensor<B, 2, Bool> {
        // The second sample's last two context tokens are padding.
        Tensor::from_data(TensorData::new(vec![false, false, false, false, false, false, false, false, true, true], [2, 5]), device)
    }

    fn max_diff<B: Backend>(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
        (a - b).abs().max().into_scalar().elem()
    }

    #[test]
    fn forward_masks_padding_as_flex_does() {
        // burn's own attention op on LibTorch inverts the mask, so Flex is the reference.
        let device = Default::default();
        let [q, k, v, _] = inputs::<Torch>(&device);
        let fused = Torch::scaled_attention(q.clone(), k.clone(), v.clone(), Some(pad(&device)));
        let on_flex = |t: Tensor<Torch, 4>| Tensor::<Flex, 4>::from_data(t.into_data(), &Default::default());
        let reference = burn_attention(on_flex(q), on_flex(k), on_flex(v), Some(pad(&Default::default())));
        let diff = max_diff(on_flex(fused), reference);
        assert!(diff < 1e-5, "differs by {diff}");
    }

    #[test]
    fn flash_gradients_equal_the_decomposed_ones() {
        let device = Default::default();
        let grads_of = |fused: bool| {
            let [q, k, v, weight] = inputs::<Train>(&device).map(|t| t.require_grad());
            let out = if fused {
                Train::scaled_attention(q.clone(), k.clone(), v.clone(), Some(pad(&device)))
            } else {
                burn_attention(q.clone(), k.clone(), v.clone(), Some(pad(&device)))
            };
            let grads = (out.clone() * weight).sum().backward();
            [out.inner(), q.grad(&grads).unwrap(), k.grad(&grads).unwrap(), v.grad(&grads).unwrap()]
        };
        let (fused, decomposed) = (grads_of(true), grads_of(false));
        for (name, (a, b)) in ["out", "dq", "dk", "dv"].into_iter().zip(fused.into_iter().zip(decomposed)) {
            let diff = max_diff(a, b);
            assert!(diff < 1e-5, "{name} differs by {diff}");
        }
    }
}
