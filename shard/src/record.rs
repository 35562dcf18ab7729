//! A sample record: what one zstd frame of a shard decompresses to.
//!
//! ```text
//! 0..4    magic "CLSR"
//! 4..8    u32 length H of the JSON header
//! 8..8+H  JSON header: sample_id, clip_id, bucket, attributes, tensors
//!         (name, dtype, shape, offset, length, layout)
//! ...     zero padding; each tensor's bytes start at a multiple of 64 from the record start
//! ```
//!
//! Tensors are stored `plain` (little-endian elements, so a bf16 tensor is a zero-copy view of
//! the decompressed buffer) or `planes` (for 2-byte elements: all low bytes, then all high
//! bytes). The planes layout costs one pass on read and pays in size: a bf16's high byte
//! (sign and most of the exponent) takes few values and compresses well once it is not
//! interleaved with the near-random mantissa byte.

use std::collections::BTreeMap;

use half::bf16;
use serde::{Deserialize, Serialize};

use crate::ShardError;

/// First bytes of a record.
pub const RECORD_MAGIC: &[u8; 4] = b"CLSR";
/// Alignment of tensor payloads within a record.
pub const ALIGN: usize = 64;

/// Element types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    /// bfloat16.
    Bf16,
    /// IEEE float32.
    F32,
    /// Bytes.
    U8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bf16 => 2,
            DType::F32 => 4,
            DType::U8 => 1,
        }
    }
}

/// How a tensor's bytes are laid out in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Elements as they are in memory (little-endian).
    Plain,
    /// Byte planes: every element's byte 0, then every element's byte 1, and so on.
    Planes,
}

/// A tensor's entry in the record header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorInfo {
    /// Its name (`latent`, `text`).
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Offset of its bytes from the record start (a multiple of 64).
    pub offset: usize,
    /// Length of its bytes.
    pub length: usize,
    /// Byte layout.
    pub layout: Layout,
}

/// The JSON header of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordHeader {
    /// The sample's id.
    pub sample_id: String,
    /// The clip it was made from.
    pub clip_id: String,
    /// Its bucket.
    pub bucket: String,
    /// Free-form attributes (caption, fps, frame stride).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Its tensors.
    pub tensors: Vec<TensorInfo>,
}

/// A tensor's values as handed to the writer.
#[derive(Debug, Clone, Copy)]
pub enum TensorData<'a> {
    /// bf16 values.
    Bf16(&'a [bf16]),
    /// f32 values, converted to bf16 (rounded to nearest) as they are written into the record,
    /// so no bf16 copy of the whole tensor is made first.
    F32AsBf16(&'a [f32]),
    /// Bytes.
    U8(&'a [u8]),
}

impl TensorData<'_> {
    fn len(&self) -> usize {
        match self {
            TensorData::Bf16(v) => v.len(),
            TensorData::F32AsBf16(v) => v.len(),
            TensorData::U8(v) => v.len(),
        }
    }

    fn dtype(&self) -> DType {
        match self {
            TensorData::Bf16(_) | TensorData::F32AsBf16(_) => DType::Bf16,
            TensorData::U8(_) => DType::U8,
        }
    }

    /// Write the stored bytes into `out` (exactly `len * size` bytes) in `layout`.
    fn write(&self, out: &mut [u8], layout: Layout) {
        let element = |i: usize| -> [u8; 2] {
            match self {
                TensorData::Bf16(v) => v[i].to_le_bytes(),
                TensorData::F32AsBf16(v) => bf16::from_f32(v[i]).to_le_bytes(),
                TensorData::U8(_) => unreachable!("bytes have no planes"),
            }
        };
        match (self, layout) {
            (TensorData::U8(v), _) => out.copy_from_slice(v),
            (TensorData::Bf16(v), Layout::Plain) => out.copy_from_slice(bytemuck::cast_slice(v)),
            (_, Layout::Plain) => {
                for (i, pair) in out.chunks_exact_mut(2).enumerate() {
                    pair.copy_from_slice(&element(i));
                }
            }
            (_, Layout::Planes) => {
                let (low, high) = out.split_at_mut(self.len());
                for (i, (l, h)) in low.iter_mut().zip(high).enumerate() {
                    [*l, *h] = element(i);
                }
            }
        }
    }
}

/// A tensor handed to the writer.
#[derive(Debug, Clone)]
pub struct TensorRef<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its dimensions (their product is the number of values).
    pub shape: Vec<usize>,
    /// Its values.
    pub data: TensorData<'a>,
}

