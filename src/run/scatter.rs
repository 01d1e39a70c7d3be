//! `scatter(name, points)`: 2-D points `[N, 2]` as they are; 3-D points `[N, 3]` projected onto
//! a plane. The plane is the run's one projection, fixed by its first 3-D scatter: the plane of
//! the first two principal axes of the mode centres given with `#{centers: t}` (the data's own
//! structure), or of that scatter's points when it gives none. It is saved as
//! `projection.json` in the run directory (and read back by a resumed run), so every scatter of
//! a run, the real data's and each sample's, is drawn in the same coordinates and the pictures
//! can be compared. Centres are red crosses; 600×600, equal scales on both axes.

use super::plot::{encode_png, ensure_font, padded_range, COLORS, FONT_NAME};
use super::RunHandle;
use crate::data::Dataset;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::Tensor;
use candle_core::DType;
use plotters::prelude::*;
use rhai::{Dynamic, Engine, Map};

/// A projection: the mean and two orthonormal axes.
pub type Plane = ([f64; 3], [f64; 3], [f64; 3]);

/// The file a run's projection is saved in.
pub const PROJECTION_FILE: &str = "projection.json";

/// The run's projection: kept in the run's state once known (the file is read at most once).
fn run_projection(
    h: &RunHandle,
    name: &str,
    points: &[f64],
    centers: Option<&[f64]>,
) -> ScriptResult<Plane> {
    if let Some(plane) = h.0.borrow().projection {
        return Ok(plane);
    }
    let plane = load_or_fix_projection(h, name, points, centers)?;
    h.0.borrow_mut().projection = Some(plane);
    Ok(plane)
}

/// The projection saved in the run directory (a resumed run), else a new one from `centers`
/// (else `points`), saved there.
fn load_or_fix_projection(
    h: &RunHandle,
    name: &str,
    points: &[f64],
    centers: Option<&[f64]>,
) -> ScriptResult<Plane> {
    let dir = h.dir()?;
    let file = dir.join(PROJECTION_FILE);
    if let Ok(text) = std::fs::read_to_string(&file) {
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| script_err(format!("{}: {e}", file.display())))?;
        let three = |k: &str| -> Option<[f64; 3]> {
            let a = v[k].as_array()?;
            let x: Vec<f64> = a.iter().filter_map(|x| x.as_f64()).collect();
            (x.len() == 3).then(|| [x[0], x[1], x[2]])
        };
        return match (three("mean"), three("axis1"), three("axis2")) {
            (Some(m), Some(a), Some(b)) => Ok((m, a, b)),
            _ => Err(script_err(format!(
                "{}: not a projection (mean, axis1, axis2: 3 numbers each)",
                file.display()
            ))),
        };
    }
    let (source, plane) = match centers {
        Some(c) if c.len() >= 9 => ("the mode centres", principal_plane(c)),
        _ => ("its points", principal_plane(points)),
    };
    let doc = serde_json::json!({
        "mean": plane.0, "axis1": plane.1, "axis2": plane.2,
        "from": format!("{source} of the first 3-D scatter, {name}"),
    });
    crate::io::atomic_write(&file, doc.to_string().as_bytes())?;
    Ok(plane)
}

