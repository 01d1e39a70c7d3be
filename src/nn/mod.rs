//! Networks as script values: layers, `sequential`, the MAGAN architecture notation, the papers'
//! ready-made builders, initialisation and the module API.
//!
//! A [`Net`] is a cheap-to-clone handle (an `Rc`) on a tree of layers. Parameters are candle
//! [`Var`]s, so `grad` and the optimizers see them as variables; batch-norm running statistics
//! are buffers (plain tensors, never part of a graph). Every forward op is built from candle
//! primitives that have a backward pass which is itself differentiable (leaky relu, sigmoid and
//! the normalisations are composed), so gradient penalties can differentiate through a net twice.
//!
//! Parameter names follow PyTorch: a `sequential` names its children `0`, `1`, ...; a layer's
//! own tensors are `weight`, `bias`, `running_mean`, `running_var`; `residual(net)` adds no level
//! (its body's names are used as they are).
//!
//! Weight layouts are PyTorch's: linear `[out, in]`, conv `[out, in, k, k]`, transposed conv
//! `[in, out, k, k]`.

pub mod arch;
mod input_grad;
mod register;
pub mod spec;

use crate::device::{current_device, default_dtype};
use crate::kernels::fused::{channel_add, channel_mul};
use crate::rng;
use candle_core::{DType, Device, Tensor as CT, Var};
use input_grad::Saved;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

pub use register::register;

/// Batch-norm epsilon and momentum (PyTorch defaults).
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;
/// Layer-norm epsilon (PyTorch default).
pub const LN_EPS: f64 = 1e-5;

/// An element-wise activation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Act {
    Relu,
    LeakyRelu(f64),
    Tanh,
    Sigmoid,
    Identity,
}

impl Act {
    pub fn apply(&self, x: &CT) -> candle_core::Result<CT> {
        match self {
            Act::Relu => crate::tensor::leaky_relu(x, 0.0),
            Act::LeakyRelu(s) => crate::tensor::leaky_relu(x, *s),
            Act::Tanh => crate::kernels::tanh::tanh(x),
            Act::Sigmoid => crate::tensor::sigmoid(x),
            Act::Identity => Ok(x.clone()),
        }
    }
    fn describe(&self) -> String {
        match self {
            Act::Relu => "relu".into(),
            Act::LeakyRelu(s) => format!("leaky_relu({s})"),
            Act::Tanh => "tanh".into(),
            Act::Sigmoid => "sigmoid".into(),
            Act::Identity => "identity".into(),
        }
    }
    /// Parses an activation name as scripts write it (`slope` for leaky relu).
    pub fn parse(name: &str, slope: f64) -> Result<Act, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "relu" => Ok(Act::Relu),
            "leaky_relu" | "lrelu" | "leakyrelu" => Ok(Act::LeakyRelu(slope)),
            "tanh" => Ok(Act::Tanh),
            "sigmoid" => Ok(Act::Sigmoid),
            "none" | "identity" | "linear" | "" => Ok(Act::Identity),
            other => Err(format!(
                "unknown activation \"{other}\": expected relu, leaky_relu, tanh, sigmoid or none"
            )),
        }
    }
}

/// One layer of a network.
pub enum Layer {
    Linear {
        w: Var,
        b: Option<Var>,
    },
    Conv2d {
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: usize,
    },
    ConvTranspose2d {
        w: Var,
        b: Option<Var>,
        stride: usize,
        padding: usize,
        out_padding: usize,
    },
    BatchNorm {
        w: Var,
        b: Var,
        mean: RefCell<CT>,
        var: RefCell<CT>,
    },
    LayerNorm {
        w: Var,
        b: Var,
    },
    Act(Act),
    /// Per-sample shape; the batch dimension is kept.
    Reshape(Vec<usize>),
    Flatten,
    /// `x + body(x)`.
    Residual(Net),
    Sequential(Vec<Net>),
}

pub struct Node {
    layer: Layer,
    training: Cell<bool>,
}

/// A network: a cheap-to-clone handle (clones share the parameters).
#[derive(Clone)]
pub struct Net(Rc<Node>);

fn msg(s: impl Into<String>) -> candle_core::Error {
    candle_core::Error::Msg(s.into())
}

fn rand_tensor(data: Vec<f64>, shape: &[usize]) -> candle_core::Result<CT> {
    let t = CT::from_vec(data, shape, &Device::Cpu)?;
    t.to_dtype(default_dtype())?.to_device(&current_device())
}

fn new_var(data: Vec<f64>, shape: &[usize]) -> candle_core::Result<Var> {
    Var::from_tensor(&rand_tensor(data, shape)?)
}

/// Checks a new parameter or buffer of `shape` against the memory budget (its values are drawn
/// as f64 first, then converted to the default dtype).
fn check_param(shape: &[usize]) -> candle_core::Result<()> {
    let dtype = default_dtype();
    let n =
        crate::limits::numel(shape, "parameter").map_err(|e| msg(crate::errors::message(&e)))?;
    crate::limits::check_candle(
        &format!("a parameter of shape {shape:?} ({})", dtype.as_str()),
        crate::limits::tensor_bytes(shape, dtype).saturating_add(n as u128 * 8),
    )
}

fn const_tensor(v: f64, shape: &[usize]) -> candle_core::Result<CT> {
    check_param(shape)?;
    let n = shape.iter().product();
    rand_tensor(vec![v; n], shape)
}

