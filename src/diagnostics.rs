//! Script errors as miette diagnostics: file name, line and column, the source line with a
//! caret, a plain message, and help (the nearest registered names for an unknown function, the
//! overloads for wrong argument types). Errors inside functions of other files (stdlib modules)
//! point into those files, with the call chain as related diagnostics.

use crate::session::Sources;
use miette::{
    Diagnostic, GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceCode,
    SourceSpan,
};
use rhai::{EvalAltResult, ParseError, Position};
use std::fmt;

/// One located message, possibly with a chain of related ones (the call sites).
#[derive(Debug)]
pub struct ScriptDiagnostic {
    pub message: String,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub label: String,
    pub help: Option<String>,
    src: Option<NamedSource<String>>,
    span: Option<SourceSpan>,
    pub related: Vec<ScriptDiagnostic>,
    /// Set when the script did not fail but was stopped (Ctrl-C, `:quit`).
    pub stopped: Option<crate::errors::Stopped>,
}

impl fmt::Display for ScriptDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ScriptDiagnostic {}

impl Diagnostic for ScriptDiagnostic {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.src.as_ref().map(|s| s as &dyn SourceCode)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            Some(self.label.clone()),
            span,
        ))))
    }
    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }
    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
        }
    }
}

impl ScriptDiagnostic {
    /// A diagnostic without a location (bad command-line input, missing files, ...).
    pub fn plain(message: impl std::fmt::Display) -> Self {
        ScriptDiagnostic {
            message: message.to_string(),
            file: None,
            line: None,
            column: None,
            label: String::new(),
            help: None,
            src: None,
            span: None,
            related: Vec::new(),
            stopped: None,
        }
    }

    fn located(
        message: String,
        label: &str,
        file: &str,
        text: Option<String>,
        pos: Position,
    ) -> Self {
        let mut d = ScriptDiagnostic::plain(message);
        d.label = label.to_string();
        d.file = Some(file.to_string());
        d.line = pos.line();
        d.column = pos.position();
        if let (Some(text), Some(line)) = (text, pos.line()) {
            let offset = offset_of(&text, line, pos.position().unwrap_or(1));
            let len = token_len(&text, offset);
            d.span = Some(SourceSpan::new(offset.into(), len));
            d.src = Some(NamedSource::new(file, text));
        }
        d
    }

    /// `file:line:col: message` — one line, for logs and tests.
    pub fn short(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), Some(l)) => format!("{f}:{l}:{}: {}", self.column.unwrap_or(1), self.message),
            (Some(f), None) => format!("{f}: {}", self.message),
            _ => self.message.clone(),
        }
    }

    /// The full report as text, without colours (for tests and non-terminal output).
    pub fn render_plain(&self) -> String {
        let mut out = String::new();
        let handler =
            GraphicalReportHandler::new_themed(GraphicalTheme::unicode_nocolor()).with_width(100);
        if handler.render_report(&mut out, self).is_err() {
            return self.short();
        }
        out
    }

    /// The full report, coloured when stderr is a terminal.
    pub fn render(&self) -> String {
        use std::io::IsTerminal;
        if !std::io::stderr().is_terminal() {
            return self.render_plain();
        }
        let mut out = String::new();
        let handler = GraphicalReportHandler::new_themed(GraphicalTheme::unicode()).with_width(100);
        if handler.render_report(&mut out, self).is_err() {
            return self.short();
        }
        out
    }
}

/// Byte offset of (1-based) line and column (in characters).
fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            let col_bytes: usize = l
                .chars()
                .take(column.saturating_sub(1))
                .map(char::len_utf8)
                .sum();
            return (offset + col_bytes).min(text.len());
        }
        offset += l.len();
    }
    text.len()
}

