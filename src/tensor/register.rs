//! Registration of the tensor API into rhai: creation, arithmetic, reductions, shapes,
//! conversions and printing. Autograd (`variable`, `grad`) lives in `crate::autograd`.

use super::{
    dim_index, dims_from, from_array, item, leaky_relu, mask_to_float, new_default, new_shape,
    require_float, scalar_like, sigmoid, softplus, to_array, Tensor,
};
use crate::device::{
    current_device, default_dtype, device_name, parse_device, parse_dtype, set_default_dtype,
};
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::limits;
use crate::rng;
use candle_core::{DType, Tensor as CT};
use rhai::{Array, Dynamic, Engine, FLOAT, INT};

type R = ScriptResult<Tensor>;

fn t(x: candle_core::Result<CT>, op: &str) -> R {
    let x = x.map(Tensor).ctx(op)?;
    crate::nonfinite::check_output(op, &x.0)?;
    Ok(x)
}

/// An error unless `v` is a finite number (`what` names it for the message).
fn finite(op: &str, what: &str, v: f64) -> ScriptResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(script_err(format!(
            "{op}: {what} must be a finite number, got {v}"
        )))
    }
}

/// Checks a 1-D tensor of `n` values of the default dtype against the memory budget (plus the
/// f64 staging buffer the values are built in).
fn check_vector(op: &str, n: usize) -> ScriptResult<()> {
    limits::check_tensor(op, &[n], default_dtype())?;
    limits::check(&format!("{op}: {n} values"), limits::bytes_of(n as u128, 8))
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Tensor>("Tensor");
    register_creation(engine);
    register_arithmetic(engine);
    register_elementwise(engine);
    register_comparisons(engine);
    register_reductions(engine);
    register_shapes(engine);
    register_conversions(engine);
}

fn random_tensor(
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
    super::from_f64(f(n), &dims, dtype, &device).map(Tensor)
}

