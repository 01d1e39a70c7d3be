//! Columns in the image's own layout: `cols` [C·kh·kw, nb·Ho·Wo], row (c, ki, kj) holding that
//! kernel tap's view of every window. Each row is gathered one image row at a time (Wo values,
//! strided by the stride), which is fast where the image rows are long and the channels few
//! (the first layers, the lens). Used by every convolution, and by the adjoints of layers with
//! few channels; the deep layers' adjoints gather channels-last ([`super::channels_last`]).

use super::transpose::transpose_into;
use super::{buf, matmul, side_by_side, ConvFloat, Geometry, Scratch};
use crate::kernels::fused::vectorized;
use crate::kernels::threads;

impl Geometry {
    /// Image row of window row `o` at kernel offset `k`, if inside the image.
    #[inline]
    fn src(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k)
            .checked_sub(self.padding)
            .filter(|&i| i < size)
    }
    /// The window columns `ow` whose image column at kernel offset `kj` is inside the image.
    #[inline]
    fn valid_cols(&self, kj: usize) -> std::ops::Range<usize> {
        // iw = ow·s + kj − p ∈ [0, w)  ⇔  ow ∈ [⌈(p − kj)/s⌉, ⌈(w + p − kj)/s⌉)
        let (s, p) = (self.stride, self.padding);
        let lo = p.saturating_sub(kj).div_ceil(s);
        let hi = (self.w + p).saturating_sub(kj).div_ceil(s).min(self.wo);
        lo.min(hi)..hi
    }
}

/// The patches of `nb` images (`img`, [nb, C, H, W]) as columns: `cols` [C·kh·kw, nb·Ho·Wo].
#[inline(always)]
fn im2col<T: ConvFloat>(g: &Geometry, img: &[T], nb: usize, cols: &mut [T]) {
    if g.stride == 1 && g.wo == g.w {
        return im2col_shifted(g, img, nb, cols);
    }
    if g.stride == 2 {
        return im2col_padded::<T, 2>(g, img, nb, cols);
    }
    let (p, plane) = (g.positions(), g.plane());
    let ncols = nb * p;
    for (r, row) in cols.chunks_mut(ncols).enumerate() {
        let c = r / (g.kh * g.kw);
        let (ki, kj) = ((r / g.kw) % g.kh, r % g.kw);
        let valid = g.valid_cols(kj);
        for b in 0..nb {
            let base = (b * g.c + c) * plane;
            for oh in 0..g.ho {
                let dst = &mut row[b * p + oh * g.wo..b * p + (oh + 1) * g.wo];
                let Some(ih) = g.src(oh, ki, g.h) else {
                    dst.fill(T::zero());
                    continue;
                };
                dst[..valid.start].fill(T::zero());
                dst[valid.end..].fill(T::zero());
                if valid.is_empty() {
                    continue;
                }
                let src = &img[base + ih * g.w..base + (ih + 1) * g.w];
                let first = valid.start * g.stride + kj - g.padding;
                if g.stride == 1 {
                    dst[valid.clone()].copy_from_slice(&src[first..first + valid.len()]);
                } else {
                    for (i, d) in dst[valid.clone()].iter_mut().enumerate() {
                        *d = src[first + i * g.stride];
                    }
                }
            }
        }
    }
}

/// [`im2col`] for stride `S` (2: D's layers) from a zero-padded copy of each plane, in which
/// every window row is `wo` values `S` apart with no edge to test. The general gather made one
/// short copy per output row, with the edges worked out and filled around it: a fifth of D's
/// 128→256 forward pass, whose window rows are 8 values long.
#[inline(always)]
fn im2col_padded<T: ConvFloat, const S: usize>(g: &Geometry, img: &[T], nb: usize, cols: &mut [T]) {
    let (p, plane, kk) = (g.positions(), g.plane(), g.kh * g.kw);
    let ncols = nb * p;
    let (pd, wp) = (g.padding, g.w + 2 * g.padding);
    // The windows stay inside the padded plane: (ho − 1)·S + kh ≤ h + 2p, and so for columns.
    // (S more: the last window row's run of `wo·S` values may pass the plane's end.)
    let mut pad = vec![T::zero(); (g.h + 2 * pd) * wp + S];
    for b in 0..nb {
        for c in 0..g.c {
            let src = &img[(b * g.c + c) * plane..(b * g.c + c + 1) * plane];
            // Only the interior is written: the zero border is the same for every plane.
            for (ih, row) in src.chunks_exact(g.w).enumerate() {
                let at = (ih + pd) * wp + pd;
                pad[at..at + g.w].copy_from_slice(row);
            }
            for ki in 0..g.kh {
                for kj in 0..g.kw {
                    let r = c * kk + ki * g.kw + kj;
                    let dst = &mut cols[r * ncols + b * p..r * ncols + (b + 1) * p];
                    for (oh, out) in dst.chunks_exact_mut(g.wo).enumerate() {
                        let at = (oh * S + ki) * wp + kj;
                        let run = pad[at..at + g.wo * S].chunks_exact(S);
                        for (d, v) in out.iter_mut().zip(run) {
                            *d = v[0];
                        }
                    }
                }
            }
        }
    }
}

