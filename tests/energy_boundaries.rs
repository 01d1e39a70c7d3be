//! MAGAN's margin rule and the EBGAN/MAGAN losses at their boundaries, against hand values:
//! the oracle's cases all have fake energies below the margin and E_x > E_z, and never a tie.
//!
//! The margin rule (MAGAN Algorithm 1): at the end of an epoch with sums S_x, S_z over N
//! samples, if S_x/N < m and S_x < S_z and S_z^{t-1} < S_z then m = S_x/N (all strict).
//! Each case here makes one condition decide, the two others holding, with an exact tie as
//! well as a clear miss; the native adapter (sums given, and per-sample energies accumulated)
//! and the stdlib twin must agree with the expected outcome.

mod common;

use common::{f, run_json};
use serde_json::{json, Value};

/// (name, S_x, S_z, S_z of the previous epoch, updated?) with m = 10 and N = 10 throughout.
const CASES: &[(&str, f64, f64, f64, bool)] = &[
    ("all three hold", 90.0, 160.0, 150.0, true),
    ("S_x/N = m (tie)", 100.0, 160.0, 150.0, false),
    ("S_x/N > m", 101.0, 160.0, 150.0, false),
    ("S_x/N just below m", 99.0, 160.0, 150.0, true),
    ("S_x = S_z (tie)", 90.0, 90.0, 50.0, false),
    ("S_x > S_z", 90.0, 89.0, 50.0, false),
    ("S_x just below S_z", 90.0, 91.0, 50.0, true),
    ("S_z^{t-1} = S_z (tie)", 90.0, 160.0, 160.0, false),
    ("S_z^{t-1} > S_z", 90.0, 160.0, 161.0, false),
    ("S_z^{t-1} just below S_z", 90.0, 160.0, 159.0, true),
];

const SCRIPT: &str = r#"
import "margin" as mg;
let out = [];
for c in cases {
    let name = c[0]; let sx = c[1]; let sz = c[2]; let prev = c[3];
    // The previous epoch sets S_z^{t-1} = prev (the first epoch never updates: S_z^0 = ∞).
    let a = magan_margin();
    a.init(10.0);
    let first = a.end_epoch(0.0, prev, 10);
    let direct = a.end_epoch(sx, sz, 10);
    let direct_margin = a.margin;
    // The same sums from per-sample energies over two batches of 5.
    let b = magan_margin();
    b.init(10.0);
    b.accumulate(tensor([0.0, 0.0, 0.0, 0.0, 0.0]), tensor([prev, 0.0, 0.0, 0.0, 0.0]));
    b.accumulate(tensor([0.0, 0.0, 0.0, 0.0, 0.0]), tensor([0.0, 0.0, 0.0, 0.0, 0.0]));
    b.end_epoch();
    b.accumulate(tensor([sx - 4.0, 1.0, 1.0, 1.0, 1.0]), tensor([sz, 0.0, 0.0, 0.0, 0.0]));
    b.accumulate(tensor([0.0, 0.0, 0.0, 0.0, 0.0]), tensor([0.0, 0.0, 0.0, 0.0, 0.0]));
    let acc = b.end_epoch();
    // The stdlib twin.
    let st = mg::margin_init(10.0);
    st = mg::margin_update(st, 0.0, prev, 10);
    st = mg::margin_update(st, sx, sz, 10);
    out.push(#{ name: name, first: first, direct: direct, direct_margin: direct_margin,
                acc: acc, acc_margin: b.margin, twin: st.updated, twin_margin: st.margin });
}
out
"#;

