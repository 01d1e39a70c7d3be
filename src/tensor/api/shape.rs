//! Shapes: reshaping, transposes, slicing, concatenation, indexing, padding and convolutions.

use super::*;

pub(super) fn register_shapes(engine: &mut Engine) {
    reg!(
        engine,
        "shape",
        "The shape as an array of integers.",
        |x: &mut Tensor| shape_dyn(&x.0)
    );
    engine.register_get("shape", |x: &mut Tensor| shape_dyn(&x.0));
    reg!(
        engine,
        "rank",
        "Number of dimensions.",
        |x: &mut Tensor| x.0.rank() as INT
    );
    reg!(
        engine,
        "numel",
        "Number of elements.",
        |x: &mut Tensor| x.0.elem_count() as INT
    );
    reg!(
        engine,
        "dim",
        "Size of dimension `d` (negative counts from the end).",
        |x: &mut Tensor, d: INT| -> ScriptResult<INT> {
            Ok(x.0.dims()[dim_index(d, x.0.rank())?] as INT)
        }
    );
    reg!(
        engine,
        "reshape",
        "The same elements in a new shape; one entry may be -1 (inferred).",
        |x: &mut Tensor, shape: Array| {
            let n = x.0.elem_count();
            let mut dims = Vec::with_capacity(shape.len());
            let mut hole = None;
            for (i, d) in shape.iter().enumerate() {
                let v = d.as_int().map_err(|ty| {
                    script_err(format!("reshape: shape entries must be integers, got {ty}"))
                })?;
                if v == -1 {
                    if hole.is_some() {
                        return Err(script_err("reshape: only one dimension can be -1"));
                    }
                    hole = Some(i);
                    dims.push(1);
                } else if v < 0 {
                    return Err(script_err(format!("reshape: invalid size {v}")));
                } else {
                    dims.push(v as usize);
                }
            }
            let total = limits::numel(&dims, "reshape")?;
            if let Some(h) = hole {
                let rest = total;
                if rest == 0 || !n.is_multiple_of(rest) {
                    return Err(script_err(format!(
                        "reshape: cannot reshape {:?} ({n} elements) into {shape:?}",
                        x.0.dims()
                    )));
                }
                dims[h] = n / rest;
            }
            let total = limits::numel(&dims, "reshape")?;
            if total != n {
                return Err(script_err(format!(
                    "reshape: cannot reshape {:?} ({n} elements) into {dims:?} ({total} elements)",
                    x.0.dims()
                )));
            }
            t(x.0.reshape(dims), "reshape")
        }
    );
    reg!(
        engine,
        "flatten",
        "All elements in one dimension.",
        |x: &mut Tensor| t(x.0.flatten_all(), "flatten")
    );
    reg!(
        engine,
        "flatten",
        "Merges dims `from`.. into one (flatten(x, 1): one row per sample).",
        |x: &mut Tensor, from: INT| {
            let d = dim_index(from, x.0.rank())?;
            t(x.0.flatten_from(d), "flatten")
        }
    );
    reg!(
        engine,
        "transpose",
        "Swaps two dimensions.",
        |x: &mut Tensor, a: INT, b: INT| {
            let r = x.0.rank();
            t(
                x.0.transpose(dim_index(a, r)?, dim_index(b, r)?),
                "transpose",
            )
        }
    );
    reg!(
        engine,
        "t",
        "Transpose of a matrix (swaps the last two dims).",
        |x: &mut Tensor| t(x.0.t(), "t")
    );
    reg!(
        engine,
        "permute",
        "Reorders dimensions.",
        |x: &mut Tensor, order: Array| {
            let r = x.0.rank();
            let dims = order
                .iter()
                .map(|d| {
                    d.as_int()
                        .map_err(|ty| script_err(format!("permute takes integers, got {ty}")))
                        .and_then(|v| dim_index(v, r))
                })
                .collect::<ScriptResult<Vec<_>>>()?;
            t(x.0.permute(dims), "permute")
        }
    );
    reg!(
        engine,
        "unsqueeze",
        "Inserts a dimension of size 1 at `d`.",
        |x: &mut Tensor, d: INT| {
            let r = x.0.rank() as INT + 1;
            let d = if d < 0 { d + r } else { d };
            if d < 0 || d >= r {
                return Err(script_err(format!(
                    "unsqueeze: dimension out of range for rank {}",
                    r - 1
                )));
            }
            t(x.0.unsqueeze(d as usize), "unsqueeze")
        }
    );
    reg!(
        engine,
        "squeeze",
        "Removes every dimension of size 1.",
        |x: &mut Tensor| {
            let dims: Vec<usize> = x.0.dims().iter().copied().filter(|&d| d != 1).collect();
            t(x.0.reshape(dims), "squeeze")
        }
    );
    reg!(
        engine,
        "squeeze",
        "Removes dimension `d` if its size is 1.",
        |x: &mut Tensor, d: INT| {
            let d = dim_index(d, x.0.rank())?;
            t(x.0.squeeze(d), "squeeze")
        }
    );
    reg!(
        engine,
        "cat",
        "Concatenates tensors along `dim`.",
        |xs: Array, dim: INT| {
            let ts = tensors_of(&xs, "cat")?;
            let d = dim_index(dim, ts[0].rank())?;
            t(CT::cat(&ts, d), "cat")
        }
    );
    reg!(
        engine,
        "stack",
        "Stacks tensors along a new dimension `dim`.",
        |xs: Array, dim: INT| {
            let ts = tensors_of(&xs, "stack")?;
            let r = ts[0].rank() as INT + 1;
            let d = if dim < 0 { dim + r } else { dim };
            if d < 0 || d >= r {
                return Err(script_err("stack: dimension out of range"));
            }
            t(CT::stack(&ts, d as usize), "stack")
        }
    );
    reg!(
        engine,
        "narrow",
        "`len` entries of dimension `dim` starting at `start`.",
        |x: &mut Tensor, dim: INT, start: INT, len: INT| {
            let d = dim_index(dim, x.0.rank())?;
            if start < 0 || len < 0 {
                return Err(script_err("narrow: start and len must be >= 0"));
            }
            t(x.0.narrow(d, start as usize, len as usize), "narrow")
        }
    );
    reg!(
        engine,
        "slice",
        "Entries start..end of dimension `dim` (negative end counts from the end).",
        |x: &mut Tensor, dim: INT, start: INT, end: INT| {
            let d = dim_index(dim, x.0.rank())?;
            let n = x.0.dims()[d] as INT;
            let s = if start < 0 { start + n } else { start }.clamp(0, n);
            let e = if end < 0 { end + n } else { end }.clamp(0, n);
            if e < s {
                return Err(script_err(format!(
                    "slice: empty range {start}..{end} of a dimension of size {n}"
                )));
            }
            t(x.0.narrow(d, s as usize, (e - s) as usize), "slice")
        }
    );
    reg!(
        engine,
        "index_select",
        "Rows of dimension `dim` at the given indices (an array or integer tensor).",
        |x: &mut Tensor, idx: Dynamic, dim: INT| {
            let d = dim_index(dim, x.0.rank())?;
            let ids = indices_of(&idx, &x.0, d)?;
            t(x.0.index_select(&ids, d), "index_select")
        }
    );
    engine.register_indexer_get(|x: &mut Tensor, i: INT| -> R {
        if x.0.rank() == 0 {
            return Err(script_err("cannot index a scalar tensor"));
        }
        let n = x.0.dims()[0] as INT;
        let j = if i < 0 { i + n } else { i };
        if j < 0 || j >= n {
            return Err(script_err(format!(
                "index {i} is out of range for dimension 0 of size {n}"
            )));
        }
        t(x.0.get(j as usize), "index")
    });
    reg!(
        engine,
        "broadcast_as",
        "Broadcasts to a larger shape.",
        |x: &mut Tensor, shape: Dynamic| {
            // A view, but every op on it writes a tensor of the full shape.
            let dims = new_shape(&shape, "broadcast_as", x.0.dtype())?;
            t(x.0.broadcast_as(dims), "broadcast_as")
        }
    );
    reg!(
        engine,
        "contiguous",
        "A contiguous copy if needed.",
        |x: &mut Tensor| t(x.0.contiguous(), "contiguous")
    );
    reg!(
        engine,
        "conv2d",
        "2-D convolution: x [N,C,H,W], w [O,C,k,k], no bias, stride 1, padding 0.",
        |x: Tensor, w: Tensor| { conv2d(&x.0, &w.0, None, 1, 0) }
    );
    reg!(
        engine,
        "conv2d",
        "2-D convolution with bias (a tensor [O] or ()), stride and padding.",
        |x: Tensor, w: Tensor, b: Dynamic, stride: INT, padding: INT| {
            conv2d(&x.0, &w.0, optional_tensor(b)?.as_ref(), stride, padding)
        }
    );
    reg!(engine, "conv_transpose2d", "Transposed 2-D convolution: x [N,C,H,W], w [C,O,k,k], bias (tensor or ()), stride, padding, output padding.", |x: Tensor, w: Tensor, b: Dynamic, stride: INT, padding: INT, out_pad: INT| {
        conv_transpose2d(&x.0, &w.0, optional_tensor(b)?.as_ref(), stride, padding, out_pad)
    });
}

