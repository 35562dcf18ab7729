//! Random access to an output's committed samples, and a sample as a Python dict.

use std::collections::HashMap;
use std::sync::Arc;

use clipline_core::manifest::SampleStatus;
use clipline_core::storage::{Store, StoreOptions};
use clipline_shard::record::RecordHeader;
use clipline_shard::{Dataset, Sample, SampleDecoder, ShardError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::dlpack::{Element, Storage, Tensor};
use crate::errors::to_py;
use crate::runtime;

/// The committed samples of an output (local or `s3://`), read one at a time.
#[pyclass(module = "clipline._native", frozen)]
pub struct NativeDataset {
    pub(crate) inner: Arc<Dataset>,
    ids: Vec<String>,
}

#[pymethods]
impl NativeDataset {
    /// Open the output at `uri`; `storage_options` are object_store's S3 keys
    /// (`aws_endpoint`, `aws_access_key_id`, ...) over the `AWS_*` environment.
    #[new]
    #[pyo3(signature = (uri, storage_options=None))]
    fn new(py: Python<'_>, uri: &str, storage_options: Option<HashMap<String, String>>) -> PyResult<Self> {
        let store = open_store(uri, storage_options)?;
        let dataset = py.detach(|| runtime().block_on(Dataset::open(store))).map_err(to_py)?;
        let mut ids: Vec<String> = dataset.rows().iter().filter(|r| r.status == SampleStatus::Ok).map(|r| r.sample_id.clone()).collect();
        ids.sort();
        ids.dedup();
        Ok(Self { inner: Arc::new(dataset), ids })
    }

    /// The readable samples' ids, sorted: index `i` of the dataset is `ids()[i]`.
    fn ids(&self) -> Vec<String> {
        self.ids.clone()
    }

    /// Read, verify and decode one sample (the GIL is released meanwhile).
    fn read<'py>(&self, py: Python<'py>, sample_id: &str) -> PyResult<Bound<'py, PyDict>> {
        let dataset = self.inner.clone();
        let sample = py
            .detach(|| -> Result<Sample, ShardError> {
                let mut decoder = SampleDecoder::new().map_err(|e| ShardError::Sample { sample: sample_id.into(), message: format!("zstd context: {e}") })?;
                runtime().block_on(dataset.read(sample_id, &mut decoder))
            })
            .map_err(to_py)?;
        sample_dict(py, sample)
    }

    /// The dataset's root URI.
    #[getter]
    fn uri(&self) -> String {
        self.inner.store().uri().to_string()
    }
}

/// A store from a URI and the Python side's storage options.
pub fn open_store(uri: &str, storage_options: Option<HashMap<String, String>>) -> PyResult<Store> {
    let options = StoreOptions { s3: storage_options.unwrap_or_default().into_iter().collect(), ..StoreOptions::default() };
    Store::open_with(uri, options).map_err(|e| to_py(e.into()))
}

/// A sample as a dict: its ids, bucket, caption and attributes, and each tensor by name as a
/// [`Tensor`] viewing the decoded record (`latent` [T, C, H, W], `text` [tokens, width]).
fn sample_dict(py: Python<'_>, sample: Sample) -> PyResult<Bound<'_, PyDict>> {
    let header: RecordHeader = sample.header().clone();
    let storage = Arc::new(Storage::Sample(sample));
    let dict = header_dict(py, &header)?;
    for t in &header.tensors {
        dict.set_item(&t.name, Tensor::new(storage.clone(), t.offset, t.shape.clone(), Element::Record(t.dtype)))?;
    }
    let text_length = header.tensors.iter().find(|t| t.name == "text").map_or(0, |t| t.shape.first().copied().unwrap_or(0));
    dict.set_item("text_length", text_length)?;
    Ok(dict)
}

/// The ids, bucket, caption and attributes of a record.
pub fn header_dict<'py>(py: Python<'py>, header: &RecordHeader) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("sample_id", &header.sample_id)?;
    dict.set_item("clip_id", &header.clip_id)?;
    dict.set_item("bucket", &header.bucket)?;
    dict.set_item("caption", header.attributes.get("caption"))?;
    dict.set_item("attributes", header.attributes.clone())?;
    Ok(dict)
}
