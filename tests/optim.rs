//! Optimizers: the oracle's PyTorch trajectories (through the script API), parameters without a
//! gradient left alone, state round trips, and small training sanity checks.

mod common;

use ganscript::kernels::dispatch::Kernels;
use ganscript::{new_engine, EngineOptions};
use rhai::{Array, Dynamic, Engine, Map, Scope};
use serde_json::Value;

fn engine() -> Engine {
    new_engine(&EngineOptions::default()).expect("engine").0
}

fn run(src: &str) -> Result<Dynamic, String> {
    let e = engine();
    let mut scope = Scope::new();
    e.eval_with_scope::<Dynamic>(&mut scope, src)
        .map_err(|e| e.to_string())
}

/// `{"shape": [...], "data": [...]}` → a rhai value `#{shape: [...], data: [...]}`.
fn tensor_value(v: &Value) -> Dynamic {
    let shape: Array = v["shape"]
        .as_array()
        .expect("shape")
        .iter()
        .map(|d| Dynamic::from_int(d.as_i64().expect("dim")))
        .collect();
    let data: Array = v["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| Dynamic::from_float(d.as_f64().expect("number")))
        .collect();
    let mut m = Map::new();
    m.insert("shape".into(), Dynamic::from_array(shape));
    m.insert("data".into(), Dynamic::from_array(data));
    Dynamic::from_map(m)
}

fn flat(v: &Value) -> Vec<f64> {
    v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_f64().unwrap())
        .collect()
}

/// Runs `ctor` (an optimizer of `[p]`) from `p0` through `grads` with `step_grads`, on the kernel
/// path `path`, in `dtype`; the parameter after each step.
fn trajectory(
    ctor: &str,
    p0: &Value,
    grads: &[Value],
    path: Kernels,
    dtype: &str,
) -> Result<Vec<Vec<f64>>, String> {
    common::use_test_device();
    let e = engine();
    let mut scope = Scope::new();
    scope.push("p0", tensor_value(p0));
    let gs: Array = grads.iter().map(tensor_value).collect();
    scope.push("gs", gs);
    let script = format!(
        r#"
        default_dtype("{dtype}");
        fn mk(v) {{ tensor(v.data).reshape(v.shape) }}
        let p = variable(mk(p0));
        let opt = {ctor};
        let out = [];
        for g in gs {{
            opt.step_grads([mk(g)]);
            out.push(p.flatten().to_array());
        }}
        out
    "#
    );
    let out = common::on_path(path, || e.eval_with_scope::<Array>(&mut scope, &script))
        .map_err(|err| format!("{err}\n{script}"))?;
    Ok(out
        .into_iter()
        .map(|step| {
            step.into_array()
                .unwrap()
                .iter()
                .map(|x| x.as_float().unwrap())
                .collect()
        })
        .collect())
}

/// Compares a trajectory with the expected parameters after each step (`|got − want| ≤
/// rel·|want| + abs`).
fn check_trajectory(what: &str, got: &[Vec<f64>], want: &[Vec<f64>], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: number of steps");
    for (step, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.len(), w.len(), "{what} step {step}: sizes");
        for (i, (a, b)) in g.iter().zip(w).enumerate() {
            assert!(
                (a - b).abs() <= rel * b.abs() + abs,
                "{what} step {step} [{i}]: got {a:e}, want {b:e}"
            );
        }
    }
}

