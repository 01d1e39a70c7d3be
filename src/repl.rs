//! The interactive prompt: `ganscript repl [FILE]`, and the prompt a live run opens when it is
//! paused (`ganscript run FILE --interactive`, then Ctrl-C or a `pause()` call in the script).
//!
//! # The REPL
//! Each input is compiled, its function definitions (and `import` statements) are merged into a
//! session [`AST`] that every later input is evaluated with, and variables live in one
//! persistent [`Scope`]: state carries from line to line. An unbalanced `{`, `(` or `[` (or an
//! unterminated back-tick string or block comment) continues the input on the next line, and so
//! does an input that parses up to its end and lacks the rest (`let b =`, `x +`, `if c`) until
//! an empty line submits it. Values print as they are (strings unquoted). The
//! core ([`Session::handle_line`], [`Repl`]) takes one physical line and returns what it printed,
//! so it is driven the same way by rustyline, by piped stdin and by tests.
//!
//! # Pausing a live run
//! With `--interactive`, a rhai debugger (feature `debugging`) is registered with break-points on
//! the *step boundaries*: calls to the functions named in [`STEP_BOUNDARIES`]. `pause()` always
//! opens the prompt; the others open it only when a pause was requested (Ctrl-C), and only at the
//! script's top level (not inside a function, whose scope holds only its locals). The prompt
//! evaluates against the run's live scope, so the script's variables (nets, optimizers,
//! schedules, `config`, hyper-parameters) can be read and assigned; `:continue` resumes the run
//! with the changes, `:save` writes a checkpoint of the live state and `:quit` writes one and stops
//! the run (see [`checkpoint::save_live`]). Without the flag no
//! debugger is registered and a plain run pays nothing for this.
//!
//! ## Hot-swappable pieces
//! rhai functions (`fn penalty(x) {...}`) are resolved through the script's own function
//! library, which a paused prompt cannot replace reliably (calls are cached). The pattern for a
//! piece meant to be swapped during a run is a closure held in a variable, called through it:
//!
//! ```text
//! let penalty = |x| x.square().mean();        // in the script
//! for step in 0..n { ...; let p = penalty.call(x); ...; step_boundary(); }
//! ```
//!
//! and at the paused prompt: `penalty = |x| 10.0 * x.abs().mean();` (or `:load tweak.rhai`
//! holding that line), then `:continue`. Closures and functions defined at the prompt keep
//! working after `:continue`: the prompt's function library is appended to the run's (so a
//! closure that calls a helper `fn` defined in the same input still finds it). Limits (rhai's
//! scoping): a pause inside a script function sees that function's variables only; variables
//! *created* at the prompt vanish when the block the run is paused in ends (assigning existing
//! variables is what persists).

use crate::diagnostics::{from_eval_error, from_parse_error, ScriptDiagnostic};
use crate::engine::{EngineOptions, Sources, INTERRUPTED};
use crate::script::catch_panics;
use crate::{checkpoint, docs, tensor};
use rhai::debugger::{BreakPoint, DebuggerCommand, DebuggerEvent};
use rhai::{Dynamic, Engine, EvalAltResult, Scope, Stmt, AST};
use std::cell::{Cell, RefCell};
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Functions whose calls are step boundaries: a requested pause (Ctrl-C with `--interactive`)
/// opens the prompt just before one of them runs. `pause` opens it unconditionally. Add names
/// here to declare more boundaries.
pub const STEP_BOUNDARIES: &[&str] = &["pause", "step_boundary", "log"];

/// The prompt's commands, with one-line help.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        ":help",
        ":help [NAME]   these commands, or the signatures and docs of function NAME",
    ),
    (
        ":load",
        ":load FILE     evaluate a script file here, keeping its functions and variables",
    ),
    (
        ":vars",
        ":vars          the variables in scope with their types (tensors: shape, dtype, device), and the functions",
    ),
    (
        ":time",
        ":time EXPR     evaluate EXPR and print the wall time it took",
    ),
    (
        ":reset",
        ":reset         forget every variable and function (not while a run is paused)",
    ),
    (
        ":continue",
        ":continue      resume the paused run (with whatever was changed here)",
    ),
    (
        ":save",
        ":save [MAP]    checkpoint the paused run now (state map: MAP, or the last save_checkpoint's keys from the live variables)",
    ),
    (
        ":quit",
        ":quit          leave; a paused run is checkpointed (as :save) and stopped; Ctrl-D also leaves",
    ),
];

