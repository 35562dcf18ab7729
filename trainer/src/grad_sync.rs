//! Gradients summed across data-parallel ranks: every parameter's gradient (zeros where this
//! rank has none, so every rank sends the same layout) in the model's visiting order, plus a
//! few numbers the loop wants summed too (loss, batches), as one flat vector through
//! [`Collective::all_reduce_sum`], then written back.

use burn::module::{AutodiffModule, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData};

use crate::collective::{Collective, CollectiveError};

struct Flatten<'a> {
    grads: &'a GradientsParams,
    out: Vec<f32>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Flatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        match self.grads.get::<B::InnerBackend, D>(param.id) {
            Some(g) => self.out.extend(g.into_data().convert::<f32>().iter::<f32>()),
            None => self.out.extend(std::iter::repeat_n(0.0, param.val().shape().num_elements())),
        }
    }
}

struct Unflatten<'a> {
    grads: &'a mut GradientsParams,
    values: &'a [f32],
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Unflatten<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let shape = value.shape();
        let n = shape.num_elements();
        let data = TensorData::new(self.values[self.offset..self.offset + n].to_vec(), shape);
        self.offset += n;
        self.grads.remove::<B::InnerBackend, D>(param.id);
        self.grads.register::<B::InnerBackend, D>(param.id, Tensor::from_data(data, &value.device()));
    }
}

/// Sum `grads` and `extra` over the ranks of `collective`, in place.
///
/// # Errors
/// When a rank is lost.
pub fn all_reduce<B: AutodiffBackend, M: AutodiffModule<B>>(model: &M, grads: &mut GradientsParams, extra: &mut [f32], collective: &mut Collective) -> Result<(), CollectiveError> {
    let mut flat = Flatten { grads, out: Vec::new() };
    model.visit(&mut flat);
    let mut values = flat.out;
    let params = values.len();
    values.extend_from_slice(extra);
    collective.all_reduce_sum(&mut values)?;
    extra.copy_from_slice(&values[params..]);
    model.visit(&mut Unflatten { grads, values: &values[..params], offset: 0 });
    Ok(())
}
