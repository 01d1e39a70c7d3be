//! The REPL's input and output: an incomplete line waits for the rest, strings print raw,
//! `:vars` lists the session's functions.

use ganscript::repl::{is_incomplete, Repl};
use ganscript::session::EngineOptions;
use std::io::Write;
use std::process::{Command, Stdio};

fn repl() -> Repl {
    Repl::new(&EngineOptions::default()).unwrap()
}

#[test]
fn an_incomplete_line_waits_for_the_rest() {
    let mut r = repl();
    let o = r.handle_line("let b =");
    assert!(o.more && o.err.is_empty(), "{}", o.err);
    assert_eq!(r.session.prompt(), "... ");
    let o = r.handle_line("  2 * 21;");
    assert!(!o.more && o.err.is_empty(), "{}", o.err);
    assert_eq!(r.handle_line("b").out, "42\n");

    // A trailing operator, a condition without its block, a dot without its property.
    for (first, rest, want) in [
        ("let c = b +", "1;", None),
        ("if b > 1", "{ 7 } else { 8 }", Some("7\n")),
        ("b.", "to_string()", Some("42\n")),
    ] {
        let o = r.handle_line(first);
        assert!(o.more, "`{first}` should wait: {}", o.err);
        let o = r.handle_line(rest);
        assert!(!o.more && o.err.is_empty(), "{first} {rest}: {}", o.err);
        if let Some(w) = want {
            assert_eq!(o.out, w, "{first} {rest}");
        }
    }
    assert_eq!(r.handle_line("c").out, "43\n");

    // A real error is reported at once, not waited on.
    let o = r.handle_line("let x = 1 let");
    assert!(!o.more && o.err.contains("syntax error"), "{}", o.err);
    let o = r.handle_line("let y = ;");
    assert!(!o.more && !o.err.is_empty());

    // An empty line submits an input that still lacks its end: the error shows.
    assert!(r.handle_line("let d =").more);
    let o = r.handle_line("");
    assert!(!o.more && o.err.contains("syntax error"), "{}", o.err);
    assert_eq!(r.session.prompt(), "> ");
}

#[test]
fn incompleteness_is_judged_at_the_end_of_the_input() {
    let engine = rhai::Engine::new();
    for text in ["let b =", "1 +", "foo(1, 2) *\n", "fn f(x)", "while", "x."] {
        assert!(is_incomplete(&engine, text), "{text:?}");
    }
    for text in [
        "let b = 1;",
        "let x = 1 let",
        "x = = 2",
        "1 + 2 }",
        "let s = \"ab",
    ] {
        assert!(!is_incomplete(&engine, text), "{text:?}");
    }
}

#[test]
fn piped_input_continues_an_incomplete_line_and_prints_strings_raw() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .arg("repl")
        .current_dir(dir.path())
        .env("GANSCRIPT_HISTORY", dir.path().join("history"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"let total =\n  40 +\n  2;\ntotal\n\"two\\nlines\"\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout, "42\ntwo\nlines\n", "stderr: {stderr}");
}

#[test]
fn vars_lists_variables_and_functions() {
    let mut r = repl();
    assert!(r.handle_line("let lr = 0.5;").err.is_empty());
    assert!(r
        .handle_line("/// Doubles x.\nfn double(x) { 2 * x }")
        .err
        .is_empty());
    assert!(r.handle_line("fn add(a, b) { a + b }").err.is_empty());
    let out = r.handle_line(":vars").out;
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.contains(&"lr: f64 = 0.5"), "{out}");
    assert!(lines.contains(&"fn add(a, b)"), "{out}");
    assert!(lines.contains(&"fn double(x)  // Doubles x."), "{out}");
    // Only functions: no "(no variables)" line.
    let mut r = repl();
    r.handle_line(":reset");
    assert!(r.handle_line("fn one() { 1 }").err.is_empty());
    let out = r.handle_line(":vars").out;
    assert!(out.contains("fn one()"), "{out}");
}
