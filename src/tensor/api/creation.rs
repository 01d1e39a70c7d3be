//! Creating tensors: zeros/ones/full, ranges, random draws (from the seeded generator), from
//! arrays, and the device and dtype settings.

use super::*;

pub(super) fn random_tensor(
    op: &str,
    shape: &Dynamic,
    like: Option<&CT>,
    f: impl FnOnce(usize) -> Vec<f64>,
) -> R {
    let (dtype, device) = match like {
        Some(l) => (l.dtype(), l.device().clone()),
        None => (default_dtype(), current_device()),
    };
    if !dtype.is_float() {
        return Err(script_err(format!(
            "{op}: random values need a float dtype, got {}",
            dtype.as_str()
        )));
    }
    let dims = new_shape(shape, op, dtype)?;
    let n = limits::numel(&dims, op)?;
    // The samples are drawn as f64 first.
    limits::check(
        &format!("{op}: {n} samples"),
        limits::bytes_of(n as u128, 8),
    )?;
    crate::tensor::from_f64(f(n), &dims, dtype, &device).map(Tensor)
}

/// `randn`'s arguments: a finite mean and a finite std >= 0.
pub(super) fn normal_args(mean: FLOAT, std: FLOAT) -> ScriptResult<(f64, f64)> {
    let mean = finite("randn", "the mean", mean)?;
    let std = finite("randn", "the standard deviation", std)?;
    if std < 0.0 {
        return Err(script_err(format!(
            "randn: the standard deviation must be >= 0, got {std}"
        )));
    }
    Ok((mean, std))
}

/// `rand`'s arguments: finite bounds with lo < hi.
pub(super) fn uniform_args(lo: FLOAT, hi: FLOAT) -> ScriptResult<(f64, f64)> {
    let lo = finite("rand", "the lower bound", lo)?;
    let hi = finite("rand", "the upper bound", hi)?;
    if lo >= hi {
        return Err(script_err(format!(
            "rand: the range [{lo}, {hi}) is empty: needs lo < hi"
        )));
    }
    Ok((lo, hi))
}

/// The length of `start..end` (0 if empty), checked against the memory budget.
pub(super) fn count(op: &str, start: INT, end: INT) -> ScriptResult<usize> {
    let n = (end as i128 - start as i128).max(0);
    let n = usize::try_from(n)
        .map_err(|_| script_err(format!("{op}({start}, {end}): too many values")))?;
    check_vector(op, n)?;
    Ok(n)
}