/// The error message a run stopped with `:quit` at a paused prompt ends with.
pub const QUIT_MESSAGE: &str = "run stopped from the paused prompt (:quit)";

thread_local! {
    /// A pause debugger is installed on this thread's run (`--interactive`).
    static INTERACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The paused prompt is open (nested evaluations must not pause again).
    static IN_PROMPT: Cell<bool> = const { Cell::new(false) };
    /// The note about `pause()` in a non-interactive run was printed.
    static PAUSE_NOTED: Cell<bool> = const { Cell::new(false) };
}

/// Set by Ctrl-C in an interactive run: pause at the next step boundary.
static PAUSE_REQUESTED: AtomicBool = AtomicBool::new(false);
/// The prompt is evaluating user input: Ctrl-C cancels that evaluation.
static EVALUATING: AtomicBool = AtomicBool::new(false);

/// Registers `pause()` and `step_boundary()`.
pub fn register(engine: &mut Engine) {
    reg!(volatile engine,
        "pause",
        "Opens the REPL on the run's live state (with `ganscript run --interactive`); `:continue` resumes. Without --interactive: a note, then the run goes on.",
        || {
            if !INTERACTIVE.get() && !PAUSE_NOTED.replace(true) {
                eprintln!("note: pause() ignored: run with --interactive to pause here");
            }
        }
    );
    reg!(volatile engine,
        "step_boundary",
        "Marks a step boundary: with --interactive, a pause requested by Ctrl-C opens the REPL here. Otherwise does nothing.",
        || ()
    );
}

/// Installs the Ctrl-C handler. While the prompt evaluates input, Ctrl-C cancels that
/// evaluation. With `pausable` (an `--interactive` run), the first Ctrl-C requests a pause at
/// the next step boundary; otherwise (or pressed again) it stops the script at the next
/// operation, and once more exits at once.
pub fn install_ctrlc(interrupt: Arc<AtomicBool>, pausable: bool) {
    let _ = ctrlc::set_handler(move || {
        if EVALUATING.load(Ordering::SeqCst) {
            interrupt.store(true, Ordering::SeqCst);
            return;
        }
        if pausable && !PAUSE_REQUESTED.swap(true, Ordering::SeqCst) {
            eprintln!(
                "\nCtrl-C: pausing at the next step boundary (press again to stop the script)"
            );
            return;
        }
        if interrupt.swap(true, Ordering::SeqCst) {
            eprintln!("\nsecond Ctrl-C: exiting now");
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: stopping at the next operation (press again to exit now)");
    });
}

/// Called when `:quit` stops a paused run, with the run's live scope, before the run ends: a run
/// that tracks nets or optimizers is checkpointed as by `:save`, so it can be resumed.
pub fn checkpoint_on_quit(scope: &mut Scope) {
    if checkpoint::tracked_names().is_empty() {
        return;
    }
    match checkpoint::save_live(scope, None) {
        Ok(s) => eprint!("{}", describe_save(&s)),
        Err(e) => eprintln!("error: no checkpoint written on :quit: {e}"),
    }
}

/// What `:save` (or `:quit`) wrote, for the user.
fn describe_save(s: &checkpoint::LiveSave) -> String {
    let mut text = format!(
        "checkpoint written: {}\n  nets and optimizers: {}\n",
        s.path.display(),
        if s.tracked.is_empty() {
            "none".to_string()
        } else {
            s.tracked.join(", ")
        }
    );
    if s.explicit {
        text.push_str(&format!("  state: the map given ({})\n", s.live.join(", ")));
    } else if !s.live.is_empty() {
        text.push_str(&format!(
            "  state from the live variables: {}\n",
            s.live.join(", ")
        ));
    }
    if !s.kept.is_empty() {
        text.push_str(&format!(
            "  state kept from the last save_checkpoint: {}\n",
            s.kept.join(", ")
        ));
    }
    if let Some(dir) = s.path.parent() {
        let script = s.script.as_ref().map(|p| p.display().to_string());
        text.push_str(&format!(
            "  continue it later with: ganscript run {} --resume {}\n",
            script.as_deref().unwrap_or("SCRIPT"),
            dir.display()
        ));
    }
    text
}

/// What the prompt does after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// Read the next line.
    #[default]
    Next,
    /// Leave the prompt (and, when paused, stop the run).
    Quit,
    /// Resume the paused run.
    Continue,
    /// Ctrl-D or end of input (leaves the REPL; resumes a paused run).
    EndOfInput,
}

