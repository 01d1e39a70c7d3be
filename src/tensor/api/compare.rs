//! Comparisons, masks, `where`, clamping, minimum and maximum.

use super::*;

/// `clamp`'s bounds: numbers (infinite allowed: one-sided) with lo <= hi.
pub(super) fn clamp_args(lo: f64, hi: f64) -> ScriptResult<()> {
    if lo.is_nan() || hi.is_nan() || lo > hi {
        return Err(script_err(format!(
            "clamp: needs bounds lo <= hi, got lo = {lo}, hi = {hi}"
        )));
    }
    Ok(())
}

pub(super) fn register_comparisons(engine: &mut Engine) {
    macro_rules! cmp {
        ($name:literal, $op:literal, $method:ident) => {{
            let doc = concat!(
                "A 0/1 mask (in x's float dtype) of x ",
                $op,
                " y, with broadcasting."
            );
            let tt = |a: &CT, b: &CT| -> candle_core::Result<CT> {
                let (a2, b2) = broadcast_pair(a, b)?;
                mask_to_float(&a2.$method(&b2)?, a)
            };
            let ts =
                |a: &CT, s: f64| -> candle_core::Result<CT> { mask_to_float(&a.$method(s)?, a) };
            reg!(engine, $name, doc, move |a: Tensor, b: Tensor| t(
                tt(&a.0, &b.0),
                $name
            ));
            reg!(engine, $name, doc, move |a: Tensor, b: FLOAT| t(
                ts(&a.0, b),
                $name
            ));
            reg!(engine, $name, doc, move |a: Tensor, b: INT| t(
                ts(&a.0, b as f64),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: Tensor| t(
                tt(&a.0, &b.0),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: FLOAT| t(
                ts(&a.0, b),
                $name
            ));
            reg!(engine, $op, doc, move |a: Tensor, b: INT| t(
                ts(&a.0, b as f64),
                $name
            ));
        }};
    }
    cmp!("gt", ">", gt);
    cmp!("ge", ">=", ge);
    cmp!("lt", "<", lt);
    cmp!("le", "<=", le);
    macro_rules! eqs {
        ($name:literal, $method:ident) => {{
            let doc = concat!(
                "A 0/1 mask of element-wise `",
                $name,
                "`, with broadcasting."
            );
            reg!(engine, $name, doc, |a: &mut Tensor, b: Tensor| {
                let r = broadcast_pair(&a.0, &b.0)
                    .and_then(|(x, y)| mask_to_float(&x.$method(&y)?, &a.0));
                t(r, $name)
            });
            reg!(engine, $name, doc, |a: &mut Tensor, b: FLOAT| t(
                a.0.$method(b).and_then(|m| mask_to_float(&m, &a.0)),
                $name
            ));
        }};
    }
    eqs!("eq", eq);
    eqs!("ne", ne);
    reg!(
        engine,
        "where",
        "Picks `a` where `mask` is non-zero, else `b` (broadcasting all three).",
        |mask: Tensor, a: Dynamic, b: Dynamic| { where_dyn(&mask.0, a, b) }
    );
}

pub(super) fn broadcast_pair(a: &CT, b: &CT) -> candle_core::Result<(CT, CT)> {
    if a.dims() == b.dims() {
        return Ok((a.clone(), b.clone()));
    }
    let shape = a
        .shape()
        .broadcast_shape_binary_op(b.shape(), "broadcast")?;
    Ok((a.broadcast_as(&shape)?, b.broadcast_as(&shape)?))
}

pub(super) fn where_dyn(mask: &CT, a: Dynamic, b: Dynamic) -> R {
    let as_tensor = |v: Dynamic, like: &CT| -> ScriptResult<CT> {
        if let Some(x) = v.clone().try_cast::<Tensor>() {
            Ok(x.0)
        } else if let Ok(f) = v.as_float() {
            scalar_like(f, like)
        } else if let Ok(i) = v.as_int() {
            scalar_like(i as f64, like)
        } else {
            Err(script_err(format!(
                "where: expected a tensor or a number, got {}",
                v.type_name()
            )))
        }
    };
    let like = a
        .clone()
        .try_cast::<Tensor>()
        .or_else(|| b.clone().try_cast::<Tensor>())
        .map(|x| x.0)
        .unwrap_or_else(|| mask.clone());
    let like = if like.dtype().is_float() {
        like
    } else {
        mask.to_dtype(default_dtype()).or_script()?
    };
    let a = as_tensor(a, &like)?;
    let b = as_tensor(b, &like)?;
    let r = (|| {
        let shape = mask
            .shape()
            .broadcast_shape_binary_op(a.shape(), "where")?
            .broadcast_shape_binary_op(b.shape(), "where")?;
        let m = mask.broadcast_as(&shape)?.ne(0.0)?;
        m.where_cond(&a.broadcast_as(&shape)?, &b.broadcast_as(&shape)?)
    })();
    t(r, "where")
}
