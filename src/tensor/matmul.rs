//! Matrix products `op(a)·op(b)` (`op`: the matrix or its transpose) as one custom op that is
//! closed under differentiation: each gradient is the same op with other transposes.
//!
//! candle's own matmul always computes the gradients of both factors; this one computes only
//! those [`needs_grad`] asks for, so a penalty's input-gradient pass skips the weight gradients
//! of linear layers, and the data and frozen weights get none. The product is the `gemm`
//! crate's, reading transposed operands through their strides (no copies).

use super::conv::{matmul, Float};
use crate::autograd::needs_grad;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

/// `op(a)·op(b)` with `a` [m, k] (or [k, m] if transposed) and `b` [k, n] (or [n, k]).
#[derive(Clone, Copy, Debug)]
struct Mm {
    ta: bool,
    tb: bool,
    m: usize,
    k: usize,
    n: usize,
}

/// (row stride, column stride) of `op(x)` for `x` stored row-major with `cols` columns.
fn strides(transposed: bool, cols: usize) -> (usize, usize) {
    if transposed {
        (1, cols)
    } else {
        (cols, 1)
    }
}

fn product<T: Float>(mm: &Mm, a: &[T], b: &[T]) -> Vec<T> {
    let mut out = vec![T::zero(); mm.m * mm.n];
    let a_cols = if mm.ta { mm.m } else { mm.k };
    let b_cols = if mm.tb { mm.k } else { mm.n };
    matmul(
        (mm.m, mm.n, mm.k),
        &mut out,
        (mm.n, 1),
        false,
        a,
        strides(mm.ta, a_cols),
        b,
        strides(mm.tb, b_cols),
        super::threads::count(),
    );
    out
}

impl CustomOp2 for Mm {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let out = with_two!("matmul", s1, l1, s2, l2, |a, b| product(self, a, b));
        Ok((out, (self.m, self.n).into()))
    }
    /// With `C = op(A)·op(B)` and incoming `D = ∂L/∂C`: `∂L/∂op(A) = D·op(B)ᵀ` and
    /// `∂L/∂op(B) = op(A)ᵀ·D`, each transposed back where the argument was.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        d: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let da = || match (self.ta, self.tb) {
            (false, false) => mm(d, false, b, true),
            (false, true) => mm(d, false, b, false),
            (true, false) => mm(b, false, d, true),
            (true, true) => mm(b, true, d, true),
        };
        let db = || match (self.ta, self.tb) {
            (false, false) => mm(a, true, d, false),
            (false, true) => mm(d, true, a, false),
            (true, false) => mm(a, false, d, false),
            (true, true) => mm(d, true, a, true),
        };
        Ok((
            needs_grad(a).then(da).transpose()?,
            needs_grad(b).then(db).transpose()?,
        ))
    }
}

/// `op(a)·op(b)` for matrices `a`, `b` (`ta`/`tb`: use the transpose).
pub fn mm(a: &Tensor, ta: bool, b: &Tensor, tb: bool) -> Result<Tensor> {
    let (ar, ac) = a.dims2()?;
    let (br, bc) = b.dims2()?;
    let (m, k) = if ta { (ac, ar) } else { (ar, ac) };
    let (k2, n) = if tb { (bc, br) } else { (br, bc) };
    if k != k2 {
        candle_core::bail!(
            "matmul: shapes {:?}{} and {:?}{} do not chain",
            a.dims(),
            if ta { "ᵀ" } else { "" },
            b.dims(),
            if tb { "ᵀ" } else { "" }
        );
    }
    let fast = a.device().is_cpu()
        && a.dtype() == b.dtype()
        && matches!(a.dtype(), candle_core::DType::F32 | candle_core::DType::F64);
    if !fast {
        let a = if ta { a.t()? } else { a.clone() };
        let b = if tb { b.t()? } else { b.clone() };
        return a.matmul(&b);
    }
    a.contiguous()?
        .apply_op2(&b.contiguous()?, Mm { ta, tb, m, k, n })
}
