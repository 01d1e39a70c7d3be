//! End-to-end smoke tests of the papers' training scripts in `scripts/`: each runs through the
//! built binary (`ganscript run`) in a tiny configuration, and its run directory must hold
//! config.json (with the settings given), metrics.jsonl (the expected keys, finite values, one
//! row per `log_every` steps) and PNG outputs. `ganscript check` must accept every script.

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts")
}

/// `ganscript run scripts/<name> --set ... --out <tmp>/run`; panics with the output on failure.
/// Returns the temp dir (kept alive by the caller) and the run directory.
fn run(name: &str, sets: &[&str]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ganscript"));
    cmd.arg("run").arg(scripts_dir().join(name));
    for s in sets {
        cmd.arg("--set").arg(s);
    }
    cmd.arg("--out").arg(&out).env("GANSCRIPT_PROGRESS", "off");
    let o = cmd.output().expect("ganscript runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success(),
        "{name} {sets:?} failed: {}\nstdout:\n{}\nstderr:\n{stderr}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        !stderr.contains("never read"),
        "{name}: a --set was ignored:\n{stderr}"
    );
    (tmp, out)
}

fn config(dir: &Path) -> Map<String, Value> {
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let v: Value = serde_json::from_str(&text).expect("config.json is JSON");
    assert_eq!(v["status"], "ok", "config.json: {text}");
    v["settings"].as_object().expect("settings").clone()
}

/// The rows of metrics.jsonl; every row has `keys`, and every number is finite.
fn metrics(dir: &Path, keys: &[&str]) -> Vec<Map<String, Value>> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).expect("metrics.jsonl");
    let rows: Vec<Map<String, Value>> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("a JSON line"))
        .map(|v| v.as_object().expect("a JSON object").clone())
        .collect();
    assert!(!rows.is_empty(), "no metrics rows");
    for (i, row) in rows.iter().enumerate() {
        for k in keys {
            let v = row
                .get(*k)
                .unwrap_or_else(|| panic!("row {i} lacks `{k}`: {row:?}"));
            let x = v
                .as_f64()
                .unwrap_or_else(|| panic!("row {i}: `{k}` is not a number: {v}"));
            assert!(x.is_finite(), "row {i}: `{k}` = {x}");
        }
    }
    rows
}

fn num(row: &Map<String, Value>, k: &str) -> f64 {
    row[k].as_f64().unwrap()
}

fn steps_logged(rows: &[Map<String, Value>]) -> Vec<i64> {
    rows.iter()
        .map(|r| r["step"].as_i64().expect("an integer step"))
        .collect()
}

/// The PNG files of the run directory, each checked to decode.
fn pngs(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".png"))
        .collect();
    names.sort();
    for n in &names {
        image::open(dir.join(n)).unwrap_or_else(|e| panic!("{n} does not decode: {e}"));
    }
    names
}

fn has(names: &[String], n: &str) {
    assert!(names.iter().any(|x| x == n), "no {n} among {names:?}");
}

#[test]
fn check_accepts_every_script() {
    // The shipped scripts, and the benchmark's scripts (benches/scripts: a reserved word such
    // as `sync` used as a function name broke them once without any test noticing).
    let bench_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/scripts");
    let mut files: Vec<PathBuf> = [scripts_dir(), bench_dir]
        .iter()
        .flat_map(|d| std::fs::read_dir(d).unwrap())
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rhai"))
        .collect();
    files.sort();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("benches/scripts/mixture3d.rhai")),
        "no benchmark scripts found"
    );
    for name in [
        "magan.rhai",
        "maxmargin.rhai",
        "roth.rhai",
        "tempered.rhai",
        "wgan_gp.rhai",
    ] {
        assert!(
            files.iter().any(|f| f.ends_with(name)),
            "scripts/{name} is missing"
        );
    }
    let o = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .arg("check")
        .args(&files)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "check failed:\n{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out.matches(": ok").count(), files.len(), "{out}");
}

