//! How tensors print: shape, dtype and device, then the values when there are few of them,
//! or summary statistics (min, max, mean, std) when there are many.

use crate::device::device_name;
use candle_core::{DType, Tensor};

/// Tensors with at most this many elements print their values.
const MAX_PRINTED: usize = 64;

/// `Tensor[64, 784] f32 cpu` — the header line.
pub fn summary_line(t: &Tensor) -> String {
    let var = if t.is_variable() { " variable" } else { "" };
    format!(
        "Tensor{:?} {} {}{var}",
        t.dims(),
        t.dtype().as_str(),
        device_name(t.device())
    )
}

fn values(t: &Tensor) -> Option<Vec<f64>> {
    t.flatten_all()
        .ok()?
        .to_dtype(DType::F64)
        .ok()?
        .to_vec1::<f64>()
        .ok()
}

fn fmt_num(v: f64, is_int: bool) -> String {
    if is_int {
        format!("{}", v as i64)
    } else if v == 0.0 || (v.abs() >= 1e-3 && v.abs() < 1e5) {
        let s = format!("{v:.4}");
        let s = s.trim_end_matches('0');
        let s = s
            .strip_suffix('.')
            .map(|p| format!("{p}."))
            .unwrap_or(s.to_string());
        s
    } else {
        format!("{v:.4e}")
    }
}

fn nested(vals: &[f64], dims: &[usize], is_int: bool) -> String {
    if dims.is_empty() {
        return fmt_num(vals[0], is_int);
    }
    let stride: usize = dims[1..].iter().product();
    let parts: Vec<String> = (0..dims[0])
        .map(|i| nested(&vals[i * stride..(i + 1) * stride], &dims[1..], is_int))
        .collect();
    let sep = if dims.len() > 1 { ",\n " } else { ", " };
    format!("[{}]", parts.join(sep))
}

/// The full description: header plus values or statistics.
pub fn describe(t: &Tensor) -> String {
    let head = summary_line(t);
    let Some(vals) = values(t) else {
        return head;
    };
    if vals.is_empty() {
        return format!("{head}\n[]");
    }
    let is_int = t.dtype().is_int();
    if vals.len() <= MAX_PRINTED {
        return format!("{head}\n{}", nested(&vals, t.dims(), is_int));
    }
    let n = vals.len() as f64;
    let mean = vals.iter().sum::<f64>() / n;
    let var = vals.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let min = vals.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = vals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let nans = vals.iter().filter(|v| v.is_nan()).count();
    let nan_note = if nans > 0 {
        format!(" nan={nans}")
    } else {
        String::new()
    };
    format!(
        "{head}\nmin={} max={} mean={} std={}{nan_note}",
        fmt_num(min, false),
        fmt_num(max, false),
        fmt_num(mean, false),
        fmt_num(var.sqrt(), false)
    )
}
