//! A net's output and its input gradient `∇ₓ Σ net(x)` in one pass, for gradient penalties,
//! without candle's generic backward pass.
//!
//! The forward pass records each layer's input and output (a tape); the input gradient is
//! then built layer by layer in reverse from the ops' own input-gradient ops (the product's,
//! the convolutions' adjoints, batch norm's `bn_grad`, the activations' masks), all
//! differentiable, so that the penalty on it still differentiates (second order) into the
//! net's parameters. The values and the graph are those of candle's backward pass with the
//! graph kept (`grad(net(v).sum(), v)`), less what that pass spends on bookkeeping: it starts
//! every node's gradient from a zeroed tensor and adds into it (a full-size allocation,
//! fill and add per node), and, with the graph kept, each of those adds is itself a node
//! that the second-order pass zero-fills and adds for twice more. Parameter gradients are
//! not computed (only the input's is wanted).
//!
//! Nets with a layer that has no input-gradient rule here (layer norm), and tensors off the
//! CPU kernels, take candle's backward pass instead.

use super::{Act, Layer, Net, BN_EPS};
use crate::kernels::batch_norm::BnSaved;
use crate::kernels::conv::{conv2d_input_grad, conv_transpose2d_input_grad};
use crate::kernels::fast_path;
use crate::kernels::fused::{channel_mul, leaky_relu_grad};
use crate::kernels::matmul::mm;
use candle_core::{Result, Tensor as CT};

/// One entry of the tape a forward pass records.
pub(super) enum Saved {
    /// A layer other than a residual block, with its input and output.
    Layer {
        net: Net,
        x: CT,
        y: CT,
        /// A training-mode batch norm's statistics.
        bn: Option<BnSaved>,
    },
    /// A linear layer or convolution and the leaky ReLU after it, run as one op: the layer,
    /// its input and the activation's output.
    LayerAct { net: Net, x: CT, y: CT, slope: f64 },
    /// A residual block's body starts (its input is also added to its output).
    ResidualStart,
    /// A residual block's body ends.
    ResidualEnd,
}

impl Net {
    /// Whether every layer has an input-gradient rule in [`Net::layer_input_grad`].
    fn has_input_grad_rules(&self) -> bool {
        match &self.0.layer {
            Layer::LayerNorm { .. } => false,
            Layer::Sequential(items) => items.iter().all(Net::has_input_grad_rules),
            Layer::Residual(body) => body.has_input_grad_rules(),
            _ => true,
        }
    }

    /// `(net(x), ∇ₓ Σ net(x))` for a leaf variable `x`, as `grad(net.forward(x).sum(), x)`
    /// computes it (train or eval mode as set; batch-norm statistics update as in
    /// [`Net::forward`]), both differentiable in the net's parameters. See the module's
    /// documentation.
    pub fn forward_with_input_grad(&self, x: &CT) -> Result<(CT, CT)> {
        crate::tensor::ensure_float("forward_with_grad", x)?;
        let vars = self.vars();
        let mut all = vec![x];
        all.extend(vars.iter().map(|v| v.as_tensor()));
        if !self.has_input_grad_rules() || !fast_path(&all) {
            let y = self.forward(x)?;
            let g =
                crate::autograd::grad(&y, x).map_err(|e| candle_core::Error::Msg(e.to_string()))?;
            return Ok((y, g));
        }
        let mut tape = Some(Vec::new());
        let y = self.forward_impl(x, None, false, "", &mut None, &mut tape)?;
        let mut g = y.ones_like()?;
        let mut skips = Vec::new();
        for saved in tape.unwrap_or_default().iter().rev() {
            match saved {
                Saved::ResidualEnd => skips.push(g.clone()),
                Saved::ResidualStart => {
                    let Some(skip) = skips.pop() else {
                        candle_core::bail!("forward_with_input_grad: unbalanced residual blocks");
                    };
                    g = (g + skip)?;
                }
                Saved::Layer { net, x, y, bn } => {
                    g = net.layer_input_grad(x, y, &g, bn.as_ref())?
                }
                Saved::LayerAct { net, x, y, slope } => {
                    let pre = leaky_relu_grad(y, &g, *slope)?;
                    g = net.layer_input_grad(x, y, &pre, None)?
                }
            }
        }
        Ok((y, g))
    }

    /// `∂⟨gy, layer(x)⟩/∂x` for this (non-container) layer, which mapped `x` to `y`.
    fn layer_input_grad(&self, x: &CT, y: &CT, gy: &CT, bn: Option<&BnSaved>) -> Result<CT> {
        let w = |v: &candle_core::Var| v.as_tensor().clone();
        match &self.0.layer {
            Layer::Linear { w: wt, .. } => mm(gy, false, &w(wt), false),
            Layer::Conv2d {
                w: wt,
                stride,
                padding,
                ..
            } => conv2d_input_grad(x.dims(), &w(wt), gy, *stride, *padding),
            Layer::ConvTranspose2d {
                w: wt,
                stride,
                padding,
                out_padding,
                ..
            } => conv_transpose2d_input_grad(x.dims(), &w(wt), gy, *stride, *padding, *out_padding),
            Layer::BatchNorm { w: wt, var, .. } => match (bn, self.0.training.get()) {
                (Some(saved), _) => saved.input_grad(gy, x, &w(wt)),
                // Eval mode: x·s + (b − mean·s) with s = w / √(var + ε).
                (None, false) => {
                    let scale = (w(wt) / (var.borrow().clone() + BN_EPS)?.sqrt()?)?;
                    channel_mul(gy, &scale)
                }
                (None, true) => candle_core::bail!(
                    "forward_with_input_grad: a training-mode batch norm without its statistics"
                ),
            },
            Layer::Act(a) => match a {
                Act::Relu => leaky_relu_grad(x, gy, 0.0),
                Act::LeakyRelu(s) => leaky_relu_grad(x, gy, *s),
                Act::Tanh => gy * y.sqr()?.affine(-1.0, 1.0)?,
                Act::Sigmoid => gy * (y * y.affine(-1.0, 1.0)?)?,
                Act::Identity => Ok(gy.clone()),
            },
            Layer::Reshape(_) | Layer::Flatten => gy.reshape(x.shape()),
            Layer::LayerNorm { .. } | Layer::Residual(_) | Layer::Sequential(_) => {
                candle_core::bail!("forward_with_input_grad: no input-gradient rule for this layer")
            }
        }
    }
}

/// A net as the penalties' discriminator: its input gradient by [`Net::forward_with_input_grad`].
impl crate::gan::penalties::Critic for Net {
    fn logits(&mut self, x: &CT) -> crate::errors::ScriptResult<CT> {
        crate::errors::OrScriptErr::or_script(self.forward(x))
    }
    fn logits_and_input_grad(&mut self, x: &CT) -> crate::errors::ScriptResult<(CT, CT)> {
        crate::errors::OrScriptErr::or_script(self.forward_with_input_grad(x))
    }
}