/// What one line produced.
#[derive(Debug, Default, Clone)]
pub struct Output {
    /// Printed to stdout (values, listings).
    pub out: String,
    /// Printed to stderr (diagnostics, notes).
    pub err: String,
    /// The input is incomplete: the next line continues it (`...` prompt).
    pub more: bool,
    pub action: Action,
}

impl Output {
    fn out(text: impl Into<String>) -> Self {
        Output {
            out: text.into(),
            ..Default::default()
        }
    }
    fn err(text: impl Into<String>) -> Self {
        Output {
            err: text.into(),
            ..Default::default()
        }
    }
    fn action(action: Action) -> Self {
        Output {
            action,
            ..Default::default()
        }
    }
}

/// The state of a prompt that does not belong to the engine or the scope: accumulated
/// functions and imports, pending multi-line input.
pub struct Session {
    /// Function definitions and `import` statements of every input so far.
    base: AST,
    pending: String,
    inputs: usize,
    sources: Sources,
    interrupt: Arc<AtomicBool>,
    /// The prompt of a paused run (`:continue` is allowed, `:reset` is not).
    paused: bool,
    /// Registered function names (for completion), computed once.
    functions: Rc<Vec<String>>,
}

impl Session {
    pub fn new(engine: &Engine, sources: Sources, interrupt: Arc<AtomicBool>) -> Self {
        let mut functions: Vec<String> = docs::catalog(engine)
            .into_iter()
            .map(|f| f.name)
            .filter(|n| {
                n.chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
            })
            .collect();
        functions.dedup();
        Session {
            base: AST::empty(),
            pending: String::new(),
            inputs: 0,
            sources,
            interrupt,
            paused: false,
            functions: Rc::new(functions),
        }
    }

    /// Is an input waiting for more lines?
    pub fn is_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Drops the pending input (Ctrl-C at the prompt).
    pub fn cancel(&mut self) {
        self.pending.clear();
    }

