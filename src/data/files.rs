//! Loaders for data on disk: MNIST / Fashion-MNIST IDX (raw or gzip, plus the built-in 10k
//! digits), CIFAR-10 binary batches, folders of PNG/JPEG images, NPY and NPZ arrays.
//!
//! Pixels are scaled to [0, 1]; a loader's options map (`#{range: "-1,1", pad_to: 32, limit: N}`)
//! transforms the result. Every size is checked before any slicing: a bad file is an error
//! naming the file and what is wrong with it.

use super::Dataset;
use crate::errors::{script_err, ScriptResult};
use crate::sandbox::{check_read, read_path};
use rhai::{Engine, Map, INT};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The built-in 10,000 MNIST digits (see `src/data/mnist-10k/README.md` for the attribution).
static BUILTIN_IMAGES: &[u8] = include_bytes!("mnist-10k/images-idx3-ubyte.gz");
static BUILTIN_LABELS: &[u8] = include_bytes!("mnist-10k/labels-idx1-ubyte.gz");

const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decompresses gzip data (recognised by its magic bytes, whatever the file name), else returns
/// the bytes as they are.
pub fn maybe_gunzip(bytes: Vec<u8>, file: &str) -> ScriptResult<Vec<u8>> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .map_err(|e| script_err(format!("{file}: corrupt gzip data: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes)
    }
}

fn read_file(path: &Path) -> ScriptResult<Vec<u8>> {
    check_read("read", path).map_err(script_err)?;
    std::fs::read(path).map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))
}

/// Parses an IDX image file: `(count, rows, cols, pixels)`.
pub fn parse_idx_images(b: &[u8], file: &str) -> ScriptResult<(usize, usize, usize, Vec<u8>)> {
    if b.len() < 16 {
        return Err(script_err(format!(
            "{file}: truncated IDX image file: expected a 16-byte header, the file has {} bytes",
            b.len()
        )));
    }
    let magic = be_u32(b, 0);
    if magic != IDX_IMAGES_MAGIC {
        return Err(script_err(format!(
            "{file}: wrong magic number for an IDX image file: expected 0x{IDX_IMAGES_MAGIC:08X}, found 0x{magic:08X}{}",
            if magic == IDX_LABELS_MAGIC { " (this is a label file)" } else { "" }
        )));
    }
    let (n, rows, cols) = (
        be_u32(b, 4) as usize,
        be_u32(b, 8) as usize,
        be_u32(b, 12) as usize,
    );
    let expected = n
        .checked_mul(rows)
        .and_then(|x| x.checked_mul(cols))
        .and_then(|x| x.checked_add(16))
        .ok_or_else(|| script_err(format!("{file}: absurd IDX header ({n} × {rows} × {cols})")))?;
    if b.len() < expected {
        return Err(script_err(format!(
            "{file}: truncated IDX image file: {n} images of {rows}×{cols} need {expected} bytes, found {}",
            b.len()
        )));
    }
    Ok((n, rows, cols, b[16..expected].to_vec()))
}

/// Parses an IDX label file.
pub fn parse_idx_labels(b: &[u8], file: &str) -> ScriptResult<Vec<i64>> {
    if b.len() < 8 {
        return Err(script_err(format!(
            "{file}: truncated IDX label file: expected an 8-byte header, the file has {} bytes",
            b.len()
        )));
    }
    let magic = be_u32(b, 0);
    if magic != IDX_LABELS_MAGIC {
        return Err(script_err(format!(
            "{file}: wrong magic number for an IDX label file: expected 0x{IDX_LABELS_MAGIC:08X}, found 0x{magic:08X}{}",
            if magic == IDX_IMAGES_MAGIC { " (this is an image file)" } else { "" }
        )));
    }
    let n = be_u32(b, 4) as usize;
    let expected = n + 8;
    if b.len() < expected {
        return Err(script_err(format!(
            "{file}: truncated IDX label file: {n} labels need {expected} bytes, found {}",
            b.len()
        )));
    }
    Ok(b[8..expected].iter().map(|&x| x as i64).collect())
}

