//! What a training run writes: the run directory, config.json, metrics (JSONL and CSV), sample
//! grids, plots and terminal progress.
//!
//! The run directory is `--out DIR` or `runs/<script-stem>-<YYYYmmdd-HHMMSS>` (UTC), created the
//! first time a script writes an output or calls `run_dir()`: a script (or test, or REPL
//! session) that writes nothing creates nothing. `config.json` is written when the directory is
//! created and rewritten by [`RunHandle::finish`] (status, end time, duration), which the CLI
//! calls when the script ends. Every file is written atomically (`<file>.tmp` in the same
//! directory, then renamed), except `metrics.jsonl`, which is appended one whole, flushed line at
//! a time (a killed run leaves complete lines).
//!
//! `fixed_noise(name, shape)` tensors are kept in memory for the run, drawn once from a generator
//! of their own seeded by the run's seed and the name (the same seed gives the same noise, and
//! the main random stream is left alone).

pub mod grid;
pub mod metrics;
pub mod plot;
pub mod progress;
pub mod sample_image;
pub mod scatter;
pub mod tensorboard;

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use crate::settings::SharedSettings;
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine};
use serde_json::{json, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// How a run was started (from the command line): recorded in its config.json.
pub struct RunInfo {
    /// Run directory from `--out`; `None`: `runs/<script>-<timestamp>`, made when first needed.
    pub out_dir: Option<PathBuf>,
    /// The script being run.
    pub script_path: Option<PathBuf>,
    /// The seed given with `--seed`.
    pub seed: u64,
    /// The device given with `--device`.
    pub device: String,
    /// Settings from `--set`.
    pub settings: SharedSettings,
    /// Write TensorBoard event files (`--no-tensorboard`: false).
    pub tensorboard: bool,
}

/// The state of one run, shared by the registered functions and the host.
pub struct RunState {
    requested_dir: Option<PathBuf>,
    script_path: Option<PathBuf>,
    seed: u64,
    device: String,
    settings: SharedSettings,
    dir: Option<PathBuf>,
    started: SystemTime,
    started_at: Instant,
    pub(crate) metrics: metrics::Metrics,
    noise: HashMap<String, Tensor>,
    status: Option<(String, Option<String>, f64)>,
    /// Set when this process continues an earlier run (`--resume`).
    resume: Option<Resume>,
    /// Whether this process has started writing into the run directory. A fresh run commits when
    /// it creates the directory; a resumed one only when it really continues (its checkpoint
    /// restored, or a first write), so that a resume that fails before leaves every file as it
    /// was.
    committed: bool,
    /// Whether to write TensorBoard events, and the event file once made.
    tensorboard: bool,
    events: Option<tensorboard::Writer>,
    /// The step (or epoch) of the last logged row: the step of a picture whose name has none.
    pub(crate) last_step: Option<i64>,
    /// Inputs evaluated at the paused prompt of this process (`run -i`), for config.json.
    prompt_inputs: Vec<Value>,
    /// The run's projection of 3-D scatters, once fixed or read from projection.json.
    pub(crate) projection: Option<scatter::Plane>,
}

/// What a resumed run keeps of the earlier one.
struct Resume {
    /// The earlier config.json (its `started` and `resumes` history are kept).
    previous: Value,
    /// This resume's entry in the `resumes` history.
    entry: Value,
    /// No checkpoint was written before the run stopped: it starts again from the beginning
    /// (the earlier metrics are dropped when it commits).
    restart: bool,
}

/// A handle on the current run, for the host (the CLI finishes the run with it).
#[derive(Clone)]
pub struct RunHandle(pub Rc<RefCell<RunState>>);

impl RunHandle {
    /// A run not started yet: its directory is made on first use (or by [`RunHandle::start`]).
    pub fn new(info: RunInfo) -> RunHandle {
        RunHandle(Rc::new(RefCell::new(RunState::new(info))))
    }
}

/// (year, month, day, hour, minute, second) in UTC.
fn utc_parts(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = if m <= 2 { y + 1 } else { y };
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

/// `YYYYmmdd-HHMMSS` (UTC).
pub fn stamp(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}")
}

/// ISO 8601 (UTC), e.g. `2026-11-25T11:48:31Z`.
pub fn iso8601(t: SystemTime) -> String {
    let (y, mo, d, h, mi, s) = utc_parts(t);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// A script value as JSON: numbers, strings, booleans, arrays, maps, one-element tensors as
/// numbers; anything else as its printed form. Non-finite numbers become strings ("NaN").
pub fn dyn_to_json(v: &Dynamic) -> Value {
    if v.is_unit() {
        Value::Null
    } else if let Ok(i) = v.as_int() {
        json!(i)
    } else if let Ok(f) = v.as_float() {
        float_json(f)
    } else if let Ok(b) = v.as_bool() {
        json!(b)
    } else if let Some(s) = v.clone().try_cast::<rhai::ImmutableString>() {
        json!(s.as_str())
    } else if let Some(a) = v.clone().try_cast::<rhai::Array>() {
        Value::Array(a.iter().map(dyn_to_json).collect())
    } else if let Some(m) = v.clone().try_cast::<rhai::Map>() {
        Value::Object(
            m.iter()
                .map(|(k, v)| (k.to_string(), dyn_to_json(v)))
                .collect(),
        )
    } else if let Some(t) = v.clone().try_cast::<Tensor>() {
        match crate::tensor::item(&t.0) {
            Ok(x) => float_json(x),
            Err(_) => json!(t.to_string()),
        }
    } else {
        json!(v.to_string())
    }
}

fn float_json(f: f64) -> Value {
    if f.is_finite() {
        json!(f)
    } else {
        json!(f.to_string())
    }
}

impl RunState {
    fn new(info: RunInfo) -> RunState {
        RunState {
            requested_dir: info.out_dir,
            script_path: info.script_path,
            seed: info.seed,
            device: info.device,
            settings: info.settings,
            dir: None,
            started: SystemTime::now(),
            started_at: Instant::now(),
            metrics: metrics::Metrics::default(),
            noise: HashMap::new(),
            status: None,
            resume: None,
            committed: false,
            tensorboard: info.tensorboard,
            events: None,
            last_step: None,
            prompt_inputs: Vec::new(),
            projection: None,
        }
    }

    /// The run's TensorBoard event file (created in the run directory on first use), unless
    /// `--no-tensorboard`.
    pub(crate) fn events(&mut self) -> ScriptResult<Option<&mut tensorboard::Writer>> {
        if !self.tensorboard {
            return Ok(None);
        }
        if self.events.is_none() {
            let dir = self.dir()?;
            self.events = Some(tensorboard::Writer::create(&dir)?);
        }
        Ok(self.events.as_mut())
    }

    /// Starts writing into the run directory (once): removes stale `*.tmp` files (left by a
    /// write that was killed), writes config.json, and for a run that restarts from the
    /// beginning drops the earlier metrics.
    pub fn commit(&mut self) -> ScriptResult<()> {
        if self.committed {
            return Ok(());
        }
        let Some(dir) = self.dir.clone() else {
            return Ok(());
        };
        crate::io::remove_stale_tmp(&dir);
        if self.resume.as_ref().is_some_and(|r| r.restart) {
            for f in ["metrics.jsonl", "metrics.csv"] {
                match std::fs::remove_file(dir.join(f)) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(script_err(format!(
                            "cannot remove {}: {e}",
                            dir.join(f).display()
                        )))
                    }
                    _ => {}
                }
            }
        }
        self.committed = true;
        self.write_config()
    }

    /// The run directory, created (with its config.json) on first use.
    pub fn dir(&mut self) -> ScriptResult<PathBuf> {
        if let Some(d) = &self.dir {
            return Ok(d.clone());
        }
        let dir = match &self.requested_dir {
            Some(d) => d.clone(),
            None => {
                let stem = self
                    .script_path
                    .as_ref()
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().to_string())
                    .unwrap_or_else(|| "run".to_string());
                let base = format!("{stem}-{}", stamp(self.started));
                let mut d = PathBuf::from("runs").join(&base);
                let mut k = 2;
                while d.exists() {
                    d = PathBuf::from("runs").join(format!("{base}-{k}"));
                    k += 1;
                }
                d
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            script_err(format!(
                "cannot create the run directory {}: {e}",
                dir.display()
            ))
        })?;
        self.dir = Some(dir.clone());
        // Writing config.json also proves the directory is writable.
        self.commit().map_err(|e| {
            script_err(format!(
                "the run directory {} is not writable: {}",
                dir.display(),
                crate::errors::message(&e)
            ))
        })?;
        Ok(dir)
    }

    /// `name` inside the run directory (with `default_ext` if it has none), its folders
    /// created; refused if it would leave the run directory (see [`crate::sandbox`]).
    pub fn path(&mut self, name: &str, default_ext: &str) -> ScriptResult<PathBuf> {
        if name.trim().is_empty() {
            return Err(script_err("an output file name must not be empty"));
        }
        let mut p = PathBuf::from(name);
        if p.extension().is_none() && !default_ext.is_empty() {
            p.set_extension(default_ext);
        }
        let dir = self.dir()?;
        self.commit()?;
        crate::sandbox::write_path(&dir, &p.to_string_lossy()).map_err(script_err)
    }

    /// The content of config.json.
    pub fn config_json(&self) -> Value {
        let settings = self.settings.borrow();
        let mut resolved: serde_json::Map<String, Value> = settings
            .given
            .iter()
            .map(|(k, v)| (k.clone(), dyn_to_json(v)))
            .collect();
        for (k, v) in &settings.resolved {
            resolved.insert(k.clone(), dyn_to_json(v));
        }
        let given: serde_json::Map<String, Value> = settings
            .given
            .iter()
            .map(|(k, v)| (k.clone(), dyn_to_json(v)))
            .collect();
        let (script_text, script) = match &self.script_path {
            Some(p) => (std::fs::read(p).ok(), json!(p.display().to_string())),
            None => (None, Value::Null),
        };
        let sha = script_text.map(|t| {
            use sha2::Digest;
            let h = sha2::Sha256::digest(&t);
            h.iter().map(|b| format!("{b:02x}")).collect::<String>()
        });
        let mut v = json!({
            "ganscript_version": env!("CARGO_PKG_VERSION"),
            "script": script,
            "script_sha256": sha,
            "seed": self.seed,
            "device": self.device,
            "settings": resolved,
            "given": given,
            "started": iso8601(self.started),
            "status": "running",
        });
        if let Some(r) = &self.resume {
            // The run began earlier: keep when, and with which script; this process is one
            // more entry of its history.
            for key in ["started", "script", "script_sha256"] {
                if let Some(x) = r.previous.get(key) {
                    v[key] = x.clone();
                }
            }
            let mut history = r
                .previous
                .get("resumes")
                .and_then(|h| h.as_array())
                .cloned()
                .unwrap_or_default();
            history.push(r.entry.clone());
            v["resumes"] = Value::Array(history);
        }
        // The paused prompt's inputs: the earlier processes' (a resumed run), then this one's.
        let mut inputs = self
            .resume
            .as_ref()
            .and_then(|r| r.previous.get("prompt_inputs"))
            .and_then(|h| h.as_array())
            .cloned()
            .unwrap_or_default();
        inputs.extend(self.prompt_inputs.iter().cloned());
        if !inputs.is_empty() {
            v["prompt_inputs"] = Value::Array(inputs);
        }
        if let Some((status, error, duration)) = &self.status {
            v["status"] = json!(status);
            v["finished"] = json!(iso8601(SystemTime::now()));
            v["duration_s"] = json!(duration);
            if let Some(e) = error {
                v["error"] = json!(e);
            }
        }
        v
    }

    fn write_config(&self) -> ScriptResult<()> {
        let Some(dir) = &self.dir else { return Ok(()) };
        if !self.committed {
            return Ok(());
        }
        let text = serde_json::to_string_pretty(&self.config_json())
            .map_err(|e| script_err(format!("config.json: {e}")))?;
        crate::io::atomic_write(&dir.join("config.json"), text.as_bytes())
    }
}

