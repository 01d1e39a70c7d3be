//! `ganscript run SCRIPT`: a training run, fresh or resumed (`--resume DIR`), optionally
//! pausable (`--interactive`), with its run directory, config, checkpoints and exit status.

use crate::*;
use ganscript::errors::Error;

#[derive(clap::Args)]
pub(crate) struct RunArgs {
    /// The script (.rhai).
    file: PathBuf,
    /// A setting the script reads with `setting(key, default)` (repeatable): numbers,
    /// strings and true/false are parsed.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Seed of the random generator (a CPU run with the same seed is identical, bit for bit).
    /// Default 0, or the seed of the run given with --resume.
    #[arg(long)]
    seed: Option<u64>,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Run directory (default: runs/<script>-<timestamp>).
    #[arg(long, conflicts_with = "resume")]
    out: Option<PathBuf>,
    /// Continue the run in RUN_DIR from its checkpoint, appending to its logs; its settings
    /// are reused and --set values override them (a larger `epochs` extends a finished run).
    #[arg(long, value_name = "RUN_DIR")]
    resume: Option<PathBuf>,
    /// Operation budget of the script (0: unlimited).
    #[arg(long, default_value_t = 0)]
    max_ops: u64,
    /// Ctrl-C or `pause()` opens the REPL on the run's live state at the next step
    /// boundary (`:continue` resumes, `:save` checkpoints, `:quit` checkpoints and stops).
    #[arg(long, short = 'i')]
    interactive: bool,
    /// Let the script read under DIR too (repeatable). Without it a script reads only under
    /// the current directory, its own directory and the run directory; it writes only inside
    /// the run directory.
    #[arg(long = "allow-read", value_name = "DIR")]
    allow_read: Vec<PathBuf>,
    /// With --resume: continue the run even though it was started by a different script (or
    /// the script changed since); the resume is recorded in config.json.
    #[arg(long, requires = "resume")]
    force_script: bool,
    /// Memory budget for tensors, layers, data and rhai values (e.g. 8G, 512M; default: 75% of
    /// the machine's memory). A request over it is an error at the script's line.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    max_memory: Option<u64>,
    /// Let optimizers apply NaN or infinite losses and gradients (by default `opt.step` stops
    /// the run with an error naming the parameter).
    #[arg(long)]
    allow_nonfinite: bool,
    /// Check the output of every tensor op and stop at the first NaN or Inf, with its line
    /// (slow).
    #[arg(long)]
    detect_anomaly: bool,
    /// Write no TensorBoard event file (by default `log` scalars and `save_grid` pictures also
    /// go to events.out.tfevents.* in the run directory: `tensorboard --logdir runs`).
    #[arg(long)]
    no_tensorboard: bool,
    /// Print every setting the script and its imports read (`setting("name", default)`): name,
    /// default and the comment on its line; run nothing.
    #[arg(long)]
    list_settings: bool,
}

/// A run directory's config.json.
fn read_config(dir: &Path) -> Result<serde_json::Value, Error> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot resume {}: cannot read {}: {e}",
            dir.display(),
            path.display()
        )
    })?;
    Ok(serde_json::from_str(&text)
        .map_err(|e| format!("cannot resume: {} is not valid JSON: {e}", path.display()))?)
}

/// The settings (`given`) and seed recorded in a run's config.json.
fn resumed_config(cfg: &serde_json::Value, dir: &Path) -> Result<(Settings, Option<u64>), Error> {
    let mut settings = Settings::default();
    if let Some(given) = cfg.get("given").and_then(|g| g.as_object()) {
        for (k, v) in given {
            let d = rhai::serde::to_dynamic(v)
                .map_err(|e| format!("{}: setting {k}: {e}", dir.join("config.json").display()))?;
            settings.given.insert(k.clone(), d);
        }
    }
    Ok((settings, cfg.get("seed").and_then(|s| s.as_u64())))
}

