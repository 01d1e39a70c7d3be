//! Networks: layer values and gradients against hand computations and finite differences,
//! builder shapes, the architecture notation, initialisation, save/load, and the script API.

use candle_core::{DType, Device, Tensor as CT};
use ganscript::device::set_default_dtype;
use ganscript::kernels::dispatch::Kernels;
use ganscript::nn::{arch, Net};
use ganscript::{new_engine, EngineOptions};
use rhai::{Dynamic, Engine, Scope};
use std::collections::HashMap;

mod common;

fn engine() -> Engine {
    new_engine(&EngineOptions::default()).expect("engine").0
}

fn run(src: &str) -> Result<Dynamic, String> {
    let e = engine();
    let mut scope = Scope::new();
    e.eval_with_scope::<Dynamic>(&mut scope, src)
        .map_err(|e| e.to_string())
}

fn vals(t: &CT) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn t64(data: &[f64], shape: &[usize]) -> CT {
    CT::from_vec(data.to_vec(), shape, &Device::Cpu).unwrap()
}

fn close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "{a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{a:?} vs {b:?} (differ at {x} vs {y})"
        );
    }
}

fn set(net: &Net, name: &str, data: &[f64], shape: &[usize]) {
    net.set_named(name, &t64(data, shape)).unwrap();
}

fn shape_of(net: &Net, input: &[usize]) -> Vec<usize> {
    let x = CT::zeros(input, DType::F32, &Device::Cpu).unwrap();
    net.forward(&x).unwrap().dims().to_vec()
}

#[test]
fn linear_values_and_gradients_by_hand() {
    set_default_dtype(DType::F64);
    let l = Net::linear(2, 3, true).unwrap();
    set(&l, "weight", &[1., 2., 3., 4., 5., 6.], &[3, 2]);
    set(&l, "bias", &[0.1, 0.2, 0.3], &[3]);
    let x = t64(&[1., -1., 2., 0.5], &[2, 2]);
    let y = l.forward(&x).unwrap();
    close(&vals(&y), &[-0.9, -0.8, -0.7, 3.1, 8.2, 13.3], 1e-12);
    let vars: Vec<CT> = l.vars().iter().map(|v| v.as_tensor().clone()).collect();
    let g = ganscript::autograd::grads(&y.sum_all().unwrap(), &vars).unwrap();
    // d sum / dW[o, i] = Σ_n x[n, i]; d sum / db = N.
    close(&vals(&g[0]), &[3., -0.5, 3., -0.5, 3., -0.5], 1e-12);
    close(&vals(&g[1]), &[2., 2., 2.], 1e-12);
}

#[test]
fn conv2d_by_hand() {
    set_default_dtype(DType::F64);
    let x = t64(
        &(1..=9).map(|v| v as f64).collect::<Vec<_>>(),
        &[1, 1, 3, 3],
    );
    let c = Net::conv2d(1, 1, 2, 1, 0, true).unwrap();
    set(&c, "weight", &[1., 0., 0., -1.], &[1, 1, 2, 2]);
    set(&c, "bias", &[0.5], &[1]);
    // out[i, j] = x[i, j] - x[i+1, j+1] + 0.5 = -4 + 0.5.
    close(&vals(&c.forward(&x).unwrap()), &[-3.5; 4], 1e-12);
    let c2 = Net::conv2d(1, 1, 2, 2, 1, true).unwrap();
    c2.copy_from(&c).unwrap();
    // Padded 5×5, stride 2: x_p[r, c] - x_p[r+1, c+1] at r, c ∈ {0, 2}.
    let y = c2.forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 2]);
    close(&vals(&y), &[-0.5, -2.5, -6.5, -3.5], 1e-12);
}

#[test]
fn conv_transpose2d_by_hand() {
    set_default_dtype(DType::F64);
    // A 1×1 input times a 2×2 kernel at stride 2 gives the kernel scaled, plus the bias.
    let d = Net::conv_transpose2d(1, 1, 2, 2, 0, 0, true).unwrap();
    set(&d, "weight", &[1., 2., 3., 4.], &[1, 1, 2, 2]);
    set(&d, "bias", &[1.0], &[1]);
    let x = t64(&[2., -1.], &[1, 1, 1, 2]);
    let y = d.forward(&x).unwrap();
    assert_eq!(y.dims(), &[1, 1, 2, 4]);
    close(&vals(&y), &[3., 5., 0., -1., 7., 9., -2., -3.], 1e-12);
}

#[test]
fn batch_norm_train_and_eval_by_hand() {
    set_default_dtype(DType::F64);
    let bn = Net::batch_norm(2).unwrap();
    set(&bn, "weight", &[2.0, 1.0], &[2]);
    set(&bn, "bias", &[0.5, 0.0], &[2]);
    let x = t64(&[1., 2., 3., 6.], &[2, 2]);
    let y = bn.forward(&x).unwrap();
    let a = 1.0 / (1.0f64 + 1e-5).sqrt();
    let b = 2.0 / (4.0f64 + 1e-5).sqrt();
    close(&vals(&y), &[-2. * a + 0.5, -b, 2. * a + 0.5, b], 1e-12);
    let bufs: HashMap<String, CT> = bn.named_buffers().into_iter().collect();
    close(&vals(&bufs["running_mean"]), &[0.2, 0.4], 1e-12);
    // Unbiased batch variances 2 and 8.
    close(&vals(&bufs["running_var"]), &[1.1, 1.7], 1e-12);
    bn.set_training(false);
    let y = bn.forward(&t64(&[1., 2.], &[1, 2])).unwrap();
    let e0 = 2.0 * (1.0 - 0.2) / (1.1f64 + 1e-5).sqrt() + 0.5;
    let e1 = (2.0 - 0.4) / (1.7f64 + 1e-5).sqrt();
    close(&vals(&y), &[e0, e1], 1e-12);
    // Eval mode does not touch the running statistics.
    let bufs: HashMap<String, CT> = bn.named_buffers().into_iter().collect();
    close(&vals(&bufs["running_mean"]), &[0.2, 0.4], 1e-12);

    // 4-D input: statistics per channel over N, H, W.
    let bn = Net::batch_norm(1).unwrap();
    let x = t64(&[0., 2., 4., 6.], &[2, 1, 1, 2]);
    let y = bn.forward(&x).unwrap();
    let s = (5.0f64 + 1e-5).sqrt();
    close(&vals(&y), &[-3. / s, -1. / s, 1. / s, 3. / s], 1e-12);
}

