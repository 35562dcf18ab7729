//! A dataset of shards, opened from its manifests: read one sample by id with one ranged read.

use std::collections::HashMap;

use clipline_core::manifest::commits::read_committed;
use clipline_core::manifest::{SampleRow, SampleStatus, ShardRow};
use bytes::Bytes;
use clipline_core::storage::Store;

use crate::sample::{Expected, Sample, SampleDecoder};
use crate::{shard_key, ShardError};

/// Where a sample's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Shard file name.
    pub shard: String,
    /// Offset of the frame.
    pub offset: u64,
    /// Length of the frame.
    pub length: u64,
    /// Length of the record.
    pub raw_length: usize,
    /// Checksum of the frame.
    pub checksum: u64,
}

/// The committed samples of an output, by id.
pub struct Dataset {
    store: Store,
    rows: Vec<SampleRow>,
    by_id: HashMap<String, Location>,
    shard_bytes: HashMap<String, u64>,
}

impl Dataset {
    /// Read the committed `samples` rows of the output at `store` (the `ok` ones are readable).
    ///
    /// # Errors
    /// On storage failures, unreadable manifests, or a row whose location is malformed.
    pub async fn open(store: Store) -> Result<Self, ShardError> {
        let rows = read_committed::<SampleRow>(&store).await?;
        let mut by_id = HashMap::new();
        for row in rows.iter().filter(|r| r.status == SampleStatus::Ok) {
            by_id.insert(row.sample_id.clone(), location(row).map_err(|message| ShardError::Sample { sample: row.sample_id.clone(), message })?);
        }
        let shard_bytes = read_committed::<ShardRow>(&store).await?.into_iter().map(|r| (r.shard, r.bytes.max(0) as u64)).collect();
        Ok(Self { store, rows, by_id, shard_bytes })
    }

    /// Every committed row, whatever its status.
    pub fn rows(&self) -> &[SampleRow] {
        &self.rows
    }

    /// The ids of the readable samples.
    pub fn sample_ids(&self) -> impl Iterator<Item = &str> {
        self.by_id.keys().map(String::as_str)
    }

    /// Where a sample is.
    pub fn location(&self, sample_id: &str) -> Option<&Location> {
        self.by_id.get(sample_id)
    }

    /// Read, verify and decode one sample with one ranged read.
    ///
    /// # Errors
    /// When it is not in the dataset, cannot be read, or fails verification.
    pub async fn read(&self, sample_id: &str, decoder: &mut SampleDecoder) -> Result<Sample, ShardError> {
        let loc = self.location(sample_id).ok_or_else(|| ShardError::NotFound { sample: sample_id.into(), dataset: self.store.uri().into() })?;
        let frame = self.frame(sample_id, loc).await?;
        decoder.decode(&frame, loc.expected(sample_id))
    }

    /// The compressed frame of a sample, with one ranged read, checked for length.
    ///
    /// # Errors
    /// When the shard cannot be read or ends before the frame does.
    pub async fn frame(&self, sample_id: &str, loc: &Location) -> Result<Bytes, ShardError> {
        self.range(&loc.shard, loc.offset..loc.offset + loc.length).await.map_err(|e| match e {
            ShardError::Corrupt { shard, message } => ShardError::BadSample { shard, sample: sample_id.into(), message },
            other => other,
        })
    }

    /// Bytes `range` of shard `shard`, with one ranged read, checked for length.
    ///
    /// # Errors
    /// When the shard cannot be read or ends before the range does.
    pub async fn range(&self, shard: &str, range: std::ops::Range<u64>) -> Result<Bytes, ShardError> {
        let want = range.end - range.start;
        let bytes = self.store.get_range(&shard_key(shard), range).await?;
        if bytes.len() as u64 != want {
            return Err(ShardError::corrupt(shard, format!("read {} bytes of {want}: the shard is truncated", bytes.len())));
        }
        Ok(bytes)
    }

    /// The size of a committed shard, from the `shards` table.
    pub fn shard_bytes(&self, shard: &str) -> Option<u64> {
        self.shard_bytes.get(shard).copied()
    }

    /// The store the dataset lives in.
    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Location {
    /// What decoding sample `sample_id` from this location must find.
    pub fn expected<'a>(&'a self, sample_id: &'a str) -> Expected<'a> {
        Expected { shard: &self.shard, sample: sample_id, check_id: true, checksum: self.checksum, raw_length: self.raw_length }
    }
}

/// A row's location, checked for presence and range.
pub fn location(row: &SampleRow) -> Result<Location, String> {
    let (Some(shard), Some(offset), Some(length), Some(raw_length), Some(checksum)) = (&row.shard, row.offset, row.length, row.raw_length, &row.checksum) else {
        return Err("an ok sample without shard, offset, length, raw_length or checksum".into());
    };
    let checksum = u64::from_str_radix(checksum, 16).map_err(|_| format!("checksum {checksum:?} is not 16 hex digits"))?;
    if offset < 0 || length <= 0 || raw_length <= 0 {
        return Err(format!("offset {offset}, length {length}, raw length {raw_length} are not a valid location"));
    }
    Ok(Location { shard: shard.clone(), offset: offset as u64, length: length as u64, raw_length: raw_length as usize, checksum })
}
