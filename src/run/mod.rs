//! What a training run writes: the run directory, config.json, metrics (JSONL and CSV), sample
//! grids, plots and terminal progress.

use crate::engine::EngineOptions;
use rhai::Engine;

pub fn register(_engine: &mut Engine, _opts: &EngineOptions) {}
