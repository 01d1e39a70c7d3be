//! The REPL (`ganscript repl`, the `Repl` struct) and pausing a live run with `--interactive`.

use ganscript::repl::{needs_more, Action, Repl};
use ganscript::session::EngineOptions;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Writes `input` to the child's stdin and closes it. A child that exits before reading all
/// of it (a script that ends without pausing, say) closes the pipe: that broken pipe is not a
/// failure, what the child printed tells what happened.
fn feed(child: &mut std::process::Child, input: &str) {
    let mut stdin = child.stdin.take().expect("stdin is piped");
    match stdin.write_all(input.as_bytes()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => panic!("writing the child's stdin: {e}"),
    }
}

/// Runs the binary with `args`, feeding `stdin`; returns (success, stdout, stderr).
fn ganscript(args: &[&str], stdin: &str, cwd: &Path) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args(args)
        .current_dir(cwd)
        .env("GANSCRIPT_HISTORY", cwd.join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    feed(&mut child, stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn repl_session(stdin: &str) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = ganscript(&["repl"], stdin, dir.path());
    assert!(ok, "repl failed: {err}");
    (out, err)
}

fn lines(s: &str) -> Vec<&str> {
    s.lines().collect()
}

#[test]
fn piped_lines_are_evaluated_and_values_printed() {
    let (out, err) = repl_session("1 + 2\nlet a = 5;\na * 2\nlet s = \"hi\";\ns\n");
    // `let` (unit) prints nothing; the string prints as it is.
    assert_eq!(lines(&out), ["3", "10", "hi"], "stderr: {err}");
}

#[test]
fn a_tensor_prints_its_shape_dtype_and_values() {
    let (out, err) = repl_session("ones([2, 2]) * 3.0\n");
    assert!(out.contains("Tensor[2, 2] f32 cpu"), "{out}{err}");
    assert!(out.contains("[[3., 3.],"), "{out}");
}

#[test]
fn multi_line_function_is_defined_then_called() {
    let (out, err) = repl_session(
        "fn sq(a) {\n    // } in a comment\n    let s = \"{[(\";\n    a * a\n}\nsq(7)\nsq(sq(2))\n",
    );
    assert_eq!(lines(&out), ["49", "16"], "stderr: {err}");
}

#[test]
fn the_struct_reports_incomplete_input() {
    let mut r = Repl::new(&EngineOptions::default()).unwrap();
    let o = r.handle_line("let v = [1,");
    assert!(o.more && o.out.is_empty());
    assert_eq!(r.session.prompt(), "... ");
    let o = r.handle_line("2, 3];");
    assert!(!o.more && o.err.is_empty(), "{}", o.err);
    assert_eq!(r.handle_line("v.len()").out, "3\n");
    assert_eq!(r.handle_line(":quit").action, Action::Quit);
}

#[test]
fn bracket_balance_ignores_strings_and_comments() {
    assert!(needs_more("fn f() {"));
    assert!(needs_more("foo(1,\n[2"));
    assert!(!needs_more("let s = \"{(\";"));
    assert!(!needs_more("let c = '{';"));
    assert!(!needs_more("1 // {"));
    assert!(!needs_more("1 /* { */"));
    assert!(needs_more("1 /* { "));
    assert!(needs_more("let s = `multi\nline {"));
    assert!(!needs_more("let s = `a {`;"));
}

#[test]
fn completion_of_functions_variables_script_fns_and_commands() {
    let mut r = Repl::new(&EngineOptions::default()).unwrap();
    let (start, c) = r.complete("let x = ran", 11);
    assert_eq!(start, 8);
    assert!(
        c.contains(&"randn".to_string()) && c.contains(&"rand".to_string()),
        "{c:?}"
    );
    assert!(c.iter().all(|n| n.starts_with("ran")), "{c:?}");

    assert!(r.handle_line("let my_lr = 0.1;").err.is_empty());
    assert!(r.handle_line("fn my_fun(x) { x }").err.is_empty());
    let (start, c) = r.complete("my_", 3);
    assert_eq!(start, 0);
    assert_eq!(c, ["my_fun", "my_lr"]);

    let (start, c) = r.complete(":he", 3);
    assert_eq!((start, c), (0, vec![":help".to_string()]));
    // After a dot: methods, not variables.
    let (_, c) = r.complete("my_lr.my_", 9);
    assert_eq!(c, ["my_fun"]);
}

#[test]
fn an_error_prints_a_diagnostic_and_the_session_goes_on() {
    let (out, err) = repl_session("let a = 2;\nzeros([2]) + ones([3])\nno_such_fn(1)\na + 1\n");
    assert_eq!(lines(&out), ["3"]);
    assert!(
        err.contains("zeros([2]) + ones([3])"),
        "the line is shown: {err}"
    );
    assert!(err.contains("[2]") && err.contains("[3]"), "{err}");
    assert!(err.contains("unknown function: no_such_fn"), "{err}");
}

#[test]
fn load_keeps_the_files_functions_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("lib.rhai"),
        "fn double(x) { x * 2 }\nlet base = 21;\n",
    )
    .unwrap();
    let (ok, out, err) = ganscript(&["repl"], ":load lib.rhai\ndouble(base)\n", dir.path());
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["loaded lib.rhai", "42"], "{err}");
    // FILE given on the command line is loaded first.
    let (ok, out, err) = ganscript(&["repl", "lib.rhai"], "double(base) + 1\n", dir.path());
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["43"], "{err}");
}

