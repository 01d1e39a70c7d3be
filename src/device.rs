//! Where tensors live and what they hold by default: the current device and default dtype.
//!
//! Both are per thread (a script runs on one thread), set from `--device` and by scripts with
//! `default_dtype("f64")`; every creation function uses them.

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use candle_core::{DType, Device};
use std::cell::RefCell;

thread_local! {
    static CURRENT: RefCell<(Device, DType)> = const { RefCell::new((Device::Cpu, DType::F32)) };
}

/// The device new tensors are created on.
pub fn current_device() -> Device {
    CURRENT.with(|c| c.borrow().0.clone())
}

/// The dtype new tensors are created with (f32 unless a script or test changed it).
pub fn default_dtype() -> DType {
    CURRENT.with(|c| c.borrow().1)
}

pub fn set_current_device(device: Device) {
    CURRENT.with(|c| c.borrow_mut().0 = device);
}

pub fn set_default_dtype(dtype: DType) {
    CURRENT.with(|c| c.borrow_mut().1 = dtype);
}

/// Parses `cpu`, `cuda` or `cuda:N`. In a build without the `cuda` feature, asking for CUDA is
/// a clear error rather than a panic.
pub fn parse_device(spec: &str) -> Result<Device, Error> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::Cpu);
    }
    let ordinal = if spec == "cuda" || spec == "gpu" {
        0
    } else if let Some(n) = spec.strip_prefix("cuda:") {
        n.parse::<usize>()
            .map_err(|_| format!("invalid device `{spec}`: expected cpu, cuda or cuda:N"))?
    } else {
        return Err(Error::Msg(format!(
            "invalid device `{spec}`: expected cpu, cuda or cuda:N"
        )));
    };
    if !cfg!(feature = "cuda") {
        return Err(Error::Msg(format!(
            "device `{spec}` asked for, but this ganscript was built without CUDA support; \
             rebuild with `cargo build --release --features cuda`"
        )));
    }
    Ok(Device::new_cuda(ordinal).map_err(|e| format!("cannot open CUDA device {ordinal}: {e}"))?)
}

/// A device's name as scripts see it: `cpu` or `cuda:N`.
pub fn device_name(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu".to_string(),
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

/// Parses a dtype name as scripts write it.
pub fn parse_dtype(name: &str) -> ScriptResult<DType> {
    match name.trim().to_ascii_lowercase().as_str() {
        "f32" | "float32" | "float" => Ok(DType::F32),
        "f64" | "float64" | "double" => Ok(DType::F64),
        "f16" | "float16" | "half" => Ok(DType::F16),
        "bf16" | "bfloat16" => Ok(DType::BF16),
        "i64" | "int64" | "long" => Ok(DType::I64),
        "u32" | "uint32" => Ok(DType::U32),
        "u8" | "uint8" | "bool" => Ok(DType::U8),
        other => Err(script_err(format!(
            "unknown dtype `{other}`: expected f32, f64, f16, bf16, i64, u32 or u8"
        ))),
    }
}

pub fn dtype_name(dtype: DType) -> &'static str {
    dtype.as_str()
}
