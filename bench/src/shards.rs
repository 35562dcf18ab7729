//! `clipline bench shards --output DIR`: what the shard format costs and saves on the samples of
//! an output, against the obvious alternative of one fp32 `.npy` file per tensor (what many
//! training repos cache) and against uncompressed bf16: bytes per sample at several zstd levels,
//! with byte planes or not, with a trained dictionary or not; write and read MB/s on one core
//! (read = decompress + checksum + layout); index bytes per sample.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use anyhow::Context;
use clipline_core::storage::Store;
use clipline_shard::record::encode_record;
use clipline_shard::sample::Expected;
use clipline_shard::{Dataset, EncodedSample, SampleDecoder, SampleEncoder, ShardWriter, TensorData, TensorRef};
use half::bf16;

use crate::best_of;

/// Arguments of the shards benchmark.
#[derive(clap::Args)]
pub struct ShardsBench {
    /// An output with committed samples (from `clipline run` or `clipline demo`).
    #[arg(long)]
    output: String,
    /// zstd levels to try.
    #[arg(long, value_delimiter = ',', default_value = "1,3,9,19")]
    levels: Vec<i32>,
    /// Passes; the best is reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
}

/// A sample's tensors, as read back.
struct Tensors {
    id: String,
    clip: String,
    bucket: String,
    tensors: Vec<(String, Vec<usize>, Vec<bf16>)>,
}

impl Tensors {
    fn refs(&self) -> Vec<TensorRef<'_>> {
        self.tensors.iter().map(|(name, shape, values)| TensorRef { name, shape: shape.clone(), data: TensorData::Bf16(values) }).collect()
    }

    fn bf16_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.2.len() * 2).sum()
    }
}

fn read_samples(output: &str) -> anyhow::Result<Vec<Tensors>> {
    let store = Store::open(output).with_context(|| format!("cannot open {output}"))?;
    let handle = tokio::runtime::Handle::current();
    let dataset = handle.block_on(Dataset::open(store))?;
    let mut ids: Vec<&str> = dataset.sample_ids().collect();
    ids.sort_unstable();
    anyhow::ensure!(!ids.is_empty(), "{output} has no committed samples: run `clipline demo` or a run with [embed] first");
    let mut decoder = SampleDecoder::new()?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let sample = handle.block_on(dataset.read(id, &mut decoder))?;
        let h = sample.header();
        let tensors = h
            .tensors
            .iter()
            .filter_map(|t| sample.tensor(&t.name).and_then(|v| v.as_bf16()).map(|v| (t.name.clone(), t.shape.clone(), v.to_vec())))
            .collect();
        out.push(Tensors { id: id.to_string(), clip: h.clip_id.clone(), bucket: h.bucket.clone(), tensors });
    }
    Ok(out)
}

/// One row of the table.
struct Figures {
    name: String,
    bytes: usize,
    write_s: f64,
    read_s: f64,
}

/// fp32 `.npy` files, one per tensor: a 128-byte header and the values.
fn npy(samples: &[Tensors], repeat: usize) -> anyhow::Result<Figures> {
    let dir = tempfile::tempdir()?;
    let mut bytes = 0;
    let write_s = best_of(repeat, || {
        bytes = 0;
        for (i, s) in samples.iter().enumerate() {
            for (name, shape, values) in &s.tensors {
                let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
                let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}", dims.join(", ")).into_bytes();
                header.resize(128 - 10 - 1, b' ');
                header.push(b'\n');
                let mut file = std::io::BufWriter::new(std::fs::File::create(dir.path().join(format!("{i}-{name}.npy")))?);
                file.write_all(b"\x93NUMPY\x01\x00")?;
                file.write_all(&(header.len() as u16).to_le_bytes())?;
                file.write_all(&header)?;
                let floats: Vec<u8> = values.iter().flat_map(|v| v.to_f32().to_le_bytes()).collect();
                file.write_all(&floats)?;
                file.into_inner().map_err(|e| e.into_error())?.sync_data()?;
                bytes += 128 + floats.len();
            }
        }
        Ok(())
    })?;
    let read_s = best_of(repeat, || {
        for entry in std::fs::read_dir(dir.path())? {
            let data = std::fs::read(entry?.path())?;
            let floats: Vec<f32> = data[128..].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            std::hint::black_box(floats);
        }
        Ok(())
    })?;
    Ok(Figures { name: "fp32 .npy files".into(), bytes, write_s, read_s })
}

