//! Batch normalisation with batch statistics (training mode) as fused CPU ops, differentiable
//! twice (gradient penalties differentiate through a discriminator's batch norm).
//!
//! `y = w·x̂ + b`, `x̂ = (x − μ)·r`, `r = 1/√(σ² + ε)`, with `μ` and `σ²` the mean and biased
//! variance of each channel over the batch and spatial dimensions. Composed from the
//! per-channel ops of [`super::fused`] it is five full-size graph nodes, each of which costs a
//! zeroed accumulator and an add in candle's backward pass; here it is one node, whose backward
//! pass is three:
//!
//! - `batch_norm(x, w, b)`: backward `(bn_grad(g, x, w), bn_dot(g, x), channel_sum(g))`;
//! - `bn_grad(dy, x, w) = w·r·(dy − mean(dy) − x̂·mean(dy·x̂))`, the input gradient. It is
//!   linear and symmetric in `dy`, so its backward in `dy` is `bn_grad(G, x, w)`; in `w` it is
//!   `channel_dot(G, bn_grad(dy, x, 1))`, and in `x` the closed form of [`BnGradX`];
//! - `bn_dot(g, x)[c] = Σ g·x̂` over channel `c`, the scale gradient: backward
//!   `(batch_norm(x, G, 0), bn_grad(g, x, G))`.
//!
//! The statistics are computed once, in the forward pass, and shared by the ops of its graph.
//! [`BnGradX`] is the last op of the chain: differentiating through it (third order) is an
//! error. On other devices, or dtypes other than f32/f64, the layer is composed from candle
//! primitives (differentiable to any order).

use super::fast_path;
use super::fused::{channel_dot, channel_sum, channel_sums, filled, other_dims, Channels};
use super::Float;
use crate::kernels::needs_grad;
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use std::sync::{Arc, OnceLock};

/// Per-channel batch statistics.
#[derive(Debug)]
struct Stats {
    mean: Vec<f64>,
    /// Biased variance.
    var: Vec<f64>,
    /// `1/√(var + ε)`.
    rstd: Vec<f64>,
    /// Values per channel.
    count: f64,
}

/// What the ops of one batch-norm graph share: the input's shape and its statistics (set by
/// the forward pass).
#[derive(Clone, Debug)]
struct Norm {
    g: Channels,
    eps: f64,
    stats: Arc<OnceLock<Stats>>,
}

impl Stats {
    /// The means in the inputs' type (the shift of the reductions of the backward ops).
    fn mean_as<T: Float>(&self) -> Vec<T> {
        self.mean.iter().map(|&m| T::from_f64(m)).collect()
    }
}

impl Norm {
    fn stats(&self) -> Result<&Stats> {
        match self.stats.get() {
            Some(s) => Ok(s),
            None => candle_core::bail!("batch_norm: statistics used before the forward pass"),
        }
    }
    fn stats_of<T: Float>(&self, x: &[T]) -> &Stats {
        self.stats.get_or_init(|| {
            let g = &self.g;
            // Sums of (x − s) and (x − s)² about the channel's first value s: one pass,
            // without the cancellation of Σx² − (Σx)²/n when |μ| ≫ σ.
            let shift: Vec<T> = (0..g.c)
                .map(|c| x.get(c * g.inner).copied().unwrap_or_else(T::zero))
                .collect();
            let [s1, s2] = channel_sums(g, [x], &shift, |[x], s| {
                let d = x - s;
                [d, d * d]
            });
            let count = (g.outer * g.inner) as f64;
            let mut stats = Stats {
                mean: vec![],
                var: vec![],
                rstd: vec![],
                count,
            };
            for c in 0..g.c {
                let m = s1[c] / count;
                let var = (s2[c] / count - m * m).max(0.0);
                stats.mean.push(shift[c].to_f64() + m);
                stats.var.push(var);
                stats.rstd.push(1.0 / (var + self.eps).sqrt());
            }
            stats
        })
    }
    fn check_input(&self, x: &Tensor, op: &str) -> Result<()> {
        if x.dims() != self.g.shape.dims() {
            candle_core::bail!(
                "{op}: expected shape {:?}, got {:?}",
                self.g.shape.dims(),
                x.dims()
            );
        }
        Ok(())
    }
}

