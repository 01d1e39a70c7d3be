//! GAN objectives on discriminator logits (`dr = D(real)`, `df = D(fake)`), energies of
//! auto-encoder discriminators (EBGAN / MAGAN), and the tempered-GAN lens loss.
//!
//! The math is plain Rust over candle tensors (usable by native networks); `register` exposes
//! each loss to scripts as `name(dr, df)`, plus `d_loss(kind, dr, df)` / `g_loss(kind, dr, df)`.
//! Means are taken over every element of the logits (one logit per sample in the usual case).

use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::tensor::{per_sample, softplus, Tensor};
use candle_core::Tensor as CT;
use rhai::{Engine, FnPtr, NativeCallContext, FLOAT, INT};

type CR = candle_core::Result<CT>;

/// A loss on logits: `(dr, df) -> scalar`.
pub type LossFn = fn(&CT, &CT) -> CR;

fn mean(x: &CT) -> CR {
    x.mean_all()
}

/// `mean(sp(-dr)) + mean(sp(df))`.
pub fn nsgan_d(dr: &CT, df: &CT) -> CR {
    mean(&softplus(&dr.neg()?)?)? + mean(&softplus(df)?)?
}
/// `mean(sp(-df))` (non-saturating generator loss).
pub fn nsgan_g(_dr: &CT, df: &CT) -> CR {
    mean(&softplus(&df.neg()?)?)
}
/// `-mean(sp(df))` (the saturating generator loss of the original minimax game).
pub fn minimax_g(_dr: &CT, df: &CT) -> CR {
    mean(&softplus(df)?)?.neg()
}
/// `mean((dr-1)²) + mean(df²)`.
pub fn lsgan_d(dr: &CT, df: &CT) -> CR {
    mean(&(dr - 1.0)?.sqr()?)? + mean(&df.sqr()?)?
}
/// `mean((df-1)²)`.
pub fn lsgan_g(_dr: &CT, df: &CT) -> CR {
    mean(&(df - 1.0)?.sqr()?)
}
/// `mean(df) - mean(dr)`.
pub fn wgan_d(dr: &CT, df: &CT) -> CR {
    mean(df)? - mean(dr)?
}
/// `-mean(df)`.
pub fn wgan_g(_dr: &CT, df: &CT) -> CR {
    mean(df)?.neg()
}
/// `mean(relu(1-dr)) + mean(relu(1+df))`.
pub fn hinge_d(dr: &CT, df: &CT) -> CR {
    mean(&dr.affine(-1.0, 1.0)?.relu()?)? + mean(&(df + 1.0)?.relu()?)?
}
/// `-mean(df)`.
pub fn hinge_g(_dr: &CT, df: &CT) -> CR {
    mean(df)?.neg()
}

/// `x - mean(y)` (relativistic average logit).
fn rel_avg(x: &CT, y: &CT) -> CR {
    x.broadcast_sub(&mean(y)?)
}

/// `mean(relu(1-(dr-mean(df)))) + mean(relu(1+(df-mean(dr))))`.
pub fn rahinge_d(dr: &CT, df: &CT) -> CR {
    mean(&rel_avg(dr, df)?.affine(-1.0, 1.0)?.relu()?)? + mean(&(rel_avg(df, dr)? + 1.0)?.relu()?)?
}
/// `mean(relu(1-(df-mean(dr)))) + mean(relu(1+(dr-mean(df))))`.
pub fn rahinge_g(dr: &CT, df: &CT) -> CR {
    rahinge_d(df, dr)
}
/// `mean(relu(1-(dr-df)))`, pairing real and fake samples by index.
pub fn rphinge_d(dr: &CT, df: &CT) -> CR {
    mean(&(dr - df)?.affine(-1.0, 1.0)?.relu()?)
}
/// `mean(relu(1-(df-dr)))`, pairing by index.
pub fn rphinge_g(dr: &CT, df: &CT) -> CR {
    rphinge_d(df, dr)
}
/// `mean(sp(-(dr-mean(df)))) + mean(sp(df-mean(dr)))`.
pub fn rasgan_d(dr: &CT, df: &CT) -> CR {
    mean(&softplus(&rel_avg(dr, df)?.neg()?)?)? + mean(&softplus(&rel_avg(df, dr)?)?)?
}
/// `mean(sp(-(df-mean(dr)))) + mean(sp(dr-mean(df)))`.
pub fn rasgan_g(dr: &CT, df: &CT) -> CR {
    rasgan_d(df, dr)
}

