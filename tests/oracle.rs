//! Objectives, gradient penalties, energies, schedules and the MAGAN margin rule against the
//! PyTorch float64 oracle (every `*.json` in `$GANSCRIPT_ORACLE_DIR`), all through the rhai API.
//! The discriminators are built from tensor primitives in rhai (see `common::PRELUDE`).
//!
//! In f64 by default (relative tolerance 1e-6, the oracle's); `GANSCRIPT_TEST_DTYPE=f32` runs
//! them in f32 (relative 1e-3, absolute 1e-4), and `GANSCRIPT_TEST_DEVICE=cuda` on a GPU.

mod common;

use common::{f, flat, oracle_files, run_json, Checker};
use serde_json::Value;

/// The script prefix setting the test dtype (`GANSCRIPT_TEST_DTYPE`, default f64), and that
/// dtype's tolerances.
fn dtype() -> (String, f64, f64) {
    let (name, rel, abs) = common::test_dtype();
    (format!("default_dtype(\"{name}\");\n"), rel, abs)
}

/// The penalty an oracle key names (`r1`, `r2`, `roth_js`, `gp_<norm>_<kind>_<at>`), with D a
/// function or a native net, and a case's penalties (value and `grads_of(p)`) and interpolate
/// gradient norms as `#{penalties, norms}`; shared by both discriminator scripts.
const PENALTY_FN: &str = r#"
fn penalties_and_norms(c, D, real, fake, u, grads_of) {
    let out = #{ penalties: #{}, norms: #{} };
    for k in (c.penalties ?? #{}).keys() {
        let p = penalty(k, D, real, fake, u);
        out.penalties[k] = #{ value: p.item(), grads: grads_of.call(p) };
    }
    for k in (c.interp_grad_norms ?? #{}).keys() {
        out.norms[k] = grad_norms(D, interpolate_batch(real, fake, u), k).to_array();
    }
    out
}
fn penalty(k, D, real, fake, u) {
    if k == "r1" { r1(D, real) }
    else if k == "r2" { r2(D, fake) }
    else if k == "roth_js" { roth_js(D, real, fake) }
    else {
        let parts = k.split("_");
        if parts.len() != 4 || parts[0] != "gp" { throw `unknown penalty key ${k}`; }
        gradient_penalty(D, real, fake, #{ norm: parts[1], kind: parts[2], at: parts[3], u: u })
    }
}
"#;

/// The oracle's penalties and interpolate gradient norms of a discriminator case, against what
/// a script returned (`penalties`, `norms`).
fn check_penalties_and_norms(ck: &mut Checker, name: &str, got: &Value, case: &Value) {
    if let Some(entries) = case["penalties"].as_object() {
        for (k, want) in entries {
            ck.value_and_grads(&format!("{name} penalties.{k}"), &got["penalties"][k], want);
        }
    }
    if let Some(norms) = case["interp_grad_norms"].as_object() {
        for (k, want) in norms {
            ck.vec(
                &format!("{name} interp_grad_norms.{k}"),
                &flat(&got["norms"][k]),
                &flat(want),
            );
        }
    }
}

const DISC_SCRIPT: &str = r#"
let P = params_of(c);
let D = make_net(c.net, P);
let real = T(c.real);
let fake = T(c.fake);
let u = T(c.u);
let dr = D.call(real);
let df = D.call(fake);
let out = #{
    d_real: dr.flatten().to_array(),
    d_fake: df.flatten().to_array(),
    interp: interpolate_batch(real, fake, u).flatten().to_array(),
    losses: #{}
};
for k in (c.losses ?? #{}).keys() {
    // every loss key is the name of a registered function (dr, df) -> scalar
    let l = call(Fn(k), dr, df);
    out.losses[k] = #{ value: l.item(), grads: grads_map(l, P) };
}
out += penalties_and_norms(c, D, real, fake, u, |p| grads_map(p, P));
out
"#;

/// Runs `f(name, case)` on every discriminator case of every oracle file (`name` naming the file,
/// index and case, then `label`), and fails if there was none.
fn each_discriminator_case(label: &str, mut f: impl FnMut(&str, &Value)) {
    let mut n_cases = 0;
    for (file, oracle) in oracle_files() {
        let Some(cases) = oracle["discriminators"].as_array() else {
            continue;
        };
        for (i, case) in cases.iter().enumerate() {
            n_cases += 1;
            let case_name = case["name"].as_str().unwrap_or("?");
            f(
                &format!("{file}: discriminators[{i}] {case_name}{label}"),
                case,
            );
        }
    }
    assert!(n_cases > 0, "no discriminator case in the oracle files");
}

#[test]
fn discriminator_losses_and_penalties_match_the_oracle() {
    each_discriminator_case("", |name, case| {
        let (prefix, rel, abs) = dtype();
        let got = run_json(
            &format!("{prefix}{PENALTY_FN}{DISC_SCRIPT}"),
            &[("c", case.clone())],
        );
        let mut ck = Checker::new(rel, abs);
        for key in ["d_real", "d_fake", "interp"] {
            if !case[key].is_null() {
                ck.vec(
                    &format!("{name} {key}"),
                    &flat(&got[key]),
                    &flat(&case[key]),
                );
            }
        }
        if let Some(entries) = case["losses"].as_object() {
            for (k, want) in entries {
                ck.value_and_grads(&format!("{name} losses.{k}"), &got["losses"][k], want);
            }
        }
        check_penalties_and_norms(&mut ck, name, &got, case);
        ck.finish(name);
    });
}