    /// The prompt to show for the next line.
    pub fn prompt(&self) -> &'static str {
        match (self.is_pending(), self.paused) {
            (true, _) => "... ",
            (false, true) => "paused> ",
            (false, false) => "> ",
        }
    }

    /// The functions (and imports) accumulated so far, as a library.
    pub fn library(&self) -> &AST {
        &self.base
    }

    /// Names of the script-defined functions of the session.
    pub fn script_fns(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .base
            .iter_functions()
            .map(|f| f.name.to_string())
            .filter(|n| !n.starts_with("anon$"))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The script functions of the session, one `fn name(params)` line each with the first
    /// line of its doc comment (for `:vars`).
    pub fn function_lines(&self) -> String {
        let mut fns: Vec<(String, String)> = self
            .base
            .iter_functions()
            .filter(|f| !f.name.starts_with("anon$"))
            .map(|f| {
                let doc = f
                    .comments
                    .iter()
                    .map(|c| c.trim_start_matches('/').trim())
                    .find(|c| !c.is_empty())
                    .map(|c| format!("  // {c}"))
                    .unwrap_or_default();
                (format!("fn {}({})", f.name, f.params.join(", ")), doc)
            })
            .collect();
        fns.sort();
        fns.dedup();
        fns.into_iter().map(|(f, d)| format!("{f}{d}\n")).collect()
    }

    /// Completion candidates for `line` with the cursor at `pos`: the start of the word being
    /// completed and the words it can become.
    pub fn complete(&self, scope: &Scope, line: &str, pos: usize) -> (usize, Vec<String>) {
        let names = Names {
            functions: self.functions.clone(),
            script_fns: self.script_fns(),
            vars: scope.iter_raw().map(|(n, ..)| n.to_string()).collect(),
        };
        names.complete(line, pos)
    }

    /// Feeds one physical line.
    pub fn handle_line(&mut self, engine: &Engine, scope: &mut Scope, line: &str) -> Output {
        if self.pending.is_empty() {
            let t = line.trim();
            if t.is_empty() {
                return Output::default();
            }
            if t.starts_with(':') {
                return self.command(engine, scope, t);
            }
        } else {
            self.pending.push('\n');
        }
        self.pending.push_str(line);
        // An unbalanced bracket always continues; an input that only lacks its end (`let b =`,
        // `x +`, `if c`) continues until an empty line submits it as it is.
        if needs_more(&self.pending)
            || (!line.trim().is_empty() && is_incomplete(engine, &self.pending))
        {
            return Output {
                more: true,
                ..Default::default()
            };
        }
        let text = std::mem::take(&mut self.pending);
        self.inputs += 1;
        let name = format!("<input {}>", self.inputs);
        match self.eval(engine, scope, &name, &text) {
            Ok(v) => Output {
                out: show(engine, &v).map(|s| s + "\n").unwrap_or_default(),
                ..Default::default()
            },
            Err(e) => Output::err(e),
        }
    }

    fn command(&mut self, engine: &Engine, scope: &mut Scope, t: &str) -> Output {
        let (cmd, arg) = match t.split_once(char::is_whitespace) {
            Some((c, a)) => (c, a.trim()),
            None => (t, ""),
        };
        match cmd {
            ":help" | ":h" | ":?" if arg.is_empty() => {
                let mut s = String::from("Commands:\n");
                for (_, h) in COMMANDS {
                    s.push_str("  ");
                    s.push_str(h);
                    s.push('\n');
                }
                s.push_str("Anything else is evaluated as rhai; `:help NAME` documents a function, `ganscript doc` lists them all.\n");
                Output::out(s)
            }
            ":help" | ":h" | ":?" => self.help(engine, arg),
            ":load" if arg.is_empty() => Output::err("usage: :load FILE\n"),
            ":load" => {
                let path = Path::new(arg);
                let text = match std::fs::read_to_string(path) {
                    Ok(t) => t,
                    Err(e) => return Output::err(format!("cannot read {arg}: {e}\n")),
                };
                match self.eval(engine, scope, &path.display().to_string(), &text) {
                    Ok(_) => Output::out(format!("loaded {arg}\n")),
                    Err(e) => Output::err(e),
                }
            }
            ":vars" => {
                let mut text = vars(engine, scope);
                let fns = self.function_lines();
                if !fns.is_empty() {
                    if text.starts_with("(no variables)") {
                        text.clear();
                    }
                    text.push_str(&fns);
                }
                Output::out(text)
            }
            ":time" if arg.is_empty() => Output::err("usage: :time EXPR\n"),
            ":time" => {
                self.inputs += 1;
                let name = format!("<input {}>", self.inputs);
                let start = Instant::now();
                let result = self.eval(engine, scope, &name, arg);
                let ms = start.elapsed().as_secs_f64() * 1000.0;
                let mut o = match result {
                    Ok(v) => Output::out(show(engine, &v).map(|s| s + "\n").unwrap_or_default()),
                    Err(e) => Output::err(e),
                };
                o.out.push_str(&format!("time: {ms:.3} ms\n"));
                o
            }
            ":reset" if self.paused => Output::err(
                ":reset is not available while a run is paused (it would drop the run's state)\n",
            ),
            ":reset" => {
                scope.clear();
                self.base = AST::empty();
                Output::out("session reset\n")
            }
            ":continue" | ":c" if self.paused => Output::action(Action::Continue),
            ":continue" | ":c" => Output::err("nothing to continue: no run is paused\n"),
            ":save" => {
                let explicit = if arg.is_empty() {
                    None
                } else {
                    match self.eval(engine, scope, "<:save>", arg) {
                        Ok(v) => match v.try_cast::<rhai::Map>() {
                            Some(m) => Some(m),
                            None => {
                                return Output::err(
                                    "usage: :save [MAP]: MAP is the state map to save, e.g. :save #{ step: step }\n",
                                )
                            }
                        },
                        Err(e) => return Output::err(e),
                    }
                };
                match checkpoint::save_live(scope, explicit) {
                    Ok(s) => Output::out(describe_save(&s)),
                    Err(e) => Output::err(format!("cannot save: {e}\n")),
                }
            }
            ":quit" | ":q" | ":exit" => Output::action(Action::Quit),
            _ => {
                let best = COMMANDS
                    .iter()
                    .map(|(c, _)| (strsim::jaro_winkler(cmd, c), *c))
                    .max_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
                let hint = match best {
                    Some((s, c)) if s > 0.7 => format!(" (did you mean {c}?)"),
                    _ => String::new(),
                };
                Output::err(format!("unknown command {cmd}{hint}; :help lists them\n"))
            }
        }
    }

    fn help(&self, engine: &Engine, name: &str) -> Output {
        let mut text = String::new();
        for f in self.base.iter_functions().filter(|f| f.name == name) {
            text.push_str(&format!(
                "fn {}({})  (defined in this session)\n",
                f.name,
                f.params.join(", ")
            ));
            for c in f.comments.iter() {
                text.push_str("    ");
                text.push_str(c.trim_start_matches("///").trim());
                text.push('\n');
            }
        }
        match docs::render(engine, Some(name)) {
            Ok(t) => text.push_str(&t),
            Err(e) if text.is_empty() => return Output::err(format!("{e}\n")),
            Err(_) => {}
        }
        Output::out(text)
    }

    /// Evaluates `text` (named `name` in diagnostics) with the session's functions, keeping its
    /// functions and imports. Errors come back rendered.
    fn eval(
        &mut self,
        engine: &Engine,
        scope: &mut Scope,
        name: &str,
        text: &str,
    ) -> Result<Dynamic, String> {
        self.sources.insert(name, text);
        let ast = engine
            .compile(text)
            .map_err(|e| from_parse_error(&e, name, text).render() + "\n")?;
        let imports: Vec<Stmt> = ast
            .statements()
            .iter()
            .filter(|s| matches!(s, Stmt::Import(..)))
            .cloned()
            .collect();
        let mut run = self.base.merge(&ast);
        run.set_source(name);
        // Functions stay even if the input fails at run time (they parsed).
        self.base = self.base.merge(&ast.clone_functions_only());
        self.interrupt.store(false, Ordering::SeqCst);
        EVALUATING.store(true, Ordering::SeqCst);
        let result = catch_panics(|| engine.eval_ast_with_scope::<Dynamic>(scope, &run));
        EVALUATING.store(false, Ordering::SeqCst);
        self.interrupt.store(false, Ordering::SeqCst);
        // A paused run's scope belongs to the running script (which indexes it), so only the
        // prompt's own scope is compacted.
        if !self.paused {
            release_shadowed(scope);
        }
        match result {
            Ok(Ok(v)) => {
                if !imports.is_empty() {
                    let lib = self.base.shared_lib().clone();
                    let mut stmts: Vec<Stmt> = self.base.statements().to_vec();
                    stmts.extend(imports);
                    self.base = AST::new(stmts, lib);
                }
                Ok(v)
            }
            Ok(Err(e)) => {
                let fns = self.script_fns();
                let d = from_eval_error(&e, name, &self.sources, engine, &fns);
                if d.message == INTERRUPTED {
                    return Err("interrupted\n".to_string());
                }
                Err(d.render() + "\n")
            }
            Err(panic) => Err(ScriptDiagnostic::plain(format!(
                "internal error (a bug in ganscript, please report it): {panic}"
            ))
            .render()
                + "\n"),
        }
    }
}

