//! The MAGAN paper's architecture notation and the papers' ready-made networks.
//!
//! Notation (`arch(spec, options)`):
//! - fully connected: `"784-256-256-784"`: widths, one linear layer between consecutive widths;
//! - convolutional: `"(128)7c1s-(64)4c2s-(1)4c2s"`: each token `(C)KcSs` is a convolution (or a
//!   transposed convolution with `transpose: true`) with `C` output maps, a `K×K` kernel and
//!   stride `S`.
//!
//! Every layer but the last is followed by (optional) batch norm and the hidden activation; the
//! last by the output activation.
//!
//! Padding convention (`padding: "auto"`, the default): stride 1 → padding 0 ("valid" conv;
//! a transposed conv from 1×1 then gives K×K); stride S > 1 → padding ⌈(K−S)/2⌉ (and, for a
//! transposed conv, output padding 2p−(K−S)), which gives exact S× down/up-sampling: for the
//! DCGAN 4×4 stride-2 layers this is PyTorch's padding 1. So the MAGAN MNIST generator
//! `z[50,1,1] → (128)7c1s → 7×7 → (64)4c2s → 14×14 → (1)4c2s → 28×28` is reproduced by the
//! default. `"same"` uses padding (K−1)/2 at stride 1 (and the auto rule otherwise); `"valid"`
//! is 0 everywhere; an integer is used as is for every layer.

use super::{Act, Net};
use crate::errors::Error;

/// Padding rule for the convolutional notation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Padding {
    Auto,
    Same,
    Valid,
    Fixed(usize),
}

/// Options of `arch(spec, options)`.
#[derive(Clone, Debug)]
pub struct ArchOptions {
    pub activation: Act,
    pub output: Act,
    pub batch_norm: bool,
    pub transpose: bool,
    pub in_channels: Option<usize>,
    pub padding: Padding,
    /// Per-sample input shape: a 1-D input is reshaped to `[n, 1, 1]` for a conv net; a
    /// multi-dimensional input is flattened for a fully connected net.
    pub input: Option<Vec<usize>>,
    /// Per-sample output shape (the output is reshaped to it).
    pub output_shape: Option<Vec<usize>>,
    pub bias: bool,
}

impl Default for ArchOptions {
    fn default() -> Self {
        ArchOptions {
            activation: Act::Relu,
            output: Act::Identity,
            batch_norm: false,
            transpose: false,
            in_channels: None,
            padding: Padding::Auto,
            input: None,
            output_shape: None,
            bias: true,
        }
    }
}

/// One parsed conv token.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    pub channels: usize,
    pub kernel: usize,
    pub stride: usize,
}

/// Parsed notation.
#[derive(Clone, Debug, PartialEq)]
pub enum Spec {
    Dense(Vec<usize>),
    Conv(Vec<ConvSpec>),
}

fn bad(token: &str, i: usize, expected: &str) -> String {
    format!(
        "arch: bad layer \"{token}\" at token {}: expected {expected}",
        i + 1
    )
}

/// Parses `(C)KcSs`.
fn parse_conv_token(tok: &str) -> Option<ConvSpec> {
    let rest = tok.strip_prefix('(')?;
    let (c, rest) = rest.split_once(')')?;
    let (k, rest) = rest.split_once('c')?;
    let s = rest.strip_suffix('s')?;
    let num = |v: &str| -> Option<usize> {
        if v.is_empty() || !v.chars().all(|ch| ch.is_ascii_digit()) {
            return None;
        }
        v.parse::<usize>().ok().filter(|&n| n > 0)
    };
    Some(ConvSpec {
        channels: num(c)?,
        kernel: num(k)?,
        stride: num(s)?,
    })
}

/// Parses the notation; errors quote the bad token and its (1-based) position.
pub fn parse(spec: &str) -> Result<Spec, Error> {
    let tokens: Vec<&str> = spec.split('-').map(|t| t.trim()).collect();
    if spec.trim().is_empty() {
        return Err(Error::Msg("arch: empty architecture string".to_string()));
    }
    if tokens[0].starts_with('(') {
        let mut layers = Vec::new();
        for (i, tok) in tokens.iter().enumerate() {
            layers.push(parse_conv_token(tok).ok_or_else(|| bad(tok, i, "(C)KcSs"))?);
        }
        Ok(Spec::Conv(layers))
    } else {
        let mut widths = Vec::new();
        for (i, tok) in tokens.iter().enumerate() {
            let w = if !tok.is_empty() && tok.chars().all(|c| c.is_ascii_digit()) {
                tok.parse::<usize>().ok().filter(|&n| n > 0)
            } else {
                None
            };
            widths.push(w.ok_or_else(|| bad(tok, i, "a positive integer width"))?);
        }
        if widths.len() < 2 {
            return Err(Error::Msg(format!(
                "arch: \"{spec}\" has one width: a fully connected net needs at least two \
                 (input-output)"
            )));
        }
        Ok(Spec::Dense(widths))
    }
}

