//! `ganscript doc`: the registered functions with their signatures and one-line docs, read from
//! the engine's own metadata so the list never goes stale, grouped by topic (`doc --topics`), and
//! the functions of the stdlib modules read from their source. The REPL completes from it too.
//!
//! A function's topic comes from the module that registered it: [`crate::reg!`] records the
//! module path next to the doc comment, and [`TOPIC_OF_MODULE`] maps a path segment to a topic.

use crate::diagnostics::pretty_sig;
use crate::errors::Error;
use rhai::Engine;
use serde::Deserialize;

/// The topics, in the order `doc` prints them, with what they hold.
pub const TOPICS: &[(&str, &str)] = &[
    (
        "tensors",
        "creating, reshaping, combining and reducing tensors; random numbers",
    ),
    (
        "autograd",
        "variables and gradients (grad, grads): what replaces backward()",
    ),
    (
        "nets",
        "layers, ready-made architectures, forward, parameters, init, EMA",
    ),
    (
        "optimizers",
        "sgd, adam, adamax, rmsprop: opt.step(loss), learning rates, state",
    ),
    ("losses", "GAN objectives, and MAGAN's margins and energies"),
    (
        "penalties",
        "gradient penalties (WGAN-GP, R1, R2, Roth's), instance noise",
    ),
    (
        "schedules",
        "schedules of learning rates, penalty weights and noise",
    ),
    (
        "data",
        "data sets (MNIST, image folders, mixtures), batches, sampling",
    ),
    (
        "metrics",
        "evaluation: MNIST score, feature distance, mode coverage, cross-test",
    ),
    (
        "runs",
        "settings, logging, sample grids, plots, progress, checkpoints and resume, pause",
    ),
    (
        "stdlib",
        "functions of the modules in stdlib/: `import \"train\" as tr;` then `tr::means(...)`",
    ),
];

/// The module-path segment (of the code that registered a function) that decides its topic.
pub const TOPIC_OF_MODULE: &[(&str, &str)] = &[
    ("tensor", "tensors"),
    ("rng", "tensors"),
    ("autograd", "autograd"),
    ("nn", "nets"),
    ("optim", "optimizers"),
    ("objectives", "losses"),
    ("magan", "losses"),
    ("penalties", "penalties"),
    ("schedules", "schedules"),
    ("data", "data"),
    ("metrics", "metrics"),
    ("run", "runs"),
    ("checkpoint", "runs"),
    ("session", "runs"),
    ("settings", "runs"),
];

pub use crate::MODULE_TAG;

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
            .filter(|c| !c.starts_with(MODULE_TAG))
            .map(|c| c.trim_start_matches("///").trim())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The module that registered the function (`ganscript::nn::register`), if recorded.
    pub fn module(&self) -> Option<&str> {
        self.doc_comments
            .iter()
            .find_map(|c| c.strip_prefix(MODULE_TAG))
    }

    /// The function's topic (one of [`TOPICS`]), from the module that registered it.
    pub fn topic(&self) -> &'static str {
        topic_of_module(self.module().unwrap_or(""))
    }
}

/// The topic of functions registered in module `path` (`ganscript::run::metrics` is `runs`):
/// the outermost segment that [`TOPIC_OF_MODULE`] names; "runs" if none does.
pub fn topic_of_module(path: &str) -> &'static str {
    path.split("::")
        .find_map(|seg| {
            TOPIC_OF_MODULE
                .iter()
                .find(|(m, _)| *m == seg)
                .map(|(_, t)| *t)
        })
        .unwrap_or("runs")
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

/// A function of a stdlib module, read from its source.
#[derive(Debug, Clone)]
pub struct StdlibFn {
    pub module: String,
    pub name: String,
    /// `name(a, b)` as written.
    pub signature: String,
    /// The comment lines right above the definition.
    pub doc: String,
}