/// Every loss on logits: (name, function, definition, pairs samples by index).
pub const LOSSES: &[(&str, LossFn, &str, bool)] = &[
    (
        "nsgan_d",
        nsgan_d,
        "mean(softplus(-dr)) + mean(softplus(df))",
        false,
    ),
    (
        "nsgan_g",
        nsgan_g,
        "mean(softplus(-df)) (non-saturating)",
        false,
    ),
    (
        "minimax_g",
        minimax_g,
        "-mean(softplus(df)) (saturating)",
        false,
    ),
    ("lsgan_d", lsgan_d, "mean((dr-1)²) + mean(df²)", false),
    ("lsgan_g", lsgan_g, "mean((df-1)²)", false),
    ("wgan_d", wgan_d, "mean(df) - mean(dr)", false),
    ("wgan_g", wgan_g, "-mean(df)", false),
    (
        "hinge_d",
        hinge_d,
        "mean(relu(1-dr)) + mean(relu(1+df))",
        false,
    ),
    ("hinge_g", hinge_g, "-mean(df)", false),
    (
        "rahinge_d",
        rahinge_d,
        "mean(relu(1-(dr-mean(df)))) + mean(relu(1+(df-mean(dr))))",
        false,
    ),
    (
        "rahinge_g",
        rahinge_g,
        "mean(relu(1-(df-mean(dr)))) + mean(relu(1+(dr-mean(df))))",
        false,
    ),
    (
        "rphinge_d",
        rphinge_d,
        "mean(relu(1-(dr-df))), pairing samples by index",
        true,
    ),
    (
        "rphinge_g",
        rphinge_g,
        "mean(relu(1-(df-dr))), pairing samples by index",
        true,
    ),
    (
        "rasgan_d",
        rasgan_d,
        "mean(softplus(-(dr-mean(df)))) + mean(softplus(df-mean(dr)))",
        false,
    ),
    (
        "rasgan_g",
        rasgan_g,
        "mean(softplus(-(df-mean(dr)))) + mean(softplus(dr-mean(df)))",
        false,
    ),
];

/// The kinds `d_loss` / `g_loss` accept.
pub const KINDS: &[&str] = &[
    "nsgan", "minimax", "lsgan", "wgan", "hinge", "rahinge", "rphinge", "rasgan",
];

fn check_logits(name: &str, dr: &CT, df: &CT, paired: bool) -> ScriptResult<()> {
    for (what, t) in [("dr", dr), ("df", df)] {
        if !t.dtype().is_float() {
            return Err(script_err(format!(
                "{name}: {what} must be a float tensor of logits, got {:?}",
                t.dtype()
            )));
        }
        if t.elem_count() == 0 {
            return Err(script_err(format!("{name}: {what} is empty")));
        }
    }
    if paired && dr.dims() != df.dims() {
        return Err(script_err(format!(
            "{name} pairs real and fake samples by index: dr {:?} and df {:?} must have the same shape",
            dr.dims(),
            df.dims()
        )));
    }
    if dr.dtype() != df.dtype() {
        return Err(script_err(format!(
            "{name}: dr is {:?} but df is {:?}",
            dr.dtype(),
            df.dtype()
        )));
    }
    Ok(())
}