pub(super) fn register_creation(engine: &mut Engine) {
    reg!(
        engine,
        "zeros",
        "A tensor of zeros with the given shape (default dtype, current device).",
        |shape: Dynamic| {
            let dtype = default_dtype();
            t(
                CT::zeros(new_shape(&shape, "zeros", dtype)?, dtype, &current_device()),
                "zeros",
            )
        }
    );
    reg!(
        engine,
        "ones",
        "A tensor of ones with the given shape.",
        |shape: Dynamic| {
            let dtype = default_dtype();
            t(
                CT::ones(new_shape(&shape, "ones", dtype)?, dtype, &current_device()),
                "ones",
            )
        }
    );
    reg!(
        engine,
        "full",
        "A tensor filled with `value`.",
        |shape: Dynamic, value: FLOAT| {
            let dims = new_shape(&shape, "full", default_dtype())?;
            let n = limits::numel(&dims, "full")?;
            check_vector("full", n)?;
            new_default(vec![value; n], &dims).map(Tensor)
        }
    );
    reg!(
        engine,
        "full",
        "A tensor filled with `value`.",
        |shape: Dynamic, value: INT| {
            let dims = new_shape(&shape, "full", default_dtype())?;
            let n = limits::numel(&dims, "full")?;
            check_vector("full", n)?;
            new_default(vec![value as f64; n], &dims).map(Tensor)
        }
    );
    reg!(volatile engine, "randn", "Standard normal samples from the seeded generator.", |shape: Dynamic| {
        random_tensor("randn", &shape, None, |n| rng::normal_vec(n, 0.0, 1.0))
    });
    reg!(volatile engine, "randn", "Normal samples N(mean, std²) from the seeded generator (std >= 0).", |shape: Dynamic, mean: FLOAT, std: FLOAT| {
        let (mean, std) = normal_args(mean, std)?;
        random_tensor("randn", &shape, None, |n| rng::normal_vec(n, mean, std))
    });
    reg!(volatile engine, "rand", "Uniform samples in [0, 1) from the seeded generator.", |shape: Dynamic| {
        random_tensor("rand", &shape, None, |n| rng::uniform_vec(n, 0.0, 1.0))
    });
    reg!(volatile engine, "rand", "Uniform samples in [lo, hi) from the seeded generator (lo < hi).", |shape: Dynamic, lo: FLOAT, hi: FLOAT| {
        let (lo, hi) = uniform_args(lo, hi)?;
        random_tensor("rand", &shape, None, |n| rng::uniform_vec(n, lo, hi))
    });
    reg!(volatile engine, "randn_like", "Standard normal samples shaped like `x` (same dtype and device).", |x: &mut Tensor| {
        random_tensor("randn_like", &shape_dyn(&x.0), Some(&x.0), |n| rng::normal_vec(n, 0.0, 1.0))
    });
    reg!(volatile engine, "rand_like", "Uniform [0, 1) samples shaped like `x`.", |x: &mut Tensor| {
        random_tensor("rand_like", &shape_dyn(&x.0), Some(&x.0), |n| rng::uniform_vec(n, 0.0, 1.0))
    });
    reg!(
        engine,
        "zeros_like",
        "Zeros shaped like `x`.",
        |x: &mut Tensor| t(x.0.zeros_like(), "zeros_like")
    );
    reg!(
        engine,
        "ones_like",
        "Ones shaped like `x`.",
        |x: &mut Tensor| t(x.0.ones_like(), "ones_like")
    );
    reg!(
        engine,
        "full_like",
        "`value` everywhere, shaped like `x`.",
        |x: &mut Tensor, value: FLOAT| {
            require_float("full_like", &x.0)?;
            t(x.0.ones_like().and_then(|o| o * value), "full_like")
        }
    );
    reg!(
        engine,
        "arange",
        "0, 1, ..., end-1 (default dtype).",
        |end: INT| {
            let n = count("arange", 0, end)?;
            new_default((0..n).map(|v| v as f64).collect(), &[n]).map(Tensor)
        }
    );
    reg!(
        engine,
        "arange",
        "start, start+1, ..., end-1.",
        |start: INT, end: INT| {
            let n = count("arange", start, end)?;
            new_default((0..n).map(|i| (start as f64) + i as f64).collect(), &[n]).map(Tensor)
        }
    );
    reg!(
        engine,
        "arange",
        "start, start+step, ... below end.",
        |start: FLOAT, end: FLOAT, step: FLOAT| {
            let start = finite("arange", "start", start)?;
            let end = finite("arange", "end", end)?;
            let step = finite("arange", "step", step)?;
            if step == 0.0 {
                return Err(script_err("arange: step must not be 0"));
            }
            let steps = ((end - start) / step).ceil().max(0.0);
            if steps > usize::MAX as f64 / 2.0 {
                return Err(script_err(format!(
                    "arange({start}, {end}, {step}): {steps} values are more than memory can hold"
                )));
            }
            let n = steps as usize;
            check_vector("arange", n)?;
            new_default((0..n).map(|i| start + i as f64 * step).collect(), &[n]).map(Tensor)
        }
    );
    reg!(
        engine,
        "linspace",
        "`n` evenly spaced values from `start` to `end` inclusive.",
        |start: FLOAT, end: FLOAT, n: INT| {
            let start = finite("linspace", "start", start)?;
            let end = finite("linspace", "end", end)?;
            let n = usize::try_from(n).map_err(|_| {
                script_err(format!(
                    "linspace: the number of values must be >= 0, got {n}"
                ))
            })?;
            check_vector("linspace", n)?;
            let step = if n > 1 {
                (end - start) / (n - 1) as f64
            } else {
                0.0
            };
            new_default((0..n).map(|i| start + i as f64 * step).collect(), &[n]).map(Tensor)
        }
    );
    reg!(
        engine,
        "tensor",
        "A tensor from a (nested) array of numbers, e.g. tensor([[1, 2], [3, 4]]).",
        |data: Array| {
            from_array(
                &Dynamic::from_array(data),
                default_dtype(),
                &current_device(),
            )
            .map(Tensor)
        }
    );
    reg!(engine, "tensor", "A scalar (rank-0) tensor.", |v: FLOAT| {
        new_default(vec![v], &[]).map(Tensor)
    });
    reg!(engine, "tensor", "A scalar (rank-0) tensor.", |v: INT| {
        new_default(vec![v as f64], &[]).map(Tensor)
    });
    reg!(
        engine,
        "default_dtype",
        "The dtype new tensors get (f32 unless changed).",
        || { crate::device::dtype_name(default_dtype()).to_string() }
    );
    reg!(
        engine,
        "default_dtype",
        "Sets the dtype new tensors get: \"f32\" or \"f64\" (or \"f16\", \"bf16\": floats only).",
        |name: &str| -> ScriptResult<()> {
            let dtype = parse_dtype(name)?;
            if !dtype.is_float() {
                return Err(script_err(format!(
                    "default_dtype(\"{name}\"): the default dtype must be a float dtype (f32, f64, \
                     f16 or bf16): random values, layers and losses are floats; convert single \
                     tensors with x.to(\"{name}\")"
                )));
            }
            set_default_dtype(dtype);
            Ok(())
        }
    );
}
