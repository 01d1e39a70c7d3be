//! Ctrl-C: cancels the prompt's evaluation, requests a pause in an interactive run, stops
//! the script, and exits when pressed once more.

use super::*;

/// Installs the Ctrl-C handler. While the prompt evaluates input, Ctrl-C cancels that
/// evaluation. With `pausable` (an `--interactive` run), the first Ctrl-C requests a pause at
/// the next step boundary; otherwise (or pressed again) it stops the script at the next
/// operation, and once more exits at once.
pub fn install_ctrlc(interrupt: Arc<AtomicBool>, pausable: bool) {
    let _ = ::ctrlc::set_handler(move || {
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
