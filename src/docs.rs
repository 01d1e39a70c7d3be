//! `ganscript doc`: the registered functions with their signatures and one-line docs, read from
//! the engine's own metadata so the list never goes stale. The REPL completes from it too.

use crate::diagnostics::pretty_sig;
use rhai::Engine;
use serde::Deserialize;

/// One registered function (one overload).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FnDoc {
    pub name: String,
    pub signature: String,
    #[serde(default)]
    pub doc_comments: Vec<String>,
}

impl FnDoc {
    /// The doc text without the `///` markers.
    pub fn doc(&self) -> String {
        self.doc_comments
            .iter()
            .map(|c| c.trim_start_matches("///").trim())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    functions: Vec<FnDoc>,
}

/// Every function the host registered (not rhai's standard library), sorted by name.
pub fn catalog(engine: &Engine) -> Vec<FnDoc> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let mut fns = serde_json::from_str::<Metadata>(&json)
        .map(|m| m.functions)
        .unwrap_or_default();
    fns.retain(|f| {
        !f.name.starts_with("get$") && !f.name.starts_with("set$") && !f.name.starts_with("index$")
    });
    fns.sort_by(|a, b| a.name.cmp(&b.name).then(a.signature.cmp(&b.signature)));
    fns
}

/// The text `ganscript doc [NAME]` prints. With a name, only that function's overloads (or the
/// functions whose names contain it).
pub fn render(engine: &Engine, name: Option<&str>) -> Result<String, String> {
    let fns = catalog(engine);
    let selected: Vec<&FnDoc> = match name {
        None => fns.iter().collect(),
        Some(n) => {
            let exact: Vec<&FnDoc> = fns.iter().filter(|f| f.name == n).collect();
            if exact.is_empty() {
                fns.iter().filter(|f| f.name.contains(n)).collect()
            } else {
                exact
            }
        }
    };
    if selected.is_empty() {
        return Err(format!("no function named `{}`", name.unwrap_or_default()));
    }
    let mut out = String::new();
    for f in selected {
        out.push_str(&pretty_sig(&f.signature));
        let doc = f.doc();
        if !doc.is_empty() {
            out.push_str("\n    ");
            out.push_str(&doc);
        }
        out.push('\n');
    }
    Ok(out)
}
