//! Resuming runs, as a careless user would: another script, a flipped bit, a run that died
//! before its first checkpoint, a checkpoint from an older ganscript, stale temporary files, an
//! unwritable run directory. A resume that fails leaves every file of the run as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A small run that tracks a net and an optimizer, logs one row per step and checkpoints after
/// each step; `--set fail_at=N` throws at step N (before its checkpoint).
const SCRIPT: &str = r#"
let steps = setting("steps", 4);
let fail_at = setting("fail_at", 0);
let net = linear(3, 1);
let opt = adam(net, 0.05, 0.5, 0.999);
track("net", net); track("opt", opt);
let st = resume_state(#{ step: 0 });
for step in (st.step + 1)..=steps {
    let x = randn([8, 3]);
    let loss = (net.forward(x) - x.sum(1, true)).sqr().mean();
    opt.step(loss);
    log(#{ step: step, loss: loss.item() });
    if step == fail_at { throw "failed on purpose"; }
    save_checkpoint(#{ step: step });
}
print(`done ${steps}`);
"#;

fn write_script(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&str]) -> Output {
    common::ganscript(args)
}

fn ok(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    err
}

fn failed(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Every file under `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            out.insert(
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            );
        }
    }
    out
}

fn config(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn resume_keeps_the_start_and_records_each_resume() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let (whole, parts) = (tmp.path().join("whole"), tmp.path().join("parts"));
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&whole),
        "--set",
        "steps=6",
    ]));
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&parts),
        "--set",
        "steps=2",
    ]));
    let started = config(&parts)["started"].clone();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    ok(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&parts),
        "--set",
        "steps=4",
    ]));
    ok(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&parts),
        "--set",
        "steps=6",
    ]));
    assert_eq!(
        std::fs::read(whole.join("metrics.jsonl")).unwrap(),
        std::fs::read(parts.join("metrics.jsonl")).unwrap()
    );
    let cfg = config(&parts);
    assert_eq!(cfg["started"], started, "the start time is kept");
    assert_eq!(cfg["status"], "ok");
    let resumes = cfg["resumes"].as_array().unwrap();
    assert_eq!(resumes.len(), 2, "{cfg}");
    assert_eq!(resumes[0]["set"], serde_json::json!(["steps=4"]));
    assert_eq!(resumes[1]["set"], serde_json::json!(["steps=6"]));
    assert_eq!(resumes[1]["from"], "checkpoint");
    assert!(resumes[0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--resume"));
    assert!(resumes[0]["time"].as_str().unwrap() > started.as_str().unwrap());
    assert_eq!(cfg["given"]["steps"], 6);
}

#[test]
fn another_script_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let other = write_script(tmp.path(), "other.rhai", &SCRIPT.replace("0.05", "0.01"));
    let dir = tmp.path().join("run");
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=2",
    ]));
    let before = files(&dir);
    let err = failed(&run(&[
        "run",
        s(&other),
        "--resume",
        s(&dir),
        "--set",
        "steps=3",
    ]));
    assert!(
        err.contains("other.rhai is a different script") && err.contains("--force-script"),
        "{err}"
    );
    assert_eq!(files(&dir), before, "a refused resume changes nothing");
    // The same script edited in place: "changed since the run".
    let edited = write_script(tmp.path(), "train.rhai", &SCRIPT.replace("0.05", "0.02"));
    let err = failed(&run(&["run", s(&edited), "--resume", s(&dir)]));
    assert!(err.contains("changed since the run"), "{err}");
    assert_eq!(files(&dir), before);
    // Forced: it runs, and the history says so (and with which script).
    let err = ok(&run(&[
        "run",
        s(&other),
        "--resume",
        s(&dir),
        "--set",
        "steps=3",
        "--force-script",
    ]));
    assert!(err.contains("--force-script"), "{err}");
    let cfg = config(&dir);
    assert_eq!(cfg["resumes"][0]["force_script"], true);
    assert_eq!(cfg["resumes"][0]["script"], s(&other));
    assert_eq!(
        cfg["script"],
        s(&script),
        "the run's first script stays recorded"
    );
    // The next resume compares with the script used last.
    ok(&run(&[
        "run",
        s(&other),
        "--resume",
        s(&dir),
        "--set",
        "steps=4",
    ]));
    // --force-script needs --resume.
    let out = run(&["run", s(&script), "--force-script"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_flipped_bit_is_named_and_nothing_is_overwritten() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let dir = tmp.path().join("run");
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=2",
    ]));
    let ck = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    // Flip one bit of the last tensor's data (the end of the file).
    let mut bad = bytes.clone();
    let at = bad.len() - 3;
    bad[at] ^= 0x10;
    std::fs::write(&ck, &bad).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bad).unwrap();
    let (header_len, _) = safetensors::SafeTensors::read_metadata(&bad).unwrap();
    let data_start = 8 + header_len;
    let damaged = st
        .tensors()
        .into_iter()
        .find(|(_, v)| {
            let start = v.data().as_ptr() as usize - bad.as_ptr() as usize;
            start <= at && at < start + v.data().len()
        })
        .map(|(n, _)| n)
        .unwrap();
    assert!(at >= data_start);
    let before = files(&dir);
    let err = failed(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&dir),
        "--set",
        "steps=4",
    ]));
    assert!(
        err.contains("checkpoint.safetensors") && err.contains(&format!("`{damaged}`")),
        "{err}"
    );
    assert!(err.contains("damaged"), "{err}");
    assert_eq!(
        files(&dir),
        before,
        "a failed resume leaves every file as it was"
    );
    assert_eq!(config(&dir)["status"], "ok");
}

#[test]
fn a_failed_resume_of_a_finished_run_leaves_it_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let dir = tmp.path().join("run");
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=2",
    ]));
    let before = files(&dir);
    // The same script, but the net no longer fits the checkpoint (an error inside the script,
    // at `track`), and a data loader that fails before resume_state.
    let grown = write_script(
        tmp.path(),
        "grown.rhai",
        &SCRIPT.replace("linear(3, 1)", "linear(3, 2)"),
    );
    let err = failed(&run(&[
        "run",
        s(&grown),
        "--resume",
        s(&dir),
        "--force-script",
    ]));
    assert!(err.contains("`net`") && err.contains("shape"), "{err}");
    let early = write_script(
        tmp.path(),
        "early.rhai",
        &format!("let d = npy(\"missing.npy\");\n{SCRIPT}"),
    );
    let err = failed(&run(&[
        "run",
        s(&early),
        "--resume",
        s(&dir),
        "--force-script",
    ]));
    assert!(err.contains("missing.npy"), "{err}");
    assert_eq!(files(&dir), before, "config.json keeps status ok");
}

#[test]
fn a_run_that_died_before_its_first_checkpoint_starts_again() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let (clean, dir) = (tmp.path().join("clean"), tmp.path().join("run"));
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&clean),
        "--set",
        "steps=3",
    ]));
    // Dies at step 1, after logging it and before any checkpoint.
    let err = failed(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=3",
        "--set",
        "fail_at=1",
    ]));
    assert!(err.contains("failed on purpose"), "{err}");
    assert!(!dir.join("checkpoint.safetensors").exists());
    assert_eq!(config(&dir)["status"], "error");
    let err = ok(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&dir),
        "--set",
        "fail_at=0",
    ]));
    assert!(err.contains("starts again from the beginning"), "{err}");
    assert_eq!(
        std::fs::read(clean.join("metrics.jsonl")).unwrap(),
        std::fs::read(dir.join("metrics.jsonl")).unwrap(),
        "the dead attempt's row is gone and the run is the clean one"
    );
    assert_eq!(config(&dir)["resumes"][0]["from"], "start");
    // A finished run without a checkpoint has nothing to resume.
    let plain = write_script(tmp.path(), "plain.rhai", "log(#{ step: 1 });");
    let p = tmp.path().join("plain");
    ok(&run(&["run", s(&plain), "--out", s(&p)]));
    let err = failed(&run(&["run", s(&plain), "--resume", s(&p)]));
    assert!(err.contains("holds no checkpoint.safetensors"), "{err}");
}

#[test]
fn stale_temporary_files_are_removed_when_the_run_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let dir = tmp.path().join("run");
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=2",
    ]));
    // What a write killed half-way leaves (and a file of the user's that only looks alike).
    std::fs::write(dir.join("checkpoint.safetensors.tmp"), b"half").unwrap();
    std::fs::write(dir.join("metrics.csv.tmp"), b"half").unwrap();
    std::fs::create_dir_all(dir.join("samples")).unwrap();
    std::fs::write(dir.join("samples/x.png.tmp"), b"half").unwrap();
    std::fs::write(dir.join("notes.tmp"), b"mine").unwrap();
    ok(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&dir),
        "--set",
        "steps=3",
    ]));
    assert!(!dir.join("checkpoint.safetensors.tmp").exists());
    assert!(!dir.join("metrics.csv.tmp").exists());
    assert!(!dir.join("samples/x.png.tmp").exists());
    assert!(dir.join("notes.tmp").exists());
}

#[test]
fn an_unwritable_run_directory_fails_before_any_work() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(
        tmp.path(),
        "train.rhai",
        &format!("print(\"working\");\n{SCRIPT}"),
    );
    // A run directory below a file cannot be made (a permission check would not hold for root).
    let file = tmp.path().join("a-file");
    std::fs::write(&file, b"x").unwrap();
    let out = run(&["run", s(&script), "--out", s(&file.join("run"))]);
    let err = failed(&out);
    assert!(err.contains("cannot create the run directory"), "{err}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("working"),
        "the script did not start"
    );
}

#[test]
fn a_checkpoint_without_checksums_loads_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let script = write_script(tmp.path(), "train.rhai", SCRIPT);
    let (whole, dir) = (tmp.path().join("whole"), tmp.path().join("run"));
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&whole),
        "--set",
        "steps=3",
    ]));
    ok(&run(&[
        "run",
        s(&script),
        "--out",
        s(&dir),
        "--set",
        "steps=2",
    ]));
    // Rewrite the checkpoint as an older ganscript wrote it: the same tensors and state, no
    // checksums.
    let ck = dir.join("checkpoint.safetensors");
    let bytes = std::fs::read(&ck).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    assert!(meta.remove(ganscript::io::CHECKSUM_KEY).is_some());
    let views: Vec<(String, safetensors::tensor::TensorView)> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect();
    let old = safetensors::serialize(views, Some(meta)).unwrap();
    std::fs::write(&ck, old).unwrap();
    let err = ok(&run(&[
        "run",
        s(&script),
        "--resume",
        s(&dir),
        "--set",
        "steps=3",
    ]));
    assert!(err.contains("records no checksums"), "{err}");
    assert_eq!(
        std::fs::read(whole.join("metrics.jsonl")).unwrap(),
        std::fs::read(dir.join("metrics.jsonl")).unwrap()
    );
}
