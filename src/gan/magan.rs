//! MAGAN's margin adaptation (Algorithm 1 of "MAGAN: Margin Adaptation for Generative
//! Adversarial Networks"), applied after the auto-encoder's pre-training.
//!
//! The margin starts at the mean real energy measured after pre-training and `S_z^0 = ∞`. At
//! the end of epoch `t`, with `S_x`, `S_z` the sums of real and fake energies over the epoch
//! and `N` samples: if `S_x/N < m` and `S_x < S_z` and `S_z^{t-1} < S_z` then `m = S_x/N`;
//! `S_z^{t-1}` is always updated. The margin therefore never increases.

use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::Tensor;
use rhai::{Dynamic, Engine, Map, FLOAT, INT};
use serde::{Deserialize, Serialize};

/// The margin adapter's full state (serialisable for checkpoints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MarginAdapter {
    /// The current margin; `None` until [`MarginAdapter::init`].
    pub margin: Option<f64>,
    /// `S_z` of the previous epoch; `None` stands for ∞ (before the first epoch).
    pub prev_sum_fake: Option<f64>,
    /// Sums and counts of the epoch in progress.
    pub sum_real: f64,
    pub sum_fake: f64,
    pub n_real: u64,
    pub n_fake: u64,
    /// Mean energies of the last completed epoch (`None` before the first).
    pub epoch_mean_real: Option<f64>,
    pub epoch_mean_fake: Option<f64>,
    /// Completed epochs.
    pub epochs: u64,
}

impl Default for MarginAdapter {
    fn default() -> Self {
        MarginAdapter {
            margin: None,
            prev_sum_fake: None,
            sum_real: 0.0,
            sum_fake: 0.0,
            n_real: 0,
            n_fake: 0,
            epoch_mean_real: None,
            epoch_mean_fake: None,
            epochs: 0,
        }
    }
}

