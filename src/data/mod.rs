//! Data sets: MNIST IDX (and the built-in 10k digits), CIFAR-10, image folders, NPY/NPZ,
//! synthetic mixtures, transforms and batch iteration.
//!
//! A [`Dataset`] keeps its samples on the host as `f32` (`[N, C, H, W]` for images, `[N, D]`
//! for points), with optional integer labels and, for synthetic mixtures, the mode centres.
//! Scripts get tensors from it (`ds.images`, `ds.labels`) or iterate over batches
//! (`for x in batches(ds, 64) { ... }`, see [`batches`]). Every loader checks sizes before it
//! reads, so bad files are errors naming the file and the problem, never panics.

pub mod batches;
pub mod files;
pub mod mixtures;

use crate::device::{current_device, default_dtype};
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::rng;
use crate::tensor::Tensor;
use candle_core::{DType, Tensor as CT};
use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use std::sync::Arc;

/// A data set held on the host: samples as f32, optional labels and mixture centres.
#[derive(Clone)]
pub struct Dataset {
    /// Where it came from (for messages and printing).
    pub name: String,
    /// All samples, row-major, `shape[0]` of them.
    pub data: Arc<Vec<f32>>,
    /// `[N, ...]`: the number of samples then the per-sample shape.
    pub shape: Vec<usize>,
    /// One label per sample.
    pub labels: Option<Arc<Vec<i64>>>,
    /// Mixture centres, `[K, D]`, with their shape.
    pub centers: Option<(Arc<Vec<f32>>, Vec<usize>)>,
    /// The value range the samples are scaled to (`None`: unknown, e.g. raw points).
    pub range: Option<(f32, f32)>,
}

impl Dataset {
    pub fn new(name: impl Into<String>, data: Vec<f32>, shape: Vec<usize>) -> Dataset {
        Dataset {
            name: name.into(),
            data: Arc::new(data),
            shape,
            labels: None,
            centers: None,
            range: None,
        }
    }

    /// The number of samples.
    pub fn len(&self) -> usize {
        self.shape.first().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape of one sample.
    pub fn sample_shape(&self) -> &[usize] {
        &self.shape[1.min(self.shape.len())..]
    }

    /// The number of values in one sample.
    pub fn sample_size(&self) -> usize {
        self.sample_shape().iter().product()
    }

    /// The first `n` samples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let n = n.min(self.len());
        let mut out = self.clone();
        if n == self.len() {
            return out;
        }
        let s = self.sample_size();
        out.data = Arc::new(self.data[..n * s].to_vec());
        out.shape[0] = n;
        out.labels = self.labels.as_ref().map(|l| Arc::new(l[..n].to_vec()));
        out
    }

    /// `n` distinct samples drawn at random (the seeded generator) as a tensor, like
    /// `numpy.random.choice(len, n, replace=False)`: a fresh batch outside the epoch's order.
    pub fn sample_images(&self, n: usize) -> ScriptResult<Tensor> {
        if n == 0 || n > self.len() {
            return Err(script_err(format!(
                "sample({n}): expected 1 to {} (the data set's size)",
                self.len()
            )));
        }
        let ids = crate::rng::with_rng(|r| rand::seq::index::sample(r, self.len(), n));
        let s = self.sample_size();
        let mut data = Vec::with_capacity(n * s);
        for i in ids.iter() {
            data.extend_from_slice(&self.data[i * s..(i + 1) * s]);
        }
        let mut shape = self.shape.clone();
        shape[0] = n;
        host_tensor(data, &shape)
    }

    /// All samples as a tensor (default dtype, current device).
    pub fn images_tensor(&self) -> ScriptResult<Tensor> {
        host_tensor(self.data.as_ref().clone(), &self.shape)
    }

    /// The labels as an i64 tensor `[N]`, or `()`.
    pub fn labels_dyn(&self) -> ScriptResult<Dynamic> {
        match &self.labels {
            None => Ok(Dynamic::UNIT),
            Some(l) => CT::from_vec(l.as_ref().clone(), l.len(), &current_device())
                .map(|t| Dynamic::from(Tensor(t)))
                .ctx("labels"),
        }
    }

    /// The mixture centres as a tensor, or `()`.
    pub fn centers_dyn(&self) -> ScriptResult<Dynamic> {
        match &self.centers {
            None => Ok(Dynamic::UNIT),
            Some((c, shape)) => host_tensor(c.as_ref().clone(), shape).map(Dynamic::from),
        }
    }

