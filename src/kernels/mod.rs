//! The kernel layer: custom CPU ops on candle tensors (convolutions, matrix products, batch
//! norm, fused activations and channel ops, tanh), the `gemm` wrapper and the thread pool they
//! share, the switch between them and candle's own ops ([`dispatch`]), and the scope that tells
//! a backward pass which gradients are wanted ([`grad_scope`]).
//!
//! Nothing here knows rhai or the script types: the layers above wrap these ops.

/// In a custom op's `cpu_fwd`: evaluates `$body` on the elements of contiguous CPU inputs of
/// one dtype (f32 or f64; each storage and layout bound to the name after `=>`) and wraps the
/// resulting `Vec` as storage.
macro_rules! with_cpu {
    ($op:expr, $($s:expr, $l:expr => $a:ident),+ ; $body:expr) => {
        match ($($s,)+) {
            ($(candle_core::CpuStorage::F32($a),)+) => {
                $(let $a = $crate::kernels::cpu_slice($a, $l, $op)?;)+
                candle_core::CpuStorage::F32($body)
            }
            ($(candle_core::CpuStorage::F64($a),)+) => {
                $(let $a = $crate::kernels::cpu_slice($a, $l, $op)?;)+
                candle_core::CpuStorage::F64($body)
            }
            _ => candle_core::bail!("{}: the inputs must all be f32 or all f64", $op),
        }
    };
}

/// [`with_cpu`] for two inputs.
macro_rules! with_two {
    ($op:expr, $s1:expr, $l1:expr, $s2:expr, $l2:expr, |$a:ident, $b:ident| $body:expr) => {
        with_cpu!($op, $s1, $l1 => $a, $s2, $l2 => $b; $body)
    };
}

pub mod batch_norm;
pub mod conv;
pub mod dispatch;
pub mod fused;
pub mod gemm;
pub mod grad_scope;
pub mod matmul;
pub mod tanh;
pub mod threads;

pub use dispatch::fast_path;
pub(crate) use gemm::Float;
pub use grad_scope::{backward_for, needs_grad};

/// The elements of a contiguous CPU tensor's storage (for custom ops); an error naming `op`
/// for a strided one.
pub(crate) fn cpu_slice<'a, T>(
    data: &'a [T],
    layout: &candle_core::Layout,
    op: &str,
) -> candle_core::Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: expected a contiguous input"),
    }
}

/// The tensor API's `require_float` for code that returns candle errors (the math primitives,
/// the losses, the nets' forward passes): candle has no integer kernels for them and panics.
pub fn ensure_float(op: &str, x: &candle_core::Tensor) -> candle_core::Result<()> {
    if x.dtype().is_float() {
        Ok(())
    } else {
        candle_core::bail!(
            "{op}: needs a float tensor, got a {} tensor of shape {:?}; convert it first with x.to(\"f32\")",
            x.dtype().as_str(),
            x.dims()
        )
    }
}
