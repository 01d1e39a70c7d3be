//! Gradient penalties on the discriminator's input gradient: WGAN-GP and its one-sided /
//! other-norm variants (maximum-margin GANs), zero-centred R1 / R2, and the Roth et al.
//! regulariser. Each returns a differentiable scalar: its gradient with respect to D's
//! parameters is the second-order ("double backprop") gradient.
//!
//! The math takes the discriminator as a [`Critic`]: any `FnMut(&Tensor) -> ScriptResult<Tensor>`
//! (scripts pass a function pointer or closure, `|x| D.forward(x)`), or a native net (the nets
//! layer implements [`Critic`] for its `Net` and registers the penalties for it with
//! [`register_for`]: its input gradient is built layer by layer instead of by candle's generic
//! backward pass, same values, a smaller graph). Penalties are not multiplied by their weight.

use crate::autograd::{grad, variable};
use crate::errors::{script_err, OrScriptErr, ScriptResult};
use crate::gan::objectives::call_net;
use crate::tensor::{
    l1_per_sample, l2_per_sample, linf_per_sample, per_sample_scale, sigmoid, sq_l2_per_sample,
    Tensor,
};
use candle_core::Tensor as CT;
use rhai::{Dynamic, Engine, FnPtr, Map, NativeCallContext, FLOAT};

/// A discriminator: logits for a batch, and their input gradient.
pub trait Critic {
    /// `D(x)`.
    fn logits(&mut self, x: &CT) -> ScriptResult<CT>;
    /// `(D(x), ∇ₓ Σ D(x))` for a leaf variable `x`, both differentiable.
    fn logits_and_input_grad(&mut self, x: &CT) -> ScriptResult<(CT, CT)> {
        let out = self.logits(x)?;
        if !out.dtype().is_float() {
            return Err(script_err("the discriminator must return a float tensor"));
        }
        let g = grad(&out.sum_all().or_script()?, x)?;
        Ok((out, g))
    }
}

impl<F: FnMut(&CT) -> ScriptResult<CT>> Critic for F {
    fn logits(&mut self, x: &CT) -> ScriptResult<CT> {
        self(x)
    }
}

/// A discriminator as the penalties take it.
pub type Disc<'a> = dyn Critic + 'a;

/// The norm of the per-sample input gradient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Norm {
    L2,
    L1,
    Linf,
}

/// How the norm is penalised around the target `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpKind {
    /// `mean((n - t)²)` (WGAN-GP, two-sided).
    Ls,
    /// `mean(relu(n - t))` (one-sided, not squared).
    Hinge,
    /// `mean(relu(n - t)²)` (one-sided, squared).
    Hinge2,
}

/// Where the gradient is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Interp,
    Real,
    Fake,
}

/// Options of [`gradient_penalty`].
#[derive(Clone, Debug)]
pub struct GpOptions {
    pub norm: Norm,
    pub kind: GpKind,
    pub target: f64,
    pub at: At,
    /// Per-sample interpolation weights `[N]`; `None`: drawn uniformly from the seeded rng.
    pub u: Option<CT>,
}

impl Default for GpOptions {
    fn default() -> Self {
        GpOptions {
            norm: Norm::L2,
            kind: GpKind::Ls,
            target: 1.0,
            at: At::Interp,
            u: None,
        }
    }
}

impl Norm {
    pub fn parse(s: &str) -> ScriptResult<Norm> {
        match s {
            "l2" => Ok(Norm::L2),
            "l1" => Ok(Norm::L1),
            "linf" => Ok(Norm::Linf),
            _ => Err(script_err(format!(
                "gradient_penalty: unknown norm \"{s}\"; valid norms: \"l2\", \"l1\", \"linf\""
            ))),
        }
    }
    /// The per-sample norm of `g` (L2 as `sqrt(Σg² + 1e-12)`, safe to differentiate at 0).
    pub fn of(self, g: &CT) -> ScriptResult<CT> {
        match self {
            Norm::L2 => l2_per_sample(g),
            Norm::L1 => l1_per_sample(g),
            Norm::Linf => linf_per_sample(g),
        }
        .ctx("gradient norm")
    }
}

