//! Plots drawn with plotters into an RGB buffer and written as PNG (atomically):
//!
//! - `plot(name, keys)`: line plot (800×500) of logged metrics against `step` (or the `x` key of
//!   `#{x: "epoch", title: "..", log_y: true}`; `log_y` plots log10 of the positive values);
//! - scatters: see [`super::scatter`].
//!
//! Text uses the DejaVu Sans font compiled into the binary (no system fonts needed).

use super::RunHandle;
use crate::errors::{script_err, ScriptResult};
use plotters::prelude::*;
use rhai::{Array, Dynamic, Engine, Map};
use std::io::Cursor;
use std::sync::Once;

static FONT: &[u8] = include_bytes!("DejaVuSans.ttf");
pub(crate) const FONT_NAME: &str = "sans-serif";

pub(crate) fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font(FONT_NAME, FontStyle::Normal, FONT);
    });
}

pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

pub(crate) fn padded_range(lo: f64, hi: f64) -> (f64, f64) {
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0);
    }
    let span = hi - lo;
    if span <= 1e-12 {
        let d = lo.abs() * 0.1 + 0.5;
        (lo - d, hi + d)
    } else {
        (lo - 0.05 * span, hi + 0.05 * span)
    }
}

/// A tick label on an axis whose values are all whole numbers (steps, epochs, counts): the
/// whole number, and nothing at a tick between two (no "2000.0", no "2.5 epochs").
pub fn whole_tick_label(v: f64) -> String {
    let r = v.round();
    if (v - r).abs() <= 1e-9 * v.abs().max(1.0) {
        format!("{}", r as i64)
    } else {
        String::new()
    }
}

/// Whether every value is a whole number (and there is at least one).
fn all_integral(vs: impl Iterator<Item = f64>) -> bool {
    let mut any = false;
    for v in vs {
        if v.fract() != 0.0 || !v.is_finite() {
            return false;
        }
        any = true;
    }
    any
}

/// Where the legend of `n` series goes: the corner of the plot area (x in `xr`, y in `yr`) that
/// holds none of the points, in the order upper right, upper left, lower right, lower left (the
/// box takes about a third of the width and, per series, a twentieth of the height). When every
/// corner holds some, the legend goes upper right and the y range grows upward by the box's
/// height, so that it covers no line. Returns the position and the (new) top of the y range.
pub fn legend_place(
    points: &[(f64, f64)],
    xr: (f64, f64),
    yr: (f64, f64),
    n: usize,
) -> (SeriesLabelPosition, f64) {
    let frac = (0.06 + 0.05 * n as f64).min(0.5);
    let (wx, wy) = ((xr.1 - xr.0) / 3.0, (yr.1 - yr.0) * frac);
    let empty = |right: bool, upper: bool| {
        !points.iter().any(|&(x, y)| {
            let in_x = if right {
                x >= xr.1 - wx
            } else {
                x <= xr.0 + wx
            };
            let in_y = if upper {
                y >= yr.1 - wy
            } else {
                y <= yr.0 + wy
            };
            in_x && in_y
        })
    };
    for (pos, right, upper) in [
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ] {
        if empty(right, upper) {
            return (pos, yr.1);
        }
    }
    // Headroom: the data keep the lower (1 − frac) of the new range.
    let top = yr.1 + (yr.1 - yr.0) * frac / (1.0 - frac);
    (SeriesLabelPosition::UpperRight, top)
}

pub(crate) fn encode_png(buf: Vec<u8>, w: u32, h: u32) -> ScriptResult<Vec<u8>> {
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| script_err("plot: internal size error"))?;
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| script_err(format!("cannot encode PNG: {e}")))?;
    Ok(out)
}

/// A named series of (x, y) points.
pub type Series = (String, Vec<(f64, f64)>);

/// A spread around a series: (x, low, high) at each x.
pub type Band = Vec<(f64, f64, f64)>;

