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

mod fused;

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
            Some(net) => match crate::checkpoint::tracked_name_of(net) {
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
    pub fn new(kind: Kind, lr: f64, vars: Vec<Var>) -> Result<Optimizer, String> {
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
    ) -> Result<Optimizer, String> {
        if !lr.is_finite() || lr < 0.0 {
            return Err(format!(
                "{}: learning rate must be >= 0, got {lr}",
                kind.name()
            ));
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
            return Err(format!("{}: no parameters to optimize", kind.name()));
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
    pub fn step(&self, loss: &CT) -> Result<(), String> {
        crate::autograd::ensure_double_backprop()?;
        let kind = self.0.borrow().kind.name();
        let loss = if loss.rank() == 0 {
            loss.clone()
        } else if loss.elem_count() == 1 {
            loss.flatten_all()
                .and_then(|l| l.squeeze(0))
                .map_err(|e| format!("{kind}.step: {e}"))?
        } else {
            return Err(format!(
                "{kind}.step: the loss must be a scalar, got shape {:?}",
                loss.dims()
            ));
        };
        if !crate::nonfinite::allow_nonfinite() {
            let value = loss
                .to_dtype(candle_core::DType::F64)
                .and_then(|l| l.to_scalar::<f64>())
                .map_err(|e| format!("{kind}.step: {e}"))?;
            if !value.is_finite() {
                return Err(format!(
                    "{kind}.step: the loss is {value}; nothing was updated. {NONFINITE_HELP}"
                ));
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
    pub fn apply(&self, grads: Vec<Option<CT>>) -> Result<(), String> {
        let mut inner = self.0.borrow_mut();
        let kind = inner.kind.clone();
        let lr = inner.lr;
        if grads.len() != inner.params.len() {
            return Err(format!(
                "{}: {} gradients for {} parameters",
                kind.name(),
                grads.len(),
                inner.params.len()
            ));
        }
        // Validate all, then update.
        let check = !crate::nonfinite::allow_nonfinite();
        let mut prepared = Vec::with_capacity(grads.len());
        for (i, (g, p)) in grads.into_iter().zip(inner.params.iter()).enumerate() {
            let Some(g) = g else {
                prepared.push(None);
                continue;
            };
            let pt = p.var.as_tensor();
            if g.dims() != pt.dims() {
                return Err(format!(
                    "{}: gradient {i} has shape {:?}, its parameter has {:?}",
                    kind.name(),
                    g.dims(),
                    pt.dims()
                ));
            }
            let g = g
                .detach()
                .to_dtype(pt.dtype())
                .and_then(|g| g.to_device(pt.device()))
                .map_err(|e| format!("{}: {e}", kind.name()))?;
            if check {
                let bad = crate::nonfinite::first_nonfinite(&g)
                    .map_err(|e| format!("{}: {e}", kind.name()))?;
                if let Some(at) = bad {
                    return Err(format!(
                        "{}.step: the gradient of {} is not finite ({}); nothing was updated. \
                         {NONFINITE_HELP}",
                        kind.name(),
                        p.label.describe(),
                        crate::nonfinite::describe_first(&g, at)
                    ));
                }
            }
            prepared.push(Some(g));
        }
        for (p, g) in inner.params.iter_mut().zip(prepared) {
            if let Some(g) = g {
                update(&kind, lr, p, g).map_err(|e| format!("{}: {e}", kind.name()))?;
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
    pub fn set_state_tensors(&self, state: &HashMap<String, CT>) -> Result<(), String> {
        let mut inner = self.0.borrow_mut();
        let scalar = |name: &str| -> Result<f64, String> {
            let t = state
                .get(name)
                .ok_or_else(|| format!("missing tensor \"{name}\""))?;
            t.flatten_all()
                .and_then(|t| t.to_dtype(candle_core::DType::F64))
                .and_then(|t| t.to_vec1::<f64>())
                .ok()
                .filter(|v| v.len() == 1)
                .map(|v| v[0])
                .ok_or_else(|| format!("tensor \"{name}\" must be a scalar"))
        };
        let lr = scalar("lr")?;
        let mut planned = Vec::new();
        for (i, p) in inner.params.iter().enumerate() {
            let step = scalar(&format!("{i}.step"))?;
            if step < 0.0 || step.fract() != 0.0 {
                return Err(format!("tensor \"{i}.step\" must be a count, got {step}"));
            }
            let pt = p.var.as_tensor();
            let moment = |name: String| -> Result<Option<CT>, String> {
                match state.get(&name) {
                    None => Ok(None),
                    Some(t) if t.dims() == pt.dims() => t
                        .to_dtype(pt.dtype())
                        .and_then(|t| t.to_device(pt.device()))
                        .and_then(|t| t.copy())
                        .map(Some)
                        .map_err(|e| format!("tensor \"{name}\": {e}")),
                    Some(t) => Err(format!(
                        "tensor \"{name}\" has shape {:?}, parameter {i} has {:?}",
                        t.dims(),
                        pt.dims()
                    )),
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
            return Err(format!(
                "the state is for more than {} parameters",
                inner.params.len()
            ));
        }
        inner.lr = lr;
        for (p, (step, m, v)) in inner.params.iter_mut().zip(planned) {
            p.step = step;
            p.m = m;
            p.v = v;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), String> {
        let map: HashMap<String, CT> = self
            .state_tensors()
            .into_iter()
            .map(|(k, t)| t.contiguous().map(|t| (k, t)))
            .collect::<candle_core::Result<_>>()
            .map_err(|e| format!("save {}: {e}", path.display()))?;
        crate::nn::save_tensors_atomic(&map, path)
    }

    pub fn load(&self, path: &Path) -> Result<(), String> {
        let map = crate::nn::load_tensors(path)?;
        self.set_state_tensors(&map)
            .map_err(|e| format!("load {}: {e}", path.display()))
    }
}

/// Adam and Adamax as the three in-place passes of [`fused`]; false (nothing done) where they do
/// not apply.
/// How to go on after a non-finite loss or gradient.
const NONFINITE_HELP: &str = "Run with --detect-anomaly to find the first op whose output is NaN \
     or infinite (slow), or with --allow-nonfinite to train on anyway.";

fn fused_update(kind: &Kind, lr: f64, p: &mut ParamState, g: &CT) -> candle_core::Result<bool> {
    use fused::Pass;
    let x = p.var.as_tensor();
    let (beta1, beta2, eps, wd, adam, corrected) = match *kind {
        Kind::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => (beta1, beta2, eps, weight_decay, true, true),
        Kind::Adamax {
            beta1,
            beta2,
            eps,
            weight_decay,
            bias_correction,
        } => (beta1, beta2, eps, weight_decay, false, bias_correction),
        _ => return Ok(false),
    };
    if !fused::applies(x, g) {
        return Ok(false);
    }
    // The moments, updated in place (zeros before the first step; restored ones are copies).
    let moment = |s: &Option<CT>| match s {
        Some(t) if fused::applies(t, x) => Ok(t.clone()),
        _ => x.zeros_like(),
    };
    let (m, v) = (moment(&p.m)?, moment(&p.v)?);
    p.step += 1;
    let t = p.step as i32;
    let k = if corrected {
        lr / (1.0 - beta1.powi(t))
    } else {
        lr
    };
    fused::apply(&m, g, x, Pass::Moment { beta1, wd })?;
    if adam {
        fused::apply(&v, g, x, Pass::Square { beta2, wd })?;
        let s = 1.0 / (1.0 - beta2.powi(t)).sqrt();
        fused::apply(x, &m, &v, Pass::AdamStep { s, eps, k })?;
    } else {
        fused::apply(&v, g, x, Pass::Inf { beta2, eps, wd })?;
        fused::apply(x, &m, &v, Pass::AdamaxStep { k })?;
    }
    p.m = Some(m);
    p.v = Some(v);
    Ok(true)
}

fn update(kind: &Kind, lr: f64, p: &mut ParamState, g: CT) -> candle_core::Result<()> {
    if fused_update(kind, lr, p, &g)? {
        return Ok(());
    }
    let x = p.var.as_tensor().detach();
    p.step += 1;
    let t = p.step as i32;
    let new = match *kind {
        Kind::Sgd { momentum } => {
            let d = if momentum != 0.0 {
                let buf = match &p.m {
                    None => g,
                    Some(b) => ((b * momentum)? + g)?,
                };
                p.m = Some(buf.clone());
                buf
            } else {
                g
            };
            (x - (d * lr)?)?
        }
        Kind::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        } => {
            let g = if weight_decay != 0.0 {
                (g + (&x * weight_decay)?)?
            } else {
                g
            };
            let m = match &p.m {
                None => (&g * (1.0 - beta1))?,
                Some(m) => ((m * beta1)? + (&g * (1.0 - beta1))?)?,
            };
            let v = match &p.v {
                None => (g.sqr()? * (1.0 - beta2))?,
                Some(v) => ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?,
            };
            let bc1 = 1.0 - beta1.powi(t);
            let bc2 = 1.0 - beta2.powi(t);
            let denom = ((v.sqrt()? / bc2.sqrt())? + eps)?;
            let upd = (m.div(&denom)? * (lr / bc1))?;
            p.m = Some(m);
            p.v = Some(v);
            (x - upd)?
        }
        Kind::Adamax {
            beta1,
            beta2,
            eps,
            weight_decay,
            bias_correction,
        } => {
            let g = if weight_decay != 0.0 {
                (g + (&x * weight_decay)?)?
            } else {
                g
            };
            let m = match &p.m {
                None => (&g * (1.0 - beta1))?,
                Some(m) => ((m * beta1)? + (&g * (1.0 - beta1))?)?,
            };
            let gabs = (g.abs()? + eps)?;
            let u = match &p.v {
                None => gabs,
                Some(u) => (u * beta2)?.maximum(&gabs)?,
            };
            let bc1 = if bias_correction {
                1.0 - beta1.powi(t)
            } else {
                1.0
            };
            let upd = (m.div(&u)? * (lr / bc1))?;
            p.m = Some(m);
            p.v = Some(u);
            (x - upd)?
        }
        Kind::RmsProp { alpha, eps } => {
            let v = match &p.m {
                None => (g.sqr()? * (1.0 - alpha))?,
                Some(v) => ((v * alpha)? + (g.sqr()? * (1.0 - alpha))?)?,
            };
            let upd = (g.div(&(v.sqrt()? + eps)?)? * lr)?;
            p.m = Some(v);
            (x - upd)?
        }
    };
    p.var.set(&new)
}

/// Collects variables from a Net, a variable tensor, or an array of them (nested arrays too).
pub fn collect_vars(v: &Dynamic, what: &str, out: &mut Vec<Var>) -> ScriptResult<()> {
    let mut labeled = Vec::new();
    collect_labeled(v, what, &mut labeled)?;
    out.extend(labeled.into_iter().map(|(v, _)| v));
    Ok(())
}

/// [`collect_vars`] with each parameter's origin (its net and name there).
pub fn collect_labeled(
    v: &Dynamic,
    what: &str,
    out: &mut Vec<(Var, ParamLabel)>,
) -> ScriptResult<()> {
    if let Some(n) = v.clone().try_cast::<Net>() {
        for (name, var) in n.named_vars() {
            let label = ParamLabel {
                net: Some(n.clone()),
                name,
            };
            out.push((var, label));
        }
        return Ok(());
    }
    if let Some(t) = v.clone().try_cast::<Tensor>() {
        if !t.0.is_variable() {
            return Err(script_err(format!(
                "{what}: {} is not a variable; make one with variable(x)",
                crate::tensor::summary_line(&t.0)
            )));
        }
        if !t.0.dtype().is_float() {
            return Err(script_err(format!(
                "{what}: parameters must be float tensors"
            )));
        }
        let label = ParamLabel {
            net: None,
            name: format!(
                "variable {} ({})",
                out.len(),
                crate::tensor::summary_line(&t.0)
            ),
        };
        out.push((Var::from_tensor(&t.0).or_script()?, label));
        return Ok(());
    }
    if let Some(arr) = v.clone().try_cast::<Array>() {
        for item in arr.iter() {
            collect_labeled(item, what, out)?;
        }
        return Ok(());
    }
    Err(script_err(format!(
        "{what}: parameters must be a Net, a variable tensor or an array of them, got {}",
        v.type_name()
    )))
}

fn make(kind: Kind, params: &Dynamic, lr: f64) -> ScriptResult<Optimizer> {
    let mut vars = Vec::new();
    collect_labeled(params, kind.name(), &mut vars)?;
    Optimizer::new_labeled(kind, lr, vars).map_err(script_err)
}

fn check_beta(name: &str, what: &str, b: f64) -> ScriptResult<f64> {
    if (0.0..1.0).contains(&b) {
        Ok(b)
    } else {
        Err(script_err(format!(
            "{name}: {what} must be in [0, 1), got {b}"
        )))
    }
}

/// A hyper-parameter that must be a finite number >= 0 (PyTorch rejects negative momentum,
/// eps and weight decay too).
fn nonneg_finite(name: &str, what: &str, v: f64) -> ScriptResult<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(script_err(format!(
            "{name}: {what} must be a finite number >= 0, got {v}"
        )))
    }
}

fn opt_num(map: &Map, key: &str, default: f64, name: &str) -> ScriptResult<f64> {
    match map.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_float()
            .ok()
            .or_else(|| v.as_int().ok().map(|i| i as f64))
            .ok_or_else(|| script_err(format!("{name}: option {key} must be a number"))),
    }
}

fn adam_like(
    name: &str,
    params: &Dynamic,
    lr: f64,
    b1: f64,
    b2: f64,
    opts: &Map,
) -> ScriptResult<Optimizer> {
    let known: &[&str] = if name == "adam" {
        &["eps", "weight_decay"]
    } else {
        &["eps", "weight_decay", "bias_correction"]
    };
    for k in opts.keys() {
        if !known.contains(&k.as_str()) {
            return Err(script_err(format!(
                "{name}: unknown option \"{k}\": expected {}",
                known.join(", ")
            )));
        }
    }
    let bias_correction = match opts.get("bias_correction") {
        None => true,
        Some(v) => v.as_bool().map_err(|_| {
            script_err(format!(
                "{name}: option bias_correction must be true or false"
            ))
        })?,
    };
    let beta1 = check_beta(name, "beta1", b1)?;
    let beta2 = check_beta(name, "beta2", b2)?;
    let eps = nonneg_finite(name, "eps", opt_num(opts, "eps", 1e-8, name)?)?;
    let weight_decay = nonneg_finite(
        name,
        "weight_decay",
        opt_num(opts, "weight_decay", 0.0, name)?,
    )?;
    let kind = if name == "adam" {
        Kind::Adam {
            beta1,
            beta2,
            eps,
            weight_decay,
        }
    } else {
        Kind::Adamax {
            beta1,
            beta2,
            eps,
            weight_decay,
            bias_correction,
        }
    };
    make(kind, params, lr)
}

fn grads_from(arr: &Array) -> ScriptResult<Vec<Option<CT>>> {
    arr.iter()
        .enumerate()
        .map(|(i, v)| {
            if v.is_unit() {
                Ok(None)
            } else {
                v.clone()
                    .try_cast::<Tensor>()
                    .map(|t| Some(t.0))
                    .ok_or_else(|| {
                        script_err(format!(
                            "step_grads: item {i} must be a tensor or (), got {}",
                            v.type_name()
                        ))
                    })
            }
        })
        .collect()
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Optimizer>("Optimizer");
    reg!(
        engine,
        "sgd",
        "SGD with momentum (PyTorch): buf = μ·buf + g, p -= lr·buf. params: a Net, a variable tensor or an array of them.",
        |params: Dynamic, lr: FLOAT, momentum: FLOAT| {
            let momentum = nonneg_finite("sgd", "momentum", momentum)?;
            make(Kind::Sgd { momentum }, &params, lr)
        }
    );
    reg!(
        engine,
        "sgd",
        "Plain SGD: p -= lr·g.",
        |params: Dynamic, lr: FLOAT| make(Kind::Sgd { momentum: 0.0 }, &params, lr)
    );
    reg!(
        engine,
        "adam",
        "Adam (PyTorch, bias-corrected, eps 1e-8).",
        |params: Dynamic, lr: FLOAT, b1: FLOAT, b2: FLOAT| {
            adam_like("adam", &params, lr, b1, b2, &Map::new())
        }
    );
    reg!(
        engine,
        "adam",
        "Adam with options #{eps, weight_decay} (L2 added to the gradient, as PyTorch's Adam).",
        |params: Dynamic, lr: FLOAT, b1: FLOAT, b2: FLOAT, opts: Map| {
            adam_like("adam", &params, lr, b1, b2, &opts)
        }
    );
    reg!(
        engine,
        "adamax",
        "Adamax (PyTorch): m bias-corrected, u = max(β2·u, |g| + eps).",
        |params: Dynamic, lr: FLOAT, b1: FLOAT, b2: FLOAT| {
            adam_like("adamax", &params, lr, b1, b2, &Map::new())
        }
    );
    reg!(
        engine,
        "adamax",
        "Adamax with options #{eps, weight_decay, bias_correction: true} (bias_correction: false drops the 1/(1−β1ᵗ) factor, as the Adamax of MAGAN's official code).",
        |params: Dynamic, lr: FLOAT, b1: FLOAT, b2: FLOAT, opts: Map| {
            adam_like("adamax", &params, lr, b1, b2, &opts)
        }
    );
    reg!(
        engine,
        "rmsprop",
        "RMSProp (PyTorch): v = α v + (1−α) g², p -= lr·g / (√v + eps).",
        |params: Dynamic, lr: FLOAT, alpha: FLOAT, eps: FLOAT| -> ScriptResult<Optimizer> {
            check_beta("rmsprop", "alpha", alpha)?;
            let eps = nonneg_finite("rmsprop", "eps", eps)?;
            make(Kind::RmsProp { alpha, eps }, &params, lr)
        }
    );
    register_pytorch_defaults(engine);
    reg!(
        engine,
        "step",
        "Differentiates the (scalar) loss and updates this optimizer's parameters (those the loss depends on).",
        |o: &mut Optimizer, loss: Tensor| -> ScriptResult<()> { o.step(&loss.0).map_err(script_err) }
    );
    reg!(
        engine,
        "step_grads",
        "Applies the given gradients (one per parameter, () to skip one).",
        |o: &mut Optimizer, grads: Array| -> ScriptResult<()> {
            o.apply(grads_from(&grads)?).map_err(script_err)
        }
    );
    reg!(
        engine,
        "get$lr",
        "The learning rate.",
        |o: &mut Optimizer| o.lr()
    );
    reg!(
        engine,
        "set$lr",
        "Sets the learning rate (finite, >= 0).",
        |o: &mut Optimizer, lr: FLOAT| -> ScriptResult<()> {
            let name = o.0.borrow().kind.name();
            o.set_lr(nonneg_finite(name, "the learning rate", lr)?);
            Ok(())
        }
    );
    reg!(
        engine,
        "set$lr",
        "Sets the learning rate (>= 0).",
        |o: &mut Optimizer, lr: INT| -> ScriptResult<()> {
            let name = o.0.borrow().kind.name();
            o.set_lr(nonneg_finite(name, "the learning rate", lr as f64)?);
            Ok(())
        }
    );
    reg!(
        engine,
        "params",
        "The optimizer's parameters (variable tensors).",
        |o: &mut Optimizer| {
            o.vars()
                .into_iter()
                .map(|v| Dynamic::from(Tensor(v.as_tensor().clone())))
                .collect::<Array>()
        }
    );
    reg!(
        engine,
        "state",
        "The optimizer state as a map: lr, i.step, i.m, i.v (copies: later steps leave it as it is).",
        |o: &mut Optimizer| -> ScriptResult<Map> {
            // Copies: the fused passes update the moments in place.
            o.state_tensors()
                .into_iter()
                .map(|(k, t)| Ok((k.into(), Dynamic::from(Tensor(t.copy().or_script()?)))))
                .collect()
        }
    );
    reg!(
        engine,
        "load_state",
        "Restores a state from state(); on error nothing changes.",
        |o: &mut Optimizer, state: Map| -> ScriptResult<()> {
            let mut m = HashMap::new();
            for (k, v) in state.iter() {
                let t = v
                    .clone()
                    .try_cast::<Tensor>()
                    .ok_or_else(|| script_err(format!("load_state: \"{k}\" must be a tensor")))?;
                m.insert(k.to_string(), t.0);
            }
            o.set_state_tensors(&m)
                .map_err(|e| script_err(format!("load_state: {e}")))
        }
    );
    reg!(
        engine,
        "save",
        "Writes the optimizer state as safetensors (atomically) to a file in the run directory.",
        |o: &mut Optimizer, path: &str| -> ScriptResult<()> {
            o.save(&crate::run::output_path(path, "")?)
                .map_err(script_err)
        }
    );
    reg!(
        engine,
        "load",
        "Reads the optimizer state from a safetensors file; on error nothing changes.",
        |o: &mut Optimizer, path: &str| -> ScriptResult<()> {
            o.load(&crate::sandbox::read_path("load", path)?)
                .map_err(script_err)
        }
    );
    reg!(
        engine,
        "to_string",
        "A one-line description.",
        |o: &mut Optimizer| {
            let i = o.0.borrow();
            format!("{:?} lr={} ({} parameters)", i.kind, i.lr, i.params.len())
        }
    );
}

/// The short forms with PyTorch's default hyper-parameters (`torch.optim`): Adam and Adamax
/// betas (0.9, 0.999), RMSprop alpha 0.99, all with eps 1e-8 (SGD's `sgd(params, lr)`, momentum
/// 0, is registered with the others).
fn register_pytorch_defaults(engine: &mut Engine) {
    reg!(
        engine,
        "adam",
        "Adam with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8.",
        |params: Dynamic, lr: FLOAT| adam_like("adam", &params, lr, 0.9, 0.999, &Map::new())
    );
    reg!(
        engine,
        "adamax",
        "Adamax with PyTorch's defaults: betas (0.9, 0.999), eps 1e-8.",
        |params: Dynamic, lr: FLOAT| adam_like("adamax", &params, lr, 0.9, 0.999, &Map::new())
    );
    reg!(
        engine,
        "rmsprop",
        "RMSProp with PyTorch's defaults: alpha 0.99, eps 1e-8.",
        |params: Dynamic, lr: FLOAT| make(
            Kind::RmsProp {
                alpha: 0.99,
                eps: 1e-8
            },
            &params,
            lr
        )
    );
}
