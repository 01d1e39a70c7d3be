//! rhai registration of the network API.
//!
//! EMA: `let avg = ema(net)` makes an independent copy; `ema_update(avg, net, 0.999)` (or
//! `avg.ema_update(net, 0.999)`) then sets `avg = 0.999·avg + 0.001·net` for parameters and
//! copies the buffers.

use super::arch::{self, ArchOptions, Padding};
use super::{Act, Net};
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::{shape_from, Tensor};
use rhai::{Array, Dynamic, Engine, Map, FLOAT, INT};
use std::rc::Rc;

type RN = ScriptResult<Net>;

fn size(v: INT, what: &str, op: &str) -> ScriptResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| script_err(format!("{op}: {what} must be >= 1, got {v}")))
}

fn nonneg(v: INT, what: &str, op: &str) -> ScriptResult<usize> {
    usize::try_from(v).map_err(|_| script_err(format!("{op}: {what} must be >= 0, got {v}")))
}

fn linear(i: INT, o: INT, bias: bool) -> RN {
    Net::linear(
        size(i, "in_features", "linear")?,
        size(o, "out_features", "linear")?,
        bias,
    )
    .ctx("linear")
}

fn conv(i: INT, o: INT, k: INT, s: INT, p: INT, bias: bool) -> RN {
    let op = "conv2d";
    Net::conv2d(
        size(i, "in_channels", op)?,
        size(o, "out_channels", op)?,
        size(k, "kernel size", op)?,
        size(s, "stride", op)?,
        nonneg(p, "padding", op)?,
        bias,
    )
    .ctx(op)
}

#[allow(clippy::too_many_arguments)]
fn deconv(i: INT, o: INT, k: INT, s: INT, p: INT, opad: INT, bias: bool) -> RN {
    let op = "conv_transpose2d";
    Net::conv_transpose2d(
        size(i, "in_channels", op)?,
        size(o, "out_channels", op)?,
        size(k, "kernel size", op)?,
        size(s, "stride", op)?,
        nonneg(p, "padding", op)?,
        nonneg(opad, "output padding", op)?,
        bias,
    )
    .ctx(op)
}

fn to_net(v: &Dynamic, what: &str) -> RN {
    v.clone()
        .try_cast::<Net>()
        .ok_or_else(|| script_err(format!("{what}: expected a Net, got {}", v.type_name())))
}

