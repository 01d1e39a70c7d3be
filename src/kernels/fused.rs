//! Fused CPU kernels, differentiable to any order, for the per-channel maps of biases and batch
//! norm and for (leaky) ReLU.
//!
//! Composed from candle primitives, a bias or a batch-norm scale is a broadcast, whose backward
//! pass is candle's reduction over the batch and spatial dimensions: single-threaded and
//! strided, it was the largest cost after the matrix products in a DCGAN step. A leaky ReLU
//! composed as `relu(x) − s·relu(−x)` is four passes forward and a dozen backward. Here each is
//! one parallel pass, and the ops form sets closed under differentiation, so second-order
//! gradients (gradient penalties) use them too:
//!
//! - `channel_add(x, b) = x + b[c]`: backward `(g, channel_sum(g))`;
//! - `channel_mul(x, s) = x · s[c]`: backward `(channel_mul(g, s), channel_dot(g, x))`;
//! - `channel_sum(x)[c] = Σ x[·, c, ·]`: backward `channel_expand(g)`, and back again;
//! - `channel_dot(x, y)[c] = Σ (x·y)[·, c, ·]`: backward `(channel_mul(y, g), channel_mul(x, g))`;
//! - `leaky_relu(x, s)`: backward `leaky_relu_grad(x, g, s) = g · (x > 0 ? 1 : s)`, which is
//!   linear in `g` and piecewise constant in `x` (its derivative in `x` is zero).
//!
//! "Channel" is dimension 1 of a tensor of rank ≥ 2 ([N, C] or [N, C, H, W]); the per-channel
//! vectors have C elements. On other devices, or dtypes other than f32/f64, the same maps are
//! composed from candle primitives.

use super::threads;
use super::Float;
use super::{cpu_slice, fast_path};
use crate::kernels::needs_grad;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use std::mem::MaybeUninit;

/// A tensor seen as [outer, C, inner] around its channel dimension.
#[derive(Clone, Debug)]
pub(super) struct Channels {
    pub(super) shape: Shape,
    pub(super) outer: usize,
    pub(super) c: usize,
    pub(super) inner: usize,
}

impl Channels {
    pub(super) fn of(x: &Tensor, op: &str) -> Result<Channels> {
        let d = x.dims();
        if d.len() < 2 {
            candle_core::bail!("{op}: expected a tensor [N, C, ...], got shape {d:?}");
        }
        Ok(Channels {
            shape: x.shape().clone(),
            outer: d[0],
            c: d[1],
            inner: d[2..].iter().product(),
        })
    }
    pub(super) fn check_vector(&self, v: &Tensor, op: &str) -> Result<()> {
        if v.elem_count() != self.c {
            candle_core::bail!(
                "{op}: expected {} per-channel values for a tensor of shape {:?}, got shape {:?}",
                self.c,
                self.shape.dims(),
                v.dims()
            );
        }
        Ok(())
    }
    /// The shape a per-channel vector broadcasts from: [1, C, 1, ...].
    pub(super) fn broadcast_shape(&self) -> Vec<usize> {
        let mut s = vec![1; self.shape.rank()];
        s[1] = self.c;
        s
    }
}

/// Work per parallel task, in elements.
const GRAIN: usize = 1 << 15;
/// Tensors smaller than this are done on the calling thread: waking the pool's workers costs more
/// than the pass.
const PARALLEL_MIN: usize = 1 << 17;

/// Runs `f` compiled for the widest SIMD instructions this CPU has (AVX2 or AVX-512, found at
/// run time). The crate is built for baseline x86-64, where the compiler vectorises loops with
/// SSE2, four floats wide; `f` and what it inlines are compiled again inside each variant.
#[inline(always)]
pub(crate) fn vectorized<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// Fills `out` by `f(offset, piece)` over pieces of `out` whose lengths are multiples of
/// `unit`, in parallel for large outputs, each piece [`vectorized`].
pub(crate) fn fill_pieces<T: Send>(out: &mut [T], unit: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let unit = unit.max(1);
    if out.len() < PARALLEL_MIN {
        vectorized(|| f(0, out));
        return;
    }
    let piece = GRAIN.div_ceil(unit) * unit;
    threads::for_each_chunk(out, piece, |i, o| vectorized(|| f(i * piece, o)));
}

/// A vector of `n` elements filled by `f(offset, piece)` as [`fill_pieces`] fills a slice,
/// without zeroing the memory first; `f` must write every element of its piece.
pub(super) fn filled<T: Float>(
    n: usize,
    unit: usize,
    f: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out = Vec::with_capacity(n);
    fill_pieces(&mut out.spare_capacity_mut()[..n], unit, f);
    // SAFETY: the pieces cover the first `n` elements and `f` wrote each one (a panic in `f`
    // propagates before this line, and the vector is dropped with length 0).
    unsafe { out.set_len(n) };
    out
}

