//! Randomness for scripts: re-seeding, and random integers, floats and permutations, all from
//! the seeded generator ([`crate::rng`]). Every function is volatile (never folded).

use crate::rng;
use rhai::{Engine, INT};

pub fn register(engine: &mut Engine) {
    reg!(
        engine,
        "seed",
        "Re-seeds the random generator: the same seed gives the same run, bit for bit, on CPU.",
        |s: INT| { rng::seed(s as u64) }
    );
    reg!(volatile engine, "rand_int", "A uniformly random integer in [0, n) (n >= 1).", |n: INT| -> crate::errors::ScriptResult<INT> {
        if n < 1 {
            return Err(crate::errors::script_err(format!("rand_int(n): n must be >= 1, got {n}")));
        }
        Ok(rng::below(n as u64) as INT)
    });
    reg!(volatile engine, "rand_float", "A uniformly random float in [0, 1).", || rng::uniform_vec(1, 0.0, 1.0)[0]);
    reg!(volatile engine, "permutation", "A random permutation of 0..n as an array.", |ctx: rhai::NativeCallContext, n: INT| -> crate::errors::ScriptResult<rhai::Array> {
        let n = usize::try_from(n).map_err(|_| {
            crate::errors::script_err(format!("permutation(n): n must be >= 0, got {n}"))
        })?;
        // Checked before any allocation: the array limit and the budget (8-byte indices, then
        // 16-byte array items).
        let max = ctx.engine().max_array_size();
        if max > 0 && n > max {
            return Err(crate::errors::script_err(format!(
                "permutation({n}): more items than an array may hold ({max}, from --max-memory)"
            )));
        }
        crate::limits::check(&format!("permutation({n})"), crate::limits::bytes_of(n as u128, 24))?;
        Ok(rng::permutation(n).into_iter().map(|i| rhai::Dynamic::from_int(i as INT)).collect())
    });
}
