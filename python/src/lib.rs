//! `clipline._native`: the Rust side of the `clipline` Python package.
//!
//! PyTorch trainers read clipline's shards through this: random access to samples
//! ([`dataset`]), the streaming loader planned exactly as `clipline train` plans it
//! ([`stream`]), and manifest tables of committed parts only ([`table`]). Fetching,
//! verification, decompression and batch stacking run here with the GIL released; tensors
//! reach PyTorch through DLPack without another copy ([`dlpack`]). The Python layer
//! (`python/clipline/`) turns these into `torch` tensors, a `Dataset`, an `IterableDataset` with
//! resumable state, and pyarrow tables. No ONNX Runtime and no ffmpeg: only the shard and
//! storage crates are linked.

mod dataset;
mod dlpack;
mod errors;
mod stream;
mod table;

use std::sync::{Arc, Mutex};

use pyo3::prelude::*;

/// The async runtime of this process. DataLoader workers are forked, and a runtime's threads
/// do not survive a fork: a process whose id differs from the runtime's maker's makes its own
/// (the inherited one is leaked, since shutting it down would wait on threads that do not exist).
pub(crate) fn runtime() -> Arc<tokio::runtime::Runtime> {
    static RUNTIME: Mutex<Option<(u32, Arc<tokio::runtime::Runtime>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut held = RUNTIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((maker, runtime)) = held.as_ref()
        && *maker == pid
    {
        return runtime.clone();
    }
    let runtime = Arc::new(tokio::runtime::Builder::new_multi_thread().worker_threads(2).thread_name("clipline-io").enable_all().build().expect("an async runtime"));
    if let Some(inherited) = held.replace((pid, runtime.clone())) {
        std::mem::forget(inherited);
    }
    runtime
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<dataset::NativeDataset>()?;
    m.add_class::<stream::NativePlan>()?;
    m.add_class::<stream::NativeStream>()?;
    m.add_class::<dlpack::Tensor>()?;
    m.add_function(wrap_pyfunction!(table::committed_table_parts, m)?)?;
    m.add("CorruptSampleError", m.py().get_type::<errors::CorruptSampleError>())?;
    m.add("LoaderError", m.py().get_type::<errors::LoaderError>())?;
    Ok(())
}
