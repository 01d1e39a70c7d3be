//! The fused per-channel and leaky-ReLU kernels equal the same maps composed from candle
//! primitives: values, first-order and second-order gradients (f64), on both kernel paths.

use candle_core::{Device, Tensor, Var};
use ganscript::kernels::fused;

mod common;
use common::{on_path, values, PATHS};

fn rand(shape: &[usize], seed: u64) -> Var {
    ganscript::rng::seed(seed);
    let n = shape.iter().product();
    let t = Tensor::from_vec(ganscript::rng::normal_vec(n, 0.0, 1.0), shape, &Device::Cpu);
    Var::from_tensor(&t.unwrap()).unwrap()
}

/// Equal to 1e-8 relative, in f64: the fused reductions sum the up to 135k terms of a channel
/// in another order than candle does, and the second derivatives cancel (seen: 1.1e-9).
fn close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    for (i, (x, y)) in values(a).iter().zip(values(b)).enumerate() {
        assert!(
            (x - y).abs() <= 1e-8 * x.abs().max(y.abs()).max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// The ops a batch-norm layer and a conv bias use, in one scalar.
struct Ops {
    add: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    mul: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    sum: fn(&Tensor) -> candle_core::Result<Tensor>,
    dot: fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    leaky: fn(&Tensor, f64) -> candle_core::Result<Tensor>,
}

fn bshape(x: &Tensor) -> Vec<usize> {
    let mut s = vec![1; x.rank()];
    s[1] = x.dims()[1];
    s
}

fn others(x: &Tensor) -> Vec<usize> {
    (0..x.rank()).filter(|&d| d != 1).collect()
}

const COMPOSED: Ops = Ops {
    add: |x, b| x.broadcast_add(&b.reshape(bshape(x))?),
    mul: |x, s| x.broadcast_mul(&s.reshape(bshape(x))?),
    sum: |x| x.sum_keepdim(others(x))?.flatten_all(),
    dot: |x, y| (x * y)?.sum_keepdim(others(x))?.flatten_all(),
    leaky: |x, s| x.relu()? - (x.neg()?.relu()? * s)?,
};

const FUSED: Ops = Ops {
    add: fused::channel_add,
    mul: fused::channel_mul,
    sum: fused::channel_sum,
    dot: fused::channel_dot,
    leaky: fused::leaky_relu,
};

/// L(x, b, s) through every op, its gradients, and the gradients of ‖∂L/∂x‖².
fn run(ops: &Ops, x: &Var, b: &Var, s: &Var) -> Vec<Tensor> {
    let (xt, bt, st) = (x.as_tensor(), b.as_tensor(), s.as_tensor());
    let h = (ops.mul)(&(ops.add)(xt, bt).unwrap(), st).unwrap();
    let h = (ops.leaky)(&h, 0.2).unwrap();
    let stats = ((ops.sum)(&h).unwrap() * (ops.dot)(&h, xt).unwrap()).unwrap();
    let l = ((h.sqr().unwrap().sum_all().unwrap() + (stats * st).unwrap().sum_all().unwrap())
        .unwrap()
        + (ops.sum)(&h.sqr().unwrap()).unwrap().sum_all().unwrap())
    .unwrap();
    let g = l.backward().unwrap();
    let (gx, gb, gs) = (
        g.get(xt).unwrap().clone(),
        g.get(bt).unwrap().clone(),
        g.get(st).unwrap().clone(),
    );
    let p = gx.sqr().unwrap().sum_all().unwrap();
    let g2 = p.backward().unwrap();
    vec![
        h,
        l,
        gx,
        gb,
        gs,
        g2.get(xt).unwrap().clone(),
        g2.get(bt).unwrap().clone(),
        g2.get(st).unwrap().clone(),
    ]
}

#[test]
fn fused_channel_ops_and_leaky_relu_match_composed_ones() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    // [N, C, H, W] (small and above the parallel threshold) and [N, C] (linear layers).
    for shape in [
        vec![3, 4, 5, 5],
        vec![8, 16, 32, 33],
        vec![7, 6],
        vec![600, 300],
    ] {
        let c = shape[1];
        let (x, b, s) = (rand(&shape, 1), rand(&[c], 2), rand(&[c], 3));
        let names = [
            "value", "L", "dL/dx", "dL/db", "dL/ds", "d²/dx", "d²/db", "d²/ds",
        ];
        let e = run(&COMPOSED, &x, &b, &s);
        for path in PATHS {
            let a = on_path(path, || run(&FUSED, &x, &b, &s));
            for ((a, e), name) in a.iter().zip(&e).zip(names) {
                close(a, e, &format!("{shape:?} ({} path) {name}", path.name()));
            }
        }
    }
}

#[test]
fn fused_ops_reject_mismatched_shapes() {
    let x = rand(&[2, 3, 4, 4], 1);
    let v = rand(&[4], 2);
    let err = fused::channel_add(x.as_tensor(), v.as_tensor()).unwrap_err();
    assert!(
        err.to_string().contains("expected 3 per-channel values"),
        "{err}"
    );
    let err = fused::channel_sum(v.as_tensor()).unwrap_err();
    assert!(
        err.to_string().contains("expected a tensor [N, C, ...]"),
        "{err}"
    );
}

/// The tanh op: f32 values within 4e-7 (a few ulp) of the exact tanh (Eigen's approximation) over the whole
/// range, saturated tails and the identity-like region included; NaN stays NaN; f64 values,
/// first- and second-order gradients equal candle's tanh.
#[test]
fn tanh_matches_the_exact_function_and_candles_gradients() {
    use ganscript::kernels::tanh::tanh;
    let xs: Vec<f32> = (-200_000..=200_000)
        .map(|i| i as f32 * 1e-4)
        .chain([1e-6, -3e-4, 30.0, -1e4, f32::INFINITY])
        .collect();
    let t = Tensor::new(xs.as_slice(), &Device::Cpu).unwrap();
    let y: Vec<f32> = on_path(PATHS[0], || tanh(&t)).unwrap().to_vec1().unwrap();
    let worst = xs
        .iter()
        .zip(&y)
        .map(|(&x, &y)| ((x as f64).tanh() - y as f64).abs())
        .fold(0.0, f64::max);
    assert!(worst < 4e-7, "largest error {worst}");
    let nan: Vec<f32> = on_path(PATHS[0], || tanh(&Tensor::new(&[f32::NAN], &Device::Cpu)?))
        .unwrap()
        .to_vec1()
        .unwrap();
    assert!(nan[0].is_nan());

    // f64: the same values and gradients as candle's op, to second order.
    let x = rand(&[7, 33], 4);
    let w = rand(&[7, 33], 5);
    let second = |f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>| {
        let y = f(x.as_tensor()).unwrap();
        let g = ganscript::autograd::grad(
            &(&y * w.as_tensor()).unwrap().sum_all().unwrap(),
            x.as_tensor(),
        )
        .unwrap();
        let gg =
            ganscript::autograd::grad(&g.sqr().unwrap().sum_all().unwrap(), x.as_tensor()).unwrap();
        (y, g, gg)
    };
    let b = second(&|x| x.tanh());
    for path in PATHS {
        let a = on_path(path, || second(&|x| tanh(x)));
        let p = path.name();
        close(&a.0, &b.0, &format!("tanh ({p} path)"));
        close(&a.1, &b.1, &format!("tanh gradient ({p} path)"));
        close(
            &a.2,
            &b.2,
            &format!("tanh second-order gradient ({p} path)"),
        );
    }
}

/// At exactly 0 the leaky ReLU's derivative is its slope (PyTorch's; 0 for the ReLU) on both
/// paths: candle's own relu has the derivative 1 there, so relu(x) − s·relu(−x) would give
/// 1 + s. Zeros are common (a ReLU's output, zero padding). Second order: the derivative is
/// piecewise constant, so d/dx of ‖∂L/∂x‖² is 0 and the weight of the output gets its share.
#[test]
fn leaky_relu_derivative_at_zero_is_the_slope_on_both_paths() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    for path in PATHS {
        for slope in [0.0, 0.2] {
            let x = Var::new(&[0.0f64, -2.0, 3.0, 0.0], &Device::Cpu).unwrap();
            let w = Var::new(&[1.0f64, 2.0, 3.0, 4.0], &Device::Cpu).unwrap();
            let (gx, gw) = on_path(path, || {
                let y = fused::leaky_relu(x.as_tensor(), slope)?;
                let l = (y * w.as_tensor())?.sum_all()?;
                let gx = ganscript::autograd::grad(&l, x.as_tensor()).unwrap();
                let gw = ganscript::autograd::grad(&gx.sqr()?.sum_all()?, w.as_tensor()).unwrap();
                candle_core::Result::Ok((gx, gw))
            })
            .unwrap();
            let what = format!("{} path, slope {slope}", path.name());
            assert_eq!(
                values(&gx),
                [slope, 2.0 * slope, 3.0, 4.0 * slope],
                "{what}: dL/dx"
            );
            // ‖∂L/∂x‖² = Σ w²·m², so ∂/∂w = 2·w·m².
            let m2 = slope * slope;
            assert_eq!(
                values(&gw),
                [2.0 * m2, 4.0 * m2, 6.0, 8.0 * m2],
                "{what}: second order"
            );
        }
    }
}
