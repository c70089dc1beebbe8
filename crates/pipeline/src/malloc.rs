//! The C allocator's setting that keeps the memory bound (README, Memory).
//!
//! glibc's malloc serves a request of at least its *mmap threshold* with a mapping of
//! its own, returned to the system on `free`; smaller ones come from its arenas (up
//! to 8 per core, shared out among the threads), which keep what is freed for reuse.
//! The threshold starts at 128 KiB, and by default glibc raises it to the size of
//! every mapped block freed, up to 32 MiB. A replay frees multi-MiB buffers all the
//! time (Arrow builders and batches, Parquet files being written, spill frames), so
//! the threshold soon sits at several MiB, and from then on such buffers come from
//! the arenas of five threads, where freed ones stay resident and fragment. Fixed at
//! [`MMAP_THRESHOLD`], the 10 GB replay of the Memory section peaked at 241 and 243
//! MiB instead of 260–267 MiB (release build, two threads), at the cost of some page
//! faults (system time 9–10 s against 3.9 s, in 115–140 s of CPU time); the one-core
//! replay of the benchmark corpus ran as fast (three alternating pairs, the wall
//! times overlapping) and peaked 7–12 MiB lower.

/// Requests of at least this many bytes get a mapping of their own. At 512 KiB the
/// 10 GB replay peaked at 231 MiB with more system time (12.7 s), at 2 MiB at 248
/// MiB, at 4 MiB at 257 MiB.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], which also stops glibc from
/// raising it. Call it first thing in `main`, before any thread starts. Returns
/// whether the setting took: false where the C library is not glibc (musl, other
/// systems), which have no such threshold to pin.
pub fn pin_mmap_threshold() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = libc::c_int::try_from(MMAP_THRESHOLD).expect("fits a C int");
        // SAFETY: mallopt only changes a parameter of glibc's allocator; it takes
        // the allocator's lock and is safe to call at any time.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_threshold() {
        assert!(super::pin_mmap_threshold());
    }
}
