//! Adam and Adamax updates as three in-place passes (first moment, second moment, parameter)
//! over contiguous f32/f64 CPU tensors, instead of a dozen candle ops that each allocate a
//! parameter-sized tensor. The arithmetic is the composed version's, operation by operation in
//! the parameter's dtype, so the results are the same.

use super::ParamState;
use crate::kernels::cpu_slice;
use crate::kernels::fused::fill_pieces;
use candle_core::{CpuStorage, InplaceOp3, Layout, Result, Tensor, WithDType};

/// One element-wise in-place map `a ← f(a, b, c)`; the f64 constants are converted to the
/// tensors' dtype, as candle's affine ops do.
#[derive(Clone, Copy)]
pub enum Pass {
    /// `m ← β1·m + (1−β1)·g'` with `g' = g + wd·x` (args g, x).
    Moment { beta1: f64, wd: f64 },
    /// Adam: `v ← β2·v + (1−β2)·g'²` (args g, x).
    Square { beta2: f64, wd: f64 },
    /// Adamax: `u ← max(β2·u, |g'| + eps)` (args g, x).
    Inf { beta2: f64, eps: f64, wd: f64 },
    /// Adam: `x ← x − (m / (√v·s + eps))·k` with `s = 1/√(1−β2ᵗ)`, `k = lr/(1−β1ᵗ)` (args m, v).
    AdamStep { s: f64, eps: f64, k: f64 },
    /// Adamax: `x ← x − (m / u)·k` (args m, u).
    AdamaxStep { k: f64 },
}

const OP: &str = "optimizer update";

fn run<T: WithDType>(pass: Pass, a: &mut [T], b: &[T], c: &[T]) {
    let t = T::from_f64;
    let piece = |a: &mut [T], b: &[T], c: &[T]| {
        let grad = |g: T, x: T, wd: f64| if wd != 0.0 { g + x * t(wd) } else { g };
        let it = a.iter_mut().zip(b.iter().zip(c));
        match pass {
            Pass::Moment { beta1, wd } => {
                let (k1, k2) = (t(beta1), t(1.0 - beta1));
                it.for_each(|(m, (&g, &x))| *m = *m * k1 + grad(g, x, wd) * k2);
            }
            Pass::Square { beta2, wd } => {
                let (k1, k2) = (t(beta2), t(1.0 - beta2));
                it.for_each(|(v, (&g, &x))| {
                    let g = grad(g, x, wd);
                    *v = *v * k1 + (g * g) * k2
                });
            }
            Pass::Inf { beta2, eps, wd } => {
                let (k1, e) = (t(beta2), t(eps));
                it.for_each(|(u, (&g, &x))| {
                    let g = grad(g, x, wd);
                    let gabs = if g < T::zero() { T::zero() - g } else { g } + e;
                    let decayed = *u * k1;
                    *u = if decayed > gabs { decayed } else { gabs };
                });
            }
            Pass::AdamStep { s, eps, k } => {
                let (s, e, k) = (t(s), t(eps), t(k));
                it.for_each(|(x, (&m, &v))| {
                    let denom = T::from_f64(v.to_f64().sqrt()) * s + e;
                    *x -= (m / denom) * k
                });
            }
            Pass::AdamaxStep { k } => {
                let k = t(k);
                it.for_each(|(x, (&m, &u))| *x -= (m / u) * k);
            }
        }
    };
    fill_pieces(a, 1, |start, a| {
        piece(a, &b[start..start + a.len()], &c[start..start + a.len()])
    });
}

impl InplaceOp3 for Pass {
    fn name(&self) -> &'static str {
        OP
    }
    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let Some((a0, a1)) = l1.contiguous_offsets() else {
            candle_core::bail!("optimizer update: expected contiguous tensors")
        };
        match (s1, s2, s3) {
            (CpuStorage::F32(a), CpuStorage::F32(b), CpuStorage::F32(c)) => run(
                *self,
                &mut a[a0..a1],
                cpu_slice(b, l2, OP)?,
                cpu_slice(c, l3, OP)?,
            ),
            (CpuStorage::F64(a), CpuStorage::F64(b), CpuStorage::F64(c)) => run(
                *self,
                &mut a[a0..a1],
                cpu_slice(b, l2, OP)?,
                cpu_slice(c, l3, OP)?,
            ),
            _ => candle_core::bail!("optimizer update: tensors must all be f32 or all f64"),
        }
        Ok(())
    }
}

/// Whether the fused passes apply: the fast path takes both ([`crate::kernels::dispatch`]: CPU,
/// f32/f64, one dtype), and `x`, updated in place, is contiguous and of `g`'s shape.
pub fn applies(x: &Tensor, g: &Tensor) -> bool {
    crate::kernels::dispatch::fast_path(&[x, g]) && x.is_contiguous() && x.dims() == g.dims()
}

/// `a ← pass(a, b, c)` in place.
pub fn apply(a: &Tensor, b: &Tensor, c: &Tensor, pass: Pass) -> Result<()> {
    a.inplace_op3(&b.contiguous()?, &c.contiguous()?, &pass)
}

/// Which rule's second moment and step [`moments_step`] runs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Adam,
    Adamax,
}

/// One Adam or Adamax update of `p` in three in-place passes, where the tensors allow it
/// ([`applies`]): whether it ran. `(β1, β2, eps, wd)`; `corrected`: divide the step by
/// `1 − β1ᵗ`. Advances `p.step`; the moments are updated in place (zeros before the first
/// step; restored ones are copies).
pub(super) fn moments_step(
    p: &mut ParamState,
    g: &Tensor,
    lr: f64,
    family: Family,
    (beta1, beta2, eps, wd): (f64, f64, f64, f64),
    corrected: bool,
) -> Result<bool> {
    let x = p.var.as_tensor();
    if !applies(x, g) {
        return Ok(false);
    }
    let moment = |s: &Option<Tensor>| match s {
        Some(t) if applies(t, x) => Ok(t.clone()),
        _ => x.zeros_like(),
    };
    let (m, v) = (moment(&p.m)?, moment(&p.v)?);
    p.step += 1;
    let t = p.step as i32;
    let k = if corrected {
        lr / (1.0 - beta1.powi(t))
    } else {
        lr
    };
    apply(&m, g, x, Pass::Moment { beta1, wd })?;
    match family {
        Family::Adam => {
            apply(&v, g, x, Pass::Square { beta2, wd })?;
            let s = 1.0 / (1.0 - beta2.powi(t)).sqrt();
            apply(x, &m, &v, Pass::AdamStep { s, eps, k })?;
        }
        Family::Adamax => {
            apply(&v, g, x, Pass::Inf { beta2, eps, wd })?;
            apply(x, &m, &v, Pass::AdamaxStep { k })?;
        }
    }
    p.m = Some(m);
    p.v = Some(v);
    Ok(true)
}
