//! The embedded MNIST classifier and the two image metrics built on it: an Inception-style
//! score (`mnist_score`) and a Fréchet distance between feature statistics (`mnist_fid`).
//!
//! The classifier was trained by ganscript itself (`scripts/train_classifier.rhai`, see
//! `src/metrics/README.md`) on the first 8,000 built-in digits; on the last 2,000 (held out) it
//! is right on [`CLASSIFIER_ACCURACY`] of them. Architecture (PyTorch parameter names `0.` …
//! `9.`):
//!
//! ```text
//! 0 conv2d(1, 32, 3, 1, 1)   1 relu
//! 2 conv2d(32, 64, 4, 2, 1)  3 relu      28×28 → 14×14
//! 4 conv2d(64, 64, 4, 2, 1)  5 relu      14×14 → 7×7
//! 6 flatten                  7 linear(3136, 128)   8 relu   ← 128-d features
//! 9 linear(128, 10)                                          ← logits
//! ```
//!
//! The weights (f32 safetensors) are compiled into the binary; the net is built directly from
//! them (no random initialisation, so computing a metric never disturbs the seeded generator)
//! and always runs in f32 on the current device, in batches, detached from any graph.

use super::linalg::{frechet_distance, mean_cov};
use crate::data::{parse_range, Dataset};
use crate::device::current_device;
use crate::errors::Error;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::nn::{Act, Layer, Net};
use crate::tensor::Tensor;
use candle_core::{DType, Tensor as CT, Var};
use rhai::{Dynamic, Engine, Map, FLOAT, INT};
use std::cell::RefCell;
use std::collections::HashMap;

/// The classifier's weights (safetensors, f32), as written by `scripts/train_classifier.rhai`.
pub const CLASSIFIER_BYTES: &[u8] = include_bytes!("mnist_classifier.safetensors");

/// Accuracy of the embedded classifier on the last 2,000 built-in digits (indices 8000..10000,
/// never seen in training), measured at the end of training: 97.50% (1,950 of 2,000). Trained
/// with `ganscript run scripts/train_classifier.rhai --seed 1 --set epochs=5` (5 epochs, Adam
/// lr 1e-3 · 0.6^(epoch−1), batch 64, random ±2 px shifts), 7 min on 2 shared CPU cores.
pub const CLASSIFIER_ACCURACY: f64 = 0.975;

/// The dimension of the penultimate ("feature") layer.
pub const FEATURE_DIM: usize = 128;
/// The number of classes.
pub const CLASSES: usize = 10;
/// Samples per forward pass.
const BATCH: usize = 250;

/// The embedded classifier split into its feature extractor and its last linear layer.
#[derive(Clone)]
pub struct Classifier {
    /// Layers 0..=8: images `[N,1,28,28]` → features `[N,128]`.
    pub features: Net,
    /// Layer 9: features → logits `[N,10]`.
    pub head: Net,
}

impl Classifier {
    /// The whole net as one `sequential` (sharing the parameters).
    pub fn net(&self) -> Net {
        let mut items = match self.features.layer() {
            Layer::Sequential(v) => v.clone(),
            _ => vec![self.features.clone()],
        };
        items.push(self.head.clone());
        Net::sequential(items)
    }
}

