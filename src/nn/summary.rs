//! Describing a net: each layer's description and parameter count, the summary table.

use super::*;

impl Net {
    pub(super) fn describe(&self) -> String {
        match &self.0.layer {
            Layer::Linear { w, b } => {
                let d = w.as_tensor().dims();
                format!("linear({}, {}{})", d[1], d[0], no_bias(b))
            }
            Layer::Conv2d {
                w,
                b,
                stride,
                padding,
            } => {
                let d = w.as_tensor().dims();
                format!(
                    "conv2d({}, {}, k={}, s={stride}, p={padding}{})",
                    d[1],
                    d[0],
                    d[2],
                    no_bias(b)
                )
            }
            Layer::ConvTranspose2d {
                w,
                b,
                stride,
                padding,
                out_padding,
            } => {
                let d = w.as_tensor().dims();
                let op = if *out_padding > 0 {
                    format!(", op={out_padding}")
                } else {
                    String::new()
                };
                format!(
                    "conv_transpose2d({}, {}, k={}, s={stride}, p={padding}{op}{})",
                    d[0],
                    d[1],
                    d[2],
                    no_bias(b)
                )
            }
            Layer::BatchNorm { w, .. } => format!("batch_norm({})", w.as_tensor().dims()[0]),
            Layer::LayerNorm { w, .. } => format!("layer_norm({})", w.as_tensor().dims()[0]),
            Layer::Act(a) => a.describe(),
            Layer::Reshape(s) => format!("reshape({s:?})"),
            Layer::Flatten => "flatten".into(),
            Layer::Residual(_) => "residual (x + f(x))".into(),
            Layer::Sequential(items) => format!("sequential({} layers)", items.len()),
        }
    }

    pub(super) fn own_param_count(&self) -> usize {
        self.own_params()
            .iter()
            .map(|(_, v)| v.as_tensor().elem_count())
            .sum()
    }

    /// The layer as error messages name it: `layer NAME (description)`.
    pub(super) fn label(&self, name: &str) -> String {
        if name.is_empty() {
            self.describe()
        } else {
            format!("layer {name} ({})", self.describe())
        }
    }

    /// The rows of the summary table without shapes.
    pub fn rows(&self) -> Vec<SummaryRow> {
        let mut rows = Vec::new();
        self.visit("", &mut |prefix, node| {
            if matches!(node.0.layer, Layer::Sequential(_)) {
                return;
            }
            rows.push(SummaryRow {
                name: if prefix.is_empty() {
                    "-".into()
                } else {
                    prefix.to_string()
                },
                kind: node.describe(),
                shape: None,
                params: node.own_param_count(),
            });
        });
        rows
    }

    /// A text table: layer, output shape (when `rows` come from [`Net::trace`]) and parameters.
    pub fn summary_table(&self, rows: &[SummaryRow]) -> String {
        let with_shapes = rows.iter().any(|r| r.shape.is_some());
        let mut lines = Vec::new();
        let w0 = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(5);
        let w1 = rows.iter().map(|r| r.kind.len()).max().unwrap_or(0).max(4);
        let shape_of = |r: &SummaryRow| {
            r.shape
                .as_ref()
                .map(|s| format!("{s:?}"))
                .unwrap_or_default()
        };
        let w2 = rows
            .iter()
            .map(|r| shape_of(r).len())
            .max()
            .unwrap_or(0)
            .max(12);
        if with_shapes {
            lines.push(format!(
                "{:<w0$}  {:<w1$}  {:<w2$}  {:>10}",
                "layer", "type", "output shape", "params"
            ));
        } else {
            lines.push(format!(
                "{:<w0$}  {:<w1$}  {:>10}",
                "layer", "type", "params"
            ));
        }
        for r in rows {
            if with_shapes {
                lines.push(format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:>10}",
                    r.name,
                    r.kind,
                    shape_of(r),
                    r.params
                ));
            } else {
                lines.push(format!(
                    "{:<w0$}  {:<w1$}  {:>10}",
                    r.name, r.kind, r.params
                ));
            }
        }
        lines.push(format!("total parameters: {}", self.param_count()));
        lines.join("\n")
    }
}

/// One row of a summary table.
#[derive(Clone, Debug)]
pub struct SummaryRow {
    pub name: String,
    pub kind: String,
    pub shape: Option<Vec<usize>>,
    pub params: usize,
}

/// The dtype of a net's first parameter, or the default dtype.
pub fn net_dtype(net: &Net) -> DType {
    net.vars()
        .first()
        .map(|v| v.as_tensor().dtype())
        .unwrap_or_else(default_dtype)
}

pub(super) fn no_bias(b: &Option<Var>) -> &'static str {
    if b.is_none() {
        ", bias=false"
    } else {
        ""
    }
}
