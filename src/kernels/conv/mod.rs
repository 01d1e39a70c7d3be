//! 2-D convolutions that are fast on the CPU and differentiable to any order.
//!
//! candle's CPU `conv_transpose2d` is a naive loop, and candle differentiates `conv2d` with it,
//! so every convolutional backward pass (and a gradient penalty differentiates twice) runs
//! through that loop. Here a convolution is three custom ops that are closed under
//! differentiation (each is bilinear, and the adjoint of each is built from the other two):
//!
//! - `Conv(x, w)`: the convolution `y = w ⋆ x`;
//! - `ConvT(y, w)`: its adjoint in `x` (the transposed convolution, `∂/∂x ⟨y, w ⋆ x⟩`);
//! - `WGrad(x, y)`: its adjoint in `w` (the weight gradient, `∂/∂w ⟨y, w ⋆ x⟩`).
//!
//! With `⟨Conv(x, w), y⟩ = ⟨x, ConvT(y, w)⟩ = ⟨w, WGrad(x, y)⟩`, each op's backward pass is a
//! pair of the others, so gradients of any order stay fast. The work is done in chunks of a few
//! samples at a time, in parallel (on candle's pool, [`threads`]): a chunk's image patches are
//! gathered into a small column buffer (im2col), multiplied by the weight (the `gemm` crate, as
//! candle's matmul), and the result written into the NCHW output (or scattered back, col2im). The columns are laid out
//! one of two ways, whichever is faster for the layer ([`planar`] for few channels and the
//! convolution itself, [`channels_last`] for the adjoints of deep layers). 3×3 "same"
//! convolutions of 8 channels and more (the lens's) skip the columns: [`winograd`] runs them
//! with 2.25× fewer multiplications, and so their adjoint in `x`, which is such a convolution
//! too ([`as_convolution`]). The column and
//! staging buffers are kept per thread between calls ([`Scratch`]); nothing is kept for the
//! backward pass but the op's two inputs. A backward pass skips the gradients nobody asked for
//! ([`needs_grad`]: the weights' while a penalty differentiates with respect to D's input, the
//! data's, a frozen net's). On other devices candle's own kernels are used.

mod channels_last;
mod planar;
mod transpose;
mod winograd;

use super::gemm::{matmul, Float};
use super::{needs_grad, threads};
use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

/// Geometry shared by the three ops: an image [N, C, H, W], a weight [O, C, kh, kw], stride and
/// padding, and the grid of window positions [Ho, Wo] (the convolution's output is
/// [N, O, Ho, Wo]).
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

/// Columns per chunk the GEMM should see at least (fewer samples per chunk would make it a
/// matrix-vector product).
const CHUNK_COLUMNS: usize = 512;

/// Channels from which the columns are gathered channels-last (see [`Geometry::channels_last`]).
const CHANNELS_LAST_MIN: usize = 64;

impl Geometry {
    /// Rows of the column matrix: C·kh·kw.
    fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Window positions per sample: Ho·Wo.
    fn positions(&self) -> usize {
        self.ho * self.wo
    }
    fn plane(&self) -> usize {
        self.h * self.w
    }
    fn image_shape(&self) -> Shape {
        (self.n, self.c, self.h, self.w).into()
    }
    fn output_shape(&self) -> Shape {
        (self.n, self.o, self.ho, self.wo).into()
    }
    fn weight_shape(&self) -> Shape {
        (self.o, self.c, self.kh, self.kw).into()
    }
    /// Samples per chunk: enough for [`CHUNK_COLUMNS`] columns, but no fewer chunks than
    /// threads where the batch allows.
    fn chunk(&self) -> usize {
        self.samples_per_chunk(self.positions(), CHUNK_COLUMNS)
    }
    /// Samples per chunk for `want` columns of `per_sample` each, but no fewer chunks than
    /// threads where the batch allows.
    fn samples_per_chunk(&self, per_sample: usize, want: usize) -> usize {
        let threads = threads::count();
        want.div_ceil(per_sample.max(1))
            .clamp(1, self.n.div_ceil(threads).max(1))
    }
    /// Whether the transposed convolution and the weight gradient gather their columns from a
    /// channels-last copy ([`channels_last`]) rather than from the image as it lies
    /// ([`planar`]): where the channels are many. Measured on the papers' layers, channels-last
    /// is faster from 64 channels up (the deep DCGAN layers) and slower below (the 3-channel
    /// first layer, the 32-channel lens); numbers in BENCHMARKS.md, "Design measurements".
    fn channels_last(&self) -> bool {
        self.c >= CHANNELS_LAST_MIN
    }
}

