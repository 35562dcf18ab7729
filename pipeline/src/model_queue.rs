//! A queue into one worker thread that owns a model (the captioner, the embedder), bounded in
//! bytes.
//!
//! ONNX Runtime sessions are best driven from one thread that keeps them busy, while videos
//! finish at their own pace on the async side. Videos submit their items (clips, samples) and
//! await the results; the worker takes a submission, adds the ones already waiting until it has
//! `gather` items, processes them together (so small videos still fill the model's batches) and
//! hands each video its own results back, in order.
//!
//! What bounds memory is bytes, not submissions: a video with 40 clips of caption frames weighs
//! a hundred times one with a single short clip. Each item says what it holds ([`Weighed`]); a
//! submission is admitted once its bytes fit the queue's budget (taken in turn, first come first
//! served), and gives them back when its results return. A slow model thus holds the videos
//! feeding it back, with their frames, instead of letting frames pile up in the queue. A
//! submission larger than the whole budget is admitted alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};

use anyhow::Context;
use tokio::sync::{oneshot, Semaphore};

use crate::runtime::Progress;

/// Submissions waiting for the worker at most (the byte budget is the real bound; this keeps the
/// channel small).
const QUEUE_CAPACITY: usize = 4;

/// The budget's unit: permits count KiB, so that budgets of many GiB fit a semaphore's count.
const UNIT: usize = 1024;

/// What an item holds while it waits for the model and is processed: decoded frames in memory,
/// or frames in a scratch file.
pub trait Weighed {
    /// Its bytes.
    fn bytes(&self) -> usize;
}

struct Job<I, O> {
    items: Vec<I>,
    reply: oneshot::Sender<Vec<O>>,
}

/// How full a queue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Bytes of the admitted submissions (queued or being processed).
    pub held_bytes: usize,
    /// Submissions waiting for room in the budget.
    pub waiting: usize,
}

#[derive(Default)]
struct Gauge {
    held_bytes: AtomicUsize,
    waiting: AtomicUsize,
}

/// The submitting side of a model worker.
pub struct ModelQueue<I, O> {
    queue: mpsc::SyncSender<Job<I, O>>,
    budget: Arc<Semaphore>,
    budget_units: u32,
    gauge: Arc<Gauge>,
    progress: Progress,
    name: &'static str,
}

impl<I: Weighed + Send + 'static, O: Send + 'static> ModelQueue<I, O> {
    /// Start a worker thread named `name` that runs `process` over gathered items (it must
    /// return one result per item, in order) and reports the items done to `progress`; at
    /// most `budget_bytes` of items are admitted at once.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(name: &'static str, gather: usize, budget_bytes: usize, progress: Progress, mut process: impl FnMut(Vec<I>) -> Vec<O> + Send + 'static) -> anyhow::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel::<Job<I, O>>(QUEUE_CAPACITY);
        let budget_units = u32::try_from(budget_bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX >> 3).min(Semaphore::MAX_PERMITS as u32);
        let gauge = Arc::new(Gauge::default());
        let (worker_progress, worker_gauge) = (progress.clone(), gauge.clone());
        let worker = move || {
            while let Ok(first) = jobs.recv() {
                let mut batch = vec![first];
                while batch.iter().map(|j| j.items.len()).sum::<usize>() < gather {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let counts: Vec<usize> = batch.iter().map(|j| j.items.len()).collect();
                let items: Vec<I> = batch.iter_mut().flat_map(|j| std::mem::take(&mut j.items)).collect();
                let total = items.len();
                worker_progress.note(describe(&worker_gauge));
                let results = process(items);
                assert_eq!(results.len(), total, "{name}: one result per item");
                worker_progress.done(total as u64);
                let mut results = results.into_iter();
                for (job, count) in batch.into_iter().zip(counts) {
                    let _ = job.reply.send(results.by_ref().take(count).collect());
                }
            }
        };
        std::thread::Builder::new().name(name.into()).spawn(worker).with_context(|| format!("cannot start the {name} thread"))?;
        Ok(Self { queue, budget: Arc::new(Semaphore::new(budget_units as usize)), budget_units, gauge, progress, name })
    }

