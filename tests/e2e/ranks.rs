//! Data-parallel `clipline train` and its weights in PyTorch: 2 ranks log the loss curve of 1
//! rank accumulating the same global batches; a job stopped on 2 ranks resumes on 3 at the same
//! step and global batch; a rank killed with SIGKILL stops the others, each naming it; torchrun
//! starts the ranks; and the checkpoint's `model.safetensors` gives the PyTorch twin the same
//! outputs as clipline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clipline_core::storage::Store;
use clipline_shard::loader::{DataConfig, LoaderState, Plan};
use clipline_shard::Dataset;
use clipline_testkit::reference_python;
use serde_json::Value;

use crate::support::{clipline, demo, free_port, output};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../configs/train-tiny.toml");

/// The tiny config with `replacements` applied, written into `dir`.
fn config(dir: &Path, name: &str, replacements: &[(&str, &str)]) -> PathBuf {
    let mut text = std::fs::read_to_string(TINY).unwrap();
    for (from, to) in replacements {
        assert!(text.contains(from), "the tiny config has no {from:?}");
        text = text.replace(from, to);
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// `ranks` processes of `clipline train`, as torchrun would start them, with their ranks.
fn start_ranks(config: &Path, run_dir: &Path, ranks: usize, steps: u64) -> Vec<(usize, Child)> {
    // The ranks meet on MASTER_PORT + 1.
    let port = free_port() - 1;
    (0..ranks)
        .map(|rank| {
            let child = clipline()
                .args(["train"])
                .arg(config)
                .arg("--data")
                .arg(&demo().dir)
                .arg("--run-dir")
                .arg(run_dir)
                .args(["--steps", &steps.to_string()])
                .envs([("RANK", rank.to_string()), ("WORLD_SIZE", ranks.to_string()), ("LOCAL_RANK", rank.to_string()), ("MASTER_ADDR", "127.0.0.1".into()), ("MASTER_PORT", port.to_string())])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (rank, child)
        })
        .collect()
}

/// Wait for every rank, within `limit`; their exit codes.
fn wait_all(children: Vec<(usize, Child)>, limit: Duration) -> Vec<Option<i32>> {
    let deadline = Instant::now() + limit;
    children
        .into_iter()
        .map(|(rank, mut child)| loop {
            if let Some(status) = child.try_wait().unwrap() {
                if !status.success() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    eprintln!("rank {rank} exited with {status}: {err}");
                }
                break status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("rank {rank} still ran after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        })
        .collect()
}

fn metrics(run_dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn column(lines: &[Value], key: &str) -> Vec<f64> {
    lines.iter().map(|l| l[key].as_f64().unwrap()).collect()
}

fn newest_state(run_dir: &Path) -> Value {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(run_dir.join("checkpoints")).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("state.json").exists()).collect();
    dirs.sort();
    serde_json::from_slice(&std::fs::read(dirs.last().unwrap().join("state.json")).unwrap()).unwrap()
}

/// Relative difference within f32 rounding of the summed gradients and losses.
const TOLERANCE: f64 = 1e-5;

#[test]
fn two_ranks_train_the_curve_of_one_rank_accumulating_their_batches_and_resume_on_three() {
    let dir = tempfile::tempdir().unwrap();
    let single_config = config(dir.path(), "accumulate.toml", &[("grad_accum = 1", "grad_accum = 2")]);
    let single = dir.path().join("single");
    let out = output(clipline().args(["train"]).arg(&single_config).arg("--data").arg(&demo().dir).arg("--run-dir").arg(&single).args(["--steps", "8"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let ranks_config = config(dir.path(), "ranks.toml", &[]);
    let two = dir.path().join("two");
    assert_eq!(wait_all(start_ranks(&ranks_config, &two, 2, 8), Duration::from_secs(300)), vec![Some(0), Some(0)]);
    let (a, b) = (metrics(&single), metrics(&two));
    assert_eq!(a.len(), 8);
    assert_eq!(b.len(), 8, "rank 0 alone writes the metrics");
    for key in ["loss", "grad_norm", "val_loss"] {
        let (x, y) = (a.iter().filter_map(|l| l[key].as_f64()).collect::<Vec<_>>(), b.iter().filter_map(|l| l[key].as_f64()).collect::<Vec<_>>());
        assert_eq!(x.len(), y.len(), "{key}");
        let mut largest = 0f64;
        for (step, (x, y)) in x.iter().zip(&y).enumerate() {
            let relative = (x - y).abs() / x.abs().max(1e-3);
            assert!(relative <= TOLERANCE, "{key} at step {}: 1 rank {x}, 2 ranks {y}", step + 1);
            largest = largest.max(relative);
        }
        eprintln!("{key}: 1 rank (grad_accum 2) and 2 ranks differ by {largest:.1e} at most (relative)");
    }
    assert!(!two.join("watchdog.json").exists());

    // Stopped on 2 ranks at step 4, resumed on 3 to step 8: steps 5..8 follow, and the loader
    // stands where 4 steps of 2 and 4 steps of 3 global batches leave it.
    let moved = dir.path().join("moved");
    assert_eq!(wait_all(start_ranks(&ranks_config, &moved, 2, 4), Duration::from_secs(300)), vec![Some(0), Some(0)]);
    assert_eq!(column(&metrics(&moved), "loss"), column(&b, "loss")[..4].to_vec(), "the first 4 steps are the 2-rank run's");
    assert_eq!(wait_all(start_ranks(&ranks_config, &moved, 3, 8), Duration::from_secs(300)), vec![Some(0), Some(0), Some(0)]);
    let lines = metrics(&moved);
    assert_eq!(lines.iter().map(|l| l["step"].as_u64().unwrap()).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dataset = rt.block_on(Dataset::open(Store::open(demo().dir.to_str().unwrap()).unwrap())).unwrap();
    let data: DataConfig = toml::from_str::<toml::Value>(&std::fs::read_to_string(TINY).unwrap()).unwrap()["data"].clone().try_into().unwrap();
    let plan = Plan::new(data.seed, data.select(dataset.rows()).train, &data.batch_size);
    let expected = serde_json::to_value(LoaderState::at(&plan, 4 * 2 + 4 * 3)).unwrap();
    assert_eq!(newest_state(&moved)["loader"], expected, "the loader resumed at global batch 8 and took 3 per step");
}

#[test]
fn a_rank_killed_with_sigkill_stops_the_others_within_the_limit_each_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path(), "long.toml", &[("step_timeout_s = 300", "step_timeout_s = 60"), ("steps = 60", "steps = 100000")]);
    let run = dir.path().join("run");
    let mut children = start_ranks(&config, &run, 3, 100_000);
    let deadline = Instant::now() + Duration::from_secs(120);
    while metrics(&run).len() < 2 {
        assert!(Instant::now() < deadline, "no progress within 120 s");
        assert!(children.iter_mut().all(|(_, c)| c.try_wait().unwrap().is_none()), "a rank ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, mut victim) = children.remove(1);
    victim.kill().unwrap();
    victim.wait().unwrap();
    let killed = Instant::now();
    let codes = wait_all(children, Duration::from_secs(60));
    eprintln!("the survivors stopped {:.1} s after rank 1 was killed", killed.elapsed().as_secs_f64());
    assert_eq!(codes, vec![Some(70), Some(70)], "the survivors exit with the watchdog's status");
    for file in ["watchdog.json", "watchdog-rank-2.json"] {
        let report: Value = serde_json::from_slice(&std::fs::read(run.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))).unwrap();
        assert_eq!(report["failed_rank"], 1, "{file}: {report}");
        assert!(report["error"].as_str().unwrap().contains("rank 1"), "{file}: {report}");
    }
}

#[test]
fn checkpoint_weights_give_the_pytorch_twin_the_same_outputs_and_pytorch_weights_start_a_run() {
    let Some(python) = reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = output(clipline().args(["train", TINY, "--data"]).arg(&demo().dir).arg("--run-dir").arg(&run).args(["--steps", "3"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let weights = run.join("checkpoints/step-000000003/model.safetensors");
    assert!(weights.exists() && run.join("checkpoints/step-000000003/ema.safetensors").exists());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/python/check_twin.py");
    let out = output(Command::new(&python).arg(script).arg(env!("CARGO_BIN_EXE_clipline")).arg(TINY).arg(&weights).arg(dir.path()));
    assert!(out.status.success(), "check_twin.py: {}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("twin: {}", String::from_utf8_lossy(&out.stdout).trim());

    // Weights written by PyTorch start a run.
    let from_torch = config(dir.path(), "from-torch.toml", &[("[train]\n", &format!("[train]\ninit_from = \"{}\"\n", dir.path().join("torch.safetensors").display()))]);
    let out = output(clipline().args(["train"]).arg(&from_torch).arg("--data").arg(&demo().dir).arg("--run-dir").arg(dir.path().join("second")).args(["--steps", "1"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let broken = config(dir.path(), "broken.toml", &[("[train]\n", &format!("[train]\ninit_from = \"{}\"\n", dir.path().join("nothing.safetensors").display()))]);
    let out = output(clipline().args(["train"]).arg(&broken).arg("--data").arg(&demo().dir).arg("--run-dir").arg(dir.path().join("third")).args(["--steps", "1"]));
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("nothing.safetensors"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn torchrun_starts_clipline_train_data_parallel() {
    let Some(python) = reference_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let out = output(
        Command::new(python.with_file_name("torchrun"))
            .args(["--no-python", "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", &(free_port() - 1).to_string()])
            .args([env!("CARGO_BIN_EXE_clipline"), "--quiet", "train", TINY, "--data"])
            .arg(&demo().dir)
            .arg("--run-dir")
            .arg(&run)
            .args(["--steps", "2"])
            .env("OMP_NUM_THREADS", "1")
            .env("RUST_LOG", "info"),
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("world_size=2"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(metrics(&run).len(), 2);
}
