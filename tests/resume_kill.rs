//! A real run killed with SIGKILL at random moments (pre-training, training, checkpoint writes,
//! the resume itself) and resumed each time ends exactly as the uninterrupted run: the same
//! metrics rows, byte for byte, the same final checkpoint (every tensor and the saved state), the
//! same sample grids. `GANSCRIPT_KILL_SEED=N` replays a sequence of moments.

mod common;

use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn magan() -> String {
    format!("{}/scripts/magan.rhai", env!("CARGO_MANIFEST_DIR"))
}

const SETTINGS: [&str; 10] = [
    "--set",
    "limit=96",
    "--set",
    "batch=32",
    "--set",
    "pretrain_epochs=2",
    "--set",
    "nz=50",
    "--set",
    "epochs=3",
];

fn spawn(args: &[&str]) -> Child {
    common::command()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: &str) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A tensor as saved: dtype, shape, bytes.
type Saved = (String, Vec<usize>, Vec<u8>);

/// Every tensor of a safetensors file (name → dtype, shape, bytes) and its metadata.
fn tensors(path: &Path) -> (BTreeMap<String, Saved>, serde_json::Value) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        out.insert(
            name.to_string(),
            (
                format!("{:?}", view.dtype()),
                view.shape().to_vec(),
                view.data().to_vec(),
            ),
        );
    }
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let doc: serde_json::Value =
        serde_json::from_str(&header.metadata().as_ref().unwrap()["ganscript"]).unwrap();
    (out, doc)
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

#[test]
fn a_run_killed_at_random_moments_and_resumed_equals_the_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let script = magan();
    let reference = tmp.path().join("reference");
    let t0 = Instant::now();
    let mut args = vec!["run", &script, "--out", reference.to_str().unwrap()];
    args.extend(SETTINGS);
    finish(spawn(&args), "the uninterrupted run");
    let full = t0.elapsed();

    let seed: u64 = std::env::var("GANSCRIPT_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut history = vec![format!(
        "GANSCRIPT_KILL_SEED={seed}; the uninterrupted run took {full:?}"
    )];
    let mut kills = 0;
    // Four runs, the first killed in each quarter of the run's time (pre-training, the first
    // checkpoint, training, the end); each resume is killed again after a random delay, and a
    // last resume finishes the run.
    for chain in 0..4 {
        let run = tmp.path().join(format!("killed{chain}"));
        let run_s = run.to_str().unwrap().to_string();
        for attempt in 0..3 {
            let mut a: Vec<&str> = vec!["run", &script];
            if attempt == 0 {
                a.extend(["--out", &run_s]);
                a.extend(SETTINGS);
            } else {
                a.extend(["--resume", &run_s]);
            }
            let mut child = spawn(&a);
            if attempt == 2 {
                finish(child, &format!("{}\nthe last resume", history.join("\n")));
                break;
            }
            // The run directory and config.json come before any work.
            let start = Instant::now();
            while !run.join("config.json").exists() && start.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(2));
            }
            let frac = if attempt == 0 {
                (chain as f64 + rng.gen_range(0.0..1.0)) / 4.0
            } else {
                rng.gen_range(0.0..0.7)
            };
            let delay = full.mul_f64(frac);
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                child.wait().unwrap();
                kills += 1;
                history.push(format!(
                    "run {chain}, process {attempt}: killed after {delay:?}"
                ));
            } else {
                finish(child, &history.join("\n"));
                history.push(format!(
                    "run {chain}, process {attempt}: finished before {delay:?}"
                ));
            }
        }
        compare(&reference, &run, &history.join("\n"));
    }
    assert!(kills >= 4, "{}", history.join("\n"));
    eprintln!("{}", history.join("\n"));
}

/// The killed-and-resumed run `run` ended exactly as `reference`.
fn compare(reference: &Path, run: &Path, history: &str) {
    // Metrics, byte for byte.
    for f in ["metrics.jsonl", "metrics.csv"] {
        let want = std::fs::read(reference.join(f)).unwrap();
        let got = std::fs::read(run.join(f)).unwrap();
        assert!(
            want == got,
            "{history}\n{f} differs:\nuninterrupted:\n{}\nkilled and resumed:\n{}",
            String::from_utf8_lossy(&want),
            String::from_utf8_lossy(&got)
        );
    }
    // The final checkpoint: every tensor, and the state (script values, generator, row count).
    let (want, want_doc) = tensors(&reference.join("checkpoint.safetensors"));
    let (got, got_doc) = tensors(&run.join("checkpoint.safetensors"));
    assert_eq!(
        want.keys().collect::<Vec<_>>(),
        got.keys().collect::<Vec<_>>(),
        "{history}"
    );
    for (name, w) in &want {
        assert!(w == &got[name], "{history}\ntensor {name} differs");
    }
    assert_eq!(want_doc, got_doc, "{history}");
    // Sample grids and plots, byte for byte.
    let pngs = files_with_ext(reference, "png");
    assert!(pngs.len() >= 4, "{pngs:?}");
    for p in pngs {
        let name = p.file_name().unwrap();
        assert!(
            std::fs::read(&p).unwrap() == std::fs::read(run.join(name)).unwrap(),
            "{history}\n{} differs",
            name.to_string_lossy()
        );
    }
    // Nothing half-written is left, and config.json tells the story.
    assert!(files_with_ext(run, "tmp").is_empty(), "{history}");
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["status"], "ok", "{history}");
    let resumes = cfg["resumes"].as_array().map(|a| a.len()).unwrap_or(0);
    // Every resume that got as far as continuing is recorded (one killed during its own start
    // may not be), and the start time is the first process's.
    assert!(
        (1..=2).contains(&resumes),
        "{history}\n{resumes} resumes recorded"
    );
    assert!(cfg["started"].as_str().unwrap() <= cfg["resumes"][0]["time"].as_str().unwrap());
}
