//! The README's first script runs and does what it says.

use std::process::Command;

#[test]
fn readme_first_script_fits_the_line() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("```rhai\n")
        .expect("a rhai block in the README")
        + "```rhai\n".len();
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("first.rhai");
    std::fs::write(&f, &readme[start..end]).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ganscript"))
        .arg("run")
        .arg(&f)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let nums: Vec<f64> = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-'))
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_eq!(nums.len(), 2, "{text}");
    assert!(
        (nums[0] - 3.0).abs() < 0.01 && (nums[1] + 1.0).abs() < 0.01,
        "{text}"
    );
}

fn rhai_blocks(readme: &str) -> Vec<String> {
    readme
        .split("```rhai\n")
        .skip(1)
        .map(|b| b[..b.find("```").unwrap()].to_string())
        .collect()
}

#[test]
fn readme_penalty_equals_the_native_penalty() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let block = rhai_blocks(&readme)
        .into_iter()
        .find(|b| b.contains("fn dragan"))
        .expect("the README's penalty example");
    let src = format!(
        r#"{block}
        default_dtype("f64");
        seed(5);
        let w1 = variable(randn([6, 8], 0.0, 0.5));
        let w2 = variable(randn([8, 1], 0.0, 0.5));
        let D = |x| x.matmul(w1).leaky_relu(0.2).matmul(w2);
        let real = randn([4, 6]);
        seed(9);
        let p1 = dragan(D, real, 10.0);
        let g1 = grads(p1, [w1, w2]);
        // The same perturbed points, and the native two-sided L2 penalty evaluated there.
        seed(9);
        let xp = real + 0.5 * real.std().item() * rand_like(real);
        let p2 = 10.0 * gradient_penalty(D, xp, xp, #{{ at: "real", norm: "l2", kind: "ls" }});
        let g2 = grads(p2, [w1, w2]);
        [p1.item(), p2.item(), (g1[0] - g2[0]).abs().max().item(), (g1[1] - g2[1]).abs().max().item(),
         g1[0].abs().max().item()]
        "#
    );
    let s = ganscript::script::compile("readme.rhai", &src, &ganscript::EngineOptions::default())
        .unwrap_or_else(|d| panic!("{}", d.render_plain()));
    let v: rhai::Array = s
        .run(&mut rhai::Scope::new())
        .unwrap_or_else(|d| panic!("{}", d.render_plain()))
        .cast();
    let v: Vec<f64> = v.into_iter().map(|d| d.as_float().unwrap()).collect();
    assert!(
        v[0] > 0.0 && (v[0] - v[1]).abs() < 1e-12 * v[0].abs().max(1.0),
        "{v:?}"
    );
    assert!(v[4] > 0.0, "the penalty has parameter gradients: {v:?}");
    assert!(
        v[2] < 1e-10 && v[3] < 1e-10,
        "second-order gradients differ: {v:?}"
    );
}
