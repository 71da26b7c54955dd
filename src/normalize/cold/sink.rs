//! The ingest side of the cold columns: each chunk's taken out of the frame as read, held or
//! written to the run's scratch, and every source address listed on the way.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use polars::prelude::*;
use polars_io::parquet::write::{ParquetCompression, ParquetWriter, StatisticsOptions};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::{COLUMNS, ColdColumns, Part, Stored};
use crate::error::{Error, FrameContext, Result};
use crate::normalize::schema::col;

/// Takes the cold columns out of each chunk ingest reads. Shared by the reader threads.
pub struct ColdSink {
    dir: PathBuf,
    spill_from: u64,
    rows: AtomicU64,
    /// Set when the run showed it is big before `spill_from` events ([`ColdSink::big_run`]).
    early: AtomicBool,
    /// Set by the chunk that writes the chunks held until the run went past its bound.
    held_written: AtomicBool,
    next: AtomicUsize,
    stored: Mutex<Vec<(usize, Stored)>>,
    /// Every source address code the chunks held ([`ColdColumns::addresses`]).
    addresses: Mutex<RoaringBitmap>,
}

/// One chunk handed to the [`ColdSink`]: which, how many rows, and what to add to its line
/// numbers (a later part of a split file).
#[derive(Debug, Clone, Copy)]
pub struct ColdChunk {
    id: usize,
    rows: usize,
    line_offset: u64,
    /// Its first and last instant, so that the frame's span of time is known without reading
    /// the instants back ([`ColdColumns::ts_range`]).
    instants: Option<(i64, i64)>,
}

impl ColdChunk {
    pub fn shift_lines(&mut self, offset: u64) {
        self.line_offset += offset;
    }
}

impl ColdSink {
    /// Chunks are written under `dir` (which must exist) once `spill_from` events were read.
    pub fn new(dir: &Path, spill_from: u64) -> ColdSink {
        ColdSink {
            dir: dir.to_path_buf(),
            spill_from,
            rows: AtomicU64::new(0),
            early: AtomicBool::new(false),
            held_written: AtomicBool::new(false),
            next: AtomicUsize::new(0),
            stored: Mutex::default(),
            addresses: Mutex::default(),
        }
    }

    /// Where what only evidence reads waits once a run holds `events` events: this sink's folder
    /// from `spill_from` on ([`crate::normalize::Tokens::to_disk`] follows the columns there).
    pub fn past(&self, events: u64) -> Option<&Path> {
        (events >= self.spill_from).then_some(self.dir.as_path())
    }

    /// The folder chunks are written to.
    pub fn folder(&self) -> &Path {
        &self.dir
    }

    /// This sink's folder once the chunks taken so far have passed the bound, or the run
    /// showed it is big before (see [`crate::normalize::Tokens::spilling_with`]).
    pub fn spilling(&self) -> Option<&Path> {
        match self.early.load(Ordering::Acquire) {
            true => Some(self.dir.as_path()),
            false => self.past(self.rows.load(Ordering::Relaxed)),
        }
    }

    /// The run is known to be big before `spill_from` events: chunks go to disk from now on, the
    /// held ones with the next chunk taken, and freed pages go back to the kernel at once
    /// ([`crate::memory::fit_to_run`], as [`ColdSink::take`] does past its events' bound). Called
    /// when the token ids outgrow what they may hold in memory
    /// ([`crate::normalize::Tokens::spilling_with`]), which only a big run's do. The 300.15M
    /// export's did at 6M events; held until its 16M-event bound, the cold columns of the events
    /// between (about 44 bytes each, 0.44 GB) stood at ingest's peak beside polars' dictionary of
    /// names (then; `frame::Dictionary` since), which the generator fills early there (8.2M names
    /// by then, 3.5M in all at 100.09M).
    /// The 100.09M export's ids pass it early too (that run's peak: 2.067 → 1.555 GB, with the
    /// pages); the 10.12M benchmark's never do (1.77M ids, 86 MB).
    pub fn big_run(&self) {
        self.early.store(true, Ordering::Release);
        crate::memory::fit_to_run(u64::MAX);
    }

    /// Whether chunks go to disk once `seen` events were taken.
    fn spills(&self, seen: u64) -> bool {
        seen > self.spill_from || self.early.load(Ordering::Acquire)
    }

