//! Terminal progress: `let p = progress(total, "epoch 1"); p.tick(#{loss_d: d}); p.finish();`.
//!
//! On a terminal, an indicatif bar (label, position/total, rate, ETA and the latest metrics).
//! Otherwise (CI, pipes) plain lines on stderr: `label step/total rate ETA metrics` once per
//! fixed interval (`$GANSCRIPT_PROGRESS_INTERVAL` seconds, default 10), and at `finish()` (each
//! epoch's end, for a progress per epoch) one summary line `label done: total in time, average
//! rate, metrics`. Rates have 3 significant digits (`s/it` below one step a second); the rate of
//! the plain lines and their ETA are smoothed (an exponential moving average of the rate over
//! half-second windows). `GANSCRIPT_PROGRESS=plain|bar|off` overrides the terminal check.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};
use rhai::{Engine, Map, INT};
use std::cell::RefCell;
use std::io::IsTerminal;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Mode {
    Bar,
    Plain,
    Off,
}

/// The display mode: `$GANSCRIPT_PROGRESS` if set, else a bar when stderr is a terminal.
pub fn mode() -> Mode {
    match std::env::var("GANSCRIPT_PROGRESS").as_deref() {
        Ok("plain") => Mode::Plain,
        Ok("bar") => Mode::Bar,
        Ok("off") | Ok("none") | Ok("0") => Mode::Off,
        _ => {
            if std::io::stderr().is_terminal() {
                Mode::Bar
            } else {
                Mode::Plain
            }
        }
    }
}

/// A number for display: 4 decimals, or scientific notation when very large or small.
pub fn fmt_num(x: f64) -> String {
    let a = x.abs();
    if a != 0.0 && a.is_finite() && !(1e-3..1e5).contains(&a) {
        format!("{x:.3e}")
    } else {
        format!("{x:.4}")
    }
}

/// A duration as `1h02m03s`, `2m03s` or `3s`.
pub fn fmt_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "?".to_string();
    }
    let s = secs.round() as u64;
    let (h, m, s) = (s / 3600, s % 3600 / 60, s % 60);
    if h > 0 {
        format!("{h}h{m:02}m{s:02}s")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
}

/// `x` rounded to 3 significant digits, written without an exponent (`1234` is `1230`, `2.5`
/// is `2.50`, `0.04567` is `0.0457`).
pub fn sig3(x: f64) -> String {
    if !x.is_finite() {
        return "?".to_string();
    }
    if x == 0.0 {
        return "0.00".to_string();
    }
    let mut digits = x.abs().log10().floor() as i32;
    let mut rounded = round_sig(x, digits);
    // Rounding can carry into one more digit (9.996 → 10.0).
    if rounded.abs() >= 10f64.powi(digits + 1) {
        digits += 1;
        rounded = round_sig(x, digits);
    }
    let decimals = (2 - digits).max(0) as usize;
    format!("{rounded:.decimals$}")
}

fn round_sig(x: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(2 - digits);
    (x * scale).round() / scale
}

/// A rate for display, 3 significant digits: `12.3 it/s`, or `4.56 s/it` below one step a
/// second.
pub fn fmt_rate(per_sec: f64) -> String {
    if per_sec > 0.0 && per_sec < 1.0 {
        format!("{} s/it", sig3(1.0 / per_sec))
    } else {
        format!("{} it/s", sig3(per_sec))
    }
}

