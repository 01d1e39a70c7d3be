//! Fuzz targets for the data loaders and the checkpoint reader (proptest): valid files mutated
//! at random (bytes flipped or overwritten, header fields set to extreme values, data cut or
//! inserted) must load, or fail with an error that names the file — never panic, never
//! allocate past the memory budget.
//!
//! Each target runs `FUZZ_CASES` cases (64 by default, so CI stays quick); run longer with e.g.
//! `FUZZ_CASES=20000 cargo test --test fuzz`. Inputs that once broke a loader are kept as
//! cases of `tests/corpus.rs`.

mod common;

use candle_core::{Device, Tensor as CT};
use ganscript::data::files;
use ganscript::nn::Net;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::io::Write;
use std::path::Path;

/// The budget the loaders run under here: a mutated header must not make them allocate more.
const BUDGET: u64 = 256 << 20;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

/// One change to a file.
#[derive(Clone, Debug)]
enum Mutation {
    /// XOR a byte (position as a fraction of the length).
    Flip(f64, u8),
    /// Overwrite 4 bytes with a big- or little-endian value (header fields are u32s).
    Word(f64, u32, bool),
    /// Keep only this fraction of the file.
    Truncate(f64),
    /// Insert bytes.
    Insert(f64, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let frac = 0.0..1.0f64;
    let word = prop_oneof![
        Just(0u32),
        Just(1),
        Just(255),
        Just(0x7fff_ffff),
        Just(u32::MAX),
        Just(0x0000_0803),
        Just(0x0000_0801),
        any::<u32>(),
    ];
    prop_oneof![
        4 => (frac.clone(), 1..=255u8).prop_map(|(p, b)| Mutation::Flip(p, b)),
        3 => (frac.clone(), word, any::<bool>()).prop_map(|(p, w, be)| Mutation::Word(p, w, be)),
        1 => (0.0..1.0f64).prop_map(Mutation::Truncate),
        1 => (frac, prop::collection::vec(any::<u8>(), 1..16)).prop_map(|(p, b)| Mutation::Insert(p, b)),
    ]
}

/// Positions are drawn mostly from the header (the first 64 bytes), where a change matters most.
fn at(len: usize, frac: f64) -> usize {
    if len == 0 {
        return 0;
    }
    let header = len.min(64);
    if frac < 0.7 {
        ((frac / 0.7) * header as f64) as usize % header
    } else {
        (((frac - 0.7) / 0.3) * len as f64) as usize % len
    }
}

fn mutate(seed: &[u8], ms: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in ms {
        match m {
            Mutation::Flip(p, x) => {
                if !b.is_empty() {
                    let i = at(b.len(), *p);
                    b[i] ^= x;
                }
            }
            Mutation::Word(p, w, be) => {
                if b.len() >= 4 {
                    let i = at(b.len(), *p).min(b.len() - 4);
                    let bytes = if *be {
                        w.to_be_bytes()
                    } else {
                        w.to_le_bytes()
                    };
                    b[i..i + 4].copy_from_slice(&bytes);
                }
            }
            Mutation::Truncate(f) => b.truncate((b.len() as f64 * f) as usize),
            Mutation::Insert(p, x) => {
                let i = at(b.len() + 1, *p).min(b.len());
                b.splice(i..i, x.iter().copied());
            }
        }
    }
    b
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 1..6)
}

/// Runs `check` on mutations of `seed`; an `Err` must name the file (`name`).
fn fuzz<E: std::fmt::Display>(
    target: &str,
    seed: Vec<u8>,
    name: &str,
    check: impl Fn(&[u8]) -> Result<(), E>,
) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&mutations(), |ms| {
        ganscript::limits::set_max_memory(BUDGET);
        let bytes = mutate(&seed, &ms);
        if let Err(e) = check(&bytes) {
            let e = e.to_string();
            prop_assert!(
                e.contains(name),
                "{target}: the error does not name {name}: {e}"
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{target}: {e}");
    }
}

fn msg(e: Box<rhai::EvalAltResult>) -> String {
    ganscript::errors::message(&e)
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 3];
    for v in [n, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(|i| (i * 7 % 256) as u8));
    b
}

fn idx_labels(n: u32) -> Vec<u8> {
    let mut b = vec![0, 0, 8, 1];
    b.extend_from_slice(&n.to_be_bytes());
    b.extend((0..n).map(|i| (i % 10) as u8));
    b
}

fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    common::npy_file(descr, shape, body)
}

