//! Run checkpoints: every tracked net, optimizer, schedule and margin adapter, the script's
//! declared state, the RNG state and the step, saved atomically and restored exactly.

pub mod file;