/// `out = Σₖ aₖ[c]·inₖ + b[c]` over `M` inputs of `g`'s shape, with per-channel coefficients
/// (in f64, applied in `T`).
fn channel_affine<T: Float, const M: usize>(
    g: &Channels,
    inputs: [&[T]; M],
    a: [Vec<f64>; M],
    b: Vec<f64>,
) -> Vec<T> {
    let len = g.outer * g.c * g.inner;
    assert!(inputs.iter().all(|x| x.len() == len) && b.len() == g.c);
    assert!(a.iter().all(|a| a.len() == g.c));
    let a: [Vec<T>; M] = a.map(|a| a.into_iter().map(T::from_f64).collect());
    let b: Vec<T> = b.into_iter().map(T::from_f64).collect();
    let (a, b) = (&a, &b);
    filled(len, g.c * g.inner, move |start, o| {
        let xs = inputs.map(|x| &x[start..start + o.len()]);
        if g.inner == 1 {
            // [N, C]: rows of C values, a coefficient each.
            for (r, o) in o.chunks_mut(g.c).enumerate() {
                let base = r * g.c;
                for (j, o) in o.iter_mut().enumerate() {
                    let mut v = b[j];
                    for k in 0..M {
                        v += a[k][j] * xs[k][base + j];
                    }
                    o.write(v);
                }
            }
        } else {
            for (plane, o) in o.chunks_mut(g.inner).enumerate() {
                let c = plane % g.c;
                let (ak, bc) = (a.each_ref().map(|a| a[c]), b[c]);
                let xs = xs.map(|x| &x[plane * g.inner..(plane + 1) * g.inner]);
                for (i, o) in o.iter_mut().enumerate() {
                    let mut v = bc;
                    for k in 0..M {
                        v += ak[k] * xs[k][i];
                    }
                    o.write(v);
                }
            }
        }
    })
}

/// The per-channel values of a vector input, in f64.
fn per_channel<T: Float>(v: &[T]) -> impl Iterator<Item = f64> + '_ {
    v.iter().map(|v| v.to_f64())
}

/// The `name` and `cpu_fwd` of a three-input op whose `forward(a, b, c)` returns its output,
/// of the shape of the input `self.0.g`.
macro_rules! forward3 {
    ($name:literal) => {
        fn name(&self) -> &'static str {
            $name
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
            let out = with_cpu!($name, s1, l1 => a, s2, l2 => b, s3, l3 => c;
                self.forward(a, b, c)?);
            Ok((out, self.0.g.shape.clone()))
        }
    };
}

struct BatchNorm(Norm);
struct BnGrad(Norm);
struct BnDot(Norm);
/// `∂⟨G, bn_grad(dy, x, w)⟩/∂x`, with `w` held as values: only ever evaluated as a
/// second-order gradient.
struct BnGradX(Norm, Vec<f64>);

impl BatchNorm {
    fn forward<T: Float>(&self, x: &[T], w: &[T], b: &[T]) -> Result<Vec<T>> {
        let s = self.0.stats_of(x);
        // w·r·x + (b − w·r·μ)
        let a: Vec<f64> = per_channel(w).zip(&s.rstd).map(|(w, r)| w * r).collect();
        let c = per_channel(b)
            .zip(&a)
            .zip(&s.mean)
            .map(|((b, a), m)| b - a * m)
            .collect();
        Ok(channel_affine(&self.0.g, [x], [a], c))
    }
}

impl CustomOp3 for BatchNorm {
    forward3!("batch_norm");
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = &self.0;
        Ok((
            needs_grad(x).then(|| bn_grad(n, g, x, w)).transpose()?,
            needs_grad(w).then(|| bn_dot(n, g, x)).transpose()?,
            needs_grad(b).then(|| channel_sum(g)).transpose()?,
        ))
    }
}

impl BnGrad {
    fn forward<T: Float>(&self, dy: &[T], x: &[T], w: &[T]) -> Result<Vec<T>> {
        let (n, s) = (&self.0, self.0.stats()?);
        let mu = s.mean_as::<T>();
        let [sdy, sdyx] = channel_sums(&n.g, [dy, x], &mu, |[dy, x], mu| [dy, dy * (x - mu)]);
        // w·r·(dy − ȳ − r(x − μ)·m) with ȳ = mean(dy), m = mean(dy·x̂).
        let (mut a, mut bx, mut c) = (vec![], vec![], vec![]);
        for (ch, w) in per_channel(w).enumerate() {
            let (r, mu) = (s.rstd[ch], s.mean[ch]);
            let ybar = sdy[ch] / s.count;
            let m = r * sdyx[ch] / s.count;
            let wr = w * r;
            a.push(wr);
            bx.push(-wr * r * m);
            c.push(-wr * ybar + wr * r * m * mu);
        }
        Ok(channel_affine(&n.g, [dy, x], [a, bx], c))
    }
}