/// The SHA-256 of a file, in hex.
fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Refuses to resume a run with another script than the one it ran last (compared by content),
/// unless `force`.
fn check_resumed_script(
    cfg: &serde_json::Value,
    dir: &Path,
    file: &Path,
    sha: &str,
    force: bool,
) -> Result<(), Error> {
    // The script of the latest resume, else of the start.
    let last = cfg
        .get("resumes")
        .and_then(|r| r.as_array())
        .and_then(|r| r.iter().rev().find(|e| e.get("script_sha256").is_some()))
        .unwrap_or(cfg);
    let recorded_sha = last.get("script_sha256").and_then(|s| s.as_str());
    let recorded = last
        .get("script")
        .and_then(|s| s.as_str())
        .unwrap_or("an unrecorded script");
    let Some(recorded_sha) = recorded_sha else {
        eprintln!(
            "warning: {} records no script checksum: cannot check that {} is the script of this run",
            dir.join("config.json").display(),
            file.display()
        );
        return Ok(());
    };
    if recorded_sha == sha {
        return Ok(());
    }
    let what = if Path::new(recorded).file_name() == file.file_name() {
        format!("{} changed since the run", file.display())
    } else {
        format!("{} is a different script", file.display())
    };
    let msg = format!(
        "{} was run by {recorded} (sha256 {}…), and {what} (sha256 {}…)",
        dir.display(),
        &recorded_sha[..recorded_sha.len().min(12)],
        &sha[..12]
    );
    if force {
        eprintln!("warning: --force-script: {msg}; resuming anyway");
        Ok(())
    } else {
        Err(Error::msg(format!(
            "cannot resume: {msg}; a resumed run must use the same script (pass --force-script to resume anyway)"
        )))
    }
}

