//! The stage runtime: named stages with their own concurrency limit and progress bar, and the
//! run-wide cancellation flag.
//!
//! A video moves through the stages in order; a stage admits at most its limit at once, so a
//! slow stage makes the videos before it wait (backpressure) instead of piling work up in memory.
//! The dispatcher keeps a bounded number of videos in flight and receives their results in input
//! order, so memory stays flat however many inputs there are.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::Semaphore;

/// A progress bar in the stages' style (name, bar, count, rate, ETA), added to `progress`.
pub fn stage_bar(progress: &MultiProgress, name: &str, unit: &str) -> ProgressBar {
    let style = ProgressStyle::with_template(&format!(
        "{{prefix:>8}} [{{bar:28.cyan/blue}}] {{pos:>6}}/{{len:6}} {unit} {{per_sec:>12}} eta {{eta:>4}} {{msg}}"
    ))
    .expect("valid progress template")
    .progress_chars("=> ");
    let bar = progress.add(ProgressBar::new(0).with_style(style).with_prefix(name.to_string()));
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

/// One stage of the dataflow.
pub struct Stage {
    permits: Semaphore,
    /// The stage's progress bar (position = items done).
    pub bar: ProgressBar,
}

impl Stage {
    fn new(progress: &MultiProgress, name: &str, limit: usize, unit: &str) -> Self {
        Self { permits: Semaphore::new(limit.max(1)), bar: stage_bar(progress, name, unit) }
    }

    /// Run `work` once a place in the stage is free; counts one item done.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.run_items(1, work).await
    }

    /// Run `work`, which handles `items` items, once a place in the stage is free.
    pub async fn run_items<T>(&self, items: u64, work: impl Future<Output = T>) -> T {
        let _permit = self.permits.acquire().await.expect("stage semaphore is never closed");
        let out = work.await;
        self.bar.inc(items);
        out
    }

    /// Run blocking `work` (a decode, an ffmpeg call) on the blocking pool once a place is free.
    pub async fn run_blocking<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> T {
        self.run_blocking_items(1, work).await
    }

    /// Run blocking `work` that handles `items` items.
    pub async fn run_blocking_items<T: Send + 'static>(&self, items: u64, work: impl FnOnce() -> T + Send + 'static) -> T {
        self.run_items(items, async { tokio::task::spawn_blocking(work).await.expect("blocking stage task panicked") }).await
    }

    /// Count items that will not pass through this stage.
    pub fn skip(&self, items: u64) {
        self.bar.inc(items);
    }
}

/// The ingest stages.
pub struct Stages {
    /// Reading or downloading inputs and hashing them.
    pub fetch: Stage,
    /// ffprobe.
    pub probe: Stage,
    /// The analysis decode with shot detection and scores.
    pub decode: Stage,
    /// Clip files and middle frames (counted in clips).
    pub extract: Stage,
    /// Captions (counted in clips); the caption worker moves its bar.
    pub caption: Stage,
    /// Samples (counted in samples); the embed worker moves its bar.
    pub embed: Stage,
    /// Manifest commits (counted in videos).
    pub commit: Stage,
    progress: MultiProgress,
}

/// Concurrency limits of the stages.
#[derive(Debug, Clone, Copy)]
pub struct StageLimits {
    /// Fetches at once.
    pub fetch: usize,
    /// Decodes at once.
    pub decode: usize,
    /// ffmpeg extraction processes at once.
    pub extract: usize,
}

impl Stages {
    /// Stages with bars on `progress`, for `videos` inputs.
    pub fn new(progress: &MultiProgress, limits: StageLimits, videos: u64) -> Self {
        let stages = Self {
            fetch: Stage::new(progress, "fetch", limits.fetch, "videos"),
            probe: Stage::new(progress, "probe", limits.decode, "videos"),
            decode: Stage::new(progress, "decode", limits.decode, "videos"),
            extract: Stage::new(progress, "extract", limits.extract, "clips "),
            caption: Stage::new(progress, "caption", 1, "clips "),
            embed: Stage::new(progress, "embed", 1, "samples"),
            commit: Stage::new(progress, "commit", 1, "videos"),
            progress: progress.clone(),
        };
        for bar in [&stages.fetch.bar, &stages.probe.bar, &stages.decode.bar, &stages.commit.bar] {
            bar.set_length(videos);
        }
        stages
    }

    /// Videos that can be in flight at once without starving any stage.
    pub fn in_flight(limits: StageLimits) -> usize {
        2 * (limits.fetch + limits.decode + limits.extract)
    }

    /// Stop the bars, leaving their last state on screen.
    pub fn finish(&self) {
        for bar in [&self.fetch.bar, &self.probe.bar, &self.decode.bar, &self.extract.bar, &self.caption.bar, &self.embed.bar, &self.commit.bar] {
            bar.abandon();
        }
        let _ = self.progress.clear();
    }
}

/// A progress display that draws only on a terminal (logs and CI stay clean).
pub fn progress_display(quiet: bool) -> MultiProgress {
    if quiet {
        MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
    } else {
        MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4))
    }
}

/// The run-wide cancellation flag, set on Ctrl-C; ffmpeg watchdogs read it.
#[derive(Clone, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    /// Request cancellation.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether cancellation was requested.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    /// The flag, for blocking code.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}
