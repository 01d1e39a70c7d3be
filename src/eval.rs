//! `ganscript eval RUN_DIR...`: loads each run's checkpoint (nets rebuilt from their saved
//! architecture), samples its generator and prints the papers' metrics: for MNIST-like images
//! the MNIST score and the Fréchet distance of classifier features to real digits (the built-in
//! ones, or the run's own data from its config.json, where the MNIST score is refused unless they
//! are digits), with the real data's own values beside; for
//! mixtures the modes captured, the fraction of high-quality samples and the KL divergence from
//! uniform; with several runs, Roth et al.'s cross-test of every discriminator on every
//! generator's samples and real data.

use crate::checkpoint;
use crate::data;
use crate::errors::Error;
use crate::metrics;
use crate::nn::Net;
use candle_core::{DType, Tensor as CT};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What `eval` reports for one run.
pub struct RunEval {
    pub dir: PathBuf,
    pub metrics: Value,
    samples: CT,
    discriminator: Option<Net>,
    real: Option<CT>,
    /// The names of the nets in the run's checkpoint.
    nets: Vec<String>,
}

/// The latent shape a generator expects, from its first layer.
fn latent_shape(spec: &Value) -> Option<Vec<usize>> {
    let obj = spec.as_object()?;
    let (kind, v) = obj.iter().next()?;
    match kind.as_str() {
        "sequential" => latent_shape(v.as_array()?.first()?),
        "reshape" => Some(vec![v
            .as_array()?
            .iter()
            .filter_map(Value::as_u64)
            .product::<u64>() as usize]),
        "linear" => Some(vec![v["in"].as_u64()? as usize]),
        "conv_transpose2d" | "conv2d" => Some(vec![v["in"].as_u64()? as usize, 1, 1]),
        _ => None,
    }
}

fn sample(g: &Net, n: usize, seed: u64) -> Result<CT, Error> {
    let shape = latent_shape(&g.spec())
        .ok_or("cannot tell the generator's latent size from its first layer")?;
    g.set_training(false);
    let mut out = Vec::new();
    let mut done = 0;
    let mut k = 0;
    while done < n {
        let b = (n - done).min(500);
        let mut dims = vec![b];
        dims.extend(&shape);
        let count: usize = dims.iter().product();
        let z = crate::rng::normal_vec_keyed(seed, &format!("eval/{k}"), count);
        let z = crate::tensor::from_f64(
            z,
            &dims,
            crate::nn::net_dtype(g),
            &crate::device::current_device(),
        )
        .map_err(|e| e.to_string())?;
        out.push(
            g.forward(&z)
                .map_err(|e| format!("sampling the generator: {e}"))?
                .detach(),
        );
        done += b;
        k += 1;
    }
    Ok(CT::cat(&out, 0)?)
}

fn value_range(x: &CT) -> (f32, f32) {
    let min = x
        .flatten_all()
        .and_then(|f| f.min(0))
        .and_then(|m| m.to_dtype(DType::F32))
        .and_then(|m| m.to_scalar::<f32>());
    if min.map(|m| m < -0.01).unwrap_or(false) {
        (-1.0, 1.0)
    } else {
        (0.0, 1.0)
    }
}

/// The built-in digits `start..start + n` (as many as there are) in the generator's format.
fn real_digits(like: &CT, start: usize, n: usize) -> Result<CT, Error> {
    let ds = data::files::builtin_mnist().map_err(|e| e.to_string())?;
    let all = ds.images_tensor().map_err(|e| e.to_string())?.0;
    let total = all.dim(0).map_err(|e| e.to_string())?;
    let start = start.min(total);
    let n = n.min(total - start);
    let x = all.narrow(0, start, n).map_err(|e| e.to_string())?;
    to_format(x, like)
}

/// The run's own training images, if its config.json names a data directory (`--set data=DIR`):
/// (the directory as given, its images in the generator's format, at most [`BUILTIN_DIGITS`]).
fn run_data(dir: &Path, like: &CT) -> Result<Option<(String, CT)>, Error> {
    let cfg: Value = match std::fs::read_to_string(dir.join("config.json")) {
        Ok(t) => serde_json::from_str(&t).unwrap_or(Value::Null),
        Err(_) => return Ok(None),
    };
    let Some(data_dir) = cfg["settings"]["data"].as_str().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let ds = data::files::mnist_dir_limited(Path::new(data_dir), Some(BUILTIN_DIGITS))
        .map_err(|e| {
            format!(
                "{} trained on `{data_dir}` (its config.json), which eval reads as its reference: {}",
                dir.display(),
                crate::errors::message(&e)
            )
        })?;
    let x = ds
        .images_tensor()
        .map_err(|e| crate::errors::message(&e))?
        .0;
    if x.dims().len() != 4 || x.dim(1)? != 1 || x.dim(2)? != 28 {
        return Err(Error::msg(format!(
            "{data_dir}: images of shape {:?}; eval knows 28×28 single-channel ones",
            x.dims()
        )));
    }
    Ok(Some((data_dir.to_string(), to_format(x, like)?)))
}

