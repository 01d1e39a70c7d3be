//! `ganscript compare`: metrics of several runs in one table and one plot.

mod common;

use std::path::Path;

fn write_run(dir: &Path, name: &str, rows: &[(i64, f64)]) {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let text: String = rows
        .iter()
        .map(|(s, v)| format!("{{\"step\":{s},\"modes\":{v},\"other\":1}}\n"))
        .collect();
    std::fs::write(d.join("metrics.jsonl"), text).unwrap();
}

fn compare(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let o = common::ganscript_in(dir, &[&["compare"], args].concat());
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn seeds_are_averaged_at_the_steps_all_of_them_logged_and_the_plot_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), "a-s1", &[(100, 1.0), (200, 3.0), (300, 7.0)]);
    write_run(tmp.path(), "a-s2", &[(100, 2.0), (200, 5.0)]);
    write_run(tmp.path(), "b-s1", &[(100, 4.0), (200, 6.0)]);
    let (ok, out, err) = compare(
        tmp.path(),
        &[
            "a-s1",
            "a-s2",
            "b-s1",
            "--y",
            "modes",
            "--mean-seeds",
            "--out",
            "p/modes.png",
        ],
    );
    assert!(ok, "{err}");
    let rows: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    // a: the mean of the two seeds at steps 100 and 200 (step 300 is only in one): 1.5, 4.0.
    assert_eq!(
        rows[0],
        ["a", "(mean", "of", "2)", "200", "4.0000", "1.5000", "4.0000"],
        "{out}"
    );
    assert_eq!(rows[1], ["b", "200", "6.0000", "4.0000", "6.0000"], "{out}");
    let img = image::open(tmp.path().join("p/modes.png")).unwrap();
    assert_eq!((img.width(), img.height()), (800, 500));
}

#[test]
fn a_run_without_the_metric_is_an_error_naming_the_file_and_no_plot_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), "a", &[(1, 1.0)]);
    let (ok, _, err) = compare(tmp.path(), &["a", "--y", "modes,e_x", "--out", "x.png"]);
    assert!(!ok);
    assert!(
        err.contains("a/metrics.jsonl: no row has both `step` and `e_x`"),
        "{err}"
    );
    // the keys that do exist
    assert!(
        err.contains("its numeric keys: modes, other, step"),
        "{err}"
    );
    assert!(!tmp.path().join("x.png").exists());
    let (ok, _, err) = compare(tmp.path(), &["missing", "--y", "modes"]);
    assert!(!ok);
    assert!(err.contains("cannot read missing/metrics.jsonl"), "{err}");
}

fn write_config(dir: &Path, name: &str, settings: &str) {
    std::fs::write(
        dir.join(name).join("config.json"),
        format!(r#"{{"script_sha256": "abc", "seed": 1, "settings": {settings}}}"#),
    )
    .unwrap();
}

#[test]
fn mean_seeds_warns_when_the_averaged_runs_differ_in_more_than_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    for (name, lr) in [("a-s1", "0.0001"), ("a-s2", "0.0001"), ("a-s3", "0.0002")] {
        write_run(tmp.path(), name, &[(100, 1.0)]);
        write_config(
            tmp.path(),
            name,
            &format!(r#"{{"lr": {lr}, "steps": 100}}"#),
        );
    }
    let (ok, _, err) = compare(
        tmp.path(),
        &["a-s1", "a-s2", "--y", "modes", "--mean-seeds"],
    );
    assert!(ok, "{err}");
    assert!(!err.contains("warning"), "{err}");
    let (ok, _, err) = compare(
        tmp.path(),
        &["a-s1", "a-s2", "a-s3", "--y", "modes", "--mean-seeds"],
    );
    assert!(ok, "{err}");
    assert!(err.contains("differ in more than the seed"), "{err}");
    assert!(
        err.contains("setting lr: 0.0001 (a-s1), 0.0001 (a-s2), 0.0002 (a-s3)"),
        "{err}"
    );
    assert!(!err.contains("setting steps"), "{err}");
}

/// --mean-seeds draws each seed mean over the band of its seeds' minimum and maximum.
#[test]
fn seed_means_come_with_their_min_max_band() {
    use ganscript::compare::{collect_with_bands, CompareArgs};
    let tmp = tempfile::tempdir().unwrap();
    write_run(tmp.path(), "a-s1", &[(100, 1.0), (200, 3.0), (300, 7.0)]);
    write_run(tmp.path(), "a-s2", &[(100, 2.0), (200, 5.0)]);
    write_run(tmp.path(), "b-s1", &[(100, 4.0), (200, 6.0)]);
    let args = CompareArgs {
        runs: ["a-s1", "a-s2", "b-s1"]
            .iter()
            .map(|r| tmp.path().join(r))
            .collect(),
        keys: vec!["modes".into()],
        x: "step".into(),
        out: None,
        title: None,
        mean_seeds: true,
    };
    let (series, bands) = collect_with_bands(&args).unwrap();
    assert_eq!(series.len(), 2);
    // a: seeds 1 and 2 at the steps both logged; b: one run, no band
    assert_eq!(bands[0], Some(vec![(100.0, 1.0, 2.0), (200.0, 3.0, 5.0)]));
    assert_eq!(bands[1], None);
    // The band is drawn: the picture differs from the same lines without it.
    let with =
        ganscript::run::plot::line_plot_with_bands_png(&series, &bands, "step", "v", "t").unwrap();
    let without = ganscript::run::plot::line_plot_png(&series, "step", "v", "t").unwrap();
    assert_ne!(with, without);
}
