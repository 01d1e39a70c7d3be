//! The `Tensor` type scripts see: a cheap-to-clone handle on a candle tensor, with the
//! conversions (rhai arrays, shapes, dims) and composite operations the script API needs.
//!
//! `register` holds the rhai registration of the tensor API.

pub mod api;
mod format;
pub mod nonfinite;
pub mod random;

use crate::device::{current_device, default_dtype};
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use candle_core::{DType, Device, Tensor as CTensor};
use rhai::{Array, Dynamic, INT};

/// A tensor as scripts see it. Cloning shares the storage (candle tensors are reference counted).
#[derive(Clone)]
pub struct Tensor(pub CTensor);

impl From<CTensor> for Tensor {
    fn from(t: CTensor) -> Self {
        Tensor(t)
    }
}

impl Tensor {
    pub fn inner(&self) -> &CTensor {
        &self.0
    }
    pub fn into_inner(self) -> CTensor {
        self.0
    }
}

impl std::fmt::Debug for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", format::describe(&self.0))
    }
}

impl std::fmt::Display for Tensor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", format::describe(&self.0))
    }
}

pub use format::summary_line;

/// Reads a shape from a script value: an array of non-negative integers, or one integer. The
/// number of elements must not overflow (see [`crate::limits::numel`]).
pub fn shape_from(value: &Dynamic) -> ScriptResult<Vec<usize>> {
    if let Some(n) = value.clone().try_cast::<INT>() {
        return Ok(vec![nonneg(n, "shape")?]);
    }
    if let Some(arr) = value.clone().try_cast::<Array>() {
        let dims = arr
            .iter()
            .map(|d| {
                d.as_int()
                    .map_err(|t| script_err(format!("shape entries must be integers, got {t}")))
                    .and_then(|n| nonneg(n, "shape"))
            })
            .collect::<ScriptResult<Vec<usize>>>()?;
        crate::limits::numel(&dims, "shape")?;
        return Ok(dims);
    }
    Err(script_err(format!(
        "expected a shape (an array of integers such as [64, 784]), got {}",
        value.type_name()
    )))
}

/// A shape for a new tensor of `dtype` made by `op`: [`shape_from`], then checked against the
/// memory budget.
pub fn new_shape(value: &Dynamic, op: &str, dtype: DType) -> ScriptResult<Vec<usize>> {
    let dims = shape_from(value)?;
    crate::limits::check_tensor(op, &dims, dtype)?;
    Ok(dims)
}

/// An error unless `x` holds floats: the math ops (log, sqrt, softplus, norms, ...) have no
/// integer kernels, and integer arithmetic would silently truncate.
pub fn require_float(op: &str, x: &CTensor) -> ScriptResult<()> {
    if x.dtype().is_float() {
        Ok(())
    } else {
        Err(script_err(format!(
            "{op}: needs a float tensor, got a {} tensor of shape {:?}; convert it first with \
             x.to(\"f32\")",
            x.dtype().as_str(),
            x.dims()
        )))
    }
}

pub use crate::kernels::ensure_float;

fn nonneg(n: INT, what: &str) -> ScriptResult<usize> {
    usize::try_from(n).map_err(|_| script_err(format!("{what} entries must be >= 0, got {n}")))
}

/// Resolves a possibly negative dimension index against a rank.
pub fn dim_index(dim: INT, rank: usize) -> ScriptResult<usize> {
    let r = rank.max(1) as INT;
    let d = if dim < 0 { dim + r } else { dim };
    if d < 0 || d >= r {
        return Err(script_err(format!(
            "dimension {dim} is out of range for a tensor of rank {rank}"
        )));
    }
    Ok(d as usize)
}

