//! Helpers shared by the integration tests: evaluate rhai snippets with a full ganscript engine.
#![allow(dead_code)]

use ganscript::engine::EngineOptions;
use ganscript::script;
use rhai::{Dynamic, Scope};

/// Runs a script and returns its value, panicking with the rendered diagnostic on error.
pub fn eval(src: &str) -> Dynamic {
    try_eval(src).unwrap_or_else(|e| panic!("script failed:\n{e}"))
}

/// Runs a script; an error comes back as the plain rendered diagnostic.
pub fn try_eval(src: &str) -> Result<Dynamic, String> {
    let s = script::compile("test.rhai", src, &EngineOptions::default())
        .map_err(|d| d.render_plain())?;
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
