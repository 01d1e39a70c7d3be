//! Resource limits: the memory budget (`--max-memory`), overflow-checked sizes, and the
//! nesting limit of nets.
//!
//! Every tensor, layer or buffer a script asks for (creation functions, layers, data loaders,
//! mixtures, permutations, broadcasts, convolution outputs, ...) is checked here *before* it is
//! allocated: its size is computed without overflow and compared with the budget, less what the
//! process already holds when the request is large. Exceeding the budget is a script error
//! (rhai attaches the line of the call), never an allocation failure that aborts the process.
//!
//! The budget defaults to 75 % of the machine's memory (`MemTotal`, or the cgroup's limit when
//! lower); `--max-memory 4G` sets it. It is per thread (a script runs on one thread), so tests
//! can lower it without affecting each other.

use crate::errors::Error;
use crate::errors::{script_err, ScriptResult};
use candle_core::DType;
use std::cell::Cell;

/// How deep nets may nest (`sequential` of `sequential` ..., `residual`): every traversal of a
/// net (forward, parameters, checkpoints, summaries) recurses once per level.
pub const MAX_NET_DEPTH: usize = 256;

/// The share of the machine's memory the default budget allows.
const DEFAULT_SHARE: f64 = 0.75;

/// What the process holds is measured again once this much was requested since the last
/// measurement (or for any request this large): many small requests add up, and the overshoot
/// past the budget is at most this much.
const MEASURE_EVERY: u128 = 64 << 20;

thread_local! {
    static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
    /// Bytes requested since the heap was last measured.
    static PENDING: Cell<u128> = const { Cell::new(0) };
}

/// Sets this thread's memory budget in bytes (`--max-memory`).
pub fn set_max_memory(bytes: u64) {
    BUDGET.with(|b| b.set(Some(bytes.max(1))));
}

/// This thread's memory budget in bytes.
pub fn max_memory() -> u64 {
    BUDGET.with(|b| match b.get() {
        Some(v) => v,
        None => {
            let v = default_budget();
            b.set(Some(v));
            v
        }
    })
}

/// 75 % of the machine's memory (or of the cgroup limit, when lower; of 32 GiB if unknown).
pub fn default_budget() -> u64 {
    let total = machine_memory().unwrap_or(32 << 30);
    (total as f64 * DEFAULT_SHARE) as u64
}

fn machine_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let total = kb.checked_mul(1024)?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    Some(match cgroup {
        Some(c) if c > 0 && c < total => c,
        _ => total,
    })
}

/// Parses a size as `--max-memory` takes it: bytes, or a number with K, M, G or T (powers of
/// 1024; a trailing `B`, `iB` and spaces are allowed), e.g. `4G`, `512MiB`, `1.5 GB`.
pub fn parse_size(text: &str) -> Result<u64, Error> {
    let t = text.trim();
    let bad =
        || format!("invalid size `{text}`: expected bytes or a number with K, M, G or T (e.g. 8G)");
    let lower = t.to_ascii_lowercase();
    let s = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower)
        .trim_end();
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(Error::Msg(bad()));
    }
    let bytes = v * mult as f64;
    if bytes >= u64::MAX as f64 {
        return Err(Error::Msg(bad()));
    }
    Ok(bytes as u64)
}

