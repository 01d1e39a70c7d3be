//! The optimizers' script API: the constructors (with PyTorch's defaults and names), the
//! parameters they take (nets, variables, arrays of them), and the methods on an optimizer.

use super::*;
use std::rc::Rc;

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

pub(super) fn make(kind: Kind, params: &Dynamic, lr: f64) -> ScriptResult<Optimizer> {
    let mut vars = Vec::new();
    collect_labeled(params, kind.name(), &mut vars)?;
    Optimizer::new_labeled(kind, lr, vars).map_err(script_err)
}

pub(super) fn check_beta(name: &str, what: &str, b: f64) -> ScriptResult<f64> {
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
pub(super) fn nonneg_finite(name: &str, what: &str, v: f64) -> ScriptResult<f64> {
    if v.is_finite() && v >= 0.0 {
        Ok(v)
    } else {
        Err(script_err(format!(
            "{name}: {what} must be a finite number >= 0, got {v}"
        )))
    }
}

pub(super) fn opt_num(map: &Map, key: &str, default: f64, name: &str) -> ScriptResult<f64> {
    match map.get(key) {
        None => Ok(default),
        Some(v) => v
            .as_float()
            .ok()
            .or_else(|| v.as_int().ok().map(|i| i as f64))
            .ok_or_else(|| script_err(format!("{name}: option {key} must be a number"))),
    }
}

pub(super) fn adam_like(
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

pub(super) fn grads_from(arr: &Array) -> ScriptResult<Vec<Option<CT>>> {
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

/// Registers the API; files are written into `outputs` (the run directory).
pub fn register(engine: &mut Engine, outputs: Rc<dyn crate::sandbox::Outputs>) {
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
        move |o: &mut Optimizer, path: &str| -> ScriptResult<()> {
            o.save(&outputs.output_path(path, "")?).map_err(script_err)
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
pub(super) fn register_pytorch_defaults(engine: &mut Engine) {
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
