//! The tensor API and autograd, exercised through rhai scripts (not the Rust API).

mod common;
use common::*;

#[test]
fn arithmetic_with_numbers_on_both_sides_and_broadcasting() {
    let v = eval_vec(
        r#"
        let x = tensor([[1.0, 2.0], [3.0, 4.0]]);
        let row = tensor([10, 20]);
        let y = (2 * x + 1 - x / 2) * 1.0 + row - 3 / tensor([1.0, 3.0]) + (-x) + 1.5 - 0.5;
        y.to_array()
        "#,
    );
    // 2x + 1 - x/2 + row - [3, 1] - x + 1 = 0.5x + row - [3,1] + 2
    let x = [1.0, 2.0, 3.0, 4.0];
    let row = [10.0, 20.0];
    let c = [3.0, 1.0];
    let want: Vec<f64> = (0..4)
        .map(|i| 0.5 * x[i] + row[i % 2] - c[i % 2] + 2.0)
        .collect();
    assert_close(&v, &want, 1e-6);
}

#[test]
fn elementwise_functions_match_std() {
    let v = eval_vec(
        r#"
        let x = tensor([-2.0, -0.5, 0.5, 3.0]);
        [x.abs().to_array(), x.exp().to_array(), x.abs().log().to_array(), x.sqr().to_array(),
         x.abs().sqrt().to_array(), x.relu().to_array(), x.leaky_relu(0.2).to_array(),
         x.sigmoid().to_array(), x.tanh().to_array(), x.softplus().to_array(),
         x.clamp(-1.0, 1.0).to_array(), x.pow(3).to_array(), x.abs().pow(0.5).to_array(),
         maximum(x, 0.0).to_array(), minimum(x, tensor([0.0, 0.0, 1.0, 1.0])).to_array()]
        "#,
    );
    let xs = [-2.0f64, -0.5, 0.5, 3.0];
    let mut want = Vec::new();
    let fs: Vec<Box<dyn Fn(f64, usize) -> f64>> = vec![
        Box::new(|x, _| x.abs()),
        Box::new(|x, _| x.exp()),
        Box::new(|x, _| x.abs().ln()),
        Box::new(|x, _| x * x),
        Box::new(|x, _| x.abs().sqrt()),
        Box::new(|x, _| x.max(0.0)),
        Box::new(|x, _| if x > 0.0 { x } else { 0.2 * x }),
        Box::new(|x, _| 1.0 / (1.0 + (-x).exp())),
        Box::new(|x, _| x.tanh()),
        Box::new(|x, _| (1.0 + x.exp()).ln()),
        Box::new(|x, _| x.clamp(-1.0, 1.0)),
        Box::new(|x, _| x * x * x),
        Box::new(|x, _| x.abs().sqrt()),
        Box::new(|x, _| x.max(0.0)),
        Box::new(|x, i| x.min([0.0, 0.0, 1.0, 1.0][i])),
    ];
    for f in &fs {
        for (i, &x) in xs.iter().enumerate() {
            want.push(f(x, i));
        }
    }
    assert_close(&v, &want, 1e-5);
}

#[test]
fn reductions_over_all_and_given_dims() {
    let v = eval_vec(
        r#"
        let x = arange(0.0, 6.0, 1.0).reshape([2, 3]);
        [x.sum().item(), x.mean().item(), x.max().item(), x.min().item(), x.argmax(),
         x.sum(0).to_array(), x.sum(1).to_array(), x.mean([0, 1]).item(),
         x.max(1).to_array(), x.min(0).to_array(), x.sum(-1, true).shape(), x.argmax(1).to_array()]
        "#,
    );
    let want = [
        15.0, 2.5, 5.0, 0.0, 5.0, 3.0, 5.0, 7.0, 3.0, 12.0, 2.5, 2.0, 5.0, 0.0, 1.0, 2.0, 2.0, 1.0,
        2.0, 2.0,
    ];
    assert_close(&v, &want, 1e-6);
}

