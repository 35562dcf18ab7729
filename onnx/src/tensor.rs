//! Building input tensors and reading outputs without going through `ndarray` views when a
//! flat buffer and a shape are what the caller has anyway.

use ort::session::SessionInputValue;
use ort::value::PrimitiveTensorElementType;
use ort::value::{DynValue, Tensor};

use crate::OnnxError;

fn build_error(what: &str, e: impl std::fmt::Display) -> OnnxError {
    OnnxError::Run { path: what.into(), message: format!("cannot build input tensor: {e}") }
}

/// An input tensor of this shape (f32, i64, bool, ...).
///
/// # Errors
/// When the shape does not match the data length.
pub fn input<T: PrimitiveTensorElementType + Clone + std::fmt::Debug + 'static>(shape: &[usize], data: Vec<T>) -> Result<SessionInputValue<'static>, OnnxError> {
    Ok(Tensor::from_array((shape.to_vec(), data)).map_err(|e| build_error(std::any::type_name::<T>(), e))?.into_dyn().into())
}

/// An empty f32 tensor of this shape (a zero-length past for the first decoder step).
///
/// # Errors
/// Never in practice; ONNX Runtime errors are passed on.
pub fn empty_f32(shape: &[usize]) -> Result<SessionInputValue<'static>, OnnxError> {
    debug_assert!(shape.contains(&0));
    input::<f32>(shape, Vec::new())
}

/// The shape and data of an f32 output.
///
/// # Errors
/// When the value is not an f32 tensor.
pub fn f32_output<'a>(value: &'a DynValue, name: &str) -> Result<(Vec<usize>, &'a [f32]), OnnxError> {
    let (shape, data) = value
        .try_extract_tensor::<f32>()
        .map_err(|e| OnnxError::Run { path: name.into(), message: format!("output is not an f32 tensor: {e}") })?;
    Ok((shape.iter().map(|&d| d as usize).collect(), data))
}
