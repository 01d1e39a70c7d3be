//! Terminal progress: `let p = progress(total, "epoch 1"); p.tick(#{loss_d: d}); p.finish();`.
//!
//! On a terminal, an indicatif bar (label, position/total, rate, ETA and the latest metrics).
//! Otherwise (CI, pipes) plain lines on stderr, `label step/total rate ETA metrics`, at most
//! every 2 s or every 10% of the total, and at the end. `GANSCRIPT_PROGRESS=plain|bar|off`
//! overrides the terminal check.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
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

/// One plain progress line: `label step/total rate it/s ETA eta metrics`.
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
    s.push_str(&format!(" {rate:.2} it/s"));
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

struct State {
    label: String,
    total: u64,
    pos: u64,
    start: Instant,
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
                "{prefix} [{bar:30.cyan/blue}] {pos}/{len} {per_sec} ETA {eta} {msg}"
            } else {
                "{prefix} {spinner} {pos} {per_sec} {msg}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(label.to_string());
            bar
        });
        Progress(Rc::new(RefCell::new(State {
            label: label.to_string(),
            total,
            pos: 0,
            start: Instant::now(),
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
                let decile = |p: u64| (p * 10).checked_div(st.total).unwrap_or(0);
                let due = match st.last_print {
                    None => true,
                    Some((t, p)) => {
                        now.duration_since(t) >= Duration::from_secs(2)
                            || decile(st.pos) > decile(p)
                            || (st.total > 0 && st.pos >= st.total && p < st.total)
                    }
                };
                if due {
                    eprintln!(
                        "{}",
                        plain_line(
                            &st.label,
                            st.pos,
                            st.total,
                            st.start.elapsed().as_secs_f64(),
                            &st.metrics
                        )
                    );
                    st.last_print = Some((now, st.pos));
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
                if st.last_print.map(|(_, p)| p) != Some(st.pos) {
                    eprintln!(
                        "{}",
                        plain_line(
                            &st.label,
                            st.pos,
                            st.total,
                            st.start.elapsed().as_secs_f64(),
                            &st.metrics
                        )
                    );
                }
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
