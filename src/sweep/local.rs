//! Running a sweep's runs on this machine, N at a time, each an ordinary `ganscript run` child
//! process with its share of the cores (`CANDLE_NUM_THREADS`), its output in
//! `<root>/logs/<run>.log`, and one progress line per job (its latest output line) plus the
//! totals. A run that fails does not stop the others; failures are reported at the end.
//!
//! Ctrl-C stops starting runs and passes the interrupt on to the running ones, which save a
//! checkpoint and stop; the next `ganscript sweep` resumes them. The children run in process
//! groups of their own, so a terminal's Ctrl-C reaches them once, through the sweep.

use super::spec::{Run, Sweep};
use super::state::{self, Action};
use crate::run::progress::{fmt_duration, mode, Mode};
use crate::session::interrupt::OnCtrlC;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How to run the children.
#[derive(Clone, Debug)]
pub struct LocalOptions {
    /// The ganscript binary.
    pub exe: PathBuf,
    /// Runs at a time.
    pub jobs: usize,
    /// Threads of each run (candle's pool size).
    pub threads: usize,
    pub device: String,
}

/// How a run ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It was finished already.
    Skipped,
    Finished {
        secs: f64,
        resumed: bool,
    },
    /// It failed: the exit code (None: killed by a signal) and the end of its output.
    Failed {
        code: Option<i32>,
        message: String,
    },
    /// It was interrupted (Ctrl-C) and saved a checkpoint, or the sweep stopped before it.
    Interrupted {
        started: bool,
    },
}

/// The arguments of `ganscript run` for `run`.
pub fn run_args(run: &Run, action: Action, device: &str) -> Vec<String> {
    let mut args = vec!["run".to_string(), run.script.display().to_string()];
    for s in run.set_args() {
        args.push("--set".into());
        args.push(s);
    }
    args.push("--seed".into());
    args.push(run.seed.to_string());
    args.push("--device".into());
    args.push(device.to_string());
    match action {
        Action::Resume => args.push("--resume".into()),
        _ => args.push("--out".into()),
    }
    args.push(run.dir.display().to_string());
    args
}

/// The log file of `run`.
pub fn log_path(sweep: &Sweep, run: &Run) -> PathBuf {
    sweep.root.join("logs").join(format!("{}.log", run.name))
}

/// The process ids of the running children (for Ctrl-C).
type Children = Arc<Mutex<Vec<u32>>>;

fn interrupt_children(children: &Children) {
    if let Ok(pids) = children.lock() {
        for &pid in pids.iter() {
            // SAFETY: kill(2) with a child's pid and SIGINT has no memory effects.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGINT);
            }
        }
    }
}