impl RunHandle {
    /// Records `input`, evaluated at the paused prompt, in config.json's `prompt_inputs` (with
    /// the time and the number of metric rows logged before it).
    pub fn record_prompt_input(&self, input: &str) -> ScriptResult<()> {
        let mut st = self.0.borrow_mut();
        let entry = json!({
            "time": iso8601(SystemTime::now()),
            "after_rows": st.metrics.rows.len(),
            "input": input.trim_end(),
        });
        st.prompt_inputs.push(entry);
        st.write_config()
    }

    /// The run directory (created on first use).
    pub fn dir(&self) -> ScriptResult<PathBuf> {
        self.0.borrow_mut().dir()
    }

    /// The script the run executes, if it came from a file.
    pub fn script_path(&self) -> Option<PathBuf> {
        self.0.borrow().script_path.clone()
    }

    /// The run directory if the script made one.
    pub fn dir_if_created(&self) -> Option<PathBuf> {
        self.0.borrow().dir.clone()
    }

    /// The run directory, made or only asked for (`--out`): where a script may read.
    pub fn dir_or_requested(&self) -> Option<PathBuf> {
        let st = self.0.borrow();
        st.dir.clone().or_else(|| st.requested_dir.clone())
    }

    /// Ends the run: `status` is "ok", "error", "interrupted" or "stopped" (`:quit`). Rewrites config.json (only if
    /// the run made its directory, and for a resumed run only if it got as far as continuing:
    /// a resume that failed before leaves the run as it was) and returns the directory.
    pub fn finish(&self, status: &str, error: Option<&str>) -> Option<PathBuf> {
        let mut st = self.0.borrow_mut();
        let duration = st.started_at.elapsed().as_secs_f64();
        st.status = Some((status.to_string(), error.map(str::to_string), duration));
        let dir = st.dir.clone()?;
        if status == "ok" {
            if let Err(e) = st.commit() {
                eprintln!("warning: {}", crate::errors::message(&e));
            }
        }
        if let Err(e) = st.write_config() {
            eprintln!("warning: {}", crate::errors::message(&e));
        }
        Some(dir)
    }

