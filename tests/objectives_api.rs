//! Hand-computed values and error messages of the objectives / penalties / schedules / margin
//! API, through scripts and through the Rust API.

mod common;

use common::{f, run_err, run_json};
use serde_json::Value;

fn sp(x: f64) -> f64 {
    (1.0 + x.exp()).ln()
}

fn close(got: f64, want: f64, what: &str) {
    assert!(
        (got - want).abs() <= 1e-12 + 1e-10 * want.abs(),
        "{what}: got {got}, want {want}"
    );
}

#[test]
fn lens_loss_matches_hand_values() {
    let got = run_json(
        r#"
        let d = tensor([[0.5], [-1.0]]);
        let x = tensor([[1.0, 2.0], [3.0, 4.0]]);
        let lx = tensor([[1.5, 2.0], [3.0, 3.0]]);
        #{
            gan: lens_loss("gan", 0.3, d, x, lx).item(),
            nsgan: lens_loss("nsgan", 0.3, d, x, lx).item(),
            lsgan: lens_loss("lsgan", 0.3, d, x, lx).item(),
            wgan: lens_loss("wgan", 0.3, d, x, lx).item(),
            hinge: lens_loss("hinge", 0.3, d, x, lx).item(),
            zero: lens_loss("wgan", 0, d, x, lx).item(),
        }
        "#,
        &[],
    );
    let rec = (0.25 + 1.0) / 2.0;
    let gan = 0.3 * (sp(0.5) + sp(-1.0)) / 2.0 + rec;
    close(f(&got["gan"]), gan, "gan");
    close(f(&got["nsgan"]), gan, "nsgan");
    close(f(&got["lsgan"]), 0.3 * (0.25 + 1.0) / 2.0 + rec, "lsgan");
    close(f(&got["wgan"]), 0.3 * (-0.25) + rec, "wgan");
    close(f(&got["hinge"]), 0.3 * (1.5 + 0.0) / 2.0 + rec, "hinge");
    close(f(&got["zero"]), rec, "lam = 0");
}

#[test]
fn d_loss_and_g_loss_dispatch_to_the_named_losses() {
    let got = run_json(
        r#"
        let dr = tensor([[0.3], [-1.2], [2.0]]);
        let df = tensor([[-0.7], [0.4], [1.1]]);
        let out = [];
        for k in ["nsgan", "lsgan", "wgan", "hinge", "rahinge", "rphinge", "rasgan"] {
            out.push([d_loss(k, dr, df).item(), call(Fn(k + "_d"), dr, df).item()]);
            out.push([g_loss(k, dr, df).item(), call(Fn(k + "_g"), dr, df).item()]);
        }
        out.push([d_loss("minimax", dr, df).item(), nsgan_d(dr, df).item()]);
        out.push([g_loss("minimax", dr, df).item(), minimax_g(dr, df).item()]);
        // a few by hand
        out.push([nsgan_g(dr, df).item(), ((1.0 + exp(0.7)).ln() + (1.0 + exp(-0.4)).ln() + (1.0 + exp(-1.1)).ln()) / 3.0]);
        out.push([rphinge_d(dr, df).item(), (0.0 + 2.6 + 0.1) / 3.0]);
        out.push([wgan_d(dr, df).item(), (0.8 - 1.1) / 3.0]);
        out
        "#,
        &[],
    );
    for (i, pair) in got.as_array().unwrap().iter().enumerate() {
        close(f(&pair[0]), f(&pair[1]), &format!("pair {i}"));
    }
}