fn align(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// Lay out a record: header, padding, tensors at aligned offsets.
///
/// # Errors
/// When a tensor's values do not match its shape.
pub fn encode_record(
    sample_id: &str,
    clip_id: &str,
    bucket: &str,
    attributes: BTreeMap<String, String>,
    tensors: &[TensorRef<'_>],
    planes: bool,
    out: &mut Vec<u8>,
) -> Result<(), ShardError> {
    let mut infos = Vec::with_capacity(tensors.len());
    for t in tensors {
        let count: usize = t.shape.iter().product();
        if count != t.data.len() {
            return Err(ShardError::Sample { sample: sample_id.into(), message: format!("tensor {} has {} values for shape {:?}", t.name, t.data.len(), t.shape) });
        }
        let dtype = t.data.dtype();
        let layout = if planes && dtype.size() == 2 { Layout::Planes } else { Layout::Plain };
        infos.push(TensorInfo { name: t.name.to_string(), dtype, shape: t.shape.clone(), offset: 0, length: count * dtype.size(), layout });
    }
    // The header's length depends on the offsets written in it: lay out with room to spare.
    let mut header = RecordHeader { sample_id: sample_id.into(), clip_id: clip_id.into(), bucket: bucket.into(), attributes, tensors: infos };
    let mut json = serde_json::to_vec(&header).expect("header serialises");
    loop {
        let mut offset = align(8 + json.len());
        for info in &mut header.tensors {
            info.offset = offset;
            offset = align(offset + info.length);
        }
        let next = serde_json::to_vec(&header).expect("header serialises");
        let settled = next.len() <= json.len() && align(8 + next.len()) == align(8 + json.len());
        json = next;
        if settled {
            break;
        }
    }
    let end = header.tensors.last().map_or(8 + json.len(), |t| t.offset + t.length);
    out.clear();
    out.resize(end, 0);
    out[..4].copy_from_slice(RECORD_MAGIC);
    out[4..8].copy_from_slice(&(json.len() as u32).to_le_bytes());
    out[8..8 + json.len()].copy_from_slice(&json);
    for (info, t) in header.tensors.iter().zip(tensors) {
        t.data.write(&mut out[info.offset..info.offset + info.length], info.layout);
    }
    Ok(())
}

/// Parse a decompressed record's header and check that its tensors lie inside it.
///
/// # Errors
/// When the magic, the JSON or a tensor's extent is wrong.
pub fn parse_header(bytes: &[u8]) -> Result<RecordHeader, String> {
    if bytes.len() < 8 || &bytes[..4] != RECORD_MAGIC {
        return Err("not a sample record (bad magic)".into());
    }
    let len = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes")) as usize;
    let json = bytes.get(8..8 + len).ok_or("record header runs past the record")?;
    let header: RecordHeader = serde_json::from_slice(json).map_err(|e| format!("record header is not valid JSON: {e}"))?;
    for t in &header.tensors {
        let count: usize = t.shape.iter().product();
        if t.offset % ALIGN != 0 || t.length != count * t.dtype.size() || t.offset + t.length > bytes.len() || t.offset < 8 + len {
            return Err(format!("tensor {} has offset {} and length {} that do not fit its shape {:?} or the record", t.name, t.offset, t.length, t.shape));
        }
    }
    Ok(header)
}

/// Undo the planes layout of a 2-byte tensor in place.
pub fn join_planes(bytes: &mut [u8], scratch: &mut Vec<u8>) {
    scratch.clear();
    scratch.extend_from_slice(bytes);
    let (low, high) = scratch.split_at(bytes.len() / 2);
    for ((pair, l), h) in bytes.chunks_exact_mut(2).zip(low).zip(high) {
        pair[0] = *l;
        pair[1] = *h;
    }
}
