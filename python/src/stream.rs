//! The streaming loader for Python: one rank's (or one DataLoader worker's) share of an
//! epoch's batches, fetched and decoded by the Rust loader and stacked into batch tensors with
//! the GIL released.
//!
//! A DataLoader worker is a reader of its own: worker `w` of `W` on rank `r` of `N` reads as
//! rank `r + w·N` of `N·W`, which is exactly the rank's batches `w, w + W, w + 2W, ...`, the ones
//! the DataLoader takes from that worker in its round-robin. So workers change neither the
//! rank's order nor the global one.

use std::sync::Arc;

use clipline_shard::loader::{DataConfig, Loader, LoaderState, Plan, Rank};
use clipline_shard::record::RecordHeader;
use clipline_shard::{Dataset, Sample};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::dataset::NativeDataset;
use crate::dlpack::{Element, Storage, Tensor};
use crate::errors::loader_to_py;

/// A dataset's samples planned into batches by a `[data]` section (given as JSON).
#[pyclass(module = "clipline._native", frozen)]
pub struct NativePlan {
    dataset: Arc<Dataset>,
    plan: Arc<Plan>,
    config: DataConfig,
    validation: Vec<String>,
}

#[pymethods]
impl NativePlan {
    /// Plan `dataset` by `config_json`, the `[data]` section of a training config as JSON.
    #[new]
    fn new(dataset: &NativeDataset, config_json: &str) -> PyResult<Self> {
        let config: DataConfig = serde_json::from_str(config_json).map_err(|e| PyValueError::new_err(format!("data options: {e}")))?;
        let zero = config.batch_size.zero_keys();
        if !zero.is_empty() {
            return Err(PyValueError::new_err(format!("batch size 0 for {}: every bucket needs a batch size of at least 1", zero.join(", "))));
        }
        let selection = config.select(dataset.inner.rows());
        let plan = Arc::new(Plan::new(config.seed, selection.train, &config.batch_size));
        Ok(Self { dataset: dataset.inner.clone(), plan, config, validation: selection.validation })
    }

    /// Global batches per epoch (all ranks together).
    #[getter]
    fn batches_per_epoch(&self) -> u64 {
        self.plan.batches_per_epoch()
    }

    /// Ids of the held-out samples (`val_samples`), sorted.
    #[getter]
    fn validation(&self) -> Vec<String> {
        self.validation.clone()
    }

    /// Each bucket: (name, samples, batch size or None, full batches per epoch), the dry run.
    fn buckets(&self) -> Vec<(String, usize, Option<usize>, usize)> {
        self.plan.buckets().iter().map(|b| (b.name.clone(), b.members.len(), b.batch_size, b.full_batches())).collect()
    }

    /// The resumable state at global batch `global`, as JSON (seed, fingerprint, epoch,
    /// batches, samples).
    fn state_at(&self, global: u64) -> String {
        serde_json::to_string(&LoaderState::at(&self.plan, global)).expect("the state serializes")
    }

    /// The global batch a saved state (JSON) resumes at, after checking it belongs to this plan.
    fn resume(&self, state_json: &str) -> PyResult<u64> {
        let state: LoaderState = serde_json::from_str(state_json).map_err(|e| PyValueError::new_err(format!("not a clipline loader state: {e}")))?;
        state.resume_at(&self.plan).map_err(loader_to_py)
    }

    /// Rank `rank` of `world_size`, worker `worker` of `workers`: its batches from global batch
    /// `start` to the end of that epoch. Every rank takes the same number, (end − start) div
    /// world_size, so data-parallel ranks stay in step; the epoch's last few batches, fewer
    /// than the ranks, are left to no one.
    fn stream(&self, rank: usize, world_size: usize, worker: usize, workers: usize, start: u64) -> PyResult<NativeStream> {
        Rank::new(rank, world_size).map_err(loader_to_py)?;
        if workers == 0 || worker >= workers {
            return Err(PyValueError::new_err(format!("worker {worker} of {workers} is out of range")));
        }
        let per_epoch = self.plan.batches_per_epoch().max(1);
        let end = (start / per_epoch + 1) * per_epoch;
        let rounds = (end - start) / world_size as u64;
        let (worker, workers) = (worker as u64, workers as u64);
        let left = if rounds > worker { (rounds - worker).div_ceil(workers) } else { 0 };
        let loader = if left > 0 {
            let reader = Rank::new(rank + worker as usize * world_size, world_size * workers as usize).map_err(loader_to_py)?;
            let resume = LoaderState::at(&self.plan, start);
            Some(Loader::start(self.dataset.clone(), self.plan.clone(), reader, Some(&resume), &self.config.loader).map_err(loader_to_py)?)
        } else {
            None
        };
        Ok(NativeStream { loader, left })
    }
}

/// An iterator of batch dicts (see [`batch_dict`]).
#[pyclass(module = "clipline._native")]
pub struct NativeStream {
    loader: Option<Loader>,
    left: u64,
}