/// The element types the convolutions run on: [`Float`] with this thread's scratch buffers and
/// the 8×8 transpose kernel.
pub(super) trait ConvFloat: Float {
    /// This thread's convolution buffers for this type.
    fn scratch() -> &'static std::thread::LocalKey<std::cell::Cell<Scratch<Self>>>;
    /// Whether [`ConvFloat::transpose8`] has a vector kernel on this CPU.
    fn has_transpose8() -> bool {
        false
    }
    /// `dst[c·drs + r] (+)= src[r·srs + c]` for `r, c < 8` (see [`transpose`]); only called
    /// where [`ConvFloat::has_transpose8`].
    fn transpose8<const ADD: bool>(_src: &[Self], _srs: usize, _dst: &mut [Self], _drs: usize) {
        unreachable!("no 8×8 transpose kernel for this type")
    }
}
impl ConvFloat for f32 {
    fn scratch() -> &'static std::thread::LocalKey<std::cell::Cell<Scratch<f32>>> {
        &SCRATCH_F32
    }
    fn has_transpose8() -> bool {
        transpose::has_avx()
    }
    fn transpose8<const ADD: bool>(src: &[f32], srs: usize, dst: &mut [f32], drs: usize) {
        transpose::f32_8x8::<ADD>(src, srs, dst, drs)
    }
}
impl ConvFloat for f64 {
    fn scratch() -> &'static std::thread::LocalKey<std::cell::Cell<Scratch<f64>>> {
        &SCRATCH_F64
    }
}

/// A chunk's working buffers, kept per thread between calls (the same shapes come back every
/// step): the padded channels-last image, the columns, and the chunk's `y` rearranged for the
/// product ([O, nb·P] side by side, or [nb·P, O] transposed).
#[derive(Default)]
pub(super) struct Scratch<T> {
    pad: Vec<T>,
    cols: Vec<T>,
    tmp: Vec<T>,
}

thread_local! {
    static SCRATCH_F32: std::cell::Cell<Scratch<f32>> = std::cell::Cell::default();
    static SCRATCH_F64: std::cell::Cell<Scratch<f64>> = std::cell::Cell::default();
}

/// Runs `f` with this thread's scratch buffers. They are taken out of the thread-local for the
/// call, so a nested use gets fresh buffers instead of a borrow error.
fn with_scratch<T: ConvFloat, R>(f: impl FnOnce(&mut Scratch<T>) -> R) -> R {
    let key = T::scratch();
    let mut s = key.take();
    let r = f(&mut s);
    key.set(s);
    r
}

/// The first `n` elements of `v`, grown (never shrunk) as needed; the contents are whatever the
/// last user left, so the caller overwrites or clears them.
fn buf<T: ConvFloat>(v: &mut Vec<T>, n: usize) -> &mut [T] {
    if v.len() < n {
        v.resize(n, T::zero());
    }
    &mut v[..n]
}

/// The rows of `nb` samples of an [nb, O, P] tensor side by side: [O, nb·P] (the chunk
/// itself for one sample).
fn side_by_side<'a, T: ConvFloat>(
    y: &'a [T],
    nb: usize,
    (o, p): (usize, usize),
    tmp: &'a mut Vec<T>,
) -> &'a [T] {
    if nb == 1 {
        return y;
    }
    let out = buf(tmp, o * nb * p);
    for b in 0..nb {
        for oo in 0..o {
            out[oo * nb * p + b * p..][..p].copy_from_slice(&y[(b * o + oo) * p..][..p]);
        }
    }
    out
}

/// Threads for one chunk's GEMM: all of them when the batch is a single chunk, else one
/// (the chunks run in parallel).
fn gemm_threads(chunks: usize) -> usize {
    if chunks <= 1 {
        threads::count()
    } else {
        1
    }
}