/// Length of the identifier or number starting at `offset` (at least one character).
fn token_len(text: &str, offset: usize) -> usize {
    let rest = &text[offset..];
    let n: usize = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '.')
        .map(char::len_utf8)
        .sum();
    if n > 0 {
        n
    } else {
        rest.chars().next().map(char::len_utf8).unwrap_or(0)
    }
}

/// What the engine knows about registered functions, for suggestions.
pub trait FunctionCatalog {
    /// Every registered signature, e.g. `sum(_: Tensor, _: ?) -> Tensor`.
    fn signatures(&self) -> Vec<String>;
}

impl FunctionCatalog for rhai::Engine {
    fn signatures(&self) -> Vec<String> {
        self.gen_fn_signatures(false)
    }
}

fn fn_name_of(sig: &str) -> &str {
    sig.split(['(', ' ']).next().unwrap_or(sig).trim()
}

/// Help for an unknown function: its overloads if the name exists, else the nearest names.
fn function_help(
    missing: &str,
    catalog: &dyn FunctionCatalog,
    script_fns: &[String],
) -> Option<String> {
    let name = fn_name_of(missing);
    let sigs = catalog.signatures();
    let overloads: Vec<&String> = sigs.iter().filter(|s| fn_name_of(s) == name).collect();
    if !overloads.is_empty() {
        let list: Vec<String> = overloads.iter().take(12).map(|s| pretty_sig(s)).collect();
        return Some(format!(
            "`{name}` exists, but not for these argument types. It takes:\n  {}",
            list.join("\n  ")
        ));
    }
    let mut names: Vec<String> = sigs.iter().map(|s| fn_name_of(s).to_string()).collect();
    names.extend(script_fns.iter().cloned());
    names.sort();
    names.dedup();
    let callable = names.iter().map(String::as_str).filter(|n| {
        n.chars()
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_')
    });
    let best: Vec<String> = crate::hints::nearest(name, callable, 0.8)
        .into_iter()
        .map(|n| format!("`{n}`"))
        .collect();
    if best.is_empty() {
        return Some("`ganscript doc` lists every function".to_string());
    }
    Some(format!("did you mean {}?", best.join(", ")))
}

/// Signatures as rhai prints them, made readable: `Result<T, Box<EvalAltResult>>` becomes `T`,
/// module paths are dropped, `?`/`Dynamic` read `any`.
pub fn pretty_sig(sig: &str) -> String {
    let mut s = sig.replace("_: ", "");
    // Unwrap `Result<T, E>` (at any depth) to `T`.
    while let Some(start) = s.find("core::result::Result<") {
        let inner_start = start + "core::result::Result<".len();
        let mut depth = 0usize;
        let mut comma = None;
        let mut end = None;
        for (i, ch) in s[inner_start..].char_indices() {
            match ch {
                '<' => depth += 1,
                '>' if depth == 0 => {
                    end = Some(inner_start + i);
                    break;
                }
                '>' => depth -= 1,
                ',' if depth == 0 && comma.is_none() => comma = Some(inner_start + i),
                _ => {}
            }
        }
        let (Some(comma), Some(end)) = (comma, end) else {
            break;
        };
        s = format!("{}{}{}", &s[..start], &s[inner_start..comma], &s[end + 1..]);
    }
    // Drop module paths (`ganscript::tensor::Tensor` -> `Tensor`).
    let mut out = String::with_capacity(s.len());
    let mut word = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            word.clear();
        } else {
            out.push_str(&word);
            word.clear();
            out.push(c);
        }
    }
    out.push_str(&word);
    let out = replace_generic(&out, "BTreeMap", "map");
    let out = replace_generic(&out, "HashMap", "map");
    let out = replace_generic(&out, "Vec", "array");
    let out = replace_word(&out, "String", "string");
    let out = replace_word(&out, "Map", "map");
    let out = replace_word(&out, "Array", "array");
    let out = replace_word(&out, "FnPtr", "Fn");
    out.replace("Dynamic", "any")
        .replace("(?", "(any")
        .replace(", ?", ", any")
        .replace("&mut ", "")
        .replace("&str", "string")
        .replace("ImmutableString", "string")
        .replace("i64", "int")
        .replace("f64", "float")
}