#[test]
fn schedules_hand_values_position_and_state() {
    let got = run_json(
        r#"
        let s = cosine(1.0, 0.0, 100);
        let l = linear(0, 2, 10);
        let st = step_decay(1.0, 0.5, 10);
        let e = exp_anneal(2.0, 0.01, 1000);
        e.t = 250;
        let saved = e.state();
        let r = constant(0);
        r.set_state(saved);
        let after = r.step();
        #{
            cos50: s.at(50), cos200: s.at(200),
            lin5: l.at(5), lin20: l.at(20), lin_half: l.at(2.5),
            step25: st.at(25), step9: st.at(9.99),
            sine0: sine_decay(10).value, sine_k: sine_decay(10).at(10), sine_late: sine_decay(10).at(11),
            restored_t: r.t, restored_value_next: after, expected_next: e.at(251),
            saved_kind: saved.kind, text: r.to_string(),
            t_int_type: type_of(r.t),
        }
        "#,
        &[],
    );
    close(f(&got["cos50"]), 0.5, "cosine at T/2");
    close(f(&got["cos200"]), 0.0, "cosine after T");
    close(f(&got["lin5"]), 1.0, "linear");
    close(f(&got["lin20"]), 2.0, "linear clamped");
    close(f(&got["lin_half"]), 0.5, "linear at a float t");
    close(f(&got["step25"]), 0.25, "step decay");
    close(f(&got["step9"]), 1.0, "step decay before the first step");
    close(f(&got["sine0"]), 1.0, "sine decay at 0");
    close(f(&got["sine_k"]), 0.0, "sine decay at K");
    close(f(&got["sine_late"]), 0.0, "sine decay after K");
    assert_eq!(got["restored_t"], Value::from(251));
    close(
        f(&got["restored_value_next"]),
        f(&got["expected_next"]),
        "restored schedule",
    );
    assert_eq!(got["saved_kind"], "exp_anneal");
    assert!(
        got["text"].as_str().unwrap().contains("exp_anneal"),
        "{}",
        got["text"]
    );
    assert_eq!(got["t_int_type"], "i64");
}

#[test]
fn schedule_state_round_trips_in_rust() {
    use ganscript::gan::schedules::{Schedule, ScheduleKind};
    let mut s = Schedule::new(ScheduleKind::exp_anneal(2.0, 0.01, 1000.0).unwrap());
    for _ in 0..37 {
        s.step();
    }
    let json = serde_json::to_string(&s.state()).unwrap();
    let back = Schedule::from_state(&serde_json::from_str(&json).unwrap()).unwrap();
    assert_eq!(back, s);
    close(
        back.value(),
        2.0 * 0.01f64.powf(0.037),
        "value after 37 steps",
    );
}

#[test]
fn margin_adapter_rust_api_and_state() {
    use ganscript::gan::magan::MarginAdapter;
    let mut m = MarginAdapter::new();
    let fresh_json = serde_json::to_string(&m).unwrap();
    assert_eq!(
        serde_json::from_str::<MarginAdapter>(&fresh_json).unwrap(),
        m
    );
    assert!(m.end_epoch_with(1.0, 2.0, 1.0).is_err(), "needs init first");
    m.init(10.0).unwrap();
    // S_z^0 = ∞: the first epoch never updates
    assert!(!m.end_epoch_with(50.0, 100.0, 10.0).unwrap());
    assert_eq!(m.margin().unwrap(), 10.0);
    let saved = serde_json::to_string(&m).unwrap();
    // fake sum rose, real mean below the margin, S_x < S_z: update
    assert!(m.end_epoch_with(80.0, 120.0, 10.0).unwrap());
    assert_eq!(m.margin().unwrap(), 8.0);
    // fake sum fell: no update even though the real mean is lower
    assert!(!m.end_epoch_with(60.0, 110.0, 10.0).unwrap());
    // real mean above the margin: no update (the margin never increases)
    assert!(!m.end_epoch_with(90.0, 200.0, 10.0).unwrap());
    assert_eq!(m.margin().unwrap(), 8.0);
    // S_x >= S_z: no update
    assert!(!m.end_epoch_with(70.0, 70.0, 10.0).unwrap());
    let mut r: MarginAdapter = serde_json::from_str(&saved).unwrap();
    assert!(r.end_epoch_with(80.0, 120.0, 10.0).unwrap());
    assert_eq!(r.margin().unwrap(), 8.0);
    // the script map form round-trips too (prev_sum_fake = ∞ as ())
    let fresh = MarginAdapter::new();
    assert_eq!(
        MarginAdapter::from_state_map(&fresh.state_map())
            .unwrap()
            .prev_sum_fake,
        None
    );
}

