//! How the run hands memory back to the system. The binary's allocator is mimalloc (`main.rs`);
//! polars frees and reallocates large buffers from one query to the next, so when freed pages go
//! back to the kernel matters for both speed and peak memory (docs/performance.md).

mod frame_file;
pub mod limit;

/// `mi_option_purge_delay` in mimalloc.h (v2 and v3); the -sys crate does not name it.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed pages for 30 s instead of mimalloc's 10 ms: within a stage, nearly every polars
/// query otherwise faulted in fresh zeroed (huge) pages. Measured on the 10M-event JSON-lines
/// export with `perf stat`: 121,559 page faults and 8.4 s sys at 1 s delay, 2,130 and 3.8 s sys at
/// 30 s, wall 17.9 -> 14.6 s. An explicit `MIMALLOC_PURGE_DELAY` in the environment wins (0 trades
/// about 20 % time for about 20 % less peak memory).
pub fn keep_freed_pages() {
    set_purge_delay(30_000);
}

/// How many milliseconds mimalloc keeps freed pages now.
pub(crate) fn purge_delay() -> std::os::raw::c_long {
    // SAFETY: reads one allocator option by its documented index.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}

/// Sets how many milliseconds mimalloc keeps freed pages, unless the operator set
/// `MIMALLOC_PURGE_DELAY` in the environment: their own setting wins.
fn set_purge_delay(ms: std::os::raw::c_long) {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one allocator option by its documented index; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) }
}

/// Events from which freed pages go back to the kernel at once (mimalloc's purge delay 0), from the
/// moment ingest has read them (see below). Keeping them for 30 s ([`keep_freed_pages`]) pays at
/// 8.7M events (468 MB of columns then): three alternated runs of the JSON-lines export, 5.9–7.3 s
/// and 1.18–1.25 GB peak against 7.3–8.0 s and 0.96–0.97 GB returning them at once. At 85.9M events
/// (4.6 GB of columns then) it no longer does: the detectors' working sets are freed by one
/// thread's heap and wanted by another's, so kept pages add to the peak instead of serving it. One
/// run each: 10.15 GB and 1:51 keeping them, 9.57 GB and 1:46 at 1 s, 9.15 GB and 1:42 at once; set
/// after ingest, in two alternated pairs, 9.34–9.36 against 10.22 GB for 8–9 s more system time.
/// Nothing was measured in between. Kept 30 s at 85.9M events (`MIMALLOC_PURGE_DELAY=30000`), a
/// night added to that state took 25.1–26.1 s instead of 35.4–39.8 s, at 3.67–3.69 GB instead of
/// 3.31–3.38 GB (two alternated pairs): an operator who prefers that trade sets it. Kept 25 ms from
/// the detectors on (forty-seventh session), the same night took 23.2 s instead of 25.3–26.5 s for
/// 20 MB more, but 100.09M events without a state peaked at 3.00 GB instead of 2.76 GB in its
/// detectors, past the 3 GB: not kept.
///
/// The bound was 1 GiB of the frame's columns until the instants went beside the frame
/// (fifty-fifth session): the frame no longer says how big a run is, so the bound counts events,
/// where 1 GiB then stood (a packed run's chunks at about 14 bytes an event).
///
/// It applies from the moment ingest has read that many events (the cold sink counts them), not
/// only once ingest is done: pages kept 30 s while the rest of the export was read stayed
/// resident after ingest, and no collection gave them back (probes: `mi_collect` on rayon's and
/// polars' threads, `mi_heap_collect` on the frame's heap). Resident after ingest, one run each
/// (fifty-sixth session): 100.09M events 1.41 → 0.69 GB; 300.15M 2.82 → 1.75 GB, ingest 243 →
/// 292 s there.
const RETURN_AT_ONCE_FROM: u64 = 64_000_000;

/// Sets how long freed pages are kept for the rest of the run, from the events it has read so
/// far or in all: see [`RETURN_AT_ONCE_FROM`]. The cold sink calls it with `u64::MAX` once the token
/// ids outgrow what they may hold in memory, which only a big run's do
/// (`normalize::ColdSink::big_run`). Pages kept 30 s are the
/// last 30 s of reading's frees, so they likely weigh more the faster the export is read (two
/// runs, not a proof): two runs of one binary over the 300.15M export peaked in ingest at 2.30
/// GB in 438 s (beside builds) and 2.54 GB in 327 s; returning them from there on, 2.28 GB in
/// 319 s. An explicit `MIMALLOC_PURGE_DELAY` wins, as at start.
pub fn fit_to_run(events: u64) {
    if events >= RETURN_AT_ONCE_FROM {
        set_purge_delay(0);
    }
}