/// The interval between plain lines: `$GANSCRIPT_PROGRESS_INTERVAL` seconds, default 10.
pub fn interval() -> Duration {
    std::env::var("GANSCRIPT_PROGRESS_INTERVAL")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// One plain progress line, with the average rate over `elapsed` seconds:
/// `label step/total rate ETA eta metrics`.
pub fn plain_line(
    label: &str,
    pos: u64,
    total: u64,
    elapsed: f64,
    metrics: &[(String, String)],
) -> String {
    let rate = if elapsed > 0.0 {
        pos as f64 / elapsed
    } else {
        0.0
    };
    line_at_rate(label, pos, total, rate, metrics)
}

/// The summary line of a finished progress: `label done: pos/total in 1m02s, rate, metrics`.
pub fn summary_line(
    label: &str,
    pos: u64,
    total: u64,
    elapsed: f64,
    metrics: &[(String, String)],
) -> String {
    let rate = if elapsed > 0.0 {
        pos as f64 / elapsed
    } else {
        0.0
    };
    let mut s = String::new();
    if !label.is_empty() {
        s.push_str(label);
        s.push(' ');
    }
    s.push_str("done: ");
    if total > 0 {
        s.push_str(&format!("{pos}/{total}"));
    } else {
        s.push_str(&format!("{pos}"));
    }
    s.push_str(&format!(
        " in {}, {}",
        fmt_duration(elapsed),
        fmt_rate(rate)
    ));
    for (k, v) in metrics {
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

/// One plain progress line at the rate `rate` (steps per second; the ETA follows from it).
pub fn line_at_rate(
    label: &str,
    pos: u64,
    total: u64,
    rate: f64,
    metrics: &[(String, String)],
) -> String {
    let mut s = String::new();
    if !label.is_empty() {
        s.push_str(label);
        s.push(' ');
    }
    if total > 0 {
        s.push_str(&format!("{pos}/{total}"));
    } else {
        s.push_str(&format!("{pos}"));
    }
    s.push_str(&format!(" {}", fmt_rate(rate)));
    if total > 0 {
        let eta = if rate > 0.0 {
            total.saturating_sub(pos) as f64 / rate
        } else {
            f64::NAN
        };
        s.push_str(&format!(" ETA {}", fmt_duration(eta)));
    }
    for (k, v) in metrics {
        s.push_str(&format!(" {k}={v}"));
    }
    s
}

/// An exponential moving average of the rate, sampled over windows of at least
/// [`Smoother::WINDOW`] seconds (single steps are too noisy: a step that saves a grid).
#[derive(Debug, Clone)]
pub struct Smoother {
    window_start: (f64, u64),
    rate: Option<f64>,
}

impl Smoother {
    pub const WINDOW: f64 = 0.5;
    /// The weight of the newest window.
    pub const ALPHA: f64 = 0.3;

    pub fn new() -> Self {
        Smoother {
            window_start: (0.0, 0),
            rate: None,
        }
    }

    /// Records that `pos` steps were done `t` seconds after the start.
    pub fn update(&mut self, t: f64, pos: u64) {
        let (t0, p0) = self.window_start;
        let dt = t - t0;
        if dt < Self::WINDOW || pos <= p0 {
            return;
        }
        let r = (pos - p0) as f64 / dt;
        self.rate = Some(match self.rate {
            None => r,
            Some(old) => Self::ALPHA * r + (1.0 - Self::ALPHA) * old,
        });
        self.window_start = (t, pos);
    }

    /// The smoothed rate, or the average `pos / t` before the first full window.
    pub fn rate(&self, t: f64, pos: u64) -> f64 {
        self.rate
            .unwrap_or(if t > 0.0 { pos as f64 / t } else { 0.0 })
    }
}

impl Default for Smoother {
    fn default() -> Self {
        Self::new()
    }
}

struct State {
    label: String,
    total: u64,
    pos: u64,
    start: Instant,
    interval: Duration,
    smoother: Smoother,
    last_print: Option<(Instant, u64)>,
    metrics: Vec<(String, String)>,
    mode: Mode,
    bar: Option<ProgressBar>,
    finished: bool,
}

/// A progress display, shared by script clones.
#[derive(Clone)]
pub struct Progress(Rc<RefCell<State>>);

impl Progress {
    pub fn new(total: u64, label: &str) -> Progress {
        let mode = mode();
        let bar = (mode == Mode::Bar).then(|| {
            let bar = if total > 0 {
                ProgressBar::new(total)
            } else {
                ProgressBar::new_spinner()
            };
            bar.set_draw_target(ProgressDrawTarget::stderr());
            let template = if total > 0 {
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {rate} ETA {eta} {msg}"
            } else {
                "{prefix} {spinner} {pos} {rate} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                // indicatif's own estimate (smoothed), shown with 3 significant digits.
                let rate = |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&fmt_rate(s.per_sec()));
                };
                bar.set_style(style.progress_chars("=> ").with_key("rate", rate));
            }
            bar.set_prefix(label.to_string());
            bar
        });
        Progress(Rc::new(RefCell::new(State {
            label: label.to_string(),
            total,
            pos: 0,
            start: Instant::now(),
            interval: interval(),
            smoother: Smoother::new(),
            last_print: None,
            metrics: Vec::new(),
            mode,
            bar,
            finished: false,
        })))
    }

    fn set_metrics(&self, m: &Map) {
        let mut st = self.0.borrow_mut();
        for (k, v) in m {
            let text = if let Ok(f) = v.as_float() {
                fmt_num(f)
            } else if let Ok(i) = v.as_int() {
                i.to_string()
            } else if let Some(t) = v.clone().try_cast::<crate::tensor::Tensor>() {
                crate::tensor::item(&t.0)
                    .map(fmt_num)
                    .unwrap_or_else(|_| t.to_string())
            } else {
                v.to_string()
            };
            match st.metrics.iter_mut().find(|(n, _)| n == k.as_str()) {
                Some(e) => e.1 = text,
                None => st.metrics.push((k.to_string(), text)),
            }
        }
    }

    pub fn tick_by(&self, n: u64, m: Option<&Map>) {
        if let Some(m) = m {
            self.set_metrics(m);
        }
        let mut st = self.0.borrow_mut();
        st.pos += n;
        let msg = st
            .metrics
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        match st.mode {
            Mode::Bar => {
                if let Some(b) = &st.bar {
                    b.set_position(st.pos);
                    b.set_message(msg);
                }
            }
            Mode::Plain => {
                let now = Instant::now();
                let t = now.duration_since(st.start).as_secs_f64();
                let pos = st.pos;
                st.smoother.update(t, pos);
                let since = st.last_print.map_or(st.start, |(at, _)| at);
                if now.duration_since(since) >= st.interval && !(st.total > 0 && pos >= st.total) {
                    let rate = st.smoother.rate(t, pos);
                    eprintln!(
                        "{}",
                        line_at_rate(&st.label, pos, st.total, rate, &st.metrics)
                    );
                    st.last_print = Some((now, pos));
                }
            }
            Mode::Off => {}
        }
    }

    pub fn finish(&self) {
        let mut st = self.0.borrow_mut();
        if st.finished {
            return;
        }
        st.finished = true;
        match st.mode {
            Mode::Bar => {
                if let Some(b) = &st.bar {
                    b.finish();
                }
            }
            Mode::Plain => {
                eprintln!(
                    "{}",
                    summary_line(
                        &st.label,
                        st.pos,
                        st.total,
                        st.start.elapsed().as_secs_f64(),
                        &st.metrics
                    )
                );
            }
            Mode::Off => {}
        }
    }
}

/// `progress(total)`'s total: a count >= 0.
fn progress_total(total: INT) -> crate::errors::ScriptResult<u64> {
    u64::try_from(total).map_err(|_| {
        crate::errors::script_err(format!("progress: the total must be >= 0, got {total}"))
    })
}

pub fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Progress>("Progress");
    reg!(engine, "progress", "A progress display for `total` steps with a label: .tick(), .tick(#{metric: v}), .finish().", |total: INT, label: &str| -> crate::errors::ScriptResult<Progress> { Ok(Progress::new(progress_total(total)?, label)) });
    reg!(
        engine,
        "progress",
        "A progress display for `total` steps.",
        |total: INT| -> crate::errors::ScriptResult<Progress> {
            Ok(Progress::new(progress_total(total)?, ""))
        }
    );
    reg!(
        engine,
        "tick",
        "Advances the progress by one step.",
        |p: &mut Progress| p.tick_by(1, None)
    );
    reg!(
        engine,
        "tick",
        "Advances the progress by one step and shows the latest metrics.",
        |p: &mut Progress, m: Map| p.tick_by(1, Some(&m))
    );
    reg!(
        engine,
        "finish",
        "Ends the progress display.",
        |p: &mut Progress| p.finish()
    );
}
