//! SIGKILL at random moments of a partitioned run into S3: every partition worker and then
//! `clipline commit` are killed several times at random moments (fetch, decode, captioning,
//! embedding, clip and shard uploads, staging, publishing) and started again; the published
//! result equals an uninterrupted run of the same plan, every shard verifies, and no file that no
//! marker names is left behind. The moments fall inside each command's own running time,
//! measured on the uninterrupted run (see `interrupt`); the seed is printed and
//! `CLIPLINE_CRASH_SEED` replays one.

use std::collections::BTreeSet;
use std::process::Command;

use clipline_core::manifest::commits::markers;
use clipline_core::storage::Store;

use crate::interrupt::{kill_repeatedly, seeded, timed};
use crate::partitions::{assert_same_rows, demo_config, demo_inputs, succeeds};
use crate::support::{clipline, S3Server};

/// Kills per command before it is let finish.
const KILLS_PER_COMMAND: usize = 4;

/// Every object under the output but run records, the plan and the markers themselves.
fn data_files(store: &Store, runtime: &tokio::runtime::Runtime) -> BTreeSet<String> {
    let all = runtime.block_on(store.list("")).unwrap();
    all.into_iter().map(|e| e.key).filter(|k| !k.starts_with("manifests/runs/") && !k.starts_with("plan/") && !k.starts_with("manifests/_commits/")).collect()
}

#[test]
fn sigkill_at_random_moments_of_partitions_and_commit_leaves_exactly_an_uninterrupted_result() {
    let Some(s3) = S3Server::start() else { return };
    let mut rng = seeded("crash test");
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config(dir.path());
    // The same plan twice: one run through uninterrupted (the reference, and each command's
    // running time), one killed.
    let commands = |out: &str| -> Vec<Command> {
        succeeds(clipline().arg("plan").arg(&config).arg("-i").arg(demo_inputs()).args(["-o", out, "--partitions", "3"]).envs(s3.env()));
        let mut commands: Vec<Command> = ["0/3", "1/3", "2/3"]
            .into_iter()
            .map(|partition| {
                let mut worker = clipline();
                worker.arg("run").arg(&config).args(["-o", out, "--partition", partition]).envs(s3.env());
                worker
            })
            .collect();
        let mut commit = clipline();
        commit.args(["commit", "--output", out]).envs(s3.env());
        commands.push(commit);
        commands
    };
    let (reference, out) = (format!("s3://{}/uninterrupted", s3.bucket), format!("s3://{}/killed", s3.bucket));
    // Each command is timed right before its twin is killed, so both meet about the same load.
    let (mut measured, mut kills) = (Vec::new(), Vec::new());
    for (mut uninterrupted, mut cmd) in commands(&reference).into_iter().zip(commands(&out)) {
        measured.push(timed(&mut uninterrupted));
        kills.extend(kill_repeatedly(&mut cmd, &mut rng, *measured.last().unwrap(), KILLS_PER_COMMAND));
    }
    eprintln!("crash test: {} SIGKILLs at {kills:?}, commands running {measured:?} uninterrupted", kills.len());

    let open = |uri: &str| Store::open_with(uri, s3.options()).unwrap();
    assert_same_rows(&open(&out), &open(&reference));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(data_files(&open(&out), &runtime), data_files(&open(&reference), &runtime), "the same files, and nothing a marker does not name");
    let marked = runtime.block_on(markers(&open(&out))).unwrap();
    assert_eq!(marked.len(), 4, "each chunk published once");
    let verified = succeeds(clipline().args(["shards", "verify", &out]).envs(s3.env()));
    assert!(verified.contains("all good"), "{verified}");
}
