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

mod cifar;
mod folder;
mod idx;
mod npy;

pub use cifar::*;
pub use folder::*;
pub use idx::*;
pub use npy::*;

pub(super) fn be_u32(b: &[u8], at: usize) -> u32 {
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

pub(super) fn list_dir(dir: &Path, what: &str) -> ScriptResult<Vec<String>> {
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