/// `out[i] = f(x[i], v[c(i)])` for a per-channel vector `v`.
fn map_channels<T: Float>(
    g: &Channels,
    x: &[T],
    v: &[T],
    f: impl Fn(T, T) -> T + Sync + Copy,
) -> Vec<T> {
    // Every element of the output is written only if the rows and the vector match.
    assert!(v.len() == g.c && x.len() == g.outer * g.c * g.inner);
    filled(x.len(), g.c * g.inner, move |start, o| {
        let x = &x[start..start + o.len()];
        if g.inner == 1 {
            // [N, C]: rows of C values.
            for (o, x) in o.chunks_mut(g.c).zip(x.chunks(g.c)) {
                for ((o, &x), &v) in o.iter_mut().zip(x).zip(v) {
                    o.write(f(x, v));
                }
            }
        } else {
            for (plane, (o, x)) in o.chunks_mut(g.inner).zip(x.chunks(g.inner)).enumerate() {
                let v = v[plane % g.c];
                for (o, &x) in o.iter_mut().zip(x) {
                    o.write(f(x, v));
                }
            }
        }
    })
}

/// `out[i] = v[c(i)]`: a per-channel vector over a tensor of `g`'s shape.
fn expand_channels<T: Float>(g: &Channels, v: &[T]) -> Vec<T> {
    assert_eq!(v.len(), g.c);
    filled(g.outer * g.c * g.inner, g.c * g.inner, |_, o| {
        for (plane, o) in o.chunks_mut(g.inner.max(1)).enumerate() {
            o.fill(MaybeUninit::new(v[plane % g.c]));
        }
    })
}

/// Samples per part of a channel reduction ([`channel_sums`]).
const REDUCE_PART: usize = 8;

/// `K` per-channel sums `out[k][c] = Σ f(inputs, shift[c])[k]` over channel `c`, of `M` inputs
/// of `g`'s shape, in f64. The batch is cut into parts of [`REDUCE_PART`] samples (in parallel
/// for large tensors); each part sums its samples element-wise into f64 accumulators of one
/// sample's size, in memory order (so the loop is vectorised whatever the plane size: the deep
/// DCGAN layers' planes are 4×4), and the parts are added in order, so the result does not
/// depend on the number of threads. (Summing one channel's planes at a time ran several times
/// slower than the memory traffic allows.)
pub(super) fn channel_sums<T: Float, const M: usize, const K: usize>(
    g: &Channels,
    inputs: [&[T]; M],
    shift: &[T],
    f: impl Fn([T; M], T) -> [T; K] + Send + Sync + Copy,
) -> [Vec<f64>; K] {
    let sample = g.c * g.inner;
    let total = g.outer * sample;
    assert!(inputs.iter().all(|x| x.len() == total) && shift.len() == g.c);
    // The shift of each element of a sample.
    let shifts: Vec<T> = (0..sample).map(|i| shift[i / g.inner]).collect();
    let part = |samples: std::ops::Range<usize>| {
        let mut acc: [Vec<f64>; K] = std::array::from_fn(|_| vec![0f64; sample]);
        vectorized(|| {
            for s in samples {
                let xs = inputs.map(|x| &x[s * sample..(s + 1) * sample]);
                for (i, &sh) in shifts.iter().enumerate() {
                    let v = f(xs.map(|x| x[i]), sh);
                    for (a, v) in acc.iter_mut().zip(v) {
                        a[i] += v.to_f64();
                    }
                }
            }
        });
        acc
    };
    let n = g.outer.div_ceil(REDUCE_PART);
    let nth = |i: usize| part(i * REDUCE_PART..g.outer.min((i + 1) * REDUCE_PART));
    let parts: Vec<[Vec<f64>; K]> = if total < PARALLEL_MIN {
        (0..n).map(nth).collect()
    } else {
        threads::map(n, nth)
    };
    std::array::from_fn(|k| {
        (0..g.c)
            .map(|c| {
                let plane = c * g.inner..(c + 1) * g.inner;
                parts
                    .iter()
                    .map(|p| p[k][plane.clone()].iter().sum::<f64>())
                    .sum()
            })
            .collect()
    })
}

/// `out[c] = Σ f(x, y)` over channel `c` ([`channel_sums`] of one quantity).
fn reduce_channels<T: Float>(
    g: &Channels,
    x: &[T],
    y: &[T],
    f: impl Fn(T, T) -> T + Send + Sync + Copy,
) -> Vec<T> {
    let zeros = vec![T::zero(); g.c];
    let [sums] = channel_sums(g, [x, y], &zeros, move |[x, y], _| [f(x, y)]);
    sums.into_iter().map(T::from_f64).collect()
}

