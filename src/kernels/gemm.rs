//! The matrix product every kernel here builds on: the `gemm` crate (as candle's CPU matmul),
//! cut into blocks run on the shared pool ([`threads`](super::threads)), and the element types
//! the kernels run on.

use super::threads;
use candle_core::WithDType;

/// Element types the kernels run on (f32 and f64).
pub(crate) trait Float:
    WithDType
    + Copy
    + Default
    + Send
    + Sync
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + 'static
{
}
impl Float for f32 {}
impl Float for f64 {}

/// Products smaller than this many multiply-adds run on one thread (`gemm`'s own threshold).
const PARALLEL_PRODUCT_MIN: usize = 48 * 48 * 256;

/// `dst (+)= lhs · rhs` for an m×k and a k×n matrix, each given by its data and (row, column)
/// strides; `acc` adds to `dst` instead of overwriting it. With `threads` > 1 a large product
/// is cut into that many blocks of rows (or of columns, where there are more), one
/// single-threaded `gemm` call each, run on the pool ([`threads`](super::threads)).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul<T: Float>(
    (m, n, k): (usize, usize, usize),
    dst: &mut [T],
    (drs, dcs): (usize, usize),
    acc: bool,
    lhs: &[T],
    (lrs, lcs): (usize, usize),
    rhs: &[T],
    (rrs, rcs): (usize, usize),
    threads: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rs: usize, cs: usize, rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(last(drs, dcs, m, n) < dst.len(), "matmul: dst too small");
    if k > 0 {
        assert!(last(lrs, lcs, m, k) < lhs.len(), "matmul: lhs too small");
        assert!(last(rrs, rcs, k, n) < rhs.len(), "matmul: rhs too small");
    }
    // The blocks: rows [i0, i0 + bm) or columns [j0, j0 + bn) of dst, in multiples of 16.
    let by_rows = m >= n;
    let long = if by_rows { m } else { n };
    let parts = if m * n * k < PARALLEL_PRODUCT_MIN {
        1
    } else {
        threads.clamp(1, long.div_ceil(16))
    };
    let block = long.div_ceil(parts).div_ceil(16) * 16;
    let parts = long.div_ceil(block);
    // Addresses, so that the blocks' tasks can share them; each task writes its own block.
    let (d, l, r) = (
        dst.as_mut_ptr() as usize,
        lhs.as_ptr() as usize,
        rhs.as_ptr() as usize,
    );
    threads::for_each(parts, |part| {
        let start = part * block;
        let len = block.min(long - start);
        // The block's size and where it starts in dst, lhs and rhs.
        let (bm, bn, d0, l0, r0) = if by_rows {
            (len, n, start * drs, start * lrs, 0)
        } else {
            (m, len, start * dcs, 0, start * rcs)
        };
        // SAFETY: the asserts above keep every index the strides reach inside the slices, and
        // a block's indices are a subset; the blocks of `dst` are disjoint and `dst` does not
        // alias `lhs` or `rhs` (a `&mut` borrow).
        unsafe {
            let (d, l, r) = (
                (d as *mut T).add(d0),
                (l as *const T).add(l0),
                (r as *const T).add(r0),
            );
            gemm::gemm(
                bm,
                bn,
                k,
                d,
                dcs as isize,
                drs as isize,
                acc,
                l,
                lcs as isize,
                lrs as isize,
                r,
                rcs as isize,
                rrs as isize,
                if acc { T::from_f64(1.0) } else { T::zero() },
                T::from_f64(1.0),
                false,
                false,
                false,
                gemm::Parallelism::None,
            )
        }
    });
}