#[test]
fn margin_rule_conditions_each_decide_with_exact_ties() {
    let cases: Vec<Value> = CASES
        .iter()
        .map(|&(n, sx, sz, prev, _)| json!([n, sx, sz, prev]))
        .collect();
    let got = run_json(SCRIPT, &[("cases", Value::Array(cases))]);
    let rows = got.as_array().unwrap();
    assert_eq!(rows.len(), CASES.len());
    for (&(name, sx, _, _, updated), row) in CASES.iter().zip(rows) {
        let margin = if updated { sx / 10.0 } else { 10.0 };
        assert_eq!(row["first"], json!(false), "{name}: the first epoch");
        for (path, key) in [
            ("direct", "direct"),
            ("accumulated", "acc"),
            ("stdlib", "twin"),
        ] {
            assert_eq!(row[key], json!(updated), "{name} ({path}): updated");
            let m = f(&row[&format!("{key}_margin")]);
            assert_eq!(m, margin, "{name} ({path}): margin");
        }
    }
}

/// `ebgan_d_loss = mean(E_real) + mean(relu(margin − E_fake))`: fake energies above the
/// margin add nothing and get no gradient, one at the margin adds 0, those below add
/// margin − E; `ebgan_g_loss = mean(E_fake)`. Hand values.
#[test]
fn ebgan_losses_with_fake_energies_above_below_and_at_the_margin() {
    let got = run_json(
        r#"
        let er = variable(tensor([1.0, 2.0, 3.0, 6.0]));
        let ef = variable(tensor([2.0, 5.0, 9.0, 30.0]));
        let l = ebgan_d_loss(er, ef, 5.0);
        let g = grads(l, [er, ef]);
        let all_above = ebgan_d_loss(er, tensor([6.0, 7.0, 50.0, 5.5]), 5.0);
        let zero_margin = ebgan_d_loss(er, ef, 0.0);
        #{
            zero_margin: zero_margin.item(),
            value: l.item(),
            d_real: g[0].to_array(),
            d_fake: g[1].to_array(),
            all_above: all_above.item(),
            g_loss: ebgan_g_loss(ef).item()
        }
        "#,
        &[],
    );
    // mean(E_real) = 3; relu(5 − [2, 5, 9, 30]) = [3, 0, 0, 0], mean 0.75.
    assert_eq!(f(&got["value"]), 3.75);
    assert_eq!(common::flat(&got["d_real"]), [0.25; 4]);
    let d_fake = common::flat(&got["d_fake"]);
    assert_eq!(d_fake[0], -0.25, "below the margin");
    assert_eq!(&d_fake[2..], [0.0, 0.0], "above the margin: no gradient");
    assert_eq!(
        f(&got["all_above"]),
        3.0,
        "every fake energy above the margin"
    );
    assert_eq!(f(&got["g_loss"]), 11.5);
    // A zero margin is allowed (the hinge term vanishes for non-negative energies).
    assert_eq!(f(&got["zero_margin"]), 3.0);
}

/// MAGAN's convergence measure E_x + |E_x − E_z| with E_z above E_x, below it, and equal.
#[test]
fn convergence_measure_either_way_round() {
    let got = run_json(
        r#"
        [
            convergence_measure(tensor([1.0, 3.0]), tensor([4.0, 6.0])),
            convergence_measure(tensor([4.0, 6.0]), tensor([1.0, 3.0])),
            convergence_measure(tensor([2.0, 2.0]), tensor([1.0, 3.0]))
        ]
        "#,
        &[],
    );
    // E_x = 2, E_z = 5: 2 + 3; E_x = 5, E_z = 2: 5 + 3; E_x = E_z = 2: 2.
    assert_eq!(common::flat(&got), [5.0, 8.0, 2.0]);
}

/// The initial margin is a finite energy ≥ 0: 0 is accepted (a perfect auto-encoder), a
/// negative or non-finite one is an error naming it, and the margin stays unset.
#[test]
fn initial_margin_bounds() {
    use ganscript::gan::magan::MarginAdapter;
    let mut m = MarginAdapter::new();
    m.init(0.0).expect("a zero margin");
    assert_eq!(m.margin().unwrap(), 0.0);
    for bad in [-1.0, -1e-300, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut m = MarginAdapter::new();
        let e = m.init(bad).unwrap_err().to_string();
        assert!(e.contains("finite energy >= 0"), "{bad}: {e}");
        assert!(m.margin().is_err(), "{bad}: the margin was set");
    }
}

