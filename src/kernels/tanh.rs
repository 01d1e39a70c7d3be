//! tanh as one custom op with a vectorised f32 kernel.
//!
//! candle's CPU tanh calls libm's `tanhf` per element; once a net's units saturate (|x| > 0.55)
//! `tanhf` goes through `expm1f`, and in Roth et al.'s 3-D experiment (tanh MLPs) the two were
//! 44 % of the samples of a training step. Here f32 uses the rational approximation of Eigen
//! (`generic_fast_tanh_float`, the one TensorFlow's CPU kernels use): odd polynomial of degree
//! 13 over even polynomial of degree 6 on x clamped to ±7.9988, x itself below 4e-4; it is
//! within a few ulp of the exact value, and the loop vectorises. f64 keeps `f64::tanh`.
//!
//! Backward is candle's rule, `g · (1 − y²)` on the output y, built from differentiable ops, so
//! the gradient can be differentiated again.

use super::{fast_path, fused};
use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

struct Tanh;

/// Eigen's fast tanh for f32.
#[inline(always)]
pub fn tanh_f32(x: f32) -> f32 {
    const A1: f32 = 4.893_524_6e-3;
    const A3: f32 = 6.372_619_3e-4;
    const A5: f32 = 1.485_722_4e-5;
    const A7: f32 = 5.122_297e-8;
    const A9: f32 = -8.604_672e-11;
    const A11: f32 = 2.000_188e-13;
    const A13: f32 = -2.760_768_5e-16;
    const B0: f32 = 4.893_525e-3;
    const B2: f32 = 2.268_434_7e-3;
    const B4: f32 = 1.185_347_1e-4;
    const B6: f32 = 1.198_258_4e-6;
    const CLAMP: f32 = 7.998_811_7;
    let c = x.clamp(-CLAMP, CLAMP);
    let x2 = c * c;
    let p = c * (A1 + x2 * (A3 + x2 * (A5 + x2 * (A7 + x2 * (A9 + x2 * (A11 + x2 * A13))))));
    let q = B0 + x2 * (B2 + x2 * (B4 + x2 * B6));
    if x.abs() < 4e-4 {
        x
    } else {
        p / q
    }
}

impl CustomOp1 for Tanh {
    fn name(&self) -> &'static str {
        "tanh"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let out = match s {
            CpuStorage::F32(v) => {
                let x = super::cpu_slice(v, l, "tanh")?;
                CpuStorage::F32(fused::filled(x.len(), 1, |start, o| {
                    let x = &x[start..start + o.len()];
                    for (o, &x) in o.iter_mut().zip(x) {
                        o.write(tanh_f32(x));
                    }
                }))
            }
            CpuStorage::F64(v) => {
                let x = super::cpu_slice(v, l, "tanh")?;
                CpuStorage::F64(fused::filled(x.len(), 1, |start, o| {
                    let x = &x[start..start + o.len()];
                    for (o, &x) in o.iter_mut().zip(x) {
                        o.write(x.tanh());
                    }
                }))
            }
            _ => candle_core::bail!("tanh: expected f32 or f64"),
        };
        Ok((out, l.shape().clone()))
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((g * y.sqr()?.affine(-1.0, 1.0)?)?))
    }
}

/// tanh(x): the custom op on CPU f32/f64 tensors, candle's own elsewhere.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if !fast_path(&[x]) {
        return x.tanh();
    }
    x.contiguous()?.apply_op1(Tanh)
}
