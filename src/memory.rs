//! How the run hands memory back to the system. The binary's allocator is mimalloc (`main.rs`);
//! polars frees and reallocates large buffers from one query to the next, so when freed pages go
//! back to the kernel matters for both speed and peak memory (docs/performance.md).

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); the -sys crate does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages for 30 s instead of mimalloc's 10 ms: within a stage, nearly every polars
/// query otherwise faulted in fresh zeroed (huge) pages. Measured on the 10M-event JSON-lines
/// export with `perf stat`: 121,559 page faults and 8.4 s sys at 1 s delay, 2,130 and 3.8 s sys at
/// 30 s, wall 17.9 -> 14.6 s. An explicit `MIMALLOC_PURGE_DELAY` in the environment wins (0 trades
/// about 20 % time for about 20 % less peak memory).
pub fn keep_freed_pages() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return; // an operator's own setting wins
    }
    // SAFETY: sets one allocator option by its documented index; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 30_000) }
}

/// Asks the kernel for ordinary 4 KiB pages instead of transparent huge pages. mimalloc marks
/// its segments for huge pages, and a huge page is zeroed in full on first touch however little
/// of it is used: on the 10M-event CSV export kernel page clearing was a quarter of ingest in
/// `perf`. Without them, three alternated runs each: sys time 2.4–3.5 → 1.1–2.2 s, wall
/// 8.1–8.9 → 7.7–8.4 s, peak 1.41–1.45 → 1.33–1.34 GB. `MIMALLOC_ALLOW_THP` in the environment
/// wins, as mimalloc's own switch for the same thing.
pub fn prefer_small_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_some() {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE only sets a flag of this process; a failure (an old kernel)
    // leaves the default, which is correct, only slower.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Returns the pages freed so far to the kernel. Called between stages: pages kept within a
/// stage are reused by its next query, but what one detector leaves behind fits the next one's
/// buffers poorly and only raised the peak (10M-event CSV export: 1.88 -> 1.80 GB, no time
/// measurably lost). Harmless when mimalloc is not the global allocator (tests, benches).
pub fn release_freed() {
    // SAFETY: asks mimalloc to collect its own free lists; it owns everything it touches.
    unsafe { libmimalloc_sys::mi_collect(true) }
}

/// Starts the process's resident-memory peak (`VmHWM`) over from what is resident now, so the
/// next `--timings` line's peak is that step's own (Linux; elsewhere, or without the right to
/// write it, the peak stays the run's).
pub fn reset_peak() {
    // "5" is the kernel's code for resetting the peak (Documentation/filesystems/proc.rst).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// A line of `/proc/self/status` (`VmRSS:`, `VmHWM:`), as the kernel writes it ("123 kB"), or
/// empty where there is none.
pub fn status(field: &str) -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim().to_string())
        .unwrap_or_default()
}
