//! Networks as script values: layers, `sequential`, the MAGAN architecture notation, the papers'
//! ready-made builders, initialisation and the module API.

use rhai::Engine;

pub fn register(_engine: &mut Engine) {}
