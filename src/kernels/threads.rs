//! The one pool of threads every CPU kernel here runs on: candle's own.
//!
//! candle's element-wise ops run on its barrier pool: one worker per core besides the caller,
//! each spinning for about a millisecond after a task before it sleeps, so that the next op
//! starts without a wake-up. Kernels of ours that ran on a second pool (rayon's, for the
//! products, convolutions and fused maps) competed with those spinning workers for the cores:
//! on 2 cores, `mixture3d` had four busy threads, the caller blocked while rayon's two
//! workers shared the cores with candle's spinning one, and that one took 43% of the CPU
//! samples. Here the parallel loops run on candle's pool, the caller taking part; a product
//! is cut into blocks of rows (or columns) that run in parallel, each a single-threaded
//! `gemm` call.
//!
//! The pool's size is candle's: `CANDLE_NUM_THREADS`, else `RAYON_NUM_THREADS`, else the
//! physical cores. A loop started inside another runs on its thread alone (the pool's call
//! lock is not re-entrant).

use candle_core::utils::barrier_pool;
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

thread_local! {
    /// Whether this thread is running a task of a parallel loop.
    static IN_LOOP: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread as inside a loop until dropped (also when a task panics).
struct InLoop(bool);

impl InLoop {
    fn enter() -> InLoop {
        InLoop(IN_LOOP.replace(true))
    }
}

impl Drop for InLoop {
    fn drop(&mut self) {
        IN_LOOP.set(self.0);
    }
}

/// Threads a parallel loop runs on: the caller and the pool's workers.
pub fn count() -> usize {
    barrier_pool().n_workers() + 1
}

/// Runs `f(i)` for every `i < n`, the indices handed out one at a time to the pool's threads
/// as they finish the previous one. On the calling thread alone where `n` is 1 (a loop inside
/// that task may still be parallel), the pool has no workers, or the caller is itself a task
/// of a parallel loop.
pub fn for_each(n: usize, f: impl Fn(usize) + Sync) {
    if n <= 1 || count() == 1 || IN_LOOP.get() {
        (0..n).for_each(f);
        return;
    }
    let next = AtomicUsize::new(0);
    barrier_pool().execute(|_| {
        let _inside = InLoop::enter();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= n {
                break;
            }
            f(i);
        }
    });
}

/// `[f(0), …, f(n − 1)]`, computed as [`for_each`] runs them.
pub fn map<R: Send + Sync>(n: usize, f: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let slots: Vec<OnceLock<R>> = (0..n).map(|_| OnceLock::new()).collect();
    for_each(n, |i| {
        let _ = slots[i].set(f(i));
    });
    slots
        .into_iter()
        .map(|s| s.into_inner().expect("threads::map: every index runs once"))
        .collect()
}

/// Runs `f(i, chunk)` for the chunks of `data` of `size` elements (the last may be shorter),
/// as [`for_each`] runs indices.
pub fn for_each_chunk<T: Send>(data: &mut [T], size: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let chunks: Vec<Mutex<&mut [T]>> = data.chunks_mut(size.max(1)).map(Mutex::new).collect();
    for_each(chunks.len(), |i| {
        let mut chunk = chunks[i].lock().unwrap_or_else(|e| e.into_inner());
        f(i, &mut chunk)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_index_runs_once_and_results_keep_their_order() {
        let hits: Vec<AtomicUsize> = (0..1000).map(|_| AtomicUsize::new(0)).collect();
        for_each(hits.len(), |i| {
            hits[i].fetch_add(1, Ordering::Relaxed);
        });
        assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        assert_eq!(
            map(100, |i| i * i),
            (0..100).map(|i| i * i).collect::<Vec<_>>()
        );
    }

    #[test]
    fn chunks_cover_the_slice_and_nested_loops_do_not_deadlock() {
        let mut v = vec![0usize; 1003];
        for_each_chunk(&mut v, 10, |i, c| {
            // A loop inside a task runs on that task's thread.
            let inner = map(c.len(), |j| i * 10 + j);
            c.copy_from_slice(&inner);
        });
        assert_eq!(v, (0..1003).collect::<Vec<_>>());
    }
}
