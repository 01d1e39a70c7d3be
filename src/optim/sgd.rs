//! SGD with momentum, as PyTorch's: `buf = μ·buf + g` (`buf = g` at the first step),
//! `p -= lr·buf`; without momentum `p -= lr·g`.

use super::{ParamState, UpdateRule};
use candle_core::{Result, Tensor as CT};

pub(super) struct Sgd {
    pub momentum: f64,
}

impl UpdateRule for Sgd {
    fn step(&self, p: &mut ParamState, x: CT, g: CT, lr: f64, _t: i32) -> Result<CT> {
        let momentum = self.momentum;
        let d = if momentum != 0.0 {
            let buf = match &p.m {
                None => g,
                Some(b) => ((b * momentum)? + g)?,
            };
            p.m = Some(buf.clone());
            buf
        } else {
            g
        };
        x - (d * lr)?
    }
}
