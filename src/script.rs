//! Loading, checking and running a script file, with every failure turned into a
//! [`ScriptDiagnostic`] (and panics inside the host caught and reported as bugs).

use crate::diagnostics::{self, ScriptDiagnostic};
use crate::errors::Error;
use crate::session::{self, EngineOptions, Sources};
use rhai::{Dynamic, Engine, Scope, AST};
use std::path::Path;

/// A compiled script with its engine, ready to run.
pub struct Script {
    pub engine: Engine,
    pub sources: Sources,
    /// The run the script's functions write into (the host starts and finishes it).
    pub run: crate::run::RunHandle,
    pub name: String,
    pub ast: AST,
}

/// Reads a script file; a missing or unreadable file is a diagnostic naming it.
pub fn read_source(path: &Path) -> Result<String, ScriptDiagnostic> {
    std::fs::read_to_string(path)
        .map_err(|e| ScriptDiagnostic::plain(format!("cannot read script {}: {e}", path.display())))
}

/// Compiles `text` (named `name`) with a new engine.
pub fn compile(name: &str, text: &str, opts: &EngineOptions) -> Result<Script, ScriptDiagnostic> {
    let session::Built {
        engine,
        sources,
        run,
    } = session::build(opts).map_err(ScriptDiagnostic::plain)?;
    sources.insert(name, text);
    let mut ast = engine
        .compile(text)
        .map_err(|e| diagnostics::from_parse_error(&e, name, text))?;
    ast.set_source(name);
    Ok(Script {
        engine,
        sources,
        run,
        name: name.to_string(),
        ast,
    })
}

impl Script {
    /// Names of the functions the script defines (for suggestions).
    pub fn script_fns(&self) -> Vec<String> {
        self.ast
            .iter_functions()
            .map(|f| f.name.to_string())
            .collect()
    }

    /// Runs the script in `scope`; errors and host panics become diagnostics.
    pub fn run(&self, scope: &mut Scope) -> Result<Dynamic, ScriptDiagnostic> {
        let result = catch_panics(|| self.engine.eval_ast_with_scope::<Dynamic>(scope, &self.ast));
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.diagnose(&e)),
            Err(panic) => Err(ScriptDiagnostic::plain(format!(
                "internal error (a bug in ganscript, please report it): {panic}"
            ))),
        }
    }

    pub fn diagnose(&self, e: &rhai::EvalAltResult) -> ScriptDiagnostic {
        diagnostics::from_eval_error(
            e,
            &self.name,
            &self.sources,
            &self.engine,
            &self.script_fns(),
        )
    }
}

/// Runs `f`, turning a panic into its message instead of unwinding to the user.
pub fn catch_panics<T>(f: impl FnOnce() -> T) -> Result<T, Error> {
    Ok(
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
            p.downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".to_string())
        })?,
    )
}

/// Every syntax error of a script. rhai stops at the first one, so each reported line is
/// blanked and the text parsed again (up to 50 errors).
pub fn check(name: &str, text: &str) -> Vec<ScriptDiagnostic> {
    let engine = match session::new_engine(&EngineOptions::default()) {
        Ok((e, _)) => e,
        Err(msg) => return vec![ScriptDiagnostic::plain(msg)],
    };
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut found = Vec::new();
    let mut seen_lines = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let current = lines.join("\n");
        match engine.compile(&current) {
            Ok(_) => break,
            Err(e) => {
                let line = e.position().line().unwrap_or(lines.len().max(1));
                if !seen_lines.insert(line) {
                    break;
                }
                found.push(diagnostics::from_parse_error(&e, name, text));
                if line == 0 || line > lines.len() {
                    break;
                }
                lines[line - 1] = String::new();
            }
        }
    }
    found
}
