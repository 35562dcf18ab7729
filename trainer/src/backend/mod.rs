//! Choosing the burn backend from `train.device`, `train.precision` and `train.cpu_backend`:
//! work that is generic over the backend implements [`OnBackend`] and is run on the one the
//! config names. Each backend also says how it computes attention ([`AttentionBackend`]), the
//! one operation whose kernel decides the step time at video token counts.

#[cfg(feature = "libtorch")]
mod libtorch;

use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Tensor};

use crate::config::{CpuBackend, Device, LoopConfig, Precision};

/// Attention as a backend computes it best.
pub trait AttentionBackend: Backend {
    /// softmax(q kᵀ / √head dim) v for `q` [batch, heads, tokens, head dim] and `k`, `v`
    /// [batch, heads, context tokens, head dim]; `pad` [batch, context tokens] is true where
    /// the context is padding, which no token attends to.
    fn scaled_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>, pad: Option<Tensor<Self, 2, Bool>>) -> Tensor<Self, 4>;
}

/// A backend to train on: autodiff with attention, over an inner backend (validation, EMA,
/// inference) with attention.
pub trait TrainBackend: AutodiffBackend<InnerBackend: AttentionBackend> + AttentionBackend {}

impl<B: AutodiffBackend<InnerBackend: AttentionBackend> + AttentionBackend> TrainBackend for B {}

/// burn's attention op, which these backends implement themselves (Flex, CubeCL) or which
/// burn's autodiff decomposes into matmuls and a softmax.
fn burn_attention<B: Backend>(q: Tensor<B, 4>, k: Tensor<B, 4>, v: Tensor<B, 4>, pad: Option<Tensor<B, 2, Bool>>) -> Tensor<B, 4> {
    let [batch, heads, tokens, _] = q.dims();
    let context = k.dims()[2];
    let mask = pad.map(|p| p.reshape([batch, 1, 1, context]).expand([batch, heads, tokens, context]));
    attention(q, k, v, mask, None, AttentionModuleOptions::default())
}

macro_rules! attention_from_burn {
    ($($backend:ty),* $(,)?) => {$(
        impl AttentionBackend for $backend {
            fn scaled_attention(q: Tensor<Self, 4>, k: Tensor<Self, 4>, v: Tensor<Self, 4>, pad: Option<Tensor<Self, 2, Bool>>) -> Tensor<Self, 4> {
                burn_attention(q, k, v, pad)
            }
        }
    )*};
}

attention_from_burn!(burn::backend::Flex, burn::backend::Autodiff<burn::backend::Flex>);
#[cfg(feature = "cuda")]
attention_from_burn!(
    burn::backend::Cuda<f32>,
    burn::backend::Autodiff<burn::backend::Cuda<f32>>,
    burn::backend::Cuda<burn::tensor::bf16>,
    burn::backend::Autodiff<burn::backend::Cuda<burn::tensor::bf16>>,
);

/// Work generic over the training backend.
pub trait OnBackend {
    /// What it returns.
    type Output;
    /// Run it on backend `B` and `device`.
    ///
    /// # Errors
    /// Whatever the work fails with.
    fn run<B: TrainBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// The CPU backend `auto` stands for in this build.
fn resolve(choice: CpuBackend) -> CpuBackend {
    match choice {
        CpuBackend::Auto if cfg!(feature = "libtorch") => CpuBackend::Libtorch,
        CpuBackend::Auto => CpuBackend::Flex,
        chosen => chosen,
    }
}

/// This rank's GPU: `LOCAL_RANK`'s (torchrun starts one rank per GPU of a node, each seeing
/// them all), else the first visible one (srun with `--gpus-per-task=1` and a Kubernetes pod
/// with one GPU each make the rank's own GPU the only one it sees).
///
/// # Errors
/// When `LOCAL_RANK` is not a number.
#[cfg(feature = "cuda")]
fn local_gpu() -> anyhow::Result<burn::backend::cuda::CudaDevice> {
    let index = match clipline_core::env::text("LOCAL_RANK") {
        Some(value) => value.trim().parse().map_err(|_| anyhow::anyhow!("LOCAL_RANK {value:?} is not a GPU index"))?,
        None => 0,
    };
    Ok(burn::backend::cuda::CudaDevice::new(index))
}

/// Run `work` on the backend `train` names.
///
/// # Errors
/// When this build has no such backend, or the work fails.
pub fn on_backend<W: OnBackend>(train: &LoopConfig, work: W) -> anyhow::Result<W::Output> {
    let cpu_backend = resolve(train.cpu_backend);
    tracing::info!(device = ?train.device, precision = ?train.precision, ?cpu_backend, "backend");
    match (train.device, train.precision, cpu_backend) {
        (Device::Cpu, Precision::F32, CpuBackend::Flex) => work.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()),
        #[cfg(feature = "libtorch")]
        (Device::Cpu, Precision::F32, CpuBackend::Libtorch) => work.run::<libtorch::Train>(burn::backend::libtorch::LibTorchDevice::Cpu),
        #[cfg(feature = "cuda")]
        (Device::Cuda, Precision::F32, _) => work.run::<burn::backend::Autodiff<burn::backend::Cuda<f32>>>(local_gpu()?),
        #[cfg(feature = "cuda")]
        (Device::Cuda, Precision::Bf16, _) => work.run::<burn::backend::Autodiff<burn::backend::Cuda<burn::tensor::bf16>>>(local_gpu()?),
        (device, precision, cpu) => {
            let names = format!("train.device {device:?}, precision {precision:?}, cpu_backend {cpu:?}").to_lowercase();
            anyhow::bail!("{names}: not available in this build. The CPU computes in f32, on flex or, in a build with the `libtorch` feature, libtorch; cuda (f32 or bf16) needs a build with the `cuda` feature")
        }
    }
}
