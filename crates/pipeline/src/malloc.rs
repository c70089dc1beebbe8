//! The allocators, and the settings that keep the memory bound (README, Memory).
//!
//! Rust's allocations go to jemalloc: [`Allocator`] is the global allocator of the
//! CLI (and of `replay_bench`, so that it measures the same). glibc's malloc serves
//! only what C libraries allocate for themselves (zstd's contexts).
//!
//! Against glibc's malloc (profiling builds of `replay_bench`, alternating, the same
//! hour, jemalloc with its default arenas; [`JEMALLOC_CONF`] has the two-arena
//! figures; README, Memory): the benchmark corpus on one core 0.94–0.97 of the time,
//! peak RSS +8 MiB (~120 MiB); on two threads 0.95, +35–40 MiB (~180 MiB); the 2 GiB
//! file 0.88 and 0.92, peak 157–171 MiB against 198–200; the 10 GB corpus 0.89, peak
//! 209 against 210 MiB with 139 trims instead of 233. Same files, byte for byte.
//! glibc's allocator (13–15 % of a one-core replay's samples, a third of it growing
//! builders by `realloc`, which copies between arena chunks) keeps freed memory in
//! per-thread arenas, where a replay's mix of multi-MiB buffers (Arrow builders and
//! batches, Parquet files being written, spill frames) and small ones fragments it.
//!
//! glibc still gets the threshold: requests of at least its *mmap threshold* get a
//! mapping of their own, returned to the system on `free`. It starts at 128 KiB, and
//! by default glibc raises it to the size of every mapped block freed, up to 32 MiB,
//! so that large blocks freed later stay resident in its arenas. When glibc served
//! every allocation, fixing it at [`MMAP_THRESHOLD`] lowered the 10 GB replay's peak
//! from 260–267 to 241–243 MiB.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Requests to glibc of at least this many bytes get a mapping of their own. (With
/// glibc serving every allocation, at 512 KiB the 10 GB replay peaked at 231 MiB with
/// more system time, at 2 MiB at 248 MiB, at 4 MiB at 257 MiB.)
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// The global allocator of trailhouse's binaries: jemalloc (see the module's doc).
/// A binary sets it, with [`JEMALLOC_CONF`], by [`crate::use_jemalloc!`].
#[cfg(not(target_env = "msvc"))]
pub use tikv_jemallocator::Jemalloc as Allocator;

/// jemalloc's settings in trailhouse's binaries: two arenas, instead of four per CPU.
/// The S3 paths run encodes on whichever of the async runtime's threads is free (six
/// here), and with an arena each their freed pages stayed resident in six places:
/// the 2 GiB object from S3 peaked at 238–263 MiB with the defaults (glibc: 245–251
/// the same hour), 220–221 MiB with two arenas, 228–234 MiB with one per CPU
/// (`percpu_arena`), which took the same file from a folder from 175–184 to 207–208
/// MiB, where two arenas kept it at 170–173 (release CLI, two threads; README,
/// Memory). Measured on a 2-core machine only: where many cores allocate at once,
/// more arenas may be faster. `_RJEM_MALLOC_CONF` in the environment (`narenas:8`,
/// say) is read after this and overrides it.
pub const JEMALLOC_CONF: &std::ffi::CStr = c"narenas:2";

/// Makes jemalloc ([`Allocator`], with [`JEMALLOC_CONF`]) the global allocator of
/// the binary that calls it, at its root. The settings must be a symbol of the
/// binary's own (`malloc_conf`, which jemalloc reads when it starts, before `main`):
/// in a library the linker may leave it out, and jemalloc would silently use its
/// defaults.
#[macro_export]
macro_rules! use_jemalloc {
    () => {
        #[cfg(not(target_env = "msvc"))]
        #[global_allocator]
        static ALLOC: $crate::malloc::Allocator = $crate::malloc::Allocator;

        /// jemalloc's `malloc_conf` (tikv-jemalloc-sys prefixes its symbols).
        #[cfg(not(target_env = "msvc"))]
        #[unsafe(export_name = "_rjem_malloc_conf")]
        #[used]
        static JEMALLOC_MALLOC_CONF: $crate::malloc::ConfPtr =
            $crate::malloc::ConfPtr($crate::malloc::JEMALLOC_CONF.as_ptr());
    };
}

/// A C string pointer that may sit in a `static` ([`use_jemalloc!`]'s `malloc_conf`:
/// `const char *`, never written).
#[repr(transparent)]
pub struct ConfPtr(pub *const std::ffi::c_char);

// SAFETY: it points to a constant, NUL-terminated string that nothing writes.
unsafe impl Sync for ConfPtr {}