/// [`im2col`] for stride 1 where the window grid is as wide as the image (a "same"
/// convolution, such as the lens's 3×3 with padding 1). Then a kernel tap's row of the columns
/// is the image plane shifted by a constant offset, `(ki − p)·W + (kj − p)`: one contiguous
/// copy per tap and sample, after which the window columns whose source fell off the row's
/// left or right edge (and wrapped to the neighbouring row) are zeroed. Row by row, the
/// general gather made one short copy per output row (measured: im2col was about 15 % of the
/// tempered step, most of it in those copies).
#[inline(always)]
fn im2col_shifted<T: ConvFloat>(g: &Geometry, img: &[T], nb: usize, cols: &mut [T]) {
    let (p, plane) = (g.positions(), g.plane());
    let ncols = nb * p;
    let wo = g.wo;
    for (r, row) in cols.chunks_mut(ncols).enumerate() {
        let c = r / (g.kh * g.kw);
        let (ki, kj) = ((r / g.kw) % g.kh, r % g.kw);
        let valid = g.valid_cols(kj);
        // Output rows whose source row ih = oh + ki − p is inside the image.
        let lo = g.padding.saturating_sub(ki).min(g.ho);
        let hi = (g.h + g.padding).saturating_sub(ki).clamp(lo, g.ho);
        // dst index d reads src index d + off (off = (ki − p)·W + kj − p), within the plane.
        let off = (ki * g.w + kj) as isize - (g.padding * g.w + g.padding) as isize;
        let d0 = ((lo * wo) as isize).max(-off) as usize;
        let d1 = (((hi * wo) as isize)
            .min(plane as isize - off)
            .max(d0 as isize)) as usize;
        for b in 0..nb {
            let src = &img[(b * g.c + c) * plane..(b * g.c + c + 1) * plane];
            let dst = &mut row[b * p..(b + 1) * p];
            dst[..d0].fill(T::zero());
            dst[d1..].fill(T::zero());
            if d1 > d0 {
                let s0 = (d0 as isize + off) as usize;
                dst[d0..d1].copy_from_slice(&src[s0..s0 + (d1 - d0)]);
            }
            for oh in lo..hi {
                let out = &mut dst[oh * wo..(oh + 1) * wo];
                out[..valid.start].fill(T::zero());
                out[valid.end..].fill(T::zero());
            }
        }
    }
}

/// The adjoint of [`im2col`]: columns [C·kh·kw, nb·Ho·Wo] summed into `img` [nb, C, H, W]
/// (which the caller zeroes).
#[inline(always)]
fn col2im<T: ConvFloat>(g: &Geometry, cols: &[T], nb: usize, img: &mut [T]) {
    let (p, plane) = (g.positions(), g.plane());
    let ncols = nb * p;
    for (r, row) in cols.chunks(ncols).enumerate() {
        let c = r / (g.kh * g.kw);
        let (ki, kj) = ((r / g.kw) % g.kh, r % g.kw);
        let valid = g.valid_cols(kj);
        if valid.is_empty() {
            continue;
        }
        for b in 0..nb {
            let base = (b * g.c + c) * plane;
            for oh in 0..g.ho {
                let Some(ih) = g.src(oh, ki, g.h) else {
                    continue;
                };
                let src = &row[b * p + oh * g.wo + valid.start..b * p + oh * g.wo + valid.end];
                let dst = &mut img[base + ih * g.w..base + (ih + 1) * g.w];
                let first = valid.start * g.stride + kj - g.padding;
                for (i, &v) in src.iter().enumerate() {
                    dst[first + i * g.stride] += v;
                }
            }
        }
    }
}

