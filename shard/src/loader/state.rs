//! The loader's resumable state and the reader's place among the ranks.

use serde::{Deserialize, Serialize};

use super::plan::Plan;
use super::LoaderError;

/// Where the global stream stands: everything needed to resume it exactly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// Seed of the order.
    pub seed: u64,
    /// Fingerprint of the samples and batch sizes it was made from.
    pub fingerprint: String,
    /// The epoch of the next batch.
    pub epoch: u64,
    /// Batches of that epoch already read (by all ranks together).
    pub batches: u64,
    /// Samples in those batches.
    pub samples: u64,
}

impl LoaderState {
    /// The state at global batch `global` of `plan`.
    pub fn at(plan: &Plan, global: u64) -> Self {
        let per_epoch = plan.batches_per_epoch().max(1);
        let (epoch, batches) = (global / per_epoch, global % per_epoch);
        Self { seed: plan.seed(), fingerprint: plan.fingerprint().into(), epoch, batches, samples: plan.samples_before(epoch, batches) }
    }

    /// The global batch this state resumes at, after checking it belongs to `plan`.
    ///
    /// # Errors
    /// When the seed, the data or the batch sizes differ from the ones it was saved with.
    pub fn resume_at(&self, plan: &Plan) -> Result<u64, LoaderError> {
        let differs = |what: &str| LoaderError::Resume(format!("the checkpoint's loader state does not match this dataset: {what}; resume with the data and [data] settings the run started with"));
        if self.seed != plan.seed() {
            return Err(differs(&format!("seed {} was {}", plan.seed(), self.seed)));
        }
        if self.fingerprint != plan.fingerprint() {
            return Err(differs(&format!("samples and batch sizes hash to {}, were {}", plan.fingerprint(), self.fingerprint)));
        }
        if self.batches >= plan.batches_per_epoch().max(1) || plan.samples_before(self.epoch, self.batches) != self.samples {
            return Err(differs(&format!("batch {} of epoch {} does not follow {} samples", self.batches, self.epoch, self.samples)));
        }
        Ok(self.epoch * plan.batches_per_epoch() + self.batches)
    }
}

/// This reader's rank among `world_size` (torchrun's `RANK` and `WORLD_SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rank {
    /// Its rank, 0-based.
    pub rank: usize,
    /// How many ranks read the stream together.
    pub world_size: usize,
}

impl Rank {
    /// The only reader.
    pub const SINGLE: Rank = Rank { rank: 0, world_size: 1 };

    /// From `RANK` and `WORLD_SIZE` in the environment (torchrun), else `SLURM_PROCID` and
    /// `SLURM_NTASKS` (srun); a single reader when neither pair is set.
    ///
    /// # Errors
    /// When they are not numbers or the rank is out of range.
    pub fn from_env() -> Result<Self, LoaderError> {
        let read = |name: &str| -> Result<Option<usize>, LoaderError> {
            match clipline_core::env::text(name) {
                Some(v) => v.trim().parse().map(Some).map_err(|_| LoaderError::Rank(format!("{name}={v:?} is not a number"))),
                None => Ok(None),
            }
        };
        match (read("RANK")?, read("WORLD_SIZE")?) {
            (None, None) => match (read("SLURM_PROCID")?, read("SLURM_NTASKS")?) {
                (None, None) => Ok(Self::SINGLE),
                (rank, world) => Self::new(rank.unwrap_or(0), world.unwrap_or(1)),
            },
            (rank, world) => Self::new(rank.unwrap_or(0), world.unwrap_or(1)),
        }
    }

    /// Rank `rank` of `world_size`.
    ///
    /// # Errors
    /// When `world_size` is zero or `rank` is not below it.
    pub fn new(rank: usize, world_size: usize) -> Result<Self, LoaderError> {
        if world_size == 0 || rank >= world_size {
            return Err(LoaderError::Rank(format!("rank {rank} of world size {world_size} is out of range")));
        }
        Ok(Self { rank, world_size })
    }
}