#[test]
fn layer_norm_and_leaky_relu_by_hand() {
    set_default_dtype(DType::F64);
    let ln = Net::layer_norm(3).unwrap();
    let y = ln.forward(&t64(&[1., 2., 3.], &[1, 3])).unwrap();
    let s = (2.0f64 / 3.0 + 1e-5).sqrt();
    close(&vals(&y), &[-1. / s, 0., 1. / s], 1e-12);

    let r = run(r#"default_dtype("f64");
        let x = variable(tensor([-2.0, 3.0]));
        let y = leaky_relu(0.1).forward(x);
        [y.to_array(), grad(y, x).to_array()]"#)
    .unwrap();
    let arr = r.into_array().unwrap();
    let f = |v: &Dynamic| -> Vec<f64> {
        v.clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect()
    };
    close(&f(&arr[0]), &[-0.2, 3.0], 1e-12);
    close(&f(&arr[1]), &[0.1, 1.0], 1e-12);
}

/// `Net::forward_with_input_grad` (the input gradient built layer by layer, custom kernels)
/// against candle's own ops and backward pass with the graph kept (the generic path): the output, the input gradient and the second-order
/// gradients d/dθ Σ (∂D/∂x)² in every parameter, for nets with every layer kind it has a rule
/// for (train- and eval-mode batch norm, residual blocks, transposed convolutions), and for
/// one with a layer norm (which takes candle's pass).
#[test]
fn input_gradient_by_layers_matches_candles_backward_pass() {
    use ganscript::nn::Act;
    set_default_dtype(DType::F64);
    ganscript::rng::seed(5);
    let conv_d = || {
        Net::sequential(vec![
            Net::conv2d(2, 4, 3, 2, 1, true).unwrap(),
            Net::batch_norm(4).unwrap(),
            Net::act(Act::LeakyRelu(0.2)),
            Net::residual(Net::sequential(vec![
                Net::conv2d(4, 4, 3, 1, 1, false).unwrap(),
                Net::act(Act::Relu),
            ])),
            Net::conv_transpose2d(4, 2, 4, 2, 1, 0, true).unwrap(),
            Net::act(Act::Sigmoid),
            Net::reshape(vec![2 * 8, 8]),
            Net::flatten(),
            Net::act(Act::Tanh),
            Net::linear(128, 3, true).unwrap(),
            Net::act(Act::Identity),
        ])
    };
    let eval_d = conv_d();
    eval_d.set_training(false);
    // Each biased layer with the activation after it (run as one op).
    let fused = Net::sequential(vec![
        Net::conv2d(2, 4, 3, 2, 1, true).unwrap(),
        Net::act(Act::LeakyRelu(0.2)),
        Net::conv_transpose2d(4, 3, 4, 2, 1, 0, true).unwrap(),
        Net::act(Act::Relu),
        Net::flatten(),
        Net::linear(192, 5, true).unwrap(),
        Net::act(Act::LeakyRelu(0.1)),
        Net::linear(5, 1, true).unwrap(),
    ]);
    let nets = [
        ("conv, train mode", conv_d(), vec![3, 2, 8, 8]),
        ("fused activations", fused, vec![3, 2, 8, 8]),
        ("conv, eval mode", eval_d, vec![3, 2, 8, 8]),
        (
            "dcgan_g",
            arch::dcgan_g(32, 6, 3, true).unwrap(),
            vec![4, 6],
        ),
        (
            "lens",
            arch::tempered_lens(2, 4, 2).unwrap(),
            vec![2, 2, 6, 6],
        ),
        (
            "with layer norm",
            Net::sequential(vec![
                Net::linear(5, 7, true).unwrap(),
                Net::layer_norm(7).unwrap(),
                Net::act(Act::LeakyRelu(0.1)),
                Net::linear(7, 1, true).unwrap(),
            ]),
            vec![6, 5],
        ),
    ];
    for (name, d, shape) in nets {
        let n = shape.iter().product();
        let x0 =
            CT::from_vec(ganscript::rng::normal_vec(n, 0.0, 1.0), shape, &Device::Cpu).unwrap();
        let x = ganscript::autograd::variable(&x0).unwrap();
        let ts: Vec<CT> = d.vars().iter().map(|v| v.as_tensor().clone()).collect();
        let second = |g: &CT| {
            let p = g.sqr().unwrap().sum_all().unwrap();
            ganscript::autograd::grads(&p, &ts).unwrap()
        };
        // The layer-by-layer pass on the fast path (custom kernels); the reference on the
        // generic path, where every op and every backward pass is candle's own.
        let (out, g, g2) = common::on_path(Kernels::Fast, || {
            let (out, g) = d.forward_with_input_grad(&x).unwrap();
            let g2 = second(&g);
            (out, g, g2)
        });
        let (out_ref, g_ref, g2_ref) = common::on_path(Kernels::Generic, || {
            let out = d.forward(&x).unwrap();
            let g = ganscript::autograd::grad(&out.sum_all().unwrap(), &x).unwrap();
            let g2 = second(&g);
            (out, g, g2)
        });
        close(&vals(&out), &vals(&out_ref), 1e-12);
        close(&vals(&g), &vals(&g_ref), 1e-12);
        assert!(
            vals(&g).iter().any(|v| v.abs() > 1e-6),
            "{name}: a zero gradient"
        );
        // (A bias right before a train-mode batch norm has none: the mean takes it out.)
        assert!(
            g2_ref
                .iter()
                .any(|b| vals(b).iter().any(|v| v.abs() > 1e-6)),
            "{name}: no second-order gradient"
        );
        for (i, (a, b)) in g2.iter().zip(&g2_ref).enumerate() {
            assert_eq!(a.dims(), b.dims(), "{name}: parameter {i}");
            close(&vals(a), &vals(b), 1e-10);
        }
    }
}

/// d/dθ Σ (∂D/∂x)² by double backprop against central finite differences, through conv,
/// transposed conv, batch norm (train mode), leaky relu, sigmoid and a linear layer.
#[test]
fn second_order_gradients_match_finite_differences() {
    set_default_dtype(DType::F64);
    ganscript::rng::seed(3);
    let d = Net::sequential(vec![
        Net::conv2d(2, 3, 3, 2, 1, true).unwrap(),
        Net::batch_norm(3).unwrap(),
        Net::act(ganscript::nn::Act::LeakyRelu(0.2)),
        Net::conv_transpose2d(3, 2, 4, 2, 1, 0, true).unwrap(),
        Net::act(ganscript::nn::Act::Sigmoid),
        Net::flatten(),
        Net::layer_norm(32).unwrap(),
        Net::act(ganscript::nn::Act::Tanh),
        Net::linear(32, 1, true).unwrap(),
    ]);
    let x0 = CT::from_vec(
        ganscript::rng::normal_vec(3 * 2 * 4 * 4, 0.0, 1.0),
        (3, 2, 4, 4),
        &Device::Cpu,
    )
    .unwrap();
    let penalty = |d: &Net| -> CT {
        let x = ganscript::autograd::variable(&x0).unwrap();
        let out = d.forward(&x).unwrap();
        let g = ganscript::autograd::grad(&out, &x).unwrap();
        g.sqr().unwrap().sum_all().unwrap()
    };
    let vars = d.vars();
    let p = penalty(&d);
    let ts: Vec<CT> = vars.iter().map(|v| v.as_tensor().clone()).collect();
    let g = ganscript::autograd::grads(&p, &ts).unwrap();
    let h = 1e-5;
    let mut checked = 0;
    for (vi, v) in vars.iter().enumerate() {
        let base = vals(v.as_tensor());
        let shape = v.as_tensor().dims().to_vec();
        let gv = vals(&g[vi]);
        for j in [0, base.len() / 2, base.len() - 1] {
            let mut plus = base.clone();
            plus[j] += h;
            v.set(&t64(&plus, &shape)).unwrap();
            let fp = vals(&penalty(&d))[0];
            let mut minus = base.clone();
            minus[j] -= h;
            v.set(&t64(&minus, &shape)).unwrap();
            let fm = vals(&penalty(&d))[0];
            v.set(&t64(&base, &shape)).unwrap();
            let fd = (fp - fm) / (2.0 * h);
            assert!(
                (fd - gv[j]).abs() <= 1e-5 * (1.0 + fd.abs()),
                "param {vi} elem {j}: autograd {} vs finite differences {fd}",
                gv[j]
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 30);
}

#[test]
fn builder_shapes() {
    set_default_dtype(DType::F32);
    let d = arch::magan_mnist_d().unwrap();
    assert_eq!(shape_of(&d, &[4, 1, 28, 28]), vec![4, 1, 28, 28]);
    assert_eq!(
        d.param_count(),
        784 * 256 + 256 + 256 * 256 + 256 + 256 * 784 + 784
    );
    let g = arch::magan_mnist_g(50).unwrap();
    assert_eq!(shape_of(&g, &[4, 50]), vec![4, 1, 28, 28]);
    assert_eq!(
        g.param_count(),
        50 * 128 * 49 + 128 + 128 * 64 * 16 + 64 + 64 * 16 + 1
    );
    for &(size, nz, ch) in &[(28usize, 64usize, 1usize), (32, 128, 3), (64, 100, 3)] {
        for bn in [false, true] {
            let g = arch::dcgan_g(size, nz, ch, bn).unwrap();
            assert_eq!(shape_of(&g, &[2, nz]), vec![2, ch, size, size], "G {size}");
            let d = arch::dcgan_d(size, ch, bn).unwrap();
            assert_eq!(shape_of(&d, &[2, ch, size, size]), vec![2, 1], "D {size}");
        }
    }
    for &(size, ch) in &[(32usize, 3usize), (64, 3)] {
        let ae = arch::magan_conv_ae(size, ch).unwrap();
        assert_eq!(shape_of(&ae, &[2, ch, size, size]), vec![2, ch, size, size]);
    }
    assert!(arch::dcgan_g(48, 100, 3, true).is_err());
}

#[test]
fn dcgan32_is_exactly_the_torch_reference() {
    set_default_dtype(DType::F32);
    let g = arch::dcgan_g(32, 128, 3, true).unwrap();
    let kinds: Vec<String> = g.rows().into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            "reshape([128, 1, 1])",
            "conv_transpose2d(128, 512, k=4, s=1, p=0)",
            "batch_norm(512)",
            "relu",
            "conv_transpose2d(512, 256, k=4, s=2, p=1)",
            "batch_norm(256)",
            "relu",
            "conv_transpose2d(256, 128, k=4, s=2, p=1)",
            "batch_norm(128)",
            "relu",
            "conv_transpose2d(128, 3, k=4, s=2, p=1)",
            "tanh",
        ]
    );
    // PyTorch's parameter count for this generator.
    assert_eq!(
        g.param_count(),
        128 * 512 * 16
            + 512
            + 1024
            + 512 * 256 * 16
            + 256
            + 512
            + 256 * 128 * 16
            + 128
            + 256
            + 128 * 3 * 16
            + 3
    );
    let d = arch::dcgan_d(32, 3, true).unwrap();
    let kinds: Vec<String> = d.rows().into_iter().map(|r| r.kind).collect();
    assert_eq!(
        kinds,
        vec![
            "conv2d(3, 128, k=4, s=2, p=1)",
            "leaky_relu(0.2)",
            "conv2d(128, 256, k=4, s=2, p=1)",
            "batch_norm(256)",
            "leaky_relu(0.2)",
            "conv2d(256, 512, k=4, s=2, p=1)",
            "batch_norm(512)",
            "leaky_relu(0.2)",
            "conv2d(512, 1, k=4, s=1, p=0)",
            "flatten",
        ]
    );
    let d = arch::dcgan_d(32, 3, false).unwrap();
    assert_eq!(d.rows().len(), 8);
}

/// One module of `dcgan32` in `../shared/bench/torch_reference.py`, by its index in the
/// `nn.Sequential` (which is also the index of our layer, so PyTorch's state-dict names are
/// ours).
enum TorchModule {
    Unflatten(usize),
    ConvT { stride: usize, padding: usize },
    Conv { stride: usize, padding: usize },
    BatchNorm,
    Relu,
    LeakyRelu(f64),
    Tanh,
    Flatten,
}

/// The PyTorch module list applied with candle's own ops (training-mode batch norm: batch
/// statistics, biased variance, eps 1e-5), reading each module's parameters by PyTorch's
/// state-dict name; also returns the names read.
fn torch_forward(modules: &[TorchModule], p: &HashMap<String, CT>, x: &CT) -> (CT, Vec<String>) {
    let mut names = Vec::new();
    let mut get = |i: usize, k: &str| {
        let name = format!("{i}.{k}");
        names.push(name.clone());
        p.get(&name)
            .unwrap_or_else(|| panic!("no parameter {name}"))
            .clone()
    };
    let mut h = x.clone();
    for (i, m) in modules.iter().enumerate() {
        h = match *m {
            TorchModule::Unflatten(c) => h.reshape((h.dim(0).unwrap(), c, 1, 1)).unwrap(),
            TorchModule::ConvT { stride, padding } => {
                let (w, b) = (get(i, "weight"), get(i, "bias"));
                h.conv_transpose2d(&w, padding, 0, stride, 1)
                    .unwrap()
                    .broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap())
                    .unwrap()
            }
            TorchModule::Conv { stride, padding } => {
                let (w, b) = (get(i, "weight"), get(i, "bias"));
                h.conv2d(&w, padding, stride, 1, 1)
                    .unwrap()
                    .broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap())
                    .unwrap()
            }
            TorchModule::BatchNorm => {
                let (w, b) = (get(i, "weight"), get(i, "bias"));
                let c = w.elem_count();
                let mean = h.mean_keepdim(vec![0, 2, 3]).unwrap();
                let xc = h.broadcast_sub(&mean).unwrap();
                let var = xc.sqr().unwrap().mean_keepdim(vec![0, 2, 3]).unwrap();
                let y = xc
                    .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
                    .unwrap();
                y.broadcast_mul(&w.reshape((1, c, 1, 1)).unwrap())
                    .unwrap()
                    .broadcast_add(&b.reshape((1, c, 1, 1)).unwrap())
                    .unwrap()
            }
            TorchModule::Relu => h.relu().unwrap(),
            TorchModule::LeakyRelu(s) => {
                (h.relu().unwrap() - (h.neg().unwrap().relu().unwrap() * s).unwrap()).unwrap()
            }
            TorchModule::Tanh => h.tanh().unwrap(),
            TorchModule::Flatten => h.flatten_from(1).unwrap(),
        };
    }
    (h, names)
}

