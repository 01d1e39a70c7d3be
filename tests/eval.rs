//! `ganscript eval`: metrics of a run's generator from its checkpoint alone.

mod common;

use common::ganscript;

fn script(name: &str) -> String {
    format!("{}/scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn eval_reports_mnist_metrics_and_mode_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let (mg, rt) = (dir.path().join("magan"), dir.path().join("roth"));
    let out = ganscript(&[
        "run",
        &script("magan.rhai"),
        "--out",
        mg.to_str().unwrap(),
        "--set",
        "epochs=1",
        "--set",
        "pretrain_epochs=1",
        "--set",
        "limit=128",
        "--set",
        "batch=32",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ganscript(&[
        "run",
        &script("roth.rhai"),
        "--out",
        rt.to_str().unwrap(),
        "--set",
        "dataset=mixture3d",
        "--set",
        "steps=4",
        "--set",
        "log_every=2",
        "--set",
        "batch=64",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = ganscript(&[
        "eval",
        mg.to_str().unwrap(),
        rt.to_str().unwrap(),
        "--samples",
        "200",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["runs"][0];
    let score = m["mnist_score"].as_f64().unwrap();
    assert!((1.0..=10.0).contains(&score), "{m}");
    assert!(m["feature_distance"].as_f64().unwrap() > 0.0, "{m}");
    assert_eq!(m["samples"], 200);
    // Against all 10,000 built-in digits, with the real digits' own values at 200 samples beside:
    // far better than a generator after one epoch on 128 digits.
    assert_eq!(m["reference_samples"], 10_000, "{m}");
    let real = &m["reference"];
    assert_eq!(real["samples"], 200, "{m}");
    assert!(real["mnist_score"].as_f64().unwrap() > score + 1.0, "{m}");
    assert!(
        real["feature_distance"].as_f64().unwrap() < 0.5 * m["feature_distance"].as_f64().unwrap(),
        "{m}"
    );
    let r = &v["runs"][1];
    assert_eq!(r["modes"], 7, "{r}");
    let captured = r["modes_captured"].as_u64().unwrap();
    assert!(captured <= 7);
    let hq = r["high_quality_fraction"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&hq));

    // The table form names each run.
    let out = ganscript(&["eval", rt.to_str().unwrap(), "--samples", "100"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("modes_captured"));

    // A directory without a checkpoint is a clear error.
    let out = ganscript(&["eval", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no checkpoint.safetensors"));
}

/// `--set ema=...`: the run keeps and checkpoints an EMA of G, and eval scores it beside G.
#[test]
fn eval_scores_the_ema_of_g_beside_g() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("wgan");
    let out = ganscript(&[
        "run",
        &script("wgan_gp.rhai"),
        "--out",
        run.to_str().unwrap(),
        "--set",
        "steps=2",
        "--set",
        "n_critic=1",
        "--set",
        "limit=32",
        "--set",
        "batch=8",
        "--set",
        "ema=0.9",
        "--set",
        "grid_every=1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(run.join("samples_ema_step2.png").exists());
    let out = ganscript(&["eval", run.to_str().unwrap(), "--samples", "50", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let gens: Vec<&str> = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["generator"].as_str().unwrap())
        .collect();
    assert_eq!(gens, ["G", "G_ema"]);
    // different weights: different samples, so different feature distances
    assert_ne!(
        v["runs"][0]["feature_distance"],
        v["runs"][1]["feature_distance"]
    );
}

fn idx_files(dir: &std::path::Path, n: u32, pixel: impl Fn(u32, u32, u32) -> u8) {
    std::fs::create_dir_all(dir).unwrap();
    let mut b = Vec::new();
    for v in [0x803u32, n, 28, 28] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    for i in 0..n {
        for r in 0..28 {
            for c in 0..28 {
                b.push(pixel(i, r, c));
            }
        }
    }
    std::fs::write(dir.join("train-images-idx3-ubyte"), b).unwrap();
    let mut l = Vec::new();
    l.extend_from_slice(&0x801u32.to_be_bytes());
    l.extend_from_slice(&n.to_be_bytes());
    l.extend((0..n).map(|i| (i % 10) as u8));
    std::fs::write(dir.join("train-labels-idx1-ubyte"), l).unwrap();
}

/// A run trained on other data (`--set data=DIR`): eval takes the reference from the run's
/// config, names the data, refuses the MNIST score for data that are not digits and says why;
/// the feature distance is labelled, with the real data's own value beside it; a run on real
/// digits in a directory keeps its MNIST score. A lone run's cross-test says why it is absent.
#[test]
fn eval_uses_the_runs_own_data_and_refuses_the_mnist_score_for_non_digits() {
    let dir = tempfile::tempdir().unwrap();
    // Stripes: nothing like a digit.
    idx_files(&dir.path().join("stripes"), 300, |i, r, _| {
        if (r + i % 4) % 4 < 2 {
            230
        } else {
            10
        }
    });
    // Real digits, copied from the shared data into the run's reach.
    let digits = dir.path().join("digits");
    std::fs::create_dir_all(&digits).unwrap();
    for f in ["images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"] {
        std::fs::copy(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../shared/data/mnist-10k")
                .join(f),
            digits.join(f),
        )
        .unwrap();
    }
    for data in ["stripes", "digits"] {
        let out = common::ganscript_in(
            dir.path(),
            &[
                "run",
                &script("magan.rhai"),
                "--out",
                &format!("run-{data}"),
                "--set",
                &format!("data={data}"),
                "--set",
                "epochs=1",
                "--set",
                "pretrain_epochs=1",
                "--set",
                "limit=64",
                "--set",
                "batch=32",
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let eval = |run: &str| -> serde_json::Value {
        let out = common::ganscript_in(dir.path(), &["eval", run, "--samples", "100", "--json"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let v = eval("run-stripes");
    let m = &v["runs"][0];
    assert!(
        m["data"].as_str().unwrap().contains("stripes (300 images)"),
        "{m}"
    );
    assert!(m["mnist_score"].is_null(), "{m}");
    assert!(
        m["mnist_score_note"]
            .as_str()
            .unwrap()
            .contains("not digits"),
        "{m}"
    );
    assert!(m["feature_distance"].as_f64().unwrap() > 0.0, "{m}");
    assert!(
        m["feature_distance_note"]
            .as_str()
            .unwrap()
            .contains("run's own data"),
        "{m}"
    );
    assert_eq!(m["reference_samples"], 300, "{m}");
    assert_eq!(m["reference"]["samples"], 100, "{m}");
    assert!(m["reference"]["feature_distance"].as_f64().is_some(), "{m}");
    assert!(m["reference"]["mnist_score"].is_null(), "{m}");
    assert!(v["cross_test"].is_null());
    assert_eq!(v["cross_test_note"], "needs two runs or more");

    let v = eval("run-digits");
    let m = &v["runs"][0];
    assert!(
        m["data"]
            .as_str()
            .unwrap()
            .contains("digits (10000 images)"),
        "{m}"
    );
    assert!(m["mnist_score"].as_f64().is_some(), "{m}");
    assert!(m["reference"]["mnist_score"].as_f64().unwrap() > 5.0, "{m}");
}
