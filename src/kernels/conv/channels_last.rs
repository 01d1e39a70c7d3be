//! Columns from a channels-last copy of the image: each chunk's images are copied, zero-padded,
//! into [nb, H+2p, W+2p, C], where a window's row of kernel taps is one contiguous run of kw·C
//! values; the columns are then rows `cols` [nb·Ho·Wo, kh·kw·C] in (ki, kj, c) order, each kh
//! plain copies. Used by the transposed convolution and the weight gradient where the channels
//! are many and the image rows short (the deep DCGAN layers: 8×8 and 4×4 images of 256–512
//! channels), where gathering image rows one at a time ([`super::planar`]) spends more time on
//! loop overhead than on copying (measurements: BENCHMARKS.md, "Design measurements").

use super::transpose::{transpose, transpose_into};
use super::{buf, matmul, side_by_side, ConvFloat, Geometry, Scratch};
use crate::kernels::fused::vectorized;
use crate::kernels::threads;

impl Geometry {
    /// Padded image height and width: H + 2p, W + 2p.
    fn padded(&self) -> (usize, usize) {
        (self.h + 2 * self.padding, self.w + 2 * self.padding)
    }
    /// Elements of `nb` padded channels-last images.
    fn padded_len(&self, nb: usize) -> usize {
        let (hp, wp) = self.padded();
        nb * hp * wp * self.c
    }
}

/// `img` [nb, C, H, W] into the zero-padded, channels-last `pad` [nb, H+2p, W+2p, C].
fn to_padded<T: ConvFloat>(g: &Geometry, img: &[T], nb: usize, pad: &mut [T]) {
    let (c, h, w, p) = (g.c, g.h, g.w, g.padding);
    let (hp, wp) = g.padded();
    if p > 0 {
        pad.fill(T::zero());
    }
    for b in 0..nb {
        for ih in 0..h {
            let src = &img[b * c * h * w + ih * w..];
            let dst = &mut pad[((b * hp + ih + p) * wp + p) * c..];
            transpose(src, h * w, (c, w), dst, c);
        }
    }
}

/// The inverse of [`to_padded`] (the padding dropped): `pad` back into `img`.
fn from_padded<T: ConvFloat>(g: &Geometry, pad: &[T], nb: usize, img: &mut [T]) {
    let (c, h, w, p) = (g.c, g.h, g.w, g.padding);
    let (hp, wp) = g.padded();
    for b in 0..nb {
        for ih in 0..h {
            let src = &pad[((b * hp + ih + p) * wp + p) * c..];
            let dst = &mut img[b * c * h * w + ih * w..];
            transpose(src, c, (w, c), dst, h * w);
        }
    }
}

/// `w` [O, C, kh, kw] in the columns' order, [O, kh, kw, C], as the transposed convolution's
/// product reads it.
pub(super) fn transposed_weight<T: ConvFloat>(g: &Geometry, w: &[T]) -> Vec<T> {
    let (c, kk) = (g.c, g.kh * g.kw);
    let mut out = vec![T::zero(); w.len()];
    threads::for_each_chunk(&mut out, g.k(), |oo, dst| {
        transpose(&w[oo * g.k()..], kk, (c, kk), dst, c)
    });
    out
}

/// Where in `pad` each run of kw·C values of the columns `cols` [nb·Ho·Wo, kh·kw·C] lies, in
/// the columns' order (window by window, kernel row by kernel row): the one description of the
/// layout that [`im2col`] and its adjoint [`col2im`] share.
fn window_runs(g: &Geometry, nb: usize) -> impl Iterator<Item = usize> + '_ {
    let (c, s, p) = (g.c, g.stride, g.positions());
    let (hp, wp) = g.padded();
    (0..nb * p).flat_map(move |r| {
        let (b, oh, ow) = (r / p, (r % p) / g.wo, r % g.wo);
        (0..g.kh).map(move |ki| ((b * hp + oh * s + ki) * wp + ow * s) * c)
    })
}