pub(super) fn optional_tensor(b: Dynamic) -> ScriptResult<Option<CT>> {
    if b.is_unit() {
        Ok(None)
    } else {
        b.try_cast::<Tensor>()
            .map(|t| Some(t.0))
            .ok_or_else(|| script_err("bias must be a tensor or ()"))
    }
}

pub(super) fn usize_arg(v: INT, what: &str) -> ScriptResult<usize> {
    usize::try_from(v).map_err(|_| script_err(format!("{what} must be >= 0, got {v}")))
}

pub(super) fn stride_arg(v: INT, op: &str) -> ScriptResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| script_err(format!("{op}: the stride must be >= 1, got {v}")))
}

pub(super) fn check_conv_input(x: &CT, w: &CT, op: &str) -> ScriptResult<()> {
    if x.rank() != 4 || w.rank() != 4 {
        return Err(script_err(format!(
            "{op}: expected input [N, C, H, W] and weight of rank 4, got input {:?} and weight {:?}",
            x.dims(),
            w.dims()
        )));
    }
    Ok(())
}

pub fn conv2d(x: &CT, w: &CT, b: Option<&CT>, stride: INT, padding: INT) -> R {
    check_conv_input(x, w, "conv2d")?;
    if x.dim(1).ok() != w.dim(1).ok() {
        return Err(script_err(format!(
            "conv2d: input has {} channels but the weight {:?} expects {}",
            x.dims()[1],
            w.dims(),
            w.dims()[1]
        )));
    }
    let (s, p) = (
        stride_arg(stride, "conv2d")?,
        usize_arg(padding, "padding")?,
    );
    let r = crate::kernels::conv::conv2d_biased(x, w, b, s, p);
    t(r, "conv2d")
}