#[test]
fn per_sample_norms() {
    let v = eval_vec(
        r#"
        let g = tensor([[[3.0, -4.0]], [[1.0, -1.0]]]);
        [g.l2().to_array(), g.l1().to_array(), g.linf().to_array(), g.sq_l2().to_array()]
        "#,
    );
    assert_close(&v, &[5.0, 2f64.sqrt(), 7.0, 2.0, 4.0, 1.0, 25.0, 2.0], 1e-6);
}

#[test]
fn shapes_slicing_and_joining() {
    let v = eval_vec(
        r#"
        let x = arange(24).reshape([2, 3, 4]);
        [x.shape(), x.reshape([-1, 4]).shape(), x.flatten(1).shape(), x.transpose(0, 2).shape(),
         x.permute([2, 0, 1]).shape(), x.unsqueeze(1).shape(), x.unsqueeze(1).squeeze(1).shape(),
         cat([x, x], 1).shape(), stack([x, x], 0).shape(), x.narrow(2, 1, 2).shape(),
         x.slice(1, 1, -1).to_array(), x.index_select([1, 0], 0).shape(), x[1][2].to_array(),
         tensor([1.0, 2.0]).broadcast_as([3, 2]).shape(), x.numel(), x.rank(), x.dim(-1)]
        "#,
    );
    let want = [
        2.0, 3.0, 4.0, 6.0, 4.0, 2.0, 12.0, 4.0, 3.0, 2.0, 4.0, 2.0, 3.0, 2.0, 1.0, 3.0, 4.0, 2.0,
        3.0, 4.0, 2.0, 6.0, 4.0, 2.0, 2.0, 3.0, 4.0, 2.0, 3.0, 2.0, // shapes
        4.0, 5.0, 6.0, 7.0, 16.0, 17.0, 18.0, 19.0, // slice(1, 1, -1)
        2.0, 3.0, 4.0, // index_select
        20.0, 21.0, 22.0, 23.0, // x[1][2]
        3.0, 2.0, 24.0, 3.0, 4.0,
    ];
    assert_close(&v, &want, 0.0);
}

#[test]
fn matmul_and_convolutions_match_hand_computation() {
    let v = eval_vec(
        r#"
        let a = tensor([[1.0, 2.0], [3.0, 4.0]]);
        let b = tensor([[5.0], [6.0]]);
        let m = a.matmul(b);
        // 1 channel 3x3 input, 2x2 kernel of ones, bias 0.5, stride 1, padding 0
        let x = arange(9).reshape([1, 1, 3, 3]);
        let w = ones([1, 1, 2, 2]);
        let c = conv2d(x, w, tensor([0.5]), 1, 0);
        // transposed conv of a single 1 with a 2x2 kernel, stride 2: places the kernel
        let y = ones([1, 1, 1, 1]);
        let k = tensor([[[[1.0, 2.0], [3.0, 4.0]]]]);
        let d = conv_transpose2d(y, k, (), 2, 0, 0);
        [m.to_array(), c.to_array(), d.to_array()]
        "#,
    );
    let want = [17.0, 39.0, 8.5, 12.5, 20.5, 24.5, 1.0, 2.0, 3.0, 4.0];
    assert_close(&v, &want, 1e-6);
}

#[test]
fn comparisons_masks_and_where() {
    let v = eval_vec(
        r#"
        let x = tensor([-1.0, 0.0, 2.0]);
        [(x > 0.0).to_array(), (x <= 0).to_array(), x.eq(0.0).to_array(), where(x > 0, x, -x).to_array(),
         where(x < 0, 10.0, x).to_array()]
        "#,
    );
    assert_close(
        &v,
        &[
            0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 2.0, 10.0, 0.0, 2.0,
        ],
        0.0,
    );
}

#[test]
fn dtypes_and_conversions() {
    let arr: rhai::Array = eval(
        r#"
        let a = zeros([2]);
        default_dtype("f64");
        let b = ones([2]);
        [a.dtype(), b.dtype(), b.to("f32").dtype(), a.device()]
        "#,
    )
    .cast();
    let s: Vec<String> = arr.into_iter().map(|d| d.into_string().unwrap()).collect();
    assert_eq!(s, ["f32", "f64", "f32", "cpu"]);
    let err = try_eval("full([2], 3).item()").unwrap_err();
    assert!(err.contains("one element") && err.contains("[2]"), "{err}");
}