    /// Creates the run directory now (a fresh run, before any work): an unwritable `--out` is
    /// found at once.
    pub fn start(&self) -> Result<PathBuf, Error> {
        Ok(self.dir().map_err(|e| crate::errors::message(&e))?)
    }

    /// Continues the earlier run in `dir` (`--resume`): nothing is written until the run really
    /// continues (see [`RunState::commit`]). `previous` is its config.json, `entry` this resume's
    /// line of its history; `restart` when it has no checkpoint and starts again.
    pub fn begin_resume(&self, dir: &Path, previous: Value, entry: Value, restart: bool) {
        let mut st = self.0.borrow_mut();
        st.dir = Some(dir.to_path_buf());
        st.committed = false;
        st.resume = Some(Resume {
            previous,
            entry,
            restart,
        });
    }

    /// See [`RunState::commit`].
    pub fn commit(&self) -> ScriptResult<()> {
        self.0.borrow_mut().commit()
    }
}

impl crate::sandbox::Outputs for RunHandle {
    fn dir_or_requested(&self) -> Option<PathBuf> {
        RunHandle::dir_or_requested(self)
    }
    fn output_path(&self, name: &str, default_ext: &str) -> ScriptResult<PathBuf> {
        self.0.borrow_mut().path(name, default_ext)
    }
}