#[test]
fn vars_lists_a_tensor_with_its_shape() {
    let (out, err) = repl_session("let t = zeros([2, 3]);\nlet n = 4;\n:vars\n");
    assert!(out.contains("t: Tensor[2, 3] f32 cpu"), "{out}{err}");
    assert!(out.contains("n: i64 = 4"), "{out}");
}

#[test]
fn help_time_reset_and_unknown_commands() {
    let (out, err) =
        repl_session(":help\n:help randn\nfn f() { 1 }\n:time f() + 1\n:reset\nf()\n:frobnicate\n");
    assert!(out.contains(":load FILE") && out.contains(":vars"), "{out}");
    assert!(out.contains("Standard normal samples"), "{out}");
    assert!(out.contains("2\ntime: "), "{out}");
    assert!(out.contains("session reset"), "{out}");
    assert!(
        err.contains("unknown function: f ()"),
        "f is gone after :reset: {err}"
    );
    assert!(err.contains("unknown command :frobnicate"), "{err}");
}

#[test]
fn imports_stay_available() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("m.rhai"), "fn triple(x) { x * 3 }\n").unwrap();
    let (ok, out, err) = ganscript(&["repl"], "import \"m\" as m;\nm::triple(5)\n", dir.path());
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["15"], "{err}");
}

const PAUSING: &str = "let lr = 0.1;\nlet penalty = |x| x * 2;\nfor step in 0..4 {\n    if step == 2 { pause(); }\n    print(`step ${step} lr ${lr} pen ${penalty.call(step)}`);\n}\n";

fn run_script(src: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), src).unwrap();
    let mut all = vec!["run", "s.rhai", "--out", "out"];
    all.extend_from_slice(args);
    ganscript(&all, stdin, dir.path())
}

#[test]
fn a_paused_run_resumes_with_the_changed_value() {
    let (ok, out, err) = run_script(PAUSING, &["--interactive"], "lr = 0.5;\nlr\n:continue\n");
    assert!(ok, "{err}");
    assert_eq!(
        lines(&out),
        [
            "step 0 lr 0.1 pen 0",
            "step 1 lr 0.1 pen 2",
            "0.5",
            "step 2 lr 0.5 pen 4",
            "step 3 lr 0.5 pen 6"
        ],
        "{err}"
    );
    assert!(err.contains("paused at s.rhai:4"), "{err}");
}

#[test]
fn a_closure_defined_at_the_paused_prompt_is_used_after_continue() {
    // The new closure calls a function defined in the same input and one of the script's.
    let src = format!("fn offset() {{ 100 }}\n{PAUSING}");
    let (ok, out, err) = run_script(
        &src,
        &["-i"],
        "fn tw(x) { x * 1000 }\npenalty = |x| tw(x) + offset();\n:continue\n",
    );
    assert!(ok, "{err}");
    assert_eq!(
        lines(&out),
        [
            "step 0 lr 0.1 pen 0",
            "step 1 lr 0.1 pen 2",
            "step 2 lr 0.1 pen 2100",
            "step 3 lr 0.1 pen 3100"
        ],
        "{err}"
    );
}

