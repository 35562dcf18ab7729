//! Interrupting a command at random moments that fall inside its own running time.
//!
//! Fixed delays test little on a fast machine (the command is done before the kill comes) and
//! can starve a slow one of kills, so the tests that kill commands draw their moments from how
//! long the same work took, uninterrupted, on this machine a moment before ([`timed`]). The
//! moments of one command add up to at most [`SHARE`] of that time: a resumed run never has less
//! work left than an uninterrupted one minus the time already spent, so each kill falls while the
//! command is still working unless the machine speeds up by more than 1 / (1 - SHARE) between
//! the measurement and the kills. The seed is printed and `CLIPLINE_CRASH_SEED` replays it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clipline_core::rng::SplitMix64;

use crate::partitions::succeeds;

/// The most of the measured running time that one command's kills may use up together.
pub const SHARE: f64 = 0.6;

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

/// `count` moments, each between 10% and 100% of an equal share of `SHARE × measured`.
pub fn moments(rng: &mut SplitMix64, measured: Duration, count: usize) -> Vec<Duration> {
    let share = measured.mul_f64(SHARE / count as f64);
    (0..count).map(|_| share.mul_f64(0.1 + 0.9 * rng.next_f64())).collect()
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
/// first moment comes within `SHARE / count` of the measured time, so a command that was never
/// killed ran several times faster than it had a moment before: that fails, naming the times.
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
    for count in [1, 4, 8] {
        let measured = Duration::from_millis(1000);
        let planned = moments(&mut rng, measured, count);
        assert_eq!(planned.len(), count);
        assert!(planned.iter().sum::<Duration>() <= measured.mul_f64(SHARE));
        assert!(planned.iter().all(|d| *d >= measured.mul_f64(SHARE * 0.1 / count as f64)));
    }
}