/// DCGAN-32 G and D (batch norm in D) against `dcgan32()` of the PyTorch reference the
/// benchmarks compare with, by values: the same module list applied with candle's own ops to
/// the parameters read by PyTorch's state-dict names, so that every parameter is used where
/// PyTorch uses it, with PyTorch's strides and paddings; and no parameter is left over.
#[test]
fn dcgan32_forward_equals_the_torch_reference_modules() {
    use TorchModule::*;
    set_default_dtype(DType::F64);
    ganscript::rng::seed(8);
    let ct = |stride, padding| ConvT { stride, padding };
    let cv = |stride, padding| Conv { stride, padding };
    let g_modules = [
        Unflatten(128),
        ct(1, 0),
        BatchNorm,
        Relu,
        ct(2, 1),
        BatchNorm,
        Relu,
        ct(2, 1),
        BatchNorm,
        Relu,
        ct(2, 1),
        Tanh,
    ];
    let d_modules = [
        cv(2, 1),
        LeakyRelu(0.2),
        cv(2, 1),
        BatchNorm,
        LeakyRelu(0.2),
        cv(2, 1),
        BatchNorm,
        LeakyRelu(0.2),
        cv(1, 0),
        Flatten,
    ];
    let g = arch::dcgan_g(32, 128, 3, true).unwrap();
    let d = arch::dcgan_d(32, 3, true).unwrap();
    // Batch-norm scales and shifts away from 1 and 0, so that a swapped or skipped one shows.
    for net in [&g, &d] {
        net.init("dcgan").unwrap();
        for (name, v) in net.named_vars() {
            if name.ends_with(".bias") {
                let n = v.as_tensor().elem_count();
                let b = CT::from_vec(ganscript::rng::normal_vec(n, 0.0, 0.1), n, &Device::Cpu);
                v.set(&b.unwrap()).unwrap();
            }
        }
    }
    let z = CT::from_vec(
        ganscript::rng::normal_vec(3 * 128, 0.0, 1.0),
        (3, 128),
        &Device::Cpu,
    )
    .unwrap();
    for (what, net, modules, x) in [
        ("G", &g, &g_modules[..], z.clone()),
        ("D", &d, &d_modules[..], g.forward(&z).unwrap().detach()),
    ] {
        let params: HashMap<String, CT> = net
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().clone()))
            .collect();
        let (want, used) =
            common::on_path(Kernels::Generic, || torch_forward(modules, &params, &x));
        let got = net.forward(&x).unwrap();
        assert_eq!(got.dims(), want.dims(), "{what}: output shape");
        close(&vals(&got), &vals(&want), 1e-9);
        let mut names: Vec<&String> = params.keys().collect();
        names.sort();
        let mut used_sorted: Vec<&String> = used.iter().collect();
        used_sorted.sort();
        assert_eq!(
            names, used_sorted,
            "{what}: parameters PyTorch does not have, or lacks"
        );
    }
    assert_eq!(vals(&g.forward(&z).unwrap()).len(), 3 * 3 * 32 * 32);
}