/// Evaluates the loss called `name` (one of [`LOSSES`]).
pub fn loss_by_name(name: &str, dr: &CT, df: &CT) -> ScriptResult<CT> {
    let Some((n, f, _, paired)) = LOSSES.iter().find(|(n, ..)| *n == name) else {
        let names: Vec<&str> = LOSSES.iter().map(|l| l.0).collect();
        return Err(script_err(format!(
            "unknown loss `{name}`; the losses are {}",
            names.join(", ")
        )));
    };
    check_logits(n, dr, df, *paired)?;
    f(dr, df).ctx(n)
}

fn kind_error(kind: &str) -> Box<rhai::EvalAltResult> {
    script_err(format!(
        "unknown GAN loss kind \"{kind}\"; valid kinds: {}",
        KINDS
            .iter()
            .map(|k| format!("\"{k}\""))
            .collect::<Vec<_>>()
            .join(", ")
    ))
}

/// The discriminator loss of a GAN variant (`minimax` uses the `nsgan` D loss).
pub fn d_loss(kind: &str, dr: &CT, df: &CT) -> ScriptResult<CT> {
    let name = match kind {
        "nsgan" | "minimax" => "nsgan_d",
        k if KINDS.contains(&k) => return loss_by_name(&format!("{k}_d"), dr, df),
        _ => return Err(kind_error(kind)),
    };
    loss_by_name(name, dr, df)
}

/// The generator loss of a GAN variant.
pub fn g_loss(kind: &str, dr: &CT, df: &CT) -> ScriptResult<CT> {
    if !KINDS.contains(&kind) {
        return Err(kind_error(kind));
    }
    loss_by_name(&format!("{kind}_g"), dr, df)
}

// ----- energies (EBGAN / MAGAN) -----

/// Per-sample energy `Σ (recon - x)²` over all dims but the first: shape `[N]`.
pub fn energy(recon: &CT, x: &CT) -> ScriptResult<CT> {
    if recon.dims() != x.dims() {
        return Err(script_err(format!(
            "energy: the reconstruction {:?} and the input {:?} must have the same shape",
            recon.dims(),
            x.dims()
        )));
    }
    if x.rank() == 0 {
        return Err(script_err(
            "energy: expected a batch [N, ...], got a scalar",
        ));
    }
    crate::tensor::ensure_float("energy", x).or_script()?;
    per_sample(&(recon - x).ctx("energy")?)
        .and_then(|d| d.sqr()?.sum(1))
        .ctx("energy")
}

/// Per-sample energy of an auto-encoder `ae` at `x`: `Σ (ae(x) - x)²`.
pub fn energy_of(ae: &mut dyn FnMut(&CT) -> ScriptResult<CT>, x: &CT) -> ScriptResult<CT> {
    let recon = ae(x)?;
    energy(&recon, x)
}

fn check_energies(what: &str, e: &CT) -> ScriptResult<()> {
    if !e.dtype().is_float() || e.elem_count() == 0 {
        return Err(script_err(format!(
            "{what}: expected a non-empty float tensor of per-sample energies, got {:?} {:?}",
            e.dtype(),
            e.dims()
        )));
    }
    Ok(())
}

/// EBGAN discriminator loss: `mean(E_real) + mean(relu(margin - E_fake))`.
pub fn ebgan_d_loss(e_real: &CT, e_fake: &CT, margin: f64) -> ScriptResult<CT> {
    if !margin.is_finite() || margin < 0.0 {
        return Err(script_err(format!(
            "ebgan_d_loss: the margin must be a finite number >= 0, got {margin}"
        )));
    }
    check_energies("ebgan_d_loss", e_real)?;
    check_energies("ebgan_d_loss", e_fake)?;
    (|| e_real.mean_all()? + e_fake.affine(-1.0, margin)?.relu()?.mean_all()?)().ctx("ebgan_d_loss")
}

/// EBGAN / MAGAN generator loss: `mean(E_fake)`.
pub fn ebgan_g_loss(e_fake: &CT) -> ScriptResult<CT> {
    check_energies("ebgan_g_loss", e_fake)?;
    e_fake.mean_all().ctx("ebgan_g_loss")
}