fn num(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// Reads `arch` options from a map, rejecting unknown keys.
pub fn arch_options(map: &Map) -> ScriptResult<ArchOptions> {
    let mut o = ArchOptions::default();
    let slope = match map.get("slope") {
        Some(v) => num(v).ok_or_else(|| script_err("arch: option slope must be a number"))?,
        None => 0.2,
    };
    let str_of = |k: &str, v: &Dynamic| -> ScriptResult<String> {
        v.clone()
            .into_string()
            .map_err(|_| script_err(format!("arch: option {k} must be a string")))
    };
    let bool_of = |k: &str, v: &Dynamic| -> ScriptResult<bool> {
        v.as_bool()
            .map_err(|_| script_err(format!("arch: option {k} must be true or false")))
    };
    for (k, v) in map.iter() {
        match k.as_str() {
            "slope" => {}
            "activation" => o.activation = Act::parse(&str_of(k, v)?, slope).map_err(script_err)?,
            "output" => o.output = Act::parse(&str_of(k, v)?, slope).map_err(script_err)?,
            "batch_norm" => o.batch_norm = bool_of(k, v)?,
            "transpose" => o.transpose = bool_of(k, v)?,
            "bias" => o.bias = bool_of(k, v)?,
            "in_channels" => {
                let n = v
                    .as_int()
                    .map_err(|_| script_err("arch: option in_channels must be an integer"))?;
                o.in_channels = Some(size(n, "in_channels", "arch")?);
            }
            "padding" => {
                o.padding = if let Ok(p) = v.as_int() {
                    Padding::Fixed(nonneg(p, "padding", "arch")?)
                } else {
                    match str_of(k, v)?.to_ascii_lowercase().as_str() {
                        "auto" => Padding::Auto,
                        "same" => Padding::Same,
                        "valid" => Padding::Valid,
                        other => {
                            return Err(script_err(format!(
                                "arch: padding \"{other}\": expected \"auto\", \"same\", \"valid\" \
                                 or an integer"
                            )))
                        }
                    }
                }
            }
            "input" => o.input = Some(shape_from(v)?),
            "output_shape" => o.output_shape = Some(shape_from(v)?),
            other => {
                return Err(script_err(format!(
                    "arch: unknown option \"{other}\": expected activation, slope, output, \
                     batch_norm, transpose, in_channels, padding, input, output_shape or bias"
                )))
            }
        }
    }
    // `slope` alone changes the default activation's slope only if it is leaky.
    if let Act::LeakyRelu(_) = o.activation {
        o.activation = Act::LeakyRelu(slope);
    }
    Ok(o)
}

/// Reads the DCGAN builders' options, rejecting unknown keys (`slope` only for D).
fn dcgan_options(op: &str, map: &Map) -> ScriptResult<arch::DcganOptions> {
    let mut o = arch::DcganOptions::default();
    for (k, v) in map.iter() {
        let bad = |what: &str| script_err(format!("{op}: option {k} must be {what}"));
        match k.as_str() {
            "batch_norm" => o.batch_norm = v.as_bool().map_err(|_| bad("true or false"))?,
            "bias" => o.bias = v.as_bool().map_err(|_| bad("true or false"))?,
            "width" => {
                let w = v.as_int().map_err(|_| bad("an integer"))?;
                o.width = Some(size(w, "width", op)?);
            }
            "slope" if op == "dcgan_d" => {
                o.slope = num(v)
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| bad("a number"))?
            }
            other => {
                let keys = if op == "dcgan_d" {
                    "batch_norm, width, bias or slope"
                } else {
                    "batch_norm, width or bias"
                };
                return Err(script_err(format!(
                    "{op}: unknown option \"{other}\": expected {keys}"
                )));
            }
        }
    }
    Ok(o)
}

fn tensor_map(items: Vec<(String, candle_core::Tensor)>) -> Map {
    items
        .into_iter()
        .map(|(k, t)| (k.into(), Dynamic::from(Tensor(t))))
        .collect()
}

/// Registers the API; files are written into `outputs` (the run directory).
pub fn register(engine: &mut Engine, outputs: Rc<dyn crate::sandbox::Outputs>) {
    engine.register_type_with_name::<Net>("Net");
    register_layers(engine);
    register_builders(engine);
    register_module_api(engine, outputs);
    // The gradient penalties with a net as the discriminator (its input gradient built layer
    // by layer, see `input_grad`).
    crate::gan::penalties::register_for::<Net>(engine);
}

