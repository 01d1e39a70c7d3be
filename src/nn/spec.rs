//! A network's architecture as JSON (layer kinds and sizes, no values), so a checkpoint can
//! rebuild its nets without the script that made them (`ganscript eval`).

use super::{Act, Layer, Net};
use crate::errors::Error;
use serde_json::{json, Value};

fn act_spec(a: &Act) -> Value {
    match a {
        Act::Relu => json!("relu"),
        Act::LeakyRelu(s) => json!({ "leaky_relu": s }),
        Act::Tanh => json!("tanh"),
        Act::Sigmoid => json!("sigmoid"),
        Act::Identity => json!("identity"),
    }
}

impl Net {
    /// The architecture: kinds, sizes, strides, activations.
    pub fn spec(&self) -> Value {
        match self.layer() {
            Layer::Linear { w, b } => {
                let d = w.as_tensor().dims();
                json!({ "linear": { "in": d[1], "out": d[0], "bias": b.is_some() } })
            }
            Layer::Conv2d {
                w,
                b,
                stride,
                padding,
            } => {
                let d = w.as_tensor().dims();
                json!({ "conv2d": { "in": d[1], "out": d[0], "k": d[2], "stride": stride,
                                    "padding": padding, "bias": b.is_some() } })
            }
            Layer::ConvTranspose2d {
                w,
                b,
                stride,
                padding,
                out_padding,
            } => {
                let d = w.as_tensor().dims();
                json!({ "conv_transpose2d": { "in": d[0], "out": d[1], "k": d[2], "stride": stride,
                        "padding": padding, "out_padding": out_padding, "bias": b.is_some() } })
            }
            Layer::BatchNorm { w, .. } => json!({ "batch_norm": w.as_tensor().dims()[0] }),
            Layer::LayerNorm { w, .. } => json!({ "layer_norm": w.as_tensor().dims()[0] }),
            Layer::Act(a) => json!({ "act": act_spec(a) }),
            Layer::Reshape(shape) => json!({ "reshape": shape }),
            Layer::Flatten => json!("flatten"),
            Layer::Residual(body) => json!({ "residual": body.spec() }),
            Layer::Sequential(items) => {
                json!({ "sequential": items.iter().map(Net::spec).collect::<Vec<_>>() })
            }
        }
    }

    /// A net with the architecture `spec` (fresh parameters: load values with `load_named`).
    pub fn from_spec(spec: &Value) -> Result<Net, Error> {
        let bad = || format!("unreadable network spec {spec}");
        let u = |v: &Value, k: &str| -> Result<usize, Error> {
            Ok(v.get(k)
                .and_then(Value::as_u64)
                .map(|x| x as usize)
                .ok_or_else(bad)?)
        };
        let b = |v: &Value| v.get("bias").and_then(Value::as_bool).unwrap_or(true);
        let e = |r: candle_core::Result<Net>| r.map_err(Error::from);
        if spec.as_str() == Some("flatten") {
            return Ok(Net::flatten());
        }
        let obj = spec.as_object().ok_or_else(bad)?;
        let (kind, v) = obj.iter().next().ok_or_else(bad)?;
        match kind.as_str() {
            "linear" => e(Net::linear(u(v, "in")?, u(v, "out")?, b(v))),
            "conv2d" => e(Net::conv2d(
                u(v, "in")?,
                u(v, "out")?,
                u(v, "k")?,
                u(v, "stride")?,
                u(v, "padding")?,
                b(v),
            )),
            "conv_transpose2d" => e(Net::conv_transpose2d(
                u(v, "in")?,
                u(v, "out")?,
                u(v, "k")?,
                u(v, "stride")?,
                u(v, "padding")?,
                u(v, "out_padding")?,
                b(v),
            )),
            "batch_norm" => e(Net::batch_norm(v.as_u64().ok_or_else(bad)? as usize)),
            "layer_norm" => e(Net::layer_norm(v.as_u64().ok_or_else(bad)? as usize)),
            "act" => {
                let a = match v {
                    Value::String(s) => Act::parse(s, 0.0)?,
                    Value::Object(m) => Act::LeakyRelu(
                        m.get("leaky_relu")
                            .and_then(Value::as_f64)
                            .ok_or_else(bad)?,
                    ),
                    _ => return Err(Error::Msg(bad())),
                };
                Ok(Net::act(a))
            }
            "reshape" => {
                let shape = v
                    .as_array()
                    .ok_or_else(bad)?
                    .iter()
                    .map(|d| d.as_u64().map(|x| x as usize).ok_or_else(bad))
                    .collect::<Result<Vec<_>, _>>()?;
                crate::limits::numel(&shape, "reshape").map_err(|e| crate::errors::message(&e))?;
                Ok(Net::reshape(shape))
            }
            "residual" => {
                let body = vec![Net::from_spec(v)?];
                Net::check_nesting("residual", &body)?;
                Ok(Net::residual(body.into_iter().next().ok_or_else(bad)?))
            }
            "sequential" => {
                let items = v
                    .as_array()
                    .ok_or_else(bad)?
                    .iter()
                    .map(Net::from_spec)
                    .collect::<Result<Vec<_>, _>>()?;
                Net::check_nesting("sequential", &items)?;
                Ok(Net::sequential(items))
            }
            _ => Err(Error::Msg(bad())),
        }
    }
}