/// MAGAN's convergence measure (eq. 9): `E_x + |E_x - E_z|` with batch means.
pub fn convergence_measure(e_real: &CT, e_fake: &CT) -> ScriptResult<f64> {
    check_energies("convergence_measure", e_real)?;
    check_energies("convergence_measure", e_fake)?;
    let ex = crate::tensor::item(&e_real.mean_all().or_script()?)?;
    let ez = crate::tensor::item(&e_fake.mean_all().or_script()?)?;
    Ok(ex + (ex - ez).abs())
}

// ----- tempered GAN lens -----

/// The kinds `lens_loss` accepts.
pub const LENS_KINDS: &[&str] = &["gan", "nsgan", "lsgan", "wgan", "hinge"];

/// The lens loss of Tempered Adversarial Networks:
/// `lam · L_adv(D(L(x))) + mean_i ‖x_i - L(x)_i‖²`.
///
/// The lens plays the generator's adversary on real data: it is rewarded when D takes the
/// lensed real samples for fake, i.e. L_adv is D's own "fake" term applied to `d_lx`:
/// - `gan` / `nsgan`: `mean(softplus(d_lx))` (= −log(1 − σ(D(L(x)))), as the paper's code);
/// - `lsgan`: `mean(d_lx²)` (pulls D(L(x)) to the fake target 0);
/// - `wgan`: `mean(d_lx)` (lowers the critic's score of lensed data);
/// - `hinge`: `mean(relu(1 + d_lx))`.
pub fn lens_loss(kind: &str, lam: f64, d_lx: &CT, x: &CT, lx: &CT) -> ScriptResult<CT> {
    if !lam.is_finite() {
        return Err(script_err(format!(
            "lens_loss: lam must be a finite number, got {lam}"
        )));
    }
    let adv = match kind {
        "gan" | "nsgan" => softplus(d_lx).and_then(|s| s.mean_all()),
        "lsgan" => d_lx.sqr().and_then(|s| s.mean_all()),
        "wgan" => d_lx.mean_all(),
        "hinge" => (d_lx + 1.0).and_then(|s| s.relu()?.mean_all()),
        _ => {
            return Err(script_err(format!(
                "lens_loss: unknown kind \"{kind}\"; valid kinds: {}",
                LENS_KINDS.join(", ")
            )))
        }
    }
    .ctx("lens_loss")?;
    let rec = energy(lx, x)
        .map_err(|_| {
            script_err(format!(
                "lens_loss: x {:?} and lx {:?} must have the same shape",
                x.dims(),
                lx.dims()
            ))
        })?
        .mean_all()
        .or_script()?;
    ((adv * lam).and_then(|a| a + rec)).ctx("lens_loss")
}

/// Calls a script function pointer on one tensor, expecting a tensor back.
pub fn call_net(ctx: &NativeCallContext, f: &FnPtr, x: &CT) -> ScriptResult<CT> {
    let out = f.call_within_context::<rhai::Dynamic>(ctx, (Tensor(x.clone()),))?;
    let type_name = out.type_name().to_string();
    out.try_cast::<Tensor>().map(|t| t.0).ok_or_else(|| {
        script_err(format!(
            "the network function {} returned {type_name}, expected a Tensor",
            f.fn_name()
        ))
    })
}

