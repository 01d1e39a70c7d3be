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
