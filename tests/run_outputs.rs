//! What a run writes: the run directory with config.json, metrics.jsonl / metrics.csv, grids,
//! plots and scatter plots; fixed noise; progress lines in plain mode.

use ganscript::session::EngineOptions;
use ganscript::settings::Settings;
use rhai::{Dynamic, Scope};
use sha2::Digest;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Runs `text` as the script file `dir/name.rhai` with `--out out` and the given settings, then
/// finishes the run as the CLI does. Returns the script's result.
fn run_in(dir: &Path, out: &Path, text: &str, set: &[&str]) -> (Result<Dynamic, String>, PathBuf) {
    let script = dir.join("train.rhai");
    std::fs::write(&script, text).unwrap();
    let opts = EngineOptions {
        settings: Rc::new(RefCell::new(Settings::from_pairs(set).unwrap())),
        script_path: Some(script.clone()),
        out_dir: Some(out.to_path_buf()),
        seed: 42,
        device: "cpu".into(),
        ..Default::default()
    };
    let s = ganscript::script::compile(&script.display().to_string(), text, &opts).unwrap();
    let mut scope = Scope::new();
    let r = s.run(&mut scope).map_err(|d| d.message);
    let handle = s.run.clone();
    match &r {
        Ok(_) => handle.finish("ok", None),
        Err(e) => handle.finish("error", Some(e)),
    };
    (r, script)
}

fn png_size(p: &Path) -> (u32, u32) {
    let img = image::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (img.width(), img.height())
}