    /// Maps the samples linearly from their current range to `[lo, hi]`.
    pub fn scaled(&self, lo: f32, hi: f32) -> ScriptResult<Dataset> {
        let Some((a, b)) = self.range else {
            return Err(script_err(format!(
                "scale: the value range of {} is unknown (raw values, not pixels), so it cannot be \
                 rescaled; transform its tensor instead",
                self.name
            )));
        };
        if (a, b) == (lo, hi) {
            return Ok(self.clone());
        }
        let k = (hi - lo) / (b - a);
        let mut out = self.clone();
        out.data = Arc::new(self.data.iter().map(|&x| lo + (x - a) * k).collect());
        out.range = Some((lo, hi));
        Ok(out)
    }

    /// Pads `[N, C, H, W]` images to `size × size`, centred, with the background value (the
    /// low end of the range: 0 for [0, 1], -1 for [-1, 1]).
    pub fn padded(&self, size: usize) -> ScriptResult<Dataset> {
        if self.shape.len() != 4 {
            return Err(script_err(format!(
                "pad_to: needs images [N, C, H, W], {} has samples of shape {:?}",
                self.name,
                self.sample_shape()
            )));
        }
        let (n, c, h, w) = (self.shape[0], self.shape[1], self.shape[2], self.shape[3]);
        if h > size || w > size {
            return Err(script_err(format!(
                "pad_to({size}): the images of {} are already {h}×{w}, larger than {size}",
                self.name
            )));
        }
        crate::limits::check(
            &format!("pad_to({size}): {n} images of {c}×{size}×{size}"),
            (n as u128 * c as u128 * 4).saturating_mul(size as u128 * size as u128),
        )?;
        let fill = self.range.map(|r| r.0).unwrap_or(0.0);
        let (top, left) = ((size - h) / 2, (size - w) / 2);
        let mut out = vec![fill; n * c * size * size];
        for plane in 0..n * c {
            let src = &self.data[plane * h * w..(plane + 1) * h * w];
            let dst = &mut out[plane * size * size..(plane + 1) * size * size];
            for y in 0..h {
                let d = (y + top) * size + left;
                dst[d..d + w].copy_from_slice(&src[y * w..(y + 1) * w]);
            }
        }
        let mut ds = self.clone();
        ds.data = Arc::new(out);
        ds.shape = vec![n, c, size, size];
        Ok(ds)
    }

    /// Stacked "colour MNIST": `n` samples, each three random single-channel images as the R, G
    /// and B channels (as in the VEEGAN and TAN papers). Labels, when present, are
    /// `100·r + 10·g + b` (the mode index, 0..999 for digits).
    pub fn color_stacked(&self, n: usize) -> ScriptResult<Dataset> {
        if self.shape.len() != 4 || self.shape[1] != 1 {
            return Err(script_err(format!(
                "color_mnist: needs single-channel images [N, 1, H, W], {} has samples of shape {:?}",
                self.name,
                self.sample_shape()
            )));
        }
        if self.is_empty() {
            return Err(script_err(format!("color_mnist: {} is empty", self.name)));
        }
        let plane = self.shape[2] * self.shape[3];
        crate::limits::check(
            &format!(
                "color_mnist({n}): {n} images of 3×{}×{}",
                self.shape[2], self.shape[3]
            ),
            (n as u128 * 3).saturating_mul(plane as u128 * 4 + 8),
        )?;
        let src_n = self.len() as u64;
        let picks: Vec<usize> = (0..3 * n).map(|_| rng::below(src_n) as usize).collect();
        let mut data = Vec::with_capacity(n * 3 * plane);
        for &i in &picks {
            data.extend_from_slice(&self.data[i * plane..(i + 1) * plane]);
        }
        let labels = self.labels.as_ref().map(|l| {
            Arc::new(
                picks
                    .chunks(3)
                    .map(|p| 100 * l[p[0]] + 10 * l[p[1]] + l[p[2]])
                    .collect::<Vec<i64>>(),
            )
        });
        Ok(Dataset {
            name: format!("color_mnist({})", self.name),
            data: Arc::new(data),
            shape: vec![n, 3, self.shape[2], self.shape[3]],
            labels,
            centers: None,
            range: self.range,
        })
    }

