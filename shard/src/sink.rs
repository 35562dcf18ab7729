//! The shard sink, the pipeline's shard stage: compressed samples in, shard files on the output store out, and the
//! `samples` rows told where their bytes are.
//!
//! Shards are staged as local files, closed at the size limit or at the end of a commit chunk,
//! named by their content and uploaded (in parts when large; an object appears only when
//! complete) before the chunk's manifests and marker, so a committed sample always has its
//! shard, and a shard of a killed run is named by no marker and removed by the next run.

use std::collections::HashMap;
use std::path::Path;

use clipline_core::manifest::{SampleRow, SampleStatus, ShardRow, Timestamp};
use clipline_core::storage::Store;
use crate::format::checksum_hex;
use crate::{shard_key, EncodedSample, FinishedShard, ShardError, ShardWriter};
use serde::{Deserialize, Serialize};

/// `[shards]`: how samples are stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShardsConfig {
    /// Largest shard file, MiB; shards also close at the end of each commit chunk.
    pub target_mib: u64,
    /// zstd level of each sample's frame (1 to 19; 3 is fast and near the knee).
    pub zstd_level: i32,
    /// Store bf16 tensors as byte planes (smaller; one extra pass on read).
    pub byte_planes: bool,
}

impl Default for ShardsConfig {
    fn default() -> Self {
        Self { target_mib: 256, zstd_level: 3, byte_planes: true }
    }
}

impl ShardsConfig {
    /// The settings that change shard bytes.
    pub fn format_settings(&self) -> (i32, bool) {
        (self.zstd_level, self.byte_planes)
    }

    /// Check values that parse but cannot work.
    ///
    /// # Errors
    /// Naming the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=19).contains(&self.zstd_level) || self.target_mib == 0 || self.target_mib > 4096 {
            return Err(format!("shards.zstd_level must be 1 to 19 (got {}) and shards.target_mib 1 to 4096 (got {})", self.zstd_level, self.target_mib));
        }
        Ok(())
    }
}

/// Writes the samples of commit chunks into shards on the output store.
pub struct ShardSink {
    store: Store,
    writer: ShardWriter,
    level: i32,
}

impl ShardSink {
    /// A sink staging shards in `scratch`.
    pub fn new(store: Store, config: &ShardsConfig, scratch: &Path) -> Self {
        Self { store, writer: ShardWriter::new(scratch, config.target_mib << 20), level: config.zstd_level }
    }

    /// Put a chunk's samples into shards, upload them, and fill in the rows' locations; returns
    /// the sample rows and the rows of the shards uploaded. A sample that cannot be placed
    /// (larger than a shard) fails its row with the reason.
    ///
    /// # Errors
    /// When a shard cannot be staged or uploaded.
    pub async fn write_chunk(&mut self, samples: Vec<(SampleRow, Option<EncodedSample>)>) -> Result<(Vec<SampleRow>, Vec<ShardRow>), ShardError> {
        let mut rows = Vec::with_capacity(samples.len());
        let mut finished = Vec::new();
        for (mut row, encoded) in samples {
            if let Some(encoded) = encoded {
                match tokio::task::block_in_place(|| self.writer.push(&encoded)) {
                    Ok(closed) => finished.extend(closed),
                    Err(e @ ShardError::TooLarge { .. }) => {
                        row.status = SampleStatus::Failed;
                        row.error = Some(e.to_string());
                    }
                    Err(e) => return Err(e),
                }
            }
            rows.push(row);
        }
        finished.extend(tokio::task::block_in_place(|| self.writer.finish())?);
        let mut by_id: HashMap<String, usize> = rows.iter().enumerate().map(|(i, r)| (r.sample_id.clone(), i)).collect();
        let mut shard_rows = Vec::with_capacity(finished.len());
        for shard in finished {
            self.store.put_file(&shard_key(&shard.name), &shard.file).await?;
            for placed in &shard.samples {
                if let Some(i) = by_id.remove(&placed.sample_id) {
                    let row = &mut rows[i];
                    row.shard = Some(shard.name.clone());
                    row.offset = Some(placed.offset as i64);
                    row.length = Some(i64::from(placed.length));
                    row.raw_length = Some(i64::from(placed.raw_length));
                    row.checksum = Some(checksum_hex(placed.checksum));
                }
            }
            shard_rows.push(self.shard_row(&shard));
        }
        Ok((rows, shard_rows))
    }

    fn shard_row(&self, shard: &FinishedShard) -> ShardRow {
        ShardRow {
            shard: shard.name.clone(),
            samples: shard.samples.len() as i64,
            bytes: shard.bytes as i64,
            raw_bytes: shard.raw_bytes as i64,
            index_bytes: shard.index_bytes as i64,
            zstd_level: i64::from(self.level),
            created_at: Timestamp::now(),
        }
    }
}
