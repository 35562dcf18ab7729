//! `clipline buckets`: what a config's batch sizes make of a dataset, before any GPU waits on it.

use std::fmt;

use super::plan::Plan;

/// Per-bucket counts and the epoch they add up to at a world size.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// Ranks reading together.
    pub world_size: usize,
    /// Batches per optimiser step on each rank.
    pub grad_accum: usize,
    /// Samples held out for validation.
    pub held_out: usize,
    /// One line per bucket.
    pub buckets: Vec<BucketLine>,
}

/// A bucket's line of the dry run.
#[derive(Debug, Clone)]
pub struct BucketLine {
    /// Bucket name.
    pub name: String,
    /// Its samples.
    pub samples: usize,
    /// Its batch size (`None`: no key matches it).
    pub batch_size: Option<usize>,
    /// Full batches per epoch.
    pub full_batches: usize,
}

impl DryRun {
    /// The dry run of `plan`.
    pub fn new(plan: &Plan, world_size: usize, grad_accum: usize, held_out: usize) -> Self {
        let buckets = plan.buckets().iter().map(|b| BucketLine { name: b.name.clone(), samples: b.members.len(), batch_size: b.batch_size, full_batches: b.full_batches() }).collect();
        Self { world_size: world_size.max(1), grad_accum: grad_accum.max(1), held_out, buckets }
    }

    /// Full batches per epoch.
    pub fn batches(&self) -> usize {
        self.buckets.iter().map(|b| b.full_batches).sum()
    }

    /// Optimiser steps per epoch at this world size.
    pub fn steps_per_epoch(&self) -> usize {
        self.batches() / (self.world_size * self.grad_accum)
    }

    /// Buckets that yield no batch.
    pub fn empty(&self) -> impl Iterator<Item = &BucketLine> {
        self.buckets.iter().filter(|b| b.full_batches == 0)
    }
}

impl fmt::Display for DryRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<24} {:>9} {:>10} {:>12} {:>10}", "bucket", "samples", "batch size", "full batches", "left over")?;
        for b in &self.buckets {
            let size = b.batch_size.map_or_else(|| "unset".into(), |s| s.to_string());
            let left = b.samples - b.full_batches * b.batch_size.unwrap_or(0);
            writeln!(f, "{:<24} {:>9} {size:>10} {:>12} {left:>10}", b.name, b.samples, b.full_batches)?;
        }
        let samples: usize = self.buckets.iter().map(|b| b.samples).sum();
        writeln!(f, "{samples} samples in {} buckets ({} held out for validation): {} full batches per epoch", self.buckets.len(), self.held_out, self.batches())?;
        writeln!(f, "world size {}, grad_accum {}: {} optimiser steps per epoch", self.world_size, self.grad_accum, self.steps_per_epoch())?;
        for b in self.empty() {
            let name = &b.name;
            match b.batch_size {
                Some(size) => writeln!(f, "WARNING: bucket {name} yields NO batches: {} samples < batch size {size}; its samples are never trained on. Lower its batch size in [data.batch_size].", b.samples)?,
                None => writeln!(f, "WARNING: bucket {name} yields NO batches: no key of [data.batch_size] matches it (add \"{name}\", its resolution, or default).")?,
            }
        }
        if self.batches() > 0 && self.steps_per_epoch() == 0 {
            writeln!(f, "WARNING: {} batches per epoch are fewer than world size x grad_accum = {}; each step spans epochs.", self.batches(), self.world_size * self.grad_accum)?;
        }
        Ok(())
    }
}
