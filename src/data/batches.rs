//! One epoch of mini-batches: `for x in batches(ds, 64) { ... }`.
//!
//! The order is drawn from [`crate::rng`] on the script thread when the loop starts (so a run is
//! reproducible, each epoch gets a new order, and a resumed run continues the same stream). A
//! worker thread gathers the next batches (up to 2 ahead) while the script works on the current
//! one; the tensor itself is made on the script thread, on the current device.

use super::Dataset;
use crate::device::current_device;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::rng;
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine, EvalAltResult, Map, INT};
use std::sync::mpsc::{sync_channel, Receiver};

/// An epoch over a data set, iterable from scripts.
#[derive(Clone)]
pub struct Batches {
    pub ds: Dataset,
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
}

/// Like [`Batches`], yielding maps `#{x: images, y: labels}`.
#[derive(Clone)]
pub struct LabeledBatches(pub Batches);

/// Checks a batch size from a script.
pub fn batch_size(bs: INT) -> ScriptResult<usize> {
    if bs <= 0 {
        return Err(script_err(format!(
            "the batch size must be positive, got {bs}"
        )));
    }
    Ok(bs as usize)
}

/// Batches per epoch.
pub fn num_batches(n: usize, bs: usize, drop_last: bool) -> usize {
    if drop_last {
        n / bs
    } else {
        n.div_ceil(bs)
    }
}

type Gathered = (Vec<f32>, Option<Vec<i64>>, usize);

/// The running epoch: receives gathered batches from the worker.
pub struct BatchIter {
    rx: Receiver<Gathered>,
    sample_shape: Vec<usize>,
}

impl Batches {
    /// Starts an epoch: draws the order (if shuffling) and starts the worker.
    pub fn start(&self) -> BatchIter {
        let n = self.ds.len();
        let order: Vec<usize> = if self.shuffle {
            rng::permutation(n)
        } else {
            (0..n).collect()
        };
        let (tx, rx) = sync_channel::<Gathered>(2);
        let data = self.ds.data.clone();
        let labels = self.ds.labels.clone();
        let s = self.ds.sample_size();
        let (bs, drop_last) = (self.batch_size, self.drop_last);
        std::thread::spawn(move || {
            for chunk in order.chunks(bs) {
                if drop_last && chunk.len() < bs {
                    break;
                }
                let mut x = Vec::with_capacity(chunk.len() * s);
                for &i in chunk {
                    x.extend_from_slice(&data[i * s..(i + 1) * s]);
                }
                let y = labels
                    .as_ref()
                    .map(|l| chunk.iter().map(|&i| l[i]).collect());
                if tx.send((x, y, chunk.len())).is_err() {
                    break; // the loop ended early
                }
            }
        });
        BatchIter {
            rx,
            sample_shape: self.ds.sample_shape().to_vec(),
        }
    }
}

impl BatchIter {
    /// The next batch: images `[b, ...]` and labels `[b]` (if any).
    pub fn next_batch(&mut self) -> Option<ScriptResult<(Tensor, Option<Tensor>)>> {
        let (x, y, b) = self.rx.recv().ok()?;
        let mut shape = vec![b];
        shape.extend_from_slice(&self.sample_shape);
        let make = || -> ScriptResult<(Tensor, Option<Tensor>)> {
            let x = super::host_tensor(x, &shape)?;
            let y = match y {
                Some(y) => Some(Tensor(
                    candle_core::Tensor::from_vec(y, b, &current_device()).ctx("batch labels")?,
                )),
                None => None,
            };
            Ok((x, y))
        };
        Some(make())
    }
}

/// The script-facing iterator over image batches.
pub struct TensorIter(BatchIter);

impl Iterator for TensorIter {
    type Item = Result<Tensor, Box<EvalAltResult>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_batch().map(|r| r.map(|(x, _)| x))
    }
}

impl IntoIterator for Batches {
    type Item = Result<Tensor, Box<EvalAltResult>>;
    type IntoIter = TensorIter;
    fn into_iter(self) -> TensorIter {
        TensorIter(self.start())
    }
}

/// The script-facing iterator over labelled batches.
pub struct MapIter(BatchIter);

impl Iterator for MapIter {
    type Item = Result<Map, Box<EvalAltResult>>;
    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_batch().map(|r| {
            r.map(|(x, y)| {
                let mut m = Map::new();
                m.insert("x".into(), Dynamic::from(x));
                m.insert("y".into(), y.map(Dynamic::from).unwrap_or(Dynamic::UNIT));
                m
            })
        })
    }
}

impl IntoIterator for LabeledBatches {
    type Item = Result<Map, Box<EvalAltResult>>;
    type IntoIter = MapIter;
    fn into_iter(self) -> MapIter {
        MapIter(self.0.start())
    }
}

fn make(ds: Dataset, bs: INT, opts: &Map) -> ScriptResult<Batches> {
    let mut b = Batches {
        ds,
        batch_size: batch_size(bs)?,
        shuffle: false,
        drop_last: false,
    };
    for (k, v) in opts {
        let flag = v
            .as_bool()
            .map_err(|_| script_err(format!("batches option `{k}` must be true or false")))?;
        match k.as_str() {
            "shuffle" => b.shuffle = flag,
            "drop_last" => b.drop_last = flag,
            other => {
                return Err(script_err(format!(
                    "unknown batches option `{other}`: expected shuffle or drop_last"
                )))
            }
        }
    }
    Ok(b)
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Batches>("Batches");
    engine.register_type_with_name::<LabeledBatches>("LabeledBatches");
    engine.register_iterator_result::<Batches, Tensor>();
    engine.register_iterator_result::<LabeledBatches, Map>();
    reg!(
        engine,
        "batches",
        "One epoch of batches, in order: `for x in batches(ds, 64) { ... }`.",
        |ds: Dataset, bs: INT| make(ds, bs, &Map::new())
    );
    reg!(
        engine,
        "batches",
        "One epoch of batches with options #{shuffle: true, drop_last: true} (seeded shuffling).",
        |ds: Dataset, bs: INT, opts: Map| make(ds, bs, &opts)
    );
    reg!(
        engine,
        "batches",
        "One epoch of batches over the rows of a tensor.",
        |x: Tensor, bs: INT| make(super::from_tensors(&x, None)?, bs, &Map::new())
    );
    reg!(
        engine,
        "batches",
        "One epoch of batches over the rows of a tensor, with options #{shuffle, drop_last}.",
        |x: Tensor, bs: INT, opts: Map| make(super::from_tensors(&x, None)?, bs, &opts)
    );
    reg!(
        engine,
        "labeled_batches",
        "One epoch of maps #{x: images, y: labels}.",
        |ds: Dataset, bs: INT| make(ds, bs, &Map::new()).map(LabeledBatches)
    );
    reg!(
        engine,
        "labeled_batches",
        "One epoch of maps #{x, y} with options #{shuffle, drop_last}.",
        |ds: Dataset, bs: INT, opts: Map| make(ds, bs, &opts).map(LabeledBatches)
    );
    reg!(
        engine,
        "len",
        "The number of batches in the epoch.",
        |b: &mut Batches| num_batches(b.ds.len(), b.batch_size, b.drop_last) as INT
    );
}
