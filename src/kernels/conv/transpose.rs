//! Out-of-place transposes of strided matrices (the convolutions' layout changes): 8×8 blocks
//! by AVX shuffles for f32, tiles of scalar copies for the rest.
//!
//! Scalar, a transpose moves one element per load and store; the channels-last layout
//! changes, the transposed weights and the weight gradients' final transposes took 4–7 % of
//! the DCGAN steps that way. An 8×8 block is 8 row loads, 24 shuffles and 8 row stores.

use super::ConvFloat;
use std::ops::Range;

/// `dst[j·drs + i] = src[i·srs + j]` for `i < rows`, `j < cols`.
pub(super) fn transpose<T: ConvFloat>(
    src: &[T],
    srs: usize,
    dims: (usize, usize),
    dst: &mut [T],
    drs: usize,
) {
    transpose_into(src, srs, dims, dst, drs, false)
}

/// [`transpose`], adding to `dst` instead of overwriting it where `add`.
pub(super) fn transpose_into<T: ConvFloat>(
    src: &[T],
    srs: usize,
    dims: (usize, usize),
    dst: &mut [T],
    drs: usize,
    add: bool,
) {
    if add {
        blocks::<T, true>(src, srs, dims, dst, drs)
    } else {
        blocks::<T, false>(src, srs, dims, dst, drs)
    }
}

/// The 8×8 blocks by the vector kernel where there is one, the edges (and everything else)
/// by [`tiles`]; the add-or-overwrite choice made at compile time.
fn blocks<T: ConvFloat, const ADD: bool>(
    src: &[T],
    srs: usize,
    (rows, cols): (usize, usize),
    dst: &mut [T],
    drs: usize,
) {
    let (r8, c8) = if T::has_transpose8() {
        (rows / 8 * 8, cols / 8 * 8)
    } else {
        (0, 0)
    };
    for i0 in (0..r8).step_by(8) {
        for j0 in (0..c8).step_by(8) {
            T::transpose8::<ADD>(&src[i0 * srs + j0..], srs, &mut dst[j0 * drs + i0..], drs);
        }
    }
    tiles::<T, ADD>(src, srs, (r8..rows, 0..cols), dst, drs);
    tiles::<T, ADD>(src, srs, (0..r8, c8..cols), dst, drs);
}

/// Rows `rows` and columns `cols` of the transpose, by tiles of 16 rows that stay in cache,
/// each written one contiguous run of `dst` at a time.
#[inline(always)]
fn tiles<T: ConvFloat, const ADD: bool>(
    src: &[T],
    srs: usize,
    (rows, cols): (Range<usize>, Range<usize>),
    dst: &mut [T],
    drs: usize,
) {
    const TILE: usize = 16;
    for i0 in rows.clone().step_by(TILE) {
        let i1 = (i0 + TILE).min(rows.end);
        for j in cols.clone() {
            let d = &mut dst[j * drs + i0..j * drs + i1];
            let s = &src[i0 * srs + j..];
            for (ii, d) in d.iter_mut().enumerate() {
                let v = s[ii * srs];
                if ADD {
                    *d += v;
                } else {
                    *d = v;
                }
            }
        }
    }
}

/// Whether this CPU has AVX (checked once; the check is cached).
pub(super) fn has_avx() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The 8×8 f32 block of [`ConvFloat::transpose8`]; only called where [`has_avx`].
pub(super) fn f32_8x8<const ADD: bool>(src: &[f32], srs: usize, dst: &mut [f32], drs: usize) {
    assert!(src.len() >= 7 * srs + 8 && dst.len() >= 7 * drs + 8);
    #[cfg(target_arch = "x86_64")]
    {
        assert!(has_avx());
        // SAFETY: AVX is present (asserted), and the asserts above keep the 8 rows of 8
        // elements read from `src` and written to `dst` inside the slices.
        unsafe { avx_8x8::<ADD>(src.as_ptr(), srs, dst.as_mut_ptr(), drs) }
    }
    #[cfg(not(target_arch = "x86_64"))]
    unreachable!("no AVX")
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn avx_8x8<const ADD: bool>(src: *const f32, srs: usize, dst: *mut f32, drs: usize) {
    use std::arch::x86_64::*;
    let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(src.add(i * srs)));
    // Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves exchanged.
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    let cols = [
        _mm256_permute2f128_ps::<0x20>(u0, u4),
        _mm256_permute2f128_ps::<0x20>(u1, u5),
        _mm256_permute2f128_ps::<0x20>(u2, u6),
        _mm256_permute2f128_ps::<0x20>(u3, u7),
        _mm256_permute2f128_ps::<0x31>(u0, u4),
        _mm256_permute2f128_ps::<0x31>(u1, u5),
        _mm256_permute2f128_ps::<0x31>(u2, u6),
        _mm256_permute2f128_ps::<0x31>(u3, u7),
    ];
    for (c, v) in cols.into_iter().enumerate() {
        let p = dst.add(c * drs);
        let v = if ADD {
            _mm256_add_ps(_mm256_loadu_ps(p), v)
        } else {
            v
        };
        _mm256_storeu_ps(p, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both element types, every size around the block edges, with strides wider than the
    /// matrices, overwriting and adding.
    #[test]
    fn transposes_equal_the_definition() {
        fn check<T: ConvFloat + PartialEq + std::fmt::Debug>(from: fn(usize) -> T) {
            for rows in [1, 7, 8, 9, 16, 19] {
                for cols in [1, 5, 8, 12, 17] {
                    let (srs, drs) = (cols + 3, rows + 2);
                    let src: Vec<T> = (0..rows * srs).map(from).collect();
                    for add in [false, true] {
                        let base: Vec<T> = (0..cols * drs).map(|i| from(7 * i + 1)).collect();
                        let mut dst = base.clone();
                        transpose_into(&src, srs, (rows, cols), &mut dst, drs, add);
                        for j in 0..cols {
                            for i in 0..drs {
                                let mut want = base[j * drs + i];
                                if i < rows {
                                    let v = src[i * srs + j];
                                    want = if add { want + v } else { v };
                                }
                                assert_eq!(dst[j * drs + i], want, "{rows}×{cols} add={add}");
                            }
                        }
                    }
                }
            }
        }
        check::<f32>(|i| i as f32);
        check::<f64>(|i| i as f64);
    }
}
