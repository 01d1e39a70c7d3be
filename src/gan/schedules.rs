//! Weight schedules: the lens weight λ of Tempered Adversarial Networks (`sine_decay`), the
//! annealed regulariser weight γ of Roth et al. (`exp_anneal`), and the usual linear, cosine,
//! step and constant schedules.
//!
//! A [`Schedule`] is a function of the step `t` (`s.at(t)`) that also keeps its own position
//! (`s.step()`, `s.t`, `s.value`), which checkpoints save with `s.state()` / `s.set_state(map)`.

use crate::errors::{script_err, ScriptResult};
use rhai::{Dynamic, Engine, Map, FLOAT, INT};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::f64::consts::PI;

/// What a schedule computes.
#[derive(Clone, Debug, PartialEq)]
pub enum ScheduleKind {
    /// `1 - sin(tπ / 2K)` for `t ≤ K`, else 0.
    SineDecay { k: f64 },
    /// `start · decay_factor^(t / T)`.
    ExpAnneal {
        start: f64,
        decay_factor: f64,
        t_total: f64,
    },
    /// `from → to` linearly over `T` steps, then `to`.
    Linear { from: f64, to: f64, t_total: f64 },
    /// `from → to` along half a cosine over `T` steps, then `to`.
    Cosine { from: f64, to: f64, t_total: f64 },
    /// `start · factor^floor(t / every)`.
    StepDecay { start: f64, factor: f64, every: f64 },
    /// `value` at every step.
    Constant { value: f64 },
}

/// A schedule with its current position `t`.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub t: f64,
}

/// A schedule's full state, for checkpoints: its kind, parameters and position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScheduleState {
    pub kind: String,
    pub params: BTreeMap<String, f64>,
    pub t: f64,
}

fn positive(v: f64, what: &str, name: &str) -> ScriptResult<f64> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(script_err(format!("{name}: {what} must be > 0, got {v}")))
    }
}

fn finite(v: f64, what: &str, name: &str) -> ScriptResult<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(script_err(format!(
            "{name}: {what} must be finite, got {v}"
        )))
    }
}

impl ScheduleKind {
    pub fn sine_decay(k: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::SineDecay {
            k: positive(k, "K", "sine_decay")?,
        })
    }
    pub fn exp_anneal(start: f64, decay_factor: f64, t_total: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::ExpAnneal {
            start: finite(start, "start", "exp_anneal")?,
            decay_factor: positive(decay_factor, "decay_factor", "exp_anneal")?,
            t_total: positive(t_total, "T", "exp_anneal")?,
        })
    }
    pub fn linear(from: f64, to: f64, t_total: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::Linear {
            from: finite(from, "from", "linear")?,
            to: finite(to, "to", "linear")?,
            t_total: positive(t_total, "T", "linear")?,
        })
    }
    pub fn cosine(from: f64, to: f64, t_total: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::Cosine {
            from: finite(from, "from", "cosine")?,
            to: finite(to, "to", "cosine")?,
            t_total: positive(t_total, "T", "cosine")?,
        })
    }
    pub fn step_decay(start: f64, factor: f64, every: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::StepDecay {
            start: finite(start, "start", "step_decay")?,
            factor: finite(factor, "factor", "step_decay")?,
            every: positive(every, "every", "step_decay")?,
        })
    }
    pub fn constant(value: f64) -> ScriptResult<Self> {
        Ok(ScheduleKind::Constant {
            value: finite(value, "value", "constant")?,
        })
    }

    /// The schedule's value at step `t` (negative `t` counts as 0).
    pub fn at(&self, t: f64) -> f64 {
        let t = t.max(0.0);
        match *self {
            ScheduleKind::SineDecay { k } => {
                if t <= k {
                    1.0 - (t * PI / (2.0 * k)).sin()
                } else {
                    0.0
                }
            }
            ScheduleKind::ExpAnneal {
                start,
                decay_factor,
                t_total,
            } => start * decay_factor.powf(t / t_total),
            ScheduleKind::Linear { from, to, t_total } => {
                from + (to - from) * (t / t_total).min(1.0)
            }
            ScheduleKind::Cosine { from, to, t_total } => {
                let p = (t / t_total).min(1.0);
                to + (from - to) * 0.5 * (1.0 + (PI * p).cos())
            }
            ScheduleKind::StepDecay {
                start,
                factor,
                every,
            } => start * factor.powf((t / every).floor()),
            ScheduleKind::Constant { value } => value,
        }
    }

    /// The kind's name and its parameters by name.
    pub fn params(&self) -> (&'static str, Vec<(&'static str, f64)>) {
        match *self {
            ScheduleKind::SineDecay { k } => ("sine_decay", vec![("K", k)]),
            ScheduleKind::ExpAnneal {
                start,
                decay_factor,
                t_total,
            } => (
                "exp_anneal",
                vec![
                    ("start", start),
                    ("decay_factor", decay_factor),
                    ("T", t_total),
                ],
            ),
            ScheduleKind::Linear { from, to, t_total } => {
                ("linear", vec![("from", from), ("to", to), ("T", t_total)])
            }
            ScheduleKind::Cosine { from, to, t_total } => {
                ("cosine", vec![("from", from), ("to", to), ("T", t_total)])
            }
            ScheduleKind::StepDecay {
                start,
                factor,
                every,
            } => (
                "step_decay",
                vec![("start", start), ("factor", factor), ("every", every)],
            ),
            ScheduleKind::Constant { value } => ("constant", vec![("value", value)]),
        }
    }

    /// Rebuilds a kind from its name and parameters (as [`ScheduleKind::params`] gives them).
    pub fn from_params(kind: &str, p: &BTreeMap<String, f64>) -> ScriptResult<Self> {
        let get = |name: &str| -> ScriptResult<f64> {
            p.get(name).copied().ok_or_else(|| {
                script_err(format!(
                    "schedule state: a `{kind}` schedule needs the parameter `{name}`"
                ))
            })
        };
        match kind {
            "sine_decay" => Self::sine_decay(get("K")?),
            "exp_anneal" => Self::exp_anneal(get("start")?, get("decay_factor")?, get("T")?),
            "linear" => Self::linear(get("from")?, get("to")?, get("T")?),
            "cosine" => Self::cosine(get("from")?, get("to")?, get("T")?),
            "step_decay" => Self::step_decay(get("start")?, get("factor")?, get("every")?),
            "constant" => Self::constant(get("value")?),
            other => Err(script_err(format!(
                "schedule state: unknown kind `{other}`; kinds: sine_decay, exp_anneal, linear, \
                 cosine, step_decay, constant"
            ))),
        }
    }
}

