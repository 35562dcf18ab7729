//! The `clipline` Python package, as PyTorch users run it: the samples it reads are the Rust
//! reader's bit for bit, corrupt ones are skipped and named, killed runs' manifest parts are
//! not read, and `examples/train_pytorch.py` under `torchrun` (2 ranks × 2 DataLoader workers,
//! resumed on 3 ranks × 1 worker, locally and from S3 through the block cache) trains on exactly
//! the batches an uninterrupted single-process run does. A rank killed with SIGKILL stops the
//! job and leaves nothing that blocks the restart.
//!
//! The package is built and installed into the set-up's venv by `scripts/setup.sh`; the tests
//! use that venv's Python (`CLIPLINE_PYTHON`), which has PyTorch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use clipline_core::storage::Store;
use clipline_shard::Dataset;
use clipline_testkit::reference_python;
use serde_json::Value;

use crate::support::{clipline, copy_tree, demo, free_port, output, tree, S3Server};

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Run `cmd` to its end within `limit`, killing it past that; panics unless it succeeds.
fn run(cmd: &mut Command, limit: Duration, what: &str) -> Output {
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what} does not start: {e}"));
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return false;
            }
        }
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        true
    });
    let out = child.wait_with_output().unwrap();
    let timed_out = watchdog.join().unwrap();
    let text = format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!timed_out, "{what} ran past {limit:?}: {text}");
    assert!(out.status.success(), "{what} failed: {text}");
    out
}

/// The set-up venv's `python` with the package, or a skip.
fn python() -> Option<PathBuf> {
    let python = reference_python()?;
    let found = Command::new(&python).args(["-c", "import clipline, torch"]).output().unwrap();
    assert!(found.status.success(), "the clipline package is not installed in {}: run scripts/setup.sh ({})", python.display(), String::from_utf8_lossy(&found.stderr));
    Some(python)
}

/// A copy of the demo's manifests and shards.
fn copy_demo(to: &Path) {
    copy_tree(&demo().dir.join("manifests"), &to.join("manifests"));
    copy_tree(&demo().dir.join("shards"), &to.join("shards"));
}

