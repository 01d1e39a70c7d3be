//! The tensor API registered into rhai, one theme per file: creation, arithmetic (and the
//! element-wise math), comparisons, reductions, shapes, conversions and printing. Autograd (`variable`, `grad`) lives in `autograd.rs`, a layer above.

mod arithmetic;
mod compare;
mod convert;
mod creation;
mod reduce;
mod shape;

use arithmetic::*;
use compare::*;
use convert::*;
use creation::*;
use reduce::*;
use shape::*;

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

pub use arithmetic::{check_binary, pow};
pub use shape::{conv2d, conv_transpose2d};

type R = ScriptResult<Tensor>;

fn t(x: candle_core::Result<CT>, op: &str) -> R {
    let x = x.map(Tensor).ctx(op)?;
    crate::tensor::nonfinite::check_output(op, &x.0)?;
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

fn shape_dyn(t: &CT) -> Dynamic {
    Dynamic::from_array(
        t.dims()
            .iter()
            .map(|&d| Dynamic::from_int(d as INT))
            .collect(),
    )
}