fn err(e: candle_core::Error) -> String {
    format!("arch: {e}")
}

/// Builds a net from the notation.
pub fn arch(spec: &str, opts: &ArchOptions) -> Result<Net, Error> {
    let parsed = parse(spec)?;
    let mut layers: Vec<Net> = Vec::new();
    match parsed {
        Spec::Dense(widths) => {
            if let Some(input) = &opts.input {
                let n: usize = input.iter().product();
                if n != widths[0] {
                    return Err(Error::Msg(format!(
                        "arch: input shape {input:?} has {n} values but \"{spec}\" starts with \
                         width {}",
                        widths[0]
                    )));
                }
                if input.len() > 1 {
                    layers.push(Net::flatten());
                }
            }
            let last = widths.len() - 2;
            for (i, pair) in widths.windows(2).enumerate() {
                layers.push(Net::linear(pair[0], pair[1], opts.bias).map_err(err)?);
                push_post(&mut layers, i == last, pair[1], opts)?;
            }
        }
        Spec::Conv(convs) => {
            let mut in_ch = opts.in_channels;
            if let Some(input) = &opts.input {
                match input.len() {
                    1 => layers.push(Net::reshape(vec![input[0], 1, 1])),
                    3 => {}
                    _ => {
                        return Err(Error::Msg(format!(
                            "arch: a convolutional net takes a per-sample input [n] or [C, H, W], \
                             got {input:?}"
                        )))
                    }
                }
                if in_ch.is_none() {
                    in_ch = Some(input[0]);
                }
            }
            let mut c_in = in_ch.ok_or_else(|| {
                "arch: a convolutional net needs the number of input channels: give \
                 in_channels or input in the options"
                    .to_string()
            })?;
            let last = convs.len() - 1;
            for (i, c) in convs.iter().enumerate() {
                let (k, s) = (c.kernel, c.stride);
                let auto = (k.saturating_sub(s)).div_ceil(2);
                let p = match opts.padding {
                    Padding::Valid => 0,
                    Padding::Fixed(p) => p,
                    Padding::Auto if s == 1 => 0,
                    Padding::Same if s == 1 => (k - 1) / 2,
                    Padding::Auto | Padding::Same => auto,
                };
                let layer = if opts.transpose {
                    let op = if s > 1 && matches!(opts.padding, Padding::Auto | Padding::Same) {
                        (2 * p + s).saturating_sub(k).min(s - 1)
                    } else {
                        0
                    };
                    Net::conv_transpose2d(c_in, c.channels, k, s, p, op, opts.bias)
                } else {
                    Net::conv2d(c_in, c.channels, k, s, p, opts.bias)
                }
                .map_err(err)?;
                layers.push(layer);
                push_post(&mut layers, i == last, c.channels, opts)?;
                c_in = c.channels;
            }
        }
    }
    if let Some(shape) = &opts.output_shape {
        layers.push(Net::reshape(shape.clone()));
    }
    Ok(Net::sequential(layers))
}

fn push_post(
    layers: &mut Vec<Net>,
    last: bool,
    width: usize,
    opts: &ArchOptions,
) -> Result<(), Error> {
    if last {
        if opts.output != Act::Identity {
            layers.push(Net::act(opts.output));
        }
    } else {
        if opts.batch_norm {
            layers.push(Net::batch_norm(width).map_err(err)?);
        }
        layers.push(Net::act(opts.activation));
    }
    Ok(())
}

// ----- ready-made networks -----

type R = candle_core::Result<Net>;

fn bn_relu(layers: &mut Vec<Net>, c: usize, bn: bool, act: Act) -> candle_core::Result<()> {
    if bn {
        layers.push(Net::batch_norm(c)?);
    }
    layers.push(Net::act(act));
    Ok(())
}