/// Builds an MNIST-style data set from IDX bytes (possibly gzip-compressed).
pub fn mnist_from_bytes(
    images: Vec<u8>,
    images_name: &str,
    labels: Vec<u8>,
    labels_name: &str,
    name: &str,
) -> ScriptResult<Dataset> {
    let images = maybe_gunzip(images, images_name)?;
    let labels = maybe_gunzip(labels, labels_name)?;
    let (n, rows, cols, pixels) = parse_idx_images(&images, images_name)?;
    let labels = parse_idx_labels(&labels, labels_name)?;
    if labels.len() != n {
        return Err(script_err(format!(
            "image/label count mismatch: {images_name} has {n} images but {labels_name} has {} labels",
            labels.len()
        )));
    }
    let data = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let mut ds = Dataset::new(name, data, vec![n, 1, rows, cols]);
    ds.labels = Some(Arc::new(labels));
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}

/// The built-in 10,000 MNIST digits, [10000, 1, 28, 28] in [0, 1], with labels.
pub fn builtin_mnist() -> ScriptResult<Dataset> {
    mnist_from_bytes(
        BUILTIN_IMAGES.to_vec(),
        "built-in images-idx3-ubyte.gz",
        BUILTIN_LABELS.to_vec(),
        "built-in labels-idx1-ubyte.gz",
        "mnist (built-in 10k)",
    )
}

