//! MNIST and Fashion-MNIST in IDX files (raw or gzip), and the built-in 10,000 digits.

use super::*;

/// The built-in 10,000 MNIST digits (see `src/data/mnist-10k/README.md` for the attribution).
pub(super) static BUILTIN_IMAGES: &[u8] = include_bytes!("../mnist-10k/images-idx3-ubyte.gz");
pub(super) static BUILTIN_LABELS: &[u8] = include_bytes!("../mnist-10k/labels-idx1-ubyte.gz");

pub(super) const IDX_IMAGES_MAGIC: u32 = 0x0000_0803;
pub(super) const IDX_LABELS_MAGIC: u32 = 0x0000_0801;

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
