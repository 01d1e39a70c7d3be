//! The fused batch norm (training mode) equals batch norm composed from candle primitives:
//! value, first-order and second-order gradients in the input, scale and shift, in f64; and in
//! f32 to f32 precision. On both kernel paths (the generic one composes it from candle's ops).

use candle_core::{DType, Device, Tensor, Var};
use ganscript::kernels::batch_norm::batch_norm_train;

mod common;
use common::{gradients_to_second_order, on_path, values, PATHS, SECOND_ORDER_NAMES};

const EPS: f64 = 1e-5;

fn rand(shape: &[usize], seed: u64, mean: f64, std: f64, dtype: DType) -> Var {
    ganscript::rng::seed(seed);
    let n = shape.iter().product();
    let t = Tensor::from_vec(
        ganscript::rng::normal_vec(n, mean, std),
        shape,
        &Device::Cpu,
    );
    Var::from_tensor(&t.unwrap().to_dtype(dtype).unwrap()).unwrap()
}

/// Batch norm from candle's own ops: the independent reference.
fn reference(x: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let dims: Vec<usize> = (0..x.rank()).filter(|&d| d != 1).collect();
    let mut shape = vec![1; x.rank()];
    shape[1] = x.dims()[1];
    let mu = x.mean_keepdim(dims.clone())?;
    let xc = x.broadcast_sub(&mu)?;
    let var = xc.sqr()?.mean_keepdim(dims)?;
    let scale = w
        .reshape(shape.clone())?
        .broadcast_div(&(var + EPS)?.sqrt()?)?;
    xc.broadcast_mul(&scale)?.broadcast_add(&b.reshape(shape)?)
}

/// A loss that is not symmetric in y (Σ y² sin y), so that no gradient vanishes by symmetry.
fn loss(y: &Tensor) -> candle_core::Result<Tensor> {
    (y.sqr()? * y.sin()?)?.sum_all()
}

fn compare(shape: &[usize], mean: f64, dtype: DType, tol: f64) {
    let c = shape[1];
    let vs = [
        rand(shape, 1, mean, 1.5, dtype),
        rand(&[c], 2, 1.0, 0.5, dtype),
        rand(&[c], 3, 0.0, 0.5, dtype),
    ];
    let vs = [&vs[0], &vs[1], &vs[2]];
    let fused = |x: &Tensor, w: &Tensor, b: &Tensor| Ok(batch_norm_train(x, w, b, EPS)?.0);
    let theirs = gradients_to_second_order(&reference, loss, vs);
    for path in PATHS {
        let ours = on_path(path, || gradients_to_second_order(&fused, loss, vs));
        let p = path.name();
        for ((a, b), name) in ours.iter().zip(&theirs).zip(SECOND_ORDER_NAMES) {
            assert_eq!(a.dims(), b.dims(), "{name}: shapes");
            let (a, b) = (values(a), values(b));
            let scale = b.iter().fold(1f64, |m, v| m.max(v.abs()));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= tol * scale,
                    "{shape:?} mean {mean} {dtype:?} ({p} path) {name}[{i}]: {x} vs {y} (scale {scale})"
                );
            }
        }
    }
}

#[test]
fn fused_batch_norm_matches_candle_to_second_order() {
    // Planes of 4×4 and 1×1, [N, C] rows, one sample, and a tensor large enough for the
    // parallel passes; one with a mean far from zero (the variance's shifted sums).
    for shape in [
        &[5, 3, 4, 4][..],
        &[4, 6, 1, 1],
        &[9, 7],
        &[1, 2, 3, 5],
        &[67, 16, 12, 12],
    ] {
        compare(shape, 0.3, DType::F64, 1e-9);
    }
    compare(&[6, 4, 3, 3], 1e3, DType::F64, 1e-7);
    compare(&[16, 8, 8, 8], 0.0, DType::F32, 2e-3);
}

#[test]
fn fused_batch_norm_returns_the_batch_statistics() {
    let x = rand(&[7, 3, 2, 5], 4, 2.0, 3.0, DType::F64);
    let w = Tensor::ones(3, DType::F64, &Device::Cpu).unwrap();
    let b = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let xs = values(x.as_tensor());
    for path in PATHS {
        let (_, mean, var) =
            on_path(path, || batch_norm_train(x.as_tensor(), &w, &b, EPS)).unwrap();
        for c in 0..3 {
            let vals: Vec<f64> = (0..7)
                .flat_map(|n| (0..10).map(move |i| (n * 3 + c) * 10 + i))
                .map(|i| xs[i])
                .collect();
            let m = vals.iter().sum::<f64>() / vals.len() as f64;
            let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
            assert!((values(&mean)[c] - m).abs() < 1e-12, "mean[{c}]");
            assert!((values(&var)[c] - v).abs() < 1e-12, "var[{c}]");
        }
    }
}

#[test]
fn third_order_gradients_through_the_fused_batch_norm_are_a_clear_error() {
    ganscript::autograd::ensure_double_backprop().unwrap();
    let _fast = ganscript::kernels::dispatch::force(PATHS[0]);
    let x = rand(&[4, 2, 3, 3], 5, 0.0, 1.0, DType::F64);
    let w = rand(&[2], 6, 1.0, 0.5, DType::F64);
    let b = rand(&[2], 7, 0.0, 0.5, DType::F64);
    let y = batch_norm_train(x.as_tensor(), w.as_tensor(), b.as_tensor(), EPS)
        .unwrap()
        .0;
    let gx = loss(&y).unwrap().backward().unwrap();
    let gx = gx.get(x.as_tensor()).unwrap();
    let p = gx.sqr().unwrap().sum_all().unwrap();
    let gxx = p.backward().unwrap();
    let gxx = gxx.get(x.as_tensor()).unwrap();
    let e = gxx
        .sqr()
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap_err();
    assert!(e.to_string().contains("third order"), "{e}");
}

#[test]
fn wrong_sizes_are_clear_errors() {
    let x = rand(&[4, 3, 2, 2], 8, 0.0, 1.0, DType::F64);
    let w = Tensor::ones(2, DType::F64, &Device::Cpu).unwrap();
    let b = Tensor::zeros(3, DType::F64, &Device::Cpu).unwrap();
    let e = batch_norm_train(x.as_tensor(), &w, &b, EPS).unwrap_err();
    assert!(
        e.to_string().contains("expected 3 per-channel values"),
        "{e}"
    );
    let scalar = Tensor::new(1.0f64, &Device::Cpu).unwrap();
    let e = batch_norm_train(&scalar, &w, &b, EPS).unwrap_err();
    assert!(
        e.to_string().contains("expected a tensor [N, C, ...]"),
        "{e}"
    );
}
