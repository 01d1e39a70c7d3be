//! Run checkpoints: a run stopped and resumed equals the uninterrupted run bit for bit; bad
//! checkpoints are clear errors that overwrite nothing; Ctrl-C saves a checkpoint and stops.

mod common;

use common::ganscript;
use std::path::Path;
use std::process::{Command, Output};

fn magan() -> String {
    format!("{}/scripts/magan.rhai", env!("CARGO_MANIFEST_DIR"))
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SMOKE: [&str; 8] = [
    "--set",
    "limit=96",
    "--set",
    "batch=32",
    "--set",
    "pretrain_epochs=1",
    "--set",
    "nz=50",
];

fn run_magan(out: &Path, epochs: u32) -> Output {
    let e = format!("epochs={epochs}");
    let mut args = vec![
        "run",
        &magan_path(),
        "--out",
        out.to_str().unwrap(),
        "--set",
        &e,
    ];
    args.extend(SMOKE);
    ganscript(&args)
}

fn magan_path() -> &'static str {
    Box::leak(magan().into_boxed_str())
}

#[test]
fn resumed_run_equals_uninterrupted_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    ok(&run_magan(&a, 3));
    ok(&run_magan(&b, 1));
    // A row logged after the checkpoint (a run killed between log and save) is dropped on resume.
    let jsonl = b.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&jsonl).unwrap();
    text.push_str("{\"epoch\":99,\"e_x\":1.0}\n");
    std::fs::write(&jsonl, text).unwrap();
    ok(&ganscript(&[
        "run",
        magan_path(),
        "--resume",
        b.to_str().unwrap(),
        "--set",
        "epochs=3",
    ]));
    let ma = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let mb = std::fs::read_to_string(b.join("metrics.jsonl")).unwrap();
    assert_eq!(ma.lines().count(), 3, "{ma}");
    assert_eq!(ma, mb, "resumed metrics differ from the uninterrupted run");
    assert_eq!(
        std::fs::read(a.join("metrics.csv")).unwrap(),
        std::fs::read(b.join("metrics.csv")).unwrap()
    );
    assert!(b.join("samples_epoch3.png").exists());
}