fn register_layers(engine: &mut Engine) {
    reg!(volatile engine, "linear", "Linear layer: [N, in] → [N, out] (weight [out, in], bias, PyTorch default init).", |i: INT, o: INT| linear(i, o, true));
    reg!(volatile engine, "linear", "Linear layer with or without bias.", |i: INT, o: INT, bias: bool| linear(i, o, bias));
    reg!(volatile engine, "conv2d", "Conv layer conv2d(in, out, k, stride, padding): weight [out, in, k, k], bias.", |i: INT, o: INT, k: INT, s: INT, p: INT| conv(i, o, k, s, p, true));
    reg!(volatile engine, "conv2d", "Conv layer conv2d(in, out, k, stride, padding, bias).", |i: INT, o: INT, k: INT, s: INT, p: INT, bias: bool| conv(i, o, k, s, p, bias));
    reg!(volatile engine, "conv_transpose2d", "Transposed conv layer conv_transpose2d(in, out, k, stride, padding, output_padding): weight [in, out, k, k], bias.", |i: INT, o: INT, k: INT, s: INT, p: INT, op: INT| deconv(i, o, k, s, p, op, true));
    reg!(volatile engine, "conv_transpose2d", "Transposed conv layer with a trailing bias flag.", |i: INT, o: INT, k: INT, s: INT, p: INT, op: INT, bias: bool| deconv(i, o, k, s, p, op, bias));
    reg!(
        engine,
        "batch_norm",
        "Batch norm over channels of [N, C] or [N, C, H, W] (eps 1e-5, momentum 0.1; train: batch stats, eval: running stats).",
        |c: INT| -> RN { Net::batch_norm(size(c, "channels", "batch_norm")?).ctx("batch_norm") }
    );
    reg!(
        engine,
        "layer_norm",
        "Layer norm over the last dimension (eps 1e-5, affine).",
        |d: INT| -> RN { Net::layer_norm(size(d, "dim", "layer_norm")?).ctx("layer_norm") }
    );
    reg!(engine, "relu", "ReLU layer.", || Net::act(Act::Relu));
    reg!(
        engine,
        "leaky_relu",
        "Leaky ReLU layer with negative slope `alpha`.",
        |a: FLOAT| -> RN {
            if !a.is_finite() {
                return Err(script_err(format!(
                    "leaky_relu: the slope must be a finite number, got {a}"
                )));
            }
            Ok(Net::act(Act::LeakyRelu(a)))
        }
    );
    reg!(
        engine,
        "leaky_relu",
        "Leaky ReLU layer with negative slope 0.2.",
        || Net::act(Act::LeakyRelu(0.2))
    );
    reg!(engine, "tanh", "tanh layer.", || Net::act(Act::Tanh));
    reg!(engine, "sigmoid", "Sigmoid layer.", || Net::act(
        Act::Sigmoid
    ));
    reg!(engine, "identity", "Identity layer.", || Net::act(
        Act::Identity
    ));
    reg!(
        engine,
        "flatten",
        "Flatten layer: [N, ...] → [N, prod(...)].",
        Net::flatten
    );
    reg!(
        engine,
        "reshape",
        "Reshape layer to a per-sample shape (the batch dimension is kept).",
        |shape: Array| -> RN { Ok(Net::reshape(shape_from(&Dynamic::from_array(shape))?)) }
    );
    reg!(
        engine,
        "residual",
        "Residual layer: x + net(x).",
        |n: Net| -> RN {
            Net::check_nesting("residual", std::slice::from_ref(&n)).map_err(script_err)?;
            Ok(Net::residual(n))
        }
    );
    reg!(
        engine,
        "sequential",
        "Applies the nets/layers of the array in order.",
        |items: Array| -> RN {
            let nets = items
                .iter()
                .enumerate()
                .map(|(i, v)| to_net(v, &format!("sequential: item {i}")))
                .collect::<ScriptResult<Vec<_>>>()?;
            Net::check_nesting("sequential", &nets).map_err(script_err)?;
            Ok(Net::sequential(nets))
        }
    );
}

