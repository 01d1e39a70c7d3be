//! The script twins of the native code (`tests/reference/*.rhai`, written with tensor primitives
//! and `grad`; tests import them through `common::options`) agree with the native implementations: penalties (values and second-order parameter
//! gradients, f64, rel 1e-9), schedules over many steps, the margin rule over many epochs.

mod common;

use common::{f, flat, oracle_files, run_json, Checker};
use serde_json::{json, Value};

const PENALTY_SCRIPT: &str = r#"
import "penalties" as gp;
let P = params_of(c);
let D = make_net(c.net, P);
let real = T(c.real);
let fake = T(c.fake);
let u = T(c.u);
let pairs = [];
for norm in ["l2", "l1", "linf"] {
    for kind in ["ls", "hinge", "hinge2"] {
        for at in ["interp", "real", "fake"] {
            for target in [1.0, 0.25] {
                let o = #{ norm: norm, kind: kind, at: at, u: u, target: target };
                pairs.push([`gp ${norm} ${kind} ${at} ${target}`,
                    gradient_penalty(D, real, fake, o), gp::gradient_penalty(D, real, fake, o)]);
            }
        }
    }
}
pairs.push(["r1", r1(D, real), gp::r1(D, real)]);
pairs.push(["r2", r2(D, fake), gp::r2(D, fake)]);
pairs.push(["roth_js", roth_js(D, real, fake), gp::roth_js(D, real, fake)]);
// roth_js_logits: the same Ω, and its logits give the same D loss (value and parameter
// gradients) as separate forward passes.
let rl = roth_js_logits(D, real, fake);
pairs.push(["roth_js_logits omega", roth_js(D, real, fake), rl.omega]);
pairs.push(["roth_js_logits D loss",
    d_loss("nsgan", D.call(real), D.call(fake)) + roth_js(D, real, fake),
    d_loss("nsgan", rl.d_real, rl.d_fake) + rl.omega]);
