//! `ganscript run SCRIPT --list-settings` (found in the syntax tree, nothing runs), and a
//! `--set` key that no `setting(...)` call reads refused before the run starts.

mod common;

use common::ganscript_in;
use std::path::Path;

fn text(o: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn shipped(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
        .display()
        .to_string()
}

#[test]
fn list_settings_shows_names_defaults_and_comments_without_running() {
    let dir = tempfile::tempdir().unwrap();
    let o = ganscript_in(
        dir.path(),
        &["run", &shipped("magan.rhai"), "--list-settings"],
    );
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    let row = |name: &str| {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(row("epochs"), "epochs 30 T_max");
    assert_eq!(row("lr"), "lr 5e-4 α");
    assert!(row("data").starts_with("data \"\" a directory of MNIST IDX files"));
    assert_eq!(out.lines().count(), 1 + 8, "{out}");
    // nothing ran: no run directory
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn list_settings_includes_imported_modules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("parts.rhai"),
        "fn width() { setting(\"width\", 64) }   // hidden units\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("main.rhai"),
        "import \"parts\" as p;\nlet steps = setting(\"steps\", if true { 10 } else { 20 });\nprint(p::width());\n",
    )
    .unwrap();
    let o = ganscript_in(dir.path(), &["run", "main.rhai", "--list-settings"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert!(out.contains("steps"), "{out}");
    assert!(out.contains("if true { 10 } else { 20 }"), "{out}");
    let width = out.lines().find(|l| l.starts_with("width")).expect(&out);
    assert!(
        width.contains("64") && width.contains("hidden units"),
        "{width}"
    );
    assert!(width.contains("parts.rhai:1"), "{width}");
}

#[test]
fn a_set_key_no_setting_reads_is_refused_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let o = ganscript_in(
        dir.path(),
        &[
            "run",
            &shipped("maxmargin.rhai"),
            "--set",
            "lamda=5",
            "--set",
            "steps=1",
        ],
    );
    let (_, err) = text(&o);
    // the report as one line (miette wraps it)
    let err = err
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!o.status.success());
    assert!(err.contains("--set lamda"), "{err}");
    assert!(err.contains("did you mean lambda"), "{err}");
    assert!(err.contains("--list-settings"), "{err}");
    // refused before anything ran or was written
    assert!(!dir.path().join("runs").exists());
}

#[test]
fn computed_setting_names_leave_the_check_to_the_end_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("dyn.rhai"),
        "let key = \"a\"; let a = setting(key, 1); let b = setting(\"b\", 2); print(a + b);\n",
    )
    .unwrap();
    // `zz` may be read by the computed call: the run goes on, and is warned about at the end.
    let o = ganscript_in(dir.path(), &["run", "dyn.rhai", "--set", "zz=1"]);
    let (out, err) = text(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(out.trim(), "3");
    assert!(err.contains("never read by the script"), "{err}");
    // Known keys pass the early check.
    let o = ganscript_in(dir.path(), &["run", "dyn.rhai", "--set", "b=5"]);
    assert_eq!(text(&o).0.trim(), "6");
    let l = ganscript_in(dir.path(), &["run", "dyn.rhai", "--list-settings"]);
    assert!(text(&l).0.contains("computed"), "{}", text(&l).0);
}
