//! The streaming loader and the trainer on the demo's shards: loss falls, a stopped and
//! resumed run repeats the uninterrupted one bit for bit, the order survives a change of world
//! size, corrupt samples are skipped and counted, the cache serves a later epoch, the bucket
//! dry run warns, and the watchdog stops a hung step.

use std::path::Path;
use std::sync::Arc;

use clipline_core::storage::Store;
use clipline_shard::loader::{Batch, DataConfig, Loader, LoaderConfig, Plan, Rank};
use clipline_shard::Dataset;
use serde_json::Value;

use crate::support::{clipline, copy_tree, demo, output, tree, S3Server};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/train-tiny.toml");

fn train(run_dir: &Path, steps: u64, config: &str) -> Vec<Value> {
    train_with(run_dir, steps, config, &[])
}

fn train_with(run_dir: &Path, steps: u64, config: &str, env: &[(&str, String)]) -> Vec<Value> {
    let mut cmd = clipline();
    cmd.args(["train", config, "--data"]).arg(&demo().dir).arg("--run-dir").arg(run_dir).args(["--steps", &steps.to_string()]);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = output(&mut cmd);
    assert!(out.status.success(), "train failed: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("samples/s") && stdout.contains("data wait"), "{stdout}");
    std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn losses(lines: &[Value]) -> Vec<f64> {
    lines.iter().map(|l| l["loss"].as_f64().unwrap()).collect()
}

#[test]
fn tiny_model_loss_falls_and_a_resumed_run_repeats_the_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let straight = train(&dir.path().join("straight"), 24, TINY);
    assert_eq!(straight.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=24).collect::<Vec<_>>());
    let l = losses(&straight);
    let (early, late) = (l[..5].iter().sum::<f64>() / 5.0, l[19..].iter().sum::<f64>() / 5.0);
    assert!(late < 0.9 * early, "loss should fall: first steps {early:.4}, last steps {late:.4}");
    let last = straight.last().unwrap();
    assert!(last["val_loss"].as_f64().is_some() && last["val_loss_ema"].as_f64().is_some(), "{last}");
    assert!(last["samples_per_s"].as_f64().unwrap() > 0.0 && last["data_wait_pct"].as_f64().is_some());

    // Stopped at 10 (a checkpoint), resumed to 24: the same losses to the bit (the CPU backend
    // is deterministic, the loader state and every random draw are keyed by the batch).
    let resumed_dir = dir.path().join("resumed");
    let first = train(&resumed_dir, 10, TINY);
    assert_eq!(first.len(), 10);
    let resumed = train(&resumed_dir, 24, TINY);
    assert_eq!(losses(&resumed), l, "resumed losses differ from the uninterrupted run's");
    assert_eq!(resumed.last().unwrap()["val_loss"], last["val_loss"]);
    let mut kept: Vec<String> = std::fs::read_dir(resumed_dir.join("checkpoints")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into()).filter(|n: &String| n.starts_with("step-")).collect();
    kept.sort();
    assert_eq!(kept, ["step-000000020", "step-000000024"], "keep = 2 prunes older checkpoints");
}

#[test]
fn checkpoints_in_object_storage_resume_the_same_run() {
    let Some(server) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("s3.toml");
    let text = std::fs::read_to_string(TINY).unwrap().replace("[checkpoint]\n", &format!("[checkpoint]\ndir = \"s3://{}/runs/tiny\"\n", server.bucket));
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let straight = train(&dir.path().join("local"), 6, TINY);
    let env: Vec<(&str, String)> = server.env();
    train_with(&dir.path().join("s3"), 3, config, &env);
    assert!(!dir.path().join("s3/checkpoints").exists(), "checkpoints go to the configured store");
    let resumed = train_with(&dir.path().join("s3"), 6, config, &env);
    assert_eq!(losses(&resumed), losses(&straight));
}

#[test]
fn the_bucket_dry_run_counts_batches_and_warns_about_buckets_that_yield_none() {
    let dir = tempfile::tempdir().unwrap();
    let out = output(clipline().args(["buckets", TINY, "--data"]).arg(&demo().dir).args(["--world-size", "2"]));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("96p-1f-4:3") && stdout.contains("world size 2") && !stdout.contains("WARNING"), "{stdout}");

    let config = std::fs::read_to_string(TINY).unwrap().replace("\"96p-1f\" = 3", "\"96p-1f\" = 3\n\"96p-33f\" = 50");
    let big = dir.path().join("big.toml");
    std::fs::write(&big, config).unwrap();
    let out = output(clipline().args(["buckets"]).arg(&big).arg("--data").arg(&demo().dir));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("WARNING: bucket 96p-33f-4:3 yields NO batches") && stdout.contains("batch size 50"), "{stdout}");

    let none = dir.path().join("none.toml");
    std::fs::write(&none, std::fs::read_to_string(TINY).unwrap().replace("default = 2", "default = 100").replace("\"96p-1f\" = 3", "")).unwrap();
    let out = output(clipline().args(["buckets"]).arg(&none).arg("--data").arg(&demo().dir));
    assert!(!out.status.success(), "no batches at all is a failure");
    let out = output(clipline().args(["train"]).arg(&none).arg("--data").arg(&demo().dir).arg("--run-dir").arg(dir.path().join("run")));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no bucket yields a full batch") && stderr.contains("clipline buckets"), "{stderr}");
}