/// The oracle's PyTorch trajectories, on both kernel paths (Adam and Adamax run as fused
/// in-place passes on the fast path and as candle ops on the generic one).
#[test]
fn optimizers_match_the_oracle() {
    let mut cases = 0;
    for (file, json) in common::oracle_files() {
        let Some(list) = json.get("optimizers").and_then(|v| v.as_array()) else {
            continue;
        };
        for (ci, case) in list.iter().enumerate() {
            let name = case["optimizer"].as_str().unwrap();
            let h = &case["hyper"];
            let hyper = |k: &str| h[k].as_f64().unwrap_or_else(|| panic!("{name}: {k}"));
            let ctor = match name {
                "adam" => format!(
                    "adam([p], {:e}, {:e}, {:e}, #{{ eps: {:e} }})",
                    hyper("lr"),
                    hyper("beta1"),
                    hyper("beta2"),
                    hyper("eps")
                ),
                "adamax" => {
                    let eps = hyper("eps");
                    format!(
                        "adamax([p], {:e}, {:e}, {:e}, #{{ eps: {eps:e} }})",
                        hyper("lr"),
                        hyper("beta1"),
                        hyper("beta2")
                    )
                }
                "rmsprop" => format!(
                    "rmsprop([p], {:e}, {:e}, {:e})",
                    hyper("lr"),
                    hyper("alpha"),
                    hyper("eps")
                ),
                "sgd" => format!("sgd([p], {:e}, {:e})", hyper("lr"), hyper("momentum")),
                other => panic!("unknown optimizer {other} in the oracle"),
            };
            let grads = case["grads"].as_array().unwrap();
            let want: Vec<Vec<f64>> = case["after_each_step"]
                .as_array()
                .unwrap()
                .iter()
                .map(flat)
                .collect();
            for path in common::PATHS {
                let what = format!("{file} {name} case {ci} ({} path)", path.name());
                let got = trajectory(&ctor, &case["p0"], grads, path, "f64")
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                check_trajectory(&what, &got, &want, 1e-6, 1e-12);
            }
            cases += 1;
        }
    }
    assert!(cases >= 5, "only {cases} optimizer cases found");
}

/// PyTorch's `torch.optim.Adam` and `torch.optim.Adamax` (single-tensor, non-AMSGrad), step by
/// step in f64, written from PyTorch's update code independently of ganscript's: weight decay
/// adds `wd·p` to the gradient; `exp_avg.lerp_(g, 1 − β1)`; Adam's `exp_avg_sq`, Adamax's
/// `exp_inf = max(β2·exp_inf, |g| + eps)`; step `lr / (1 − β1ᵗ)` (Adamax without bias
/// correction: `lr`, the Adamax of MAGAN's official code).
fn pytorch_reference(
    adam: bool,
    [lr, b1, b2, eps, wd]: [f64; 5],
    bias_correction: bool,
    p0: &[f64],
    grads: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let mut p = p0.to_vec();
    let (mut m, mut v) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut out = Vec::new();
    for (t, g) in grads.iter().enumerate() {
        let t = (t + 1) as i32;
        for i in 0..p.len() {
            let g = g[i] + wd * p[i];
            m[i] += (g - m[i]) * (1.0 - b1);
            if adam {
                v[i] = v[i] * b2 + (1.0 - b2) * g * g;
                let denom = v[i].sqrt() / (1.0 - b2.powi(t)).sqrt() + eps;
                p[i] -= lr / (1.0 - b1.powi(t)) * m[i] / denom;
            } else {
                v[i] = (v[i] * b2).max(g.abs() + eps);
                let clr = if bias_correction {
                    lr / (1.0 - b1.powi(t))
                } else {
                    lr
                };
                p[i] -= clr * m[i] / v[i];
            }
        }
        out.push(p.clone());
    }
    out
}

fn json_tensor(shape: &[usize], data: &[f64]) -> Value {
    serde_json::json!({ "shape": shape, "data": data })
}

