//! `ganscript sweep`: the sweep file's expansion and directory names, the local runner
//! (skipping finished runs, resuming stopped ones, isolating failures), `--gather`'s tables,
//! the Slurm array script and the array task's entry point. (scripts/test-slurm.sh submits a
//! sweep to a real Slurm.)

use ganscript::settings::parse_value;
use ganscript::sweep::slurm::{array_spec, parse_ranges};
use ganscript::sweep::spec::Value;
use ganscript::sweep::Sweep;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sweep_cmd(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .arg("sweep")
        .args(args)
        .current_dir(dir)
        .env("GANSCRIPT_PROGRESS", "off")
        .output()
        .unwrap()
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn parse(toml: &str) -> Result<Sweep, String> {
    Sweep::parse(toml, Path::new("/lab/sweeps/s.toml")).map_err(|e| e.to_string())
}

fn names(s: &Sweep) -> Vec<String> {
    s.runs.iter().map(|r| r.name.clone()).collect()
}

#[test]
fn the_grid_expands_seed_by_seed_in_the_files_key_order() {
    let s = parse(
        r#"
        script = "../scripts/roth.rhai"
        out = "../runs/roth"
        seeds = [1, 2]
        [set]
        dataset = "mixture3d"
        steps = 40
        [grid]
        gamma = [0.0, 0.1, 2]
        anneal = [true, false]
        "#,
    )
    .unwrap();
    assert_eq!(
        names(&s),
        [
            "gamma=0.0,anneal=true-s1",
            "gamma=0.0,anneal=false-s1",
            "gamma=0.1,anneal=true-s1",
            "gamma=0.1,anneal=false-s1",
            "gamma=2,anneal=true-s1",
            "gamma=2,anneal=false-s1",
            "gamma=0.0,anneal=true-s2",
            "gamma=0.0,anneal=false-s2",
            "gamma=0.1,anneal=true-s2",
            "gamma=0.1,anneal=false-s2",
            "gamma=2,anneal=true-s2",
            "gamma=2,anneal=false-s2",
        ]
    );
    assert_eq!(s.root, PathBuf::from("/lab/runs/roth"));
    let r = &s.runs[3];
    assert_eq!(r.index, 3);
    assert_eq!(r.seed, 1);
    assert_eq!(r.config, "gamma=0.1,anneal=false");
    assert_eq!(
        r.dir,
        PathBuf::from("/lab/runs/roth/gamma=0.1,anneal=false-s1")
    );
    assert_eq!(r.script, PathBuf::from("/lab/scripts/roth.rhai"));
    assert_eq!(
        r.set_args(),
        ["dataset=mixture3d", "steps=40", "gamma=0.1", "anneal=false"]
    );
    assert_eq!(s.configs().len(), 6);
    assert_eq!(s.varied_keys(), ["gamma", "anneal"]);
}

#[test]
fn cases_name_their_directories_override_the_fixed_settings_and_cross_the_grid() {
    let s = parse(
        r#"
        script = "/abs/roth.rhai"
        out = "/tmp/out"
        seeds = [7]
        [set]
        gamma = 1.0
        steps = 10
        [grid]
        lr = [1e-3, 0.5]
        [[case]]
        name = "unreg"
        set = { gamma = 0.0 }
        [[case]]
        set = { gamma = 0.1, anneal = true, data = "a b/c" }
        [[case]]
        script = "ebgan.rhai"
        "#,
    )
    .unwrap();
    assert_eq!(
        names(&s),
        [
            "unreg,lr=0.001-s7",
            "unreg,lr=0.5-s7",
            "gamma=0.1,anneal=true,data=a_b_c,lr=0.001-s7",
            "gamma=0.1,anneal=true,data=a_b_c,lr=0.5-s7",
            "ebgan,lr=0.001-s7",
            "ebgan,lr=0.5-s7",
        ]
    );
    // A case's settings replace [set]'s in place; the grid's come last.
    assert_eq!(s.runs[0].set_args(), ["gamma=0.0", "steps=10", "lr=0.001"]);
    assert_eq!(
        s.runs[2].set_args(),
        [
            "gamma=0.1",
            "steps=10",
            "anneal=true",
            "data=a b/c",
            "lr=0.001"
        ]
    );
    assert_eq!(s.runs[0].script, PathBuf::from("/abs/roth.rhai"));
    assert_eq!(s.runs[4].script, PathBuf::from("/lab/sweeps/ebgan.rhai"));
    assert_eq!(
        s.runs[0].varied,
        [
            ("case".into(), "unreg".into()),
            ("lr".into(), "0.001".into())
        ]
    );
    assert_eq!(
        s.varied_keys(),
        ["case", "lr", "gamma", "anneal", "data", "script"]
    );
}

#[test]
fn a_sweep_with_nothing_varied_is_named_after_its_script() {
    let s = parse("script = \"x/train.rhai\"\nout = \"o\"\nseeds = [3, 1]").unwrap();
    assert_eq!(names(&s), ["train-s3", "train-s1"]);
    // Seeds default to [0].
    let s = parse("script = \"train.rhai\"\nout = \"o\"").unwrap();
    assert_eq!(names(&s), ["train-s0"]);
}

#[test]
fn setting_values_read_back_as_the_same_values() {
    let cases = [
        (Value::Float(2.0), "2.0"),
        (Value::Float(1e-5), "1e-5"),
        (Value::Int(3), "3"),
        (Value::Bool(true), "true"),
        (Value::Str("mnist".into()), "mnist"),
        (Value::Str("1".into()), "\"1\""),
        (Value::Str("false".into()), "\"false\""),
        (Value::Str(" padded".into()), "\" padded\""),
    ];
    for (v, want) in cases {
        assert_eq!(v.set_text(), want, "{v:?}");
        let back = parse_value(&v.set_text());
        match &v {
            Value::Float(f) => assert_eq!(back.as_float().unwrap(), *f),
            Value::Int(i) => assert_eq!(back.as_int().unwrap(), *i),
            Value::Bool(b) => assert_eq!(back.as_bool().unwrap(), *b),
            Value::Str(s) => assert_eq!(back.into_string().unwrap(), *s),
        }
    }
}

#[test]
fn bad_sweep_files_name_the_file_and_what_is_wrong() {
    let err = |t: &str| parse(t).unwrap_err();
    let e = err("script = \"a.rhai\"\nout = \"o\"\nsedes = [1]");
    assert!(
        e.contains("/lab/sweeps/s.toml") && e.contains("line 3") && e.contains("sedes"),
        "{e}"
    );
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[grid]\ngamma = 0.1");
    assert!(
        e.contains("line 4") && e.contains("a list of values"),
        "{e}"
    );
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[grid]\ngamma = []");
    assert!(
        e.contains("line 4") && e.contains("at least one value"),
        "{e}"
    );
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[set]\nx = [1, 2]");
    assert!(e.contains("line 4") && e.contains("a setting value"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[set]\n\"bad key\" = 1");
    assert!(e.contains("not a setting name"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[set]\ng = 1\n[grid]\ng = [1, 2]");
    assert!(e.contains("`g` is both in [set] and in [grid]"), "{e}");
    let e = err("script = \"a.rhai\"\n[grid]\ng = [1, 2]");
    assert!(e.contains("/lab/sweeps/s.toml: no `out`"), "{e}");
    let e = err("out = \"o\"\n[grid]\ng = [1, 2]");
    assert!(e.contains("no `script`"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\nseeds = []");
    assert!(e.contains("`seeds` is empty"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\nseeds = [1, 1]");
    assert!(e.contains("seed 1 is listed twice"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[[case]]\nname = \"a/b\"");
    assert!(e.contains("case 1") && e.contains("`a/b`"), "{e}");
    // Two values that clean to the same name.
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[grid]\nd = [\"a b\", \"a/b\"]");
    assert!(e.contains("share the directory `d=a_b-s0`"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[grid]\ng = [1]\n[[case]]\nset = { g = 2 }");
    assert!(e.contains("case 1 sets `g`"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \"o\"\n[slurm]\ngpus = 1");
    assert!(e.contains("gpus"), "{e}");
    let e = err("script = \"a.rhai\"\nout = \n");
    assert!(e.contains("line 2"), "{e}");
    // Through the command line: no panic, the file named, exit 1.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), "script = 3\nout = \"o\"").unwrap();
    let o = sweep_cmd(dir.path(), &["bad.toml", "--dry-run"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("bad.toml") && err.contains("line 1"), "{err}");
    let o = sweep_cmd(dir.path(), &["missing.toml", "--dry-run"]);
    let (_, err) = text(&o);
    assert!(
        err.contains("cannot read the sweep file missing.toml"),
        "{err}"
    );
}

/// A tiny training script: logs `loss = a * step` for `steps` steps, checkpointing every step;
/// on its first attempt (not resumed) it throws at step `fail_at`.
const TINY: &str = r#"
let steps = setting("steps", 5);
let a = setting("a", 1.0);
let fail_at = setting("fail_at", 0);
let st = resume_state(#{ step: 0 });
for step in (st.step + 1)..=steps {
    log(#{ step: step, loss: a * step });
    save_checkpoint(#{ step: step });
    if step == fail_at && st.step == 0 { throw "simulated crash"; }
}
"#;

fn steps_logged(run: &Path) -> Vec<i64> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                .as_i64()
                .unwrap()
        })
        .collect()
}

fn status_of(run: &Path) -> String {
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    cfg["status"].as_str().unwrap().to_string()
}

#[test]
fn the_local_runner_skips_finished_runs_and_resumes_stopped_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tiny.rhai"), TINY).unwrap();
    std::fs::write(
        d.join("s.toml"),
        "script = \"tiny.rhai\"\nout = \"runs\"\nseeds = [1]\n[set]\nsteps = 6\n[grid]\nfail_at = [0, 3]\n",
    )
    .unwrap();
    let ok = d.join("runs/fail_at=0-s1");
    let crashed = d.join("runs/fail_at=3-s1");

    let o = sweep_cmd(d, &["s.toml", "--dry-run"]);
    let (out, _) = text(&o);
    assert!(o.status.success());
    assert!(
        out.contains("0  start   fail_at=0-s1  --set steps=6 --set fail_at=0 --seed 1"),
        "{out}"
    );
    assert!(
        out.contains("1  start   fail_at=3-s1  --set steps=6 --set fail_at=3 --seed 1"),
        "{out}"
    );

    // First pass: one run crashes at step 3 (after its checkpoint), the other finishes.
    let o = sweep_cmd(d, &["s.toml", "--jobs", "2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("1 finished") && err.contains("1 failed"),
        "{err}"
    );
    assert!(
        err.contains("FAILED fail_at=3-s1 (exit 1)") && err.contains("simulated crash"),
        "{err}"
    );
    assert_eq!(status_of(&ok), "ok");
    assert_eq!(steps_logged(&ok), [1, 2, 3, 4, 5, 6]);
    assert_eq!(status_of(&crashed), "error");
    assert_eq!(steps_logged(&crashed), [1, 2, 3]);
    let finished_config = std::fs::read(ok.join("config.json")).unwrap();

    let o = sweep_cmd(d, &["s.toml", "--dry-run"]);
    let (out, _) = text(&o);
    assert!(out.contains("0  skip    fail_at=0-s1"), "{out}");
    assert!(out.contains("1  resume  fail_at=3-s1"), "{out}");

    // Second pass: the finished run is left alone, the crashed one resumes from step 3.
    let o = sweep_cmd(d, &["s.toml", "--jobs", "2"]);
    let (_, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("1 finished, 1 skipped"), "{err}");
    assert_eq!(
        std::fs::read(ok.join("config.json")).unwrap(),
        finished_config
    );
    assert_eq!(status_of(&crashed), "ok");
    assert_eq!(steps_logged(&crashed), [1, 2, 3, 4, 5, 6]);
    let log = std::fs::read_to_string(d.join("runs/logs/fail_at=3-s1.log")).unwrap();
    let attempts: Vec<&str> = log.lines().filter(|l| l.starts_with("=== 20")).collect();
    assert_eq!(attempts.len(), 2, "{log}");
    assert!(
        attempts[0].contains(" start ") && attempts[0].contains("--out"),
        "{log}"
    );
    assert!(
        attempts[1].contains(" resume ") && attempts[1].contains("--resume"),
        "{log}"
    );
    assert!(log.contains("simulated crash"), "{log}");

    // A run killed before its first checkpoint (config.json still says "running") starts
    // again from scratch in a cleared directory.
    std::fs::remove_file(ok.join("checkpoint.safetensors")).unwrap();
    let cfg = std::fs::read_to_string(ok.join("config.json"))
        .unwrap()
        .replace("\"status\": \"ok\"", "\"status\": \"running\"");
    std::fs::write(ok.join("config.json"), cfg).unwrap();
    std::fs::write(ok.join("stale.txt"), "from the killed attempt").unwrap();
    let o = sweep_cmd(d, &["s.toml"]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert!(!ok.join("stale.txt").exists());
    assert_eq!(status_of(&ok), "ok");
    assert_eq!(steps_logged(&ok), [1, 2, 3, 4, 5, 6]);

    // A directory in the way that is not a run's is not touched.
    std::fs::remove_dir_all(&crashed).unwrap();
    std::fs::create_dir_all(&crashed).unwrap();
    std::fs::write(crashed.join("notes.txt"), "mine").unwrap();
    let o = sweep_cmd(d, &["s.toml"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("not a run directory"), "{err}");
    assert_eq!(
        std::fs::read_to_string(crashed.join("notes.txt")).unwrap(),
        "mine"
    );

    // --status reads the directories.
    let o = sweep_cmd(d, &["s.toml", "--status"]);
    let (out, _) = text(&o);
    assert!(out.contains("fail_at=0-s1  done"), "{out}");
    assert!(out.contains("fail_at=3-s1  unknown"), "{out}");
    assert!(out.contains("2 runs: 1 done, 1 unknown"), "{out}");
}

#[test]
fn a_run_with_a_bad_setting_fails_and_the_others_finish() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tiny.rhai"), TINY).unwrap();
    std::fs::write(
        d.join("s.toml"),
        "script = \"tiny.rhai\"\nout = \"runs\"\nseeds = [1, 2]\n[grid]\nsteps = [2, \"many\", 3]\n",
    )
    .unwrap();
    let o = sweep_cmd(d, &["s.toml", "-j", "2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("4 finished") && err.contains("2 failed"),
        "{err}"
    );
    for seed in [1, 2] {
        assert!(
            err.contains(&format!("FAILED steps=many-s{seed} (exit 1)")),
            "{err}"
        );
        assert_eq!(
            steps_logged(&d.join(format!("runs/steps=2-s{seed}"))),
            [1, 2]
        );
        assert_eq!(
            steps_logged(&d.join(format!("runs/steps=3-s{seed}"))),
            [1, 2, 3]
        );
    }
    assert!(
        err.contains("--set steps=many: expected an integer"),
        "{err}"
    );
    assert!(err.contains("runs/logs/steps=many-s1.log"), "{err}");
}

fn write_run(root: &Path, name: &str, status: &str, rows: &[&str]) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.json"),
        format!("{{\"status\": \"{status}\", \"given\": {{}}}}"),
    )
    .unwrap();
    std::fs::write(dir.join("metrics.jsonl"), rows.join("\n") + "\n").unwrap();
}

#[test]
fn gather_tables_the_last_metrics_with_mean_and_sd_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "script = \"t.rhai\"\nout = \"runs\"\nseeds = [1, 2, 3]\n[grid]\nlr = [0.1, 0.2]\n",
    )
    .unwrap();
    let root = d.join("runs");
    // lr=0.1: last scores 1, 2, 4; only seed 1 logged `loss` (in an earlier row).
    write_run(
        &root,
        "lr=0.1-s1",
        "ok",
        &[
            r#"{"step": 1, "score": 99, "loss": 5}"#,
            r#"{"step": 2, "score": 1}"#,
        ],
    );
    write_run(&root, "lr=0.1-s2", "ok", &[r#"{"step": 2, "score": 2}"#]);
    write_run(&root, "lr=0.1-s3", "ok", &[r#"{"step": 2, "score": 4}"#]);
    // lr=0.2: seeds 1 and 2 finished with 10 and 13; seed 3 is unfinished and left out.
    write_run(&root, "lr=0.2-s1", "ok", &[r#"{"step": 2, "score": 10}"#]);
    write_run(&root, "lr=0.2-s2", "ok", &[r#"{"step": 2, "score": 13}"#]);
    write_run(
        &root,
        "lr=0.2-s3",
        "running",
        &[r#"{"step": 1, "score": 1000}"#],
    );

    let o = sweep_cmd(d, &["s.toml", "--gather", "--no-eval", "--plot", "score"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    // mean(1, 2, 4) = 7/3; sd = sqrt(((1-7/3)² + (2-7/3)² + (4-7/3)²) / 2) = sqrt(7/3).
    // mean(10, 13) = 11.5; sd = sqrt((1.5² + 1.5²) / 1) = 2.1213.
    // Columns: the x axes first, then the keys as they first appear (a row's keys sorted).
    assert!(
        out.contains("| config | n | step | loss | score |"),
        "{out}"
    );
    assert!(
        out.contains("| lr=0.1 | 3/3 | 2.0000 ± 0.0000 | 5.0000 (1) | 2.3333 ± 1.5275 |"),
        "{out}"
    );
    assert!(
        out.contains("| lr=0.2 | 2/3 | 2.0000 ± 0.0000 |  | 11.5000 ± 2.1213 |"),
        "{out}"
    );
    let gather = root.join("gather");
    let summary = std::fs::read_to_string(gather.join("summary.csv")).unwrap();
    let mut lines = summary.lines();
    assert_eq!(
        lines.next().unwrap(),
        "config,lr,runs,finished,step_mean,step_sd,step_n,loss_mean,loss_sd,loss_n,score_mean,score_sd,score_n"
    );
    let row: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    assert_eq!(&row[..4], ["lr=0.1", "0.1", "3", "3"]);
    assert_eq!(&row[4..10], ["2", "0", "3", "5", "", "1"]);
    let score_mean: f64 = row[10].parse().unwrap();
    let score_sd: f64 = row[11].parse().unwrap();
    assert!((score_mean - 7.0 / 3.0).abs() < 1e-12, "{summary}");
    assert!(
        (score_sd - (7.0f64 / 3.0).sqrt()).abs() < 1e-12,
        "{summary}"
    );
    assert_eq!(row[12], "3");
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(&row[..4], ["lr=0.2", "0.2", "3", "2"]);
    assert_eq!(&row[7..10], ["", "", "0"]);
    assert_eq!(row[10].parse::<f64>().unwrap(), 11.5);
    assert!((row[11].parse::<f64>().unwrap() - 4.5f64.sqrt()).abs() < 1e-12);
    assert_eq!(row[12], "2");
    let runs = std::fs::read_to_string(gather.join("runs.csv")).unwrap();
    let lines: Vec<&str> = runs.lines().collect();
    assert_eq!(lines[0], "run,config,seed,status,lr,step,loss,score");
    assert_eq!(lines[1], "lr=0.1-s1,lr=0.1,1,done,0.1,2,5,1");
    assert_eq!(lines[6], "lr=0.2-s3,lr=0.2,3,running/killed,0.2,1,,1000");
    let md = std::fs::read_to_string(gather.join("summary.md")).unwrap();
    assert!(md.contains("1 of 6 runs are not finished"), "{md}");
    assert!(
        md.contains("| lr=0.2-s3 | running/killed | 1.0000 |  | 1000.0000 |"),
        "{md}"
    );
    let png = image::open(gather.join("score.png")).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
}

#[test]
fn gather_evaluates_the_finished_runs_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // G maps 2-D noise to 2-D points; the checkpoint keeps the mixture's centres.
    std::fs::write(
        d.join("g.rhai"),
        r#"
        let G = linear(2, 2);
        track("G", G);
        log(#{ step: 1, loss: setting("scale", 1.0) });
        save_checkpoint(#{ centers: tensor([[0.0, 0.0], [5.0, 5.0]]), mixture_std: 0.5 });
        "#,
    )
    .unwrap();
    std::fs::write(
        d.join("s.toml"),
        "script = \"g.rhai\"\nout = \"runs\"\nseeds = [1, 2]\n[grid]\nscale = [1.0, 3.0]\n",
    )
    .unwrap();
    let o = sweep_cmd(d, &["s.toml"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = sweep_cmd(d, &["s.toml", "--gather", "--eval-samples", "200"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("eval.modes_captured"), "{out}");
    let runs = std::fs::read_to_string(d.join("runs/gather/runs.csv")).unwrap();
    let header: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
    let modes = header.iter().position(|h| *h == "eval.modes").unwrap();
    for line in runs.lines().skip(1) {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[modes], "2", "{runs}");
    }
    assert_eq!(runs.lines().count(), 5, "{runs}");
}

#[test]
fn slurm_print_only_writes_an_array_script_of_the_unfinished_runs() {
    assert_eq!(array_spec(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    assert_eq!(array_spec(&[4]), "4");
    assert_eq!(parse_ranges("[0-2,5%2]"), [0, 1, 2, 5]);
    assert_eq!(parse_ranges("7"), [7]);

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("s.toml"),
        "script = \"t.rhai\"\nout = \"runs\"\nseeds = [1, 2]\n[grid]\nlr = [0.1, 0.2]\n[slurm]\npartition = \"cpu\"\nmem = \"4G\"\nsbatch_args = [\"--qos=low\"]\n",
    )
    .unwrap();
    // Run 1 (lr=0.2-s1) is finished: it is left out of the array.
    write_run(&d.join("runs"), "lr=0.2-s1", "ok", &[r#"{"step": 1}"#]);
    let o = sweep_cmd(
        d,
        &[
            "s.toml",
            "--slurm",
            "--print-only",
            "--partition",
            "gpu",
            "--time",
            "01:00:00",
            "--gpus-per-run",
            "1",
            "--cpus-per-run",
            "4",
            "--sbatch-arg=--account=lab",
            "-j",
            "2",
        ],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("(3 of 4 runs; not submitted)"), "{out}");
    let script = std::fs::read_to_string(d.join("runs/sweep.sbatch")).unwrap();
    let directives: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("#SBATCH"))
        .collect();
    let root = std::path::absolute(d.join("runs")).unwrap();
    assert_eq!(
        directives,
        [
            "#SBATCH --job-name=gs-s".to_string(),
            "#SBATCH --array=0,2-3%2".into(),
            format!("#SBATCH --output={}/logs/slurm-%A_%a.out", root.display()),
            format!("#SBATCH --chdir={}", d.display()),
            "#SBATCH --ntasks=1".into(),
            "#SBATCH --cpus-per-task=4".into(),
            "#SBATCH --partition=gpu".into(),
            "#SBATCH --time=01:00:00".into(),
            "#SBATCH --mem=4G".into(),
            "#SBATCH --gres=gpu:1".into(),
            "#SBATCH --qos=low".into(),
            "#SBATCH --account=lab".into(),
        ]
    );
    let sweep = Sweep::load(&d.join("s.toml")).unwrap();
    let exec = script.lines().last().unwrap();
    assert_eq!(
        exec,
        format!(
            "exec '{}' sweep '{}' --run-index \"$SLURM_ARRAY_TASK_ID\" --listing {} --device 'cuda'",
            env!("CARGO_BIN_EXE_ganscript"),
            sweep.file.display(),
            sweep.fingerprint()
        )
    );
    assert!(script.contains("export CANDLE_NUM_THREADS=$SLURM_CPUS_PER_TASK"));
    // Slurm options need --slurm.
    let o = sweep_cmd(d, &["s.toml", "--partition", "gpu"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn an_array_task_runs_its_entry_and_refuses_an_edited_listing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("tiny.rhai"), TINY).unwrap();
    let file = d.join("s.toml");
    std::fs::write(
        &file,
        "script = \"tiny.rhai\"\nout = \"runs\"\nseeds = [1]\n[grid]\nsteps = [2, 3]\n",
    )
    .unwrap();
    let fp = Sweep::load(&file).unwrap().fingerprint();
    let o = sweep_cmd(d, &["s.toml", "--run-index", "1", "--listing", &fp]);
    assert!(o.status.success(), "{}", text(&o).1);
    assert_eq!(steps_logged(&d.join("runs/steps=3-s1")), [1, 2, 3]);
    assert!(!d.join("runs/steps=2-s1").exists());
    // Again: finished already.
    let o = sweep_cmd(d, &["s.toml", "--run-index", "1"]);
    let (_, err) = text(&o);
    assert!(
        o.status.success() && err.contains("finished already"),
        "{err}"
    );
    let o = sweep_cmd(d, &["s.toml", "--run-index", "2"]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("--run-index 2") && err.contains("has 2 runs"),
        "{err}"
    );
    // The file edited after submission: the task refuses to guess.
    std::fs::write(
        &file,
        "script = \"tiny.rhai\"\nout = \"runs\"\nseeds = [1]\n[grid]\nsteps = [4, 2, 3]\n",
    )
    .unwrap();
    let o = sweep_cmd(d, &["s.toml", "--run-index", "0", "--listing", &fp]);
    let (_, err) = text(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("changed since this job was submitted"),
        "{err}"
    );
    assert!(!d.join("runs/steps=4-s1").exists());
}

#[test]
fn the_readmes_sweep_file_expands_as_the_readme_says() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```toml\n")
        .expect("a toml block in the README")
        + 8;
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("sweeps/roth.toml");
    let s = Sweep::parse(block, &file).unwrap();
    assert_eq!(s.runs.len(), 12);
    assert!(names(&s).contains(&"gamma=0.1,anneal=true-s2".to_string()));
    assert!(readme.contains("(`gamma=0.1,anneal=true-s2`)"));
    assert!(s.runs[0].script.ends_with("scripts/roth.rhai") && s.runs[0].script.exists());
}

#[test]
fn named_cases_with_their_own_scripts_express_an_experiment_group() {
    // scripts/experiments/run.sh's "magan" group, with its directory names.
    let s = parse(
        r#"
        out = "../runs/experiments"
        seeds = [1, 2]
        set = { epochs = 10 }
        [[case]]
        name = "magan"
        script = "../scripts/magan.rhai"
        [[case]]
        name = "ebgan-m30"
        script = "../scripts/ebgan.rhai"
        set = { margin = 30 }
        [[case]]
        name = "ebgan-m70"
        script = "../scripts/ebgan.rhai"
        set = { margin = 70 }
        "#,
    )
    .unwrap();
    assert_eq!(
        names(&s),
        [
            "magan-s1",
            "ebgan-m30-s1",
            "ebgan-m70-s1",
            "magan-s2",
            "ebgan-m30-s2",
            "ebgan-m70-s2"
        ]
    );
    assert_eq!(s.runs[2].script, PathBuf::from("/lab/scripts/ebgan.rhai"));
    assert_eq!(s.runs[2].set_args(), ["epochs=10", "margin=70"]);
    assert_eq!(s.runs[3].set_args(), ["epochs=10"]);
    // `compare --mean-seeds` groups them by configuration.
    assert_eq!(ganscript::compare::seed_group(&s.runs[4].dir), "ebgan-m30");
}

#[test]
fn the_experiment_groups_are_sweeps_with_experiments_md_s_runs() {
    // scripts/experiments/*.toml: every run behind EXPERIMENTS.md, with the directory names its
    // tables and report.sh use, and every script present.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/experiments");
    let want: &[(&str, usize, &[&str])] = &[
        ("margin", 6, &["margin-lam1-s1", "margin-lam20-s3"]),
        ("magan", 9, &["magan-s1", "magan-nobc-s2", "ebgan-m30-s3"]),
        (
            "roth",
            12,
            &["roth-unreg-s1", "roth-g0.1-ann-s2", "roth-noise-ann-s3"],
        ),
        ("roth5", 6, &["roth5-unreg-s1", "roth5-g0.1-s3"]),
        (
            "maxmargin",
            15,
            &["mm-none-s1", "mm-linf-hinge-s2", "mm-l1-hinge-s3"],
        ),
        ("tempered", 10, &["tan-lens-s1", "tan-nolens-s5"]),
    ];
    for (group, count, some) in want {
        let s = Sweep::load(&dir.join(format!("{group}.toml"))).unwrap();
        let n = names(&s);
        assert_eq!(n.len(), *count, "{group}: {n:?}");
        for name in *some {
            assert!(n.iter().any(|x| x == name), "{group}: no {name} in {n:?}");
        }
        for r in &s.runs {
            assert!(
                r.script.exists(),
                "{group}: {} is missing",
                r.script.display()
            );
            assert!(
                r.dir.ends_with(format!("runs/experiments/{}", r.name)),
                "{}",
                r.dir.display()
            );
        }
    }
    // The settings that make a configuration, as EXPERIMENTS.md states them.
    let m = Sweep::load(&dir.join("maxmargin.toml")).unwrap();
    let linf = m
        .runs
        .iter()
        .find(|r| r.name == "mm-linf-hinge-s1")
        .unwrap();
    assert_eq!(
        linf.set_args(),
        [
            "steps=10000",
            "width=16",
            "lambda=20",
            "grid_every=2500",
            "log_every=100",
            "norm=linf",
            "penalty=hinge"
        ]
    );
    let t = Sweep::load(&dir.join("tempered.toml")).unwrap();
    assert!(t.runs[1].set_args().contains(&"lens=false".to_string()));
    assert!(!t.runs[0].set_args().iter().any(|a| a.starts_with("lens=")));
}