// the default options, with u drawn from the seeded generator by both
seed(42);
let native = gradient_penalty(D, real, fake);
seed(42);
pairs.push(["gp default (random u)", native, gp::gradient_penalty(D, real, fake)]);
seed(43);
let native = gradient_penalty(D, real, fake, #{ norm: "l1" });
seed(43);
pairs.push(["gp l1 (random u)", native, gp::gradient_penalty(D, real, fake, #{ norm: "l1" })]);
let out = [];
for p in pairs {
    out.push(#{
        name: p[0],
        native: #{ value: p[1].item(), grads: grads_map(p[1], P) },
        script: #{ value: p[2].item(), grads: grads_map(p[2], P) }
    });
}
out
"#;

fn compare_pairs(name: &str, got: &Value) {
    let mut ck = Checker::new(1e-9, 1e-12);
    for p in got.as_array().unwrap() {
        let what = format!("{name} {}", p["name"].as_str().unwrap());
        ck.num(
            &format!("{what} value"),
            f(&p["script"]["value"]),
            f(&p["native"]["value"]),
        );
        for (k, g) in p["native"]["grads"].as_object().unwrap() {
            ck.vec(
                &format!("{what} grad {k}"),
                &flat(&p["script"]["grads"][k]),
                &flat(g),
            );
        }
    }
    ck.finish(name);
}

#[test]
fn stdlib_penalties_equal_native_on_oracle_discriminators() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        for (i, case) in oracle["discriminators"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            n += 1;
            let got = run_json(PENALTY_SCRIPT, &[("c", case.clone())]);
            compare_pairs(&format!("{file}: discriminators[{i}]"), &got);
        }
    }
    assert!(n > 0);
}

#[test]
fn stdlib_penalties_equal_native_on_a_random_conv_net() {
    // A wider random conv net (2 input channels, 3 filters, padding 0, stride 1) built in Rust
    // as an oracle-format case.
    let mut seed = 12345u64;
    let mut rnd = |n: usize| -> Vec<f64> {
        (0..n)
            .map(|_| {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((seed >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect()
    };
    let t = |shape: Vec<usize>, data: Vec<f64>| json!({"shape": shape, "data": data});
    let case = json!({
        "net": {"kind": "conv", "stride": 1, "padding": 0, "activation": {"leaky_relu": 0.1}},
        "params": {
            "conv.weight": t(vec![3, 2, 3, 3], rnd(54)),
            "conv.bias": t(vec![3], rnd(3)),
            "linear.weight": t(vec![1, 48], rnd(48)),
            "linear.bias": t(vec![1], rnd(1)),
        },
        "real": t(vec![5, 2, 6, 6], rnd(360)),
        "fake": t(vec![5, 2, 6, 6], rnd(360)),
        "u": t(vec![5], rnd(5).into_iter().map(|x| (x + 1.0) / 2.0).collect()),
    });
    let got = run_json(PENALTY_SCRIPT, &[("c", case)]);
    compare_pairs("random conv net", &got);
}

#[test]
fn stdlib_schedules_equal_native() {
    let got = run_json(
        r#"
        import "schedules" as sch;
        let cases = [
            [sine_decay(1000), |t| sch::sine_decay(t, 1000)],
            [sine_decay(77.5), |t| sch::sine_decay(t, 77.5)],
            [exp_anneal(2.0, 0.01, 1000), |t| sch::exp_anneal(t, 2.0, 0.01, 1000)],
            [exp_anneal(5, 0.5, 300), |t| sch::exp_anneal(t, 5, 0.5, 300)],
            [linear(1.0, 0.0, 700), |t| sch::linear(t, 1.0, 0.0, 700)],
            [cosine(0.1, 0.9, 1200), |t| sch::cosine(t, 0.1, 0.9, 1200)],
            [step_decay(1.0, 0.5, 250), |t| sch::step_decay(t, 1.0, 0.5, 250)],
            [constant(3), |t| sch::constant(t, 3)],
        ];
        let out = [];
        for c in cases {
            let s = c[0];
            let native = [];
            let script = [];
            let stepped = [];
            for t in range(0, 2500, 7) {
                native.push(s.at(t));
                script.push(c[1].call(t));
            }
            s.t = 0;
            for t in 0..2500 {
                let v = s.step();
                if t % 7 == 6 { stepped.push(v); }
            }
            out.push(#{ name: s.to_string(), native: native, script: script, stepped: stepped });
        }
        out
        "#,
        &[],
    );
    let mut ck = Checker::new(1e-12, 1e-15);
    for c in got.as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let native = flat(&c["native"]);
        ck.vec(&format!("{name} stdlib"), &flat(&c["script"]), &native);
        // step() at t = 7, 14, ... equals at(7), at(14), ...
        let stepped = flat(&c["stepped"]);
        ck.vec(
            &format!("{name} step()"),
            &stepped[..native.len() - 1],
            &native[1..],
        );
    }
    ck.finish("schedules");
}

#[test]
fn stdlib_margin_rule_equals_native() {
    let got = run_json(
        r#"
        import "margin" as mg;
        seed(9);
        let trials = [];
        for trial in 0..20 {
            let m0 = 40.0 + 20.0 * rand_float();
            let native = magan_margin();
            native.init(m0);
            let st = mg::margin_init(m0);
            let n = 100 + rand_int(900);
            let sx = m0 * n;
            let sz = 1.5 * m0 * n;
            let out = [];
            for epoch in 0..60 {
                // a random walk of sums: real energies tend to fall, fake ones wander
                sx *= 0.9 + 0.15 * rand_float();
                sz *= 0.85 + 0.3 * rand_float();
                let u = native.end_epoch(sx, sz, n);
                st = mg::margin_update(st, sx, sz, n);
                out.push([u, st.updated, native.margin, st.margin]);
            }
            trials.push(out);
        }
        trials
        "#,
        &[],
    );
    let mut updates = 0;
    let mut kept = 0;
    for (t, trial) in got.as_array().unwrap().iter().enumerate() {
        for (e, row) in trial.as_array().unwrap().iter().enumerate() {
            assert_eq!(
                row[0], row[1],
                "trial {t} epoch {e}: updated differs: {row}"
            );
            assert_eq!(
                f(&row[2]),
                f(&row[3]),
                "trial {t} epoch {e}: margin differs: {row}"
            );
            if row[0] == Value::Bool(true) {
                updates += 1;
            } else {
                kept += 1;
            }
        }
    }
    // the random walk must exercise both branches
    assert!(updates > 20 && kept > 20, "updates {updates}, kept {kept}");
}

/// The stdlib's penalties against the PyTorch oracle itself (not only against the native code,
/// so that a mistake both share shows): every penalty an oracle case lists, value and
/// second-order parameter gradients.
#[test]
fn stdlib_penalties_match_the_oracle() {
    let script = r#"
        import "penalties" as gp;
        let P = params_of(c);
        let D = make_net(c.net, P);
        let real = T(c.real);
        let fake = T(c.fake);
        let u = T(c.u);
        let out = #{};
        for k in c.penalties.keys() {
            let p = if k == "r1" { gp::r1(D, real) }
                else if k == "r2" { gp::r2(D, fake) }
                else if k == "roth_js" { gp::roth_js(D, real, fake) }
                else {
                    let parts = k.split("_");
                    if parts.len() != 4 || parts[0] != "gp" { throw `unknown penalty key ${k}`; }
                    gp::gradient_penalty(D, real, fake,
                        #{ norm: parts[1], kind: parts[2], at: parts[3], u: u })
                };
            out[k] = #{ value: p.item(), grads: grads_map(p, P) };
        }
        out
    "#;
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        for (i, case) in oracle["discriminators"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let Some(entries) = case["penalties"].as_object() else {
                continue;
            };
            let got = run_json(script, &[("c", case.clone())]);
            let mut ck = Checker::new(1e-6, 1e-9);
            for (k, want) in entries {
                n += 1;
                let what = format!("{file}: discriminators[{i}] stdlib {k}");
                ck.value_and_grads(&what, &got[k], want);
            }
            ck.finish(&format!("{file}: discriminators[{i}] stdlib penalties"));
        }
    }
    assert!(n > 0, "no penalty in the oracle files");
}

/// The stdlib's schedules against the oracle's points.
#[test]
fn stdlib_schedules_match_the_oracle() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        let Some(scheds) = oracle["schedules"].as_object() else {
            continue;
        };
        for (kind, c) in scheds {
            let got = run_json(
                r#"
                import "schedules" as sch;
                let out = [];
                for p in c.points {
                    out.push(switch kind {
                        "sine_decay" => sch::sine_decay(p.t, c.K),
                        "exp_anneal" => sch::exp_anneal(p.t, c.start, c.decay_factor, c.T),
                        _ => { throw `no stdlib twin for the schedule ${kind}`; }
                    });
                }
                out
                "#,
                &[("c", c.clone()), ("kind", Value::String(kind.clone()))],
            );
            let want: Vec<f64> = c["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| f(&p["value"]))
                .collect();
            let mut ck = Checker::new(1e-12, 1e-15);
            ck.vec(&format!("{file}: stdlib {kind}"), &flat(&got), &want);
            ck.finish(&format!("{file}: stdlib {kind}"));
            n += 1;
        }
    }
    assert!(n > 0, "no schedule in the oracle files");
}

/// The stdlib's margin rule against the oracle's epochs (updated or not, and the margin).
#[test]
fn stdlib_margin_rule_matches_the_oracle() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        let mm = &oracle["magan_margin"];
        if mm.is_null() {
            continue;
        }
        let got = run_json(
            r#"
            import "margin" as mg;
            let st = mg::margin_init(mm.initial_margin);
            let out = [];
            for ep in mm.epochs {
                st = mg::margin_update(st, ep.sum_real, ep.sum_fake, mm.N);
                out.push([st.updated, st.margin]);
            }
            out
            "#,
            &[("mm", mm.clone())],
        );
        for (ep, row) in mm["epochs"]
            .as_array()
            .unwrap()
            .iter()
            .zip(got.as_array().unwrap())
        {
            let what = format!("{file}: stdlib margin epoch {}", ep["epoch"]);
            assert_eq!(row[0], ep["updated"], "{what}: updated");
            let (g, w) = (f(&row[1]), f(&ep["margin_after"]));
            assert!(
                (g - w).abs() <= 1e-12 * w.abs(),
                "{what}: margin {g} vs {w}"
            );
            n += 1;
        }
    }
    assert!(n > 0, "no magan_margin case in the oracle files");
}

/// The shipped `train` module's interval test: multiples of n, never for n = 0, an error for n < 0.
#[test]
fn train_every_counts_intervals_and_zero_means_never() {
    let v = common::eval(
        r#"import "train" as tr;
        [tr::every(10, 5), tr::every(11, 5), tr::every(10, 0), tr::every(0, 3), tr::every(7, 1)]"#,
    );
    let got: Vec<bool> = v
        .into_array()
        .unwrap()
        .into_iter()
        .map(|b| b.as_bool().unwrap())
        .collect();
    assert_eq!(got, [true, false, false, true, true]);
    let e = common::try_eval(r#"import "train" as tr; tr::every(3, -1)"#).unwrap_err();
    assert!(e.contains("must be >= 0"), "{e}");
}

/// train::ema_of / ema_step: an EMA copy moves as decay·avg + (1 − decay)·G; decay 0 is no EMA,
/// decay 1 an error.
#[test]
fn train_ema_follows_its_generator() {
    let v = common::eval(
        r#"import "train" as tr;
        default_dtype("f64");
        let G = sequential([linear(2, 2)]);
        let w0 = G.params()[0].detach() * 1.0;
        let avg = tr::ema_of(G, 0.75);
        let opt = sgd(G, 0.1);
        opt.step(G.forward(ones([3, 2])).sqr().sum());
        let w1 = G.params()[0].detach() * 1.0;
        tr::ema_step(avg, G, 0.75);
        let want = 0.75 * w0 + 0.25 * w1;
        [(avg.params()[0] - want).abs().max().item(), (w1 - w0).abs().max().item(), type_of(tr::ema_of(G, 0.0))]"#,
    )
    .into_array()
    .unwrap();
    assert!(v[0].as_float().unwrap() < 1e-12, "{v:?}");
    assert!(v[1].as_float().unwrap() > 1e-3, "G moved: {v:?}");
    assert_eq!(v[2].clone().into_string().unwrap(), "()");
    let e =
        common::try_eval(r#"import "train" as tr; tr::ema_of(sequential([linear(2, 2)]), 1.0)"#)
            .unwrap_err();
    assert!(e.contains("ema must be in [0, 1)"), "{e}");
}