/// jemalloc's setting of the number of arenas threads are shared out among
/// (`opt.narenas`; it makes one more for huge allocations), or `None` if it does not
/// say.
#[cfg(not(target_env = "msvc"))]
pub fn jemalloc_arenas() -> Option<u32> {
    let mut value: std::ffi::c_uint = 0;
    let mut len = std::mem::size_of::<std::ffi::c_uint>();
    // SAFETY: `value` has room for the `unsigned` this setting returns, `len` says so,
    // and nothing is written to jemalloc (new value null, length 0).
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            c"opt.narenas".as_ptr(),
            (&raw mut value).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    (rc == 0 && len == std::mem::size_of::<std::ffi::c_uint>()).then_some(value)
}

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

/// Gives the memory freed into the allocators back to the system when the process
/// is resident for more than `budget` bytes above its base: jemalloc's unused dirty
/// pages ([`purge_jemalloc`]), the zstd compression contexts kept for reuse (at most
/// 8 MiB, `vendor/zstd/PATCHED.md`) and glibc's free pages (`malloc_trim`). Call it
/// right after freeing a large amount (a partition written). Returns whether it
/// trimmed.
///
/// Freed memory stays in the allocators for reuse (jemalloc returns it by itself
/// after about ten seconds unused), but reuse is imperfect: a long replay's peak
/// grows with its length while its live heap does not (README, Memory). Trimming
/// after every partition lowers the peaks most but costs CPU time in page faults;
/// above a budget, it is paid only by the inputs that need it.
pub fn trim_above(budget: u64) -> bool {
    let limit = base_resident_bytes().saturating_add(budget);
    if resident_bytes().is_none_or(|r| r <= limit) {
        return false;
    }
    let purged = purge_jemalloc();
    // Allocated by zstd with glibc's malloc, so freed before its trim.
    zstd::bulk::free_pooled_contexts();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    let trimmed = {
        // SAFETY: malloc_trim takes the allocator's locks and only returns free pages.
        unsafe { libc::malloc_trim(0) };
        true
    };
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let trimmed = false;
    if purged || trimmed {
        TRIMS.fetch_add(1, Ordering::Relaxed);
    }
    purged || trimmed
}

/// Returns the unused dirty pages of all of jemalloc's arenas to the system
/// (`arena.<MALLCTL_ARENAS_ALL>.purge`). Returns whether jemalloc accepted the call.
pub fn purge_jemalloc() -> bool {
    #[cfg(not(target_env = "msvc"))]
    {
        /// jemalloc's `MALLCTL_ARENAS_ALL`: the arena index that means every arena.
        const NAME: &std::ffi::CStr = c"arena.4096.purge";
        use std::ptr::null_mut;
        // SAFETY: the name is NUL-terminated, and this control reads and writes
        // nothing (all four pointers null, length 0).
        unsafe {
            tikv_jemalloc_sys::mallctl(NAME.as_ptr(), null_mut(), null_mut(), null_mut(), 0) == 0
        }
    }
    #[cfg(target_env = "msvc")]
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
/// threads, one run each, with glibc's malloc): a budget of 192 MiB (the default's)
/// made 241 trims, peak 208 MiB, system time 18.8 s; none: 224 MiB, 13.9 s; 168 MiB:
/// 894 trims, 199 MiB, 32.1 s and a sixth more wall time.
pub fn trim_budget(max_buffer_bytes: usize) -> u64 {
    let buffer = max_buffer_bytes as u64;
    buffer
        .saturating_mul(3)
        .saturating_add(buffer.min(TRIM_HEADROOM))
}

#[cfg(test)]
mod tests {
    /// Held by the tests that read the resident size around a change they make, so
    /// that one's allocating or purging does not land between another's readings.
    static RESIDENT: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn glibc_takes_the_threshold() {
        assert!(super::pin_mmap_threshold());
    }

    #[test]
    #[cfg(all(target_os = "linux", not(target_env = "msvc")))]
    fn purging_gives_jemallocs_freed_pages_back() {
        use std::alloc::{GlobalAlloc, Layout};
        let _one = RESIDENT.lock().unwrap_or_else(|e| e.into_inner());
        // 64 MiB in blocks of 64 KiB, written, then freed: jemalloc keeps them as
        // dirty pages (for ~10 s) until purged. Other tests of this binary run
        // beside this one: hence the margin.
        let layout = Layout::from_size_align(64 << 10, 64).unwrap();
        let blocks: Vec<*mut u8> = (0..1024)
            .map(|_| {
                // SAFETY: a valid non-zero layout; the block is written within it and
                // freed below with the same layout.
                unsafe {
                    let p = super::Allocator.alloc(layout);
                    assert!(!p.is_null());
                    p.write_bytes(1, layout.size());
                    p
                }
            })
            .collect();
        for p in blocks {
            // SAFETY: allocated above with this allocator and layout, freed once.
            unsafe { super::Allocator.dealloc(p, layout) };
        }
        let before = super::resident_bytes().unwrap();
        assert!(super::purge_jemalloc());
        let after = super::resident_bytes().unwrap();
        assert!(
            after + (32 << 20) < before,
            "resident {before} bytes before the purge, {after} after"
        );
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
        let _one = RESIDENT.lock().unwrap_or_else(|e| e.into_inner());
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
