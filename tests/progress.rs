//! Progress display: 3-significant-digit rates, the smoothed rate behind the ETA, and plain mode
//! (CI, pipes) printing one line per interval and a summary line per `finish()` (an epoch).

use ganscript::run::progress::{fmt_rate, line_at_rate, sig3, summary_line, Smoother};

#[test]
fn rates_have_three_significant_digits() {
    assert_eq!(sig3(2.5), "2.50");
    assert_eq!(sig3(12.345), "12.3");
    assert_eq!(sig3(123.45), "123");
    assert_eq!(sig3(1234.5), "1230");
    assert_eq!(sig3(0.045678), "0.0457");
    assert_eq!(sig3(9.996), "10.0");
    assert_eq!(sig3(99.96), "100");
    assert_eq!(fmt_rate(37.04), "37.0 it/s");
    // Below one step a second: seconds per step.
    assert_eq!(fmt_rate(0.25), "4.00 s/it");
    assert_eq!(fmt_rate(1.0 / 123.4), "123 s/it");
    assert_eq!(
        line_at_rate("e", 50, 200, 25.0, &[("loss".into(), "0.5000".into())]),
        "e 50/200 25.0 it/s ETA 6s loss=0.5000"
    );
    assert_eq!(
        summary_line("epoch 3/5", 200, 200, 8.0, &[]),
        "epoch 3/5 done: 200/200 in 8s, 25.0 it/s"
    );
}

#[test]
fn the_rate_is_an_exponential_moving_average_over_half_second_windows() {
    let mut s = Smoother::new();
    // Before a full window: the plain average.
    s.update(0.2, 10);
    assert_eq!(s.rate(0.2, 10), 50.0);
    // 10 steps/s for two seconds (windows of 0.5 s).
    let mut pos = 0u64;
    let mut t = 0.0;
    for _ in 0..4 {
        t += 0.5;
        pos += 5;
        s.update(t, pos);
    }
    assert!((s.rate(t, pos) - 10.0).abs() < 1e-9);
    // One slow window (a step that saved a grid: 1 step in 0.5 s) moves the rate by
    // ALPHA·(2 − 10), not to 2.
    t += 0.5;
    pos += 1;
    s.update(t, pos);
    let want = Smoother::ALPHA * 2.0 + (1.0 - Smoother::ALPHA) * 10.0;
    assert!((s.rate(t, pos) - want).abs() < 1e-9, "{}", s.rate(t, pos));
    // Updates within a window are pooled, not averaged one by one.
    s.update(t + 0.1, pos + 100);
    assert!((s.rate(t + 0.1, pos + 100) - want).abs() < 1e-9);
}

#[test]
fn plain_mode_prints_only_the_summary_within_the_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("p.rhai");
    std::fs::write(
        &script,
        r#"for e in 1..=3 {
            let p = progress(50, `epoch ${e}/3`);
            for i in 0..50 { p.tick(#{loss: e * 1.0}); }
            p.finish();
        }"#,
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .arg("run")
        .arg(&script)
        .arg("--out")
        .arg(tmp.path().join("o"))
        .env("GANSCRIPT_PROGRESS", "plain")
        .env("GANSCRIPT_PROGRESS_INTERVAL", "3600")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("epoch ")).collect();
    assert_eq!(lines.len(), 3, "one summary per epoch: {err}");
    for (i, l) in lines.iter().enumerate() {
        let e = i + 1;
        assert!(
            l.starts_with(&format!("epoch {e}/3 done: 50/50 in "))
                && l.ends_with(&format!("loss={e}.0000")),
            "{l}"
        );
    }
}
