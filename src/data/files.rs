//! Loaders for data on disk: MNIST / Fashion-MNIST IDX (raw or gzip, plus the built-in 10k
//! digits), CIFAR-10 binary batches, folders of PNG/JPEG images, NPY and NPZ arrays.
//!
//! Pixels are scaled to [0, 1]; a loader's options map (`#{range: "-1,1", pad_to: 32, limit: N}`)
//! transforms the result. Every size is checked before any slicing: a bad file is an error
//! naming the file and what is wrong with it.

use super::{limit_option, Dataset};
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

/// A stream of file data: raw or gzip-compressed (recognised by its magic bytes, whatever the
/// name), read on demand so that a header is checked before its body is read and a `limit`
/// stops the reading early. `raw_len` is the length of uncompressed data when it is known
/// (a plain file), so a header can be checked against it before anything is allocated.
pub struct Source {
    pub name: String,
    reader: Box<dyn Read>,
    raw_len: Option<u64>,
    gzip: bool,
}

impl Source {
    /// A source over in-memory bytes (gzip or not).
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Source {
        let len = bytes.len() as u64;
        Source::new(name, Box::new(std::io::Cursor::new(bytes)), Some(len))
    }

    /// A source over a file (gzip or not).
    pub fn open(path: &Path) -> ScriptResult<Source> {
        check_read("read", path).map_err(script_err)?;
        let f = std::fs::File::open(path)
            .map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))?;
        let len = f.metadata().ok().map(|m| m.len());
        Ok(Source::new(&path.display().to_string(), Box::new(f), len))
    }

    fn new(name: &str, reader: Box<dyn Read>, len: Option<u64>) -> Source {
        let mut buf = std::io::BufReader::new(reader);
        let gzip = matches!(std::io::BufRead::fill_buf(&mut buf), Ok(b) if b.len() >= 2 && b[0] == 0x1f && b[1] == 0x8b);
        if gzip {
            Source {
                name: name.to_string(),
                reader: Box::new(flate2::bufread::MultiGzDecoder::new(buf)),
                raw_len: None,
                gzip: true,
            }
        } else {
            Source {
                name: name.to_string(),
                reader: Box::new(buf),
                raw_len: len,
                gzip: false,
            }
        }
    }

    /// Fills `buf`; returns how many bytes there were (fewer than asked at the end of the data).
    fn read_up_to(&mut self, buf: &mut [u8]) -> ScriptResult<usize> {
        let mut got = 0;
        while got < buf.len() {
            match self.reader.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if self.gzip => {
                    return Err(script_err(format!("{}: corrupt gzip data: {e}", self.name)))
                }
                Err(e) => return Err(script_err(format!("cannot read {}: {e}", self.name))),
            }
        }
        Ok(got)
    }

    /// Reads exactly `n` bytes (`what` and `total` describe them for the truncation error:
    /// `total` bytes in all, of which `offset` come before these).
    fn read_body(
        &mut self,
        n: usize,
        what: &str,
        offset: usize,
        total: u128,
    ) -> ScriptResult<Vec<u8>> {
        let mut out = vec![0u8; n];
        let got = self.read_up_to(&mut out)?;
        if got < n {
            return Err(script_err(format!(
                "{}: truncated {what}: needs {total} bytes, found {}{}",
                self.name,
                offset + got,
                if self.gzip {
                    " (after decompression)"
                } else {
                    ""
                }
            )));
        }
        Ok(out)
    }
}