#[test]
fn magan_one_epoch() {
    let (_t, dir) = run(
        "magan.rhai",
        &["epochs=1", "pretrain_epochs=1", "limit=128", "batch=32"],
    );
    assert_eq!(config(&dir)["epochs"], 1);
    let rows = metrics(&dir, &["epoch", "e_x", "e_z", "margin", "convergence"]);
    assert_eq!(rows.len(), 1);
    let p = pngs(&dir);
    has(&p, "samples_epoch1.png");
    has(&p, "energies.png");
}

#[test]
fn maxmargin_smoke() {
    let (_t, dir) = run(
        "maxmargin.rhai",
        &[
            "steps=3",
            "limit=64",
            "batch=8",
            "log_every=1",
            "grid_every=2",
        ],
    );
    let cfg = config(&dir);
    assert_eq!(cfg["norm"], "linf");
    assert_eq!(cfg["penalty"], "hinge");
    assert_eq!(cfg["lambda"], 20.0);
    let rows = metrics(
        &dir,
        &["step", "loss_d", "loss_g", "penalty", "d_real", "d_fake"],
    );
    assert_eq!(steps_logged(&rows), [1, 2, 3]);
    for r in &rows {
        // hinge D loss ≥ 0 and the hinge penalty ≥ 0
        assert!(num(r, "loss_d") >= 0.0 && num(r, "penalty") >= 0.0, "{r:?}");
    }
    let p = pngs(&dir);
    has(&p, "samples_step2.png");
    has(&p, "samples_final.png");
    has(&p, "losses.png");
}

#[test]
fn maxmargin_wgan_gp_style_options() {
    let (_t, dir) = run(
        "maxmargin.rhai",
        &[
            "steps=2",
            "limit=32",
            "batch=8",
            "log_every=2",
            "loss=rahinge",
            "norm=l2",
            "penalty=ls",
        ],
    );
    let cfg = config(&dir);
    assert_eq!(cfg["loss"], "rahinge");
    assert_eq!(cfg["norm"], "l2");
    let rows = metrics(&dir, &["step", "loss_d", "loss_g", "penalty"]);
    assert_eq!(steps_logged(&rows), [2]);
    // (‖∇D‖₂ − 1)² of a fresh DCGAN critic is strictly positive
    assert!(num(&rows[0], "penalty") > 0.0);
    has(&pngs(&dir), "samples_final.png");
}

#[test]
fn roth_mixture3d_smoke() {
    let (_t, dir) = run(
        "roth.rhai",
        &[
            "dataset=mixture3d",
            "steps=4",
            "limit=256",
            "batch=64",
            "log_every=2",
            "grid_every=2",
            "eval_samples=500",
        ],
    );
    assert_eq!(config(&dir)["lr"], 1e-3);
    let rows = metrics(
        &dir,
        &[
            "step",
            "loss_d",
            "loss_g",
            "penalty",
            "gamma",
            "modes",
            "high_quality",
        ],
    );
    assert_eq!(steps_logged(&rows), [2, 4]);
    // γ = 0.1 · 0.01^(t/T) at t = 1 and 3 of T = 4 (the paper's γ₀ for the mixture)
    assert!((num(&rows[0], "gamma") - 0.1 * 0.01f64.powf(0.25)).abs() < 1e-9);
    assert!((num(&rows[1], "gamma") - 0.1 * 0.01f64.powf(0.75)).abs() < 1e-9);
    for r in &rows {
        let m = r["modes"].as_i64().expect("modes is an integer");
        assert!((0..=7).contains(&m), "{r:?}");
        assert!((0.0..=1.0).contains(&num(r, "high_quality")));
    }
    let p = pngs(&dir);
    has(&p, "scatter_step2.png");
    has(&p, "scatter_final.png");
    has(&p, "modes.png");
}