pub(crate) fn run(args: RunArgs) -> ExitCode {
    let RunArgs {
        file,
        set,
        seed,
        device,
        mut out,
        max_ops,
        interactive,
        resume,
        allow_read,
        force_script,
        max_memory,
        allow_nonfinite,
        no_tensorboard,
        detect_anomaly,
        list_settings,
    } = args;
    if let Some(m) = max_memory {
        ganscript::limits::set_max_memory(m);
    }
    ganscript::tensor::nonfinite::set_allow_nonfinite(allow_nonfinite);
    ganscript::tensor::nonfinite::set_detect_anomaly(detect_anomaly);
    let config = match &resume {
        Some(dir) => match read_config(dir) {
            Ok(c) => Some(c),
            Err(e) => return fail(&ScriptDiagnostic::plain(e)),
        },
        None => None,
    };
    let (mut settings, saved_seed) = match (&resume, &config) {
        (Some(dir), Some(cfg)) => match resumed_config(cfg, dir) {
            Ok(c) => c,
            Err(e) => return fail(&ScriptDiagnostic::plain(e)),
        },
        _ => (Settings::default(), None),
    };
    for pair in &set {
        if let Err(e) = settings.set_pair(pair) {
            return fail(&ScriptDiagnostic::plain(e));
        }
    }
    let seed = seed.or(saved_seed).unwrap_or(0);
    match device::parse_device(&device) {
        Ok(d) => device::set_current_device(d),
        Err(e) => return fail(&ScriptDiagnostic::plain(e)),
    }
    rng::seed(seed);
    let text = match script::read_source(&file) {
        Ok(t) => t,
        Err(d) => return fail(&d),
    };
    // A resumed run: (its config.json, this resume's history entry, restart from the start).
    let mut resumed = None;
    if let (Some(dir), Some(cfg)) = (&resume, config) {
        let sha = sha256_hex(text.as_bytes());
        if let Err(e) = check_resumed_script(&cfg, dir, &file, &sha, force_script) {
            return fail(&ScriptDiagnostic::plain(e));
        }
        let has_checkpoint = dir.join(checkpoint::FILE_NAME).exists();
        let restart = if has_checkpoint {
            if let Err(e) = checkpoint::prepare_resume(dir) {
                return fail(&ScriptDiagnostic::plain(e));
            }
            false
        } else if cfg.get("status").and_then(|s| s.as_str()) == Some("ok") {
            return fail(&ScriptDiagnostic::plain(format!(
                "cannot resume {}: it holds no {} (was the run started by a script that calls save_checkpoint?)",
                dir.display(),
                checkpoint::FILE_NAME
            )));
        } else {
            eprintln!(
                "warning: {} stopped before its first checkpoint: the run starts again from the beginning (same settings and seed)",
                dir.display()
            );
            true
        };
        let entry = serde_json::json!({
            "time": ganscript::run::iso8601(std::time::SystemTime::now()),
            "script": file.display().to_string(),
            "script_sha256": sha,
            "args": std::env::args().skip(1).collect::<Vec<_>>(),
            "set": set,
            "seed": seed,
            "from": if restart { "start" } else { "checkpoint" },
            "force_script": force_script,
        });
        resumed = Some((dir.clone(), cfg, entry, restart));
        out = Some(dir.clone());
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    interrupt::install(OnCtrlC::Run {
        interrupt: interrupt.clone(),
        pausable: interactive,
    });
    let settings = Rc::new(RefCell::new(settings));
    let opts = EngineOptions {
        max_ops,
        settings: settings.clone(),
        interrupt: interrupt.clone(),
        script_dir: Some(ganscript::sandbox::script_dir_of(&file)),
        script_path: Some(file.clone()),
        out_dir: out,
        seed,
        device: device.clone(),
        allow_read,
        tensorboard: !no_tensorboard,
    };
    let name = file.display().to_string();
    let mut compiled = match script::compile(&name, &text, &opts) {
        Ok(s) => s,
        Err(d) => return fail(&d),
    };
    // The settings the script declares: listed on request; a --set key that none reads is a
    // typo, refused before anything runs.
    let declared = ganscript::declared::declared(&compiled.engine, &compiled.ast, &name, &text);
    if list_settings {
        print!("{}", declared.listing(&name));
        return ExitCode::SUCCESS;
    }
    // (--force-script continues a run with another script, whose settings may differ: there
    // the warning at the end stays.)
    if declared.dynamic.is_empty() && !force_script {
        for pair in &set {
            let key = pair.split_once('=').map(|(k, _)| k).unwrap_or(pair).trim();
            if !declared.reads(key) {
                let near = declared.nearest(key);
                let hint = if near.is_empty() {
                    String::new()
                } else {
                    format!(" (did you mean {}?)", near.join(", "))
                };
                return fail(&ScriptDiagnostic::plain(format!(
                    "--set {key}: {name} reads no setting `{key}`{hint}; `ganscript run {name} --list-settings` lists them"
                )));
            }
        }
    }
    // The run directory, before any work: a fresh run creates it now (an unwritable --out is an
    // error at once); a resumed run writes nothing until it really continues.
    let handle = compiled.run.clone();
    match resumed {
        Some((dir, cfg, entry, restart)) => handle.begin_resume(&dir, cfg, entry, restart),
        None => {
            if let Err(e) = handle.start() {
                return fail(&ScriptDiagnostic::plain(e));
            }
        }
    }
    if interactive {
        let ast = compiled.ast.clone();
        let sources = compiled.sources.clone();
        repl::install_pause_debugger(
            &mut compiled.engine,
            &ast,
            sources,
            interrupt.clone(),
            handle.clone(),
        );
    }
    let mut scope = Scope::new();
    scope.push_constant("config", settings.borrow().as_map());
    let result = compiled.run(&mut scope);
    // Finish the run: rewrite config.json (status, duration) if the script made a run directory.
    {
        let (status, error) = match &result {
            Ok(_) => ("ok", None),
            Err(d) => match d.stopped {
                Some(Stopped::Interrupted | Stopped::Saved) => {
                    ("interrupted", Some(d.message.clone()))
                }
                Some(Stopped::Quit) => ("stopped", Some(d.message.clone())),
                None => ("error", Some(d.message.clone())),
            },
        };
        if let Some(dir) = handle.finish(status, error.as_deref()) {
            eprintln!("run directory: {}", dir.display());
        }
    }
    if resume.is_some() && result.is_ok() && checkpoint::resume_unused() {
        eprintln!(
            "warning: --resume given, but the script never called resume_state: it ran from the start"
        );
    }
    let unread = settings.borrow().unread();
    if !unread.is_empty() {
        eprintln!(
            "warning: --set {} given but never read by the script (a typo?)",
            unread.join(", ")
        );
    }
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(d) if d.stopped == Some(Stopped::Saved) => {
            let dir = handle.dir_if_created();
            let dir = dir.map(|d| d.display().to_string()).unwrap_or_default();
            eprintln!(
                "interrupted: checkpoint saved; continue with `ganscript run {} --resume {dir}`",
                file.display()
            );
            ExitCode::from(130)
        }
        Err(d) if d.stopped == Some(Stopped::Quit) => {
            eprintln!("{}", d.message);
            ExitCode::SUCCESS
        }
        Err(d) => {
            let code = if d.stopped == Some(Stopped::Interrupted) {
                130
            } else {
                1
            };
            eprintln!("{}", d.render());
            ExitCode::from(code)
        }
    }
}