/// Drops the variables that a later `let` of the same name shadows: rhai keeps every `let` as
/// a new entry of the scope, so without this each `let t = randn(...)` typed at the prompt kept
/// the previous tensor alive. The remaining variables keep their order and constness.
pub fn release_shadowed(scope: &mut Scope) {
    let names: Vec<&str> = scope.iter_raw().map(|(n, ..)| n).collect();
    let mut seen = std::collections::HashSet::new();
    let keep: Vec<bool> = names.iter().rev().map(|n| seen.insert(*n)).collect();
    if keep.iter().all(|&k| k) {
        return;
    }
    let kept: Vec<(String, bool, Dynamic)> = scope
        .iter_raw()
        .zip(keep.iter().rev())
        .filter(|(_, &k)| k)
        .map(|((n, c, v), _)| (n.to_string(), c, v.clone()))
        .collect();
    scope.clear();
    for (name, constant, value) in kept {
        if constant {
            scope.push_constant_dynamic(name, value);
        } else {
            scope.push_dynamic(name, value);
        }
    }
}

/// Does `text` parse up to its end and then lack the rest (`let b =`, `1 +`, `if x`, `x.`)?
/// True when rhai reports an unexpected end of input, or an error placed after the text's last
/// non-blank character.
pub fn is_incomplete(engine: &Engine, text: &str) -> bool {
    let Err(e) = engine.compile(text) else {
        return false;
    };
    if matches!(e.err_type(), rhai::ParseErrorType::UnexpectedEOF) {
        return true;
    }
    let (Some(line), Some(col)) = (e.position().line(), e.position().position()) else {
        return false;
    };
    // The (line, column) of the last non-blank character.
    let last = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            let n = l.trim_end().chars().count();
            (n > 0).then_some((i + 1, n))
        })
        .last();
    match last {
        Some(end) => (line, col) > end,
        None => false,
    }
}

