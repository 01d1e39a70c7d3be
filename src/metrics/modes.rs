//! Mode coverage of samples from a Gaussian mixture (the ring-of-8 / grid-of-25 experiments of
//! Unrolled GAN, VEEGAN and PacGAN).
//!
//! The rule, exactly:
//! - each sample is assigned to its nearest centre (Euclidean distance);
//! - it is *high quality* if that distance is at most `3·std` (`std` the mixture components'
//!   standard deviation per coordinate);
//! - a mode is *captured* if at least `min_count` high-quality samples are assigned to it. By
//!   default `min_count = ⌈20·N / 2500⌉` (at least 1): the convention of VEEGAN and PacGAN (a
//!   mode with fewer than 20 of 2,500 samples counts as lost), scaled to N samples;
//! - `kl_uniform` is `KL(p ‖ U) = Σ_k p_k log(K·p_k)` with `p` the histogram of the high-quality
//!   samples over the K modes (0 for a perfectly balanced sampler, `log K` when all fall in one
//!   mode); it is `()` when no sample is high quality.

use crate::errors::Error;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::Tensor;
use candle_core::DType;
use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};

/// Mode coverage of a sample set.
#[derive(Clone, Debug, PartialEq)]
pub struct ModeStats {
    pub modes_captured: usize,
    pub high_quality_fraction: f64,
    /// `None` when no sample is high quality.
    pub kl_uniform: Option<f64>,
    /// High-quality samples per mode.
    pub counts: Vec<usize>,
    /// All samples per nearest mode.
    pub assigned: Vec<usize>,
    /// The threshold used.
    pub min_count: usize,
    /// The number of samples.
    pub n: usize,
}

/// The default capture threshold for `n` samples: ⌈20·n/2500⌉, at least 1.
pub fn default_min_count(n: usize) -> usize {
    (20 * n).div_ceil(2500).max(1)
}

/// Mode statistics of `n` samples of dimension `d` (row-major) against `k` centres.
pub fn mode_stats(
    samples: &[f64],
    d: usize,
    centers: &[f64],
    std: f64,
    min_count: Option<usize>,
) -> Result<ModeStats, Error> {
    if d == 0
        || !samples.len().is_multiple_of(d)
        || !centers.len().is_multiple_of(d)
        || centers.is_empty()
    {
        return Err(Error::Msg(format!(
            "mode_stats: samples ({} values) and centres ({} values) must be rows of the same \
             dimension {d}",
            samples.len(),
            centers.len()
        )));
    }
    if !(std.is_finite() && std > 0.0) {
        return Err(Error::Msg(format!(
            "mode_stats: std must be > 0, got {std}"
        )));
    }
    let n = samples.len() / d;
    let k = centers.len() / d;
    if n == 0 {
        return Err("mode_stats: no samples".into());
    }
    if samples.iter().any(|v| !v.is_finite()) {
        return Err("mode_stats: the samples contain NaN or infinite values".into());
    }
    let thr2 = (3.0 * std) * (3.0 * std);
    let mut counts = vec![0usize; k];
    let mut assigned = vec![0usize; k];
    for x in samples.chunks(d) {
        let (best, dist2) = centers
            .chunks(d)
            .map(|c| x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum::<f64>())
            .enumerate()
            .fold(
                (0, f64::INFINITY),
                |(bi, bd), (i, v)| {
                    if v < bd {
                        (i, v)
                    } else {
                        (bi, bd)
                    }
                },
            );
        assigned[best] += 1;
        if dist2 <= thr2 {
            counts[best] += 1;
        }
    }
    let hq: usize = counts.iter().sum();
    let min_count = min_count.unwrap_or_else(|| default_min_count(n));
    let modes_captured = counts.iter().filter(|&&c| c >= min_count).count();
    let kl_uniform = (hq > 0).then(|| {
        counts
            .iter()
            .filter(|&&c| c > 0)
            .map(|&c| {
                let p = c as f64 / hq as f64;
                p * (p * k as f64).ln()
            })
            .sum::<f64>()
            .max(0.0)
    });
    Ok(ModeStats {
        modes_captured,
        high_quality_fraction: hq as f64 / n as f64,
        kl_uniform,
        counts,
        assigned,
        min_count,
        n,
    })
}

