//! Non-finite values (NaN, ±Inf): found where they arise instead of trained on.
//!
//! - By default `opt.step(loss)` checks the loss and every gradient it is about to apply (one
//!   scan each); a NaN or Inf stops the script with an error at the line of that step, naming
//!   the first net and parameter with a non-finite gradient. `--allow-nonfinite` turns this off.
//! - `--detect-anomaly` also checks the output of every tensor op a script calls (slow): the
//!   first op whose output is not finite stops the script, at its own line.
//!
//! Both switches are per thread (a script runs on one thread).

use crate::errors::{script_err, OrScriptErr, ScriptResult};
use candle_core::{DType, Storage, Tensor as CT};
use std::cell::Cell;

thread_local! {
    static ALLOW: Cell<bool> = const { Cell::new(false) };
    static DETECT: Cell<bool> = const { Cell::new(false) };
}

/// `--allow-nonfinite`: optimizers apply non-finite losses and gradients without a word.
pub fn set_allow_nonfinite(on: bool) {
    ALLOW.with(|a| a.set(on));
}

pub fn allow_nonfinite() -> bool {
    ALLOW.with(|a| a.get())
}

/// `--detect-anomaly`: every op's output is checked.
pub fn set_detect_anomaly(on: bool) {
    DETECT.with(|d| d.set(on));
}

pub fn detect_anomaly() -> bool {
    DETECT.with(|d| d.get())
}

/// The index (in row-major order) of the first NaN or infinite element of `t`, if any. A float
/// CPU tensor is scanned in place; others take one reduction (`sum(x · 0)` is NaN exactly when
/// some element is not finite) and report index 0.
pub fn first_nonfinite(t: &CT) -> candle_core::Result<Option<usize>> {
    if !t.dtype().is_float() || t.elem_count() == 0 {
        return Ok(None);
    }
    if t.device().is_cpu() && t.is_contiguous() {
        let (storage, layout) = t.storage_and_layout();
        if let (Storage::Cpu(cpu), Some((a, b))) = (&*storage, layout.contiguous_offsets()) {
            match t.dtype() {
                DType::F32 => {
                    let v = &cpu.as_slice::<f32>()?[a..b];
                    return Ok(v.iter().position(|x| !x.is_finite()));
                }
                DType::F64 => {
                    let v = &cpu.as_slice::<f64>()?[a..b];
                    return Ok(v.iter().position(|x| !x.is_finite()));
                }
                _ => {}
            }
        }
    }
    // x · 0 is NaN for NaN and ±Inf (0 · Inf = NaN) and 0 for every finite value.
    let s = (t.detach().to_dtype(DType::F64)? * 0.0)?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok((!s.is_finite()).then_some(0))
}

/// A short description of the first non-finite element: `NaN at [3, 1]`.
pub fn describe_first(t: &CT, index: usize) -> String {
    let dims = t.dims();
    let mut rest = index;
    let mut at = vec![0usize; dims.len()];
    for (i, &d) in dims.iter().enumerate().rev() {
        if d > 0 {
            at[i] = rest % d;
            rest /= d;
        }
    }
    let value = t
        .flatten_all()
        .and_then(|f| f.get(index))
        .and_then(|v| v.to_dtype(DType::F64))
        .and_then(|v| v.to_scalar::<f64>())
        .map(|v| v.to_string())
        .unwrap_or_else(|_| "NaN or Inf".to_string());
    if dims.is_empty() {
        value
    } else {
        format!("{value} at {at:?}")
    }
}

/// With `--detect-anomaly`: an error if the output `t` of `op` holds a NaN or infinity.
pub fn check_output(op: &str, t: &CT) -> ScriptResult<()> {
    if !detect_anomaly() {
        return Ok(());
    }
    if let Some(i) = first_nonfinite(t).ctx(op)? {
        return Err(script_err(format!(
            "--detect-anomaly: `{op}` returned a non-finite value ({}) in its output of shape \
             {:?}, the first op of this run to do so",
            describe_first(t, i),
            t.dims()
        )));
    }
    Ok(())
}

/// [`check_output`] on a tensor a native function returns.
pub fn checked(op: &str, t: crate::tensor::Tensor) -> ScriptResult<crate::tensor::Tensor> {
    check_output(op, &t.0)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn finds_the_first_nonfinite_element() {
        let t = CT::new(&[[1.0f32, 2.0], [f32::NAN, 4.0]], &Device::Cpu).unwrap();
        assert_eq!(first_nonfinite(&t).unwrap(), Some(2));
        assert_eq!(describe_first(&t, 2), "NaN at [1, 0]");
        let strided = t.t().unwrap();
        assert_eq!(first_nonfinite(&strided).unwrap(), Some(0));
        let ok = CT::new(&[1.0f64, -3.0], &Device::Cpu).unwrap();
        assert_eq!(first_nonfinite(&ok).unwrap(), None);
        let inf = CT::new(&[1.0f64, f64::INFINITY], &Device::Cpu).unwrap();
        assert_eq!(first_nonfinite(&inf).unwrap(), Some(1));
        let ints = CT::new(&[1u8, 2], &Device::Cpu).unwrap();
        assert_eq!(first_nonfinite(&ints).unwrap(), None);
    }
}
