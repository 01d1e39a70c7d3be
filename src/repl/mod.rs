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

mod input;
mod pause;
mod session;

pub use input::*;
pub use pause::*;
pub use session::*;

use crate::diagnostics::{from_eval_error, from_parse_error, ScriptDiagnostic};
use crate::errors::Error;
use crate::errors::Stopped;
use crate::script::catch_panics;
use crate::session::interrupt::{self, OnCtrlC, EVALUATING, PAUSE_REQUESTED};
use crate::session::{EngineOptions, Sources};
use crate::{checkpoint, docs, tensor};
use rhai::debugger::{BreakPoint, DebuggerCommand, DebuggerEvent};
use rhai::{Dynamic, Engine, Scope, Stmt, AST};
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

thread_local! {
    /// The paused prompt is open (nested evaluations must not pause again).
    pub(super) static IN_PROMPT: Cell<bool> = const { Cell::new(false) };
}

/// A REPL that owns its engine and scope (`ganscript repl`).
pub struct Repl {
    pub engine: Engine,
    pub scope: Scope<'static>,
    pub session: Session,
}

impl Repl {
    pub fn new(opts: &EngineOptions) -> Result<Self, Error> {
        let crate::session::Built {
            engine,
            sources,
            run,
        } = crate::session::build(opts)?;
        let session = Session::new(&engine, sources, opts.interrupt.clone(), run);
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

/// `ganscript repl [FILE]`.
pub fn main(file: Option<&Path>, opts: &EngineOptions) -> Result<(), Error> {
    interrupt::install(OnCtrlC::Run {
        interrupt: opts.interrupt.clone(),
        pausable: false,
    });
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