/// Freed pages kept this many milliseconds in the stages of a big run that do not set its peak.
const BRIEFLY_MS: std::os::raw::c_long = 25;

/// For the stages after the detectors (ranking with the shown rows' endpoints, the charts), which
/// do not set a big run's peak: a big frame's freed pages are kept [`BRIEFLY_MS`] instead of
/// going back at once, so that each run of cold columns read reuses the pages the run before it
/// freed instead of faulting in fresh zeroed ones. A night added to the 85.9M-event state, six
/// alternated runs: rank 1.58–1.68 → 1.09–1.47 s, charts 2.50–2.77 → 1.97–2.16 s, the run
/// 24.8–25.1 → 23.3–23.8 s, peak 2.70–2.74 GB both; 100.09M events without a state, two
/// alternated pairs: the charts 3.17–3.29 → 2.78–3.31 s, peak 2.75–2.76 GB both (set in the
/// detectors). Kept through the night's records stage as well, the detectors after it took
/// 1 s longer (three pairs), so that stage keeps returning them at once; kept through the
/// detectors (forty-seventh session) the 100.09M peak passed 3 GB.
pub fn off_peak() {
    // A delay of 0 is what `fit_to_run` sets for a big run (an operator's own setting is
    // never overridden: `set_purge_delay`).
    if purge_delay() == 0 {
        set_purge_delay(BRIEFLY_MS);
    }
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

/// [`release_freed`] on every thread of rayon's pool as well as this one: mimalloc collects
/// only the calling thread's free lists, and a stage run on the pool left its pages in the
/// workers' heaps.
pub fn release_freed_everywhere() {
    rayon::broadcast(|_| release_freed());
    release_freed();
}

/// Starts the process's resident-memory peak (`VmHWM`) over from what is resident now, so the
/// next `--timings` line's peak is that step's own (Linux; elsewhere, or without the right to
/// write it, the peak stays the run's).
pub fn reset_peak() {
    let _one = RESETTING
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let _ = reset_peak_alone();
}

/// Resets one at a time: each reads the kernel's peak and clears it as one step, so that no
/// reset clears a peak another read before it grew and has not recorded (tests running side by
/// side saw that).
static RESETTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// [`reset_peak`], [`RESETTING`] held; the peak it read and kept (kB), where the kernel says.
fn reset_peak_alone() -> Option<u64> {
    let peak = kb(&status("VmHWM:"));
    if let Some(peak) = peak {
        PEAK_BEFORE_RESETS.fetch_max(peak, std::sync::atomic::Ordering::Relaxed);
    }
    // "5" is the kernel's code for resetting the peak (Documentation/filesystems/proc.rst).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    peak
}

/// The run's resident peak (kB) as it stood before each [`reset_peak`], so that the run's own
/// peak outlives `--timings-per-detector`'s resets.
static PEAK_BEFORE_RESETS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Bytes the run may hold on top of what is resident now without raising its peak so far: what a
/// stage may spend for speed and leave the run's peak where it was. `None` where the kernel does
/// not say (not Linux).
pub fn headroom() -> Option<usize> {
    let [peak, rss] = statuses(["VmHWM:", "VmRSS:"]);
    let (peak, rss) = (kb(&peak)?, kb(&rss)?);
    let saved = PEAK_BEFORE_RESETS.load(std::sync::atomic::Ordering::Relaxed);
    Some(headroom_of(peak.max(saved), rss))
}

/// [`headroom`] from a peak and what is resident, both in kB.
fn headroom_of(peak_kb: u64, rss_kb: u64) -> usize {
    usize::try_from(peak_kb.saturating_sub(rss_kb).saturating_mul(1024)).unwrap_or(usize::MAX)
}

/// kB in a [`status`] value ("123 kB").
fn kb(value: &str) -> Option<u64> {
    value.strip_suffix(" kB")?.trim().parse().ok()
}

/// A line of `/proc/self/status` (`VmRSS:`, `VmHWM:`), as the kernel writes it ("123 kB"), or
/// empty where there is none.
pub fn status(field: &str) -> String {
    let [value] = statuses([field]);
    value
}

/// [`status`] of several fields, from one reading of the file: values of the same instant.
pub fn statuses<const N: usize>(fields: [&str; N]) -> [String; N] {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    fields.map(|field| {
        (status.lines())
            .find_map(|l| l.strip_prefix(field))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    })
}

/// The mimalloc heap the event frame's columns are made in while ingest reads: see
/// [`keep_frame_apart`].
struct FrameHeap(*mut libmimalloc_sys::mi_heap_t);
// SAFETY: mimalloc v3 heaps are first-class: any thread may allocate from one, and any thread
// may free what it allocated (mimalloc.h, "Heaps: first-class").
unsafe impl Send for FrameHeap {}
unsafe impl Sync for FrameHeap {}

static FRAME_HEAP: std::sync::OnceLock<FrameHeap> = std::sync::OnceLock::new();

/// Makes the columns ingest keeps for the whole run ([`frame_vec`]) in pages of their own. A
/// reader's chunk and everything parsing it freed (text, staged values, the columns that wait on
/// disk) otherwise shared pages, and a page holding one live chunk could not be reused whole.
/// The 85.9M-event export's peak, at the end of reading, fell 4.07–4.12 → 3.71–3.75 GB
/// (`docs/performance.md`, thirty-fifth session); with the long-lived columns of every chunk here,
/// the cold ones included, it fell only to 3.86 GB, since those are freed once written to disk.
///
/// # Safety
///
/// The process's global allocator must be mimalloc: vectors made in this heap are freed through
/// it.
pub unsafe fn keep_frame_apart() {
    // SAFETY: creates a heap, kept for the life of the process; a null one is never used.
    FRAME_HEAP.get_or_init(|| FrameHeap(unsafe { libmimalloc_sys::mi_heap_new() }));
}

/// From now on the frame's columns are made in files under `dir` (the run's scratch) and held
/// in memory only while a pass reads them: a big run's ([`frame_file`]). Does nothing unless
/// [`keep_frame_apart`] made the frame's heap (the binary, whose allocator is mimalloc).
pub fn frame_on_disk(dir: &std::path::Path) {
    if FRAME_HEAP.get().is_some_and(|h| !h.0.is_null()) {
        // SAFETY: the frame's heap exists only when the global allocator is mimalloc.
        unsafe { frame_file::start(dir) };
    }
}

/// Bytes of files the frame's columns were given ([`frame_on_disk`]), and why no more could
/// be made, if so.
pub fn frame_files() -> (usize, Option<String>) {
    frame_file::made()
}

/// `values` in a vector made in the frame's files ([`frame_on_disk`]) or heap, or an ordinary
/// one without either (a library caller, a test, a heap mimalloc could not make, a failed
/// allocation).
pub fn frame_vec<T: Copy>(values: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    let Some(heap) = FRAME_HEAP.get().filter(|h| !h.0.is_null()) else {
        return values.collect();
    };
    let Some(bytes) = block_bytes::<T>(values.len()) else {
        return values.collect();
    };
    let align = std::mem::align_of::<T>();
    let p = match frame_file::alloc(bytes, align) {
        p if !p.is_null() => p,
        // SAFETY: a live heap (it exists only when the global allocator is mimalloc) and a
        // non-zero size.
        _ => unsafe { libmimalloc_sys::mi_heap_malloc_aligned(heap.0, bytes, align).cast() },
    };
    // SAFETY: null or a block of `bytes` from mimalloc, which the global allocator frees.
    unsafe { fill(p.cast(), values) }
}

/// Bytes of a block of `n` values of `T`: none when empty (mimalloc is not asked for zero
/// bytes) or past the address space.
fn block_bytes<T>(n: usize) -> Option<usize> {
    n.checked_mul(std::mem::size_of::<T>()).filter(|&b| b > 0)
}

/// `values` written into `p`, a block for all of them, as a vector; collected into an ordinary
/// one when `p` is null.
///
/// # Safety
///
/// `p` is null or a block of mimalloc's of `values.len()` elements of `T`, aligned for `T`, and
/// the vector is only freed or grown through mimalloc.
unsafe fn fill<T: Copy>(p: *mut T, values: impl ExactSizeIterator<Item = T>) -> Vec<T> {
    if p.is_null() {
        return values.collect();
    }
    let n = values.len();
    let mut filled = 0;
    for v in values.take(n) {
        // SAFETY: `filled` < n, within the allocation.
        unsafe { p.add(filled).write(v) };
        filled += 1;
    }
    // SAFETY: `n` elements of `T` allocated by mimalloc, aligned for `T`, the first `filled`
    // written; mimalloc frees a block of any of its heaps (the caller's promise that it does).
    unsafe { Vec::from_raw_parts(p, filled, n) }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Held by the tests that set the allocator's purge delay and check it: it is the
    /// process's.
    pub(crate) static PURGE_DELAY: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// The kernel's "123 kB" is read in kB, the headroom is the peak less what is resident (none
    /// past it), and the run's peak outlives a reset: after one, the headroom is still at least
    /// what the peak before it leaves.
    #[test]
    fn headroom_is_the_run_s_peak_less_what_is_resident() {
        assert_eq!(kb("2707308 kB"), Some(2_707_308));
        assert_eq!(kb("12 MB"), None);
        assert_eq!(kb(""), None);
        assert_eq!(headroom_of(2_707_308, 2_280_912), 426_396 * 1024);
        assert_eq!(headroom_of(100, 200), 0);
        // The peak the reset itself read: two readings of `VmHWM` a moment apart can go down
        // while other tests' threads free memory (the kernel sums each thread's resident count
        // lazily), and one taken before the reset failed this test once in CI.
        let one = RESETTING
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(before) = reset_peak_alone() else {
            return; // not Linux
        };
        drop(one);
        assert!(PEAK_BEFORE_RESETS.load(std::sync::atomic::Ordering::Relaxed) >= before);
        assert!(headroom().is_some());
    }

    /// A 10M export's run keeps freed pages as set at start, after the detectors too; a run
    /// past the bound returns them at once, and keeps them briefly after the detectors (unless
    /// the operator set the delay, which the test run does not).
    #[test]
    fn only_a_large_run_returns_freed_pages_at_once() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        let _delay = PURGE_DELAY.lock().unwrap_or_else(|p| p.into_inner());
        keep_freed_pages();
        fit_to_run(8_700_000);
        assert_eq!(purge_delay(), 30_000);
        off_peak();
        assert_eq!(purge_delay(), 30_000, "a small run keeps its pages as long");
        fit_to_run(RETURN_AT_ONCE_FROM);
        assert_eq!(purge_delay(), 0);
        off_peak();
        assert_eq!(purge_delay(), BRIEFLY_MS);
        keep_freed_pages();
    }

    /// `values` in a vector allocated exactly from `heap`.
    ///
    /// # Safety
    ///
    /// `heap` is a live mimalloc heap, and the vector is only freed or grown through mimalloc.
    unsafe fn vec_in<T: Copy>(
        heap: *mut libmimalloc_sys::mi_heap_t,
        values: impl ExactSizeIterator<Item = T>,
    ) -> Vec<T> {
        let Some(bytes) = block_bytes::<T>(values.len()) else {
            return values.collect();
        };
        // SAFETY: a live heap (the caller's promise) and a non-zero size.
        let p = unsafe {
            libmimalloc_sys::mi_heap_malloc_aligned(heap, bytes, std::mem::align_of::<T>())
        };
        // SAFETY: null or a block of `bytes` from mimalloc (the caller frees it through mimalloc).
        unsafe { fill(p.cast(), values) }
    }

    // mimalloc v3's names; the -sys crate declares v2's.
    unsafe extern "C" {
        fn mi_heap_contains(
            heap: *const libmimalloc_sys::mi_heap_t,
            p: *const std::ffi::c_void,
        ) -> bool;
        fn mi_heap_main() -> *mut libmimalloc_sys::mi_heap_t;
    }

    /// A vector made in a heap holds the values in that heap's pages; without a frame heap (a
    /// test's allocator is the system's) `frame_vec` makes an ordinary one.
    #[test]
    fn vectors_are_made_in_the_heap_asked_for() {
        let values: Vec<u64> = (0..100_000).map(|i| i * 7).collect();
        assert_eq!(frame_vec(values.iter().copied()), values);
        // SAFETY: a heap of its own; the vector is freed by mimalloc below, never dropped.
        unsafe {
            let heap = libmimalloc_sys::mi_heap_new();
            let made = std::mem::ManuallyDrop::new(vec_in(heap, values.iter().copied()));
            assert_eq!(made.as_slice(), values.as_slice());
            assert_eq!(made.capacity(), values.len());
            let p = made.as_ptr().cast::<std::ffi::c_void>();
            assert!(mi_heap_contains(heap, p));
            assert!(!mi_heap_contains(mi_heap_main(), p));
            libmimalloc_sys::mi_free(p.cast_mut());
            let empty = vec_in::<u32>(heap, std::iter::empty());
            assert!(empty.is_empty());
        }
    }
}