#[test]
fn printing_shows_shape_dtype_device_and_values_or_statistics() {
    let small: String = eval("tensor([[1.0, 2.0]]).to_string()").cast();
    assert!(small.starts_with("Tensor[1, 2] f32 cpu"), "{small}");
    assert!(small.contains("[[1., 2.]]"), "{small}");
    let big: String = eval("seed(1); randn([100, 100]).to_string()").cast();
    assert!(big.contains("min=") && big.contains("std="), "{big}");
}

#[test]
fn grad_returns_differentiable_gradients() {
    // y = x1^2 * x2 + sin(x1); dy/dx1 = 2 x1 x2 + cos x1; d/dx1 of that = 2 x2 - sin x1.
    let v = eval_vec(
        r#"
        default_dtype("f64");
        let x = variable(tensor([0.7, -1.3]));
        let y = x[0].sqr() * x[1] + x[0].sin();
        let g = grad(y, x);
        let gg = grad(g[0], x);
        [g.to_array(), gg.to_array()]
        "#,
    );
    let (a, b) = (0.7f64, -1.3f64);
    let want = [2.0 * a * b + a.cos(), a * a, 2.0 * b - a.sin(), 2.0 * a];
    assert_close(&v, &want, 1e-12);
}

#[test]
fn relu_gradient_is_a_step_that_is_zero_at_zero() {
    // As PyTorch's: 0 for x ≤ 0, 1 above; and times 3 through a scaled output.
    let v = eval_vec(
        r#"
        let x = variable(tensor([-1.5, 0.0, 2.0, 0.25]));
        grad((relu(x) * 3.0).sum(), x).to_array()
        "#,
    );
    assert_close(&v, &[0.0, 0.0, 3.0, 3.0], 1e-12);
}

#[test]
fn grads_of_several_leaves_and_unused_leaf_is_zero() {
    let v = eval_vec(
        r#"
        let a = variable(tensor([1.0, 2.0]));
        let b = variable(tensor([3.0]));
        let c = variable(tensor([5.0]));
        let gs = grads((a * b).sum(), [a, b, c]);
        [gs[0].to_array(), gs[1].to_array(), gs[2].to_array()]
        "#,
    );
    assert_close(&v, &[3.0, 3.0, 3.0, 0.0], 1e-6);
}

#[test]
fn grad_wrt_non_variable_is_a_clear_error() {
    let err = try_eval("let x = tensor([1.0]); let y = x * 2; grad(y, x)").unwrap_err();
    assert!(
        err.contains("not a variable") && err.contains("variable(x)"),
        "{err}"
    );
}

#[test]
fn seeded_randomness_is_reproducible() {
    let a = eval_vec(
        "seed(42); [randn([5]).to_array(), rand([3], -1.0, 1.0).to_array(), rand_int(100)]",
    );
    let b = eval_vec(
        "seed(42); [randn([5]).to_array(), rand([3], -1.0, 1.0).to_array(), rand_int(100)]",
    );
    let c = eval_vec(
        "seed(43); [randn([5]).to_array(), rand([3], -1.0, 1.0).to_array(), rand_int(100)]",
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(a[5..8].iter().all(|v| (-1.0..1.0).contains(v)));
}

#[test]
fn random_calls_are_not_folded_by_the_optimizer() {
    // A loop calling randn with constant arguments must draw fresh numbers every time.
    let v = eval_vec("let out = []; for i in 0..3 { out.push(randn([1]).item()); } out");
    assert!(v[0] != v[1] && v[1] != v[2], "{v:?}");
}

#[test]
fn statistics_of_random_tensors() {
    let v = eval_vec("seed(3); let x = randn([20000], 2.0, 0.5); let u = rand([20000]); [x.mean().item(), x.std().item(), u.min().item(), u.max().item(), u.mean().item()]");
    assert!(
        (v[0] - 2.0).abs() < 0.02 && (v[1] - 0.5).abs() < 0.02,
        "{v:?}"
    );
    assert!(
        v[2] >= 0.0 && v[3] < 1.0 && (v[4] - 0.5).abs() < 0.01,
        "{v:?}"
    );
}
