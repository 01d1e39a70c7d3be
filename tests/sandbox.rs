//! The file-system sandbox, tried the way a hostile script would.
//!
//! Every host function that takes a string (or an untyped value) is found from the engine's own
//! function metadata, so a function added later is tried too. Each is called with absolute,
//! `..` and symbolic-link paths that lead to a folder outside the sandbox holding valid data
//! files, with every combination of sample values for its other parameters. Two independent
//! witnesses say whether anything outside was touched: inotify (any open, read, creation or
//! change of a file or folder there) and a snapshot of the tree before and after. The functions
//! that take paths must also refuse each of them with the sandbox's error, and no error may
//! name a file of the outside folder that the call did not name itself.

mod common;

use ganscript::sandbox::{READ_REFUSED, WRITE_REFUSED};
use ganscript::EngineOptions;
use rhai::{Dynamic, Engine, EvalAltResult};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// inotify on a few folders (the events of their direct entries and of themselves).
struct Watch {
    fd: i32,
    dirs: BTreeMap<i32, PathBuf>,
}

impl Watch {
    fn new(dirs: &[PathBuf]) -> Watch {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0, "inotify_init1 failed");
        let mask = libc::IN_OPEN
            | libc::IN_ACCESS
            | libc::IN_CREATE
            | libc::IN_MODIFY
            | libc::IN_ATTRIB
            | libc::IN_MOVED_TO
            | libc::IN_MOVED_FROM
            | libc::IN_DELETE
            | libc::IN_CLOSE_WRITE;
        let mut w = Watch {
            fd,
            dirs: BTreeMap::new(),
        };
        for d in dirs {
            let c = CString::new(d.as_os_str().as_bytes()).unwrap();
            let wd = unsafe { libc::inotify_add_watch(fd, c.as_ptr(), mask) };
            assert!(wd >= 0, "inotify_add_watch {}", d.display());
            w.dirs.insert(wd, d.clone());
        }
        w
    }

    /// The events since the last call, as "folder/name: mask".
    fn events(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                return out;
            }
            let mut at = 0usize;
            let head = std::mem::size_of::<libc::inotify_event>();
            while at + head <= n as usize {
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[at..].as_ptr().cast()) };
                let name_bytes = &buf[at + head..at + head + ev.len as usize];
                let name = String::from_utf8_lossy(name_bytes)
                    .trim_end_matches('\0')
                    .to_string();
                let dir = self
                    .dirs
                    .get(&ev.wd)
                    .map(|d| d.display().to_string())
                    .unwrap_or_default();
                out.push(format!("{dir}/{name}: {:#x}", ev.mask));
                at += head + ev.len as usize;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// Every file and folder under `dir` (not following links) with its size and content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                out.insert(p.clone(), b"<dir>".to_vec());
                stack.push(p);
            } else if ft.is_symlink() {
                out.insert(
                    p.clone(),
                    std::fs::read_link(&p).unwrap().into_os_string().into_vec(),
                );
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

use std::os::unix::ffi::OsStringExt;

fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|s| s.to_string()).collect();
    let body: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
    common::npy_file("<f4", &format!("({},)", dims.join(", ")), &body)
}

