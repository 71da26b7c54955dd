//! The frame's columns in files of the run's scratch once the run is big, instead of in memory.
//!
//! After the names left polars' dictionary (sixty-third session), what a big run still held in
//! memory in proportion to its events was the frame itself: its key, event type and outcome, about
//! 2 bytes an event that every stage stands on (638 MB at 300.15M events, 212 MB at 100.09M).
//! Reading them from disk a run of chunks at a time, as the cold columns are, means changing
//! every pass that asks polars about the frame. Here the frame stays the same polars frame, and
//! only where its buffers live changes: from the moment the run is known to be big
//! ([`crate::normalize::ColdSink`] spilling), [`crate::memory::frame_vec`] makes them in a
//! mimalloc heap whose only arena is a file in the run's scratch, mapped shared. A pager thread
//! tells the kernel every [`PAGED_OUT_EVERY`] that the process no longer needs the pages it
//! mapped there (`MADV_DONTNEED`): for a shared file mapping that drops them from the process,
//! not the data, which stays in the file and the page cache, and the next read maps them again.
//! The frame then costs the process what the passes of the last tenth of a second touched of it,
//! and the kernel may write it out and evict it as it does any file's pages, as it does the cold
//! columns' Parquet files. Measured against the sixty-third session's binary (`docs/scale.md`,
//! sixty-fourth session), reports identical: the 300.15M-event export's peak 1.85–1.88 →
//! 1.61–1.62 GB (now ingest's; every later stage 0.4–0.6 GB lower, resident after ingest 1.00 →
//! 0.42 GB), in 717.6 s against 818.5. The 100.09M export's stayed 1.27–1.29 GB with this alone:
//! it was set in the run's first seconds, before the run was known big, which
//! `normalize::tokens::HELD_AT_MOST` then shortened (0.94–0.97 GB).
//!
//! Each file's space is reserved before it is mapped (`fallocate`), so a full disk is met as a
//! refusal here, the frame then made in memory as before, never as a fault while a page of the
//! mapping is written. Files are made one at a time as the heaps before them fill.

use std::ffi::c_void;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use libmimalloc_sys::mi_heap_t;
use memmap2::{MmapMut, MmapOptions, UncheckedAdvice};

/// Bytes of one file: an arena of mimalloc's must be at least 32 MiB, and a frame's column of
/// one compacted chunk is a few MiB.
const FILE_BYTES: usize = 256 << 20;

/// Files at most: 16 GiB of frame.
const FILES_AT_MOST: usize = 64;

/// How often the mapped pages are let go.
const PAGED_OUT_EVERY: Duration = Duration::from_millis(100);

// mimalloc v3's arena calls (mimalloc.h); the -sys crate declares them only with a feature
// that would rebuild it.
unsafe extern "C" {
    fn mi_manage_os_memory_ex(
        start: *mut c_void,
        size: usize,
        is_committed: bool,
        is_pinned: bool,
        is_zero: bool,
        numa_node: std::os::raw::c_int,
        exclusive: bool,
        arena_id: *mut *mut c_void,
    ) -> bool;
    fn mi_heap_new_in_arena(arena_id: *mut c_void) -> *mut mi_heap_t;
}

/// The files, where they are made, and the heap of the newest. Never dropped: mimalloc keeps
/// an arena for the life of the process and visits it when it collects, so its mapping must
/// outlive everything ([`FrameFiles::under`] leaks it).
struct FrameFiles {
    dir: std::path::PathBuf,
    /// The newest file's heap; null once no more files can be made.
    heap: AtomicPtr<mi_heap_t>,
    maps: Mutex<Maps>,
}

#[derive(Default)]
struct Maps {
    held: Vec<MmapMut>,
    /// Why the last file could not be made; no file is tried after it.
    refused: Option<String>,
}

/// The run's, once it is known big.
static FILES: OnceLock<&'static FrameFiles> = OnceLock::new();