fn npz(entries: &[(&str, Vec<u8>, bool)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut z = zip::ZipWriter::new(&mut out);
    for (name, bytes, deflate) in entries {
        let method = if *deflate {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        z.start_file(
            *name,
            zip::write::SimpleFileOptions::default().compression_method(method),
        )
        .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    out.into_inner()
}

#[test]
fn fuzz_idx_images_and_labels() {
    let images = idx_images(6, 5, 4);
    let labels = idx_labels(6);
    let load = |img: &[u8], lab: &[u8]| {
        files::mnist_from_bytes(img.to_vec(), "images.idx", lab.to_vec(), "labels.idx", "m")
            .map(|ds| assert_eq!(ds.shape.len(), 4))
            .map_err(msg)
    };
    // Either file mutated; the mismatch message names both.
    fuzz("idx images", images.clone(), "images.idx", |b| {
        load(b, &labels)
    });
    fuzz("idx labels", labels.clone(), "labels.idx", |b| {
        load(&images, b)
    });
    fuzz("idx images (gzip)", gz(&images), "images.idx", |b| {
        load(b, &labels)
    });
    fuzz("idx labels (gzip)", gz(&labels), "labels.idx", |b| {
        load(&images, b)
    });
}

#[test]
fn fuzz_npy() {
    let f32s: Vec<u8> = (0..24)
        .flat_map(|i| (i as f32 / 24.0).to_le_bytes())
        .collect();
    let u8s: Vec<u8> = (0..2 * 3 * 2 * 3).map(|i| i as u8).collect();
    let load = |b: &[u8]| {
        files::parse_npy(b, "a.npy")
            .and_then(|a| files::dataset_from_array(a, "npy(a.npy)".into()))
            .map(|_| ())
            .map_err(msg)
    };
    fuzz("npy f4", npy("<f4", "(4, 6)", &f32s), "a.npy", load);
    fuzz(
        "npy u1 NHWC",
        npy("|u1", "(2, 3, 2, 3)", &u8s),
        "a.npy",
        load,
    );
    let f64s: Vec<u8> = (0..4).flat_map(|i| (i as f64).to_le_bytes()).collect();
    let mut v2 = npy("<f8", "(4,)", &f64s);
    // As version 2: a 4-byte header length.
    v2[6] = 2;
    v2.splice(10..10, [0, 0]);
    fuzz("npy f8 v2", v2, "a.npy", load);
}

#[test]
fn fuzz_npz() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.npz");
    let f32s: Vec<u8> = (0..12).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let seed = npz(&[
        ("x.npy", npy("<f4", "(3, 4)", &f32s), true),
        ("y.npy", npy("|u1", "(3,)", &[1, 2, 3]), false),
    ]);
    let load = |b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        files::npz(&path, "x").map(|_| ()).map_err(msg)?;
        files::npz(&path, "y").map(|_| ()).map_err(msg)
    };
    fuzz("npz", seed, "a.npz", load);
}

#[test]
fn fuzz_cifar10() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data_batch_1.bin");
    let seed: Vec<u8> = (0..2 * 3073)
        .map(|i| if i % 3073 == 0 { 3 } else { (i % 256) as u8 })
        .collect();
    let load = |b: &[u8]| {
        std::fs::write(&file, b).unwrap();
        files::cifar10(dir.path()).map(|_| ()).map_err(msg)
    };
    fuzz("cifar10", seed, "data_batch_1.bin", load);
}

/// A real checkpoint: a small net's values and architecture, an optimizer-like tensor and a
/// state map, as `save_checkpoint` writes them.
fn checkpoint_seed(path: &Path) -> Vec<u8> {
    let net = Net::sequential(vec![
        Net::linear(3, 4, true).unwrap(),
        Net::act(ganscript::nn::Act::LeakyRelu(0.2)),
        Net::batch_norm(4).unwrap(),
        Net::conv_transpose2d(4, 2, 3, 2, 1, 1, true).unwrap(),
    ]);
    let mut tensors: Vec<(String, CT)> = net
        .named_tensors()
        .into_iter()
        .map(|(k, t)| (format!("net/G/{k}"), t))
        .collect();
    tensors.push((
        "state/.noise".into(),
        CT::new(&[1.0f32, 2.0], &Device::Cpu).unwrap(),
    ));
    let state = serde_json::json!({
        "values": { "map": {
            "epoch": { "int": 3 },
            "noise": { "tensor": "state/.noise" },
            "xs": { "array": [ { "float_bits": "4607182418800017408" }, { "string": "a" } ] }
        } },
        "rng": ganscript::rng::state(),
        "metrics_rows": 2,
        "tracked": ["G"],
        "nets": { "G": net.spec() },
    });
    ganscript::checkpoint::file::write(path, &tensors, &state).unwrap();
    std::fs::read(path).unwrap()
}

#[test]
fn fuzz_checkpoint_reader() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("checkpoint.safetensors");
    let seed = checkpoint_seed(&path);
    // The seed itself loads.
    let nets = ganscript::checkpoint::load_nets(&path).unwrap();
    assert_eq!(nets.len(), 1);
    let load = |b: &[u8]| {
        std::fs::write(&path, b).unwrap();
        ganscript::checkpoint::file::read(&path, &Device::Cpu)?;
        ganscript::checkpoint::load_nets(&path)?;
        ganscript::checkpoint::load_values(&path)?;
        ganscript::io::load_tensors(&path)?;
        Ok::<(), ganscript::errors::Error>(())
    };
    fuzz("checkpoint", seed, "checkpoint.safetensors", load);
}

#[test]
fn mutations_change_files() {
    // The mutator itself: positions stay in bounds, truncation and insertion change lengths.
    let seed = vec![0u8; 100];
    assert_eq!(mutate(&seed, &[Mutation::Truncate(0.5)]).len(), 50);
    assert_eq!(
        mutate(&seed, &[Mutation::Insert(0.99, vec![1, 2])]).len(),
        102
    );
    let w = mutate(&seed, &[Mutation::Word(0.0, 0x0102_0304, true)]);
    assert_eq!(&w[..4], &[1, 2, 3, 4]);
    let f = mutate(&seed, &[Mutation::Flip(0.999, 0xff)]);
    assert_eq!(f.iter().filter(|&&x| x == 0xff).count(), 1);
    assert!(mutate(
        &[],
        &[Mutation::Flip(0.5, 1), Mutation::Word(0.5, 1, false)]
    )
    .is_empty());
}
