//! ONNX Runtime for clipline's model stages (captioner, embedder).
//!
//! The runtime is a shared library loaded when the first model is opened, never downloaded by
//! the build: `scripts/setup.sh` installs the PyPI `onnxruntime` wheel and links its library
//! into `~/.cache/clipline/lib`, where [`locate_library`] finds it without the user exporting
//! anything. The crate `ort` is built for one ONNX Runtime API version; a library of another
//! version is refused here with the path and the version wanted, not at the first session.

mod library;
pub mod model_dir;
mod session;
pub mod tensor;

pub use library::{locate_library, runtime, Runtime, WANTED_VERSION};
pub use session::{open_session, Device, ModelSession, SessionOptions};

/// Why a model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnnxError {
    /// No ONNX Runtime library was found.
    #[error(
        "no ONNX Runtime library found (looked in: {searched}); run scripts/setup.sh, \
         or point CLIPLINE_ORT_LIB at libonnxruntime.so.{WANTED_VERSION}"
    )]
    LibraryNotFound {
        /// Where it looked.
        searched: String,
    },
    /// An earlier attempt to load the runtime failed (its message).
    #[error("{0}")]
    Unavailable(String),
    /// The library could not be loaded or has the wrong version.
    #[error("cannot load ONNX Runtime from {path}: {message} (clipline needs version {WANTED_VERSION})")]
    Library {
        /// The library file.
        path: String,
        /// Why.
        message: String,
    },
    /// A model file is missing or not a model ONNX Runtime can load.
    #[error("cannot load model {path}: {message}")]
    Model {
        /// The model file.
        path: String,
        /// Why.
        message: String,
    },
    /// A model does not have the inputs or outputs expected of its layout.
    #[error("model {path} does not fit: {message}")]
    Signature {
        /// The model file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Running a model failed.
    #[error("running {path} failed: {message}")]
    Run {
        /// The model file.
        path: String,
        /// Why.
        message: String,
    },
}