/// Valid data files of every kind a loader reads, in `dir` (the outside folder).
fn fill_outside(dir: &Path) {
    let mnist = dir.join("mnist");
    std::fs::create_dir_all(&mnist).unwrap();
    let mut images = Vec::new();
    for v in [0x803u32, 2, 28, 28] {
        images.extend_from_slice(&v.to_be_bytes());
    }
    images.extend((0..2 * 28 * 28).map(|i| (i % 251) as u8));
    std::fs::write(mnist.join("train-images-idx3-ubyte"), &images).unwrap();
    let mut labels = Vec::new();
    for v in [0x801u32, 2] {
        labels.extend_from_slice(&v.to_be_bytes());
    }
    labels.extend([3u8, 7]);
    std::fs::write(mnist.join("train-labels-idx1-ubyte"), &labels).unwrap();
    let cifar = dir.join("cifar");
    std::fs::create_dir_all(&cifar).unwrap();
    let mut rec = vec![1u8];
    rec.extend((0..3072).map(|i| (i % 256) as u8));
    std::fs::write(cifar.join("data_batch_1.bin"), &rec).unwrap();
    let imgs = dir.join("images").join("cats");
    std::fs::create_dir_all(&imgs).unwrap();
    image::RgbImage::from_pixel(8, 8, image::Rgb([10, 200, 30]))
        .save(imgs.join("a.png"))
        .unwrap();
    let values: Vec<f32> = (0..8).map(|i| i as f32).collect();
    std::fs::write(dir.join("data.npy"), npy_f32(&[4, 2], &values)).unwrap();
    {
        let f = std::fs::File::create(dir.join("arrays.npz")).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("x.npy", stored).unwrap();
        z.write_all(&npy_f32(&[4, 2], &values)).unwrap();
        z.finish().unwrap();
    }
    ganscript::nn::Net::linear(2, 2, true)
        .unwrap()
        .save(&dir.join("net.safetensors"))
        .unwrap();
    std::fs::write(dir.join("x.rhai"), "fn f() { 1 }").unwrap();
    // Never named by any call: an error that shows it has listed the folder.
    std::fs::write(dir.join("canary-q7z.txt"), "secret").unwrap();
}

/// The path from the current directory to `target`, climbing with `..`.
fn relative_from_cwd(target: &Path) -> String {
    let cwd = std::env::current_dir().unwrap();
    let ups = cwd.components().count() - 1;
    let mut s = "../".repeat(ups);
    s.push_str(target.to_str().unwrap().trim_start_matches('/'));
    s
}

#[derive(Deserialize)]
struct Meta {
    functions: Vec<FnMeta>,
}

#[derive(Deserialize)]
struct FnMeta {
    name: String,
    #[serde(default)]
    params: Vec<Param>,
}

#[derive(Deserialize)]
struct Param {
    #[serde(rename = "type")]
    ty: String,
}

/// Sample values of a parameter type (rhai expressions).
fn samples(ty: &str) -> Vec<&'static str> {
    let ty = ty.trim_start_matches("&mut ");
    match ty {
        "string" => vec!["\"x\""],
        "types::dynamic::Dynamic" => {
            vec!["[2, 2]", "2", "[\"a\"]", "randn([4, 2])", "linear(2, 2)"]
        }
        "Tensor" => vec!["randn([2, 1, 8, 8])", "randn([4, 2])"],
        "Net" => vec!["linear(2, 2)"],
        "Optimizer" => vec!["sgd(linear(2, 2), 0.1, 0.0)"],
        "Dataset" => vec!["ring8(16)"],
        "Schedule" => vec!["sine_decay(10)"],
        "MarginAdapter" => vec!["magan_margin()"],
        "Progress" => vec!["progress(2, \"p\")"],
        "Batches" => vec!["batches(ring8(16), 4)"],
        "Fn" => vec!["|x| x"],
        "array" => vec!["[1, 2]"],
        "map" => vec!["#{}"],
        "i64" => vec!["2"],
        "f64" => vec!["0.5"],
        "bool" => vec!["true"],
        other => panic!(
            "a registered function takes a parameter of type `{other}`: add sample values for it \
             to this test, so that functions taking it are tried too"
        ),
    }
}

/// Every combination of sample values, with `hostile` in slot `slot`.
fn calls(name: &str, params: &[Param], slot: usize, hostile: &str) -> Vec<String> {
    let mut combos: Vec<Vec<String>> = vec![vec![]];
    for (i, p) in params.iter().enumerate() {
        let options: Vec<String> = if i == slot {
            vec![format!("{hostile:?}")]
        } else {
            samples(&p.ty).iter().map(|s| s.to_string()).collect()
        };
        combos = combos
            .into_iter()
            .flat_map(|c| {
                options.iter().map(move |o| {
                    let mut c = c.clone();
                    c.push(o.clone());
                    c
                })
            })
            .collect();
    }
    combos
        .into_iter()
        .map(|args| format!("{name}({})", args.join(", ")))
        .collect()
}

