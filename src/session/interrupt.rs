//! Ctrl-C: the process's one handler. What a press does depends on what is running, which the
//! command says when it installs the handler ([`install`]):
//!
//! - a script run ([`OnCtrlC::Run`]): the first press stops the script at the next operation,
//!   or, in a run that checkpoints, after its next `save_checkpoint` (which writes, then stops);
//!   the second stops such a run now (its previous checkpoint stays valid); the last press exits;
//!   with `pausable` (`run --interactive`) the very first press asks for a pause at the next
//!   step boundary instead;
//! - the REPL's prompt evaluating a line: the press cancels that evaluation (any mode);
//! - a sweep ([`OnCtrlC::Sweep`]): no new runs start, and every press is passed to the running
//!   ones.

use crate::checkpoint;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// Set by Ctrl-C in an interactive run: pause at the next step boundary.
pub static PAUSE_REQUESTED: AtomicBool = AtomicBool::new(false);
/// The REPL's prompt is evaluating user input: Ctrl-C cancels that evaluation.
pub static EVALUATING: AtomicBool = AtomicBool::new(false);

/// What Ctrl-C acts on.
pub enum OnCtrlC {
    /// A script (a run, or the REPL's): `interrupt` is the engine's stop flag
    /// ([`crate::session::EngineOptions::interrupt`]).
    Run {
        interrupt: Arc<AtomicBool>,
        pausable: bool,
    },
    /// A sweep: `stop` tells the scheduler to start no more runs; `forward` passes the press on
    /// to the running children.
    Sweep {
        stop: Arc<AtomicBool>,
        forward: Box<dyn Fn() + Send + 'static>,
    },
}

/// What the `n`-th press (from 0) of a script run does, once pauses and prompt evaluations are
/// handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Press {
    /// Stop at the next operation, or after the next checkpoint of a run that checkpoints.
    Stop,
    /// Stop now, keeping the last checkpoint (runs that checkpoint).
    StopNow,
    /// Exit the process (status 130).
    Exit,
}

/// The `n`-th press (from 0) of a script run; `defers` is whether the run checkpoints.
pub fn press(n: usize, defers: bool) -> Press {
    match n {
        0 => Press::Stop,
        1 if defers => Press::StopNow,
        _ => Press::Exit,
    }
}

/// Installs the process's Ctrl-C handler (once; a later call is ignored, as `ctrlc` allows one).
pub fn install(on: OnCtrlC) {
    let _ = match on {
        OnCtrlC::Run {
            interrupt,
            pausable,
        } => {
            let presses = AtomicUsize::new(0);
            ctrlc::set_handler(move || {
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
                let defers = checkpoint::defers_interrupt();
                match press(presses.fetch_add(1, Ordering::SeqCst), defers) {
                    Press::Stop => {
                        interrupt.store(true, Ordering::SeqCst);
                        if defers {
                            eprintln!(
                                "\nCtrl-C: stopping after the next checkpoint (press again to stop now)"
                            );
                        } else {
                            eprintln!(
                                "\nCtrl-C: stopping at the next operation (press again to exit now)"
                            );
                        }
                    }
                    Press::StopNow => {
                        checkpoint::force_stop();
                        eprintln!("\nCtrl-C: stopping now; the last checkpoint stays valid (press again to exit at once)");
                    }
                    Press::Exit => {
                        eprintln!("\nCtrl-C: exiting now");
                        std::process::exit(130);
                    }
                }
            })
        }
        OnCtrlC::Sweep { stop, forward } => ctrlc::set_handler(move || {
            if !stop.swap(true, Ordering::SeqCst) {
                eprintln!("\nCtrl-C: no new runs start; the running ones save a checkpoint and stop (press again to stop them now)");
            }
            forward();
        }),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presses_stop_then_stop_now_then_exit() {
        assert_eq!(press(0, true), Press::Stop);
        assert_eq!(press(1, true), Press::StopNow);
        assert_eq!(press(2, true), Press::Exit);
        assert_eq!(press(0, false), Press::Stop);
        assert_eq!(press(1, false), Press::Exit);
    }
}
