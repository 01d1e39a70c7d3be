//! Assembles the rhai engine: each concern registers its own functions (tensor API, autograd,
//! randomness, settings, ...), then the sandbox (no filesystem or environment access except the
//! host's API, an operation budget, Ctrl-C) and the module resolver for `stdlib/` are set up.

use crate::settings::{Settings, SharedSettings};
use crate::{
    autograd, data, magan, metrics, nn, objectives, optim, penalties, repl, rng, run, schedules,
    settings, tensor,
};
use rhai::{Engine, EvalAltResult, Module, ModuleResolver, Position, Scope, Shared, INT};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
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
        }
    }
}

/// The modules shipped in `stdlib/`, compiled into the binary.
pub const STDLIB: &[(&str, &str)] = &[
    ("penalties", include_str!("../stdlib/penalties.rhai")),
    ("schedules", include_str!("../stdlib/schedules.rhai")),
    ("margin", include_str!("../stdlib/margin.rhai")),
    ("energy", include_str!("../stdlib/energy.rhai")),
    ("train", include_str!("../stdlib/train.rhai")),
];

/// The message a script stopped by Ctrl-C ends with.
pub const INTERRUPTED: &str = "interrupted (Ctrl-C)";

/// An engine with every ganscript concern registered, plus the shared source map.
pub fn new_engine(opts: &EngineOptions) -> Result<(Engine, Sources), String> {
    autograd::ensure_double_backprop()?;
    crate::kernels::dispatch::from_env()?;
    let mut engine = Engine::new();
    let sources = Sources::default();

    // The sandbox: rhai has no filesystem or environment access of its own; `eval` would let a
    // script escape the diagnostics and the operation budget, so it is off.
    engine.disable_symbol("eval");
    crate::sandbox::install(opts.script_dir.as_deref(), &opts.allow_read);
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
            Some(INTERRUPTED.into())
        } else {
            None
        }
    });
    engine.on_print(|s| println!("{s}"));
    engine.on_debug(|s, src, pos| match src {
        Some(src) => eprintln!("[{src}:{pos}] {s}"),
        None => eprintln!("[{pos}] {s}"),
    });

    tensor::register::register(&mut engine);
    autograd::register(&mut engine);
    register_rng(&mut engine);
    settings::register(&mut engine, opts.settings.clone());
    nn::register(&mut engine);
    optim::register(&mut engine);
    objectives::register(&mut engine);
    penalties::register(&mut engine);
    schedules::register(&mut engine);
    magan::register(&mut engine);
    metrics::register(&mut engine);
    data::register(&mut engine);
    run::register(&mut engine, opts);
    crate::checkpoint::register(&mut engine, opts);
    repl::register(&mut engine);

    engine.set_module_resolver(StdlibResolver {
        script_dir: opts.script_dir.clone(),
        sources: sources.clone(),
        cache: RefCell::new(HashMap::new()),
    });
    Ok((engine, sources))
}

fn register_rng(engine: &mut Engine) {
    reg!(
        engine,
        "seed",
        "Re-seeds the random generator: the same seed gives the same run, bit for bit, on CPU.",
        |s: INT| { rng::seed(s as u64) }
    );
    reg!(volatile engine, "rand_int", "A uniformly random integer in [0, n) (n >= 1).", |n: INT| -> crate::errors::ScriptResult<INT> {
        if n < 1 {
            return Err(crate::errors::script_err(format!("rand_int(n): n must be >= 1, got {n}")));
        }
        Ok(rng::below(n as u64) as INT)
    });
    reg!(volatile engine, "rand_float", "A uniformly random float in [0, 1).", || rng::uniform_vec(1, 0.0, 1.0)[0]);
    reg!(volatile engine, "permutation", "A random permutation of 0..n as an array.", |ctx: rhai::NativeCallContext, n: INT| -> crate::errors::ScriptResult<rhai::Array> {
        let n = usize::try_from(n).map_err(|_| {
            crate::errors::script_err(format!("permutation(n): n must be >= 0, got {n}"))
        })?;
        // Checked before any allocation: the array limit and the budget (8-byte indices, then
        // 16-byte array items).
        let max = ctx.engine().max_array_size();
        if max > 0 && n > max {
            return Err(crate::errors::script_err(format!(
                "permutation({n}): more items than an array may hold ({max}, from --max-memory)"
            )));
        }
        crate::limits::check(&format!("permutation({n})"), crate::limits::bytes_of(n as u128, 24))?;
        Ok(rng::permutation(n).into_iter().map(|i| rhai::Dynamic::from_int(i as INT)).collect())
    });
}