/// The public functions of the stdlib modules ([`crate::session::STDLIB`]), in file order, with
/// the `//` or `///` comment block above each.
pub fn stdlib_functions() -> Vec<StdlibFn> {
    let mut out = Vec::new();
    for (module, text) in crate::session::STDLIB {
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(rest) = line.strip_prefix("fn ") else {
                continue;
            };
            let Some(close) = rest.find(')') else {
                continue;
            };
            let signature = rest[..=close].trim().to_string();
            let name = signature
                .split('(')
                .next()
                .unwrap_or_default()
                .trim()
                .to_string();
            let mut doc = Vec::new();
            for prev in lines[..i].iter().rev() {
                match prev.trim_start().strip_prefix("//") {
                    Some(c) => doc.push(c.trim_start_matches('/').trim()),
                    None => break,
                }
            }
            doc.reverse();
            out.push(StdlibFn {
                module: module.to_string(),
                name,
                signature,
                doc: doc.join(" "),
            });
        }
    }
    out
}

fn push_fn(out: &mut String, sig: &str, doc: &str) {
    out.push_str(sig);
    if !doc.is_empty() {
        out.push_str("\n    ");
        out.push_str(doc);
    }
    out.push('\n');
}

fn push_stdlib(out: &mut String, f: &StdlibFn) {
    let sig = format!("{}::{}    (import \"{}\")", f.module, f.signature, f.module);
    push_fn(out, &sig, &f.doc);
}

/// One topic's functions (`stdlib`: the modules' functions).
fn render_topic(out: &mut String, fns: &[FnDoc], topic: &str, about: &str) {
    out.push_str(&format!("## {topic}: {about}\n\n"));
    if topic == "stdlib" {
        for f in stdlib_functions() {
            push_stdlib(out, &f);
        }
    } else {
        for f in fns.iter().filter(|f| f.topic() == topic) {
            push_fn(out, &pretty_sig(&f.signature), &f.doc());
        }
    }
    out.push('\n');
}

/// `ganscript doc --topics`: each topic with its number of functions and what it holds.
pub fn render_topics(engine: &Engine) -> String {
    let fns = catalog(engine);
    let stdlib = stdlib_functions().len();
    let mut out = String::new();
    for (topic, about) in TOPICS {
        let n = if *topic == "stdlib" {
            stdlib
        } else {
            fns.iter().filter(|f| f.topic() == *topic).count()
        };
        out.push_str(&format!("{topic:<11} {n:>4}  {about}\n"));
    }
    out.push_str(
        "\n`ganscript doc TOPIC` lists a topic's functions, `ganscript doc NAME` one function.\n",
    );
    out
}

/// The text `ganscript doc [NAME]` prints: every function grouped by topic; with a topic's name,
/// that topic; with a function's name, its overloads (or the functions whose names contain
/// it); with a PyTorch name that has no function here, what replaces it.
pub fn render(engine: &Engine, name: Option<&str>) -> Result<String, Error> {
    let fns = catalog(engine);
    let mut out = String::new();
    let Some(n) = name else {
        for (topic, about) in TOPICS {
            render_topic(&mut out, &fns, topic, about);
        }
        return Ok(out);
    };
    if let Some((topic, about)) = TOPICS.iter().find(|(t, _)| *t == n) {
        render_topic(&mut out, &fns, topic, about);
        return Ok(out);
    }
    let stdlib = stdlib_functions();
    let exact: Vec<&FnDoc> = fns.iter().filter(|f| f.name == n).collect();
    let exact_std: Vec<&StdlibFn> = stdlib.iter().filter(|f| f.name == n).collect();
    let (selected, selected_std) = if exact.is_empty() && exact_std.is_empty() {
        (
            fns.iter().filter(|f| f.name.contains(n)).collect(),
            stdlib.iter().filter(|f| f.name.contains(n)).collect(),
        )
    } else {
        (exact, exact_std)
    };
    if let Some(hint) = crate::hints::pytorch(n) {
        if selected.is_empty() && selected_std.is_empty() {
            return Ok(format!("`{n}` is PyTorch's; in ganscript: {hint}.\n"));
        }
    }
    if selected.is_empty() && selected_std.is_empty() {
        return Err(Error::Msg(format!("no function named `{n}`")));
    }
    for f in selected {
        push_fn(&mut out, &pretty_sig(&f.signature), &f.doc());
    }
    for f in selected_std {
        push_stdlib(&mut out, f);
    }
    Ok(out)
}