/// Builds the classifier from safetensors bytes (checking every tensor's name and shape).
pub fn classifier_from_bytes(bytes: &[u8]) -> Result<Classifier, Error> {
    let map: HashMap<String, CT> = candle_core::safetensors::load_buffer(bytes, &current_device())
        .map_err(|e| format!("mnist classifier: not a valid safetensors file: {e}"))?;
    let var = |name: &str, shape: &[usize]| -> Result<Var, Error> {
        let t = map
            .get(name)
            .ok_or_else(|| format!("mnist classifier: missing tensor \"{name}\""))?;
        if t.dims() != shape {
            return Err(Error::Msg(format!(
                "mnist classifier: tensor \"{name}\" has shape {:?}, expected {shape:?}",
                t.dims()
            )));
        }
        Ok(t.to_dtype(DType::F32)
            .and_then(|t| Var::from_tensor(&t))
            .map_err(|e| format!("mnist classifier: tensor \"{name}\": {e}"))?)
    };
    let conv = |i: usize, cin: usize, cout: usize, k: usize, s: usize, p: usize| {
        Ok::<Net, Error>(Net::from_layer(Layer::Conv2d {
            w: var(&format!("{i}.weight"), &[cout, cin, k, k])?,
            b: Some(var(&format!("{i}.bias"), &[cout])?),
            stride: s,
            padding: p,
        }))
    };
    let linear = |i: usize, inp: usize, out: usize| {
        Ok::<Net, Error>(Net::from_layer(Layer::Linear {
            w: var(&format!("{i}.weight"), &[out, inp])?,
            b: Some(var(&format!("{i}.bias"), &[out])?),
        }))
    };
    let relu = || Net::act(Act::Relu);
    let features = Net::sequential(vec![
        conv(0, 1, 32, 3, 1, 1)?,
        relu(),
        conv(2, 32, 64, 4, 2, 1)?,
        relu(),
        conv(4, 64, 64, 4, 2, 1)?,
        relu(),
        Net::flatten(),
        linear(7, 64 * 7 * 7, FEATURE_DIM)?,
        relu(),
    ]);
    let head = linear(9, FEATURE_DIM, CLASSES)?;
    features.set_training(false);
    head.set_training(false);
    Ok(Classifier { features, head })
}

thread_local! {
    static CACHED: RefCell<Option<Classifier>> = const { RefCell::new(None) };
}

/// The embedded classifier (built once per thread; the metrics share it).
pub fn embedded_classifier() -> ScriptResult<Classifier> {
    CACHED.with(|c| {
        if let Some(cl) = c.borrow().as_ref() {
            return Ok(cl.clone());
        }
        let cl = classifier_from_bytes(CLASSIFIER_BYTES).map_err(script_err)?;
        *c.borrow_mut() = Some(cl.clone());
        Ok(cl)
    })
}

/// Brings samples to `[N,1,28,28]` f32 in [0, 1]: accepts `[N,1,28,28]`, `[N,28,28]`, `[N,784]`
/// and 32×32 (`[N,1,32,32]`, `[N,32,32]`, centre-cropped to 28×28); `range` is the samples'
/// value range, mapped linearly to [0, 1] (values are not clipped).
pub fn prepare(samples: &CT, range: (f32, f32), what: &str) -> ScriptResult<CT> {
    let dims = samples.dims().to_vec();
    let bad = || {
        script_err(format!(
            "{what}: expected MNIST-sized images [N,1,28,28] (or [N,28,28], [N,784], or 32×32 \
             padded ones), got shape {dims:?}"
        ))
    };
    if dims.is_empty() || dims[0] == 0 {
        return Err(script_err(format!("{what}: no samples (shape {dims:?})")));
    }
    let n = dims[0];
    let x = samples.detach();
    let x = match &dims[1..] {
        [1, 28, 28] => x,
        [28, 28] | [784] => x.reshape((n, 1, 28, 28)).or_script()?,
        [1, 32, 32] | [32, 32] => x
            .reshape((n, 1, 32, 32))
            .and_then(|x| x.narrow(2, 2, 28))
            .and_then(|x| x.narrow(3, 2, 28))
            .or_script()?,
        _ => return Err(bad()),
    };
    let x = x.to_dtype(DType::F32).or_script()?;
    let total = x
        .sum_all()
        .and_then(|s| s.to_dtype(DType::F64))
        .and_then(|s| s.to_scalar::<f64>())
        .or_script()?;
    if !total.is_finite() {
        return Err(script_err(format!(
            "{what}: the samples contain NaN or infinite values"
        )));
    }
    let (lo, hi) = range;
    let x = if (lo, hi) == (0.0, 1.0) {
        x
    } else {
        x.affine(1.0 / (hi - lo) as f64, -(lo as f64) / (hi - lo) as f64)
            .or_script()?
    };
    x.to_device(&current_device())
        .and_then(|x| x.contiguous())
        .ctx(what)
}