/// The functions that take a path: each must refuse every hostile path with the sandbox's error.
const PATH_FUNCTIONS: &[&str] = &[
    "load",
    "save",
    "mnist",
    "cifar10",
    "image_folder",
    "npy",
    "npz",
    "save_grid",
    "plot",
    "scatter",
    "run_path",
];

#[test]
fn no_host_function_reaches_outside_the_sandbox() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let run = root.join("run");
    let outside = root.join("outside");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    fill_outside(&outside);
    std::os::unix::fs::symlink(&outside, run.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.join("data.npy"), run.join("flink.npy")).unwrap();
    std::os::unix::fs::symlink(outside.join("mnist"), run.join("mlink")).unwrap();

    let o = |p: &str| outside.join(p).display().to_string();
    let r = |p: &str| run.join(p).display().to_string();
    let hostile: Vec<String> = vec![
        // Absolute.
        o(""),
        o("data.npy"),
        o("arrays.npz"),
        o("net.safetensors"),
        o("mnist"),
        o("cifar"),
        o("images"),
        o("new.png"),
        o("newdir/new.png"),
        root.join("new.png").display().to_string(),
        // `..`, from the run directory (writes) and from the current directory (reads).
        "../outside/new.png".into(),
        "../new.png".into(),
        "a/../../outside/new.png".into(),
        r("../outside/data.npy"),
        r("../outside/mnist"),
        relative_from_cwd(&outside.join("data.npy")),
        relative_from_cwd(&outside.join("mnist")),
        relative_from_cwd(&outside.join("new.png")),
        // Symbolic links in the run directory that lead outside.
        r("link"),
        r("link/data.npy"),
        r("link/net.safetensors"),
        r("link/mnist"),
        r("link/new.png"),
        r("flink.npy"),
        // As written this stays in the run directory; the system resolves `link/..` to the
        // folder above the link's target.
        r("link/../outside/data.npy"),
        r("link/../outside/mnist"),
        r("mlink"),
        "link/new.png".into(),
        "link/sub/new.png".into(),
    ];

    // Two hostile names are harmless to some functions: `link/...` is a file under the current
    // directory for a reader (there is none), and a writer that adds `.png` to `<run>/link`
    // writes `<run>/link.png`, a new file inside the run directory.
    let (link_abs, mlink_abs) = (r("link"), r("mlink"));
    let harmless = |name: &str, h: &str| {
        let reader = ["load", "mnist", "cifar10", "image_folder", "npy", "npz"].contains(&name);
        let png_writer = ["save_grid", "plot", "scatter"].contains(&name);
        (reader && h.starts_with("link/")) || (png_writer && (h == link_abs || h == mlink_abs))
    };
    let opts = EngineOptions {
        out_dir: Some(run.clone()),
        script_path: Some(root.join("s.rhai")),
        script_dir: Some(root.join("scripts")),
        ..Default::default()
    };
    std::fs::create_dir_all(root.join("scripts")).unwrap();
    let engine: Engine = ganscript::new_engine(&opts).unwrap().0;
    // A logged key, so that plot gets as far as writing.
    engine.run("log(#{ step: 1, a: 1.0 });").unwrap();

    let meta: Meta = serde_json::from_str(&engine.gen_fn_metadata_to_json(false).unwrap()).unwrap();
    let takes_text = |t: &str| t == "string" || t == "types::dynamic::Dynamic";
    let mut targets: Vec<(&FnMeta, usize)> = Vec::new();
    for f in &meta.functions {
        if f.name.contains('$') {
            continue;
        }
        for (i, p) in f.params.iter().enumerate() {
            if takes_text(&p.ty) {
                targets.push((f, i));
            }
        }
    }
    assert!(targets.len() > 50, "only {} targets", targets.len());
    for name in PATH_FUNCTIONS {
        assert!(
            targets.iter().any(|(f, _)| f.name == *name),
            "{name} is not registered with a string parameter"
        );
    }

    let mut watched = vec![root.clone(), outside.clone()];
    for sub in ["mnist", "cifar", "images", "images/cats"] {
        watched.push(outside.join(sub));
    }
    let watch = Watch::new(&watched);
    let before = snapshot(&outside);
    let cwd = std::env::current_dir().unwrap();
    let cwd_before: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    // The witness works: reading a file outside is seen.
    std::fs::read(outside.join("data.npy")).unwrap();
    let seen = watch.events();
    assert!(
        seen.iter().any(|e| e.contains("data.npy")),
        "inotify saw nothing: {seen:?}"
    );

    let mut tried = 0usize;
    let mut problems = Vec::new();
    // (function, hostile path) → whether some call refused it with the sandbox's error.
    let mut refused: BTreeMap<(String, String), bool> = BTreeMap::new();
    for (f, slot) in &targets {
        for h in &hostile {
            for call in calls(&f.name, &f.params, *slot, h) {
                tried += 1;
                let result = ganscript::script::catch_panics(|| engine.eval::<Dynamic>(&call));
                let msg = match &result {
                    Ok(Ok(v)) => format!("ok: {v}"),
                    Ok(Err(e)) => e.to_string(),
                    Err(panic) => format!("panic: {panic}"),
                };
                if let Ok(Err(e)) = &result {
                    if let EvalAltResult::ErrorFunctionNotFound(sig, _) = e.as_ref() {
                        if !sig.starts_with(&format!("{} (", f.name)) {
                            problems.push(format!("{call}: a sample value is wrong: {sig}"));
                        }
                    }
                }
                if msg.contains("canary-q7z") {
                    problems.push(format!("{call}: the error lists the outside folder: {msg}"));
                }
                let ev = watch.events();
                let outside_ev: Vec<&String> = ev
                    .iter()
                    .filter(|e| {
                        // The run and scripts folders are entries of the watched root: their
                        // own opening is inside the sandbox.
                        !e.starts_with(&format!("{}/run:", root.display()))
                            && !e.starts_with(&format!("{}/scripts:", root.display()))
                    })
                    .collect();
                if !outside_ev.is_empty() {
                    problems.push(format!("{call}: touched outside: {outside_ev:?} ({msg})"));
                }
                let sandbox_error = msg.contains(READ_REFUSED) || msg.contains(WRITE_REFUSED);
                let e = refused.entry((f.name.clone(), h.clone())).or_insert(false);
                *e |= sandbox_error;
                if PATH_FUNCTIONS.contains(&f.name.as_str())
                    && msg.starts_with("ok:")
                    && !harmless(&f.name, h)
                {
                    problems.push(format!("{call}: accepted a hostile path: {msg}"));
                }
            }
        }
    }
    for ((name, h), ok) in &refused {
        if PATH_FUNCTIONS.contains(&name.as_str()) && !ok && !harmless(name, h) {
            problems.push(format!("{name}({h:?}) was not refused by the sandbox"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems in {tried} calls:\n{}",
        problems.len(),
        problems.join("\n")
    );
    assert_eq!(snapshot(&outside), before, "the outside folder changed");
    let mut root_entries: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    root_entries.sort();
    assert_eq!(root_entries, ["outside", "run", "scripts"]);
    let cwd_after: Vec<_> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        cwd_before.len(),
        cwd_after.len(),
        "a file appeared in the current directory"
    );
    eprintln!(
        "{tried} calls of {} (function, parameter) pairs",
        targets.len()
    );
}

#[test]
fn imports_come_only_from_the_stdlib_and_the_scripts_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let scripts = root.join("scripts");
    let outside = root.join("outside");
    std::fs::create_dir_all(scripts.join("sub")).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("x.rhai"), "fn f() { 666 }").unwrap();
    std::fs::write(scripts.join("good.rhai"), "fn f() { 1 }").unwrap();
    std::fs::write(scripts.join("sub/deep.rhai"), "fn f() { 2 }").unwrap();
    std::os::unix::fs::symlink(outside.join("x.rhai"), scripts.join("evil.rhai")).unwrap();
    std::os::unix::fs::symlink(&outside, scripts.join("dir")).unwrap();
    let watch = Watch::new(std::slice::from_ref(&outside));

    let run = |src: &str| -> Result<Dynamic, String> {
        let opts = EngineOptions {
            script_dir: Some(scripts.clone()),
            script_path: Some(scripts.join("main.rhai")),
            out_dir: Some(root.join("run")),
            ..Default::default()
        };
        let s = ganscript::script::compile(
            &scripts.join("main.rhai").display().to_string(),
            src,
            &opts,
        )
        .map_err(|d| d.message)?;
        s.run(&mut rhai::Scope::new()).map_err(|d| d.message)
    };
    // Allowed: a file under the script's folder, and the standard library.
    assert_eq!(
        run(r#"import "good" as g; g::f()"#)
            .unwrap()
            .as_int()
            .unwrap(),
        1
    );
    assert_eq!(
        run(r#"import "sub/deep" as g; g::f()"#)
            .unwrap()
            .as_int()
            .unwrap(),
        2
    );
    assert_eq!(
        run(r#"import "train" as tr; 0"#).unwrap().as_int().unwrap(),
        0
    );
    for bad in [
        outside.join("x").display().to_string(),
        outside.join("x.rhai").display().to_string(),
        "../outside/x".to_string(),
        "sub/../../outside/x".to_string(),
        "evil".to_string(),
        "dir/x".to_string(),
    ] {
        let e = run(&format!("import {bad:?} as m; m::f()")).unwrap_err();
        assert!(
            e.contains("imports come from the standard library or from .rhai files under the script's directory"),
            "import {bad:?}: {e}"
        );
        assert!(!e.contains("666"), "{e}");
    }
    let ev = watch.events();
    assert!(
        ev.is_empty(),
        "an import touched the outside folder: {ev:?}"
    );
}

#[test]
fn reads_are_granted_by_allow_read_and_writes_stay_in_the_run_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    fill_outside(&data);
    // The current directory is data/mnist and the script sits in scripts/: data/ is outside
    // both until granted.
    let sdir = root.join("scripts");
    std::fs::create_dir_all(&sdir).unwrap();
    let script = sdir.join("s.rhai");
    std::fs::write(
        &script,
        format!(
            r#"
            let d = npy({:?});
            print(`rows ${{d.len()}}`);
            let net = linear(2, 2);
            net.save("nets/a.safetensors");
            net.load(run_path("nets/a.safetensors"));
            print(run_path("nets/a.safetensors"));
            "#,
            data.join("data.npy").display().to_string()
        ),
    )
    .unwrap();
    let out = root.join("out");
    let run_with = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_ganscript"))
            .env("GANSCRIPT_PROGRESS", "off")
            .current_dir(data.join("mnist"))
            .args([
                "run",
                script.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .args(extra)
            .output()
            .unwrap()
    };
    let refused = run_with(&[]);
    assert_eq!(refused.status.code(), Some(1));
    let err = String::from_utf8_lossy(&refused.stderr);
    // (The report wraps long lines: look for short pieces.)
    assert!(
        err.contains("npy: cannot read") && err.contains("--allow-read"),
        "{err}"
    );
    assert!(
        err.contains("s.rhai:2"),
        "the error names the script line: {err}"
    );
    let granted = run_with(&["--allow-read", data.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&granted.stderr);
    assert!(granted.status.success(), "{err}");
    let text = String::from_utf8_lossy(&granted.stdout);
    assert!(text.contains("rows 4"), "{text}");
    assert!(
        text.contains(&out.join("nets/a.safetensors").display().to_string()),
        "{text}"
    );
    assert!(out.join("nets/a.safetensors").is_file());
}
