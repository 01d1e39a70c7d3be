//! The `ganscript` command line: run, check and document training scripts.

mod commands;

use clap::{Parser, Subcommand};
use commands::run::{run, RunArgs};
use ganscript::diagnostics::ScriptDiagnostic;
use ganscript::errors::Error;
use ganscript::errors::Stopped;
use ganscript::session::interrupt::{self, OnCtrlC};
use ganscript::session::EngineOptions;
use ganscript::settings::Settings;
use ganscript::{checkpoint, device, docs, repl, rng, script};
use rhai::Scope;
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "ganscript",
    version,
    about = "GAN training procedures as rhai scripts over candle tensors"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a training script.
    Run(RunArgs),
    /// Load runs' checkpoints, sample their generators and print the papers' metrics (MNIST
    /// score and feature distance, or mode coverage; with several runs, a cross-test of their
    /// discriminators).
    Eval {
        /// Run directories (each with a checkpoint.safetensors).
        #[arg(required = true)]
        runs: Vec<PathBuf>,
        /// Number of generated samples per run.
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// Name of the generator net in the checkpoint.
        #[arg(long, default_value = "G")]
        generator: String,
        /// Seed of the latent samples.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Draw logged metrics of several runs on one plot and print a table of them.
    Compare(ganscript::compare::CompareArgs),
    /// Run a sweep file's grid of settings × seeds (each an ordinary `run`), here N at a time or
    /// as a Slurm array job; --dry-run lists the runs, --status shows them, --gather tables them.
    Sweep(ganscript::sweep::SweepArgs),
    /// An interactive prompt (`:help` lists its commands); FILE is loaded first.
    Repl {
        /// A script to load first (its functions and variables become available).
        file: Option<PathBuf>,
        /// Seed of the random generator.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Device: cpu, cuda or cuda:N.
        #[arg(long, default_value = "cpu")]
        device: String,
        /// Also let scripts read under DIR (repeatable); see `run --help`.
        #[arg(long = "allow-read", value_name = "DIR")]
        allow_read: Vec<PathBuf>,
        /// Memory budget for tensors, layers, data and rhai values (e.g. 8G; default: 75% of
        /// the machine's memory).
        #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
        max_memory: Option<u64>,
    },
    /// Parse a script and report every syntax error, without running it.
    Check {
        /// The scripts to check.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// List the registered functions with their signatures and docs, by topic.
    Doc {
        /// A function name (or part of one), or a topic (tensors, autograd, nets, optimizers,
        /// losses, penalties, schedules, data, metrics, runs, stdlib).
        name: Option<String>,
        /// List the topics with their number of functions.
        #[arg(long, conflicts_with = "name")]
        topics: bool,
    },
}

fn main() -> ExitCode {
    ganscript::memory::keep_freed_memory();
    // Before any candle work on any thread: keep the graph of gradients (double backprop).
    if let Err(e) = ganscript::autograd::ensure_double_backprop() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = ganscript::kernels::dispatch::from_env() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    // Host panics are caught and reported as diagnostics; keep the raw message off the screen.
    // A closed stdout or stderr (`ganscript ... | head`) makes printing panic: exit with 1.
    let quiet = std::env::var_os("RUST_BACKTRACE").is_none();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.starts_with("failed printing to std") {
            std::process::exit(1);
        }
        if !quiet {
            default_hook(info);
        }
    }));
    let cli = Cli::parse();
    // Scripts run on a thread with a large stack: deep values (nested arrays, maps) are dropped
    // and measured recursively, and a deep recursion must end in an error, not a crash.
    let worker = std::thread::Builder::new()
        .name("ganscript".into())
        .stack_size(SCRIPT_STACK)
        .spawn(move || dispatch(cli));
    match worker.map(|h| h.join()) {
        Ok(Ok(code)) => code,
        Ok(Err(_)) => {
            eprintln!("error: internal error (a bug in ganscript, please report it)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: cannot start the script thread: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The stack of the thread scripts run on (reserved, not committed).
const SCRIPT_STACK: usize = 512 << 20;

/// `--max-memory`'s value.
fn parse_memory(text: &str) -> Result<u64, Error> {
    ganscript::limits::parse_size(text)
}

fn dispatch(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Run(args) => run(args),
        Command::Eval {
            runs,
            samples,
            generator,
            seed,
            json,
        } => eval(runs, samples, &generator, seed, json),
        Command::Compare(args) => match ganscript::compare::main(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Sweep(args) => match std::env::current_exe() {
            Ok(exe) => ganscript::sweep::main(&args, &exe),
            Err(e) => fail(&ScriptDiagnostic::plain(format!(
                "cannot find the ganscript binary to start the runs with: {e}"
            ))),
        },
        Command::Repl {
            file,
            seed,
            device,
            allow_read,
            max_memory,
        } => {
            if let Some(m) = max_memory {
                ganscript::limits::set_max_memory(m);
            }
            repl(file, seed, device, allow_read)
        }
        Command::Check { files } => check(files),
        Command::Doc { name, topics } => doc(name, topics),
    }
}

fn fail(d: &ScriptDiagnostic) -> ExitCode {
    eprintln!("{}", d.render());
    ExitCode::FAILURE
}

fn check(files: Vec<PathBuf>) -> ExitCode {
    let mut failed = false;
    for file in files {
        let text = match script::read_source(&file) {
            Ok(t) => t,
            Err(d) => {
                failed = true;
                eprintln!("{}", d.render());
                continue;
            }
        };
        let errors = script::check(&file.display().to_string(), &text);
        if errors.is_empty() {
            println!("{}: ok", file.display());
        } else {
            failed = true;
            for e in &errors {
                eprintln!("{}", e.render());
            }
            eprintln!("{}: {} syntax error(s)", file.display(), errors.len());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn doc(name: Option<String>, topics: bool) -> ExitCode {
    let (engine, _) = match ganscript::new_engine(&EngineOptions::default()) {
        Ok(e) => e,
        Err(e) => return fail(&ScriptDiagnostic::plain(e)),
    };
    if topics {
        print!("{}", docs::render_topics(&engine));
        return ExitCode::SUCCESS;
    }
    match docs::render(&engine, name.as_deref()) {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => fail(&ScriptDiagnostic::plain(e)),
    }
}

fn repl(file: Option<PathBuf>, seed: u64, device: String, allow_read: Vec<PathBuf>) -> ExitCode {
    match device::parse_device(&device) {
        Ok(d) => device::set_current_device(d),
        Err(e) => return fail(&ScriptDiagnostic::plain(e)),
    }
    rng::seed(seed);
    let opts = EngineOptions {
        script_dir: Some(
            file.as_deref()
                .map(ganscript::sandbox::script_dir_of)
                .unwrap_or_else(|| PathBuf::from(".")),
        ),
        seed,
        device,
        allow_read,
        ..EngineOptions::default()
    };
    match repl::main(file.as_deref(), &opts) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&ScriptDiagnostic::plain(e)),
    }
}

fn eval(runs: Vec<PathBuf>, samples: usize, generator: &str, seed: u64, json: bool) -> ExitCode {
    if samples < 20 {
        return fail(&ScriptDiagnostic::plain("--samples must be at least 20"));
    }
    let mut results = Vec::new();
    // A run that keeps an EMA of its generator (`--set ema=...`) is scored for both.
    let mut emas = Vec::new();
    for dir in &runs {
        let r = match ganscript::eval::eval_run(dir, samples, seed, generator) {
            Ok(r) => r,
            Err(e) => return fail(&ScriptDiagnostic::plain(e)),
        };
        let ema = r.ema_of(generator);
        results.push(r);
        if let Some(name) = ema {
            match ganscript::eval::eval_run(dir, samples, seed, &name) {
                Ok(r) => emas.push(r),
                Err(e) => return fail(&ScriptDiagnostic::plain(e)),
            }
        }
    }
    // The cross-test pits the runs' own generators against each other.
    let cross = if results.len() > 1 {
        ganscript::eval::cross_test(&results)
    } else {
        None
    };
    let why = cross
        .is_none()
        .then(|| ganscript::eval::cross_test_why(&results));
    results.extend(emas);
    if json {
        let v = serde_json::json!({
            "runs": results.iter().map(|r| r.metrics.clone()).collect::<Vec<_>>(),
            "cross_test": cross,
            "cross_test_note": why,
        });
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", ganscript::eval::render(&results, cross.as_ref()));
        if let Some(why) = &why {
            println!("cross-test: none ({why})");
        }
    }
    ExitCode::SUCCESS
}
