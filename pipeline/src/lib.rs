//! The clipline pipeline: raw videos in; shots, clips, scores, captions, bf16 latent shards and
//! Parquet manifests out.
//!
//! The dataflow is `discover → fetch → probe → decode + detect → plan clips → extract → caption
//! → filter → embed → shard → commit` ([`run`]); the per-video stages are types in [`stage`],
//! chained for one video by [`ingest`]. A source is decoded once at a small analysis
//! size ([`decode`]); shot detection and per-clip scores share that pass ([`detect`], [`clips`]).
//! Commits are atomic and resumable ([`commit`]); failures are rows, not crashes ([`ingest`]).
//! Across machines, [`plan_cmd`] deals the inputs to partitions, each run as one [`partition`]
//! under a lease, and [`commit_cmd`] publishes them all at once.

pub mod batch;
pub mod caption;
pub mod clips;
pub mod commit;
pub mod commit_cmd;
pub mod config;
pub mod decode;
pub mod detect;
pub mod embed;
pub mod extract;
pub mod ingest;
pub mod job;
pub mod model_queue;
pub mod partition;
pub mod plan_cmd;
pub mod probe;
pub mod run;
pub mod runtime;
pub mod sources;
pub mod stage;
pub mod tools;