#[test]
fn a_short_run_writes_config_metrics_grids_and_plots() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run1");
    let text = r#"
        let steps = setting("steps", 5);
        let lr = setting("lr", 0.1);
        for t in 0..steps {
            let loss = tensor([1.0 / (t + 1)]);
            if t < 3 { log(#{step: t, loss_d: loss, e_x: t * 2.0}); }
            else { log(#{step: t, loss_d: loss, e_x: t * 2.0, note: "late \"x\""}); }
        }
        let z = fixed_noise("z", [10, 1, 4, 4]);
        let z2 = fixed_noise("z", [10, 1, 4, 4]);
        let same = (z - z2).abs().max().item();
        let g = save_grid((z.clamp(-1.0, 1.0)), "samples/step_5", 4);
        let p = plot("losses.png", ["loss_d", "e_x"], #{title: "losses"});
        let s = scatter("ring", ring8(200));
        let s3 = scatter("roth.png", roth_mixture3d(100).x, #{centers: roth_mixture3d(1).centers});
        [same, g, p, run_dir()]
    "#;
    let (r, script) = run_in(tmp.path(), &out, text, &["steps=6", "unused=1"]);
    let r = r.unwrap().into_array().unwrap();
    assert_eq!(
        r[0].as_float().unwrap(),
        0.0,
        "fixed_noise is the same tensor"
    );
    assert_eq!(
        r[1].to_string(),
        out.join("samples/step_5.png").display().to_string()
    );
    assert_eq!(r[3].to_string(), out.display().to_string());

    // config.json
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["seed"], 42);
    assert_eq!(cfg["device"], "cpu");
    assert_eq!(cfg["ganscript_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(cfg["script"], script.display().to_string());
    let sha = sha2::Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert_eq!(cfg["script_sha256"], sha);
    assert_eq!(cfg["settings"]["steps"], 6);
    assert_eq!(cfg["settings"]["lr"], 0.1);
    assert_eq!(cfg["settings"]["unused"], 1);
    assert_eq!(cfg["given"]["steps"], 6);
    assert_eq!(cfg["status"], "ok");
    assert!(cfg["started"].as_str().unwrap().ends_with('Z'));
    assert!(cfg["duration_s"].as_f64().unwrap() >= 0.0);

    // metrics.jsonl: one object per call.
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);
    assert_eq!(lines[2]["step"], 2);
    assert!((lines[2]["loss_d"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-6);
    assert_eq!(lines[4]["note"], "late \"x\"");

    // metrics.csv: header = union of keys (step first), rewritten when `note` appeared.
    let csv = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 7);
    assert_eq!(rows[0], "step,e_x,loss_d,note");
    assert!(rows[1].starts_with("0,0,1,"), "{}", rows[1]);
    assert!(
        rows[1].ends_with(','),
        "early rows have an empty note: {}",
        rows[1]
    );
    assert!(rows[6].starts_with("5,10,"), "{}", rows[6]);
    assert!(rows[6].ends_with("\"late \"\"x\"\"\""), "{}", rows[6]);
    assert!(!out.join("metrics.csv.tmp").exists());

    // Images: a 4-per-row grid of 10 4×4 images with 2-px padding, upscaled 16× (to 64-px
    // images) under a 24-px caption; plot 800×500; scatters.
    assert_eq!(
        png_size(&out.join("samples/step_5.png")),
        ((4 * 6 + 2) * 16, (3 * 6 + 2) * 16 + 24)
    );
    assert_eq!(png_size(&out.join("losses.png")), (800, 500));
    assert_eq!(png_size(&out.join("ring.png")), (600, 600));
    assert_eq!(png_size(&out.join("roth.png")), (600, 600));
    // The plot is not blank: it has many colours (lines, legend, text).
    let plot = image::open(out.join("losses.png")).unwrap().to_rgb8();
    let distinct: std::collections::HashSet<[u8; 3]> = plot.pixels().map(|p| p.0).collect();
    assert!(distinct.len() > 20, "{} colours", distinct.len());
}

#[test]
fn nothing_written_means_no_run_directory_and_errors_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("quiet");
    let (r, _) = run_in(tmp.path(), &out, "let x = 1 + 2; x", &[]);
    assert_eq!(r.unwrap().as_int().unwrap(), 3);
    assert!(
        !out.exists(),
        "a run that writes nothing creates no directory"
    );

    let out = tmp.path().join("failing");
    let (r, _) = run_in(
        tmp.path(),
        &out,
        r#"log(#{step: 0, a: 1.5}); log(#{step: 1, a: tensor([1.0, 2.0])});"#,
        &[],
    );
    let e = r.unwrap_err();
    assert!(e.contains("`a`") && e.contains("[2]"), "{e}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["status"], "error");
    assert!(cfg["error"].as_str().unwrap().contains("`a`"));
    assert_eq!(
        std::fs::read_to_string(out.join("metrics.jsonl"))
            .unwrap()
            .lines()
            .count(),
        1
    );

    let out = tmp.path().join("badplot");
    let (r, _) = run_in(
        tmp.path(),
        &out,
        r#"log(#{step: 0, a: 1}); plot("p", ["b"])"#,
        &[],
    );
    let e = r.unwrap_err();
    assert!(e.contains("b") && e.contains("logged keys: step, a"), "{e}");
    let (r, _) = run_in(
        tmp.path(),
        &out,
        r#"fixed_noise("z", [2, 3]); fixed_noise("z", [3, 3])"#,
        &[],
    );
    assert!(r.unwrap_err().contains("[2, 3]"));
    let (r, _) = run_in(
        tmp.path(),
        &out,
        r#"save_grid(zeros([2, 5, 4, 4]), "g", 2)"#,
        &[],
    );
    assert!(r.unwrap_err().contains("[2, 5, 4, 4]"));
}

#[test]
fn grid_pixels_range_and_score_order() {
    use ganscript::run::grid::{grid_png, GridOptions};
    use ganscript::Tensor;
    // Three constant 2×2 grey images with values 0, 0.5, 1.
    let vals = [0.0f32, 0.5, 1.0];
    let data: Vec<f32> = vals.iter().flat_map(|&v| [v; 4]).collect();
    let t = Tensor(
        candle_core::Tensor::from_vec(data, (3, 1, 2, 2), &candle_core::Device::Cpu).unwrap(),
    );
    let first_pixels = |opts: &GridOptions| {
        let (bytes, w, h) = grid_png(&t, 3, opts).unwrap();
        let img = image::load_from_memory(&bytes).unwrap().to_luma8();
        assert_eq!((img.width(), img.height()), (w, h));
        assert_eq!((w, h), (3 * 4 + 2, 4 + 2));
        assert_eq!(img.get_pixel(0, 0).0[0], 128, "padding");
        [
            img.get_pixel(2, 2).0[0],
            img.get_pixel(6, 2).0[0],
            img.get_pixel(10, 3).0[0],
        ]
    };
    assert_eq!(first_pixels(&GridOptions::default()), [0, 128, 255]);
    let scores = GridOptions {
        range: None,
        scores: Some(vec![3.0, 2.0, 1.0]),
    };
    assert_eq!(first_pixels(&scores), [255, 128, 0]);
    let wide = GridOptions {
        range: Some((-1.0, 1.0)),
        scores: None,
    };
    assert_eq!(first_pixels(&wide), [128, 191, 255]);
    // Auto range: any negative value means [-1, 1].
    let neg = Tensor(
        candle_core::Tensor::from_vec(
            vec![-1.0f32, 0.0, 1.0, 0.0],
            (1, 1, 2, 2),
            &candle_core::Device::Cpu,
        )
        .unwrap(),
    );
    let (bytes, _, _) = grid_png(&neg, 1, &GridOptions::default()).unwrap();
    let img = image::load_from_memory(&bytes).unwrap().to_luma8();
    assert_eq!(
        [
            img.get_pixel(2, 2).0[0],
            img.get_pixel(3, 2).0[0],
            img.get_pixel(2, 3).0[0]
        ],
        [0, 128, 255]
    );
}

#[test]
fn principal_plane_of_a_tilted_mixture() {
    ganscript::rng::seed(1);
    let ds = ganscript::data::mixtures::roth_mixture3d(
        500,
        ganscript::data::mixtures::Embedding::Tilt {
            tilt: (30.0, 30.0),
            offset: [0.0; 3],
        },
        0.01,
    )
    .unwrap();
    let p: Vec<f64> = ds.data.iter().map(|&x| x as f64).collect();
    let (_, e1, e2) = ganscript::run::scatter::principal_plane(&p);
    // Both axes lie in the mixture's plane: orthogonal to its normal R_y R_x e3.
    let (a, b) = (30f64.to_radians(), 30f64.to_radians());
    let n = [a.cos() * b.sin(), -a.sin(), a.cos() * b.cos()];
    for e in [e1, e2] {
        let dot: f64 = (0..3).map(|i| e[i] * n[i]).sum();
        assert!(dot.abs() < 0.05, "axis {e:?} leaves the plane ({dot})");
        assert!(((0..3).map(|i| e[i] * e[i]).sum::<f64>() - 1.0).abs() < 1e-9);
    }
    assert!((0..3).map(|i| e1[i] * e2[i]).sum::<f64>().abs() < 1e-9);
}

#[test]
fn progress_plain_lines() {
    use ganscript::run::progress::{fmt_duration, plain_line};
    let line = plain_line("epoch 1", 5, 10, 2.0, &[("loss".into(), "0.5000".into())]);
    assert_eq!(line, "epoch 1 5/10 2.50 it/s ETA 2s loss=0.5000");
    assert_eq!(fmt_duration(3725.0), "1h02m05s");

    // The binary in plain mode (as under CI), with a zero interval: a line at every step but
    // the last, then the summary line with the latest metrics.
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("p.rhai");
    std::fs::write(
        &script,
        r#"let p = progress(20, "train"); for i in 0..20 { p.tick(#{loss: 1.0 / (i + 1)}); } p.finish();"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args([
            "run",
            script.to_str().unwrap(),
            "--out",
            tmp.path().join("o").to_str().unwrap(),
        ])
        .env("GANSCRIPT_PROGRESS", "plain")
        .env("GANSCRIPT_PROGRESS_INTERVAL", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("train ")).collect();
    assert_eq!(lines.len(), 20, "{err}");
    assert!(
        lines[0].starts_with("train 1/20 ") && lines[0].contains("loss=1.0000"),
        "{err}"
    );
    assert!(
        lines[18].starts_with("train 19/20 ") && lines[18].contains("ETA"),
        "{err}"
    );
    let last = lines.last().unwrap();
    assert!(
        last.starts_with("train done: 20/20 in ")
            && (last.contains("it/s") || last.contains("s/it"))
            && last.contains("loss=0.0500"),
        "{err}"
    );
    // The run directory is made before the script starts (an unwritable --out fails at
    // once); progress alone writes nothing in it but config.json.
    let mut files: Vec<String> = std::fs::read_dir(tmp.path().join("o"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    files.sort();
    assert_eq!(files, ["config.json"]);
}

#[test]
fn a_log_scale_plot_of_values_that_are_never_positive_says_so() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = r#"
        for t in 1..4 { log(#{ step: t, gamma: 0.0, loss: 1.0 * t }); }
        plot("loss.png", ["loss"], #{ log_y: true });
        plot("gamma.png", ["gamma"], #{ log_y: true });
    "#;
    let (r, _) = run_in(tmp.path(), &out, text, &[]);
    let msg = r.unwrap_err();
    assert!(
        msg.contains("gamma has no positive values to draw on a log scale"),
        "{msg}"
    );
    assert!(out.join("loss.png").exists());
    assert!(!out.join("gamma.png").exists());
}

#[test]
fn metrics_csv_quotes_keys_and_strings_that_need_it() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = r#"
        log(#{ step: 1, "a,b": 1.5, "two\nlines": 2, "say \"hi\"": "x, \"y\"" });
        log(#{ step: 2, "a,b": 2.5, plain: "z" });
    "#;
    let (r, _) = run_in(tmp.path(), &out, text, &[]);
    assert!(r.is_ok(), "{r:?}");
    // Read back by an independent CSV reader: one field per key, one record per row.
    let mut rd = csv::Reader::from_path(out.join("metrics.csv")).unwrap();
    let header: Vec<String> = rd.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(header, ["step", "a,b", "say \"hi\"", "two\nlines", "plain"]);
    let rows: Vec<Vec<String>> = rd
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0], ["1", "1.5", "x, \"y\"", "2", ""]);
    assert_eq!(rows[1], ["2", "2.5", "", "", "z"]);
}

#[test]
fn a_closed_stdout_or_stderr_exits_with_1() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("loud.rhai");
    std::fs::write(&script, "for i in 0..200000 { print(`line ${i}`); }").unwrap();
    // Like `ganscript run loud.rhai | head -0`: the reader goes away at once.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args(["run", script.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("o1"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
    // A script error reported to a closed stderr.
    let bad = tmp.path().join("bad.rhai");
    std::fs::write(&bad, "let x = zeros([2]) + ones([3]);").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args(["run", bad.to_str().unwrap(), "--out"])
        .arg(tmp.path().join("o2"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(1));
}

/// Every 3-D scatter of a run uses one projection: the principal plane of the first scatter's
/// mode centres, saved in projection.json. Here the centres lie in the plane z = 1 and the
/// sample points spread far along z (their own principal plane would contain z): both pictures
/// are drawn in the centres' plane, and the saved projection does not change.
#[test]
fn all_scatters_of_a_run_share_the_datas_projection() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let text = r#"
        let centers = tensor([[2.0, 0.0, 1.0], [0.0, 1.0, 1.0], [-2.0, 0.0, 1.0], [0.0, -1.0, 1.0]]);
        let spread = tensor([[0.0, 0.0, -50.0], [0.0, 0.0, 50.0], [0.1, 0.0, 0.0], [0.0, 0.1, 3.0]]);
        scatter("samples_step1.png", spread, #{ centers: centers });
        scatter("real.png", centers + 0.01, #{ centers: centers });
        scatter("samples_step2.png", spread * 2.0, #{ centers: centers });
        0
    "#;
    let (r, _) = run_in(tmp.path(), &out, text, &[]);
    let _ = r.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("projection.json")).unwrap())
            .unwrap();
    let three = |k: &str| -> Vec<f64> {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (m, a, b) = (three("mean"), three("axis1"), three("axis2"));
    // the centres' mean, and axes in the plane z = const (no z component), orthonormal
    for (got, want) in m.iter().zip([0.0, 0.0, 1.0]) {
        assert!((got - want).abs() < 1e-12, "{m:?}");
    }
    assert!(a[2].abs() < 1e-9 && b[2].abs() < 1e-9, "{a:?} {b:?}");
    let dot = |x: &[f64], y: &[f64]| x.iter().zip(y).map(|(p, q)| p * q).sum::<f64>();
    assert!((dot(&a, &a) - 1.0).abs() < 1e-9 && (dot(&b, &b) - 1.0).abs() < 1e-9);
    assert!(dot(&a, &b).abs() < 1e-9);
    // the first axis is the centres' long one (x: ±2 against y: ±1)
    assert!(a[0].abs() > 0.999, "{a:?}");
    assert!(
        v["from"].as_str().unwrap().contains("samples_step1.png"),
        "{v}"
    );
    for f in ["samples_step1.png", "real.png", "samples_step2.png"] {
        assert!(out.join(f).exists(), "{f}");
    }

    // Without centres, the first scatter's own points fix it (and later ones keep it).
    let out2 = tmp.path().join("run2");
    let text = r#"
        scatter("a.png", tensor([[0.0, 0.0, -5.0], [0.0, 0.0, 5.0], [1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]]));
        scatter("b.png", tensor([[0.0, 9.0, 0.0], [0.0, -9.0, 0.0], [0.0, 0.0, 0.1], [0.1, 0.0, 0.0]]));
        0
    "#;
    let (r, _) = run_in(tmp.path(), &out2, text, &[]);
    let _ = r.unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out2.join("projection.json")).unwrap())
            .unwrap();
    let a: Vec<f64> = v["axis1"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    assert!(
        a[2].abs() > 0.999,
        "the first scatter's long axis (z): {a:?}"
    );
    assert!(v["from"].as_str().unwrap().contains("a.png"), "{v}");
}