fn register_builders(engine: &mut Engine) {
    reg!(volatile engine, "arch", "A net from the MAGAN notation: \"784-256-256-784\" (fully connected) or \"(128)7c1s-(64)4c2s\" ((C)KcSs convs); options: activation, slope, output, batch_norm, transpose, in_channels, padding (\"auto\": 0 at stride 1, ⌈(K−S)/2⌉ above, i.e. PyTorch DCGAN padding 1 for 4c2s), input, output_shape, bias.", |spec: &str, opts: Map| -> RN {
        arch::arch(spec, &arch_options(&opts)?).map_err(script_err)
    });
    reg!(volatile engine, "arch", "A net from the MAGAN notation with default options (ReLU hidden, no output activation).", |spec: &str| -> RN {
        arch::arch(spec, &ArchOptions::default()).map_err(script_err)
    });
    reg!(volatile engine, "magan_mnist_d", "MAGAN MNIST discriminator: FC auto-encoder 784-256-256-784, ReLU, sigmoid; [N,1,28,28] → [N,1,28,28].", || -> RN {
        arch::magan_mnist_d().map_err(script_err)
    });
    reg!(volatile engine, "magan_mnist_g", "MAGAN MNIST generator: z [N,nz] → (128)7c1s-(64)4c2s-(1)4c2s deconvs, ReLU, sigmoid → [N,1,28,28].", |nz: INT| -> RN {
        arch::magan_mnist_g(size(nz, "nz", "magan_mnist_g")?).map_err(script_err)
    });
    reg!(volatile engine, "magan_conv_ae", "MAGAN conv auto-encoder for 32 or 64 px images (DCGAN-shaped, tanh output).", |s: INT, ch: INT| -> RN {
        arch::magan_conv_ae(size(s, "size", "magan_conv_ae")?, size(ch, "channels", "magan_conv_ae")?).ctx("magan_conv_ae")
    });
    reg!(volatile engine, "dcgan_g", "DCGAN generator dcgan_g(size 28|32|64, nz, channels, batch_norm): z [N,nz] → [N,ch,size,size], tanh.", |s: INT, nz: INT, ch: INT, bn: bool| -> RN {
        arch::dcgan_g(size(s, "size", "dcgan_g")?, size(nz, "nz", "dcgan_g")?, size(ch, "channels", "dcgan_g")?, bn).ctx("dcgan_g")
    });
    reg!(volatile engine, "dcgan_d", "DCGAN discriminator dcgan_d(size 28|32|64, channels, batch_norm): [N,ch,size,size] → [N,1] logits.", |s: INT, ch: INT, bn: bool| -> RN {
        arch::dcgan_d(size(s, "size", "dcgan_d")?, size(ch, "channels", "dcgan_d")?, bn).ctx("dcgan_d")
    });
    reg!(volatile engine, "dcgan_g", "DCGAN generator with options #{batch_norm: true, width: 128 (the last hidden layer's; the others double from it), bias: true}.", |s: INT, nz: INT, ch: INT, opts: Map| -> RN {
        let o = dcgan_options("dcgan_g", &opts)?;
        arch::dcgan_g_with(size(s, "size", "dcgan_g")?, size(nz, "nz", "dcgan_g")?, size(ch, "channels", "dcgan_g")?, &o).ctx("dcgan_g")
    });
    reg!(volatile engine, "dcgan_d", "DCGAN discriminator with options #{batch_norm: true, width: 128 at 32 px (the first layer's; the others double from it), bias: true, slope: 0.2}.", |s: INT, ch: INT, opts: Map| -> RN {
        let o = dcgan_options("dcgan_d", &opts)?;
        arch::dcgan_d_with(size(s, "size", "dcgan_d")?, size(ch, "channels", "dcgan_d")?, &o).ctx("dcgan_d")
    });
    reg!(volatile engine, "tempered_lens", "Tempered Adversarial Networks lens: x + out(h), conv3x3 in→width, relu, residual blocks, conv3x3 width→ch.", |ch: INT, width: INT, blocks: INT| -> RN {
        arch::tempered_lens(size(ch, "channels", "tempered_lens")?, size(width, "width", "tempered_lens")?, nonneg(blocks, "blocks", "tempered_lens")?).ctx("tempered_lens")
    });
    reg!(volatile engine, "tempered_lens", "Tempered lens with width 32 and 8 blocks.", |ch: INT| -> RN {
        arch::tempered_lens(size(ch, "channels", "tempered_lens")?, 32, 8).ctx("tempered_lens")
    });
}

