//! `log(#{step: t, loss_d: .., ...})`: one JSON object per call appended to `metrics.jsonl`
//! (flushed whole lines), and one row to `metrics.csv`, whose header is the union of the keys
//! seen so far (`step` first): when a new key appears the CSV is rewritten, atomically, with the
//! new header. The rows are also kept in memory for `plot`.

use super::RunHandle;
use crate::errors::{script_err, ScriptResult};
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine, Map};
use serde_json::Value;
use std::io::Write;

/// One logged value.
#[derive(Clone, Debug, PartialEq)]
pub enum MetricValue {
    Int(i64),
    Num(f64),
    Bool(bool),
    Str(String),
    Null,
}

impl MetricValue {
    pub fn from_dynamic(key: &str, v: &Dynamic) -> ScriptResult<MetricValue> {
        if v.is_unit() {
            return Ok(MetricValue::Null);
        }
        if let Ok(i) = v.as_int() {
            return Ok(MetricValue::Int(i));
        }
        if let Ok(f) = v.as_float() {
            return Ok(MetricValue::Num(f));
        }
        if let Ok(b) = v.as_bool() {
            return Ok(MetricValue::Bool(b));
        }
        if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
            return Ok(MetricValue::Str(s.to_string()));
        }
        if let Some(t) = v.clone().try_cast::<Tensor>() {
            if t.0.elem_count() != 1 {
                return Err(script_err(format!(
                    "log: `{key}` is a tensor of shape {:?}; log one number (e.g. `{key}.mean()`)",
                    t.0.dims()
                )));
            }
            return crate::tensor::item(&t.0).map(MetricValue::Num);
        }
        Err(script_err(format!(
            "log: `{key}` is a {}; log numbers, strings, booleans or one-element tensors",
            v.type_name()
        )))
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            MetricValue::Int(i) => Some(*i as f64),
            MetricValue::Num(x) => Some(*x),
            MetricValue::Bool(b) => Some(*b as u8 as f64),
            _ => None,
        }
    }

    fn json(&self) -> Value {
        match self {
            MetricValue::Int(i) => Value::from(*i),
            MetricValue::Num(x) => super::float_json(*x),
            MetricValue::Bool(b) => Value::Bool(*b),
            MetricValue::Str(s) => Value::String(s.clone()),
            MetricValue::Null => Value::Null,
        }
    }

    /// The CSV field (unquoted: the csv writer quotes what needs it).
    fn csv(&self) -> String {
        match self {
            MetricValue::Int(i) => format!("{i}"),
            MetricValue::Num(x) => format!("{x}"),
            MetricValue::Bool(b) => format!("{b}"),
            MetricValue::Str(s) => s.clone(),
            MetricValue::Null => String::new(),
        }
    }
}

/// The metrics logged so far in a run.
#[derive(Default)]
pub struct Metrics {
    /// Every key seen, in order of first appearance (`step` first when present).
    pub keys: Vec<String>,
    /// The rows, each as (key, value) pairs.
    pub rows: Vec<Vec<(String, MetricValue)>>,
}

impl Metrics {
    /// Adds the keys of `row` not seen before (`step` first, the others in order of first
    /// appearance); true if there was one.
    fn add_keys(&mut self, row: &[(String, MetricValue)]) -> bool {
        let mut new_key = false;
        for (k, _) in row {
            if !self.keys.contains(k) {
                if k == "step" {
                    self.keys.insert(0, k.clone());
                } else {
                    self.keys.push(k.clone());
                }
                new_key = true;
            }
        }
        new_key
    }

    /// The `(x, y)` points of `key` against `x_key` (the row index when a row lacks `x_key`),
    /// finite values only.
    pub fn series(&self, x_key: &str, key: &str) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let get = |k: &str| {
                    row.iter()
                        .find(|(n, _)| n == k)
                        .and_then(|(_, v)| v.as_f64())
                };
                let y = get(key)?;
                let x = get(x_key).unwrap_or(i as f64);
                (x.is_finite() && y.is_finite()).then_some((x, y))
            })
            .collect()
    }

    fn csv_fields(&self, row: &[(String, MetricValue)]) -> Vec<String> {
        self.keys
            .iter()
            .map(|k| {
                row.iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.csv())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// CSV records (quoted as RFC 4180 asks: a key or string holding a comma, a quote or a line
    /// break stays one field).
    fn csv_records(records: impl IntoIterator<Item = Vec<String>>) -> ScriptResult<String> {
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .from_writer(Vec::new());
        for r in records {
            w.write_record(&r)
                .map_err(|e| script_err(format!("metrics.csv: {e}")))?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| script_err(format!("metrics.csv: {e}")))?;
        String::from_utf8(bytes).map_err(|e| script_err(format!("metrics.csv: {e}")))
    }

    fn csv_row(&self, row: &[(String, MetricValue)]) -> ScriptResult<String> {
        let mut line = Self::csv_records([self.csv_fields(row)])?;
        line.pop(); // the terminator: append_line adds it
        Ok(line)
    }

    fn csv_all(&self) -> ScriptResult<String> {
        let records =
            std::iter::once(self.keys.clone()).chain(self.rows.iter().map(|r| self.csv_fields(r)));
        Self::csv_records(records)
    }
}

fn append_line(path: &std::path::Path, line: &str) -> ScriptResult<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| script_err(format!("cannot open {}: {e}", path.display())))?;
    // One write call per whole line, then flush: a killed run leaves complete lines.
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| f.flush())
        .map_err(|e| script_err(format!("cannot append to {}: {e}", path.display())))
}