/// The IDX header of `src`: `expect_dims` sizes after the magic number `magic`.
fn idx_header(
    src: &mut Source,
    magic: u32,
    expect_dims: usize,
    kind: &str,
) -> ScriptResult<Vec<usize>> {
    let len = 4 + 4 * expect_dims;
    let mut h = vec![0u8; len];
    let got = src.read_up_to(&mut h)?;
    if got < len {
        return Err(script_err(format!(
            "{}: truncated IDX {kind} file: expected a {len}-byte header, the file has {got} bytes",
            src.name
        )));
    }
    let found = be_u32(&h, 0);
    if found != magic {
        let other = match found {
            IDX_LABELS_MAGIC => " (this is a label file)",
            IDX_IMAGES_MAGIC => " (this is an image file)",
            _ => "",
        };
        return Err(script_err(format!(
            "{}: wrong magic number for an IDX {kind} file: expected 0x{magic:08X}, found 0x{found:08X}{other}",
            src.name
        )));
    }
    Ok((0..expect_dims)
        .map(|i| be_u32(&h, 4 + 4 * i) as usize)
        .collect())
}

/// IDX images: `(declared count, rows, cols, pixels of the first min(count, limit) images)`.
/// The declared size is checked against the file (when its length is known) and the memory
/// budget before the pixels are read.
pub fn read_idx_images(
    src: &mut Source,
    limit: Option<usize>,
) -> ScriptResult<(usize, usize, usize, Vec<u8>)> {
    let d = idx_header(src, IDX_IMAGES_MAGIC, 3, "image")?;
    let (n, rows, cols) = (d[0], d[1], d[2]);
    let file = src.name.clone();
    if n == 0 {
        return Err(script_err(format!(
            "{file}: the IDX image file holds no images (its header declares 0)"
        )));
    }
    if rows == 0 || cols == 0 {
        return Err(script_err(format!(
            "{file}: the IDX header declares images of {rows}×{cols} pixels"
        )));
    }
    let plane = rows as u128 * cols as u128;
    let expected = n as u128 * plane + 16;
    if let Some(len) = src.raw_len {
        if (len as u128) < expected {
            return Err(script_err(format!(
                "{file}: truncated IDX image file: {n} images of {rows}×{cols} need {expected} bytes, found {len}"
            )));
        }
    }
    let take = limit.map_or(n, |l| l.min(n));
    let bytes = take as u128 * plane;
    // The pixels as bytes, then as f32.
    crate::limits::check(
        &format!("{file}: {take} images of {rows}×{cols}"),
        bytes.saturating_mul(5),
    )?;
    let pixels = src.read_body(bytes as usize, "IDX image file", 16, 16 + bytes)?;
    Ok((n, rows, cols, pixels))
}

/// IDX labels: `(declared count, the first min(count, limit) labels)`, each checked to be a
/// digit class 0..9.
pub fn read_idx_labels(src: &mut Source, limit: Option<usize>) -> ScriptResult<(usize, Vec<i64>)> {
    let n = idx_header(src, IDX_LABELS_MAGIC, 1, "label")?[0];
    let file = src.name.clone();
    if let Some(len) = src.raw_len {
        if (len as u128) < n as u128 + 8 {
            return Err(script_err(format!(
                "{file}: truncated IDX label file: {n} labels need {} bytes, found {len}",
                n as u128 + 8
            )));
        }
    }
    let take = limit.map_or(n, |l| l.min(n));
    crate::limits::check(&format!("{file}: {take} labels"), take as u128 * 9)?;
    let raw = src.read_body(take, "IDX label file", 8, 8 + take as u128)?;
    if let Some(i) = raw.iter().position(|&l| l > 9) {
        return Err(script_err(format!(
            "{file}: label {i} is {}: MNIST and Fashion-MNIST labels are classes 0..9",
            raw[i]
        )));
    }
    Ok((n, raw.into_iter().map(i64::from).collect()))
}

/// Parses an IDX image file: `(count, rows, cols, pixels)`.
pub fn parse_idx_images(b: &[u8], file: &str) -> ScriptResult<(usize, usize, usize, Vec<u8>)> {
    read_idx_images(&mut Source::from_bytes(file, b.to_vec()), None)
}

/// Parses an IDX label file.
pub fn parse_idx_labels(b: &[u8], file: &str) -> ScriptResult<Vec<i64>> {
    read_idx_labels(&mut Source::from_bytes(file, b.to_vec()), None).map(|(_, l)| l)
}

