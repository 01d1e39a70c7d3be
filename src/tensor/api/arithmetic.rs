//! Arithmetic: the element-wise binary operators for every mix of tensors and numbers (checked
//! for broadcasting, the memory budget and integer dtypes), matrix products, powers and the
//! element-wise math functions.

use super::*;

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

pub(super) fn register_arithmetic(engine: &mut Engine) {
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
pub(super) fn check_matmul(a: &CT, b: &CT) -> ScriptResult<()> {
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

pub(super) fn register_elementwise(engine: &mut Engine) {
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
    // The fused op: candle's relu is five passes backward (BENCHMARKS.md), and its gradient
    // at 0 is 1 where PyTorch's is 0.
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
