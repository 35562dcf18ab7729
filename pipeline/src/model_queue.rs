//! A bounded queue into one worker thread that owns a model (the captioner, the embedder).
//!
//! ONNX Runtime sessions are best driven from one thread that keeps them busy, while videos
//! finish at their own pace on the async side. Videos submit their items (clips, samples) and
//! await the results; the worker takes a submission, adds the ones already waiting until it has
//! `gather` items, processes them together (so small videos still fill the model's batches) and
//! hands each video its own results back, in order. The queue is bounded: a slow model holds
//! back the videos feeding it instead of letting their frames pile up.

use std::sync::mpsc;

use anyhow::Context;
use indicatif::ProgressBar;
use tokio::sync::oneshot;

/// Submissions waiting for the worker at most.
const QUEUE_CAPACITY: usize = 4;

struct Job<I, O> {
    items: Vec<I>,
    reply: oneshot::Sender<Vec<O>>,
}

/// The submitting side of a model worker.
pub struct ModelQueue<I, O> {
    queue: mpsc::SyncSender<Job<I, O>>,
    bar: ProgressBar,
    name: &'static str,
}

impl<I: Send + 'static, O: Send + 'static> ModelQueue<I, O> {
    /// Start a worker thread named `name` that runs `process` over gathered items (it must
    /// return one result per item, in order) and moves `bar` by the items done.
    ///
    /// # Errors
    /// When the thread cannot be started.
    pub fn start(name: &'static str, gather: usize, bar: ProgressBar, mut process: impl FnMut(Vec<I>) -> Vec<O> + Send + 'static) -> anyhow::Result<Self> {
        let (queue, jobs) = mpsc::sync_channel::<Job<I, O>>(QUEUE_CAPACITY);
        let worker_bar = bar.clone();
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
                let results = process(items);
                assert_eq!(results.len(), total, "{name}: one result per item");
                worker_bar.inc(total as u64);
                let mut results = results.into_iter();
                for (job, count) in batch.into_iter().zip(counts) {
                    let _ = job.reply.send(results.by_ref().take(count).collect());
                }
            }
        };
        std::thread::Builder::new().name(name.into()).spawn(worker).with_context(|| format!("cannot start the {name} thread"))?;
        Ok(Self { queue, bar, name })
    }

    /// Submit a video's items and wait for their results (waits while the queue is full).
    ///
    /// # Errors
    /// When the worker has stopped.
    pub async fn submit(&self, items: Vec<I>) -> anyhow::Result<Vec<O>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.bar.inc_length(items.len() as u64);
        let (reply, results) = oneshot::channel();
        let queue = self.queue.clone();
        tokio::task::spawn_blocking(move || queue.send(Job { items, reply })).await?.ok().with_context(|| format!("the {} worker stopped", self.name))?;
        results.await.with_context(|| format!("the {} worker stopped", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::ModelQueue;

    #[tokio::test(flavor = "multi_thread")]
    async fn each_submission_gets_its_own_results_in_order() {
        let queue = ModelQueue::start("doubler", 8, indicatif::ProgressBar::hidden(), |items: Vec<u32>| items.into_iter().map(|i| i * 2).collect()).unwrap();
        let (a, b) = tokio::join!(queue.submit(vec![1, 2, 3]), queue.submit(vec![10, 20]));
        assert_eq!(a.unwrap(), vec![2, 4, 6]);
        assert_eq!(b.unwrap(), vec![20, 40]);
        assert!(queue.submit(Vec::new()).await.unwrap().is_empty());
    }
}
