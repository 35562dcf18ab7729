//! The stage runtime: named stages with their own concurrency limit, reporting their progress to
//! an [`Observer`] (the CLI's draws bars, [`Bars`]), and the run-wide cancellation flag.
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

/// The stages of an ingest run, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageName {
    /// Reading or downloading inputs and hashing them (counted in videos).
    Fetch,
    /// ffprobe (videos).
    Probe,
    /// The analysis decode with shot detection and scores (videos).
    Decode,
    /// TransNetV2 on the decoded frames, when `detect.method` runs it (windows of 100 frames).
    Detect,
    /// Clip files, middle frames, caption and bucketed frames (clips).
    Extract,
    /// Captions (clips).
    Caption,
    /// Latents and text embeddings (samples).
    Embed,
    /// Manifest commits (videos).
    Commit,
}

impl StageName {
    /// Every stage, in dataflow order.
    pub const ALL: [StageName; 8] = [StageName::Fetch, StageName::Probe, StageName::Decode, StageName::Detect, StageName::Extract, StageName::Caption, StageName::Embed, StageName::Commit];

    /// Its name on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            StageName::Fetch => "fetch",
            StageName::Probe => "probe",
            StageName::Decode => "decode",
            StageName::Detect => "detect",
            StageName::Extract => "extract",
            StageName::Caption => "caption",
            StageName::Embed => "embed",
            StageName::Commit => "commit",
        }
    }

    /// What it counts.
    pub fn unit(self) -> &'static str {
        match self {
            StageName::Extract | StageName::Caption => "clips ",
            StageName::Embed => "samples",
            StageName::Detect => "windows",
            _ => "videos",
        }
    }
}

/// Whoever watches a run: the stages say what they expect and what they did, and know nothing
/// of how it is shown. The CLI draws bars ([`Bars`]); a test can count.
pub trait Observer: Send + Sync {
    /// `items` more items are expected at `stage`.
    fn expect(&self, stage: StageName, items: u64);
    /// `items` items passed `stage` (done, or skipped because they will not reach it).
    fn done(&self, stage: StageName, items: u64);
    /// How `stage` is doing, in a few words ("1234 frames", "12 MiB queued").
    fn note(&self, stage: StageName, note: String);
    /// The run is over.
    fn finish(&self);
}

/// A stage's line to the run's observer.
#[derive(Clone)]
pub struct Progress {
    stage: StageName,
    observer: Arc<dyn Observer>,
}

impl Progress {
    /// `stage`'s line to `observer`.
    pub fn new(stage: StageName, observer: Arc<dyn Observer>) -> Self {
        Self { stage, observer }
    }

    /// `items` more items are expected.
    pub fn expect(&self, items: u64) {
        self.observer.expect(self.stage, items);
    }

    /// `items` items passed the stage.
    pub fn done(&self, items: u64) {
        self.observer.done(self.stage, items);
    }

    /// How the stage is doing.
    pub fn note(&self, note: String) {
        self.observer.note(self.stage, note);
    }
}

/// One stage of the dataflow.
pub struct Stage {
    permits: Semaphore,
    /// What the stage tells the run's observer.
    pub progress: Progress,
}

impl Stage {
    fn new(name: StageName, limit: usize, observer: &Arc<dyn Observer>) -> Self {
        Self { permits: Semaphore::new(limit.max(1)), progress: Progress::new(name, observer.clone()) }
    }

