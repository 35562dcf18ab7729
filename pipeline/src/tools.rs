//! Finding ffmpeg and ffprobe, and running them under time limits.
//!
//! clipline uses the system's ffmpeg (Debian's `ffmpeg` package), never a downloaded one:
//! `CLIPLINE_FFMPEG` / `CLIPLINE_FFPROBE` override the search of `PATH`. Every process runs
//! under a [`Watchdog`] that kills it when it stalls, runs past its limit or the run is cancelled,
//! so one hanging input cannot stop a batch job; and on inputs (untrusted bytes), under a memory
//! limit set with util-linux's `prlimit` (the workspace forbids the unsafe code a `pre_exec`
//! setrlimit would need), so a hostile file cannot exhaust the machine's memory or dump core.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clipline_core::env;

/// The external programs clipline drives.
#[derive(Debug, Clone)]
pub struct Tools {
    /// Path of ffmpeg.
    pub ffmpeg: PathBuf,
    /// Path of ffprobe.
    pub ffprobe: PathBuf,
    /// `prlimit` and the data-segment limit in bytes that processes on inputs run under.
    memory_limit: Option<(PathBuf, u64)>,
}

/// A tool that could not be found, with the fix.
#[derive(Debug, thiserror::Error)]
#[error("{name} not found (looked at ${var} and PATH); install it with `apt-get install ffmpeg` or set {var}")]
pub struct ToolMissing {
    name: &'static str,
    var: &'static str,
}

impl Tools {
    /// Locate ffmpeg and ffprobe.
    ///
    /// # Errors
    /// When either is missing.
    pub fn locate() -> Result<Self, ToolMissing> {
        Ok(Self {
            ffmpeg: find("ffmpeg", env::CLIPLINE_FFMPEG)?,
            ffprobe: find("ffprobe", env::CLIPLINE_FFPROBE)?,
            memory_limit: None,
        })
    }

    /// Run processes on inputs with at most `mib` MiB of data memory each (0: no limit). Without
    /// `prlimit` on `PATH` the limit cannot be applied; that is logged once, here.
    pub fn with_memory_limit(mut self, mib: u64) -> Self {
        self.memory_limit = match (mib, find("prlimit", env::CLIPLINE_PRLIMIT)) {
            (0, _) => None,
            (_, Ok(prlimit)) => Some((prlimit, mib << 20)),
            (_, Err(_)) => {
                tracing::warn!(mib, "prlimit (util-linux) not found: ffmpeg runs without a memory limit");
                None
            }
        };
        self
    }

    /// A command running `program` on untrusted input: under the memory limit, without core
    /// dumps.
    pub fn untrusted(&self, program: &Path) -> Command {
        match &self.memory_limit {
            Some((prlimit, bytes)) => {
                let mut cmd = Command::new(prlimit);
                cmd.arg(format!("--data={bytes}")).arg("--core=0").arg("--").arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// The first line of `TOOL -version`.
    pub fn version(path: &Path) -> Option<String> {
        let out = Command::new(path).arg("-version").stdin(Stdio::null()).output().ok()?;
        String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_string)
    }
}

/// Whether a tool's error line says it could not get memory (or a thread): what a process
/// stopped by the memory limit reports.
pub fn ran_out_of_memory(message: &str) -> bool {
    ["Cannot allocate memory", "cannot allocate", "failed to map segment", "Resource temporarily unavailable", "Out of memory"].iter().any(|m| message.contains(m))
}

fn find(name: &'static str, var: &'static str) -> Result<PathBuf, ToolMissing> {
    if let Some(path) = env::path(var) {
        return if path.is_file() { Ok(path) } else { Err(ToolMissing { name, var }) };
    }
    env::raw("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or(ToolMissing { name, var })
}

/// Why a watched process was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stopped {
    /// It produced nothing for too long.
    #[error("made no progress for {0} s and was killed")]
    Stalled(u64),
    /// It ran past its hard limit.
    #[error("ran past its {0} s limit and was killed")]
    TimedOut(u64),
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// Time limits for one process.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Kill when nothing happened for this long.
    pub stall: Duration,
    /// Kill when running longer than this.
    pub total: Duration,
}

/// Kills a child process when it stalls, overruns or the run is cancelled.
///
/// The reader of the process calls [`Watchdog::alive`] whenever output arrives; dropping the
/// watchdog stops its thread.
pub struct Watchdog {
    start: Instant,
    last_activity_ms: Arc<AtomicU64>,
    finished: Arc<AtomicBool>,
    verdict: Arc<Mutex<Option<Stopped>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    /// Watch a process; `kill` is called at most once, from the watchdog's thread.
    pub fn start(limits: Limits, cancel: Arc<AtomicBool>, mut kill: impl FnMut() + Send + 'static) -> Self {
        let start = Instant::now();
        let last_activity_ms = Arc::new(AtomicU64::new(0));
        let finished = Arc::new(AtomicBool::new(false));
        let verdict = Arc::new(Mutex::new(None));
        let thread = {
            let (last, finished, verdict) = (last_activity_ms.clone(), finished.clone(), verdict.clone());
            std::thread::spawn(move || {
                while !finished.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(50));
                    let now = start.elapsed();
                    let idle = now.saturating_sub(Duration::from_millis(last.load(Ordering::Acquire)));
                    let reason = if cancel.load(Ordering::Acquire) {
                        Some(Stopped::Cancelled)
                    } else if now > limits.total {
                        Some(Stopped::TimedOut(limits.total.as_secs()))
                    } else if idle > limits.stall {
                        Some(Stopped::Stalled(limits.stall.as_secs()))
                    } else {
                        None
                    };
                    if let Some(reason) = reason {
                        *verdict.lock().expect("watchdog verdict lock") = Some(reason);
                        kill();
                        return;
                    }
                }
            })
        };
        Self { start, last_activity_ms, finished, verdict, thread: Some(thread) }
    }