    /// Applies a loader's options map: `range` ("0,1", "-1,1" or [lo, hi]), `pad_to` (a size),
    /// `limit` (keep the first N samples).
    pub fn with_options(self, opts: &Map) -> ScriptResult<Dataset> {
        let mut ds = self;
        for key in opts.keys() {
            if !["range", "pad_to", "limit"].contains(&key.as_str()) {
                return Err(script_err(format!(
                    "unknown data option `{key}`: expected range, pad_to or limit"
                )));
            }
        }
        if let Some(n) = limit_option(opts)? {
            ds = ds.take(n);
        }
        if let Some(size) = opts.get("pad_to") {
            let n = size
                .as_int()
                .map_err(|_| script_err("data option `pad_to` must be an integer"))?;
            if n <= 0 {
                return Err(script_err("data option `pad_to` must be positive"));
            }
            ds = ds.padded(n as usize)?;
        }
        if let Some(r) = opts.get("range") {
            let (lo, hi) = parse_range(r)?;
            ds = ds.scaled(lo, hi)?;
        }
        Ok(ds)
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "Dataset({}: {} samples of shape {:?}",
            self.name,
            self.len(),
            self.sample_shape()
        );
        if let Some(l) = &self.labels {
            s.push_str(&format!(", {} labels", l.len()));
        }
        if let Some((_, shape)) = &self.centers {
            s.push_str(&format!(", {} centres", shape[0]));
        }
        if let Some((lo, hi)) = self.range {
            s.push_str(&format!(", range [{lo}, {hi}]"));
        }
        s.push(')');
        s
    }
}

/// A loader's `limit` option: keep (and read) only the first N samples; N >= 1.
pub fn limit_option(opts: &Map) -> ScriptResult<Option<usize>> {
    let Some(v) = opts.get("limit") else {
        return Ok(None);
    };
    let n = v
        .as_int()
        .map_err(|_| script_err("data option `limit` must be an integer"))?;
    if n < 1 {
        return Err(script_err(format!(
            "data option `limit` must be >= 1, got {n}"
        )));
    }
    Ok(Some(usize::try_from(n).unwrap_or(usize::MAX)))
}

/// Parses a range: "0,1", "-1,1", "[-1, 1]" or an array `[lo, hi]`.
pub fn parse_range(v: &Dynamic) -> ScriptResult<(f32, f32)> {
    let bad = || {
        script_err(format!(
            "a range must be \"0,1\", \"-1,1\" or [lo, hi] with lo < hi, got {v}"
        ))
    };
    let nums: Vec<f64> = if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        s.trim_matches(|c| c == '[' || c == ']' || c == '(' || c == ')')
            .split(',')
            .map(|p| p.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<ScriptResult<_>>()?
    } else if let Some(a) = v.clone().try_cast::<Array>() {
        a.iter()
            .map(|x| {
                x.as_float()
                    .or_else(|_| x.as_int().map(|i| i as f64))
                    .map_err(|_| bad())
            })
            .collect::<ScriptResult<_>>()?
    } else {
        return Err(bad());
    };
    if nums.len() != 2 || nums[0] >= nums[1] || !nums.iter().all(|x| x.is_finite()) {
        return Err(bad());
    }
    Ok((nums[0] as f32, nums[1] as f32))
}

/// Uploads host f32 data as a tensor of the default dtype on the current device.
pub fn host_tensor(data: Vec<f32>, shape: &[usize]) -> ScriptResult<Tensor> {
    let t = CT::from_vec(data, shape, &current_device()).ctx("data")?;
    let dt = default_dtype();
    let t = if dt != DType::F32 && dt.is_float() {
        t.to_dtype(dt).ctx("data")?
    } else {
        t
    };
    Ok(Tensor(t))
}

/// Builds a data set from script tensors (samples `[N, ...]`, optional labels `[N]`).
pub fn from_tensors(x: &Tensor, labels: Option<&Tensor>) -> ScriptResult<Dataset> {
    let t = &x.0;
    if t.rank() == 0 {
        return Err(script_err(
            "dataset(x): x must have a sample dimension, got a scalar",
        ));
    }
    let data: Vec<f32> = t
        .flatten_all()
        .and_then(|f| f.to_dtype(DType::F32))
        .and_then(|f| f.to_vec1::<f32>())
        .ctx("dataset")?;
    let mut ds = Dataset::new("tensor", data, t.dims().to_vec());
    if let Some(l) = labels {
        if l.0.rank() != 1 || l.0.dim(0).or_script()? != ds.len() {
            return Err(script_err(format!(
                "dataset(x, labels): labels must have shape [{}], got {:?}",
                ds.len(),
                l.0.dims()
            )));
        }
        let vals: Vec<f64> =
            l.0.to_dtype(DType::F64)
                .and_then(|f| f.to_vec1())
                .ctx("dataset")?;
        let v = vals
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if x.fract() == 0.0 && x >= 0.0 && x <= i64::MAX as f64 {
                    Ok(x as i64)
                } else {
                    Err(script_err(format!(
                        "dataset(x, labels): label {i} is {x}: labels must be whole numbers >= 0"
                    )))
                }
            })
            .collect::<ScriptResult<Vec<i64>>>()?;
        ds.labels = Some(Arc::new(v));
    }
    Ok(ds)
}