#[test]
fn native_penalty_api_takes_any_rust_closure() {
    use candle_core::{Device, Tensor};
    use ganscript::gan::penalties::{gradient_penalty, r1, GpOptions};
    ganscript::autograd::ensure_double_backprop().unwrap();
    // D(x) = x · w with w a parameter: ∇_x D = w for every sample, so the L2 gradient
    // penalty is (‖w‖ - 1)² and R1 is ‖w‖², and their gradients w.r.t. w are known.
    let dev = Device::Cpu;
    let w = ganscript::autograd::variable(&Tensor::new(&[[3.0f64], [4.0]], &dev).unwrap()).unwrap();
    let real = Tensor::new(&[[1.0f64, 2.0], [0.5, -1.0]], &dev).unwrap();
    let fake = Tensor::new(&[[0.0f64, 1.0], [2.0, 2.0]], &dev).unwrap();
    let mut d = |x: &Tensor| x.matmul(&w).map_err(ganscript::errors::script_err);
    let gp = gradient_penalty(&mut d, &real, &fake, &GpOptions::default()).unwrap();
    close(gp.to_scalar::<f64>().unwrap(), 16.0, "gp");
    let g = ganscript::autograd::grad(&gp, &w).unwrap();
    // d/dw (‖w‖-1)² = 2(‖w‖-1) w/‖w‖ = 2·4·(3,4)/5
    let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
    close(g[0], 4.8, "dgp/dw0");
    close(g[1], 6.4, "dgp/dw1");
    let r = r1(&mut d, &real).unwrap();
    close(r.to_scalar::<f64>().unwrap(), 25.0, "r1");
}

#[test]
fn clear_errors_on_bad_input() {
    let cases: &[(&str, &[&str])] = &[
        (
            r#"d_loss("vanilla", tensor([1.0]), tensor([0.0]))"#,
            &["vanilla", "\"nsgan\"", "\"rasgan\""],
        ),
        (
            r#"g_loss("nope", tensor([1.0]), tensor([0.0]))"#,
            &["nope", "\"minimax\""],
        ),
        (
            r#"rphinge_d(tensor([1.0, 2.0]), tensor([0.0]))"#,
            &["same shape"],
        ),
        (
            r#"gradient_penalty(|x| x.sum(1), zeros([2, 3]), zeros([2, 3]), #{ norm: "l3" })"#,
            &["l3", "\"linf\""],
        ),
        (
            r#"gradient_penalty(|x| x.sum(1), zeros([2, 3]), zeros([2, 3]), #{ knid: "ls" })"#,
            &["knid"],
        ),
        (
            r#"gradient_penalty(|x| x.sum(1), zeros([2, 3]), zeros([3, 3]))"#,
            &["same shape"],
        ),
        (
            r#"gradient_penalty(|x| x.sum(1), zeros([2, 3]), zeros([2, 3]), #{ u: tensor([0.5]) })"#,
            &["one weight per sample"],
        ),
        (r#"r1(|x| 3, zeros([2, 3]))"#, &["expected a Tensor"]),
        (r#"sine_decay(0)"#, &["K must be > 0"]),
        (r#"exp_anneal(1.0, 0.5, 0)"#, &["T must be > 0"]),
        (
            r#"let m = magan_margin(); m.end_epoch(1.0, 2.0, 10)"#,
            &["init"],
        ),
        (
            r#"let m = magan_margin(); m.init(1.0); m.end_epoch()"#,
            &["accumulate"],
        ),
        (
            r#"lens_loss("vae", 1.0, zeros([2, 1]), zeros([2, 3]), zeros([2, 3]))"#,
            &["vae", "lsgan"],
        ),
        (r#"energy(zeros([2, 3]), zeros([2, 4]))"#, &["same shape"]),
        (
            r#"import "penalties" as gp; gp::gradient_penalty(|x| x.sum(1), zeros([2, 3]), zeros([2, 3]), #{ norm: "l3" })"#,
            &["l3"],
        ),
    ];
    for (script, needles) in cases {
        let msg = run_err(script);
        for n in *needles {
            assert!(
                msg.contains(n),
                "error of `{script}` should mention {n:?}: {msg}"
            );
        }
    }
}

/// A schedule's step count reads back as an integer when it is whole and as the float it is
/// otherwise (a fractional t is not truncated), in `t` and in its state map.
#[test]
fn schedule_t_keeps_a_fractional_value() {
    let got = run_json(
        r#"
        let s = sine_decay(10);
        s.t = 2.5;
        let a = s.state();
        s.t = 3;
        #{ t: s.t, state_t: a.t, whole: s.state().t, whole_type: type_of(s.state().t) }
        "#,
        &[],
    );
    assert_eq!(got["state_t"], Value::from(2.5));
    assert_eq!(got["t"], Value::from(3));
    assert_eq!(got["whole"], Value::from(3));
    assert_eq!(got["whole_type"], "i64");
}
