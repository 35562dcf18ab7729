//! The key/value cache of a merged decoder graph (`decoder_model_merged.onnx`): every
//! `past_key_values.*` input is fed, on the next step, the matching `present.*` output of this
//! one; the first step gets zero-length pasts.

use clipline_onnx::tensor::empty_f32;
use clipline_onnx::{ModelSession, OnnxError};
use ort::session::{SessionInputValue, SessionOutputs};
use ort::value::DynValue;

/// One cached tensor: its input and output names and its fixed dimensions.
struct Slot {
    input: String,
    output: String,
    /// `[heads, head_dim]` of a `[batch, heads, seq, head_dim]` tensor.
    dims: [usize; 2],
}

/// The cache of one batch being decoded.
pub struct KvCache {
    slots: Vec<Slot>,
    values: Vec<Option<DynValue>>,
    /// Positions cached so far.
    pub length: usize,
}

impl KvCache {
    /// The slots of `decoder`; dynamic head counts and sizes come from `fallback`
    /// (`[heads, head_dim]` from the model's config).
    ///
    /// # Errors
    /// When a past input has no matching present output, or its dimensions are unknown.
    pub fn new(decoder: &ModelSession, fallback: Option<[usize; 2]>) -> Result<Self, OnnxError> {
        let mut slots = Vec::new();
        for input in decoder.inputs().iter().filter(|n| n.starts_with("past_key_values.")) {
            let output = input.replacen("past_key_values", "present", 1);
            if !decoder.outputs().contains(&output) {
                return Err(decoder.signature_error(format!("input {input} has no matching output {output}")));
            }
            let shape = decoder.input_shape(input).unwrap_or_default();
            let dims = match shape.as_slice() {
                [_, heads, _, dim] if *heads > 0 && *dim > 0 => [*heads as usize, *dim as usize],
                [_, _, _, _] => fallback.ok_or_else(|| decoder.signature_error(format!("{input} has dynamic head dimensions and config.json does not give them")))?,
                other => return Err(decoder.signature_error(format!("{input} has shape {other:?}, expected [batch, heads, past, head_dim]"))),
            };
            slots.push(Slot { input: input.clone(), output, dims });
        }
        let values = slots.iter().map(|_| None).collect();
        Ok(Self { slots, values, length: 0 })
    }

    /// The cache inputs for the next step of a batch of `batch` sequences.
    ///
    /// # Errors
    /// When an empty past cannot be built.
    pub fn inputs(&mut self, batch: usize) -> Result<Vec<(String, SessionInputValue<'static>)>, OnnxError> {
        let mut inputs = Vec::with_capacity(self.slots.len());
        for (slot, value) in self.slots.iter().zip(self.values.iter_mut()) {
            let input = match value.take() {
                Some(v) => v.into(),
                None => empty_f32(&[batch, slot.dims[0], 0, slot.dims[1]])?,
            };
            inputs.push((slot.input.clone(), input));
        }
        Ok(inputs)
    }

    /// Keep this step's presents for the next step; `new_positions` were added.
    ///
    /// # Errors
    /// When an output is missing.
    pub fn update(&mut self, outputs: &mut SessionOutputs<'_>, new_positions: usize) -> Result<(), OnnxError> {
        for (slot, value) in self.slots.iter().zip(self.values.iter_mut()) {
            let present = outputs
                .remove(&slot.output)
                .ok_or_else(|| OnnxError::Run { path: slot.output.clone(), message: "decoder step returned no such output".into() })?;
            *value = Some(present);
        }
        self.length += new_positions;
        Ok(())
    }
}
