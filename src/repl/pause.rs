//! Pausing a live run (`ganscript run --interactive`): the debugger that opens the prompt at
//! step boundaries on the run's own scope, and the checkpoint written when it is left with
//! `:quit`.

use super::*;

/// Called when `:quit` stops a paused run, with the run's live scope, before the run ends: a run
/// that tracks nets or optimizers is checkpointed as by `:save`, so it can be resumed.
pub fn checkpoint_on_quit(scope: &mut Scope, run: &crate::run::RunHandle) {
    if checkpoint::tracked_names().is_empty() {
        return;
    }
    match checkpoint::save_live(scope, None, run) {
        Ok(s) => eprint!("{}", describe_save(&s)),
        Err(e) => eprintln!("error: no checkpoint written on :quit: {e}"),
    }
}

/// What `:save` (or `:quit`) wrote, for the user.
pub(super) fn describe_save(s: &checkpoint::LiveSave) -> String {
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

/// The state the pause debugger keeps between pauses.
pub(super) struct PauseState {
    session: Session,
    reader: Option<Box<dyn LineReader>>,
    /// Input ended: later pauses resume at once.
    exhausted: bool,
    /// A pause was requested at a `log` call: it opens once the call is done (so the row is
    /// logged before the prompt, and a checkpoint written there holds it).
    after_log: bool,
}

/// Makes the run of `script` (compiled with `engine`) pausable: registers a debugger with
/// break-points at the [`STEP_BOUNDARIES`] that opens the prompt on the live scope.
pub fn install_pause_debugger(
    engine: &mut Engine,
    script: &AST,
    sources: Sources,
    interrupt: Arc<AtomicBool>,
    run: crate::run::RunHandle,
) {
    crate::session::pause::set_interactive(true);
    let mut session = Session::new(engine, sources, interrupt, run);
    session.paused = true;
    session.base = script.clone_functions_only();
    let state = Rc::new(RefCell::new(PauseState {
        session,
        reader: None,
        exhausted: false,
        after_log: false,
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
            let name = match event {
                DebuggerEvent::BreakPoint(i) => STEP_BOUNDARIES.get(i).copied().unwrap_or("?"),
                // The first step after a `log` at which a pause was requested.
                DebuggerEvent::Step if state.borrow().after_log => {
                    state.borrow_mut().after_log = false;
                    "after log"
                }
                _ => return Ok(DebuggerCommand::Continue),
            };
            // A requested pause waits for a boundary at the script's top level, where the
            // run's own variables are in scope (a function sees only its locals); `pause()`
            // stops wherever it is called.
            let top_level = ctx.global_runtime_state().level == 0;
            if name != "pause"
                && name != "after log"
                && !(top_level && PAUSE_REQUESTED.swap(false, Ordering::SeqCst))
            {
                return Ok(DebuggerCommand::Continue);
            }
            if name == "log" {
                // Let the row be written first: pause at the next step of the script.
                state.borrow_mut().after_log = true;
                return Ok(DebuggerCommand::StepOver);
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
            let at = if name == "after log" {
                "after `log`".to_string()
            } else {
                format!("before `{name}`")
            };
            eprintln!(
                "paused{where_} ({at}): the run's variables are in scope; :continue resumes, :save checkpoints, :quit checkpoints and stops, :help"
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
                    checkpoint_on_quit(ctx.scope_mut(), &st.session.run);
                    Err(Stopped::Quit.error(pos))
                }
            }
        },
    );
}