/// Logs one row of metrics.
pub fn log(handle: &RunHandle, values: &Map) -> ScriptResult<()> {
    let mut row: Vec<(String, MetricValue)> = Vec::with_capacity(values.len());
    if let Some(step) = values.get("step") {
        row.push(("step".to_string(), MetricValue::from_dynamic("step", step)?));
    }
    for (k, v) in values {
        if k.as_str() != "step" {
            row.push((k.to_string(), MetricValue::from_dynamic(k, v)?));
        }
    }
    let dir = handle.dir()?;
    handle.commit()?;
    let mut st = handle.0.borrow_mut();
    let json: serde_json::Map<String, Value> =
        row.iter().map(|(k, v)| (k.clone(), v.json())).collect();
    append_line(&dir.join("metrics.jsonl"), &Value::Object(json).to_string())?;
    // TensorBoard: the row's numbers at its step (else its epoch, else its row number).
    let number = |k: &str| {
        row.iter()
            .find(|(n, _)| n == k)
            .and_then(|(_, v)| v.as_f64())
    };
    let (x_key, x) = match (number("step"), number("epoch")) {
        (Some(s), _) => ("step", Some(s)),
        (None, Some(e)) => ("epoch", Some(e)),
        (None, None) => ("", None),
    };
    let step = x
        .map(|s| s.round() as i64)
        .unwrap_or(st.metrics.rows.len() as i64);
    st.last_step = Some(step);
    if let Some(events) = st.events()? {
        let scalars: Vec<(String, f64)> = row
            .iter()
            .filter(|(k, _)| k != x_key)
            .filter_map(|(k, v)| v.as_f64().map(|x| (k.clone(), x)))
            .collect();
        events.scalars(step, &scalars)?;
    }
    let m = &mut st.metrics;
    let new_key = m.add_keys(&row);
    let csv = dir.join("metrics.csv");
    if new_key || !csv.exists() {
        m.rows.push(row);
        crate::io::atomic_write(&csv, m.csv_all()?.as_bytes())
    } else {
        let line = m.csv_row(&row)?;
        m.rows.push(row);
        append_line(&csv, &line)
    }
}

pub fn register(engine: &mut Engine, handle: &RunHandle) {
    let h = handle.clone();
    reg!(engine, "log", "Logs metrics #{step: t, loss_d: .., ...} (numbers, strings, one-element tensors) to metrics.jsonl and metrics.csv in the run directory.", move |values: Map| log(&h, &values));
    let h = handle.clone();
    reg!(engine, "logged", "The logged values of a metric key as an array (in logging order; () where a row lacks it).", move |key: &str| {
        let st = h.0.borrow();
        st.metrics
            .rows
            .iter()
            .map(|row| match row.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
                Some(MetricValue::Int(i)) => Dynamic::from_int(*i),
                Some(MetricValue::Num(x)) => Dynamic::from_float(*x),
                Some(MetricValue::Bool(b)) => Dynamic::from_bool(*b),
                Some(MetricValue::Str(s)) => Dynamic::from(s.clone()),
                _ => Dynamic::UNIT,
            })
            .collect::<rhai::Array>()
    });
}

/// Number of metric rows logged so far in this run (recorded in checkpoints).
pub fn row_count(handle: &RunHandle) -> usize {
    handle.0.borrow().metrics.rows.len()
}

impl MetricValue {
    fn from_json(v: &Value) -> MetricValue {
        match v {
            Value::Bool(b) => MetricValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => MetricValue::Int(i),
                None => MetricValue::Num(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => MetricValue::Str(s.clone()),
            _ => MetricValue::Null,
        }
    }
}

/// Resuming a run: keeps the first `rows` rows of the run's `metrics.jsonl` (those logged when
/// the checkpoint was written), drops any later ones, and rebuilds `metrics.csv` from them.
pub fn restore(handle: &RunHandle, rows: usize) -> ScriptResult<()> {
    let dir = handle.dir()?;
    let jsonl = dir.join("metrics.jsonl");
    let text = match std::fs::read_to_string(&jsonl) {
        Ok(t) => t,
        Err(_) if rows == 0 => String::new(),
        Err(e) => {
            return Err(script_err(format!(
                "cannot resume: {}: {e}",
                jsonl.display()
            )))
        }
    };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() < rows {
        return Err(script_err(format!(
            "cannot resume: {} has {} rows but the checkpoint was written after {rows}",
            jsonl.display(),
            lines.len()
        )));
    }
    // Everything is read and checked before anything is written: a resume that fails here
    // leaves the run's files as they were.
    let mut m = Metrics::default();
    for (i, line) in lines[..rows].iter().enumerate() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| script_err(format!("{} line {}: {e}", jsonl.display(), i + 1)))?;
        let obj = v.as_object().ok_or_else(|| {
            script_err(format!("{} line {}: not an object", jsonl.display(), i + 1))
        })?;
        let row: Vec<(String, MetricValue)> = obj
            .iter()
            .map(|(k, v)| (k.clone(), MetricValue::from_json(v)))
            .collect();
        m.add_keys(&row);
        m.rows.push(row);
    }
    let csv = m.csv_all()?;
    let mut kept = lines[..rows].join("\n");
    if !kept.is_empty() {
        kept.push('\n');
    }
    handle.commit()?;
    handle.0.borrow_mut().metrics = m;
    if rows == 0 {
        // As before the first `log`: no metrics files.
        for p in [jsonl, dir.join("metrics.csv")] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(script_err(format!("cannot remove {}: {e}", p.display())))
                }
                _ => {}
            }
        }
        return Ok(());
    }
    crate::io::atomic_write(&jsonl, kept.as_bytes())?;
    crate::io::atomic_write(&dir.join("metrics.csv"), csv.as_bytes())
}
