//! Partitioned runs: `clipline plan`, `clipline run --partition i/N` (given, or from a
//! scheduler's variables) and `clipline commit` end with the rows of a single run; commit refuses,
//! naming them, while partitions are missing or failed; two workers on one partition do the work
//! once.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::process::Command;

use clipline_core::manifest::commits::read_committed;
use clipline_core::manifest::{CaptionRow, ClipRow, SampleRow, ShardRow, ShotRow, Table, Timestamp, VideoRow};
use clipline_core::storage::Store;

use crate::support::{clipline, demo, output, tree, S3Server};

/// The demo's config with one video per chunk, so that four inputs make four chunks to deal,
/// and a short lease, so that a worker waiting for another polls every second.
pub fn demo_config(dir: &Path) -> PathBuf {
    let config = dir.join("demo.toml");
    let text = include_str!("../../configs/demo.toml").replace("commit_every = 2", "commit_every = 1\nlease_s = 4");
    std::fs::write(&config, text).unwrap();
    config
}

/// On `s3`'s bucket: a single run of the demo inputs into `single/` (the reference) and a plan
/// of them in 3 partitions into `planned/`; returns the config and both URIs.
pub fn reference_and_plan_on_s3(dir: &Path, s3: &S3Server) -> (PathBuf, String, String) {
    let config = demo_config(dir);
    let (single, planned) = (format!("s3://{}/single", s3.bucket), format!("s3://{}/planned", s3.bucket));
    succeeds(clipline().arg("run").arg(&config).arg("-i").arg(demo_inputs()).args(["-o", &single]).envs(s3.env()));
    succeeds(clipline().arg("plan").arg(&config).arg("-i").arg(demo_inputs()).args(["-o", &planned, "--partitions", "3"]).envs(s3.env()));
    (config, single, planned)
}

/// The demo's input videos (four, two of them the same bytes).
pub fn demo_inputs() -> PathBuf {
    demo().dir.join("inputs")
}

/// Committed rows of table `T` as sorted text, with the output root and (by `clear_time`) times
/// of day taken out: what must be equal between two outputs made from the same inputs.
fn normalised<T: Table + Debug>(store: &Store, clear_time: impl Fn(&mut T)) -> Vec<String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let rows = runtime.block_on(read_committed::<T>(store)).unwrap();
    let mut out: Vec<String> = rows
        .into_iter()
        .map(|mut row| {
            clear_time(&mut row);
            format!("{row:?}").replace(store.uri(), "OUT")
        })
        .collect();
    out.sort();
    out
}

/// Every table but `runs`, normalised (times of day and model latencies cleared).
pub fn all_rows(store: &Store) -> Vec<Vec<String>> {
    vec![
        normalised::<VideoRow>(store, |_| {}),
        normalised::<ShotRow>(store, |_| {}),
        normalised::<ClipRow>(store, |_| {}),
        normalised::<CaptionRow>(store, |r| {
            r.created_at = Timestamp(0);
            r.latency_ms = 0.0;
        }),
        normalised::<SampleRow>(store, |r| r.created_at = Timestamp(0)),
        normalised::<ShardRow>(store, |r| r.created_at = Timestamp(0)),
    ]
}

/// Assert two outputs hold the same committed rows, showing only the rows that differ.
pub fn assert_same_rows(ours: &Store, reference: &Store) {
    let (a, b) = (all_rows(ours), all_rows(reference));
    assert!(a.iter().all(|t| !t.is_empty()), "every table has rows");
    for (a, b) in a.iter().zip(b.iter()) {
        let only_ours: Vec<&String> = a.iter().filter(|r| !b.contains(r)).collect();
        let only_theirs: Vec<&String> = b.iter().filter(|r| !a.contains(r)).collect();
        assert!(a.len() == b.len() && only_ours.is_empty(), "rows differ from the reference:\nonly here: {only_ours:#?}\nonly there: {only_theirs:#?}");
    }
}

fn local(dir: &Path) -> Store {
    Store::open(dir.canonicalize().unwrap().to_str().unwrap()).unwrap()
}

/// The files a reader can see: everything but run records, plan and the hidden staging area.
fn visible_files(root: &Path) -> Vec<String> {
    tree(root).into_iter().filter(|p| !p.starts_with("manifests/runs/") && !p.starts_with(".staging/") && !p.starts_with("plan/") && !p.starts_with("manifests/_commits/")).collect()
}