impl GpKind {
    pub fn parse(s: &str) -> ScriptResult<GpKind> {
        match s {
            "ls" => Ok(GpKind::Ls),
            "hinge" => Ok(GpKind::Hinge),
            "hinge2" => Ok(GpKind::Hinge2),
            _ => Err(script_err(format!(
                "gradient_penalty: unknown kind \"{s}\"; valid kinds: \"ls\", \"hinge\", \"hinge2\""
            ))),
        }
    }
}

impl At {
    pub fn parse(s: &str) -> ScriptResult<At> {
        match s {
            "interp" => Ok(At::Interp),
            "real" => Ok(At::Real),
            "fake" => Ok(At::Fake),
            _ => Err(script_err(format!(
                "gradient_penalty: unknown point \"{s}\" for `at`; valid: \"interp\", \"real\", \"fake\""
            ))),
        }
    }
}

fn num(v: &Dynamic, what: &str) -> ScriptResult<f64> {
    if let Ok(f) = v.as_float() {
        Ok(f)
    } else if let Ok(i) = v.as_int() {
        Ok(i as f64)
    } else {
        Err(script_err(format!(
            "gradient_penalty: `{what}` must be a number, got {}",
            v.type_name()
        )))
    }
}

fn string(v: &Dynamic, what: &str) -> ScriptResult<String> {
    v.clone().into_string().map_err(|t| {
        script_err(format!(
            "gradient_penalty: `{what}` must be a string, got {t}"
        ))
    })
}

impl GpOptions {
    /// Reads the options map of `gradient_penalty(d, real, fake, opts)`.
    pub fn from_map(map: &Map) -> ScriptResult<GpOptions> {
        let mut o = GpOptions::default();
        for (k, v) in map {
            match k.as_str() {
                "norm" => o.norm = Norm::parse(&string(v, "norm")?)?,
                "kind" => o.kind = GpKind::parse(&string(v, "kind")?)?,
                "target" => {
                    o.target = num(v, "target")?;
                    if !o.target.is_finite() {
                        return Err(script_err(format!(
                            "gradient_penalty: target must be a finite number, got {}",
                            o.target
                        )));
                    }
                }
                "at" => o.at = At::parse(&string(v, "at")?)?,
                "u" => {
                    o.u = if v.is_unit() {
                        None
                    } else {
                        Some(v.clone().try_cast::<Tensor>().map(|t| t.0).ok_or_else(|| {
                            script_err(format!(
                                "gradient_penalty: `u` must be a tensor [N] of interpolation weights, got {}",
                                v.type_name()
                            ))
                        })?)
                    }
                }
                other => {
                    return Err(script_err(format!(
                        "gradient_penalty: unknown option `{other}`; the options are norm, kind, target, at, u"
                    )))
                }
            }
        }
        Ok(o)
    }
}

/// `D(x)` and `∇_x D(x)` at a fresh leaf copy of `x` (detached from whatever produced `x`);
/// the gradient stays differentiable with respect to D's parameters.
pub fn input_grad(d: &mut Disc, x: &CT) -> ScriptResult<(CT, CT)> {
    let leaf = variable(&x.detach())?;
    d.logits_and_input_grad(&leaf)
}

fn check_pair(real: &CT, fake: &CT, what: &str) -> ScriptResult<()> {
    if real.dims() != fake.dims() {
        return Err(script_err(format!(
            "{what}: real {:?} and fake {:?} must have the same shape",
            real.dims(),
            fake.dims()
        )));
    }
    if real.rank() == 0 || real.dim(0).unwrap_or(0) == 0 {
        return Err(script_err(format!(
            "{what}: expected a non-empty batch [N, ...], got {:?}",
            real.dims()
        )));
    }
    crate::tensor::require_float(what, real)?;
    crate::tensor::require_float(what, fake)?;
    Ok(())
}