/// MAGAN MNIST discriminator: the fully connected auto-encoder 784-256-256-784 (ReLU, sigmoid
/// output); `[N, 1, 28, 28] → [N, 1, 28, 28]`.
pub fn magan_mnist_d() -> Result<Net, Error> {
    arch(
        "784-256-256-784",
        &ArchOptions {
            output: Act::Sigmoid,
            input: Some(vec![1, 28, 28]),
            output_shape: Some(vec![1, 28, 28]),
            ..Default::default()
        },
    )
}

/// MAGAN MNIST generator: `z [N, nz] → (128)7c1s-(64)4c2s-(1)4c2s` transposed convs, ReLU,
/// sigmoid output → `[N, 1, 28, 28]`.
pub fn magan_mnist_g(nz: usize) -> Result<Net, Error> {
    arch(
        "(128)7c1s-(64)4c2s-(1)4c2s",
        &ArchOptions {
            output: Act::Sigmoid,
            transpose: true,
            input: Some(vec![nz]),
            ..Default::default()
        },
    )
}

fn check_size(size: usize, allowed: &[usize], what: &str) -> candle_core::Result<()> {
    if !allowed.contains(&size) {
        return Err(candle_core::Error::Msg(format!(
            "{what}: image size {size} is not supported: expected one of {allowed:?}"
        )));
    }
    Ok(())
}

/// Options of the DCGAN builders: `width` is the narrowest hidden layer (D's first, G's last;
/// the others double from it), `bias` the convolutions' biases, `slope` D's leaky ReLU slope.
#[derive(Clone, Debug, PartialEq)]
pub struct DcganOptions {
    pub batch_norm: bool,
    pub width: Option<usize>,
    pub bias: bool,
    pub slope: f64,
}

impl Default for DcganOptions {
    fn default() -> Self {
        DcganOptions {
            batch_norm: true,
            width: None,
            bias: true,
            slope: 0.2,
        }
    }
}

impl DcganOptions {
    pub fn with_batch_norm(bn: bool) -> DcganOptions {
        DcganOptions {
            batch_norm: bn,
            ..Default::default()
        }
    }
}

/// The hidden widths from the narrowest: `stages` of them, doubling.
fn doubling(width: usize, stages: usize, what: &str) -> candle_core::Result<Vec<usize>> {
    if width == 0 {
        return Err(candle_core::Error::Msg(format!(
            "{what}: width must be >= 1"
        )));
    }
    (0..stages)
        .map(|i| {
            width.checked_mul(1 << i).ok_or_else(|| {
                candle_core::Error::Msg(format!("{what}: width {width} is too large"))
            })
        })
        .collect()
}

/// DCGAN generator for 28, 32 or 64 px: `z [N, nz] → [N, channels, size, size]`, tanh output.
/// 32 px: deconv(nz,512,4,1,0) [BN] ReLU, deconv(512,256,4,2,1) [BN] ReLU,
/// deconv(256,128,4,2,1) [BN] ReLU, deconv(128,ch,4,2,1) tanh. 64 px adds a 128→64 stage;
/// 28 px: deconv(nz,256,7,1,0), deconv(256,128,4,2,1), deconv(128,ch,4,2,1).
pub fn dcgan_g(size: usize, nz: usize, channels: usize, bn: bool) -> R {
    dcgan_g_with(size, nz, channels, &DcganOptions::with_batch_norm(bn))
}

/// [`dcgan_g`] with options (`width` default: 128 at 28 and 32 px, 64 at 64 px).
pub fn dcgan_g_with(size: usize, nz: usize, channels: usize, o: &DcganOptions) -> R {
    check_size(size, &[28, 32, 64], "dcgan_g")?;
    let (default_width, stages) = match size {
        28 => (128, 2),
        32 => (128, 3),
        _ => (64, 4),
    };
    let mut widths = doubling(o.width.unwrap_or(default_width), stages, "dcgan_g")?;
    widths.reverse();
    let mut l = vec![Net::reshape(vec![nz, 1, 1])];
    let k0 = if size == 28 { 7 } else { 4 };
    l.push(Net::conv_transpose2d(nz, widths[0], k0, 1, 0, 0, o.bias)?);
    bn_relu(&mut l, widths[0], o.batch_norm, Act::Relu)?;
    for w in widths.windows(2) {
        l.push(Net::conv_transpose2d(w[0], w[1], 4, 2, 1, 0, o.bias)?);
        bn_relu(&mut l, w[1], o.batch_norm, Act::Relu)?;
    }
    l.push(Net::conv_transpose2d(
        widths[widths.len() - 1],
        channels,
        4,
        2,
        1,
        0,
        o.bias,
    )?);
    l.push(Net::act(Act::Tanh));
    Ok(Net::sequential(l))
}