/// Run a command that must succeed; returns its stdout.
pub fn succeeds(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(out.status.success(), "{:?} failed ({:?}): {}\n{}", cmd, out.status, String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn partition(config: &Path, out: &Path, which: &str) -> Command {
    let mut cmd = clipline();
    cmd.arg("run").arg(config).arg("--output").arg(out).args(["--partition", which]);
    cmd
}

#[test]
fn partitions_committed_together_equal_a_single_run_and_commit_waits_for_every_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let single = dir.path().join("single");
    succeeds(clipline().arg("run").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&single));

    let out = dir.path().join("partitioned");
    let planned = succeeds(clipline().arg("plan").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&out).args(["--partitions", "3"]));
    assert!(planned.contains("4 inputs") && planned.contains("4 chunks") && planned.contains("over 3 partitions"), "{planned}");
    // The demo's two copies of one video have the same size, so they share a partition.
    let work: Vec<clipline_core::manifest::plan::WorkRow> =
        clipline_core::manifest::decode(std::fs::read(out.join("plan/work.parquet")).unwrap().into(), "work list").unwrap();
    let partition_of = |name: &str| work.iter().find(|r| r.uri.ends_with(name)).unwrap().partition;
    assert_eq!(partition_of("/shapes.mp4"), partition_of("/shapes_copy.mp4"));

    // Partition 0 by flag, partition 2 as a Slurm array task would see it.
    succeeds(&mut partition(&config, &out, "0/3"));
    let mut slurm = clipline();
    slurm.arg("run").arg(&config).arg("--output").arg(&out).env("SLURM_ARRAY_TASK_ID", "2").env("SLURM_ARRAY_TASK_COUNT", "3");
    let staged = succeeds(&mut slurm);
    assert!(staged.contains("(partition 2/3)") && staged.contains("clipline commit"), "{staged}");

    // Partition 1 has not run: commit refuses, names it, and publishes nothing.
    let refused = output(clipline().arg("commit").arg("--output").arg(&out));
    let text = String::from_utf8_lossy(&refused.stdout);
    assert_eq!(refused.status.code(), Some(4), "{text}");
    assert!(text.contains("1 of 3 partitions are not finished") && text.contains("partition 1/3: missing"), "{text}");
    assert_eq!(published_markers(&out), 0, "nothing is visible before commit");
    let sql = output(clipline().args(["sql", "--data"]).arg(&out).args(["SELECT count(*) FROM videos"]));
    assert!(!sql.status.success(), "readers see no committed manifests yet");

    // A partition that fails is named with its error: no ffmpeg.
    let mut broken = partition(&config, &out, "1/3");
    broken.env("CLIPLINE_FFMPEG", dir.path().join("no-ffmpeg"));
    assert!(!output(&mut broken).status.success());
    let text = String::from_utf8_lossy(&output(clipline().arg("commit").arg("--output").arg(&out)).stdout).to_string();
    assert!(text.contains("partition 1/3: failed on") && text.contains("ffmpeg not found"), "{text}");

    // Two workers on partition 1 at once: one waits for the other's lease, then finds the work done.
    let mut first = partition(&config, &out, "1/3").stdout(std::process::Stdio::null()).spawn().unwrap();
    let second = succeeds(&mut partition(&config, &out, "1/3"));
    assert!(first.wait().unwrap().success());
    assert!(second.contains("(partition 1/3)"), "{second}");

    let committed = succeeds(clipline().arg("commit").arg("--output").arg(&out));
    assert!(committed.contains("3 partitions finished; 4 chunks published now") && committed.contains("3 ok") && committed.contains("1 duplicate"), "{committed}");
    assert_same_rows(&local(&out), &local(&single));
    assert_eq!(visible_files(&out), visible_files(&single), "the same files as a single run");
    assert!(!out.join("manifests/_partitions").exists(), "the staging directories are gone");

    // Committing again, or running the inputs again, does nothing twice.
    let again = succeeds(clipline().arg("commit").arg("--output").arg(&out));
    assert!(again.contains("0 chunks published now, 4 earlier"), "{again}");
    let rerun_partition = succeeds(&mut partition(&config, &out, "2/3"));
    assert!(rerun_partition.contains("0 processed"), "{rerun_partition}");
    let rerun = succeeds(clipline().arg("run").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&out));
    assert!(rerun.contains("4 already done, 0 processed"), "{rerun}");
    assert_same_rows(&local(&out), &local(&single));
}

/// Marker files (published chunks) in an output.
fn published_markers(out: &Path) -> usize {
    std::fs::read_dir(out.join("manifests/_commits")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_plain_run_into_an_output_with_partitions_in_progress_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    let out = dir.path().join("out");
    succeeds(clipline().arg("plan").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&out).args(["--partitions", "2"]));
    let mut k8s = clipline();
    k8s.arg("run").arg(&config).arg("--output").arg(&out).env("JOB_COMPLETION_INDEX", "1");
    assert!(succeeds(&mut k8s).contains("(partition 1/2)"));
    let plain = output(clipline().arg("run").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&out));
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(!plain.status.success() && stderr.contains("partitions of a plan in progress") && stderr.contains("clipline commit"), "{stderr}");
    let replan = output(clipline().arg("plan").arg(&config).arg("-i").arg(demo_inputs()).arg("-o").arg(&out).args(["--partitions", "3"]));
    let stderr = String::from_utf8_lossy(&replan.stderr);
    assert!(!replan.status.success() && stderr.contains("another plan whose partitions have started"), "{stderr}");
    let wrong = output(&mut partition(&config, &out, "0/3"));
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert!(!wrong.status.success() && stderr.contains("the plan has 2 partitions"), "{stderr}");
}
