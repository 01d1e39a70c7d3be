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
mod forward;
mod init;
mod input_grad;
mod params;
mod register;
pub mod spec;
mod summary;

pub use summary::{net_dtype, SummaryRow};

use crate::device::{current_device, default_dtype};
use crate::errors::Error;
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
    pub fn parse(name: &str, slope: f64) -> Result<Act, Error> {
        match name.trim().to_ascii_lowercase().as_str() {
            "relu" => Ok(Act::Relu),
            "leaky_relu" | "lrelu" | "leakyrelu" => Ok(Act::LeakyRelu(slope)),
            "tanh" => Ok(Act::Tanh),
            "sigmoid" => Ok(Act::Sigmoid),
            "none" | "identity" | "linear" | "" => Ok(Act::Identity),
            other => Err(Error::Msg(format!(
                "unknown activation \"{other}\": expected relu, leaky_relu, tanh, sigmoid or none"
            ))),
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
    /// The name it is tracked under for checkpoints (`track(name, net)`), for messages.
    name: RefCell<Option<String>>,
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
            name: RefCell::new(None),
        }))
    }

    /// The name it is tracked under (see [`Net::set_name`]).
    pub fn name(&self) -> Option<String> {
        self.0.name.borrow().clone()
    }

    /// Names the net (checkpoints' `track(name, net)` does), so that messages about its
    /// parameters can say which net they belong to.
    pub fn set_name(&self, name: &str) {
        *self.0.name.borrow_mut() = Some(name.to_string());
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
    pub fn check_nesting(what: &str, items: &[Net]) -> Result<(), Error> {
        let depth = 1 + items.iter().map(Net::depth).max().unwrap_or(0);
        if depth > crate::limits::MAX_NET_DEPTH {
            return Err(Error::Msg(format!(
                "{what}: nets may nest at most {} levels deep, this one would have {depth}",
                crate::limits::MAX_NET_DEPTH
            )));
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
}
