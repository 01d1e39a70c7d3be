//! Interpreter overhead: one training-like step of a 64×784 MLP written in rhai versus the same
//! candle calls written in Rust. Run with `cargo bench --bench overhead`.
//!
//! Prints the median milliseconds per step of each and the overhead in percent.

use candle_core::{DType, Device, Tensor, Var};
use ganscript::session::EngineOptions;
use ganscript::{rng, script, tensor};
use rhai::Scope;
use std::time::Instant;

const STEPS: usize = 60;
const WARMUP: usize = 5;

const SCRIPT: &str = r#"
seed(0);
let x = rand([64, 784]);
let w1 = variable(randn([784, 256], 0.0, 0.05));
let b1 = variable(zeros([256]));
let w2 = variable(randn([256, 1], 0.0, 0.05));
let b2 = variable(zeros([1]));
let lr = 0.01;
let times = [];
for i in 0..STEPS {
    let t0 = timestamp();
    let h = (x.matmul(w1) + b1).relu();
    let out = h.matmul(w2) + b2;
    let loss = softplus(-out).mean();
    let g = grads(loss, [w1, b1, w2, b2]);
    w1 = variable(w1 - lr * g[0]);
    b1 = variable(b1 - lr * g[1]);
    w2 = variable(w2 - lr * g[2]);
    b2 = variable(b2 - lr * g[3]);
    times.push(t0.elapsed * 1000.0);
}
times
"#;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn rust_steps() -> candle_core::Result<Vec<f64>> {
    rng::seed(0);
    let dev = Device::Cpu;
    let mk = |shape: &[usize], std: f64| -> candle_core::Result<Tensor> {
        let n = shape.iter().product();
        Tensor::from_vec(rng::normal_vec(n, 0.0, std), shape, &dev)?.to_dtype(DType::F32)
    };
    let x = Tensor::from_vec(rng::uniform_vec(64 * 784, 0.0, 1.0), (64, 784), &dev)?
        .to_dtype(DType::F32)?;
    let mut w1 = Var::from_tensor(&mk(&[784, 256], 0.05)?)?;
    let mut b1 = Var::from_tensor(&Tensor::zeros(256, DType::F32, &dev)?)?;
    let mut w2 = Var::from_tensor(&mk(&[256, 1], 0.05)?)?;
    let mut b2 = Var::from_tensor(&Tensor::zeros(1, DType::F32, &dev)?)?;
    let lr = 0.01;
    let mut times = Vec::new();
    for _ in 0..STEPS {
        let t0 = Instant::now();
        let h = x
            .matmul(w1.as_tensor())?
            .broadcast_add(b1.as_tensor())?
            .relu()?;
        let out = h.matmul(w2.as_tensor())?.broadcast_add(b2.as_tensor())?;
        let loss = tensor::softplus(&out.neg()?)?.mean_all()?;
        let g = loss.backward()?;
        let upd = |v: &Var| -> candle_core::Result<Var> {
            let gv = g.get(v.as_tensor()).expect("grad");
            Var::from_tensor(&(v.as_tensor() - (gv * lr)?)?)
        };
        w1 = upd(&w1)?;
        b1 = upd(&b1)?;
        w2 = upd(&w2)?;
        b2 = upd(&b2)?;
        times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    Ok(times)
}

fn script_steps() -> Vec<f64> {
    let src = SCRIPT.replace("STEPS", &STEPS.to_string());
    let s = script::compile("overhead.rhai", &src, &EngineOptions::default()).expect("compile");
    let mut scope = Scope::new();
    let v: rhai::Array = s
        .run(&mut scope)
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
        .cast();
    v.into_iter().map(|d| d.as_float().unwrap()).collect()
}

fn main() {
    ganscript::autograd::ensure_double_backprop().expect("double backprop");
    let mut rust = Vec::new();
    let mut rhai = Vec::new();
    // Alternate rounds so both see the same machine state.
    for _ in 0..3 {
        rust.extend(rust_steps().expect("rust step").into_iter().skip(WARMUP));
        rhai.extend(script_steps().into_iter().skip(WARMUP));
    }
    let (r, s) = (median(rust), median(rhai));
    println!(
        "mlp 64x784 step: rust {r:.3} ms, rhai {s:.3} ms, interpreter overhead {:+.2}%",
        (s - r) / r * 100.0
    );
}