/// Reads one dimension or an array of dimensions, resolved and sorted ascending.
pub fn dims_from(value: &Dynamic, rank: usize) -> ScriptResult<Vec<usize>> {
    let mut dims = if let Some(n) = value.clone().try_cast::<INT>() {
        vec![dim_index(n, rank)?]
    } else if let Some(arr) = value.clone().try_cast::<Array>() {
        arr.iter()
            .map(|d| {
                d.as_int()
                    .map_err(|t| script_err(format!("dimensions must be integers, got {t}")))
                    .and_then(|n| dim_index(n, rank))
            })
            .collect::<ScriptResult<Vec<_>>>()?
    } else {
        return Err(script_err(format!(
            "expected a dimension or an array of dimensions, got {}",
            value.type_name()
        )));
    };
    dims.sort_unstable();
    dims.dedup();
    Ok(dims)
}

/// The most dimensions `tensor([...])` builds from nested arrays.
pub const MAX_RANK: usize = 32;

/// Builds a tensor from a (nested) rhai array of numbers.
pub fn from_array(value: &Dynamic, dtype: DType, device: &Device) -> ScriptResult<CTensor> {
    fn walk(
        v: &Dynamic,
        depth: usize,
        shape: &mut Vec<usize>,
        out: &mut Vec<f64>,
    ) -> ScriptResult<()> {
        if let Ok(arr) = v.as_array_ref() {
            if depth >= MAX_RANK {
                return Err(script_err(format!(
                    "tensor(...): the array is nested more than {MAX_RANK} levels deep (a \
                     tensor has at most {MAX_RANK} dimensions)"
                )));
            }
            if shape.len() == depth {
                shape.push(arr.len());
            } else if shape[depth] != arr.len() {
                return Err(script_err(format!(
                    "ragged array: rows of length {} and {} at depth {depth}",
                    shape[depth],
                    arr.len()
                )));
            }
            for item in arr.iter() {
                walk(item, depth + 1, shape, out)?;
            }
            Ok(())
        } else if let Ok(f) = v.as_float() {
            if shape.len() != depth {
                return Err(script_err(
                    "ragged array: a number where a row was expected",
                ));
            }
            out.push(f);
            Ok(())
        } else if let Ok(i) = v.as_int() {
            if shape.len() != depth {
                return Err(script_err(
                    "ragged array: a number where a row was expected",
                ));
            }
            out.push(i as f64);
            Ok(())
        } else if let Ok(b) = v.as_bool() {
            out.push(if b { 1.0 } else { 0.0 });
            Ok(())
        } else {
            Err(script_err(format!(
                "tensor(...) takes numbers or arrays of numbers, got {}",
                v.type_name()
            )))
        }
    }
    let mut shape = Vec::new();
    let mut data = Vec::new();
    walk(value, 0, &mut shape, &mut data)?;
    crate::limits::check_tensor("tensor", &shape, dtype)?;
    from_f64(data, &shape, dtype, device)
}

/// Uploads f64 data as a tensor of the given dtype: converted on the host, then moved (one
/// copy of the final size to a GPU, and no f64 tensor on a device that may lack f64).
pub fn from_f64(
    data: Vec<f64>,
    shape: &[usize],
    dtype: DType,
    device: &Device,
) -> ScriptResult<CTensor> {
    let t = CTensor::from_vec(data, shape, &Device::Cpu).or_script()?;
    let t = if dtype == DType::F64 {
        t
    } else {
        t.to_dtype(dtype).or_script()?
    };
    t.to_device(device).or_script()
}

/// A tensor with the default dtype on the current device.
pub fn new_default(data: Vec<f64>, shape: &[usize]) -> ScriptResult<CTensor> {
    from_f64(data, shape, default_dtype(), &current_device())
}

/// A scalar tensor of the same dtype and device as `like`.
pub fn scalar_like(v: f64, like: &CTensor) -> ScriptResult<CTensor> {
    CTensor::new(v, like.device())
        .and_then(|t| t.to_dtype(like.dtype()))
        .or_script()
}