/// DCGAN discriminator for 28, 32 or 64 px: `[N, channels, size, size] → [N, 1]` logits.
/// 32 px: conv(ch,128,4,2,1) lrelu(0.2), conv(128,256,4,2,1) [BN] lrelu, conv(256,512,4,2,1)
/// [BN] lrelu, conv(512,1,4,1,0), flatten. 64 px: 64-128-256-512 then conv(512,1,4,1,0);
/// 28 px: conv(ch,64,4,2,1), conv(64,128,4,2,1) [BN], conv(128,1,7,1,0).
pub fn dcgan_d(size: usize, channels: usize, bn: bool) -> R {
    dcgan_d_with(size, channels, &DcganOptions::with_batch_norm(bn))
}

/// [`dcgan_d`] with options (`width` default: 64 at 28 and 64 px, 128 at 32 px).
pub fn dcgan_d_with(size: usize, channels: usize, o: &DcganOptions) -> R {
    check_size(size, &[28, 32, 64], "dcgan_d")?;
    let (default_width, stages) = match size {
        28 => (64, 2),
        32 => (128, 3),
        _ => (64, 4),
    };
    let widths = doubling(o.width.unwrap_or(default_width), stages, "dcgan_d")?;
    let lrelu = Act::LeakyRelu(o.slope);
    let mut l = vec![
        Net::conv2d(channels, widths[0], 4, 2, 1, o.bias)?,
        Net::act(lrelu),
    ];
    for w in widths.windows(2) {
        l.push(Net::conv2d(w[0], w[1], 4, 2, 1, o.bias)?);
        bn_relu(&mut l, w[1], o.batch_norm, lrelu)?;
    }
    let k_last = if size == 28 { 7 } else { 4 };
    l.push(Net::conv2d(
        widths[widths.len() - 1],
        1,
        k_last,
        1,
        0,
        o.bias,
    )?);
    l.push(Net::flatten());
    Ok(Net::sequential(l))
}

/// MAGAN-style convolutional auto-encoder for 32 or 64 px images (DCGAN-shaped): encoder
/// conv(ch,64,4,2,1) lrelu(0.2), then 4×4 stride-2 convs doubling the width with BN + lrelu down
/// to 4×4; decoder: mirrored transposed convs with BN + ReLU, tanh output (images in [−1, 1]);
/// `[N, ch, size, size] → [N, ch, size, size]`.
pub fn magan_conv_ae(size: usize, channels: usize) -> R {
    check_size(size, &[32, 64], "magan_conv_ae")?;
    let widths: &[usize] = if size == 32 {
        &[64, 128, 256]
    } else {
        &[64, 128, 256, 512]
    };
    let lrelu = Act::LeakyRelu(0.2);
    let mut l = vec![
        Net::conv2d(channels, widths[0], 4, 2, 1, true)?,
        Net::act(lrelu),
    ];
    for w in widths.windows(2) {
        l.push(Net::conv2d(w[0], w[1], 4, 2, 1, true)?);
        bn_relu(&mut l, w[1], true, lrelu)?;
    }
    for w in widths.windows(2).rev() {
        l.push(Net::conv_transpose2d(w[1], w[0], 4, 2, 1, 0, true)?);
        bn_relu(&mut l, w[0], true, Act::Relu)?;
    }
    l.push(Net::conv_transpose2d(
        widths[0], channels, 4, 2, 1, 0, true,
    )?);
    l.push(Net::act(Act::Tanh));
    Ok(Net::sequential(l))
}

/// The lens of Tempered Adversarial Networks (`Lens` of torch_reference.py):
/// `x + out(h)`, `h = relu(inp(x))` followed by `blocks` residual blocks
/// `h + conv(relu(conv(h)))`, all 3×3 convs with padding 1.
pub fn tempered_lens(channels: usize, width: usize, blocks: usize) -> R {
    let mut body = vec![
        Net::conv2d(channels, width, 3, 1, 1, true)?,
        Net::act(Act::Relu),
    ];
    for _ in 0..blocks {
        body.push(Net::residual(Net::sequential(vec![
            Net::conv2d(width, width, 3, 1, 1, true)?,
            Net::act(Act::Relu),
            Net::conv2d(width, width, 3, 1, 1, true)?,
        ])));
    }
    body.push(Net::conv2d(width, channels, 3, 1, 1, true)?);
    Ok(Net::residual(Net::sequential(body)))
}
