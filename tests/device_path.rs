//! The device path (issue 24's audit): the kernel switch, random draws from the seeded host
//! generator, data, nets and checkpoints on the current device, and one training step giving
//! the same numbers on the fast and the generic path. Run on a GPU with
//! `GANSCRIPT_TEST_DEVICE=cuda` (scripts/gpu-check.sh); on the CPU the device checks are the
//! CPU's.

mod common;

use common::{on_path, use_test_device, PATHS};
use ganscript::kernels::dispatch::Kernels;

fn eval(src: &str) -> rhai::Dynamic {
    use_test_device();
    common::eval(src)
}

fn floats(v: &rhai::Dynamic) -> Vec<f64> {
    let mut out = Vec::new();
    fn walk(v: &rhai::Dynamic, out: &mut Vec<f64>) {
        if let Some(a) = v.clone().try_cast::<rhai::Array>() {
            a.iter().for_each(|x| walk(x, out));
        } else {
            out.push(v.as_float().expect("a float"));
        }
    }
    walk(v, &mut out);
    out
}

fn device_name() -> String {
    use_test_device();
    ganscript::device::device_name(&ganscript::device::current_device())
}

/// `randn`, `rand` and a layer's initial weights are the seeded host generator's draws
/// (uploaded to the device), the same on every device and kernel path.
#[test]
fn random_draws_come_from_the_seeded_host_generator() {
    let got = eval(
        r#"
        default_dtype("f64");
        seed(7);
        let a = randn([5]);
        let b = rand([2, 2]);
        let w = linear(3, 2).params()[0];
        [a.to_array(), b.to_array(), w.to_array(), device(a), device(w)]
        "#,
    )
    .cast::<rhai::Array>();
    ganscript::rng::seed(7);
    let a = ganscript::rng::normal_vec(5, 0.0, 1.0);
    let b = ganscript::rng::uniform_vec(4, 0.0, 1.0);
    // PyTorch's default: U(±1/√fan_in) weights, drawn before the bias.
    let bound = 1.0 / 3f64.sqrt();
    let w = ganscript::rng::uniform_vec(6, -bound, bound);
    assert_eq!(floats(&got[0]), a);
    assert_eq!(floats(&got[1]), b);
    assert_eq!(floats(&got[2]), w);
    assert_eq!(got[3].clone().into_string().unwrap(), device_name());
    assert_eq!(got[4].clone().into_string().unwrap(), device_name());
}

