//! Script errors are reported with file, line, column, the source line and a plain message —
//! never a panic.

mod common;
use ganscript::script;
use ganscript::session::EngineOptions;
use rhai::Scope;
use std::process::Command;

fn run_err(
    name: &str,
    src: &str,
    opts: &EngineOptions,
) -> ganscript::diagnostics::ScriptDiagnostic {
    let s = match script::compile(name, src, opts) {
        Ok(s) => s,
        Err(d) => return d,
    };
    s.run(&mut Scope::new())
        .expect_err("the script should fail")
}

#[test]
fn shape_mismatch_names_the_line_and_both_shapes() {
    let src = "let a = zeros([3, 4]);\nlet b = ones([5, 4]);\n\nlet c = a + b;\n";
    let d = run_err("mismatch.rhai", src, &EngineOptions::default());
    assert_eq!(d.line, Some(4));
    assert_eq!(d.file.as_deref(), Some("mismatch.rhai"));
    let text = d.render_plain();
    assert!(text.contains("[3, 4]") && text.contains("[5, 4]"), "{text}");
    assert!(text.contains("mismatch.rhai:4:"), "{text}");
    assert!(
        text.contains("let c = a + b;"),
        "the source line is shown: {text}"
    );
}

#[test]
fn syntax_error_reports_its_position() {
    let src = "let x = 1;\nlet y = (2 + ;\n";
    let d = run_err("syntax.rhai", src, &EngineOptions::default());
    assert_eq!(d.line, Some(2), "{}", d.render_plain());
    assert!(d.message.starts_with("syntax error"), "{}", d.message);
    assert!(d.render_plain().contains("syntax.rhai:2:"));
}

#[test]
fn unknown_function_suggests_the_nearest_names() {
    let d = run_err(
        "typo.rhai",
        "let x = ones([2]);\nlet y = x.sigmod();\n",
        &EngineOptions::default(),
    );
    assert_eq!(d.line, Some(2));
    let help = d.help.clone().unwrap_or_default();
    assert!(help.contains("sigmoid"), "help: {help}");
}

#[test]
fn wrong_argument_types_list_the_overloads() {
    let d = run_err(
        "types.rhai",
        "let x = zeros(\"three\");\n",
        &EngineOptions::default(),
    );
    let text = d.render_plain();
    assert!(text.contains("types.rhai:1:"), "{text}");
    assert!(text.contains("shape"), "{text}");
    let d = run_err(
        "types2.rhai",
        "let x = ones([2]).leaky_relu(\"a\");\n",
        &EngineOptions::default(),
    );
    let help = d.help.clone().unwrap_or_default();
    assert!(
        help.contains("leaky_relu") && help.contains("takes"),
        "{help}"
    );
}

#[test]
fn errors_inside_imported_modules_point_into_that_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("helpers.rhai"),
        "// helpers\nfn bad(x) {\n    x + zeros([7])\n}\n",
    )
    .unwrap();
    let main = "import \"helpers\" as h;\nlet y = h::bad(ones([2]));\n";
    let opts = EngineOptions {
        script_dir: Some(dir.path().to_path_buf()),
        ..Default::default()
    };
    let d = run_err("main.rhai", main, &opts);
    let file = d.file.clone().unwrap_or_default();
    assert!(
        file.ends_with("helpers.rhai"),
        "error located in {file}: {}",
        d.render_plain()
    );
    assert_eq!(d.line, Some(3));
    let text = d.render_plain();
    assert!(text.contains("x + zeros([7])"), "{text}");
    assert!(
        d.related
            .iter()
            .any(|r| r.file.as_deref() == Some("main.rhai") && r.line == Some(2)),
        "{text}"
    );
}

#[test]
fn operation_budget_stops_runaway_scripts() {
    let opts = EngineOptions {
        max_ops: 10_000,
        ..Default::default()
    };
    let d = run_err("loop.rhai", "let i = 0;\nloop { i += 1; }\n", &opts);
    assert!(d.message.contains("operation budget"), "{}", d.message);
}

#[test]
fn scripts_cannot_eval() {
    let d = run_err("eval.rhai", "eval(\"1 + 1\")\n", &EngineOptions::default());
    assert!(d.line == Some(1), "{}", d.render_plain());
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ganscript"))
}

#[test]
fn check_reports_every_syntax_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("many.rhai");
    std::fs::write(
        &f,
        "let a = 1;\nlet b = (;\nlet c = 3;\nlet d = 1 +* 2;\nfn f( { }\n",
    )
    .unwrap();
    let out = bin().arg("check").arg(&f).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for line in [2, 4, 5] {
        assert!(
            err.contains(&format!("many.rhai:{line}:")),
            "line {line} missing:\n{err}"
        );
    }
    assert!(err.contains("3 syntax error(s)"), "{err}");
    let ok = dir.path().join("ok.rhai");
    std::fs::write(&ok, "let a = zeros([2]);\n").unwrap();
    let out = bin().arg("check").arg(&ok).output().unwrap();
    assert!(out.status.success());
}

#[test]
fn run_exit_codes_and_runtime_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.rhai");
    std::fs::write(
        &good,
        "let lr = setting(\"lr\", 0.1);\nprint(`lr=${lr}`);\n",
    )
    .unwrap();
    let out = bin()
        .args(["run"])
        .arg(&good)
        .args(["--set", "lr=0.5"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("lr=0.5"));

    let bad = dir.path().join("bad.rhai");
    std::fs::write(
        &bad,
        "let x = ones([2, 2]);\nlet y = x.matmul(ones([3, 1]));\n",
    )
    .unwrap();
    let out = bin().args(["run"]).arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.rhai:2:"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    let out = bin().args(["run", "/nonexistent/x.rhai"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/x.rhai"));
}

#[test]
fn cuda_in_a_cpu_build_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("a.rhai");
    std::fs::write(&f, "print(1);\n").unwrap();
    let out = bin()
        .arg("run")
        .arg(&f)
        .args(["--device", "cuda"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("without CUDA") && err.contains("--features cuda"),
        "{err}"
    );
}

#[test]
fn doc_lists_registered_functions_with_docs() {
    let out = bin().args(["doc", "randn"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("randn(") && text.contains("seeded"), "{text}");
    let out = bin().arg("doc").output().unwrap();
    let all = String::from_utf8_lossy(&out.stdout);
    for name in ["zeros(", "grad(", "conv2d(", "setting("] {
        assert!(all.contains(name), "{name} missing from doc");
    }
    let out = bin()
        .args(["doc", "no_such_function_xyz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