/// Does `text` end inside a bracket, a back-tick string or a block comment? (Brackets inside
/// strings, characters and comments do not count.)
pub fn needs_more(text: &str) -> bool {
    let mut depth: i64 = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                // A one-line string or character: ends at the same quote or the line's end.
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '\n' => break,
                        d if d == c => break,
                        _ => {}
                    }
                }
            }
            '`' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '`' => {
                            closed = true;
                            break;
                        }
                        _ => {}
                    }
                }
                if !closed {
                    return true;
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut nest = 1;
                while nest > 0 {
                    match chars.next() {
                        None => return true,
                        Some('*') if chars.peek() == Some(&'/') => {
                            chars.next();
                            nest -= 1;
                        }
                        Some('/') if chars.peek() == Some(&'*') => {
                            chars.next();
                            nest += 1;
                        }
                        Some(_) => {}
                    }
                }
            }
            '{' | '(' | '[' => depth += 1,
            '}' | ')' | ']' => depth -= 1,
            _ => {}
        }
    }
    depth > 0
}

/// How a value is printed at the prompt: nothing for unit, strings as they are, anything with a
/// registered `to_string` through it (tensors: shape, dtype, device and values or statistics;
/// nets: their summary).
pub fn show(engine: &Engine, v: &Dynamic) -> Option<String> {
    if v.is_unit() {
        return None;
    }
    if v.is_string() {
        return Some(v.to_string());
    }
    if let Some(t) = v.read_lock::<tensor::Tensor>() {
        return Some(t.to_string());
    }
    match engine.eval_fn_call::<String>("to_string", None, (v.clone(),)) {
        Ok(s) => Some(s),
        Err(_) => Some(v.to_string()),
    }
}

/// The `:vars` listing.
fn vars(engine: &Engine, scope: &Scope) -> String {
    let mut lines = Vec::new();
    let mut seen = std::collections::HashSet::new();
    // Newest first: a shadowed variable shows its current value only.
    for (name, constant, value) in scope.iter_raw() {
        if !seen.insert(name) {
            continue;
        }
        let kind = if constant { "const " } else { "" };
        let desc = if let Some(t) = value.read_lock::<tensor::Tensor>() {
            tensor::summary_line(&t.0)
        } else {
            let ty = engine.map_type_name(value.type_name()).to_string();
            if value.is_int() || value.is_float() || value.is_bool() || value.is_char() {
                format!("{ty} = {value}")
            } else if value.is_string() && value.to_string().len() <= 60 {
                format!("{ty} = {:?}", value.to_string())
            } else if value.is_array() {
                format!(
                    "{ty} (len {})",
                    value.read_lock::<rhai::Array>().map_or(0, |a| a.len())
                )
            } else {
                ty
            }
        };
        lines.push(format!("{kind}{name}: {desc}"));
    }
    lines.reverse();
    if lines.is_empty() {
        "(no variables)\n".to_string()
    } else {
        lines.join("\n") + "\n"
    }
}

/// The words completion draws from.
#[derive(Default, Clone)]
pub struct Names {
    pub functions: Rc<Vec<String>>,
    pub script_fns: Vec<String>,
    pub vars: Vec<String>,
}

impl Names {
    /// The start of the word before `pos` and the words it can become.
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let pos = pos.min(line.len());
        let head = &line[..pos];
        let start = head
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
            .last()
            .map_or(pos, |(i, _)| i);
        let word = &head[start..];
        // A command: `:` first on the line.
        if head[..start].trim_start() == ":" {
            let start = head.find(':').unwrap_or(0);
            let word = &head[start..];
            let c = COMMANDS
                .iter()
                .map(|(c, _)| c.to_string())
                .filter(|c| c.starts_with(word))
                .collect();
            return (start, c);
        }
        let after_dot = head[..start].ends_with('.');
        let mut c: Vec<String> = self
            .functions
            .iter()
            .chain(self.script_fns.iter())
            .chain(self.vars.iter().filter(|_| !after_dot))
            .filter(|n| n.starts_with(word))
            .cloned()
            .collect();
        c.sort();
        c.dedup();
        (start, c)
    }
}

/// A REPL that owns its engine and scope (`ganscript repl`).
pub struct Repl {
    pub engine: Engine,
    pub scope: Scope<'static>,
    pub session: Session,
}

impl Repl {
    pub fn new(opts: &EngineOptions) -> Result<Self, String> {
        let (engine, sources) = crate::engine::new_engine(opts)?;
        let session = Session::new(&engine, sources, opts.interrupt.clone());
        let mut scope = Scope::new();
        scope.push_constant("config", opts.settings.borrow().as_map());
        Ok(Repl {
            engine,
            scope,
            session,
        })
    }

