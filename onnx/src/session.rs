//! Model sessions: one ONNX file opened with the configured device and threads, with its
//! input and output names at hand so that a model layout can check its signature up front.

use std::path::{Path, PathBuf};

use ort::session::{Session, SessionInputValue, SessionOutputs};
use serde::{Deserialize, Serialize};

use crate::library::runtime;
use crate::OnnxError;

/// Where a model runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when the loaded library offers it, else the CPU.
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA; opening a model fails when the library cannot run it there.
    Cuda,
}

/// How sessions are opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct SessionOptions {
    /// The device.
    pub device: Device,
    /// Threads inside one operator; 0 lets ONNX Runtime choose (one per core).
    pub intra_threads: usize,
}

/// An open model.
pub struct ModelSession {
    /// The model file, named in every error.
    pub path: PathBuf,
    session: Session,
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// Open the model at `path`.
///
/// # Errors
/// When the runtime cannot be loaded, the file is missing or not a loadable model, or CUDA was
/// asked for and is not available.
pub fn open_session(path: &Path, options: &SessionOptions) -> Result<ModelSession, OnnxError> {
    let rt = runtime()?;
    let model_error = |message: String| OnnxError::Model { path: path.display().to_string(), message };
    if !path.is_file() {
        return Err(model_error("no such file".into()));
    }
    let cuda = match options.device {
        Device::Cpu => false,
        Device::Auto => rt.providers.contains(&"CUDA"),
        Device::Cuda if rt.providers.contains(&"CUDA") => true,
        Device::Cuda => {
            return Err(model_error(format!(
                "device = \"cuda\" but the ONNX Runtime at {} offers only {:?} (install the onnxruntime-gpu library)",
                rt.library.display(),
                rt.providers
            )));
        }
    };
    let mut builder = Session::builder(&rt.environment).map_err(|e| model_error(e.to_string()))?;
    if options.intra_threads > 0 {
        builder = builder.with_intra_threads(options.intra_threads).map_err(|e| model_error(e.to_string()))?;
    }
    if cuda {
        builder = builder.with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()]).map_err(|e| model_error(e.to_string()))?;
    }
    let session = builder.commit_from_file(path).map_err(|e| model_error(e.to_string()))?;
    let inputs = session.inputs().iter().map(|o| o.name().to_string()).collect();
    let outputs = session.outputs().iter().map(|o| o.name().to_string()).collect();
    Ok(ModelSession { path: path.to_path_buf(), session, inputs, outputs })
}

impl ModelSession {
    /// Input names, in graph order.
    pub fn inputs(&self) -> &[String] {
        &self.inputs
    }

    /// Output names, in graph order.
    pub fn outputs(&self) -> &[String] {
        &self.outputs
    }

    /// Whether the graph has an input of this name.
    pub fn has_input(&self, name: &str) -> bool {
        self.inputs.iter().any(|n| n == name)
    }

    /// The declared shape of an input (-1 for dynamic axes).
    pub fn input_shape(&self, name: &str) -> Option<Vec<i64>> {
        let outlet = self.session.inputs().iter().find(|o| o.name() == name)?;
        outlet.dtype().tensor_shape().map(|s| s.iter().copied().collect())
    }

    /// Fail unless the graph has all these inputs and outputs.
    ///
    /// # Errors
    /// Naming what is missing and what the graph has.
    pub fn require(&self, inputs: &[&str], outputs: &[&str], layout: &str) -> Result<(), OnnxError> {
        let missing_in: Vec<&str> = inputs.iter().copied().filter(|n| !self.has_input(n)).collect();
        let missing_out: Vec<&str> = outputs.iter().copied().filter(|n| !self.outputs.iter().any(|o| o == n)).collect();
        if missing_in.is_empty() && missing_out.is_empty() {
            return Ok(());
        }
        Err(self.signature_error(format!(
            "not a {layout} graph: missing inputs {missing_in:?} / outputs {missing_out:?} (it has inputs {:?}, outputs {:?})",
            self.inputs, self.outputs
        )))
    }

    /// A signature error naming this model.
    pub fn signature_error(&self, message: String) -> OnnxError {
        OnnxError::Signature { path: self.path.display().to_string(), message }
    }

    /// Run with named inputs.
    ///
    /// # Errors
    /// When ONNX Runtime fails (bad shapes among the reasons), naming the model.
    pub fn run<'v>(&mut self, inputs: Vec<(String, SessionInputValue<'v>)>) -> Result<SessionOutputs<'_>, OnnxError> {
        let path = self.path.display().to_string();
        self.session.run(inputs).map_err(|e| OnnxError::Run { path, message: e.to_string() })
    }
}