    /// Record that the process made progress.
    pub fn alive(&self) {
        self.last_activity_ms.store(self.start.elapsed().as_millis() as u64, Ordering::Release);
    }

    /// Stop watching; returns why the process was killed, if it was.
    pub fn finish(mut self) -> Option<Stopped> {
        self.stop()
    }

    fn stop(&mut self) -> Option<Stopped> {
        self.finished.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.verdict.lock().expect("watchdog verdict lock").clone()
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Output of a finished process.
#[derive(Debug)]
pub struct Finished {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: Vec<u8>,
    /// Its standard error, lossily decoded.
    pub stderr: String,
}

/// Run a command to completion under [`Limits`]; stdout and stderr are collected.
///
/// # Errors
/// When it cannot be started, or the watchdog stopped it.
pub fn run_limited(mut cmd: Command, limits: Limits, cancel: Arc<AtomicBool>) -> Result<Finished, RunError> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let program = cmd.get_program().to_string_lossy().into_owned();
    let child = cmd.spawn().map_err(|e| RunError::Spawn(format!("cannot start {program}: {e}")))?;
    let child = Arc::new(Mutex::new(child));
    let (mut out, mut err) = {
        let mut c = child.lock().expect("child lock");
        (c.stdout.take().expect("piped stdout"), c.stderr.take().expect("piped stderr"))
    };
    let dog = {
        let child = child.clone();
        Watchdog::start(limits, cancel, move || {
            let _ = child.lock().expect("child lock").kill();
        })
    };
    let err_thread = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let mut stdout = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match out.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                stdout.extend_from_slice(&buf[..n]);
                dog.alive();
            }
        }
    }
    let stderr = String::from_utf8_lossy(&err_thread.join().unwrap_or_default()).into_owned();
    let status = loop {
        if let Some(status) = child.lock().expect("child lock").try_wait().map_err(|e| RunError::Spawn(e.to_string()))? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(stopped) = dog.finish() {
        return Err(RunError::Stopped(stopped));
    }
    Ok(Finished { success: status.success(), stdout, stderr })
}

/// A process that could not be run to completion.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// It could not be started.
    #[error("{0}")]
    Spawn(String),
    /// The watchdog stopped it.
    #[error("{0}")]
    Stopped(Stopped),
}

/// The last meaningful line of an ffmpeg/ffprobe error output, for messages.
pub fn last_error_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .unwrap_or("no error output")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hanging_process_is_killed_as_stalled() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let limits = Limits { stall: Duration::from_millis(300), total: Duration::from_secs(20) };
        let start = Instant::now();
        let err = run_limited(cmd, limits, Arc::new(AtomicBool::new(false))).unwrap_err();
        assert!(matches!(err, RunError::Stopped(Stopped::Stalled(_))), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn cancellation_kills_the_process() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let cancel = Arc::new(AtomicBool::new(true));
        let limits = Limits { stall: Duration::from_secs(20), total: Duration::from_secs(20) };
        let err = run_limited(cmd, limits, cancel).unwrap_err();
        assert!(matches!(err, RunError::Stopped(Stopped::Cancelled)), "{err}");
    }

    #[test]
    fn output_of_a_quick_process_is_collected() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo out; echo err >&2"]);
        let limits = Limits { stall: Duration::from_secs(5), total: Duration::from_secs(5) };
        let done = run_limited(cmd, limits, Arc::new(AtomicBool::new(false))).unwrap();
        assert!(done.success);
        assert_eq!(done.stdout, b"out\n");
        assert_eq!(last_error_line(&done.stderr), "err");
    }
}