impl CustomOp3 for BnGrad {
    forward3!("batch_norm_grad");
    fn bwd(
        &self,
        dy: &Tensor,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        gg: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let n = &self.0;
        let ddy = needs_grad(dy).then(|| bn_grad(n, gg, x, w)).transpose()?;
        let dx = if needs_grad(x) {
            let wv = w
                .flatten_all()?
                .to_dtype(candle_core::DType::F64)?
                .to_vec1()?;
            let op = BnGradX(n.clone(), wv);
            Some(
                gg.contiguous()?
                    .apply_op3(&dy.contiguous()?, &x.contiguous()?, op)?,
            )
        } else {
            None
        };
        let dw = if needs_grad(w) {
            let ones = w.ones_like()?;
            Some(channel_dot(gg, &bn_grad(n, dy, x, &ones)?)?)
        } else {
            None
        };
        Ok((ddy, dx, dw))
    }
}

impl BnGradX {
    fn forward<T: Float>(&self, gg: &[T], dy: &[T], x: &[T]) -> Result<Vec<T>> {
        let (n, s) = (&self.0, self.0.stats()?);
        let mu = s.mean_as::<T>();
        let sums = channel_sums(&n.g, [gg, dy, x], &mu, |[gg, dy, x], mu| {
            let d = x - mu;
            [gg, gg * d, gg * dy, dy, dy * d]
        });
        // With Ḡ = mean(G), gx = mean(G·x̂), ȳ = mean(dy), m = mean(dy·x̂) and
        // gA = mean(G·dy) − ȳ·Ḡ − m·gx, the derivative is
        // w·r²·(x̂·(2·m·gx − gA) − m·(G − Ḡ) − gx·(dy − ȳ)).
        let (mut ag, mut ady, mut ax, mut c) = (vec![], vec![], vec![], vec![]);
        for (ch, &w) in self.1.iter().enumerate() {
            let (r, mu, k) = (s.rstd[ch], s.mean[ch], s.count);
            let [gbar, gx, gdy, ybar, m] = sums.each_ref().map(|v| v[ch] / k);
            let (gx, m) = (r * gx, r * m);
            let ga = gdy - ybar * gbar - m * gx;
            let wr2 = w * r * r;
            let t = wr2 * r * (2.0 * m * gx - ga);
            ag.push(-wr2 * m);
            ady.push(-wr2 * gx);
            ax.push(t);
            c.push(wr2 * (m * gbar + gx * ybar) - t * mu);
        }
        Ok(channel_affine(&n.g, [gg, dy, x], [ag, ady, ax], c))
    }
}

impl CustomOp3 for BnGradX {
    forward3!("batch_norm_grad_x");
    fn bwd(
        &self,
        _gg: &Tensor,
        _dy: &Tensor,
        _x: &Tensor,
        _res: &Tensor,
        _g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        candle_core::bail!(
            "batch_norm: gradients of third order (through the second-order gradient in the \
             input) are not implemented"
        )
    }
}

impl BnDot {
    fn forward<T: Float>(&self, g: &[T], x: &[T]) -> Result<Vec<T>> {
        let (n, s) = (&self.0, self.0.stats()?);
        let mu = s.mean_as::<T>();
        let [sums] = channel_sums(&n.g, [g, x], &mu, |[g, x], mu| [g * (x - mu)]);
        Ok(sums
            .iter()
            .zip(&s.rstd)
            .map(|(v, r)| T::from_f64(v * r))
            .collect())
    }
}

impl CustomOp2 for BnDot {
    fn name(&self) -> &'static str {
        "batch_norm_dot"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let out = with_two!("batch_norm_dot", s1, l1, s2, l2, |g, x| self
            .forward(g, x)?);
        Ok((out, self.0.g.c.into()))
    }
    fn bwd(
        &self,
        g: &Tensor,
        x: &Tensor,
        _res: &Tensor,
        gg: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = &self.0;
        let dg = if needs_grad(g) {
            let zeros = gg.zeros_like()?;
            Some(apply_norm(n, x, gg, &zeros)?)
        } else {
            None
        };
        Ok((dg, needs_grad(x).then(|| bn_grad(n, g, x, gg)).transpose()?))
    }
}