/// A byte count for messages: `512 B`, `3.1 MB`, `40.0 GB` (powers of 1024).
pub fn format_bytes(bytes: u128) -> String {
    const UNITS: [&str; 6] = ["B", "KB", "MB", "GB", "TB", "PB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Bytes the allocator hands out now (glibc: in-use heap and mapped blocks); 0 if unknown.
pub fn heap_in_use() -> u128 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        info.uordblks as u128 + info.hblkhd as u128
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

/// The number of elements of `dims`, or an error naming `what` when it overflows.
pub fn numel(dims: &[usize], what: &str) -> ScriptResult<usize> {
    dims.iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| {
            script_err(format!(
                "{what}: the shape {dims:?} has more elements than memory can address"
            ))
        })
}

/// The bytes of `elems` values of `elem_size` bytes each (no overflow: u128).
pub fn bytes_of(elems: u128, elem_size: usize) -> u128 {
    elems.saturating_mul(elem_size as u128)
}

/// The bytes of a tensor of shape `dims` and `dtype` (no overflow: u128, saturating).
pub fn tensor_bytes(dims: &[usize], dtype: DType) -> u128 {
    let n = dims
        .iter()
        .fold(1u128, |acc, &d| acc.saturating_mul(d as u128));
    bytes_of(n, dtype.size_in_bytes())
}

/// Checks that `bytes` more fit the budget, with what the process already holds; the error says
/// what (`what`) needs how much.
pub fn check_bytes(what: &str, bytes: u128) -> Result<(), Error> {
    let budget = max_memory() as u128;
    if bytes > budget {
        return Err(Error::Msg(format!(
            "{what} needs {}, more than the memory budget of {} (--max-memory)",
            format_bytes(bytes),
            format_bytes(budget)
        )));
    }
    let pending = PENDING.with(|p| {
        let v = p.get().saturating_add(bytes);
        p.set(v);
        v
    });
    if pending >= MEASURE_EVERY {
        PENDING.with(|p| p.set(0));
        let used = heap_in_use();
        if bytes.saturating_add(used) > budget {
            return Err(Error::Msg(format!(
                "{what} needs {} while {} are in use: more than the memory budget of {} \
                 (--max-memory)",
                format_bytes(bytes),
                format_bytes(used),
                format_bytes(budget)
            )));
        }
    }
    Ok(())
}

/// [`check_bytes`] for script functions.
pub fn check(what: &str, bytes: u128) -> ScriptResult<()> {
    check_bytes(what, bytes).map_err(script_err)
}

/// [`check_bytes`] for code that returns candle errors.
pub fn check_candle(what: &str, bytes: u128) -> candle_core::Result<()> {
    check_bytes(what, bytes).map_err(|e| candle_core::Error::Msg(e.to_string()))
}

/// Checks a tensor of shape `dims` and `dtype` against the budget (`op` names the request).
pub fn check_tensor(op: &str, dims: &[usize], dtype: DType) -> ScriptResult<()> {
    numel(dims, op)?;
    check(
        &format!("{op}: a tensor of shape {dims:?} ({})", dtype.as_str()),
        tensor_bytes(dims, dtype),
    )
}

/// The limits of rhai's own values, from the budget: strings and arrays may each take an
/// eighth of it (a string doubled in place needs its old and new copies at once).
pub fn rhai_limits() -> (usize, usize, usize) {
    let share = (max_memory() / 8).max(1 << 20);
    let strings = share.min(usize::MAX as u64) as usize;
    // An array element is a 16-byte Dynamic; a map entry is about 64 bytes with its key.
    let arrays = (share / 16).min(usize::MAX as u64) as usize;
    let maps = (share / 64).min(usize::MAX as u64) as usize;
    (strings, arrays, maps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("4G").unwrap(), 4 << 30);
        assert_eq!(parse_size("512MiB").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5 GB").unwrap(), 3 << 29);
        assert_eq!(parse_size("2t").unwrap(), 2 << 40);
        for bad in ["", "G", "-1G", "0", "abc", "1e30T", "nan"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn budget_refuses_large_requests_and_overflow() {
        set_max_memory(1 << 30);
        assert!(check_tensor("zeros", &[1024, 1024], DType::F32).is_ok());
        let e = check_tensor("zeros", &[1 << 20, 1 << 20], DType::F32).unwrap_err();
        assert!(e.to_string().contains("4.0 TB"), "{e}");
        assert!(e.to_string().contains("1.0 GB"), "{e}");
        let e = check_tensor("zeros", &[usize::MAX, usize::MAX], DType::F32).unwrap_err();
        assert!(e.to_string().contains("address"), "{e}");
        assert_eq!(numel(&[3, 4], "x").unwrap(), 12);
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(3 << 20), "3.0 MB");
    }
}