/// Builds an MNIST-style data set from IDX sources (possibly gzip-compressed), reading the
/// first `limit` samples only.
pub fn mnist_from_sources(
    images: &mut Source,
    labels: &mut Source,
    name: &str,
    limit: Option<usize>,
) -> ScriptResult<Dataset> {
    let (n, rows, cols, pixels) = read_idx_images(images, limit)?;
    let (n_labels, labels_v) = read_idx_labels(labels, limit)?;
    if n_labels != n {
        return Err(script_err(format!(
            "image/label count mismatch: {} has {n} images but {} has {n_labels} labels",
            images.name, labels.name
        )));
    }
    let data = pixels.iter().map(|&p| p as f32 / 255.0).collect();
    let mut ds = Dataset::new(name, data, vec![labels_v.len(), 1, rows, cols]);
    ds.labels = Some(Arc::new(labels_v));
    ds.range = Some((0.0, 1.0));
    Ok(ds)
}

/// Builds an MNIST-style data set from IDX bytes (possibly gzip-compressed).
pub fn mnist_from_bytes(
    images: Vec<u8>,
    images_name: &str,
    labels: Vec<u8>,
    labels_name: &str,
    name: &str,
) -> ScriptResult<Dataset> {
    mnist_from_sources(
        &mut Source::from_bytes(images_name, images),
        &mut Source::from_bytes(labels_name, labels),
        name,
        None,
    )
}

/// The built-in 10,000 MNIST digits, [10000, 1, 28, 28] in [0, 1], with labels.
pub fn builtin_mnist() -> ScriptResult<Dataset> {
    builtin_mnist_limited(None)
}