#[test]
fn the_watchdog_stops_a_step_over_its_limit_with_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hung.toml");
    std::fs::write(&config, std::fs::read_to_string(TINY).unwrap().replace("step_timeout_s = 300", "step_timeout_s = 0.001")).unwrap();
    let run = dir.path().join("run");
    let out = output(clipline().args(["train"]).arg(&config).arg("--data").arg(&demo().dir).arg("--run-dir").arg(&run));
    assert_eq!(out.status.code(), Some(70), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&std::fs::read(run.join("watchdog.json")).unwrap()).unwrap();
    assert_eq!(report["stopped"], "computing a step");
    assert!(report["context"].as_str().unwrap().contains("bucket"), "{report}");
}

/// The dataset at `dir`, or in `store` when given, planned with the tiny config's batch sizes.
fn open(dir: &Path, store: Option<Store>) -> (Arc<Dataset>, Arc<Plan>) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = store.unwrap_or_else(|| Store::open(dir.to_str().unwrap()).unwrap());
    let dataset = rt.block_on(Dataset::open(store)).unwrap();
    let config: DataConfig = toml::from_str("[batch_size]\ndefault = 2\n\"96p-1f\" = 3").unwrap();
    let plan = Plan::new(7, config.select(dataset.rows()).train, &config.batch_size);
    (Arc::new(dataset), Arc::new(plan))
}

fn ids(batch: &Batch) -> Vec<String> {
    batch.samples.iter().map(|s| s.id().to_string()).collect()
}

#[test]
fn loader_order_after_resuming_on_another_world_size_is_the_uninterrupted_order() {
    let (dataset, plan) = open(&demo().dir, None);
    let config = LoaderConfig::default();
    let mut single = Loader::start(dataset.clone(), plan.clone(), Rank::SINGLE, None, &config).unwrap();
    let uninterrupted: Vec<Vec<String>> = (0..15).map(|_| ids(&single.next_batch().unwrap())).collect();

    // Two ranks read three rounds, save their state, and the run resumes on three ranks.
    let mut two: Vec<Loader> = (0..2).map(|r| Loader::start(dataset.clone(), plan.clone(), Rank::new(r, 2).unwrap(), None, &config).unwrap()).collect();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.extend(two.iter_mut().map(|l| ids(&l.next_batch().unwrap())));
    }
    let state = two[0].state();
    assert_eq!(state, two[1].state());
    let state: clipline_shard::loader::LoaderState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();
    let mut three: Vec<Loader> = (0..3).map(|r| Loader::start(dataset.clone(), plan.clone(), Rank::new(r, 3).unwrap(), Some(&state), &config).unwrap()).collect();
    for _ in 0..3 {
        seen.extend(three.iter_mut().map(|l| ids(&l.next_batch().unwrap())));
    }
    assert_eq!(seen, uninterrupted);
    let metrics = single.metrics();
    assert!(metrics.samples > 0 && metrics.bytes > 0 && metrics.samples_per_s() > 0.0);
}

#[test]
fn corrupt_samples_are_skipped_and_counted_and_the_cache_serves_a_later_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_tree(&demo().dir.join("manifests"), &data.join("manifests"));
    copy_tree(&demo().dir.join("shards"), &data.join("shards"));
    let (dataset, plan) = open(&data, None);

    // Damage one byte of the first sample of the first batch.
    let (_, first) = &plan.epoch(0)[0];
    let victim = plan.samples()[first[0] as usize].id.clone();
    let loc = dataset.location(&victim).unwrap().clone();
    let shard = data.join("shards").join(&loc.shard);
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[(loc.offset + loc.length / 2) as usize] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();

    let epoch = plan.batches_per_epoch();
    let mut loader = Loader::start(dataset, plan.clone(), Rank::SINGLE, None, &LoaderConfig::default()).unwrap();
    let batches: Vec<Batch> = (0..epoch).map(|_| loader.next_batch().unwrap()).collect();
    assert_eq!(batches[0].skipped.len(), 1, "the damaged sample is skipped");
    assert_eq!(batches[0].skipped[0].0, victim);
    assert!(batches[0].skipped[0].1.contains("checksum"), "{:?}", batches[0].skipped);
    assert_eq!(batches[0].samples.len(), first.len() - 1, "never replaced by zeros or another sample");
    assert_eq!(loader.metrics().skipped, 1);

    // From S3 with the block cache: the same epoch; then, with the shards gone from the bucket,
    // a new reader gets everything else from the cache.
    let Some(server) = S3Server::start() else { return };
    let uri = format!("s3://{}/data", server.bucket);
    let store = Store::open_with(&uri, server.options()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for file in tree(&data) {
        rt.block_on(store.put_file(&file, &data.join(&file))).unwrap();
    }
    let (remote, remote_plan) = open(&data, Some(store.clone()));
    let config = LoaderConfig { cache_dir: Some(dir.path().join("cache")), cache_mib: 64, cache_block_mib: 1, ..LoaderConfig::default() };
    let mut cold = Loader::start(remote.clone(), remote_plan.clone(), Rank::SINGLE, None, &config).unwrap();
    for batch in &batches {
        assert_eq!(ids(&cold.next_batch().unwrap()), ids(batch));
    }
    drop(cold);
    for entry in rt.block_on(store.list("shards")).unwrap() {
        rt.block_on(store.delete(&entry.key)).unwrap();
    }
    let mut warm = Loader::start(remote, remote_plan, Rank::SINGLE, None, &config).unwrap();
    for batch in &batches {
        let again = warm.next_batch().unwrap();
        assert_eq!(ids(&again), ids(batch));
        for (a, b) in again.samples.iter().zip(&batch.samples) {
            assert_eq!(a.bytes(), b.bytes());
        }
    }
}
