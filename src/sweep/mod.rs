//! `ganscript sweep FILE`: a grid of settings × seeds, each an ordinary `ganscript run` in a
//! directory of its own under the sweep's output root, run locally N at a time or as a Slurm
//! array job, and gathered into tables.
//!
//! ```text
//! ganscript sweep roth.toml --dry-run          # the runs, their directories and what happens next
//! ganscript sweep roth.toml --jobs 4           # run them here, 4 at a time
//! ganscript sweep roth.toml --slurm --time 02:00:00 --gpus-per-run 1 --device cuda
//! ganscript sweep roth.toml --status           # each run's state (and its Slurm job's)
//! ganscript sweep roth.toml --gather --plot loss_d
//! ```
//! The sweep file is described in [`spec`]; finished runs (config.json status "ok") are
//! skipped, stopped ones resume from their checkpoints ([`state`]).

pub mod gather;
pub mod local;
pub mod slurm;
pub mod spec;
pub mod state;

pub use spec::{Run, Sweep};

use crate::errors::Error;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The arguments of `ganscript sweep`.
#[derive(clap::Args, Debug, Clone)]
pub struct SweepArgs {
    /// The sweep file (TOML): script, fixed settings, grid and/or cases, seeds, output root.
    pub file: PathBuf,
    /// List the runs (index, directory, settings, what would happen) without running them.
    #[arg(long, group = "mode")]
    pub dry_run: bool,
    /// Show each run's state, from its directory and from squeue/sacct where available.
    #[arg(long, group = "mode")]
    pub status: bool,
    /// Write tables of every run's last metrics and eval results, with mean ± sd per
    /// configuration, into <root>/gather/ (CSV and Markdown).
    #[arg(long, group = "mode")]
    pub gather: bool,
    /// Submit the unfinished runs to Slurm as an sbatch array job (one task per run).
    #[arg(long, group = "mode")]
    pub slurm: bool,
    /// Run entry I of the listing (what each Slurm array task does).
    #[arg(long, group = "mode", value_name = "I")]
    pub run_index: Option<usize>,
    /// Runs at a time (locally; with --slurm: array tasks at a time, `%N`).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Threads per run (candle's pool; default: this machine's cores / --jobs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Device of every run: cpu, cuda or cuda:N (default: the file's `device`, else cuda with
    /// --gpus-per-run, else cpu).
    #[arg(long)]
    pub device: Option<String>,
    /// Slurm partition.
    #[arg(long, requires = "slurm")]
    pub partition: Option<String>,
    /// Slurm time limit per run (e.g. 02:00:00).
    #[arg(long, requires = "slurm")]
    pub time: Option<String>,
    /// GPUs per run (`--gres=gpu:G`); implies --device cuda unless a device is given.
    #[arg(long, requires = "slurm")]
    pub gpus_per_run: Option<u32>,
    /// CPUs per run (`--cpus-per-task`; also candle's thread count).
    #[arg(long, requires = "slurm")]
    pub cpus_per_run: Option<u32>,
    /// Memory per run (e.g. 8G).
    #[arg(long, requires = "slurm")]
    pub mem: Option<String>,
    /// Another `#SBATCH` option, e.g. --sbatch-arg=--account=lab (repeatable).
    #[arg(long, requires = "slurm", allow_hyphen_values = true)]
    pub sbatch_arg: Vec<String>,
    /// Write the sbatch script without submitting it.
    #[arg(long, requires = "slurm")]
    pub print_only: bool,
    /// Gather: do not evaluate the checkpoints (only the logged metrics).
    #[arg(long, requires = "gather")]
    pub no_eval: bool,
    /// Gather: generated samples per evaluation.
    #[arg(long, requires = "gather", default_value_t = 2000)]
    pub eval_samples: usize,
    /// Gather: the generator net's name in the checkpoints.
    #[arg(long, requires = "gather", default_value = "G")]
    pub generator: String,
    /// Gather: also plot these metrics (comma-separated), mean over seeds per configuration.
    #[arg(long, requires = "gather", value_delimiter = ',')]
    pub plot: Vec<String>,
    /// Gather: the plots' x axis.
    #[arg(long, requires = "gather", default_value = "step")]
    pub x: String,
    /// The listing's fingerprint a Slurm task checks (written by --slurm).
    #[arg(long, hide = true, requires = "run_index")]
    pub listing: Option<String>,
}