/// `y [N, O, Ho, Wo] = w [O, C, kh, kw] ⋆ x [N, C, H, W]`: by [`winograd`] where it applies,
/// else always from planar columns: for the convolution itself channels-last columns were no
/// faster on the DCGAN layers, the GEMM's layout costing what the gathering saves (BENCHMARKS.md,
/// "Design measurements").
fn conv_fwd<T: ConvFloat>(g: &Geometry, x: &[T], w: &[T]) -> Vec<T> {
    if winograd::applies(g) {
        return winograd::forward(g, x, w);
    }
    let (p, o, plane) = (g.positions(), g.o, g.plane());
    let bg = g.chunk();
    let threads = gemm_threads(g.n.div_ceil(bg));
    let mut y = vec![T::zero(); g.n * o * p];
    if y.is_empty() {
        return y;
    }
    threads::for_each_chunk(&mut y, bg * o * p, |ci, yc| {
        let (b0, nb) = (ci * bg, yc.len() / (o * p));
        let xc = (&x[b0 * g.c * plane..(b0 + nb) * g.c * plane], nb);
        with_scratch(|s| planar::forward(g, xc, w, yc, s, threads))
    });
    y
}

/// With stride 1 and a square kernel, the transposed convolution is a convolution of `y` by
/// the flipped, transposed kernel `w'[c, o, i, j] = w[o, c, k−1−i, k−1−j]` with padding
/// `k−1−p`: its GEMM then sums over O·k² (not O) and writes the small output directly, with no
/// column buffer to scatter back. Only where the image is no larger than the window grid (a
/// "same" convolution): growing a 1×1 input to k×k this way would multiply mostly padding.
fn as_convolution(g: &Geometry) -> Option<Geometry> {
    let same = g.h * g.w <= g.ho * g.wo;
    (g.stride == 1 && g.kh == g.kw && g.padding < g.kh && same).then_some(Geometry {
        n: g.n,
        c: g.o,
        h: g.ho,
        w: g.wo,
        o: g.c,
        kh: g.kh,
        kw: g.kw,
        stride: 1,
        padding: g.kh - 1 - g.padding,
        ho: g.h,
        wo: g.w,
    })
}

/// `w'[c, o, i, j] = w[o, c, k−1−i, k−1−j]` for `w` [O, C, k, k].
fn flip_kernel<T: ConvFloat>(g: &Geometry, w: &[T]) -> Vec<T> {
    let (kk, k) = (g.kh * g.kw, g.kh);
    let mut out = vec![T::zero(); w.len()];
    for o in 0..g.o {
        for c in 0..g.c {
            for i in 0..k {
                for j in 0..k {
                    out[(c * g.o + o) * kk + (k - 1 - i) * k + (k - 1 - j)] =
                        w[(o * g.c + c) * kk + i * k + j];
                }
            }
        }
    }
    out
}

/// `x [N, C, H, W] = ConvT(y [N, O, Ho, Wo], w [O, C, kh, kw])`: the adjoint of [`conv_fwd`]
/// in `x`.
fn conv_t_fwd<T: ConvFloat>(g: &Geometry, y: &[T], w: &[T]) -> Vec<T> {
    if let Some(gc) = as_convolution(g) {
        return conv_fwd(&gc, y, &flip_kernel(g, w));
    }
    let (p, o, plane) = (g.positions(), g.o, g.plane());
    let bg = g.chunk();
    let threads = gemm_threads(g.n.div_ceil(bg));
    let mut x = vec![T::zero(); g.n * g.c * plane];
    if x.is_empty() {
        return x;
    }
    let last = g.channels_last();
    let w: std::borrow::Cow<[T]> = if last {
        channels_last::transposed_weight(g, w).into()
    } else {
        w.into()
    };
    threads::for_each_chunk(&mut x, bg * g.c * plane, |ci, xc| {
        let (b0, nb) = (ci * bg, xc.len() / (g.c * plane));
        let yc = (&y[b0 * o * p..(b0 + nb) * o * p], nb);
        with_scratch(|s| {
            if last {
                channels_last::transposed(g, yc, &w, xc, s, threads)
            } else {
                planar::transposed(g, yc, &w, xc, s, threads)
            }
        })
    });
    x
}