#[pymethods]
impl NativeStream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(mut slf: PyRefMut<'py, Self>, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let this = &mut *slf;
        let Some(loader) = this.loader.as_mut().filter(|_| this.left > 0) else {
            this.loader = None;
            return Ok(None);
        };
        let (batch, stacked) = py
            .detach(|| {
                let batch = loader.next_batch()?;
                let stacked = stack(&batch.samples);
                Ok::<_, clipline_shard::loader::LoaderError>((batch, stacked))
            })
            .map_err(loader_to_py)?;
        this.left -= 1;
        if this.left == 0 {
            // Stop the fetching thread now rather than when Python collects the iterator.
            this.loader = None;
        }
        let stacked = stacked.map_err(PyValueError::new_err)?;
        let headers: Vec<&RecordHeader> = batch.samples.iter().map(Sample::header).collect();
        let dict = PyDict::new(py);
        for (name, tensor) in stacked.tensors {
            dict.set_item(name, tensor)?;
        }
        dict.set_item("text_length", stacked.text_lengths)?;
        dict.set_item("sample_id", headers.iter().map(|h| &h.sample_id).collect::<Vec<_>>())?;
        dict.set_item("clip_id", headers.iter().map(|h| &h.clip_id).collect::<Vec<_>>())?;
        dict.set_item("caption", headers.iter().map(|h| h.attributes.get("caption")).collect::<Vec<_>>())?;
        dict.set_item("attributes", headers.iter().map(|h| h.attributes.clone()).collect::<Vec<_>>())?;
        dict.set_item("bucket", &batch.bucket)?;
        dict.set_item("epoch", batch.epoch)?;
        dict.set_item("global_batch", batch.global)?;
        dict.set_item("skipped", batch.skipped)?;
        Ok(Some(dict))
    }
}

/// A batch's tensors, stacked.
struct Stacked {
    tensors: Vec<(String, Tensor)>,
    text_lengths: Vec<usize>,
}

/// Stack a batch's samples (one bucket, so equal shapes) along a new first dimension: every
/// tensor as it is (`latent` → [B, T, C, H, W]), except `text`, whose rows are zero-padded to
/// the longest caption, with `text_mask` [B, tokens] true at real tokens. A sample without a
/// caption has no `text` rows. One copy, into one buffer per tensor.
fn stack(samples: &[Sample]) -> Result<Stacked, String> {
    let mut tensors = Vec::new();
    let text_lengths: Vec<usize> = samples.iter().map(|s| s.tensor("text").map_or(0, |t| t.shape().first().copied().unwrap_or(0))).collect();
    let Some(first) = samples.first() else {
        return Ok(Stacked { tensors, text_lengths });
    };
    for info in &first.header().tensors {
        if info.name == "text" {
            continue;
        }
        let mut buffer = Words::new(samples.len() * info.length);
        for (i, s) in samples.iter().enumerate() {
            let view = s.tensor(&info.name).ok_or_else(|| format!("sample {} has no {} tensor, unlike {} in its batch", s.id(), info.name, first.id()))?;
            if view.shape() != info.shape.as_slice() || view.info.dtype != info.dtype {
                return Err(format!("sample {}: {} is {:?} {:?}, {} has {:?} {:?} (one bucket per batch)", s.id(), info.name, view.info.dtype, view.shape(), first.id(), info.dtype, info.shape));
            }
            buffer.bytes_mut()[i * info.length..(i + 1) * info.length].copy_from_slice(view.bytes);
        }
        let shape = [&[samples.len()], info.shape.as_slice()].concat();
        tensors.push((info.name.clone(), buffer.tensor(shape, Element::Record(info.dtype))));
    }
    if let Some(text) = samples.iter().find_map(|s| s.tensor("text")) {
        let (width, dtype) = (text.shape().get(1).copied().unwrap_or(0), text.info.dtype);
        let longest = text_lengths.iter().copied().max().unwrap_or(0);
        let row = width * dtype.size();
        let mut values = Words::new(samples.len() * longest * row);
        let mut mask = Words::new(samples.len() * longest);
        for (i, s) in samples.iter().enumerate() {
            let Some(view) = s.tensor("text") else { continue };
            if view.shape().len() != 2 || view.shape()[1] != width || view.info.dtype != dtype {
                return Err(format!("sample {}: text is {:?} {:?}, {} has [tokens, {width}] {dtype:?}", s.id(), view.info.dtype, view.shape(), first.id()));
            }
            let n = text_lengths[i];
            values.bytes_mut()[i * longest * row..][..n * row].copy_from_slice(view.bytes);
            mask.bytes_mut()[i * longest..][..n].fill(1);
        }
        tensors.push(("text".into(), values.tensor(vec![samples.len(), longest, width], Element::Record(dtype))));
        tensors.push(("text_mask".into(), mask.tensor(vec![samples.len(), longest], Element::Bool)));
    }
    Ok(Stacked { tensors, text_lengths })
}

/// A zeroed buffer of whole 8-byte words that becomes one tensor's storage.
struct Words(Vec<u64>);

impl Words {
    fn new(bytes: usize) -> Self {
        Self(vec![0; bytes.div_ceil(8)])
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        bytemuck::cast_slice_mut(&mut self.0)
    }

    fn tensor(self, shape: Vec<usize>, element: Element) -> Tensor {
        Tensor::new(Arc::new(Storage::Words(self.0)), 0, shape, element)
    }
}
