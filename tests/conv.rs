//! The fast convolutions equal candle's own (values, first- and second-order gradients), and so
//! do the generic path's compositions of them with a bias, an activation and a residual input.

use candle_core::{DType, Device, Tensor, Var};
use ganscript::kernels::conv;

mod common;
use common::{gradients_to_second_order, on_path, PATHS, SECOND_ORDER_NAMES};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    ganscript::rng::seed(seed);
    let n = shape.iter().product();
    Tensor::from_vec(ganscript::rng::normal_vec(n, 0.0, 1.0), shape, &Device::Cpu).unwrap()
}

fn close(a: &Tensor, b: &Tensor, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    let a: Vec<f64> = a
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    let b: Vec<f64> = b
        .flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (i, (x, y)) in a.iter().zip(&b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

/// Value, dL/dx, dL/dw and the second-order d/dw ‖dL/dx‖² and d/dx ‖dL/dw‖² of L = Σ f(x, w)²
/// for both versions.
fn compare(
    x_shape: &[usize],
    w_shape: &[usize],
    fast: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    native: impl Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
    what: &str,
) {
    ganscript::autograd::ensure_double_backprop().unwrap();
    let x = Var::from_tensor(&rand(x_shape, 1)).unwrap();
    let w = Var::from_tensor(&rand(w_shape, 2)).unwrap();
    let mut results = Vec::new();
    let on_fast = |x: &Tensor, w: &Tensor| on_path(PATHS[0], || fast(x, w));
    let on_generic = |x: &Tensor, w: &Tensor| on_path(PATHS[1], || fast(x, w));
    for f in [
        &on_fast as &dyn Fn(&Tensor, &Tensor) -> candle_core::Result<Tensor>,
        &on_generic,
        &native,
    ] {
        let y = f(x.as_tensor(), w.as_tensor()).unwrap();
        let l = y.sqr().unwrap().sum_all().unwrap();
        let g = l.backward().unwrap();
        let gx = g.get(x.as_tensor()).unwrap().clone();
        let gw = g.get(w.as_tensor()).unwrap().clone();
        let pen = gx.sqr().unwrap().sum_all().unwrap();
        let gw2 = pen.backward().unwrap().get(w.as_tensor()).unwrap().clone();
        let pen_w = gw.sqr().unwrap().sum_all().unwrap();
        let gx2 = pen_w
            .backward()
            .unwrap()
            .get(x.as_tensor())
            .unwrap()
            .clone();
        results.push((y, gx, gw, gw2, gx2));
    }
    let b = &results[2];
    for (a, path) in results.iter().zip(PATHS) {
        let what = format!("{what} ({} path)", path.name());
        close(&a.0, &b.0, &format!("{what} value"));
        close(&a.1, &b.1, &format!("{what} dL/dx"));
        close(&a.2, &b.2, &format!("{what} dL/dw"));
        close(&a.3, &b.3, &format!("{what} second order d/dw ‖dL/dx‖²"));
        close(&a.4, &b.4, &format!("{what} second order d/dx ‖dL/dw‖²"));
    }
}

/// Batch sizes: one sample; a few; more samples than one chunk holds, in several chunks per
/// thread with a remainder (the small images here put many samples in a chunk).
const BATCHES: [usize; 3] = [1, 3, 67];

#[test]
fn conv2d_matches_candle() {
    for &(c, h, o, k, s, p) in &[
        (1, 6, 2, 3, 2, 1),
        (3, 8, 4, 4, 2, 1),
        // stride 2 whose windows leave the last row and column out, and a wide padding
        (2, 8, 3, 3, 2, 0),
        (3, 7, 2, 4, 2, 2),
        (2, 7, 3, 3, 1, 1),
        // stride 1, as wide as the image ("same"): the columns are shifted planes
        (3, 6, 4, 5, 1, 2),
        (2, 4, 3, 1, 1, 0),
        (2, 5, 2, 4, 1, 0),
        (3, 4, 5, 4, 1, 0),
        // 64 channels and more: the columns are gathered channels-last
        (64, 5, 3, 3, 2, 1),
        (70, 4, 2, 4, 1, 0),
    ] {
        for n in BATCHES {
            compare(
                &[n, c, h, h],
                &[o, c, k, k],
                |x, w| conv::conv2d(x, w, s, p),
                |x, w| x.conv2d(w, p, s, 1, 1),
                &format!("conv2d n{n} c{c} h{h} o{o} k{k} s{s} p{p}"),
            );
        }
    }
}

#[test]
fn conv_transpose2d_matches_candle() {
    for &(c, h, o, k, s, p, op) in &[
        (3, 1, 4, 7, 1, 0, 0),
        (4, 7, 2, 4, 2, 1, 0),
        (2, 4, 3, 4, 2, 1, 0),
        (2, 3, 2, 3, 2, 1, 1),
        (2, 5, 3, 3, 1, 1, 0),
        // 64 output channels and more (the image side of the adjoint): channels-last columns;
        // the stride-1 "same" case runs as a channels-last convolution of its 64-channel input
        (2, 3, 64, 4, 2, 1, 0),
        (3, 1, 64, 4, 1, 0, 0),
        (2, 3, 66, 3, 2, 1, 1),
        (64, 5, 2, 3, 1, 1, 0),
    ] {
        for n in BATCHES {
            compare(
                &[n, c, h, h],
                &[c, o, k, k],
                |x, w| conv::conv_transpose2d(x, w, s, p, op),
                |x, w| x.conv_transpose2d(w, p, op, s, 1),
                &format!("conv_transpose2d n{n} c{c} h{h} o{o} k{k} s{s} p{p} op{op}"),
            );
        }
    }
}

/// [`gradients_to_second_order`] of L = Σ f(x, w, b)² for a convolution with its bias as one
/// op and for candle's convolution plus a broadcast bias, compared.
fn compare_biased(
    shapes: [&[usize]; 3],
    fast: impl Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>,
    native: impl Fn(&Tensor, &Tensor, &Tensor) -> candle_core::Result<Tensor>,
    what: &str,
) {
    let vs: Vec<Var> = (0..3)
        .map(|i| Var::from_tensor(&rand(shapes[i], 10 + i as u64)).unwrap())
        .collect();
    let vs = [&vs[0], &vs[1], &vs[2]];
    let loss = |y: &Tensor| y.sqr()?.sum_all();
    let theirs = gradients_to_second_order(&native, loss, vs);
    for path in PATHS {
        let ours = on_path(path, || gradients_to_second_order(&fast, loss, vs));
        for ((a, b), name) in ours.iter().zip(&theirs).zip(SECOND_ORDER_NAMES) {
            close(a, b, &format!("{what} ({} path) {name}", path.name()));
        }
    }
}

fn broadcast_bias(y: Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    y.broadcast_add(&b.reshape((1, b.elem_count(), 1, 1))?)
}

#[test]
fn convolutions_with_their_bias_match_candle() {
    for &(c, h, o, k, s, p) in &[(3, 8, 4, 4, 2, 1), (64, 5, 3, 3, 2, 1)] {
        for n in [1, 67] {
            compare_biased(
                [&[n, c, h, h], &[o, c, k, k], &[o]],
                |x, w, b| conv::conv2d_biased(x, w, Some(b), s, p),
                |x, w, b| broadcast_bias(x.conv2d(w, p, s, 1, 1)?, b),
                &format!("biased conv2d n{n} c{c} h{h} o{o} k{k} s{s} p{p}"),
            );
        }
    }
    // Strided, channels-last, and stride 1 "same" (run as a convolution).
    for &(c, h, o, k, s, p, op) in &[
        (4, 7, 2, 4, 2, 1, 0),
        (2, 3, 66, 3, 2, 1, 1),
        (64, 5, 2, 3, 1, 1, 0),
    ] {
        for n in [1, 67] {
            compare_biased(
                [&[n, c, h, h], &[c, o, k, k], &[o]],
                |x, w, b| conv::conv_transpose2d_biased(x, w, Some(b), s, p, op),
                |x, w, b| broadcast_bias(x.conv_transpose2d(w, p, op, s, 1)?, b),
                &format!("biased conv_transpose2d n{n} c{c} h{h} o{o} k{k} s{s} p{p} op{op}"),
            );
        }
    }
}

/// candle's leaky ReLU of slope `s`, composed: `relu(y) − s·relu(−y)`.
fn leaky(y: Tensor, s: f64) -> candle_core::Result<Tensor> {
    y.relu()? - (y.neg()?.relu()? * s)?
}

/// A convolution, its bias and a leaky ReLU (or ReLU) after it as one op, against candle's
/// convolution, broadcast bias and composed activation, to second order: column and Winograd
/// convolutions, and transposed ones (strided and stride 1).
#[test]
fn convolutions_with_their_bias_and_activation_match_candle() {
    for slope in [0.0, 0.2] {
        for &(c, h, o, k, s, p) in &[(3, 8, 4, 4, 2, 1), (8, 6, 9, 3, 1, 1)] {
            compare_biased(
                [&[5, c, h, h], &[o, c, k, k], &[o]],
                |x, w, b| conv::conv2d_act(x, w, Some(b), s, p, Some(slope)),
                |x, w, b| leaky(broadcast_bias(x.conv2d(w, p, s, 1, 1)?, b)?, slope),
                &format!("conv2d + leaky relu {slope} c{c} h{h} o{o} k{k} s{s}"),
            );
        }
        for &(c, h, o, k, s, p) in &[(4, 5, 3, 4, 2, 1), (8, 4, 8, 3, 1, 1)] {
            compare_biased(
                [&[5, c, h, h], &[c, o, k, k], &[o]],
                |x, w, b| conv::conv_transpose2d_act(x, w, Some(b), s, p, 0, Some(slope)),
                |x, w, b| {
                    let y = x.conv_transpose2d(w, p, 0, s, 1)?;
                    leaky(broadcast_bias(y, b)?, slope)
                },
                &format!("conv_transpose2d + leaky relu {slope} c{c} h{h} o{o} k{k} s{s}"),
            );
        }
    }
}

/// A convolution plus its bias plus a residual input (the convolution's own input here, so
/// the input gets both gradients) as one op, against candle's sum, to second order: Winograd
/// and column convolutions. A skip of another shape is the sum's error.
#[test]
fn convolutions_with_a_residual_input_match_candle() {
    for &(c, h, k) in &[(8, 6, 3), (3, 5, 3), (2, 4, 1)] {
        let p = k / 2;
        compare_biased(
            [&[4, c, h, h], &[c, c, k, k], &[c]],
            |x, w, b| conv::conv2d_biased_skip(x, w, b, 1, p, x),
            |x, w, b| broadcast_bias(x.conv2d(w, p, 1, 1, 1)?, b)? + x,
            &format!("conv2d + bias + skip c{c} h{h} k{k}"),
        );
    }
    let (x, w, b) = (
        rand(&[2, 3, 6, 6], 1),
        rand(&[4, 3, 3, 3], 2),
        rand(&[4], 3),
    );
    let err = conv::conv2d_biased_skip(&x, &w, &b, 1, 1, &x).unwrap_err();
    assert!(err.to_string().contains("shape mismatch"), "{err}");
}

#[test]
fn a_bias_of_the_wrong_size_is_a_clear_error() {
    let (x, w, b) = (
        rand(&[2, 3, 6, 6], 1),
        rand(&[4, 3, 3, 3], 2),
        rand(&[5], 3),
    );
    let err = conv::conv2d_biased(&x, &w, Some(&b), 1, 1).unwrap_err();
    assert!(err.to_string().contains("channel"), "{err}");
}

/// The 3×3 "same" convolutions with at least 8 channels each way run by Winograd's F(2×2, 3×3)
/// where the image's sides are even: square, oblong and single-tile images, the transposed
/// convolution (its stride-1 form is such a convolution) and the biased op, to second order
/// against candle; an odd side takes the column route.
#[test]
fn winograd_convolutions_match_candle() {
    for &(c, o, h, w) in &[(8, 9, 6, 6), (9, 8, 4, 8), (8, 8, 2, 2), (8, 8, 7, 6)] {
        for n in BATCHES {
            compare(
                &[n, c, h, w],
                &[o, c, 3, 3],
                |x, w| conv::conv2d(x, w, 1, 1),
                |x, w| x.conv2d(w, 1, 1, 1, 1),
                &format!("winograd conv2d n{n} c{c} o{o} {h}×{w}"),
            );
            compare(
                &[n, c, h, w],
                &[c, o, 3, 3],
                |x, w| conv::conv_transpose2d(x, w, 1, 1, 0),
                |x, w| x.conv_transpose2d(w, 1, 0, 1, 1),
                &format!("winograd conv_transpose2d n{n} c{c} o{o} {h}×{w}"),
            );
        }
    }
    compare_biased(
        [&[3, 8, 6, 6], &[10, 8, 3, 3], &[10]],
        |x, w, b| conv::conv2d_biased(x, w, Some(b), 1, 1),
        |x, w, b| broadcast_bias(x.conv2d(w, 1, 1, 1, 1)?, b),
        "winograd biased conv2d",
    );
}

/// In f32 (the lens's type) Winograd's transforms keep the convolution within f32 rounding of
/// the exact sum: the lens layer's shape against candle's f64 convolution.
#[test]
fn winograd_in_f32_is_within_rounding() {
    let x = rand(&[2, 32, 32, 32], 5);
    let w = (rand(&[32, 32, 3, 3], 6) * 0.1).unwrap();
    let exact = x.conv2d(&w, 1, 1, 1, 1).unwrap();
    let f32 = |t: &Tensor| t.to_dtype(DType::F32).unwrap();
    let ours = conv::conv2d(&f32(&x), &f32(&w), 1, 1).unwrap();
    let max_abs = |t: &Tensor| t.abs()?.max_all()?.to_scalar::<f64>();
    let diff = (ours.to_dtype(DType::F64).unwrap() - &exact).unwrap();
    let (worst, scale) = (max_abs(&diff).unwrap(), max_abs(&exact).unwrap());
    assert!(worst <= 1e-5 * scale, "worst error {worst} of {scale}");
}