    /// Submit a video's items and wait for their results (waits while the budget is full).
    ///
    /// # Errors
    /// When the worker has stopped.
    pub async fn submit(&self, items: Vec<I>) -> anyhow::Result<Vec<O>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.progress.expect(items.len() as u64);
        let bytes: usize = items.iter().map(Weighed::bytes).sum();
        let units = u32::try_from(bytes.div_ceil(UNIT)).unwrap_or(u32::MAX).clamp(1, self.budget_units);
        self.gauge.waiting.fetch_add(1, Ordering::Relaxed);
        let admitted = self.budget.acquire_many(units).await.expect("the budget semaphore is never closed");
        self.gauge.waiting.fetch_sub(1, Ordering::Relaxed);
        self.gauge.held_bytes.fetch_add(bytes, Ordering::Relaxed);
        let (reply, results) = oneshot::channel();
        let queue = self.queue.clone();
        let sent = tokio::task::spawn_blocking(move || queue.send(Job { items, reply })).await;
        let results = match sent {
            Ok(Ok(())) => results.await.ok(),
            _ => None,
        };
        self.gauge.held_bytes.fetch_sub(bytes, Ordering::Relaxed);
        drop(admitted);
        results.with_context(|| format!("the {} worker stopped", self.name))
    }

    /// How full the queue is now.
    pub fn load(&self) -> Load {
        load(&self.gauge)
    }
}

fn load(gauge: &Gauge) -> Load {
    Load { held_bytes: gauge.held_bytes.load(Ordering::Relaxed), waiting: gauge.waiting.load(Ordering::Relaxed) }
}

/// The bar's message: what the queue holds and who waits for room.
fn describe(gauge: &Gauge) -> String {
    let Load { held_bytes, waiting } = load(gauge);
    let held = format!("{:.0} MiB queued", held_bytes as f64 / (1 << 20) as f64);
    if waiting > 0 { format!("{held}, {waiting} videos waiting") } else { held }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::runtime::{Silent, StageName};

    fn silent() -> Progress {
        Progress::new(StageName::Caption, Arc::new(Silent))
    }

    impl Weighed for u32 {
        fn bytes(&self) -> usize {
            4
        }
    }

    /// A clip's frames, as big as they say.
    struct Frames(Vec<u8>);

    impl Weighed for Frames {
        fn bytes(&self) -> usize {
            self.0.len()
        }
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn each_submission_gets_its_own_results_in_order() {
        let queue = ModelQueue::start("doubler", 8, 1 << 20, silent(), |items: Vec<u32>| items.into_iter().map(|i| i * 2).collect()).unwrap();
        let (a, b) = tokio::join!(queue.submit(vec![1, 2, 3]), queue.submit(vec![10, 20]));
        assert_eq!(a.unwrap(), vec![2, 4, 6]);
        assert_eq!(b.unwrap(), vec![20, 40]);
        assert!(queue.submit(Vec::new()).await.unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_stalled_model_holds_the_bytes_at_the_budget_while_producers_wait() {
        const MIB: usize = 1 << 20;
        let budget = 4 * MIB;
        // The model stalls until the test has seen the queue full: 16 videos submit 1 MiB of
        // frames each, 4 fit the budget, so 12 must wait, however fast or loaded the machine is.
        let open = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let model_gate = open.clone();
        let queue = Arc::new(
            ModelQueue::start("stalled", 1, budget, silent(), move |items: Vec<Frames>| {
                while !model_gate.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                }
                items.into_iter().map(|f| f.0.len()).collect()
            })
            .unwrap(),
        );
        let producers: Vec<_> = (0..16)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.submit(vec![Frames(vec![0; MIB])]).await.unwrap() })
            })
            .collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while queue.load() != (Load { held_bytes: budget, waiting: 12 }) {
            assert!(std::time::Instant::now() < deadline, "the queue never filled: {:?}", queue.load());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        open.store(true, Ordering::Release);
        for producer in producers {
            assert_eq!(producer.await.unwrap(), [MIB]);
        }
        assert_eq!(queue.load(), Load { held_bytes: 0, waiting: 0 });
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_submission_larger_than_the_budget_is_admitted_alone() {
        let queue = ModelQueue::start("big", 4, 1024, silent(), |items: Vec<Frames>| items.into_iter().map(|f| f.0.len()).collect()).unwrap();
        let results = tokio::time::timeout(Duration::from_secs(10), queue.submit(vec![Frames(vec![0; 10_000])])).await.expect("not stuck");
        assert_eq!(results.unwrap(), [10_000]);
        assert_eq!(queue.load(), Load { held_bytes: 0, waiting: 0 });
    }
}
