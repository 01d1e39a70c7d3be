//! Sample-quality metrics: an Inception-style score and a Fréchet distance on MNIST with an
//! embedded classifier trained by ganscript itself, mode coverage for Gaussian mixtures, and Roth
//! et al.'s cross-testing of discriminators; plus `softmax`, `log_softmax` and `cross_entropy`
//! (the classifier's loss).
//!
//! Script functions: `mnist_score`, `mnist_fid`, `mnist_features`, `mnist_predict`,
//! `mnist_classifier`, `mnist_classifier_accuracy`, `frechet_distance`, `mode_stats`,
//! `cross_test`, `softmax`, `log_softmax`, `cross_entropy`. The same computations are public
//! Rust functions (for a later `ganscript eval`). See `src/metrics/README.md` for how the
//! classifier was trained.

pub mod classifier;
pub mod cross_test;
pub mod linalg;
pub mod loss;
pub mod modes;

pub use classifier::{
    embedded_classifier, mnist_features, mnist_fid, mnist_predict, mnist_score, Classifier,
    ScoreResult, CLASSIFIER_ACCURACY,
};
pub use cross_test::{cross_test, CrossTest};
pub use linalg::{frechet_distance, mean_cov};
pub use loss::{cross_entropy, log_softmax, softmax};
pub use modes::{mode_stats, ModeStats};

use rhai::Engine;

pub fn register(engine: &mut Engine) {
    loss::register(engine);
    classifier::register(engine);
    modes::register(engine);
    cross_test::register(engine);
}
