//! Commit markers: which manifest parts and shard files belong to committed chunks.
//!
//! A writer puts a chunk's Parquet parts (and shard files) first and its marker
//! (`manifests/_commits/<chunk>.json`) last; whatever no marker names was left by a killed run.
//! Readers that must never see such leftovers (the shard reader, `clipline shards verify`) read
//! the files the markers name, and the next run deletes the rest.
//!
//! A partitioned run keeps its markers out of sight (under its partition's directory) until
//! `clipline commit` publishes the chunks of every partition in one [`MarkerBatch`] object: one
//! put, so readers see all partitions or none.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{decode, Table, VideoStatus};
use crate::storage::Store;
use crate::{Error, Result};

/// Directory of commit markers under the output root.
pub const COMMITS: &str = "manifests/_commits";

/// The key of table `table`'s part of chunk (or run) `key`.
pub fn part_key(table: &str, key: &str) -> String {
    format!("manifests/{table}/part-{key}.parquet")
}

/// The chunk a part's key names (the inverse of [`part_key`]).
pub fn chunk_of_part(part: &str) -> Option<&str> {
    part.rsplit('/').next()?.strip_prefix("part-")?.strip_suffix(".parquet")
}

/// What a commit marker records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Marker {
    /// Format of this file.
    pub format: u32,
    /// Chunk key.
    pub chunk: String,
    /// Settings fingerprint of the rows.
    pub settings_hash: String,
    /// The chunk's sources, in order, with their content ids where known.
    pub sources: Vec<MarkedSource>,
    /// Part keys, by table.
    pub parts: HashMap<String, String>,
    /// Keys of the shard files the chunk's samples are in.
    #[serde(default)]
    pub shards: Vec<String>,
}

impl Marker {
    /// The files the chunk consists of: its parts and shards.
    pub fn files(&self) -> impl Iterator<Item = &String> {
        self.parts.values().chain(&self.shards)
    }
}

/// Several chunks' markers in one object (format 2), written by `clipline commit`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkerBatch {
    /// Format of this file (2).
    pub format: u32,
    /// The chunks it commits.
    pub chunks: Vec<Marker>,
}

/// Format of a [`MarkerBatch`] file.
pub const BATCH_FORMAT: u32 = 2;

/// A marker file: one chunk or a batch.
#[derive(Deserialize)]
#[serde(untagged)]
enum MarkerFile {
    Batch(MarkerBatch),
    One(Marker),
}

/// One source of a committed chunk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MarkedSource {
    /// The source URI.
    pub uri: String,
    /// Its content id (absent when unreadable).
    pub video_id: Option<String>,
    /// Its status.
    pub status: VideoStatus,
}

/// Every commit marker of an output.
///
/// # Errors
/// On storage failures, or when a marker is not readable (naming it).
pub async fn markers(store: &Store) -> Result<Vec<Marker>> {
    markers_in(store, COMMITS).await
}

/// Every chunk marker in the `.json` files under `dir` (single markers and batches alike).
///
/// # Errors
/// As [`markers`].
pub async fn markers_in(store: &Store, dir: &str) -> Result<Vec<Marker>> {
    let mut markers = Vec::new();
    for entry in store.list(dir).await? {
        if !entry.key.ends_with(".json") {
            continue;
        }
        let bytes = store.get(&entry.key).await?;
        let file = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Schema { table: store.uri_of(&entry.key), message: format!("unreadable commit marker: {e}") })?;
        match file {
            MarkerFile::One(marker) => markers.push(marker),
            MarkerFile::Batch(batch) if batch.format == BATCH_FORMAT => markers.extend(batch.chunks),
            MarkerFile::Batch(batch) => {
                return Err(Error::Schema { table: store.uri_of(&entry.key), message: format!("commit marker of unknown format {}", batch.format) });
            }
        }
    }
    Ok(markers)
}

/// The keys of table `table`'s committed parts, sorted.
///
/// # Errors
/// On storage failures or unreadable markers.
pub async fn committed_parts(store: &Store, table: &str) -> Result<Vec<String>> {
    let parts: HashSet<String> = markers(store).await?.into_iter().filter_map(|mut m| m.parts.remove(table)).collect();
    let mut parts: Vec<String> = parts.into_iter().collect();
    parts.sort();
    Ok(parts)
}

/// The committed rows of table `T`.
///
/// # Errors
/// On storage failures or unreadable markers or parts.
pub async fn read_committed<T: Table>(store: &Store) -> Result<Vec<T>> {
    let mut rows = Vec::new();
    for part in committed_parts(store, T::NAME).await? {
        rows.extend(decode::<T>(store.get(&part).await?, &store.uri_of(&part))?);
    }
    Ok(rows)
}