/// Adam and Adamax with weight decay (and Adamax without bias correction) against
/// [`pytorch_reference`], on both kernel paths, in f64 and f32: a small parameter with exact
/// zeros in the gradients and a sign change, and one large enough that the fused passes cut it
/// into pieces.
#[test]
fn adam_and_adamax_with_weight_decay_match_pytorchs_updates_on_both_paths() {
    let mut checked = 0;
    for n in [6usize, 5000] {
        let p0: Vec<f64> = (0..n).map(|i| ((i * 7 % 11) as f64 - 5.0) * 0.3).collect();
        let grads: Vec<Vec<f64>> = (0..5)
            .map(|t| {
                (0..n)
                    .map(|i| match (i + t) % 6 {
                        0 => 0.0,
                        k => ((i * 13 + t * 5) as f64).sin() * 2f64.powi(k as i32 - 3),
                    })
                    .collect()
            })
            .collect();
        let gv: Vec<Value> = grads.iter().map(|g| json_tensor(&[n], g)).collect();
        let p0v = json_tensor(&[n], &p0);
        for (adam, wd, bc) in [
            (true, 0.1, true),
            (true, 1.0, true),
            (false, 0.1, true),
            (false, 1.0, true),
            (false, 0.5, false),
            (false, 0.0, false),
        ] {
            let (lr, b1, b2, eps) = (2e-3, 0.5, 0.9, 1e-8);
            let ctor = if adam {
                format!(
                    "adam([p], {lr:e}, {b1:e}, {b2:e}, #{{ eps: {eps:e}, weight_decay: {wd:e} }})"
                )
            } else {
                format!(
                    "adamax([p], {lr:e}, {b1:e}, {b2:e}, #{{ eps: {eps:e}, weight_decay: {wd:e}, bias_correction: {bc} }})"
                )
            };
            let want = pytorch_reference(adam, [lr, b1, b2, eps, wd], bc, &p0, &grads);
            // The update moves p by about lr per step: a tolerance well below it.
            for path in common::PATHS {
                for (dtype, rel, abs) in [("f64", 1e-12, 1e-14), ("f32", 1e-6, 1e-6)] {
                    let what = format!("{ctor} n={n} ({} path, {dtype})", path.name());
                    let got = trajectory(&ctor, &p0v, &gv, path, dtype)
                        .unwrap_or_else(|e| panic!("{what}: {e}"));
                    check_trajectory(&what, &got, &want, rel, abs);
                    checked += 1;
                }
            }
            // Weight decay matters here: without it the trajectory is elsewhere.
            if wd > 0.0 {
                let plain = pytorch_reference(adam, [lr, b1, b2, eps, 0.0], bc, &p0, &grads);
                let moved = plain[4]
                    .iter()
                    .zip(&want[4])
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f64::max);
                assert!(moved > 1e-4, "weight decay {wd} changes little: {moved}");
            }
        }
    }
    assert_eq!(checked, 2 * 6 * 2 * 2);
}

