//! Help for what a PyTorch user writes first: `loss.backward()`, `opt.zero_grad()`, `no_grad`,
//! `G(z)`, a `fn` that reads a variable of the script. The diagnostics add these hints to the
//! error, and `ganscript doc NAME` shows them for a PyTorch name that is not a function here.

use crate::session::Sources;
use rhai::{Engine, Stmt, AST};
use std::collections::BTreeSet;

/// PyTorch names that are not ganscript functions, with what replaces them.
pub const PYTORCH: &[(&str, &str)] = &[
    (
        "backward",
        "ganscript has no `loss.backward()`: `opt.step(loss)` differentiates the loss and updates that optimizer's parameters in one call; `grad(y, x)` and `grads(y, [x, ...])` return gradients without updating anything",
    ),
    (
        "zero_grad",
        "there is no `opt.zero_grad()`: gradients never accumulate (each `opt.step(loss)` computes fresh ones), so drop the call",
    ),
    (
        "no_grad",
        "there is no `no_grad` block: gradients are computed only by `opt.step(loss)` and `grad`/`grads`, for that loss's graph. To cut a value out of the graph use `x.detach()` (e.g. `G.forward(z).detach()` in D's step); to apply D without gradients for its parameters use `D.forward_frozen(x)`",
    ),
    (
        "parameters",
        "a net's parameters are `net.params()` (by name: `net.named_params()`)",
    ),
    (
        "state_dict",
        "`net.named_params()` and `net.buffers()` read a net's tensors; `net.save(\"file\")` writes them, and `save_checkpoint(...)` a whole run",
    ),
    (
        "load_state_dict",
        "`net.load(\"file\")` reads a net's tensors; `net.copy_from(other)` copies another net's",
    ),
    (
        "cuda",
        "the device is chosen for the whole run with `--device cuda`; `t.to(\"cuda\")` moves one tensor",
    ),
    ("numpy", "`t.to_array()` gives the values as a (nested) array; `t.item()` one number"),
    ("tolist", "`t.to_array()` gives the values as a (nested) array"),
    ("size", "`t.shape` is the shape (an array)"),
    ("view", "`t.reshape([...])` reshapes"),
    ("manual_seed", "`seed(n)` re-seeds the random generator (or `--seed N`)"),
];

/// The replacement of a PyTorch name, if it is one.
pub fn pytorch(name: &str) -> Option<&'static str> {
    PYTORCH.iter().find(|(n, _)| *n == name).map(|(_, h)| *h)
}

/// A hint for a call that matched no function: `name` with the pretty argument types `args`
/// (e.g. `Optimizer`, or `Tensor, float`).
pub fn call_hint(name: &str, args: &str) -> Option<String> {
    if name == "step" && args.trim() == "Optimizer" {
        return Some(
            "`opt.step(loss)` takes the loss: it differentiates it and updates the optimizer's parameters (PyTorch's backward() and step() in one call)".into(),
        );
    }
    pytorch(name).map(str::to_string)
}

/// The help for an unknown variable that a PyTorch user would write (`torch`, `nn`, `F`).
pub fn variable_hint(name: &str) -> Option<String> {
    match name {
        "torch" | "nn" | "F" | "optim" => Some(format!(
            "ganscript is rhai, not Python: there is no `{name}` module; its functions are called directly (`randn([n, 2])`, `linear(2, 8)`, `adam(G, 2e-4)`): `ganscript doc --topics` lists them by topic"
        )),
        _ => None,
    }
}

/// Variables named in scripts: `(top, all)`, where `top` are those declared (`let`, `const`,
/// `for`) outside any function, and `all` adds the variables and parameters of functions.
pub fn declared_vars(ast: &AST) -> (BTreeSet<String>, BTreeSet<String>) {
    fn collect(ast: &AST, into: &mut BTreeSet<String>) {
        ast.walk(&mut |path| {
            if let Some(rhai::ASTNode::Stmt(stmt)) = path.last() {
                match stmt {
                    Stmt::Var(v, ..) => {
                        into.insert(v.0.name.to_string());
                    }
                    Stmt::For(f, ..) => {
                        into.insert(f.0.name.to_string());
                        if let Some(i) = &f.1 {
                            into.insert(i.name.to_string());
                        }
                    }
                    _ => {}
                }
            }
            true
        });
    }
    let mut top = BTreeSet::new();
    collect(&ast.clone_statements_only(), &mut top);
    let mut all = top.clone();
    collect(ast, &mut all);
    for f in ast.iter_functions() {
        all.extend(f.params.iter().map(|p| p.to_string()));
    }
    (top, all)
}

/// [`declared_vars`] over every source of a run or a REPL session (the main script, imported
/// modules, each REPL input); sources that do not parse are skipped.
pub fn declared_in(sources: &Sources) -> (BTreeSet<String>, BTreeSet<String>) {
    let engine = Engine::new_raw();
    let mut top = BTreeSet::new();
    let mut all = BTreeSet::new();
    for text in sources.texts() {
        if let Ok(ast) = engine.compile(&text) {
            let (t, a) = declared_vars(&ast);
            top.extend(t);
            all.extend(a);
        }
    }
    (top, all)
}

/// The arguments of the call at byte `offset` of `text` (`G(z, 1)` gives `z, 1`), if the text
/// there is a name followed by a balanced parenthesised list on one line.
pub fn call_args(text: &str, offset: usize) -> Option<String> {
    let rest = text.get(offset..)?;
    let open = rest.find('(')?;
    if !rest[..open]
        .chars()
        .all(|c| c.is_alphanumeric() || c == '_')
    {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in rest[open..].char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(rest[open + 1..open + i].to_string());
                }
            }
            '\n' => return None,
            _ => {}
        }
    }
    None
}

/// The help for `G(z)` where `G` is a variable (a net): rhai cannot call a value.
pub fn callable_hint(name: &str, args: Option<&str>) -> String {
    let args = args.unwrap_or("x");
    format!(
        "`{name}` is a variable, and rhai cannot call a variable like a function: apply a net with `{name}.forward({args})`, or with `{name}.forward_frozen({args})` for no gradients of its parameters (D in the generator's step); a closure in a variable is called with `{name}.call({args})`"
    )
}

/// The help for a function that reads a variable of the script.
pub fn closure_hint(var: &str, func: Option<&str>) -> String {
    let f = func.unwrap_or("f");
    format!(
        "`{var}` is a variable of the script, and a script function (`fn {f}(...)`) sees only its own parameters and variables: pass it in (`fn {f}(..., {var})` and `{f}(..., {var})`) or use a closure, which captures it: `let {f} = |x| ... {var} ...;` called as `{f}.call(x)`"
    )
}

/// The names among `candidates` closest to `name` (Jaro-Winkler similarity above `min`), best
/// first, at most 3: for "did you mean ...?".
pub fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    min: f64,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        .map(|n| (strsim::jaro_winkler(name, n), n))
        .filter(|(s, _)| *s > min)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, n)| n).collect()
}
