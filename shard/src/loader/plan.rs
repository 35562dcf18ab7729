//! The global order: which batches an epoch has, and which of them a rank reads.
//!
//! The order is a pure function of (seed, epoch, position) over the dataset's sample ids, so
//! it does not depend on how many ranks or workers read it. Each bucket's samples are shuffled
//! and cut into full batches of that bucket's size (the rest of a bucket waits for the next
//! epoch's shuffle), then the epoch's batches are shuffled together. The batches of all epochs
//! form one stream; global batch `g` goes to rank `g % world_size`. A run that stops after the
//! ranks have read `g` batches and restarts on any world size continues at `g`, so the stream
//! of samples is exactly that of an uninterrupted run.

use clipline_core::rng::SplitMix64;

use super::batch_size::BatchSizes;

/// One readable sample as the plan sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanSample {
    /// Sample id.
    pub id: String,
    /// Bucket name.
    pub bucket: String,
}

/// A bucket's samples and batch size.
#[derive(Debug, Clone)]
pub struct PlanBucket {
    /// Bucket name.
    pub name: String,
    /// Its batch size (`None`: no key of the batch-size table matches it).
    pub batch_size: Option<usize>,
    /// Indices of its samples into the plan's sample list, in id order.
    pub members: Vec<u32>,
}

impl PlanBucket {
    /// Full batches it yields per epoch.
    pub fn full_batches(&self) -> usize {
        self.batch_size.map_or(0, |b| self.members.len() / b)
    }
}

/// One batch of the global stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedBatch {
    /// Epoch it belongs to.
    pub epoch: u64,
    /// Its position in the global stream of all epochs.
    pub global: u64,
    /// Index of its bucket in [`Plan::buckets`].
    pub bucket: usize,
    /// Indices of its samples into [`Plan::samples`].
    pub samples: Vec<u32>,
}

/// The dataset's samples grouped into buckets, and the order derived from them.
#[derive(Debug, Clone)]
pub struct Plan {
    seed: u64,
    samples: Vec<PlanSample>,
    buckets: Vec<PlanBucket>,
    batches_per_epoch: u64,
    fingerprint: String,
}

impl Plan {
    /// A plan over `samples` (any order: they are sorted by id).
    pub fn new(seed: u64, mut samples: Vec<PlanSample>, batch_sizes: &BatchSizes) -> Self {
        samples.sort_by(|a, b| a.id.cmp(&b.id));
        samples.dedup_by(|a, b| a.id == b.id);
        let mut names: Vec<&str> = samples.iter().map(|s| s.bucket.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let mut buckets: Vec<PlanBucket> = names.iter().map(|&name| PlanBucket { name: name.into(), batch_size: batch_sizes.of(name).filter(|&b| b > 0), members: Vec::new() }).collect();
        for (i, sample) in samples.iter().enumerate() {
            let b = names.binary_search(&sample.bucket.as_str()).expect("every bucket was collected");
            buckets[b].members.push(i as u32);
        }
        let batches_per_epoch = buckets.iter().map(|b| b.full_batches() as u64).sum();
        let mut hasher = blake3::Hasher::new();
        for s in &samples {
            hasher.update(s.id.as_bytes());
            hasher.update(&[0]);
        }
        for b in &buckets {
            hasher.update(format!("{}={:?};", b.name, b.batch_size).as_bytes());
        }
        let fingerprint = hasher.finalize().to_hex()[..16].to_string();
        Self { seed, samples, buckets, batches_per_epoch, fingerprint }
    }

    /// The seed of the order.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The samples, sorted by id.
    pub fn samples(&self) -> &[PlanSample] {
        &self.samples
    }

    /// The buckets, sorted by name.
    pub fn buckets(&self) -> &[PlanBucket] {
        &self.buckets
    }

    /// Full batches in every epoch.
    pub fn batches_per_epoch(&self) -> u64 {
        self.batches_per_epoch
    }

    /// A hash of the sample ids and batch sizes: a resumed run checks it has the same data.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The batches of `epoch`, in order.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        let mut batches = Vec::with_capacity(self.batches_per_epoch as usize);
        for (b, bucket) in self.buckets.iter().enumerate() {
            let Some(size) = bucket.batch_size else { continue };
            let mut members = bucket.members.clone();
            shuffle(&mut members, &mut SplitMix64::keyed(self.seed, &format!("epoch {epoch} bucket {}", bucket.name)));
            batches.extend(members.chunks_exact(size).map(|c| (b, c.to_vec())));
        }
        shuffle(&mut batches, &mut SplitMix64::keyed(self.seed, &format!("epoch {epoch} batches")));
        batches
    }