/// Registers the run's functions; each captures `handle`, the run of this engine.
pub fn register(engine: &mut Engine, handle: &RunHandle) {
    engine.register_type_with_name::<RunHandle>("Run");

    let h = handle.clone();
    reg!(
        engine,
        "run_dir",
        "The run directory (--out, or runs/<script>-<time>), created on first use.",
        move || -> ScriptResult<String> { Ok(h.dir()?.display().to_string()) }
    );
    let h = handle.clone();
    reg!(
        engine,
        "run_path",
        "The absolute path of a file inside the run directory (its folders are created); a path that would leave it is refused.",
        move |name: &str| -> ScriptResult<String> {
            let p = h.0.borrow_mut().path(name, "")?;
            Ok(crate::sandbox::absolute(&p).display().to_string())
        }
    );
    let h = handle.clone();
    reg!(volatile engine, "fixed_noise", "The same N(0,1) tensor every call with this name within a run (drawn once, seeded): for comparable sample grids.", move |name: &str, shape: Dynamic| -> ScriptResult<Tensor> {
        let dims = crate::tensor::new_shape(&shape, "fixed_noise", crate::device::default_dtype())?;
        let mut st = h.0.borrow_mut();
        if let Some(t) = st.noise.get(name) {
            if t.0.dims() != dims.as_slice() {
                return Err(script_err(format!(
                    "fixed_noise(\"{name}\"): asked for shape {dims:?}, but this name was first drawn with shape {:?}",
                    t.0.dims()
                )));
            }
            return Ok(t.clone());
        }
        let n = dims.iter().product();
        // Drawn from its own generator (seed and name), so the main stream is not disturbed:
        // a resumed run draws the same noise and the same batches as the uninterrupted one.
        let values = crate::rng::normal_vec_keyed(st.seed, name, n);
        let t = Tensor(crate::tensor::new_default(values, &dims)?);
        st.noise.insert(name.to_string(), t.clone());
        Ok(t)
    });
    metrics::register(engine, handle);
    grid::register(engine, handle);
    plot::register(engine, handle);
    scatter::register(engine, handle);
    progress::register(engine);
}