/// Runs `run` (after `action` was decided) as a child process: its stdout and stderr go to
/// its log file, and each stderr line is also handed to `on_line`. `own_group` puts the child
/// in a process group of its own.
pub fn run_one(
    sweep: &Sweep,
    run: &Run,
    action: Action,
    opts: &LocalOptions,
    children: Option<&Children>,
    own_group: bool,
    mut on_line: impl FnMut(&str),
) -> Outcome {
    let failed = |message: String| Outcome::Failed {
        code: None,
        message,
    };
    if action == Action::Start {
        if let Err(e) = state::clear(run) {
            return failed(e.to_string());
        }
    }
    let log = log_path(sweep, run);
    if let Some(dir) = log.parent() {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return failed(format!("cannot create {}: {e}", dir.display()));
        }
    }
    let mut file = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        Ok(f) => f,
        Err(e) => return failed(format!("cannot open {}: {e}", log.display())),
    };
    let args = run_args(run, action, &opts.device);
    let _ = writeln!(
        file,
        "=== {} {} (seed {}, {} threads): {} {}",
        crate::run::iso8601(std::time::SystemTime::now()),
        action.word(),
        run.seed,
        opts.threads,
        opts.exe.display(),
        args.join(" ")
    );
    let stdout = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return failed(format!("{}: {e}", log.display())),
    };
    let mut cmd = Command::new(&opts.exe);
    cmd.args(&args)
        .env("CANDLE_NUM_THREADS", opts.threads.to_string())
        .env("RAYON_NUM_THREADS", opts.threads.to_string())
        .env("GANSCRIPT_PROGRESS", "plain")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped());
    #[cfg(unix)]
    if own_group {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return failed(format!("cannot start {}: {e}", opts.exe.display())),
    };
    if let Some(c) = children {
        if let Ok(mut pids) = c.lock() {
            pids.push(child.id());
        }
    }
    let mut tail: VecDeque<String> = VecDeque::new();
    if let Some(err) = child.stderr.take() {
        let mut reader = BufReader::new(err);
        let mut buf = Vec::new();
        while reader
            .read_until(b'\n', &mut buf)
            .map(|n| n > 0)
            .unwrap_or(false)
        {
            let _ = file.write_all(&buf);
            let line = String::from_utf8_lossy(&buf).trim_end().to_string();
            buf.clear();
            if line.trim().is_empty() {
                continue;
            }
            on_line(&line);
            tail.push_back(line);
            if tail.len() > 8 {
                tail.pop_front();
            }
        }
    }
    let status = child.wait();
    if let Some(c) = children {
        if let Ok(mut pids) = c.lock() {
            pids.retain(|&p| p != child.id());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let code = match status {
        Ok(s) => s.code(),
        Err(e) => return failed(format!("waiting for the run: {e}")),
    };
    let _ = writeln!(
        file,
        "=== exit {} after {}",
        code.map(|c| c.to_string())
            .unwrap_or_else(|| "by a signal".into()),
        fmt_duration(secs)
    );
    match code {
        Some(0) => Outcome::Finished {
            secs,
            resumed: action == Action::Resume,
        },
        Some(130) => Outcome::Interrupted { started: true },
        code => {
            let mut message: Vec<String> = tail.into_iter().collect();
            message.push(format!("(log: {})", log.display()));
            Outcome::Failed {
                code,
                message: message.join("\n"),
            }
        }
    }
}

/// Counts shown in the totals line.
#[derive(Default)]
struct Totals {
    total: usize,
    finished: usize,
    skipped: usize,
    failed: usize,
    stopped: usize,
    running: usize,
}

impl Totals {
    fn line(&self) -> String {
        let waiting = self.total.saturating_sub(
            self.finished + self.skipped + self.failed + self.stopped + self.running,
        );
        let mut s = format!(
            "{} finished, {} skipped, {} failed, {} running, {} waiting",
            self.finished, self.skipped, self.failed, self.running, waiting
        );
        if self.stopped > 0 {
            s.push_str(&format!(", {} interrupted", self.stopped));
        }
        format!("{s} (of {})", self.total)
    }
}

/// The display: bars on a terminal, lines otherwise.
struct Display {
    mode: Mode,
    multi: Option<MultiProgress>,
    slots: Vec<ProgressBar>,
    total_bar: Option<ProgressBar>,
    totals: Mutex<Totals>,
}

impl Display {
    fn new(jobs: usize, total: usize, skipped: usize) -> Display {
        let mode = mode();
        let totals = Mutex::new(Totals {
            total,
            skipped,
            ..Totals::default()
        });
        if mode != Mode::Bar {
            return Display {
                mode,
                multi: None,
                slots: Vec::new(),
                total_bar: None,
                totals,
            };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let slot_style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let slots = (0..jobs)
            .map(|_| {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(slot_style.clone());
                b.set_prefix("(idle)");
                b
            })
            .collect();
        let bar = multi.add(ProgressBar::new(total as u64));
        if let Ok(style) = ProgressStyle::with_template(
            "[{elapsed_precise}] [{bar:30.cyan/blue}] {pos}/{len} runs: {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_position(skipped as u64);
        Display {
            mode,
            multi: Some(multi),
            slots,
            total_bar: Some(bar),
            totals,
        }
    }

    fn println(&self, text: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }

    fn update_totals(&self, f: impl FnOnce(&mut Totals)) -> String {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut t);
        let line = t.line();
        if let Some(b) = &self.total_bar {
            b.set_position((t.finished + t.skipped + t.failed + t.stopped) as u64);
            b.set_message(line.clone());
        }
        line
    }

    fn started(&self, slot: usize, run: &Run, action: Action) {
        let totals = self.update_totals(|t| t.running += 1);
        if let Some(b) = self.slots.get(slot) {
            b.set_prefix(run.name.clone());
            b.set_message(format!("{}…", action.word()));
            b.enable_steady_tick(std::time::Duration::from_millis(200));
        } else {
            self.println(&format!("[{}] {} ({totals})", action.word(), run.name));
        }
    }

    fn line(&self, slot: usize, run: &Run, line: &str) {
        match self.slots.get(slot) {
            Some(b) => b.set_message(line.to_string()),
            None if self.mode == Mode::Plain => eprintln!("  {}: {line}", run.name),
            None => {}
        }
    }

    fn finished(&self, slot: usize, run: &Run, outcome: &Outcome) {
        let totals = self.update_totals(|t| {
            t.running = t.running.saturating_sub(1);
            match outcome {
                Outcome::Finished { .. } => t.finished += 1,
                Outcome::Failed { .. } => t.failed += 1,
                Outcome::Interrupted { .. } => t.stopped += 1,
                Outcome::Skipped => t.skipped += 1,
            }
        });
        if let Some(b) = self.slots.get(slot) {
            b.disable_steady_tick();
            b.set_prefix("(idle)");
            b.set_message("");
        }
        let what = match outcome {
            Outcome::Finished { secs, resumed } => format!(
                "[done] {}{} in {}",
                run.name,
                if *resumed { " (resumed)" } else { "" },
                fmt_duration(*secs)
            ),
            Outcome::Failed { code, .. } => format!(
                "[FAILED] {} ({})",
                run.name,
                code.map(|c| format!("exit {c}"))
                    .unwrap_or_else(|| "no exit code".into())
            ),
            Outcome::Interrupted { .. } => format!("[interrupted] {}", run.name),
            Outcome::Skipped => format!("[skip] {}", run.name),
        };
        self.println(&format!("{what} ({totals})"));
    }

    fn close(&self) {
        for b in &self.slots {
            b.finish_and_clear();
        }
        if let Some(b) = &self.total_bar {
            b.finish();
        }
    }
}

/// Threads per run when `jobs` runs share this machine.
pub fn threads_per_job(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    (cores / jobs.max(1)).max(1)
}

/// Runs every unfinished run of `sweep`; returns each run's outcome (in listing order).
pub fn run_all(sweep: &Sweep, opts: &LocalOptions) -> Vec<(usize, Outcome)> {
    let mut outcomes: Vec<(usize, Outcome)> = Vec::new();
    let mut todo: Vec<(usize, Action)> = Vec::new();
    for run in &sweep.runs {
        match state::action(run) {
            Ok(Action::Skip) => {
                let changed = state::changed_settings(run);
                if !changed.is_empty() {
                    eprintln!(
                        "warning: {} finished with other settings than the sweep file's ({}); it is kept: remove its directory to run it again",
                        run.name,
                        changed.join(", ")
                    );
                }
                outcomes.push((run.index, Outcome::Skipped));
            }
            Ok(a) => todo.push((run.index, a)),
            Err(message) => outcomes.push((
                run.index,
                Outcome::Failed {
                    code: None,
                    message: message.to_string(),
                },
            )),
        }
    }
    let skipped = outcomes
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Skipped))
        .count();
    let jobs = opts.jobs.max(1).min(todo.len().max(1));
    eprintln!(
        "sweep {}: {} runs, {} finished already, {} to run, {} at a time with {} thread{} each; logs in {}",
        sweep.file.display(),
        sweep.runs.len(),
        skipped,
        todo.len(),
        jobs,
        opts.threads,
        if opts.threads == 1 { "" } else { "s" },
        sweep.root.join("logs").display()
    );
    if todo.is_empty() {
        return finish(outcomes);
    }
    let display = Display::new(jobs, sweep.runs.len(), skipped);
    let stop = Arc::new(AtomicBool::new(false));
    let children: Children = Arc::new(Mutex::new(Vec::new()));
    {
        let (stop, children) = (stop.clone(), children.clone());
        crate::session::interrupt::install(OnCtrlC::Sweep {
            stop,
            forward: Box::new(move || interrupt_children(&children)),
        });
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for slot in 0..jobs {
            let (display, next, results, stop, children, todo) =
                (&display, &next, &results, &stop, &children, &todo);
            scope.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&(index, action)) = todo.get(i) else {
                    break;
                };
                let run = &sweep.runs[index];
                display.started(slot, run, action);
                let outcome = run_one(sweep, run, action, opts, Some(children), true, |l| {
                    display.line(slot, run, l)
                });
                display.finished(slot, run, &outcome);
                if let Ok(mut r) = results.lock() {
                    r.push((index, outcome));
                }
            });
        }
    });
    display.close();
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    for &(index, _) in &todo {
        if !results.iter().any(|(i, _)| *i == index) {
            results.push((index, Outcome::Interrupted { started: false }));
        }
    }
    outcomes.extend(results);
    finish(outcomes)
}

