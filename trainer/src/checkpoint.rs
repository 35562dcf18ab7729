//! Checkpoints: model, optimiser, EMA weights and a `state.json` (step, loader state, config)
//! under `step-NNNNNNNNN/` of a local or object-store directory. Files are written locally,
//! then uploaded with `state.json` last, so a checkpoint without it is incomplete and ignored.
//! Only the newest `keep` complete checkpoints are kept.

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use clipline_core::storage::Store;
use clipline_shard::loader::LoaderState;
use serde::{Deserialize, Serialize};

use crate::config::TrainConfig;
use crate::model::DataShape;

/// What a checkpoint records besides tensors.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckpointState {
    /// Optimiser steps done.
    pub step: u64,
    /// Where the loader resumes.
    pub loader: LoaderState,
    /// The data-dependent model sizes.
    pub data_shape: DataShape,
    /// The config the run had.
    pub config: TrainConfig,
    /// How randomness resumes: nothing to save, every draw is keyed by the batch.
    pub rng: String,
}

/// The files of a checkpoint.
const MODEL: &str = "model";
const OPTIMIZER: &str = "optimizer";
const EMA: &str = "ema";
const STATE: &str = "state.json";
const EXT: &str = "mpk";

fn recorder() -> NamedMpkFileRecorder<FullPrecisionSettings> {
    NamedMpkFileRecorder::new()
}

fn dir_of(step: u64) -> String {
    format!("step-{step:09}")
}

/// The steps of the complete checkpoints in `store`, ascending.
///
/// # Errors
/// On a storage failure.
pub async fn complete_steps(store: &Store) -> anyhow::Result<Vec<u64>> {
    let mut steps: Vec<u64> = store
        .list("")
        .await?
        .iter()
        .filter_map(|e| e.key.strip_suffix(&format!("/{STATE}"))?.strip_prefix("step-")?.parse().ok())
        .collect();
    steps.sort_unstable();
    Ok(steps)
}

/// Write a checkpoint and prune old ones.
///
/// # Errors
/// When a file cannot be written or uploaded.
pub async fn save<B: AutodiffBackend, M: AutodiffModule<B>, E: Module<B::InnerBackend>, O: Optimizer<M, B>>(store: &Store, state: &CheckpointState, model: &M, optimizer: &O, ema: Option<&E>, keep: usize) -> anyhow::Result<()> {
    let local = tempfile::tempdir()?;
    let rec = recorder();
    model.clone().save_file(local.path().join(MODEL), &rec)?;
    rec.record(optimizer.to_record(), local.path().join(OPTIMIZER))?;
    if let Some(ema) = ema {
        ema.clone().save_file(local.path().join(EMA), &rec)?;
    }
    std::fs::write(local.path().join(STATE), serde_json::to_vec_pretty(state)?)?;
    let dir = dir_of(state.step);
    for name in [MODEL, OPTIMIZER, EMA] {
        let file = local.path().join(format!("{name}.{EXT}"));
        if file.exists() {
            store.put_file(&format!("{dir}/{name}.{EXT}"), &file).await?;
        }
    }
    store.put_file(&format!("{dir}/{STATE}"), &local.path().join(STATE)).await?;
    let steps = complete_steps(store).await?;
    for old in steps.iter().take(steps.len().saturating_sub(keep)) {
        let dir = dir_of(*old);
        for entry in store.list(&dir).await? {
            store.delete(&entry.key).await?;
        }
        // A local store keeps the emptied directory; an object store has none.
        if let Some(root) = store.local_root() {
            let _ = std::fs::remove_dir(root.join(&dir));
        }
    }
    Ok(())
}

/// The newest complete checkpoint in `store`, fetched; `None` when there is none.
///
/// # Errors
/// When it cannot be listed or read.
pub async fn newest(store: &Store) -> anyhow::Result<Option<Fetched>> {
    match complete_steps(store).await?.last() {
        Some(&step) => Ok(Some(fetch(store, step).await?)),
        None => Ok(None),
    }
}

/// A checkpoint fetched to local files.
pub struct Fetched {
    dir: tempfile::TempDir,
    /// Its state.
    pub state: CheckpointState,
}

/// Fetch the checkpoint of `step`.
///
/// # Errors
/// When it cannot be read.
pub async fn fetch(store: &Store, step: u64) -> anyhow::Result<Fetched> {
    let dir = tempfile::tempdir()?;
    let prefix = dir_of(step);
    for entry in store.list(&prefix).await? {
        let name = entry.key.rsplit('/').next().unwrap_or_default().to_string();
        store.download(&entry.key, &dir.path().join(name), |_| {}).await?;
    }
    let state: CheckpointState = serde_json::from_slice(&std::fs::read(dir.path().join(STATE))?).map_err(|e| anyhow::anyhow!("{}: {e}", store.uri_of(&format!("{prefix}/{STATE}"))))?;
    Ok(Fetched { dir, state })
}

impl Fetched {
    fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    /// Load the model weights into `model`.
    ///
    /// # Errors
    /// When the file does not fit the model.
    pub fn model<B: Backend, M: Module<B>>(&self, model: M, device: &B::Device) -> anyhow::Result<M> {
        Ok(model.load_file(self.path(MODEL), &recorder(), device)?)
    }

    /// Load the EMA weights into `ema`, if the checkpoint has them.
    ///
    /// # Errors
    /// When the file does not fit the model.
    pub fn ema<B: Backend, M: Module<B>>(&self, ema: M, device: &B::Device) -> anyhow::Result<M> {
        if !self.path(&format!("{EMA}.{EXT}")).exists() {
            return Ok(ema);
        }
        Ok(ema.load_file(self.path(EMA), &recorder(), device)?)
    }

    /// Load the optimiser state into `optimizer`.
    ///
    /// # Errors
    /// When the file does not fit.
    pub fn optimizer<B: AutodiffBackend, M: AutodiffModule<B>, O: Optimizer<M, B>>(&self, optimizer: O, device: &B::Device) -> anyhow::Result<O> {
        let record = recorder().load(self.path(OPTIMIZER), device)?;
        Ok(optimizer.load_record(record))
    }
}