impl Schedule {
    pub fn new(kind: ScheduleKind) -> Self {
        Schedule { kind, t: 0.0 }
    }
    pub fn at(&self, t: f64) -> f64 {
        self.kind.at(t)
    }
    /// The value at the current position.
    pub fn value(&self) -> f64 {
        self.kind.at(self.t)
    }
    /// Advances the position by one step and returns the new value.
    pub fn step(&mut self) -> f64 {
        self.t += 1.0;
        self.value()
    }
    pub fn state(&self) -> ScheduleState {
        let (kind, params) = self.kind.params();
        ScheduleState {
            kind: kind.to_string(),
            params: params
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            t: self.t,
        }
    }
    pub fn from_state(state: &ScheduleState) -> ScriptResult<Self> {
        if !state.t.is_finite() {
            return Err(script_err(format!(
                "schedule state: t must be finite, got {}",
                state.t
            )));
        }
        Ok(Schedule {
            kind: ScheduleKind::from_params(&state.kind, &state.params)?,
            t: state.t,
        })
    }
    pub fn set_state(&mut self, state: &ScheduleState) -> ScriptResult<()> {
        *self = Schedule::from_state(state)?;
        Ok(())
    }

    /// The state as a script map `#{kind, t, <params>...}`.
    pub fn state_map(&self) -> Map {
        let st = self.state();
        let mut m = Map::new();
        m.insert("kind".into(), st.kind.into());
        m.insert("t".into(), number(st.t));
        for (k, v) in st.params {
            m.insert(k.into(), Dynamic::from_float(v));
        }
        m
    }

    /// Reads a map made by [`Schedule::state_map`].
    pub fn from_state_map(map: &Map) -> ScriptResult<Self> {
        let kind = map
            .get("kind")
            .and_then(|k| k.clone().into_string().ok())
            .ok_or_else(|| script_err("schedule state: the map needs a string `kind`"))?;
        let mut params = BTreeMap::new();
        let mut t = 0.0;
        for (k, v) in map {
            if k.as_str() == "kind" {
                continue;
            }
            let x = as_f64(v).ok_or_else(|| {
                script_err(format!(
                    "schedule state: `{k}` must be a number, got {}",
                    v.type_name()
                ))
            })?;
            if k.as_str() == "t" {
                t = x;
            } else {
                params.insert(k.to_string(), x);
            }
        }
        Schedule::from_state(&ScheduleState { kind, params, t })
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (kind, params) = self.kind.params();
        let p: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(
            f,
            "Schedule {kind}({}) at t={} value={}",
            p.join(", "),
            self.t,
            self.value()
        )
    }
}

fn as_f64(v: &Dynamic) -> Option<f64> {
    v.as_float()
        .ok()
        .or_else(|| v.as_int().ok().map(|i| i as f64))
}

/// A step count as INT when it is integral, else FLOAT.
fn number(t: f64) -> Dynamic {
    if t.fract() == 0.0 && t.abs() < 9.0e15 {
        Dynamic::from_int(t as INT)
    } else {
        Dynamic::from_float(t)
    }
}