/// Draws a scatter of 2-D points (and optional centres) as a PNG (600×600).
pub fn scatter_png(
    points: &[(f64, f64)],
    centers: &[(f64, f64)],
    labels: (&str, &str),
    title: &str,
) -> ScriptResult<Vec<u8>> {
    ensure_font();
    let (w, h) = (600u32, 600u32);
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in points.iter().chain(centers) {
        if x.is_finite() && y.is_finite() {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    // Equal scales: the same span on both axes, centred on the data.
    let (x0, x1) = padded_range(x0, x1);
    let (y0, y1) = padded_range(y0, y1);
    let span = (x1 - x0).max(y1 - y0) / 2.0;
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| script_err(format!("scatter: {e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_NAME, 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(cx - span..cx + span, cy - span..cy + span)
            .map_err(|e| script_err(format!("scatter: {e:?}")))?;
        chart
            .configure_mesh()
            .x_desc(labels.0)
            .y_desc(labels.1)
            .label_style((FONT_NAME, 14))
            .draw()
            .map_err(|e| script_err(format!("scatter: {e:?}")))?;
        let blue = COLORS[0].mix(0.5).filled();
        chart
            .draw_series(
                points
                    .iter()
                    .filter(|(x, y)| x.is_finite() && y.is_finite())
                    .map(|&p| Circle::new(p, 2, blue)),
            )
            .map_err(|e| script_err(format!("scatter: {e:?}")))?;
        if !centers.is_empty() {
            let red = COLORS[3].stroke_width(2);
            chart
                .draw_series(centers.iter().map(|&p| Cross::new(p, 6, red)))
                .map_err(|e| script_err(format!("scatter: {e:?}")))?;
        }
        root.present()
            .map_err(|e| script_err(format!("scatter: {e:?}")))?;
    }
    encode_png(buf, w, h)
}

fn rows_of(t: &Tensor, what: &str) -> ScriptResult<(Vec<f64>, usize)> {
    let d = match *t.0.dims() {
        [_, d] if d == 2 || d == 3 => d,
        _ => {
            return Err(script_err(format!(
                "scatter: {what} must have shape [N, 2] or [N, 3], got {:?}",
                t.0.dims()
            )))
        }
    };
    let v =
        t.0.flatten_all()
            .and_then(|f| f.to_dtype(DType::F64))
            .and_then(|f| f.to_vec1::<f64>())
            .ctx("scatter")?;
    Ok((v, d))
}

/// The mean and the first two principal axes of 3-D points (power iteration with deflation).
pub fn principal_plane(p: &[f64]) -> ([f64; 3], [f64; 3], [f64; 3]) {
    let n = (p.len() / 3).max(1) as f64;
    let mut mean = [0.0; 3];
    for r in p.chunks_exact(3) {
        for i in 0..3 {
            mean[i] += r[i] / n;
        }
    }
    let mut cov = [[0.0; 3]; 3];
    for r in p.chunks_exact(3) {
        for i in 0..3 {
            for j in 0..3 {
                cov[i][j] += (r[i] - mean[i]) * (r[j] - mean[j]) / n;
            }
        }
    }
    let top = |c: &[[f64; 3]; 3], start: [f64; 3]| {
        let mut v = start;
        for _ in 0..200 {
            let mut nv = [0.0; 3];
            for i in 0..3 {
                nv[i] = (0..3).map(|j| c[i][j] * v[j]).sum();
            }
            let norm = nv.iter().map(|x| x * x).sum::<f64>().sqrt();
            if norm < 1e-300 {
                return v;
            }
            v = nv.map(|x| x / norm);
        }
        v
    };
    let e1 = top(&cov, [0.577, 0.577, 0.578]);
    let l1: f64 = (0..3)
        .map(|i| (0..3).map(|j| e1[i] * cov[i][j] * e1[j]).sum::<f64>())
        .sum();
    let mut c2 = cov;
    for i in 0..3 {
        for j in 0..3 {
            c2[i][j] -= l1 * e1[i] * e1[j];
        }
    }
    // Start orthogonal to e1 so a degenerate case still gives an orthonormal pair.
    let any = if e1[0].abs() < 0.9 {
        [1.0, 0.0, 0.0]
    } else {
        [0.0, 1.0, 0.0]
    };
    let d: f64 = (0..3).map(|i| any[i] * e1[i]).sum();
    let start = [any[0] - d * e1[0], any[1] - d * e1[1], any[2] - d * e1[2]];
    let mut e2 = top(&c2, start);
    let d: f64 = (0..3).map(|i| e2[i] * e1[i]).sum();
    e2 = [e2[0] - d * e1[0], e2[1] - d * e1[1], e2[2] - d * e1[2]];
    let norm = e2.iter().map(|x| x * x).sum::<f64>().sqrt().max(1e-300);
    (mean, e1, e2.map(|x| x / norm))
}

fn project(p: &[f64], d: usize, plane: Option<&([f64; 3], [f64; 3], [f64; 3])>) -> Vec<(f64, f64)> {
    match (d, plane) {
        (3, Some((m, e1, e2))) => p
            .chunks_exact(3)
            .map(|r| {
                let c = [r[0] - m[0], r[1] - m[1], r[2] - m[2]];
                (
                    (0..3).map(|i| c[i] * e1[i]).sum(),
                    (0..3).map(|i| c[i] * e2[i]).sum(),
                )
            })
            .collect(),
        _ => p.chunks_exact(2).map(|r| (r[0], r[1])).collect(),
    }
}

fn scatter(h: &RunHandle, name: &str, points: &Tensor, opts: &Map) -> ScriptResult<String> {
    let mut centers: Option<Tensor> = None;
    let mut title = String::new();
    for (k, v) in opts {
        match k.as_str() {
            "centers" => {
                if !v.is_unit() {
                    centers = Some(v.clone().try_cast::<Tensor>().ok_or_else(|| {
                        script_err("scatter: `centers` must be a tensor [K, 2] or [K, 3]")
                    })?)
                }
            }
            "title" => title = v.to_string(),
            other => {
                return Err(script_err(format!(
                    "scatter: unknown option `{other}`: expected centers or title"
                )))
            }
        }
    }
    let (p, d) = rows_of(points, "points")?;
    let centers = match &centers {
        Some(c) => {
            let (cv, cd) = rows_of(c, "centers")?;
            if cd != d {
                return Err(script_err(format!(
                    "scatter: points are {d}-D but centers are {cd}-D"
                )));
            }
            Some(cv)
        }
        None => None,
    };
    let plane = if d == 3 {
        Some(run_projection(h, name, &p, centers.as_deref())?)
    } else {
        None
    };
    let pts = project(&p, d, plane.as_ref());
    let cs = centers
        .map(|c| project(&c, d, plane.as_ref()))
        .unwrap_or_default();
    // Without a title, the step or epoch in the name ("step 500"), as sample grids are captioned.
    if title.is_empty() {
        title = super::sample_image::default_caption(name);
    }
    let labels = if d == 3 {
        ("principal axis 1", "principal axis 2")
    } else {
        ("x", "y")
    };
    let bytes = scatter_png(&pts, &cs, labels, &title)?;
    let path = h.0.borrow_mut().path(name, "png")?;
    crate::io::atomic_write(&path, &bytes)?;
    Ok(path.display().to_string())
}

pub fn register(engine: &mut Engine, handle: &RunHandle) {
    let h = handle.clone();
    reg!(engine, "scatter", "A PNG scatter of points [N,2] (or [N,3] projected on their principal plane); returns the path.", move |name: &str, points: Tensor| scatter(&h, name, &points, &Map::new()));
    let h = handle.clone();
    reg!(
        engine,
        "scatter",
        "scatter with options #{centers: t, title: \"..\"} (centres drawn as red crosses).",
        move |name: &str, points: Tensor, opts: Map| scatter(&h, name, &points, &opts)
    );
    let h = handle.clone();
    reg!(
        engine,
        "scatter",
        "A PNG scatter of a data set's points with its mixture centres.",
        move |name: &str, ds: Dataset| -> ScriptResult<String> {
            let mut opts = Map::new();
            opts.insert("centers".into(), ds.centers_dyn()?);
            opts.insert("title".into(), Dynamic::from(ds.name.clone()));
            scatter(&h, name, &ds.images_tensor()?, &opts)
        }
    );
}