fn register_module_api(engine: &mut Engine, outputs: Rc<dyn crate::sandbox::Outputs>) {
    reg!(
        engine,
        "forward",
        "Applies the net to a batch.",
        |n: &mut Net, x: Tensor| -> ScriptResult<Tensor> {
            n.forward(&x.0)
                .map(Tensor)
                .ctx("forward")
                .and_then(|t| crate::tensor::nonfinite::checked("forward", t))
        }
    );
    reg!(
        engine,
        "forward_frozen",
        "Applies the net with its parameters frozen: same values and input gradients as forward (batch-norm statistics update as in forward), but a backward pass computes no gradients for this net's parameters. Use it for D in the G step and in lens steps: opt_g.step(nsgan_g(D.forward_frozen(G.forward(z)))) skips D's weight gradients that opt_g would discard.",
        |n: &mut Net, x: Tensor| -> ScriptResult<Tensor> {
            n.forward_frozen(&x.0).map(Tensor).ctx("forward_frozen").and_then(|t| crate::tensor::nonfinite::checked("forward_frozen", t))
        }
    );
    reg!(
        engine,
        "forward_with_grad",
        "The output and the input gradient in one pass: #{ out: net(x), grad: ∇ₓ Σ net(x) } for a variable x, the same values as `let out = net.forward(x); grad(out.sum(), x)` and differentiable in the same way (for gradient penalties), but built layer by layer from the ops' own input gradients instead of by a generic backward pass (a smaller graph; no parameter gradients).",
        |n: &mut Net, x: Tensor| -> ScriptResult<Map> {
            crate::autograd::require_variable("forward_with_grad", &x.0)?;
            let (out, g) = n.forward_with_input_grad(&x.0).ctx("forward_with_grad")?;
            let mut m = Map::new();
            m.insert("out".into(), Dynamic::from(Tensor(out)));
            m.insert("grad".into(), Dynamic::from(Tensor(g)));
            Ok(m)
        }
    );
    reg!(
        engine,
        "params",
        "The parameters (variable tensors), in order.",
        |n: &mut Net| {
            n.vars()
                .into_iter()
                .map(|v| Dynamic::from(Tensor(v.as_tensor().clone())))
                .collect::<Array>()
        }
    );
    reg!(
        engine,
        "param_count",
        "The number of scalar parameters.",
        |n: &mut Net| n.param_count() as INT
    );
    reg!(
        engine,
        "train",
        "Training mode (batch norm uses and updates batch statistics).",
        |n: &mut Net| n.set_training(true)
    );
    reg!(
        engine,
        "train_mode",
        "Training mode (same as net.train()).",
        |n: &mut Net| n.set_training(true)
    );
    reg!(
        engine,
        "train",
        "train(true): training mode; train(false): evaluation mode.",
        |n: &mut Net, on: bool| n.set_training(on)
    );
    reg!(
        engine,
        "eval_mode",
        "Evaluation mode (batch norm uses running statistics). (`eval` is a reserved word in rhai: use net.eval_mode() or net.train(false).)",
        |n: &mut Net| n.set_training(false)
    );
    reg!(
        engine,
        "is_training",
        "True in training mode.",
        |n: &mut Net| n.is_training()
    );
    reg!(
        engine,
        "summary",
        "A table of layers and parameter counts.",
        |n: &mut Net| n.summary_table(&n.rows())
    );
    reg!(
        engine,
        "summary",
        "A table of layers, output shapes (a dummy forward of one sample of the given per-sample shape, eval mode, nothing updated) and parameter counts.",
        |n: &mut Net, shape: Array| -> ScriptResult<String> {
            let mut dims = vec![1usize];
            dims.extend(shape_from(&Dynamic::from_array(shape))?);
            crate::limits::check_tensor("summary", &dims, super::net_dtype(n))?;
            let x = candle_core::Tensor::zeros(dims, super::net_dtype(n), &crate::device::current_device()).or_script()?;
            let rows = n.trace(&x).ctx("summary")?;
            Ok(n.summary_table(&rows))
        }
    );
    reg!(
        engine,
        "to_string",
        "The summary table (no shapes).",
        |n: &mut Net| n.summary_table(&n.rows())
    );
    reg!(
        engine,
        "to_debug",
        "The summary table (no shapes).",
        |n: &mut Net| n.summary_table(&n.rows())
    );
    reg!(
        engine,
        "named_params",
        "Map name → parameter tensor (names like 0.weight, 3.bias).",
        |n: &mut Net| {
            tensor_map(
                n.named_vars()
                    .into_iter()
                    .map(|(k, v)| (k, v.as_tensor().clone()))
                    .collect(),
            )
        }
    );
    reg!(
        engine,
        "buffers",
        "Map name → buffer tensor (batch-norm running_mean / running_var).",
        |n: &mut Net| tensor_map(n.named_buffers())
    );
    reg!(
        engine,
        "copy_from",
        "Copies every parameter and buffer of `other` (same architecture).",
        |n: &mut Net, other: Net| -> ScriptResult<()> { n.copy_from(&other).map_err(script_err) }
    );
    reg!(
        engine,
        "copy",
        "An independent copy of the net (new parameters with the same values).",
        |n: &mut Net| -> RN { n.deep_copy().ctx("copy") }
    );
    reg!(
        volatile engine,
        "init",
        "Re-initialises the parameters: \"default\" (PyTorch's), \"xavier\" (Glorot uniform), \"kaiming\" (He normal, N(0, 2/fan_in)), \"he\" (prettytensor's he_init, as in MAGAN's official code: He normal for layers followed by a ReLU (through a batch norm or not), Glorot uniform for the others), \"dcgan\" (N(0,0.02), BN weight N(1,0.02)); biases zero except default. fan_in as PyTorch computes it (out·k² for a transposed conv).",
        |n: Net, scheme: &str| -> ScriptResult<Net> {
            n.init(scheme).map_err(script_err)?;
            Ok(n)
        }
    );
    reg!(
        volatile engine,
        "init",
        "Re-initialises the parameters with a standard deviation: \"normal\" (N(0, std²)) or \"truncated_normal\" (TensorFlow's: N(0, std²) redrawn beyond 2·std); biases zero, norm weights one.",
        |n: Net, scheme: &str, std: FLOAT| -> ScriptResult<Net> {
            n.init_with(scheme, Some(std)).map_err(script_err)?;
            Ok(n)
        }
    );
    reg!(
        engine,
        "ema",
        "An independent copy of `net` to hold its exponential moving average; update it with ema_update(avg, net, decay).",
        |n: Net| -> RN { n.deep_copy().ctx("ema") }
    );
    reg!(
        engine,
        "ema",
        "An independent copy of `net` for its moving average (decay is checked here, applied by ema_update(avg, net, decay)).",
        |n: Net, decay: FLOAT| -> RN {
            if !(0.0..=1.0).contains(&decay) {
                return Err(script_err(format!("ema: decay must be in [0, 1], got {decay}")));
            }
            n.deep_copy().ctx("ema")
        }
    );
    reg!(
        engine,
        "set_param",
        "Sets one parameter or buffer by name (same shape) to a copy of `value`.",
        |n: &mut Net, name: &str, value: Tensor| -> ScriptResult<()> {
            n.set_named(name, &value.0).map_err(script_err)
        }
    );
    reg!(
        engine,
        "ema_update",
        "avg = decay·avg + (1−decay)·net for parameters; buffers copied.",
        |avg: &mut Net, n: Net, decay: FLOAT| -> ScriptResult<()> {
            if !(0.0..=1.0).contains(&decay) {
                return Err(script_err(format!(
                    "ema_update: decay must be in [0, 1], got {decay}"
                )));
            }
            avg.ema_update(&n, decay).map_err(script_err)
        }
    );
    reg!(
        engine,
        "save",
        "Writes parameters and buffers as safetensors (atomically) to a file in the run directory.",
        move |n: &mut Net, path: &str| -> ScriptResult<()> {
            n.save(&outputs.output_path(path, "")?).map_err(script_err)
        }
    );
    reg!(
        engine,
        "load",
        "Reads parameters and buffers from a safetensors file; on error the net is unchanged.",
        |n: &mut Net, path: &str| -> ScriptResult<()> {
            n.load(&crate::sandbox::read_path("load", path)?)
                .map_err(script_err)
        }
    );
}
