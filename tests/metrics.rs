//! Sample-quality metrics: the embedded MNIST classifier, the MNIST score and Fréchet distance,
//! mode coverage on mixtures, cross-testing, and the softmax/cross-entropy it was trained with.

mod common;

use candle_core::{Device, Tensor as CT};
use common::{eval, eval_f64, eval_vec, try_eval};
use ganscript::data::files::builtin_mnist;
use ganscript::metrics::{self, classifier, linalg};
use ganscript::rng;

/// Built-in digits `start..start+n` as a tensor `[n,1,28,28]` in [0,1], with their labels.
fn digits(start: usize, n: usize) -> (CT, Vec<i64>) {
    let ds = builtin_mnist().expect("built-in MNIST");
    let s = ds.sample_size();
    let data = ds.data[start * s..(start + n) * s].to_vec();
    let labels = ds.labels.as_ref().expect("labels")[start..start + n].to_vec();
    (
        CT::from_vec(data, (n, 1, 28, 28), &Device::Cpu).unwrap(),
        labels,
    )
}

fn uniform_noise(n: usize, seed: u64) -> CT {
    rng::seed(seed);
    let v: Vec<f32> = rng::uniform_vec(n * 784, 0.0, 1.0)
        .into_iter()
        .map(|x| x as f32)
        .collect();
    CT::from_vec(v, (n, 1, 28, 28), &Device::Cpu).unwrap()
}

#[test]
fn classifier_reaches_its_stated_accuracy_on_held_out_digits() {
    let (x, y) = digits(8000, 2000);
    let pred = metrics::mnist_predict(&x, (0.0, 1.0)).unwrap();
    let correct = pred
        .iter()
        .zip(&y)
        .filter(|(p, y)| **p as i64 == **y)
        .count();
    let acc = correct as f64 / 2000.0;
    eprintln!("held-out accuracy {acc}");
    assert!(acc >= 0.97, "held-out accuracy {acc}");
    assert!(
        (acc - classifier::CLASSIFIER_ACCURACY).abs() <= 0.005,
        "measured {acc}, stated {}",
        classifier::CLASSIFIER_ACCURACY
    );
}

#[test]
fn score_and_fid_separate_real_digits_from_noise() {
    let (a, _) = digits(9000, 1000);
    let (b, _) = digits(8000, 1000);
    let noise = uniform_noise(1000, 7);

    let real = metrics::mnist_score(&a, (0.0, 1.0), 1).unwrap();
    let noisy = metrics::mnist_score(&noise, (0.0, 1.0), 1).unwrap();
    assert_eq!(real.n, 1000);

    let fa = metrics::mnist_features(&a, (0.0, 1.0)).unwrap();
    let fb = metrics::mnist_features(&b, (0.0, 1.0)).unwrap();
    let fnz = metrics::mnist_features(&noise, (0.0, 1.0)).unwrap();
    let d = classifier::FEATURE_DIM;
    let (ma, sa) = linalg::mean_cov(&fa, 1000, d).unwrap();
    let (mb, sb) = linalg::mean_cov(&fb, 1000, d).unwrap();
    let (mn, sn) = linalg::mean_cov(&fnz, 1000, d).unwrap();
    let fid_real = linalg::frechet_distance(&ma, &sa, &mb, &sb).unwrap();
    let fid_noise = linalg::frechet_distance(&ma, &sa, &mn, &sn).unwrap();
    let fid_same = linalg::frechet_distance(&ma, &sa, &ma, &sa).unwrap();
    eprintln!(
        "score real {} noise {}; fid real-vs-real {fid_real}, real-vs-noise {fid_noise}, same {fid_same}",
        real.score, noisy.score
    );
    assert!(real.score > 8.5, "real digits score {}", real.score);
    assert!(real.score <= 10.0 + 1e-9);
    assert!(
        (1.0..2.0).contains(&noisy.score),
        "uniform noise scores {}",
        noisy.score
    );
    assert!(fid_real > 0.0);
    assert!(
        fid_noise > 10.0 * fid_real,
        "noise FID {fid_noise} vs real-vs-real {fid_real}"
    );
    let trace: f64 = (0..d).map(|i| sa[i * d + i]).sum();
    assert!(
        fid_same.abs() < 1e-6 * trace,
        "identical stats give {fid_same}"
    );

    // The public whole-pipeline function agrees with the pieces.
    let fid_api = metrics::mnist_fid(&a, (0.0, 1.0), &b, (0.0, 1.0)).unwrap();
    assert!((fid_api - fid_real).abs() <= 1e-9 * fid_real.max(1.0));
}

