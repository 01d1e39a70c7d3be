//! Adamax, as PyTorch's: `g += wd·p`; `m = β1 m + (1−β1) g`, `u = max(β2·u, |g| + eps)`,
//! `p -= lr/(1−β1ᵗ) · m / u`; with `bias_correction: false`, `p -= lr · m / u` (the Adamax of
//! MAGAN's official TensorFlow code, from openai/iaf). On the CPU the same arithmetic runs as
//! three fused in-place passes ([`super::fused`]).

use super::fused::{self, Family};
use super::{ema, with_weight_decay, ParamState, UpdateRule};
use candle_core::{Result, Tensor as CT};

pub(super) struct Adamax {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub bias_correction: bool,
}

impl UpdateRule for Adamax {
    fn step(&self, p: &mut ParamState, x: CT, g: CT, lr: f64, t: i32) -> Result<CT> {
        let (beta1, beta2, eps) = (self.beta1, self.beta2, self.eps);
        let g = with_weight_decay(g, &x, self.weight_decay)?;
        let m = ema(&p.m, &g, beta1)?;
        let gabs = (g.abs()? + eps)?;
        let u = match &p.v {
            None => gabs,
            Some(u) => (u * beta2)?.maximum(&gabs)?,
        };
        let bc1 = if self.bias_correction {
            1.0 - beta1.powi(t)
        } else {
            1.0
        };
        let upd = (m.div(&u)? * (lr / bc1))?;
        p.m = Some(m);
        p.v = Some(u);
        x - upd
    }

    fn fused_step(&self, p: &mut ParamState, g: &CT, lr: f64) -> Result<bool> {
        fused::moments_step(
            p,
            g,
            lr,
            Family::Adamax,
            (self.beta1, self.beta2, self.eps, self.weight_decay),
            self.bias_correction,
        )
    }
}