/// Fan-in and fan-out as PyTorch computes them from a weight's shape (dim 1 is "in", dim 0 is
/// "out", times the receptive field): for a transposed conv `[in, out, k, k]` this gives
/// fan_in = out·k², as in PyTorch.
fn fans(shape: &[usize]) -> (usize, usize) {
    let rf: usize = shape.iter().skip(2).product();
    let fan_in = shape.get(1).copied().unwrap_or(1) * rf.max(1);
    let fan_out = shape.first().copied().unwrap_or(1) * rf.max(1);
    (fan_in.max(1), fan_out.max(1))
}

/// PyTorch's default init: kaiming-uniform (a = √5) weights, i.e. U(±1/√fan_in), and biases
/// U(±1/√fan_in).
fn default_weight_and_bias(shape: &[usize], bias: bool) -> candle_core::Result<(Var, Option<Var>)> {
    check_param(shape)?;
    let (fan_in, _) = fans(shape);
    let bound = 1.0 / (fan_in as f64).sqrt();
    let n = shape.iter().product();
    let w = new_var(rng::uniform_vec(n, -bound, bound), shape)?;
    let b = if bias {
        Some(new_var(
            rng::uniform_vec(bias_len(shape), -bound, bound),
            &[bias_len(shape)],
        )?)
    } else {
        None
    };
    Ok((w, b))
}

fn bias_len(shape: &[usize]) -> usize {
    shape.first().copied().unwrap_or(1)
}

impl Net {
    pub fn from_layer(layer: Layer) -> Net {
        Net(Rc::new(Node {
            layer,
            training: Cell::new(true),
        }))
    }

    pub fn layer(&self) -> &Layer {
        &self.0.layer
    }

    pub fn linear(inp: usize, out: usize, bias: bool) -> candle_core::Result<Net> {
        let (w, b) = default_weight_and_bias(&[out, inp], bias)?;
        Ok(Net::from_layer(Layer::Linear { w, b }))
    }

