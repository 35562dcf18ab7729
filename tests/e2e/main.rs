//! End-to-end tests: the real `clipline` binary on videos generated with ffmpeg, real Parquet,
//! a real S3 server (moto) on 127.0.0.1. See `support` for the fixtures.

mod analysts;
mod bad_inputs;
mod captions;
mod commands;
mod crash;
mod demo;
mod faults;
mod frame_exact;
mod http;
mod interrupt;
mod models;
mod partitions;
mod python;
mod ranks;
mod real_footage;
mod resume;
mod s3;
mod shards;
mod slurm;
mod storage;
mod train;
mod support;
