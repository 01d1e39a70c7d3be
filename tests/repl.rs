//! The REPL (`ganscript repl`, the `Repl` struct) and pausing a live run with `--interactive`.

use ganscript::engine::EngineOptions;
use ganscript::repl::{needs_more, Action, Repl};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
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
    // `let` (unit) prints nothing; the string is quoted.
    assert_eq!(lines(&out), ["3", "10", "\"hi\""], "stderr: {err}");
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
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
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

#[cfg(unix)]
#[test]
fn ctrl_c_pauses_an_interactive_run_at_the_next_step_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let src = "let step = 0;\nprint(\"started\");\nloop { step += 1; let x = zeros([4]).sum(); step_boundary(); }\n";
    std::fs::write(dir.path().join("long.rhai"), src).unwrap();
    let (ok, out, err) = with_ctrl_c(
        &["run", "long.rhai", "-i", "--out", "out"],
        "step > 0\n:quit\n",
        dir.path(),
    );
    assert!(ok, "{err}");
    assert_eq!(lines(&out), ["started", "true"], "{err}");
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
