//! Roth et al. (2017)'s cross-testing: every discriminator judges every generator's samples and
//! a held-out set of real samples. A sample is called *real* when the discriminator's logit is
//! strictly positive (`D(x) > 0`, i.e. σ(D(x)) > ½).
//!
//! - `called_real[i][j]`: the fraction of sample set `j` that `D_i` calls real; since the
//!   samples are fakes, this is `D_i`'s false-positive rate on `G_j` (`fpr[i][j]`, the same
//!   numbers);
//! - `real_called_real[i]`: the fraction of the real test set that `D_i` calls real;
//!   `fnr[i] = 1 − real_called_real[i]`: its false-negative rate (real called fake).

use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::gan::objectives::call_net;
use crate::tensor::Tensor;
use candle_core::{DType, Tensor as CT};
use rhai::{Array, Dynamic, Engine, FnPtr, Map, NativeCallContext, INT};

/// The result of a cross-test of `nd` discriminators on `ns` sample sets.
#[derive(Clone, Debug, PartialEq)]
pub struct CrossTest {
    /// `[nd][ns]`: fraction of each (fake) sample set called real: the false-positive rates.
    pub called_real: Vec<Vec<f64>>,
    /// `[nd]`: fraction of the real test set called real.
    pub real_called_real: Vec<f64>,
    /// `[nd]`: false-negative rates, `1 − real_called_real`.
    pub fnr: Vec<f64>,
    /// The size of each sample set.
    pub n_samples: Vec<usize>,
    /// The size of the real test set.
    pub n_real: usize,
}

/// The fraction of logits `> 0` (one per sample: `[N]` or `[N, 1]`).
pub fn fraction_real(logits: &CT, n: usize, who: &str) -> ScriptResult<f64> {
    if logits.elem_count() != n
        || logits.rank() > 2
        || (logits.rank() == 2 && logits.dims()[1] != 1)
    {
        return Err(script_err(format!(
            "cross_test: {who} should return one logit per sample ([{n}] or [{n}, 1]), got shape {:?}",
            logits.dims()
        )));
    }
    let v: Vec<f64> = logits
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .ctx("cross_test")?;
    if v.iter().any(|x| x.is_nan()) {
        return Err(script_err(format!("cross_test: {who} returned NaN logits")));
    }
    Ok(v.iter().filter(|&&x| x > 0.0).count() as f64 / n.max(1) as f64)
}

/// Cross-tests `nd` discriminators (`call(i, x)` returns `D_i(x)`'s logits) on the sample sets
/// and the real test set.
pub fn cross_test(
    nd: usize,
    call: &mut dyn FnMut(usize, &CT) -> ScriptResult<CT>,
    samples: &[CT],
    real: &CT,
) -> ScriptResult<CrossTest> {
    if nd == 0 {
        return Err(script_err("cross_test: no discriminators"));
    }
    let count = |t: &CT, what: &str| -> ScriptResult<usize> {
        match t.dims().first() {
            Some(&n) if n > 0 => Ok(n),
            _ => Err(script_err(format!(
                "cross_test: {what} is empty (shape {:?})",
                t.dims()
            ))),
        }
    };
    let n_samples = samples
        .iter()
        .enumerate()
        .map(|(j, s)| count(s, &format!("sample set {j}")))
        .collect::<ScriptResult<Vec<_>>>()?;
    let n_real = count(real, "the real test set")?;
    let mut called_real = Vec::with_capacity(nd);
    let mut real_called_real = Vec::with_capacity(nd);
    for i in 0..nd {
        let mut row = Vec::with_capacity(samples.len());
        for (j, s) in samples.iter().enumerate() {
            let out = call(i, &s.detach())?;
            row.push(fraction_real(
                &out,
                n_samples[j],
                &format!("discriminator {i} on sample set {j}"),
            )?);
        }
        called_real.push(row);
        let out = call(i, &real.detach())?;
        real_called_real.push(fraction_real(
            &out,
            n_real,
            &format!("discriminator {i} on the real test set"),
        )?);
    }
    let fnr = real_called_real.iter().map(|r| 1.0 - r).collect();
    Ok(CrossTest {
        called_real,
        real_called_real,
        fnr,
        n_samples,
        n_real,
    })
}

fn floats(v: &[f64]) -> Dynamic {
    Dynamic::from_array(v.iter().map(|&x| Dynamic::from_float(x)).collect())
}

fn matrix(m: &[Vec<f64>]) -> Dynamic {
    Dynamic::from_array(m.iter().map(|r| floats(r)).collect())
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "cross_test",
        "Roth et al.'s cross-testing: each discriminator (closures x → logits) on each generator's samples (tensors) and on real test samples; called real iff logit > 0: #{called_real: [[..]], fpr: [[..]] (same), real_called_real: [..], fnr: [..], n_samples, n_real}.",
        |ctx: NativeCallContext, ds: Array, samples: Array, real: Tensor| -> ScriptResult<Map> {
            let fns = ds
                .iter()
                .enumerate()
                .map(|(i, d)| {
                    d.clone().try_cast::<FnPtr>().ok_or_else(|| {
                        script_err(format!(
                            "cross_test: discriminator {i} must be a function (e.g. |x| D.forward(x)), got {}",
                            d.type_name()
                        ))
                    })
                })
                .collect::<ScriptResult<Vec<_>>>()?;
            let sets = samples
                .iter()
                .enumerate()
                .map(|(j, s)| {
                    s.clone().try_cast::<Tensor>().map(|t| t.0).ok_or_else(|| {
                        script_err(format!(
                            "cross_test: sample set {j} must be a Tensor, got {}",
                            s.type_name()
                        ))
                    })
                })
                .collect::<ScriptResult<Vec<_>>>()?;
            let mut call = |i: usize, x: &CT| call_net(&ctx, &fns[i], x);
            let r = cross_test(fns.len(), &mut call, &sets, &real.0)?;
            let mut m = Map::new();
            m.insert("called_real".into(), matrix(&r.called_real));
            m.insert("fpr".into(), matrix(&r.called_real));
            m.insert("real_called_real".into(), floats(&r.real_called_real));
            m.insert("fnr".into(), floats(&r.fnr));
            m.insert(
                "n_samples".into(),
                Dynamic::from_array(r.n_samples.iter().map(|&n| Dynamic::from_int(n as INT)).collect()),
            );
            m.insert("n_real".into(), Dynamic::from_int(r.n_real as INT));
            Ok(m)
        }
    );
}
