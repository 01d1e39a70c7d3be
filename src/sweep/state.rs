//! What a run directory says about its run, and what the sweep does with it next.

use super::spec::Run;
use crate::errors::Error;
use serde_json::Value;
use std::path::Path;

/// The state of a run, read from its directory.
#[derive(Clone, Debug, PartialEq)]
pub enum RunState {
    /// No directory (or an empty one).
    New,
    /// config.json says "ok".
    Done,
    /// config.json says "running" (a run in progress, or one that was killed), "interrupted",
    /// "stopped" (`:quit` at a paused prompt) or "error"; `checkpoint` tells whether it can be
    /// resumed.
    Stopped { status: String, checkpoint: bool },
    /// A directory that is not a run directory (no readable config.json, yet not empty).
    Foreign(String),
}

impl RunState {
    /// A one-word description.
    pub fn word(&self) -> &str {
        match self {
            RunState::New => "new",
            RunState::Done => "done",
            RunState::Stopped { status, .. } => match status.as_str() {
                "error" => "failed",
                "interrupted" => "interrupted",
                "running" => "running/killed",
                other => other,
            },
            RunState::Foreign(_) => "unknown",
        }
    }
}

/// What the sweep does with a run.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Action {
    /// Finished: nothing to do.
    Skip,
    /// Continue from its checkpoint (`--resume`).
    Resume,
    /// Start it (again) from scratch; an old directory without a checkpoint is cleared first.
    Start,
}

impl Action {
    pub fn word(self) -> &'static str {
        match self {
            Action::Skip => "skip",
            Action::Resume => "resume",
            Action::Start => "start",
        }
    }
}

/// The parsed config.json of a run directory, if there is one.
pub fn config(dir: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The state of the run in `dir`.
pub fn state(dir: &Path) -> RunState {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e.count(),
        Err(_) => return RunState::New,
    };
    let Some(cfg) = config(dir) else {
        return if entries == 0 {
            RunState::New
        } else {
            RunState::Foreign(format!(
                "{} exists but holds no readable config.json: not a run directory",
                dir.display()
            ))
        };
    };
    let status = cfg["status"].as_str().unwrap_or("running").to_string();
    if status == "ok" {
        return RunState::Done;
    }
    RunState::Stopped {
        status,
        checkpoint: dir.join(crate::checkpoint::FILE_NAME).exists(),
    }
}

/// What to do with `run`, or why nothing can be done.
pub fn action(run: &Run) -> Result<Action, Error> {
    match state(&run.dir) {
        RunState::New => Ok(Action::Start),
        RunState::Done => Ok(Action::Skip),
        RunState::Stopped {
            checkpoint: true, ..
        } => Ok(Action::Resume),
        RunState::Stopped {
            checkpoint: false, ..
        } => Ok(Action::Start),
        RunState::Foreign(why) => Err(Error::Msg(format!("run {}: {why}; move it away", run.name))),
    }
}

/// The `--set` values a finished run was given that differ from the sweep's, as
/// `key: run's value -> sweep's value` (a sweep file edited after the run finished).
pub fn changed_settings(run: &Run) -> Vec<String> {
    let Some(cfg) = config(&run.dir) else {
        return Vec::new();
    };
    let given = &cfg["given"];
    let mut out = Vec::new();
    for (k, v) in &run.sets {
        let want = crate::run::dyn_to_json(&crate::settings::parse_value(&v.set_text()));
        let have = given.get(k).cloned().unwrap_or(Value::Null);
        if have != want {
            out.push(format!("{k}: {have} -> {want}"));
        }
    }
    out
}

/// Removes the directory of a run that starts from scratch (it holds no checkpoint). Only a
/// run directory (with config.json) or an empty one is removed.
pub fn clear(run: &Run) -> Result<(), Error> {
    match state(&run.dir) {
        RunState::New => Ok(()),
        RunState::Foreign(why) => Err(Error::Msg(format!("run {}: {why}; move it away", run.name))),
        _ => Ok(std::fs::remove_dir_all(&run.dir)
            .map_err(|e| format!("cannot clear {}: {e}", run.dir.display()))?),
    }
}

/// The last value of every numeric key of the run's `metrics.jsonl`, in the order the keys
/// first appear. Non-finite values logged as strings ("NaN", "inf") are read back as numbers.
pub fn last_metrics(dir: &Path) -> Vec<(String, f64)> {
    let Ok(rows) = crate::compare::read_rows(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, f64)> = Vec::new();
    for row in rows {
        let Some(obj) = row.as_object() else { continue };
        for (k, v) in obj {
            let x = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => match s.as_str() {
                    "NaN" | "inf" | "-inf" => s.parse().ok(),
                    _ => None,
                },
                _ => None,
            };
            let Some(x) = x else { continue };
            match out.iter_mut().find(|(key, _)| key == k) {
                Some(slot) => slot.1 = x,
                None => out.push((k.clone(), x)),
            }
        }
    }
    out
}