/// Draws line series as a PNG (800×500).
pub fn line_plot_png(
    series: &[Series],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> ScriptResult<Vec<u8>> {
    line_plot_with_bands_png(series, &[], x_label, y_label, title)
}

/// [`line_plot_png`] with a shaded band (in the line's colour) behind each series that has one
/// (`bands[i]` belongs to `series[i]`; missing or `None`: no band).
pub fn line_plot_with_bands_png(
    series: &[Series],
    bands: &[Option<Band>],
    x_label: &str,
    y_label: &str,
    title: &str,
) -> ScriptResult<Vec<u8>> {
    ensure_font();
    let (w, h) = (800u32, 500u32);
    let mut points: Vec<(f64, f64)> = series.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    for b in bands.iter().flatten() {
        points.extend(b.iter().flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in &points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let (x0, x1) = padded_range(x0, x1);
    let (y0, y1) = padded_range(y0, y1);
    let x_int = all_integral(points.iter().map(|q| q.0));
    let y_int = all_integral(points.iter().map(|q| q.1));
    let (corner, y1) = legend_place(&points, (x0, x1), (y0, y1), series.len());
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| script_err(format!("plot: {e:?}")))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT_NAME, 22))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| script_err(format!("plot: {e:?}")))?;
        let int_fmt = |v: &f64| whole_tick_label(*v);
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(x_label)
            .y_desc(y_label)
            .label_style((FONT_NAME, 14));
        if x_int {
            mesh.x_label_formatter(&int_fmt);
        }
        if y_int {
            mesh.y_label_formatter(&int_fmt);
        }
        mesh.draw()
            .map_err(|e| script_err(format!("plot: {e:?}")))?;
        for (i, band) in bands.iter().enumerate() {
            let Some(band) = band.as_ref().filter(|b| b.len() > 1) else {
                continue;
            };
            let color = COLORS[i % COLORS.len()];
            let outline: Vec<(f64, f64)> = band
                .iter()
                .map(|&(x, _, hi)| (x, hi))
                .chain(band.iter().rev().map(|&(x, lo, _)| (x, lo)))
                .collect();
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    color.mix(0.2).filled(),
                )))
                .map_err(|e| script_err(format!("plot: {e:?}")))?;
        }
        for (i, (name, p)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(p.iter().copied(), color.stroke_width(2)))
                .map_err(|e| script_err(format!("plot: {e:?}")))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .label_font((FONT_NAME, 14))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(corner)
            .draw()
            .map_err(|e| script_err(format!("plot: {e:?}")))?;
        root.present()
            .map_err(|e| script_err(format!("plot: {e:?}")))?;
    }
    encode_png(buf, w, h)
}

fn keys_of(keys: &Dynamic) -> ScriptResult<Vec<String>> {
    if let Some(s) = keys.clone().try_cast::<rhai::ImmutableString>() {
        return Ok(vec![s.to_string()]);
    }
    if let Some(a) = keys.clone().try_cast::<Array>() {
        return a
            .iter()
            .map(|k| {
                k.clone()
                    .try_cast::<rhai::ImmutableString>()
                    .map(|s| s.to_string())
                    .ok_or_else(|| script_err("plot: keys must be strings"))
            })
            .collect();
    }
    Err(script_err(
        "plot: keys must be a string or an array of strings",
    ))
}

