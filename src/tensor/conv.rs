//! 2-D convolutions that are fast on the CPU and differentiable to any order.
//!
//! candle's CPU `conv_transpose2d` is a naive loop, and candle differentiates `conv2d` with it,
//! so every convolutional backward pass (and a gradient penalty differentiates twice) runs
//! through that loop. Here both convolutions are a matrix product plus one of a pair of
//! adjoint custom ops, `im2col` (gather image patches into columns) and `col2im` (scatter-add
//! columns back into an image). Each op's backward is the other one, so gradients of any
//! order stay fast. On other devices candle's own kernels are used.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Geometry shared by the two ops: an image [N, C, H, W], a k×k window, stride and padding,
/// and the grid of window positions [Ho, Wo].
#[derive(Clone, Copy, Debug)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    stride: usize,
    padding: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn cols_shape(&self) -> (usize, usize) {
        (self.c * self.kh * self.kw, self.n * self.ho * self.wo)
    }
    fn image_shape(&self) -> (usize, usize, usize, usize) {
        (self.n, self.c, self.h, self.w)
    }
    /// Image row of window row `o` at kernel offset `k`, if inside the image.
    #[inline]
    fn src(&self, o: usize, k: usize, size: usize) -> Option<usize> {
        (o * self.stride + k)
            .checked_sub(self.padding)
            .filter(|&i| i < size)
    }
}

/// Patches of an image as columns: [C·kh·kw, N·Ho·Wo].
struct Im2Col(Geometry);
/// The adjoint of [`Im2Col`]: columns summed back into an image [N, C, H, W].
struct Col2Im(Geometry);

fn contiguous<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: expected a contiguous input"),
    }
}

fn im2col<T: Copy + Default + Send + Sync>(g: &Geometry, img: &[T]) -> Vec<T> {
    let (rows, cols) = g.cols_shape();
    let mut out = vec![T::default(); rows * cols];
    let plane = g.h * g.w;
    out.par_chunks_mut(cols).enumerate().for_each(|(r, row)| {
        let c = r / (g.kh * g.kw);
        let ki = (r / g.kw) % g.kh;
        let kj = r % g.kw;
        for n in 0..g.n {
            let base = (n * g.c + c) * plane;
            for oh in 0..g.ho {
                let Some(ih) = g.src(oh, ki, g.h) else {
                    continue;
                };
                let dst = &mut row[(n * g.ho + oh) * g.wo..(n * g.ho + oh + 1) * g.wo];
                let src_row = &img[base + ih * g.w..base + (ih + 1) * g.w];
                for (ow, d) in dst.iter_mut().enumerate() {
                    if let Some(iw) = g.src(ow, kj, g.w) {
                        *d = src_row[iw];
                    }
                }
            }
        }
    });
    out
}

fn col2im<T: Copy + Default + Send + Sync + std::ops::AddAssign>(
    g: &Geometry,
    cols: &[T],
) -> Vec<T> {
    let ncols = g.n * g.ho * g.wo;
    let plane = g.h * g.w;
    let mut out = vec![T::default(); g.n * g.c * plane];
    out.par_chunks_mut(plane).enumerate().for_each(|(nc, img)| {
        let (n, c) = (nc / g.c, nc % g.c);
        for ki in 0..g.kh {
            for kj in 0..g.kw {
                let r = (c * g.kh + ki) * g.kw + kj;
                let row = &cols[r * ncols + n * g.ho * g.wo..r * ncols + (n + 1) * g.ho * g.wo];
                for oh in 0..g.ho {
                    let Some(ih) = g.src(oh, ki, g.h) else {
                        continue;
                    };
                    let src = &row[oh * g.wo..(oh + 1) * g.wo];
                    let dst = &mut img[ih * g.w..(ih + 1) * g.w];
                    for (ow, &v) in src.iter().enumerate() {
                        if let Some(iw) = g.src(ow, kj, g.w) {
                            dst[iw] += v;
                        }
                    }
                }
            }
        }
    });
    out
}

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(im2col(g, contiguous(v, layout, "im2col")?)),
            CpuStorage::F64(v) => CpuStorage::F64(im2col(g, contiguous(v, layout, "im2col")?)),
            _ => candle_core::bail!("im2col: only f32 and f64 are supported"),
        };
        Ok((out, g.cols_shape().into()))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Col2Im(self.0))?))
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = &self.0;
        let out = match storage {
            CpuStorage::F32(v) => CpuStorage::F32(col2im(g, contiguous(v, layout, "col2im")?)),
            CpuStorage::F64(v) => CpuStorage::F64(col2im(g, contiguous(v, layout, "col2im")?)),
            _ => candle_core::bail!("col2im: only f32 and f64 are supported"),
        };
        Ok((out, g.image_shape().into()))
    }
    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(grad.contiguous()?.apply_op1(Im2Col(self.0))?))
    }
}

