//! The forward pass: layer by layer, with a linear or convolution fused with its bias and
//! activation, the residual input added inside the convolution, and batch norm in training or
//! eval mode.

use super::*;

impl Net {
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

    /// The slope of the leaky ReLU (0: ReLU) that `next` applies after this layer, where the
    /// two can run as one op: this is a linear layer or (transposed) convolution with a bias,
    /// the slope in [0, 1].
    pub(super) fn fused_slope(&self, next: Option<&Net>) -> Option<f64> {
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
    pub(super) fn forward_with_act(
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
    pub(super) fn forward_affine(
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
    pub(super) fn forward_items(
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
    pub(super) fn forward_body(
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
    pub(super) fn forward_conv_skip(
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

    pub(super) fn forward_impl(
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
}

/// A parameter as it enters the graph: the variable, or (frozen) a detached view of it.
pub(super) fn entering(v: &Var, frozen: bool) -> CT {
    if frozen {
        v.as_tensor().detach()
    } else {
        v.as_tensor().clone()
    }
}

/// A layer's input must be [N, channels] (rank 2, a linear layer) or [N, channels, H, W]
/// (rank 4, a convolution).
pub(super) fn check_input(
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