/// `u * real + (1 - u) * fake` per sample (`u`: `[N]`).
pub fn interpolate(real: &CT, fake: &CT, u: &CT) -> ScriptResult<CT> {
    check_pair(real, fake, "interpolate")?;
    let n = real.dim(0).or_script()?;
    if u.elem_count() != n {
        return Err(script_err(format!(
            "gradient_penalty: `u` must hold one weight per sample ({n}), got shape {:?}",
            u.dims()
        )));
    }
    (|| {
        let u = u
            .flatten_all()?
            .to_dtype(real.dtype())?
            .to_device(real.device())?;
        let u = per_sample_scale(&u, real)?;
        let one_minus = u.affine(-1.0, 1.0)?;
        (u * real.detach())? + (one_minus * fake.detach())?
    })()
    .ctx("interpolate")
}

/// Per-sample norms of `∇_x D(x)` (differentiable).
pub fn grad_norms(d: &mut Disc, x: &CT, norm: Norm) -> ScriptResult<CT> {
    let (_, g) = input_grad(d, x)?;
    norm.of(&g)
}

/// Gradient penalty `mean(φ(‖∇_x D(x)‖ - t))` at interpolates (or at real / fake samples).
pub fn gradient_penalty(d: &mut Disc, real: &CT, fake: &CT, o: &GpOptions) -> ScriptResult<CT> {
    check_pair(real, fake, "gradient_penalty")?;
    let x = match o.at {
        At::Real => real.clone(),
        At::Fake => fake.clone(),
        At::Interp => {
            let n = real.dim(0).or_script()?;
            let u = match &o.u {
                Some(u) => u.clone(),
                None => crate::tensor::from_f64(
                    crate::rng::uniform_vec(n, 0.0, 1.0),
                    &[n],
                    real.dtype(),
                    real.device(),
                )?,
            };
            interpolate(real, fake, &u)?
        }
    };
    let n = grad_norms(d, &x, o.norm)?;
    (|| {
        let dev = (n - o.target)?;
        match o.kind {
            GpKind::Ls => dev.sqr()?.mean_all(),
            GpKind::Hinge => dev.relu()?.mean_all(),
            GpKind::Hinge2 => dev.relu()?.sqr()?.mean_all(),
        }
    })()
    .ctx("gradient_penalty")
}

/// `mean(‖∇_x D(x)‖₂²)` (zero-centred; R1 at real data, R2 at fake data).
pub fn zero_centred(d: &mut Disc, x: &CT) -> ScriptResult<CT> {
    if x.rank() == 0 {
        return Err(script_err("r1/r2: expected a batch [N, ...], got a scalar"));
    }
    let (_, g) = input_grad(d, x)?;
    sq_l2_per_sample(&g).and_then(|s| s.mean_all()).ctx("r1/r2")
}

/// R1: `mean(‖∇D(real)‖₂²)`.
pub fn r1(d: &mut Disc, real: &CT) -> ScriptResult<CT> {
    zero_centred(d, real)
}

/// R2: `mean(‖∇D(fake)‖₂²)`.
pub fn r2(d: &mut Disc, fake: &CT) -> ScriptResult<CT> {
    zero_centred(d, fake)
}

fn per_sample_logits(out: &CT, n: usize) -> ScriptResult<CT> {
    if out.elem_count() != n {
        return Err(script_err(format!(
            "roth_js needs one logit per sample: D returned shape {:?} for a batch of {n}",
            out.dims()
        )));
    }
    out.flatten_all().or_script()
}

/// Roth et al.'s regulariser (logit form):
/// `mean((1-σ(dr))² ‖∇D(real)‖₂² + σ(df)² ‖∇D(fake)‖₂²)`, pairing samples by index.
/// The discriminator loss adds `γ/2 ·` this.
pub fn roth_js(d: &mut Disc, real: &CT, fake: &CT) -> ScriptResult<CT> {
    roth_js_with_logits(d, real, fake).map(|(omega, _, _)| omega)
}

