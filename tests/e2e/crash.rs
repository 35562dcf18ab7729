//! SIGKILL at random moments of a partitioned run into S3: every partition worker and then
//! `clipline commit` are killed several times at random delays (fetch, decode, captioning,
//! embedding, clip and shard uploads, staging, publishing) and started again; the published
//! result equals an uninterrupted run, every shard verifies, and no file that no marker names is
//! left behind. The seed is printed; `CLIPLINE_CRASH_SEED` replays one.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use clipline_core::manifest::commits::markers;
use clipline_core::rng::SplitMix64;
use clipline_core::storage::Store;

use crate::partitions::{assert_same_rows, reference_and_plan_on_s3, succeeds};
use crate::support::{clipline, S3Server};

/// Kills per command before it is let finish.
const KILLS_PER_COMMAND: usize = 4;

/// Start `cmd`, SIGKILL it after `delay` unless it has finished; returns whether it was killed.
fn kill_after(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    killed
}

/// Every object under the output but run records, the plan and the markers themselves.
fn data_files(store: &Store, runtime: &tokio::runtime::Runtime) -> BTreeSet<String> {
    let all = runtime.block_on(store.list("")).unwrap();
    all.into_iter().map(|e| e.key).filter(|k| !k.starts_with("manifests/runs/") && !k.starts_with("plan/") && !k.starts_with("manifests/_commits/")).collect()
}

#[test]
fn sigkill_at_random_moments_of_partitions_and_commit_leaves_exactly_an_uninterrupted_result() {
    let Some(s3) = S3Server::start() else { return };
    let seed = std::env::var("CLIPLINE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash test seed: {seed} (CLIPLINE_CRASH_SEED={seed} replays it)");
    let mut rng = SplitMix64::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let (config, reference, out) = reference_and_plan_on_s3(dir.path(), &s3);

    let worker = |partition: &str| {
        let mut cmd = clipline();
        cmd.arg("run").arg(&config).args(["-o", &out, "--partition", partition]).envs(s3.env());
        cmd
    };
    let mut commit = clipline();
    commit.args(["commit", "--output", &out]).envs(s3.env());
    let mut kills = Vec::new();
    for (mut cmd, longest_ms) in [(worker("0/3"), 4000), (worker("1/3"), 3000), (worker("2/3"), 4000), (commit, 400)] {
        for _ in 0..KILLS_PER_COMMAND {
            let delay = 30 + rng.next_u64() % longest_ms;
            if kill_after(&mut cmd, Duration::from_millis(delay)) {
                kills.push(delay);
            }
        }
        succeeds(&mut cmd);
    }
    eprintln!("crash test: {} SIGKILLs at {kills:?} ms", kills.len());
    assert!(kills.len() >= 8, "only {} of the runs were killed mid-way; the test did not test much", kills.len());

    let open = |uri: &str| Store::open_with(uri, s3.options()).unwrap();
    assert_same_rows(&open(&out), &open(&reference));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(data_files(&open(&out), &runtime), data_files(&open(&reference), &runtime), "the same files, and nothing a marker does not name");
    let marked = runtime.block_on(markers(&open(&out))).unwrap();
    assert_eq!(marked.len(), 4, "each chunk published once");
    let verified = succeeds(clipline().args(["shards", "verify", &out]).envs(s3.env()));
    assert!(verified.contains("all good"), "{verified}");
}