impl SweepArgs {
    /// The device of the runs: --device, the file's `device`, else cuda when a Slurm job
    /// asks for GPUs, else cpu.
    fn device(&self, sweep: &Sweep) -> String {
        self.device
            .clone()
            .or_else(|| sweep.device.clone())
            .unwrap_or_else(|| {
                let gpus = self.gpus_per_run.or(sweep.slurm.gpus_per_run).unwrap_or(0);
                if self.slurm && gpus > 0 {
                    "cuda"
                } else {
                    "cpu"
                }
                .to_string()
            })
    }
}

/// The `--dry-run` listing.
pub fn listing(sweep: &Sweep, device: &str) -> String {
    let scripts: Vec<&PathBuf> = sweep.runs.iter().map(|r| &r.script).collect();
    let one_script = scripts.windows(2).all(|w| w[0] == w[1]);
    let mut s = format!(
        "{} runs ({} configurations × {} seeds) in {} on {device}\n",
        sweep.runs.len(),
        sweep.configs().len(),
        sweep.seeds.len(),
        sweep.root.display()
    );
    if one_script {
        if let Some(p) = scripts.first() {
            s.push_str(&format!("script {}\n", p.display()));
        }
    }
    let width = sweep.runs.iter().map(|r| r.name.len()).max().unwrap_or(0);
    for run in &sweep.runs {
        let what = match state::action(run) {
            Ok(a) => a.word().to_string(),
            Err(_) => "blocked".to_string(),
        };
        let mut line = format!("{:>3}  {:<6}  {:<width$} ", run.index, what, run.name);
        if !one_script {
            line.push_str(&format!(" {}", run.script.display()));
        }
        for a in run.set_args() {
            line.push_str(&format!(" --set {a}"));
        }
        line.push_str(&format!(" --seed {}", run.seed));
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s
}

/// The `--status` table.
pub fn status_table(sweep: &Sweep) -> String {
    let slurm = slurm::states(sweep);
    let width = sweep.runs.iter().map(|r| r.name.len()).max().unwrap_or(3);
    let mut counts: Vec<(String, usize)> = Vec::new();
    let mut s = format!(
        "{:>3}  {:<width$}  {:<14}  {:>8}  slurm\n",
        "#", "run", "state", "step"
    );
    for run in &sweep.runs {
        let st = state::state(&run.dir);
        let word = match &st {
            state::RunState::New => "not started".to_string(),
            other => other.word().to_string(),
        };
        let step = state::last_metrics(&run.dir)
            .into_iter()
            .find(|(k, _)| k == "step")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();
        let sl = slurm.get(&run.index).cloned().unwrap_or_default();
        s.push_str(
            format!(
                "{:>3}  {:<width$}  {:<14}  {:>8}  {sl}",
                run.index, run.name, word, step
            )
            .trim_end(),
        );
        s.push('\n');
        match counts.iter_mut().find(|(w, _)| *w == word) {
            Some(c) => c.1 += 1,
            None => counts.push((word, 1)),
        }
    }
    s.push_str(&format!(
        "{} runs: {}\n",
        sweep.runs.len(),
        counts
            .iter()
            .map(|(w, n)| format!("{n} {w}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    s
}

/// Runs entry `index` (a Slurm array task): skips it when finished, resumes it from its
/// checkpoint when stopped. Its output goes to its log and to stderr.
fn run_index(sweep: &Sweep, args: &SweepArgs, exe: &Path, index: usize) -> Result<bool, Error> {
    if let Some(fp) = &args.listing {
        if *fp != sweep.fingerprint() {
            return Err(Error::Msg(format!(
                "{} changed since this job was submitted (its runs are not the ones submitted): submit it again",
                sweep.file.display()
            )));
        }
    }
    let run = sweep.runs.get(index).ok_or_else(|| {
        format!(
            "--run-index {index}: {} has {} runs (0 to {})",
            sweep.file.display(),
            sweep.runs.len(),
            sweep.runs.len().saturating_sub(1)
        )
    })?;
    let action = state::action(run)?;
    if action == state::Action::Skip {
        eprintln!("{}: finished already", run.name);
        return Ok(true);
    }
    let threads = args
        .threads
        .or_else(|| {
            std::env::var("CANDLE_NUM_THREADS")
                .ok()
                .and_then(|t| t.parse().ok())
        })
        .unwrap_or_else(|| local::threads_per_job(1));
    let opts = local::LocalOptions {
        exe: exe.to_path_buf(),
        jobs: 1,
        threads,
        device: args.device(sweep),
    };
    eprintln!(
        "{} (entry {index}): {} in {}; log {}",
        run.name,
        action.word(),
        run.dir.display(),
        local::log_path(sweep, run).display()
    );
    let outcome = local::run_one(sweep, run, action, &opts, None, false, |l| eprintln!("{l}"));
    match outcome {
        local::Outcome::Finished { secs, .. } => {
            eprintln!(
                "{}: finished in {}",
                run.name,
                crate::run::progress::fmt_duration(secs)
            );
            Ok(true)
        }
        local::Outcome::Failed { message, .. } => {
            Err(Error::Msg(format!("{} failed:\n{message}", run.name)))
        }
        _ => {
            eprintln!("{}: interrupted (resumes when submitted again)", run.name);
            Ok(false)
        }
    }
}

/// `ganscript sweep`. `exe` is the ganscript binary each run is started with.
pub fn main(args: &SweepArgs, exe: &Path) -> ExitCode {
    let fail = |e: Error| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    let sweep = match Sweep::load(&args.file) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    if sweep.runs.is_empty() {
        return fail(format!("{}: the sweep has no runs", args.file.display()).into());
    }
    if args.jobs == Some(0) || args.threads == Some(0) {
        return fail("--jobs and --threads must be at least 1".into());
    }
    let device = args.device(&sweep);
    if args.dry_run {
        print!("{}", listing(&sweep, &device));
        return ExitCode::SUCCESS;
    }
    if args.status {
        print!("{}", status_table(&sweep));
        return ExitCode::SUCCESS;
    }
    if args.gather {
        if args.eval_samples < 20 {
            return fail("--eval-samples must be at least 20".into());
        }
        let opts = gather::GatherOptions {
            eval: !args.no_eval,
            eval_samples: args.eval_samples,
            generator: args.generator.clone(),
            plots: args.plot.clone(),
            x: args.x.clone(),
        };
        return match gather::gather(&sweep, &opts) {
            Ok((table, written, warnings)) => {
                print!("{table}");
                for w in warnings {
                    eprintln!("warning: {w}");
                }
                for p in written {
                    eprintln!("wrote {}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if args.slurm {
        let opts = slurm::SlurmOptions {
            partition: args.partition.clone(),
            time: args.time.clone(),
            gpus_per_run: args.gpus_per_run,
            cpus_per_run: args.cpus_per_run,
            mem: args.mem.clone(),
            sbatch_args: args.sbatch_arg.clone(),
            max_running: args.jobs,
        }
        .over(&sweep.slurm);
        if opts.gpus_per_run.unwrap_or(0) > 0 && !device.starts_with("cuda") {
            eprintln!("warning: --gpus-per-run is given but the runs use --device {device}");
        }
        return match slurm::submit(&sweep, &opts, exe, &device, args.print_only) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        };
    }
    if let Some(i) = args.run_index {
        return match run_index(&sweep, args, exe, i) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::from(130),
            Err(e) => fail(e),
        };
    }
    let jobs = args.jobs.unwrap_or(1);
    let opts = local::LocalOptions {
        exe: exe.to_path_buf(),
        jobs,
        threads: args.threads.unwrap_or_else(|| local::threads_per_job(jobs)),
        device,
    };
    let outcomes = local::run_all(&sweep, &opts);
    let (report, all_done) = local::report(&sweep, &outcomes);
    eprint!("{report}");
    let interrupted = outcomes
        .iter()
        .any(|(_, o)| matches!(o, local::Outcome::Interrupted { .. }));
    if all_done {
        ExitCode::SUCCESS
    } else if interrupted
        && !outcomes
            .iter()
            .any(|(_, o)| matches!(o, local::Outcome::Failed { .. }))
    {
        ExitCode::from(130)
    } else {
        ExitCode::FAILURE
    }
}