    /// Feeds one physical line.
    pub fn handle_line(&mut self, line: &str) -> Output {
        self.session
            .handle_line(&self.engine, &mut self.scope, line)
    }

    /// Completion candidates (see [`Names::complete`]).
    pub fn complete(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        self.session.complete(&self.scope, line, pos)
    }

    /// Reads lines (rustyline on a terminal, else stdin) until `:quit` or end of input.
    pub fn run(&mut self) {
        let mut reader = reader();
        interact(
            &self.engine,
            &mut self.scope,
            &mut self.session,
            reader.as_mut(),
        );
    }
}

/// What reading a line gave.
pub enum Read {
    Line(String),
    /// Ctrl-C at the prompt.
    Interrupted,
    /// Ctrl-D or end of input.
    Eof,
}

/// A source of input lines.
pub trait LineReader {
    fn read(&mut self, prompt: &str, names: Names) -> Read;
}

/// Lines from stdin, no prompts (stdin is not a terminal).
pub struct StdinReader;

impl LineReader for StdinReader {
    fn read(&mut self, _prompt: &str, _names: Names) -> Read {
        let mut line = String::new();
        match std::io::stdin().lock().read_line(&mut line) {
            Ok(0) | Err(_) => Read::Eof,
            Ok(_) => Read::Line(line.trim_end_matches(['\n', '\r']).to_string()),
        }
    }
}

/// Completion for rustyline.
struct Helper {
    names: Names,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        Ok(self.names.complete(line, pos))
    }
}
impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

/// The rustyline editor: history in a file, Ctrl-R search, tab completion.
pub struct EditorReader {
    editor: rustyline::Editor<Helper, rustyline::history::DefaultHistory>,
    history: Option<PathBuf>,
}

/// `$GANSCRIPT_HISTORY`, else `~/.ganscript_history`.
pub fn history_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GANSCRIPT_HISTORY") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".ganscript_history"))
}

impl EditorReader {
    pub fn new() -> Option<Self> {
        // Tab lists every candidate (and completes their common prefix), as bash does.
        let config = rustyline::Config::builder()
            .completion_type(rustyline::CompletionType::List)
            .build();
        let mut editor = rustyline::Editor::with_config(config).ok()?;
        editor.set_helper(Some(Helper {
            names: Names::default(),
        }));
        let history = history_path();
        if let Some(p) = &history {
            let _ = editor.load_history(p);
        }
        Some(EditorReader { editor, history })
    }
}

impl LineReader for EditorReader {
    fn read(&mut self, prompt: &str, names: Names) -> Read {
        if let Some(h) = self.editor.helper_mut() {
            h.names = names;
        }
        match self.editor.readline(prompt) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = self.editor.add_history_entry(line.as_str());
                    if let Some(p) = &self.history {
                        let _ = self.editor.save_history(p);
                    }
                }
                Read::Line(line)
            }
            Err(rustyline::error::ReadlineError::Interrupted) => Read::Interrupted,
            Err(rustyline::error::ReadlineError::Eof) => Read::Eof,
            Err(e) => {
                eprintln!("cannot read input: {e}");
                Read::Eof
            }
        }
    }
}

/// rustyline when stdin is a terminal, else plain stdin lines.
pub fn reader() -> Box<dyn LineReader> {
    if std::io::stdin().is_terminal() {
        if let Some(r) = EditorReader::new() {
            return Box::new(r);
        }
    }
    Box::new(StdinReader)
}

/// The read-eval-print loop over `reader`, until `:quit`, `:continue` or end of input.
pub fn interact(
    engine: &Engine,
    scope: &mut Scope,
    session: &mut Session,
    reader: &mut dyn LineReader,
) -> Action {
    loop {
        let names = Names {
            functions: session.functions.clone(),
            script_fns: session.script_fns(),
            vars: scope.iter_raw().map(|(n, ..)| n.to_string()).collect(),
        };
        match reader.read(session.prompt(), names) {
            Read::Line(line) => {
                let o = session.handle_line(engine, scope, &line);
                print!("{}", o.out);
                let _ = std::io::stdout().flush();
                eprint!("{}", o.err);
                if o.action != Action::Next {
                    return o.action;
                }
            }
            Read::Interrupted => {
                if session.is_pending() {
                    session.cancel();
                } else {
                    eprintln!("(Ctrl-C: line cancelled; :quit or Ctrl-D leaves)");
                }
            }
            Read::Eof => return Action::EndOfInput,
        }
    }
}