#[test]
fn fid_of_identical_sets_is_zero_through_scripts() {
    let v = eval(
        r#"
        let x = mnist().take(300).images;
        let r = mnist_fid(x, x);
        [r.fid, r.n, r.n_reference]
        "#,
    )
    .into_array()
    .unwrap();
    let fid = v[0].as_float().unwrap();
    assert!(fid.abs() < 1e-3, "FID of a set with itself: {fid}");
    assert_eq!(v[1].as_int().unwrap(), 300);
    assert_eq!(v[2].as_int().unwrap(), 300);
}

#[test]
fn score_options_range_and_padding_give_the_same_score() {
    let v = eval_vec(
        r#"
        let ds = mnist().take(200);
        let a = mnist_score(ds.images);
        let b = mnist_score(ds.images * 2.0 - 1.0, #{ range: [-1, 1] });
        let c = mnist_score(ds.pad_to(32).images);
        let d = mnist_score(ds.scale(-1, 1));            // a Dataset brings its own range
        let s = mnist_score(ds.images, #{ splits: 4 });
        [a.score, b.score, c.score, d.score, a.n, s.splits, s.n, s.std]
        "#,
    );
    assert!((v[0] - v[1]).abs() < 1e-4, "{v:?}");
    assert_eq!(
        v[0], v[2],
        "centre crop of 32×32 padding is the image itself"
    );
    assert!((v[0] - v[3]).abs() < 1e-4, "{v:?}");
    assert_eq!(v[4], 200.0);
    assert_eq!((v[5], v[6]), (4.0, 200.0));
    assert!(v[7] >= 0.0);
    // The score of 200 real digits is high, though below that of 1000 (fewer samples).
    assert!(v[0] > 7.0, "{v:?}");
}

#[test]
fn metric_errors_name_the_problem() {
    let e = try_eval("mnist_score(zeros([4, 3, 28, 28]))").unwrap_err();
    assert!(
        e.contains("[N,1,28,28]") && e.contains("[4, 3, 28, 28]"),
        "{e}"
    );
    let e = try_eval("mnist_score(zeros([4, 1, 28, 28]), #{ rnage: [0, 1] })").unwrap_err();
    assert!(e.contains("unknown option \"rnage\""), "{e}");
    let e = try_eval("mnist_fid(zeros([1, 1, 28, 28]), zeros([5, 1, 28, 28]))").unwrap_err();
    assert!(e.contains("at least 2 samples"), "{e}");
    let e = try_eval("mnist_score(zeros([4, 1, 28, 28]) / 0.0)").unwrap_err();
    assert!(e.contains("NaN"), "{e}");
    let e = try_eval("mnist_score(zeros([4, 1, 28, 28]), #{ splits: 9 })").unwrap_err();
    assert!(e.contains("splits"), "{e}");
}

#[test]
fn embedded_classifier_is_a_net_for_scripts() {
    // The Net copy gives the same predictions as mnist_predict, and building it draws nothing
    // from the seeded generator.
    let v = eval_vec(
        r#"
        seed(3);
        let c = mnist_classifier();
        let after = rand_float();
        seed(3);
        let fresh = rand_float();
        let x = mnist().take(50).images;
        let p1 = c.forward(x).argmax(1);
        let p2 = mnist_predict(x, #{});
        [p1.eq(p2).sum().item(), after - fresh, mnist_features(x, #{}).shape()[1]]
        "#,
    );
    assert_eq!(v, vec![50.0, 0.0, 128.0]);
}

// ----- Fréchet distance against closed forms -----

/// Tr(√M) for a 2×2 matrix with positive eigenvalues: √(Tr M + 2√det M).
fn fd_2x2(mu1: [f64; 2], s1: [f64; 4], mu2: [f64; 2], s2: [f64; 4]) -> f64 {
    let p = [
        s1[0] * s2[0] + s1[1] * s2[2],
        s1[0] * s2[1] + s1[1] * s2[3],
        s1[2] * s2[0] + s1[3] * s2[2],
        s1[2] * s2[1] + s1[3] * s2[3],
    ];
    let tr_p = p[0] + p[3];
    let det_p = p[0] * p[3] - p[1] * p[2];
    let tr_sqrt = (tr_p + 2.0 * det_p.sqrt()).sqrt();
    let dmu = (mu1[0] - mu2[0]).powi(2) + (mu1[1] - mu2[1]).powi(2);
    dmu + s1[0] + s1[3] + s2[0] + s2[3] - 2.0 * tr_sqrt
}

#[test]
fn frechet_distance_matches_closed_forms() {
    // Non-commuting 2×2 covariances.
    let (mu1, s1) = ([1.0, -2.0], [2.0, 0.7, 0.7, 1.0]);
    let (mu2, s2) = ([0.5, 0.5], [0.5, -0.2, -0.2, 3.0]);
    let got = linalg::frechet_distance(&mu1, &s1, &mu2, &s2).unwrap();
    let want = fd_2x2(mu1, s1, mu2, s2);
    assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    // Symmetric in its arguments.
    let back = linalg::frechet_distance(&mu2, &s2, &mu1, &s1).unwrap();
    assert!((back - want).abs() < 1e-10);

    // 1-D: (μ1 − μ2)² + (σ1 − σ2)².
    let got = linalg::frechet_distance(&[3.0], &[4.0], &[1.0], &[9.0]).unwrap();
    assert!((got - (4.0 + 1.0)).abs() < 1e-12, "{got}");

    // 128-d, a dense random SPD Σ and c²Σ: the distance is ‖Δμ‖² + (1 − c)² Tr Σ.
    rng::seed(11);
    let d = 128;
    let a = rng::normal_vec(d * d, 0.0, 1.0);
    let mut s = linalg::matmul(&a, &transpose(&a, d), d);
    for i in 0..d {
        s[i * d + i] += 0.5;
    }
    let c = 1.7;
    let s2: Vec<f64> = s.iter().map(|v| v * c * c).collect();
    let mu1 = rng::normal_vec(d, 0.0, 1.0);
    let mu2 = rng::normal_vec(d, 0.0, 1.0);
    let dmu: f64 = mu1.iter().zip(&mu2).map(|(x, y)| (x - y).powi(2)).sum();
    let tr: f64 = (0..d).map(|i| s[i * d + i]).sum();
    let got = linalg::frechet_distance(&mu1, &s, &mu2, &s2).unwrap();
    let want = dmu + (1.0 - c) * (1.0 - c) * tr;
    assert!((got - want).abs() < 1e-8 * want, "{got} vs {want}");
    let zero = linalg::frechet_distance(&mu1, &s, &mu1, &s).unwrap();
    assert!(zero.abs() < 1e-8 * tr, "{zero}");

    // Through scripts (2×2 case).
    let got = eval_f64(
        "frechet_distance(tensor([1.0, -2.0]), tensor([[2.0, 0.7], [0.7, 1.0]]), \
         tensor([0.5, 0.5]), tensor([[0.5, -0.2], [-0.2, 3.0]]))",
    );
    assert!((got - want_2x2()).abs() < 1e-5, "{got}");
    let e = try_eval(
        "frechet_distance(tensor([1.0, 2.0]), zeros([3, 3]), tensor([1.0, 2.0]), zeros([2, 2]))",
    );
    assert!(e.is_err());
}

fn want_2x2() -> f64 {
    fd_2x2(
        [1.0, -2.0],
        [2.0, 0.7, 0.7, 1.0],
        [0.5, 0.5],
        [0.5, -0.2, -0.2, 3.0],
    )
}

fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

// ----- mode coverage -----

#[test]
fn mode_stats_on_perfect_and_collapsed_samplers() {
    let v = eval(
        r#"
        seed(5);
        let ring = ring8(2500);                    // the mixture itself, std 0.02
        let perfect = mode_stats(ring.x, ring.centers, 0.02);
        let grid = grid25(2500);                   // std 0.05
        let g = mode_stats(grid.x, grid.centers, 0.05);
        // a collapsed sampler: every sample near the first centre of the ring
        let one = ring.centers.narrow(0, 0, 1) + randn([2500, 2], 0.0, 0.02);
        let collapsed = mode_stats(one, ring.centers, 0.02);
        [perfect, g, collapsed]
        "#,
    )
    .into_array()
    .unwrap();
    let get = |m: &rhai::Dynamic, k: &str| -> f64 {
        let m = m.clone().cast::<rhai::Map>();
        let v = m.get(k).unwrap_or_else(|| panic!("no key {k}"));
        v.as_float()
            .or_else(|_| v.as_int().map(|i| i as f64))
            .unwrap()
    };
    let (p, g, c) = (&v[0], &v[1], &v[2]);
    eprintln!(
        "ring8: hq {} kl {}; grid25: hq {} kl {}; collapsed: hq {} kl {}",
        get(p, "high_quality_fraction"),
        get(p, "kl_uniform"),
        get(g, "high_quality_fraction"),
        get(g, "kl_uniform"),
        get(c, "high_quality_fraction"),
        get(c, "kl_uniform")
    );
    assert_eq!(get(p, "modes_captured"), 8.0);
    assert_eq!(get(p, "min_count"), 20.0);
    // Within 3σ in 2-D: P = 1 − exp(−4.5) ≈ 0.989.
    assert!((get(p, "high_quality_fraction") - 0.989).abs() < 0.01);
    assert!(get(p, "kl_uniform") < 0.01);
    assert_eq!(get(g, "modes_captured"), 25.0);
    assert!(get(g, "high_quality_fraction") > 0.97);
    assert!(get(g, "kl_uniform") < 0.02);
    assert_eq!(get(c, "modes_captured"), 1.0);
    assert!(get(c, "high_quality_fraction") > 0.97);
    assert!((get(c, "kl_uniform") - 8f64.ln()).abs() < 1e-9);
    let counts = c.clone().cast::<rhai::Map>()["counts"]
        .clone()
        .into_array()
        .unwrap();
    assert_eq!(counts.len(), 8);
    assert!(counts[1..].iter().all(|x| x.as_int().unwrap() == 0));
}

#[test]
fn mode_stats_hand_computed() {
    // Centres (0,0) and (10,0), σ = 1: (0,0.5) is high quality at mode 0; (10,2.9) at mode 1;
    // (10,3.1) and (4,0) are assigned (to modes 1 and 0) but farther than 3σ.
    let samples = [0.0, 0.5, 10.0, 2.9, 10.0, 3.1, 4.0, 0.0];
    let centers = [0.0, 0.0, 10.0, 0.0];
    let r = metrics::mode_stats(&samples, 2, &centers, 1.0, None).unwrap();
    assert_eq!(r.counts, vec![1, 1]);
    assert_eq!(r.assigned, vec![2, 2]);
    assert_eq!(r.min_count, 1);
    assert_eq!(r.modes_captured, 2);
    assert_eq!(r.high_quality_fraction, 0.5);
    assert_eq!(r.kl_uniform, Some(0.0));
    let r = metrics::mode_stats(&samples, 2, &centers, 1.0, Some(2)).unwrap();
    assert_eq!(r.modes_captured, 0);
    // Three high-quality samples at mode 0, one at mode 1: KL = ¾ log(3/2) + ¼ log(1/2).
    let s = [0.0, 0.0, 0.1, 0.0, 0.0, 0.1, 10.0, 0.0];
    let r = metrics::mode_stats(&s, 2, &centers, 1.0, None).unwrap();
    let want = 0.75 * 1.5f64.ln() + 0.25 * 0.5f64.ln();
    assert!((r.kl_uniform.unwrap() - want).abs() < 1e-12);
    // Nothing high quality: no KL.
    let r = metrics::mode_stats(&[5.0, 50.0], 2, &centers, 1.0, None).unwrap();
    assert_eq!((r.kl_uniform, r.modes_captured), (None, 0));
    // Errors.
    assert!(metrics::mode_stats(&samples, 2, &centers, 0.0, None).is_err());
    let e = try_eval("mode_stats(zeros([4, 3]), zeros([2, 2]), 0.1)").unwrap_err();
    assert!(e.contains("dimension 3") && e.contains("2"), "{e}");
    let v = eval("mode_stats(tensor([[0.0, 0.5], [10.0, 2.9]]), tensor([[0.0, 0.0], [10.0, 0.0]]), 1).modes_captured");
    assert_eq!(v.as_int().unwrap(), 2);
}

// ----- cross-testing -----

#[test]
fn cross_test_on_hand_made_discriminators() {
    let v = eval(
        r#"
        let d1 = |x| x.sum(1) - 0.5;            // logits [N]
        let d2 = |x| x.sum(1, true) * -1.0;          // logits [N, 1]
        let g1 = tensor([[1.0], [0.0], [2.0], [-1.0]]);
        let g2 = tensor([[5.0], [6.0]]);
        let real = tensor([[1.0], [1.0], [-1.0], [3.0]]);
        cross_test([d1, d2], [g1, g2], real)
        "#,
    )
    .cast::<rhai::Map>();
    let floats = |k: &str| -> Vec<f64> {
        let mut out = Vec::new();
        for x in v[k].clone().into_array().unwrap() {
            if let Some(a) = x.clone().try_cast::<rhai::Array>() {
                out.extend(a.iter().map(|y| y.as_float().unwrap()));
            } else {
                out.push(x.as_float().unwrap());
            }
        }
        out
    };
    // d1 on g1: logits 0.5, −0.5, 1.5, −1.5 → ½ real; on g2: all real.
    // d2 on g1: −1, 0 (not > 0), −2, 1 → ¼; on g2: none.
    assert_eq!(floats("called_real"), vec![0.5, 1.0, 0.25, 0.0]);
    assert_eq!(floats("fpr"), vec![0.5, 1.0, 0.25, 0.0]);
    // real: d1 logits 0.5, 0.5, −1.5, 2.5 → ¾ real; d2: −1, −1, 1, −3 → ¼.
    assert_eq!(floats("real_called_real"), vec![0.75, 0.25]);
    assert_eq!(floats("fnr"), vec![0.25, 0.75]);
    assert_eq!(v["n_real"].as_int().unwrap(), 4);

    let e = try_eval("cross_test([|x| x], [ones([3, 2])], ones([3, 2]))").unwrap_err();
    assert!(e.contains("one logit per sample"), "{e}");
    let e = try_eval("cross_test([1], [ones([3, 1])], ones([3, 1]))").unwrap_err();
    assert!(e.contains("must be a function"), "{e}");
}

// ----- softmax / cross-entropy -----

#[test]
fn cross_entropy_matches_hand_values_and_its_gradient() {
    // rows: [1,2,3] with label 2: lse − 3 = log(e⁻² + e⁻¹ + 1); [0,0,0] with label 0: log 3.
    let want = ((-2f64).exp() + (-1f64).exp() + 1.0).ln() / 2.0 + 3f64.ln() / 2.0;
    let v = eval_vec(
        r#"
        default_dtype("f64");
        let z = variable(tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]]));
        let l = cross_entropy(z, [2, 0]);
        let g = grad(l, z);
        let p = softmax(z);
        [l.item(), cross_entropy(z, tensor([2, 0]).to("i64")).item(), g.to_array(), p.sum(1).to_array(),
         log_softmax(z).exp().to_array()]
        "#,
    );
    assert!((v[0] - want).abs() < 1e-12, "{} vs {want}", v[0]);
    assert!((v[1] - want).abs() < 1e-12);
    // d/dz mean CE = (softmax(z) − onehot(y)) / N
    let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|x| x.exp()).collect();
    let s: f64 = e.iter().sum();
    let g_want = [
        e[0] / s / 2.0,
        e[1] / s / 2.0,
        (e[2] / s - 1.0) / 2.0,
        (1.0 / 3.0 - 1.0) / 2.0,
        1.0 / 6.0,
        1.0 / 6.0,
    ];
    common::assert_close(&v[2..8], &g_want, 1e-12);
    common::assert_close(&v[8..10], &[1.0, 1.0], 1e-12);
    common::assert_close(&v[10..13], &[e[0] / s, e[1] / s, e[2] / s], 1e-12);
    // Large logits stay finite (the max is subtracted).
    let big = eval_f64("cross_entropy(tensor([[1000.0, 0.0]]), [1]).item()");
    assert!((big - 1000.0).abs() < 1e-3, "{big}");
    let e = try_eval("cross_entropy(zeros([2, 3]), [0, 3])").unwrap_err();
    assert!(e.contains("0..3"), "{e}");
    let e = try_eval("cross_entropy(zeros([2, 3]), [0])").unwrap_err();
    assert!(e.contains("2 labels"), "{e}");
}
