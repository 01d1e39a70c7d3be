//! 3×3 "same" convolutions (stride 1, padding 1) by Winograd's minimal filtering F(2×2, 3×3)
//! (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2016).
//!
//! Each 2×2 block of the output is `Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A`, for the 4×4 input tile `d`
//! around it and each 3×3 kernel `g`: 16 multiplications per block and channel pair instead of
//! 36. Summed over the input channels, the 16 element-wise products become 16 independent
//! products `M[ξν] [O, tiles] = U[ξν] [O, C] · V[ξν] [C, tiles]` of the transformed kernels
//! `U = G g Gᵀ` and tiles `V = Bᵀ d B`, run by the same GEMM as the other convolutions. The
//! transforms are additions (and halvings, for the kernel), so the result matches the direct
//! sum to rounding (checked against candle's convolution in the tests).
//!
//! Used for the lens's layers (32 → 32 channels, 32×32 images), which are most of a tempered
//! step: there the columns of [`super::planar`] are 9 copies of the image and the product
//! 2.25× larger. Only where the image's height and width are even (whole 2×2 blocks) and the
//! channels not too few for the transforms to pay (measurements: BENCHMARKS.md, "Design
//! measurements").
//!
//! The kernel gradient stays on the columns: its Winograd form (16 products of [O, tiles] ·
//! [tiles, C], then `Gᵀ Ŵ G`) was measured slower there, its products too small for the
//! transforms' cost.

use super::{buf, gemm_threads, matmul, with_scratch, ConvFloat, Geometry, Scratch};
use crate::kernels::threads;
use std::mem::MaybeUninit;

/// Channels (in and out) from which the Winograd form is used. Below, the columns are as fast
/// or faster (the lens's 3 → 32 and 32 → 3 layers, measured in `benches/conv.rs`; numbers in
/// BENCHMARKS.md, "Design measurements").
const MIN_CHANNELS: usize = 8;

/// Tiles per chunk that the 16 products should see at least.
const CHUNK_TILES: usize = 256;

/// The distance between the 16 blocks `V[ξν]` ([rows, ncols] each), and `M[ξν]`: one cache
/// line more than the block, so that the transforms' 16 streams (one per block, at the same
/// offset in each) fall into different cache sets. At the block's own size (64 KiB for the
/// lens) they all map to one set of the L1 cache and evict each other (measured: the
/// transforms took twice as long as the products).
fn block(rows: usize, ncols: usize) -> usize {
    rows * ncols + 16
}

/// Whether [`forward`] computes this convolution.
pub(super) fn applies(g: &Geometry) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.padding == 1
        && g.h.is_multiple_of(2)
        && g.w.is_multiple_of(2)
        && g.h > 0
        && g.w > 0
        && g.c >= MIN_CHANNELS
        && g.o >= MIN_CHANNELS
}

/// The transformed kernels `U[ξν][o][c] = (G w[o, c] Gᵀ)[ξ][ν]` of `w` [O, C, 3, 3], with
/// `G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]]`.
fn kernel_transform<T: ConvFloat>(g: &Geometry, w: &[T]) -> Vec<T> {
    let (o, c) = (g.o, g.c);
    let half = T::from_f64(0.5);
    // G·v for a 3-vector v.
    let gv = |v: [T; 3]| {
        [
            v[0],
            half * (v[0] + v[1] + v[2]),
            half * (v[0] - v[1] + v[2]),
            v[2],
        ]
    };
    let mut u = vec![T::zero(); 16 * o * c];
    for oc in 0..o * c {
        let k = &w[oc * 9..oc * 9 + 9];
        // Columns of G·k (4×3), then G applied to each of its rows.
        let cols: [[T; 4]; 3] = std::array::from_fn(|j| gv([k[j], k[3 + j], k[6 + j]]));
        for xi in 0..4 {
            let row = gv([cols[0][xi], cols[1][xi], cols[2][xi]]);
            for (nu, &v) in row.iter().enumerate() {
                u[(xi * 4 + nu) * o * c + oc] = v;
            }
        }
    }
    u
}