/// The real writer and reader: encode, write a shard file, then decode every sample from it.
fn shard(samples: &[Tensors], level: i32, planes: bool, repeat: usize) -> anyhow::Result<(Figures, f64)> {
    let dir = tempfile::tempdir()?;
    let mut encoder = SampleEncoder::new(level, planes)?;
    let mut encoded: Vec<EncodedSample> = Vec::new();
    let write_s = best_of(repeat, || {
        encoded = samples.iter().map(|s| encoder.encode(&s.id, &s.clip, &s.bucket, BTreeMap::new(), &s.refs())).collect::<Result<_, _>>()?;
        Ok(())
    })?;
    let mut writer = ShardWriter::new(dir.path(), u64::MAX >> 1);
    for e in &encoded {
        writer.push(e)?;
    }
    let shard = writer.finish()?.context("a shard")?;
    let file = std::fs::read(&shard.file)?;
    let mut decoder = SampleDecoder::new()?;
    let read_s = best_of(repeat, || {
        for p in &shard.samples {
            let frame = &file[p.offset as usize..p.offset as usize + p.length as usize];
            let expected = Expected { shard: &shard.name, sample: &p.sample_id, check_id: true, checksum: p.checksum, raw_length: p.raw_length as usize };
            std::hint::black_box(decoder.decode(frame, expected)?);
        }
        Ok(())
    })?;
    let layout = if planes { "planes" } else { "plain" };
    let index_per_sample = shard.index_bytes as f64 / shard.samples.len() as f64;
    Ok((Figures { name: format!("shard zstd-{level} {layout}"), bytes: shard.bytes as usize, write_s, read_s }, index_per_sample))
}

/// The same records compressed with a zstd dictionary trained on them (the dictionary's size
/// counted once), to see whether dictionaries pay on latents.
fn with_dictionary(samples: &[Tensors], level: i32, repeat: usize) -> anyhow::Result<Figures> {
    let records: Vec<Vec<u8>> = samples
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            encode_record(&s.id, &s.clip, &s.bucket, BTreeMap::new(), &s.refs(), true, &mut out).map(|()| out)
        })
        .collect::<Result<_, _>>()?;
    let dictionary = zstd::dict::from_samples(&records, 112_640).context("zstd could not train a dictionary on these samples")?;
    let mut compressor = zstd::bulk::Compressor::with_dictionary(level, &dictionary)?;
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let write_s = best_of(repeat, || {
        frames = records.iter().map(|r| compressor.compress(r)).collect::<Result<_, _>>()?;
        Ok(())
    })?;
    let mut decompressor = zstd::bulk::Decompressor::with_dictionary(&dictionary)?;
    let read_s = best_of(repeat, || {
        for (frame, record) in frames.iter().zip(&records) {
            std::hint::black_box(clipline_shard::format::checksum(&[frame]));
            std::hint::black_box(decompressor.decompress(frame, record.len())?);
        }
        Ok(())
    })?;
    let bytes = dictionary.len() + frames.iter().map(|f| f.len() + 16).sum::<usize>();
    Ok(Figures { name: format!("zstd-{level} planes + dictionary"), bytes, write_s, read_s })
}

/// Run the benchmark and print its table.
///
/// # Errors
/// When the output has no samples or a file cannot be written.
pub fn run(bench: &ShardsBench) -> anyhow::Result<()> {
    let samples = read_samples(&bench.output)?;
    let n = samples.len();
    let bf16_bytes: usize = samples.iter().map(Tensors::bf16_bytes).sum();
    let started = Instant::now();
    let mut rows = vec![npy(&samples, bench.repeat)?, Figures { name: "bf16 uncompressed".into(), bytes: bf16_bytes, write_s: f64::NAN, read_s: f64::NAN }];
    let mut index = Vec::new();
    for &level in &bench.levels {
        for planes in [false, true] {
            let (figures, index_per_sample) = shard(&samples, level, planes, bench.repeat)?;
            rows.push(figures);
            index.push(index_per_sample);
        }
        match with_dictionary(&samples, level, bench.repeat) {
            Ok(figures) => rows.push(figures),
            Err(e) => tracing::warn!("no dictionary at level {level}: {e}"),
        }
    }
    let fp32 = rows[0].bytes as f64;
    let mb = bf16_bytes as f64 / 1e6;
    println!("shards: {n} samples from {}, {:.1} MB as bf16; MB/s are of bf16 payload on one core; best of {}", bench.output, mb, bench.repeat);
    println!("{:<32} {:>12} {:>10} {:>8} {:>11} {:>10}", "format", "bytes/sample", "vs fp32", "vs bf16", "write MB/s", "read MB/s");
    let rate = |seconds: f64| if seconds.is_nan() { "-".to_string() } else { format!("{:.0}", mb / seconds) };
    for r in &rows {
        println!(
            "{:<32} {:>12.0} {:>9.2}x {:>7.2}x {:>11} {:>10}",
            r.name,
            r.bytes as f64 / n as f64,
            fp32 / r.bytes as f64,
            bf16_bytes as f64 / r.bytes as f64,
            rate(r.write_s),
            rate(r.read_s)
        );
    }
    let index_mean = index.iter().sum::<f64>() / index.len().max(1) as f64;
    println!("index: {index_mean:.1} bytes/sample compressed (16 raw, checksum included); {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}