/// The epoch's mean energies divide by the number of energies of each kind (real and fake
/// batches may differ in size; a real-only epoch has a fake mean of 0), and a sample count that
/// is not positive is an error.
#[test]
fn margin_adapter_epoch_means_and_counts() {
    use candle_core::{Device, Tensor};
    use ganscript::gan::magan::MarginAdapter;
    let t = |v: &[f64]| Tensor::new(v, &Device::Cpu).unwrap();
    let mut m = MarginAdapter::new();
    m.init(100.0).unwrap();
    m.accumulate(&t(&[1.0, 2.0, 3.0, 6.0]), &t(&[10.0, 20.0]))
        .unwrap();
    m.accumulate(&t(&[8.0]), &t(&[30.0, 40.0, 50.0])).unwrap();
    m.end_epoch().unwrap();
    // 20 over 5 real energies, 150 over 5 fake ones; then 12 over 3 and 70 over 2.
    assert_eq!(m.epoch_mean_real, Some(4.0));
    assert_eq!(m.epoch_mean_fake, Some(30.0));
    m.accumulate(&t(&[2.0, 4.0, 6.0]), &t(&[30.0, 40.0]))
        .unwrap();
    m.end_epoch().unwrap();
    assert_eq!(m.epoch_mean_real, Some(4.0));
    assert_eq!(m.epoch_mean_fake, Some(35.0));
    assert_eq!(m.epochs, 2);
    // Real energies only: the fake mean is 0 over the real count.
    m.accumulate_sums(10.0, 5, 0.0, 0);
    m.end_epoch().unwrap();
    assert_eq!(m.epoch_mean_real, Some(2.0));
    assert_eq!(m.epoch_mean_fake, Some(0.0));
    for n in [0.0, -3.0, f64::NAN] {
        let e = m.end_epoch_with(1.0, 2.0, n).unwrap_err().to_string();
        assert!(e.contains("sample count must be > 0"), "{n}: {e}");
    }
    assert_eq!(m.epochs, 3, "a refused epoch does not count");
    // Given sums: the means are the sums over n (20/4 and 30/4).
    m.end_epoch_with(20.0, 30.0, 4.0).unwrap();
    assert_eq!(m.epoch_mean_real, Some(5.0));
    assert_eq!(m.epoch_mean_fake, Some(7.5));
    // A non-finite sum, either one alone, is refused and leaves the adapter as it was.
    for (sx, sz) in [(f64::NAN, 1.0), (1.0, f64::INFINITY), (f64::NAN, f64::NAN)] {
        let e = m.end_epoch_with(sx, sz, 2.0).unwrap_err().to_string();
        assert!(
            e.contains("the epoch sums must be finite"),
            "{sx}, {sz}: {e}"
        );
    }
    assert_eq!(m.epochs, 4);
    assert_eq!(m.epoch_mean_fake, Some(7.5));
    // Its description names the margin and the last epoch's means.
    let text = m.to_string();
    assert!(text.starts_with("MarginAdapter(margin="), "{text}");
    assert!(
        text.contains("epochs=4") && text.contains("real=5") && text.contains("fake=7.5"),
        "{text}"
    );
}

#[test]
fn margin_adapter_state_round_trip_and_bad_counts() {
    use ganscript::gan::magan::MarginAdapter;
    let mut m = MarginAdapter::default();
    m.init(40.0).unwrap();
    m.accumulate_sums(12.0, 3, 90.0, 3);
    let state = m.state_map();
    let back = MarginAdapter::from_state_map(&state).unwrap();
    assert_eq!(back, m);
    assert_eq!((back.n_real, back.n_fake), (3, 3));
    // Counts must be whole and not negative: each defect alone is refused.
    for bad in [-1.0, 2.5, -2.5] {
        let mut s = state.clone();
        s.insert("n_real".into(), rhai::Dynamic::from_float(bad));
        let e = MarginAdapter::from_state_map(&s).unwrap_err().to_string();
        assert!(e.contains("`n_real` must be a count"), "{bad}: {e}");
    }
}
