//! Run checkpoints: every tracked net and optimizer, the script's declared state (counters,
//! margin adapters, schedules, any values and tensors it passes), the RNG state and the number of
//! metric rows, in one file written atomically (`checkpoint.safetensors` in the run directory).
//!
//! In a script:
//! ```rhai
//! track("G", G); track("opt_g", opt_g);          // nets and optimizers (restored on resume)
//! let st = resume_state(#{ epoch: 0, margin: margin });   // the saved state, or these defaults
//! for epoch in (st.epoch + 1)..=epochs { ...; save_checkpoint(#{ epoch: epoch, margin: margin }); }
//! ```
//! `ganscript run FILE --resume RUN_DIR` continues such a run: `track` loads each object's saved
//! values, `resume_state` returns the saved state, restores the generator exactly and cuts the
//! run's metrics back to the rows logged when the checkpoint was written, so a resumed CPU run
//! reproduces the uninterrupted one bit for bit.
//!
//! Ctrl-C in a run that tracks objects asks for a stop at the next `save_checkpoint` (which
//! writes, then stops); a second Ctrl-C stops at once (the previous checkpoint stays valid).

pub mod file;

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use crate::nn::Net;
use crate::optim::Optimizer;
use crate::run::RunHandle;
use crate::tensor::Tensor;
use candle_core::Tensor as CT;
use rhai::{Array, Dynamic, Engine, Map, INT};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The checkpoint's file name inside a run directory.
pub const FILE_NAME: &str = "checkpoint.safetensors";

static DEFER_INTERRUPT: AtomicBool = AtomicBool::new(false);
static FORCE_STOP: AtomicBool = AtomicBool::new(false);

/// True when a Ctrl-C should wait for the next `save_checkpoint` (the script tracks objects).
pub fn defers_interrupt() -> bool {
    DEFER_INTERRUPT.load(Ordering::SeqCst) && !FORCE_STOP.load(Ordering::SeqCst)
}

/// A second Ctrl-C: stop at the next operation even if a checkpoint is pending.
pub fn force_stop() {
    FORCE_STOP.store(true, Ordering::SeqCst);
}

#[derive(Clone)]
enum Tracked {
    Net(Net),
    Opt(Optimizer),
}

struct Loaded {
    path: PathBuf,
    tensors: HashMap<String, CT>,
    state: Value,
}

#[derive(Default)]
struct CheckpointState {
    tracked: Vec<(String, Tracked)>,
    resume: Option<Loaded>,
    resumed: bool,
    /// The state map of the last `save_checkpoint` (or the one `resume_state` restored): the
    /// template `:save` and `:quit` rebuild from the live variables.
    last_values: Option<Map>,
}

thread_local! {
    static STATE: RefCell<CheckpointState> = RefCell::new(CheckpointState::default());
}

/// Loads `dir`'s checkpoint for the next script run on this thread (`--resume`). A missing or
/// damaged checkpoint is an error naming the file; nothing is written.
pub fn prepare_resume(dir: &Path) -> Result<(), Error> {
    let path = dir.join(FILE_NAME);
    if !path.exists() {
        return Err(Error::Msg(format!(
            "cannot resume {}: it holds no {FILE_NAME} (was the run started by a script that calls save_checkpoint?)",
            dir.display()
        )));
    }
    let (tensors, state) = file::read(&path, &crate::device::current_device())?;
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        *s = CheckpointState {
            resume: Some(Loaded {
                path,
                tensors,
                state,
            }),
            ..Default::default()
        };
    });
    Ok(())
}

/// The nets of a checkpoint, rebuilt from their saved architecture and values.
pub fn load_nets(path: &Path) -> Result<Vec<(String, Net)>, Error> {
    let (tensors, state) = file::read(path, &crate::device::current_device())?;
    let specs = state["nets"].as_object().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (name, spec) in specs {
        let net = Net::from_spec(&spec)
            .map_err(|e| format!("checkpoint {}: net `{name}`: {e}", path.display()))?;
        net.load_named(&prefixed(&tensors, &format!("net/{name}/")))
            .map_err(|e| format!("checkpoint {}: net `{name}`: {e}", path.display()))?;
        out.push((name, net));
    }
    Ok(out)
}

/// The state map saved by the script in a checkpoint (numbers, tensors, ...).
pub fn load_values(path: &Path) -> Result<Map, Error> {
    let (tensors, state) = file::read(path, &crate::device::current_device())?;
    Ok(decode(&state["values"], &tensors, path)
        .map_err(|e| e.to_string())?
        .try_cast::<Map>()
        .ok_or_else(|| {
            format!(
                "checkpoint {}: the saved state is not a map",
                path.display()
            )
        })?)
}