fn plot(h: &RunHandle, name: &str, keys: &Dynamic, opts: &Map) -> ScriptResult<String> {
    let keys = keys_of(keys)?;
    if keys.is_empty() {
        return Err(script_err("plot: no keys given"));
    }
    let mut x_key = "step".to_string();
    let mut title = String::new();
    let mut log_y = false;
    for (k, v) in opts {
        match k.as_str() {
            "x" => x_key = v.to_string(),
            "title" => title = v.to_string(),
            "log_y" => {
                log_y = v
                    .as_bool()
                    .map_err(|_| script_err("plot: `log_y` must be true or false"))?
            }
            other => {
                return Err(script_err(format!(
                    "plot: unknown option `{other}`: expected x, title or log_y"
                )))
            }
        }
    }
    let series: Vec<Series> = {
        let st = h.0.borrow();
        keys.iter()
            .map(|k| {
                let mut s = st.metrics.series(&x_key, k);
                if log_y {
                    s = s
                        .into_iter()
                        .filter(|p| p.1 > 0.0)
                        .map(|(x, y)| (x, y.log10()))
                        .collect();
                }
                (k.clone(), s)
            })
            .collect()
    };
    if log_y && series.iter().all(|(_, s)| s.is_empty()) {
        let st = h.0.borrow();
        if keys
            .iter()
            .any(|k| !st.metrics.series(&x_key, k).is_empty())
        {
            return Err(script_err(format!(
                "plot: {} has no positive values to draw on a log scale (log_y: true)",
                keys.join(", ")
            )));
        }
    }
    if series.iter().all(|(_, s)| s.is_empty()) {
        let logged = h.0.borrow().metrics.keys.join(", ");
        return Err(script_err(format!(
            "plot: no logged values for {}; logged keys: {}",
            keys.join(", "),
            if logged.is_empty() {
                "none (call log(#{...}) first)".to_string()
            } else {
                logged
            }
        )));
    }
    let y_label = if log_y { "log10(value)" } else { "value" };
    // Without a title, say what is drawn (not the file's name).
    if title.is_empty() {
        title = format!("{} against {x_key}", keys.join(", "));
    }
    let bytes = line_plot_png(&series, &x_key, y_label, &title)?;
    let path = h.0.borrow_mut().path(name, "png")?;
    crate::io::atomic_write(&path, &bytes)?;
    Ok(path.display().to_string())
}

pub fn register(engine: &mut Engine, handle: &RunHandle) {
    let h = handle.clone();
    reg!(engine, "plot", "A PNG line plot of logged metric keys (a string or an array) against step; returns the path.", move |name: &str, keys: Dynamic| plot(&h, name, &keys, &Map::new()));
    let h = handle.clone();
    reg!(
        engine,
        "plot",
        "plot with options #{x: \"epoch\", title: \"..\", log_y: false}.",
        move |name: &str, keys: Dynamic, opts: Map| plot(&h, name, &keys, &opts)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_number_axes_label_only_whole_ticks() {
        assert_eq!(whole_tick_label(2000.0), "2000");
        assert_eq!(whole_tick_label(-3.0), "-3");
        assert_eq!(whole_tick_label(2.5), "");
        assert_eq!(whole_tick_label(1999.9999999999998), "2000");
        assert!(all_integral([1.0, 2.0, 30.0].into_iter()));
        assert!(!all_integral([1.0, 2.5].into_iter()));
        assert!(!all_integral(std::iter::empty()));
    }

    #[test]
    fn the_legend_goes_where_no_point_is() {
        // A rising line fills the lower left and upper right: the legend goes upper left.
        let rising: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, i as f64)).collect();
        let (pos, top) = legend_place(&rising, (0.0, 100.0), (0.0, 100.0), 1);
        assert!(matches!(pos, SeriesLabelPosition::UpperLeft));
        assert_eq!(top, 100.0);
        // A falling one: upper right is free.
        let falling: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 100.0 - i as f64)).collect();
        let (pos, _) = legend_place(&falling, (0.0, 100.0), (0.0, 100.0), 1);
        assert!(matches!(pos, SeriesLabelPosition::UpperRight));
        // Flat lines at the top and the bottom (losses): every corner is taken, so the range
        // grows and the legend's band at the top of the new range holds no point.
        let mut flat: Vec<(f64, f64)> = (0..=100).map(|i| (i as f64, 99.0)).collect();
        flat.extend((0..=100).map(|i| (i as f64, 1.0)));
        let (pos, top) = legend_place(&flat, (0.0, 100.0), (0.0, 100.0), 3);
        assert!(matches!(pos, SeriesLabelPosition::UpperRight));
        let band = (top - 0.0) * (0.06 + 0.05 * 3.0);
        assert!(
            top > 100.0 && flat.iter().all(|p| p.1 < top - band),
            "top {top}"
        );
    }
}
