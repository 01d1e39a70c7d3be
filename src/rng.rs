//! Seeded randomness. candle's CPU generator cannot be seeded, so every random tensor is drawn
//! here, from a ChaCha generator per thread, and uploaded with `Tensor::from_vec`. Its state
//! (seed, stream position) can be read and restored, which checkpoints use to resume bit for bit.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};
use std::cell::RefCell;

thread_local! {
    static RNG: RefCell<ChaCha8Rng> = RefCell::new(ChaCha8Rng::seed_from_u64(0));
}

/// Re-seeds this thread's generator.
pub fn seed(seed: u64) {
    RNG.with(|r| *r.borrow_mut() = ChaCha8Rng::seed_from_u64(seed));
}

/// Runs `f` with this thread's generator.
pub fn with_rng<T>(f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// `n` samples of N(mean, std²).
pub fn normal_vec(n: usize, mean: f64, std: f64) -> Vec<f64> {
    with_rng(|r| {
        (0..n)
            .map(|_| mean + std * r.sample::<f64, _>(StandardNormal))
            .collect()
    })
}

/// `n` samples of N(0, std²) truncated at ±2·std, each redrawn until it falls inside (TensorFlow's
/// `truncated_normal_initializer`).
pub fn truncated_normal_vec(n: usize, std: f64) -> Vec<f64> {
    with_rng(|r| {
        (0..n)
            .map(|_| loop {
                let z: f64 = r.sample(StandardNormal);
                if z.abs() <= 2.0 {
                    break std * z;
                }
            })
            .collect()
    })
}

/// `n` standard normal samples from a generator of their own, seeded by `seed` and `key`
/// (independent of this thread's stream).
pub fn normal_vec_keyed(seed: u64, key: &str, n: usize) -> Vec<f64> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{seed}/{key}").as_bytes());
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(&digest);
    let mut r = ChaCha8Rng::from_seed(bytes);
    (0..n).map(|_| r.sample::<f64, _>(StandardNormal)).collect()
}

/// `n` samples of U[lo, hi).
pub fn uniform_vec(n: usize, lo: f64, hi: f64) -> Vec<f64> {
    with_rng(|r| (0..n).map(|_| lo + (hi - lo) * r.gen::<f64>()).collect())
}

/// A uniformly random integer in `[0, n)`.
pub fn below(n: u64) -> u64 {
    with_rng(|r| r.gen_range(0..n.max(1)))
}

/// A random permutation of `0..n` (Fisher-Yates).
pub fn permutation(n: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let mut v: Vec<usize> = (0..n).collect();
    with_rng(|r| v.shuffle(r));
    v
}

/// The generator's exact state, for checkpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    pub word_pos: u128,
}

pub fn state() -> RngState {
    with_rng(|r| RngState {
        seed: r.get_seed(),
        stream: r.get_stream(),
        word_pos: r.get_word_pos(),
    })
}

pub fn restore(state: &RngState) {
    RNG.with(|r| {
        let mut g = ChaCha8Rng::from_seed(state.seed);
        g.set_stream(state.stream);
        g.set_word_pos(state.word_pos);
        *r.borrow_mut() = g;
    });
}