/// `w [O, C, kh, kw] = WGrad(x [N, C, H, W], y [N, O, Ho, Wo])`: the adjoint of [`conv_fwd`]
/// in `w`, `Σₙ yₙ · im2col(xₙ)ᵀ`. The batch is split into a fixed number of parts (one per
/// thread) summed in order while they are put in the weight's layout (in parallel, by rows of
/// the result), so the result does not depend on scheduling.
fn wgrad_fwd<T: ConvFloat>(g: &Geometry, x: &[T], y: &[T]) -> Vec<T> {
    let (k, p, o, plane) = (g.k(), g.positions(), g.o, g.plane());
    let bg = g.chunk();
    let chunks = g.n.div_ceil(bg);
    let parts = threads::count().clamp(1, chunks.max(1));
    let threads = gemm_threads(parts);
    let per_part = chunks.div_ceil(parts);
    let last = g.channels_last();
    let partial: Vec<Vec<T>> = threads::map(parts, |part| {
        let mut acc = vec![T::zero(); o * k];
        with_scratch(|s| {
            for ci in part * per_part..((part + 1) * per_part).min(chunks) {
                let (b0, nb) = (ci * bg, bg.min(g.n - ci * bg));
                let xs = &x[b0 * g.c * plane..(b0 + nb) * g.c * plane];
                let chunk = (xs, &y[b0 * o * p..(b0 + nb) * o * p], nb);
                let accumulate = ci > part * per_part;
                if last {
                    channels_last::wgrad(g, chunk, &mut acc, accumulate, s, threads)
                } else {
                    planar::wgrad(g, chunk, &mut acc, accumulate, s, threads)
                }
            }
        });
        acc
    });
    if last {
        channels_last::wgrad_result(g, &partial)
    } else {
        planar::wgrad_result(g, &partial)
    }
}

/// The three ops.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// The convolution `y = w ⋆ x` (args `x`, `w`).
    Conv,
    /// The transposed convolution (args `y`, `w`), the adjoint of `Conv` in `x`.
    ConvT,
    /// The weight gradient (args `x`, `y`), the adjoint of `Conv` in `w`.
    WGrad,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Conv => "conv2d",
            Kind::ConvT => "conv_transpose2d",
            Kind::WGrad => "conv2d_weight_grad",
        }
    }
    /// The shape of the op's result on geometry `g`.
    fn result_shape(self, g: &Geometry) -> Shape {
        match self {
            Kind::Conv => g.output_shape(),
            Kind::ConvT => g.image_shape(),
            Kind::WGrad => g.weight_shape(),
        }
    }
}

/// One of the ops on one geometry, as a candle custom op.
struct ConvOp(Kind, Geometry);

impl ConvOp {
    fn apply(kind: Kind, g: Geometry, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        a.contiguous()?.apply_op2(&b.contiguous()?, ConvOp(kind, g))
    }
}

fn run<T: ConvFloat>(kind: Kind, g: &Geometry, a: &[T], b: &[T]) -> Vec<T> {
    match kind {
        Kind::Conv => conv_fwd(g, a, b),
        Kind::ConvT => conv_t_fwd(g, a, b),
        Kind::WGrad => wgrad_fwd(g, a, b),
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        crate::kernels::dispatch::check_kernel(self.name())?;
        let (kind, g) = (self.0, &self.1);
        let out = with_two!(kind.name(), s1, l1, s2, l2, |a, b| run(kind, g, a, b));
        Ok((out, kind.result_shape(g)))
    }
    /// With `⟨Conv(x, w), y⟩ = ⟨x, ConvT(y, w)⟩ = ⟨w, WGrad(x, y)⟩`, each op's gradient in each
    /// argument is one of the others applied to the incoming gradient `d` and the other argument.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        d: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        grads(self.0, self.1, a, b, d)
    }
}

/// The gradients of `kind(a, b)` in `a` and `b` (those [`needs_grad`] asks for) for the
/// incoming gradient `d`: see [`ConvOp`]'s `bwd`.
fn grads(
    kind: Kind,
    g: Geometry,
    a: &Tensor,
    b: &Tensor,
    d: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    use Kind::*;
    let ((ka, a1, a2), (kb, b1, b2)) = match kind {
        Conv => ((ConvT, d, b), (WGrad, a, d)),
        ConvT => ((Conv, d, b), (WGrad, d, a)),
        WGrad => ((ConvT, b, d), (Conv, a, d)),
    };
    Ok((
        needs_grad(a)
            .then(|| ConvOp::apply(ka, g, a1, a2))
            .transpose()?,
        needs_grad(b)
            .then(|| ConvOp::apply(kb, g, b1, b2))
            .transpose()?,
    ))
}

