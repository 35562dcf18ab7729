//! Checkpoints: model, optimiser, EMA weights and a `state.json` (step, loader state, config)
//! under `step-NNNNNNNNN/` of a local or object-store directory. Files are written locally,
//! then uploaded with `state.json` last, so a checkpoint without it is incomplete and ignored.
//! Only the newest `keep` complete checkpoints are kept.
//!
//! The weights are written twice: as burn records (`model.mpk`, `ema.mpk`), which carry the
//! parameter ids the optimiser's state is keyed by, so a resumed run continues bit for bit; and
//! as `model.safetensors` / `ema.safetensors` with the parameter names and layouts of the
//! PyTorch twin (`clipline.stdit.Stdit`), so a PyTorch user loads them with
//! `safetensors.torch.load_file` and `load_state_dict`, and `train.init_from` can start from
//! weights trained anywhere.

use burn::module::{AutodiffModule, Module};
use burn::optim::Optimizer;
use burn::record::{FullPrecisionSettings, NamedMpkFileRecorder, Recorder};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn_store::{BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
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
const SAFETENSORS: &str = "safetensors";

/// Where burn's module paths and the PyTorch twin's parameter names differ (beyond what the
/// adapters do: Linear weights transposed, LayerNorm `gamma`/`beta` named `weight`/`bias`).
const TWIN_NAMES: [(&str, &str); 3] = [("patch.proj.", "proj."), ("time.fc1.", "time_fc1."), ("time.fc2.", "time_fc2.")];

/// Write `model`'s weights to `path` as safetensors, named as the PyTorch twin names them.
///
/// # Errors
/// When the file cannot be written.
pub fn save_safetensors<B: Backend, M: Module<B>>(model: &M, path: &std::path::Path) -> anyhow::Result<()> {
    let mut store = SafetensorsStore::from_file(path).with_to_adapter(BurnToPyTorchAdapter).metadata("producer", "clipline").metadata("twin", "clipline.stdit.Stdit");
    for (burn, torch) in TWIN_NAMES {
        store = store.with_key_remapping(format!("^{}", regex_escape(burn)), torch);
    }
    model.save_into(&mut store).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// Load weights named as the PyTorch twin names them (a clipline checkpoint's, or a PyTorch
/// user's `save_file(model.state_dict())`) into `model`; every parameter must be there, with
/// its shape.
///
/// # Errors
/// When the file cannot be read or does not fit the model, naming the tensors.
pub fn load_safetensors<B: Backend, M: Module<B>>(mut model: M, path: &std::path::Path) -> anyhow::Result<M> {
    let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter);
    for (burn, torch) in TWIN_NAMES {
        store = store.with_key_remapping(format!("^{}", regex_escape(torch)), burn);
    }
    let applied = model.load_from(&mut store).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if !applied.missing.is_empty() || !applied.errors.is_empty() {
        let missing: Vec<&str> = applied.missing.iter().map(|(p, _)| p.as_str()).collect();
        anyhow::bail!("{} does not fit the model: missing {missing:?}, errors {:?}; it must hold every parameter of the [model] config with its shape", path.display(), applied.errors);
    }
    Ok(model)
}

/// Load the safetensors weights at `uri` (a local path, or a file in any store) into `model`.
///
/// # Errors
/// When it cannot be read or does not fit the model.
pub async fn weights_from<B: Backend, M: Module<B>>(uri: &str, model: M) -> anyhow::Result<M> {
    let local = std::path::Path::new(uri.strip_prefix("file://").unwrap_or(uri));
    if !uri.contains("://") || uri.starts_with("file://") {
        anyhow::ensure!(local.is_file(), "train.init_from {uri}: no such file");
        return load_safetensors(model, local);
    }
    let (dir, name) = uri.rsplit_once('/').ok_or_else(|| anyhow::anyhow!("train.init_from {uri}: not a file URI"))?;
    let tmp = tempfile::tempdir()?;
    let path = tmp.path().join(name);
    Store::open(dir)?.download(name, &path, |_| {}).await.map_err(|e| anyhow::anyhow!("train.init_from {uri}: {e}"))?;
    load_safetensors(model, &path)
}

/// `text` as a regular expression that matches it literally (module paths hold only `.` to escape).
fn regex_escape(text: &str) -> String {
    text.replace('.', r"\.")
}

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
    save_safetensors(&model.valid(), &local.path().join(format!("{MODEL}.{SAFETENSORS}")))?;
    rec.record(optimizer.to_record(), local.path().join(OPTIMIZER))?;
    if let Some(ema) = ema {
        ema.clone().save_file(local.path().join(EMA), &rec)?;
        save_safetensors(ema, &local.path().join(format!("{EMA}.{SAFETENSORS}")))?;
    }
    std::fs::write(local.path().join(STATE), serde_json::to_vec_pretty(state)?)?;
    let dir = dir_of(state.step);
    for name in [MODEL, OPTIMIZER, EMA] {
        for ext in [EXT, SAFETENSORS] {
            let file = local.path().join(format!("{name}.{ext}"));
            if file.exists() {
                store.put_file(&format!("{dir}/{name}.{ext}"), &file).await?;
            }
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
