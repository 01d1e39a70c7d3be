//! A net's parameters and buffers: traversal in PyTorch's naming order, loading and copying
//! values, deep copies, EMA updates, and saving to and loading from files.

use super::*;
use crate::errors::Error;

impl Net {
    pub(super) fn children(&self) -> Vec<(String, Net)> {
        match &self.0.layer {
            Layer::Sequential(items) => items
                .iter()
                .enumerate()
                .map(|(i, n)| (i.to_string(), n.clone()))
                .collect(),
            Layer::Residual(body) => vec![(String::new(), body.clone())],
            _ => vec![],
        }
    }

    pub(super) fn own_params(&self) -> Vec<(&'static str, &Var)> {
        match &self.0.layer {
            Layer::Linear { w, b }
            | Layer::Conv2d { w, b, .. }
            | Layer::ConvTranspose2d { w, b, .. } => {
                let mut v = vec![("weight", w)];
                if let Some(b) = b {
                    v.push(("bias", b));
                }
                v
            }
            Layer::BatchNorm { w, b, .. } | Layer::LayerNorm { w, b } => {
                vec![("weight", w), ("bias", b)]
            }
            _ => vec![],
        }
    }

    pub(super) fn own_buffers(&self) -> Vec<(&'static str, &RefCell<CT>)> {
        match &self.0.layer {
            Layer::BatchNorm { mean, var, .. } => {
                vec![("running_mean", mean), ("running_var", var)]
            }
            _ => vec![],
        }
    }

    pub(super) fn join(prefix: &str, name: &str) -> String {
        match (prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (_, true) => prefix.to_string(),
            _ => format!("{prefix}.{name}"),
        }
    }