#[test]
fn tempered_lens_is_identity_when_the_out_conv_is_zero() {
    set_default_dtype(DType::F64);
    let lens = arch::tempered_lens(3, 8, 2).unwrap();
    let names: Vec<String> = lens.named_vars().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 2 + 2 * 4 + 2);
    assert_eq!(names.last().unwrap(), "4.bias");
    set(&lens, "4.weight", &vec![0.0; 3 * 8 * 9], &[3, 8, 3, 3]);
    set(&lens, "4.bias", &[0.0; 3], &[3]);
    ganscript::rng::seed(1);
    let x = t64(
        &ganscript::rng::normal_vec(2 * 3 * 6 * 6, 0., 1.),
        &[2, 3, 6, 6],
    );
    let y = lens.forward(&x).unwrap();
    assert_eq!(y.dims(), &[2, 3, 6, 6]);
    close(&vals(&y), &vals(&x), 1e-14);
    // Not the identity otherwise, and the default lens has the paper's width and depth.
    let full = arch::tempered_lens(3, 32, 8).unwrap();
    assert_eq!(
        full.param_count(),
        3 * 32 * 9 + 32 + 8 * 2 * (32 * 32 * 9 + 32) + 32 * 3 * 9 + 3
    );
    let y = full.forward(&x.to_dtype(DType::F64).unwrap()).unwrap();
    assert!(vals(&(y - &x).unwrap()).iter().any(|v| v.abs() > 1e-6));
}

