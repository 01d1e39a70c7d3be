//! Data sets: loaders on generated fixture files (good and broken), the built-in MNIST against
//! an independent read of the shared files, synthetic mixtures, transforms and batch iteration.

mod common;

use ganscript::data::{files, mixtures, Dataset};
use ganscript::session::EngineOptions;
use rhai::{Dynamic, Scope};
use std::io::{Read, Write};
use std::path::Path;

fn run(text: &str) -> Result<Dynamic, String> {
    // The fixtures live in temporary folders: granted as with `--allow-read`.
    let opts = EngineOptions {
        allow_read: vec![std::env::temp_dir()],
        ..Default::default()
    };
    let s = ganscript::script::compile("test.rhai", text, &opts).map_err(|d| d.message)?;
    let mut scope = Scope::new();
    s.run(&mut scope).map_err(|d| d.message)
}

fn run_ok(text: &str) -> Dynamic {
    run(text).unwrap_or_else(|e| panic!("script failed: {e}\n{text}"))
}

fn ints(v: Dynamic) -> Vec<i64> {
    v.into_array()
        .unwrap()
        .into_iter()
        .map(|x| x.as_int().unwrap())
        .collect()
}

fn floats(v: Dynamic) -> Vec<f64> {
    v.into_array()
        .unwrap()
        .into_iter()
        .map(|x| x.as_float().unwrap())
        .collect()
}

fn lit(p: &Path) -> String {
    format!("{:?}", p.display().to_string())
}

fn err_of(r: ganscript::errors::ScriptResult<Dataset>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

// ---------- IDX fixtures ----------

fn idx_images(n: u32, rows: u32, cols: u32, f: impl Fn(u32) -> u8) -> Vec<u8> {
    let mut b = Vec::new();
    for v in [0x803u32, n, rows, cols] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend((0..n * rows * cols).map(f));
    b
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&0x801u32.to_be_bytes());
    b.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    b.extend_from_slice(labels);
    b
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn builtin_mnist_matches_the_shared_files() {
    let ds = files::builtin_mnist().unwrap();
    assert_eq!(ds.shape, vec![10000, 1, 28, 28]);
    let (lo, hi) = ds
        .data
        .iter()
        .fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    assert_eq!((lo, hi), (0.0, 1.0));
    // Independent histogram from the shared label file.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist-10k/labels-idx1-ubyte.gz");
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut raw)
        .unwrap();
    assert_eq!(u32::from_be_bytes(raw[4..8].try_into().unwrap()), 10000);
    let mut want = [0i64; 10];
    for &l in &raw[8..] {
        want[l as usize] += 1;
    }
    let mut got = [0i64; 10];
    for &l in ds.labels.as_ref().unwrap().iter() {
        got[l as usize] += 1;
    }
    assert_eq!(got, want);
    assert!(want.iter().all(|&c| c > 800), "{want:?}");
    // Labels in order, and every pixel: the shared image file's bytes / 255.
    let in_order: Vec<i64> = raw[8..].iter().map(|&l| l as i64).collect();
    assert_eq!(
        ds.labels.as_ref().unwrap().as_slice(),
        &in_order[..],
        "labels in order"
    );
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist-10k/images-idx3-ubyte.gz");
    let mut img = Vec::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path).unwrap())
        .read_to_end(&mut img)
        .unwrap();
    assert_eq!(u32::from_be_bytes(img[0..4].try_into().unwrap()), 0x803);
    let pixels = &img[16..];
    assert_eq!(pixels.len(), 10000 * 28 * 28);
    assert_eq!(ds.data.len(), pixels.len());
    for (i, (&got, &byte)) in ds.data.iter().zip(pixels).enumerate() {
        let want = byte as f32 / 255.0;
        assert!(
            (got - want).abs() <= 1e-7,
            "pixel {i} (image {}, row {}, column {}): {got} vs byte {byte}",
            i / 784,
            i % 784 / 28,
            i % 28
        );
    }

    // Through a script: length, per-sample shape, range.
    let v = run_ok(
        "let ds = mnist(); [ds.len(), ds.shape[0], ds.shape[1], ds.shape[2], ds.labels.shape[0]]",
    );
    assert_eq!(ints(v), vec![10000, 1, 28, 28, 10000]);
    let v = run_ok(
        r#"let ds = mnist(#{range: "-1,1", pad_to: 32, limit: 7}); let x = ds.images; [x.min().item(), x.max().item(), x.shape[0] * 1.0, x.shape[3] * 1.0]"#,
    );
    assert_eq!(floats(v), vec![-1.0, 1.0, 7.0, 32.0]);
}