/// After a resumed run: true if the script never called `resume_state` (it cannot resume).
pub fn resume_unused() -> bool {
    STATE.with(|s| {
        let s = s.borrow();
        s.resume.is_some() && !s.resumed
    })
}

fn prefixed(tensors: &HashMap<String, CT>, prefix: &str) -> HashMap<String, CT> {
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), v.clone())))
        .collect()
}

fn restore_tracked(name: &str, obj: &Tracked, loaded: &Loaded) -> ScriptResult<()> {
    let file = loaded.path.display();
    let (prefix, kind) = match obj {
        Tracked::Net(_) => (format!("net/{name}/"), "net"),
        Tracked::Opt(_) => (format!("opt/{name}/"), "optimizer"),
    };
    let values = prefixed(&loaded.tensors, &prefix);
    if values.is_empty() {
        return Err(script_err(format!(
            "checkpoint {file} holds no {kind} named `{name}`"
        )));
    }
    let r = match obj {
        Tracked::Net(n) => n.load_named(&values),
        Tracked::Opt(o) => o.set_state_tensors(&values),
    };
    r.map_err(|e| script_err(format!("checkpoint {file}, {kind} `{name}`: {e}")))
}

/// How deep arrays and maps may nest in a checkpoint's state map.
const MAX_STATE_DEPTH: usize = 32;

/// Encodes a script value as JSON, moving tensors into `tensors` under `path`.
fn encode(v: &Dynamic, path: &str, tensors: &mut Vec<(String, CT)>) -> ScriptResult<Value> {
    // Each level is one more `.` in the path (and JSON nesting, which readers limit to 128).
    if path.matches('.').count() > MAX_STATE_DEPTH {
        return Err(script_err(format!(
            "save_checkpoint: the state map nests more than {MAX_STATE_DEPTH} levels deep"
        )));
    }
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(json!({ "bool": b }));
    }
    if let Ok(i) = v.as_int() {
        return Ok(json!({ "int": i }));
    }
    if let Ok(f) = v.as_float() {
        // Bits, so that every float (NaN and infinities included) comes back exactly.
        return Ok(json!({ "float_bits": f.to_bits().to_string() }));
    }
    if v.is_string() {
        return Ok(json!({ "string": v.to_string() }));
    }
    if let Some(a) = v.clone().try_cast::<Array>() {
        let items = a
            .iter()
            .enumerate()
            .map(|(i, x)| encode(x, &format!("{path}.{i}"), tensors))
            .collect::<ScriptResult<Vec<_>>>()?;
        return Ok(json!({ "array": items }));
    }
    if let Some(m) = v.clone().try_cast::<Map>() {
        let mut out = serde_json::Map::new();
        for (k, x) in m.iter() {
            out.insert(k.to_string(), encode(x, &format!("{path}.{k}"), tensors)?);
        }
        return Ok(json!({ "map": out }));
    }
    if let Some(t) = v.clone().try_cast::<Tensor>() {
        let key = format!("state/{path}");
        tensors.push((key.clone(), t.0.detach()));
        return Ok(json!({ "tensor": key }));
    }
    let codecs = crate::state::codecs();
    for c in &codecs {
        if let Some(state) = (c.encode)(v) {
            return Ok(json!({ c.tag: encode(&Dynamic::from_map(state), path, tensors)? }));
        }
    }
    let saved: Vec<&str> = codecs.iter().map(|c| c.plural).collect();
    Err(script_err(format!(
        "save_checkpoint: `{path}` is a {}, which cannot go into the state map: track nets and \
         optimizers with track(name, value); numbers, strings, arrays, maps, tensors{}{} can be \
         state",
        v.type_name(),
        if saved.is_empty() { "" } else { ", " },
        saved.join(", ")
    )))
}