#[test]
fn the_package_reads_what_the_rust_reader_reads_skips_corrupt_samples_and_only_committed_rows() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_demo(&data);
    let export = dir.path().join("export");
    let out = output(clipline().args(["bench", "loader", "--data"]).arg(&data).arg("--export").arg(&export));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // One byte flipped inside one sample's frame.
    let damaged = dir.path().join("damaged");
    copy_demo(&damaged);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dataset = rt.block_on(Dataset::open(Store::open(damaged.to_str().unwrap()).unwrap())).unwrap();
    let victim = dataset.sample_ids().min().unwrap().to_string();
    let loc = dataset.location(&victim).unwrap().clone();
    let shard = damaged.join("shards").join(&loc.shard);
    let mut bytes = std::fs::read(&shard).unwrap();
    bytes[(loc.offset + loc.length / 2) as usize] ^= 0x10;
    std::fs::write(&shard, bytes).unwrap();
    std::fs::write(damaged.join("damaged.txt"), &victim).unwrap();

    // A killed run's part: in the table's directory, named by no commit marker.
    let leftover = dir.path().join("leftover");
    copy_demo(&leftover);
    let part = tree(&leftover.join("manifests/samples")).into_iter().next().unwrap();
    std::fs::copy(leftover.join("manifests/samples").join(&part), leftover.join("manifests/samples/part-killed-run.parquet")).unwrap();

    let out = run(
        Command::new(&python).arg(Path::new(REPO).join("tests/python/check_dataset.py")).args([&data, &export, &damaged, &leftover]),
        Duration::from_secs(120),
        "check_dataset.py",
    );
    let summary: Value = serde_json::from_slice(out.stdout.trim_ascii_end().rsplit(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(summary["samples"], 16, "{summary}");
    assert_eq!(summary["skipped"], victim.as_str());
}

/// Where a training job reads: the data's URI, the example's extra arguments, the environment.
struct Source {
    data: String,
    extra: Vec<String>,
    env: Vec<(&'static str, String)>,
}

impl Source {
    fn local(dir: &Path) -> Self {
        Self { data: dir.to_string_lossy().into(), extra: Vec::new(), env: Vec::new() }
    }

    /// `uri` on `server`, through a block cache at `cache`.
    fn s3(uri: String, server: &S3Server, cache: &Path) -> Self {
        Self { data: uri, extra: vec!["--cache-dir".into(), cache.to_string_lossy().into()], env: server.env() }
    }
}

/// `examples/train_pytorch.py` for `steps` steps (in all, a resumed run included) on `procs`
/// ranks (none: one plain process) with `workers` DataLoader workers each.
fn train_command(python: &Path, source: &Source, run_dir: &Path, procs: Option<usize>, workers: usize, steps: u64) -> Command {
    let mut cmd = match procs {
        Some(n) => {
            let mut c = Command::new(python.with_file_name("torchrun"));
            c.args(["--nproc-per-node", &n.to_string(), "--master-addr", "127.0.0.1", "--master-port", &free_port().to_string()]);
            c
        }
        None => Command::new(python),
    };
    cmd.arg(Path::new(REPO).join("examples/train_pytorch.py"))
        .args(["--data", &source.data, "--config", &format!("{REPO}/configs/train-tiny.toml"), "--workers", &workers.to_string(), "--steps", &steps.to_string(), "--checkpoint-every", "2", "--run-dir"])
        .arg(run_dir)
        .args(&source.extra)
        .envs(source.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("OMP_NUM_THREADS", "1");
    cmd
}

/// Run [`train_command`] to its end.
fn train(python: &Path, source: &Source, run_dir: &Path, procs: Option<usize>, workers: usize, steps: u64) {
    run(&mut train_command(python, source, run_dir, procs, workers, steps), Duration::from_secs(240), &format!("train_pytorch.py on {procs:?} ranks"));
}

/// Each global batch a run trained on, with its sample ids, from every rank's log; panics if a
/// global batch was trained twice.
fn trained(run_dir: &Path) -> BTreeMap<u64, Vec<String>> {
    let mut batches = BTreeMap::new();
    for entry in std::fs::read_dir(run_dir).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("batches-rank-")) {
        for line in std::fs::read_to_string(entry.path()).unwrap().lines() {
            let row: Value = serde_json::from_str(line).unwrap();
            let ids = row["sample_ids"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
            let global = row["global_batch"].as_u64().unwrap();
            assert!(batches.insert(global, ids).is_none(), "global batch {global} was trained twice");
        }
    }
    batches
}

/// 2 ranks × 2 workers for 2 steps, then 3 ranks × 1 worker to step 4, against one process for
/// 13 steps: every global batch the ranks trained on holds the single run's samples, and the
/// resumed job started where the first stopped.
fn resumed_job_trains_on_the_uninterrupted_batches(python: &Path, source: &Source) {
    let dir = tempfile::tempdir().unwrap();
    let single = dir.path().join("single");
    train(python, &Source::local(&demo().dir), &single, None, 0, 13);
    let single = trained(&single);
    assert_eq!(single.keys().copied().collect::<Vec<_>>(), (0..13).collect::<Vec<_>>(), "one process trains on every global batch in order");

    let job = dir.path().join("job");
    train(python, source, &job, Some(2), 2, 2);
    let first = trained(&job);
    assert_eq!(first.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2, 3], "2 ranks × 2 steps");
    train(python, source, &job, Some(3), 1, 4);
    let all = trained(&job);
    assert_eq!(all.len(), 4 + 6, "3 ranks × 2 more steps");
    for (global, ids) in &all {
        if let Some(expected) = single.get(global) {
            assert_eq!(ids, expected, "global batch {global}");
        }
    }
    // The resumed job went on from the first's state: nothing in between was trained twice or
    // skipped, except the few batches at an epoch's end that are fewer than the ranks.
    let resumed: Vec<u64> = all.keys().copied().filter(|g| !first.contains_key(g)).collect();
    assert!(resumed[0] >= 4 && resumed[0] <= 5, "the resumed job started at global batch {}", resumed[0]);
    assert!(all.keys().filter(|g| single.contains_key(g)).count() >= 8, "too few batches to compare: {:?}", all.keys().collect::<Vec<_>>());
}

#[test]
fn torchrun_resumes_on_another_number_of_ranks_and_workers_with_the_same_batches() {
    let Some(python) = python() else { return };
    resumed_job_trains_on_the_uninterrupted_batches(&python, &Source::local(&demo().dir));
}

/// The demo's manifests and shards in a fresh bucket prefix; its URI.
fn upload_demo(server: &S3Server, prefix: &str) -> String {
    let uri = format!("s3://{}/{prefix}", server.bucket);
    let store = Store::open_with(&uri, server.options()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for file in tree(&demo().dir).into_iter().filter(|f| f.starts_with("manifests/") || f.starts_with("shards/")) {
        rt.block_on(store.put_file(&file, &demo().dir.join(&file))).unwrap();
    }
    uri
}

#[test]
fn torchrun_resumes_from_s3_through_the_block_cache_with_the_same_batches() {
    let Some(python) = python() else { return };
    let Some(server) = S3Server::start() else { return };
    let uri = upload_demo(&server, "data");
    let cache = tempfile::tempdir().unwrap();
    resumed_job_trains_on_the_uninterrupted_batches(&python, &Source::s3(uri, &server, cache.path()));
    let blocks = tree(cache.path()).into_iter().filter(|f| f.ends_with(".block")).count();
    assert!(blocks > 0, "the block cache holds no blocks");
}

#[test]
fn a_rank_killed_with_sigkill_stops_the_job_and_leaves_nothing_that_blocks_the_restart() {
    let Some(python) = python() else { return };
    let Some(server) = S3Server::start() else { return };
    let uri = upload_demo(&server, "kill");
    let dir = tempfile::tempdir().unwrap();
    let (job, cache) = (dir.path().join("job"), dir.path().join("cache"));
    let source = Source::s3(uri, &server, &cache);
    let mut torchrun = train_command(&python, &source, &job, Some(2), 2, 100_000).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !job.join("checkpoints/step-4.pt").exists() {
        assert!(Instant::now() < deadline, "no checkpoint within 180 s");
        assert!(torchrun.try_wait().unwrap().is_none(), "the job ended before it was killed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let victim = std::fs::read_to_string(job.join("rank-1.pid")).unwrap();
    assert!(Command::new("kill").args(["-9", victim.trim()]).status().unwrap().success());
    let killed = Instant::now();
    let status = loop {
        if let Some(status) = torchrun.try_wait().unwrap() {
            break status;
        }
        if killed.elapsed() > Duration::from_secs(120) {
            let _ = torchrun.kill();
            panic!("the job still ran 120 s after rank 1 was killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success(), "the job exits non-zero when a rank dies");

    let latest = std::fs::read_dir(job.join("checkpoints"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().strip_prefix("step-")?.strip_suffix(".pt")?.parse::<u64>().ok())
        .max()
        .unwrap();
    train(&python, &source, &job, Some(2), 2, latest + 2);
    assert!(job.join(format!("checkpoints/step-{}.pt", latest + 2)).exists(), "the restarted job did not reach step {}", latest + 2);
    let restarted = std::fs::read_to_string(job.join("batches-rank-1.jsonl")).unwrap();
    assert!(restarted.contains(&format!("\"step\": {}, ", latest + 2)), "rank 1 did not train after the restart");
}