#[test]
fn mnist_directory_official_and_bare_names() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // train (gz) and t10k (raw): the training files are preferred.
    std::fs::write(
        d.join("train-images-idx3-ubyte.gz"),
        gz(&idx_images(3, 2, 2, |i| (i * 20) as u8)),
    )
    .unwrap();
    std::fs::write(
        d.join("train-labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[4, 5, 6])),
    )
    .unwrap();
    std::fs::write(d.join("t10k-images-idx3-ubyte"), idx_images(2, 2, 2, |_| 0)).unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx_labels(&[1, 2])).unwrap();
    let ds = files::mnist_dir(d).unwrap();
    assert_eq!(ds.shape, vec![3, 1, 2, 2]);
    assert_eq!(ds.labels.as_ref().unwrap().as_slice(), &[4, 5, 6]);
    assert!((ds.data[5] - 100.0 / 255.0).abs() < 1e-6);

    let bare = tempfile::tempdir().unwrap();
    std::fs::write(
        bare.path().join("images-idx3-ubyte"),
        idx_images(2, 3, 3, |i| i as u8),
    )
    .unwrap();
    std::fs::write(
        bare.path().join("labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[7, 8])),
    )
    .unwrap();
    let v = run_ok(&format!(
        "let ds = mnist({}); ds.labels.to_array()",
        lit(bare.path())
    ));
    assert_eq!(ints(v), vec![7, 8]);
}

#[test]
fn mnist_broken_files_are_clear_errors() {
    // Missing directory.
    let e = err_of(files::mnist_dir(Path::new("/nonexistent/mnist")));
    assert!(
        e.contains("/nonexistent/mnist") && e.contains("does not exist"),
        "{e}"
    );
    // Empty directory: lists what was expected.
    let dir = tempfile::tempdir().unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(
        e.contains("train-images-idx3-ubyte") && e.contains("labels-idx1-ubyte"),
        "{e}"
    );
    // Images without labels.
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        idx_images(2, 2, 2, |_| 1),
    )
    .unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(e.contains("train-labels-idx1-ubyte"), "{e}");
    // Wrong magic: expected and found in hex.
    let mut bad = idx_images(2, 2, 2, |_| 1);
    bad[3] = 0x04;
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &bad).unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx_labels(&[1, 2]),
    )
    .unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(
        e.contains("train-images-idx3-ubyte")
            && e.contains("0x00000803")
            && e.contains("0x00000804"),
        "{e}"
    );
    // Truncated: expected vs actual size.
    let mut short = idx_images(2, 2, 2, |_| 1);
    short.truncate(20);
    std::fs::write(dir.path().join("train-images-idx3-ubyte"), &short).unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(
        e.contains("truncated") && e.contains("24") && e.contains("20"),
        "{e}"
    );
    // Count mismatch.
    std::fs::write(
        dir.path().join("train-images-idx3-ubyte"),
        idx_images(2, 2, 2, |_| 1),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        idx_labels(&[1, 2, 3]),
    )
    .unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(
        e.contains("mismatch") && e.contains("2 images") && e.contains("3 labels"),
        "{e}"
    );
    // Corrupt gzip.
    std::fs::write(
        dir.path().join("train-labels-idx1-ubyte"),
        [0x1f, 0x8b, 1, 2, 3],
    )
    .unwrap();
    let e = err_of(files::mnist_dir(dir.path()));
    assert!(
        e.contains("train-labels-idx1-ubyte") && e.contains("gzip"),
        "{e}"
    );
    // And through a script the error surfaces as a script error.
    let e = run(r#"mnist("/nonexistent/mnist")"#).unwrap_err();
    assert!(e.contains("/nonexistent/mnist"), "{e}");
}

// ---------- CIFAR-10 ----------

fn cifar_batch(labels: &[u8], base: u8) -> Vec<u8> {
    let mut b = Vec::new();
    for (i, &l) in labels.iter().enumerate() {
        b.push(l);
        for c in 0..3u32 {
            b.extend((0..1024u32).map(|p| (base as u32 + i as u32 + c * 50 + (p % 7)) as u8));
        }
    }
    b
}

