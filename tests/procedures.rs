//! The papers' procedures as the shipped scripts run them (issue 20): MAGAN's S_z from the
//! generator step, the official maximum-margin losses, Roth et al.'s official 3-D mixture and
//! instance noise, the expected-margin script, and the building blocks they use (prettytensor's
//! He init, Adamax without bias correction, DCGAN options, random batches).

mod common;

use candle_core::{DType, Device, Tensor};
use common::{eval_f64, eval_vec};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

fn run_ok(args: &[&str]) -> String {
    let o = common::ganscript(args);
    assert!(
        o.status.success(),
        "ganscript {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn rows(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn num(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("no number `{k}` in {v}"))
}

/// The epoch loop's batch, replayed from the checkpoint MAGAN writes after pre-training: the D
/// step on the real batch and a fake batch, then the G step's batch measured by the updated D.
const MAGAN_REPLAY: &str = r#"
let data = mnist().take(32);
let D = magan_mnist_d();
let G = magan_mnist_g(50);
let opt_d = adamax(D, 5e-4, 0.5, 0.999);
let opt_g = adamax(G, 5e-4, 0.5, 0.999);
track("D", D); track("G", G); track("opt_d", opt_d); track("opt_g", opt_g);
let st = resume_state(#{ epoch: 0, pretrained: false, margin: magan_margin() });
// The energy Σ (D(x) − x)² and D's loss E(x) + [m − E(G(z))]⁺ from tensor primitives (not
// ganscript's energy and ebgan_d_loss), so that a mistake in those shows.
fn e(D, x) { (D.forward(x) - x).sqr().flatten(1).sum(1) }
for x in batches(data, 32, #{ shuffle: true, drop_last: true }) {
    let e_real = e(D, x);
    let fake = G.forward(randn([32, 50])).detach();
    let e_fake = e(D, fake);
    opt_d.step(e_real.mean() + (st.margin.margin - e_fake).relu().mean());
    let gen = G.forward(randn([32, 50]));
    let e_gen = e(D, gen);
    log(#{ e_x: e_real.mean().item(), d_step: e_fake.mean().item(), g_step: e_gen.mean().item() });
}
"#;

/// MAGAN's S_z is the sum of the generator step's energies, measured by the D just updated
/// (Algorithm 1, lines 19–21): one batch per epoch, the logged E_z equals the replayed G-step
/// mean and differs from the D step's; the margin rule decides from the logged sums as
/// Algorithm 1's line 23 does by hand.
#[test]
fn magan_margin_rule_sees_the_generator_steps_energies() {
    let tmp = tempfile::tempdir().unwrap();
    let (pre, full) = (tmp.path().join("pre"), tmp.path().join("full"));
    let common_sets = [
        "--set",
        "limit=32",
        "--set",
        "batch=32",
        "--set",
        "pretrain_epochs=1",
    ];
    let magan = script("magan.rhai");
    let magan = magan.to_str().unwrap();
    let mut a = vec![
        "run",
        magan,
        "--seed",
        "3",
        "--out",
        pre.to_str().unwrap(),
        "--set",
        "epochs=0",
    ];
    a.extend(common_sets);
    run_ok(&a);
    let mut a = vec![
        "run",
        magan,
        "--seed",
        "3",
        "--out",
        full.to_str().unwrap(),
        "--set",
        "epochs=3",
    ];
    a.extend(common_sets);
    run_ok(&a);

    let replay = tmp.path().join("replay.rhai");
    std::fs::write(&replay, MAGAN_REPLAY).unwrap();
    run_ok(&[
        "run",
        replay.to_str().unwrap(),
        "--resume",
        pre.to_str().unwrap(),
        "--force-script",
    ]);
    let r = rows(&pre);
    let m = rows(&full);
    assert_eq!((r.len(), m.len()), (1, 3));
    let (e_x, e_z) = (num(&m[0], "e_x"), num(&m[0], "e_z"));
    assert!(
        (e_x - num(&r[0], "e_x")).abs() <= 1e-5 * e_x,
        "E_x {e_x} vs replay {}",
        r[0]
    );
    assert!(
        (e_z - num(&r[0], "g_step")).abs() <= 1e-5 * e_z,
        "E_z {e_z} vs replay {}",
        r[0]
    );
    assert!(
        (e_z - num(&r[0], "d_step")).abs() > 1e-3 * e_z,
        "E_z is the D step's: {}",
        r[0]
    );

    // Line 23 by hand, from the logged means (S/N) and the margin before each epoch.
    let mut margin = num(&m[0], "margin");
    for t in 1..m.len() {
        let (ex, ez, ez_prev) = (num(&m[t], "e_x"), num(&m[t], "e_z"), num(&m[t - 1], "e_z"));
        let lower = ex < margin && ex < ez && ez_prev < ez;
        assert_eq!(
            m[t]["margin_updated"].as_bool(),
            Some(lower),
            "epoch {}: {}",
            t + 1,
            m[t]
        );
        if lower {
            margin = ex;
        }
        assert!(
            (num(&m[t], "margin") - margin).abs() <= 1e-9 * margin,
            "{}",
            m[t]
        );
    }
    assert_eq!(
        m[0]["margin_updated"].as_bool(),
        Some(false),
        "S_z^0 = ∞: no update in epoch 1"
    );
}

/// maxmargin.rhai's D losses are the official code's (Code/GAN.py): the native relativistic
/// losses, with the RpHinge loss doubled (`2*torch.mean(...)`); checked against the formulas on
/// hand-picked logits.
#[test]
fn maxmargin_d_losses_are_the_official_ones() {
    let text = std::fs::read_to_string(script("maxmargin.rhai")).unwrap();
    let s = ganscript::script::compile("maxmargin.rhai", &text, &Default::default()).unwrap();
    let dr = [1.5f64, -0.2, 0.3, 2.0];
    let df = [0.1f64, 0.4, -1.0, 1.7];
    let t = |v: &[f64]| ganscript::tensor::Tensor(Tensor::new(v, &Device::Cpu).unwrap());
    let call = |kind: &str| -> f64 {
        let mut scope = rhai::Scope::new();
        let opts = rhai::CallFnOptions::new().eval_ast(false);
        let v: ganscript::tensor::Tensor = s
            .engine
            .call_fn_with_options(
                opts,
                &mut scope,
                &s.ast,
                "official_d_loss",
                (kind.to_string(), t(&dr), t(&df)),
            )
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        v.0.to_dtype(DType::F64)
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let relu = |x: f64| x.max(0.0);
    let sp = |x: f64| (1.0 + x.exp()).ln();
    let (mr, mf) = (mean(&dr), mean(&df));
    let pairs = |f: &dyn Fn(f64, f64) -> f64| {
        mean(
            &dr.iter()
                .zip(&df)
                .map(|(&r, &g)| f(r, g))
                .collect::<Vec<_>>(),
        )
    };
    let each =
        |v: &[f64], f: &dyn Fn(f64) -> f64| mean(&v.iter().map(|&x| f(x)).collect::<Vec<_>>());
    let want = [
        (
            "hinge",
            each(&dr, &|r| relu(1.0 - r)) + each(&df, &|g| relu(1.0 + g)),
        ),
        ("rphinge", 2.0 * pairs(&|r, g| relu(1.0 - (r - g)))),
        (
            "rahinge",
            each(&dr, &|r| relu(1.0 - (r - mf))) + each(&df, &|g| relu(1.0 + (g - mr))),
        ),
        (
            "rasgan",
            each(&dr, &|r| sp(-(r - mf))) + each(&df, &|g| sp(g - mr)),
        ),
        (
            "lsgan",
            each(&dr, &|r| (r - 1.0).powi(2)) + each(&df, &|g| g * g),
        ),
        ("wgan", mf - mr),
    ];
    for (kind, w) in want {
        let got = call(kind);
        assert!((got - w).abs() < 1e-12, "{kind}: {got} vs {w}");
    }
}

/// The official 3-D embedding (3DGAN.py): the centres lie on the unit circle around
/// (1, 1, 1)/√3 in the plane through it whose normal is e3 rotated by π/4 about (1, −1, 0)/√2
/// (computed here from a quaternion), 2π/7 apart; every sample lies on that plane.
#[test]
fn official_mixture_lies_on_the_rotated_circle() {
    use ganscript::data::mixtures::{roth_mixture3d, Embedding};
    let ds = roth_mixture3d(2000, Embedding::Official, 0.01).unwrap();
    // The row-vector convention p·R rotates by −θ about the axis: the quaternion of −π/4.
    let (h, s2) = (-std::f64::consts::PI / 8.0, 1.0 / 2f64.sqrt());
    let (w, x, y, z) = (h.cos(), h.sin() * s2, -h.sin() * s2, 0.0);
    let rot = |v: [f64; 3]| -> [f64; 3] {
        // q v q*
        let m = [
            [
                1.0 - 2.0 * (y * y + z * z),
                2.0 * (x * y - w * z),
                2.0 * (x * z + w * y),
            ],
            [
                2.0 * (x * y + w * z),
                1.0 - 2.0 * (x * x + z * z),
                2.0 * (y * z - w * x),
            ],
            [
                2.0 * (x * z - w * y),
                2.0 * (y * z + w * x),
                1.0 - 2.0 * (x * x + y * y),
            ],
        ];
        std::array::from_fn(|i| (0..3).map(|j| m[i][j] * v[j]).sum())
    };
    let normal = rot([0.0, 0.0, 1.0]);
    let c = 1.0 / 3f64.sqrt();
    let (centers, _) = ds.centers.clone().unwrap();
    let rel: Vec<[f64; 3]> = centers
        .chunks(3)
        .map(|p| std::array::from_fn(|i| p[i] as f64 - c))
        .collect();
    let dot = |a: &[f64; 3], b: &[f64; 3]| (0..3).map(|i| a[i] * b[i]).sum::<f64>();
    for (k, p) in rel.iter().enumerate() {
        assert!(dot(p, &normal).abs() < 1e-6, "centre {k} is off the plane");
        assert!(
            (dot(p, p).sqrt() - 1.0).abs() < 1e-6,
            "centre {k} is off the unit circle"
        );
        let q = &rel[(k + 1) % 7];
        let angle = dot(p, q).clamp(-1.0, 1.0).acos();
        assert!(
            (angle - 2.0 * std::f64::consts::PI / 7.0).abs() < 1e-5,
            "centres {k}, {}: {angle}",
            k + 1
        );
        // centre k is the image of (sin 2πk/7, cos 2πk/7, 0)
        let a = 2.0 * std::f64::consts::PI * k as f64 / 7.0;
        let want = rot([a.sin(), a.cos(), 0.0]);
        assert!(
            (0..3).all(|i| (p[i] - want[i]).abs() < 1e-6),
            "centre {k}: {p:?} vs {want:?}"
        );
    }
    for r in ds.data.chunks(3) {
        let p: [f64; 3] = std::array::from_fn(|i| r[i] as f64 - c);
        assert!(dot(&p, &normal).abs() < 1e-5, "a sample is off the plane");
    }
}

/// instance_noise(x, σ) adds N(0, σ²) from the seeded generator: the same values as its script
/// twin in tests/reference/penalties.rhai; σ = 0 returns x and draws nothing; the noise has std σ;
/// gradients flow to x; a negative σ is an error.
#[test]
fn instance_noise_and_its_twin() {
    let v = eval_vec(
        r#"import "penalties" as gp;
        let x = randn([400, 5]);
        seed(9); let a = instance_noise(x, 0.3);
        seed(9); let b = gp::instance_noise(x, 0.3);
        seed(9); let c = instance_noise(x, 0.0); let after_zero = randn([3]);
        seed(9); let plain = randn([3]);
        let xv = variable(x);
        let g = grad(instance_noise(xv, 2.0).sum(), xv);
        [(a - b).abs().max().item(), (c - x).abs().max().item(), (after_zero - plain).abs().max().item(),
         (a - x).std().item(), (a - x).mean().item(), (g - 1.0).abs().max().item()]"#,
    );
    assert_eq!(&v[..3], &[0.0, 0.0, 0.0], "{v:?}");
    assert!((v[3] - 0.3).abs() < 0.015, "std {}", v[3]);
    assert!(v[4].abs() < 0.03, "mean {}", v[4]);
    assert_eq!(v[5], 0.0);
    let e = common::try_eval("instance_noise(zeros([2]), -1.0)").unwrap_err();
    assert!(e.contains("sigma must be"), "{e}");
}

/// expected_margin.rhai in a tiny configuration: one row per configuration with the keys the
/// report reads; the margin search ends on the boundary, and every sample's margin agrees with
/// the grid measurement (an independent method, exact to about its step of 0.42) to 0.5.
#[test]
fn expected_margin_smoke() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("em");
    run_ok(&[
        "run",
        script("expected_margin.rhai").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        "n=200",
        "--set",
        "iters=1500",
        "--set",
        "eval=32",
        "--set",
        "width=16",
        "--set",
        "penalties=none,l2-hinge",
        "--set",
        "grid=120",
    ]);
    let r = rows(&out);
    let names: Vec<&str> = r.iter().map(|r| r["penalty"].as_str().unwrap()).collect();
    assert_eq!(names, ["none", "l2-hinge"]);
    for row in &r {
        let (m, acc) = (num(row, "expected_margin"), num(row, "accuracy"));
        assert!(
            m.is_finite() && num(row, "taylor_margin").is_finite(),
            "{row}"
        );
        assert!((0.0..=1.0).contains(&acc), "{row}");
        assert!(
            num(row, "constraint_left") < 0.05,
            "the search did not reach the boundary: {row}"
        );
        assert!(m.abs() < 5.0, "{row}");
    }
}

/// init(net, "he"): prettytensor's he_init, as MAGAN's official code initialises its layers: a
/// layer followed by a ReLU (directly or through a batch norm) gets N(0, 2/fan_in), the others
/// Glorot uniform; all biases zero. The generator's transposed convs use PyTorch's fan_in
/// (out·k²), which is prettytensor's for its deconv2d.
#[test]
fn he_init_follows_prettytensor() {
    let v = eval_vec(
        r#"seed(1);
        let G = init(magan_mnist_g(50), "he");
        let p = G.named_params();
        let out = [];
        for k in p.keys() {
            let t = p[k];
            if k.ends_with("bias") { out.push(t.abs().max().item()); }
        }
        out.push(-1.0);
        for k in p.keys() { if k.ends_with("weight") { out.push(p[k].std().item()); out.push(p[k].abs().max().item()); } }
        out"#,
    );
    let sep = v.iter().position(|&x| x == -1.0).unwrap();
    assert!(v[..sep].iter().all(|&b| b == 0.0), "biases {:?}", &v[..sep]);
    let w = &v[sep + 1..];
    // (128)7c1s: weight [50, 128, 7, 7], fan_in 128·49; (64)4c2s: [128, 64, 4, 4], fan_in 64·16;
    // (1)4c2s (sigmoid after it): [64, 1, 4, 4], Glorot bound √(6/(16 + 1024)).
    let he = |fan: f64| (2.0 / fan).sqrt();
    assert!((w[0] / he(128.0 * 49.0) - 1.0).abs() < 0.02, "{w:?}");
    assert!((w[2] / he(64.0 * 16.0) - 1.0).abs() < 0.02, "{w:?}");
    let bound = (6.0f64 / (16.0 + 1024.0)).sqrt();
    assert!(w[5] <= bound && w[5] > 0.9 * bound, "{w:?}");
    assert!((w[4] / (bound / 3f64.sqrt()) - 1.0).abs() < 0.1, "{w:?}");
}

/// Adamax without bias correction (the official MAGAN optimiser) takes lr·m/u; PyTorch's takes
/// lr/(1−β1ᵗ)·m/u. First step from zero moments: m = (1−β1)g, u = |g| + eps.
#[test]
fn adamax_without_bias_correction() {
    let v = eval_vec(
        r#"let two_steps = |bc| {
            let w = variable(tensor([1.0, -2.0]));
            let opt = adamax([w], 0.1, 0.5, 0.999, #{ bias_correction: bc });
            opt.step((w * tensor([3.0, -0.5])).sum());
            opt.step((w * tensor([1.0, 1.0])).sum());
            w.to_array()
        };
        [two_steps.call(true), two_steps.call(false)]"#,
    );
    // step 1: g = (3, −0.5), m = 0.5g, u = |g| + eps; step 2: g = (1, 1),
    // m = 0.25(3, −0.5) + 0.5(1, 1) = (1.25, 0.375), u = max(0.999|g1| , |g2| + eps).
    let eps = 1e-8;
    let g1 = [3.0f64, -0.5];
    let m1: Vec<f64> = g1.iter().map(|g| 0.5 * g).collect();
    let u1: Vec<f64> = g1.iter().map(|g| g.abs() + eps).collect();
    let m2 = [1.25, 0.375];
    let u2: Vec<f64> = u1.iter().map(|u| (0.999 * u).max(1.0 + eps)).collect();
    for (bc, off) in [(true, 0), (false, 2)] {
        let k1 = if bc { 0.1 / 0.5 } else { 0.1 };
        let k2 = if bc { 0.1 / 0.75 } else { 0.1 };
        for i in 0..2 {
            let w0 = [1.0, -2.0][i];
            let want = w0 - k1 * m1[i] / u1[i] - k2 * m2[i] / u2[i];
            assert!(
                (v[off + i] - want).abs() < 1e-6,
                "bias_correction {bc}: {} vs {want}",
                v[off + i]
            );
        }
    }
}

/// The DCGAN builders' options: widths double from `width`, `bias: false` drops every
/// convolution's bias, `slope` sets D's leaky ReLU; unknown options are errors.
#[test]
fn dcgan_options() {
    // D at 32 px, width 16: convs 1→16, 16→32 (+BN 32), 32→64 (+BN 64), 64→1, all 4×4, no bias.
    let d = eval_f64("dcgan_d(32, 1, #{ width: 16, bias: false }).param_count().to_float()");
    let want_d = 16.0 * 16.0
        + 32.0 * 16.0 * 16.0
        + 2.0 * 32.0
        + 64.0 * 32.0 * 16.0
        + 2.0 * 64.0
        + 64.0 * 16.0;
    assert_eq!(d, want_d);
    // G at 32 px, width 8, nz 10, biases: 10→32 (4×4) +BN, 32→16 +BN, 16→8 +BN, 8→1, biases.
    let g = eval_f64("dcgan_g(32, 10, 1, #{ width: 8 }).param_count().to_float()");
    let want_g = (10.0 * 32.0 * 16.0 + 32.0)
        + 64.0
        + (32.0 * 16.0 * 16.0 + 16.0)
        + 32.0
        + (16.0 * 8.0 * 16.0 + 8.0)
        + 16.0
        + (8.0 * 16.0 + 1.0);
    assert_eq!(g, want_g);
    // slope: D's activations; with slope 1 (and no batch norm) D is affine, with 0.02 it is not.
    let v = eval_vec(
        r#"let affinity = |slope| {
            seed(2);
            let D = dcgan_d(32, 1, #{ width: 4, batch_norm: false, slope: slope });
            let a = randn([1, 1, 32, 32]); let b = randn([1, 1, 32, 32]);
            (D.forward(a) + D.forward(b) - D.forward(a + b) - D.forward(zeros([1, 1, 32, 32]))).abs().max().item()
        };
        let D = dcgan_d(32, 1, #{ width: 4, slope: 0.02 });
        [affinity.call(1.0), affinity.call(0.02), if D.to_string().contains("leaky_relu(0.02)") { 1.0 } else { 0.0 }]"#,
    );
    assert!(v[0] < 1e-4 && v[1] > 1e-3 && v[2] == 1.0, "{v:?}");
    let e = common::try_eval("dcgan_g(32, 10, 1, #{ slope: 0.1 })").unwrap_err();
    assert!(e.contains("unknown option"), "{e}");
}

/// data.sample(n): n distinct rows of the data set, drawn from the seeded generator.
#[test]
fn dataset_sample_draws_distinct_rows() {
    let v = eval_vec(
        r#"let d = dataset(arange(50).reshape([50, 1]));
        seed(4); let a = d.sample(50);
        seed(4); let b = d.sample(50);
        let s = a.reshape([50]).to_array(); s.sort();
        let ok = true; for i in 0..50 { if s[i] != i.to_float() { ok = false; } }
        [if ok { 1.0 } else { 0.0 }, (a - b).abs().max().item(), (a - d.x).abs().max().item()]"#,
    );
    assert_eq!(v[0], 1.0, "not a permutation");
    assert_eq!(v[1], 0.0, "not reproducible");
    assert!(v[2] > 0.0, "not shuffled");
    assert!(common::try_eval("dataset(zeros([3, 1])).sample(4)")
        .unwrap_err()
        .contains("sample(4)"));
}
