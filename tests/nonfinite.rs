//! Non-finite values from the command line: `opt.step` stops at a NaN or Inf loss or gradient
//! (naming the line, and the net and parameter), `--allow-nonfinite` trains on, and
//! `--detect-anomaly` names the first op whose output is not finite, at its own line.

mod common;

use std::path::Path;

/// Runs `src` as a script in a fresh directory with `flags`; (exit success, stdout, stderr).
fn run(src: &str, flags: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("s.rhai");
    std::fs::write(&script, src).unwrap();
    let out_dir = dir.path().join("run");
    let mut args = vec![
        "run",
        script.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(flags);
    let o = common::ganscript_in(Path::new(dir.path()), &args);
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

const INF_LOSS: &str = "let w = variable(ones([2]));\nlet o = sgd(w, 0.1);\n\
                        o.step((w - w).log().sum());\nprint(`w = ${w.to_array()}`);\n";

#[test]
fn a_non_finite_loss_stops_the_step_at_its_line() {
    let (ok, out, err) = run(INF_LOSS, &[]);
    assert!(!ok, "the run went on: {out}");
    assert!(
        err.contains("sgd.step: the loss is -inf; nothing was updated"),
        "{err}"
    );
    assert!(err.contains("s.rhai:3:3"), "no line and column: {err}");
    assert!(
        !out.contains("w ="),
        "the script went on after the step: {out}"
    );
}

#[test]
fn allow_nonfinite_trains_on() {
    let (ok, out, err) = run(INF_LOSS, &["--allow-nonfinite"]);
    assert!(ok, "{err}");
    // The loss is -inf and its gradient (1/(w - w) - 1/(w - w)) is NaN: w becomes NaN.
    assert!(out.contains("w = [NaN, NaN]"), "{out}");
}

#[test]
fn a_non_finite_gradient_names_the_net_and_parameter() {
    // sqrt at 0: a finite loss (0) with an infinite derivative.
    let src = "let D = linear(2, 1);\ntrack(\"D\", D);\nlet o = sgd(D, 0.1);\n\
               let x = ones([3, 2]);\n\
               o.step((D.forward(x) - D.forward(x)).sqrt().sum());\n";
    let (ok, _, err) = run(src, &[]);
    assert!(!ok);
    assert!(
        err.contains("the gradient of parameter `weight` of net `D` is not finite"),
        "{err}"
    );
    assert!(err.contains("s.rhai:5:3"), "{err}");
}

#[test]
fn detect_anomaly_names_the_first_op_at_its_line() {
    let src = "let a = ones([2]);\nlet b = a.log();\nlet c = (a - 1.0).log();\n\
               let d = c * 2.0;\nprint(d);\n";
    let (ok, _, err) = run(src, &["--detect-anomaly"]);
    assert!(!ok);
    assert!(
        err.contains("--detect-anomaly: `log` returned a non-finite value (-inf at [0])"),
        "{err}"
    );
    assert!(err.contains("s.rhai:3:19"), "{err}");
    // Without the switch the same script runs to its end (no optimizer step checks it).
    let (ok, out, err) = run(src, &[]);
    assert!(ok, "{err}");
    assert!(out.contains("-inf"), "{out}");
}
