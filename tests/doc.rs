//! `ganscript doc`: functions grouped by topic, `--topics`, script type names only, the stdlib
//! modules' functions, and PyTorch names pointing to their replacements.

mod common;

use ganscript::docs::{self, TOPICS, TOPIC_OF_MODULE};
use ganscript::{new_engine, EngineOptions};

fn doc(args: &[&str]) -> (bool, String, String) {
    let o = common::ganscript(&[&["doc"], args].concat());
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The sections of `doc`'s output: (topic, body).
fn sections(text: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            let topic = h.split(':').next().unwrap().to_string();
            out.push((topic, String::new()));
        } else if let Some(last) = out.last_mut() {
            last.1.push_str(line);
            last.1.push('\n');
        }
    }
    out
}

#[test]
fn doc_groups_functions_by_topic_in_the_documented_order() {
    let (ok, all, err) = doc(&[]);
    assert!(ok, "{err}");
    let secs = sections(&all);
    let names: Vec<&str> = secs.iter().map(|(t, _)| t.as_str()).collect();
    let expected: Vec<&str> = TOPICS.iter().map(|(t, _)| *t).collect();
    assert_eq!(names, expected);
    for want in [
        "tensors",
        "autograd",
        "nets",
        "optimizers",
        "losses",
        "penalties",
        "schedules",
        "data",
        "runs",
    ] {
        assert!(names.contains(&want), "topic {want} missing");
    }
    let body = |t: &str| secs.iter().find(|(n, _)| n == t).unwrap().1.clone();
    let has = |t: &str, sig: &str| body(t).lines().any(|l| l.starts_with(sig));
    for (topic, sig) in [
        ("tensors", "randn("),
        ("tensors", "seed(int)"),
        ("autograd", "grad(Tensor, Tensor)"),
        ("nets", "conv2d("),
        ("nets", "forward_frozen(Net, Tensor)"),
        ("optimizers", "adam(any, float)"),
        ("optimizers", "step(Optimizer, Tensor)"),
        ("penalties", "gradient_penalty("),
        ("data", "mnist("),
        ("metrics", "mnist_score("),
        ("runs", "log("),
        ("runs", "setting(string, any)"),
        ("runs", "save_grid("),
        ("stdlib", "train::means(sums, step)"),
        ("stdlib", "energy::pretrain(D, opt_d, data, epochs, batch)"),
    ] {
        assert!(
            has(topic, sig),
            "`{sig}` is not under {topic}:\n{}",
            body(topic)
        );
    }
    // Overloads go where they were registered: the layer under nets, the functional form
    // (on tensors) under tensors.
    assert!(has("nets", "conv2d(int, int, int, int, int) -> Net"));
    assert!(!has("nets", "conv2d(Tensor"));
    assert!(has("tensors", "conv2d(Tensor, Tensor)"));
    assert!(!has("tensors", "conv2d(int"));
    // A stdlib function carries the comment above its definition.
    assert!(
        body("stdlib").contains("The means of the running sums"),
        "{}",
        body("stdlib")
    );
    // Script type names only.
    for rust in [
        "BTreeMap",
        "SmartString",
        "Vec<",
        "::Tensor",
        "ImmutableString",
        "Dynamic",
    ] {
        assert!(!all.contains(rust), "`{rust}` in doc output");
    }
    assert!(all.contains("mnist_score(any) -> map"), "map return types");
    assert!(
        all.contains("grads(Tensor, array) -> array"),
        "array return types"
    );
}

#[test]
fn doc_topics_and_one_topic() {
    let (ok, out, err) = doc(&["--topics"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().take(TOPICS.len()).collect();
    for ((topic, _), line) in TOPICS.iter().zip(&lines) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[0], *topic, "{out}");
        let n: usize = cols[1].parse().unwrap();
        assert!(n > 0, "no function in {topic}");
    }
    let (ok, out, _) = doc(&["optimizers"]);
    assert!(ok);
    let secs = sections(&out);
    assert_eq!(secs.len(), 1);
    assert!(secs[0].1.contains("rmsprop(any, float)"), "{out}");
}

#[test]
fn doc_of_a_pytorch_name_points_to_the_replacement() {
    let (ok, out, err) = doc(&["backward"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("PyTorch") && out.contains("opt.step(loss)") && out.contains("grads("),
        "{out}"
    );
    let (ok, out, _) = doc(&["zero_grad"]);
    assert!(ok && out.contains("never accumulate"), "{out}");
    let (ok, _, err) = doc(&["no_such_function_xyz"]);
    assert!(!ok);
    assert!(err.contains("no function named"), "{err}");
}

#[test]
fn every_registered_function_has_a_topic_from_its_module() {
    let (engine, _) = new_engine(&EngineOptions::default()).unwrap();
    let fns = docs::catalog(&engine);
    assert!(fns.len() > 300);
    for f in &fns {
        let module = f
            .module()
            .unwrap_or_else(|| panic!("{} registered without reg!", f.signature));
        assert!(
            module
                .split("::")
                .any(|seg| TOPIC_OF_MODULE.iter().any(|(m, _)| *m == seg)),
            "{} comes from {module}, which no topic names",
            f.signature
        );
        assert!(!f.doc().contains(docs::MODULE_TAG.trim()), "{}", f.doc());
    }
}