/// The lens (residual blocks ending in a biased convolution, which adds the block's input in
/// the same op, and convolutions fused with their ReLU) against the same network composed
/// from candle's own convolution, broadcast bias, ReLU and add: output, every gradient of
/// Σ y², and the second-order d/dθ Σ (∂/∂x Σ y²)², with Winograd (width 8) and column
/// convolutions.
#[test]
fn the_lens_matches_candles_composition_to_second_order() {
    set_default_dtype(DType::F64);
    ganscript::rng::seed(8);
    let lens = arch::tempered_lens(2, 8, 2).unwrap();
    let vars: HashMap<String, CT> = lens
        .named_vars()
        .into_iter()
        .map(|(n, v)| (n, v.as_tensor().clone()))
        .collect();
    let conv = |x: &CT, name: &str| {
        let b = &vars[&format!("{name}.bias")];
        x.conv2d(&vars[&format!("{name}.weight")], 1, 1, 1, 1)
            .unwrap()
            .broadcast_add(&b.reshape((1, b.elem_count(), 1, 1)).unwrap())
            .unwrap()
    };
    let reference = |x: &CT| {
        let mut h = conv(x, "0").relu().unwrap();
        for blk in [2, 3] {
            let r = conv(&h, &format!("{blk}.0")).relu().unwrap();
            h = (&h + conv(&r, &format!("{blk}.2"))).unwrap();
        }
        (x + conv(&h, "4")).unwrap()
    };
    let x0 = t64(
        &ganscript::rng::normal_vec(3 * 2 * 6 * 6, 0., 1.),
        &[3, 2, 6, 6],
    );
    let x = ganscript::autograd::variable(&x0).unwrap();
    let mut names: Vec<&String> = vars.keys().collect();
    names.sort();
    let mut wrt = vec![x.clone()];
    wrt.extend(names.iter().map(|n| vars[*n].clone()));
    let all = |y: CT| {
        let l = y.sqr().unwrap().sum_all().unwrap();
        let g = ganscript::autograd::grads(&l, &wrt).unwrap();
        let p = g[0].sqr().unwrap().sum_all().unwrap();
        let second = ganscript::autograd::grads(&p, &wrt[1..]).unwrap();
        let mut out = vec![y];
        out.extend(g);
        out.extend(second);
        out
    };
    let ours = all(lens.forward(&x).unwrap());
    let theirs = all(reference(&x));
    for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(a.dims(), b.dims(), "result {i}");
        close(&vals(a), &vals(b), 1e-10);
    }
}

/// A residual block whose body changes the shape is a clear error, whether the body ends in a
/// biased convolution (otherwise fused with the block's add) or not.
#[test]
fn a_residual_body_that_changes_the_shape_is_a_clear_error() {
    set_default_dtype(DType::F64);
    let x = t64(&[0.5; 2 * 4 * 6 * 6], &[2, 4, 6, 6]);
    for body in [
        Net::conv2d(4, 5, 3, 1, 1, true).unwrap(),
        Net::sequential(vec![Net::conv2d(4, 5, 3, 1, 1, true).unwrap()]),
        Net::sequential(vec![Net::conv2d(4, 4, 3, 2, 1, true).unwrap()]),
        Net::sequential(vec![Net::conv2d(4, 5, 3, 1, 1, false).unwrap()]),
    ] {
        let err = Net::residual(body).forward(&x).unwrap_err().to_string();
        assert!(err.contains("cannot be added to its input"), "{err}");
    }
}