#[test]
fn quit_at_the_paused_prompt_stops_the_run_cleanly() {
    let (ok, out, err) = run_script(PAUSING, &["-i"], ":vars\n:quit\n");
    assert!(ok, "{err}");
    assert!(
        out.contains("lr: f64 = 0.1") && out.contains("step: i64 = 2"),
        "{out}"
    );
    assert!(!out.contains("step 2"), "{out}");
    assert!(err.contains("(:quit)"), "{err}");
}

#[test]
fn quit_at_the_paused_prompt_records_the_run_as_stopped_not_failed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), PAUSING).unwrap();
    let (ok, _, err) = ganscript(
        &["run", "s.rhai", "--out", "out", "-i"],
        ":quit\n",
        dir.path(),
    );
    assert!(ok, "{err}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["status"], "stopped", "{cfg}");
    assert!(
        cfg["error"].as_str().is_some_and(|e| e.contains("(:quit)")),
        "{cfg}"
    );
}

#[test]
fn without_interactive_pause_is_a_note_and_the_run_goes_on() {
    let (ok, out, err) = run_script(PAUSING, &[], "lr = 0.5;\n:continue\n");
    assert!(ok, "{err}");
    assert_eq!(lines(&out).len(), 4, "{out}");
    assert!(out.contains("step 3 lr 0.1"), "{out}");
    assert_eq!(err.matches("pause() ignored").count(), 1, "{err}");
}

#[test]
fn step_boundary_only_pauses_when_requested() {
    // No Ctrl-C: step_boundary() never opens the prompt, so the input is not read.
    let src = "let lr = 0.1;\nfor step in 0..3 { step_boundary(); print(`lr ${lr}`); }\n";
    let (ok, out, err) = run_script(src, &["-i"], "lr = 9.0;\n:continue\n");
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["lr 0.1", "lr 0.1", "lr 0.1"], "{err}");
}

/// Starts the binary, waits for the first stdout line, sends SIGINT (Ctrl-C), then collects the
/// rest. A watchdog kills a child that hangs.
#[cfg(unix)]
fn with_ctrl_c(args: &[&str], stdin: &str, cwd: &Path) -> (bool, String, String) {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args(args)
        .current_dir(cwd)
        .env("GANSCRIPT_HISTORY", cwd.join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    feed(&mut child, stdin);
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(30));
        let _ = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status();
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let status = Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let ok = child.wait().unwrap().success();
    drop(watchdog);
    (ok, format!("{first}{rest}"), err)
}

/// Runs `src` (an endless loop that prints "started" and counts `step`) with `-i`, presses
/// Ctrl-C, evaluates `step > 0` at the prompt and quits; checks that and returns stderr.
#[cfg(unix)]
fn paused_by_ctrl_c(src: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("long.rhai"), src).unwrap();
    let (ok, out, err) = with_ctrl_c(
        &["run", "long.rhai", "-i", "--out", "out"],
        "step > 0\n:quit\n",
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["started", "true"], "{err}");
    err
}

#[cfg(unix)]
#[test]
fn ctrl_c_pauses_an_interactive_run_at_the_next_step_boundary() {
    let err = paused_by_ctrl_c(
        "let step = 0;\nprint(\"started\");\nloop { step += 1; let x = zeros([4]).sum(); step_boundary(); }\n",
    );
    assert!(err.contains("before `step_boundary`"), "{err}");
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_an_evaluation_and_the_repl_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = with_ctrl_c(&["repl"], "1\nloop { }\n2\n", dir.path());
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["1", "2"], "{err}");
    assert!(err.contains("interrupted"), "{err}");
}