/// `ganscript repl [FILE]`.
pub fn main(file: Option<&Path>, opts: &EngineOptions) -> Result<(), String> {
    install_ctrlc(opts.interrupt.clone(), false);
    let mut repl = Repl::new(opts)?;
    if let Some(f) = file {
        let o = repl.handle_line(&format!(":load {}", f.display()));
        eprint!("{}", o.err);
    }
    if std::io::stdin().is_terminal() {
        eprintln!("ganscript REPL: :help for commands, Tab completes, Ctrl-D leaves");
    }
    repl.run();
    Ok(())
}

/// The state the pause debugger keeps between pauses.
struct PauseState {
    session: Session,
    reader: Option<Box<dyn LineReader>>,
    /// Input ended: later pauses resume at once.
    exhausted: bool,
}

/// Makes the run of `script` (compiled with `engine`) pausable: registers a debugger with
/// break-points at the [`STEP_BOUNDARIES`] that opens the prompt on the live scope.
pub fn install_pause_debugger(
    engine: &mut Engine,
    script: &AST,
    sources: Sources,
    interrupt: Arc<AtomicBool>,
) {
    INTERACTIVE.set(true);
    let mut session = Session::new(engine, sources, interrupt);
    session.paused = true;
    session.base = script.clone_functions_only();
    let state = Rc::new(RefCell::new(PauseState {
        session,
        reader: None,
        exhausted: false,
    }));
    #[allow(deprecated)] // rhai marks the debugging API volatile, not deprecated
    engine.register_debugger(
        |_, mut dbg| {
            for name in STEP_BOUNDARIES {
                dbg.break_points_mut().push(BreakPoint::AtFunctionName {
                    name: (*name).into(),
                    enabled: true,
                });
            }
            dbg
        },
        move |mut ctx, event, _node, src, pos| {
            // Evaluations at the prompt run under this debugger too: never pause them.
            if IN_PROMPT.get() {
                return Ok(DebuggerCommand::Continue);
            }
            let DebuggerEvent::BreakPoint(i) = event else {
                return Ok(DebuggerCommand::Continue);
            };
            let name = STEP_BOUNDARIES.get(i).copied().unwrap_or("?");
            // A requested pause waits for a boundary at the script's top level, where the
            // run's own variables are in scope (a function sees only its locals); `pause()`
            // stops wherever it is called.
            let top_level = ctx.global_runtime_state().level == 0;
            if name != "pause" && !(top_level && PAUSE_REQUESTED.swap(false, Ordering::SeqCst)) {
                return Ok(DebuggerCommand::Continue);
            }
            let mut st = state.borrow_mut();
            if st.exhausted {
                return Ok(DebuggerCommand::Continue);
            }
            let where_ = match (src, pos.line()) {
                (Some(s), Some(l)) => format!(" at {s}:{l}"),
                (None, Some(l)) => format!(" at line {l}"),
                _ => String::new(),
            };
            eprintln!(
                "paused{where_} (before `{name}`): the run's variables are in scope; :continue resumes, :save checkpoints, :quit checkpoints and stops, :help"
            );
            let engine = ctx.engine();
            IN_PROMPT.set(true);
            let st = &mut *st;
            let reader = st.reader.get_or_insert_with(reader);
            let action = interact(engine, ctx.scope_mut(), &mut st.session, reader.as_mut());
            IN_PROMPT.set(false);
            // Functions and closures defined at the prompt must resolve in the run.
            let lib = st.session.base.shared_lib().clone();
            if !lib.is_empty()
                && !ctx
                    .namespaces()
                    .iter()
                    .any(|m| rhai::Shared::ptr_eq(m, &lib))
            {
                ctx.global_runtime_state_mut().lib.push(lib);
            }
            match action {
                Action::Continue | Action::Next => Ok(DebuggerCommand::Continue),
                Action::EndOfInput => {
                    // Ctrl-D resumes; at the end of piped input, never prompt again.
                    if !std::io::stdin().is_terminal() {
                        st.exhausted = true;
                    }
                    eprintln!("(end of input: resuming the run)");
                    Ok(DebuggerCommand::Continue)
                }
                Action::Quit => {
                    checkpoint_on_quit(ctx.scope_mut());
                    Err(Box::new(EvalAltResult::ErrorTerminated(
                        QUIT_MESSAGE.into(),
                        pos,
                    )))
                }
            }
        },
    );
}