/// The tile transforms `V[ξν][c][b·T + ty·tw + tx] = (Bᵀ d B)[ξ][ν]` of `nb` images [nb, C,
/// H, W], with `Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]]` and `d` the
/// 4×4 tile of the zero-padded image at rows and columns `2ty .. 2ty + 4`, `2tx .. 2tx + 4`.
/// `de` is scratch space ([`de_len`]) for one channel's padded image, each row's columns split
/// into even and odd ones, so that a tile's four columns are `e[tx], o[tx], e[tx+1], o[tx+1]`:
/// every combination is then a run of contiguous values.
#[inline(always)]
fn input_transform<T: ConvFloat>(g: &Geometry, img: &[T], nb: usize, v: &mut [T], de: &mut [T]) {
    let (h, w, c) = (g.h, g.w, g.c);
    let (th, tw) = (h / 2, w / 2);
    let (tiles, ncols) = (th * tw, nb * th * tw);
    let half = tw + 1;
    de.fill(T::zero());
    for b in 0..nb {
        for ch in 0..c {
            let plane = &img[(b * c + ch) * h * w..(b * c + ch + 1) * h * w];
            // Padded row r = image row r − 1; padded column q = image column q − 1, so the odd
            // image columns are the even padded ones and the other way round. (The padding,
            // zeroed above, is the same for every channel.)
            for (ih, src) in plane.chunks_exact(w).enumerate() {
                let (even, odd) = de[(ih + 1) * 2 * half..(ih + 2) * 2 * half].split_at_mut(half);
                for ((o, e), pair) in odd.iter_mut().zip(&mut even[1..]).zip(src.chunks_exact(2)) {
                    *o = pair[0];
                    *e = pair[1];
                }
            }
            let row = |r: usize, par: usize| &de[(r * 2 + par) * half..(r * 2 + par + 1) * half];
            for ty in 0..th {
                let base = b * tiles + ty * tw;
                // Bᵀ d's row i: d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃ (of the tile's rows d_k).
                for (i, (ka, kb, plus)) in
                    [(0, 2, false), (1, 2, true), (2, 1, false), (1, 3, false)]
                        .into_iter()
                        .enumerate()
                {
                    let (ra, rb) = (2 * ty + ka, 2 * ty + kb);
                    let rows = [row(ra, 0), row(rb, 0), row(ra, 1), row(rb, 1)];
                    let at = |j: usize| (4 * i + j) * block(c, ncols) + ch * ncols + base;
                    let (v01, v23) = v.split_at_mut(at(2));
                    let (v0, v1) = v01.split_at_mut(at(1));
                    let (v2, v3) = v23.split_at_mut(at(3) - at(2));
                    let outs = [&mut v0[at(0)..], &mut v1[..], &mut v2[..], &mut v3[..]];
                    if plus {
                        tile_row::<T, true>(rows, outs, tw);
                    } else {
                        tile_row::<T, false>(rows, outs, tw);
                    }
                }
            }
        }
    }
}

/// One row combination of [`input_transform`] for a tile row, then its column combinations:
/// `rows` are the two combined rows' even and odd columns `[aₑ, bₑ, aₒ, bₒ]`, and the
/// combination is `a + b` or `a − b` (`PLUS`); for each tile `tx`, with `e(q) = aₑ[q] ± bₑ[q]`
/// and `o(q)` alike, the four outputs are `e(tx) − e(tx+1)`, `o(tx) + e(tx+1)`,
/// `e(tx+1) − o(tx)` and `o(tx) − o(tx+1)`. The row combinations are recomputed at `tx + 1`
/// rather than stored and reloaded one element further on (a load straddling two recent
/// stores cannot be forwarded from them: measured, 30 % of the transform stalled there).
#[inline(always)]
fn tile_row<T: ConvFloat, const PLUS: bool>(rows: [&[T]; 4], outs: [&mut [T]; 4], tw: usize) {
    let [ae, be, ao, bo] = rows.map(|r| &r[..=tw]);
    let [o0, o1, o2, o3] = outs.map(|o| &mut o[..tw]);
    let comb = |a: T, b: T| if PLUS { a + b } else { a - b };
    for tx in 0..tw {
        let (e0, e1) = (comb(ae[tx], be[tx]), comb(ae[tx + 1], be[tx + 1]));
        let (d0, d1) = (comb(ao[tx], bo[tx]), comb(ao[tx + 1], bo[tx + 1]));
        o0[tx] = e0 - e1;
        o1[tx] = d0 + e1;
        o2[tx] = e1 - d0;
        o3[tx] = d0 - d1;
    }
}

/// Scratch elements [`input_transform`] needs.
fn de_len(g: &Geometry) -> usize {
    (g.h + 2) * 2 * (g.w / 2 + 1)
}

/// The output transform: `y[b, o, 2ty + a, 2tx + e] = (Aᵀ m A)[a][e]` of the products
/// `m[ξν] = M[ξν][o][b·T + ty·tw + tx]`, with `Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]]`.
#[inline(always)]
fn output_transform<T: ConvFloat>(g: &Geometry, m: &[T], nb: usize, y: &mut [MaybeUninit<T>]) {
    let (h, w, o) = (g.h, g.w, g.o);
    let (th, tw) = (h / 2, w / 2);
    let (tiles, ncols) = (th * tw, nb * th * tw);
    // Aᵀ m over all of a sample's tiles at once (each M[ξν] row holds them contiguously):
    // s_a[ν] = m₀ν + m₁ν + m₂ν (a = 0) and m₁ν − m₂ν − m₃ν (a = 1); then, tile row by tile
    // row, times A into output row 2ty + a, the tiles' two columns interleaved.
    let mut sa = vec![T::zero(); 4 * tiles];
    for b in 0..nb {
        for oo in 0..o {
            let out = &mut y[(b * o + oo) * h * w..(b * o + oo + 1) * h * w];
            let ms: [&[T]; 16] = std::array::from_fn(|xn| {
                &m[xn * block(o, ncols) + oo * ncols + b * tiles..][..tiles]
            });
            for a in 0..2 {
                for (nu, dst) in sa.chunks_exact_mut(tiles).enumerate() {
                    if a == 0 {
                        sum3(dst, ms[nu], ms[4 + nu], ms[8 + nu], |p, q, r| p + q + r);
                    } else {
                        sum3(dst, ms[4 + nu], ms[8 + nu], ms[12 + nu], |q, r, s| {
                            q - r - s
                        });
                    }
                }
                for (ty, row) in out.chunks_exact_mut(2 * w).enumerate() {
                    let out = &mut row[a * w..(a + 1) * w];
                    let [s0, s1, s2, s3]: [&[T]; 4] =
                        std::array::from_fn(|nu| &sa[nu * tiles + ty * tw..][..tw]);
                    for ((pair, (&x0, &x1)), (&x2, &x3)) in out
                        .chunks_exact_mut(2)
                        .zip(s0.iter().zip(s1))
                        .zip(s2.iter().zip(s3))
                    {
                        pair[0].write(x0 + x1 + x2);
                        pair[1].write(x1 - x2 - x3);
                    }
                }
            }
        }
    }
}