/// A run that tracks a net and an optimizer, draws random numbers every step, logs, pauses
/// after step 3 and checkpoints every second step.
const TRACKED: &str = r#"let net = sequential([linear(2, 3), relu(), linear(3, 1)]);
let opt = adam(net, 0.05, 0.5, 0.999);
track("net", net); track("opt", opt);
let st = resume_state(#{ step: 0, tag: "t" });
let step = st.step;
while step < 6 {
    step += 1;
    let x = randn([8, 2]);
    opt.step(net.forward(x).sqr().mean());
    log(#{ step: step, y: net.forward(x).mean().item() });
    if step == 3 { pause(); }
    if step % 2 == 0 { save_checkpoint(#{ step: step, tag: "t" }); }
}
print(`end ${step}`);
"#;

fn run_in(dir: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut all = vec!["run", "s.rhai"];
    all.extend_from_slice(args);
    ganscript(&all, stdin, dir)
}

#[test]
fn quit_at_a_paused_run_checkpoints_and_the_resumed_run_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), TRACKED).unwrap();
    // Reference: the same run without --interactive (pause() is a note).
    let (ok, out, err) = run_in(dir.path(), &["--out", "whole", "--seed", "7"], "");
    assert!(ok && out.contains("end 6"), "{err}");
    // Paused after step 3 (between checkpoints at steps 2 and 4), then :quit.
    let (ok, out, err) = run_in(
        dir.path(),
        &["--out", "part", "--seed", "7", "-i"],
        ":quit\n",
    );
    assert!(ok, "{err}");
    assert!(!out.contains("end"), "{out}");
    assert!(
        err.contains("checkpoint written: part/checkpoint.safetensors"),
        "{err}"
    );
    assert!(
        err.contains("continue it later with: ganscript run s.rhai --resume part"),
        "{err}"
    );
    assert!(err.contains("state from the live variables: step"), "{err}");
    assert!(
        err.contains("state kept from the last save_checkpoint: tag"),
        "{err}"
    );
    let csv = |d: &str| std::fs::read_to_string(dir.path().join(d).join("metrics.csv")).unwrap();
    assert_eq!(csv("part").lines().count(), 4, "{}", csv("part"));
    // Resumed from the :quit checkpoint: steps 4 to 6, bit for bit those of the whole run.
    let (ok, out, err) = run_in(dir.path(), &["--resume", "part"], "");
    assert!(ok && out.contains("end 6"), "{err}");
    assert_eq!(csv("part"), csv("whole"));
}

#[test]
fn save_at_a_paused_run_writes_a_checkpoint_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), TRACKED).unwrap();
    let (ok, out, err) = run_in(
        dir.path(),
        &["--out", "r", "-i"],
        ":save #{ step: 100, tag: \"mine\", lr: 0.5 }\n:continue\n",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("checkpoint written: r/checkpoint.safetensors"),
        "{out}"
    );
    assert!(
        out.contains("state: the map given (lr, step, tag)"),
        "{out}"
    );
    assert!(out.contains("end 6"), "{out}");
    // The run's own checkpoints at steps 4 and 6 replaced it: step 6 is what resumes.
    let probe = "let st = resume_state(#{}); print(`resumed at ${st.step} ${st.tag}`);";
    std::fs::write(
        dir.path().join("probe.rhai"),
        format!(
            "{}\n{probe}",
            TRACKED.lines().take(3).collect::<Vec<_>>().join("\n")
        ),
    )
    .unwrap();
    // (probe.rhai is another script than the run's: --force-script.)
    let (ok, out, err) = ganscript(
        &["run", "probe.rhai", "--resume", "r", "--force-script"],
        "",
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("resumed at 6 t"), "{out}");
}

#[test]
fn save_with_an_explicit_state_map_is_what_resume_state_returns() {
    let dir = tempfile::tempdir().unwrap();
    // Pauses at step 1, before any save_checkpoint: :save with a map, then :quit, whose
    // checkpoint rebuilds that map's keys from the live variables where there are some.
    std::fs::write(
        dir.path().join("s.rhai"),
        TRACKED.replace("step == 3", "step == 1"),
    )
    .unwrap();
    let (ok, _, err) = run_in(
        dir.path(),
        &["--out", "r", "-i"],
        ":save #{ step: step, tag: \"mine\", lr: 0.5 }\n:quit\n",
    );
    assert!(ok, "{err}");
    let probe = format!(
        "{}\nlet st = resume_state(#{{}}); print(`resumed at ${{st.step}} ${{st.tag}} ${{st.lr}}`);",
        TRACKED.lines().take(3).collect::<Vec<_>>().join("\n")
    );
    std::fs::write(dir.path().join("probe.rhai"), probe).unwrap();
    // (probe.rhai is another script than the run's: --force-script.)
    let (ok, out, err) = ganscript(
        &["run", "probe.rhai", "--resume", "r", "--force-script"],
        "",
        dir.path(),
    );
    assert!(ok, "{err}");
    // `step` is the live variable (1); there is no variable `tag` or `lr`, so they keep the
    // values given to :save.
    assert!(out.contains("resumed at 1 mine 0.5"), "{out}");
}

