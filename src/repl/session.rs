//! The prompt's session: one line of input at a time (commands, expressions, statements),
//! what it prints, the variables and functions it keeps, completion.

use super::*;
use crate::errors::Error;

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
    fn err(text: impl std::fmt::Display) -> Self {
        Output {
            err: text.to_string(),
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
    pub(super) base: AST,
    pending: String,
    inputs: usize,
    sources: Sources,
    interrupt: Arc<AtomicBool>,
    /// The run `:save` checkpoints.
    pub(super) run: crate::run::RunHandle,
    /// The prompt of a paused run (`:continue` is allowed, `:reset` is not).
    pub(super) paused: bool,
    /// Registered function names (for completion), computed once.
    pub(super) functions: Rc<Vec<String>>,
}

impl Session {
    pub fn new(
        engine: &Engine,
        sources: Sources,
        interrupt: Arc<AtomicBool>,
        run: crate::run::RunHandle,
    ) -> Self {
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
            run,
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
                match checkpoint::save_live(scope, explicit, &self.run) {
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
    ) -> Result<Dynamic, Error> {
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
                // A paused run's history: what was evaluated at its prompt (an edit such as
                // `opt_g.lr = 2e-4` changes the run), recorded in config.json.
                if self.paused {
                    self.run
                        .record_prompt_input(text)
                        .map_err(|e| Error::Msg(crate::errors::message(&e)))?;
                }
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
                if d.stopped == Some(Stopped::Interrupted) {
                    return Err(Error::Msg("interrupted\n".to_string()));
                }
                Err(Error::Msg(d.render() + "\n"))
            }
            Err(panic) => Err(Error::Msg(
                ScriptDiagnostic::plain(format!(
                    "internal error (a bug in ganscript, please report it): {panic}"
                ))
                .render()
                    + "\n",
            )),
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
pub(super) fn vars(engine: &Engine, scope: &Scope) -> String {
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
