//! `clipline bench loader`: the streaming loader's side of `benches/loader.py`. It reads whole
//! epochs of a dataset in shuffled per-bucket batches, as a trainer would, and prints samples/s
//! and MB/s (decoded tensor bytes) per epoch; with a cache directory the first epoch is cold
//! and later ones warm. `--export` writes every sample's tensors as plain files so the script
//! can build the peers' formats from the same latents.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clipline_core::manifest::SampleStatus;
use clipline_core::storage::Store;
use clipline_shard::loader::{BatchSizes, Loader, LoaderConfig, Plan, PlanSample, Rank};
use clipline_shard::{Dataset, SampleDecoder};

/// Arguments of the loader benchmark.
#[derive(clap::Args)]
pub struct LoaderBench {
    /// The dataset (path, file://, s3://).
    #[arg(long)]
    data: String,
    /// Epochs to read.
    #[arg(long, default_value_t = 2)]
    epochs: u64,
    /// Batch size of every bucket.
    #[arg(long, default_value_t = 8)]
    batch: usize,
    /// A local cache directory (cold first epoch, warm later ones); none when unset.
    #[arg(long)]
    cache: Option<PathBuf>,
    /// Block size of the cache, MiB.
    #[arg(long, default_value_t = 8)]
    block_mib: u64,
    /// Samples in flight ahead of the consumer.
    #[arg(long, default_value_t = 64)]
    prefetch: usize,
    /// Instead: write each sample's tensors to this directory (`<n>.latent`, `<n>.text`, bf16
    /// little-endian) with `index.json`, for the peers' converters.
    #[arg(long)]
    export: Option<PathBuf>,
}

/// Run it, printing one JSON line.
///
/// # Errors
/// When the dataset cannot be read.
pub fn run(bench: &LoaderBench) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let store = Store::open(&bench.data).with_context(|| format!("cannot open {}", bench.data))?;
    let dataset = Arc::new(rt.block_on(Dataset::open(store))?);
    if let Some(dir) = &bench.export {
        return export(&rt, &dataset, dir);
    }
    let samples: Vec<PlanSample> = dataset.rows().iter().filter(|r| r.status == SampleStatus::Ok).map(|r| PlanSample { id: r.sample_id.clone(), bucket: r.bucket.clone() }).collect();
    let sizes = BatchSizes([("default".to_string(), bench.batch)].into_iter().collect());
    let plan = Arc::new(Plan::new(0, samples, &sizes));
    let config = LoaderConfig { cache_dir: bench.cache.clone(), cache_block_mib: bench.block_mib, prefetch_samples: bench.prefetch, ..LoaderConfig::default() };
    let started = Instant::now();
    let mut loader = Loader::start(dataset, plan.clone(), Rank::SINGLE, None, &config)?;
    let mut epochs = Vec::new();
    for epoch in 0..bench.epochs {
        let begun = Instant::now();
        let (mut samples, mut bytes) = (0u64, 0u64);
        for _ in 0..plan.batches_per_epoch() {
            let batch = loader.next_batch()?;
            samples += batch.samples.len() as u64;
            bytes += batch.samples.iter().flat_map(|s| s.header().tensors.iter().map(|t| t.length as u64)).sum::<u64>();
        }
        let secs = begun.elapsed().as_secs_f64();
        epochs.push(serde_json::json!({"epoch": epoch, "samples": samples, "seconds": secs, "samples_per_s": samples as f64 / secs, "mb_per_s": bytes as f64 / 1e6 / secs}));
    }
    let m = loader.metrics();
    let report = serde_json::json!({"loader": "clipline", "data": bench.data, "batch": bench.batch, "epochs": epochs, "waited_s": m.waited.as_secs_f64(), "total_s": started.elapsed().as_secs_f64()});
    println!("{report}");
    Ok(())
}

fn export(rt: &tokio::runtime::Runtime, dataset: &Dataset, dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut decoder = SampleDecoder::new()?;
    let mut index = Vec::new();
    let ids: Vec<String> = dataset.rows().iter().filter(|r| r.status == SampleStatus::Ok).map(|r| r.sample_id.clone()).collect();
    for (n, id) in ids.iter().enumerate() {
        let sample = rt.block_on(dataset.read(id, &mut decoder))?;
        let mut entry = serde_json::json!({"id": id, "bucket": sample.header().bucket});
        for name in ["latent", "text"] {
            if let Some(t) = sample.tensor(name) {
                std::fs::File::create(dir.join(format!("{n}.{name}")))?.write_all(t.bytes)?;
                entry[name] = serde_json::json!(t.shape());
            }
        }
        index.push(entry);
    }
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index)?)?;
    println!("{}", serde_json::json!({"exported": index.len(), "dir": dir}));
    Ok(())
}
