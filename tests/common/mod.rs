//! Helpers shared by the tests: running the binary, loading the oracle files, running scripts,
//! building the oracle's discriminators from tensor primitives in rhai, comparing numbers.
#![allow(dead_code)]

use ganscript::{script, EngineOptions};
use rhai::{Dynamic, Scope};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The ganscript binary with progress output off.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ganscript"));
    c.env("GANSCRIPT_PROGRESS", "off");
    c
}

/// Runs the ganscript binary with `args` and returns what it printed.
pub fn ganscript(args: &[&str]) -> Output {
    command().args(args).output().unwrap()
}

/// [`ganscript`] in the working directory `dir`.
pub fn ganscript_in(dir: &Path, args: &[&str]) -> Output {
    command().args(args).current_dir(dir).output().unwrap()
}

/// Every `*.json` in `$GANSCRIPT_ORACLE_DIR` (default `<crate>/../shared/oracle`), parsed.
pub fn oracle_files() -> Vec<(String, Value)> {
    let dir = std::env::var("GANSCRIPT_ORACLE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/oracle"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the oracle directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no *.json oracle file in {}",
        dir.display()
    );
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", p.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{} is not valid JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().to_string(), v)
        })
        .collect()
}

/// Rhai functions building tensors and networks from the oracle's JSON (as rhai maps).
pub const PRELUDE: &str = r#"
default_dtype("f64");

// A tensor from {shape, data}.
fn T(j) {
    if j.shape.len() == 0 { tensor(j.data) } else { tensor(j.data).reshape(j.shape) }
}

// Every parameter as a leaf, by name.
fn params_of(c) {
    let P = #{};
    for k in c.params.keys() { P[k] = variable(T(c.params[k])); }
    P
}

fn plist(P) {
    let out = [];
    for k in P.keys() { out.push(P[k]); }
    out
}

// d loss / d parameter, flattened, by parameter name.
fn grads_map(l, P) {
    let ks = P.keys();
    let gs = grads(l, plist(P));
    let m = #{};
    for i in 0..ks.len() { m[ks[i]] = gs[i].flatten().to_array(); }
    m
}

fn act(h, a) {
    if a.leaky_relu != () { h.leaky_relu(a.leaky_relu) }
    else if a.relu != () { h.relu() }
    else { throw `unsupported activation ${a}`; }
}

// The network of an oracle case, as a closure over its parameters, from tensor primitives.
fn make_net(net, P) {
    if net.kind == "mlp" {
        let n = net.dims.len() - 1;
        let a = net.activation;
        let out_act = net.output;
        return |x| {
            let h = x.flatten(1);
            for i in 0..n {
                h = h.matmul(P[`l${i}.weight`].t()) + P[`l${i}.bias`];
                if i < n - 1 { h = act(h, a); }
            }
            if out_act == "sigmoid" { h = h.sigmoid(); }
            else if out_act != () { throw `unsupported output ${out_act}`; }
            h
        };
    }
    if net.kind == "conv" {
        let a = net.activation;
        let stride = net.stride;
        let padding = net.padding;
        return |x| {
            let h = conv2d(x, P["conv.weight"], P["conv.bias"], stride, padding);
            act(h, a).flatten(1).matmul(P["linear.weight"].t()) + P["linear.bias"]
        };
    }
    throw `unsupported net kind ${net.kind}`;
}
"#;

/// Runs `PRELUDE + body` with the given variables; returns the script's value as JSON.
pub fn run_json(body: &str, vars: &[(&str, Value)]) -> Value {
    let v = run(body, vars);
    rhai::serde::from_dynamic::<Value>(&v)
        .unwrap_or_else(|e| panic!("the script's result is not plain data: {e}"))
}

/// The options test scripts run with: `import "penalties"` (and `schedules`, `margin`) finds the
/// script twins of the native code in tests/reference/, which exist only to be compared with it
/// and with the oracle; the shipped stdlib modules resolve as in a run.
pub fn options() -> EngineOptions {
    EngineOptions {
        script_dir: Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference")),
        ..EngineOptions::default()
    }
}

pub fn run(body: &str, vars: &[(&str, Value)]) -> Dynamic {
    use_test_device();
    let text = format!("{PRELUDE}\n{body}");
    let s = script::compile("test.rhai", &text, &options())
        .unwrap_or_else(|d| panic!("compile error: {d}\n{d:?}"));
    let mut scope = Scope::new();
    for (k, v) in vars {
        let d = rhai::serde::to_dynamic(v).expect("JSON to rhai");
        scope.push_dynamic(k.to_string(), d);
    }
    s.run(&mut scope)
        .unwrap_or_else(|d| panic!("script error: {d}\n{d:?}"))
}

