//! A watchdog thread: when a step or a wait for data runs past its limit it writes what the
//! run was doing to `watchdog.json` in the run directory and stderr, and exits the process
//! with status 70. One hung rank otherwise idles every GPU of the job (Hotshot wrote their own
//! monitor for exactly this).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
}

impl Watchdog {
    /// Start watching with the given limits, writing diagnostics into `run_dir`.
    pub fn start(step_limit: Duration, data_limit: Duration, run_dir: PathBuf) -> Self {
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
                        "context": s.context, "pid": std::process::id(),
                    });
                    let path = run_dir.join("watchdog.json");
                    let _ = std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap_or_default());
                    eprintln!("watchdog: step {} has been {what} for {:.1} s, over its limit of {:.1} s; diagnostics in {}: {report}", s.step, elapsed.as_secs_f64(), limit.as_secs_f64(), path.display());
                    std::process::exit(EXIT_STATUS);
                }
            })
            .expect("the watchdog thread starts");
        Self { shared }
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
