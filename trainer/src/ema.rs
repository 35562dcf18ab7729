//! Exponential moving average of the weights, kept on the non-autodiff backend.
//!
//! The EMA model has the trained model's structure, so walking both in the same order pairs
//! their parameters: one pass collects the trained values, a second maps the EMA's.

use std::collections::VecDeque;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::backend::Backend;
use burn::tensor::Tensor;

struct Collect<B: Backend> {
    values: VecDeque<Tensor<B, 1>>,
}

impl<B: Backend> ModuleVisitor<B> for Collect<B> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let value = param.val();
        let n = value.shape().num_elements();
        self.values.push_back(value.reshape([n]));
    }
}

struct Blend<B: Backend> {
    values: VecDeque<Tensor<B, 1>>,
    decay: f64,
}

impl<B: Backend> ModuleMapper<B> for Blend<B> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        let (id, ema, mapper) = param.consume();
        let current = self.values.pop_front().expect("the EMA model has the trained model's parameters").reshape(ema.dims());
        Param::from_mapped_value(id, ema * self.decay + current * (1.0 - self.decay), mapper)
    }
}

/// `ema` moved towards `current` by `1 - decay`.
pub fn update<B: Backend, M: Module<B>>(ema: M, current: &M, decay: f64) -> M {
    let mut collect = Collect { values: VecDeque::new() };
    current.visit(&mut collect);
    ema.map(&mut Blend { values: collect.values, decay })
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::nn::{Initializer, LinearConfig};

    use super::*;

    #[test]
    fn moves_each_weight_towards_the_current_one() {
        let device = Default::default();
        let ema = LinearConfig::new(3, 2).with_initializer(Initializer::Zeros).init::<Flex>(&device);
        let current = LinearConfig::new(3, 2).with_initializer(Initializer::Constant { value: 2.0 }).init::<Flex>(&device);
        let ema = update(ema, &current, 0.75);
        assert!(ema.weight.val().into_data().iter::<f32>().all(|w| (w - 0.5).abs() < 1e-6));
        assert!(ema.bias.unwrap().val().into_data().iter::<f32>().all(|b| (b - 0.5).abs() < 1e-6));
    }
}