/// The first `limit` built-in digits.
pub fn builtin_mnist_limited(limit: Option<usize>) -> ScriptResult<Dataset> {
    mnist_from_sources(
        &mut Source::from_bytes("built-in images-idx3-ubyte.gz", BUILTIN_IMAGES.to_vec()),
        &mut Source::from_bytes("built-in labels-idx1-ubyte.gz", BUILTIN_LABELS.to_vec()),
        "mnist (built-in 10k)",
        limit,
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
    mnist_dir_limited(dir, None)
}

/// The first `limit` samples of [`mnist_dir`] (only those are read).
pub fn mnist_dir_limited(dir: &Path, limit: Option<usize>) -> ScriptResult<Dataset> {
    let (img, lab) = find_idx_pair(dir)?;
    mnist_from_sources(
        &mut Source::open(&img)?,
        &mut Source::open(&lab)?,
        &format!("mnist({})", dir.display()),
        limit,
    )
}

const CIFAR_RECORD: usize = 3073;

/// CIFAR-10 binary version: `data_batch_*.bin` in `dir` (or in `dir/cifar-10-batches-bin`);
/// `test_batch.bin` alone if there are no training batches.
pub fn cifar10(dir: &Path) -> ScriptResult<Dataset> {
    cifar10_limited(dir, None)
}

/// The first `limit` records of [`cifar10`] (only those are read).
pub fn cifar10_limited(dir: &Path, limit: Option<usize>) -> ScriptResult<Dataset> {
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
    // Every batch's size is checked, and the records to read against the budget, before any
    // is read.
    let mut plan = Vec::new();
    let mut wanted = limit.unwrap_or(usize::MAX);
    for name in batches {
        let path = dir.join(name);
        let len = std::fs::metadata(&path)
            .map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))?
            .len();
        if len == 0 || len % CIFAR_RECORD as u64 != 0 {
            return Err(script_err(format!(
                "{}: truncated or not a CIFAR-10 batch: {len} bytes is not a multiple of the \
                 {CIFAR_RECORD}-byte record (1 label + 3072 pixels); a full batch has {} bytes",
                path.display(),
                10000 * CIFAR_RECORD
            )));
        }
        let records = ((len / CIFAR_RECORD as u64) as usize).min(wanted);
        wanted -= records;
        if records > 0 {
            plan.push((path, records));
        }
    }
    let total: usize = plan.iter().map(|(_, r)| r).sum();
    crate::limits::check(
        &format!("cifar10: {total} images of 3×32×32"),
        (total as u128 * 3072 * 4).saturating_add(10000 * CIFAR_RECORD as u128),
    )?;
    let mut data = Vec::with_capacity(total * 3072);
    let mut labels = Vec::with_capacity(total);
    for (path, records) in plan {
        let mut bytes = Vec::with_capacity(records * CIFAR_RECORD);
        std::fs::File::open(&path)
            .and_then(|f| {
                f.take((records * CIFAR_RECORD) as u64)
                    .read_to_end(&mut bytes)
            })
            .map_err(|e| script_err(format!("cannot read {}: {e}", path.display())))?;
        if bytes.len() < records * CIFAR_RECORD {
            return Err(script_err(format!(
                "{}: truncated while reading: {} bytes, expected {}",
                path.display(),
                bytes.len(),
                records * CIFAR_RECORD
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
    crate::limits::check(
        &format!("image_folder: {} images of 3×{size}×{size}", files.len()),
        (files.len() as u128 * 3 * 4).saturating_mul(size as u128 * size as u128),
    )?;
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

/// The largest NPY header accepted (numpy writes a few hundred bytes).
const MAX_NPY_HEADER: usize = 1 << 20;

/// Parses NPY bytes (float32, float64 or uint8, little-endian, C order).
pub fn parse_npy(b: &[u8], file: &str) -> ScriptResult<NpyArray> {
    let len = b.len() as u64;
    read_npy(&mut std::io::Cursor::new(b), Some(len), file, None)
}

/// Reads an NPY array from `r` (`len`: its length in bytes, when known), only its first `limit`
/// rows (entries of dimension 0). The header's shape is checked against the data's length and
/// the memory budget before the values are read.
pub fn read_npy(
    r: &mut dyn Read,
    len: Option<u64>,
    file: &str,
    limit: Option<usize>,
) -> ScriptResult<NpyArray> {
    let read_up_to = |r: &mut dyn Read, buf: &mut [u8]| -> ScriptResult<usize> {
        let mut got = 0;
        while got < buf.len() {
            match r.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(script_err(format!("cannot read {file}: {e}"))),
            }
        }
        Ok(got)
    };
    let mut pre = [0u8; 12];
    let got = read_up_to(r, &mut pre[..10])?;
    if got < 10 || &pre[..6] != b"\x93NUMPY" {
        return Err(script_err(format!(
            "{file}: not an NPY file: wrong magic (expected \\x93NUMPY at the start)"
        )));
    }
    let major = pre[6];
    let (hlen, start) = match major {
        1 => (u16::from_le_bytes([pre[8], pre[9]]) as usize, 10),
        2 | 3 => {
            if read_up_to(r, &mut pre[10..12])? < 2 {
                return Err(script_err(format!("{file}: truncated NPY header")));
            }
            (
                u32::from_le_bytes([pre[8], pre[9], pre[10], pre[11]]) as usize,
                12,
            )
        }
        v => {
            return Err(script_err(format!(
                "{file}: unsupported NPY format version {v} (expected 1, 2 or 3)"
            )))
        }
    };
    if hlen > MAX_NPY_HEADER {
        return Err(script_err(format!(
            "{file}: the NPY header declares {hlen} bytes of header: not an NPY file"
        )));
    }
    if let Some(len) = len {
        if len < (start + hlen) as u64 {
            return Err(script_err(format!(
                "{file}: truncated NPY header: expected {} bytes, the file has {len}",
                start + hlen
            )));
        }
    }
    let mut hbytes = vec![0u8; hlen];
    let got = read_up_to(r, &mut hbytes)?;
    if got < hlen {
        return Err(script_err(format!(
            "{file}: truncated NPY header: expected {} bytes, the file has {}",
            start + hlen,
            start + got
        )));
    }
    let header = String::from_utf8_lossy(&hbytes).to_string();
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
    let mut shape: Vec<usize> = shape_text
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| script_err(format!("{file}: bad NPY shape ({shape_text})")))
        })
        .collect::<ScriptResult<_>>()?;
    if shape.len() > 32 {
        return Err(script_err(format!(
            "{file}: the NPY shape has {} dimensions (at most 32)",
            shape.len()
        )));
    }
    let itemsize: usize = match descr.as_str() {
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
    let count = shape
        .iter()
        .fold(1u128, |a, &d| a.saturating_mul(d as u128));
    let need_all = count.saturating_mul(itemsize as u128);
    if let Some(len) = len {
        let body = len - (start + hlen) as u64;
        if (body as u128) < need_all {
            return Err(script_err(format!(
                "{file}: truncated NPY data: shape {shape:?} of '{descr}' needs {need_all} bytes, found {body}"
            )));
        }
    }
    // Only the first `limit` rows are read.
    if let (Some(l), Some(rows)) = (limit, shape.first_mut()) {
        *rows = (*rows).min(l);
    }
    let count = shape
        .iter()
        .fold(1u128, |a, &d| a.saturating_mul(d as u128));
    // The raw bytes, the f32 values, and a second f32 copy for NHWC images.
    crate::limits::check(
        &format!("{file}: an array of shape {shape:?} ('{descr}')"),
        count.saturating_mul(itemsize as u128 + 8),
    )?;
    let need = (count * itemsize as u128) as usize;
    let mut body = vec![0u8; need];
    let got = read_up_to(r, &mut body)?;
    if got < need {
        return Err(script_err(format!(
            "{file}: truncated NPY data: shape {shape:?} of '{descr}' needs {need} bytes, found {got}"
        )));
    }
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
    npy_limited(path, None)
}

/// The first `limit` rows of [`npy`] (only those are read).
pub fn npy_limited(path: &Path, limit: Option<usize>) -> ScriptResult<Dataset> {
    let file = path.display().to_string();
    check_read("npy", path).map_err(script_err)?;
    if !path.exists() {
        return Err(script_err(format!("npy: file {file} does not exist")));
    }
    let f =
        std::fs::File::open(path).map_err(|e| script_err(format!("cannot read {file}: {e}")))?;
    let len = f.metadata().ok().map(|m| m.len());
    let a = read_npy(&mut std::io::BufReader::new(f), len, &file, limit)?;
    dataset_from_array(a, format!("npy({file})"))
}

/// The array `key` (with or without `.npy`) of an NPZ archive (stored or deflated).
pub fn npz(path: &Path, key: &str) -> ScriptResult<Dataset> {
    npz_limited(path, key, None)
}

/// The first `limit` rows of [`npz`]: the entry is decompressed as it is read, and only as far
/// as its header's shape (and `limit`) say, so a compressed "bomb" is never inflated.
pub fn npz_limited(path: &Path, key: &str, limit: Option<usize>) -> ScriptResult<Dataset> {
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
    let mut reader = zip
        .by_name(&entry)
        .map_err(|e| script_err(format!("{file}: cannot read `{entry}`: {e}")))?;
    let a = read_npy(&mut reader, None, &format!("{file}[{key}]"), limit)?;
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
        |opts: Map| builtin_mnist_limited(limit_option(&opts)?)?.with_options(&opts)
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
        |dir: &str, opts: Map| {
            mnist_dir_limited(&read_path("mnist", dir)?, limit_option(&opts)?)?.with_options(&opts)
        }
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
        |dir: &str, opts: Map| {
            cifar10_limited(&read_path("cifar10", dir)?, limit_option(&opts)?)?.with_options(&opts)
        }
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
        |path: &str, opts: Map| {
            npy_limited(&read_path("npy", path)?, limit_option(&opts)?)?.with_options(&opts)
        }
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
        |path: &str, key: &str, opts: Map| {
            npz_limited(&read_path("npz", path)?, key, limit_option(&opts)?)?.with_options(&opts)
        }
    );
}
