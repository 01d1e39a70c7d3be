//! The session: assembles the rhai engine a script runs in. Each concern registers its own
//! functions (tensor API, autograd, randomness, settings, nets, ..., the run and its
//! checkpoints), then the sandbox (no filesystem or environment access except the host's API,
//! an operation budget, Ctrl-C) and the module resolver for `stdlib/` ([`resolver`]) are set
//! up. [`pause`] holds the run's pause points.

pub mod interrupt;
pub mod pause;
pub mod resolver;

pub use resolver::STDLIB;

use crate::errors::Error;
use crate::settings::{Settings, SharedSettings};
use crate::{autograd, data, gan, metrics, nn, optim, run, settings, tensor};
use resolver::StdlibResolver;
use rhai::Engine;
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Script sources by name (the main script, imported modules), for diagnostics.
#[derive(Clone, Default)]
pub struct Sources(Rc<RefCell<HashMap<String, String>>>);

impl Sources {
    pub fn insert(&self, name: &str, text: &str) {
        self.0
            .borrow_mut()
            .insert(name.to_string(), text.to_string());
    }
    pub fn get(&self, name: &str) -> Option<String> {
        self.0.borrow().get(name).cloned()
    }
    /// Every source text (for the hints' scan of declared variables).
    pub fn texts(&self) -> Vec<String> {
        self.0.borrow().values().cloned().collect()
    }
}

/// How an engine is built.
pub struct EngineOptions {
    /// Operation budget (0: unlimited). Bounds runaway scripts.
    pub max_ops: u64,
    /// Settings from `--set`.
    pub settings: SharedSettings,
    /// Set to true (by Ctrl-C) to stop the running script at the next operation.
    pub interrupt: Arc<AtomicBool>,
    /// Directory of the main script: `import "x"` looks there first.
    pub script_dir: Option<PathBuf>,
    /// The script being run (recorded in the run's config.json).
    pub script_path: Option<PathBuf>,
    /// Run directory from `--out`; `None`: `runs/<script>-<timestamp>`, made when first needed.
    pub out_dir: Option<PathBuf>,
    /// The seed given with `--seed` (recorded in config.json).
    pub seed: u64,
    /// The device given with `--device` (recorded in config.json).
    pub device: String,
    /// Directories granted with `--allow-read` (besides the current directory, the script's
    /// directory and the run directory); see [`crate::sandbox`].
    pub allow_read: Vec<PathBuf>,
    /// Write TensorBoard event files into the run directory (`--no-tensorboard`: false).
    pub tensorboard: bool,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            max_ops: 0,
            settings: Rc::new(RefCell::new(Settings::default())),
            interrupt: Arc::new(AtomicBool::new(false)),
            script_dir: None,
            script_path: None,
            out_dir: None,
            seed: 0,
            device: "cpu".to_string(),
            allow_read: Vec::new(),
            tensorboard: true,
        }
    }
}

/// An engine with every ganscript concern registered, plus the shared source map.
pub fn new_engine(opts: &EngineOptions) -> Result<(Engine, Sources), Error> {
    build(opts).map(|b| (b.engine, b.sources))
}

/// What [`build`] assembles: the engine, the source map of everything it compiled, and the run
/// its functions write into (captured by their registrations, not ambient state).
pub struct Built {
    pub engine: Engine,
    pub sources: Sources,
    pub run: run::RunHandle,
}

/// Builds an engine for `opts`: every concern registered, the run of this engine created (not
/// started), the sandbox and import resolver installed.
pub fn build(opts: &EngineOptions) -> Result<Built, Error> {
    autograd::ensure_double_backprop()?;
    crate::kernels::dispatch::from_env()?;
    let mut engine = Engine::new();
    let sources = Sources::default();

    // The sandbox: rhai has no filesystem or environment access of its own; `eval` would let a
    // script escape the diagnostics and the operation budget, so it is off.
    engine.disable_symbol("eval");
    let run = run::RunHandle::new(run::RunInfo {
        out_dir: opts.out_dir.clone(),
        script_path: opts.script_path.clone(),
        seed: opts.seed,
        device: opts.device.clone(),
        settings: opts.settings.clone(),
        tensorboard: opts.tensorboard,
    });
    let outputs: Rc<dyn crate::sandbox::Outputs> = Rc::new(run.clone());
    crate::sandbox::install(
        opts.script_dir.as_deref(),
        &opts.allow_read,
        Some(outputs.clone()),
    );
    engine.set_max_operations(opts.max_ops);
    engine.set_max_call_levels(64);
    engine.set_max_expr_depths(128, 64);
    // rhai's own values count against the memory budget too (`[].pad(1e10)`, a string doubled
    // in a loop): over these sizes they are errors at the script's line, not aborts.
    let (strings, arrays, maps) = crate::limits::rhai_limits();
    engine.set_max_string_size(strings);
    engine.set_max_array_size(arrays);
    engine.set_max_map_size(maps);
    let interrupt = opts.interrupt.clone();
    engine.on_progress(move |_ops| {
        // A run that checkpoints stops at its next save_checkpoint instead (a second Ctrl-C
        // forces the stop).
        if interrupt.load(Ordering::Relaxed) && !crate::checkpoint::defers_interrupt() {
            Some(crate::errors::Stopped::Interrupted.token())
        } else {
            None
        }
    });
    engine.on_print(|s| println!("{s}"));
    engine.on_debug(|s, src, pos| match src {
        Some(src) => eprintln!("[{src}:{pos}] {s}"),
        None => eprintln!("[{pos}] {s}"),
    });

    tensor::api::register(&mut engine);
    autograd::register(&mut engine);
    tensor::random::register(&mut engine);
    settings::register(&mut engine, opts.settings.clone());
    nn::register(&mut engine, outputs.clone());
    optim::register(&mut engine, outputs);
    gan::register(&mut engine);
    metrics::register(&mut engine);
    data::register(&mut engine);
    run::register(&mut engine, &run);
    crate::checkpoint::register(&mut engine, opts.interrupt.clone(), &run);
    pause::register(&mut engine);

    engine.set_module_resolver(StdlibResolver::new(
        opts.script_dir.clone(),
        sources.clone(),
    ));
    Ok(Built {
        engine,
        sources,
        run,
    })
}