#[test]
fn bad_checkpoints_are_clear_errors_and_overwrite_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    ok(&run_magan(&run, 1));
    let ck = run.join("checkpoint.safetensors");
    let before_metrics = std::fs::read(run.join("metrics.jsonl")).unwrap();
    let before_config = std::fs::read(run.join("config.json")).unwrap();

    // Wrong shapes: the saved generator has nz = 50.
    let out = ganscript(&[
        "run",
        magan_path(),
        "--resume",
        run.to_str().unwrap(),
        "--set",
        "nz=20",
        "--set",
        "epochs=2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("`G`") && err.contains("shape"),
        "{err}"
    );

    // Truncated file.
    let bytes = std::fs::read(&ck).unwrap();
    std::fs::write(&ck, &bytes[..bytes.len() / 2]).unwrap();
    let out = ganscript(&[
        "run",
        magan_path(),
        "--resume",
        run.to_str().unwrap(),
        "--set",
        "epochs=2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("checkpoint.safetensors") && err.contains("damaged or truncated"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // Missing checkpoint.
    std::fs::remove_file(&ck).unwrap();
    let out = ganscript(&["run", magan_path(), "--resume", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no checkpoint.safetensors"));

    assert_eq!(
        std::fs::read(run.join("metrics.jsonl")).unwrap(),
        before_metrics
    );
    let after = std::fs::read_to_string(run.join("config.json")).unwrap();
    let before = String::from_utf8(before_config).unwrap();
    let status = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap()["status"].clone();
    assert_eq!(status(&after), status(&before), "config.json was rewritten");
}

#[test]
fn state_map_round_trips_every_kind_of_value() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("state.rhai");
    std::fs::write(
        &script,
        r#"
        let net = sequential([linear(3, 2), relu()]);
        let opt = adam(net, 0.01, 0.5, 0.999);
        track("net", net); track("opt", opt);
        let s = sine_decay(10); s.t = 3;
        let m = magan_margin(); m.init(12.5);
        let st = resume_state(#{ i: 0, f: 0.1, nan: 0.0, name: "x", arr: [1, 2.5, true], t: zeros([2]),
                                 sched: s, margin: m, nested: #{ a: () } });
        if is_resuming() {
            print(`i=${st.i} f=${st.f} nan=${st.nan} name=${st.name} arr=${st.arr} t=${st.t.to_array()} sched_t=${st.sched.t} margin=${st.margin.margin} nested=${st.nested.a}`);
            print(`w=${net.params()[0].sum().item()} lr=${opt.lr}`);
        } else {
            opt.step(net.forward(ones([4, 3])).sum());
            opt.lr = 0.005;
            print(`w=${net.params()[0].sum().item()} lr=${opt.lr}`);
            save_checkpoint(#{ i: 7, f: 1.0 / 3.0, nan: 0.0 / 0.0, name: "abc", arr: [1, 2.5, true],
                               t: tensor([1.5, -2.0]), sched: s, margin: m, nested: #{ a: () } });
        }
        "#,
    )
    .unwrap();
    let run = dir.path().join("run");
    let first = ganscript(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    ok(&first);
    let second = ganscript(&[
        "run",
        script.to_str().unwrap(),
        "--resume",
        run.to_str().unwrap(),
    ]);
    ok(&second);
    let a = String::from_utf8_lossy(&first.stdout);
    let b = String::from_utf8_lossy(&second.stdout);
    assert!(b.contains("i=7 f=0.3333333333333333 nan=NaN name=abc arr=[1, 2.5, true] t=[1.5, -2.0] sched_t=3 margin=12.5 nested="), "{b}");
    let w_line = |s: &str| s.lines().find(|l| l.starts_with("w=")).unwrap().to_string();
    assert_eq!(
        w_line(&a),
        w_line(&b),
        "net weights and optimizer lr restored"
    );
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("long.rhai");
    std::fs::write(
        &script,
        r#"
        let net = linear(4, 1);
        let opt = sgd(net, 0.01, 0.0);
        track("net", net);
        let st = resume_state(#{ step: 0 });
        for step in (st.step + 1)..100000 {
            opt.step(net.forward(randn([8, 4])).sqr().mean());
            log(#{ step: step });
            save_checkpoint(#{ step: step });
        }
        "#,
    )
    .unwrap();
    let run = dir.path().join("run");
    let child = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .args([
            "run",
            script.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ck = run.join("checkpoint.safetensors");
    let t0 = std::time::Instant::now();
    while !ck.exists() && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(
        err.contains("checkpoint saved") && err.contains("--resume"),
        "{err}"
    );
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["status"], "interrupted");
    // Every metrics row up to the checkpoint is complete JSON.
    let rows = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    for l in rows.lines() {
        serde_json::from_str::<serde_json::Value>(l).unwrap();
    }
}

#[test]
fn checkpoints_rebuild_every_builder_net_from_its_saved_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("nets.rhai");
    std::fs::write(
        &script,
        r#"
        let nets = #{ mg: magan_mnist_g(50), md: magan_mnist_d(), g: dcgan_g(32, 16, 3, true),
                      d: dcgan_d(32, 3, true), lens: tempered_lens(3, 8, 2),
                      mlp: sequential([linear(2, 4), leaky_relu(0.2), layer_norm(4), linear(4, 3, false), tanh()]) };
        for k in nets.keys() { track(k, nets[k]); }
        save_checkpoint(#{});
        "#,
    )
    .unwrap();
    let run = dir.path().join("run");
    ok(&ganscript(&[
        "run",
        script.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]));
    let nets = ganscript::checkpoint::load_nets(&run.join("checkpoint.safetensors")).unwrap();
    assert_eq!(nets.len(), 6);
    let (tensors, _) = candle_core::safetensors::load(
        run.join("checkpoint.safetensors"),
        &candle_core::Device::Cpu,
    )
    .map(|t| (t, ()))
    .unwrap();
    for (name, net) in &nets {
        for (k, t) in net.named_tensors() {
            let saved = &tensors[&format!("net/{name}/{k}")];
            assert_eq!(saved.dims(), t.dims(), "{name}.{k}");
            let diff = (saved - &t)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{name}.{k}");
        }
    }
}