/// `Name<...>` (balanced brackets, anywhere in `s`) replaced by `with`: Rust's generic types
/// read as script types (`BTreeMap<SmartString<LazyCompact>, any>` is a `map`).
fn replace_generic(s: &str, name: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let pat = format!("{name}<");
    while let Some(i) = rest.find(&pat) {
        let boundary = rest[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let start = i + pat.len();
        let mut depth = 1usize;
        let mut end = None;
        for (j, c) in rest[start..].char_indices() {
            match c {
                '<' => depth += 1,
                '>' => {
                    depth -= 1;
                    if depth == 0 {
                        end = Some(start + j + 1);
                        break;
                    }
                }
                _ => {}
            }
        }
        match (boundary, end) {
            (true, Some(end)) => {
                out.push_str(&rest[..i]);
                out.push_str(with);
                rest = &rest[end..];
            }
            _ => {
                out.push_str(&rest[..start]);
                rest = &rest[start..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The whole word `word` replaced by `with`.
fn replace_word(s: &str, word: &str, with: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut w = String::new();
    let flush = |w: &mut String, out: &mut String| {
        out.push_str(if w == word { with } else { w.as_str() });
        w.clear();
    };
    for c in s.chars() {
        if c.is_alphanumeric() || c == '_' {
            w.push(c);
        } else {
            flush(&mut w, &mut out);
            out.push(c);
        }
    }
    flush(&mut w, &mut out);
    out
}

/// Converts a parse error in `file`.
pub fn from_parse_error(err: &ParseError, file: &str, text: &str) -> ScriptDiagnostic {
    let pos = err.position();
    let msg = err.err_type().to_string();
    ScriptDiagnostic::located(
        format!("syntax error: {msg}"),
        "here",
        file,
        Some(text.to_string()),
        pos,
    )
}

/// Converts an evaluation error raised while running `file`.
pub fn from_eval_error(
    err: &EvalAltResult,
    file: &str,
    sources: &Sources,
    catalog: &dyn FunctionCatalog,
    script_fns: &[String],
) -> ScriptDiagnostic {
    let mut chain = Vec::new();
    let (leaf, leaf_file) = innermost(err, file, &mut chain);
    let pos = leaf.position();
    let (mut message, label, mut help) = describe_leaf(leaf, catalog, script_fns);
    // The function the error happened in (the innermost call).
    let in_fn = chain.last().and_then(|(what, ..)| {
        what.strip_prefix("in call to `")
            .and_then(|s| s.strip_suffix('`'))
            .map(str::to_string)
    });
    if let Some((m, h)) = pytorch_help(
        leaf,
        sources,
        sources.get(&leaf_file).as_deref(),
        in_fn.as_deref(),
        catalog,
        script_fns,
    ) {
        if let Some(m) = m {
            message = m;
        }
        help = Some(h);
    }
    let mut d =
        ScriptDiagnostic::located(message, &label, &leaf_file, sources.get(&leaf_file), pos);
    d.help = help;
    d.stopped = crate::errors::Stopped::of(err);
    if let Some(s) = d.stopped {
        d.message = s.message().to_string();
    }
    // The call chain, innermost call first.
    for (what, f, p) in chain.into_iter().rev() {
        d.related.push(ScriptDiagnostic::located(
            what,
            "called here",
            &f,
            sources.get(&f),
            p,
        ));
    }
    d
}

/// Help for what a PyTorch user writes (see [`crate::hints`]): `loss.backward()`, `G(z)` on a
/// net held in a variable, a `fn` reading a variable of the script. Returns a replacement
/// message (if any) and the help.
fn pytorch_help(
    leaf: &EvalAltResult,
    sources: &Sources,
    text: Option<&str>,
    in_fn: Option<&str>,
    catalog: &dyn FunctionCatalog,
    script_fns: &[String],
) -> Option<(Option<String>, String)> {
    use crate::hints;
    match leaf {
        EvalAltResult::ErrorFunctionNotFound(sig, pos) => {
            let pretty = pretty_sig(sig);
            let name = fn_name_of(&pretty).to_string();
            let args = pretty
                .split_once('(')
                .and_then(|(_, a)| a.rsplit_once(')'))
                .map_or("", |(a, _)| a);
            if let Some(h) = hints::call_hint(&name, args) {
                return Some((None, h));
            }
            let known = script_fns.contains(&name)
                || catalog.signatures().iter().any(|s| fn_name_of(s) == name);
            if known || !hints::declared_in(sources).1.contains(&name) {
                return None;
            }
            let call = match (text, pos.line()) {
                (Some(t), Some(l)) => {
                    hints::call_args(t, offset_of(t, l, pos.position().unwrap_or(1)))
                }
                _ => None,
            };
            Some((
                Some(format!(
                    "`{name}` is a variable, not a function: it cannot be called as `{name}(...)`"
                )),
                hints::callable_hint(&name, call.as_deref()),
            ))
        }
        EvalAltResult::ErrorVariableNotFound(name, _) => {
            if let Some(h) = hints::variable_hint(name) {
                return Some((None, h));
            }
            let f = in_fn.filter(|f| !f.starts_with("anon$"))?;
            if !hints::declared_in(sources).0.contains(name.as_str()) {
                return None;
            }
            Some((
                Some(format!(
                    "unknown variable `{name}` in function `{f}`: functions do not see the script's variables"
                )),
                hints::closure_hint(name, Some(f)),
            ))
        }
        _ => None,
    }
}

/// Follows function-call and module wrappers to the error itself, recording call sites.
fn innermost<'a>(
    err: &'a EvalAltResult,
    file: &str,
    chain: &mut Vec<(String, String, Position)>,
) -> (&'a EvalAltResult, String) {
    match err {
        EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
            chain.push((format!("in call to `{name}`"), file.to_string(), *pos));
            let next = if src.is_empty() {
                file.to_string()
            } else {
                src.clone()
            };
            innermost(inner, &next, chain)
        }
        EvalAltResult::ErrorInModule(path, inner, pos) => {
            chain.push((
                format!("while loading module `{path}`"),
                file.to_string(),
                *pos,
            ));
            innermost(inner, path, chain)
        }
        other => (other, file.to_string()),
    }
}

fn describe_leaf(
    err: &EvalAltResult,
    catalog: &dyn FunctionCatalog,
    script_fns: &[String],
) -> (String, String, Option<String>) {
    match err {
        EvalAltResult::ErrorRuntime(d, _) => (d.to_string(), "error raised here".into(), None),
        EvalAltResult::ErrorFunctionNotFound(sig, _) => (
            format!("unknown function: {}", pretty_sig(sig)),
            "no such function".into(),
            function_help(sig, catalog, script_fns),
        ),
        EvalAltResult::ErrorParsing(t, _) => (format!("syntax error: {t}"), "here".into(), None),
        EvalAltResult::ErrorTerminated(d, _) => (d.to_string(), "stopped here".into(), None),
        EvalAltResult::ErrorTooManyOperations(_) => (
            "the script ran past its operation budget".into(),
            "stopped here".into(),
            Some("raise it with --max-ops N (0: unlimited)".into()),
        ),
        EvalAltResult::ErrorVariableNotFound(name, _) => (
            format!("unknown variable `{name}`"),
            "not defined".into(),
            None,
        ),
        other => {
            let text = other.to_string();
            let text = match text.rfind(" (line ") {
                Some(i) if text.ends_with(')') => text[..i].to_string(),
                _ => text,
            };
            (text, "here".into(), None)
        }
    }
}