/// From now on the frame's columns are made in files under `dir`, and their pages let go of
/// every [`PAGED_OUT_EVERY`]. Once per process; later calls do nothing.
///
/// # Safety
///
/// The process's global allocator must be mimalloc: vectors made in these heaps are freed
/// through it.
pub(super) unsafe fn start(dir: &Path) {
    let mut made = false;
    FILES.get_or_init(|| {
        made = true;
        FrameFiles::under(dir)
    });
    if made {
        let _ = std::thread::Builder::new()
            .name("frame-pager".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(PAGED_OUT_EVERY);
                    if let Some(files) = FILES.get() {
                        files.page_out();
                    }
                }
            });
    }
}

/// `bytes` aligned to `align` in the run's frame files, or null: the run's frame is not in
/// files, the block is too big for one, or no more could be made.
pub(super) fn alloc(bytes: usize, align: usize) -> *mut u8 {
    FILES
        .get()
        .map_or(std::ptr::null_mut(), |files| files.alloc(bytes, align))
}

/// Bytes of the run's frame files, and why no more could be made, if so.
pub(super) fn made() -> (usize, Option<String>) {
    FILES.get().map_or((0, None), |files| files.made())
}

impl FrameFiles {
    /// Files under `dir`, the first made now (or refused, then none is), kept for the life of
    /// the process.
    fn under(dir: &Path) -> &'static FrameFiles {
        let files = Box::leak(Box::new(FrameFiles {
            dir: dir.to_path_buf(),
            heap: AtomicPtr::new(std::ptr::null_mut()),
            maps: Mutex::default(),
        }));
        files.grow(std::ptr::null_mut());
        files
    }

    /// `bytes` aligned to `align` in the newest file, or in a new one when it is full; null
    /// when the block is too big for a file or no more files can be made.
    fn alloc(&self, bytes: usize, align: usize) -> *mut u8 {
        if bytes > FILE_BYTES / 4 {
            return std::ptr::null_mut();
        }
        let mut heap = self.heap.load(Ordering::Acquire);
        // Twice at most: in the newest file, then in one made for it.
        for _ in 0..2 {
            if heap.is_null() {
                return std::ptr::null_mut();
            }
            // SAFETY: a live heap in a mapping that is never unmapped, and a non-zero size
            // (`frame_vec` asks for none smaller than a byte).
            let p = unsafe { libmimalloc_sys::mi_heap_malloc_aligned(heap, bytes, align) };
            if !p.is_null() {
                return p.cast();
            }
            heap = self.grow(heap);
        }
        std::ptr::null_mut()
    }

    /// Lets go of the pages of the files the process has mapped; their data stays in the files.
    fn page_out(&self) {
        let maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        for map in &maps.held {
            // SAFETY: a shared mapping of a file: `MADV_DONTNEED` drops the process's pages,
            // and the next access reads them back from the file (madvise(2)), so no thread
            // reading or writing the frame meanwhile loses or sees anything else.
            let _ = unsafe { map.unchecked_advise(UncheckedAdvice::DontNeed) };
        }
    }

    /// Bytes of files made, and why no more could be, if so.
    fn made(&self) -> (usize, Option<String>) {
        let maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        (maps.held.len() * FILE_BYTES, maps.refused.clone())
    }

    /// The heap of a new file, unless a file newer than the one of `full` was made meanwhile
    /// (its heap is returned) or no more can be (null).
    fn grow(&self, full: *mut mi_heap_t) -> *mut mi_heap_t {
        let mut maps = self.maps.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.heap.load(Ordering::Acquire);
        if now != full || maps.refused.is_some() {
            return now;
        }
        let heap = match self.map(&mut maps) {
            Ok(heap) => heap,
            Err(why) => {
                maps.refused = Some(why);
                std::ptr::null_mut()
            }
        };
        self.heap.store(heap, Ordering::Release);
        heap
    }

    /// A new file, reserved, mapped and handed to mimalloc as a heap's only arena.
    fn map(&self, maps: &mut Maps) -> Result<*mut mi_heap_t, String> {
        if maps.held.len() >= FILES_AT_MOST {
            return Err(format!("{FILES_AT_MOST} files made"));
        }
        let say = |what: &str, e: std::io::Error| format!("{what} in {}: {e}", self.dir.display());
        let file = tempfile::tempfile_in(&self.dir).map_err(|e| say("making a file", e))?;
        reserve(&file, FILE_BYTES).map_err(|e| say("reserving a file's space", e))?;
        // SAFETY: the file is unnamed and this process's alone; nothing else resizes it.
        let mut map = unsafe { MmapOptions::new().len(FILE_BYTES).map_mut(&file) }
            .map_err(|e| say("mapping a file", e))?;
        let mut arena: *mut c_void = std::ptr::null_mut();
        // SAFETY: a mapping of `FILE_BYTES`, readable and writable, of a new file (zeros), kept
        // for the life of the process (`maps.held` is never emptied); mimalloc aligns its start.
        let managed = unsafe {
            mi_manage_os_memory_ex(
                map.as_mut_ptr().cast(),
                FILE_BYTES,
                true,
                false,
                true,
                -1,
                true,
                &mut arena,
            )
        };
        if !managed {
            return Err("mimalloc refused the mapping as an arena".into());
        }
        maps.held.push(map);
        // SAFETY: an arena mimalloc now manages.
        let heap = unsafe { mi_heap_new_in_arena(arena) };
        match heap.is_null() {
            true => Err("mimalloc made no heap in the file".into()),
            false => Ok(heap),
        }
    }
}

