//! Deterministic names.
//!
//! Every output key is derived from content and settings, never from time or order, so that a run
//! killed at any moment and started again writes the same objects under the same keys: that is
//! what makes resuming exact and duplicates impossible.

use std::io::Read;
use std::path::Path;

/// Hex length of the ids clipline derives from hashes (128 bits).
pub const ID_HEX_LEN: usize = 32;

/// Hex length of fingerprints (64 bits): settings hashes, prompt hashes and run ids, which tell
/// apart few things and are read by people in manifests and logs.
pub const FINGERPRINT_HEX_LEN: usize = 16;

/// A content hash, as lowercase hex: the first 128 bits of BLAKE3.
pub fn hash_bytes(bytes: &[u8]) -> String {
    truncate(blake3::hash(bytes))
}

/// Hash the concatenation of several parts, each prefixed by its length so that
/// `["ab", "c"]` and `["a", "bc"]` differ.
pub fn hash_parts<I, B>(parts: I) -> String
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut hasher = blake3::Hasher::new();
    for part in parts {
        let part = part.as_ref();
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    truncate(hasher.finalize())
}

/// [`hash_parts`] cut to a fingerprint of [`FINGERPRINT_HEX_LEN`] hex digits: the one place a
/// hash id is shortened.
pub fn fingerprint_parts<I, B>(parts: I) -> String
where
    I: IntoIterator<Item = B>,
    B: AsRef<[u8]>,
{
    let mut hex = hash_parts(parts);
    hex.truncate(FINGERPRINT_HEX_LEN);
    hex
}

/// Streaming content hasher for data that arrives in pieces (downloads, file reads).
#[derive(Default)]
pub struct ContentHasher {
    inner: blake3::Hasher,
    len: u64,
}

impl ContentHasher {
    /// Feed the next piece.
    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The content id of everything fed.
    pub fn finish(&self) -> String {
        truncate(self.inner.finalize())
    }
}

/// Hash a local file's content; returns `(id, size in bytes)`.
///
/// # Errors
/// When the file cannot be read.
pub fn hash_file(path: &Path) -> std::io::Result<(String, u64)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = ContentHasher::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok((hasher.finish(), hasher.len()))
}

/// The id of a clip: its video and its frame range, readable at a glance.
pub fn clip_id(video_id: &str, start_frame: u64, end_frame: u64) -> String {
    format!("{video_id}-{start_frame:07}-{end_frame:07}")
}

fn truncate(hash: blake3::Hash) -> String {
    let mut hex = hash.to_hex().to_string();
    hex.truncate(ID_HEX_LEN);
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_same_id_and_length_prefix_separates_parts() {
        assert_eq!(hash_bytes(b"abc"), hash_bytes(b"abc"));
        assert_eq!(hash_bytes(b"abc").len(), ID_HEX_LEN);
        assert_ne!(hash_parts(["ab", "c"]), hash_parts(["a", "bc"]));
        assert_eq!(fingerprint_parts(["ab", "c"]), hash_parts(["ab", "c"])[..FINGERPRINT_HEX_LEN]);
    }

    #[test]
    fn streaming_hash_equals_one_shot_hash() {
        let mut h = ContentHasher::default();
        h.update(b"hello ");
        h.update(b"world");
        assert_eq!(h.finish(), hash_bytes(b"hello world"));
        assert_eq!(h.len(), 11);
    }

    #[test]
    fn clip_ids_sort_by_frame() {
        assert!(clip_id("v", 9, 20) < clip_id("v", 10, 20));
    }
}
