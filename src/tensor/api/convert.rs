//! Conversions: to numbers and arrays, dtype and device changes, detaching, printing.

use super::*;

/// Floats converted to an integer dtype must be finite and within its range: candle saturates
/// (NaN becomes 0, -5 becomes 0 in u8), which silently changes values.
pub(super) fn check_int_conversion(x: &CT, dtype: DType) -> ScriptResult<()> {
    if dtype.is_float() || !x.dtype().is_float() {
        return Ok(());
    }
    let (lo, hi) = match dtype {
        DType::U8 => (0.0, 255.0),
        DType::U32 => (0.0, u32::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    };
    let vals: Vec<f64> = x
        .flatten_all()
        .and_then(|f| f.to_dtype(DType::F64))
        .and_then(|f| f.to_vec1())
        .ctx("to")?;
    if let Some(v) = vals.iter().find(|v| !(lo..=hi).contains(*v)) {
        return Err(script_err(format!(
            "to(\"{}\"): the value {v} is not in the range of {} ({lo} to {hi}); clamp it first",
            dtype.as_str(),
            dtype.as_str()
        )));
    }
    Ok(())
}

pub(super) fn register_conversions(engine: &mut Engine) {
    reg!(
        engine,
        "detach",
        "The same values, cut from the autograd graph.",
        |x: &mut Tensor| Tensor(x.0.detach())
    );
    reg!(
        engine,
        "item",
        "The value of a one-element tensor.",
        |x: &mut Tensor| item(&x.0)
    );
    reg!(
        engine,
        "to_float",
        "The value of a one-element tensor.",
        |x: &mut Tensor| item(&x.0)
    );
    reg!(
        engine,
        "to_array",
        "The values as nested arrays.",
        |x: &mut Tensor| to_array(&x.0)
    );
    reg!(
        engine,
        "device",
        "The device: \"cpu\" or \"cuda:N\".",
        |x: &mut Tensor| device_name(x.0.device())
    );
    reg!(
        engine,
        "dtype",
        "The dtype: \"f32\", \"f64\", ...",
        |x: &mut Tensor| x.0.dtype().as_str().to_string()
    );
    reg!(
        engine,
        "to",
        "Converts to a dtype (\"f64\") or moves to a device (\"cpu\", \"cuda:0\").",
        |x: &mut Tensor, target: &str| {
            if let Ok(dtype) = parse_dtype(target) {
                check_int_conversion(&x.0, dtype)?;
                return t(x.0.to_dtype(dtype), "to");
            }
            let device = parse_device(target).map_err(script_err)?;
            t(x.0.to_device(&device), "to")
        }
    );
    reg!(
        engine,
        "to_string",
        "Shape, dtype, device and values (or statistics when large).",
        |x: &mut Tensor| x.to_string()
    );
    reg!(
        engine,
        "to_debug",
        "Shape, dtype, device and values (or statistics when large).",
        |x: &mut Tensor| x.to_string()
    );
    reg!(
        engine,
        "summary",
        "One line: shape, dtype and device.",
        |x: &mut Tensor| crate::tensor::summary_line(&x.0)
    );
    reg!(
        engine,
        "is_nan",
        "True if any element is NaN or infinite.",
        |x: &mut Tensor| -> ScriptResult<bool> {
            let v =
                x.0.flatten_all()
                    .and_then(|f| f.to_dtype(DType::F64))
                    .and_then(|f| f.to_vec1::<f64>())
                    .ctx("is_nan")?;
            Ok(v.iter().any(|x| !x.is_finite()))
        }
    );
}