/// Reserves `bytes` of disk for `file`, so that writing a page of its mapping never meets a full
/// disk (which would be a `SIGBUS`, not an error).
#[cfg(target_os = "linux")]
fn reserve(file: &std::fs::File, bytes: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let len = libc::off_t::try_from(bytes).map_err(std::io::Error::other)?;
    // SAFETY: an open file descriptor; mode 0 allocates and extends the file.
    match unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, len) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Elsewhere no space is reserved, so no file is mapped: the frame stays in memory.
#[cfg(not(target_os = "linux"))]
fn reserve(_: &std::fs::File, _: usize) -> std::io::Result<()> {
    Err(std::io::ErrorKind::Unsupported.into())
}

#[cfg(test)]
mod tests {
    use super::{FILE_BYTES, FrameFiles};

    /// A heap in a file keeps what was written to it when its pages are let go (made with a
    /// private mapping instead, the test never ends: mimalloc's own records in the file are
    /// lost with the pages), blocks past a file's space go to new files, and a block too big
    /// for a file is refused (the caller makes it elsewhere).
    #[test]
    fn blocks_in_a_file_survive_their_pages_being_let_go() {
        let dir = tempfile::tempdir().expect("scratch");
        let files = FrameFiles::under(dir.path());
        let n = 3 << 20;
        let p = files.alloc(n * 4, 4).cast::<u32>();
        assert!(!p.is_null(), "{:?}", files.made());
        // SAFETY: `n` u32 allocated above.
        let block = unsafe { std::slice::from_raw_parts_mut(p, n) };
        let value = |i: usize| (i as u32).wrapping_mul(2_654_435_761);
        for (i, v) in block.iter_mut().enumerate() {
            *v = value(i);
        }
        files.page_out();
        assert!(block.iter().enumerate().all(|(i, &v)| v == value(i)));
        assert!(files.alloc(FILE_BYTES, 8).is_null());
        let more: Vec<*mut u8> = (0..40).map(|_| files.alloc(8 << 20, 8)).collect();
        assert!(more.iter().all(|p| !p.is_null()));
        assert_eq!(files.made(), (2 * FILE_BYTES, None));
        // SAFETY: blocks mimalloc allocated above, each freed once.
        unsafe {
            libmimalloc_sys::mi_free(p.cast());
            more.into_iter()
                .for_each(|p| libmimalloc_sys::mi_free(p.cast()));
        }
    }

    /// A folder where no file can be made gives no memory and says why, so the frame is made
    /// in memory as before.
    #[test]
    fn a_folder_that_refuses_files_gives_no_memory_and_says_why() {
        let dir = tempfile::tempdir().expect("scratch");
        let files = FrameFiles::under(&dir.path().join("gone"));
        assert!(files.alloc(1 << 20, 8).is_null());
        let (bytes, why) = files.made();
        assert_eq!(bytes, 0);
        assert!(why.is_some_and(|w| w.contains("making a file")));
    }
}