/// Real images in [0, 1], 28 pixels, put in the generator's format (padding, range, dtype).
fn to_format(x: CT, like: &CT) -> Result<CT, Error> {
    let size = like.dim(2)?;
    let x = if size > 28 {
        let p = (size - 28) / 2;
        x.pad_with_zeros(2, p, size - 28 - p)?
            .pad_with_zeros(3, p, size - 28 - p)?
    } else {
        x
    };
    let x = match value_range(like) {
        (lo, _) if lo < 0.0 => x.affine(2.0, -1.0)?,
        _ => x,
    };
    Ok(x.to_dtype(like.dtype())?)
}

/// Below this MNIST score on its own images (real digits: about 8.9), a data set is not digits
/// and the MNIST score of its generator means nothing (Fashion-MNIST scores about 2-3).
pub const DIGITS_MIN_SCORE: f64 = 5.0;

/// The number of built-in digits (the whole set is the feature distance's reference).
pub const BUILTIN_DIGITS: usize = 10_000;

impl RunEval {
    /// The name of the EMA copy of `generator` in the run's checkpoint (`G_ema`), if it has one.
    pub fn ema_of(&self, generator: &str) -> Option<String> {
        let name = format!("{generator}_ema");
        self.nets.contains(&name).then_some(name)
    }
}

/// Evaluates one run directory with `n` samples.
pub fn eval_run(dir: &Path, n: usize, seed: u64, generator: &str) -> Result<RunEval, Error> {
    let ck = dir.join(checkpoint::FILE_NAME);
    if !ck.exists() {
        return Err(Error::Msg(format!(
            "{} holds no {}: nothing to evaluate",
            dir.display(),
            checkpoint::FILE_NAME
        )));
    }
    let nets = checkpoint::load_nets(&ck)?;
    let find = |name: &str| nets.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let g = find(generator).ok_or_else(|| {
        let names: Vec<&str> = nets.iter().map(|(k, _)| k.as_str()).collect();
        format!(
            "checkpoint {} has no net `{generator}` (nets: {})",
            ck.display(),
            names.join(", ")
        )
    })?;
    let d = find("D");
    let samples = sample(&g, n, seed)?;
    let dims = samples.dims().to_vec();
    let mut m = json!({ "run": dir.display().to_string(), "generator": generator, "samples": n });
    let mut real = None;
    if dims.len() == 4 && dims[1] == 1 && (dims[2] == 28 || dims[2] == 32) {
        let range = value_range(&samples);
        m["features"] = json!("ganscript's MNIST classifier, penultimate layer (128)");
        // The reference: the run's own data (its config.json), else the built-in digits. The
        // MNIST score only for digits, judged by the classifier on the real images themselves.
        let (data, reference, builtin) = match run_data(dir, &samples)? {
            None => (
                "mnist (the 10,000 built-in digits)".to_string(),
                real_digits(&samples, 0, BUILTIN_DIGITS)?,
                true,
            ),
            Some((data_dir, reference)) => {
                let label = format!(
                    "the run's training data: IDX files in {data_dir} ({} images)",
                    reference.dim(0)?
                );
                (label, reference, false)
            }
        };
        // The real data's own values at the same sample count: its first `n` images, scored as
        // a generator's samples are. They are part of the reference, as a generator's training
        // data are: what a generator that reproduced them would score.
        let take = n.min(reference.dim(0)?);
        let real_n = reference.narrow(0, 0, take)?;
        let real_score = metrics::mnist_score(&real_n, range, 10)
            .map_err(|e| e.to_string())?
            .score;
        let fid =
            metrics::mnist_fid(&samples, range, &reference, range).map_err(|e| e.to_string())?;
        let real_fid =
            metrics::mnist_fid(&real_n, range, &reference, range).map_err(|e| e.to_string())?;
        m["data"] = json!(data);
        m["feature_distance"] = json!(fid);
        if !builtin {
            m["feature_distance_note"] =
                json!("Fréchet distance in the digit classifier's features to the run's own data");
        }
        m["reference_samples"] = json!(reference.dim(0)?);
        let mut r = json!({ "samples": take, "feature_distance": real_fid });
        if builtin || real_score >= DIGITS_MIN_SCORE {
            let score = metrics::mnist_score(&samples, range, 10).map_err(|e| e.to_string())?;
            m["mnist_score"] = json!(score.score);
            m["mnist_score_std"] = json!(score.std);
            r["mnist_score"] = json!(real_score);
        } else {
            m["mnist_score"] = Value::Null;
            m["mnist_score_note"] = json!(format!(
                "refused: the run's data are not digits (the digit classifier scores its real images {real_score:.2}, real digits about 8.9; below {DIGITS_MIN_SCORE} the score means nothing)"
            ));
        }
        m["reference"] = r;
        real = Some(reference);
    } else if dims.len() == 2 {
        let values = checkpoint::load_values(&ck)?;
        let centers = values
            .get("centers")
            .and_then(|c| c.clone().try_cast::<crate::tensor::Tensor>())
            .ok_or_else(|| {
                format!(
                    "checkpoint {}: its state has no `centers` tensor, needed for mode statistics",
                    ck.display()
                )
            })?;
        let std = values
            .get("mixture_std")
            .and_then(|s| s.as_float().ok())
            .unwrap_or(0.01);
        let flat = |t: &CT| -> Result<Vec<f64>, Error> {
            Ok(t.flatten_all()
                .and_then(|f| f.to_dtype(DType::F64))
                .and_then(|f| f.to_vec1())
                .map_err(|e| e.to_string())?)
        };
        let st = metrics::mode_stats(&flat(&samples)?, dims[1], &flat(&centers.0)?, std, None)?;
        m["modes"] = json!(centers.0.dim(0).unwrap_or(0));
        m["modes_captured"] = json!(st.modes_captured);
        m["high_quality_fraction"] = json!(st.high_quality_fraction);
        m["kl_uniform"] = json!(st.kl_uniform);
    } else {
        return Err(Error::Msg(format!(
            "the generator of {} makes samples of shape {dims:?}: no metric knows them",
            dir.display()
        )));
    }
    Ok(RunEval {
        dir: dir.to_path_buf(),
        metrics: m,
        samples,
        discriminator: d,
        real,
        nets: nets.iter().map(|(k, _)| k.clone()).collect(),
    })
}

