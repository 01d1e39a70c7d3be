//! The crate's error type, and errors in the form rhai expects.
//!
//! Code below the script boundary returns [`Result`] with the one error type [`Error`]: a
//! message for the user, a failed candle operation, or a stop ([`Stopped`]). Native functions
//! registered into rhai return [`ScriptResult`]; an [`Error`] becomes rhai's error once, through
//! `From` (so `?` converts at registration), and rhai attaches the position of the call. The
//! command layer reads a stop back with [`Stopped::of`] and renders failures as miette reports
//! (`diagnostics`).

use rhai::{Dynamic, EvalAltResult, Position};
use std::fmt::Display;

/// What went wrong, for the user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A message for the user: bad input, a refused operation, a file that cannot be read.
    #[error("{0}")]
    Msg(String),
    /// A tensor operation failed in candle (the message without candle's backtrace).
    #[error("{}", clean_candle_message(&.0.to_string()))]
    Candle(#[from] candle_core::Error),
    /// A file that does not parse: damaged, truncated, or not in the expected format.
    #[error("{what} is damaged or truncated: {reason}")]
    Unreadable { what: String, reason: String },
    /// The script stopped without failing.
    #[error("{0}")]
    Stopped(Stopped),
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn msg(m: impl Display) -> Error {
        Error::Msg(m.to_string())
    }
}

impl From<String> for Error {
    fn from(m: String) -> Error {
        Error::Msg(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Error {
        Error::Msg(m.to_string())
    }
}

impl From<Stopped> for Error {
    fn from(s: Stopped) -> Error {
        Error::Stopped(s)
    }
}

/// The one conversion into rhai's error: a stop terminates the script carrying its
/// [`Stopped`] value, anything else is a runtime error with the message.
impl From<Error> for Box<EvalAltResult> {
    fn from(e: Error) -> Box<EvalAltResult> {
        match e {
            Error::Stopped(s) => s.error(Position::NONE),
            other => script_err(other),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_become_rhai_errors_once_and_stops_stay_stops() {
        let e: Box<EvalAltResult> = Error::from(Stopped::Saved).into();
        assert_eq!(Stopped::of(&e), Some(Stopped::Saved));
        let e: Box<EvalAltResult> = Error::msg("bad input").into();
        assert_eq!(Stopped::of(&e), None);
        assert_eq!(message(&e), "bad input");
        let candle = candle_core::Error::Msg("shape mismatch\n   0: backtrace".into());
        assert_eq!(Error::from(candle).to_string(), "shape mismatch");
        let u = Error::Unreadable {
            what: "f.safetensors".into(),
            reason: "eof".into(),
        };
        assert_eq!(u.to_string(), "f.safetensors is damaged or truncated: eof");
    }
}
