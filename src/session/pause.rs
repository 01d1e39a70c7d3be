//! The run's pause points: `pause()` and `step_boundary()`. With `ganscript run --interactive`
//! the REPL installs a debugger that opens its prompt at them (see `repl`); otherwise they do
//! nothing (`pause()` says so once).

use rhai::Engine;
use std::cell::Cell;

thread_local! {
    /// A pause debugger is installed on this thread's run (`--interactive`).
    static INTERACTIVE: Cell<bool> = const { Cell::new(false) };
    /// The note about `pause()` in a non-interactive run was printed.
    static PAUSE_NOTED: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread's run as interactive (the REPL's pause debugger is installed).
pub fn set_interactive(on: bool) {
    INTERACTIVE.set(on);
}

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
