//! NPY arrays and NPZ archives of them.

use super::*;

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
