//! The byte layout of a shard file: header, zstd frames, compressed index, footer.
//!
//! `docs/SHARD_FORMAT.md` is the specification a reader in another language is written from;
//! this module is its Rust form, and the two must agree. All integers are little-endian.
//!
//! ```text
//! header  16 B   magic "CLSHARD\0", u32 version (1), u32 reserved (0)
//! frames         one zstd frame per sample, back to back from byte 16
//! index          one zstd frame: per sample u32 length, u32 raw length, u64 checksum (16 B)
//! footer  32 B   u64 index offset, u32 index length, u32 samples,
//!                u64 checksum of header ‖ index ‖ footer[0..16], magic "CLSHEND\0"
//! ```
//!
//! Every byte is covered by a checksum: a frame by its index entry, the header, index and
//! footer fields by the footer's checksum, and the whole file by its name (the BLAKE3 hash of
//! its bytes).

use crate::ShardError;

/// First bytes of a shard file.
pub const MAGIC: &[u8; 8] = b"CLSHARD\0";
/// Last bytes of a shard file.
pub const END_MAGIC: &[u8; 8] = b"CLSHEND\0";
/// Format version written.
pub const VERSION: u32 = 1;
/// Header length.
pub const HEADER_LEN: usize = 16;
/// Footer length.
pub const FOOTER_LEN: usize = 32;
/// Bytes per index entry before compression.
pub const ENTRY_LEN: usize = 16;
/// File name extension of shards.
pub const EXTENSION: &str = "shard";
/// The smallest zstd frame (magic, frame header, one block header): a footer claiming more
/// samples than frames of this size fit between header and index is refused before its index is
/// decompressed, so a hostile footer cannot make the reader allocate an unbounded index.
pub const MIN_FRAME_LEN: u64 = 9;

/// The header bytes of a version-1 shard.
pub fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h
}

/// The checksum used everywhere in the format: the first 8 bytes of BLAKE3, read as a
/// little-endian u64.
pub fn checksum(parts: &[&[u8]]) -> u64 {
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        hasher.update(part);
    }
    let hash = hasher.finalize();
    u64::from_le_bytes(hash.as_bytes()[..8].try_into().expect("8 bytes"))
}

/// A checksum as the manifests print it.
pub fn checksum_hex(checksum: u64) -> String {
    format!("{checksum:016x}")
}

/// One sample's index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Length of its zstd frame.
    pub length: u32,
    /// Length of the decompressed record.
    pub raw_length: u32,
    /// Checksum of the zstd frame.
    pub checksum: u64,
}

impl IndexEntry {
    fn to_bytes(self) -> [u8; ENTRY_LEN] {
        let mut b = [0u8; ENTRY_LEN];
        b[..4].copy_from_slice(&self.length.to_le_bytes());
        b[4..8].copy_from_slice(&self.raw_length.to_le_bytes());
        b[8..].copy_from_slice(&self.checksum.to_le_bytes());
        b
    }

    fn from_bytes(b: &[u8]) -> Self {
        Self {
            length: u32::from_le_bytes(b[..4].try_into().expect("4 bytes")),
            raw_length: u32::from_le_bytes(b[4..8].try_into().expect("4 bytes")),
            checksum: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
        }
    }
}

/// The zstd-compressed index of `entries`.
///
/// # Errors
/// When zstd fails.
pub fn encode_index(entries: &[IndexEntry]) -> std::io::Result<Vec<u8>> {
    let raw: Vec<u8> = entries.iter().flat_map(|e| e.to_bytes()).collect();
    zstd::bulk::compress(&raw, 19)
}

/// The entries of a compressed index of `samples` samples.
///
/// # Errors
/// When it does not decompress to exactly `samples` entries.
pub fn decode_index(shard: &str, bytes: &[u8], samples: u32) -> Result<Vec<IndexEntry>, ShardError> {
    let want = samples as usize * ENTRY_LEN;
    let raw = zstd::bulk::decompress(bytes, want).map_err(|e| ShardError::corrupt(shard, format!("index does not decompress: {e}")))?;
    if raw.len() != want {
        return Err(ShardError::corrupt(shard, format!("index holds {} bytes, {want} expected for {samples} samples", raw.len())));
    }
    Ok(raw.chunks_exact(ENTRY_LEN).map(IndexEntry::from_bytes).collect())
}

/// The footer's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Offset of the compressed index.
    pub index_offset: u64,
    /// Its length.
    pub index_length: u32,
    /// Samples in the shard.
    pub samples: u32,
    /// Checksum of header, index and the footer's first 16 bytes.
    pub checksum: u64,
}