/// [`roth_js`] and the logits `D(real)`, `D(fake)` it computed on the way (differentiable in
/// D's parameters), so that the adversarial loss needs no second pair of forward passes.
pub fn roth_js_with_logits(d: &mut Disc, real: &CT, fake: &CT) -> ScriptResult<(CT, CT, CT)> {
    check_pair(real, fake, "roth_js")?;
    let n = real.dim(0).or_script()?;
    let (dr_out, gr) = input_grad(d, real)?;
    let (df_out, gf) = input_grad(d, fake)?;
    let dr = per_sample_logits(&dr_out, n)?;
    let df = per_sample_logits(&df_out, n)?;
    let omega = (|| {
        let wr = sigmoid(&dr)?.affine(-1.0, 1.0)?.sqr()?;
        let wf = sigmoid(&df)?.sqr()?;
        ((wr * sq_l2_per_sample(&gr)?)? + (wf * sq_l2_per_sample(&gf)?)?)?.mean_all()
    })()
    .ctx("roth_js")?;
    Ok((omega, dr_out, df_out))
}

/// Registers `$name` for a discriminator given as a function pointer or closure (`fnptr`), or
/// as a native critic type (`native N`); `$body` sees the discriminator as `$d: &mut impl Critic`.
macro_rules! reg_critic {
    (fnptr, $engine:expr, $name:expr, $doc:expr, |$d:ident $(, $a:ident : $t:ty)*| -> $ret:ty $body:block) => {{
        reg!(volatile $engine, $name, $doc,
            |ctx: NativeCallContext, f: FnPtr $(, $a: $t)*| -> ScriptResult<$ret> {
                let $d = &mut |x: &CT| call_net(&ctx, &f, x);
                $body
            });
    }};
    (native $n:ty, $engine:expr, $name:expr, $doc:expr, |$d:ident $(, $a:ident : $t:ty)*| -> $ret:ty $body:block) => {{
        reg!(volatile $engine, $name, $doc, |net: $n $(, $a: $t)*| -> ScriptResult<$ret> {
            let $d = &mut net.clone();
            $body
        });
    }};
}

