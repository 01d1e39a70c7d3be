//! Autograd for scripts: leaves (`variable`), and `grad`/`grads` that return *differentiable*
//! gradients, so a penalty built from them can be differentiated again (double backprop).
//!
//! candle detaches every gradient it computes unless `CANDLE_GRAD_DO_NOT_DETACH` is set before
//! the first `backward()` of a thread (it reads it once per thread). Forgetting it gives
//! silently wrong gradient-penalty gradients, so [`ensure_double_backprop`] sets it and then
//! *proves* it works on this thread with a tiny second-order derivative; every entry point
//! (engine creation, `grad`, the optimizers) calls it.

use crate::errors::Error;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::kernels::backward_for;
use crate::tensor::Tensor;
use candle_core::{DType, Device, Tensor as CT, Var};
use rhai::{Array, Dynamic, Engine};
use std::cell::Cell;
use std::sync::Once;

static SET_ENV: Once = Once::new();

thread_local! {
    static VERIFIED: Cell<bool> = const { Cell::new(false) };
}

/// Makes candle keep the graph of computed gradients on this thread, and checks that it does.
/// Errors if this thread already ran a `backward()` before the variable could take effect.
pub fn ensure_double_backprop() -> Result<(), Error> {
    if VERIFIED.with(|v| v.get()) {
        return Ok(());
    }
    SET_ENV.call_once(|| {
        if std::env::var("CANDLE_GRAD_DO_NOT_DETACH")
            .map(|v| v.is_empty() || v == "0")
            .unwrap_or(true)
        {
            // SAFETY (edition 2021: safe to call): done once, before any backward pass this
            // library runs; other threads only read the variable through candle.
            std::env::set_var("CANDLE_GRAD_DO_NOT_DETACH", "1");
        }
    });
    let ok = probe_second_order().unwrap_or(false);
    if !ok {
        return Err(Error::Msg(
            "second-order gradients are disabled on this thread: candle read \
            CANDLE_GRAD_DO_NOT_DETACH before ganscript could set it (a backward pass ran on this \
            thread before ganscript was initialised). Set CANDLE_GRAD_DO_NOT_DETACH=1 in the \
            environment, or create the ganscript engine before any other candle backward pass."
                .to_string(),
        ));
    }
    VERIFIED.with(|v| v.set(true));
    Ok(())
}

/// A second-order derivative that is wrong when candle detaches gradients: with variables
/// x = 2 and w = 1.5, z = x·w and y = z², g = ∂y/∂x = 2x·w² and P = g², so ∂P/∂w = 16x²w³ = 216.
/// The gradient reaches x through the node z, whose incoming gradient 2z depends on w; detached,
/// that dependence is lost and ∂P/∂w comes out as 8x²w³ = 108. (A probe whose intermediate nodes
/// only ever receive constant gradients, such as d²x³/dx², passes either way.)
fn probe_second_order() -> candle_core::Result<bool> {
    let x = Var::new(2.0f64, &Device::Cpu)?;
    let w = Var::new(1.5f64, &Device::Cpu)?;
    let y = (x.as_tensor() * w.as_tensor())?.sqr()?;
    let Some(g) = y.backward()?.get(x.as_tensor()).cloned() else {
        return Ok(false);
    };
    let Some(gw) = g.sqr()?.backward()?.get(w.as_tensor()).cloned() else {
        return Ok(false);
    };
    Ok((gw.to_scalar::<f64>()? - 216.0).abs() < 1e-9)
}

fn ensure() -> ScriptResult<()> {
    ensure_double_backprop().map_err(script_err)
}

/// A new leaf that gradients can be taken with respect to (a copy of `t`'s values).
pub fn variable(t: &CT) -> ScriptResult<CT> {
    let t = if t.dtype().is_float() {
        t.clone()
    } else {
        t.to_dtype(DType::F32).or_script()?
    };
    Var::from_tensor(&t.detach())
        .map(|v| v.as_tensor().clone())
        .or_script()
}

fn scalar_of(y: &CT) -> ScriptResult<CT> {
    if !y.dtype().is_float() {
        return Err(script_err("grad: the output must be a float tensor"));
    }
    if y.rank() == 0 {
        Ok(y.clone())
    } else {
        y.sum_all().or_script()
    }
}

/// An error naming `op` unless `x` is a leaf variable (what gradients are taken with respect to).
pub fn require_variable(op: &str, x: &CT) -> ScriptResult<()> {
    if x.is_variable() {
        return Ok(());
    }
    Err(script_err(format!(
        "{op}: {} is not a variable; make a leaf with variable(x) (or x.requires_grad()) before \
         computing the output from it",
        crate::tensor::summary_line(x)
    )))
}

/// The gradients of `y` (summed if not a scalar) with respect to each of `xs`, as tensors that
/// remain part of the graph. A tensor `y` does not depend on gets zeros.
pub fn grads(y: &CT, xs: &[CT]) -> ScriptResult<Vec<CT>> {
    ensure()?;
    for x in xs {
        require_variable("grad", x)?;
    }
    let wanted: Vec<&CT> = xs.iter().collect();
    let store = backward_for(&scalar_of(y)?, &wanted).ctx("backward")?;
    xs.iter()
        .map(|x| match store.get(x) {
            Some(g) => Ok(g.clone()),
            None => x.zeros_like().or_script(),
        })
        .collect()
}

pub fn grad(y: &CT, x: &CT) -> ScriptResult<CT> {
    Ok(grads(y, std::slice::from_ref(x))?.remove(0))
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "variable",
        "A leaf tensor that gradients can be taken with respect to (a copy of x).",
        |x: &mut Tensor| { variable(&x.0).map(Tensor) }
    );
    reg!(
        engine,
        "requires_grad",
        "A leaf tensor that gradients can be taken with respect to (a copy of x).",
        |x: &mut Tensor| { variable(&x.0).map(Tensor) }
    );
    reg!(
        engine,
        "is_variable",
        "True if x is a leaf that gradients can be taken with respect to.",
        |x: &mut Tensor| x.0.is_variable()
    );
    reg!(engine, "grad", "dy/dx (y summed if not a scalar), itself differentiable: penalties built from it can be differentiated again.", |y: Tensor, x: Tensor| {
        grad(&y.0, &x.0).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("grad", t))
    });
    reg!(
        engine,
        "grads",
        "[dy/dx for x in xs], each differentiable.",
        |y: Tensor, xs: Array| -> ScriptResult<Array> {
            let ts = xs
                .iter()
                .map(|v| {
                    v.clone()
                        .try_cast::<Tensor>()
                        .map(|t| t.0)
                        .ok_or_else(|| script_err("grads: expected an array of tensors"))
                })
                .collect::<ScriptResult<Vec<_>>>()?;
            let gs = grads(&y.0, &ts)?;
            Ok(gs
                .into_iter()
                .map(|g| Dynamic::from(Tensor(g)))
                .collect::<Array>())
        }
    );
}
