//! One big compressed file on every core. A gzip or zstd stream cannot be entered in the middle
//! (member and frame boundaries are not indexed, and most exports are one member anyway), but
//! decompressing is several times faster than parsing: so this thread decompresses the file
//! into parts of whole lines, and the parts are parsed, as [`super::split`]'s parts of a plain
//! file are, by whichever core is free; the caller joins them in order exactly as it joins a
//! plain file's parts (tested against the whole reading, gzip, multi-member gzip and zstd).
//! Measured in `docs/performance.md` (thirteenth session).
//!
//! Memory stays bounded: across all the files of a run read this way, at most as many
//! handed-out parts wait or are parsed at once as there are threads (at most eight), each a
//! quarter of [`ReadOptions::part_bytes`]; beyond that a decompressing thread parses its part
//! itself instead of reading ahead. So each thread holds about three parts at most (one filling,
//! one it parses, one handed out): 16 MiB parts, ~50 MiB a thread. Parts of 64 MiB, as plain
//! files use, read the 2.47 GB `.gz` no faster (ingest 3.76–3.92 s either way) with an ingest
//! peak of 1.34 GB instead of 1.15.
//!
//! A stream that fails part-way, or a part's worth of bytes without a line break, stops the
//! cutting: the file is then read whole, which reports either exactly as a run without cutting
//! would (at the cost of decompressing again what was read).

use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::readers::FileResult;
use super::split::{Chunk, Part, StreamPlan};
use super::{ReadOptions, decompress};

/// Most parts waiting or being parsed at once, whatever the core count: decompression, on one
/// thread, feeds only a few parsers, and each waiting part holds its text.
const MAX_IN_FLIGHT: usize = 8;

/// Reads the compressed `path` in parts, each handed to `read_part`; the results in part order,
/// or nothing when the stream could not be cut cleanly (the caller reads it whole). `in_flight`
/// counts the parts handed out and not yet parsed, shared by every file read this way at once.
pub fn read(
    path: &Path,
    plan: &StreamPlan,
    opts: &ReadOptions,
    counter: &decompress::Counter,
    in_flight: &AtomicUsize,
    read_part: &(dyn Fn(Part) -> FileResult + Sync),
) -> Option<Vec<FileResult>> {
    let (_, mut reader) = decompress::open_counted(path, counter).ok()?;
    // A quarter of a plain file's part: what waits in memory is decompressed text.
    let part_bytes = usize::try_from(opts.part_bytes / 4)
        .unwrap_or(usize::MAX)
        .max(1);
    let limit = rayon::current_num_threads().clamp(1, MAX_IN_FLIGHT);
    let done: Mutex<Vec<(u32, FileResult)>> = Mutex::default();
    let keep = |number: u32, result: FileResult| {
        done.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((number, result));
    };
    let mut carry: Vec<u8> = Vec::new();
    let mut cut = true;
    rayon::scope(|s| {
        for number in 0u32.. {
            let mut buf = std::mem::take(&mut carry);
            let want = part_bytes.saturating_sub(buf.len());
            // Sized once: left to grow, the buffer doubles past the part (up to twice its size).
            buf.reserve_exact(want);
            let Ok(got) = (&mut reader).take(want as u64).read_to_end(&mut buf) else {
                cut = false;
                return;
            };
            let end = got < want;
            if end && buf.is_empty() && number > 0 {
                return;
            }
            if !end {
                // The part ends after its last line break; the rest starts the next part.
                let Some(last) = memchr::memrchr(b'\n', &buf) else {
                    cut = false;
                    return;
                };
                carry = buf.split_off(last + 1);
            }
            let part = Part {
                number,
                start: 0,
                end: buf.len() as u64,
                format: plan.format,
                header: plan.header.clone().filter(|_| number > 0),
                data: Some(Chunk(Arc::new(buf))),
            };
            if in_flight.load(Ordering::Acquire) >= limit {
                keep(number, read_part(part));
            } else {
                in_flight.fetch_add(1, Ordering::AcqRel);
                let keep = &keep;
                s.spawn(move |_| {
                    keep(number, read_part(part));
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            }
            if end {
                return;
            }
        }
    });
    if !cut {
        return None;
    }
    let mut parts = done.into_inner().unwrap_or_else(PoisonError::into_inner);
    parts.sort_by_key(|(number, _)| *number);
    Some(parts.into_iter().map(|(_, result)| result).collect())
}
