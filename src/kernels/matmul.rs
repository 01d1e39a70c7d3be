//! Matrix products `op(a)·op(b)` (`op`: the matrix or its transpose) as one custom op that is
//! closed under differentiation: each gradient is the same op with other transposes.
//!
//! candle's own matmul always computes the gradients of both factors; this one computes only
//! those [`needs_grad`] asks for, so a penalty's input-gradient pass skips the weight gradients
//! of linear layers, and the data and frozen weights get none. The product is the `gemm`
//! crate's, reading transposed operands through their strides (no copies).
//!
//! A linear layer `x·wᵀ + b` is one op as well ([`linear`]): the product accumulates onto the
//! bias rows, and its backward pass is two products and a column sum. Composed as a product
//! and a bias add, it was two nodes, and candle's backward pass starts each node's gradient at
//! zero and adds into it: on `mixture3d`'s MLPs the bias adds cost as much as the products.

use super::fast_path;
use super::fused::{channel_add, channel_sum, leaky_in_place, leaky_relu, leaky_relu_grad};
use super::gemm::{matmul, Float};
use crate::kernels::needs_grad;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

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
        crate::kernels::dispatch::check_kernel(self.name())?;
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
    if !fast_path(&[a, b]) {
        let a = if ta { a.t()? } else { a.clone() };
        let b = if tb { b.t()? } else { b.clone() };
        return a.matmul(&b);
    }
    a.contiguous()?
        .apply_op2(&b.contiguous()?, Mm { ta, tb, m, k, n })
}

/// `x·wᵀ + b` for `x` [n, i], `w` [o, i] and `b` [o], followed by a leaky ReLU of slope
/// `act` where there is one.
#[derive(Clone, Copy, Debug)]
struct Linear {
    n: usize,
    i: usize,
    o: usize,
    act: Option<f64>,
}

fn affine<T: Float>(op: &Linear, x: &[T], w: &[T], b: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(op.n * op.o);
    for _ in 0..op.n {
        out.extend_from_slice(b);
    }
    matmul(
        (op.n, op.o, op.i),
        &mut out,
        (op.o, 1),
        true,
        x,
        (op.i, 1),
        w,
        strides(true, op.i),
        super::threads::count(),
    );
    if let Some(slope) = op.act {
        leaky_in_place(&mut out, slope);
    }
    out
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let out = with_cpu!("linear", s1, l1 => x, s2, l2 => w, s3, l3 => b; affine(self, x, w, b));
        Ok((out, (self.n, self.o).into()))
    }
    /// With incoming `D` [n, o]: `∂L/∂x = D·w`, `∂L/∂w = Dᵀ·x`, `∂L/∂b = Σ_rows D`, with `D`
    /// first through the activation's mask, read from the output `y` (`y > 0` exactly where
    /// the pre-activation is, for a slope in [0, 1]).
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        y: &Tensor,
        d: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let masked;
        let d = match self.act {
            Some(slope) => {
                masked = leaky_relu_grad(y, d, slope)?;
                &masked
            }
            None => d,
        };
        Ok((
            needs_grad(x).then(|| mm(d, false, w, false)).transpose()?,
            needs_grad(w).then(|| mm(d, true, x, false)).transpose()?,
            needs_grad(b)
                .then(|| channel_sum(d)?.reshape(b.shape()))
                .transpose()?,
        ))
    }
}

/// A linear layer: `x·wᵀ (+ b)` for `x` [n, i], `w` [o, i] and a bias of `o` elements.
pub fn linear(x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    let Some(b) = b else {
        return mm(x, false, w, true);
    };
    biased(x, w, b, None)
}

/// `leaky_relu(x·wᵀ + b, slope)` (slope in [0, 1]; 0: ReLU) as one op: one graph node where the
/// layer and its activation were two (each a full-size output, and in the backward pass a
/// zeroed accumulator and an add). Its input gradient is `leaky_relu_grad(y, g)·w`, the mask
/// read from the output `y`.
pub fn linear_leaky_relu(x: &Tensor, w: &Tensor, b: &Tensor, slope: f64) -> Result<Tensor> {
    if !(0.0..=1.0).contains(&slope) {
        candle_core::bail!("linear_leaky_relu: the slope must be in [0, 1], got {slope}");
    }
    biased(x, w, b, Some(slope))
}

fn biased(x: &Tensor, w: &Tensor, b: &Tensor, act: Option<f64>) -> Result<Tensor> {
    let ((n, i), (o, i2)) = (x.dims2()?, w.dims2()?);
    if i != i2 || b.elem_count() != o {
        candle_core::bail!(
            "linear: input {:?}, weight {:?} and bias {:?} do not fit (expected [N, in], [out, in], [out])",
            x.dims(),
            w.dims(),
            b.dims()
        );
    }
    if !fast_path(&[x, w, b]) {
        let y = channel_add(&mm(x, false, w, true)?, b)?;
        return match act {
            Some(slope) => leaky_relu(&y, slope),
            None => Ok(y),
        };
    }
    x.contiguous()?
        .apply_op3(&w.contiguous()?, &b.contiguous()?, Linear { n, i, o, act })
}
