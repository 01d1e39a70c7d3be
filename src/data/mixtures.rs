//! Synthetic Gaussian mixtures for mode-collapse experiments, each with its `centers` and the
//! component of every sample as its label:
//!
//! - `ring8(n, std)`: 8 Gaussians evenly spaced on a circle of radius 2 (std 0.02 by default);
//! - `grid25(n, std)`: a 5×5 grid at −4, −2, 0, 2, 4 (std 0.05 by default);
//! - `roth_mixture3d(n, opts)`: Roth et al. (2017): 7 Gaussians (σ 0.01) with means on the unit
//!   circle of a 2-D plane embedded in 3-D. The noise is drawn in the plane, so every sample lies
//!   on it (a low-dimensional support, the point of the experiment). The plane z = 0 is rotated
//!   by `tilt[0]` degrees about the x axis, then by `tilt[1]` degrees about the y axis (default
//!   `[30, 30]`; one number tilts about x only), then translated by `offset` (default
//!   `[0, 0, 0]`); `std` sets σ. `embedding: "official"` uses the official code's embedding
//!   instead (rothk/Stabilizing_GANs `3DGAN.py`, see [`Embedding::Official`]).
//!
//! Components are chosen uniformly; all randomness comes from [`crate::rng`].

use super::Dataset;
use crate::errors::{script_err, ScriptResult};
use crate::rng;
use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use std::f64::consts::PI;
use std::sync::Arc;

/// Samples `n` points: uniform component, then `std`-Gaussian noise in the centres' space.
fn sample_2d(name: &str, centers: &[[f64; 2]], n: usize, std: f64) -> ScriptResult<Dataset> {
    check_std(std)?;
    let comps: Vec<usize> = (0..n)
        .map(|_| rng::below(centers.len() as u64) as usize)
        .collect();
    let noise = rng::normal_vec(2 * n, 0.0, std);
    let data: Vec<f32> = comps
        .iter()
        .enumerate()
        .flat_map(|(i, &k)| {
            [
                (centers[k][0] + noise[2 * i]) as f32,
                (centers[k][1] + noise[2 * i + 1]) as f32,
            ]
        })
        .collect();
    let mut ds = Dataset::new(name, data, vec![n, 2]);
    ds.labels = Some(Arc::new(comps.iter().map(|&k| k as i64).collect()));
    ds.centers = Some((
        Arc::new(
            centers
                .iter()
                .flat_map(|c| [c[0] as f32, c[1] as f32])
                .collect(),
        ),
        vec![centers.len(), 2],
    ));
    Ok(ds)
}

fn check_std(std: f64) -> ScriptResult<()> {
    if !(std.is_finite() && std >= 0.0) {
        return Err(script_err(format!(
            "the mixture's std must be >= 0, got {std}"
        )));
    }
    Ok(())
}

pub fn ring8_centers() -> Vec<[f64; 2]> {
    (0..8)
        .map(|k| {
            let a = 2.0 * PI * k as f64 / 8.0;
            [2.0 * a.cos(), 2.0 * a.sin()]
        })
        .collect()
}

pub fn grid25_centers() -> Vec<[f64; 2]> {
    let v = [-4.0, -2.0, 0.0, 2.0, 4.0];
    v.iter()
        .flat_map(|&x| v.iter().map(move |&y| [x, y]))
        .collect()
}

pub fn ring8(n: usize, std: f64) -> ScriptResult<Dataset> {
    sample_2d("ring8", &ring8_centers(), n, std)
}

pub fn grid25(n: usize, std: f64) -> ScriptResult<Dataset> {
    sample_2d("grid25", &grid25_centers(), n, std)
}

