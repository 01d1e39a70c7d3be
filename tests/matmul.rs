//! The matmul custom op equals candle's matmul for every transpose combination: values, first-
//! and second-order gradients (f64), for a small product and for large ones, which are cut
//! into blocks of rows or of columns that run in parallel.

use candle_core::{DType, Device, Tensor, Var};
use ganscript::kernels::matmul::{linear, linear_leaky_relu, mm};

mod common;
use common::{gradients_to_second_order, on_path, PATHS, SECOND_ORDER_NAMES};

fn var(shape: &[usize], seed: u64) -> Var {
    ganscript::rng::seed(seed);
    let n = shape.iter().product();
    let t = Tensor::from_vec(ganscript::rng::normal_vec(n, 0.0, 1.0), shape, &Device::Cpu);
    Var::from_tensor(&t.unwrap()).unwrap()
}

fn close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let v = |t: &Tensor| -> Vec<f64> {
        let t = t.flatten_all().unwrap().to_dtype(DType::F64).unwrap();
        t.to_vec1().unwrap()
    };
    for (i, (x, y)) in v(a).iter().zip(v(b)).enumerate() {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Value, ∂L/∂a, ∂L/∂b, ∂/∂b ‖∂L/∂a‖² and ∂/∂a ‖∂L/∂b‖² of L = Σ sin(f(a, b)).
fn run(f: &dyn Fn(&Tensor, &Tensor) -> Tensor, a: &Var, b: &Var) -> Vec<Tensor> {
    let (at, bt) = (a.as_tensor(), b.as_tensor());
    let y = f(at, bt);
    let l = y.sin().unwrap().sum_all().unwrap();
    let g = l.backward().unwrap();
    let (ga, gb) = (g.get(at).unwrap().clone(), g.get(bt).unwrap().clone());
    let pa = ga.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let pb = gb.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    vec![
        y,
        ga,
        gb,
        pa.get(bt).unwrap().clone(),
        pb.get(at).unwrap().clone(),
    ]
}

#[test]
fn matmul_matches_candle_for_every_transpose() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    // Above 48·48·256 multiply-adds, with more rows than columns and the other way round, in
    // blocks that are not multiples of each other.
    let shapes = [(5, 7, 3), (301, 70, 40), (40, 70, 301)];
    for ((m, k, n), (ta, tb)) in shapes
        .into_iter()
        .flat_map(|s| [(false, false), (false, true), (true, false), (true, true)].map(|t| (s, t)))
    {
        let a = var(&if ta { [k, m] } else { [m, k] }, 1);
        let b = var(&if tb { [n, k] } else { [k, n] }, 2);
        let op = |x: &Tensor, t: bool| if t { x.t().unwrap() } else { x.clone() };
        let theirs = run(&|a, b| op(a, ta).matmul(&op(b, tb)).unwrap(), &a, &b);
        let names = [
            "value",
            "dL/da",
            "dL/db",
            "d/db |dL/da|^2",
            "d/da |dL/db|^2",
        ];
        for path in PATHS {
            let ours = on_path(path, || run(&|a, b| mm(a, ta, b, tb).unwrap(), &a, &b));
            for ((x, y), name) in ours.iter().zip(&theirs).zip(names) {
                let p = path.name();
                close(
                    x,
                    y,
                    &format!("{m}×{k}×{n} ta={ta} tb={tb} ({p} path) {name}"),
                );
            }
        }
    }
}

#[test]
fn matmul_shape_mismatch_is_a_clear_error() {
    let (a, b) = (var(&[2, 3], 1), var(&[4, 5], 2));
    let err = mm(a.as_tensor(), false, b.as_tensor(), false).unwrap_err();
    assert!(err.to_string().contains("do not chain"), "{err}");
}

#[test]
fn linear_matches_a_product_plus_a_bias() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    // A small layer, and one large enough to be cut into parallel blocks.
    for (n, i, o) in [(5, 4, 3), (300, 60, 45)] {
        let (x, w, b) = (var(&[n, i], 3), var(&[o, i], 4), var(&[o], 5));
        // L = Σ sin(x·wᵀ + b).
        let loss = |y: &Tensor| y.sin()?.sum_all();
        let theirs = gradients_to_second_order(
            &|x, w, b| x.matmul(&w.t()?)?.broadcast_add(b),
            loss,
            [&x, &w, &b],
        );
        for path in PATHS {
            let ours = on_path(path, || {
                gradients_to_second_order(&|x, w, b| linear(x, w, Some(b)), loss, [&x, &w, &b])
            });
            for ((a, c), name) in ours.iter().zip(&theirs).zip(SECOND_ORDER_NAMES) {
                close(
                    a,
                    c,
                    &format!("linear {n}×{i}→{o} ({} path) {name}", path.name()),
                );
            }
        }
    }
}

/// The linear layer fused with its leaky ReLU against candle's product, bias add and ReLU
/// (`relu(v) − slope·relu(−v)`), to second order, for ReLU and two leaky slopes.
#[test]
fn linear_with_its_leaky_relu_matches_the_composition() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    let loss = |y: &Tensor| y.sin()?.sum_all();
    for (n, i, o) in [(5, 4, 3), (300, 60, 45)] {
        let (x, w, b) = (var(&[n, i], 6), var(&[o, i], 7), var(&[o], 8));
        for slope in [0.0, 0.2, 1.0] {
            let theirs = gradients_to_second_order(
                &|x, w, b| {
                    let v = x.matmul(&w.t()?)?.broadcast_add(b)?;
                    v.relu()? - (v.neg()?.relu()? * slope)?
                },
                loss,
                [&x, &w, &b],
            );
            for path in PATHS {
                let ours = on_path(path, || {
                    gradients_to_second_order(
                        &|x, w, b| linear_leaky_relu(x, w, b, slope),
                        loss,
                        [&x, &w, &b],
                    )
                });
                for ((a, c), name) in ours.iter().zip(&theirs).zip(SECOND_ORDER_NAMES) {
                    let p = path.name();
                    close(
                        a,
                        c,
                        &format!("linear+leaky {slope} {n}×{i}→{o} ({p} path) {name}"),
                    );
                }
            }
        }
    }
    let (x, w, b) = (var(&[2, 3], 1), var(&[4, 3], 2), var(&[4], 3));
    let err = linear_leaky_relu(x.as_tensor(), w.as_tensor(), b.as_tensor(), -0.1).unwrap_err();
    assert!(err.to_string().contains("slope"), "{err}");
}

#[test]
fn linear_shape_mismatch_is_a_clear_error() {
    let (x, w, b) = (var(&[2, 3], 1), var(&[4, 3], 2), var(&[5], 3));
    let err = linear(x.as_tensor(), w.as_tensor(), Some(b.as_tensor())).unwrap_err();
    assert!(err.to_string().contains("do not fit"), "{err}");
}