/// `dst[i] = f(p[i], q[i], r[i])`.
#[inline(always)]
fn sum3<T: ConvFloat>(dst: &mut [T], p: &[T], q: &[T], r: &[T], f: impl Fn(T, T, T) -> T) {
    for (((d, &x), &y), &z) in dst.iter_mut().zip(p).zip(q).zip(r) {
        *d = f(x, y, z);
    }
}

/// `y [N, O, H, W] = w [O, C, 3, 3] ⋆ x [N, C, H, W]` (stride 1, padding 1), where
/// [`applies`].
pub(super) fn forward<T: ConvFloat>(g: &Geometry, x: &[T], w: &[T]) -> Vec<T> {
    let (o, c, plane) = (g.o, g.c, g.plane());
    let u = kernel_transform(g, w);
    let n = g.n * o * plane;
    let mut y = Vec::with_capacity(n);
    if n == 0 {
        return y;
    }
    let bg = g.samples_per_chunk(plane / 4, CHUNK_TILES);
    let gt = gemm_threads(g.n.div_ceil(bg));
    let avx512 = has_avx512();
    // The output transform writes every element of each chunk (no zero-fill first: it was
    // 7 % of a lens forward pass).
    threads::for_each_chunk(
        &mut y.spare_capacity_mut()[..n],
        bg * o * plane,
        |ci, yc| {
            let (b0, nb) = (ci * bg, yc.len() / (o * plane));
            let xc = (&x[b0 * c * plane..(b0 + nb) * c * plane], nb);
            with_scratch(|s| {
                #[cfg(target_arch = "x86_64")]
                if avx512 {
                    // SAFETY: the CPU has AVX-512F.
                    return unsafe { forward_chunk_avx512(g, &u, xc, yc, s, gt) };
                }
                forward_chunk(g, &u, xc, yc, s, gt)
            })
        },
    );
    // SAFETY: the chunks cover the first `n` elements and `output_transform` wrote each one
    // (a panic propagates before this line, and `y` is dropped with length 0).
    unsafe { y.set_len(n) };
    y
}

/// One chunk of [`forward`]: `nb` images `x` into their outputs `y`, from the transformed
/// kernels `u`.
#[inline(always)]
fn forward_chunk<T: ConvFloat>(
    g: &Geometry,
    u: &[T],
    (x, nb): (&[T], usize),
    y: &mut [MaybeUninit<T>],
    s: &mut Scratch<T>,
    gt: usize,
) {
    let (o, c) = (g.o, g.c);
    let ncols = nb * g.plane() / 4;
    let de = buf(&mut s.pad, de_len(g));
    let v = buf(&mut s.cols, 16 * block(c, ncols));
    input_transform(g, x, nb, v, de);
    let m = buf(&mut s.tmp, 16 * block(o, ncols));
    for xn in 0..16 {
        matmul(
            (o, ncols, c),
            &mut m[xn * block(o, ncols)..][..o * ncols],
            (ncols, 1),
            false,
            &u[xn * o * c..(xn + 1) * o * c],
            (c, 1),
            &v[xn * block(c, ncols)..][..c * ncols],
            (ncols, 1),
            gt,
        );
    }
    output_transform(g, m, nb, y);
}

/// [`forward_chunk`] compiled for AVX-512: the transforms' loops become 16-wide vector code
/// (as ordinary x86-64 code they stayed scalar or 4-wide).
///
/// # Safety
/// The CPU must have AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_chunk_avx512<T: ConvFloat>(
    g: &Geometry,
    u: &[T],
    x: (&[T], usize),
    y: &mut [MaybeUninit<T>],
    s: &mut Scratch<T>,
    gt: usize,
) {
    forward_chunk(g, u, x, y, s, gt)
}

/// Whether this CPU has AVX-512F (as [`super::transpose::has_avx`] for AVX).
fn has_avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}
