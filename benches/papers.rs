//! The speed benchmark: one full training iteration (D step, G step, lens step) of each
//! configuration of `../shared/bench/torch_reference.py`, written twice:
//!
//! - (a) as a ganscript script (`benches/scripts/<config>.rhai`), and
//! - (b) directly against ganscript's Rust API (nets, optimizers, penalties; no rhai),
//!
//! run step by step in turn: each iteration of the script ends with `paired_step()`, which runs one
//! iteration of the Rust version (timed on its own). For each configuration it prints the median
//! milliseconds per iteration of each, the interpreter overhead (the median over iterations of
//! `script / rust − 1`, each ratio of two steps run back to back, so the machine's drift cancels),
//! the script's median when it runs alone, and the script's peak resident memory (`VmHWM` after it
//! ran alone, before the paired rounds). Each configuration runs in a child process (the bench
//! re-executes itself with `--child NAME`), so the peak memory is per configuration.
//!
//! ```text
//! cargo bench --bench papers -- [--iters N] [--rounds R] [--threads T] [--only NAME] [--unfrozen]
//!                                [--device cpu|cuda|cuda:N]
//! python ../shared/bench/torch_reference.py --threads T [--device cuda]   # the PyTorch side
//! ```
//!
//! `--device cuda` (a build with `--features cuda`) runs both versions on the GPU: every
//! iteration ends with the device's `synchronize()` before its time is read, as
//! torch_reference.py does with `torch.cuda.synchronize()`. With `GANSCRIPT_KERNELS=generic` in
//! the environment the CPU runs candle's own ops instead of ganscript's kernels (the path a GPU
//! takes): the difference is what the custom kernels are worth.
//!
//! `--unfrozen` runs D through `forward` instead of `forward_frozen` in the steps that do not
//! update it (computing the parameter gradients those steps throw away), to measure what
//! freezing saves. `--threads T` (default 2) sets `RAYON_NUM_THREADS` for the children: the size of
//! candle's thread pool, which candle's element-wise ops and all of ganscript's kernels run on. JSON
//! lines like torch_reference.py's are printed too.

use candle_core::{DType, Tensor as CT};
use ganscript::device::current_device;
use ganscript::gan::objectives;
use ganscript::gan::penalties::{self, GpKind, GpOptions, Norm};
use ganscript::nn::{arch, Act, Net};
use ganscript::optim::{Kind, Optimizer};
use ganscript::session::EngineOptions;
use ganscript::settings::Settings;
use ganscript::{rng, script, tensor};
use rhai::Scope;
use std::cell::RefCell;
use std::process::Command;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

type R<T> = Result<T, Box<dyn std::error::Error>>;

const CONFIGS: &[&str] = &[
    "magan_mnist",
    "maxmargin_dcgan32",
    "roth_dcgan32",
    "tempered_dcgan32",
    "mixture3d",
];

/// Iterations per round where `--iters` is not given: more for the configurations whose step
/// takes milliseconds, so that their paired ratios, noisier per step, get as tight a median.
fn default_iters(name: &str) -> usize {
    match name {
        "magan_mnist" => 30,
        "mixture3d" => 100,
        _ => 6,
    }
}
const WARMUP: usize = 2;

struct Args {
    /// `--iters`; `None`: [`default_iters`].
    iters: Option<usize>,
    rounds: usize,
    threads: usize,
    only: Option<String>,
    child: Option<String>,
    unfrozen: bool,
    /// `--device`: cpu, cuda or cuda:N.
    device: String,
}