/// Features `[N,128]` and logits `[N,10]` of prepared images, row-major f64.
pub fn features_and_logits(x: &CT) -> ScriptResult<(Vec<f64>, Vec<f64>)> {
    let cl = embedded_classifier()?;
    let n = x.dim(0).or_script()?;
    let mut feats = Vec::with_capacity(n * FEATURE_DIM);
    let mut logits = Vec::with_capacity(n * CLASSES);
    let mut start = 0;
    while start < n {
        let len = BATCH.min(n - start);
        let xb = x.narrow(0, start, len).or_script()?;
        let f = cl.features.forward(&xb).ctx("mnist classifier")?.detach();
        let l = cl.head.forward(&f).ctx("mnist classifier")?.detach();
        let host = |t: &CT| {
            t.to_dtype(DType::F64)
                .and_then(|t| t.flatten_all())
                .and_then(|t| t.to_vec1::<f64>())
                .or_script()
        };
        feats.extend(host(&f)?);
        logits.extend(host(&l)?);
        start += len;
    }
    Ok((feats, logits))
}

/// Row-wise softmax of `[N, C]` logits (f64, stable).
fn probs(logits: &[f64], c: usize) -> Vec<f64> {
    let mut p = Vec::with_capacity(logits.len());
    for row in logits.chunks(c) {
        let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
        let s: f64 = e.iter().sum();
        p.extend(e.iter().map(|v| v / s));
    }
    p
}

/// `exp(mean_x KL(p(y|x) ‖ p(y)))` with `p(y)` the mean of the rows (one split).
fn score_of(p: &[f64], c: usize) -> f64 {
    let n = p.len() / c;
    let mut marg = vec![0.0; c];
    for row in p.chunks(c) {
        for (m, v) in marg.iter_mut().zip(row) {
            *m += v;
        }
    }
    for m in &mut marg {
        *m /= n as f64;
    }
    let mut kl = 0.0;
    for row in p.chunks(c) {
        for (v, m) in row.iter().zip(&marg) {
            if *v > 0.0 {
                kl += v * (v.ln() - m.ln());
            }
        }
    }
    (kl / n as f64).exp()
}

/// The result of [`mnist_score`].
#[derive(Clone, Debug)]
pub struct ScoreResult {
    /// The score (mean over splits); between 1 and 10.
    pub score: f64,
    /// Standard deviation over splits (0 with one split).
    pub std: f64,
    pub splits: usize,
    /// The number of samples.
    pub n: usize,
}

/// Inception-style score of samples with the embedded classifier:
/// `exp(E_x KL(p(y|x) ‖ p(y)))`, split into `splits` equal parts (the score is their mean, as
/// in Salimans et al.'s code; the std is the population std over splits).
pub fn mnist_score(samples: &CT, range: (f32, f32), splits: usize) -> ScriptResult<ScoreResult> {
    let x = prepare(samples, range, "mnist_score")?;
    let n = x.dim(0).or_script()?;
    if splits == 0 || splits > n {
        return Err(script_err(format!(
            "mnist_score: splits must be in 1..={n} (the number of samples), got {splits}"
        )));
    }
    let (_, logits) = features_and_logits(&x)?;
    let p = probs(&logits, CLASSES);
    let scores: Vec<f64> = (0..splits)
        .map(|k| {
            let (a, b) = (k * n / splits, (k + 1) * n / splits);
            score_of(&p[a * CLASSES..b * CLASSES], CLASSES)
        })
        .collect();
    let mean = scores.iter().sum::<f64>() / splits as f64;
    let std = (scores.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / splits as f64).sqrt();
    Ok(ScoreResult {
        score: mean,
        std,
        splits,
        n,
    })
}

/// The classifier's predicted digit for each sample.
pub fn mnist_predict(samples: &CT, range: (f32, f32)) -> ScriptResult<Vec<usize>> {
    let x = prepare(samples, range, "mnist_predict")?;
    let (_, logits) = features_and_logits(&x)?;
    Ok(logits
        .chunks(CLASSES)
        .map(|row| {
            row.iter()
                .enumerate()
                .fold((0, f64::NEG_INFINITY), |(bi, bv), (i, &v)| {
                    if v > bv {
                        (i, v)
                    } else {
                        (bi, bv)
                    }
                })
                .0
        })
        .collect())
}

/// The 128-d penultimate features of samples, row-major f64 (`[N, 128]`).
pub fn mnist_features(samples: &CT, range: (f32, f32)) -> ScriptResult<Vec<f64>> {
    let x = prepare(samples, range, "mnist_features")?;
    Ok(features_and_logits(&x)?.0)
}

