//! Adam, as PyTorch's (L2 weight decay added to the gradient): `g += wd·p`;
//! `m = β1 m + (1−β1) g`, `v = β2 v + (1−β2) g²`, `p -= lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps)`.
//! On the CPU the same arithmetic runs as three fused in-place passes ([`super::fused`]).

use super::fused::{self, Family};
use super::{ema, with_weight_decay, ParamState, UpdateRule};
use candle_core::{Result, Tensor as CT};

pub(super) struct Adam {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl UpdateRule for Adam {
    fn step(&self, p: &mut ParamState, x: CT, g: CT, lr: f64, t: i32) -> Result<CT> {
        let (beta1, beta2, eps) = (self.beta1, self.beta2, self.eps);
        let g = with_weight_decay(g, &x, self.weight_decay)?;
        let m = ema(&p.m, &g, beta1)?;
        let v = ema(&p.v, &g.sqr()?, beta2)?;
        let bc1 = 1.0 - beta1.powi(t);
        let bc2 = 1.0 - beta2.powi(t);
        let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
        let upd = (m.div(&denom)? * (lr / bc1))?;
        p.m = Some(m);
        p.v = Some(v);
        x - upd
    }

    fn fused_step(&self, p: &mut ParamState, g: &CT, lr: f64) -> Result<bool> {
        fused::moments_step(
            p,
            g,
            lr,
            Family::Adam,
            (self.beta1, self.beta2, self.eps, self.weight_decay),
            true,
        )
    }
}
