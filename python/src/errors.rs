//! Rust errors as Python exceptions a trainer can catch by kind, with the Rust message (which
//! names the output, shard or sample) as theirs.

use clipline_shard::loader::LoaderError as RustLoaderError;
use clipline_shard::ShardError;
use pyo3::exceptions::{PyKeyError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::{create_exception, PyErr};

create_exception!(clipline, CorruptSampleError, PyValueError, "A sample or shard failed verification (checksum, length, record); the message names it and what is wrong.");
create_exception!(clipline, LoaderError, PyRuntimeError, "The streaming loader stopped: a resume state that belongs to other data, too many corrupt samples, a store that cannot be read.");

/// A shard error as the exception its kind calls for.
pub fn to_py(e: ShardError) -> PyErr {
    let message = e.to_string();
    match e {
        ShardError::BadSample { .. } | ShardError::Corrupt { .. } => CorruptSampleError::new_err(message),
        ShardError::NotFound { .. } => PyKeyError::new_err(message),
        ShardError::Io { .. } | ShardError::Store(_) => PyOSError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// A loader error as a `clipline.LoaderError`.
pub fn loader_to_py(e: RustLoaderError) -> PyErr {
    LoaderError::new_err(e.to_string())
}