    pub fn conv2d(
        inp: usize,
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> candle_core::Result<Net> {
        if stride == 0 || k == 0 {
            return Err(msg("conv2d: kernel size and stride must be >= 1"));
        }
        let (w, b) = default_weight_and_bias(&[out, inp, k, k], bias)?;
        Ok(Net::from_layer(Layer::Conv2d {
            w,
            b,
            stride,
            padding,
        }))
    }

    pub fn conv_transpose2d(
        inp: usize,
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        out_padding: usize,
        bias: bool,
    ) -> candle_core::Result<Net> {
        if stride == 0 || k == 0 {
            return Err(msg("conv_transpose2d: kernel size and stride must be >= 1"));
        }
        let shape = [inp, out, k, k];
        let (w, _) = default_weight_and_bias(&shape, false)?;
        // PyTorch's bias for a transposed conv has `out` entries, bounded by its fan_in (out·k²).
        let b = if bias {
            let bound = 1.0 / (fans(&shape).0 as f64).sqrt();
            Some(new_var(rng::uniform_vec(out, -bound, bound), &[out])?)
        } else {
            None
        };
        Ok(Net::from_layer(Layer::ConvTranspose2d {
            w,
            b,
            stride,
            padding,
            out_padding,
        }))
    }

    pub fn batch_norm(channels: usize) -> candle_core::Result<Net> {
        Ok(Net::from_layer(Layer::BatchNorm {
            w: Var::from_tensor(&const_tensor(1.0, &[channels])?)?,
            b: Var::from_tensor(&const_tensor(0.0, &[channels])?)?,
            mean: RefCell::new(const_tensor(0.0, &[channels])?),
            var: RefCell::new(const_tensor(1.0, &[channels])?),
        }))
    }

    pub fn layer_norm(dim: usize) -> candle_core::Result<Net> {
        Ok(Net::from_layer(Layer::LayerNorm {
            w: Var::from_tensor(&const_tensor(1.0, &[dim])?)?,
            b: Var::from_tensor(&const_tensor(0.0, &[dim])?)?,
        }))
    }

    pub fn act(a: Act) -> Net {
        Net::from_layer(Layer::Act(a))
    }

    pub fn reshape(shape: Vec<usize>) -> Net {
        Net::from_layer(Layer::Reshape(shape))
    }

    pub fn flatten() -> Net {
        Net::from_layer(Layer::Flatten)
    }

    pub fn residual(body: Net) -> Net {
        Net::from_layer(Layer::Residual(body))
    }

    pub fn sequential(items: Vec<Net>) -> Net {
        Net::from_layer(Layer::Sequential(items))
    }

    /// How many levels deep the net nests (a layer: 1; `sequential([layer])`: 2). Nets are
    /// built with at most [`crate::limits::MAX_NET_DEPTH`] levels (see [`Net::check_nesting`]),
    /// so this recursion, like every traversal, is bounded.
    pub fn depth(&self) -> usize {
        1 + self
            .children()
            .iter()
            .map(|(_, c)| c.depth())
            .max()
            .unwrap_or(0)
    }

    /// An error if a `sequential` or `residual` of `items` would nest deeper than
    /// [`crate::limits::MAX_NET_DEPTH`] levels.
    pub fn check_nesting(what: &str, items: &[Net]) -> Result<(), String> {
        let depth = 1 + items.iter().map(Net::depth).max().unwrap_or(0);
        if depth > crate::limits::MAX_NET_DEPTH {
            return Err(format!(
                "{what}: nets may nest at most {} levels deep, this one would have {depth}",
                crate::limits::MAX_NET_DEPTH
            ));
        }
        Ok(())
    }

    /// The description of the first layer with parameters (or of the net itself), for
    /// messages that have no name for the net.
    pub fn first_layer_description(&self) -> String {
        let mut first = None;
        self.visit("", &mut |_, node| {
            if first.is_none() && !node.own_params().is_empty() {
                first = Some(node.describe());
            }
        });
        first.unwrap_or_else(|| self.describe())
    }

    /// True if the two handles are the same net.
    pub fn ptr_eq(&self, other: &Net) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    // ----- traversal -----

    fn children(&self) -> Vec<(String, Net)> {
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

    fn own_params(&self) -> Vec<(&'static str, &Var)> {
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

    fn own_buffers(&self) -> Vec<(&'static str, &RefCell<CT>)> {
        match &self.0.layer {
            Layer::BatchNorm { mean, var, .. } => {
                vec![("running_mean", mean), ("running_var", var)]
            }
            _ => vec![],
        }
    }

    fn join(prefix: &str, name: &str) -> String {
        match (prefix.is_empty(), name.is_empty()) {
            (true, _) => name.to_string(),
            (_, true) => prefix.to_string(),
            _ => format!("{prefix}.{name}"),
        }
    }

    /// Visits every node, depth first, with its name prefix.
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, &Net)) {
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

    fn buffer_cells(&self) -> Vec<(String, Net, &'static str)> {
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
    pub fn load_named(&self, values: &HashMap<String, CT>) -> Result<(), String> {
        let vars = self.named_vars();
        let bufs = self.buffer_cells();
        let mut planned_vars = Vec::new();
        let mut planned_bufs = Vec::new();
        let fetch = |name: &str, like: &CT| -> Result<CT, String> {
            let t = values
                .get(name)
                .ok_or_else(|| format!("missing tensor \"{name}\""))?;
            if t.dims() != like.dims() {
                return Err(format!(
                    "tensor \"{name}\" has shape {:?}, the net expects {:?}",
                    t.dims(),
                    like.dims()
                ));
            }
            t.to_dtype(like.dtype())
                .and_then(|t| t.to_device(like.device()))
                .and_then(|t| t.contiguous())
                .and_then(|t| t.copy())
                .map_err(|e| format!("tensor \"{name}\": {e}"))
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
    pub fn set_named(&self, name: &str, value: &CT) -> Result<(), String> {
        let mut all: HashMap<String, CT> = self.named_tensors().into_iter().collect();
        if !all.contains_key(name) {
            let mut names: Vec<String> = all.keys().cloned().collect();
            names.sort();
            return Err(format!(
                "set_param: no tensor named \"{name}\" (the net has: {})",
                names.join(", ")
            ));
        }
        all.insert(name.to_string(), value.detach());
        self.load_named(&all).map_err(|e| format!("set_param: {e}"))
    }

    /// Copies every parameter and buffer of `other` (same architecture) into this net.
    pub fn copy_from(&self, other: &Net) -> Result<(), String> {
        let mine: Vec<String> = self.named_tensors().into_iter().map(|(n, _)| n).collect();
        let theirs: HashMap<String, CT> = other.named_tensors().into_iter().collect();
        if theirs.len() != mine.len() {
            return Err(format!(
                "copy_from: the nets differ: {} tensors here, {} in the source",
                mine.len(),
                theirs.len()
            ));
        }
        self.load_named(&theirs)
            .map_err(|e| format!("copy_from: the nets differ: {e}"))
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
    pub fn ema_update(&self, source: &Net, decay: f64) -> Result<(), String> {
        let mine = self.named_vars();
        let theirs = source.named_vars();
        if mine.len() != theirs.len() {
            return Err(format!(
                "ema_update: the nets differ ({} and {} parameters)",
                mine.len(),
                theirs.len()
            ));
        }
        let mut planned = Vec::new();
        for ((n1, a), (n2, b)) in mine.iter().zip(theirs.iter()) {
            if n1 != n2 || a.as_tensor().dims() != b.as_tensor().dims() {
                return Err(format!(
                    "ema_update: the nets differ: {n1} {:?} vs {n2} {:?}",
                    a.as_tensor().dims(),
                    b.as_tensor().dims()
                ));
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

    // ----- forward -----

    /// Forward pass (train or eval mode as set by `set_training`).
    pub fn forward(&self, x: &CT) -> candle_core::Result<CT> {
        crate::tensor::ensure_float("forward", x)?;
        self.forward_impl(x, None, false, "", &mut None, &mut None)
    }

    /// Forward pass with the parameters frozen: they enter the graph as constants (detached
    /// views, no copy), so a backward pass through the output computes gradients for the input
    /// and for whatever produced it, but none for this net's parameters. Values, gradients
    /// with respect to the input and batch-norm statistics are exactly those of
    /// [`Net::forward`]; use it where this net's parameter gradients would be thrown away
    /// (D in the generator step, D in a lens step).
    pub fn forward_frozen(&self, x: &CT) -> candle_core::Result<CT> {
        crate::tensor::ensure_float("forward_frozen", x)?;
        self.forward_impl(x, None, true, "", &mut None, &mut None)
    }

    /// Forward pass in eval mode that updates nothing and records one row per layer
    /// (name, description, output shape, parameter count).
    pub fn trace(&self, x: &CT) -> candle_core::Result<Vec<SummaryRow>> {
        crate::tensor::ensure_float("summary", x)?;
        let mut rows = Some(Vec::new());
        self.forward_impl(x, Some(false), false, "", &mut rows, &mut None)?;
        Ok(rows.unwrap_or_default())
    }

    fn describe(&self) -> String {
        match &self.0.layer {
            Layer::Linear { w, b } => {
                let d = w.as_tensor().dims();
                format!("linear({}, {}{})", d[1], d[0], no_bias(b))
            }
            Layer::Conv2d {
                w,
                b,
                stride,
                padding,
            } => {
                let d = w.as_tensor().dims();
                format!(
                    "conv2d({}, {}, k={}, s={stride}, p={padding}{})",
                    d[1],
                    d[0],
                    d[2],
                    no_bias(b)
                )
            }
            Layer::ConvTranspose2d {
                w,
                b,
                stride,
                padding,
                out_padding,
            } => {
                let d = w.as_tensor().dims();
                let op = if *out_padding > 0 {
                    format!(", op={out_padding}")
                } else {
                    String::new()
                };
                format!(
                    "conv_transpose2d({}, {}, k={}, s={stride}, p={padding}{op}{})",
                    d[0],
                    d[1],
                    d[2],
                    no_bias(b)
                )
            }
            Layer::BatchNorm { w, .. } => format!("batch_norm({})", w.as_tensor().dims()[0]),
            Layer::LayerNorm { w, .. } => format!("layer_norm({})", w.as_tensor().dims()[0]),
            Layer::Act(a) => a.describe(),
            Layer::Reshape(s) => format!("reshape({s:?})"),
            Layer::Flatten => "flatten".into(),
            Layer::Residual(_) => "residual (x + f(x))".into(),
            Layer::Sequential(items) => format!("sequential({} layers)", items.len()),
        }
    }

    fn own_param_count(&self) -> usize {
        self.own_params()
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum()
    }

    /// The layer as error messages name it: `layer NAME (description)`.
    fn label(&self, name: &str) -> String {
        if name.is_empty() {
            self.describe()
        } else {
            format!("layer {name} ({})", self.describe())
        }
    }

    /// The slope of the leaky ReLU (0: ReLU) that `next` applies after this layer, where the
    /// two can run as one op: this is a linear layer or (transposed) convolution with a bias,
    /// the slope in [0, 1].
    fn fused_slope(&self, next: Option<&Net>) -> Option<f64> {
        let (Layer::Linear { b: Some(_), .. }
        | Layer::Conv2d { b: Some(_), .. }
        | Layer::ConvTranspose2d { b: Some(_), .. }) = &self.0.layer
        else {
            return None;
        };
        match &next?.0.layer {
            Layer::Act(Act::Relu) => Some(0.0),
            Layer::Act(Act::LeakyRelu(s)) if (0.0..=1.0).contains(s) => Some(*s),
            _ => None,
        }
    }

    /// This layer and a leaky ReLU of `slope` after it, as one op (see
    /// [`Net::fused_slope`]); the same values as the two layers.
    fn forward_with_act(
        &self,
        x: &CT,
        slope: f64,
        frozen: bool,
        name: &str,
        tape: &mut Option<Vec<Saved>>,
    ) -> candle_core::Result<CT> {
        let y = self.forward_affine(x, frozen, &|| self.label(name), Some(slope))?;
        if let Some(t) = tape {
            t.push(Saved::LayerAct {
                net: self.clone(),
                x: x.clone(),
                y: y.clone(),
                slope,
            });
        }
        Ok(y)
    }

    /// A linear layer or a (transposed) convolution, with the leaky ReLU of `act` after it in
    /// the same op where there is one; errors name the layer by `label`.
    fn forward_affine(
        &self,
        x: &CT,
        frozen: bool,
        label: &dyn Fn() -> String,
        act: Option<f64>,
    ) -> candle_core::Result<CT> {
        let p = |v: &Var| entering(v, frozen);
        Ok(match &self.0.layer {
            Layer::Linear { w, b } => {
                let wt = &p(w);
                check_input(x, 2, wt.dims()[1], label)?;
                match (act, b) {
                    (Some(s), Some(b)) => {
                        crate::kernels::matmul::linear_leaky_relu(x, wt, &p(b), s)?
                    }
                    _ => {
                        let y = crate::kernels::matmul::linear(x, wt, b.as_ref().map(p).as_ref())?;
                        match act {
                            Some(s) => crate::tensor::leaky_relu(&y, s)?,
                            None => y,
                        }
                    }
                }
            }
            Layer::Conv2d {
                w,
                b,
                stride,
                padding,
            } => {
                let wt = &p(w);
                check_input(x, 4, wt.dims()[1], label)?;
                let k = wt.dims()[2];
                let pad2 = padding.saturating_mul(2);
                let (h, wd) = (
                    x.dims()[2].saturating_add(pad2),
                    x.dims()[3].saturating_add(pad2),
                );
                if h < k || wd < k {
                    return Err(msg(format!(
                        "{}: input {:?} (padded {h}×{wd}) is smaller than the kernel {k}×{k}",
                        label(),
                        x.dims()
                    )));
                }
                let b = b.as_ref().map(p);
                crate::kernels::conv::conv2d_act(x, wt, b.as_ref(), *stride, *padding, act)?
            }
            Layer::ConvTranspose2d {
                w,
                b,
                stride,
                padding,
                out_padding,
            } => {
                let wt = &p(w);
                check_input(x, 4, wt.dims()[0], label)?;
                let k = wt.dims()[2];
                let full = x.dims()[2]
                    .saturating_sub(1)
                    .saturating_mul(*stride)
                    .saturating_add(k + out_padding);
                if x.dims()[2] == 0 || full <= padding.saturating_mul(2) {
                    return Err(msg(format!(
                        "{}: input {:?} gives an empty output",
                        label(),
                        x.dims()
                    )));
                }
                let b = b.as_ref().map(p);
                crate::kernels::conv::conv_transpose2d_act(
                    x,
                    wt,
                    b.as_ref(),
                    *stride,
                    *padding,
                    *out_padding,
                    act,
                )?
            }
            _ => {
                return Err(msg(format!(
                    "{}: not a linear or convolution layer",
                    label()
                )))
            }
        })
    }

    /// A sequence of layers applied to `x` in turn; a layer and the activation after it run
    /// as one op where they can ([`Net::fused_slope`]; not while tracing, which lists each
    /// layer).
    fn forward_items(
        items: &[Net],
        x: &CT,
        mode: Option<bool>,
        frozen: bool,
        name: &str,
        trace: &mut Option<Vec<SummaryRow>>,
        tape: &mut Option<Vec<Saved>>,
    ) -> candle_core::Result<CT> {
        let mut h = x.clone();
        let mut i = 0;
        while i < items.len() {
            let (n, name) = (&items[i], Net::join(name, &i.to_string()));
            match n.fused_slope(items.get(i + 1)).filter(|_| trace.is_none()) {
                Some(slope) => {
                    h = n.forward_with_act(&h, slope, frozen, &name, tape)?;
                    i += 2;
                }
                None => {
                    h = n.forward_impl(&h, mode, frozen, &name, trace, tape)?;
                    i += 1;
                }
            }
        }
        Ok(h)
    }

    /// A residual block's body applied to `x`, and whether `x` is already added to the
    /// result: where the body is a sequence ending in a biased convolution whose output has
    /// `x`'s shape, that convolution adds it in the same op ([`Net::forward_conv_skip`]; not
    /// while tracing).
    fn forward_body(
        &self,
        x: &CT,
        mode: Option<bool>,
        frozen: bool,
        name: &str,
        trace: &mut Option<Vec<SummaryRow>>,
        tape: &mut Option<Vec<Saved>>,
    ) -> candle_core::Result<(CT, bool)> {
        if let (Layer::Sequential(items), None) = (&self.0.layer, &trace) {
            if let Some((last, head)) = items.split_last() {
                if let Layer::Conv2d { b: Some(_), .. } = &last.0.layer {
                    // A convolution is never the activation of a fused pair: `head` pairs
                    // its layers as the whole sequence would.
                    let r = Net::forward_items(head, x, mode, frozen, name, trace, tape)?;
                    let name = Net::join(name, &head.len().to_string());
                    if let Some(y) = last.forward_conv_skip(&r, x, frozen, tape)? {
                        return Ok((y, true));
                    }
                    let y = last.forward_impl(&r, mode, frozen, &name, trace, tape)?;
                    return Ok((y, false));
                }
            }
        }
        let y = self.forward_impl(x, mode, frozen, name, trace, tape)?;
        Ok((y, false))
    }

    /// This biased convolution of `x` plus `skip`, as one op, where its output has `skip`'s
    /// shape (else `None`, and nothing is computed: an input the convolution does not take
    /// also gives `None`, for the layer's own forward pass to report).
    fn forward_conv_skip(
        &self,
        x: &CT,
        skip: &CT,
        frozen: bool,
        tape: &mut Option<Vec<Saved>>,
    ) -> candle_core::Result<Option<CT>> {
        let Layer::Conv2d {
            w,
            b: Some(b),
            stride,
            padding,
        } = &self.0.layer
        else {
            return Ok(None);
        };
        let wt = &entering(w, frozen);
        let out = crate::kernels::conv::conv2d_output_dims(x.dims(), wt, *stride, *padding);
        if out.as_deref() != Some(skip.dims()) {
            return Ok(None);
        }
        let bt = &entering(b, frozen);
        let y = crate::kernels::conv::conv2d_biased_skip(x, wt, bt, *stride, *padding, skip)?;
        if let Some(t) = tape {
            // The convolution's input-gradient rule reads only its input's shape, not `y`.
            t.push(Saved::Layer {
                net: self.clone(),
                x: x.clone(),
                y: y.clone(),
                bn: None,
            });
        }
        Ok(Some(y))
    }

    fn forward_impl(
        &self,
        x: &CT,
        mode: Option<bool>,
        frozen: bool,
        name: &str,
        trace: &mut Option<Vec<SummaryRow>>,
        tape: &mut Option<Vec<Saved>>,
    ) -> candle_core::Result<CT> {
        let p = |v: &Var| entering(v, frozen);
        let training = mode.unwrap_or(self.0.training.get());
        let label = || self.label(name);
        let mut bn_saved = None;
        let y = match &self.0.layer {
            Layer::Sequential(items) => {
                return Net::forward_items(items, x, mode, frozen, name, trace, tape)
            }
            Layer::Residual(body) => {
                if let Some(t) = tape {
                    t.push(Saved::ResidualStart);
                }
                let (h, added) = body.forward_body(x, mode, frozen, name, trace, tape)?;
                if let Some(t) = tape {
                    t.push(Saved::ResidualEnd);
                }
                if added {
                    h
                } else if h.dims() != x.dims() {
                    return Err(msg(format!(
                        "{}: the body maps {:?} to {:?}, which cannot be added to its input",
                        label(),
                        x.dims(),
                        h.dims()
                    )));
                } else {
                    (x + h)?
                }
            }
            Layer::Linear { .. } | Layer::Conv2d { .. } | Layer::ConvTranspose2d { .. } => {
                self.forward_affine(x, frozen, &label, None)?
            }
            Layer::BatchNorm { w, b, mean, var } => {
                let c = w.as_tensor().dims()[0];
                let dims: Vec<usize> = match x.rank() {
                    2 => vec![0],
                    4 => vec![0, 2, 3],
                    _ => {
                        return Err(msg(format!(
                            "{}: expected input [N, {c}] or [N, {c}, H, W], got {:?}",
                            label(),
                            x.dims()
                        )))
                    }
                };
                if x.dims()[1] != c {
                    return Err(msg(format!(
                        "{}: expected {c} channels, got input {:?}",
                        label(),
                        x.dims()
                    )));
                }
                if training {
                    let n: usize = dims.iter().map(|&d| x.dims()[d]).product();
                    if n < 2 {
                        return Err(msg(format!(
                            "{}: training mode needs more than one value per channel, got input \
                             {:?} (use net.eval())",
                            label(),
                            x.dims()
                        )));
                    }
                    let (y, mu, v, saved) = crate::kernels::batch_norm::batch_norm_train_saved(
                        x,
                        &p(w),
                        &p(b),
                        BN_EPS,
                    )?;
                    bn_saved = saved;
                    if mode.is_none() {
                        let m = BN_MOMENTUM;
                        let v = (v * (n as f64 / (n as f64 - 1.0)))?;
                        let new_mean = ((mean.borrow().clone() * (1.0 - m))? + (mu * m)?)?;
                        let new_var = ((var.borrow().clone() * (1.0 - m))? + (v * m)?)?;
                        *mean.borrow_mut() = new_mean;
                        *var.borrow_mut() = new_var;
                    }
                    y
                } else {
                    // x·s + (b − mean·s) with s = w / √(var + ε)
                    let scale = (p(w) / (var.borrow().clone() + BN_EPS)?.sqrt()?)?;
                    let shift = (p(b) - (mean.borrow().clone() * &scale)?)?;
                    channel_add(&channel_mul(x, &scale)?, &shift)?
                }
            }
            Layer::LayerNorm { w, b } => {
                let d = w.as_tensor().dims()[0];
                if x.rank() == 0 || x.dims()[x.rank() - 1] != d {
                    return Err(msg(format!(
                        "{}: expected the last dimension to be {d}, got input {:?}",
                        label(),
                        x.dims()
                    )));
                }
                let last = x.rank() - 1;
                let mu = x.mean_keepdim(last)?;
                let xc = x.broadcast_sub(&mu)?;
                let v = xc.sqr()?.mean_keepdim(last)?;
                xc.broadcast_div(&(v + LN_EPS)?.sqrt()?)?
                    .broadcast_mul(&p(w))?
                    .broadcast_add(&p(b))?
            }
            Layer::Act(a) => a.apply(x)?,
            Layer::Reshape(shape) => {
                if x.rank() == 0 {
                    return Err(msg(format!("{}: expected a batch, got a scalar", label())));
                }
                let n = x.dims()[0];
                let per: usize = x.dims()[1..].iter().product();
                let want: usize = shape.iter().product();
                if per != want {
                    return Err(msg(format!(
                        "{}: cannot reshape samples of shape {:?} ({per} values) into {shape:?} \
                         ({want} values)",
                        label(),
                        &x.dims()[1..]
                    )));
                }
                let mut full = vec![n];
                full.extend(shape);
                x.reshape(full)?
            }
            Layer::Flatten => crate::tensor::per_sample(x)?,
        };
        if let Some(rows) = trace {
            rows.push(SummaryRow {
                name: if name.is_empty() {
                    "-".into()
                } else {
                    name.to_string()
                },
                kind: self.describe(),
                shape: Some(y.dims().to_vec()),
                params: self.own_param_count(),
            });
        }
        if let Some(t) = tape {
            if !matches!(self.0.layer, Layer::Residual(_)) {
                t.push(Saved::Layer {
                    net: self.clone(),
                    x: x.clone(),
                    y: y.clone(),
                    bn: bn_saved,
                });
            }
        }
        Ok(y)
    }

    /// The rows of the summary table without shapes.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut rows = Vec::new();
        self.visit("", &mut |prefix, node| {
            if matches!(node.0.layer, Layer::Sequential(_)) {
                return;
            }
            rows.push(SummaryRow {
                name: if prefix.is_empty() {
                    "-".into()
                } else {
                    prefix.to_string()
                },
                kind: node.describe(),
                shape: None,
                params: node.own_param_count(),
            });
        });
        rows
    }

    /// A text table: layer, output shape (when `rows` come from [`Net::trace`]) and parameters.
    pub fn summary_table(&self, rows: &[SummaryRow]) -> String {
        let with_shapes = rows.iter().any(|r| r.shape.is_some());
        let mut lines = Vec::new();
        let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
        let w1 = rows.iter().map(|r| r.kind.len()).max().unwrap_or(0).max(4);
        let shape_of = |r: &SummaryRow| {
            r.shape
                .as_ref()
                .map(|s| format!("{s:?}"))
                .unwrap_or_default()
        };
        let w2 = rows
            .iter()
            .map(|r| shape_of(r).len())
            .max()
            .unwrap_or(0)
            .max(12);
        if with_shapes {
            lines.push(format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>10}",
                "layer", "type", "output shape", "params"
            ));
        } else {
            lines.push(format!(
                "{:<w0$}  {:<w1$}  {:>10}",
                "layer", "type", "params"
            ));
        }
        for r in rows {
            if with_shapes {
                lines.push(format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:>10}",
                    r.name,
                    r.kind,
                    shape_of(r),
                    r.params
                ));
            } else {
                lines.push(format!(
                    "{:<w0$}  {:<w1$}  {:>10}",
                    r.name, r.kind, r.params
                ));
            }
        }
        lines.push(format!("total parameters: {}", self.param_count()));
        lines.join("\n")
    }

    // ----- initialisation -----

    /// Re-initialises every parameter: `"default"` (PyTorch's), `"xavier"` (Glorot uniform,
    /// biases 0), `"kaiming"` (He normal, std √(2/fan_in), biases 0) or `"dcgan"` (N(0, 0.02)
    /// weights, batch-norm weights N(1, 0.02), biases 0). Normalisation layers get weight 1 and
    /// bias 0 except under `"dcgan"`.
    pub fn init(&self, scheme: &str) -> Result<(), String> {
        self.init_with(scheme, None)
    }

    /// [`Net::init`] with a standard deviation, which the schemes "normal" (N(0, std²)) and
    /// "truncated_normal" (TensorFlow's: N(0, std²) redrawn beyond 2·std) need and the others
    /// refuse.
    pub fn init_with(&self, scheme: &str, std: Option<f64>) -> Result<(), String> {
        let scheme = scheme.trim().to_ascii_lowercase();
        let with_std = ["normal", "truncated_normal"];
        if !["default", "xavier", "dcgan", "kaiming", "he"].contains(&scheme.as_str())
            && !with_std.contains(&scheme.as_str())
        {
            return Err(format!(
                "init: unknown scheme \"{scheme}\": expected \"default\", \"xavier\", \"kaiming\", \
                 \"he\", \"dcgan\", \"normal\" or \"truncated_normal\""
            ));
        }
        let std = match (with_std.contains(&scheme.as_str()), std) {
            (true, Some(s)) if s.is_finite() && s >= 0.0 => s,
            (true, Some(s)) => return Err(format!("init: std must be >= 0, got {s}")),
            (true, None) => {
                return Err(format!(
                    "init: \"{scheme}\" needs a standard deviation: init(net, \"{scheme}\", std)"
                ))
            }
            (false, Some(_)) => {
                return Err(format!(
                    "init: \"{scheme}\" takes no standard deviation (only \"normal\" and \
                     \"truncated_normal\" do)"
                ))
            }
            (false, None) => 0.0,
        };
        let mut before_relu = std::collections::HashSet::new();
        self.collect_before_relu(&mut before_relu);
        let mut result = Ok(());
        self.visit("", &mut |_, node| {
            if result.is_err() {
                return;
            }
            let relu = before_relu.contains(&Rc::as_ptr(&node.0));
            result = node
                .init_own(&scheme, relu, std)
                .map_err(|e| format!("init: {e}"));
        });
        result
    }

    /// The layers of every `sequential` whose output reaches a ReLU, possibly through a
    /// normalisation (prettytensor's `he_init` looks at the layer's activation, applied after its
    /// batch norm).
    fn collect_before_relu(&self, out: &mut std::collections::HashSet<*const Node>) {
        if let Layer::Sequential(items) = &self.0.layer {
            for (i, item) in items.iter().enumerate() {
                let next = items[i + 1..].iter().find(|n| {
                    !matches!(n.0.layer, Layer::BatchNorm { .. } | Layer::LayerNorm { .. })
                });
                if next.is_some_and(|n| matches!(n.0.layer, Layer::Act(Act::Relu))) {
                    out.insert(Rc::as_ptr(&item.0));
                }
            }
        }
        for (_, child) in self.children() {
            child.collect_before_relu(out);
        }
    }

    /// `relu`: the layer's output goes through a ReLU (used by the "he" scheme).
    fn init_own(&self, scheme: &str, relu: bool, std: f64) -> candle_core::Result<()> {
        let set = |v: &Var, data: Vec<f64>| -> candle_core::Result<()> {
            let t = v.as_tensor();
            let new = CT::from_vec(data, t.dims(), &Device::Cpu)?
                .to_dtype(t.dtype())?
                .to_device(t.device())?;
            v.set(&new)
        };
        match &self.0.layer {
            Layer::Linear { w, b }
            | Layer::Conv2d { w, b, .. }
            | Layer::ConvTranspose2d { w, b, .. } => {
                let shape = w.as_tensor().dims().to_vec();
                let n: usize = shape.iter().product();
                let (fan_in, fan_out) = fans(&shape);
                let bound_default = 1.0 / (fan_in as f64).sqrt();
                let xavier = || {
                    let a = (6.0 / (fan_in + fan_out) as f64).sqrt();
                    rng::uniform_vec(n, -a, a)
                };
                let he = || rng::normal_vec(n, 0.0, (2.0 / fan_in as f64).sqrt());
                let wdata = match scheme {
                    "xavier" => xavier(),
                    "kaiming" => he(),
                    "he" if relu => he(),
                    "he" => xavier(),
                    "normal" => rng::normal_vec(n, 0.0, std),
                    "truncated_normal" => rng::truncated_normal_vec(n, std),
                    "dcgan" => rng::normal_vec(n, 0.0, 0.02),
                    _ => rng::uniform_vec(n, -bound_default, bound_default),
                };
                set(w, wdata)?;
                if let Some(b) = b {
                    let nb = b.as_tensor().elem_count();
                    let bdata = if scheme == "default" {
                        rng::uniform_vec(nb, -bound_default, bound_default)
                    } else {
                        vec![0.0; nb]
                    };
                    set(b, bdata)?;
                }
            }
            Layer::BatchNorm { w, b, .. } | Layer::LayerNorm { w, b } => {
                let n = w.as_tensor().elem_count();
                let wdata = if scheme == "dcgan" && matches!(self.0.layer, Layer::BatchNorm { .. })
                {
                    rng::normal_vec(n, 1.0, 0.02)
                } else {
                    vec![1.0; n]
                };
                set(w, wdata)?;
                set(b, vec![0.0; n])?;
            }
            _ => {}
        }
        Ok(())
    }

    // ----- files -----

    /// Writes parameters and buffers by name as safetensors, atomically (`path.tmp`, then a
    /// rename).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        let map: HashMap<String, CT> = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| t.contiguous().map(|t| (n, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| format!("save {}: {e}", path.display()))?;
        save_tensors_atomic(&map, path)
    }

    /// Reads a file written by [`Net::save`]; on any error (missing or corrupt file, missing
    /// tensor, wrong shape) the net is left unchanged.
    pub fn load(&self, path: &Path) -> Result<(), String> {
        let map = load_tensors(path)?;
        self.load_named(&map)
            .map_err(|e| format!("load {}: {e}", path.display()))
    }
}

/// Writes tensors as safetensors to `path.tmp`, then renames it to `path`.
pub fn save_tensors_atomic(map: &HashMap<String, CT>, path: &Path) -> Result<(), String> {
    crate::run::write_safetensors(path, map.iter().map(|(k, t)| (k.as_str(), t)), None)
        .map_err(|e| format!("save {}: {e}", path.display()))
}

/// Reads every tensor of a safetensors file (on the current device), with clear errors.
pub fn load_tensors(path: &Path) -> Result<HashMap<String, CT>, String> {
    let data = std::fs::read(path).map_err(|e| format!("load {}: {e}", path.display()))?;
    // Files written by ganscript carry checksums; others (e.g. exported by PyTorch) do not.
    // (A file that does not parse is reported below.)
    match crate::run::verify_safetensors(&data, &format!("load {}", path.display())) {
        Err(e) if !e.contains("is damaged or truncated") => return Err(e),
        _ => {}
    }
    candle_core::safetensors::load_buffer(&data, &current_device()).map_err(|e| {
        format!(
            "load {}: not a valid safetensors file (truncated or corrupt?): {e}",
            path.display()
        )
    })
}

fn no_bias(b: &Option<Var>) -> &'static str {
    if b.is_none() {
        ", bias=false"
    } else {
        ""
    }
}

/// A parameter as it enters the graph: the variable, or (frozen) a detached view of it.
fn entering(v: &Var, frozen: bool) -> CT {
    if frozen {
        v.as_tensor().detach()
    } else {
        v.as_tensor().clone()
    }
}

/// A layer's input must be [N, channels] (rank 2, a linear layer) or [N, channels, H, W]
/// (rank 4, a convolution).
fn check_input(
    x: &CT,
    rank: usize,
    channels: usize,
    label: &dyn Fn() -> String,
) -> candle_core::Result<()> {
    if x.rank() != rank || x.dims()[1] != channels {
        let want = if rank == 2 {
            format!("[N, {channels}]")
        } else {
            format!("[N, {channels}, H, W]")
        };
        return Err(msg(format!(
            "{}: expected input {want}, got {:?}",
            label(),
            x.dims()
        )));
    }
    Ok(())
}

/// One row of a summary table.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    pub name: String,
    pub kind: String,
    pub shape: Option<Vec<usize>>,
    pub params: usize,
}

/// The dtype of a net's first parameter, or the default dtype.
pub fn net_dtype(net: &Net) -> DType {
    net.vars()
        .first()
        .map(|v| v.as_tensor().dtype())
        .unwrap_or_else(default_dtype)
}
