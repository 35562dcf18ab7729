//! Choosing the burn backend from `train.device` and `train.precision`: work that is generic
//! over the backend implements [`OnBackend`] and is run on the one the config names.

use burn::tensor::backend::AutodiffBackend;

/// Work generic over the autodiff backend.
pub trait OnBackend {
    /// What it returns.
    type Output;
    /// Run it on backend `B` and `device`.
    ///
    /// # Errors
    /// Whatever the work fails with.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> anyhow::Result<Self::Output>;
}

/// Run `work` on the backend for `device` (`cpu`, `cuda`) and `precision` (`f32`, `bf16`).
///
/// # Errors
/// When this build has no such backend, or the work fails.
pub fn on_backend<W: OnBackend>(device: &str, precision: &str, work: W) -> anyhow::Result<W::Output> {
    match (device, precision) {
        ("cpu", "f32") => work.run::<burn::backend::Autodiff<burn::backend::Flex>>(Default::default()),
        #[cfg(feature = "cuda")]
        ("cuda", "f32") => work.run::<burn::backend::Autodiff<burn::backend::Cuda<f32>>>(Default::default()),
        #[cfg(feature = "cuda")]
        ("cuda", "bf16") => work.run::<burn::backend::Autodiff<burn::backend::Cuda<burn::tensor::bf16>>>(Default::default()),
        (device, precision) => anyhow::bail!("train.device {device:?} with precision {precision:?} is not available in this build: cpu computes in f32; cuda (f32 or bf16) needs a build with the `cuda` feature"),
    }
}
