//! Softmax, log-softmax and cross-entropy over the last dimension, composed from differentiable
//! candle primitives (candle's `softmax_last_dim` has no backward pass), so they can be
//! differentiated to any order.

use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::Tensor;
use candle_core::{DType, Tensor as CT, D};
use rhai::{Array, Dynamic, Engine, INT};

/// `x − max − log Σ exp(x − max)` over the last dimension. The max is detached: log-softmax is
/// invariant to the shift, so its gradient is exactly that of the un-shifted formula.
pub fn log_softmax(x: &CT) -> candle_core::Result<CT> {
    crate::tensor::ensure_float("log_softmax", x)?;
    if x.rank() == 0 {
        return Err(candle_core::Error::Msg(
            "log_softmax: needs at least one dimension, got a scalar".into(),
        ));
    }
    let m = x.detach().max_keepdim(D::Minus1)?;
    let shifted = x.broadcast_sub(&m)?;
    let lse = shifted.exp()?.sum_keepdim(D::Minus1)?.log()?;
    shifted.broadcast_sub(&lse)
}

/// `exp(log_softmax(x))` over the last dimension.
pub fn softmax(x: &CT) -> candle_core::Result<CT> {
    log_softmax(x)?.exp()
}

/// Class indices as `usize`, checked: integers in `0..classes`.
fn label_indices(labels: &CT, n: usize, classes: usize) -> ScriptResult<Vec<usize>> {
    if labels.elem_count() != n
        || labels.rank() > 2
        || (labels.rank() == 2 && labels.dim(1).ok() != Some(1))
    {
        return Err(script_err(format!(
            "cross_entropy: expected {n} labels (shape [{n}]), got shape {:?}",
            labels.dims()
        )));
    }
    let vals: Vec<f64> = labels
        .flatten_all()
        .and_then(|t| t.to_dtype(DType::F64))
        .and_then(|t| t.to_vec1::<f64>())
        .ctx("cross_entropy: labels")?;
    vals.iter()
        .map(|&v| {
            if v.fract() == 0.0 && v >= 0.0 && (v as usize) < classes {
                Ok(v as usize)
            } else {
                Err(script_err(format!(
                    "cross_entropy: labels must be integers in 0..{classes}, got {v}"
                )))
            }
        })
        .collect()
}

/// Mean cross-entropy `−mean_i log_softmax(logits)_i[y_i]` of logits `[N, C]` and integer labels
/// `[N]` (any dtype holding whole numbers in `0..C`). Differentiable (twice) in the logits.
pub fn cross_entropy(logits: &CT, labels: &CT) -> ScriptResult<CT> {
    if logits.rank() != 2 {
        return Err(script_err(format!(
            "cross_entropy: logits must be [N, C], got shape {:?}",
            logits.dims()
        )));
    }
    let (n, c) = (logits.dims()[0], logits.dims()[1]);
    if n == 0 || c == 0 {
        return Err(script_err(format!(
            "cross_entropy: empty logits of shape {:?}",
            logits.dims()
        )));
    }
    let idx = label_indices(labels, n, c)?;
    let mut onehot = vec![0.0f64; n * c];
    for (i, &k) in idx.iter().enumerate() {
        onehot[i * c + k] = 1.0;
    }
    let onehot = CT::from_vec(onehot, (n, c), logits.device())
        .and_then(|t| t.to_dtype(logits.dtype()))
        .or_script()?;
    log_softmax(logits)
        .and_then(|l| l.mul(&onehot))
        .and_then(|l| l.sum_all())
        .and_then(|s| s.affine(-1.0 / n as f64, 0.0))
        .ctx("cross_entropy")
}

fn labels_tensor(v: &Dynamic) -> ScriptResult<CT> {
    if let Some(t) = v.clone().try_cast::<Tensor>() {
        return Ok(t.0);
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        let vals = a
            .iter()
            .map(|x| {
                x.as_int().map_err(|t| {
                    script_err(format!("cross_entropy: labels must be integers, got {t}"))
                })
            })
            .collect::<ScriptResult<Vec<INT>>>()?;
        let n = vals.len();
        return CT::from_vec(vals, n, &crate::device::current_device()).or_script();
    }
    Err(script_err(format!(
        "cross_entropy: labels must be an integer tensor or an array of integers, got {}",
        v.type_name()
    )))
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "softmax",
        "Softmax over the last dimension (composed from differentiable ops).",
        |x: Tensor| -> ScriptResult<Tensor> {
            softmax(&x.0)
                .map(Tensor)
                .ctx("softmax")
                .and_then(|t| crate::tensor::nonfinite::checked("softmax", t))
        }
    );
    reg!(
        engine,
        "log_softmax",
        "Log-softmax over the last dimension: x − max − log Σ exp(x − max) (differentiable).",
        |x: Tensor| -> ScriptResult<Tensor> {
            log_softmax(&x.0)
                .map(Tensor)
                .ctx("log_softmax")
                .and_then(|t| crate::tensor::nonfinite::checked("log_softmax", t))
        }
    );
    reg!(
        engine,
        "cross_entropy",
        "Mean cross-entropy of logits [N, C] and integer labels [N] (a tensor or an array): −mean log_softmax(logits)[y].",
        |logits: Tensor, labels: Dynamic| -> ScriptResult<Tensor> {
            cross_entropy(&logits.0, &labels_tensor(&labels)?).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("cross_entropy", t))
        }
    );
}