/// Fréchet distance between Gaussian fits (mean, unbiased covariance) of the classifier's
/// features of two sample sets (each needs at least 2 samples).
pub fn mnist_fid(
    samples: &CT,
    range: (f32, f32),
    reference: &CT,
    reference_range: (f32, f32),
) -> ScriptResult<f64> {
    let fa = mnist_features(samples, range)?;
    let fb = mnist_features(reference, reference_range)?;
    let stats = |f: &[f64], what: &str| {
        mean_cov(f, f.len() / FEATURE_DIM, FEATURE_DIM)
            .map_err(|e| script_err(format!("mnist_fid: {what}: {e}")))
    };
    let (m1, s1) = stats(&fa, "samples")?;
    let (m2, s2) = stats(&fb, "reference")?;
    frechet_distance(&m1, &s1, &m2, &s2).map_err(script_err)
}

/// A sample set from a script: a tensor (range from the options, default [0, 1]) or a data set
/// (its own range, [0, 1] when unknown).
fn samples_of(
    v: &Dynamic,
    range: Option<(f32, f32)>,
    what: &str,
) -> ScriptResult<(CT, (f32, f32))> {
    if let Some(t) = v.clone().try_cast::<Tensor>() {
        return Ok((t.0, range.unwrap_or((0.0, 1.0))));
    }
    if let Some(ds) = v.clone().try_cast::<Dataset>() {
        let r = range.or(ds.range).unwrap_or((0.0, 1.0));
        return Ok((ds.images_tensor()?.0, r));
    }
    Err(script_err(format!(
        "{what}: expected a Tensor of images or a Dataset, got {}",
        v.type_name()
    )))
}

fn opt_range(opts: &Map, key: &str) -> ScriptResult<Option<(f32, f32)>> {
    opts.get(key).map(parse_range).transpose()
}

fn check_keys(opts: &Map, allowed: &[&str], what: &str) -> ScriptResult<()> {
    for k in opts.keys() {
        if !allowed.contains(&k.as_str()) {
            return Err(script_err(format!(
                "{what}: unknown option \"{k}\": expected {}",
                allowed.join(", ")
            )));
        }
    }
    Ok(())
}

fn score_map(samples: &Dynamic, opts: &Map) -> ScriptResult<Map> {
    check_keys(opts, &["range", "splits"], "mnist_score")?;
    let (x, range) = samples_of(samples, opt_range(opts, "range")?, "mnist_score")?;
    let splits = match opts.get("splits") {
        None => 1,
        Some(v) => v
            .as_int()
            .ok()
            .and_then(|s| usize::try_from(s).ok())
            .ok_or_else(|| script_err("mnist_score: option splits must be an integer >= 1"))?,
    };
    let r = mnist_score(&x, range, splits)?;
    let mut m = Map::new();
    m.insert("score".into(), Dynamic::from_float(r.score));
    m.insert("std".into(), Dynamic::from_float(r.std));
    m.insert("splits".into(), Dynamic::from_int(r.splits as INT));
    m.insert("n".into(), Dynamic::from_int(r.n as INT));
    Ok(m)
}

fn fid_map(samples: &Dynamic, reference: &Dynamic, opts: &Map) -> ScriptResult<Map> {
    check_keys(opts, &["range", "reference_range"], "mnist_fid")?;
    let (a, ra) = samples_of(samples, opt_range(opts, "range")?, "mnist_fid")?;
    let (b, rb) = samples_of(
        reference,
        opt_range(opts, "reference_range")?,
        "mnist_fid (reference)",
    )?;
    let fid = mnist_fid(&a, ra, &b, rb)?;
    let mut m = Map::new();
    m.insert("fid".into(), Dynamic::from_float(fid));
    m.insert("n".into(), Dynamic::from_int(a.dim(0).or_script()? as INT));
    m.insert(
        "n_reference".into(),
        Dynamic::from_int(b.dim(0).or_script()? as INT),
    );
    Ok(m)
}

