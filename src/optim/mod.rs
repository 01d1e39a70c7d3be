//! Optimizers (SGD with momentum, Adam, Adamax, RMSProp) bound to parameter lists, with PyTorch
//! semantics.
//!
//! An [`Optimizer`] holds its own parameters (candle [`Var`]s, from nets or variable tensors) and
//! per-parameter state (step count, moment buffers). `opt.step(loss)` differentiates the loss
//! and updates only its own parameters; a parameter the loss does not depend on is left
//! unchanged, and its step count does not advance (as in PyTorch). Updates are computed on
//! detached tensors in each parameter's dtype and written in place with `Var::set`; Adam and
//! Adamax on the CPU update the parameter and their moments in place in three fused passes
//! ([`fused`]) with the same arithmetic.
//!
//! Update rules (g the gradient, t the parameter's step count):
//! - `sgd`: `buf = μ·buf + g` (`buf = g` at the first step), `p -= lr·buf`;
//! - `adam`: `g += wd·p`; `m = β1 m + (1−β1) g`, `v = β2 v + (1−β2) g²`,
//!   `p -= lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps)`;
//! - `adamax`: `m = β1 m + (1−β1) g`, `u = max(β2·u, |g| + eps)`, `p -= lr/(1−β1ᵗ) · m / u`
//!   (`bias_correction: false`: `p -= lr · m / u`);
//! - `rmsprop`: `v = α v + (1−α) g²`, `p -= lr·g / (√v + eps)`.

mod adam;
mod adamax;
mod fused;
mod register;
mod rmsprop;
mod sgd;

pub use register::{collect_labeled, collect_vars, register};

use crate::errors::Error;
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::nn::Net;
use crate::tensor::Tensor;
use candle_core::{Tensor as CT, Var};
use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

/// The update rule and its hyper-parameters (except the learning rate).
#[derive(Clone, Debug, PartialEq)]
pub enum Kind {
    Sgd {
        momentum: f64,
    },
    Adam {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
    },
    Adamax {
        beta1: f64,
        beta2: f64,
        eps: f64,
        weight_decay: f64,
        /// PyTorch's `lr / (1 − β1ᵗ)`; false: `lr` (the Adamax of MAGAN's official TensorFlow
        /// code, from openai/iaf).
        bias_correction: bool,
    },
    RmsProp {
        alpha: f64,
        eps: f64,
    },
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Sgd { .. } => "sgd",
            Kind::Adam { .. } => "adam",
            Kind::Adamax { .. } => "adamax",
            Kind::RmsProp { .. } => "rmsprop",
        }
    }
}

/// Where a parameter comes from, for messages: its net (if any) and its name there.
#[derive(Clone)]
pub struct ParamLabel {
    /// The net the parameter belongs to (`None`: a variable tensor given directly).
    pub net: Option<Net>,
    /// Its name in the net (`0.weight`), or `variable N` for a tensor.
    pub name: String,
}

impl ParamLabel {
    /// `parameter `0.weight` of net `D`` (the net's name from `track`, when it is tracked).
    pub fn describe(&self) -> String {
        match &self.net {
            Some(net) => match net.name() {
                Some(n) => format!("parameter `{}` of net `{n}`", self.name),
                None => format!(
                    "parameter `{}` of the net whose first layer is {} (track(name, net) names it)",
                    self.name,
                    net.first_layer_description()
                ),
            },
            None => self.name.clone(),
        }
    }
}

struct ParamState {
    var: Var,
    label: ParamLabel,
    step: u64,
    /// First moment (adam, adamax), momentum buffer (sgd), square average (rmsprop).
    m: Option<CT>,
    /// Second moment (adam), infinity norm (adamax).
    v: Option<CT>,
}

pub struct Inner {
    pub kind: Kind,
    pub lr: f64,
    params: Vec<ParamState>,
}

/// An optimizer as scripts see it (clones share the state).
#[derive(Clone)]
pub struct Optimizer(pub Rc<RefCell<Inner>>);