/// Fraction of `x` that `d` calls real (logit > 0), or None if `d` is not a classifier.
fn fraction_real(d: &Net, x: &CT) -> Option<f64> {
    d.set_training(false);
    let y = d.forward(x).ok()?;
    if y.elem_count() != x.dim(0).ok()? {
        return None;
    }
    let v: Vec<f64> = y
        .flatten_all()
        .ok()?
        .to_dtype(DType::F64)
        .ok()?
        .to_vec1()
        .ok()?;
    Some(v.iter().filter(|&&l| l > 0.0).count() as f64 / v.len() as f64)
}

/// Roth et al.'s cross-test: each run's D on real held-out data and on every run's samples.
/// Returns rows `{discriminator, real_called_real, fake_called_real: [per run]}` plus the
/// false-negative rate (real called fake) and false-positive rate (fakes called real).
pub fn cross_test(runs: &[RunEval]) -> Option<Value> {
    let mut rows = Vec::new();
    for r in runs {
        let d = r.discriminator.as_ref()?;
        let real = r.real.as_ref()?;
        let tpr = fraction_real(d, real)?;
        let fakes: Vec<f64> = runs
            .iter()
            .map(|o| fraction_real(d, &o.samples))
            .collect::<Option<_>>()?;
        let fpr = fakes.iter().sum::<f64>() / fakes.len() as f64;
        rows.push(json!({ "discriminator": r.dir.display().to_string(), "real_called_real": tpr,
                          "fake_called_real": fakes, "false_negative_rate": 1.0 - tpr, "false_positive_rate": fpr }));
    }
    Some(Value::Array(rows))
}

/// Why [`cross_test`] has no result for `runs`.
pub fn cross_test_why(runs: &[RunEval]) -> String {
    if runs.len() < 2 {
        return "needs two runs or more".into();
    }
    for r in runs {
        let name = r.dir.display();
        if r.discriminator.is_none() {
            return format!("{name}'s checkpoint has no net `D`");
        }
        if r.real.is_none() {
            return format!("{name} has no real images to test its D on (mixture runs have none)");
        }
    }
    "a D is not a classifier (one logit per sample)".into()
}

/// The table `ganscript eval` prints.
pub fn render(runs: &[RunEval], cross: Option<&Value>) -> String {
    let mut out = String::new();
    for r in runs {
        out.push_str(&format!("{}\n", r.dir.display()));
        if let Some(obj) = r.metrics.as_object() {
            for (k, v) in obj {
                if k != "run" {
                    let v = match v.as_f64() {
                        Some(f) if v.is_f64() => format!("{f:.4}"),
                        _ => v.to_string(),
                    };
                    out.push_str(&format!("  {k:24} {v}\n"));
                }
            }
        }
    }
    if let Some(Value::Array(rows)) = cross {
        out.push_str("cross-test (fraction called real; rows: discriminators, columns: real, then each run's samples)\n");
        for row in rows {
            let fakes: Vec<String> = row["fake_called_real"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| format!("{:.3}", v.as_f64().unwrap_or(f64::NAN)))
                        .collect()
                })
                .unwrap_or_default();
            out.push_str(&format!(
                "  {}: real {:.3} | {} | FNR {:.3} FPR {:.3}\n",
                row["discriminator"].as_str().unwrap_or(""),
                row["real_called_real"].as_f64().unwrap_or(f64::NAN),
                fakes.join(" "),
                row["false_negative_rate"].as_f64().unwrap_or(f64::NAN),
                row["false_positive_rate"].as_f64().unwrap_or(f64::NAN),
            ));
        }
    }
    out
}
