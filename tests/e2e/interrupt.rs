//! Interrupting a command at random moments that fall inside its own running time.
//!
//! Fixed delays test little on a fast machine (the command is done before the kill comes) and
//! can starve a slow one of kills, so the tests that kill commands draw their moments from how
//! long the same work took, uninterrupted, on this machine a moment before ([`timed`]). Each
//! moment is drawn anywhere between 5% and [`SHARE`] of that time, so kills land early and late in
//! the work (a commit's publishing as well as its start-up). The first attempt starts from
//! nothing and its moment is drawn before [`FIRST_SHARE`] of that time, so its kill falls while
//! the command is still working unless the machine sped up by more than 1 / FIRST_SHARE since the
//! measurement (the suite runs tests side by side, so the load a command meets changes between
//! its measurement and its kills: a 190 ms commit measured under load once ran in under 110 ms);
//! later attempts resume with less work left and may finish first, which is counted, not failed.
//! The seed is printed and `CLIPLINE_CRASH_SEED` replays it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clipline_core::rng::SplitMix64;

use crate::partitions::succeeds;

/// The latest moment to kill at, as a share of the measured running time.
pub const SHARE: f64 = 0.6;
/// The latest moment of the first kill, which must land while the command works.
pub const FIRST_SHARE: f64 = 0.3;

/// A random stream for `test`'s kill moments: seeded from `CLIPLINE_CRASH_SEED`, or from the
/// clock (printed, so a failure can be replayed).
pub fn seeded(test: &str) -> SplitMix64 {
    let seed = std::env::var("CLIPLINE_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("{test} seed: {seed} (CLIPLINE_CRASH_SEED={seed} replays it)");
    SplitMix64::new(seed)
}

/// Run `cmd` to success and return how long it took.
pub fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    succeeds(cmd);
    started.elapsed()
}

/// `count` moments, the first uniform between 5% and [`FIRST_SHARE`] of `measured`, the others
/// between 5% and [`SHARE`].
pub fn moments(rng: &mut SplitMix64, measured: Duration, count: usize) -> Vec<Duration> {
    (0..count)
        .map(|i| {
            let latest = if i == 0 { FIRST_SHARE } else { SHARE };
            measured.mul_f64(0.05 + (latest - 0.05) * rng.next_f64())
        })
        .collect()
}

/// Start `cmd`, SIGKILL it after `delay` unless it has finished; returns whether it was killed.
pub fn kill_after(cmd: &mut Command, delay: Duration) -> bool {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap();
    }
    child.wait().unwrap();
    killed
}

/// Kill `cmd` at each of `count` moments drawn for its `measured` running time (a fresh start
/// each time), then let it finish. Returns the delays of the runs that were killed mid-way. The
/// first attempt does all the work, so a command never killed ran more than 1 / FIRST_SHARE times
/// faster than it had a moment before: that fails, naming the times.
pub fn kill_repeatedly(cmd: &mut Command, rng: &mut SplitMix64, measured: Duration, count: usize) -> Vec<Duration> {
    let planned = moments(rng, measured, count);
    let killed: Vec<Duration> = planned.iter().copied().filter(|&delay| kill_after(cmd, delay)).collect();
    assert!(!killed.is_empty(), "no run was still going at {planned:?}, though an uninterrupted one took {measured:?}: {cmd:?}");
    succeeds(cmd);
    killed
}

#[test]
fn moments_fall_inside_the_share_of_the_measured_time() {
    let mut rng = SplitMix64::new(7);
    let measured = Duration::from_millis(1000);
    let planned = moments(&mut rng, measured, 64);
    assert!(planned.iter().all(|d| *d >= measured.mul_f64(0.05) && *d <= measured.mul_f64(SHARE)), "{planned:?}");
    assert!(planned.iter().any(|d| *d > measured.mul_f64(SHARE * 0.75)), "late moments too: {planned:?}");
    assert!(planned[0] <= measured.mul_f64(FIRST_SHARE), "the first kill comes early: {planned:?}");
}