/// Converts a tensor to a nested rhai array (floats, or integers for integer dtypes).
pub fn to_array(t: &CTensor) -> ScriptResult<Dynamic> {
    let is_int = t.dtype().is_int();
    let flat: Vec<f64> = t
        .flatten_all()
        .and_then(|f| f.to_dtype(DType::F64))
        .and_then(|f| f.to_vec1::<f64>())
        .or_script()?;
    let dims = t.dims().to_vec();
    fn build(flat: &[f64], dims: &[usize], is_int: bool) -> Dynamic {
        if dims.is_empty() {
            let v = flat[0];
            return if is_int {
                Dynamic::from_int(v as INT)
            } else {
                Dynamic::from_float(v)
            };
        }
        let stride: usize = dims[1..].iter().product();
        let arr: Array = (0..dims[0])
            .map(|i| build(&flat[i * stride..(i + 1) * stride], &dims[1..], is_int))
            .collect();
        Dynamic::from_array(arr)
    }
    Ok(build(&flat, &dims, is_int))
}

/// The value of a one-element tensor as a float.
pub fn item(t: &CTensor) -> ScriptResult<f64> {
    if t.elem_count() != 1 {
        return Err(script_err(format!(
            "item() needs a tensor with one element, this one has shape {:?}",
            t.dims()
        )));
    }
    t.flatten_all()
        .and_then(|f| f.to_dtype(DType::F64))
        .and_then(|f| f.to_vec1::<f64>())
        .map(|v| v[0])
        .or_script()
}

/// Numerically stable softplus: `relu(x) + log(1 + exp(-|x|))` (differentiable twice).
pub fn softplus(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("softplus", x)?;
    let neg_abs = x.abs()?.neg()?;
    x.relu()? + (neg_abs.exp()? + 1.0)?.log()?
}

pub use crate::kernels::fused::leaky_relu;

pub fn sigmoid(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("sigmoid", x)?;
    candle_nn::ops::sigmoid(x)
}

/// Flattens every dimension after the first: one row per sample.
pub fn per_sample(x: &CTensor) -> candle_core::Result<CTensor> {
    if x.rank() <= 1 {
        x.reshape((x.elem_count(), 1))
    } else {
        x.flatten_from(1)
    }
}

/// Epsilon inside the square root of the L2 norm: candle's `sqrt` has a NaN gradient at 0.
pub const NORM_EPS: f64 = 1e-12;

/// Per-sample L2 norm over flattened sample dims (`sqrt(Σx² + ε)`, safe to differentiate at 0).
pub fn l2_per_sample(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("l2", x)?;
    (per_sample(x)?.sqr()?.sum(1)? + NORM_EPS)?.sqrt()
}

/// Per-sample squared L2 norm.
pub fn sq_l2_per_sample(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("sq_l2", x)?;
    per_sample(x)?.sqr()?.sum(1)
}

/// Per-sample L1 norm.
pub fn l1_per_sample(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("l1", x)?;
    per_sample(x)?.abs()?.sum(1)
}

/// Per-sample L∞ norm.
pub fn linf_per_sample(x: &CTensor) -> candle_core::Result<CTensor> {
    ensure_float("linf", x)?;
    per_sample(x)?.abs()?.max(1)
}

/// Broadcasts a per-sample vector `[B]` against a batch `[B, ...]`.
pub fn per_sample_scale(v: &CTensor, like: &CTensor) -> candle_core::Result<CTensor> {
    let mut shape = vec![like.dim(0)?];
    shape.extend(std::iter::repeat_n(1, like.rank().saturating_sub(1)));
    v.reshape(shape)?.broadcast_as(like.shape())
}

/// A 0/1 mask in `like`'s float dtype from a comparison result.
pub fn mask_to_float(mask: &CTensor, like: &CTensor) -> candle_core::Result<CTensor> {
    let dtype = if like.dtype().is_float() {
        like.dtype()
    } else {
        default_dtype()
    };
    mask.to_dtype(dtype)
}