fn rows(t: &Tensor, what: &str) -> ScriptResult<(Vec<f64>, usize)> {
    let x = &t.0;
    let d = match x.rank() {
        2 => x.dims()[1],
        _ => {
            return Err(script_err(format!(
                "mode_stats: {what} must be a matrix [N, D], got shape {:?}",
                x.dims()
            )))
        }
    };
    let v = x
        .to_dtype(DType::F64)
        .and_then(|x| x.flatten_all())
        .and_then(|x| x.to_vec1::<f64>())
        .ctx("mode_stats")?;
    Ok((v, d))
}

fn stats_map(samples: &Tensor, centers: &Tensor, std: f64, opts: &Map) -> ScriptResult<Map> {
    let mut min_count = None;
    for (key, v) in opts {
        match key.as_str() {
            "min_count" => {
                let c = v
                    .as_int()
                    .ok()
                    .and_then(|c| usize::try_from(c).ok())
                    .filter(|&c| c >= 1)
                    .ok_or_else(|| {
                        script_err("mode_stats: option min_count must be an integer >= 1")
                    })?;
                min_count = Some(c);
            }
            other => {
                return Err(script_err(format!(
                    "mode_stats: unknown option \"{other}\": expected min_count"
                )))
            }
        }
    }
    let (s, d) = rows(samples, "samples")?;
    let (c, dc) = rows(centers, "centers")?;
    if d != dc {
        return Err(script_err(format!(
            "mode_stats: samples have dimension {d} but the centres {dc}"
        )));
    }
    let r = mode_stats(&s, d, &c, std, min_count).map_err(script_err)?;
    let ints = |v: &[usize]| -> Array { v.iter().map(|&c| Dynamic::from_int(c as INT)).collect() };
    let mut m = Map::new();
    m.insert(
        "modes_captured".into(),
        Dynamic::from_int(r.modes_captured as INT),
    );
    m.insert("modes".into(), Dynamic::from_int(r.counts.len() as INT));
    m.insert(
        "high_quality_fraction".into(),
        Dynamic::from_float(r.high_quality_fraction),
    );
    m.insert(
        "kl_uniform".into(),
        r.kl_uniform
            .map(Dynamic::from_float)
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert("counts".into(), Dynamic::from_array(ints(&r.counts)));
    m.insert("assigned".into(), Dynamic::from_array(ints(&r.assigned)));
    m.insert("min_count".into(), Dynamic::from_int(r.min_count as INT));
    m.insert("n".into(), Dynamic::from_int(r.n as INT));
    Ok(m)
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "mode_stats",
        "Mode coverage of samples [N,D] for a mixture with centres [K,D] and component std: #{modes_captured, high_quality_fraction, kl_uniform, counts, assigned, min_count, modes, n} (nearest centre; high quality within 3·std; captured with ≥ ⌈20N/2500⌉ high-quality samples).",
        |samples: Tensor, centers: Tensor, std: FLOAT| -> ScriptResult<Map> {
            stats_map(&samples, &centers, std, &Map::new())
        }
    );
    reg!(
        engine,
        "mode_stats",
        "mode_stats with options #{min_count: 20} (high-quality samples a mode needs to count as captured).",
        |samples: Tensor, centers: Tensor, std: FLOAT, opts: Map| -> ScriptResult<Map> {
            stats_map(&samples, &centers, std, &opts)
        }
    );
    reg!(
        engine,
        "mode_stats",
        "Mode coverage (std given as an integer).",
        |samples: Tensor, centers: Tensor, std: INT| -> ScriptResult<Map> {
            stats_map(&samples, &centers, std as f64, &Map::new())
        }
    );
}
