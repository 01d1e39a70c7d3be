//! Data sets: MNIST IDX (and the built-in 10k digits), CIFAR-10, image folders, NPY/NPZ,
//! synthetic mixtures, transforms and batch iteration.

use rhai::Engine;

pub fn register(_engine: &mut Engine) {}