fn decode(v: &Value, tensors: &HashMap<String, CT>, file: &Path) -> ScriptResult<Dynamic> {
    let bad = || {
        script_err(format!(
            "checkpoint {}: unreadable state value {v}",
            file.display()
        ))
    };
    if v.is_null() {
        return Ok(Dynamic::UNIT);
    }
    let obj = v.as_object().ok_or_else(bad)?;
    let (tag, inner) = obj.iter().next().ok_or_else(bad)?;
    Ok(match tag.as_str() {
        "bool" => Dynamic::from_bool(inner.as_bool().ok_or_else(bad)?),
        "int" => Dynamic::from_int(inner.as_i64().ok_or_else(bad)? as INT),
        "float_bits" => {
            let bits: u64 = inner
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(bad)?;
            Dynamic::from_float(f64::from_bits(bits))
        }
        "string" => Dynamic::from(inner.as_str().ok_or_else(bad)?.to_string()),
        "array" => Dynamic::from_array(
            inner
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|x| decode(x, tensors, file))
                .collect::<ScriptResult<Array>>()?,
        ),
        "map" => {
            let mut m = Map::new();
            for (k, x) in inner.as_object().ok_or_else(bad)? {
                m.insert(k.as_str().into(), decode(x, tensors, file)?);
            }
            Dynamic::from_map(m)
        }
        "tensor" => {
            let key = inner.as_str().ok_or_else(bad)?;
            let t = tensors.get(key).ok_or_else(|| {
                script_err(format!(
                    "checkpoint {}: missing tensor `{key}`",
                    file.display()
                ))
            })?;
            Dynamic::from(Tensor(t.clone()))
        }
        other => match crate::state::codec(other) {
            Some(c) => {
                let m = decode(inner, tensors, file)?
                    .try_cast::<Map>()
                    .ok_or_else(bad)?;
                (c.decode)(&m)?
            }
            None => return Err(bad()),
        },
    })
}

fn track(name: &str, value: Dynamic) -> ScriptResult<()> {
    let obj = if let Some(n) = value.clone().try_cast::<Net>() {
        Tracked::Net(n)
    } else if let Some(o) = value.clone().try_cast::<Optimizer>() {
        Tracked::Opt(o)
    } else {
        return Err(script_err(format!(
            "track(\"{name}\", ...): only nets and optimizers are tracked (got a {}); put other \
             values in the state map of save_checkpoint / resume_state",
            value.type_name()
        )));
    };
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        if s.tracked.iter().any(|(n, _)| n == name) {
            return Err(script_err(format!("track: `{name}` is already tracked")));
        }
        if let Some(loaded) = &s.resume {
            restore_tracked(name, &obj, loaded)?;
        }
        if let Tracked::Net(n) = &obj {
            n.set_name(name);
        }
        s.tracked.push((name.to_string(), obj));
        DEFER_INTERRUPT.store(true, Ordering::SeqCst);
        Ok(())
    })
}

fn resume_state(defaults: Map, run: &RunHandle) -> ScriptResult<Map> {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        let Some(loaded) = &s.resume else {
            s.last_values = Some(defaults.clone());
            return Ok(defaults);
        };
        if s.resumed {
            return Err(script_err("resume_state: called twice"));
        }
        let doc = &loaded.state;
        let mut out = defaults;
        if let Some(saved) = doc.get("values") {
            let m = decode(saved, &loaded.tensors, &loaded.path)?
                .try_cast::<Map>()
                .ok_or_else(|| script_err("checkpoint: the saved state is not a map"))?;
            for (k, v) in m {
                out.insert(k, v);
            }
        }
        let rng: crate::rng::RngState =
            serde_json::from_value(doc["rng"].clone()).map_err(|e| {
                script_err(format!(
                    "checkpoint {}: bad RNG state: {e}",
                    loaded.path.display()
                ))
            })?;
        crate::rng::restore(&rng);
        let rows = doc["metrics_rows"].as_u64().unwrap_or(0) as usize;
        crate::run::metrics::restore(run, rows)?;
        s.resumed = true;
        s.last_values = Some(out.clone());
        Ok(out)
    })
}

fn save_checkpoint(values: &Map, interrupt: &AtomicBool, run: &RunHandle) -> ScriptResult<String> {
    let path = write_checkpoint(values, run)?;
    if interrupt.load(Ordering::SeqCst) {
        return Err(crate::errors::Stopped::Saved.error(rhai::Position::NONE));
    }
    Ok(path.display().to_string())
}

/// Writes the checkpoint of `run`: the tracked nets and optimizers, `values`, the generator and
/// the metrics position. Remembers `values` as the last state map.
fn write_checkpoint(values: &Map, run: &RunHandle) -> ScriptResult<PathBuf> {
    let dir = run.dir()?;
    run.commit()?;
    let mut tensors: Vec<(String, CT)> = Vec::new();
    let tracked = STATE.with(|s| s.borrow().tracked.clone());
    for (name, obj) in &tracked {
        match obj {
            Tracked::Net(n) => {
                for (k, t) in n.named_tensors() {
                    tensors.push((format!("net/{name}/{k}"), t));
                }
            }
            Tracked::Opt(o) => {
                for (k, t) in o.state_tensors() {
                    tensors.push((format!("opt/{name}/{k}"), t));
                }
            }
        }
    }
    let encoded = encode(&Dynamic::from_map(values.clone()), "", &mut tensors)?;
    let state = json!({
        "values": encoded,
        "rng": crate::rng::state(),
        "metrics_rows": crate::run::metrics::row_count(run),
        "tracked": tracked.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
        "nets": tracked
            .iter()
            .filter_map(|(n, o)| match o {
                Tracked::Net(net) => Some((n.clone(), net.spec())),
                Tracked::Opt(_) => None,
            })
            .collect::<serde_json::Map<String, Value>>(),
    });
    let path = dir.join(FILE_NAME);
    file::write(&path, &tensors, &state).map_err(script_err)?;
    STATE.with(|s| s.borrow_mut().last_values = Some(values.clone()));
    Ok(path)
}

