//! The clipline trainer: an STDiT latent diffusion transformer trained with rectified flow on
//! the precomputed shards, fed by the streaming loader of `clipline-shard`, on one rank or many
//! ([`collective`], [`grad_sync`]), with checkpoints a PyTorch user opens ([`checkpoint`]).
//!
//! It is built on burn: the one maintained Rust framework here whose CUDA backend builds
//! without a CUDA toolkit (CubeCL loads the driver and NVRTC at run time), so GPU binaries
//! are built on machines without one; its Flex CPU backend trains in CI. candle's CUDA build
//! needs `nvcc`.

pub mod backend;
pub mod batch;
pub mod checkpoint;
pub mod collective;
pub mod config;
pub mod data;
pub mod ema;
pub mod grad_clip;
pub mod grad_sync;
pub mod metrics_log;
pub mod model;
pub mod objective;
pub mod schedule;
pub mod step_bench;
pub mod train;
pub mod watchdog;

pub use config::TrainConfig;
pub use train::{train, RunOptions, Summary};