/// A matrix from a script tensor as f64 rows.
fn host_matrix(t: &CT, what: &str) -> ScriptResult<(Vec<f64>, Vec<usize>)> {
    let v = t
        .to_dtype(DType::F64)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f64>())
        .ctx(what)?;
    Ok((v, t.dims().to_vec()))
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "mnist_score",
        "Inception-style score exp(E KL(p(y|x) ‖ p(y))) of digits [N,1,28,28] in [0,1] with the embedded MNIST classifier (1..10): #{score, std, splits, n}.",
        |samples: Dynamic| -> ScriptResult<Map> { score_map(&samples, &Map::new()) }
    );
    reg!(
        engine,
        "mnist_score",
        "mnist_score with options #{range: [-1, 1], splits: 10} (32×32 inputs are centre-cropped; a Dataset uses its own range).",
        |samples: Dynamic, opts: Map| -> ScriptResult<Map> { score_map(&samples, &opts) }
    );
    reg!(
        engine,
        "mnist_fid",
        "Fréchet distance between Gaussian fits of the MNIST classifier's 128-d features of two sample sets (tensors in [0,1] or Datasets): #{fid, n, n_reference}.",
        |samples: Dynamic, reference: Dynamic| -> ScriptResult<Map> {
            fid_map(&samples, &reference, &Map::new())
        }
    );
    reg!(
        engine,
        "mnist_fid",
        "mnist_fid with options #{range: [-1, 1] (samples), reference_range: [0, 1]}.",
        |samples: Dynamic, reference: Dynamic, opts: Map| -> ScriptResult<Map> {
            fid_map(&samples, &reference, &opts)
        }
    );
    reg!(
        engine,
        "mnist_features",
        "The embedded MNIST classifier's 128-d penultimate features [N,128] of digits in [0,1] (options #{range}).",
        |samples: Dynamic, opts: Map| -> ScriptResult<Tensor> {
            check_keys(&opts, &["range"], "mnist_features")?;
            let (x, r) = samples_of(&samples, opt_range(&opts, "range")?, "mnist_features")?;
            let n = x.dim(0).or_script()?;
            let f = mnist_features(&x, r)?;
            crate::tensor::new_default(f, &[n, FEATURE_DIM]).map(Tensor)
        }
    );
    reg!(
        engine,
        "mnist_predict",
        "The embedded MNIST classifier's predicted digits (an integer tensor [N]) for digits in [0,1] (options #{range}).",
        |samples: Dynamic, opts: Map| -> ScriptResult<Tensor> {
            check_keys(&opts, &["range"], "mnist_predict")?;
            let (x, r) = samples_of(&samples, opt_range(&opts, "range")?, "mnist_predict")?;
            let p: Vec<i64> = mnist_predict(&x, r)?.into_iter().map(|k| k as i64).collect();
            let n = p.len();
            CT::from_vec(p, n, &current_device()).map(Tensor).or_script()
        }
    );
    reg!(
        engine,
        "mnist_classifier",
        "A copy of the embedded MNIST classifier as a Net (eval mode): [N,1,28,28] in [0,1] → logits [N,10].",
        || -> ScriptResult<Net> {
            let cl = classifier_from_bytes(CLASSIFIER_BYTES).map_err(script_err)?;
            Ok(cl.net())
        }
    );
    reg!(
        engine,
        "mnist_classifier_accuracy",
        "The embedded classifier's measured accuracy on the last 2,000 built-in digits (held out).",
        || CLASSIFIER_ACCURACY as FLOAT
    );
    reg!(
        engine,
        "frechet_distance",
        "Fréchet distance ‖μ1−μ2‖² + Tr(Σ1 + Σ2 − 2(Σ1Σ2)^½) of two Gaussians (means [D], covariances [D,D]), in f64.",
        |mu1: Tensor, cov1: Tensor, mu2: Tensor, cov2: Tensor| -> ScriptResult<FLOAT> {
            let (m1, d1) = host_matrix(&mu1.0, "frechet_distance")?;
            let (c1, e1) = host_matrix(&cov1.0, "frechet_distance")?;
            let (m2, d2) = host_matrix(&mu2.0, "frechet_distance")?;
            let (c2, e2) = host_matrix(&cov2.0, "frechet_distance")?;
            let d = m1.len();
            let square = |e: &[usize]| e.len() == 2 && e[0] == d && e[1] == d;
            if d1.len() != 1 || d2 != d1 || !square(&e1) || !square(&e2) {
                return Err(script_err(format!(
                    "frechet_distance: expected means [D] and covariances [D, D], got {d1:?}, {e1:?}, {d2:?}, {e2:?}"
                )));
            }
            frechet_distance(&m1, &c1, &m2, &c2).map_err(script_err)
        }
    );
}
