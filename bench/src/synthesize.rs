//! `clipline bench synthesize`: a committed output of many real-size samples for the loader
//! benchmark, without running the pipeline. A loader figure over the demo's 16 samples measures
//! start-up; real-size latents (16 channels × 9 × 30 × 40, a 240p clip through a 16-channel VAE)
//! by the thousand measure reading. The samples are written exactly as the pipeline writes
//! them (the shard sink, the `samples` and `shards` parts, one commit marker per chunk); the
//! values are pseudo-random normals, which compress about as badly as real latents do.

use std::collections::{BTreeMap, HashMap};

use anyhow::Context;
use clipline_core::manifest::commits::{part_key, Marker, COMMITS};
use clipline_core::manifest::{encode, SampleRow, SampleStatus, ShardRow, Table, Timestamp};
use clipline_core::rng::SplitMix64;
use clipline_core::storage::Store;
use clipline_shard::sink::{ShardSink, ShardsConfig};
use clipline_shard::{SampleEncoder, TensorData, TensorRef};

/// Arguments of `clipline bench synthesize`.
#[derive(clap::Args)]
pub struct Synthesize {
    /// The output to write (path, file://, s3://); must hold no samples yet.
    #[arg(long)]
    output: String,
    /// Samples to write.
    #[arg(long, default_value_t = 6000)]
    samples: usize,
    /// Latent shape T,C,H,W (as stored).
    #[arg(long, value_delimiter = ',', default_value = "9,16,30,40")]
    latent: Vec<usize>,
    /// Text embedding tokens,width (0,0: none).
    #[arg(long, value_delimiter = ',', default_value = "64,768")]
    text: Vec<usize>,
    /// Samples per commit chunk.
    #[arg(long, default_value_t = 500)]
    chunk: usize,
    /// Largest shard, MiB (`shards.target_mib`; the loader benchmark matches the peers' 64 MB
    /// objects).
    #[arg(long, default_value_t = ShardsConfig::default().target_mib)]
    shard_mib: u64,
}

/// Write the output, printing one JSON line with its size.
///
/// # Errors
/// When the output cannot be written or the shapes are malformed.
pub fn run(args: &Synthesize) -> anyhow::Result<()> {
    let (Ok(latent), Ok(text)) = (<[usize; 4]>::try_from(args.latent.clone()), <[usize; 2]>::try_from(args.text.clone())) else {
        anyhow::bail!("--latent takes T,C,H,W and --text tokens,width");
    };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let store = Store::open(&args.output).with_context(|| format!("cannot open {}", args.output))?;
    let scratch = tempfile::tempdir()?;
    let config = ShardsConfig { target_mib: args.shard_mib, ..ShardsConfig::default() };
    let mut sink = ShardSink::new(store.clone(), &config, scratch.path());
    let mut encoder = SampleEncoder::new(config.zstd_level, config.byte_planes)?;
    let bucket = format!("{}p-{}f-4:3", latent[2] * 8, (latent[0] - 1) * 4 + 1);
    let (mut written, mut bytes) = (0usize, 0u64);
    for (chunk, first) in (0..args.samples).step_by(args.chunk.max(1)).enumerate() {
        let mut samples = Vec::new();
        for n in first..(first + args.chunk.max(1)).min(args.samples) {
            let id = format!("synthetic-{n:08}");
            let mut rng = SplitMix64::keyed(0, &id);
            let values = |count: usize, rng: &mut SplitMix64| -> Vec<f32> { (0..count).map(|_| normal(rng)).collect() };
            let lat = values(latent.iter().product(), &mut rng);
            let txt = values(text[0] * text[1], &mut rng);
            let mut tensors = vec![TensorRef { name: "latent", shape: latent.to_vec(), data: TensorData::F32AsBf16(&lat) }];
            if text[0] > 0 {
                tensors.push(TensorRef { name: "text", shape: text.to_vec(), data: TensorData::F32AsBf16(&txt) });
            }
            let attributes = BTreeMap::from([("caption".to_string(), format!("synthetic sample {n}"))]);
            let encoded = encoder.encode(&id, &id, &bucket, attributes, &tensors)?;
            samples.push((row(&id, &bucket, latent, text), Some(encoded)));
        }
        let (rows, shards) = rt.block_on(sink.write_chunk(samples))?;
        written += rows.len();
        bytes += shards.iter().map(|s| s.bytes as u64).sum::<u64>();
        let key = format!("synthetic-{chunk:05}");
        let mut parts = HashMap::new();
        for (table, part) in [(SampleRow::NAME, encode(&rows)?), (ShardRow::NAME, encode(&shards)?)] {
            let part_name = part_key(table, &key);
            rt.block_on(store.put(&part_name, part))?;
            parts.insert(table.to_string(), part_name);
        }
        let shards = shards.iter().map(|s| clipline_shard::shard_key(&s.shard)).collect();
        let marker = Marker { format: 1, chunk: key.clone(), settings_hash: "synthetic".into(), sources: Vec::new(), parts, shards };
        rt.block_on(store.put(&format!("{COMMITS}/{key}.json"), serde_json::to_vec_pretty(&marker)?.into()))?;
        tracing::info!(samples = written, mb = bytes / 1_000_000, "synthesized");
    }
    println!("{}", serde_json::json!({"output": args.output, "samples": written, "shard_bytes": bytes, "latent": latent, "text": text}));
    Ok(())
}

/// A standard normal, roughly: the centred sum of four uniforms, scaled (fast, and as
/// incompressible in bf16 as a latent's values).
fn normal(rng: &mut SplitMix64) -> f32 {
    let bits = rng.next_u64();
    let sum: u32 = (0..4).map(|i| ((bits >> (16 * i)) & 0xffff) as u32).sum();
    (sum as f32 / 65535.0 - 2.0) * 3f32.sqrt()
}

fn row(id: &str, bucket: &str, latent: [usize; 4], text: [usize; 2]) -> SampleRow {
    SampleRow {
        sample_id: id.into(),
        clip_id: id.into(),
        kind: "video".into(),
        status: SampleStatus::Ok,
        bucket: bucket.into(),
        frames: ((latent[0] - 1) * 4 + 1) as i64,
        height: (latent[2] * 8) as i64,
        width: (latent[3] * 8) as i64,
        frame_stride: 1,
        shard: None,
        offset: None,
        length: None,
        raw_length: None,
        checksum: None,
        latent_shape: latent.iter().map(|&d| d as i64).collect(),
        text_shape: if text[0] > 0 { text.iter().map(|&d| d as i64).collect() } else { Vec::new() },
        dtype: "bf16".into(),
        vae_id: "synthetic".into(),
        text_encoder_id: "synthetic".into(),
        embed_hash: "synthetic".into(),
        error: None,
        created_at: Timestamp::now(),
    }
}