fn finish(mut outcomes: Vec<(usize, Outcome)>) -> Vec<(usize, Outcome)> {
    outcomes.sort_by_key(|(i, _)| *i);
    outcomes
}

/// The closing report of a local sweep, and whether every run is finished.
pub fn report(sweep: &Sweep, outcomes: &[(usize, Outcome)]) -> (String, bool) {
    let count = |f: fn(&Outcome) -> bool| outcomes.iter().filter(|(_, o)| f(o)).count();
    let finished = count(|o| matches!(o, Outcome::Finished { .. }));
    let skipped = count(|o| matches!(o, Outcome::Skipped));
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    let interrupted = count(|o| matches!(o, Outcome::Interrupted { .. }));
    let mut s = format!(
        "sweep: {} runs: {finished} finished, {skipped} skipped (finished before), {failed} failed, {interrupted} interrupted or not started\n",
        outcomes.len()
    );
    for (i, o) in outcomes {
        if let Outcome::Failed { code, message } = o {
            let run = &sweep.runs[*i];
            s.push_str(&format!(
                "FAILED {} ({}):\n",
                run.name,
                code.map(|c| format!("exit {c}"))
                    .unwrap_or_else(|| "did not run".into())
            ));
            for line in message.lines() {
                s.push_str(&format!("    {line}\n"));
            }
        }
    }
    if failed > 0 || interrupted > 0 {
        s.push_str(&format!(
            "run `ganscript sweep {}` again to retry: finished runs are skipped, stopped ones resume from their checkpoints\n",
            sweep.file.display()
        ));
    }
    (s, failed == 0 && interrupted == 0)
}