impl MarginAdapter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the initial margin (the mean real energy after pre-training).
    pub fn init(&mut self, mean_real_energy: f64) -> ScriptResult<()> {
        if !mean_real_energy.is_finite() || mean_real_energy < 0.0 {
            return Err(script_err(format!(
                "magan margin: the initial margin must be a finite energy >= 0, got {mean_real_energy}"
            )));
        }
        self.margin = Some(mean_real_energy);
        Ok(())
    }

    /// The current margin (an error before `init`).
    pub fn margin(&self) -> ScriptResult<f64> {
        self.margin.ok_or_else(|| {
            script_err(
                "magan margin: the margin is not set yet; call m.init(mean_real_energy) after \
                 pre-training",
            )
        })
    }

    /// Adds one batch's energies to the epoch sums.
    pub fn accumulate_sums(&mut self, sum_real: f64, n_real: u64, sum_fake: f64, n_fake: u64) {
        self.sum_real += sum_real;
        self.sum_fake += sum_fake;
        self.n_real += n_real;
        self.n_fake += n_fake;
    }

    /// Adds one batch's per-sample energies (tensors `[N]`) to the epoch sums.
    pub fn accumulate(
        &mut self,
        e_real: &candle_core::Tensor,
        e_fake: &candle_core::Tensor,
    ) -> ScriptResult<()> {
        let sum = |e: &candle_core::Tensor, what: &str| -> ScriptResult<f64> {
            if !e.dtype().is_float() {
                return Err(script_err(format!(
                    "magan margin: {what} must be a float tensor of per-sample energies"
                )));
            }
            let s = crate::tensor::item(&e.sum_all().or_script()?)?;
            if !s.is_finite() {
                return Err(script_err(format!(
                    "magan margin: the {what} energies are not finite ({s})"
                )));
            }
            Ok(s)
        };
        let sr = sum(e_real, "real")?;
        let sf = sum(e_fake, "fake")?;
        self.accumulate_sums(
            sr,
            e_real.elem_count() as u64,
            sf,
            e_fake.elem_count() as u64,
        );
        Ok(())
    }

    /// Ends an epoch with the accumulated sums (then resets them); true if the margin changed.
    pub fn end_epoch(&mut self) -> ScriptResult<bool> {
        if self.n_real == 0 {
            return Err(script_err(
                "magan margin: end_epoch() with no energies accumulated this epoch; call \
                 m.accumulate(e_real, e_fake) for each batch",
            ));
        }
        let (sr, sf, n) = (self.sum_real, self.sum_fake, self.n_real);
        let nf = if self.n_fake == 0 { n } else { self.n_fake };
        let updated = self.apply(sr, sf, n as f64)?;
        self.epoch_mean_fake = Some(sf / nf as f64);
        Ok(updated)
    }

    /// Ends an epoch given its sums `S_x`, `S_z` over `n` samples directly.
    pub fn end_epoch_with(&mut self, sum_real: f64, sum_fake: f64, n: f64) -> ScriptResult<bool> {
        if n.is_nan() || n <= 0.0 {
            return Err(script_err(format!(
                "magan margin: the sample count must be > 0, got {n}"
            )));
        }
        let updated = self.apply(sum_real, sum_fake, n)?;
        self.epoch_mean_fake = Some(sum_fake / n);
        Ok(updated)
    }

    fn apply(&mut self, sx: f64, sz: f64, n: f64) -> ScriptResult<bool> {
        let m = self.margin()?;
        if !sx.is_finite() || !sz.is_finite() {
            return Err(script_err(format!(
                "magan margin: the epoch sums must be finite, got S_x={sx}, S_z={sz}"
            )));
        }
        let mean_real = sx / n;
        let prev = self.prev_sum_fake.unwrap_or(f64::INFINITY);
        let updated = mean_real < m && sx < sz && prev < sz;
        if updated {
            self.margin = Some(mean_real);
        }
        self.prev_sum_fake = Some(sz);
        self.epoch_mean_real = Some(mean_real);
        self.epochs += 1;
        self.sum_real = 0.0;
        self.sum_fake = 0.0;
        self.n_real = 0;
        self.n_fake = 0;
        Ok(updated)
    }

    /// The state as a script map (`prev_sum_fake` is `()` while it is ∞).
    pub fn state_map(&self) -> Map {
        let opt = |v: Option<f64>| v.map(Dynamic::from_float).unwrap_or(Dynamic::UNIT);
        let mut m = Map::new();
        m.insert("margin".into(), opt(self.margin));
        m.insert("prev_sum_fake".into(), opt(self.prev_sum_fake));
        m.insert("sum_real".into(), self.sum_real.into());
        m.insert("sum_fake".into(), self.sum_fake.into());
        m.insert("n_real".into(), (self.n_real as INT).into());
        m.insert("n_fake".into(), (self.n_fake as INT).into());
        m.insert("epoch_mean_real".into(), opt(self.epoch_mean_real));
        m.insert("epoch_mean_fake".into(), opt(self.epoch_mean_fake));
        m.insert("epochs".into(), (self.epochs as INT).into());
        m
    }

    /// Reads a map made by [`MarginAdapter::state_map`].
    pub fn from_state_map(map: &Map) -> ScriptResult<Self> {
        let num = |k: &str| -> ScriptResult<Option<f64>> {
            match map.get(k) {
                None => Err(script_err(format!(
                    "magan margin state: the map needs `{k}`"
                ))),
                Some(v) if v.is_unit() => Ok(None),
                Some(v) => v
                    .as_float()
                    .ok()
                    .or_else(|| v.as_int().ok().map(|i| i as f64))
                    .map(Some)
                    .ok_or_else(|| {
                        script_err(format!(
                            "magan margin state: `{k}` must be a number, got {}",
                            v.type_name()
                        ))
                    }),
            }
        };
        let req = |k: &str| -> ScriptResult<f64> {
            num(k)?.ok_or_else(|| script_err(format!("magan margin state: `{k}` is ()")))
        };
        let count = |k: &str| -> ScriptResult<u64> {
            let v = req(k)?;
            if v < 0.0 || v.fract() != 0.0 {
                return Err(script_err(format!(
                    "magan margin state: `{k}` must be a count, got {v}"
                )));
            }
            Ok(v as u64)
        };
        Ok(MarginAdapter {
            margin: num("margin")?,
            prev_sum_fake: num("prev_sum_fake")?.filter(|v| v.is_finite()),
            sum_real: req("sum_real")?,
            sum_fake: req("sum_fake")?,
            n_real: count("n_real")?,
            n_fake: count("n_fake")?,
            epoch_mean_real: num("epoch_mean_real")?,
            epoch_mean_fake: num("epoch_mean_fake")?,
            epochs: count("epochs")?,
        })
    }
}