/// The plane's embedding: a point (u, v) of the plane maps to `offset + R·(u, v, 0)` with
/// `R = R_y(tilt_y) · R_x(tilt_x)`. Returns the images of the plane's two axes.
pub fn roth_axes(tilt_x_deg: f64, tilt_y_deg: f64) -> ([f64; 3], [f64; 3]) {
    let (a, b) = (tilt_x_deg.to_radians(), tilt_y_deg.to_radians());
    // R_x(a) e1 = e1; R_x(a) e2 = (0, cos a, sin a); then R_y(b) (x, y, z) = (x cos b + z sin b, y, -x sin b + z cos b).
    let ry = |p: [f64; 3]| {
        [
            p[0] * b.cos() + p[2] * b.sin(),
            p[1],
            -p[0] * b.sin() + p[2] * b.cos(),
        ]
    };
    (ry([1.0, 0.0, 0.0]), ry([0.0, a.cos(), a.sin()]))
}

/// How the mixture's plane sits in 3-D.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Embedding {
    /// The plane z = 0 rotated by `tilt.0`° about x, then `tilt.1`° about y, then translated by
    /// `offset`; centres at (cos 2πk/7, sin 2πk/7).
    Tilt { tilt: (f64, f64), offset: [f64; 3] },
    /// rothk/Stabilizing_GANs `3DGAN.py`: centres at (sin 2πk/7, cos 2πk/7, 0); each point p (a
    /// row) maps to `p·R + t`, R the Rodrigues rotation by π/4 about (1, −1, 0)/√2 and
    /// t = (1, 1, 1)/√3.
    Official,
}

/// The official code's rotation matrix `I + sin θ K + (1 − cos θ) K²`, K the cross-product
/// matrix of the axis.
pub fn official_rotation() -> [[f64; 3]; 3] {
    let a = [1.0 / 2f64.sqrt(), -1.0 / 2f64.sqrt(), 0.0];
    let k = [[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]];
    let theta = PI / 4.0;
    let mut r = [[0.0; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            let kk: f64 = (0..3).map(|l| k[i][l] * k[l][j]).sum();
            r[i][j] =
                if i == j { 1.0 } else { 0.0 } + theta.sin() * k[i][j] + (1.0 - theta.cos()) * kk;
        }
    }
    r
}

impl Embedding {
    /// The centre of component `k` in the plane.
    fn planar(&self, k: usize) -> [f64; 2] {
        let a = 2.0 * PI * k as f64 / 7.0;
        match self {
            Embedding::Tilt { .. } => [a.cos(), a.sin()],
            Embedding::Official => [a.sin(), a.cos()],
        }
    }

    /// A point (u, v) of the plane in 3-D.
    fn embed(&self, u: f64, v: f64) -> [f64; 3] {
        match *self {
            Embedding::Tilt { tilt, offset } => {
                let (e1, e2) = roth_axes(tilt.0, tilt.1);
                std::array::from_fn(|i| offset[i] + u * e1[i] + v * e2[i])
            }
            Embedding::Official => {
                let r = official_rotation();
                let t = 1.0 / 3f64.sqrt();
                std::array::from_fn(|j| u * r[0][j] + v * r[1][j] + t)
            }
        }
    }
}

pub fn roth_mixture3d(n: usize, embedding: Embedding, std: f64) -> ScriptResult<Dataset> {
    check_std(std)?;
    let planar: Vec<[f64; 2]> = (0..7).map(|k| embedding.planar(k)).collect();
    let comps: Vec<usize> = (0..n).map(|_| rng::below(7) as usize).collect();
    let noise = rng::normal_vec(2 * n, 0.0, std);
    let mut data = Vec::with_capacity(3 * n);
    for (i, &k) in comps.iter().enumerate() {
        let p = embedding.embed(planar[k][0] + noise[2 * i], planar[k][1] + noise[2 * i + 1]);
        data.extend(p.iter().map(|&x| x as f32));
    }
    let centers: Vec<f32> = planar
        .iter()
        .flat_map(|c| embedding.embed(c[0], c[1]).map(|x| x as f32))
        .collect();
    let mut ds = Dataset::new("roth_mixture3d", data, vec![n, 3]);
    ds.labels = Some(Arc::new(comps.iter().map(|&k| k as i64).collect()));
    ds.centers = Some((Arc::new(centers), vec![7, 3]));
    Ok(ds)
}

fn num(v: &Dynamic, what: &str) -> ScriptResult<f64> {
    v.as_float()
        .or_else(|_| v.as_int().map(|i| i as f64))
        .map_err(|_| {
            script_err(format!(
                "roth_mixture3d: `{what}` must be a number, got {}",
                v.type_name()
            ))
        })
}