fn fast_path(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), candle_core::DType::F32 | candle_core::DType::F64)
}

/// `conv2d(x [N,C,H,W], w [O,C,kh,kw])` with stride and zero padding (no dilation, one group).
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (o, c2, kh, kw) = w.dims4()?;
    if c != c2 {
        candle_core::bail!(
            "conv2d: input has {c} channels but the weight {:?} expects {c2}",
            w.dims()
        );
    }
    if stride == 0 || h + 2 * padding < kh || wd + 2 * padding < kw {
        candle_core::bail!(
            "conv2d: a {kh}x{kw} kernel does not fit the {h}x{wd} input with padding {padding}"
        );
    }
    if !fast_path(x) {
        return x.conv2d(w, padding, stride, 1, 1);
    }
    let ho = (h + 2 * padding - kh) / stride + 1;
    let wo = (wd + 2 * padding - kw) / stride + 1;
    let g = Geometry {
        n,
        c,
        h,
        w: wd,
        kh,
        kw,
        stride,
        padding,
        ho,
        wo,
    };
    let cols = x.contiguous()?.apply_op1(Im2Col(g))?;
    w.reshape((o, c * kh * kw))?
        .matmul(&cols)?
        .reshape((o, n, ho, wo))?
        .transpose(0, 1)?
        .contiguous()
}

/// `conv_transpose2d(x [N,C,H,W], w [C,O,kh,kw])` with stride, padding and output padding.
pub fn conv_transpose2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
) -> Result<Tensor> {
    let (n, c, h, wd) = x.dims4()?;
    let (c2, o, kh, kw) = w.dims4()?;
    if c != c2 {
        candle_core::bail!(
            "conv_transpose2d: input has {c} channels but the weight {:?} expects {c2}",
            w.dims()
        );
    }
    if stride == 0 || (output_padding > 0 && output_padding >= stride) {
        candle_core::bail!("conv_transpose2d: output padding must be smaller than the stride");
    }
    let too_much = || candle_core::Error::Msg("conv_transpose2d: padding too large".into());
    let ho = ((h - 1) * stride + kh + output_padding)
        .checked_sub(2 * padding)
        .ok_or_else(too_much)?;
    let wo = ((wd - 1) * stride + kw + output_padding)
        .checked_sub(2 * padding)
        .ok_or_else(too_much)?;
    if !fast_path(x) {
        return x.conv_transpose2d(w, padding, output_padding, stride, 1);
    }
    // The output image is what im2col with the same window would read the input grid from.
    let g = Geometry {
        n,
        c: o,
        h: ho,
        w: wo,
        kh,
        kw,
        stride,
        padding,
        ho: h,
        wo: wd,
    };
    let xt = x.transpose(0, 1)?.reshape((c, n * h * wd))?;
    let cols = w.reshape((c, o * kh * kw))?.t()?.matmul(&xt)?;
    cols.contiguous()?.apply_op1(Col2Im(g))
}