struct ChannelAdd(Channels);
struct ChannelMul(Channels);
struct ChannelSum(Channels);
struct ChannelExpand(Channels);
struct ChannelDot(Channels);
struct LeakyRelu(f64);
struct LeakyReluGrad(f64);

impl CustomOp2 for ChannelAdd {
    fn name(&self) -> &'static str {
        "channel_add"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let g = &self.0;
        let out = with_two!("channel_add", s1, l1, s2, l2, |x, b| map_channels(
            g,
            x,
            b,
            |x, b| x + b
        ));
        Ok((out, g.shape.clone()))
    }
    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            Some(g.clone()),
            needs_grad(b).then(|| channel_sum(g)).transpose()?,
        ))
    }
}

impl CustomOp2 for ChannelMul {
    fn name(&self) -> &'static str {
        "channel_mul"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let g = &self.0;
        let out = with_two!("channel_mul", s1, l1, s2, l2, |x, s| map_channels(
            g,
            x,
            s,
            |x, s| x * s
        ));
        Ok((out, g.shape.clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        s: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            needs_grad(x).then(|| channel_mul(g, s)).transpose()?,
            needs_grad(s).then(|| channel_dot(g, x)).transpose()?,
        ))
    }
}

impl CustomOp1 for ChannelSum {
    fn name(&self) -> &'static str {
        "channel_sum"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let g = &self.0;
        let out = with_two!("channel_sum", s, l, s, l, |x, _x| reduce_channels(
            g,
            x,
            x,
            |x, _| x
        ));
        Ok((out, g.c.into()))
    }
    fn bwd(&self, _x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(
            g.contiguous()?.apply_op1(ChannelExpand(self.0.clone()))?,
        ))
    }
}

impl CustomOp1 for ChannelExpand {
    fn name(&self) -> &'static str {
        "channel_expand"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let g = &self.0;
        let out = match s {
            CpuStorage::F32(v) => {
                CpuStorage::F32(expand_channels(g, cpu_slice(v, l, "channel_expand")?))
            }
            CpuStorage::F64(v) => {
                CpuStorage::F64(expand_channels(g, cpu_slice(v, l, "channel_expand")?))
            }
            _ => candle_core::bail!("channel_expand: only f32 and f64 are supported"),
        };
        Ok((out, g.shape.clone()))
    }
    fn bwd(&self, _v: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(channel_sum(g)?))
    }
}

impl CustomOp2 for ChannelDot {
    fn name(&self) -> &'static str {
        "channel_dot"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let g = &self.0;
        let out = with_two!("channel_dot", s1, l1, s2, l2, |x, y| reduce_channels(
            g,
            x,
            y,
            |x, y| x * y
        ));
        Ok((out, g.c.into()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        y: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        Ok((
            needs_grad(x).then(|| channel_mul(y, g)).transpose()?,
            needs_grad(y).then(|| channel_mul(x, g)).transpose()?,
        ))
    }
}

/// `out[i] = f(x[i], y[i])`. `f` is moved into the pieces' closure so that what it captures (a
/// slope) is loaded once: through a captured reference it was reloaded per element, which kept
/// the loop scalar.
fn par_map2<T: Float>(x: &[T], y: &[T], f: impl Fn(T, T) -> T + Sync + Copy) -> Vec<T> {
    assert_eq!(x.len(), y.len());
    filled(x.len(), 1, move |start, o| {
        let (x, y) = (&x[start..start + o.len()], &y[start..start + o.len()]);
        for ((o, &x), &y) in o.iter_mut().zip(x).zip(y) {
            o.write(f(x, y));
        }
    })
}

/// `x · (1 if x > 0 else k)`, written as a product by a selected constant so that it compiles
/// to a compare and a blend rather than a branch (which random signs mispredict half the time:
/// the branchy form ran far slower than candle's ReLU; BENCHMARKS.md).
#[inline(always)]
fn scaled<T: Float>(x: T, v: T, k: T) -> T {
    v * if x > T::zero() { T::one() } else { k }
}

/// [`leaky_relu`] applied to `v` in place (for an op that fuses it with the one before).
pub(super) fn leaky_in_place<T: Float>(v: &mut [T], slope: f64) {
    let k = T::from_f64(slope);
    fill_pieces(v, 1, move |_, piece| {
        for v in piece.iter_mut() {
            *v = scaled(*v, *v, k);
        }
    });
}

fn leaky<T: Float>(x: &[T], slope: f64) -> Vec<T> {
    let k = T::from_f64(slope);
    par_map2(x, x, move |x, _| scaled(x, x, k))
}

fn leaky_grad<T: Float>(x: &[T], g: &[T], slope: f64) -> Vec<T> {
    let k = T::from_f64(slope);
    par_map2(x, g, move |x, g| scaled(x, g, k))
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "leaky_relu"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let slope = self.0;
        let out = with_two!("leaky_relu", s, l, s, l, |x, _x| leaky(x, slope));
        Ok((out, l.shape().clone()))
    }
    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(leaky_relu_grad(x, g, self.0)?))
    }
}