impl Optimizer {
    pub fn new(kind: Kind, lr: f64, vars: Vec<Var>) -> Result<Optimizer, Error> {
        let labeled = vars
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let label = ParamLabel {
                    net: None,
                    name: format!("parameter {i}"),
                };
                (v, label)
            })
            .collect();
        Optimizer::new_labeled(kind, lr, labeled)
    }

    /// [`Optimizer::new`] with each parameter's origin, for messages.
    pub fn new_labeled(
        kind: Kind,
        lr: f64,
        vars: Vec<(Var, ParamLabel)>,
    ) -> Result<Optimizer, Error> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::Msg(format!(
                "{}: learning rate must be >= 0, got {lr}",
                kind.name()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        let params = vars
            .into_iter()
            .filter(|(v, _)| seen.insert(v.as_tensor().id()))
            .map(|(var, label)| ParamState {
                var,
                label,
                step: 0,
                m: None,
                v: None,
            })
            .collect::<Vec<_>>();
        if params.is_empty() {
            return Err(Error::Msg(format!(
                "{}: no parameters to optimize",
                kind.name()
            )));
        }
        Ok(Optimizer(Rc::new(RefCell::new(Inner { kind, lr, params }))))
    }

    pub fn vars(&self) -> Vec<Var> {
        self.0
            .borrow()
            .params
            .iter()
            .map(|p| p.var.clone())
            .collect()
    }

    pub fn lr(&self) -> f64 {
        self.0.borrow().lr
    }

    pub fn set_lr(&self, lr: f64) {
        self.0.borrow_mut().lr = lr;
    }

    /// Differentiates `loss` and applies one update to the parameters it depends on.
    pub fn step(&self, loss: &CT) -> Result<(), Error> {
        crate::autograd::ensure_double_backprop()?;
        let kind = self.0.borrow().kind.name();
        let loss = if loss.rank() == 0 {
            loss.clone()
        } else if loss.elem_count() == 1 {
            loss.flatten_all()
                .and_then(|l| l.squeeze(0))
                .map_err(|e| format!("{kind}.step: {e}"))?
        } else {
            return Err(Error::Msg(format!(
                "{kind}.step: the loss must be a scalar, got shape {:?}",
                loss.dims()
            )));
        };
        if !crate::tensor::nonfinite::allow_nonfinite() {
            let value = loss
                .to_dtype(candle_core::DType::F64)
                .and_then(|l| l.to_scalar::<f64>())
                .map_err(|e| format!("{kind}.step: {e}"))?;
            if !value.is_finite() {
                return Err(Error::Msg(format!(
                    "{kind}.step: the loss is {value}; nothing was updated. {NONFINITE_HELP}"
                )));
            }
        }
        let store = {
            let inner = self.0.borrow();
            let wanted: Vec<&CT> = inner.params.iter().map(|p| p.var.as_tensor()).collect();
            crate::kernels::backward_for(&loss, &wanted).map_err(|e| format!("{kind}.step: {e}"))?
        };
        let grads: Vec<Option<CT>> = self
            .0
            .borrow()
            .params
            .iter()
            .map(|p| store.get(p.var.as_tensor()).map(|g| g.detach()))
            .collect();
        self.apply(grads)
    }

    /// Applies the given gradients (`None`: leave that parameter unchanged).
    pub fn apply(&self, grads: Vec<Option<CT>>) -> Result<(), Error> {
        let mut inner = self.0.borrow_mut();
        let kind = inner.kind.clone();
        let lr = inner.lr;
        if grads.len() != inner.params.len() {
            return Err(Error::Msg(format!(
                "{}: {} gradients for {} parameters",
                kind.name(),
                grads.len(),
                inner.params.len()
            )));
        }
        // Validate all, then update.
        let check = !crate::tensor::nonfinite::allow_nonfinite();
        let mut prepared = Vec::with_capacity(grads.len());
        for (i, (g, p)) in grads.into_iter().zip(inner.params.iter()).enumerate() {
            let Some(g) = g else {
                prepared.push(None);
                continue;
            };
            let pt = p.var.as_tensor();
            if g.dims() != pt.dims() {
                return Err(Error::Msg(format!(
                    "{}: gradient {i} has shape {:?}, its parameter has {:?}",
                    kind.name(),
                    g.dims(),
                    pt.dims()
                )));
            }
            let g = g
                .detach()
                .to_dtype(pt.dtype())
                .and_then(|g| g.to_device(pt.device()))
                .map_err(|e| format!("{}: {e}", kind.name()))?;
            if check {
                let bad = crate::tensor::nonfinite::first_nonfinite(&g)
                    .map_err(|e| format!("{}: {e}", kind.name()))?;
                if let Some(at) = bad {
                    return Err(Error::Msg(format!(
                        "{}.step: the gradient of {} is not finite ({}); nothing was updated. \
                         {NONFINITE_HELP}",
                        kind.name(),
                        p.label.describe(),
                        crate::tensor::nonfinite::describe_first(&g, at)
                    )));
                }
            }
            prepared.push(Some(g));
        }
        let rule = kind.rule();
        for (p, g) in inner.params.iter_mut().zip(prepared) {
            if let Some(g) = g {
                update(rule.as_ref(), lr, p, g).map_err(|e| format!("{}: {e}", kind.name()))?;
            }
        }
        Ok(())
    }

    /// The state to checkpoint: `lr`, and per parameter `i`: `i.step`, `i.m`, `i.v` (moments
    /// only once they exist). Step counts and lr are f64 scalars.
    pub fn state_tensors(&self) -> Vec<(String, CT)> {
        let inner = self.0.borrow();
        let dev = candle_core::Device::Cpu;
        let mut out = Vec::new();
        if let Ok(t) = CT::new(inner.lr, &dev) {
            out.push(("lr".to_string(), t));
        }
        for (i, p) in inner.params.iter().enumerate() {
            if let Ok(t) = CT::new(p.step as f64, &dev) {
                out.push((format!("{i}.step"), t));
            }
            if let Some(m) = &p.m {
                out.push((format!("{i}.m"), m.clone()));
            }
            if let Some(v) = &p.v {
                out.push((format!("{i}.v"), v.clone()));
            }
        }
        out
    }

    /// Restores [`Optimizer::state_tensors`]; validates everything first (on error nothing
    /// changes).
    pub fn set_state_tensors(&self, state: &HashMap<String, CT>) -> Result<(), Error> {
        let mut inner = self.0.borrow_mut();
        let scalar = |name: &str| -> Result<f64, Error> {
            let t = state
                .get(name)
                .ok_or_else(|| format!("missing tensor \"{name}\""))?;
            Ok(t.flatten_all()
                .and_then(|t| t.to_dtype(candle_core::DType::F64))
                .and_then(|t| t.to_vec1::<f64>())
                .ok()
                .filter(|v| v.len() == 1)
                .map(|v| v[0])
                .ok_or_else(|| format!("tensor \"{name}\" must be a scalar"))?)
        };
        let lr = scalar("lr")?;
        let mut planned = Vec::new();
        for (i, p) in inner.params.iter().enumerate() {
            let step = scalar(&format!("{i}.step"))?;
            if step < 0.0 || step.fract() != 0.0 {
                return Err(Error::Msg(format!(
                    "tensor \"{i}.step\" must be a count, got {step}"
                )));
            }
            let pt = p.var.as_tensor();
            let moment = |name: String| -> Result<Option<CT>, Error> {
                match state.get(&name) {
                    None => Ok(None),
                    Some(t) if t.dims() == pt.dims() => Ok(t
                        .to_dtype(pt.dtype())
                        .and_then(|t| t.to_device(pt.device()))
                        .and_then(|t| t.copy())
                        .map(Some)
                        .map_err(|e| format!("tensor \"{name}\": {e}"))?),
                    Some(t) => Err(Error::Msg(format!(
                        "tensor \"{name}\" has shape {:?}, parameter {i} has {:?}",
                        t.dims(),
                        pt.dims()
                    ))),
                }
            };
            planned.push((
                step as u64,
                moment(format!("{i}.m"))?,
                moment(format!("{i}.v"))?,
            ));
        }
        if state.keys().any(|k| {
            k.split('.')
                .next()
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| n >= inner.params.len())
        }) {
            return Err(Error::Msg(format!(
                "the state is for more than {} parameters",
                inner.params.len()
            )));
        }
        inner.lr = lr;
        for (p, (step, m, v)) in inner.params.iter_mut().zip(planned) {
            p.step = step;
            p.m = m;
            p.v = v;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let map: HashMap<String, CT> = self
            .state_tensors()
            .into_iter()
            .map(|(k, t)| t.contiguous().map(|t| (k, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| format!("save {}: {e}", path.display()))?;
        crate::io::save_tensors_atomic(&map, path)
    }

    pub fn load(&self, path: &Path) -> Result<(), Error> {
        let map = crate::io::load_tensors(path)?;
        Ok(self
            .set_state_tensors(&map)
            .map_err(|e| format!("load {}: {e}", path.display()))?)
    }
}

/// Adam and Adamax as the three in-place passes of [`fused`]; false (nothing done) where they do
/// not apply.
/// How to go on after a non-finite loss or gradient.
const NONFINITE_HELP: &str = "Run with --detect-anomaly to find the first op whose output is NaN \
     or infinite (slow), or with --allow-nonfinite to train on anyway.";

/// One update rule (one file each: [`sgd`], [`adam`], [`adamax`], [`rmsprop`]), with its plain
/// update beside its fused one.
trait UpdateRule {
    /// The plain update of the parameter `x` (detached) with gradient `g` at step `t`, from
    /// candle's ops (the path every device takes): the new value, with `p`'s state updated.
    fn step(&self, p: &mut ParamState, x: CT, g: CT, lr: f64, t: i32) -> candle_core::Result<CT>;
    /// The fused in-place update on the CPU (advancing `p.step` itself), where this rule has one
    /// and the tensors allow it: whether it ran.
    fn fused_step(&self, _p: &mut ParamState, _g: &CT, _lr: f64) -> candle_core::Result<bool> {
        Ok(false)
    }
}

impl Kind {
    fn rule(&self) -> Box<dyn UpdateRule> {
        match *self {
            Kind::Sgd { momentum } => Box::new(sgd::Sgd { momentum }),
            Kind::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            } => Box::new(adam::Adam {
                beta1,
                beta2,
                eps,
                weight_decay,
            }),
            Kind::Adamax {
                beta1,
                beta2,
                eps,
                weight_decay,
                bias_correction,
            } => Box::new(adamax::Adamax {
                beta1,
                beta2,
                eps,
                weight_decay,
                bias_correction,
            }),
            Kind::RmsProp { alpha, eps } => Box::new(rmsprop::RmsProp { alpha, eps }),
        }
    }
}

/// `β·prev + (1−β)·x`, or `(1−β)·x` before the first step: the running averages of the rules
/// (Adam's moments, Adamax's first moment, RMSProp's square average), zero-initialised as in
/// PyTorch.
fn ema(prev: &Option<CT>, x: &CT, beta: f64) -> candle_core::Result<CT> {
    let new = (x * (1.0 - beta))?;
    match prev {
        None => Ok(new),
        Some(prev) => (prev * beta)? + new,
    }
}

/// `g + wd·x`: L2 weight decay added to the gradient (Adam, Adamax); `g` itself when `wd` is 0.
fn with_weight_decay(g: CT, x: &CT, wd: f64) -> candle_core::Result<CT> {
    if wd != 0.0 {
        g + (x * wd)?
    } else {
        Ok(g)
    }
}

fn update(rule: &dyn UpdateRule, lr: f64, p: &mut ParamState, g: CT) -> candle_core::Result<()> {
    if rule.fused_step(p, &g, lr)? {
        return Ok(());
    }
    let x = p.var.as_tensor().detach();
    p.step += 1;
    let t = p.step as i32;
    let new = rule.step(p, x, g, lr, t)?;
    p.var.set(&new)
}
