//! ganscript: GAN training procedures as rhai scripts over candle tensors.
//!
//! The host registers one concern per module into a rhai [`rhai::Engine`] (see
//! [`session::new_engine`]): tensors, autograd, randomness, and, on top of them, networks,
//! optimizers, objectives, penalties, schedules, data and run outputs. Every entry point makes
//! sure candle keeps second-order gradients (see [`autograd::ensure_double_backprop`]).

#![allow(clippy::result_large_err)]

/// The comment prefix [`reg!`] records the registering module under (`ganscript doc` groups
/// functions by it).
pub const MODULE_TAG: &str = "//@module ";

/// Registers a native function with a one-line doc (shown by `ganscript doc` and the REPL).
/// `reg!(volatile engine, ...)` marks it volatile (random functions must never be folded).
#[macro_export]
macro_rules! reg {
    (volatile $engine:expr, $name:expr, $doc:expr, $f:expr) => {{
        ::rhai::FuncRegistration::new($name)
            .with_volatility(true)
            .with_comments([
                format!("/// {}", $doc),
                format!("{}{}", $crate::MODULE_TAG, module_path!()),
            ])
            .register_into_engine($engine, $f);
    }};
    ($engine:expr, $name:expr, $doc:expr, $f:expr) => {{
        ::rhai::FuncRegistration::new($name)
            .with_comments([
                format!("/// {}", $doc),
                format!("{}{}", $crate::MODULE_TAG, module_path!()),
            ])
            .register_into_engine($engine, $f);
    }};
}

pub mod autograd;
pub mod checkpoint;
pub mod compare;
pub mod data;
pub mod declared;
pub mod device;
pub mod diagnostics;
pub mod docs;
pub mod errors;
pub mod eval;
pub mod gan;
pub mod hints;
pub mod io;
pub mod kernels;
pub mod limits;
pub mod memory;
pub mod metrics;
pub mod nn;
pub mod optim;
pub mod repl;
pub mod rng;
pub mod run;
pub mod sandbox;
pub mod script;
pub mod session;
pub mod settings;
pub mod state;
pub mod sweep;
pub mod tensor;

pub use session::{new_engine, EngineOptions};
pub use tensor::Tensor;
