//! Reductions: sums, means, variances, norms, min/max and arg-min/max, over all or some dims.

use super::*;

/// Applies a single-dim reduction over several dims (highest first, so indices stay valid).
pub(super) fn reduce_dims(
    x: &CT,
    dims: &[usize],
    keepdim: bool,
    f: impl Fn(&CT, usize) -> candle_core::Result<CT>,
) -> candle_core::Result<CT> {
    let mut r = x.clone();
    for &d in dims.iter().rev() {
        r = f(&r, d)?;
        if !keepdim {
            r = r.squeeze(d)?;
        }
    }
    Ok(r)
}

pub(super) fn register_reductions(engine: &mut Engine) {
    // `pre` prepares the input: sums of integers are taken in i64 (a u8 sum would wrap), means
    // need floats.
    macro_rules! reduction {
        ($name:literal, $doc:literal, $pre:expr, $all:expr, $one:expr) => {{
            let pre = $pre;
            let all = $all;
            let one = $one;
            reg!(
                engine,
                $name,
                concat!($doc, " over all elements (a scalar tensor)."),
                move |x: &mut Tensor| t(all(&pre(&x.0)?), $name)
            );
            reg!(
                engine,
                $name,
                concat!($doc, " over the given dim(s), dropping them."),
                move |x: &mut Tensor, dims: Dynamic| {
                    let dims = dims_from(&dims, x.0.rank())?;
                    t(reduce_dims(&pre(&x.0)?, &dims, false, one), $name)
                }
            );
            reg!(
                engine,
                $name,
                concat!(
                    $doc,
                    " over the given dim(s); keepdim keeps them with size 1."
                ),
                move |x: &mut Tensor, dims: Dynamic, keepdim: bool| {
                    let dims = dims_from(&dims, x.0.rank())?;
                    t(reduce_dims(&pre(&x.0)?, &dims, keepdim, one), $name)
                }
            );
        }};
    }
    let as_is = |x: &CT| -> ScriptResult<CT> { Ok(x.clone()) };
    reduction!(
        "sum",
        "Sum (integers summed as i64)",
        |x: &CT| -> ScriptResult<CT> {
            if x.dtype().is_float() {
                Ok(x.clone())
            } else {
                x.to_dtype(DType::I64).ctx("sum")
            }
        },
        |x: &CT| x.sum_all(),
        |x: &CT, d: usize| x.sum_keepdim(d)
    );
    reduction!(
        "mean",
        "Mean",
        |x: &CT| -> ScriptResult<CT> {
            require_float("mean", x)?;
            Ok(x.clone())
        },
        |x: &CT| x.mean_all(),
        |x: &CT, d: usize| x.mean_keepdim(d)
    );
    reduction!(
        "max",
        "Maximum",
        as_is,
        |x: &CT| x.flatten_all()?.max(0),
        |x: &CT, d: usize| x.max_keepdim(d)
    );
    reduction!(
        "min",
        "Minimum",
        as_is,
        |x: &CT| x.flatten_all()?.min(0),
        |x: &CT, d: usize| x.min_keepdim(d)
    );
    reg!(
        engine,
        "argmax",
        "Index of the largest element of the flattened tensor.",
        |x: &mut Tensor| -> ScriptResult<INT> {
            let i =
                x.0.flatten_all()
                    .and_then(|f| f.argmax(0))
                    .and_then(|i| i.to_scalar::<u32>())
                    .ctx("argmax")?;
            Ok(i as INT)
        }
    );
    reg!(
        engine,
        "argmax",
        "Indices of the largest elements along `dim` (an integer tensor).",
        |x: &mut Tensor, dim: INT| {
            let d = dim_index(dim, x.0.rank())?;
            t(x.0.argmax(d).and_then(|i| i.to_dtype(DType::I64)), "argmax")
        }
    );
    reg!(
        engine,
        "argmin",
        "Indices of the smallest elements along `dim` (an integer tensor).",
        |x: &mut Tensor, dim: INT| {
            let d = dim_index(dim, x.0.rank())?;
            t(x.0.argmin(d).and_then(|i| i.to_dtype(DType::I64)), "argmin")
        }
    );
    reg!(
        engine,
        "l1",
        "Per-sample L1 norm Σ|x| over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("l1", &x.0)?;
            t(crate::tensor::l1_per_sample(&x.0), "l1")
        }
    );
    reg!(
        engine,
        "l2",
        "Per-sample L2 norm √(Σx² + 1e-12) over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("l2", &x.0)?;
            t(crate::tensor::l2_per_sample(&x.0), "l2")
        }
    );
    reg!(
        engine,
        "linf",
        "Per-sample L∞ norm max|x| over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("linf", &x.0)?;
            t(crate::tensor::linf_per_sample(&x.0), "linf")
        }
    );
    reg!(
        engine,
        "sq_l2",
        "Per-sample squared L2 norm Σx² over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("sq_l2", &x.0)?;
            t(crate::tensor::sq_l2_per_sample(&x.0), "sq_l2")
        }
    );
    reg!(
        engine,
        "var",
        "Variance of all elements (population, divides by n).",
        |x: &mut Tensor| {
            require_float("var", &x.0)?;
            let r = (|| {
                let m = x.0.mean_all()?;
                x.0.broadcast_sub(&m)?.sqr()?.mean_all()
            })();
            t(r, "var")
        }
    );
    reg!(
        engine,
        "std",
        "Standard deviation of all elements (population).",
        |x: &mut Tensor| {
            require_float("std", &x.0)?;
            let r = (|| {
                let m = x.0.mean_all()?;
                (x.0.broadcast_sub(&m)?.sqr()?.mean_all()? + crate::tensor::NORM_EPS)?.sqrt()
            })();
            t(r, "std")
        }
    );
}
