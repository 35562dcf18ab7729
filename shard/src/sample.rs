//! Decoding one sample: checksum, decompression into an aligned buffer, record header, views.

use half::bf16;

use crate::format::checksum;
use crate::record::{join_planes, parse_header, DType, Layout, RecordHeader, TensorInfo};
use crate::ShardError;

/// The largest decompressed record a sample may have (a 720p, 129-frame video latent with a
/// 512-token text embedding is about 20 MB): the manifest's or index's claimed length is checked
/// against it before the buffer is allocated, so a hostile shard or manifest cannot exhaust
/// memory.
pub const MAX_RECORD_LEN: usize = 1 << 30;

/// A decoded, verified sample. Its tensors are views into one 8-byte-aligned buffer.
#[derive(Debug, Clone)]
pub struct Sample {
    header: RecordHeader,
    buffer: Vec<u64>,
    len: usize,
}

/// One tensor of a sample.
#[derive(Debug, Clone, Copy)]
pub struct TensorView<'a> {
    /// Name, type, shape.
    pub info: &'a TensorInfo,
    /// Its bytes (little-endian elements).
    pub bytes: &'a [u8],
}

impl<'a> TensorView<'a> {
    /// The values, when the tensor is bf16 (a view, no copy).
    pub fn as_bf16(&self) -> Option<&'a [bf16]> {
        (self.info.dtype == DType::Bf16).then(|| bytemuck::cast_slice(self.bytes))
    }

    /// Its dimensions.
    pub fn shape(&self) -> &'a [usize] {
        &self.info.shape
    }
}

impl Sample {
    /// The record header: ids, bucket, attributes, tensor list.
    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The sample id.
    pub fn id(&self) -> &str {
        &self.header.sample_id
    }

    /// The record's bytes.
    pub fn bytes(&self) -> &[u8] {
        &bytemuck::cast_slice::<u64, u8>(&self.buffer)[..self.len]
    }

    /// A tensor by name.
    pub fn tensor(&self, name: &str) -> Option<TensorView<'_>> {
        let info = self.header.tensors.iter().find(|t| t.name == name)?;
        Some(TensorView { info, bytes: &self.bytes()[info.offset..info.offset + info.length] })
    }
}

/// Decodes samples, reusing its zstd context and scratch space.
pub struct SampleDecoder {
    decompressor: zstd::bulk::Decompressor<'static>,
    scratch: Vec<u8>,
}

/// What the index or manifest says a sample's frame is.
#[derive(Debug, Clone, Copy)]
pub struct Expected<'a> {
    /// Shard name, for errors.
    pub shard: &'a str,
    /// The sample's id when known (checked against the record), else its position.
    pub sample: &'a str,
    /// Whether `sample` is an id to check.
    pub check_id: bool,
    /// Checksum of the frame.
    pub checksum: u64,
    /// Decompressed length.
    pub raw_length: usize,
}

impl SampleDecoder {
    /// A decoder.
    ///
    /// # Errors
    /// When zstd cannot allocate its context.
    pub fn new() -> std::io::Result<Self> {
        Ok(Self { decompressor: zstd::bulk::Decompressor::new()?, scratch: Vec::new() })
    }

    /// Verify and decode one sample's zstd frame. Nothing is returned unless the checksum, the
    /// decompressed length, the record header and (when known) the id all match.
    ///
    /// # Errors
    /// [`ShardError::BadSample`] naming the shard and sample.
    pub fn decode(&mut self, frame: &[u8], expected: Expected<'_>) -> Result<Sample, ShardError> {
        let bad = |message: String| ShardError::BadSample { shard: expected.shard.into(), sample: expected.sample.into(), message };
        let found = checksum(&[frame]);
        if found != expected.checksum {
            return Err(bad(format!("checksum {found:016x} does not match the recorded {:016x}", expected.checksum)));
        }
        if expected.raw_length > MAX_RECORD_LEN {
            return Err(bad(format!("records {} decompressed bytes, more than the {MAX_RECORD_LEN} a sample may have; refusing to allocate them", expected.raw_length)));
        }
        let mut buffer = vec![0u64; expected.raw_length.div_ceil(8)];
        let bytes = &mut bytemuck::cast_slice_mut::<u64, u8>(&mut buffer)[..expected.raw_length];
        let n = self.decompressor.decompress_to_buffer(frame, bytes).map_err(|e| bad(format!("does not decompress: {e}")))?;
        if n != expected.raw_length {
            return Err(bad(format!("decompresses to {n} bytes, {} recorded", expected.raw_length)));
        }
        let header = parse_header(bytes).map_err(bad)?;
        if expected.check_id && header.sample_id != expected.sample {
            return Err(bad(format!("holds sample {} instead", header.sample_id)));
        }
        for t in header.tensors.iter().filter(|t| t.layout == Layout::Planes) {
            join_planes(&mut bytes[t.offset..t.offset + t.length], &mut self.scratch);
        }
        Ok(Sample { header, buffer, len: expected.raw_length })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_claiming_more_than_the_limit_is_refused_before_allocating() {
        let frame = zstd::bulk::compress(b"tiny", 3).unwrap();
        let expected = Expected { shard: "s.shard", sample: "a", check_id: false, checksum: checksum(&[&frame]), raw_length: MAX_RECORD_LEN + 1 };
        let err = SampleDecoder::new().unwrap().decode(&frame, expected).unwrap_err().to_string();
        assert!(err.contains("s.shard") && err.contains("refusing to allocate"), "{err}");
    }
}