    /// Samples in the first `batches` batches of `epoch`.
    pub fn samples_before(&self, epoch: u64, batches: u64) -> u64 {
        self.epoch(epoch).iter().take(batches as usize).map(|(_, s)| s.len() as u64).sum()
    }

    /// The batches rank `rank` of `world_size` reads, from global batch `start` on, forever.
    pub fn rank_stream(&self, start: u64, rank: usize, world_size: usize) -> RankStream<'_> {
        let first = start + rank as u64;
        RankStream { plan: self, next: first, step: world_size as u64, cached: None }
    }
}

/// An epoch's batches: bucket index and sample indices.
type EpochBatches = Vec<(usize, Vec<u32>)>;

/// The batches one rank reads, epoch after epoch.
pub struct RankStream<'a> {
    plan: &'a Plan,
    next: u64,
    step: u64,
    cached: Option<(u64, EpochBatches)>,
}

impl Iterator for RankStream<'_> {
    type Item = PlannedBatch;

    fn next(&mut self) -> Option<PlannedBatch> {
        let per_epoch = self.plan.batches_per_epoch;
        if per_epoch == 0 {
            return None;
        }
        let global = self.next;
        let epoch = global / per_epoch;
        if self.cached.as_ref().is_none_or(|(e, _)| *e != epoch) {
            self.cached = Some((epoch, self.plan.epoch(epoch)));
        }
        let (_, batches) = self.cached.as_ref().expect("cached above");
        let (bucket, samples) = batches[(global % per_epoch) as usize].clone();
        self.next += self.step;
        Some(PlannedBatch { epoch, global, bucket, samples })
    }
}

/// Fisher–Yates with the given stream.
fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(seed: u64) -> Plan {
        let mut samples = Vec::new();
        for (bucket, n) in [("144p-1f-1:1", 23), ("144p-17f-16:9", 11), ("240p-33f-16:9", 2)] {
            samples.extend((0..n).map(|i| PlanSample { id: format!("{bucket}/{i:03}"), bucket: bucket.into() }));
        }
        let sizes = BatchSizes([("default", 4), ("144p-1f", 8), ("240p", 3)].into_iter().map(|(k, v)| (k.into(), v)).collect());
        Plan::new(seed, samples, &sizes)
    }

    #[test]
    fn epochs_hold_full_single_bucket_batches_and_differ() {
        let p = plan(7);
        // 23/8 = 2, 11/4 = 2, 2/3 = 0.
        assert_eq!(p.batches_per_epoch(), 4);
        let e0 = p.epoch(0);
        for (b, samples) in &e0 {
            assert_eq!(Some(samples.len()), p.buckets()[*b].batch_size);
            assert!(samples.iter().all(|&s| p.samples()[s as usize].bucket == p.buckets()[*b].name));
        }
        assert_ne!(e0, p.epoch(1));
        assert_eq!(e0, plan(7).epoch(0));
        assert_ne!(e0, plan(8).epoch(0));
    }

    #[test]
    fn ranks_interleave_into_the_single_rank_stream_on_any_world_size() {
        let p = plan(3);
        let single: Vec<u64> = p.rank_stream(0, 0, 1).take(20).map(|b| b.global).collect();
        assert_eq!(single, (0..20).collect::<Vec<_>>());
        // Two ranks read 6 batches each, then the run resumes on three ranks.
        let mut seen = Vec::new();
        let two: Vec<Vec<PlannedBatch>> = (0..2).map(|r| p.rank_stream(0, r, 2).take(3).collect()).collect();
        for step in 0..3 {
            seen.extend(two.iter().map(|r| r[step].clone()));
        }
        let three: Vec<Vec<PlannedBatch>> = (0..3).map(|r| p.rank_stream(6, r, 3).take(4).collect()).collect();
        for step in 0..4 {
            seen.extend(three.iter().map(|r| r[step].clone()));
        }
        let uninterrupted: Vec<PlannedBatch> = p.rank_stream(0, 0, 1).take(18).collect();
        assert_eq!(seen, uninterrupted);
    }

    #[test]
    fn the_fingerprint_follows_ids_and_batch_sizes() {
        let p = plan(1);
        assert_eq!(p.fingerprint(), plan(2).fingerprint());
        let sizes = BatchSizes([("default".to_string(), 5)].into_iter().collect());
        assert_ne!(p.fingerprint(), Plan::new(1, p.samples().to_vec(), &sizes).fingerprint());
    }
}