/// A convolution or transposed convolution with its bias added (`kind(a, w) + bias[c]`), and
/// optionally a leaky ReLU of slope `s` ∈ [0, 1] after it (0: ReLU), as one op: the bias and
/// the activation are applied to the output in place, where separate ops are more nodes of
/// the graph (each a new output forward; backward, candle's zeroed gradient accumulator and
/// add). Its gradient: the output gradient masked by the activation,
/// `d' = leaky_relu_grad(y, d, s)` (the output `y` is positive where the pre-activation is,
/// for `s` ≥ 0), then the convolution's gradients of `d'` and, in the bias, its channel sum.
/// Only for `Conv` and `ConvT`, whose results are images [N, C, H, W].
struct Biased {
    kind: Kind,
    g: Geometry,
    slope: Option<f64>,
}

impl Biased {
    /// Channels and plane size of the output.
    fn output(&self) -> (usize, usize) {
        let shape = self.kind.result_shape(&self.g);
        let d = shape.dims();
        (d[1], d[2] * d[3])
    }
}

/// `y[n, c, ·] += bias[c]` for `y` [N, C, plane], then the leaky ReLU of `slope` if any.
fn add_bias_in_place<T: ConvFloat>(y: &mut [T], bias: &[T], plane: usize, slope: Option<f64>) {
    let sample = bias.len() * plane;
    if sample == 0 {
        return;
    }
    assert_eq!(y.len() % sample, 0, "bias add: output and bias do not fit");
    let k = T::from_f64(slope.unwrap_or(1.0));
    threads::for_each_chunk(y, sample, |_, ys| {
        super::fused::vectorized(|| {
            for (row, &v) in ys.chunks_mut(plane).zip(bias) {
                if slope.is_some() {
                    for e in row {
                        let a = *e + v;
                        *e = if a > T::zero() { a } else { a * k };
                    }
                } else {
                    for e in row {
                        *e += v;
                    }
                }
            }
        })
    });
}

impl CustomOp3 for Biased {
    fn name(&self) -> &'static str {
        match self.slope {
            None => self.kind.name(),
            Some(_) => match self.kind {
                Kind::ConvT => "conv_transpose2d_leaky_relu",
                _ => "conv2d_leaky_relu",
            },
        }
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
        let (kind, g) = (self.kind, &self.g);
        let (_, plane) = self.output();
        let out = with_cpu!(kind.name(), s1, l1 => a, s2, l2 => w, s3, l3 => bias; {
            let mut y = run(kind, g, a, w);
            add_bias_in_place(&mut y, bias, plane, self.slope);
            y
        });
        Ok((out, kind.result_shape(g)))
    }
    fn bwd(
        &self,
        a: &Tensor,
        w: &Tensor,
        bias: &Tensor,
        res: &Tensor,
        d: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let masked;
        let d = match self.slope {
            Some(s) => {
                masked = super::fused::leaky_relu_grad(res, d, s)?;
                &masked
            }
            None => d,
        };
        let (da, dw) = grads(self.kind, self.g, a, w, d)?;
        let db = needs_grad(bias)
            .then(|| super::fused::channel_sum(d)?.reshape(bias.shape()))
            .transpose()?;
        Ok((da, dw, db))
    }
}

/// A convolution with its bias and a residual input added, `conv(a, w) + bias[c] + skip`, as
/// one op: the end of a residual block's body, whose separate add would be another node of the
/// graph (a new output forward; backward, candle's zeroed accumulator and add for the
/// convolution's output). The weight and bias come as one vector `wb = [w.flatten(), bias]`
/// (candle's custom ops take at most three arguments; the concatenation is a few thousand
/// values). Its gradients: the convolution's and the bias's of `d` (as [`Biased`]), packed
/// the same way, and `d` itself for `skip`.
struct WithSkip(Geometry);