#[test]
fn save_in_a_run_that_tracks_nothing_is_a_clear_error_and_the_prompt_goes_on() {
    let (ok, out, err) = run_script(PAUSING, &["-i"], ":save\nlr\n:continue\n");
    assert!(ok, "{err}");
    assert!(
        err.contains("cannot save: this run tracks no nets or optimizers"),
        "{err}"
    );
    assert!(out.contains("0.1\n"), "{out}");
    assert!(out.contains("step 3"), "{out}");
}

#[test]
fn a_learning_rate_changed_at_the_paused_prompt_shows_in_the_logged_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let src = TRACKED.replace(
        "log(#{ step: step, y: net.forward(x).mean().item() });",
        "log(#{ step: step, lr: opt.lr });",
    );
    std::fs::write(dir.path().join("s.rhai"), src).unwrap();
    let (ok, out, err) = run_in(
        dir.path(),
        &["--out", "r", "-i"],
        "opt.lr = 0.125;\n:continue\n",
    );
    assert!(ok && out.contains("end 6"), "{err}");
    let csv = std::fs::read_to_string(dir.path().join("r/metrics.csv")).unwrap();
    assert_eq!(
        csv.lines().collect::<Vec<_>>(),
        ["step,lr", "1,0.05", "2,0.05", "3,0.05", "4,0.125", "5,0.125", "6,0.125"],
        "{csv}"
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_pauses_at_a_top_level_boundary_not_inside_a_function() {
    let err = paused_by_ctrl_c(
        "fn inner(i) { log(#{ i: i }); }\nlet step = 0;\nprint(\"started\");\nloop { step += 1; inner(step); step_boundary(); }\n",
    );
    assert!(
        err.contains("long.rhai:4 (before `step_boundary`)"),
        "{err}"
    );
}

/// Ctrl-C in a loop whose only step boundary is `log`: the prompt opens after the row is
/// written, so `:quit`'s checkpoint holds it, and the resumed run logs every step once.
#[cfg(unix)]
#[test]
fn a_pause_at_log_opens_after_the_row_so_a_resumed_run_loses_none() {
    let dir = tempfile::tempdir().unwrap();
    let src = r#"let net = sequential([linear(2, 1)]);
let opt = sgd(net, 0.01);
track("net", net); track("opt", opt);
let steps = setting("steps", 100000000);
let step = resume_state(#{ step: 0 }).step;
print("started");
while step < steps {
    step += 1;
    opt.step(net.forward(ones([4, 2])).sqr().mean());
    log(#{ step: step });
}
"#;
    std::fs::write(dir.path().join("long.rhai"), src).unwrap();
    let (ok, out, err) = with_ctrl_c(
        &["run", "long.rhai", "-i", "--out", "out"],
        "print(`at ${step}`);\n:quit\n",
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(err.contains("(after `log`)"), "{err}");
    let at: i64 = out
        .lines()
        .find_map(|l| l.strip_prefix("at "))
        .unwrap_or_else(|| panic!("{out}"))
        .trim()
        .parse()
        .unwrap();
    let steps = |dir: &Path| -> Vec<i64> {
        std::fs::read_to_string(dir.join("out/metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["step"]
                    .as_i64()
                    .unwrap()
            })
            .collect()
    };
    // The row of the step the prompt saw is written.
    assert_eq!(steps(dir.path()).last(), Some(&at));
    let (ok, _, err) = ganscript(
        &[
            "run",
            "long.rhai",
            "--resume",
            "out",
            "--set",
            &format!("steps={}", at + 3),
        ],
        "",
        dir.path(),
    );
    assert!(ok, "{err}");
    let want: Vec<i64> = (1..=at + 3).collect();
    assert_eq!(steps(dir.path()), want);
}

/// What is evaluated at a paused run's prompt (an edit such as `lr = 0.5;`) is recorded in the
/// run's config.json, and stays there when the run finishes.
#[test]
fn edits_at_the_paused_prompt_are_recorded_in_config_json() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.rhai"), PAUSING).unwrap();
    let (ok, out, err) = ganscript(
        &["run", "s.rhai", "--out", "out", "-i"],
        "lr = 0.5;\n:continue\n",
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("step 3 lr 0.5"), "{out}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["status"], "ok", "{cfg}");
    let inputs = cfg["prompt_inputs"].as_array().expect("prompt_inputs");
    assert_eq!(inputs.len(), 1, "{cfg}");
    assert_eq!(inputs[0]["input"], "lr = 0.5;");
    assert!(inputs[0]["time"].as_str().unwrap().ends_with('Z'));
}