/// Runs a script expecting an error; returns its message.
pub fn run_err(body: &str) -> String {
    let text = format!("{PRELUDE}\n{body}");
    let s = script::compile("test.rhai", &text, &options())
        .unwrap_or_else(|d| panic!("compile error: {d}"));
    match s.run(&mut Scope::new()) {
        Ok(v) => panic!("expected an error, the script returned {v:?}"),
        Err(d) => format!("{d} {d:?}"),
    }
}

pub fn f(v: &Value) -> f64 {
    v.as_f64()
        .unwrap_or_else(|| panic!("expected a number, got {v}"))
}

pub fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Object(o) if o.contains_key("data") => flat(&o["data"]),
        other => vec![f(other)],
    }
}

/// Collects mismatches (`|got - want| <= abs + rel·|want|`) with their names.
pub struct Checker {
    pub rel: f64,
    pub abs: f64,
    pub errors: Vec<String>,
    pub checked: usize,
}

impl Checker {
    pub fn new(rel: f64, abs: f64) -> Self {
        Checker {
            rel,
            abs,
            errors: vec![],
            checked: 0,
        }
    }
    pub fn num(&mut self, what: &str, got: f64, want: f64) {
        self.checked += 1;
        let tol = self.abs + self.rel * want.abs();
        if got.is_nan() || want.is_nan() || (got - want).abs() > tol {
            self.errors
                .push(format!("{what}: got {got:.17e}, want {want:.17e}"));
        }
    }
    pub fn vec(&mut self, what: &str, got: &[f64], want: &[f64]) {
        if got.len() != want.len() {
            self.errors.push(format!(
                "{what}: got {} values, want {}",
                got.len(),
                want.len()
            ));
            return;
        }
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            self.num(&format!("{what}[{i}]"), *g, *w);
        }
    }
    /// `got`: {value, grads: {name: [..]}}; `want`: {value, grads: {name: {shape, data}}}.
    pub fn value_and_grads(&mut self, what: &str, got: &Value, want: &Value) {
        self.num(
            &format!("{what}.value"),
            f(&got["value"]),
            f(&want["value"]),
        );
        let want_g = want["grads"].as_object().expect("grads map");
        let got_g = got["grads"].as_object().expect("grads map");
        assert!(!want_g.is_empty(), "{what}: no gradients in the oracle");
        for (name, wg) in want_g {
            match got_g.get(name) {
                Some(gg) => self.vec(&format!("{what}.grads[{name}]"), &flat(gg), &flat(wg)),
                None => self.errors.push(format!("{what}: no gradient for {name}")),
            }
        }
    }
    pub fn finish(self, what: &str) {
        assert!(self.checked > 0, "{what}: nothing was checked");
        assert!(
            self.errors.is_empty(),
            "{what}: {} mismatches (of {} values):\n{}",
            self.errors.len(),
            self.checked,
            self.errors.join("\n")
        );
    }
}

/// Runs a script and returns its value, panicking with the rendered diagnostic on error.
pub fn eval(src: &str) -> Dynamic {
    try_eval(src).unwrap_or_else(|e| panic!("script failed:\n{e}"))
}

/// Runs a script; an error comes back as the plain rendered diagnostic.
pub fn try_eval(src: &str) -> Result<Dynamic, String> {
    let s = script::compile("test.rhai", src, &options()).map_err(|d| d.render_plain())?;
    let mut scope = Scope::new();
    s.run(&mut scope).map_err(|d| d.render_plain())
}

pub fn eval_f64(src: &str) -> f64 {
    let v = eval(src);
    v.as_float()
        .unwrap_or_else(|_| panic!("expected a float, got {}", v.type_name()))
}

/// A (nested) array of floats flattened.
pub fn eval_vec(src: &str) -> Vec<f64> {
    fn flat(v: &Dynamic, out: &mut Vec<f64>) {
        if let Some(a) = v.clone().try_cast::<rhai::Array>() {
            for x in a.iter() {
                flat(x, out);
            }
        } else if let Ok(f) = v.as_float() {
            out.push(f);
        } else if let Ok(i) = v.as_int() {
            out.push(i as f64);
        } else {
            panic!("not a number: {}", v.type_name());
        }
    }
    let mut out = Vec::new();
    flat(&eval(src), &mut out);
    out
}

pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "length differs: {a:?} vs {b:?}");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs()).max(1.0);
        assert!(
            (x - y).abs() <= tol * scale,
            "element {i}: {x} vs {y} (tol {tol})\n{a:?}\n{b:?}"
        );
    }
}

/// The elements of a tensor of any shape and float dtype, in f64.
pub fn values(t: &candle_core::Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(candle_core::DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// What [`gradients_to_second_order`] returns, in order, for variables (x, w, b).
pub const SECOND_ORDER_NAMES: [&str; 7] = [
    "value", "dL/dx", "dL/dw", "dL/db", "dP/dx", "dP/dw", "dP/db",
];

/// For three variables: the value `y = f(x₁, x₂, x₃)`, the gradients of `L = loss(y)` in each,
/// and the gradients in each of `P = Σᵢ ‖∂L/∂xᵢ‖²` (second order), in that order.
pub fn gradients_to_second_order(
    f: &dyn Fn(
        &candle_core::Tensor,
        &candle_core::Tensor,
        &candle_core::Tensor,
    ) -> candle_core::Result<candle_core::Tensor>,
    loss: fn(&candle_core::Tensor) -> candle_core::Result<candle_core::Tensor>,
    vs: [&candle_core::Var; 3],
) -> Vec<candle_core::Tensor> {
    ganscript::autograd::ensure_double_backprop().unwrap();
    let ts = vs.map(|v| v.as_tensor());
    let y = f(ts[0], ts[1], ts[2]).unwrap();
    let g = loss(&y).unwrap().backward().unwrap();
    let gs: Vec<_> = ts.iter().map(|t| g.get(t).unwrap().clone()).collect();
    let p = gs
        .iter()
        .map(|g| g.sqr().unwrap().sum_all().unwrap())
        .reduce(|a, b| (a + b).unwrap())
        .unwrap();
    let pg = p.backward().unwrap();
    let mut out = vec![y];
    out.extend(gs);
    out.extend(ts.iter().map(|t| pg.get(t).unwrap().clone()));
    out
}

/// Both kernel paths (see `ganscript::kernels::dispatch`): tests of an op run it on each, forced
/// on the test's thread, and compare each with an independent reference.
pub const PATHS: [ganscript::kernels::dispatch::Kernels; 2] = [
    ganscript::kernels::dispatch::Kernels::Fast,
    ganscript::kernels::dispatch::Kernels::Generic,
];

/// `f()` with the kernel path `k` forced on this thread.
pub fn on_path<R>(k: ganscript::kernels::dispatch::Kernels, f: impl FnOnce() -> R) -> R {
    let _forced = ganscript::kernels::dispatch::force(k);
    f()
}

/// The device the in-process numeric tests run on, from `GANSCRIPT_TEST_DEVICE` (`cpu`,
/// `cuda`, `cuda:N`; default `cpu`), made this thread's current device. `scripts/gpu-check.sh`
/// sets it on a GPU machine.
pub fn use_test_device() {
    let spec = std::env::var("GANSCRIPT_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    let device = ganscript::device::parse_device(&spec)
        .unwrap_or_else(|e| panic!("GANSCRIPT_TEST_DEVICE: {e}"));
    ganscript::device::set_current_device(device);
}

/// The dtype the oracle tests compute in, from `GANSCRIPT_TEST_DTYPE` (`f64`, the default, or
/// `f32`), with the tolerances (relative, absolute) stated for it: the oracle's suggested
/// relative 1e-6 in f64; in f32, relative 1e-3 and absolute 1e-4 (the values are of order 1;
/// second-order gradients lose a few more digits than the values).
pub fn test_dtype() -> (&'static str, f64, f64) {
    match std::env::var("GANSCRIPT_TEST_DTYPE").as_deref() {
        Err(_) | Ok("") | Ok("f64") => ("f64", 1e-6, 1e-9),
        Ok("f32") => ("f32", 1e-3, 1e-4),
        Ok(other) => panic!("GANSCRIPT_TEST_DTYPE={other}: expected f64 or f32"),
    }
}

/// An NPY (version 1.0) file: the header dict with `descr` and the shape as written
/// (`"(2, 3)"`, `"(4,)"`), padded to 64 bytes, then `body`.
pub fn npy_file(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend_from_slice(&(header.len() as u16).to_le_bytes());
    b.extend_from_slice(header.as_bytes());
    b.extend_from_slice(body);
    b
}