/// The penalties again with D a native net (`sequential` of `linear` / `conv2d` layers) holding
/// the oracle's parameters: its input gradient is then built layer by layer
/// (`Net::forward_with_input_grad`), not by candle's backward pass; the values and the
/// second-order parameter gradients must still match the oracle.
const NATIVE_DISC_SCRIPT: &str = r#"
fn native_act(a) {
    if a.leaky_relu != () { leaky_relu(a.leaky_relu) }
    else if a.relu != () { relu() }
    else { throw `unsupported activation ${a}`; }
}
// [the net, map oracle layer name -> the native layer's index]
fn native_net(net) {
    let layers = [];
    let index = #{};
    if net.kind == "mlp" {
        layers.push(flatten());
        let n = net.dims.len() - 1;
        for i in 0..n {
            index[`l${i}`] = layers.len();
            layers.push(linear(net.dims[i], net.dims[i + 1]));
            if i < n - 1 { layers.push(native_act(net.activation)); }
        }
        if net.output == "sigmoid" { layers.push(sigmoid()); }
        else if net.output != () { throw `unsupported output ${net.output}`; }
    } else if net.kind == "conv" {
        let s = net.in_shape;
        index["conv"] = 0;
        layers.push(conv2d(s[0], net.out_channels, net.kernel, net.stride, net.padding));
        layers.push(native_act(net.activation));
        layers.push(flatten());
        let side = (s[1] + 2 * net.padding - net.kernel) / net.stride + 1;
        index["linear"] = layers.len();
        layers.push(linear(net.out_channels * side * side, 1));
    } else {
        throw `unsupported net kind ${net.kind}`;
    }
    [sequential(layers), index]
}
let built = native_net(c.net);
let D = built[0];
let index = built[1];
let names = #{};   // native parameter name -> oracle name
for k in c.params.keys() {
    let parts = k.split(".");
    let native = `${index[parts[0]]}.${parts[1]}`;
    D.set_param(native, T(c.params[k]));
    names[native] = k;
}
let NP = D.named_params();
let real = T(c.real);
let fake = T(c.fake);
let u = T(c.u);
fn native_grads(l, NP, names) {
    let ks = NP.keys();
    let ps = [];
    for k in ks { ps.push(NP[k]); }
    let gs = grads(l, ps);
    let m = #{};
    for i in 0..ks.len() { m[names[ks[i]]] = gs[i].flatten().to_array(); }
    m
}
let out = #{ d_real: D.forward(real).flatten().to_array() };
out += penalties_and_norms(c, D, real, fake, u, |p| native_grads(p, NP, names));
out
"#;

#[test]
fn penalties_on_a_native_net_match_the_oracle() {
    each_discriminator_case(" (native net)", |name, case| {
        let (prefix, rel, abs) = dtype();
        let script = format!("{prefix}{PENALTY_FN}{NATIVE_DISC_SCRIPT}");
        let got = run_json(&script, &[("c", case.clone())]);
        let mut ck = Checker::new(rel, abs);
        ck.vec(
            &format!("{name} d_real"),
            &flat(&got["d_real"]),
            &flat(&case["d_real"]),
        );
        check_penalties_and_norms(&mut ck, name, &got, case);
        ck.finish(name);
    });
}

const ENERGY_SCRIPT: &str = r#"
let P = params_of(e);
let AE = make_net(e.net, P);
let real = T(e.real);
let fake = T(e.fake);
let er = energy(AE, real);
let ef = energy(AE, fake);
let er2 = energy(AE.call(real), real);
let dl = ebgan_d_loss(er, ef, e.margin);
#{
    energy_real: er.to_array(),
    energy_fake: ef.to_array(),
    energy_real_from_recon: er2.to_array(),
    energy_shape: er.shape,
    d_loss: #{ value: dl.item(), grads: grads_map(dl, P) },
    g_loss_value: ebgan_g_loss(ef).item(),
    convergence_measure: convergence_measure(er, ef)
}
"#;