/// `y[n, c, i] += bias[c] + skip[n, c, i]` for `y` and `skip` [N, C, plane].
fn add_bias_and_skip<T: ConvFloat>(y: &mut [T], bias: &[T], skip: &[T], plane: usize) {
    let sample = bias.len() * plane;
    assert!(
        sample > 0 && y.len().is_multiple_of(sample) && skip.len() == y.len(),
        "residual add: output, bias and skip do not fit"
    );
    threads::for_each_chunk(y, sample, |i, ys| {
        let skip = &skip[i * sample..(i + 1) * sample];
        super::fused::vectorized(|| {
            for ((row, sk), &v) in ys.chunks_mut(plane).zip(skip.chunks(plane)).zip(bias) {
                for (e, &s) in row.iter_mut().zip(sk) {
                    *e += v + s;
                }
            }
        })
    });
}

impl CustomOp3 for WithSkip {
    fn name(&self) -> &'static str {
        "conv2d_residual"
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
        let g = &self.0;
        let nw = g.weight_shape().elem_count();
        let out = with_cpu!(self.name(), s1, l1 => a, s2, l2 => wb, s3, l3 => skip; {
            let (w, bias) = wb.split_at(nw);
            let mut y = conv_fwd(g, a, w);
            add_bias_and_skip(&mut y, bias, skip, g.positions());
            y
        });
        Ok((out, g.output_shape()))
    }
    fn bwd(
        &self,
        a: &Tensor,
        wb: &Tensor,
        skip: &Tensor,
        _res: &Tensor,
        d: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = self.0;
        let shape = g.weight_shape();
        let w = wb.narrow(0, 0, shape.elem_count())?.reshape(shape)?;
        let (da, dw) = grads(Kind::Conv, g, a, &w, d)?;
        let dwb = dw
            .map(|dw| {
                let db = super::fused::channel_sum(d)?;
                Tensor::cat(&[dw.flatten_all()?, db.flatten_all()?], 0)
            })
            .transpose()?;
        Ok((da, dwb, needs_grad(skip).then(|| d.clone())))
    }
}

/// `conv2d_biased(x, w, Some(b), stride, padding) + skip`, as one op where `skip` has the
/// output's shape (the end of a residual block; otherwise the sum reports the mismatch).
pub fn conv2d_biased_skip(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    stride: usize,
    padding: usize,
    skip: &Tensor,
) -> Result<Tensor> {
    let g = conv_geometry(x.dims(), w, stride, padding)?;
    let fits = skip.dims() == g.output_shape().dims() && b.elem_count() == g.o;
    if !fits || !super::fast_path(&[x, w, b, skip]) {
        return conv2d_biased(x, w, Some(b), stride, padding)? + skip;
    }
    let wb = Tensor::cat(&[w.flatten_all()?, b.flatten_all()?], 0)?;
    x.contiguous()?
        .apply_op3(&wb.contiguous()?, &skip.contiguous()?, WithSkip(g))
}

/// `kind(a, w)`, plus a per-channel `bias` of the output where there is one, then the leaky
/// ReLU of `slope` where there is one (one op where there is a bias and `slope` ∈ [0, 1]).
fn apply_biased(
    kind: Kind,
    g: Geometry,
    a: &Tensor,
    w: &Tensor,
    bias: Option<&Tensor>,
    slope: Option<f64>,
) -> Result<Tensor> {
    let Some(bias) = bias else {
        return with_act(ConvOp::apply(kind, g, a, w)?, slope);
    };
    let fused_slope = slope.filter(|s| (0.0..=1.0).contains(s));
    let op = Biased {
        kind,
        g,
        slope: fused_slope,
    };
    let (c, _) = op.output();
    if bias.elem_count() != c || !super::fast_path(&[a, bias]) || fused_slope != slope {
        // The bias op reports what does not fit.
        return with_act(add_bias(ConvOp::apply(kind, g, a, w)?, Some(bias))?, slope);
    }
    a.contiguous()?
        .apply_op3(&w.contiguous()?, &bias.flatten_all()?.contiguous()?, op)
}

/// `conv2d(x [N,C,H,W], w [O,C,kh,kw])` with stride and zero padding (no dilation, one group).
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_biased(x, w, None, stride, padding)
}

/// [`conv2d`] plus a per-channel bias `b` [O], as one op.
pub fn conv2d_biased(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    conv2d_act(x, w, b, stride, padding, None)
}