#[test]
fn cifar10_batches_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("data_batch_1.bin"), cifar_batch(&[3, 9], 0)).unwrap();
    std::fs::write(dir.path().join("data_batch_2.bin"), cifar_batch(&[0], 10)).unwrap();
    std::fs::write(
        dir.path().join("test_batch.bin"),
        cifar_batch(&[1, 1, 1, 1], 0),
    )
    .unwrap();
    let ds = files::cifar10(dir.path()).unwrap();
    assert_eq!(ds.shape, vec![3, 3, 32, 32]);
    assert_eq!(ds.labels.as_ref().unwrap().as_slice(), &[3, 9, 0]);
    // Sample 1, channel 2 (blue), pixel 3: 0 + 1 + 100 + 3.
    assert!((ds.data[3072 + 2 * 1024 + 3] - 104.0 / 255.0).abs() < 1e-6);
    // Sample 2 comes from the second batch: base 10, channel 0, pixel 0.
    assert!((ds.data[2 * 3072] - 10.0 / 255.0).abs() < 1e-6);

    let mut bad = cifar_batch(&[1, 2], 0);
    bad.truncate(3073 + 100);
    std::fs::write(dir.path().join("data_batch_2.bin"), &bad).unwrap();
    let e = err_of(files::cifar10(dir.path()));
    assert!(
        e.contains("data_batch_2.bin") && e.contains("truncated") && e.contains("3173"),
        "{e}"
    );

    let empty = tempfile::tempdir().unwrap();
    let e = err_of(files::cifar10(empty.path()));
    assert!(e.contains("data_batch_1.bin"), "{e}");
    let e = err_of(files::cifar10(Path::new("/nonexistent/cifar")));
    assert!(
        e.contains("/nonexistent/cifar") && e.contains("does not exist"),
        "{e}"
    );
}

// ---------- NPY / NPZ ----------

