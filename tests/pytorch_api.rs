//! What a PyTorch user writes first: the errors for `G(z)`, `loss.backward()`,
//! `opt.zero_grad()`, `no_grad`, a `fn` reading a script variable say what replaces them; the
//! short optimizer forms take PyTorch's default hyper-parameters.

mod common;

use ganscript::diagnostics::ScriptDiagnostic;
use ganscript::script;
use ganscript::session::EngineOptions;
use rhai::Scope;

fn failure(src: &str) -> ScriptDiagnostic {
    let s = script::compile("t.rhai", src, &EngineOptions::default()).expect("it parses");
    s.run(&mut Scope::new())
        .expect_err("the script should fail")
}

fn help(d: &ScriptDiagnostic) -> String {
    d.help.clone().unwrap_or_default()
}

#[test]
fn calling_a_net_like_a_function_says_to_use_forward_with_the_call_arguments() {
    let d = failure("let G = linear(2, 3);\nlet z = randn([4, 2]);\nlet y = G(z);\n");
    assert_eq!(d.line, Some(3));
    assert!(d.message.contains("`G` is a variable"), "{}", d.message);
    assert!(help(&d).contains("`G.forward(z)`"), "{}", help(&d));
    assert!(help(&d).contains("forward_frozen"), "{}", help(&d));
    // Inside a function, on a parameter, with a nested call as the argument.
    let d = failure(
        "fn d_loss(D, x) {\n    D(x.detach()).mean()\n}\nd_loss(linear(2, 1), randn([3, 2]));\n",
    );
    assert_eq!(d.line, Some(2));
    assert!(help(&d).contains("`D.forward(x.detach())`"), "{}", help(&d));
    // A misspelt function that is no variable still gets the nearest names.
    let d = failure("let x = ones([2]);\nlet y = sigmod(x);\n");
    assert!(d.message.starts_with("unknown function"), "{}", d.message);
    assert!(help(&d).contains("sigmoid"), "{}", help(&d));
}

#[test]
fn backward_zero_grad_no_grad_and_a_bare_step_name_their_replacements() {
    let d = failure("let x = variable(randn([4, 2]));\nlet loss = x.sum();\nloss.backward();\n");
    assert_eq!(d.line, Some(3));
    let h = help(&d);
    assert!(h.contains("opt.step(loss)") && h.contains("grads("), "{h}");

    let d = failure("let G = linear(2, 3);\nlet opt = adam(G, 1e-3);\nopt.zero_grad();\n");
    assert_eq!(d.line, Some(3));
    let h = help(&d);
    assert!(
        h.contains("zero_grad") && h.contains("never accumulate"),
        "{h}"
    );
    assert!(!h.contains("zeros"), "not a typo of `zeros`: {h}");

    let d = failure("let y = no_grad(|| 1);\n");
    let h = help(&d);
    assert!(h.contains("detach") && h.contains("forward_frozen"), "{h}");

    let d = failure("let G = linear(2, 3);\nlet opt = adam(G, 1e-3);\nopt.step();\n");
    assert!(
        help(&d).contains("`opt.step(loss)` takes the loss"),
        "{}",
        help(&d)
    );

    let d = failure("let x = torch.randn([3]);\n");
    assert!(help(&d).contains("no `torch` module"), "{}", help(&d));
}

#[test]
fn a_function_reading_a_script_variable_is_told_to_pass_it_in_or_use_a_closure() {
    let d = failure("let lr = 0.1;\nfn scaled(x) { x * lr }\nscaled(2.0);\n");
    assert_eq!(d.line, Some(2));
    assert!(
        d.message.contains("`lr`") && d.message.contains("`scaled`"),
        "{}",
        d.message
    );
    let h = help(&d);
    assert!(
        h.contains("fn scaled(..., lr)") && h.contains("closure"),
        "{h}"
    );
    // A variable nobody declared keeps the plain message.
    let d = failure("fn scaled(x) { x * nowhere }\nscaled(2.0);\n");
    assert_eq!(d.message, "unknown variable `nowhere`");
    // The closure the hint proposes works.
    let v = common::eval("let lr = 0.1;\nlet scaled = |x| x * lr;\nscaled.call(2.0)");
    assert!((v.as_float().unwrap() - 0.2).abs() < 1e-12);
}

/// Three steps of an optimizer on `p = 1.0` with the loss `p²` (gradient `2p`), in f64.
fn three_steps(make: &str) -> f64 {
    common::eval_f64(&format!(
        r#"default_dtype("f64");
        let p = variable(tensor([1.0]));
        let opt = {make};
        for i in 0..3 {{ opt.step((p * p).sum()); }}
        p.item()"#
    ))
}

#[test]
fn short_optimizer_forms_take_pytorchs_defaults() {
    let lr = 0.1;
    // torch.optim.Adam: betas (0.9, 0.999), eps 1e-8, written out here.
    let (mut p, mut m, mut v) = (1.0f64, 0.0, 0.0);
    for t in 1..=3 {
        let g = 2.0 * p;
        m = 0.9 * m + 0.1 * g;
        v = 0.999 * v + 0.001 * g * g;
        let (mh, vh) = (m / (1.0 - 0.9f64.powi(t)), v / (1.0 - 0.999f64.powi(t)));
        p -= lr * mh / (vh.sqrt() + 1e-8);
    }
    let got = three_steps("adam(p, 0.1)");
    assert!((got - p).abs() < 1e-12, "adam: {got} vs {p}");
    // ... and it differs from the GAN betas (0.5, 0.999).
    assert!((three_steps("adam(p, 0.1, 0.5, 0.999)") - p).abs() > 1e-4);

    // torch.optim.Adamax: betas (0.9, 0.999), eps 1e-8.
    let (mut p, mut m, mut u) = (1.0f64, 0.0, 0.0f64);
    for t in 1..=3 {
        let g = 2.0 * p;
        m = 0.9 * m + 0.1 * g;
        u = (0.999 * u).max(g.abs() + 1e-8);
        p -= lr / (1.0 - 0.9f64.powi(t)) * m / u;
    }
    let got = three_steps("adamax(p, 0.1)");
    assert!((got - p).abs() < 1e-12, "adamax: {got} vs {p}");

    // torch.optim.RMSprop: alpha 0.99, eps 1e-8.
    let (mut p, mut v) = (1.0f64, 0.0);
    for _ in 0..3 {
        let g = 2.0 * p;
        v = 0.99 * v + 0.01 * g * g;
        p -= lr * g / (v.sqrt() + 1e-8);
    }
    let got = three_steps("rmsprop(p, 0.1)");
    assert!((got - p).abs() < 1e-12, "rmsprop: {got} vs {p}");

    // torch.optim.SGD: momentum 0.
    let mut p = 1.0f64;
    for _ in 0..3 {
        p -= lr * 2.0 * p;
    }
    let got = three_steps("sgd(p, 0.1)");
    assert!((got - p).abs() < 1e-12, "sgd: {got} vs {p}");
}