/// Batches (gathered on a worker thread) and their labels are uploaded to the script's device,
/// not to the worker's (the current device is per thread).
#[test]
fn batches_land_on_the_current_device() {
    let got = eval(
        r#"
        let ds = mnist().take(8);
        let out = [];
        for b in labeled_batches(ds, 4, #{ shuffle: true, drop_last: true }) {
            out.push(device(b.x)); out.push(device(b.y));
        }
        for x in batches(ds, 4, #{ shuffle: false, drop_last: false }) { out.push(device(x)); }
        out.push(device(ds.sample(3)));
        out
        "#,
    )
    .cast::<rhai::Array>();
    assert_eq!(got.len(), 7);
    for d in got {
        assert_eq!(d.into_string().unwrap(), device_name());
    }
}

/// A net and an optimizer saved from the device and loaded back come back on the device with
/// the same values.
#[test]
fn saved_nets_and_optimizers_load_onto_the_current_device() {
    // Files are written in the run directory (the sandbox); run_path reads them back.
    let dir = tempfile::tempdir().unwrap();
    let in_run = ganscript::session::EngineOptions {
        out_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    use_test_device();
    let src = r#"
        default_dtype("f64");
        seed(2);
        let n = sequential([linear(3, 4), relu(), linear(4, 1)]);
        let o = adam(n, 0.01, 0.5, 0.999);
        o.step(n.forward(randn([5, 3])).sum());
        n.save("n.safetensors");
        o.save("o.safetensors");
        let m = sequential([linear(3, 4), relu(), linear(4, 1)]);
        let p = adam(m, 0.01, 0.5, 0.999);
        m.load(run_path("n.safetensors"));
        p.load(run_path("o.safetensors"));
        let x = randn([2, 3]);
        o.step(n.forward(x).sum());
        p.step(m.forward(x).sum());
        let diff = 0.0;
        for i in 0..n.params().len() { diff = max(diff, (n.params()[i] - m.params()[i]).abs().max().item()); }
        [diff, device(m.params()[0]), device(p.state()["0.m"])]
        "#;
    let got = ganscript::script::compile("test.rhai", src, &in_run)
        .map_err(|d| d.render_plain())
        .and_then(|s| s.run(&mut rhai::Scope::new()).map_err(|d| d.render_plain()))
        .unwrap_or_else(|e| panic!("script failed:\n{e}"))
        .cast::<rhai::Array>();
    assert_eq!(
        got[0].as_float().unwrap(),
        0.0,
        "the loaded copies diverged"
    );
    assert_eq!(got[1].clone().into_string().unwrap(), device_name());
    assert_eq!(got[2].clone().into_string().unwrap(), device_name());
}

/// One training step of a small conv D (batch norm, leaky ReLU, a linear head) with a gradient
/// penalty at interpolates and Adam, and of a transposed-conv G through it: the fast path
/// (custom kernels) and the generic path (candle's ops, which refuse-to-run custom kernels
/// would have failed) give the same parameters in f64.
#[test]
fn a_training_step_is_the_same_on_both_paths() {
    let script = r#"
        default_dtype("f64");
        seed(4);
        let D = sequential([conv2d(1, 4, 4, 2, 1), batch_norm(4), leaky_relu(0.2),
                            conv2d(4, 8, 3, 1, 1), relu(), flatten(), linear(8 * 4 * 4, 1)]);
        let G = sequential([linear(6, 32), reshape([2, 4, 4]), conv_transpose2d(2, 1, 4, 2, 1, 0), tanh()]);
        let od = adam(D, 0.01, 0.5, 0.999, #{ weight_decay: 0.1 });
        let og = adamax(G, 0.01, 0.5, 0.999);
        let x = rand([6, 1, 8, 8]) * 2.0 - 1.0;
        for step in 0..2 {
            let fake = G.forward(randn([6, 6])).detach();
            od.step(nsgan_d(D.forward(x), D.forward(fake)) + 10.0 * gradient_penalty(D, x, fake));
            og.step(nsgan_g(D.forward(x), D.forward_frozen(G.forward(randn([6, 6])))));
        }
        let out = [];
        for p in D.params() { out.push(p.flatten().to_array()); }
        for p in G.params() { out.push(p.flatten().to_array()); }
        out
    "#;
    let runs: Vec<Vec<f64>> = PATHS
        .iter()
        .map(|&k| on_path(k, || floats(&eval(script))))
        .collect();
    assert_eq!(runs[0].len(), runs[1].len());
    let mut worst = 0f64;
    for (a, b) in runs[0].iter().zip(&runs[1]) {
        worst = worst.max((a - b).abs() / (1.0 + b.abs()));
    }
    assert!(worst < 1e-9, "fast and generic paths differ by {worst}");
    // The step did something: the parameters are not the initial ones.
    let init = on_path(Kernels::Generic, || {
        floats(&eval(
            r#"
            default_dtype("f64");
            seed(4);
            let D = sequential([conv2d(1, 4, 4, 2, 1), batch_norm(4), leaky_relu(0.2),
                                conv2d(4, 8, 3, 1, 1), relu(), flatten(), linear(8 * 4 * 4, 1)]);
            let G = sequential([linear(6, 32), reshape([2, 4, 4]), conv_transpose2d(2, 1, 4, 2, 1, 0), tanh()]);
            let out = [];
            for p in D.params() { out.push(p.flatten().to_array()); }
            for p in G.params() { out.push(p.flatten().to_array()); }
            out
            "#,
        ))
    });
    let moved = init
        .iter()
        .zip(&runs[0])
        .filter(|(a, b)| (*a - *b).abs() > 1e-4)
        .count();
    assert!(
        moved * 2 > init.len(),
        "only {moved} of {} moved",
        init.len()
    );
}

/// In generic mode a custom kernel that runs anyway is an error naming it (as on a GPU, where
/// it has no implementation), not a silent CPU fallback.
#[test]
fn a_custom_kernel_on_the_generic_path_is_an_error() {
    use candle_core::{Device, Tensor};
    let x = Tensor::ones((2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let w = Tensor::ones((4, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    // Made on the fast path, its forward pass run on the generic one: the kernel refuses.
    let fast = on_path(Kernels::Fast, || {
        ganscript::kernels::matmul::mm(&x, false, &w, true)
    });
    assert_eq!(fast.unwrap().dims(), [2, 4]);
    let e = on_path(Kernels::Generic, || {
        ganscript::kernels::dispatch::check_kernel("matmul").unwrap_err()
    });
    assert!(
        e.to_string().contains("matmul") && e.to_string().contains("generic"),
        "{e}"
    );
    // The ops themselves take candle's path in generic mode.
    let y = on_path(Kernels::Generic, || {
        ganscript::kernels::matmul::mm(&x, false, &w, true)
    });
    assert_eq!(y.unwrap().to_vec2::<f32>().unwrap(), vec![vec![3f32; 4]; 2]);
}

/// An unknown GANSCRIPT_KERNELS is a clear error before anything runs.
#[test]
fn an_unknown_kernel_setting_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(&script, "print(1 + 1);").unwrap();
    let out = common::command()
        .args(["run", script.to_str().unwrap(), "--out"])
        .arg(dir.path().join("run"))
        .env("GANSCRIPT_KERNELS", "gpu")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("GANSCRIPT_KERNELS=gpu") && err.contains("generic"),
        "{err}"
    );
    let out = common::command()
        .args(["run", script.to_str().unwrap(), "--out"])
        .arg(dir.path().join("run2"))
        .env("GANSCRIPT_KERNELS", "generic")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}