fn roth_from_opts(n: INT, opts: &Map) -> ScriptResult<Dataset> {
    let mut tilt = (30.0, 30.0);
    let mut offset = [0.0; 3];
    let mut std = 0.01;
    let mut official = false;
    for (k, v) in opts {
        match k.as_str() {
            "embedding" => {
                official = match v.clone().into_string().as_deref() {
                    Ok("official") => true,
                    Ok("tilt") => false,
                    _ => {
                        return Err(script_err(
                            "roth_mixture3d: `embedding` must be \"tilt\" or \"official\"",
                        ))
                    }
                }
            }
            "tilt" => {
                if let Some(a) = v.clone().try_cast::<Array>() {
                    if a.len() != 2 {
                        return Err(script_err(
                            "roth_mixture3d: `tilt` is [deg about x, deg about y] or one angle",
                        ));
                    }
                    tilt = (num(&a[0], "tilt")?, num(&a[1], "tilt")?);
                } else {
                    tilt = (num(v, "tilt")?, 0.0);
                }
            }
            "offset" => {
                let a = v
                    .clone()
                    .try_cast::<Array>()
                    .filter(|a| a.len() == 3)
                    .ok_or_else(|| {
                        script_err("roth_mixture3d: `offset` must be an array of 3 numbers")
                    })?;
                for i in 0..3 {
                    offset[i] = num(&a[i], "offset")?;
                }
            }
            "std" => std = num(v, "std")?,
            other => {
                return Err(script_err(format!(
                    "roth_mixture3d: unknown option `{other}`: expected embedding, tilt, offset or \
                     std"
                )))
            }
        }
    }
    let embedding = if official {
        if opts.contains_key("tilt") || opts.contains_key("offset") {
            return Err(script_err(
                "roth_mixture3d: the official embedding has its own rotation and translation: \
                 drop `tilt` and `offset`",
            ));
        }
        Embedding::Official
    } else {
        Embedding::Tilt { tilt, offset }
    };
    roth_mixture3d(count(n)?, embedding, std)
}

fn count(n: INT) -> ScriptResult<usize> {
    let n = usize::try_from(n)
        .map_err(|_| script_err(format!("the number of samples must be >= 0, got {n}")))?;
    // Up to 3 coordinates (f64 while drawn, then f32) and a label per sample.
    crate::limits::check(&format!("{n} mixture samples"), n as u128 * 64)?;
    Ok(n)
}

pub fn register(engine: &mut Engine) {
    reg!(volatile engine, "ring8", "n samples of 8 Gaussians on a circle of radius 2 (std 0.02), [n,2], with centers and labels.", |n: INT| ring8(count(n)?, 0.02));
    reg!(volatile engine, "ring8", "n samples of 8 Gaussians on a circle of radius 2 with the given std.", |n: INT, std: FLOAT| ring8(count(n)?, std));
    reg!(volatile engine, "grid25", "n samples of a 5×5 grid of Gaussians at -4,-2,0,2,4 (std 0.05), [n,2].", |n: INT| grid25(count(n)?, 0.05));
    reg!(volatile engine, "grid25", "n samples of the 5×5 grid of Gaussians with the given std.", |n: INT, std: FLOAT| grid25(count(n)?, std));
    reg!(volatile engine, "roth_mixture3d", "Roth et al.'s 7 Gaussians (σ 0.01) on the unit circle of a plane tilted 30° about x then 30° about y in 3-D, [n,3].", |n: INT| roth_from_opts(n, &Map::new()));
    reg!(volatile engine, "roth_mixture3d", "Roth et al.'s 3-D mixture with options #{embedding: \"tilt\"|\"official\", tilt: [deg_x, deg_y], offset: [x,y,z], std: 0.01}; \"official\": the embedding of rothk/Stabilizing_GANs 3DGAN.py (centres (sin, cos, 0), rotated by π/4 about (1,−1,0)/√2, translated by (1,1,1)/√3).", |n: INT, opts: Map| roth_from_opts(n, &opts));
}