fn to_usize(n: INT, what: &str) -> ScriptResult<usize> {
    usize::try_from(n).map_err(|_| script_err(format!("{what} must be >= 0, got {n}")))
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Dataset>("Dataset");
    reg!(
        engine,
        "to_string",
        "The data set's name, size and shape.",
        |d: &mut Dataset| d.describe()
    );
    reg!(
        engine,
        "to_debug",
        "The data set's name, size and shape.",
        |d: &mut Dataset| d.describe()
    );
    engine.register_get("images", |d: &mut Dataset| d.images_tensor());
    engine.register_get("x", |d: &mut Dataset| d.images_tensor());
    engine.register_get("labels", |d: &mut Dataset| d.labels_dyn());
    engine.register_get("y", |d: &mut Dataset| d.labels_dyn());
    engine.register_get("centers", |d: &mut Dataset| d.centers_dyn());
    engine.register_get("shape", |d: &mut Dataset| {
        d.sample_shape()
            .iter()
            .map(|&s| Dynamic::from_int(s as INT))
            .collect::<Array>()
    });
    engine.register_get("name", |d: &mut Dataset| d.name.clone());
    reg!(
        engine,
        "len",
        "The number of samples of a data set.",
        |d: &mut Dataset| d.len() as INT
    );
    reg!(
        engine,
        "take",
        "The first n samples of a data set (all if it has fewer).",
        |d: &mut Dataset, n: INT| -> ScriptResult<Dataset> { Ok(d.take(to_usize(n, "take(n)")?)) }
    );
    reg!(
        volatile engine,
        "sample",
        "n distinct samples drawn at random from the seeded generator, as a tensor [n, ...] (a fresh batch outside the epoch's order, e.g. the real batch a relativistic G step needs).",
        |d: &mut Dataset, n: INT| d.sample_images(to_usize(n, "sample(n)")?)
    );
    reg!(
        engine,
        "dataset",
        "A data set from a tensor of samples [N, ...].",
        |x: Tensor| from_tensors(&x, None)
    );
    reg!(
        engine,
        "dataset",
        "A data set from a tensor of samples [N, ...] and labels [N].",
        |x: Tensor, y: Tensor| from_tensors(&x, Some(&y))
    );
    reg!(
        engine,
        "scale",
        "Rescales a data set's values linearly from its current range (e.g. [0,1]) to [lo, hi].",
        |d: Dataset, lo: FLOAT, hi: FLOAT| -> ScriptResult<Dataset> {
            if lo >= hi || !lo.is_finite() || !hi.is_finite() {
                return Err(script_err(format!("scale(ds, {lo}, {hi}): needs lo < hi")));
            }
            d.scaled(lo as f32, hi as f32)
        }
    );
    reg!(
        engine,
        "scale",
        "Rescales a data set's values linearly from its current range to [lo, hi].",
        |d: Dataset, lo: INT, hi: INT| -> ScriptResult<Dataset> {
            if lo >= hi {
                return Err(script_err(format!("scale(ds, {lo}, {hi}): needs lo < hi")));
            }
            d.scaled(lo as f32, hi as f32)
        }
    );
    reg!(engine, "pad_to", "Pads images [N,C,H,W] to size×size, centred, with the background value (e.g. MNIST 28→32).", |d: Dataset, size: INT| -> ScriptResult<Dataset> {
        d.padded(to_usize(size, "pad_to size")?)
    });
    reg!(volatile engine, "color_mnist", "Stacked colour MNIST: n samples of 3 random digits as R, G, B; labels 100r+10g+b.", |d: Dataset, n: INT| -> ScriptResult<Dataset> {
        d.color_stacked(to_usize(n, "color_mnist n")?)
    });
    reg!(
        engine,
        "num_batches",
        "Batches per epoch for a batch size (a last partial batch counts unless drop_last).",
        |d: &mut Dataset, bs: INT, drop_last: bool| -> ScriptResult<INT> {
            Ok(batches::num_batches(d.len(), batches::batch_size(bs)?, drop_last) as INT)
        }
    );
    reg!(
        engine,
        "num_batches",
        "Batches per epoch for a batch size, counting a last partial batch.",
        |d: &mut Dataset, bs: INT| -> ScriptResult<INT> {
            Ok(batches::num_batches(d.len(), batches::batch_size(bs)?, false) as INT)
        }
    );
    files::register(engine);
    mixtures::register(engine);
    batches::register(engine);
}