fn npy_bytes(descr: &str, shape: &[usize], body: &[u8]) -> Vec<u8> {
    let shape_txt = match shape.len() {
        1 => format!("({},)", shape[0]),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    common::npy_file(descr, &shape_txt, body)
}

#[test]
fn npy_and_npz_loaders() {
    let dir = tempfile::tempdir().unwrap();
    let f32s: Vec<u8> = [1.5f32, -2.0, 3.0, 4.25, 5.0, 6.0]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let p = dir.path().join("points.npy");
    std::fs::write(&p, npy_bytes("<f4", &[3, 2], &f32s)).unwrap();
    let ds = files::npy(&p).unwrap();
    assert_eq!(ds.shape, vec![3, 2]);
    assert_eq!(ds.data.as_slice(), &[1.5, -2.0, 3.0, 4.25, 5.0, 6.0]);
    assert_eq!(ds.range, None);

    let f64s: Vec<u8> = [0.25f64, 0.5]
        .iter()
        .flat_map(|x| x.to_le_bytes())
        .collect();
    let p64 = dir.path().join("d.npy");
    std::fs::write(&p64, npy_bytes("<f8", &[2], &f64s)).unwrap();
    let ds = files::npy(&p64).unwrap();
    assert_eq!(
        (ds.shape.clone(), ds.data.as_slice().to_vec()),
        (vec![2, 1], vec![0.25f32, 0.5])
    );

    // uint8 NHWC images become NCHW in [0, 1].
    let u8s: Vec<u8> = (0..2 * 4 * 4 * 3).map(|i| i as u8).collect();
    let pu = dir.path().join("imgs.npy");
    std::fs::write(&pu, npy_bytes("|u1", &[2, 4, 4, 3], &u8s)).unwrap();
    let ds = files::npy(&pu).unwrap();
    assert_eq!(ds.shape, vec![2, 3, 4, 4]);
    // Sample 0, channel 1, y 0, x 1 was NHWC index (0*4+1)*3+1 = 4.
    assert!((ds.data[16 + 1] - 4.0 / 255.0).abs() < 1e-6);

    // NPZ (one stored, one deflated entry).
    let pz = dir.path().join("arrays.npz");
    {
        let f = std::fs::File::create(&pz).unwrap();
        let mut z = zip::ZipWriter::new(f);
        let stored = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        z.start_file("x.npy", stored).unwrap();
        z.write_all(&npy_bytes("<f4", &[3, 2], &f32s)).unwrap();
        let deflated = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("imgs.npy", deflated).unwrap();
        z.write_all(&npy_bytes("|u1", &[2, 4, 4, 3], &u8s)).unwrap();
        z.finish().unwrap();
    }
    assert_eq!(files::npz(&pz, "x").unwrap().shape, vec![3, 2]);
    let v = run_ok(&format!(
        "let ds = npz({}, \"imgs\", #{{range: \"-1,1\"}}); ds.images.min().item()",
        lit(&pz)
    ));
    assert!((v.as_float().unwrap() + 1.0).abs() < 1e-6);
    let e = err_of(files::npz(&pz, "labels"));
    assert!(
        e.contains("labels") && e.contains("imgs") && e.contains("arrays.npz"),
        "{e}"
    );

    // Broken: bad magic, truncated data, unsupported dtype, missing file.
    let bad = dir.path().join("bad.npy");
    std::fs::write(&bad, b"not numpy at all").unwrap();
    let e = err_of(files::npy(&bad));
    assert!(e.contains("bad.npy") && e.contains("magic"), "{e}");
    std::fs::write(&bad, npy_bytes("<f4", &[3, 2], &f32s[..10])).unwrap();
    let e = err_of(files::npy(&bad));
    assert!(
        e.contains("bad.npy") && e.contains("truncated") && e.contains("24") && e.contains("10"),
        "{e}"
    );
    std::fs::write(&bad, npy_bytes(">i2", &[3], &[0; 6])).unwrap();
    let e = err_of(files::npy(&bad));
    assert!(e.contains("unsupported") && e.contains(">i2"), "{e}");
    let e = err_of(files::npy(&dir.path().join("missing.npy")));
    assert!(
        e.contains("missing.npy") && e.contains("does not exist"),
        "{e}"
    );
    let e = err_of(files::npz(&bad, "x"));
    assert!(e.contains("bad.npy") && e.contains("zip"), "{e}");
}

// ---------- image folders ----------

#[test]
fn image_folder_resizes_crops_and_labels() {
    let dir = tempfile::tempdir().unwrap();
    for (class, shade) in [("cats", 10u8), ("dogs", 200u8)] {
        std::fs::create_dir(dir.path().join(class)).unwrap();
        // 8 wide × 4 high: no resize for size 4, centre crop keeps columns 2..6.
        let img = image::RgbImage::from_fn(8, 4, |x, _| image::Rgb([(x * 30) as u8, shade, 0]));
        img.save(dir.path().join(class).join("a.png")).unwrap();
    }
    let ds = files::image_folder(dir.path(), 4).unwrap();
    assert_eq!(ds.shape, vec![2, 3, 4, 4]);
    assert_eq!(ds.labels.as_ref().unwrap().as_slice(), &[0, 1]);
    assert!(
        (ds.data[0] - 60.0 / 255.0).abs() < 1e-6,
        "red of the first cropped column"
    );
    assert!((ds.data[3] - 150.0 / 255.0).abs() < 1e-6);
    assert!(
        (ds.data[48 + 16] - 200.0 / 255.0).abs() < 1e-6,
        "green of the second image"
    );

    // A larger JPEG is resized (shorter side → size).
    let jpg = dir.path().join("dogs").join("big.jpg");
    image::RgbImage::from_pixel(40, 20, image::Rgb([128, 128, 128]))
        .save(&jpg)
        .unwrap();
    let ds = files::image_folder(dir.path(), 4).unwrap();
    assert_eq!(ds.shape, vec![3, 3, 4, 4]);

    // Unreadable image: path and decoder message.
    std::fs::write(
        dir.path().join("cats").join("broken.png"),
        b"\x89PNG garbage",
    )
    .unwrap();
    let e = err_of(files::image_folder(dir.path(), 4));
    assert!(
        e.contains("broken.png") && e.contains("cannot read image"),
        "{e}"
    );
    let empty = tempfile::tempdir().unwrap();
    let e = err_of(files::image_folder(empty.path(), 4));
    assert!(e.contains("no images"), "{e}");
}

// ---------- mixtures ----------

fn check_mixture(ds: &Dataset, centers: &[Vec<f64>], sigma: f64, dims_with_noise: usize) {
    let d = centers[0].len();
    let (got_c, cshape) = ds.centers.clone().unwrap();
    assert_eq!(cshape, vec![centers.len(), d]);
    for (i, c) in centers.iter().enumerate() {
        for j in 0..d {
            assert!((got_c[i * d + j] as f64 - c[j]).abs() < 1e-5, "centre {i}");
        }
    }
    let labels = ds.labels.clone().unwrap();
    let mut sq = 0.0;
    let n = ds.len();
    for i in 0..n {
        let x: Vec<f64> = ds.data[i * d..(i + 1) * d]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let (k, dist2) = centers
            .iter()
            .enumerate()
            .map(|(k, c)| {
                (
                    k,
                    c.iter().zip(&x).map(|(a, b)| (a - b).powi(2)).sum::<f64>(),
                )
            })
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap();
        assert_eq!(
            k as i64, labels[i],
            "sample {i} is nearest to its own component"
        );
        assert!(
            dist2.sqrt() < 6.0 * sigma * (dims_with_noise as f64).sqrt(),
            "sample {i} too far"
        );
        sq += dist2;
    }
    let std = (sq / (n * dims_with_noise) as f64).sqrt();
    assert!((std - sigma).abs() < 0.1 * sigma, "std {std} vs {sigma}");
    // Every component is used.
    for k in 0..centers.len() {
        assert!(labels.contains(&(k as i64)), "component {k} unused");
    }
}

#[test]
fn mixtures_have_the_right_centres_and_spread() {
    ganscript::rng::seed(3);
    let ring: Vec<Vec<f64>> = (0..8)
        .map(|k| {
            let a = std::f64::consts::PI * k as f64 / 4.0;
            vec![2.0 * a.cos(), 2.0 * a.sin()]
        })
        .collect();
    let ds = mixtures::ring8(4000, 0.02).unwrap();
    assert_eq!(ds.shape, vec![4000, 2]);
    check_mixture(&ds, &ring, 0.02, 2);

    let mut grid = Vec::new();
    for x in [-4.0, -2.0, 0.0, 2.0, 4.0] {
        for y in [-4.0, -2.0, 0.0, 2.0, 4.0] {
            grid.push(vec![x, y]);
        }
    }
    let ds = mixtures::grid25(5000, 0.05).unwrap();
    check_mixture(&ds, &grid, 0.05, 2);

    // Roth: plane z=0 rotated 30° about x then 30° about y; unit circle; on the plane.
    let (a, b) = (30f64.to_radians(), 30f64.to_radians());
    let roth: Vec<Vec<f64>> = (0..7)
        .map(|k| {
            let t = 2.0 * std::f64::consts::PI * k as f64 / 7.0;
            let (u, v) = (t.cos(), t.sin());
            // R_x: (u, v cos a, v sin a); then R_y.
            let (x, y, z) = (u, v * a.cos(), v * a.sin());
            vec![
                x * b.cos() + z * b.sin() + 1.0,
                y - 2.0,
                -x * b.sin() + z * b.cos(),
            ]
        })
        .collect();
    let ds = mixtures::roth_mixture3d(
        3000,
        mixtures::Embedding::Tilt {
            tilt: (30.0, 30.0),
            offset: [1.0, -2.0, 0.0],
        },
        0.01,
    )
    .unwrap();
    assert_eq!(ds.shape, vec![3000, 3]);
    check_mixture(&ds, &roth, 0.01, 2);
    // Samples lie on the tilted plane: normal = R_y R_x e3.
    let nrm = [a.cos() * b.sin(), -a.sin(), a.cos() * b.cos()];
    for r in ds.data.chunks(3) {
        let dist =
            (r[0] as f64 - 1.0) * nrm[0] + (r[1] as f64 + 2.0) * nrm[1] + r[2] as f64 * nrm[2];
        assert!(dist.abs() < 1e-5, "off the plane by {dist}");
    }

    // Through scripts: defaults and reproducibility with the same seed.
    let v = run_ok("seed(5); let a = ring8(50).x; seed(5); let b = ring8(50).x; [(a - b).abs().max().item(), a.shape[1] * 1.0, ring8(3).centers.shape[0] * 1.0, roth_mixture3d(4, #{tilt: 10, std: 0.02}).centers.shape[1] * 1.0]");
    assert_eq!(floats(v), vec![0.0, 2.0, 8.0, 3.0]);
    let e = run("roth_mixture3d(4, #{tlit: 3})").unwrap_err();
    assert!(e.contains("tlit"), "{e}");
}

// ---------- transforms ----------

#[test]
fn transforms_pad_scale_and_color_mnist() {
    let base = files::builtin_mnist().unwrap().take(20);
    let padded = base.padded(32).unwrap();
    assert_eq!(padded.shape, vec![20, 1, 32, 32]);
    for y in 0..28 {
        for x in 0..28 {
            assert_eq!(padded.data[(y + 2) * 32 + x + 2], base.data[y * 28 + x]);
        }
    }
    assert!(padded.data[..2 * 32].iter().all(|&v| v == 0.0));
    let scaled = padded.scaled(-1.0, 1.0).unwrap();
    assert_eq!(scaled.data[0], -1.0);
    assert!(
        (scaled.data[(2 + 14) * 32 + 16] - (2.0 * padded.data[(2 + 14) * 32 + 16] - 1.0)).abs()
            < 1e-6
    );
    // Padding a [-1,1] set pads with -1.
    let p2 = base.scaled(-1.0, 1.0).unwrap().padded(30).unwrap();
    assert_eq!(p2.data[0], -1.0);

    ganscript::rng::seed(9);
    let c = base.color_stacked(6).unwrap();
    assert_eq!(c.shape, vec![6, 3, 28, 28]);
    let labels = c.labels.clone().unwrap();
    let base_labels = base.labels.clone().unwrap();
    for i in 0..6 {
        assert!((0..1000).contains(&labels[i]));
        // Each channel is one of the source digits, with the matching label digit.
        for ch in 0..3 {
            let plane = &c.data[(i * 3 + ch) * 784..(i * 3 + ch + 1) * 784];
            let digit = [labels[i] / 100, labels[i] / 10 % 10, labels[i] % 10][ch];
            assert!(
                (0..20).any(|j| base_labels[j] == digit && &base.data[j * 784..(j + 1) * 784] == plane),
                "sample {i} channel {ch}"
            );
        }
    }
    let v = run_ok("let ds = color_mnist(mnist().take(100), 5); [ds.len(), ds.shape[0]]");
    assert_eq!(ints(v), vec![5, 3]);
    let e = run("pad_to(mnist().take(2), 20)").unwrap_err();
    assert!(e.contains("28") && e.contains("20"), "{e}");
    let e = run("scale(ring8(10), -1, 1)").unwrap_err();
    assert!(e.contains("range"), "{e}");
}

// ---------- batches ----------

#[test]
fn batches_count_drop_last_and_cover_the_data() {
    let v = run_ok(
        r#"
        let ds = dataset(tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0], [9.0]]));
        let a = 0; let sizes = [];
        for x in batches(ds, 4) { a += 1; sizes.push(x.shape[0]); }
        let b = 0;
        for x in batches(ds, 4, #{drop_last: true}) { b += 1; }
        [a, b, ds.num_batches(4, false), ds.num_batches(4, true), sizes[0], sizes[2]]
    "#,
    );
    assert_eq!(ints(v), vec![3, 2, 3, 2, 4, 2]);
    // Shuffled epochs: a permutation of the data, different across epochs.
    let v = run_ok(
        r#"
        seed(11);
        let ds = dataset(tensor([[0.0], [1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0], [9.0]]));
        let epochs = [];
        for e in 0..2 {
            let seen = [];
            for x in batches(ds, 3, #{shuffle: true}) { for r in x.to_array() { seen.push(r[0]); } }
            epochs.push(seen);
        }
        epochs
    "#,
    );
    let epochs: Vec<Vec<f64>> = v.into_array().unwrap().into_iter().map(floats).collect();
    for e in &epochs {
        let mut s = e.clone();
        s.sort_by(f64::total_cmp);
        assert_eq!(s, (0..10).map(|i| i as f64).collect::<Vec<_>>());
    }
    assert_ne!(epochs[0], epochs[1], "epochs are shuffled differently");
    assert_ne!(epochs[0], (0..10).map(|i| i as f64).collect::<Vec<_>>());
}

#[test]
fn shuffling_is_reproducible_with_the_same_seed() {
    let script = |seed: u64| {
        format!(
            r#"seed({seed});
            let ds = mnist().take(64);
            let out = [];
            for x in labeled_batches(ds, 16, #{{shuffle: true}}) {{ out.push(x.y.to_array()); out.push(x.x.sum().item()); }}
            out"#
        )
    };
    let a = run_ok(&script(1)).to_string();
    let b = run_ok(&script(1)).to_string();
    let c = run_ok(&script(2)).to_string();
    assert_eq!(a, b);
    assert_ne!(a, c);
    // Breaking out of a loop early is fine (the worker stops), and errors are clear.
    assert_eq!(
        run_ok("let n = 0; for x in batches(mnist(), 10) { n += 1; if n == 2 { break; } } n")
            .as_int()
            .unwrap(),
        2
    );
    let e = run("for x in batches(mnist(), 0) {}").unwrap_err();
    assert!(e.contains("batch size"), "{e}");
    let e = run("batches(mnist(), 4, #{shufle: true})").unwrap_err();
    assert!(e.contains("shufle"), "{e}");
}