/// Resolves `import "name"`: a `.rhai` file under the script's own directory (next to the
/// importing file, then in the script's directory), then a module of the standard library (from
/// `$GANSCRIPT_STDLIB` if set, else the copy compiled into the binary). An absolute name, or one
/// that leaves the script's directory (`..`, a symbolic link), is refused.
struct StdlibResolver {
    script_dir: Option<PathBuf>,
    sources: Sources,
    cache: RefCell<HashMap<String, Shared<Module>>>,
}

/// Why an import was refused.
const IMPORT_REFUSED: &str =
    "imports come from the standard library or from .rhai files under the script's directory";

impl StdlibResolver {
    fn locate(
        &self,
        importer: Option<&str>,
        path: &str,
    ) -> Result<Option<(String, String)>, String> {
        let with_ext = if path.ends_with(".rhai") {
            path.to_string()
        } else {
            format!("{path}.rhai")
        };
        let refused = || format!("import \"{path}\": {IMPORT_REFUSED}");
        let rel = Path::new(&with_ext);
        if rel.is_absolute()
            || rel
                .components()
                .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(refused());
        }
        // (folder, whether a file found there but outside the script's directory is an error
        // rather than skipped: a module next to a stdlib module is simply not a local file).
        let mut dirs: Vec<(PathBuf, bool)> = Vec::new();
        if let Some(src) = importer {
            if let Some(dir) = Path::new(src).parent() {
                if Path::new(src).exists() {
                    dirs.push((dir.to_path_buf(), false));
                }
            }
        }
        if let Some(d) = &self.script_dir {
            dirs.push((d.clone(), true));
        }
        for (dir, strict) in dirs {
            let p = dir.join(rel);
            if !p.is_file() {
                continue;
            }
            if !crate::sandbox::import_allowed(&p) {
                if strict {
                    return Err(refused());
                }
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok(Some((p.display().to_string(), text)));
            }
        }
        if let Ok(d) = std::env::var("GANSCRIPT_STDLIB") {
            let p = PathBuf::from(d).join(rel);
            if let Ok(text) = std::fs::read_to_string(&p) {
                return Ok(Some((p.display().to_string(), text)));
            }
        }
        let name = with_ext
            .trim_end_matches(".rhai")
            .trim_start_matches("stdlib/");
        Ok(STDLIB
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| (format!("stdlib/{n}.rhai"), text.to_string())))
    }
}

impl ModuleResolver for StdlibResolver {
    fn resolve(
        &self,
        engine: &Engine,
        source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<Shared<Module>, Box<EvalAltResult>> {
        let found = self
            .locate(source, path)
            .map_err(|msg| Box::new(EvalAltResult::ErrorRuntime(msg.into(), pos)))?;
        let Some((label, text)) = found else {
            return Err(Box::new(EvalAltResult::ErrorModuleNotFound(
                path.to_string(),
                pos,
            )));
        };
        if let Some(m) = self.cache.borrow().get(&label) {
            return Ok(m.clone());
        }
        self.sources.insert(&label, &text);
        self.sources.insert(path, &text);
        let wrap =
            |e: Box<EvalAltResult>| Box::new(EvalAltResult::ErrorInModule(label.clone(), e, pos));
        let mut ast = engine.compile(&text).map_err(|e| wrap(e.into()))?;
        ast.set_source(label.as_str());
        let module = Module::eval_ast_as_new(Scope::new(), &ast, engine).map_err(wrap)?;
        let module: Shared<Module> = module.into();
        self.cache.borrow_mut().insert(label, module.clone());
        Ok(module)
    }
}
