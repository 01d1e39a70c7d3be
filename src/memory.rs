//! Keeping freed memory for reuse: the training loop allocates and frees the same large
//! buffers (activations, gradients, convolution columns) every step.
//!
//! glibc serves blocks over 32 MiB (and, by its dynamic threshold, smaller ones) with `mmap`,
//! returns them to the kernel on `free`, and trims the top of its heap; the next step's
//! allocation of the same size then page-faults its way through fresh zeroed pages. Measured
//! on `tempered_dcgan32` (2 cores): a third of the time went to the kernel zeroing pages.
//! [`keep_freed_memory`] makes glibc serve every block from its heap and never give the heap
//! back, so the steady state allocates no new pages. The peak resident size can be higher
//! (freed blocks are kept, fragments included).
//!
//! One arena for all threads: glibc gives each thread that allocates (the workers of
//! candle's pool) its own arena of 64 MiB sub-heaps and unmaps a sub-heap as soon as it is
//! empty, whatever the trim threshold, so those threads' buffers were page-faulted in again
//! every step (measured on `roth_dcgan32`: 880k minor faults for 12 steps, 670k with one
//! arena, for the same 2.1 GB peak; the big buffers are few, so the shared lock costs nothing
//! measurable).

/// Tells glibc's allocator to keep freed memory (no `mmap` blocks, no trimming, one arena). Call once at
/// start-up, before the first large allocation; `GANSCRIPT_MALLOC=system` leaves glibc's
/// defaults. A no-op on other C libraries.
pub fn keep_freed_memory() {
    if std::env::var("GANSCRIPT_MALLOC").is_ok_and(|v| v == "system") {
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads
    // allocate (start-up), as glibc recommends.
    unsafe {
        libc::mallopt(libc::M_MMAP_MAX, 0);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