    /// Run `work` once a place in the stage is free; counts one item done.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> T {
        self.run_items(1, work).await
    }

    /// Run `work`, which handles `items` items, once a place in the stage is free.
    pub async fn run_items<T>(&self, items: u64, work: impl Future<Output = T>) -> T {
        let _permit = self.permits.acquire().await.expect("stage semaphore is never closed");
        let out = work.await;
        self.progress.done(items);
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
        self.progress.done(items);
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
    /// TransNetV2 (counted in windows); its worker reports its progress.
    pub detect: Stage,
    /// Clip files and middle frames (counted in clips).
    pub extract: Stage,
    /// Captions (counted in clips); the caption worker reports its progress.
    pub caption: Stage,
    /// Samples (counted in samples); the embed worker reports its progress.
    pub embed: Stage,
    /// Manifest commits (counted in videos).
    pub commit: Stage,
    observer: Arc<dyn Observer>,
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
    /// Stages reporting to `observer`, for `videos` inputs.
    pub fn new(observer: Arc<dyn Observer>, limits: StageLimits, videos: u64) -> Self {
        let stages = Self {
            fetch: Stage::new(StageName::Fetch, limits.fetch, &observer),
            probe: Stage::new(StageName::Probe, limits.decode, &observer),
            decode: Stage::new(StageName::Decode, limits.decode, &observer),
            detect: Stage::new(StageName::Detect, 1, &observer),
            extract: Stage::new(StageName::Extract, limits.extract, &observer),
            caption: Stage::new(StageName::Caption, 1, &observer),
            embed: Stage::new(StageName::Embed, 1, &observer),
            commit: Stage::new(StageName::Commit, 1, &observer),
            observer,
        };
        for stage in [&stages.fetch, &stages.probe, &stages.decode, &stages.commit] {
            stage.progress.expect(videos);
        }
        stages
    }

    /// Videos that can be in flight at once without starving any stage.
    pub fn in_flight(limits: StageLimits) -> usize {
        2 * (limits.fetch + limits.decode + limits.extract)
    }

    /// Tell the observer the run is over.
    pub fn finish(&self) {
        self.observer.finish();
    }
}

/// An observer that shows nothing (a library caller without a display).
pub struct Silent;

impl Observer for Silent {
    fn expect(&self, _: StageName, _: u64) {}
    fn done(&self, _: StageName, _: u64) {}
    fn note(&self, _: StageName, _: String) {}
    fn finish(&self) {}
}

/// The observer that draws each stage as a progress bar (name, bar, count, rate, ETA, note).
pub struct Bars {
    bars: Vec<(StageName, ProgressBar)>,
    progress: MultiProgress,
}

impl Bars {
    /// A bar per stage on `progress`.
    pub fn new(progress: &MultiProgress) -> Self {
        let bars = StageName::ALL.into_iter().map(|stage| (stage, stage_bar(progress, stage.as_str(), stage.unit()))).collect();
        Self { bars, progress: progress.clone() }
    }

    fn bar(&self, stage: StageName) -> &ProgressBar {
        &self.bars.iter().find(|(s, _)| *s == stage).expect("a bar per stage").1
    }
}

impl Observer for Bars {
    fn expect(&self, stage: StageName, items: u64) {
        self.bar(stage).inc_length(items);
    }

    fn done(&self, stage: StageName, items: u64) {
        self.bar(stage).inc(items);
    }

    fn note(&self, stage: StageName, note: String) {
        self.bar(stage).set_message(note);
    }

    /// Stop the bars, leaving their last state on screen.
    fn finish(&self) {
        for (_, bar) in &self.bars {
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;

    /// An observer that counts what each stage reports.
    #[derive(Default)]
    struct Counts(Mutex<HashMap<StageName, (u64, u64)>>);

    impl Observer for Counts {
        fn expect(&self, stage: StageName, items: u64) {
            self.0.lock().unwrap().entry(stage).or_default().0 += items;
        }
        fn done(&self, stage: StageName, items: u64) {
            self.0.lock().unwrap().entry(stage).or_default().1 += items;
        }
        fn note(&self, _: StageName, _: String) {}
        fn finish(&self) {}
    }

    #[tokio::test]
    async fn stages_report_what_they_expect_and_do_to_the_observer() {
        let counts = Arc::new(Counts::default());
        let stages = Stages::new(counts.clone(), StageLimits { fetch: 2, decode: 1, extract: 1 }, 3);
        for _ in 0..3 {
            stages.fetch.run(async {}).await;
        }
        stages.decode.run_blocking(|| ()).await;
        stages.decode.skip(2);
        stages.extract.progress.expect(5);
        stages.extract.run_items(5, async {}).await;
        let counts = counts.0.lock().unwrap();
        assert_eq!(counts[&StageName::Fetch], (3, 3));
        assert_eq!(counts[&StageName::Decode], (3, 3));
        assert_eq!(counts[&StageName::Extract], (5, 5));
        assert_eq!(counts[&StageName::Commit], (3, 0));
        assert!(!counts.contains_key(&StageName::Caption), "nothing reported for a stage that did nothing");
    }
}