/// The penalties that take a discriminator, registered for one kind of discriminator (see
/// [`reg_critic`]).
macro_rules! critic_functions {
    ($engine:expr, $($kind:tt)+) => {{
        reg_critic!($($kind)+, $engine, "gradient_penalty",
        "WGAN-GP: mean((‖∇D(interp)‖₂ - 1)²) at u·real + (1-u)·fake, u ~ U[0,1) per sample (differentiable; not weighted). D: a net or a function.",
        |d, real: Tensor, fake: Tensor| -> Tensor {
            gradient_penalty(d, &real.0, &fake.0, &GpOptions::default()).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("gradient_penalty", t))
        });
        reg_critic!($($kind)+, $engine, "gradient_penalty",
        "Gradient penalty with options #{norm: \"l2\"|\"l1\"|\"linf\", kind: \"ls\"|\"hinge\"|\"hinge2\", target: 1.0, at: \"interp\"|\"real\"|\"fake\", u: tensor [N]}.",
        |d, real: Tensor, fake: Tensor, opts: Map| -> Tensor {
            let o = GpOptions::from_map(&opts)?;
            gradient_penalty(d, &real.0, &fake.0, &o).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("gradient_penalty", t))
        });
        reg_critic!(
            $($kind)+, $engine,
            "r1",
            "R1 penalty mean(‖∇D(real)‖₂²) (differentiable; not weighted).",
            |d, real: Tensor| -> Tensor {
                r1(d, &real.0)
                    .map(Tensor)
                    .and_then(|t| crate::tensor::nonfinite::checked("r1", t))
            }
        );
        reg_critic!(
            $($kind)+, $engine,
            "r2",
            "R2 penalty mean(‖∇D(fake)‖₂²) (differentiable; not weighted).",
            |d, fake: Tensor| -> Tensor {
                r2(d, &fake.0)
                    .map(Tensor)
                    .and_then(|t| crate::tensor::nonfinite::checked("r2", t))
            }
        );
        reg_critic!($($kind)+, $engine, "roth_js",
            "Roth et al. regulariser mean((1-σ(D(real)))²‖∇D(real)‖² + σ(D(fake))²‖∇D(fake)‖²); the D loss adds γ/2 · this.",
            |d, real: Tensor, fake: Tensor| -> Tensor { roth_js(d, &real.0, &fake.0).map(Tensor).and_then(|t| crate::tensor::nonfinite::checked("roth_js", t)) });
        reg_critic!($($kind)+, $engine, "roth_js_logits",
            "roth_js and the logits it computed: #{ omega, d_real, d_fake } (D(real), D(fake), differentiable in D's parameters), so the D loss can use them instead of two more forward passes.",
            |d, real: Tensor, fake: Tensor| -> Map {
                let (omega, dr, df) = roth_js_with_logits(d, &real.0, &fake.0)?;
                let mut m = Map::new();
                m.insert("omega".into(), Dynamic::from(Tensor(omega)));
                m.insert("d_real".into(), Dynamic::from(Tensor(dr)));
                m.insert("d_fake".into(), Dynamic::from(Tensor(df)));
                Ok(m)
            });
        reg_critic!(
            $($kind)+, $engine,
            "grad_norms",
            "Per-sample norms (\"l2\", \"l1\" or \"linf\") of ∇_x D(x), shape [N] (for monitoring).",
            |d, x: Tensor, norm: &str| -> Tensor {
                grad_norms(d, &x.0, Norm::parse(norm)?)
                    .map(Tensor)
                    .and_then(|t| crate::tensor::nonfinite::checked("grad_norms", t))
            }
        );
    }};
}

/// Instance noise: `x + σ·ε` with `ε ~ N(0, 1)` drawn from [`crate::rng`] in `x`'s dtype
/// (the same draws, in the same order, as the script `x + sigma * randn_like(x)`).
pub fn instance_noise(x: &CT, sigma: f64) -> ScriptResult<CT> {
    if !(sigma.is_finite() && sigma >= 0.0) {
        return Err(script_err(format!(
            "instance_noise: sigma must be a finite number >= 0, got {sigma}"
        )));
    }
    if !x.dtype().is_float() {
        return Err(script_err(format!(
            "instance_noise: x must be a float tensor, got {:?}",
            x.dtype()
        )));
    }
    if sigma == 0.0 {
        return Ok(x.clone());
    }
    let eps = crate::tensor::from_f64(
        crate::rng::normal_vec(x.elem_count(), 0.0, 1.0),
        x.dims(),
        x.dtype(),
        x.device(),
    )?;
    (|| x + (eps * sigma)?)().ctx("instance_noise")
}

/// Registers the penalties for a native discriminator type (the nets layer's `Net`).
pub fn register_for<N: Critic + Clone + 'static>(engine: &mut Engine) {
    critic_functions!(engine, native N);
}

pub fn register(engine: &mut Engine) {
    critic_functions!(engine, fnptr);
    reg!(
        volatile engine,
        "instance_noise",
        "x + σ·ε, ε ~ N(0, 1) from the seeded generator, for D's inputs (instance noise; Arjovsky & Bottou 2017, the noise Roth et al.'s regulariser approximates). Differentiable in x; σ = 0 returns x and draws nothing. Drive σ with any schedule (e.g. exp_anneal) for annealed noise.",
        |x: Tensor, sigma: FLOAT| instance_noise(&x.0, sigma).map(Tensor)
    );
    reg!(
        engine,
        "interpolate_batch",
        "u·real + (1-u)·fake per sample (u: a tensor [N]), detached from both.",
        |real: Tensor, fake: Tensor, u: Tensor| interpolate(&real.0, &fake.0, &u.0).map(Tensor)
    );
}