    /// Takes the cold columns out of `frame`, one chunk as read.
    pub fn take(&self, frame: &mut DataFrame) -> Result<ColdChunk> {
        let cold = frame.select(COLUMNS).stage("taking cold columns")?;
        for name in COLUMNS {
            frame.drop_in_place(name).stage("taking cold columns")?;
        }
        let addresses = distinct_codes(&cold, col::SOURCE_IP)?;
        let instants = crate::frame::ts_range(&cold)?;
        *self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner) |= addresses;
        let rows = cold.height();
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let seen = self.rows.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        // A big run's freed pages go back at once from the moment it is known to be one.
        crate::memory::fit_to_run(seen);
        let spilling = self.spills(seen);
        let stored = match spilling {
            true => Stored::Spilled(self.write(id, cold)?),
            false => Stored::Held(cold),
        };
        self.lock().push((id, stored));
        if spilling && !self.held_written.swap(true, Ordering::AcqRel) {
            // A big run's: the frame's own columns go to files beside these from now on.
            crate::memory::frame_on_disk(&self.dir);
            self.spill_held()?;
        }
        Ok(ColdChunk {
            id,
            rows,
            line_offset: 0,
            instants,
        })
    }

    /// Writes the chunks held so far, once the run is past `spill_from`: held to the end of
    /// ingest, their ~450 MB stood at its peak (the 85.9M-event export: 4.35 → 4.07 GB, one run
    /// each). A chunk handed over while this runs stays held, and [`ColdSink::finish`] writes it.
    fn spill_held(&self) -> Result<()> {
        let mut held = Vec::new();
        {
            let mut stored = self.lock();
            for (id, s) in std::mem::take(&mut *stored) {
                match s {
                    Stored::Held(df) => held.push((id, df)),
                    other => stored.push((id, other)),
                }
            }
        }
        for (id, df) in held {
            let path = self.write(id, df)?;
            self.lock().push((id, Stored::Spilled(path)));
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(usize, Stored)>> {
        self.stored.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, id: usize, mut cold: DataFrame) -> Result<PathBuf> {
        let path = self.dir.join(format!("cold-{id}.parquet"));
        let physical: Vec<Column> = cold
            .columns()
            .iter()
            .map(|c| c.to_physical_repr())
            .collect();
        cold = DataFrame::new(cold.height(), physical).stage("spilling cold columns")?;
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        // On the reader's own thread: pages encoded on polars' pool and freed here stayed
        // resident until the end of ingest (1.1 → 2.0 GB at 8.7M events, all spilled).
        ParquetWriter::new(file)
            .set_parallel(false)
            .with_statistics(StatisticsOptions::empty())
            .with_compression(ParquetCompression::Uncompressed)
            .finish(&mut cold)
            .map_err(|e| spill_error(&path, e))?;
        Ok(path)
    }

    /// The cold columns of the frame whose chunks were handed over as `order` (each chunk once,
    /// in the frame's row order). Once anything went to disk, the held chunks follow.
    pub fn finish(&self, order: &[ColdChunk]) -> Result<ColdColumns> {
        let mut stored: Vec<Option<Stored>> = vec![None; self.next.load(Ordering::Relaxed)];
        for (id, s) in std::mem::take(&mut *self.lock()) {
            stored[id] = Some(s);
        }
        let spilled = self.spills(self.rows.load(Ordering::Relaxed));
        let parts: Vec<Part> = order
            .par_iter()
            .map(|chunk| {
                let stored = match stored[chunk.id].clone() {
                    Some(Stored::Held(df)) if spilled => Stored::Spilled(self.write(chunk.id, df)?),
                    Some(s) => s,
                    None => {
                        return Err(Error::Internal(format!("cold chunk {} lost", chunk.id)));
                    }
                };
                Ok(Part {
                    stored,
                    rows: chunk.rows,
                    line_offset: chunk.line_offset,
                    instants: chunk.instants,
                })
            })
            .collect::<Result<_>>()?;
        let mut cold = ColdColumns::of(parts);
        let addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cold.addresses = Some(addresses.clone());
        Ok(cold)
    }
}

/// The distinct codes of name column `name` of `df` (nulls left out).
fn distinct_codes(df: &DataFrame, name: &str) -> Result<RoaringBitmap> {
    let mut codes = crate::frame::codes(df, name)?;
    codes.retain(|&c| c != crate::frame::NULL);
    codes.sort_unstable();
    codes.dedup();
    // Sorted and distinct, so never refused.
    Ok(RoaringBitmap::from_sorted_iter(codes).unwrap_or_default())
}

fn spill_error(path: &Path, e: PolarsError) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}