/// The windows of `nb` padded channels-last images as rows: `cols` [nb·Ho·Wo, kh·kw·C].
fn im2col<T: ConvFloat>(g: &Geometry, pad: &[T], nb: usize, cols: &mut [T]) {
    let run = g.kw * g.c;
    for (dst, at) in cols.chunks_exact_mut(run).zip(window_runs(g, nb)) {
        dst.copy_from_slice(&pad[at..][..run]);
    }
}

/// The adjoint of [`im2col`]: rows [nb·Ho·Wo, kh·kw·C] summed into `pad` (which the caller
/// zeroes).
#[inline(always)]
fn col2im<T: ConvFloat>(g: &Geometry, cols: &[T], nb: usize, pad: &mut [T]) {
    let run = g.kw * g.c;
    for (src, at) in cols.chunks_exact(run).zip(window_runs(g, nb)) {
        for (d, &v) in pad[at..][..run].iter_mut().zip(src) {
            *d += v;
        }
    }
}

/// `yᵀ` [nb·P, O] of an [nb, O, P] chunk.
fn positions_major<'a, T: ConvFloat>(
    y: &[T],
    nb: usize,
    (o, p): (usize, usize),
    tmp: &'a mut Vec<T>,
) -> &'a [T] {
    let yt = buf(tmp, nb * p * o);
    for (src, dst) in y.chunks_exact(o * p).zip(yt.chunks_exact_mut(p * o)) {
        transpose(src, p, (o, p), dst, o);
    }
    yt
}

/// One chunk of the transposed convolution: `cols [nb·P, K] = yᵀ [nb·P, O] · w' [O, K]`,
/// summed back into the padded image and copied out.
pub(super) fn transposed<T: ConvFloat>(
    g: &Geometry,
    (y, nb): (&[T], usize),
    w: &[T],
    x: &mut [T],
    s: &mut Scratch<T>,
    threads: usize,
) {
    let (k, p, o) = (g.k(), g.positions(), g.o);
    let Scratch { pad, cols, tmp } = s;
    let yt = positions_major(y, nb, (o, p), tmp);
    let cols = buf(cols, nb * p * k);
    matmul(
        (nb * p, k, o),
        cols,
        (k, 1),
        false,
        yt,
        (o, 1),
        w,
        (k, 1),
        threads,
    );
    let pad = buf(pad, g.padded_len(nb));
    pad.fill(T::zero());
    vectorized(|| col2im(g, cols, nb, pad));
    from_padded(g, pad, nb, x);
}

/// One chunk of the weight gradient: `acc [O, K] (+)= y [O, nb·P] · cols [nb·P, K]`.
pub(super) fn wgrad<T: ConvFloat>(
    g: &Geometry,
    (x, y, nb): (&[T], &[T], usize),
    acc: &mut [T],
    accumulate: bool,
    s: &mut Scratch<T>,
    threads: usize,
) {
    let (k, p, o) = (g.k(), g.positions(), g.o);
    let Scratch { pad, cols, tmp } = s;
    let pad = buf(pad, g.padded_len(nb));
    to_padded(g, x, nb, pad);
    let cols = buf(cols, nb * p * k);
    im2col(g, pad, nb, cols);
    let lhs = side_by_side(y, nb, (o, p), tmp);
    let ld = nb * p;
    matmul(
        (o, k, ld),
        acc,
        (k, 1),
        accumulate,
        lhs,
        (ld, 1),
        cols,
        (k, 1),
        threads,
    );
}

/// The sum of the [`wgrad`] accumulators [O, kh·kw·C] (in order), in the weight's order
/// [O, C·kh·kw].
pub(super) fn wgrad_result<T: ConvFloat>(g: &Geometry, parts: &[Vec<T>]) -> Vec<T> {
    let (c, k, kk) = (g.c, g.k(), g.kh * g.kw);
    let mut w = vec![T::zero(); g.o * k];
    threads::for_each_chunk(&mut w, k, |oo, row| {
        for (i, part) in parts.iter().enumerate() {
            transpose_into(&part[oo * k..], c, (kk, c), row, kk, i > 0);
        }
    });
    w
}
