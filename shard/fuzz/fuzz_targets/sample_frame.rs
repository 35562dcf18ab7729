//! Any bytes as one sample's zstd frame whose checksum matches (so the decoder goes past the
//! checksum into decompression and record parsing), with a claimed decompressed length taken
//! from the first bytes: decoding must answer, never panic, never over-allocate.
#![no_main]

use clipline_shard::format::checksum;
use clipline_shard::sample::Expected;
use clipline_shard::SampleDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (length, frame) = data.split_at(4);
    let raw_length = u32::from_le_bytes(length.try_into().unwrap()) as usize % (4 << 20);
    let expected = Expected { shard: "fuzz.shard", sample: "#0", check_id: false, checksum: checksum(&[frame]), raw_length };
    let mut decoder = SampleDecoder::new().unwrap();
    if let Ok(sample) = decoder.decode(frame, expected) {
        for tensor in &sample.header().tensors {
            let _ = sample.tensor(&tensor.name).map(|t| t.shape().len());
        }
    }
    let _ = clipline_shard::record::parse_header(frame);
});
