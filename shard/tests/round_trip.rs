//! Shards written and read back: bit-exact samples, every flipped bit detected, size limits.

use std::collections::BTreeMap;

use clipline_shard::sample::Expected;
use clipline_shard::{verify_shard, FinishedShard, SampleDecoder, SampleEncoder, ShardError, ShardWriter, TensorData, TensorRef};
use half::bf16;

fn latent(seed: u32, n: usize) -> Vec<f32> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 - 0.5) * 4.0
        })
        .collect()
}

fn encode(encoder: &mut SampleEncoder, i: u32) -> (clipline_shard::EncodedSample, Vec<f32>, Vec<bf16>) {
    let values = latent(i + 1, 4 * 5 * 8 * 8);
    let text: Vec<bf16> = latent(i + 100, 7 * 16).into_iter().map(bf16::from_f32).collect();
    let tensors = [
        TensorRef { name: "latent", shape: vec![5, 4, 8, 8], data: TensorData::F32AsBf16(&values) },
        TensorRef { name: "text", shape: vec![7, 16], data: TensorData::Bf16(&text) },
    ];
    let attributes = BTreeMap::from([("caption".to_string(), format!("clip {i}"))]);
    let sample = encoder.encode(&format!("s{i}"), &format!("c{i}"), "64px-5f-1:1", attributes, &tensors).unwrap();
    (sample, values, text)
}

/// Each sample's latent values (f32, before bf16 rounding) and text values.
type Written = Vec<(Vec<f32>, Vec<bf16>)>;

fn write(planes: bool, count: u32, limit: u64) -> (Vec<FinishedShard>, Written) {
    let dir = tempfile::tempdir().unwrap();
    let mut encoder = SampleEncoder::new(3, planes).unwrap();
    let mut writer = ShardWriter::new(dir.path(), limit);
    let mut shards = Vec::new();
    let mut values = Vec::new();
    for i in 0..count {
        let (sample, latent, text) = encode(&mut encoder, i);
        shards.extend(writer.push(&sample).unwrap());
        values.push((latent, text));
    }
    shards.extend(writer.finish().unwrap());
    std::mem::forget(dir);
    (shards, values)
}

#[test]
fn every_sample_reads_back_bit_exact_in_both_layouts() {
    for planes in [false, true] {
        let (shards, values) = write(planes, 12, 1 << 20);
        assert_eq!(shards.len(), 1);
        let bytes = std::fs::read(&shards[0].file).unwrap();
        let report = verify_shard(&shards[0].name, &bytes);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        assert_eq!(report.samples, shards[0].samples);
        let mut decoder = SampleDecoder::new().unwrap();
        for (placed, (latent, text)) in shards[0].samples.iter().zip(&values) {
            let frame = &bytes[placed.offset as usize..(placed.offset + u64::from(placed.length)) as usize];
            let expected = Expected { shard: &shards[0].name, sample: &placed.sample_id, check_id: true, checksum: placed.checksum, raw_length: placed.raw_length as usize };
            let sample = decoder.decode(frame, expected).unwrap();
            let l = sample.tensor("latent").unwrap();
            assert_eq!(l.shape(), &[5, 4, 8, 8]);
            let want: Vec<bf16> = latent.iter().map(|v| bf16::from_f32(*v)).collect();
            assert_eq!(l.as_bf16().unwrap(), want.as_slice());
            assert_eq!(sample.tensor("text").unwrap().as_bf16().unwrap(), text.as_slice());
            assert_eq!(sample.header().attributes["caption"], format!("clip {}", &placed.sample_id[1..]));
        }
    }
}

#[test]
fn a_flipped_bit_anywhere_in_a_shard_is_detected() {
    let (shards, _) = write(true, 3, 1 << 20);
    let bytes = std::fs::read(&shards[0].file).unwrap();
    // Every bit of a small shard: the name alone catches them all, so check the structure
    // checks too by naming each damaged copy after its own content.
    for bit in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        let report = verify_shard(&shards[0].name, &damaged);
        assert!(!report.problems.is_empty(), "bit {bit} went unnoticed");
        let renamed = clipline_shard::writer::shard_name(blake3::Hasher::new().update(&damaged));
        let report = verify_shard(&renamed, &damaged);
        assert!(!report.problems.is_empty(), "bit {bit} (byte {}) passes the structure checks", bit / 8);
    }
}

#[test]
fn shards_close_at_the_size_limit_and_an_oversized_sample_is_refused() {
    let (shards, _) = write(false, 40, 8 << 10);
    assert!(shards.len() > 3, "{} shards", shards.len());
    for shard in &shards {
        assert!(shard.bytes <= 8 << 10, "{} is {} bytes", shard.name, shard.bytes);
        assert_eq!(std::fs::metadata(&shard.file).unwrap().len(), shard.bytes);
    }
    assert_eq!(shards.iter().map(|s| s.samples.len()).sum::<usize>(), 40);

    let dir = tempfile::tempdir().unwrap();
    let mut encoder = SampleEncoder::new(3, false).unwrap();
    let (sample, _, _) = encode(&mut encoder, 0);
    let err = ShardWriter::new(dir.path(), 256).push(&sample).unwrap_err();
    assert!(matches!(err, ShardError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("s0"), "{err}");
}

#[test]
fn a_shape_that_does_not_match_the_values_is_refused_naming_the_sample() {
    let mut encoder = SampleEncoder::new(3, false).unwrap();
    let v = [1.0f32; 10];
    let err = encoder.encode("s9", "c9", "b", BTreeMap::new(), &[TensorRef { name: "latent", shape: vec![3, 4], data: TensorData::F32AsBf16(&v) }]).unwrap_err();
    assert!(err.to_string().contains("s9") && err.to_string().contains("latent"), "{err}");
}
