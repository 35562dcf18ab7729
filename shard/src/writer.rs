//! Writing: sample records compressed into zstd frames, frames gathered into shard files of a
//! bounded size, named by their content when they are closed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use tempfile::{NamedTempFile, TempPath};

use crate::format::{self, checksum, Footer, IndexEntry, FOOTER_LEN, HEADER_LEN};
use crate::record::{encode_record, TensorRef};
use crate::ShardError;

/// A sample compressed and ready to be placed in a shard.
#[derive(Debug, Clone)]
pub struct EncodedSample {
    /// Its id.
    pub sample_id: String,
    /// Its zstd frame.
    pub frame: Vec<u8>,
    /// Length of the record before compression.
    pub raw_length: u32,
    /// Checksum of the frame.
    pub checksum: u64,
}

/// Compresses sample records, reusing its zstd context and record buffer.
pub struct SampleEncoder {
    compressor: zstd::bulk::Compressor<'static>,
    planes: bool,
    record: Vec<u8>,
}

impl SampleEncoder {
    /// An encoder at zstd `level`, storing 2-byte tensors as byte planes when `planes`.
    ///
    /// # Errors
    /// When zstd refuses the level.
    pub fn new(level: i32, planes: bool) -> std::io::Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(level)?;
        compressor.include_contentsize(true)?;
        compressor.include_checksum(false)?;
        Ok(Self { compressor, planes, record: Vec::new() })
    }

    /// Lay out and compress one sample.
    ///
    /// # Errors
    /// When a tensor does not match its shape, or zstd fails.
    pub fn encode(&mut self, sample_id: &str, clip_id: &str, bucket: &str, attributes: BTreeMap<String, String>, tensors: &[TensorRef<'_>]) -> Result<EncodedSample, ShardError> {
        encode_record(sample_id, clip_id, bucket, attributes, tensors, self.planes, &mut self.record)?;
        let raw_length = u32::try_from(self.record.len())
            .map_err(|_| ShardError::Sample { sample: sample_id.into(), message: format!("record of {} bytes is over the 4 GiB limit", self.record.len()) })?;
        let frame = self.compressor.compress(&self.record).map_err(|e| ShardError::Sample { sample: sample_id.into(), message: format!("zstd: {e}") })?;
        Ok(EncodedSample { sample_id: sample_id.into(), checksum: checksum(&[&frame]), frame, raw_length })
    }
}

/// Where a sample landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// The sample.
    pub sample_id: String,
    /// Offset of its frame in the shard.
    pub offset: u64,
    /// Length of its frame.
    pub length: u32,
    /// Length of its record.
    pub raw_length: u32,
    /// Checksum of its frame.
    pub checksum: u64,
}

/// A closed shard: a local file with its content-derived name, ready to upload.
#[derive(Debug)]
pub struct FinishedShard {
    /// File name (`<hash>.shard`).
    pub name: String,
    /// The local file (deleted when dropped).
    pub file: TempPath,
    /// Its samples, in order.
    pub samples: Vec<Placed>,
    /// File size.
    pub bytes: u64,
    /// Sum of the records' decompressed sizes.
    pub raw_bytes: u64,
    /// Size of the compressed index.
    pub index_bytes: u64,
}

struct OpenShard {
    file: std::io::BufWriter<NamedTempFile>,
    hasher: blake3::Hasher,
    samples: Vec<Placed>,
    written: u64,
}

impl OpenShard {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.file.write_all(bytes)
    }
}

/// Gathers encoded samples into shards of at most `limit` bytes, in a local directory.
pub struct ShardWriter {
    dir: PathBuf,
    limit: u64,
    open: Option<OpenShard>,
}

/// Room kept for the index and footer when deciding whether a sample still fits.
fn tail_room(samples: usize) -> u64 {
    (samples * format::ENTRY_LEN + FOOTER_LEN + 64) as u64
}

impl ShardWriter {
    /// A writer of shards of at most `limit` bytes, staged in `dir`.
    pub fn new(dir: &Path, limit: u64) -> Self {
        Self { dir: dir.to_path_buf(), limit, open: None }
    }

    /// Add a sample; returns the shard it closed to make room, if any.
    ///
    /// # Errors
    /// When the sample alone exceeds the limit, or the local file cannot be written.
    pub fn push(&mut self, sample: &EncodedSample) -> Result<Option<FinishedShard>, ShardError> {
        let length = sample.frame.len() as u64;
        if HEADER_LEN as u64 + length + tail_room(1) > self.limit {
            return Err(ShardError::TooLarge { sample: sample.sample_id.clone(), bytes: length, limit: self.limit });
        }
        let closed = match &self.open {
            Some(open) if open.written + length + tail_room(open.samples.len() + 1) > self.limit => self.finish()?,
            _ => None,
        };
        let dir = self.dir.clone();
        let open = match &mut self.open {
            Some(open) => open,
            none => none.insert(Self::start(&dir)?),
        };
        let offset = open.written;
        open.write(&sample.frame).map_err(|e| ShardError::io(&dir, e))?;
        open.samples.push(Placed { sample_id: sample.sample_id.clone(), offset, length: length as u32, raw_length: sample.raw_length, checksum: sample.checksum });
        Ok(closed)
    }

    fn start(dir: &Path) -> Result<OpenShard, ShardError> {
        std::fs::create_dir_all(dir).map_err(|e| ShardError::io(dir, e))?;
        let file = tempfile::Builder::new().prefix(".shard-").tempfile_in(dir).map_err(|e| ShardError::io(dir, e))?;
        let mut open = OpenShard { file: std::io::BufWriter::with_capacity(1 << 20, file), hasher: blake3::Hasher::new(), samples: Vec::new(), written: 0 };
        open.write(&format::header()).map_err(|e| ShardError::io(dir, e))?;
        Ok(open)
    }

    /// Close the open shard (if any): write its index and footer and name it.
    ///
    /// # Errors
    /// When the local file cannot be written.
    pub fn finish(&mut self) -> Result<Option<FinishedShard>, ShardError> {
        let Some(mut open) = self.open.take() else { return Ok(None) };
        let entries: Vec<IndexEntry> = open.samples.iter().map(|p| IndexEntry { length: p.length, raw_length: p.raw_length, checksum: p.checksum }).collect();
        let index = format::encode_index(&entries).map_err(|e| ShardError::io(&self.dir, e))?;
        let footer = Footer::new(&format::header(), &index, open.written, entries.len() as u32);
        open.write(&index).map_err(|e| ShardError::io(&self.dir, e))?;
        open.write(&footer.to_bytes()).map_err(|e| ShardError::io(&self.dir, e))?;
        let file = open.file.into_inner().map_err(|e| ShardError::io(&self.dir, e.into_error()))?;
        file.as_file().sync_data().map_err(|e| ShardError::io(file.path(), e))?;
        // Temporary files are private; a shard is for every reader of the output.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.as_file().set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(|e| ShardError::io(file.path(), e))?;
        }
        let name = shard_name(&open.hasher);
        let raw_bytes = open.samples.iter().map(|p| u64::from(p.raw_length)).sum();
        Ok(Some(FinishedShard { name, file: file.into_temp_path(), samples: open.samples, bytes: open.written, raw_bytes, index_bytes: index.len() as u64 }))
    }
}

/// The name of a shard whose bytes `hasher` has seen.
pub fn shard_name(hasher: &blake3::Hasher) -> String {
    format!("{}.{}", &hasher.finalize().to_hex()[..32], format::EXTENSION)
}
