//! The embedding and shard stages (ONNX VAE and text encoders, bf16 zstd shards): not built yet; see issue 4.
