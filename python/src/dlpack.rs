//! Tensors handed to PyTorch without a copy, through DLPack.
//!
//! A decoded sample is one 8-byte-aligned buffer holding its tensors at 64-byte-aligned
//! offsets, and a batch is one buffer the stacking wrote. Neither needs copying again: a
//! [`Tensor`] keeps its buffer alive and offers the DLPack protocol (`__dlpack__`,
//! `__dlpack_device__`), so `torch.from_dlpack` views the bytes in place, bf16 included (NumPy
//! has no bf16, so the buffer protocol would not do). The buffer is freed when the last tensor
//! viewing it is.
//!
//! DLPack is a C ABI: this is the crate's only unsafe code, kept to building the struct,
//! handing it over in a capsule and freeing it exactly once (by the consumer, through the
//! deleter, or by the capsule's destructor when nobody consumed it).
#![allow(unsafe_code)]

use std::ffi::{c_void, CStr};
use std::sync::Arc;

use clipline_shard::{DType, Sample};
use pyo3::exceptions::PyBufferError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

/// Bytes a tensor views: a decoded sample's record, or a batch's own buffer.
pub enum Storage {
    /// A sample's decoded record.
    Sample(Sample),
    /// A buffer of whole 8-byte words (alignment for every element type).
    Words(Vec<u64>),
}

impl Storage {
    fn bytes(&self) -> &[u8] {
        match self {
            Storage::Sample(s) => s.bytes(),
            Storage::Words(w) => bytemuck::cast_slice(w),
        }
    }
}

/// Element types a tensor can have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element {
    /// A record's element type.
    Record(DType),
    /// One byte per element, 0 or 1 (masks).
    Bool,
}

impl Element {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Element::Record(d) => d.size(),
            Element::Bool => 1,
        }
    }

    /// DLPack's (type code, bits).
    fn dl(self) -> DLDataType {
        let (code, bits) = match self {
            Element::Record(DType::Bf16) => (DL_BFLOAT, 16),
            Element::Record(DType::F32) => (DL_FLOAT, 32),
            Element::Record(DType::U8) => (DL_UINT, 8),
            Element::Bool => (DL_BOOL, 8),
        };
        DLDataType { code, bits, lanes: 1 }
    }
}

/// A dense, row-major tensor in host memory, offered to PyTorch through DLPack.
#[pyclass(module = "clipline._native", frozen)]
pub struct Tensor {
    storage: Arc<Storage>,
    offset: usize,
    shape: Vec<usize>,
    element: Element,
}

impl Tensor {
    /// A tensor of `shape` at byte `offset` of `storage`.
    ///
    /// # Panics
    /// When the tensor does not lie within the storage (a bug in the caller: records are
    /// checked when they are decoded).
    pub fn new(storage: Arc<Storage>, offset: usize, shape: Vec<usize>, element: Element) -> Self {
        let len = shape.iter().product::<usize>() * element.size();
        assert!(offset + len <= storage.bytes().len(), "tensor outside its buffer");
        assert!(offset.is_multiple_of(element.size()), "misaligned tensor");
        Self { storage, offset, shape, element }
    }
}

