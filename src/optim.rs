//! Optimizers (SGD with momentum, Adam, Adamax, RMSProp) bound to parameter lists, with PyTorch
//! semantics.

use rhai::Engine;

pub fn register(_engine: &mut Engine) {}
