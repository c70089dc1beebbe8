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

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests of at least this many bytes get a mapping of their own. At 512 KiB the
/// 10 GB replay peaked at 231 MiB with more system time (12.7 s), at 2 MiB at 248
/// MiB, at 4 MiB at 257 MiB.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Fixes glibc's mmap threshold at [`MMAP_THRESHOLD`], which also stops glibc from
/// raising it, and notes the resident size before any work as the base of
/// [`trim_above`]. Call it first thing in `main`, before any thread starts. Returns
/// whether the setting took: false where the C library is not glibc (musl, other
/// systems), which have no such threshold to pin.
pub fn pin_mmap_threshold() -> bool {
    base_resident_bytes();
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

/// This process's resident set size in bytes (`VmRSS`), where the OS reports it.
pub fn resident_bytes() -> Option<u64> {
    status_bytes("VmRSS:")
}

/// A size field of `/proc/self/status` (Linux; given in kB), in bytes; `None` elsewhere
/// or where it cannot be read.
pub(crate) fn status_bytes(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The resident size before the work: code, libraries and runtime, which no buffer
/// setting changes (~16 MiB for `replay_bench`, ~31 MiB for the CLI, whose code is
/// larger). Read at [`pin_mmap_threshold`], or else at the first [`trim_above`].
fn base_resident_bytes() -> u64 {
    static BASE: OnceLock<u64> = OnceLock::new();
    *BASE.get_or_init(|| resident_bytes().unwrap_or(0))
}

static TRIMS: AtomicU64 = AtomicU64::new(0);

/// How many times [`trim_above`] has given memory back, in this process.
pub fn trims() -> u64 {
    TRIMS.load(Ordering::Relaxed)
}

/// Gives the memory freed into glibc's arenas back to the system (`malloc_trim`) when
/// the process is resident for more than `budget` bytes above its base. Call it right
/// after freeing a large amount (a partition written). Returns whether it trimmed.
///
/// Freed memory stays in the arenas for reuse, but reuse is imperfect: a long replay's
/// peak grows with its length while its live heap does not (README, Memory). Trimming
/// after every partition lowered the peaks most but cost 20–25 % more CPU time in page
/// faults; above a budget, it is paid only by the inputs that need it.
pub fn trim_above(budget: u64) -> bool {
    let limit = base_resident_bytes().saturating_add(budget);
    if resident_bytes().is_none_or(|r| r <= limit) {
        return false;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes the allocator's locks and only returns free pages.
        unsafe { libc::malloc_trim(0) };
        TRIMS.fetch_add(1, Ordering::Relaxed);
        true
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// At most this much of [`trim_budget`] above the buffer's share of the bound.
pub const TRIM_HEADROOM: u64 = 48 << 20;

/// The budget of [`trim_above`] under a memory bound of `max_buffer_bytes`: the part
/// of the bound that the buffer scales, 3 × `max_buffer_bytes` (README, Memory: peak
/// RSS under 110 MiB + 3 × `--max-buffer-bytes`), and one buffer more, at most
/// [`TRIM_HEADROOM`]; so with a base under 62 MiB trimming starts under the bound
/// whatever the buffer (the worker's 256 MiB: at 816 MiB above the base, under its
/// bound of 878 MiB). At the default 48 MiB, with the CLI's base of ~31 MiB, trimming
/// starts at ~223 MiB. On the 10 GB replay of the README (profiling build, two
/// threads, one run each): a budget of 192 MiB (the default's) made 241 trims, peak
/// 208 MiB, system time 18.8 s; none: 224 MiB, 13.9 s; 168 MiB: 894 trims, 199 MiB,
/// 32.1 s and a sixth more wall time.
pub fn trim_budget(max_buffer_bytes: usize) -> u64 {
    let buffer = max_buffer_bytes as u64;
    buffer
        .saturating_mul(3)
        .saturating_add(buffer.min(TRIM_HEADROOM))
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_threshold() {
        assert!(super::pin_mmap_threshold());
    }

    #[test]
    fn the_budget_keeps_under_the_bound() {
        const MIB: u64 = 1 << 20;
        assert_eq!(super::trim_budget(48 << 20), 192 * MIB);
        assert_eq!(super::trim_budget(1 << 20), 4 * MIB);
        for buffer in [1, 8, 48, 64, 256, 1024, 4096] {
            let budget = super::trim_budget((buffer << 20) as usize);
            let bound = 110 * MIB + 3 * buffer * MIB;
            assert!(budget > 3 * buffer * MIB, "{buffer} MiB");
            assert!(budget + 62 * MIB <= bound, "{buffer} MiB");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn resident_size_is_read() {
        let r = super::resident_bytes().expect("VmRSS in /proc/self/status");
        // A test binary is resident for more than a MiB and less than the machine.
        assert!(r > 1 << 20 && r < 1 << 40, "{r}");
    }

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn trims_only_above_the_budget() {
        let base = super::base_resident_bytes();
        assert!(!super::trim_above(u64::MAX));
        // Resident for 32 MiB more, then a budget that leaves the process 16 MiB over
        // it (other tests of this binary run beside this one: hence the margin).
        let held = std::hint::black_box(vec![1u8; 32 << 20]);
        let above_base = super::resident_bytes().unwrap().saturating_sub(base);
        let before = super::trims();
        assert!(super::trim_above(above_base.saturating_sub(16 << 20)));
        assert!(super::trims() > before);
        assert!(!super::trim_above(above_base + (1 << 30)));
        drop(std::hint::black_box(held));
    }
}
