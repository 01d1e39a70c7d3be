//! RMSProp, as PyTorch's (no momentum, not centred): `v = α v + (1−α) g²`,
//! `p -= lr·g / (√v + eps)`.

use super::{ema, ParamState, UpdateRule};
use candle_core::{Result, Tensor as CT};

pub(super) struct RmsProp {
    pub alpha: f64,
    pub eps: f64,
}

impl UpdateRule for RmsProp {
    fn step(&self, p: &mut ParamState, x: CT, g: CT, lr: f64, _t: i32) -> Result<CT> {
        let (alpha, eps) = (self.alpha, self.eps);
        let v = ema(&p.m, &g.sqr()?, alpha)?;
        let upd = (g.div(&(v.sqrt()? + eps)?)? * lr)?;
        p.m = Some(v);
        x - upd
    }
}
