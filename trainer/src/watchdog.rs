//! A watchdog thread: when a step or a wait for data runs past its limit it writes what the
//! run was doing to `watchdog.json` in the run directory and stderr, and exits the process
//! with status 70. One hung rank otherwise idles every GPU of the job (Hotshot wrote their own
//! monitor for exactly this). The data-parallel exchange reports through it too: a rank that
//! loses another stops the same way, naming the rank it lost. Rank 0 (and a single process)
//! writes `watchdog.json`; rank `r` writes `watchdog-rank-r.json`, so ranks sharing a run
//! directory do not overwrite each other.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clipline_shard::loader::Rank;

/// Exit status of a run the watchdog stopped.
pub const EXIT_STATUS: i32 = 70;

/// What the run is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for a batch.
    Data,
    /// Computing a step.
    Step,
    /// Saving, validating, or between phases: not limited.
    Other,
}

struct Shared {
    phase: Phase,
    since: Instant,
    step: u64,
    context: String,
}

/// The handle the training loop reports to.
#[derive(Clone)]
pub struct Watchdog {
    shared: Arc<Mutex<Shared>>,
    report: PathBuf,
    rank: Rank,
}

/// Write `report` to `path` and stderr, and exit with [`EXIT_STATUS`] at once: the step is
/// still running on other threads, and running the C++ static destructors under it (LibTorch's)
/// can crash the exit itself, so no exit handlers run (`_exit`).
#[allow(unsafe_code)]
fn stop(path: &Path, report: &serde_json::Value, summary: &str) -> ! {
    let _ = std::fs::write(path, serde_json::to_vec_pretty(report).unwrap_or_default());
    eprintln!("watchdog: {summary}; diagnostics in {}: {report}", path.display());
    // SAFETY: `_exit` ends the process without touching any state of this one; the report is
    // written and stderr is unbuffered.
    unsafe { libc::_exit(EXIT_STATUS) }
}

impl Watchdog {
    /// Start watching `rank` with the given limits, writing diagnostics into `run_dir`.
    pub fn start(step_limit: Duration, data_limit: Duration, run_dir: &Path, rank: Rank) -> Self {
        let report = run_dir.join(if rank.rank == 0 { "watchdog.json".to_string() } else { format!("watchdog-rank-{}.json", rank.rank) });
        let path = report.clone();
        let shared = Arc::new(Mutex::new(Shared { phase: Phase::Other, since: Instant::now(), step: 0, context: String::new() }));
        let watched = Arc::downgrade(&shared);
        let tick = (step_limit.min(data_limit) / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        std::thread::Builder::new()
            .name("clipline-watchdog".into())
            .spawn(move || loop {
                std::thread::sleep(tick);
                let Some(shared) = watched.upgrade() else { return };
                let s = shared.lock().expect("watchdog state");
                let limit = match s.phase {
                    Phase::Data => data_limit,
                    Phase::Step => step_limit,
                    Phase::Other => continue,
                };
                let elapsed = s.since.elapsed();
                if elapsed > limit {
                    let what = if s.phase == Phase::Data { "waiting for data" } else { "computing a step" };
                    let report = serde_json::json!({
                        "stopped": what, "step": s.step, "elapsed_s": elapsed.as_secs_f64(), "limit_s": limit.as_secs_f64(),
                        "context": s.context, "pid": std::process::id(), "rank": rank.rank, "world_size": rank.world_size,
                    });
                    stop(&path, &report, &format!("rank {} step {} has been {what} for {:.1} s, over its limit of {:.1} s", rank.rank, s.step, elapsed.as_secs_f64(), limit.as_secs_f64()));
                }
            })
            .expect("the watchdog thread starts");
        Self { shared, report, rank }
    }

    /// Stop the run because another rank failed: `blamed` names it (None: this rank's own
    /// exchange failed before any rank could be named).
    pub fn rank_failed(&self, blamed: Option<usize>, error: &dyn std::fmt::Display) -> ! {
        let step = self.shared.lock().map_or(0, |s| s.step);
        let report = serde_json::json!({
            "stopped": "a rank failed", "failed_rank": blamed, "error": error.to_string(), "step": step,
            "pid": std::process::id(), "rank": self.rank.rank, "world_size": self.rank.world_size,
        });
        let culprit = blamed.map_or_else(|| "another rank".to_string(), |r| format!("rank {r}"));
        stop(&self.report, &report, &format!("rank {} stops at step {step}: {culprit} failed: {error}", self.rank.rank))
    }

    /// The run enters `phase` at `step`; `context` says what else a diagnosis needs (loader totals).
    pub fn enter(&self, phase: Phase, step: u64, context: impl FnOnce() -> String) {
        let mut s = self.shared.lock().expect("watchdog state");
        s.phase = phase;
        s.since = Instant::now();
        s.step = step;
        if phase != Phase::Other {
            s.context = context();
        }
    }
}