#[test]
fn energies_match_the_oracle() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        let e = &oracle["energy"];
        if e.is_null() {
            continue;
        }
        n += 1;
        let name = format!("{file}: energy {}", e["name"].as_str().unwrap_or("?"));
        let (prefix, rel, abs) = dtype();
        let got = run_json(&format!("{prefix}{ENERGY_SCRIPT}"), &[("e", e.clone())]);
        let mut ck = Checker::new(rel, abs);
        let batch = e["real"]["shape"][0].as_u64().unwrap();
        assert_eq!(
            got["energy_shape"],
            serde_json::json!([batch]),
            "{name}: energy shape"
        );
        ck.vec(
            &format!("{name} energy_real"),
            &flat(&got["energy_real"]),
            &flat(&e["energy_real"]),
        );
        ck.vec(
            &format!("{name} energy(recon, x)"),
            &flat(&got["energy_real_from_recon"]),
            &flat(&e["energy_real"]),
        );
        ck.vec(
            &format!("{name} energy_fake"),
            &flat(&got["energy_fake"]),
            &flat(&e["energy_fake"]),
        );
        ck.value_and_grads(&format!("{name} d_loss"), &got["d_loss"], &e["d_loss"]);
        ck.num(
            &format!("{name} g_loss_value"),
            f(&got["g_loss_value"]),
            f(&e["g_loss_value"]),
        );
        ck.num(
            &format!("{name} convergence_measure"),
            f(&got["convergence_measure"]),
            f(&e["convergence_measure"]),
        );
        ck.finish(&name);
    }
    assert!(n > 0, "no energy case in the oracle files");
}

const SCHEDULE_SCRIPT: &str = r#"
let s = switch kind {
    "sine_decay" => sine_decay(c.K),
    "exp_anneal" => exp_anneal(c.start, c.decay_factor, c.T),
    "linear" => linear(c.from, c.to, c.T),
    "cosine" => cosine(c.from, c.to, c.T),
    "step_decay" => step_decay(c.start, c.factor, c.every),
    "constant" => constant(c.value),
    _ => { throw `unknown schedule kind ${kind}`; }
};
let at = [];
let by_position = [];
let at_float = [];
for p in c.points {
    at.push(s.at(p.t));
    at_float.push(s.at(p.t.to_float()));
    s.t = p.t;
    by_position.push(s.value);
}
#{ at: at, at_float: at_float, by_position: by_position }
"#;

#[test]
fn schedules_match_the_oracle() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        let Some(scheds) = oracle["schedules"].as_object() else {
            continue;
        };
        for (kind, c) in scheds {
            n += 1;
            let name = format!("{file}: schedules.{kind}");
            let got = run_json(
                SCHEDULE_SCRIPT,
                &[("c", c.clone()), ("kind", Value::String(kind.clone()))],
            );
            let want: Vec<f64> = c["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| f(&p["value"]))
                .collect();
            let mut ck = Checker::new(1e-12, 1e-15);
            for key in ["at", "at_float", "by_position"] {
                ck.vec(&format!("{name} {key}"), &flat(&got[key]), &want);
            }
            ck.finish(&name);
        }
    }
    assert!(n > 0, "no schedule in the oracle files");
}

const MARGIN_SCRIPT: &str = r#"
// 1) the sums given directly
let m = magan_margin();
m.init(mm.initial_margin);
let direct = [];
for ep in mm.epochs {
    let u = m.end_epoch(ep.sum_real, ep.sum_fake, mm.N);
    direct.push(#{ updated: u, margin: m.margin, mean_real: m.epoch_mean_real });
}
// 2) per-sample energies accumulated over two batches, with a checkpoint round trip halfway
let a = magan_margin();
a.init(mm.initial_margin);
let acc = [];
let half = mm.epochs.len() / 2;
for i in 0..mm.epochs.len() {
    let ep = mm.epochs[i];
    if i == half {
        let b = magan_margin();
        b.set_state(a.state());
        a = b;
    }
    let n1 = mm.N / 2;
    let r1 = []; r1.pad(n1, 0.0); r1[0] = ep.sum_real;
    let f1 = []; f1.pad(n1, 0.0); f1[0] = ep.sum_fake;
    let r2 = []; r2.pad(mm.N - n1, 0.0);
    a.accumulate(tensor(r1), tensor(f1));
    a.accumulate(tensor(r2), tensor(r2));
    let u = a.end_epoch();
    acc.push(#{ updated: u, margin: a.margin });
}
#{ direct: direct, accumulated: acc }
"#;

#[test]
fn magan_margin_matches_the_oracle() {
    let mut n = 0;
    for (file, oracle) in oracle_files() {
        let mm = &oracle["magan_margin"];
        if mm.is_null() {
            continue;
        }
        let got = run_json(MARGIN_SCRIPT, &[("mm", mm.clone())]);
        let epochs = mm["epochs"].as_array().unwrap();
        let big_n = f(&mm["N"]);
        let mut ck = Checker::new(1e-12, 0.0);
        for path in ["direct", "accumulated"] {
            let got_eps = got[path].as_array().unwrap();
            assert_eq!(got_eps.len(), epochs.len());
            for (ep, g) in epochs.iter().zip(got_eps) {
                n += 1;
                let what = format!("{file}: magan_margin {path} epoch {}", ep["epoch"]);
                assert_eq!(g["updated"], ep["updated"], "{what}: updated");
                ck.num(
                    &format!("{what} margin_after"),
                    f(&g["margin"]),
                    f(&ep["margin_after"]),
                );
                if path == "direct" {
                    ck.num(
                        &format!("{what} epoch_mean_real"),
                        f(&g["mean_real"]),
                        f(&ep["sum_real"]) / big_n,
                    );
                }
            }
        }
        ck.finish(&format!("{file}: magan_margin"));
    }
    assert!(n > 0, "no magan_margin case in the oracle files");
}