pub fn register(engine: &mut Engine) {
    for &(name, _, def, _) in LOSSES {
        reg!(
            engine,
            name,
            format!("GAN loss on logits dr = D(real), df = D(fake): {def}."),
            move |dr: Tensor, df: Tensor| {
                loss_by_name(name, &dr.0, &df.0)
                    .map(Tensor)
                    .and_then(|t| crate::tensor::nonfinite::checked(name, t))
            }
        );
    }
    reg!(
        engine,
        "d_loss",
        "Discriminator loss of a GAN kind (nsgan, minimax, lsgan, wgan, hinge, rahinge, rphinge, rasgan) on logits dr, df.",
        |kind: &str, dr: Tensor, df: Tensor| { d_loss(kind, &dr.0, &df.0).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("d_loss", t)) }
    );
    reg!(
        engine,
        "g_loss",
        "Generator loss of a GAN kind (nsgan, minimax, lsgan, wgan, hinge, rahinge, rphinge, rasgan) on logits dr, df.",
        |kind: &str, dr: Tensor, df: Tensor| { g_loss(kind, &dr.0, &df.0).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("g_loss", t)) }
    );
    reg!(
        engine,
        "energy",
        "Per-sample energy Σ(recon - x)² (shape [N]) of an auto-encoder's reconstruction.",
        |recon: Tensor, x: Tensor| {
            energy(&recon.0, &x.0)
                .map(Tensor)
                .and_then(|t| crate::tensor::nonfinite::checked("energy", t))
        }
    );
    reg!(
        engine,
        "energy",
        "Per-sample energy Σ(ae(x) - x)² (shape [N]) of the auto-encoder function ae at x.",
        |ctx: NativeCallContext, ae: FnPtr, x: Tensor| -> ScriptResult<Tensor> {
            energy_of(&mut |t: &CT| call_net(&ctx, &ae, t), &x.0)
                .map(Tensor)
                .and_then(|t| crate::tensor::nonfinite::checked("energy", t))
        }
    );
    reg!(
        engine,
        "ebgan_d_loss",
        "EBGAN/MAGAN discriminator loss mean(E_real) + mean(relu(margin - E_fake)).",
        |e_real: Tensor, e_fake: Tensor, margin: FLOAT| {
            ebgan_d_loss(&e_real.0, &e_fake.0, margin)
                .map(Tensor)
                .and_then(|t| crate::tensor::nonfinite::checked("ebgan_d_loss", t))
        }
    );
    reg!(
        engine,
        "ebgan_d_loss",
        "EBGAN/MAGAN discriminator loss mean(E_real) + mean(relu(margin - E_fake)).",
        |e_real: Tensor, e_fake: Tensor, margin: INT| {
            ebgan_d_loss(&e_real.0, &e_fake.0, margin as f64)
                .map(Tensor)
                .and_then(|t| crate::tensor::nonfinite::checked("ebgan_d_loss", t))
        }
    );
    reg!(
        engine,
        "ebgan_g_loss",
        "EBGAN/MAGAN generator loss mean(E_fake).",
        |e_fake: Tensor| ebgan_g_loss(&e_fake.0)
            .map(Tensor)
            .and_then(|t| crate::tensor::nonfinite::checked("ebgan_g_loss", t))
    );
    reg!(
        engine,
        "convergence_measure",
        "MAGAN convergence measure E_x + |E_x - E_z| (batch means of the energies), a FLOAT.",
        |e_real: Tensor, e_fake: Tensor| convergence_measure(&e_real.0, &e_fake.0)
    );
    reg!(
        engine,
        "lens_loss",
        "Tempered-GAN lens loss lam·L_adv(d_lx) + mean ‖x - lx‖² (kind gan|nsgan: mean(softplus(d_lx)), lsgan: mean(d_lx²), wgan: mean(d_lx), hinge: mean(relu(1+d_lx))).",
        |kind: &str, lam: FLOAT, d_lx: Tensor, x: Tensor, lx: Tensor| {
            lens_loss(kind, lam, &d_lx.0, &x.0, &lx.0).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("lens_loss", t))
        }
    );
    reg!(
        engine,
        "lens_loss",
        "Tempered-GAN lens loss lam·L_adv(d_lx) + mean ‖x - lx‖².",
        |kind: &str, lam: INT, d_lx: Tensor, x: Tensor, lx: Tensor| {
            lens_loss(kind, lam as f64, &d_lx.0, &x.0, &lx.0)
                .map(Tensor)
                .and_then(|t| crate::tensor::nonfinite::checked("lens_loss", t))
        }
    );
}