/// `randn`'s arguments: a finite mean and a finite std >= 0.
fn normal_args(mean: FLOAT, std: FLOAT) -> ScriptResult<(f64, f64)> {
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
fn uniform_args(lo: FLOAT, hi: FLOAT) -> ScriptResult<(f64, f64)> {
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
fn count(op: &str, start: INT, end: INT) -> ScriptResult<usize> {
    let n = (end as i128 - start as i128).max(0);
    let n = usize::try_from(n)
        .map_err(|_| script_err(format!("{op}({start}, {end}): too many values")))?;
    check_vector(op, n)?;
    Ok(n)
}

fn shape_dyn(t: &CT) -> Dynamic {
    Dynamic::from_array(
        t.dims()
            .iter()
            .map(|&d| Dynamic::from_int(d as INT))
            .collect(),
    )
}

fn register_creation(engine: &mut Engine) {
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

/// Checks the operands of an element-wise binary op: the broadcast result must fit the memory
/// budget, and integer tensors only take integer arithmetic (`+`, `-`, `*` by integers; no
/// `/`): candle would truncate every result to the integer dtype.
pub fn check_binary(op: &str, a: &CT, b: Option<&CT>, scalar: Option<f64>) -> ScriptResult<()> {
    let ints = !a.dtype().is_float() || b.is_some_and(|b| !b.dtype().is_float());
    if ints {
        let exact = scalar.is_none_or(|s| s.fract() == 0.0 && s.is_finite());
        if op == "/" || !exact || matches!(op, "+" | "-" | "*") && a.dtype() == DType::U8 {
            let int = if a.dtype().is_float() {
                b.unwrap_or(a)
            } else {
                a
            };
            return Err(script_err(format!(
                "{op}: {} tensor operands would give truncated {} results; convert with \
                 x.to(\"f32\") first",
                int.dtype().as_str(),
                int.dtype().as_str()
            )));
        }
    }
    if let Some(b) = b {
        if a.dims() != b.dims() {
            if let Ok(shape) = a.shape().broadcast_shape_binary_op(b.shape(), "broadcast") {
                limits::check_tensor(op, shape.dims(), a.dtype())?;
            }
        }
    }
    Ok(())
}

/// Registers `op` for (Tensor, Tensor), (Tensor, number) and (number, Tensor).
macro_rules! binop {
    ($engine:ident, $op:literal, $doc:literal, $tt:expr, $ts:expr, $st:expr) => {{
        let tt = $tt;
        let ts = $ts;
        let st = $st;
        reg!($engine, $op, $doc, move |a: Tensor, b: Tensor| {
            check_binary($op, &a.0, Some(&b.0), None)?;
            t(tt(&a.0, &b.0), $op)
        });
        reg!($engine, $op, $doc, move |a: Tensor, b: FLOAT| {
            check_binary($op, &a.0, None, Some(b))?;
            t(ts(&a.0, b), $op)
        });
        reg!($engine, $op, $doc, move |a: Tensor, b: INT| {
            check_binary($op, &a.0, None, Some(b as f64))?;
            t(ts(&a.0, b as f64), $op)
        });
        reg!($engine, $op, $doc, move |a: FLOAT, b: Tensor| {
            check_binary($op, &b.0, None, Some(a))?;
            t(st(a, &b.0), $op)
        });
        reg!($engine, $op, $doc, move |a: INT, b: Tensor| {
            check_binary($op, &b.0, None, Some(a as f64))?;
            t(st(a as f64, &b.0), $op)
        });
    }};
}

fn register_arithmetic(engine: &mut Engine) {
    binop!(
        engine,
        "+",
        "Element-wise sum with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_add(b),
        |a: &CT, s: f64| a.affine(1.0, s),
        |s: f64, b: &CT| b.affine(1.0, s)
    );
    binop!(
        engine,
        "-",
        "Element-wise difference with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_sub(b),
        |a: &CT, s: f64| a.affine(1.0, -s),
        |s: f64, b: &CT| b.affine(-1.0, s)
    );
    binop!(
        engine,
        "*",
        "Element-wise product with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_mul(b),
        |a: &CT, s: f64| a.affine(s, 0.0),
        |s: f64, b: &CT| b.affine(s, 0.0)
    );
    binop!(
        engine,
        "/",
        "Element-wise quotient with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_div(b),
        |a: &CT, s: f64| a.affine(1.0 / s, 0.0),
        |s: f64, b: &CT| b.recip()?.affine(s, 0.0)
    );
    reg!(engine, "-", "Negation.", |a: Tensor| {
        require_float("neg", &a.0)?;
        t(a.0.neg(), "neg")
    });
    reg!(engine, "neg", "Negation.", |a: &mut Tensor| {
        require_float("neg", &a.0)?;
        t(a.0.neg(), "neg")
    });
    reg!(
        engine,
        "pow",
        "x^e, element-wise (integer exponents use exact products).",
        |x: &mut Tensor, e: FLOAT| {
            require_float("pow", &x.0)?;
            t(pow(&x.0, e), "pow")
        }
    );
    reg!(
        engine,
        "pow",
        "x^e, element-wise (integer exponents use exact products).",
        |x: &mut Tensor, e: INT| {
            require_float("pow", &x.0)?;
            t(pow(&x.0, e as f64), "pow")
        }
    );
    binop!(
        engine,
        "maximum",
        "Element-wise maximum with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_maximum(b),
        |a: &CT, s: f64| a.broadcast_maximum(&CT::new(s, a.device())?.to_dtype(a.dtype())?),
        |s: f64, b: &CT| b.broadcast_maximum(&CT::new(s, b.device())?.to_dtype(b.dtype())?)
    );
    binop!(
        engine,
        "minimum",
        "Element-wise minimum with broadcasting.",
        |a: &CT, b: &CT| a.broadcast_minimum(b),
        |a: &CT, s: f64| a.broadcast_minimum(&CT::new(s, a.device())?.to_dtype(a.dtype())?),
        |s: f64, b: &CT| b.broadcast_minimum(&CT::new(s, b.device())?.to_dtype(b.dtype())?)
    );
    reg!(
        engine,
        "matmul",
        "Matrix product (batched when both have the same leading dims, broadcast otherwise).",
        |a: &mut Tensor, b: Tensor| {
            check_matmul(&a.0, &b.0)?;
            let r = if a.0.rank() == 2 && b.0.rank() == 2 {
                a.0.matmul(&b.0)
            } else {
                a.0.broadcast_matmul(&b.0)
            };
            t(r, "matmul")
        }
    );
}

/// Checks the output of a (batched) matrix product against the memory budget; shapes that do
/// not fit are left for candle to report.
fn check_matmul(a: &CT, b: &CT) -> ScriptResult<()> {
    let (ra, rb) = (a.rank(), b.rank());
    if ra < 2 || rb < 2 {
        return Ok(());
    }
    let (m, n) = (a.dims()[ra - 2], b.dims()[rb - 1]);
    let batch_a = &a.dims()[..ra - 2];
    let batch_b = &b.dims()[..rb - 2];
    let batch = if batch_a.len() >= batch_b.len() {
        batch_a
    } else {
        batch_b
    };
    let mut dims = batch.to_vec();
    dims.extend([m, n]);
    limits::check_tensor("matmul", &dims, a.dtype())
}

/// `x^e` with exact products for small integer exponents (differentiable everywhere).
pub fn pow(x: &CT, e: f64) -> candle_core::Result<CT> {
    if e.fract() == 0.0 && e.abs() <= 4.0 {
        let n = e.abs() as u32;
        let pos = match n {
            0 => x.ones_like()?,
            1 => x.clone(),
            2 => x.sqr()?,
            3 => (x.sqr()? * x)?,
            _ => x.sqr()?.sqr()?,
        };
        if e < 0.0 {
            pos.recip()
        } else {
            Ok(pos)
        }
    } else {
        x.powf(e)
    }
}

fn register_elementwise(engine: &mut Engine) {
    macro_rules! unary {
        ($name:literal, $doc:literal, $f:expr) => {{
            let f = $f;
            reg!(engine, $name, $doc, move |x: &mut Tensor| {
                require_float($name, &x.0)?;
                t(f(&x.0), $name)
            });
        }};
    }
    unary!("sqr", "x², element-wise.", |x: &CT| x.sqr());
    unary!(
        "sqrt",
        "√x, element-wise. Its gradient is NaN at 0: use sqrt(x + eps) where x can be 0.",
        |x: &CT| x.sqrt()
    );
    unary!("abs", "|x|, element-wise.", |x: &CT| x.abs());
    unary!("exp", "eˣ, element-wise.", |x: &CT| x.exp());
    unary!("log", "Natural logarithm, element-wise.", |x: &CT| x.log());
    unary!("sin", "sin(x), element-wise.", |x: &CT| x.sin());
    unary!("cos", "cos(x), element-wise.", |x: &CT| x.cos());
    unary!("recip", "1/x, element-wise.", |x: &CT| x.recip());
    // The fused op: candle's relu is five passes backward (9 against 2.5 ms on 8 MB), and
    // its gradient at 0 is 1 where PyTorch's is 0.
    unary!("relu", "max(x, 0) (gradient 0 at 0).", |x: &CT| leaky_relu(
        x, 0.0
    ));
    unary!("sigmoid", "1/(1+e⁻ˣ), numerically stable.", sigmoid);
    unary!("tanh", "tanh(x).", |x: &CT| crate::kernels::tanh::tanh(x));
    unary!(
        "softplus",
        "log(1+eˣ), numerically stable (twice differentiable).",
        softplus
    );
    reg!(
        engine,
        "leaky_relu",
        "max(x, 0) + slope·min(x, 0).",
        |x: &mut Tensor, slope: FLOAT| {
            require_float("leaky_relu", &x.0)?;
            finite("leaky_relu", "the slope", slope)?;
            t(leaky_relu(&x.0, slope), "leaky_relu")
        }
    );
    reg!(
        engine,
        "clamp",
        "Clamps every element to [lo, hi].",
        |x: &mut Tensor, lo: FLOAT, hi: FLOAT| {
            clamp_args(lo, hi)?;
            t(x.0.clamp(lo, hi), "clamp")
        }
    );
    reg!(
        engine,
        "clamp",
        "Clamps every element to [lo, hi].",
        |x: &mut Tensor, lo: INT, hi: INT| {
            clamp_args(lo as f64, hi as f64)?;
            t(x.0.clamp(lo as f64, hi as f64), "clamp")
        }
    );
}

/// `clamp`'s bounds: numbers (infinite allowed: one-sided) with lo <= hi.
fn clamp_args(lo: f64, hi: f64) -> ScriptResult<()> {
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(script_err(format!(
            "clamp: needs bounds lo <= hi, got lo = {lo}, hi = {hi}"
        )));
    }
    Ok(())
}

fn register_comparisons(engine: &mut Engine) {
    macro_rules! cmp {
        ($name:literal, $op:literal, $method:ident) => {{
            let doc = concat!(
                "A 0/1 mask (in x's float dtype) of x ",
                $op,
                " y, with broadcasting."
            );
            let tt = |a: &CT, b: &CT| -> candle_core::Result<CT> {
                let (a2, b2) = broadcast_pair(a, b)?;
                mask_to_float(&a2.$method(&b2)?, a)
            };
            let ts =
                |a: &CT, s: f64| -> candle_core::Result<CT> { mask_to_float(&a.$method(s)?, a) };
            reg!(engine, $name, doc, move |a: Tensor, b: Tensor| t(
                tt(&a.0, &b.0),
                $name
            ));
            reg!(engine, $name, doc, move |a: Tensor, b: FLOAT| t(
                ts(&a.0, b),
                $name
            ));
            reg!(engine, $name, doc, move |a: Tensor, b: INT| t(
                ts(&a.0, b as f64),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: Tensor| t(
                tt(&a.0, &b.0),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: FLOAT| t(
                ts(&a.0, b),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: INT| t(
                ts(&a.0, b as f64),
                $name
            ));
        }};
    }
    cmp!("gt", ">", gt);
    cmp!("ge", ">=", ge);
    cmp!("lt", "<", lt);
    cmp!("le", "<=", le);
    macro_rules! eqs {
        ($name:literal, $method:ident) => {{
            let doc = concat!(
                "A 0/1 mask of element-wise `",
                $name,
                "`, with broadcasting."
            );
            reg!(engine, $name, doc, |a: &mut Tensor, b: Tensor| {
                let r = broadcast_pair(&a.0, &b.0)
                    .and_then(|(x, y)| mask_to_float(&x.$method(&y)?, &a.0));
                t(r, $name)
            });
            reg!(engine, $name, doc, |a: &mut Tensor, b: FLOAT| t(
                a.0.$method(b).and_then(|m| mask_to_float(&m, &a.0)),
                $name
            ));
        }};
    }
    eqs!("eq", eq);
    eqs!("ne", ne);
    reg!(
        engine,
        "where",
        "Picks `a` where `mask` is non-zero, else `b` (broadcasting all three).",
        |mask: Tensor, a: Dynamic, b: Dynamic| { where_dyn(&mask.0, a, b) }
    );
}

fn broadcast_pair(a: &CT, b: &CT) -> candle_core::Result<(CT, CT)> {
    if a.dims() == b.dims() {
        return Ok((a.clone(), b.clone()));
    }
    let shape = a
        .shape()
        .broadcast_shape_binary_op(b.shape(), "broadcast")?;
    Ok((a.broadcast_as(&shape)?, b.broadcast_as(&shape)?))
}

fn where_dyn(mask: &CT, a: Dynamic, b: Dynamic) -> R {
    let as_tensor = |v: Dynamic, like: &CT| -> ScriptResult<CT> {
        if let Some(x) = v.clone().try_cast::<Tensor>() {
            Ok(x.0)
        } else if let Ok(f) = v.as_float() {
            scalar_like(f, like)
        } else if let Ok(i) = v.as_int() {
            scalar_like(i as f64, like)
        } else {
            Err(script_err(format!(
                "where: expected a tensor or a number, got {}",
                v.type_name()
            )))
        }
    };
    let like = a
        .clone()
        .try_cast::<Tensor>()
        .or_else(|| b.clone().try_cast::<Tensor>())
        .map(|x| x.0)
        .unwrap_or_else(|| mask.clone());
    let like = if like.dtype().is_float() {
        like
    } else {
        mask.to_dtype(default_dtype()).or_script()?
    };
    let a = as_tensor(a, &like)?;
    let b = as_tensor(b, &like)?;
    let r = (|| {
        let shape = mask
            .shape()
            .broadcast_shape_binary_op(a.shape(), "where")?
            .broadcast_shape_binary_op(b.shape(), "where")?;
        let m = mask.broadcast_as(&shape)?.ne(0.0)?;
        m.where_cond(&a.broadcast_as(&shape)?, &b.broadcast_as(&shape)?)
    })();
    t(r, "where")
}

/// Applies a single-dim reduction over several dims (highest first, so indices stay valid).
fn reduce_dims(
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

fn register_reductions(engine: &mut Engine) {
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
            t(super::l1_per_sample(&x.0), "l1")
        }
    );
    reg!(
        engine,
        "l2",
        "Per-sample L2 norm √(Σx² + 1e-12) over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("l2", &x.0)?;
            t(super::l2_per_sample(&x.0), "l2")
        }
    );
    reg!(
        engine,
        "linf",
        "Per-sample L∞ norm max|x| over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("linf", &x.0)?;
            t(super::linf_per_sample(&x.0), "linf")
        }
    );
    reg!(
        engine,
        "sq_l2",
        "Per-sample squared L2 norm Σx² over all dims but the first: shape [batch].",
        |x: &mut Tensor| {
            require_float("sq_l2", &x.0)?;
            t(super::sq_l2_per_sample(&x.0), "sq_l2")
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
                (x.0.broadcast_sub(&m)?.sqr()?.mean_all()? + super::NORM_EPS)?.sqrt()
            })();
            t(r, "std")
        }
    );
}