/// The inverse of [`super::side_by_side`]: [O, nb·P] back into [nb, O, P].
fn scatter_rows<T: ConvFloat>(m: &[T], nb: usize, o: usize, p: usize, y: &mut [T]) {
    for b in 0..nb {
        for oo in 0..o {
            y[(b * o + oo) * p..(b * o + oo + 1) * p]
                .copy_from_slice(&m[oo * nb * p + b * p..oo * nb * p + (b + 1) * p]);
        }
    }
}

/// One chunk of the convolution: `y [O, nb·P] = w [O, K] · cols [K, nb·P]`.
pub(super) fn forward<T: ConvFloat>(
    g: &Geometry,
    (x, nb): (&[T], usize),
    w: &[T],
    y: &mut [T],
    s: &mut Scratch<T>,
    threads: usize,
) {
    let (k, p, o) = (g.k(), g.positions(), g.o);
    let cols = buf(&mut s.cols, k * nb * p);
    vectorized(|| im2col(g, x, nb, cols));
    let dims = (o, nb * p, k);
    if nb == 1 {
        matmul(dims, y, (p, 1), false, w, (k, 1), cols, (p, 1), threads);
    } else {
        let tmp = buf(&mut s.tmp, o * nb * p);
        let ld = nb * p;
        matmul(dims, tmp, (ld, 1), false, w, (k, 1), cols, (ld, 1), threads);
        scatter_rows(tmp, nb, o, p, y);
    }
}

/// One chunk of the transposed convolution: `cols [K, nb·P] = wᵀ [K, O] · y [O, nb·P]`,
/// summed back into the image `x` (which arrives zeroed).
pub(super) fn transposed<T: ConvFloat>(
    g: &Geometry,
    (y, nb): (&[T], usize),
    w: &[T],
    x: &mut [T],
    s: &mut Scratch<T>,
    threads: usize,
) {
    let (k, p, o) = (g.k(), g.positions(), g.o);
    let Scratch { cols, tmp, .. } = s;
    let rhs = side_by_side(y, nb, (o, p), tmp);
    let cols = buf(cols, k * nb * p);
    let ld = nb * p;
    matmul(
        (k, ld, o),
        cols,
        (ld, 1),
        false,
        w,
        (1, k),
        rhs,
        (ld, 1),
        threads,
    );
    vectorized(|| col2im(g, cols, nb, x));
}

/// One chunk of the weight gradient, formed transposed: `accᵀ [K, O] (+)= cols [K, nb·P] ·
/// yᵀ [nb·P, O]` (the `gemm` crate then reads the columns as they lie instead of repacking
/// them, which measured faster on the DCGAN and lens layers; BENCHMARKS.md).
pub(super) fn wgrad<T: ConvFloat>(
    g: &Geometry,
    (x, y, nb): (&[T], &[T], usize),
    acc: &mut [T],
    accumulate: bool,
    s: &mut Scratch<T>,
    threads: usize,
) {
    let (k, p, o) = (g.k(), g.positions(), g.o);
    let Scratch { cols, tmp, .. } = s;
    let cols = buf(cols, k * nb * p);
    vectorized(|| im2col(g, x, nb, cols));
    let lhs = side_by_side(y, nb, (o, p), tmp);
    let ld = nb * p;
    matmul(
        (k, o, ld),
        acc,
        (o, 1),
        accumulate,
        cols,
        (ld, 1),
        lhs,
        (1, ld),
        threads,
    );
}

/// The sum of the [`wgrad`] accumulators [K, O] (in order), as the weight's gradient [O, K].
pub(super) fn wgrad_result<T: ConvFloat>(g: &Geometry, parts: &[Vec<T>]) -> Vec<T> {
    const ROWS: usize = 16;
    let (k, o) = (g.k(), g.o);
    let mut w = vec![T::zero(); o * k];
    threads::for_each_chunk(&mut w, ROWS * k, |t, rows| {
        for (i, part) in parts.iter().enumerate() {
            let dims = (k, rows.len() / k);
            transpose_into(&part[t * ROWS..], o, dims, rows, k, i > 0);
        }
    });
    w
}