#[test]
fn step_updates_only_parameters_with_gradients() {
    let r = run(r#"
        default_dtype("f64");
        let a = variable(tensor([1.0, 2.0]));
        let b = variable(tensor([5.0]));
        let other = variable(tensor([7.0]));
        let opt = sgd([a, b], 0.1, 0.0);
        let loss = (a * a).sum() + other.sum();
        opt.step(loss);
        [a.to_array(), b.to_array(), other.to_array()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    let v = |d: &Dynamic| -> Vec<f64> {
        d.clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect()
    };
    assert_eq!(v(&r[0]), vec![0.8, 1.6]);
    assert_eq!(v(&r[1]), vec![5.0]);
    assert_eq!(v(&r[2]), vec![7.0]);
}

#[test]
fn adam_weight_decay_and_lr_property() {
    // One Adam step moves every parameter by lr·sign(g) (bias correction); with weight decay
    // the gradient is g + wd·p.
    let r = run(r#"
        default_dtype("f64");
        let p = variable(tensor([1.0, -2.0]));
        let opt = adam([p], 0.5, 0.9, 0.999, #{ weight_decay: 1.0, eps: 0.0 });
        opt.lr = 0.25;
        let lr = opt.lr;
        // g = [-2, 0] + wd·p = [-1, -2]: both move up by lr.
        opt.step_grads([tensor([-2.0, 0.0])]);
        [lr, p.to_array()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert_eq!(r[0].as_float().unwrap(), 0.25);
    let p: Vec<f64> = r[1]
        .clone()
        .into_array()
        .unwrap()
        .iter()
        .map(|x| x.as_float().unwrap())
        .collect();
    assert!(
        (p[0] - 1.25).abs() < 1e-12 && (p[1] + 1.75).abs() < 1e-12,
        "{p:?}"
    );
    let e =
        run("adam([variable(zeros([2]))], 0.1, 0.5, 0.999, #{ eps: 1e-8, wd: 1.0 })").unwrap_err();
    assert!(e.contains("unknown option \"wd\""), "{e}");
    let e = run("adam([zeros([2])], 0.1, 0.5, 0.999)").unwrap_err();
    assert!(e.contains("not a variable"), "{e}");
    let e = run("let o = sgd([variable(zeros([2]))], 0.1, 0.9); o.step_grads([zeros([3])])")
        .unwrap_err();
    assert!(e.contains("shape [3]") && e.contains("[2]"), "{e}");
}

#[test]
fn state_round_trip_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // Files are written in the run directory; run_path gives the path to read one back.
    let in_run = EngineOptions {
        out_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let run = |src: &str| {
        ganscript::new_engine(&in_run)
            .unwrap()
            .0
            .eval::<Dynamic>(src)
            .map_err(|e| e.to_string())
    };
    let path = "opt.safetensors";
    // Two identical runs; the second saves its optimizer after 3 steps into a fresh optimizer
    // and continues with it: the trajectories must match bit for bit.
    let r = run(&format!(
        r#"
        default_dtype("f64");
        let gs = [];
        for i in 0..6 {{ gs.push(tensor([sin(i * 1.0), cos(i * 2.0), i * 0.1 - 0.2])); }}
        let p1 = variable(tensor([0.5, -0.5, 1.0]));
        let o1 = adamax([p1], 0.01, 0.5, 0.999);
        for g in gs {{ o1.step_grads([g]); }}
        let p2 = variable(tensor([0.5, -0.5, 1.0]));
        let o2 = adamax([p2], 0.01, 0.5, 0.999);
        for i in 0..3 {{ o2.step_grads([gs[i]]); }}
        o2.save("{path}");
        let o3 = adamax([p2], 0.02, 0.5, 0.999);
        o3.load(run_path("{path}"));
        let st = o3.state();
        for i in 3..6 {{ o3.step_grads([gs[i]]); }}
        [(p1 - p2).abs().max().item(), o3.lr, st["0.step"].item(), st.keys().len()]
    "#
    ))
    .unwrap()
    .into_array()
    .unwrap();
    assert_eq!(r[0].as_float().unwrap(), 0.0);
    assert_eq!(r[1].as_float().unwrap(), 0.01);
    assert_eq!(r[2].as_float().unwrap(), 3.0);
    assert_eq!(r[3].as_int().unwrap(), 4);
    let e = run(&format!(
        r#"let o = adamax([variable(zeros([2]))], 0.01, 0.5, 0.999); o.load(run_path("{path}"))"#
    ))
    .unwrap_err();
    assert!(
        e.contains("opt.safetensors") && e.contains("\"0.m\""),
        "{e}"
    );
}

#[test]
fn adam_fits_a_linear_regression_and_an_mlp_fits_xor() {
    let r = run(r#"
        seed(1);
        let x = randn([64, 3]);
        let w = tensor([[1.5], [-2.0], [0.5]]);
        let y = x.matmul(w) + 0.3;
        let net = linear(3, 1);
        let opt = adam(net, 0.05, 0.9, 0.999);
        let first = 0.0;
        let last = 0.0;
        for i in 0..200 {
            let loss = ((net.forward(x) - y) * (net.forward(x) - y)).mean();
            if i == 0 { first = loss.item(); }
            last = loss.item();
            opt.step(loss);
        }
        let xs = tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]);
        let ys = tensor([[0.0], [1.0], [1.0], [0.0]]);
        let mlp = sequential([linear(2, 16), tanh(), linear(16, 1), sigmoid()]);
        let o2 = adam(mlp.params(), 0.05, 0.9, 0.999);
        for i in 0..300 {
            let d = mlp.forward(xs) - ys;
            o2.step((d * d).mean());
        }
        [first, last, mlp.forward(xs).flatten().to_array()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    let first = r[0].as_float().unwrap();
    let last = r[1].as_float().unwrap();
    assert!(last * 10.0 < first, "loss {first} → {last}");
    let out: Vec<f64> = r[2]
        .clone()
        .into_array()
        .unwrap()
        .iter()
        .map(|x| x.as_float().unwrap())
        .collect();
    for (o, t) in out.iter().zip([0.0, 1.0, 1.0, 0.0]) {
        assert!((o - t).abs() < 0.2, "XOR outputs {out:?}");
    }
}

#[test]
fn step_on_a_gradient_penalty_uses_its_second_order_gradient() {
    // opt.step computes its (first-order) backward pass where candle frees gradients as it
    // goes; a loss holding a gradient penalty must still get the double-backprop gradient:
    // one SGD step (lr 1) equals p − grads(loss, [p]) computed with `grads`.
    let r = run(r#"
        default_dtype("f64");
        seed(5);
        let D = sequential([linear(3, 4), leaky_relu(0.2), linear(4, 1)]);
        let real = randn([5, 3]);
        let fake = randn([5, 3]);
        let u = rand([5]);
        let loss = || nsgan_d(D.forward(real), D.forward(fake))
            + 10.0 * gradient_penalty(|x| D.forward(x), real, fake, #{ u: u });
        let ps = D.params();
        let g = grads(loss.call(), ps);
        let want = [];
        for i in 0..ps.len() { want.push((ps[i] - g[i]).detach()); }
        sgd(D, 1.0).step(loss.call());
        let worst = 0.0;
        let after = D.params();
        for i in 0..ps.len() {
            worst = max(worst, (after[i] - want[i]).abs().max().item());
        }
        // The penalty's own gradient is not zero (so a first-order-only step would differ).
        let gp_only = grads(gradient_penalty(|x| D.forward(x), real, fake, #{ u: u }), [D.params()[0]]);
        [worst, gp_only[0].abs().max().item()]
    "#)
    .unwrap();
    let v = r.cast::<Array>();
    assert!(v[0].as_float().unwrap() < 1e-12, "{v:?}");
    assert!(v[1].as_float().unwrap() > 1e-6, "{v:?}");
}

/// `opt.state()` is a snapshot: later steps do not change the tensors it returned, on either
/// path (the fast path updates the moments in place).
#[test]
fn state_is_a_snapshot_on_both_paths() {
    for path in common::PATHS {
        let r = common::on_path(path, || {
            run(r#"
                default_dtype("f64");
                let p = variable(tensor([1.0, -2.0, 3.0]));
                let opt = adam([p], 0.1, 0.9, 0.999);
                opt.step_grads([tensor([0.5, -1.0, 2.0])]);
                let st = opt.state();
                let m = st["0.m"].to_array();
                let v = st["0.v"].to_array();
                opt.step_grads([tensor([3.0, 1.0, -4.0])]);
                [st["0.m"].to_array() == m, st["0.v"].to_array() == v, opt.state()["0.m"].to_array() != m]
            "#)
        })
        .unwrap()
        .into_array()
        .unwrap();
        let flags: Vec<bool> = r.iter().map(|b| b.as_bool().unwrap()).collect();
        assert_eq!(flags, [true, true, true], "{} path", path.name());
    }
}

/// The checks the mutation run found untested: a learning rate of 0 is allowed (and moves
/// nothing), `params()` lists the optimizer's variables, a one-element loss of any rank steps
/// like its scalar while a larger one is refused, and a state whose step is not a count is
/// refused.
#[test]
fn optimizer_edges_lr_zero_params_loss_shapes_and_step_counts() {
    let r = run(r#"
        default_dtype("f64");
        let w = variable(tensor([1.0, -2.0]));
        let b = variable(tensor([0.5]));
        let o = sgd([w, b], 0.0);
        o.step((w * w).sum() + b.sum());
        let ps = o.params();
        [w.to_array(), ps.len(), (ps[0] - w).abs().max().item(), (ps[1] - b).abs().max().item()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert_eq!(
        r[0].clone()
            .into_array()
            .unwrap()
            .iter()
            .map(|x| x.as_float().unwrap())
            .collect::<Vec<_>>(),
        [1.0, -2.0]
    );
    assert_eq!(r[1].as_int().unwrap(), 2);
    assert_eq!(r[2].as_float().unwrap(), 0.0);
    assert_eq!(r[3].as_float().unwrap(), 0.0);

    // A [1, 1] loss steps exactly as its scalar; a [2] loss is refused.
    let r = run(r#"
        default_dtype("f64");
        let a = variable(tensor([1.0, 3.0]));
        let b = variable(tensor([1.0, 3.0]));
        sgd([a], 0.1).step((a * a).sum());
        sgd([b], 0.1).step((b * b).sum().reshape([1, 1]));
        [(a - b).abs().max().item(), a.to_array()[1]]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert_eq!(r[0].as_float().unwrap(), 0.0);
    assert!((r[1].as_float().unwrap() - 2.4).abs() < 1e-12);
    let e = run(r#"let a = variable(tensor([1.0, 3.0])); sgd([a], 0.1).step(a * a)"#).unwrap_err();
    assert!(e.contains("scalar"), "{e}");

    // load_state: a parameter that never had a gradient is saved at step 0, which loads.
    let r = run(r#"
        let w = variable(tensor([1.0, 2.0]));
        let unused = variable(tensor([3.0]));
        let o = adam([w, unused], 0.1, 0.9, 0.999);
        o.step((w * w).sum());
        let st = o.state();
        let fresh = adam([w, unused], 0.1, 0.9, 0.999);
        fresh.load_state(st);
        [st["1.step"].item(), fresh.state()["0.step"].item()]
    "#)
    .unwrap()
    .into_array()
    .unwrap();
    assert_eq!(r[0].as_float().unwrap(), 0.0);
    assert_eq!(r[1].as_float().unwrap(), 1.0);
    // load_state: the step of each parameter must be a whole number >= 0.
    for bad in ["-1.0", "1.5"] {
        let e = run(&format!(
            r#"
            let w = variable(tensor([1.0, 2.0]));
            let o = adam([w], 0.1, 0.9, 0.999);
            o.step((w * w).sum());
            let st = o.state();
            st["0.step"] = tensor([{bad}]);
            o.load_state(st)"#
        ))
        .unwrap_err();
        assert!(e.contains("must be a count"), "{bad}: {e}");
    }
}

/// RMSprop divides by √v + eps (PyTorch), checked with an eps large enough to matter: one step
/// from x = 1 with g = 2x = 2, alpha 0.9, eps 0.5: v = 0.1·4 = 0.4, x ← 1 − lr·2/(√0.4 + 0.5).
#[test]
fn rmsprop_adds_eps_after_the_root() {
    for k in common::PATHS {
        let got = common::on_path(k, || {
            run(r#"
                default_dtype("f64");
                let x = variable(tensor([1.0]));
                rmsprop([x], 0.1, 0.9, 0.5).step((x * x).sum());
                x.item()
            "#)
            .unwrap()
            .as_float()
            .unwrap()
        });
        let want = 1.0 - 0.1 * 2.0 / (0.4f64.sqrt() + 0.5);
        assert!((got - want).abs() < 1e-12, "{k:?}: {got} vs {want}");
    }
}
