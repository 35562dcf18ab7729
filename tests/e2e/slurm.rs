//! The sbatch templates on a real single-node Slurm cluster: an array job
//! (`configs/slurm/ingest.sbatch`) ingests the demo videos in three partitions into the S3
//! server on 127.0.0.1, `clipline commit` publishes them, and the result equals a
//! single-machine run; a 2-task job (`configs/slurm/train.sbatch`) trains data-parallel. The
//! Kubernetes manifests are checked offline against the API schema.

use std::path::Path;
use std::time::Instant;

use clipline_core::storage::Store;
use clipline_testkit::Need;

use crate::partitions::{assert_same_rows, reference_and_plan_on_s3, succeeds};
use crate::support::{clipline, demo, free_port, output, S3Server, SlurmCluster};

#[test]
fn a_slurm_array_ingests_partitions_into_s3_that_commit_makes_equal_to_a_single_run() {
    let Some(cluster) = SlurmCluster::start(2) else { return };
    let Some(s3) = S3Server::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (config, single, planned) = reference_and_plan_on_s3(dir.path(), &s3);

    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/slurm/ingest.sbatch");
    let started = Instant::now();
    let job = output(
        cluster
            .command("timeout")
            .args(["600", "sbatch", "--wait", "--array=0-2", "--cpus-per-task=1", "--mem=300M", "--time=10"])
            .arg(format!("--output={}/job-%A_%a.log", cluster.dir().display()))
            .arg(&template)
            .envs(s3.env())
            .env("CLIPLINE", env!("CARGO_BIN_EXE_clipline"))
            .env("CLIPLINE_CONFIG", &config)
            .env("CLIPLINE_OUTPUT", &planned),
    );
    let logs: String = std::fs::read_dir(cluster.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("job-"))
        .map(|e| format!("{}:\n{}", e.file_name().to_string_lossy(), std::fs::read_to_string(e.path()).unwrap_or_default()))
        .collect();
    assert!(job.status.success(), "sbatch: {}\n{}\n{logs}", String::from_utf8_lossy(&job.stdout), String::from_utf8_lossy(&job.stderr));
    eprintln!("slurm: 3 partitions ingested by an array job in {:.1} s", started.elapsed().as_secs_f64());
    for partition in ["0/3", "1/3", "2/3"] {
        assert!(logs.contains(&format!("(partition {partition}) completed")), "every array task ran its partition: {logs}");
    }

    let committed = succeeds(clipline().args(["commit", "--output", &planned]).envs(s3.env()));
    assert!(committed.contains("3 partitions finished; 4 chunks published now"), "{committed}");
    let open = |uri: &str| Store::open_with(uri, s3.options()).unwrap();
    assert_same_rows(&open(&planned), &open(&single));
}

#[test]
fn a_two_task_slurm_job_trains_data_parallel() {
    let Some(cluster) = SlurmCluster::start(1) else { return };
    let run = tempfile::tempdir().unwrap();
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/slurm/train.sbatch");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/train-tiny.toml");
    let job = output(
        cluster
            .command("timeout")
            .args(["600", "sbatch", "--wait", "--nodes=1", "--ntasks=2", "--ntasks-per-node=2", "--cpus-per-task=1", "--mem=900M", "--time=10"])
            .arg(format!("--output={}/train-%j.log", cluster.dir().display()))
            .arg(&template)
            .env("CLIPLINE", env!("CARGO_BIN_EXE_clipline"))
            .env("CLIPLINE_TRAIN_CONFIG", &config)
            .env("CLIPLINE_DATA", &demo().dir)
            .env("CLIPLINE_RUN_DIR", run.path())
            .env("CLIPLINE_STEPS", "4")
            .env("RUST_LOG", "info")
            .env("MASTER_ADDR", "127.0.0.1")
            .env("MASTER_PORT", (free_port() - 1).to_string()),
    );
    let logs: String = std::fs::read_dir(cluster.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("train-"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(job.status.success(), "sbatch: {}\n{}\n{logs}", String::from_utf8_lossy(&job.stdout), String::from_utf8_lossy(&job.stderr));
    assert!(logs.contains("ranks met") && logs.contains("\"world_size\":2"), "both tasks joined one job: {logs}");
    assert!(run.path().join("checkpoints/step-000000004/model.safetensors").exists(), "rank 0 wrote the checkpoint: {logs}");
    assert_eq!(std::fs::read_to_string(run.path().join("metrics.jsonl")).unwrap().lines().count(), 4);
}

#[test]
fn the_kubernetes_manifests_validate_against_the_api_schema() {
    let venv = std::env::var("CLIPLINE_PYTHON").map(|p| Path::new(&p).with_file_name("kubernetes-validate"));
    let Some(validator) = venv.ok().filter(|p| p.exists()).or_else(|| Need::Slurm.missing("kubernetes-validate is not in the venv of CLIPLINE_PYTHON")) else {
        return;
    };
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/kubernetes");
    let out = output(std::process::Command::new(validator).args(["-k", "1.33", "--strict"]).arg(dir.join("ingest-job.yaml")).arg(dir.join("commit-job.yaml")).arg(dir.join("train-job.yaml")));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("passed").count(), 4, "every resource passes (train-job.yaml holds a Service and a Job): {text}");
}