impl std::fmt::Display for MarginAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.margin {
            Some(m) => write!(
                f,
                "MarginAdapter(margin={m}, epochs={}, last epoch's mean energies: real={}, fake={})",
                self.epochs,
                self.epoch_mean_real.unwrap_or(f64::NAN),
                self.epoch_mean_fake.unwrap_or(f64::NAN)
            ),
            None => write!(f, "MarginAdapter(margin not set)"),
        }
    }
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<MarginAdapter>("MarginAdapter");
    crate::state::register::<MarginAdapter>();
    reg!(
        engine,
        "magan_margin",
        "A MAGAN margin adapter (Algorithm 1); set its initial margin with m.init(mean_real_energy).",
        MarginAdapter::new
    );
    reg!(
        engine,
        "init",
        "Sets the initial margin: the mean real energy after pre-training.",
        |m: &mut MarginAdapter, e: FLOAT| m.init(e)
    );
    reg!(
        engine,
        "init",
        "Sets the initial margin: the mean real energy after pre-training.",
        |m: &mut MarginAdapter, e: INT| m.init(e as f64)
    );
    reg!(
        engine,
        "init",
        "Sets the initial margin: the mean of a tensor of real energies.",
        |m: &mut MarginAdapter, e: Tensor| -> ScriptResult<()> {
            let v = crate::tensor::item(&e.0.mean_all().or_script()?)?;
            m.init(v)
        }
    );
    reg!(
        engine,
        "accumulate",
        "Adds one batch's per-sample real and fake energies (tensors [N]) to the epoch sums.",
        |m: &mut MarginAdapter, e_real: Tensor, e_fake: Tensor| m.accumulate(&e_real.0, &e_fake.0)
    );
    reg!(
        engine,
        "end_epoch",
        "Applies the margin rule to the epoch's sums, resets them; true if the margin was lowered.",
        |m: &mut MarginAdapter| m.end_epoch()
    );
    macro_rules! end_epoch_with {
        ($a:ty, $b:ty, $c:ty) => {
            reg!(
                engine,
                "end_epoch",
                "Applies the margin rule to given epoch sums S_x, S_z over n samples; true if the margin was lowered.",
                |m: &mut MarginAdapter, sx: $a, sz: $b, n: $c| m.end_epoch_with(
                    sx as f64, sz as f64, n as f64
                )
            );
        };
    }
    end_epoch_with!(FLOAT, FLOAT, INT);
    end_epoch_with!(FLOAT, FLOAT, FLOAT);
    end_epoch_with!(INT, INT, INT);
    end_epoch_with!(FLOAT, INT, INT);
    end_epoch_with!(INT, FLOAT, INT);
    engine.register_get("margin", |m: &mut MarginAdapter| m.margin());
    engine.register_set("margin", |m: &mut MarginAdapter, v: FLOAT| m.init(v));
    // The mean energies of the last completed epoch (NaN before the first).
    engine.register_get("epoch_mean_real", |m: &mut MarginAdapter| {
        m.epoch_mean_real.unwrap_or(f64::NAN)
    });
    engine.register_get("epoch_mean_fake", |m: &mut MarginAdapter| {
        m.epoch_mean_fake.unwrap_or(f64::NAN)
    });
    engine.register_get("epochs", |m: &mut MarginAdapter| m.epochs as INT);
    reg!(
        engine,
        "state",
        "The margin adapter's state as a map, for checkpoints.",
        |m: &mut MarginAdapter| m.state_map()
    );
    reg!(
        engine,
        "set_state",
        "Restores a margin adapter from a map made by state().",
        |m: &mut MarginAdapter, s: Map| -> ScriptResult<()> {
            *m = MarginAdapter::from_state_map(&s)?;
            Ok(())
        }
    );
    reg!(
        engine,
        "to_string",
        "Describes the margin adapter.",
        |m: &mut MarginAdapter| m.to_string()
    );
    reg!(
        engine,
        "to_debug",
        "Describes the margin adapter.",
        |m: &mut MarginAdapter| m.to_string()
    );
}

impl crate::state::Saved for MarginAdapter {
    const TAG: &'static str = "margin_adapter";
    const PLURAL: &'static str = "margin adapters";
    fn state_map(&self) -> Map {
        MarginAdapter::state_map(self)
    }
    fn from_state_map(map: &Map) -> ScriptResult<Self> {
        MarginAdapter::from_state_map(map)
    }
}