fn register_shapes(engine: &mut Engine) {
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

fn optional_tensor(b: Dynamic) -> ScriptResult<Option<CT>> {
    if b.is_unit() {
        Ok(None)
    } else {
        b.try_cast::<Tensor>()
            .map(|t| Some(t.0))
            .ok_or_else(|| script_err("bias must be a tensor or ()"))
    }
}

fn usize_arg(v: INT, what: &str) -> ScriptResult<usize> {
    usize::try_from(v).map_err(|_| script_err(format!("{what} must be >= 0, got {v}")))
}

fn stride_arg(v: INT, op: &str) -> ScriptResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&s| s >= 1)
        .ok_or_else(|| script_err(format!("{op}: the stride must be >= 1, got {v}")))
}

fn check_conv_input(x: &CT, w: &CT, op: &str) -> ScriptResult<()> {
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

fn tensors_of(xs: &Array, op: &str) -> ScriptResult<Vec<CT>> {
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
fn indices_of(idx: &Dynamic, x: &CT, dim: usize) -> ScriptResult<CT> {
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

/// Floats converted to an integer dtype must be finite and within its range: candle saturates
/// (NaN becomes 0, -5 becomes 0 in u8), which silently changes values.
fn check_int_conversion(x: &CT, dtype: DType) -> ScriptResult<()> {
    if dtype.is_float() || !x.dtype().is_float() {
        return Ok(());
    }
    let (lo, hi) = match dtype {
        DType::U8 => (0.0, 255.0),
        DType::U32 => (0.0, u32::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    };
    let vals: Vec<f64> = x
        .flatten_all()
        .and_then(|f| f.to_dtype(DType::F64))
        .and_then(|f| f.to_vec1())
        .ctx("to")?;
    if let Some(v) = vals.iter().find(|v| !(lo..=hi).contains(*v)) {
        return Err(script_err(format!(
            "to(\"{}\"): the value {v} is not in the range of {} ({lo} to {hi}); clamp it first",
            dtype.as_str(),
            dtype.as_str()
        )));
    }
    Ok(())
}

fn register_conversions(engine: &mut Engine) {
    reg!(
        engine,
        "detach",
        "The same values, cut from the autograd graph.",
        |x: &mut Tensor| Tensor(x.0.detach())
    );
    reg!(
        engine,
        "item",
        "The value of a one-element tensor.",
        |x: &mut Tensor| item(&x.0)
    );
    reg!(
        engine,
        "to_float",
        "The value of a one-element tensor.",
        |x: &mut Tensor| item(&x.0)
    );
    reg!(
        engine,
        "to_array",
        "The values as nested arrays.",
        |x: &mut Tensor| to_array(&x.0)
    );
    reg!(
        engine,
        "device",
        "The device: \"cpu\" or \"cuda:N\".",
        |x: &mut Tensor| device_name(x.0.device())
    );
    reg!(
        engine,
        "dtype",
        "The dtype: \"f32\", \"f64\", ...",
        |x: &mut Tensor| x.0.dtype().as_str().to_string()
    );
    reg!(
        engine,
        "to",
        "Converts to a dtype (\"f64\") or moves to a device (\"cpu\", \"cuda:0\").",
        |x: &mut Tensor, target: &str| {
            if let Ok(dtype) = parse_dtype(target) {
                check_int_conversion(&x.0, dtype)?;
                return t(x.0.to_dtype(dtype), "to");
            }
            let device = parse_device(target).map_err(script_err)?;
            t(x.0.to_device(&device), "to")
        }
    );
    reg!(
        engine,
        "to_string",
        "Shape, dtype, device and values (or statistics when large).",
        |x: &mut Tensor| x.to_string()
    );
    reg!(
        engine,
        "to_debug",
        "Shape, dtype, device and values (or statistics when large).",
        |x: &mut Tensor| x.to_string()
    );
    reg!(
        engine,
        "summary",
        "One line: shape, dtype and device.",
        |x: &mut Tensor| super::summary_line(&x.0)
    );
    reg!(
        engine,
        "is_nan",
        "True if any element is NaN or infinite.",
        |x: &mut Tensor| -> ScriptResult<bool> {
            let v =
                x.0.flatten_all()
                    .and_then(|f| f.to_dtype(DType::F64))
                    .and_then(|f| f.to_vec1::<f64>())
                    .ctx("is_nan")?;
            Ok(v.iter().any(|x| !x.is_finite()))
        }
    );
}