#[pymethods]
impl Tensor {
    /// The DLPack capsule PyTorch's `from_dlpack` consumes (a legacy, unversioned one; every
    /// consumer accepts it). Host memory only, so `stream` is ignored.
    #[pyo3(signature = (*, stream=None, max_version=None, dl_device=None, copy=None))]
    fn __dlpack__<'py>(&self, py: Python<'py>, stream: Option<Bound<'py, PyAny>>, max_version: Option<Bound<'py, PyAny>>, dl_device: Option<Bound<'py, PyAny>>, copy: Option<bool>) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = (stream, max_version, dl_device);
        if copy == Some(true) {
            return Err(PyBufferError::new_err("clipline tensors are exported without copying; copy the torch tensor instead"));
        }
        let ndim = self.shape.len();
        let shape: Vec<i64> = self.shape.iter().map(|&d| d as i64).collect();
        let mut strides = vec![1i64; ndim];
        for i in (0..ndim.saturating_sub(1)).rev() {
            strides[i] = strides[i + 1] * shape[i + 1];
        }
        let mut context = Box::new(Context { _storage: self.storage.clone(), shape, strides });
        let data = self.storage.bytes()[self.offset..].as_ptr() as *mut c_void;
        let managed = Box::new(DLManagedTensor {
            dl_tensor: DLTensor {
                data,
                device: DLDevice { device_type: DL_CPU, device_id: 0 },
                ndim: ndim as i32,
                dtype: self.element.dl(),
                shape: context.shape.as_mut_ptr(),
                strides: context.strides.as_mut_ptr(),
                byte_offset: 0,
            },
            manager_ctx: Box::into_raw(context).cast(),
            deleter: Some(delete_managed),
        });
        let pointer = Box::into_raw(managed);
        // SAFETY: `pointer` is a valid DLManagedTensor that the capsule now owns; the name is a
        // static C string, as the capsule API requires.
        unsafe {
            let capsule = pyo3::ffi::PyCapsule_New(pointer.cast(), CAPSULE_NAME.as_ptr(), Some(capsule_destructor));
            if capsule.is_null() {
                delete_managed(pointer);
                return Err(PyErr::fetch(py));
            }
            Ok(Bound::from_owned_ptr(py, capsule).cast_into_unchecked())
        }
    }

    /// Where the tensor lives: (kDLCPU, 0).
    fn __dlpack_device__(&self) -> (i32, i32) {
        (DL_CPU, 0)
    }
}

/// What a handed-over tensor keeps alive: its buffer, and the shape and strides DLPack points at.
struct Context {
    _storage: Arc<Storage>,
    shape: Vec<i64>,
    strides: Vec<i64>,
}

const CAPSULE_NAME: &CStr = c"dltensor";
const DL_CPU: i32 = 1;
const DL_UINT: u8 = 1;
const DL_FLOAT: u8 = 2;
const DL_BFLOAT: u8 = 4;
const DL_BOOL: u8 = 6;

#[repr(C)]
struct DLDevice {
    device_type: i32,
    device_id: i32,
}

#[repr(C)]
struct DLDataType {
    code: u8,
    bits: u8,
    lanes: u16,
}

#[repr(C)]
struct DLTensor {
    data: *mut c_void,
    device: DLDevice,
    ndim: i32,
    dtype: DLDataType,
    shape: *mut i64,
    strides: *mut i64,
    byte_offset: u64,
}

#[repr(C)]
struct DLManagedTensor {
    dl_tensor: DLTensor,
    manager_ctx: *mut c_void,
    deleter: Option<unsafe extern "C" fn(*mut DLManagedTensor)>,
}

/// Free a managed tensor and what it keeps alive (the consumer calls this when done).
unsafe extern "C" fn delete_managed(managed: *mut DLManagedTensor) {
    if managed.is_null() {
        return;
    }
    // SAFETY: both boxes were made by `__dlpack__` and are freed only here, once: the consumer
    // calls the deleter once, and the capsule destructor only when nobody consumed the capsule.
    unsafe {
        let managed = Box::from_raw(managed);
        drop(Box::from_raw(managed.manager_ctx.cast::<Context>()));
    }
}

/// A capsule nobody consumed still owns its tensor; a consumed one was renamed `used_dltensor`.
unsafe extern "C" fn capsule_destructor(capsule: *mut pyo3::ffi::PyObject) {
    // SAFETY: the interpreter calls this with the capsule being destroyed.
    unsafe {
        if pyo3::ffi::PyCapsule_IsValid(capsule, CAPSULE_NAME.as_ptr()) == 1 {
            let managed = pyo3::ffi::PyCapsule_GetPointer(capsule, CAPSULE_NAME.as_ptr());
            delete_managed(managed.cast());
        }
    }
}