pub fn conv_transpose2d(
    x: &CT,
    w: &CT,
    b: Option<&CT>,
    stride: INT,
    padding: INT,
    out_pad: INT,
) -> R {
    check_conv_input(x, w, "conv_transpose2d")?;
    if x.dim(1).ok() != w.dim(0).ok() {
        return Err(script_err(format!(
            "conv_transpose2d: input has {} channels but the weight {:?} expects {}",
            x.dims()[1],
            w.dims(),
            w.dims()[0]
        )));
    }
    let (s, p, o) = (
        stride_arg(stride, "conv_transpose2d")?,
        usize_arg(padding, "padding")?,
        usize_arg(out_pad, "output padding")?,
    );
    let r = crate::kernels::conv::conv_transpose2d_biased(x, w, b, s, p, o);
    t(r, "conv_transpose2d")
}

pub(super) fn tensors_of(xs: &Array, op: &str) -> ScriptResult<Vec<CT>> {
    if xs.is_empty() {
        return Err(script_err(format!("{op}: needs at least one tensor")));
    }
    let ts = xs
        .iter()
        .map(|v| {
            v.clone().try_cast::<Tensor>().map(|t| t.0).ok_or_else(|| {
                script_err(format!(
                    "{op}: expected an array of tensors, found {}",
                    v.type_name()
                ))
            })
        })
        .collect::<ScriptResult<Vec<CT>>>()?;
    // The result holds every input's values.
    let bytes = ts
        .iter()
        .map(|t| limits::tensor_bytes(t.dims(), t.dtype()))
        .fold(0u128, u128::saturating_add);
    limits::check(&format!("{op}: the result of {} tensors", ts.len()), bytes)?;
    Ok(ts)
}

/// The indices of `index_select` along dimension `dim` of `x`, validated: whole numbers in
/// `0..size` (an array of integers, or a tensor of any dtype holding whole numbers). Nothing is
/// truncated or wrapped: -1, 2^32 or 1.5 are errors.
pub(super) fn indices_of(idx: &Dynamic, x: &CT, dim: usize) -> ScriptResult<CT> {
    let size = x.dims()[dim];
    let values: Vec<f64> = if let Some(t) = idx.clone().try_cast::<Tensor>() {
        if t.0.rank() > 1 {
            return Err(script_err(format!(
                "index_select: the indices must be a 1-D tensor, got shape {:?}",
                t.0.dims()
            )));
        }
        t.0.flatten_all()
            .and_then(|f| f.to_dtype(DType::F64))
            .and_then(|f| f.to_vec1::<f64>())
            .ctx("index_select")?
    } else if let Some(arr) = idx.clone().try_cast::<Array>() {
        arr.iter()
            .map(|d| {
                d.as_int().map(|i| i as f64).map_err(|ty| {
                    script_err(format!("index_select: indices must be integers, got {ty}"))
                })
            })
            .collect::<ScriptResult<Vec<f64>>>()?
    } else {
        return Err(script_err(
            "index_select: indices must be an array of integers or a tensor",
        ));
    };
    let ids = values
        .iter()
        .map(|&v| {
            if v.fract() == 0.0 && v >= 0.0 && v < size as f64 {
                Ok(v as u32)
            } else {
                Err(script_err(format!(
                    "index_select: index {v} is out of range for dimension {dim} of size {size} \
                     (indices must be whole numbers in 0..{size})"
                )))
            }
        })
        .collect::<ScriptResult<Vec<u32>>>()?;
    if size > u32::MAX as usize {
        return Err(script_err(format!(
            "index_select: dimension {dim} has {size} entries, more than 32-bit indices reach"
        )));
    }
    let mut out = x.dims().to_vec();
    out[dim] = ids.len();
    limits::check_tensor("index_select", &out, x.dtype())?;
    let n = ids.len();
    CT::from_vec(ids, n, x.device()).or_script()
}
