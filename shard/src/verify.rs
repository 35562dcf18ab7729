//! Checking a whole shard: its name against its content, its structure, every sample.

use crate::format::{decode_index, Footer, FOOTER_LEN, HEADER_LEN};
use crate::sample::{Expected, SampleDecoder};
use crate::writer::Placed;
use crate::ShardError;

/// What checking one shard found.
#[derive(Debug)]
pub struct ShardReport {
    /// The shard.
    pub shard: String,
    /// Samples that decoded and verified, with where they are.
    pub samples: Vec<Placed>,
    /// Everything wrong, each naming the shard and, where it applies, the sample.
    pub problems: Vec<ShardError>,
}

/// Check every byte of shard `name`: the name is the hash of the content, the header, index and
/// footer match their checksum, and every sample's frame matches its checksum, decompresses to
/// its recorded length and holds a well-formed record.
pub fn verify_shard(name: &str, bytes: &[u8]) -> ShardReport {
    let mut report = ShardReport { shard: name.into(), samples: Vec::new(), problems: Vec::new() };
    let expected_name = crate::writer::shard_name(blake3::Hasher::new().update(bytes));
    if expected_name != name {
        report.problems.push(ShardError::corrupt(name, format!("content hashes to {expected_name}: the file was changed or truncated after it was written")));
    }
    if let Err(e) = verify_structure(name, bytes, &mut report) {
        report.problems.push(e);
    }
    report
}

fn verify_structure(name: &str, bytes: &[u8], report: &mut ShardReport) -> Result<(), ShardError> {
    if bytes.len() < HEADER_LEN + FOOTER_LEN {
        return Err(ShardError::corrupt(name, format!("{} bytes is too short for a shard", bytes.len())));
    }
    let footer = Footer::parse(name, &bytes[bytes.len() - FOOTER_LEN..], bytes.len() as u64)?;
    let index_at = footer.index_offset as usize;
    let index = &bytes[index_at..index_at + footer.index_length as usize];
    footer.check(name, &bytes[..HEADER_LEN], index)?;
    let entries = decode_index(name, index, footer.samples)?;
    let frames_end: u64 = HEADER_LEN as u64 + entries.iter().map(|e| u64::from(e.length)).sum::<u64>();
    if frames_end != footer.index_offset {
        return Err(ShardError::corrupt(name, format!("index lists frames up to byte {frames_end}, but the index starts at {}", footer.index_offset)));
    }
    let mut decoder = SampleDecoder::new().map_err(|e| ShardError::corrupt(name, format!("zstd: {e}")))?;
    let mut offset = HEADER_LEN as u64;
    for (i, entry) in entries.iter().enumerate() {
        let frame = &bytes[offset as usize..(offset + u64::from(entry.length)) as usize];
        let position = format!("#{i} (offset {offset})");
        let expected = Expected { shard: name, sample: &position, check_id: false, checksum: entry.checksum, raw_length: entry.raw_length as usize };
        match decoder.decode(frame, expected) {
            Ok(sample) => report.samples.push(Placed {
                sample_id: sample.id().to_string(),
                offset,
                length: entry.length,
                raw_length: entry.raw_length,
                checksum: entry.checksum,
            }),
            Err(e) => report.problems.push(e),
        }
        offset += u64::from(entry.length);
    }
    Ok(())
}