fn apply_norm(n: &Norm, x: &Tensor, w: &Tensor, b: &Tensor) -> Result<Tensor> {
    n.check_input(x, "batch_norm")?;
    x.contiguous()?.apply_op3(
        &w.flatten_all()?.contiguous()?,
        &b.flatten_all()?.contiguous()?,
        BatchNorm(n.clone()),
    )
}

fn bn_grad(n: &Norm, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<Tensor> {
    n.check_input(dy, "batch_norm_grad")?;
    dy.contiguous()?.apply_op3(
        &x.contiguous()?,
        &w.flatten_all()?.contiguous()?,
        BnGrad(n.clone()),
    )
}

fn bn_dot(n: &Norm, g: &Tensor, x: &Tensor) -> Result<Tensor> {
    n.check_input(g, "batch_norm_dot")?;
    g.contiguous()?
        .apply_op2(&x.contiguous()?, BnDot(n.clone()))
}

/// Batch norm with the batch's statistics: `(y, mean, var)` with `y = w·(x − μ)/√(σ² + ε) + b`
/// for per-channel vectors `w`, `b`, and the detached per-channel mean `μ` and biased variance
/// `σ²` (for running statistics). `x` is `[N, C, ...]`.
pub fn batch_norm_train(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let (y, mean, var, _) = batch_norm_train_saved(x, w, b, eps)?;
    Ok((y, mean, var))
}

/// What a training-mode batch norm's forward pass computed that its input gradient needs:
/// the batch statistics (see [`BnSaved::input_grad`]).
pub struct BnSaved(Norm);

impl BnSaved {
    /// `∂⟨dy, batch_norm(x, w, b)⟩/∂x`, the op's own input gradient (`bn_grad`, differentiable
    /// in `dy`, `x` and `w`), for the `x` and `w` of the forward pass that saved this.
    pub fn input_grad(&self, dy: &Tensor, x: &Tensor, w: &Tensor) -> Result<Tensor> {
        bn_grad(&self.0, dy, x, w)
    }
}

/// [`batch_norm_train`] and, with the CPU kernels, what its input gradient needs (`None` where
/// the layer is composed from candle primitives).
pub fn batch_norm_train_saved(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor, Option<BnSaved>)> {
    let g = Channels::of(x, "batch_norm")?;
    g.check_vector(w, "batch_norm (scale)")?;
    g.check_vector(b, "batch_norm (shift)")?;
    if g.outer * g.inner == 0 {
        candle_core::bail!(
            "batch_norm: no values per channel in a tensor of shape {:?}",
            x.dims()
        );
    }
    if !fast_path(&[x, w, b]) {
        let (y, mean, var) = composed(x, w, b, eps, &g)?;
        return Ok((y, mean, var, None));
    }
    let norm = Norm {
        g,
        eps,
        stats: Arc::new(OnceLock::new()),
    };
    let y = apply_norm(&norm, x, w, b)?;
    let s = norm.stats()?;
    let vector = |v: &[f64]| Tensor::from_slice(v, v.len(), x.device())?.to_dtype(x.dtype());
    let (mean, var) = (vector(&s.mean)?, vector(&s.var)?);
    Ok((y, mean, var, Some(BnSaved(norm))))
}

/// [`batch_norm_train`] from candle primitives.
fn composed(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    eps: f64,
    g: &Channels,
) -> Result<(Tensor, Tensor, Tensor)> {
    let dims = other_dims(x.rank());
    let shape = g.broadcast_shape();
    let mu = x.mean_keepdim(dims.clone())?;
    let xc = x.broadcast_sub(&mu)?;
    let var = xc.sqr()?.mean_keepdim(dims)?;
    let scale = w
        .reshape(shape.clone())?
        .broadcast_div(&(&var + eps)?.sqrt()?)?;
    let y = xc
        .broadcast_mul(&scale)?
        .broadcast_add(&b.reshape(shape)?)?;
    Ok((y, mu.flatten_all()?.detach(), var.flatten_all()?.detach()))
}
