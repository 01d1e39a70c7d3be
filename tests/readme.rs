//! The README's first script runs and does what it says.

use std::process::Command;

#[test]
fn readme_first_script_fits_the_line() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```rhai\n").expect("a rhai block in the README") + "```rhai\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("first.rhai");
    std::fs::write(&f, &readme[start..end]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ganscript")).arg("run").arg(&f).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{text}");
    assert!((nums[0] - 3.0).abs() < 0.01 && (nums[1] + 1.0).abs() < 0.01, "{text}");
}