    /// Visits every node, depth first, with its name prefix.
    pub(super) fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Net)) {
        f(prefix, self);
        for (name, child) in self.children() {
            child.visit(&Net::join(prefix, &name), f);
        }
    }

    /// Parameters by name, in order, each shared variable once.
    pub fn named_vars(&self) -> Vec<(String, Var)> {
        let mut out: Vec<(String, Var)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        self.visit("", &mut |prefix, node| {
            for (name, v) in node.own_params() {
                if seen.insert(v.as_tensor().id()) {
                    out.push((Net::join(prefix, name), v.clone()));
                }
            }
        });
        out
    }

    /// The parameters (candle variables), in order.
    pub fn vars(&self) -> Vec<Var> {
        self.named_vars().into_iter().map(|(_, v)| v).collect()
    }

    /// Buffers (batch-norm running statistics) by name, in order.
    pub fn named_buffers(&self) -> Vec<(String, CT)> {
        let mut out = Vec::new();
        self.visit("", &mut |prefix, node| {
            for (name, b) in node.own_buffers() {
                out.push((Net::join(prefix, name), b.borrow().clone()));
            }
        });
        out
    }

    pub(super) fn buffer_cells(&self) -> Vec<(String, Net, &'static str)> {
        let mut out = Vec::new();
        self.visit("", &mut |prefix, node| {
            for (name, _) in node.own_buffers() {
                out.push((Net::join(prefix, name), node.clone(), name));
            }
        });
        out
    }

    /// Parameters and buffers by name (what `save` writes), values detached.
    pub fn named_tensors(&self) -> Vec<(String, CT)> {
        let mut v: Vec<(String, CT)> = self
            .named_vars()
            .into_iter()
            .map(|(n, v)| (n, v.as_tensor().detach()))
            .collect();
        v.extend(self.named_buffers());
        v
    }

    pub fn param_count(&self) -> usize {
        self.vars().iter().map(|v| v.as_tensor().elem_count()).sum()
    }

    pub fn set_training(&self, training: bool) {
        self.visit("", &mut |_, n| n.0.training.set(training));
    }

    pub fn is_training(&self) -> bool {
        self.0.training.get()
    }

    /// Assigns values by name. Everything is validated first (presence, shape); on error
    /// nothing is changed. Values are converted to each tensor's dtype and device.
    pub fn load_named(&self, values: &HashMap<String, CT>) -> Result<(), Error> {
        let vars = self.named_vars();
        let bufs = self.buffer_cells();
        let mut planned_vars = Vec::new();
        let mut planned_bufs = Vec::new();
        let fetch = |name: &str, like: &CT| -> Result<CT, Error> {
            let t = values
                .get(name)
                .ok_or_else(|| format!("missing tensor \"{name}\""))?;
            if t.dims() != like.dims() {
                return Err(Error::Msg(format!(
                    "tensor \"{name}\" has shape {:?}, the net expects {:?}",
                    t.dims(),
                    like.dims()
                )));
            }
            Ok(t.to_dtype(like.dtype())
                .and_then(|t| t.to_device(like.device()))
                .and_then(|t| t.contiguous())
                .and_then(|t| t.copy())
                .map_err(|e| format!("tensor \"{name}\": {e}"))?)
        };
        for (name, v) in &vars {
            planned_vars.push((v.clone(), fetch(name, v.as_tensor())?));
        }
        for (name, node, which) in &bufs {
            let current = node
                .own_buffers()
                .into_iter()
                .find(|(n, _)| n == which)
                .map(|(_, c)| c.borrow().clone())
                .ok_or_else(|| format!("internal: buffer {name} vanished"))?;
            planned_bufs.push((node.clone(), *which, fetch(name, &current)?));
        }
        for (v, t) in planned_vars {
            v.set(&t).map_err(|e| e.to_string())?;
        }
        for (node, which, t) in planned_bufs {
            if let Some((_, cell)) = node.own_buffers().into_iter().find(|(n, _)| *n == which) {
                *cell.borrow_mut() = t;
            }
        }
        Ok(())
    }

    /// Sets one parameter or buffer by name to a copy of `value` (same shape).
    pub fn set_named(&self, name: &str, value: &CT) -> Result<(), Error> {
        let mut all: HashMap<String, CT> = self.named_tensors().into_iter().collect();
        if !all.contains_key(name) {
            let mut names: Vec<String> = all.keys().cloned().collect();
            names.sort();
            return Err(Error::Msg(format!(
                "set_param: no tensor named \"{name}\" (the net has: {})",
                names.join(", ")
            )));
        }
        all.insert(name.to_string(), value.detach());
        Ok(self
            .load_named(&all)
            .map_err(|e| format!("set_param: {e}"))?)
    }

    /// Copies every parameter and buffer of `other` (same architecture) into this net.
    pub fn copy_from(&self, other: &Net) -> Result<(), Error> {
        let mine: Vec<String> = self.named_tensors().into_iter().map(|(n, _)| n).collect();
        let theirs: HashMap<String, CT> = other.named_tensors().into_iter().collect();
        if theirs.len() != mine.len() {
            return Err(Error::Msg(format!(
                "copy_from: the nets differ: {} tensors here, {} in the source",
                mine.len(),
                theirs.len()
            )));
        }
        Ok(self
            .load_named(&theirs)
            .map_err(|e| format!("copy_from: the nets differ: {e}"))?)
    }

    /// A new net with the same architecture and copies of every parameter and buffer.
    pub fn deep_copy(&self) -> candle_core::Result<Net> {
        let copy_var = |v: &Var| Var::from_tensor(&v.as_tensor().detach().copy()?);
        let copy_opt = |v: &Option<Var>| -> candle_core::Result<Option<Var>> {
            v.as_ref().map(copy_var).transpose()
        };
        let layer = match &self.0.layer {
            Layer::Linear { w, b } => Layer::Linear {
                w: copy_var(w)?,
                b: copy_opt(b)?,
            },
            Layer::Conv2d {
                w,
                b,
                stride,
                padding,
            } => Layer::Conv2d {
                w: copy_var(w)?,
                b: copy_opt(b)?,
                stride: *stride,
                padding: *padding,
            },
            Layer::ConvTranspose2d {
                w,
                b,
                stride,
                padding,
                out_padding,
            } => Layer::ConvTranspose2d {
                w: copy_var(w)?,
                b: copy_opt(b)?,
                stride: *stride,
                padding: *padding,
                out_padding: *out_padding,
            },
            Layer::BatchNorm { w, b, mean, var } => Layer::BatchNorm {
                w: copy_var(w)?,
                b: copy_var(b)?,
                mean: RefCell::new(mean.borrow().copy()?),
                var: RefCell::new(var.borrow().copy()?),
            },
            Layer::LayerNorm { w, b } => Layer::LayerNorm {
                w: copy_var(w)?,
                b: copy_var(b)?,
            },
            Layer::Act(a) => Layer::Act(*a),
            Layer::Reshape(s) => Layer::Reshape(s.clone()),
            Layer::Flatten => Layer::Flatten,
            Layer::Residual(body) => Layer::Residual(body.deep_copy()?),
            Layer::Sequential(items) => Layer::Sequential(
                items
                    .iter()
                    .map(|n| n.deep_copy())
                    .collect::<candle_core::Result<_>>()?,
            ),
        };
        let n = Net::from_layer(layer);
        n.0.training.set(self.0.training.get());
        Ok(n)
    }

    /// `self = decay · self + (1 - decay) · source` for parameters; buffers are copied.
    pub fn ema_update(&self, source: &Net, decay: f64) -> Result<(), Error> {
        let mine = self.named_vars();
        let theirs = source.named_vars();
        if mine.len() != theirs.len() {
            return Err(Error::Msg(format!(
                "ema_update: the nets differ ({} and {} parameters)",
                mine.len(),
                theirs.len()
            )));
        }
        let mut planned = Vec::new();
        for ((n1, a), (n2, b)) in mine.iter().zip(theirs.iter()) {
            if n1 != n2 || a.as_tensor().dims() != b.as_tensor().dims() {
                return Err(Error::Msg(format!(
                    "ema_update: the nets differ: {n1} {:?} vs {n2} {:?}",
                    a.as_tensor().dims(),
                    b.as_tensor().dims()
                )));
            }
            let new = (a.as_tensor().detach() * decay)
                .and_then(|x| {
                    let bt = b.as_tensor().detach().to_dtype(x.dtype())?;
                    x + (bt * (1.0 - decay))?
                })
                .map_err(|e| format!("ema_update: {e}"))?;
            planned.push((a.clone(), new));
        }
        for (v, t) in planned {
            v.set(&t).map_err(|e| format!("ema_update: {e}"))?;
        }
        let bufs: HashMap<String, CT> = source.named_buffers().into_iter().collect();
        if !bufs.is_empty() {
            for (name, node, which) in self.buffer_cells() {
                if let (Some(t), Some((_, cell))) = (
                    bufs.get(&name),
                    node.own_buffers().into_iter().find(|(n, _)| *n == which),
                ) {
                    *cell.borrow_mut() = t.copy().map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Writes parameters and buffers by name as safetensors, atomically (`path.tmp`, then a
    /// rename).
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let map: HashMap<String, CT> = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| t.contiguous().map(|t| (n, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| format!("save {}: {e}", path.display()))?;
        crate::io::save_tensors_atomic(&map, path)
    }

    /// Reads a file written by [`Net::save`]; on any error (missing or corrupt file, missing
    /// tensor, wrong shape) the net is left unchanged.
    pub fn load(&self, path: &Path) -> Result<(), Error> {
        let map = crate::io::load_tensors(path)?;
        Ok(self
            .load_named(&map)
            .map_err(|e| format!("load {}: {e}", path.display()))?)
    }
}
