//! Each shipped script's logged losses against a replay that computes the same step with its
//! objective written here from tensor primitives (the papers' formulas), not with ganscript's
//! objective and penalty functions: a wrong objective, a flipped sign, a dropped term or a
//! penalty weight in the wrong place in a script or in the native code it calls shows as a
//! mismatch. (The smoke tests in `scripts.rs` only check ranges.)
//!
//! For the scripts that checkpoint: a base run of one step (or epoch) writes a checkpoint; the
//! script continues one more step from it with `--resume`, and the replay resumes from a copy of
//! the same checkpoint (nets, optimizers and the random generator restored), draws the same
//! batch and noise in the same order, computes the step with the primitive objectives (its
//! updates follow from them, so a later logged value such as G's loss checks the D update too)
//! and logs the same keys. The two scripts without checkpoints replay from the start with the
//! same seed.

mod common;

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Objectives and penalties from tensor primitives, and the draws the native functions make.
const PRIMITIVES: &str = r#"
// log(1 + eˣ) (the logits here are far from overflow)
fn sp(x) { (x.exp() + 1.0).log() }
fn sigm(x) { 1.0 / ((-x).exp() + 1.0) }
// ∇ₓ Σ D(x), one row per sample, differentiable in D's parameters
fn input_grad(D, x) { let v = variable(x.detach()); grad(D.forward(v).sum(), v).flatten(1) }
fn grad_norm(g, norm) {
    if norm == "l2" { g.sqr().sum(1).sqrt() } else if norm == "l1" { g.abs().sum(1) } else { g.abs().max(1) }
}
// u·x + (1 − u)·fake with u ~ U[0, 1) per sample, drawn as gradient_penalty draws it
fn interp(x, fake) {
    let n = x.shape[0];
    let s = [n];
    for i in 1..x.shape.len() { s.push(1); }
    let u = rand([n]).reshape(s);
    u * x + (1.0 - u) * fake
}
// E(x) = Σ (AE(x) − x)² per sample
fn sq_err(rec, x) { (rec - x).sqr().flatten(1).sum(1) }
"#;

fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
        .display()
        .to_string()
}