fn parse_args() -> Args {
    let mut a = Args {
        iters: None,
        rounds: 4,
        threads: 2,
        only: None,
        child: None,
        unfrozen: false,
        device: "cpu".to_string(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let num = |v: Option<&String>, what: &str| -> usize {
        v.and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{what} expects a positive integer"))
    };
    while i < argv.len() {
        match argv[i].as_str() {
            "--iters" => {
                a.iters = Some(num(argv.get(i + 1), "--iters"));
                i += 1;
            }
            "--rounds" => {
                a.rounds = num(argv.get(i + 1), "--rounds");
                i += 1;
            }
            "--threads" => {
                a.threads = num(argv.get(i + 1), "--threads");
                i += 1;
            }
            "--only" => {
                a.only = argv.get(i + 1).cloned();
                i += 1;
            }
            "--child" => {
                a.child = argv.get(i + 1).cloned();
                i += 1;
            }
            "--device" => {
                a.device = argv
                    .get(i + 1)
                    .cloned()
                    .unwrap_or_else(|| panic!("--device expects cpu, cuda or cuda:N"));
                i += 1;
            }
            "--unfrozen" => a.unfrozen = true,
            _ => {} // `--bench` (added by cargo) and anything else
        }
        i += 1;
    }
    a
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        f64::NAN
    } else if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

/// Peak resident set size of this process in MiB (`VmHWM` of /proc/self/status).
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

/// `--unfrozen`: D in the G and lens steps through `forward` (computing D's parameter
/// gradients the G step throws away) instead of `forward_frozen`, to measure what freezing saves.
static UNFROZEN: AtomicBool = AtomicBool::new(false);

/// D applied in a step that does not update D.
fn frozen(d: &Net, x: &CT) -> candle_core::Result<CT> {
    if UNFROZEN.load(Ordering::Relaxed) {
        d.forward(x)
    } else {
        d.forward_frozen(x)
    }
}

// ----- (a) the scripts -----

/// The Rust side of a paired round: its step and the times of its calls so far.
type Paired = Rc<RefCell<(Step, Vec<f64>)>>;

/// Runs the configuration's script for `iters` timed iterations (after [`WARMUP`]) and returns
/// their times. Each iteration of a bench script ends with `paired_step()`: with `paired`, that
/// runs one iteration of the Rust version and records its time there (outside the script's own
/// timing); without, it does nothing.
fn script_times(name: &str, iters: usize, paired: Option<Paired>) -> R<Vec<f64>> {
    let path = format!("{}/benches/scripts/{name}.rhai", env!("CARGO_MANIFEST_DIR"));
    let mut src = std::fs::read_to_string(&path)?;
    if UNFROZEN.load(Ordering::Relaxed) {
        src = src.replace(".forward_frozen(", ".forward(");
    }
    let settings = Settings::from_pairs(&[format!("iters={iters}")])?;
    let opts = EngineOptions {
        settings: Rc::new(RefCell::new(settings)),
        ..EngineOptions::default()
    };
    let mut s =
        script::compile(&format!("{name}.rhai"), &src, &opts).map_err(|d| d.render_plain())?;
    // The end of a timed iteration on a GPU: wait for its queued work.
    s.engine
        .register_fn("device_sync", || -> Result<(), Box<rhai::EvalAltResult>> {
            sync().map_err(|e| e.to_string().into())
        });
    s.engine.register_fn(
        "paired_step",
        move || -> Result<(), Box<rhai::EvalAltResult>> {
            if let Some(p) = &paired {
                let (step, times) = &mut *p.borrow_mut();
                times.push(timed(step).map_err(|e| e.to_string())?);
            }
            Ok(())
        },
    );
    let v: rhai::Array = s
        .run(&mut Scope::new())
        .map_err(|d| d.render_plain())?
        .try_cast()
        .ok_or("the script must return an array of times")?;
    Ok(v.into_iter().filter_map(|d| d.as_float().ok()).collect())
}

// ----- (b) the same work in Rust -----

fn randn(shape: &[usize]) -> R<CT> {
    let n = shape.iter().product();
    Ok(tensor::from_f64(
        rng::normal_vec(n, 0.0, 1.0),
        shape,
        DType::F32,
        &current_device(),
    )?)
}

fn rand(shape: &[usize]) -> R<CT> {
    let n = shape.iter().product();
    Ok(tensor::from_f64(
        rng::uniform_vec(n, 0.0, 1.0),
        shape,
        DType::F32,
        &current_device(),
    )?)
}

/// Waits for the device's queued work (a no-op on the CPU).
fn sync() -> candle_core::Result<()> {
    current_device().synchronize()
}

fn adam(net: &Net, lr: f64) -> R<Optimizer> {
    let kind = Kind::Adam {
        beta1: 0.5,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
    };
    Ok(Optimizer::new(kind, lr, net.vars())?)
}

fn adamax(net: &Net, lr: f64) -> R<Optimizer> {
    let kind = Kind::Adamax {
        beta1: 0.5,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: 0.0,
        bias_correction: true,
    };
    Ok(Optimizer::new(kind, lr, net.vars())?)
}

/// One training iteration of a configuration written in Rust, with its nets and optimizers.
type Step = Box<dyn FnMut() -> R<()>>;

/// Runs `step` once and returns its time in milliseconds.
fn timed(step: &mut Step) -> R<f64> {
    let t0 = Instant::now();
    step()?;
    sync()?;
    Ok(t0.elapsed().as_secs_f64() * 1e3)
}

fn scaled(x: &CT, a: f64, b: f64) -> R<CT> {
    Ok(x.affine(a, b)?)
}

/// `softplus(x).mean()`.
fn sp_mean(x: &CT) -> R<CT> {
    Ok(tensor::softplus(x)?.mean_all()?)
}

/// D's logits and input gradients at `x`, and Roth et al.'s regulariser terms, as the
/// reference's `input_grad` + `omega` (one D forward per batch; the input gradients built
/// layer by layer, `Net::forward_with_input_grad`).
fn roth_terms(d: &Net, real: &CT, fake: &CT) -> R<(CT, CT, CT)> {
    let (dr, gr) = penalties::input_grad(&mut d.clone(), real)?;
    let (df, gf) = penalties::input_grad(&mut d.clone(), fake)?;
    let (dr, df) = (dr.flatten_all()?, df.flatten_all()?);
    let wr = tensor::sigmoid(&dr)?.affine(-1.0, 1.0)?.sqr()?;
    let wf = tensor::sigmoid(&df)?.sqr()?;
    let omega = ((wr * tensor::sq_l2_per_sample(&gr)?)? + (wf * tensor::sq_l2_per_sample(&gf)?)?)?
        .mean_all()?;
    Ok((dr, df, omega))
}

fn rust_magan_mnist() -> R<Step> {
    rng::seed(0);
    let (bs, nz, m) = (64, 50, 30.0);
    let d = arch::magan_mnist_d()?;
    let g = arch::magan_mnist_g(nz)?;
    let (od, og) = (adamax(&d, 5e-4)?, adamax(&g, 5e-4)?);
    let x = rand(&[bs, 1, 28, 28])?;
    Ok(Box::new(move || {
        let fake = g.forward(&randn(&[bs, nz])?)?.detach();
        let er = objectives::energy(&d.forward(&x)?, &x)?;
        let ef = objectives::energy(&d.forward(&fake)?, &fake)?;
        od.step(&objectives::ebgan_d_loss(&er, &ef, m)?)?;
        let gen = g.forward(&randn(&[bs, nz])?)?;
        og.step(&objectives::energy(&frozen(&d, &gen)?, &gen)?.mean_all()?)?;
        Ok(())
    }))
}

fn rust_maxmargin_dcgan32() -> R<Step> {
    rng::seed(0);
    let (bs, nz) = (32, 128);
    let g = arch::dcgan_g(32, nz, 3, true)?;
    let d = arch::dcgan_d(32, 3, false)?;
    let (od, og) = (adam(&d, 2e-4)?, adam(&g, 2e-4)?);
    let x = scaled(&rand(&[bs, 3, 32, 32])?, 2.0, -1.0)?;
    let opts = GpOptions {
        norm: Norm::Linf,
        kind: GpKind::Hinge,
        ..GpOptions::default()
    };
    Ok(Box::new(move || {
        let fake = g.forward(&randn(&[bs, nz])?)?.detach();
        let loss = objectives::hinge_d(&d.forward(&x)?, &d.forward(&fake)?)?;
        let gp = penalties::gradient_penalty(&mut d.clone(), &x, &fake, &opts)?;
        od.step(&(loss + (gp * 20.0)?)?)?;
        let df = frozen(&d, &g.forward(&randn(&[bs, nz])?)?)?;
        og.step(&df.mean_all()?.neg()?)?;
        Ok(())
    }))
}

fn rust_roth_dcgan32() -> R<Step> {
    rng::seed(0);
    let (bs, nz, gamma) = (64, 128, 2.0);
    let g = arch::dcgan_g(32, nz, 3, true)?;
    let d = arch::dcgan_d(32, 3, true)?;
    let (od, og) = (adam(&d, 2e-4)?, adam(&g, 2e-4)?);
    let x = scaled(&rand(&[bs, 3, 32, 32])?, 2.0, -1.0)?;
    Ok(Box::new(move || {
        let fake = g.forward(&randn(&[bs, nz])?)?.detach();
        let (dr, df, omega) = roth_terms(&d, &x, &fake)?;
        od.step(&(objectives::nsgan_d(&dr, &df)? + (omega * (gamma / 2.0))?)?)?;
        let df = frozen(&d, &g.forward(&randn(&[bs, nz])?)?)?;
        og.step(&sp_mean(&df.neg()?)?)?;
        Ok(())
    }))
}

fn rust_tempered_dcgan32() -> R<Step> {
    rng::seed(0);
    let (bs, nz, lam) = (64, 128, 0.5);
    let g = arch::dcgan_g(32, nz, 3, true)?;
    let d = arch::dcgan_d(32, 3, true)?;
    let l = arch::tempered_lens(3, 32, 8)?;
    let (od, og, ol) = (adam(&d, 1e-4)?, adam(&g, 1e-4)?, adam(&l, 1e-4)?);
    let x = scaled(&rand(&[bs, 3, 32, 32])?, 2.0, -1.0)?;
    Ok(Box::new(move || {
        let fake = g.forward(&randn(&[bs, nz])?)?.detach();
        let dr = d.forward(&l.forward(&x)?.detach())?;
        od.step(&objectives::nsgan_d(&dr, &d.forward(&fake)?)?)?;
        let df = frozen(&d, &g.forward(&randn(&[bs, nz])?)?)?;
        og.step(&sp_mean(&df.neg()?)?)?;
        let lx = l.forward(&x)?;
        ol.step(&objectives::lens_loss(
            "gan",
            lam,
            &frozen(&d, &lx)?,
            &x,
            &lx,
        )?)?;
        Ok(())
    }))
}

fn mlp(i: usize, o: usize) -> R<Net> {
    Ok(Net::sequential(vec![
        Net::linear(i, 128, true)?,
        Net::act(Act::Relu),
        Net::linear(128, 128, true)?,
        Net::act(Act::Relu),
        Net::linear(128, o, true)?,
    ]))
}

fn rust_mixture3d() -> R<Step> {
    rng::seed(0);
    let bs = 512;
    let g = mlp(2, 3)?;
    let d = mlp(3, 1)?;
    let (od, og) = (adam(&d, 1e-3)?, adam(&g, 1e-3)?);
    let x = (randn(&[bs, 3])? * 0.01)?;
    Ok(Box::new(move || {
        let fake = g.forward(&randn(&[bs, 2])?)?.detach();
        let (dr, df, omega) = roth_terms(&d, &x, &fake)?;
        od.step(&(objectives::nsgan_d(&dr, &df)? + (omega * 0.05)?)?)?;
        let df = frozen(&d, &g.forward(&randn(&[bs, 2])?)?)?;
        og.step(&sp_mean(&df.neg()?)?)?;
        Ok(())
    }))
}

fn rust_step(name: &str) -> R<Step> {
    match name {
        "magan_mnist" => rust_magan_mnist(),
        "maxmargin_dcgan32" => rust_maxmargin_dcgan32(),
        "roth_dcgan32" => rust_roth_dcgan32(),
        "tempered_dcgan32" => rust_tempered_dcgan32(),
        "mixture3d" => rust_mixture3d(),
        _ => Err(format!(
            "unknown configuration {name}; known: {}",
            CONFIGS.join(", ")
        )
        .into()),
    }
}

/// Child mode: one configuration; prints one JSON line.
///
/// First the script runs alone, for its peak memory. Then come the paired rounds: the script
/// runs again and, after each of its iterations, one iteration of the Rust version runs (see
/// [`script_times`]), so the two sides alternate step by step on the same machine state. The
/// interpreter overhead is the median over iterations of `script / rust − 1`, each ratio of
/// two steps run back to back: the machine's drift, which moves whole runs by ±10–25 %, cancels
/// out of it.
fn child(name: &str, a: &Args) -> R<()> {
    UNFROZEN.store(a.unfrozen, Ordering::Relaxed);
    ganscript::autograd::ensure_double_backprop()?;
    ganscript::device::set_current_device(ganscript::device::parse_device(&a.device)?);
    let iters = a.iters.unwrap_or_else(|| default_iters(name));
    let solo = script_times(name, iters, None)?;
    let peak = peak_mib();
    let (mut s, mut r) = (Vec::new(), Vec::new());
    for _ in 0..a.rounds {
        let paired: Paired = Rc::new(RefCell::new((rust_step(name)?, Vec::new())));
        let rs = script_times(name, iters, Some(paired.clone()))?;
        let rr = paired.borrow().1[WARMUP..].to_vec();
        if rr.len() != rs.len() {
            return Err(format!("{name}: {} script and {} Rust times", rs.len(), rr.len()).into());
        }
        s.extend(rs);
        r.extend(rr);
    }
    let ratios: Vec<f64> = s.iter().zip(&r).map(|(s, r)| s / r).collect();
    let (ms, mr) = (median(&s), median(&r));
    let overhead = median(&ratios) - 1.0;
    let round2 = |v: f64| (v * 100.0).round() / 100.0;
    let line = serde_json::json!({
        "config": name,
        "script_median_ms": round2(ms),
        "script_min_ms": round2(min(&s)),
        "rust_median_ms": round2(mr),
        "rust_min_ms": round2(min(&r)),
        "script_alone_median_ms": round2(median(&solo)),
        "overhead_pct": (overhead * 1000.0).round() / 10.0,
        "peak_mib": peak.round(),
        "threads": ganscript::kernels::threads::count(),
        "iters": s.len(),
        "frozen_d": !a.unfrozen,
        "device": a.device,
        "kernels": ganscript::kernels::dispatch::current().name(),
    });
    println!("{line}");
    Ok(())
}

fn main() {
    ganscript::memory::keep_freed_memory();
    let a = parse_args();
    if let Some(name) = &a.child {
        if let Err(e) = child(name, &a) {
            eprintln!("{name}: {e}");
            std::process::exit(1);
        }
        return;
    }
    let exe = std::env::current_exe().expect("current exe");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "ganscript papers benchmark: {} paired iterations × {} rounds, {} threads, D {} in G/lens steps, device {}, {} kernels, load average {}",
        a.iters.map_or_else(
            || {
                let per: Vec<String> = CONFIGS.iter().map(|c| default_iters(c).to_string()).collect();
                per.join(" / ")
            },
            |n| n.to_string()
        ),
        a.rounds,
        a.threads,
        if a.unfrozen { "not frozen" } else { "frozen" },
        a.device,
        ganscript::kernels::dispatch::current().name(),
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "{:<20} {:>12} {:>12} {:>10} {:>12} {:>10}",
        "config", "script ms", "rust ms", "overhead", "alone ms", "peak MiB"
    );
    let mut json = Vec::new();
    for name in CONFIGS {
        if a.only.as_deref().is_some_and(|o| o != *name) {
            continue;
        }
        let mut cmd = Command::new(&exe);
        if a.unfrozen {
            cmd.arg("--unfrozen");
        }
        let out = cmd
            .args([
                "--child",
                name,
                "--iters",
                &a.iters.unwrap_or_else(|| default_iters(name)).to_string(),
                "--rounds",
                &a.rounds.to_string(),
                "--device",
                &a.device,
            ])
            .env("RAYON_NUM_THREADS", a.threads.to_string())
            .output()
            .expect("run the child process");
        let text = String::from_utf8_lossy(&out.stdout);
        let Some(line) = text.lines().rev().find(|l| l.starts_with('{')) else {
            println!(
                "{name:<20} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(line).expect("child JSON");
        println!(
            "{:<20} {:>12.2} {:>12.2} {:>9.1}% {:>12.2} {:>10.0}",
            name,
            v["script_median_ms"].as_f64().unwrap_or(f64::NAN),
            v["rust_median_ms"].as_f64().unwrap_or(f64::NAN),
            v["overhead_pct"].as_f64().unwrap_or(f64::NAN),
            v["script_alone_median_ms"].as_f64().unwrap_or(f64::NAN),
            v["peak_mib"].as_f64().unwrap_or(f64::NAN),
        );
        json.push(line.to_string());
    }
    for l in json {
        println!("{l}");
    }
}