#[test]
fn notation_parser_good_and_bad() {
    set_default_dtype(DType::F32);
    assert_eq!(
        arch::parse("784-256-256-784").unwrap(),
        arch::Spec::Dense(vec![784, 256, 256, 784])
    );
    assert_eq!(
        arch::parse("(128)7c1s-(64)4c2s").unwrap(),
        arch::Spec::Conv(vec![
            arch::ConvSpec {
                channels: 128,
                kernel: 7,
                stride: 1
            },
            arch::ConvSpec {
                channels: 64,
                kernel: 4,
                stride: 2
            }
        ])
    );
    let e = arch::parse("(128)7c1s-(64)4x2s-(1)4c2s")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "arch: bad layer \"(64)4x2s\" at token 2: expected (C)KcSs"
    );
    let e = arch::parse("784-abc-10").unwrap_err().to_string();
    assert!(e.contains("\"abc\" at token 2"), "{e}");
    let e = arch::parse("(1)4c2s-(0)4c2s").unwrap_err().to_string();
    assert!(e.contains("\"(0)4c2s\" at token 2"), "{e}");
    assert!(arch::parse("").is_err());
    assert!(arch::parse("784").is_err());
    assert!(arch::parse("784--10")
        .unwrap_err()
        .to_string()
        .contains("\"\" at token 2"));

    // Through the script API, with options.
    let e = run(r#"arch("(128)7c1s-(64)4x2s", #{ transpose: true, input: [50] })"#).unwrap_err();
    assert!(
        e.contains("arch: bad layer \"(64)4x2s\" at token 2: expected (C)KcSs"),
        "{e}"
    );
    let e = run(r#"arch("10-10", #{ activaton: "relu" })"#).unwrap_err();
    assert!(e.contains("unknown option \"activaton\""), "{e}");
    let r = run(r#"
        let g = arch("(128)7c1s-(64)4c2s-(1)4c2s", #{ transpose: true, input: [50], output: "sigmoid" });
        let d = arch("(16)4c2s-(32)4c2s-(1)7c1s", #{ in_channels: 1, activation: "leaky_relu", slope: 0.2, batch_norm: true });
        let m = arch("2-16-16-1", #{ activation: "tanh" });
        let y = g.forward(randn([3, 50]));
        [y.shape(), d.forward(y).shape(), m.forward(randn([5, 2])).shape(), d.to_string()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    let shape = |v: &Dynamic| -> Vec<i64> {
        v.clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.as_int().unwrap())
            .collect()
    };
    assert_eq!(shape(&r[0]), vec![3, 1, 28, 28]);
    assert_eq!(shape(&r[1]), vec![3, 1, 1, 1]);
    assert_eq!(shape(&r[2]), vec![5, 1]);
    let s = r[3].clone().into_string().unwrap();
    assert!(
        s.contains("leaky_relu(0.2)") && s.contains("batch_norm(32)"),
        "{s}"
    );
    // Odd kernels with "same" padding keep the size; transposed convs upsample exactly.
    let n = arch::arch(
        "(8)3c1s-(8)3c2s-(4)5c2s",
        &arch::ArchOptions {
            in_channels: Some(3),
            padding: arch::Padding::Same,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(shape_of(&n, &[1, 3, 32, 32]), vec![1, 4, 8, 8]);
    let n = arch::arch(
        "(8)3c2s-(4)5c2s",
        &arch::ArchOptions {
            in_channels: Some(3),
            transpose: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(shape_of(&n, &[1, 3, 8, 8]), vec![1, 4, 32, 32]);
}

#[test]
fn named_params_buffers_and_summary() {
    let r = run(r#"
        let net = sequential([linear(4, 8), batch_norm(8), relu(), linear(8, 2, false)]);
        let p = net.named_params();
        let b = net.buffers();
        [p.keys(), b.keys(), net.param_count(), net.params().len(), net.summary([4]), net.to_string()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    let keys = |v: &Dynamic| -> Vec<String> {
        let mut k: Vec<String> = v
            .clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.clone().into_string().unwrap())
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&r[0]),
        vec!["0.bias", "0.weight", "1.bias", "1.weight", "3.weight"]
    );
    assert_eq!(keys(&r[1]), vec!["1.running_mean", "1.running_var"]);
    assert_eq!(r[2].as_int().unwrap(), 4 * 8 + 8 + 16 + 16);
    assert_eq!(r[3].as_int().unwrap(), 5);
    let s = r[4].clone().into_string().unwrap();
    assert!(s.contains("output shape"), "{s}");
    assert!(s.contains("[1, 8]") && s.contains("[1, 2]"), "{s}");
    assert!(s.contains("total parameters: 72"), "{s}");
    let s = r[5].clone().into_string().unwrap();
    assert!(
        !s.contains("output shape") && s.contains("linear(8, 2, bias=false)"),
        "{s}"
    );
}

#[test]
fn train_and_eval_modes_from_scripts() {
    let r = run(r#"
        default_dtype("f64");
        let bn = batch_norm(1);
        bn.forward(tensor([[1.0], [3.0]]));
        bn.eval_mode();
        let a = bn.is_training();
        let y = bn.forward(tensor([[1.0]]));
        bn.train();
        let b = bn.is_training();
        bn.train(false);
        [a, b && !bn.is_training(), y.item()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert!(!r[0].as_bool().unwrap());
    assert!(r[1].as_bool().unwrap());
    // running mean 0.2, running var 0.9 + 0.1·2 = 1.1.
    let want = (1.0 - 0.2) / (1.1f64 + 1e-5).sqrt();
    assert!((r[2].as_float().unwrap() - want).abs() < 1e-12);
    // Training mode with one value per channel is a clear error.
    let e = run("batch_norm(2).forward(zeros([1, 2]))").unwrap_err();
    assert!(e.contains("more than one value per channel"), "{e}");
    // Shape errors name the layer.
    let e =
        run("sequential([linear(3, 4), relu(), linear(5, 1)]).forward(zeros([2, 3]))").unwrap_err();
    assert!(
        e.contains("layer 2 (linear(5, 1))") && e.contains("[N, 5]"),
        "{e}"
    );
}

#[test]
fn init_schemes() {
    set_default_dtype(DType::F64);
    ganscript::rng::seed(7);
    let l = Net::linear(400, 300, true).unwrap();
    let stats = |t: &CT| {
        let v = vals(t);
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0.0f64, |a, x| a.max(x.abs()));
        (mean, var.sqrt(), max)
    };
    let w = |n: &Net| n.named_vars()[0].1.as_tensor().clone();
    let b = |n: &Net| n.named_vars()[1].1.as_tensor().clone();
    // PyTorch default: U(±1/√fan_in) for weights and biases.
    let (_, sd, max) = stats(&w(&l));
    assert!(max <= 0.05 && max > 0.049, "{max}");
    assert!((sd - 0.05 / 3f64.sqrt()).abs() < 0.001, "{sd}");
    assert!(stats(&b(&l)).2 > 0.0);
    l.init("dcgan").unwrap();
    let (mean, sd, _) = stats(&w(&l));
    assert!(
        mean.abs() < 0.001 && (sd - 0.02).abs() < 0.001,
        "{mean} {sd}"
    );
    assert_eq!(stats(&b(&l)).2, 0.0);
    l.init("xavier").unwrap();
    let bound = (6.0f64 / 700.0).sqrt();
    let (_, _, max) = stats(&w(&l));
    assert!(max <= bound && max > 0.98 * bound);
    l.init("kaiming").unwrap();
    let (_, sd, _) = stats(&w(&l));
    assert!((sd - (2.0f64 / 400.0).sqrt()).abs() < 0.003, "{sd}");
    assert!(l
        .init("bogus")
        .unwrap_err()
        .to_string()
        .contains("unknown scheme"));
    // DCGAN batch-norm weights ~ N(1, 0.02).
    let bn = Net::batch_norm(4000).unwrap();
    bn.init("dcgan").unwrap();
    let (mean, sd, _) = stats(&w(&bn));
    assert!((mean - 1.0).abs() < 0.002 && (sd - 0.02).abs() < 0.002);
    // Transposed conv: PyTorch's fan_in is out·k² (dim 1 of [in, out, k, k]).
    let d = Net::conv_transpose2d(200, 2, 4, 2, 1, 0, true).unwrap();
    let (_, _, max) = stats(&w(&d));
    assert!(
        max <= 1.0 / 32f64.sqrt() && max > 0.97 / 32f64.sqrt(),
        "{max}"
    );
    // Same seed, same net.
    ganscript::rng::seed(11);
    let a = Net::linear(3, 3, true).unwrap();
    ganscript::rng::seed(11);
    let c = Net::linear(3, 3, true).unwrap();
    assert_eq!(vals(&w(&a)), vals(&w(&c)));
}

#[test]
fn save_load_round_trip_and_bad_files() {
    set_default_dtype(DType::F32);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("net.safetensors");
    let a = arch::dcgan_d(28, 1, true).unwrap();
    a.forward(&CT::ones((3, 1, 28, 28), DType::F32, &Device::Cpu).unwrap())
        .unwrap(); // moves the running statistics
    a.save(&path).unwrap();
    assert!(path.exists() && !dir.path().join("net.safetensors.tmp").exists());
    let b = arch::dcgan_d(28, 1, true).unwrap();
    let before: Vec<Vec<f64>> = b.named_tensors().iter().map(|(_, t)| vals(t)).collect();
    b.load(&path).unwrap();
    for ((n1, t1), (n2, t2)) in a.named_tensors().iter().zip(b.named_tensors().iter()) {
        assert_eq!(n1, n2);
        assert_eq!(vals(t1), vals(t2), "{n1}");
    }
    assert!(b.named_tensors().iter().any(|(n, _)| n == "3.running_mean"));

    let fresh = arch::dcgan_d(28, 1, true).unwrap();
    let snapshot =
        |n: &Net| -> Vec<Vec<f64>> { n.named_tensors().iter().map(|(_, t)| vals(t)).collect() };
    let orig = snapshot(&fresh);
    assert_ne!(orig, before, "two fresh nets should differ");

    // Missing file.
    let missing = dir.path().join("nope.safetensors");
    let e = fresh.load(&missing).unwrap_err().to_string();
    assert!(e.contains("nope.safetensors"), "{e}");
    // Truncated file.
    let bytes = std::fs::read(&path).unwrap();
    let trunc = dir.path().join("trunc.safetensors");
    std::fs::write(&trunc, &bytes[..bytes.len() / 2]).unwrap();
    let e = fresh.load(&trunc).unwrap_err().to_string();
    assert!(
        e.contains("trunc.safetensors") && e.contains("truncated or corrupt"),
        "{e}"
    );
    assert_eq!(snapshot(&fresh), orig);
    // Wrong shape: a 28-px D with 3 input channels.
    let other = arch::dcgan_d(28, 3, true).unwrap();
    let wrong = dir.path().join("wrong.safetensors");
    other.save(&wrong).unwrap();
    let e = fresh.load(&wrong).unwrap_err().to_string();
    assert!(
        e.contains("wrong.safetensors")
            && e.contains("\"0.weight\"")
            && e.contains("[64, 3, 4, 4]"),
        "{e}"
    );
    assert_eq!(snapshot(&fresh), orig);
    // Missing tensor: a D without batch norm has no 3.running_mean etc.
    let nobn = arch::dcgan_d(28, 1, false).unwrap();
    let partial = dir.path().join("partial.safetensors");
    nobn.save(&partial).unwrap();
    let e = fresh.load(&partial).unwrap_err().to_string();
    assert!(
        e.contains("partial.safetensors") && e.contains("missing tensor"),
        "{e}"
    );
    assert_eq!(snapshot(&fresh), orig);

    // The script API (the temporary folder granted as with `--allow-read`).
    let p = path.display().to_string();
    let granted = EngineOptions {
        allow_read: vec![dir.path().to_path_buf()],
        ..Default::default()
    };
    let run = |src: &str| {
        new_engine(&granted)
            .unwrap()
            .0
            .eval::<Dynamic>(src)
            .map_err(|e| e.to_string())
    };
    let r = run(&format!(
        r#"let d = dcgan_d(28, 1, true); d.load("{p}"); d.named_params()["0.weight"].sum().item()"#
    ))
    .unwrap();
    let want: f64 = vals(&a.named_tensors()[0].1).iter().sum();
    assert!((r.as_float().unwrap() - want).abs() < 1e-4);
    let e = run(&format!(r#"let d = dcgan_d(28, 3, true); d.load("{p}")"#)).unwrap_err();
    assert!(
        e.contains("net.safetensors") && e.contains("\"0.weight\""),
        "{e}"
    );
}

#[test]
fn copy_ema_and_set_param() {
    let r = run(r#"
        default_dtype("f64");
        let a = linear(2, 1);
        a.set_param("weight", tensor([[1.0, 2.0]]));
        a.set_param("bias", tensor([0.0]));
        let avg = ema(a, 0.9);
        a.set_param("weight", tensor([[3.0, 4.0]]));
        ema_update(avg, a, 0.9);
        let c = a.copy();
        a.set_param("weight", tensor([[0.0, 0.0]]));
        [avg.named_params()["weight"].to_array(), c.named_params()["weight"].to_array()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    let row = |v: &Dynamic| -> Vec<f64> {
        v.clone().into_array().unwrap()[0]
            .clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect()
    };
    close(&row(&r[0]), &[1.2, 2.2], 1e-12);
    close(&row(&r[1]), &[3.0, 4.0], 1e-12);
    let e = run(r#"linear(2, 1).set_param("wieght", zeros([1, 2]))"#).unwrap_err();
    assert!(e.contains("no tensor named \"wieght\""), "{e}");
    let e = run(r#"linear(2, 1).copy_from(linear(3, 1))"#).unwrap_err();
    assert!(e.contains("copy_from") && e.contains("\"weight\""), "{e}");
}

#[test]
fn builders_from_scripts_and_no_overload_clash() {
    let r = run(r#"
        let x = tensor([[-1.0, 2.0]]);
        let a = relu(x).sum().item() + sigmoid(x).shape().len() + tanh(x).shape().len() + leaky_relu(x, 0.5).sum().item();
        let g = magan_mnist_g(50);
        let d = magan_mnist_d();
        let y = d.forward(g.forward(randn([2, 50])));
        let lens = tempered_lens(3);
        [a, y.shape(), lens.param_count(), dcgan_g(32, 128, 3, true).forward(randn([2, 128])).shape()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert!((r[0].as_float().unwrap() - (2.0 + 2.0 + 2.0 + 1.5)).abs() < 1e-6);
    let s: Vec<i64> = r[1]
        .clone()
        .into_array()
        .unwrap()
        .iter()
        .map(|v| v.as_int().unwrap())
        .collect();
    assert_eq!(s, vec![2, 1, 28, 28]);
    assert_eq!(
        r[2].as_int().unwrap(),
        3 * 32 * 9 + 32 + 8 * 2 * (32 * 32 * 9 + 32) + 32 * 3 * 9 + 3
    );
    let s: Vec<i64> = r[3]
        .clone()
        .into_array()
        .unwrap()
        .iter()
        .map(|v| v.as_int().unwrap())
        .collect();
    assert_eq!(s, vec![2, 3, 32, 32]);
}

#[test]
fn forward_frozen_gives_input_gradients_but_no_parameter_gradients() {
    set_default_dtype(DType::F64);
    let d = Net::linear(2, 1, true).unwrap();
    set(&d, "weight", &[2., -3.], &[1, 2]);
    set(&d, "bias", &[0.5], &[1]);
    let z = ganscript::autograd::variable(&t64(&[1., 2., -1., 0.5], &[2, 2])).unwrap();
    let y = d.forward_frozen(&z).unwrap();
    // 2·1 − 3·2 + 0.5 = −3.5; 2·(−1) − 3·0.5 + 0.5 = −3.
    close(&vals(&y), &[-3.5, -3.0], 1e-12);
    close(&vals(&d.forward(&z).unwrap()), &[-3.5, -3.0], 1e-12);
    let store = y.sum_all().unwrap().backward().unwrap();
    close(&vals(store.get(&z).unwrap()), &[2., -3., 2., -3.], 1e-12);
    for v in d.vars() {
        assert!(
            store.get(v.as_tensor()).is_none(),
            "a frozen forward must not give parameter gradients"
        );
    }
    // The plain forward does give them (d sum / dW = Σ_n z[n]).
    let store = d
        .forward(&z)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    close(
        &vals(store.get(d.vars()[0].as_tensor()).unwrap()),
        &[0., 2.5],
        1e-12,
    );
}

#[test]
fn forward_frozen_updates_batch_norm_statistics_like_forward() {
    set_default_dtype(DType::F64);
    let a = Net::sequential(vec![
        Net::linear(2, 2, true).unwrap(),
        Net::batch_norm(2).unwrap(),
    ]);
    let b = a.deep_copy().unwrap();
    let x = t64(&[1., 2., -1., 0.5, 3., -2.], &[3, 2]);
    let ya = a.forward(&x).unwrap();
    let yb = b.forward_frozen(&x).unwrap();
    close(&vals(&yb), &vals(&ya), 1e-12);
    let (ba, bb) = (a.named_buffers(), b.named_buffers());
    for ((na, ta), (nb, tb)) in ba.iter().zip(bb.iter()) {
        assert_eq!(na, nb);
        close(&vals(tb), &vals(ta), 1e-12);
    }
    assert_ne!(vals(&ba[0].1), vec![0.0, 0.0], "statistics must have moved");
}

#[test]
fn forward_frozen_in_a_script_leaves_the_frozen_net_alone() {
    // G's step through a frozen D changes G exactly as through D.forward. Each D is in its
    // optimizer with G: through forward it gets a gradient and moves, through forward_frozen
    // it gets none and stays.
    let r = run(r#"
        default_dtype("f64");
        seed(3);
        let D1 = linear(3, 1);
        let D2 = D1.copy();
        let G1 = linear(2, 3);
        let G2 = G1.copy();
        let g_before = G1.params()[0].to_array();
        let d_before = D1.params()[0].to_array();
        let o1 = sgd([G1, D1], 0.1);
        let o2 = sgd([G2, D2], 0.1);
        let z = randn([4, 2]);
        o1.step(D1.forward(G1.forward(z)).mean());
        o2.step(D2.forward_frozen(G2.forward(z)).mean());
        let diff = (G1.params()[0] - G2.params()[0]).abs().max().item();
        [diff, D2.params()[0].to_array() == d_before, D1.params()[0].to_array() != d_before,
         G1.params()[0].to_array() != g_before]
    "#)
    .unwrap();
    let v = r.cast::<rhai::Array>();
    assert!(v[0].as_float().unwrap() < 1e-15, "{v:?}");
    assert!(v[1].as_bool().unwrap(), "the frozen D changed: {v:?}");
    assert!(
        v[2].as_bool().unwrap(),
        "D did not move through forward: {v:?}"
    );
    assert!(v[3].as_bool().unwrap(), "G did not move: {v:?}");
}