impl CustomOp2 for LeakyReluGrad {
    fn name(&self) -> &'static str {
        "leaky_relu_grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let slope = self.0;
        let out = with_two!("leaky_relu_grad", s1, l1, s2, l2, |x, g| leaky_grad(
            x, g, slope
        ));
        Ok((out, l1.shape().clone()))
    }
    fn bwd(
        &self,
        x: &Tensor,
        _g: &Tensor,
        _res: &Tensor,
        gg: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // Piecewise constant in x (zero derivative almost everywhere), linear in g. candle
        // needs a gradient for every tracked input, so x gets explicit zeros.
        Ok((
            needs_grad(x).then(|| x.zeros_like()).transpose()?,
            Some(leaky_relu_grad(x, gg, self.0)?),
        ))
    }
}

/// `x + b[c]` for a per-channel vector `b`.
pub fn channel_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    let g = Channels::of(x, "channel_add")?;
    g.check_vector(b, "channel_add")?;
    if !fast_path(&[x, b]) {
        return x.broadcast_add(&b.reshape(g.broadcast_shape())?);
    }
    x.contiguous()?
        .apply_op2(&b.flatten_all()?.contiguous()?, ChannelAdd(g))
}

/// `x · s[c]` for a per-channel vector `s`.
pub fn channel_mul(x: &Tensor, s: &Tensor) -> Result<Tensor> {
    let g = Channels::of(x, "channel_mul")?;
    g.check_vector(s, "channel_mul")?;
    if !fast_path(&[x, s]) {
        return x.broadcast_mul(&s.reshape(g.broadcast_shape())?);
    }
    x.contiguous()?
        .apply_op2(&s.flatten_all()?.contiguous()?, ChannelMul(g))
}

/// Dimensions other than the channel one.
pub(super) fn other_dims(rank: usize) -> Vec<usize> {
    (0..rank).filter(|&d| d != 1).collect()
}

/// The per-channel sums `[C]` of `x`.
pub fn channel_sum(x: &Tensor) -> Result<Tensor> {
    let g = Channels::of(x, "channel_sum")?;
    if !fast_path(&[x]) {
        return x.sum_keepdim(other_dims(x.rank()))?.flatten_all();
    }
    x.contiguous()?.apply_op1(ChannelSum(g))
}

/// The per-channel sums `[C]` of `x · y` (same shapes).
pub fn channel_dot(x: &Tensor, y: &Tensor) -> Result<Tensor> {
    let g = Channels::of(x, "channel_dot")?;
    if x.dims() != y.dims() {
        candle_core::bail!(
            "channel_dot: shapes {:?} and {:?} differ",
            x.dims(),
            y.dims()
        );
    }
    if !fast_path(&[x, y]) {
        return (x * y)?.sum_keepdim(other_dims(x.rank()))?.flatten_all();
    }
    x.contiguous()?.apply_op2(&y.contiguous()?, ChannelDot(g))
}

/// `x` where positive, `slope · x` elsewhere (slope 0: ReLU). Its derivative at 0 is `slope`,
/// as in PyTorch.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    super::ensure_float("leaky_relu", x)?;
    if !fast_path(&[x]) {
        // Not relu(x) − slope·relu(−x): candle's relu has the derivative 1 at 0, which would
        // make this one's 1 + slope there.
        return x * leaky_mask(x, slope)?;
    }
    x.contiguous()?.apply_op1(LeakyRelu(slope))
}

/// `x > 0 ? 1 : slope`, a constant of the graph (the generic path's leaky ReLU and its
/// derivative).
fn leaky_mask(x: &Tensor, slope: f64) -> Result<Tensor> {
    x.gt(0.0)?.to_dtype(x.dtype())?.affine(1.0 - slope, slope)
}

/// `g · (x > 0 ? 1 : slope)`: the backward pass of [`leaky_relu`].
pub(crate) fn leaky_relu_grad(x: &Tensor, g: &Tensor, slope: f64) -> Result<Tensor> {
    if !fast_path(&[x, g]) {
        return g * leaky_mask(x, slope)?;
    }
    x.contiguous()?
        .apply_op2(&g.contiguous()?, LeakyReluGrad(slope))
}
