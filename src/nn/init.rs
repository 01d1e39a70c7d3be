//! Initialisation schemes: PyTorch's default, Xavier, Kaiming (He) and DCGAN's.

use super::*;
use crate::errors::Error;

impl Net {
    /// Re-initialises every parameter: `"default"` (PyTorch's), `"xavier"` (Glorot uniform,
    /// biases 0), `"kaiming"` (He normal, std √(2/fan_in), biases 0) or `"dcgan"` (N(0, 0.02)
    /// weights, batch-norm weights N(1, 0.02), biases 0). Normalisation layers get weight 1 and
    /// bias 0 except under `"dcgan"`.
    pub fn init(&self, scheme: &str) -> Result<(), Error> {
        self.init_with(scheme, None)
    }

    /// [`Net::init`] with a standard deviation, which the schemes "normal" (N(0, std²)) and
    /// "truncated_normal" (TensorFlow's: N(0, std²) redrawn beyond 2·std) need and the others
    /// refuse.
    pub fn init_with(&self, scheme: &str, std: Option<f64>) -> Result<(), Error> {
        let scheme = scheme.trim().to_ascii_lowercase();
        let with_std = ["normal", "truncated_normal"];
        if !["default", "xavier", "dcgan", "kaiming", "he"].contains(&scheme.as_str())
            && !with_std.contains(&scheme.as_str())
        {
            return Err(Error::Msg(format!(
                "init: unknown scheme \"{scheme}\": expected \"default\", \"xavier\", \"kaiming\", \
                 \"he\", \"dcgan\", \"normal\" or \"truncated_normal\""
            )));
        }
        let std = match (with_std.contains(&scheme.as_str()), std) {
            (true, Some(s)) if s.is_finite() && s >= 0.0 => s,
            (true, Some(s)) => return Err(Error::Msg(format!("init: std must be >= 0, got {s}"))),
            (true, None) => {
                return Err(Error::Msg(format!(
                    "init: \"{scheme}\" needs a standard deviation: init(net, \"{scheme}\", std)"
                )))
            }
            (false, Some(_)) => {
                return Err(Error::Msg(format!(
                    "init: \"{scheme}\" takes no standard deviation (only \"normal\" and \
                     \"truncated_normal\" do)"
                )))
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
        Ok(result?)
    }

    /// The layers of every `sequential` whose output reaches a ReLU, possibly through a
    /// normalisation (prettytensor's `he_init` looks at the layer's activation, applied after its
    /// batch norm).
    pub(super) fn collect_before_relu(&self, out: &mut std::collections::HashSet<*const Node>) {
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
    pub(super) fn init_own(&self, scheme: &str, relu: bool, std: f64) -> candle_core::Result<()> {
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
}
