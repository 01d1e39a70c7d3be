//! Which path an op takes: the custom CPU kernels (the fast path), or candle's own ops (the
//! generic path, the one every non-CPU device takes).
//!
//! [`fast_path`] is the one place that decides; every op with a custom kernel (convolutions,
//! matrix products, batch norm, the fused activations and channel ops, the fused optimizer
//! passes, the layer-by-layer input gradient) asks it and falls back to candle's ops when it
//! says no.
//!
//! `GANSCRIPT_KERNELS=generic` (read once, at the first op or engine) makes it say no on the
//! CPU as well, so the code CUDA runs is exercised and tested on any machine; `fast` (or unset)
//! is the default. In generic mode a custom kernel that runs anyway (an op that skipped the
//! check) fails with an error naming it, as it would on a GPU, where these kernels have no
//! implementation.

use candle_core::{DType, Tensor};
use std::cell::Cell;
use std::sync::OnceLock;

/// The environment variable selecting the kernels.
pub const ENV: &str = "GANSCRIPT_KERNELS";

/// The two paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernels {
    /// The custom CPU kernels where the tensors allow them (the default).
    Fast,
    /// candle's own ops everywhere, as on a GPU.
    Generic,
}

impl Kernels {
    pub fn name(self) -> &'static str {
        match self {
            Kernels::Fast => "fast",
            Kernels::Generic => "generic",
        }
    }
}

/// Parses a value of [`ENV`] (unset or empty: fast).
pub fn parse(value: Option<&str>) -> Result<Kernels, String> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("") | Some("fast") | Some("cpu") => Ok(Kernels::Fast),
        Some("generic") => Ok(Kernels::Generic),
        Some(other) => Err(format!(
            "{ENV}={other}: expected `fast` (the default) or `generic` (candle's own ops, the \
             path a GPU takes)"
        )),
    }
}

static PROCESS: OnceLock<Result<Kernels, String>> = OnceLock::new();

thread_local! {
    static FORCED: Cell<Option<Kernels>> = const { Cell::new(None) };
}

/// The process's setting from [`ENV`], read once; an unknown value is an error (the engine and
/// the command line report it before anything runs).
pub fn from_env() -> Result<Kernels, String> {
    PROCESS
        .get_or_init(|| parse(std::env::var(ENV).ok().as_deref()))
        .clone()
}

/// The path ops on this thread take: a [`force`]d one, else the process's.
pub fn current() -> Kernels {
    FORCED
        .with(|f| f.get())
        .unwrap_or_else(|| from_env().unwrap_or(Kernels::Fast))
}

/// Whether the custom CPU kernels take these tensors: the fast path is on, and they are all
/// on the CPU, of one dtype, f32 or f64. Otherwise ops are composed from candle's own.
pub fn fast_path(ts: &[&Tensor]) -> bool {
    current() == Kernels::Fast
        && ts
            .first()
            .is_some_and(|t| matches!(t.dtype(), DType::F32 | DType::F64))
        && ts
            .iter()
            .all(|t| t.device().is_cpu() && t.dtype() == ts[0].dtype())
}

/// Called first by every custom kernel: an error in generic mode, where no custom kernel may
/// run (a GPU has none).
pub fn check_kernel(op: &str) -> candle_core::Result<()> {
    if current() == Kernels::Generic {
        candle_core::bail!(
            "{op}: a custom CPU kernel ran with {ENV}=generic (an op skipped \
             kernels::fast_path; on a GPU this would fail)"
        );
    }
    Ok(())
}

/// Restores the previous forced path when dropped.
pub struct Forced(Option<Kernels>);

impl Drop for Forced {
    fn drop(&mut self) {
        FORCED.with(|f| f.set(self.0));
    }
}

/// Forces `k` on this thread until the returned guard is dropped (tests run both paths in one
/// process with it; a script's ops all run on its thread).
pub fn force(k: Kernels) -> Forced {
    Forced(FORCED.with(|f| f.replace(Some(k))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_values() {
        assert_eq!(parse(None), Ok(Kernels::Fast));
        assert_eq!(parse(Some("")), Ok(Kernels::Fast));
        assert_eq!(parse(Some("fast")), Ok(Kernels::Fast));
        assert_eq!(parse(Some(" Generic ")), Ok(Kernels::Generic));
        let e = parse(Some("cuda")).unwrap_err();
        assert!(
            e.contains("GANSCRIPT_KERNELS=cuda") && e.contains("generic"),
            "{e}"
        );
    }

    #[test]
    fn force_overrides_and_restores() {
        let x = Tensor::zeros(3, DType::F32, &candle_core::Device::Cpu).unwrap();
        let before = current();
        {
            let _g = force(Kernels::Generic);
            assert!(!fast_path(&[&x]));
            assert!(check_kernel("op").is_err());
            {
                let _h = force(Kernels::Fast);
                assert!(fast_path(&[&x]));
                assert!(check_kernel("op").is_ok());
            }
            assert!(!fast_path(&[&x]));
        }
        assert_eq!(current(), before);
        let _f = force(Kernels::Fast);
        let i = Tensor::zeros(3, DType::U32, &candle_core::Device::Cpu).unwrap();
        let d = Tensor::zeros(3, DType::F64, &candle_core::Device::Cpu).unwrap();
        assert!(!fast_path(&[&i]), "integer tensors take candle's ops");
        assert!(!fast_path(&[&x, &d]), "mixed dtypes take candle's ops");
        assert!(!fast_path(&[]), "no tensor: nothing to run a kernel on");
    }
}
