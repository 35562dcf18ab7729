//! Types that every clipline crate shares.
//!
//! The pipeline writes, the trainer reads and the analysts query the same outputs, and none of
//! them should pull in the others' heavy dependencies (the trainer must not link ONNX Runtime to
//! read a manifest). So what they agree on lives here, small: where outputs are stored
//! ([`storage`]), how things are named ([`ids`]), where the per-user caches are ([`cache`]),
//! which environment variables clipline reads ([`env`](mod@env)), how it fetches over HTTP
//! ([`http`]), the manifest tables with their Parquet encoding ([`manifest`]), and config enums
//! by name ([`names`]).

pub mod cache;
pub mod env;
pub mod error;
pub mod http;
pub mod ids;
pub mod manifest;
pub mod names;
pub mod rng;
pub mod storage;

pub use error::{Error, Result};
