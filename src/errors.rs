//! Errors raised by native functions, in the form rhai expects.
//!
//! Every native function registered into rhai returns [`ScriptResult`]; rhai attaches the
//! position of the call, and `diagnostics` turns the result into a miette report.

use rhai::{Dynamic, EvalAltResult, Position};
use std::fmt::Display;

/// The result type of every native function exposed to scripts.
pub type ScriptResult<T> = Result<T, Box<EvalAltResult>>;

/// A runtime error with a plain message; rhai fills in the position of the call.
pub fn script_err(msg: impl Display) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        msg.to_string().into(),
        Position::NONE,
    ))
}

/// The plain message of an error raised by a native function (without rhai's "Runtime error"
/// prefix), for code that reports it outside a script.
pub fn message(e: &EvalAltResult) -> String {
    match e {
        EvalAltResult::ErrorRuntime(msg, _) => msg.to_string(),
        other => other.to_string(),
    }
}

/// Converts any error (candle, io, ...) into a script error, with an optional context.
pub trait OrScriptErr<T> {
    /// Converts the error as is.
    fn or_script(self) -> ScriptResult<T>;
    /// Converts the error, prefixing it with `what` (for example the operation's name).
    fn ctx(self, what: &str) -> ScriptResult<T>;
}

impl<T, E: Display> OrScriptErr<T> for Result<T, E> {
    fn or_script(self) -> ScriptResult<T> {
        self.map_err(|e| script_err(clean_candle_message(&e.to_string())))
    }
    fn ctx(self, what: &str) -> ScriptResult<T> {
        self.map_err(|e| script_err(format!("{what}: {}", clean_candle_message(&e.to_string()))))
    }
}

/// candle appends backtraces to some messages; scripts only need the first part.
fn clean_candle_message(msg: &str) -> String {
    let first = msg.split("\n   0:").next().unwrap_or(msg);
    first.trim_end().to_string()
}

/// How a script stopped without failing. The error that stops it carries this value, so the
/// host tells a stop from a failure by its type, not by its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Ctrl-C, at the next operation.
    Interrupted,
    /// Ctrl-C in a run that checkpoints: stopped at `save_checkpoint`, after saving.
    Saved,
    /// `:quit` at the paused prompt of an interactive run (after writing a checkpoint).
    Quit,
}

impl Stopped {
    /// What the user is told.
    pub fn message(self) -> &'static str {
        match self {
            Stopped::Interrupted => "interrupted (Ctrl-C)",
            Stopped::Saved => "interrupted (Ctrl-C) after saving a checkpoint",
            Stopped::Quit => "run stopped from the paused prompt (:quit)",
        }
    }

    /// The value the terminating error carries (also what `on_progress` returns to stop).
    pub fn token(self) -> Dynamic {
        Dynamic::from(self)
    }

    /// The error that stops the script at `pos` with this value.
    pub fn error(self, pos: Position) -> Box<EvalAltResult> {
        Box::new(EvalAltResult::ErrorTerminated(self.token(), pos))
    }

    /// The stop `e` carries, if it is one (through function calls and modules).
    pub fn of(e: &EvalAltResult) -> Option<Stopped> {
        match e {
            EvalAltResult::ErrorTerminated(v, _) | EvalAltResult::ErrorRuntime(v, _) => {
                v.clone().try_cast::<Stopped>()
            }
            EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | EvalAltResult::ErrorInModule(_, inner, _) => Stopped::of(inner),
            _ => None,
        }
    }
}

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}