#[test]
fn roth_constant_gamma_on_mnist() {
    let (_t, dir) = run(
        "roth.rhai",
        &[
            "steps=2",
            "limit=32",
            "batch=8",
            "log_every=1",
            "gamma=0.1",
            "anneal=false",
            "grid_every=0",
        ],
    );
    let rows = metrics(&dir, &["step", "loss_d", "loss_g", "penalty", "gamma"]);
    assert_eq!(steps_logged(&rows), [1, 2]);
    for r in &rows {
        assert_eq!(num(r, "gamma"), 0.1);
        assert!(num(r, "penalty") >= 0.0);
        assert!(r.get("modes").is_none(), "MNIST runs count no modes");
    }
    let p = pngs(&dir);
    has(&p, "samples_final.png");
    has(&p, "gamma.png");
    // grid_every = 0: no grids during training (it used to divide by zero)
    assert!(!p.iter().any(|n| n.starts_with("samples_step")), "{p:?}");
}

#[test]
fn tempered_smoke() {
    let (_t, dir) = run(
        "tempered.rhai",
        &[
            "steps=3",
            "K=2",
            "limit=32",
            "batch=8",
            "log_every=1",
            "lens_width=8",
            "lens_blocks=1",
        ],
    );
    let rows = metrics(
        &dir,
        &[
            "step",
            "loss_d",
            "loss_g",
            "lambda",
            "loss_lens",
            "lens_dist",
        ],
    );
    assert_eq!(steps_logged(&rows), [1, 2, 3]);
    // λ(t) = 1 − sin(tπ/2K) with K = 2 at t = 0, 1; the lens is removed at t = K
    let lam: Vec<f64> = rows.iter().map(|r| num(r, "lambda")).collect();
    assert!((lam[0] - 1.0).abs() < 1e-12, "{lam:?}");
    assert!(
        (lam[1] - (1.0 - (std::f64::consts::PI / 4.0).sin())).abs() < 1e-9,
        "{lam:?}"
    );
    assert_eq!(lam[2], 0.0);
    assert!(num(&rows[0], "lens_dist") > 0.0);
    assert_eq!(num(&rows[2], "loss_lens"), 0.0);
    let p = pngs(&dir);
    has(&p, "samples_final.png");
    has(&p, "lensed_final.png");
    has(&p, "lens.png");
}

#[test]
fn tempered_baseline_wgan_gp_without_lens() {
    let (_t, dir) = run(
        "tempered.rhai",
        &[
            "steps=2",
            "limit=16",
            "batch=8",
            "log_every=1",
            "variant=wgan_gp",
            "lens=false",
        ],
    );
    let rows = metrics(&dir, &["step", "loss_d", "loss_g", "penalty", "lambda"]);
    for r in &rows {
        assert_eq!(num(r, "lambda"), 0.0);
        assert!(num(r, "penalty") > 0.0);
    }
    let p = pngs(&dir);
    has(&p, "samples_final.png");
    assert!(!p.iter().any(|n| n.starts_with("lensed")), "{p:?}");
}

#[test]
fn wgan_gp_smoke() {
    let (_t, dir) = run(
        "wgan_gp.rhai",
        &[
            "steps=2",
            "n_critic=2",
            "limit=32",
            "batch=8",
            "log_every=1",
        ],
    );
    let cfg = config(&dir);
    assert_eq!(cfg["lambda"], 10.0);
    assert_eq!(cfg["beta1"], 0.0);
    let rows = metrics(
        &dir,
        &["step", "loss_d", "loss_g", "penalty", "wasserstein"],
    );
    assert_eq!(steps_logged(&rows), [1, 2]);
    for r in &rows {
        assert!((num(r, "wasserstein") + num(r, "loss_d")).abs() < 1e-12);
    }
    let p = pngs(&dir);
    has(&p, "samples_final.png");
    has(&p, "wasserstein.png");
}