/// [`conv2d_biased`], then a leaky ReLU of slope `slope` where there is one (0: ReLU): one op
/// where there is a bias and the slope is in [0, 1].
pub fn conv2d_act(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    slope: Option<f64>,
) -> Result<Tensor> {
    let g = conv_geometry(x.dims(), w, stride, padding)?;
    if !super::fast_path(&[x, w]) {
        let y = add_bias(x.conv2d(w, padding, stride, 1, 1)?, b)?;
        return with_act(y, slope);
    }
    apply_biased(Kind::Conv, g, x, w, b, slope)
}

/// The output shape of [`conv2d`] of an input of shape `x` by `w`, if the convolution takes
/// that input.
pub fn conv2d_output_dims(
    x: &[usize],
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> Option<Vec<usize>> {
    let g = conv_geometry(x, w, stride, padding).ok()?;
    Some(g.output_shape().dims().to_vec())
}

/// The geometry of [`conv2d`] of an input of shape `x` by `w`, or the error for shapes that do
/// not fit.
fn conv_geometry(x: &[usize], w: &Tensor, stride: usize, padding: usize) -> Result<Geometry> {
    let &[n, c, h, wd] = x else {
        candle_core::bail!("conv2d: expected an input [N, C, H, W], got {x:?}");
    };
    let (o, c2, kh, kw) = w.dims4()?;
    if c != c2 {
        candle_core::bail!(
            "conv2d: input has {c} channels but the weight {:?} expects {c2}",
            w.dims()
        );
    }
    if stride == 0 {
        candle_core::bail!("conv2d: the stride must be at least 1, got 0");
    }
    if kh == 0 || kw == 0 {
        candle_core::bail!("conv2d: the kernel must be at least 1x1, got {kh}x{kw}");
    }
    // Sizes from scripts can be anything: no arithmetic here may overflow.
    let padded = |d: usize| padding.checked_mul(2).and_then(|p| p.checked_add(d));
    let (Some(hp), Some(wp)) = (padded(h), padded(wd)) else {
        candle_core::bail!("conv2d: padding {padding} is too large");
    };
    if hp < kh || wp < kw {
        candle_core::bail!(
            "conv2d: a {kh}x{kw} kernel does not fit the {h}x{wd} input with padding {padding}"
        );
    }
    let (ho, wo) = ((hp - kh) / stride + 1, (wp - kw) / stride + 1);
    check_output("conv2d", &[n, o, ho, wo], w.dtype())?;
    Ok(Geometry {
        n,
        c,
        h,
        w: wd,
        o,
        kh,
        kw,
        stride,
        padding,
        ho,
        wo,
    })
}

/// Checks a convolution's output (and the columns of the same size it is computed from) against
/// the memory budget.
fn check_output(op: &str, dims: &[usize], dtype: candle_core::DType) -> Result<()> {
    crate::limits::check_candle(
        &format!("{op}: an output of shape {dims:?} ({})", dtype.as_str()),
        crate::limits::tensor_bytes(dims, dtype).saturating_mul(2),
    )
}

/// `∂⟨gy, conv2d(x, w)⟩/∂x` for an input `x` of shape `x_dims`: the transposed convolution of
/// the output gradient `gy`, differentiable in `gy` and `w` as the op's own backward pass is.
/// For a hand-written backward pass through a net (see `Net::forward_with_input_grad`).
pub fn conv2d_input_grad(
    x_dims: &[usize],
    w: &Tensor,
    gy: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let g = conv_geometry(x_dims, w, stride, padding)?;
    if !super::fast_path(&[gy, w]) {
        candle_core::bail!("conv2d_input_grad: only for the CPU kernels");
    }
    ConvOp::apply(Kind::ConvT, g, gy, w)
}

/// The leaky ReLU of `slope` of `y` where there is one, as its own op.
fn with_act(y: Tensor, slope: Option<f64>) -> Result<Tensor> {
    match slope {
        Some(s) => super::fused::leaky_relu(&y, s),
        None => Ok(y),
    }
}

/// `y + b[c]` where there is a bias.
fn add_bias(y: Tensor, b: Option<&Tensor>) -> Result<Tensor> {
    match b {
        Some(b) => super::fused::channel_add(&y, b),
        None => Ok(y),
    }
}

/// `conv_transpose2d(x [N,C,H,W], w [C,O,kh,kw])` with stride, padding and output padding.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Tensor> {
    conv_transpose2d_biased(x, w, None, stride, padding, output_padding)
}