impl Footer {
    /// The footer of a shard with this header and index at `index_offset`.
    pub fn new(header: &[u8], index: &[u8], index_offset: u64, samples: u32) -> Self {
        let mut footer = Self { index_offset, index_length: index.len() as u32, samples, checksum: 0 };
        footer.checksum = checksum(&[header, index, &footer.fields()]);
        footer
    }

    fn fields(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.index_offset.to_le_bytes());
        b[8..12].copy_from_slice(&self.index_length.to_le_bytes());
        b[12..].copy_from_slice(&self.samples.to_le_bytes());
        b
    }

    /// The 32 bytes written at the end of the shard.
    pub fn to_bytes(self) -> [u8; FOOTER_LEN] {
        let mut b = [0u8; FOOTER_LEN];
        b[..16].copy_from_slice(&self.fields());
        b[16..24].copy_from_slice(&self.checksum.to_le_bytes());
        b[24..].copy_from_slice(END_MAGIC);
        b
    }

    /// Parse the last 32 bytes of a shard of `file_len` bytes.
    ///
    /// # Errors
    /// When the magic is wrong or the offsets do not fit the file.
    pub fn parse(shard: &str, b: &[u8], file_len: u64) -> Result<Self, ShardError> {
        if b.len() != FOOTER_LEN || &b[24..] != END_MAGIC {
            return Err(ShardError::corrupt(shard, "no shard footer at the end (truncated, or not a clipline shard)"));
        }
        let footer = Self {
            index_offset: u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            index_length: u32::from_le_bytes(b[8..12].try_into().expect("4 bytes")),
            samples: u32::from_le_bytes(b[12..16].try_into().expect("4 bytes")),
            checksum: u64::from_le_bytes(b[16..24].try_into().expect("8 bytes")),
        };
        let index_end = footer.index_offset.checked_add(u64::from(footer.index_length));
        if footer.index_offset < HEADER_LEN as u64 || index_end != Some(file_len - FOOTER_LEN as u64) {
            return Err(ShardError::corrupt(shard, format!("footer places the index at {}+{} in a file of {file_len} bytes", footer.index_offset, footer.index_length)));
        }
        let frames = footer.index_offset - HEADER_LEN as u64;
        if u64::from(footer.samples) * MIN_FRAME_LEN > frames {
            return Err(ShardError::corrupt(shard, format!("footer claims {} samples, but only {frames} bytes of frames precede the index", footer.samples)));
        }
        Ok(footer)
    }

    /// Check the header and index against the footer's checksum.
    ///
    /// # Errors
    /// When the header is not a version-1 header or the checksum differs.
    pub fn check(&self, shard: &str, header: &[u8], index: &[u8]) -> Result<(), ShardError> {
        if header.len() != HEADER_LEN || &header[..8] != MAGIC {
            return Err(ShardError::corrupt(shard, "no shard header at the start"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if checksum(&[header, index, &self.fields()]) != self.checksum {
            return Err(ShardError::corrupt(shard, "header, index or footer checksum mismatch"));
        }
        if version != VERSION {
            return Err(ShardError::corrupt(shard, format!("format version {version}; this clipline reads version {VERSION}")));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_entries_are_sixteen_bytes_before_compression() {
        let entries: Vec<IndexEntry> = (0..100).map(|i| IndexEntry { length: 1000 + i, raw_length: 4000 + i, checksum: u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15) }).collect();
        let index = encode_index(&entries).unwrap();
        assert_eq!(decode_index("s", &index, 100).unwrap(), entries);
        assert!(decode_index("s", &index, 99).is_err());
    }

    #[test]
    fn footer_round_trips_and_guards_header_and_index() {
        let h = header();
        let footer = Footer::new(&h, b"index", 116, 3);
        let parsed = Footer::parse("s", &footer.to_bytes(), 116 + 5 + 32).unwrap();
        assert_eq!(parsed, footer);
        parsed.check("s", &h, b"index").unwrap();
        assert!(parsed.check("s", &h, b"indey").is_err());
        let mut bad = h;
        bad[12] ^= 1;
        assert!(parsed.check("s", &bad, b"index").is_err());
    }

    #[test]
    fn a_footer_claiming_more_samples_than_fit_is_refused_before_the_index_is_read() {
        let h = header();
        // 100 bytes of frames hold at most 11 minimal zstd frames.
        let ok = Footer::new(&h, b"index", 116, 11);
        assert!(Footer::parse("s", &ok.to_bytes(), 116 + 5 + 32).is_ok());
        let hostile = Footer::new(&h, b"index", 116, u32::MAX);
        let err = Footer::parse("s", &hostile.to_bytes(), 116 + 5 + 32).unwrap_err().to_string();
        assert!(err.contains("claims 4294967295 samples") && err.contains("100 bytes of frames"), "{err}");
    }
}