/// Runs the binary in `cwd` (where a script's relative paths land).
fn run_ok_in(cwd: &Path, args: &[&str]) {
    let o = common::ganscript_in(cwd, args);
    assert!(
        o.status.success(),
        "ganscript {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn rows(dir: &Path) -> Vec<Map<String, Value>> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn sets(args: &mut Vec<String>, sets: &[&str]) {
    for s in sets {
        args.push("--set".into());
        args.push(s.to_string());
    }
}

/// Base run of `name` with `base` settings (checkpointed), then the script and the replay
/// each resumed from a copy of its checkpoint with the `next` settings: their last rows.
fn resumed(name: &str, base: &[&str], next: &[&str], replay: &str) -> (Value, Value) {
    let tmp = tempfile::tempdir().unwrap();
    let (b, cont, rep) = (
        tmp.path().join("base"),
        tmp.path().join("cont"),
        tmp.path().join("replay"),
    );
    let path = script(name);
    let mut a: Vec<String> = ["run", &path, "--seed", "5", "--out", b.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    sets(&mut a, base);
    run_ok_in(
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    copy_dir(&b, &cont);
    copy_dir(&b, &rep);
    let mut a: Vec<String> = ["run", &path, "--resume", cont.to_str().unwrap()]
        .map(String::from)
        .to_vec();
    sets(&mut a, next);
    run_ok_in(
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let replay_path = tmp.path().join("replay.rhai");
    std::fs::write(&replay_path, format!("{PRIMITIVES}\n{replay}")).unwrap();
    let mut a: Vec<String> = [
        "run",
        replay_path.to_str().unwrap(),
        "--resume",
        rep.to_str().unwrap(),
        // The replay is another script than the one that made the checkpoint, on purpose.
        "--force-script",
    ]
    .map(String::from)
    .to_vec();
    sets(&mut a, next);
    run_ok_in(
        tmp.path(),
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let last = |d: &PathBuf| Value::Object(rows(d).pop().expect("a logged row"));
    (last(&cont), last(&rep))
}

/// The script and the replay run from the start with the same seed and settings: all their
/// rows.
fn from_start(name: &str, settings: &[&str], replay: &str) -> (Vec<Value>, Vec<Value>) {
    let tmp = tempfile::tempdir().unwrap();
    let replay_path = tmp.path().join("replay.rhai");
    std::fs::write(&replay_path, format!("{PRIMITIVES}\n{replay}")).unwrap();
    let mut out = Vec::new();
    for (file, dir) in [
        (script(name), "script"),
        (replay_path.display().to_string(), "replay"),
    ] {
        let d = tmp.path().join(dir);
        let mut a: Vec<String> = ["run", &file, "--seed", "5", "--out", d.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        sets(&mut a, settings);
        run_ok_in(
            tmp.path(),
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        out.push(rows(&d).into_iter().map(Value::Object).collect::<Vec<_>>());
    }
    let replay = out.pop().unwrap();
    (out.pop().unwrap(), replay)
}

/// `keys` of the script's row equal the replay's (relative 1e-3, absolute 1e-5: f32, and the
/// updates the replay makes with its own gradients), and are not all zero.
fn same(what: &str, script: &Value, replay: &Value, keys: &[&str]) {
    let mut nonzero = false;
    for k in keys {
        let (s, r) = (script[k].as_f64(), replay[k].as_f64());
        let (Some(s), Some(r)) = (s, r) else {
            panic!("{what}: `{k}` missing: script {script}, replay {replay}");
        };
        assert!(
            (s - r).abs() <= 1e-3 * r.abs() + 1e-5,
            "{what}: `{k}` is {s} in the script's log, {r} in the replay\nscript {script}\nreplay {replay}"
        );
        nonzero |= s.abs() > 1e-6;
    }
    assert!(nonzero, "{what}: every compared value is 0: {script}");
}

/// WGAN-GP: critic E[D(G(z))] − E[D(x)] + λ·E[(‖∇D(x̂)‖₂ − 1)²], G −E[D(G(z))].
#[test]
fn wgan_gp_step_matches_its_replay() {
    let replay = r#"
        let batch_size = setting("batch", 64); let nz = setting("nz", 128);
        let lambda = setting("lambda", 10.0); let limit = setting("limit", 0);
        let lr = setting("lr", 1e-4); let beta1 = setting("beta1", 0.0); let beta2 = setting("beta2", 0.9);
        let data = mnist();
        if limit > 0 { data = data.take(limit); }
        data = scale(pad_to(data, 32), -1.0, 1.0);
        let G = dcgan_g(32, nz, 1, true);
        let D = dcgan_d(32, 1, false);
        G.train(); D.train();
        let opt_d = adam(D, lr, beta1, beta2); let opt_g = adam(G, lr, beta1, beta2);
        track("D", D); track("G", G); track("opt_d", opt_d); track("opt_g", opt_g);
        let step = resume_state(#{ step: 0 }).step;
        for x in batches(data, batch_size, #{ shuffle: true, drop_last: true }) {
            let fake = G.forward(randn([batch_size, nz])).detach();
            let dr = D.forward(x);
            let df = D.forward(fake);
            let l_w = df.mean() - dr.mean();
            let pen = (grad_norm(input_grad(D, interp(x, fake)), "l2") - 1.0).sqr().mean();
            opt_d.step(l_w + lambda * pen);
            let l_g = -D.forward(G.forward(randn([batch_size, nz]))).mean();
            log(#{ step: step + 1, loss_d: l_w.item(), penalty: pen.item(), loss_g: l_g.item() });
            break;
        }
    "#;
    let base = [
        "steps=1",
        "n_critic=1",
        "limit=8",
        "batch=8",
        "log_every=1",
        "grid_every=1000",
    ];
    let (s, r) = resumed("wgan_gp.rhai", &base, &["steps=2", "lr=0.01"], replay);
    assert_eq!(s["step"], 2);
    same("wgan_gp", &s, &r, &["loss_d", "penalty", "loss_g"]);
}

/// Maximum-margin GAN with its defaults: hinge loss, λ·mean(max(‖∇D(x̂)‖∞ − 1, 0)) with
/// λ = 20, G's hinge loss −E[D(G(z))].
#[test]
fn maxmargin_step_matches_its_replay() {
    let replay = r#"
        let batch_size = setting("batch", 32); let nz = setting("nz", 128);
        let width = setting("width", 128); let lambda = setting("lambda", 20.0);
        let norm = setting("norm", "linf"); let kind = setting("penalty", "hinge");
        if setting("loss", "hinge") != "hinge" || !(kind in ["ls", "hinge"]) { throw "the replay has the hinge loss, ls and hinge penalties"; }
        let lr = setting("lr", 2e-4); let beta1 = setting("beta1", 0.5); let beta2 = setting("beta2", 0.999);
        let limit = setting("limit", 0);
        let data = mnist();
        if limit > 0 { data = data.take(limit); }
        data = scale(pad_to(data, 32), -1.0, 1.0);
        let G = dcgan_g(32, nz, 1, #{ width: width, bias: false });
        let D = dcgan_d(32, 1, #{ width: width, bias: false });
        G.train(); D.train();
        let opt_d = adam(D, lr, beta1, beta2); let opt_g = adam(G, lr, beta1, beta2);
        track("D", D); track("G", G); track("opt_d", opt_d); track("opt_g", opt_g);
        let step = resume_state(#{ step: 0 }).step;
        for x in batches(data, batch_size, #{ shuffle: true, drop_last: true }) {
            let fake = G.forward(randn([batch_size, nz])).detach();
            let dr = D.forward(x);
            let df = D.forward(fake);
            let l_adv = (1.0 - dr).relu().mean() + (1.0 + df).relu().mean();
            let dev = grad_norm(input_grad(D, interp(x, fake)), norm) - 1.0;
            let pen = if kind == "ls" { dev.sqr().mean() } else { dev.relu().mean() };
            opt_d.step(l_adv + lambda * pen);
            let l_g = -D.forward(G.forward(randn([batch_size, nz]))).mean();
            log(#{ step: step + 1, loss_d: l_adv.item(), penalty: pen.item(), loss_g: l_g.item(),
                   d_real: dr.mean().item(), d_fake: df.mean().item() });
            break;
        }
    "#;
    let base = [
        "steps=1",
        "limit=8",
        "batch=8",
        "width=32",
        "log_every=1",
        "grid_every=1000",
    ];
    // The defaults (whose hinge penalty is 0 while D is flat), and the L2 least-squares penalty
    // (never 0); a large learning rate makes the D update, hence G's loss, show the weights.
    for extra in [&[][..], &["norm=l2", "penalty=ls"]] {
        let base: Vec<&str> = base.iter().chain(extra).copied().collect();
        let (s, r) = resumed("maxmargin.rhai", &base, &["steps=2", "lr=0.01"], replay);
        assert_eq!(s["step"], 2);
        same(
            &format!("maxmargin {extra:?}"),
            &s,
            &r,
            &["loss_d", "penalty", "loss_g", "d_real", "d_fake"],
        );
    }
}

/// Roth et al. on the 3-D mixture: D minimises the JS-GAN loss E[sp(−D(x))] + E[sp(D(G(z)))]
/// plus γ/2·Ω, Ω = E[(1 − σ(D(x)))²‖∇D(x)‖²] + E[σ(D(G(z)))²‖∇D(G(z))‖²], γ annealed as
/// γ₀·0.01^(t/T); G minimises E[sp(−D(G(z)))].
#[test]
fn roth_step_matches_its_replay() {
    let replay = r#"
        let steps = setting("steps", 5000); let batch_size = setting("batch", 512);
        let lr = setting("lr", 1e-3); let limit = setting("limit", 0);
        let data = roth_mixture3d(limit, #{});
        let mlp = |i, o| sequential([linear(i, 128), relu(), linear(128, 128), relu(), linear(128, o)]);
        let G = mlp.call(2, 3);
        let D = mlp.call(3, 1);
        G.train(); D.train();
        let opt_d = adam(D, lr, 0.5, 0.999); let opt_g = adam(G, lr, 0.5, 0.999);
        track("D", D); track("G", G); track("opt_d", opt_d); track("opt_g", opt_g);
        let step = resume_state(#{ step: 0 }).step;
        for x in batches(data, batch_size, #{ shuffle: true, drop_last: true }) {
            let g = setting("gamma", 0.1) * 0.01 ** (step.to_float() / steps);
            let fake = G.forward(randn([batch_size, 2])).detach();
            let dr = D.forward(x);
            let df = D.forward(fake);
            let l_adv = sp(-dr).mean() + sp(df).mean();
            let gr = input_grad(D, x).sqr().sum(1);
            let gf = input_grad(D, fake).sqr().sum(1);
            let omega = ((1.0 - sigm(dr)).sqr().flatten() * gr + sigm(df).sqr().flatten() * gf).mean();
            opt_d.step(l_adv + g / 2.0 * omega);
            let l_g = sp(-D.forward(G.forward(randn([batch_size, 2])))).mean();
            log(#{ step: step + 1, loss_d: l_adv.item(), penalty: omega.item(), loss_g: l_g.item(),
                   d_real: dr.mean().item(), d_fake: df.mean().item(), gamma: g });
            break;
        }
    "#;
    let base = [
        "dataset=mixture3d",
        "steps=1",
        "limit=64",
        "batch=64",
        "log_every=1",
        "grid_every=1000",
        "eval_samples=100",
    ];
    // γ₀ = 2 (γ = 0.2 at this step). How Ω is weighted in D's loss hardly shows in one Adam
    // step (Ω is about 0.004 here and Adam normalises the update: γ/2 against γ moves G's next
    // loss by 1e-4 even at γ = 100); the values checked are the losses' and Ω's.
    let (s, r) = resumed(
        "roth.rhai",
        &base,
        &["steps=2", "gamma=2", "lr=0.05"],
        replay,
    );
    assert_eq!(s["step"], 2);
    same(
        "roth",
        &s,
        &r,
        &["loss_d", "penalty", "loss_g", "d_real", "d_fake", "gamma"],
    );
}

/// Tempered GAN (variant gan): D and G play the non-saturating GAN on L(x) and G(z); the lens
/// minimises λ(t)·E[sp(D(L(x)))] + E‖x − L(x)‖², λ(t) = 1 − sin(tπ/2K).
#[test]
fn tempered_step_matches_its_replay() {
    let replay = r#"
        let steps = setting("steps", 2000); let K = setting("K", steps / 2);
        let batch_size = setting("batch", 64); let nz = setting("nz", 128); let width = setting("width", 128);
        let lr = setting("lr", 1e-4); let limit = setting("limit", 0);
        let lens_width = setting("lens_width", 32); let lens_depth = setting("lens_blocks", 8);
        let data = mnist();
        if limit > 0 { data = data.take(limit); }
        data = scale(pad_to(data, 32), -1.0, 1.0);
        let G = dcgan_g(32, nz, 1, #{ width: width });
        let D = dcgan_d(32, 1, #{ width: width, batch_norm: true });
        let L = tempered_lens(1, lens_width, lens_depth);
        G.train(); D.train();
        let opt_d = adam(D, lr, 0.5, 0.999); let opt_g = adam(G, lr, 0.5, 0.999); let opt_l = adam(L, lr, 0.5, 0.999);
        track("D", D); track("G", G); track("L", L); track("opt_d", opt_d); track("opt_g", opt_g); track("opt_l", opt_l);
        let step = resume_state(#{ step: 0 }).step;
        for x in batches(data, batch_size, #{ shuffle: true, drop_last: true }) {
            let lam = 1.0 - sin(step.to_float() * PI() / (2.0 * K));
            let real = L.forward(x).detach();
            let fake = G.forward(randn([batch_size, nz])).detach();
            let dr = D.forward(real);
            let df = D.forward(fake);
            let l_adv = sp(-dr).mean() + sp(df).mean();
            opt_d.step(l_adv);
            let l_g = sp(-D.forward(G.forward(randn([batch_size, nz])))).mean();
            opt_g.step(l_g);
            let lx = L.forward(x);
            let dist = sq_err(lx, x).mean();
            let l_l = lam * sp(D.forward(lx)).mean() + dist;
            log(#{ step: step + 1, loss_d: l_adv.item(), loss_g: l_g.item(), lambda: lam,
                   loss_lens: l_l.item(), lens_dist: dist.item() });
            break;
        }
    "#;
    let base = [
        "steps=1",
        "K=4",
        "limit=8",
        "batch=8",
        "width=16",
        "lens_width=8",
        "lens_blocks=1",
        "log_every=1",
        "grid_every=1000",
    ];
    let (s, r) = resumed("tempered.rhai", &base, &["steps=2", "lr=0.01"], replay);
    assert_eq!(s["step"], 2);
    same(
        "tempered",
        &s,
        &r,
        &["loss_d", "loss_g", "lambda", "loss_lens", "lens_dist"],
    );
    // The lens's adversarial term λ·E[sp(D(L(x)))] alone (the reconstruction term dominates the
    // loss): a wrong adversarial term shows here even where D's outputs are small.
    let adv = |v: &Value| v["loss_lens"].as_f64().unwrap() - v["lens_dist"].as_f64().unwrap();
    let (a, b) = (adv(&s), adv(&r));
    assert!(
        (a - b).abs() <= 1e-3 * b.abs() + 1e-5 && b.abs() > 0.1,
        "tempered: the lens's adversarial term is {a} in the script's log, {b} in the replay"
    );
}

/// EBGAN: D minimises E(x) + [m − E(G(z))]⁺ with E(x) = Σ(D(x) − x)², G minimises E(G(z));
/// the epoch's E_x, E_z and the convergence measure E_x + |E_x − E_z|.
#[test]
fn ebgan_epoch_matches_its_replay() {
    let replay = r#"
        let m = setting("margin", 30.0); let batch_size = setting("batch", 64); let nz = setting("nz", 50);
        let lr = setting("lr", 5e-4); let limit = setting("limit", 0);
        let data = mnist();
        if limit > 0 { data = data.take(limit); }
        let D = magan_mnist_d();
        let G = magan_mnist_g(nz);
        let opt_d = adamax(D, lr, 0.5, 0.999); let opt_g = adamax(G, lr, 0.5, 0.999);
        track("D", D); track("G", G); track("opt_d", opt_d); track("opt_g", opt_g);
        let st = resume_state(#{ epoch: 0, pretrained: false });
        for x in batches(data, batch_size, #{ shuffle: true, drop_last: true }) {
            let e_real = sq_err(D.forward(x), x);
            let fake = G.forward(randn([batch_size, nz])).detach();
            let e_fake = sq_err(D.forward(fake), fake);
            opt_d.step(e_real.mean() + (m - e_fake).relu().mean());
            let gen = G.forward(randn([batch_size, nz]));
            let e_gen = sq_err(D.forward(gen), gen);
            opt_g.step(e_gen.mean());
            let e_x = e_real.mean().item();
            let e_z = e_gen.mean().item();
            log(#{ epoch: st.epoch + 1, e_x: e_x, e_z: e_z, convergence: e_x + (e_x - e_z).abs() });
            break;
        }
    "#;
    let base = ["epochs=1", "limit=32", "batch=32"];
    // The fake energies of this early D are about 10 to 30: a margin below them all (the hinge
    // gives nothing) and one above them all (it acts on every sample).
    for margin in ["margin=1", "margin=200"] {
        let (s, r) = resumed(
            "ebgan.rhai",
            &base,
            &["epochs=2", margin, "lr=0.01"],
            replay,
        );
        assert_eq!(s["epoch"], 2);
        same(
            &format!("ebgan {margin}"),
            &s,
            &r,
            &["e_x", "e_z", "convergence"],
        );
    }
}

/// The classifier the metrics embed: cross-entropy −mean log softmax(logits)[y], one epoch.
#[test]
fn train_classifier_epoch_matches_its_replay() {
    let replay = r#"
        let batch_size = setting("batch", 64); let lr = setting("lr", 1e-3);
        let epochs = setting("epochs", 1);   // the same --set list as the script's; one epoch is replayed
        let all = mnist();
        let train = all.take(8000).pad_to(32);
        let net = sequential([
            conv2d(1, 32, 3, 1, 1), relu(), conv2d(32, 64, 4, 2, 1), relu(), conv2d(64, 64, 4, 2, 1), relu(),
            flatten(), linear(64 * 7 * 7, 128), relu(), linear(128, 10),
        ]);
        let opt = adam(net, lr, 0.9, 0.999);
        let sum_loss = 0.0;
        let steps = 0;
        for b in labeled_batches(train, batch_size, #{ shuffle: true, drop_last: true }) {
            let q = batch_size / 4;
            let parts = [];
            for k in 0..4 {
                let part = b.x.narrow(0, k * q, if k == 3 { batch_size - 3 * q } else { q });
                parts.push(part.narrow(2, rand_int(5), 28).narrow(3, rand_int(5), 28));
            }
            let logits = net.forward(cat(parts, 0));
            let top = logits.detach().max(1, true);
            let log_p = logits - top - (logits - top).exp().sum(1, true).log();
            let n = logits.shape[0];
            let onehot = (b.y.to("f32").reshape([n, 1]) - arange(10).reshape([1, 10])).abs() < 0.5;
            let loss = -(log_p * onehot).sum(1).mean();
            opt.step(loss);
            sum_loss += loss.item();
            steps += 1;
        }
        log(#{ epoch: 1, loss: sum_loss / steps });
    "#;
    let (s, r) = from_start("train_classifier.rhai", &["epochs=1", "batch=1000"], replay);
    assert_eq!(s.len(), 1);
    same("train_classifier", &s[0], &r[0], &["loss"]);
}

/// The expected-margin experiment's classifiers: cross-entropy with class 1 as "real"
/// (E[sp(−f(a))] + E[sp(f(b))]) plus λ·mean(φ(‖∇f(x̂)‖ − 1)); after training, the first-order
/// margins y·f(x)/‖∇f(x)‖ and the accuracy on the evaluation samples.
#[test]
fn expected_margin_classifiers_match_their_replay() {
    let replay = r#"
        let n_train = setting("n", 2000); let iters = setting("iters", 3000); let batch = setting("batch", 128);
        let width = setting("width", 64); let lr = setting("lr", 1e-3); let lambda = setting("lambda", 1.0);
        let noise = setting("noise", 0.1); let n_eval = setting("eval", 256);
        let configs = setting("penalties", "");
        // Read so the script's --set list serves the replay too (it replays no margin search).
        let unused = [setting("outer", 2), setting("inner", 2), setting("grid", 20)];
        fn swiss_roll(n, scale, noise) {
            let t = PI() * (1.5 + 3.0 * rand([n, 1]));
            let xy = t * cat([t.cos(), t.sin()], 1);
            scale * xy + noise * randn([n, 2])
        }
        fn draw(n, m) { let ids = []; for i in 0..n { ids.push(rand_int(m)); } ids }
        let a = swiss_roll(n_train, 1.0, noise);
        let b = swiss_roll(n_train, 1.5, noise);
        let ea = swiss_roll(n_eval, 1.0, noise);
        let eb = swiss_roll(n_eval, 1.5, noise);
        let x_eval = cat([ea, eb], 0);
        let y_eval = cat([ones([n_eval]), -ones([n_eval])], 0);
        for cfg in configs.split(",") {
            let parts = cfg.split("-");
            let f = sequential([linear(2, width), relu(), linear(width, width), relu(), linear(width, width), relu(), linear(width, 1)]);
            let opt = adam(f, lr, 0.9, 0.999);
            for it in 1..=iters {
                let xa = a.index_select(draw(batch, n_train), 0);
                let xb = b.index_select(draw(batch, n_train), 0);
                let loss = sp(-f.forward(xa)).mean() + sp(f.forward(xb)).mean();
                let n = grad_norm(input_grad(f, interp(xa, xb)), parts[0]);
                let pen = if parts[1] == "ls" { (n - 1.0).sqr().mean() } else { (n - 1.0).relu().mean() };
                opt.step(loss + lambda * pen);
            }
            let m = 2 * n_eval;
            let v = variable(x_eval);
            let fx = f.forward(v).reshape([m]);
            let gn = (grad(fx.sum(), v).sqr().sum(1) + 1e-24).sqrt();
            log(#{ penalty: cfg, taylor_margin: (y_eval * fx / gn).mean().item(),
                   accuracy: ((y_eval * fx) > 0.0).mean().item() });
        }
    "#;
    let settings = [
        "n=64",
        "iters=3",
        "batch=16",
        "width=8",
        "eval=16",
        "outer=2",
        "inner=2",
        "grid=20",
        "penalties=l2-ls,linf-hinge",
    ];
    let (s, r) = from_start("expected_margin.rhai", &settings, replay);
    assert_eq!(s.len(), 2);
    for (s, r) in s.iter().zip(&r) {
        assert_eq!(s["penalty"], r["penalty"]);
        same(
            &format!("expected_margin {}", s["penalty"]),
            s,
            r,
            &["taylor_margin", "accuracy"],
        );
    }
}