/// The names of the tracked nets and optimizers.
pub fn tracked_names() -> Vec<String> {
    STATE.with(|s| s.borrow().tracked.iter().map(|(n, _)| n.clone()).collect())
}

/// What [`save_live`] wrote.
#[derive(Debug, Clone)]
pub struct LiveSave {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The script of the run (for the resume command).
    pub script: Option<PathBuf>,
    /// The tracked nets and optimizers written.
    pub tracked: Vec<String>,
    /// The state map was given explicitly (its keys are in `live`).
    pub explicit: bool,
    /// State keys taken from the live variable of the same name.
    pub live: Vec<String>,
    /// State keys kept from the last `save_checkpoint` (no variable of that name and type).
    pub kept: Vec<String>,
}

/// A checkpoint of a paused run, written from the prompt (`:save`, and `:quit` before it
/// stops the run). The nets, optimizers and generator are saved as they are now. The state map
/// is `explicit` if given; otherwise the last `save_checkpoint`'s map with each key replaced by
/// the live variable of that name in `scope` when there is one of the same type (so a step
/// counter is saved as it stands), the saved value otherwise.
pub fn save_live(
    scope: &rhai::Scope,
    explicit: Option<Map>,
    run: &RunHandle,
) -> Result<LiveSave, Error> {
    let tracked = tracked_names();
    if tracked.is_empty() && explicit.is_none() {
        return Err(
            "this run tracks no nets or optimizers (track(name, value)), so there is nothing to checkpoint"
                .into(),
        );
    }
    let given = explicit.is_some();
    let (values, live, kept) = match explicit {
        Some(m) => {
            let keys = m.keys().map(|k| k.to_string()).collect();
            (m, keys, Vec::new())
        }
        None => {
            let template = STATE
                .with(|s| s.borrow().last_values.clone())
                .unwrap_or_default();
            let (mut live, mut kept) = (Vec::new(), Vec::new());
            let mut values = Map::new();
            for (k, saved) in template {
                let current = scope.get(k.as_str()).map(Dynamic::flatten_clone);
                match current {
                    Some(v) if v.type_name() == saved.flatten_clone().type_name() => {
                        values.insert(k.clone(), v);
                        live.push(k.to_string());
                    }
                    _ => {
                        values.insert(k.clone(), saved);
                        kept.push(k.to_string());
                    }
                }
            }
            (values, live, kept)
        }
    };
    let path = write_checkpoint(&values, run).map_err(|e| crate::errors::message(&e))?;
    Ok(LiveSave {
        path,
        script: run.script_path(),
        tracked,
        explicit: given,
        live,
        kept,
    })
}

/// Registers `track`, `resume_state`, `is_resuming` and `save_checkpoint` for `run`; a stop
/// requested through `interrupt` happens after the next checkpoint is written.
pub fn register(engine: &mut Engine, interrupt: Arc<AtomicBool>, run: &RunHandle) {
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.tracked.clear();
        s.resumed = false;
        s.last_values = None;
    });
    reg!(engine, "track", "Registers a net or optimizer for checkpoints; when resuming (--resume), loads its saved values now.", |name: &str, value: Dynamic| {
        track(name, value)
    });
    reg!(engine, "resume_state", "The state saved by the last save_checkpoint when resuming (restoring the generator and the metrics), else `defaults`.", {
        let run = run.clone();
        move |defaults: Map| resume_state(defaults, &run)
    });
    reg!(
        engine,
        "is_resuming",
        "True when the run continues from a checkpoint (--resume of a run that saved one): a script skips its one-off set-up (pre-training) then.",
        || { STATE.with(|s| s.borrow().resume.is_some()) }
    );
    reg!(engine, "save_checkpoint", "Writes every tracked net and optimizer, this state map, the generator and the metrics position to checkpoint.safetensors in the run directory, atomically; returns its path.", {
        let run = run.clone();
        move |values: Map| save_checkpoint(&values, &interrupt, &run)
    });
}