/// Registers a constructor taking three numbers, for every INT/FLOAT combination.
macro_rules! ctor3 {
    ($engine:ident, $name:literal, $doc:literal, $f:expr) => {{
        let f = $f;
        reg!($engine, $name, $doc, move |a: FLOAT, b: FLOAT, c: FLOAT| f(
            a, b, c
        ));
        reg!($engine, $name, $doc, move |a: FLOAT, b: FLOAT, c: INT| f(
            a, b, c as f64
        ));
        reg!($engine, $name, $doc, move |a: FLOAT, b: INT, c: FLOAT| f(
            a, b as f64, c
        ));
        reg!($engine, $name, $doc, move |a: FLOAT, b: INT, c: INT| f(
            a, b as f64, c as f64
        ));
        reg!($engine, $name, $doc, move |a: INT, b: FLOAT, c: FLOAT| f(
            a as f64, b, c
        ));
        reg!($engine, $name, $doc, move |a: INT, b: FLOAT, c: INT| f(
            a as f64, b, c as f64
        ));
        reg!($engine, $name, $doc, move |a: INT, b: INT, c: FLOAT| f(
            a as f64, b as f64, c
        ));
        reg!($engine, $name, $doc, move |a: INT, b: INT, c: INT| f(
            a as f64, b as f64, c as f64
        ));
    }};
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Schedule>("Schedule");
    crate::state::register::<Schedule>();
    type R = ScriptResult<Schedule>;

    reg!(
        engine,
        "sine_decay",
        "Schedule 1 - sin(tπ/2K) for t ≤ K, else 0 (Tempered Adversarial Networks' lens weight).",
        |k: INT| -> R { Ok(Schedule::new(ScheduleKind::sine_decay(k as f64)?)) }
    );
    reg!(
        engine,
        "sine_decay",
        "Schedule 1 - sin(tπ/2K) for t ≤ K, else 0 (Tempered Adversarial Networks' lens weight).",
        |k: FLOAT| -> R { Ok(Schedule::new(ScheduleKind::sine_decay(k)?)) }
    );
    ctor3!(
        engine,
        "exp_anneal",
        "Schedule start · decay_factor^(t/T) (Roth et al.'s annealed γ).",
        |a: f64, b: f64, c: f64| -> R { Ok(Schedule::new(ScheduleKind::exp_anneal(a, b, c)?)) }
    );
    ctor3!(
        engine,
        "linear",
        "Schedule from → to linearly over T steps, then to.",
        |a: f64, b: f64, c: f64| -> R { Ok(Schedule::new(ScheduleKind::linear(a, b, c)?)) }
    );
    ctor3!(
        engine,
        "cosine",
        "Schedule from → to along half a cosine over T steps, then to.",
        |a: f64, b: f64, c: f64| -> R { Ok(Schedule::new(ScheduleKind::cosine(a, b, c)?)) }
    );
    ctor3!(
        engine,
        "step_decay",
        "Schedule start · factor^floor(t/every).",
        |a: f64, b: f64, c: f64| -> R { Ok(Schedule::new(ScheduleKind::step_decay(a, b, c)?)) }
    );
    reg!(
        engine,
        "constant",
        "Schedule with the same value at every step.",
        |v: FLOAT| -> R { Ok(Schedule::new(ScheduleKind::constant(v)?)) }
    );
    reg!(
        engine,
        "constant",
        "Schedule with the same value at every step.",
        |v: INT| -> R { Ok(Schedule::new(ScheduleKind::constant(v as f64)?)) }
    );

    reg!(
        engine,
        "at",
        "The schedule's value at step t.",
        |s: &mut Schedule, t: INT| s.at(t as f64)
    );
    reg!(
        engine,
        "at",
        "The schedule's value at step t.",
        |s: &mut Schedule, t: FLOAT| -> ScriptResult<f64> {
            if t.is_nan() {
                return Err(script_err("at(t): t must be a number, got NaN"));
            }
            Ok(s.at(t))
        }
    );
    reg!(
        engine,
        "step",
        "Advances the schedule's position by one step and returns the new value.",
        |s: &mut Schedule| s.step()
    );
    engine.register_get("t", |s: &mut Schedule| number(s.t));
    engine.register_set("t", |s: &mut Schedule, t: INT| s.t = t as f64);
    engine.register_set("t", |s: &mut Schedule, t: FLOAT| -> ScriptResult<()> {
        if !t.is_finite() {
            return Err(script_err(format!("schedule: t must be finite, got {t}")));
        }
        s.t = t;
        Ok(())
    });
    engine.register_get("value", |s: &mut Schedule| s.value());
    reg!(
        engine,
        "state",
        "The schedule's state #{kind, t, <parameters>} for checkpoints.",
        |s: &mut Schedule| s.state_map()
    );
    reg!(
        engine,
        "set_state",
        "Restores a schedule from a map made by state().",
        |s: &mut Schedule, m: Map| -> ScriptResult<()> {
            *s = Schedule::from_state_map(&m)?;
            Ok(())
        }
    );
    reg!(
        engine,
        "to_string",
        "Describes the schedule.",
        |s: &mut Schedule| s.to_string()
    );
    reg!(
        engine,
        "to_debug",
        "Describes the schedule.",
        |s: &mut Schedule| s.to_string()
    );
}

impl crate::state::Saved for Schedule {
    const TAG: &'static str = "schedule";
    const PLURAL: &'static str = "schedules";
    fn state_map(&self) -> Map {
        Schedule::state_map(self)
    }
    fn from_state_map(map: &Map) -> ScriptResult<Self> {
        Schedule::from_state_map(map)
    }
}