/// [`conv_transpose2d`] plus a per-channel bias `b` [O], as one op.
pub fn conv_transpose2d_biased(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Tensor> {
    conv_transpose2d_act(x, w, b, stride, padding, output_padding, None)
}

/// [`conv_transpose2d_biased`], then a leaky ReLU of slope `slope` where there is one, as
/// [`conv2d_act`].
pub fn conv_transpose2d_act(
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stride: usize,
    padding: usize,
    output_padding: usize,
    slope: Option<f64>,
) -> Result<Tensor> {
    let g = conv_t_geometry(x.dims(), w, stride, padding, output_padding)?;
    if !super::fast_path(&[x, w]) {
        let y = add_bias(
            x.conv_transpose2d(w, padding, output_padding, stride, 1)?,
            b,
        )?;
        return with_act(y, slope);
    }
    apply_biased(Kind::ConvT, g, x, w, b, slope)
}

/// The geometry of [`conv_transpose2d`] of an input of shape `x` by `w`: that of the
/// convolution whose adjoint it is (the transposed convolution of x by w is the adjoint of the
/// convolution of an [N, O, ho, wo] image by w, read as a conv weight [C, O, kh, kw], whose
/// window grid is x's [h, wd]).
fn conv_t_geometry(
    x: &[usize],
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Geometry> {
    let &[n, c, h, wd] = x else {
        candle_core::bail!("conv_transpose2d: expected an input [N, C, H, W], got {x:?}");
    };
    let (c2, o, kh, kw) = w.dims4()?;
    if c != c2 {
        candle_core::bail!(
            "conv_transpose2d: input has {c} channels but the weight {:?} expects {c2}",
            w.dims()
        );
    }
    if stride == 0 {
        candle_core::bail!("conv_transpose2d: the stride must be at least 1, got 0");
    }
    if output_padding > 0 && output_padding >= stride {
        candle_core::bail!("conv_transpose2d: output padding must be smaller than the stride");
    }
    if kh == 0 || kw == 0 {
        candle_core::bail!("conv_transpose2d: the kernel must be at least 1x1, got {kh}x{kw}");
    }
    if h == 0 || wd == 0 {
        candle_core::bail!("conv_transpose2d: the input {x:?} has no pixels");
    }
    // (d - 1)·stride + k + output_padding - 2·padding, without overflow.
    let out = |d: usize, k: usize| -> Result<usize> {
        let full = (d - 1)
            .checked_mul(stride)
            .and_then(|v| v.checked_add(k))
            .and_then(|v| v.checked_add(output_padding))
            .ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "conv_transpose2d: stride {stride} makes the output of a {h}x{wd} input \
                     larger than memory can address"
                ))
            })?;
        padding
            .checked_mul(2)
            .and_then(|p| full.checked_sub(p))
            .filter(|&v| v > 0)
            .ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "conv_transpose2d: padding {padding} is too large for a {h}x{wd} input"
                ))
            })
    };
    let (ho, wo) = (out(h, kh)?, out(wd, kw)?);
    check_output("conv_transpose2d", &[n, o, ho, wo], w.dtype())?;
    Ok(Geometry {
        n,
        c: o,
        h: ho,
        w: wo,
        o: c,
        kh,
        kw,
        stride,
        padding,
        ho: h,
        wo: wd,
    })
}

/// `∂⟨gy, conv_transpose2d(x, w)⟩/∂x` for an input `x` of shape `x_dims`: the convolution of
/// the output gradient `gy` (see [`conv2d_input_grad`]).
pub fn conv_transpose2d_input_grad(
    x_dims: &[usize],
    w: &Tensor,
    gy: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Tensor> {
    let g = conv_t_geometry(x_dims, w, stride, padding, output_padding)?;
    if !super::fast_path(&[gy, w]) {
        candle_core::bail!("conv_transpose2d_input_grad: only for the CPU kernels");
    }
    ConvOp::apply(Kind::Conv, g, gy, w)
}