fn list_dir(dir: &Path, what: &str) -> ScriptResult<Vec<String>> {
    check_read(what, dir).map_err(script_err)?;
    if !dir.is_dir() {
        return Err(script_err(format!(
            "{what}: directory {} does not exist{}",
            dir.display(),
            if dir.exists() { " (it is a file)" } else { "" }
        )));
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| script_err(format!("{what}: cannot list {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    Ok(names)
}

/// Finds `<prefix>images-idx3-ubyte[.gz]` and the matching labels in `dir`: training files
/// (`train-`) first, then bare names, then any other prefix (`t10k-`). `.` and `-` are treated
/// alike (`train-images.idx3-ubyte` works too).
pub fn find_idx_pair(dir: &Path) -> ScriptResult<(PathBuf, PathBuf)> {
    let names = list_dir(dir, "mnist")?;
    let norm = |n: &str| n.trim_end_matches(".gz").replace('.', "-");
    let prefix_of = |n: &str, kind: &str| -> Option<String> {
        let n = norm(n);
        n.strip_suffix(kind).map(str::to_string)
    };
    let rank = |p: &str| {
        if p.starts_with("train") {
            0
        } else if p.is_empty() {
            1
        } else {
            2
        }
    };
    let mut images: Vec<(String, String)> = names
        .iter()
        .filter_map(|n| prefix_of(n, "images-idx3-ubyte").map(|p| (p, n.clone())))
        .collect();
    images.sort_by_key(|(p, n)| (rank(p), n.ends_with(".gz"), n.clone()));
    let expected = "expected train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz] \
                    (or t10k-…, or the bare names images-idx3-ubyte[.gz], labels-idx1-ubyte[.gz])";
    let Some((prefix, image_file)) = images.first().cloned() else {
        return Err(script_err(format!(
            "mnist: no IDX image file in {}: {expected}; found: {}",
            dir.display(),
            if names.is_empty() {
                "nothing".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let label_file = names
        .iter()
        .filter(|n| prefix_of(n, "labels-idx1-ubyte").as_deref() == Some(prefix.as_str()))
        .min_by_key(|n| n.ends_with(".gz"))
        .cloned()
        .ok_or_else(|| {
            script_err(format!(
                "mnist: found {image_file} in {} but no matching label file {prefix}labels-idx1-ubyte[.gz]",
                dir.display()
            ))
        })?;
    Ok((dir.join(image_file), dir.join(label_file)))
}

/// MNIST or Fashion-MNIST from a directory of IDX files.
pub fn mnist_dir(dir: &Path) -> ScriptResult<Dataset> {
    let (img, lab) = find_idx_pair(dir)?;
    mnist_from_bytes(
        read_file(&img)?,
        &img.display().to_string(),
        read_file(&lab)?,
        &lab.display().to_string(),
        &format!("mnist({})", dir.display()),
    )
}

const CIFAR_RECORD: usize = 3073;

/// CIFAR-10 binary version: `data_batch_*.bin` in `dir` (or in `dir/cifar-10-batches-bin`);
/// `test_batch.bin` alone if there are no training batches.
pub fn cifar10(dir: &Path) -> ScriptResult<Dataset> {
    let sub = dir.join("cifar-10-batches-bin");
    let dir = if !dir.join("data_batch_1.bin").exists() && sub.is_dir() {
        sub
    } else {
        dir.to_path_buf()
    };
    let names = list_dir(&dir, "cifar10")?;
    let mut batches: Vec<&String> = names
        .iter()
        .filter(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
        .collect();
    if batches.is_empty() {
        batches = names.iter().filter(|n| *n == "test_batch.bin").collect();
    }
    if batches.is_empty() {
        return Err(script_err(format!(
            "cifar10: no CIFAR-10 binary batches in {}: expected data_batch_1.bin … data_batch_5.bin \
             (the \"CIFAR-10 binary version\", 10000 × 3073 bytes each); found: {}",
            dir.display(),
            if names.is_empty() { "nothing".to_string() } else { names.join(", ") }
        )));
    }
    let mut data = Vec::new();
    let mut labels = Vec::new();
    for name in batches {
        let path = dir.join(name);
        let bytes = read_file(&path)?;
        if bytes.is_empty() || bytes.len() % CIFAR_RECORD != 0 {
            return Err(script_err(format!(
                "{}: truncated or not a CIFAR-10 batch: {} bytes is not a multiple of the \
                 {CIFAR_RECORD}-byte record (1 label + 3072 pixels); a full batch has {} bytes",
                path.display(),
                bytes.len(),
                10000 * CIFAR_RECORD
            )));
        }
        for (i, rec) in bytes.chunks_exact(CIFAR_RECORD).enumerate() {
            if rec[0] > 9 {
                return Err(script_err(format!(
                    "{}: record {i} has label {}, CIFAR-10 labels are 0..9 (not a CIFAR-10 batch?)",
                    path.display(),
                    rec[0]
                )));
            }
            labels.push(rec[0] as i64);
            data.extend(rec[1..].iter().map(|&p| p as f32 / 255.0));
        }
    }
    let n = labels.len();
    let mut ds = Dataset::new(
        format!("cifar10({})", dir.display()),
        data,
        vec![n, 3, 32, 32],
    );
    ds.labels = Some(Arc::new(labels));
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}

fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, depth: usize) -> ScriptResult<()> {
    check_read("image_folder", dir).map_err(script_err)?;
    let entries = std::fs::read_dir(dir)
        .map_err(|e| script_err(format!("image_folder: cannot list {}: {e}", dir.display())))?;
    for e in entries.filter_map(|e| e.ok()) {
        let p = e.path();
        if p.is_dir() && depth < 8 {
            collect_images(&p, out, depth + 1)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .map(|x| matches!(x.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
            .unwrap_or(false)
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Every PNG/JPEG under `dir` (recursively, sorted by path), RGB, shorter side resized to
/// `size` then centre-cropped to `size × size`. When every image sits in a sub-folder, the
/// sub-folders are the classes (labels 0.. in sorted order).
pub fn image_folder(dir: &Path, size: usize) -> ScriptResult<Dataset> {
    if size == 0 {
        return Err(script_err("image_folder: size must be positive"));
    }
    if !dir.is_dir() {
        return Err(script_err(format!(
            "image_folder: directory {} does not exist",
            dir.display()
        )));
    }
    let mut files = Vec::new();
    collect_images(dir, &mut files, 0)?;
    files.sort();
    if files.is_empty() {
        return Err(script_err(format!(
            "image_folder: no images in {} (expected .png, .jpg or .jpeg files)",
            dir.display()
        )));
    }
    let class_of = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(dir).ok()?;
        let mut comps = rel.components();
        let first = comps.next()?;
        comps.next()?;
        Some(first.as_os_str().to_string_lossy().to_string())
    };
    let classes: Option<Vec<String>> = files.iter().map(|p| class_of(p)).collect();
    let labels = classes.map(|c| {
        let mut names = c.clone();
        names.sort();
        names.dedup();
        c.iter()
            .map(|n| names.binary_search(n).unwrap_or(0) as i64)
            .collect::<Vec<i64>>()
    });
    let plane = size * size;
    let mut data = Vec::with_capacity(files.len() * 3 * plane);
    for p in &files {
        check_read("image_folder", p).map_err(script_err)?;
        let img = image::open(p)
            .map_err(|e| script_err(format!("cannot read image {}: {e}", p.display())))?
            .to_rgb8();
        let (w, h) = img.dimensions();
        if w == 0 || h == 0 {
            return Err(script_err(format!("image {} is empty", p.display())));
        }
        let s = size as f64 / w.min(h) as f64;
        let nw = ((w as f64 * s).round() as u32).max(size as u32);
        let nh = ((h as f64 * s).round() as u32).max(size as u32);
        let resized = if (nw, nh) == (w, h) {
            img
        } else {
            image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle)
        };
        let (x0, y0) = ((nw as usize - size) / 2, (nh as usize - size) / 2);
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let px = resized.get_pixel((x0 + x) as u32, (y0 + y) as u32);
                    data.push(px[c] as f32 / 255.0);
                }
            }
        }
    }
    let mut ds = Dataset::new(
        format!("image_folder({})", dir.display()),
        data,
        vec![files.len(), 3, size, size],
    );
    ds.labels = labels.map(Arc::new);
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}

/// A parsed NPY array: values as f32, shape, whether it held bytes (pixels).
pub struct NpyArray {
    pub data: Vec<f32>,
    pub shape: Vec<usize>,
    pub is_u8: bool,
}

fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let i = header
        .find(&format!("'{key}'"))
        .or_else(|| header.find(&format!("\"{key}\"")))?;
    let rest = &header[i + key.len() + 2..];
    let colon = rest.find(':')?;
    Some(rest[colon + 1..].trim_start())
}

/// Parses NPY bytes (float32, float64 or uint8, little-endian, C order).
pub fn parse_npy(b: &[u8], file: &str) -> ScriptResult<NpyArray> {
    if b.len() < 10 || &b[..6] != b"\x93NUMPY" {
        return Err(script_err(format!(
            "{file}: not an NPY file: wrong magic (expected \\x93NUMPY at the start)"
        )));
    }
    let major = b[6];
    let (hlen, start) = if major == 1 {
        (u16::from_le_bytes([b[8], b[9]]) as usize, 10)
    } else {
        if b.len() < 12 {
            return Err(script_err(format!("{file}: truncated NPY header")));
        }
        (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
    };
    if b.len() < start + hlen {
        return Err(script_err(format!(
            "{file}: truncated NPY header: expected {} bytes, the file has {}",
            start + hlen,
            b.len()
        )));
    }
    let header = String::from_utf8_lossy(&b[start..start + hlen]).to_string();
    let descr = header_value(&header, "descr")
        .and_then(|v| {
            let q = v.chars().next()?;
            let v = &v[q.len_utf8()..];
            v.find(q).map(|e| v[..e].to_string())
        })
        .ok_or_else(|| script_err(format!("{file}: NPY header without 'descr': {header}")))?;
    if header_value(&header, "fortran_order").is_some_and(|v| v.starts_with("True")) {
        return Err(script_err(format!(
            "{file}: Fortran-order arrays are not supported (save with np.ascontiguousarray)"
        )));
    }
    let shape_text = header_value(&header, "shape")
        .and_then(|v| v.strip_prefix('('))
        .and_then(|v| v.find(')').map(|e| v[..e].to_string()))
        .ok_or_else(|| script_err(format!("{file}: NPY header without 'shape': {header}")))?;
    let shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| script_err(format!("{file}: bad NPY shape ({shape_text})")))
        })
        .collect::<ScriptResult<_>>()?;
    let itemsize = match descr.as_str() {
        "<f4" => 4,
        "<f8" => 8,
        "|u1" | "<u1" | "u1" => 1,
        other => {
            return Err(script_err(format!(
            "{file}: unsupported NPY dtype '{other}': expected float32 ('<f4'), float64 ('<f8') \
                 or uint8 ('|u1'), little-endian"
        )))
        }
    };
    let count: usize = shape.iter().product();
    let body = &b[start + hlen..];
    let need = count * itemsize;
    if body.len() < need {
        return Err(script_err(format!(
            "{file}: truncated NPY data: shape {shape:?} of '{descr}' needs {need} bytes, found {}",
            body.len()
        )));
    }
    let body = &body[..need];
    let data: Vec<f32> = match itemsize {
        4 => body
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        8 => body
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => body.iter().map(|&x| x as f32).collect(),
    };
    Ok(NpyArray {
        data,
        shape,
        is_u8: itemsize == 1,
    })
}

/// Turns an array into a data set: uint8 is scaled to [0, 1]; floats are kept (their range is
/// recorded when they lie in [0, 1] or [-1, 1]). Shapes: `[N]` → `[N, 1]`, `[N, H, W]` →
/// `[N, 1, H, W]`, `[N, H, W, C]` with C in {1, 3} (and dim 1 not) → `[N, C, H, W]`.
pub fn dataset_from_array(a: NpyArray, name: String) -> ScriptResult<Dataset> {
    let NpyArray {
        mut data,
        shape,
        is_u8,
    } = a;
    if shape.is_empty() {
        return Err(script_err(format!(
            "{name}: a scalar array is not a data set"
        )));
    }
    let range = if is_u8 {
        data.iter_mut().for_each(|x| *x /= 255.0);
        Some((0.0, 1.0))
    } else {
        if let Some(bad) = data.iter().find(|x| !x.is_finite()) {
            return Err(script_err(format!(
                "{name}: the array holds a non-finite value ({bad})"
            )));
        }
        let (lo, hi) = data
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        if lo >= 0.0 && hi <= 1.0 {
            Some((0.0, 1.0))
        } else if lo >= -1.0 && hi <= 1.0 {
            Some((-1.0, 1.0))
        } else {
            None
        }
    };
    let (data, shape) = match shape.len() {
        1 => (data, vec![shape[0], 1]),
        3 => (data, vec![shape[0], 1, shape[1], shape[2]]),
        4 if [1, 3].contains(&shape[3]) && ![1, 3].contains(&shape[1]) => {
            let (n, h, w, c) = (shape[0], shape[1], shape[2], shape[3]);
            let mut out = vec![0f32; data.len()];
            for i in 0..n {
                for y in 0..h {
                    for x in 0..w {
                        for ch in 0..c {
                            out[((i * c + ch) * h + y) * w + x] =
                                data[((i * h + y) * w + x) * c + ch];
                        }
                    }
                }
            }
            (out, vec![n, c, h, w])
        }
        _ => (data, shape),
    };
    let mut ds = Dataset::new(name, data, shape);
    ds.range = range;
    Ok(ds)
}

/// An array from an NPY file.
pub fn npy(path: &Path) -> ScriptResult<Dataset> {
    let file = path.display().to_string();
    if !path.exists() {
        return Err(script_err(format!("npy: file {file} does not exist")));
    }
    let a = parse_npy(&read_file(path)?, &file)?;
    dataset_from_array(a, format!("npy({file})"))
}

/// The array `key` (with or without `.npy`) of an NPZ archive (stored or deflated).
pub fn npz(path: &Path, key: &str) -> ScriptResult<Dataset> {
    let file = path.display().to_string();
    check_read("npz", path).map_err(script_err)?;
    let f = std::fs::File::open(path)
        .map_err(|e| script_err(format!("npz: cannot open {file}: {e}")))?;
    let mut zip = zip::ZipArchive::new(f)
        .map_err(|e| script_err(format!("{file}: not an NPZ (zip) archive: {e}")))?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|r| r.ok())
        .map(|s| s.to_string())
        .collect();
    let want = if key.ends_with(".npy") {
        key.to_string()
    } else {
        format!("{key}.npy")
    };
    let Some(entry) = names.iter().find(|n| **n == want || **n == key).cloned() else {
        let keys: Vec<&str> = names.iter().map(|n| n.trim_end_matches(".npy")).collect();
        return Err(script_err(format!(
            "{file}: no array `{key}` in the archive; it holds: {}",
            keys.join(", ")
        )));
    };
    let mut bytes = Vec::new();
    zip.by_name(&entry)
        .map_err(|e| script_err(format!("{file}: cannot read `{entry}`: {e}")))?
        .read_to_end(&mut bytes)
        .map_err(|e| script_err(format!("{file}: cannot read `{entry}`: {e}")))?;
    let a = parse_npy(&bytes, &format!("{file}[{key}]"))?;
    dataset_from_array(a, format!("npz({file}, {key})"))
}

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "mnist",
        "The built-in 10,000 MNIST digits: [10000,1,28,28] in [0,1] with labels (no download).",
        builtin_mnist
    );
    reg!(
        engine,
        "mnist",
        "The built-in MNIST digits with options #{range: \"-1,1\", pad_to: 32, limit: N}.",
        |opts: Map| builtin_mnist()?.with_options(&opts)
    );
    reg!(
        engine,
        "mnist",
        "MNIST / Fashion-MNIST from a directory of IDX files (raw or .gz; train- files preferred).",
        |dir: &str| mnist_dir(&read_path("mnist", dir)?)
    );
    reg!(
        engine,
        "mnist",
        "MNIST / Fashion-MNIST from a directory, with options #{range, pad_to, limit}.",
        |dir: &str, opts: Map| mnist_dir(&read_path("mnist", dir)?)?.with_options(&opts)
    );
    reg!(
        engine,
        "cifar10",
        "CIFAR-10 from its binary batches (data_batch_*.bin): [N,3,32,32] in [0,1] with labels.",
        |dir: &str| cifar10(&read_path("cifar10", dir)?)
    );
    reg!(
        engine,
        "cifar10",
        "CIFAR-10 with options #{range, pad_to, limit}.",
        |dir: &str, opts: Map| cifar10(&read_path("cifar10", dir)?)?.with_options(&opts)
    );
    reg!(engine, "image_folder", "PNG/JPEG images under dir, RGB, resized and centre-cropped to size×size, in [0,1] (sub-folders = labels).", |dir: &str, size: INT| -> ScriptResult<Dataset> {
        image_folder(&read_path("image_folder", dir)?, usize::try_from(size).map_err(|_| script_err("image_folder: size must be positive"))?)
    });
    reg!(
        engine,
        "image_folder",
        "image_folder with options #{range, pad_to, limit}.",
        |dir: &str, size: INT, opts: Map| -> ScriptResult<Dataset> {
            image_folder(
                &read_path("image_folder", dir)?,
                usize::try_from(size)
                    .map_err(|_| script_err("image_folder: size must be positive"))?,
            )?
            .with_options(&opts)
        }
    );
    reg!(
        engine,
        "npy",
        "An array from an NPY file (f32/f64/u8; u8 scaled to [0,1]; NHWC images made NCHW).",
        |path: &str| npy(&read_path("npy", path)?)
    );
    reg!(
        engine,
        "npy",
        "npy with options #{range, pad_to, limit}.",
        |path: &str, opts: Map| npy(&read_path("npy", path)?)?.with_options(&opts)
    );
    reg!(
        engine,
        "npz",
        "The array `key` of an NPZ archive (f32/f64/u8; u8 scaled to [0,1]).",
        |path: &str, key: &str| npz(&read_path("npz", path)?, key)
    );
    reg!(
        engine,
        "npz",
        "npz with options #{range, pad_to, limit}.",
        |path: &str, key: &str, opts: Map| npz(&read_path("npz", path)?, key)?.with_options(&opts)
    );
}
