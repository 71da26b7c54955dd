//! Token ids: the one string column kept out of the run's dictionary of names. An export holds
//! about one distinct token per six events (1.5M in a 10M-event export), each new to every reader
//! thread that meets it, and placing them in polars' concurrent dictionary was three quarters of
//! its inserts (10M-event CSV export: ingest 2.7 s with them there, 2.34 s with this table).
//! Detectors only compare tokens, so the column holds plain
//! `u32` codes into this table, shared by the reader threads of one run; the few tokens a report
//! names are looked up here by code. On big runs the ids themselves wait on disk: from the
//! moment the run is past `--spill-from-events` ([`Tokens::spilling_with`]), placed by
//! fingerprint ([`fingerprints`]), or once the codes are handed out ([`Tokens::to_disk`]).

mod disk;
mod fingerprints;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use polars::prelude::*;

use super::ColdSink;
use super::dictionary::{FileDict, LOOKAHEAD, NULL, Narrow};
use crate::error::{Error, Result};
use disk::OnDisk;
use fingerprints::{Fingerprints, Key, Print};

/// Bytes a run's token ids may hold in memory, placed by text, before they go to disk and are
/// placed by fingerprint, even before the run is past `--spill-from-events`. Early events can be
/// dense in new tokens: when the 100.09M and 300.15M exports reached the 16M-event bound their
/// tables held 9.8M ids in 587 MB, a quarter of what ingest then held at its peak (2.26 and 2.82
/// GB, probes). The 10.12M benchmark's 1.5M ids stay well under it, placed by text. Ids past it
/// tell the sink the run is big: the cold columns go to disk as well, and freed pages back to
/// the kernel at once ([`ColdSink::big_run`]). It was 256 MiB until the sixty-fourth session;
/// once the frame's columns went to files (`memory::frame_file`), the first seconds before the
/// 100.09M export's ids passed it (about 6M events, pages freed by parsing kept 30 s meanwhile)
/// set that run's peak: 1.29 → **0.97 GB** at 128 MiB, ingest 75.0 → 79.2 s (one run each,
/// alternated). The 10.12M benchmark's 86 MB of ids are still under it.
const HELD_AT_MOST: usize = 128 << 20;

/// The token ids of one run, each with its code.
pub struct Tokens {
    table: Mutex<Table>,
    /// Whose bound moves the ids to disk while they are placed (see [`Tokens::spilling_with`]).
    sink: Option<Arc<ColdSink>>,
    /// Bytes the ids may hold in memory, with a sink, before they go to its folder whatever
    /// the events read ([`HELD_AT_MOST`]).
    held_at_most: usize,
    /// Set once ids are placed by fingerprint: readers then take fingerprints, not hashes,
    /// before they wait for the table.
    printing: AtomicBool,
    key: Key,
}

impl Default for Tokens {
    fn default() -> Self {
        Tokens {
            table: Mutex::default(),
            sink: None,
            held_at_most: HELD_AT_MOST,
            printing: AtomicBool::new(false),
            key: Key::random(),
        }
    }
}

#[derive(Default)]
struct Table {
    held: Held,
    /// Set when the sink's folder refused the ids: they stay in memory for the rest of ingest
    /// (and [`Tokens::to_disk`] says why).
    refused: bool,
    /// Why an id could not be read from disk, kept for [`Tokens::check`]: the id reads as none
    /// where it was asked for, and the run must not report on it.
    failed: Option<Error>,
    /// Bytes held when the table was sealed: what placing took.
    sealed_bytes: usize,
}

/// Where the ids are.
enum Held {
    /// In memory, placed by comparing texts.
    Memory(FileDict<Narrow>),
    /// On disk, read by code; placing an id fingerprints them first.
    Disk(OnDisk),
    /// On disk, placed by fingerprint.
    Prints(Fingerprints),
}

impl Default for Held {
    fn default() -> Self {
        Held::Memory(FileDict::default())
    }
}

/// Hashes taken before the table is locked, of the kind its ids are placed by.
enum Hashes {
    Texts(Vec<u64>),
    Prints(Vec<Print>),
}

impl Table {
    fn len(&self) -> usize {
        match &self.held {
            Held::Memory(dict) => dict.len(),
            Held::Disk(disk) => disk.count,
            Held::Prints(prints) => prints.len(),
        }
    }

    fn bytes(&self) -> usize {
        match &self.held {
            Held::Memory(dict) => dict.bytes(),
            Held::Disk(disk) => disk.bytes_held(),
            Held::Prints(prints) => prints.bytes(),
        }
    }

    /// The id of `code`, handed to `each` (an unknown code as empty); `buf` holds an id read
    /// from disk.
    fn with<T>(&mut self, code: u32, buf: &mut Vec<u8>, each: impl FnOnce(Option<&str>) -> T) -> T {
        let disk = match &mut self.held {
            Held::Memory(dict) => return each(dict.get(code)),
            Held::Disk(disk) => disk,
            Held::Prints(prints) => &mut prints.disk,
        };
        match disk.read(code, buf) {
            Ok(id) => each(id),
            Err(e) => {
                self.failed.get_or_insert(Error::io(&disk.dir, e));
                each(None)
            }
        }
    }

    /// Ids on disk become a table placed by fingerprint, before an id is placed.
    fn placing(&mut self, key: Key) -> PolarsResult<&mut Held> {
        if matches!(self.held, Held::Disk(_)) {
            let Held::Disk(disk) = std::mem::take(&mut self.held) else {
                unreachable!("matched just above")
            };
            match Fingerprints::of(disk, key) {
                Ok(prints) => self.held = Held::Prints(prints),
                Err((disk, e)) => {
                    let dir = disk.dir.display().to_string();
                    self.held = Held::Disk(disk);
                    polars_bail!(ComputeError: "the token ids written to {dir} could not be read back: {e}");
                }
            }
        }
        Ok(&mut self.held)
    }

    /// Ids held in memory go to `dir`, placed by fingerprint from now on. Stays in memory when
    /// `dir` refuses them.
    fn spill(&mut self, dir: &Path, key: Key) -> bool {
        let Held::Memory(dict) = &self.held else {
            return false;
        };
        let ids = (0..dict.len() as u32).map(|code| dict.get(code).unwrap_or_default());
        let moved = Fingerprints::written(dir, key, ids);
        match moved {
            Ok(prints) => {
                self.held = Held::Prints(prints);
                true
            }
            Err(_) => {
                self.refused = true;
                false
            }
        }
    }
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while placing leaves at worst a value without a code; codes already handed
        // out stay valid.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An empty table whose ids go to `sink`'s folder as soon as the run is past its bound, or
    /// they pass [`HELD_AT_MOST`] bytes, and are placed by fingerprint from then on: at 85.9M
    /// events the ids, where each ends and their slots were 688 MB at the end of reading, where
    /// ingest peaks. Below both (a 10M-event export) nothing changes.
    pub fn spilling_with(sink: Arc<ColdSink>) -> Tokens {
        Tokens {
            sink: Some(sink),
            ..Tokens::default()
        }
    }

    /// A table of the distinct ids `ids`, coded 0, 1, 2… in order (see [`FileDict::sealed_from`]).
    pub fn listed<'v>(ids: impl Iterator<Item = &'v str>) -> Tokens {
        let tokens = Tokens::default();
        tokens.lock().held = Held::Memory(FileDict::sealed_from(ids));
        tokens
    }

    /// Calls `each` with the id of every code of `codes` in turn (an unknown code as empty),
    /// under one lock.
    pub fn for_codes(&self, codes: &[u32], mut each: impl FnMut(&str)) {
        let mut table = self.lock();
        let table = &mut *table;
        let disk = match &mut table.held {
            Held::Memory(dict) => {
                codes
                    .iter()
                    .for_each(|&c| each(dict.get(c).unwrap_or_default()));
                return;
            }
            Held::Disk(disk) => disk,
            Held::Prints(prints) => &mut prints.disk,
        };
        let mut named = 0;
        let read = disk.read_each(codes, |id| {
            each(id.unwrap_or_default());
            named += 1;
        });
        if let Err(e) = read {
            table.failed.get_or_insert(Error::io(&disk.dir, e));
            // As [`Table::with`] does for a code it cannot read: named empty.
            codes[named..].iter().for_each(|_| each(""));
        }
    }

    /// The codes of `values`, added if new. Hashes are taken before the lock and the slots of
    /// later values fetched while earlier ones are placed, so a reader thread holds the lock
    /// for a few nanoseconds a value.
    pub fn place<'v>(
        &self,
        values: impl Iterator<Item = &'v str> + Clone,
    ) -> PolarsResult<Vec<u32>> {
        let hashes = |printing: bool| match printing {
            true => Hashes::Prints(values.clone().map(|v| self.key.print(v)).collect()),
            false => Hashes::Texts(values.clone().map(FileDict::hash_of).collect()),
        };
        let mut taken = hashes(self.printing.load(Ordering::Acquire));
        let mut guard = self.lock();
        if let Some(sink) = self.sink.as_deref()
            && !guard.refused
        {
            let past = sink.spilling();
            let outgrown = past.is_none() && guard.bytes() >= self.held_at_most;
            if let Some(dir) = past.or_else(|| outgrown.then(|| sink.folder()))
                && guard.spill(dir, self.key)
                && outgrown
            {
                // Ids this many are a big run's.
                sink.big_run();
            }
        }
        let table = guard.placing(self.key)?;
        let printed = matches!(table, Held::Prints(_));
        if printed != matches!(taken, Hashes::Prints(_)) {
            // The table changed since the hashes were taken: once, when its ids went to disk.
            self.printing.store(printed, Ordering::Release);
            taken = hashes(printed);
        }
        let mut out = Vec::with_capacity(match &taken {
            Hashes::Texts(h) => h.len(),
            Hashes::Prints(p) => p.len(),
        });
        match (table, taken) {
            (Held::Memory(dict), Hashes::Texts(hashes)) => {
                for (i, v) in values.enumerate() {
                    if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                        dict.prefetch(ahead);
                    }
                    out.push(dict.code(hashes[i], v)?);
                }
            }
            (Held::Prints(table), Hashes::Prints(prints)) => {
                for (i, v) in values.enumerate() {
                    if let Some(&ahead) = prints.get(i + LOOKAHEAD) {
                        table.prefetch(ahead);
                    }
                    out.push(table.code(prints[i], v)?);
                }
            }
            _ => polars_bail!(ComputeError: "token ids hashed for another table"),
        }
        Ok(out)
    }

    /// The token id of `code` ([`NULL`] and unknown codes have none; nor has an id that could
    /// not be read from disk, see [`Tokens::check`]).
    pub fn text(&self, code: u32) -> Option<String> {
        (code != NULL)
            .then(|| {
                self.lock()
                    .with(code, &mut Vec::new(), |id| id.map(str::to_string))
            })
            .flatten()
    }

    /// Frees what only adding ids needs (see [`FileDict::seal`]); called when reading ends
    /// (`ingest::read_events`, a state's read-back).
    pub fn seal(&self) {
        let mut table = self.lock();
        table.sealed_bytes = table.sealed_bytes.max(table.bytes());
        match std::mem::take(&mut table.held) {
            Held::Memory(mut dict) => {
                dict.seal();
                table.held = Held::Memory(dict);
            }
            Held::Prints(prints) => table.held = Held::Disk(prints.into_disk()),
            disk => table.held = disk,
        }
    }

    /// Moves the ids to files without a name in `dir`, read from there by code: once ingest
    /// ends the table is only read for the few ids a report names, and at 85.9M events its
    /// 15.2M ids were 391 MB of what every later stage stood on. Placing an id afterwards
    /// fingerprints them first. On error the ids stay here.
    pub fn to_disk(&self, dir: &Path) -> Result<()> {
        let mut table = self.lock();
        let dict = match &mut table.held {
            Held::Memory(dict) if dict.len() > 0 => dict,
            _ => return Ok(()),
        };
        let (arena, ends) = dict.take_strings();
        match OnDisk::write(dir, &arena, &ends) {
            Ok(disk) => {
                table.held = Held::Disk(disk);
                Ok(())
            }
            Err(e) => {
                dict.put_strings(arena, ends);
                Err(e)
            }
        }
    }

    /// Fails with the first error met reading an id from disk (which then read as none), so
    /// that no report names a token it could not read.
    pub fn check(&self) -> Result<()> {
        self.lock().failed.take().map_or(Ok(()), Err)
    }

    /// Bytes the table holds in memory, for `--timings`.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
    }

    /// The most bytes the table held while ids were placed (until [`Tokens::seal`]), for
    /// `--timings`.
    pub fn bytes_while_placed(&self) -> usize {
        let table = self.lock();
        table.sealed_bytes.max(table.bytes())
    }

    /// Distinct token ids held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reader threads placing overlapping token ids at once get one code per id, and every code
    /// reads back as its id.
    #[test]
    fn threads_share_codes() {
        let tokens = Tokens::default();
        let ids: Vec<String> = (0..20_000).map(|i| format!("tk-{i:016x}")).collect();
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(|| tokens.place(ids[..15_000].iter().map(String::as_str)));
            let b = s.spawn(|| tokens.place(ids[5_000..].iter().rev().map(String::as_str)));
            (a.join().expect("thread"), b.join().expect("thread"))
        });
        let (a, mut b) = (a.expect("codes"), b.expect("codes"));
        b.reverse();
        assert_eq!(tokens.len(), ids.len());
        assert_eq!(a[5_000..], b[..10_000]);
        for (id, code) in ids.iter().zip(a.iter().chain(&b[10_000..])) {
            assert_eq!(tokens.text(*code).as_deref(), Some(id.as_str()));
        }
        assert_eq!(tokens.text(NULL), None);
    }

    /// A sealed table still reads every id by its code, and ids placed afterwards get the
    /// codes they had (old ids) or the next ones (new ids); so does a listed one.
    #[test]
    fn a_sealed_table_reads_and_places_as_before() {
        let tokens = Tokens::default();
        let ids: Vec<String> = (0..5_000).map(|i| format!("tk-{i:016x}")).collect();
        let codes = tokens.place(ids.iter().map(String::as_str)).expect("codes");
        let before = tokens.bytes();
        tokens.seal();
        assert!(
            tokens.bytes() * 2 < before,
            "{} of {before} bytes",
            tokens.bytes()
        );
        for (id, code) in ids.iter().zip(&codes) {
            assert_eq!(tokens.text(*code).as_deref(), Some(id.as_str()));
        }
        let again = tokens
            .place(["tk-new", ids[42].as_str(), "tk-new"].into_iter())
            .expect("codes");
        assert_eq!(again, [5_000, codes[42], 5_000]);
        assert_eq!(tokens.len(), 5_001);
        // A table listed from ids elsewhere (a state's names) places them at their places.
        let listed = Tokens::listed(ids.iter().map(String::as_str));
        assert_eq!(listed.text(7).as_deref(), Some(ids[7].as_str()));
        let placed = (listed.place(["tk-other", ids[4_999].as_str(), ids[7].as_str()].into_iter()))
            .expect("codes");
        assert_eq!(placed, [5_000, 4_999, 7]);
    }

    /// Ids moved to disk read by code as they did in memory (the first, a multi-byte one, the
    /// last; past the table none), leave the table's memory, and an id placed afterwards
    /// fingerprints them first: old ids keep their codes, a new one comes after them. A folder
    /// that cannot take them leaves them in memory.
    #[test]
    fn ids_on_disk_read_and_place_as_in_memory() {
        let dir = tempfile::tempdir().expect("dir");
        let tokens = Tokens::default();
        let mut ids: Vec<String> = (0..5_000).map(|i| format!("tk-{i:016x}")).collect();
        ids[17] = "tk-é-ünïcode".into();
        let codes = tokens.place(ids.iter().map(String::as_str)).expect("codes");
        tokens.seal();
        let held = tokens.bytes();
        tokens.to_disk(dir.path()).expect("to disk");
        assert!(tokens.bytes() * 100 < held, "{} of {held}", tokens.bytes());
        assert_eq!(tokens.len(), ids.len());
        for (id, code) in ids.iter().zip(&codes) {
            assert_eq!(tokens.text(*code).as_deref(), Some(id.as_str()));
        }
        assert_eq!(tokens.text(5_000), None);
        assert_eq!(tokens.text(NULL), None);
        let mut listed = Vec::new();
        tokens.for_codes(&[codes[17], NULL, codes[0]], |id| {
            listed.push(id.to_string())
        });
        assert_eq!(listed, [ids[17].as_str(), "", ids[0].as_str()]);
        let again = (tokens.place(["tk-new", ids[4_999].as_str()].into_iter())).expect("codes");
        assert_eq!(again, [5_000, codes[4_999]]);
        assert_eq!(tokens.text(codes[17]).as_deref(), Some(ids[17].as_str()));
        assert_eq!(tokens.text(5_000).as_deref(), Some("tk-new"));
        assert!(tokens.check().is_ok());
        // Placed by fingerprint now, the ids stay where they are.
        let gone = dir.path().join("gone");
        assert!(tokens.to_disk(&gone).is_ok());
        assert_eq!(tokens.text(codes[3]).as_deref(), Some(ids[3].as_str()));
        assert_eq!(tokens.len(), 5_001);
        let in_memory = Tokens::listed(ids.iter().map(String::as_str));
        assert!(in_memory.to_disk(&gone).is_err());
        assert_eq!(in_memory.text(3).as_deref(), Some(ids[3].as_str()));
    }

    /// An id that cannot be read from disk reads as none, and the table says why when asked,
    /// once: the run then fails instead of reporting without it.
    #[test]
    fn an_id_that_cannot_be_read_fails_the_check() {
        let dir = tempfile::tempdir().expect("dir");
        let tokens = Tokens::default();
        let codes = tokens.place(["tk-a", "tk-b"].into_iter()).expect("codes");
        tokens.seal();
        tokens.to_disk(dir.path()).expect("to disk");
        assert_eq!(tokens.text(codes[1]).as_deref(), Some("tk-b"));
        assert!(tokens.check().is_ok());
        if let Held::Disk(disk) = &mut tokens.lock().held {
            disk.damage(6);
        }
        assert_eq!(tokens.text(codes[1]), None);
        assert!(tokens.check().is_err());
        assert!(tokens.check().is_ok(), "reported once");
    }

    /// The codes each of `tables` gives `ids` placed `size` at a time, `before` called with each
    /// batch's number first.
    fn in_batches<const N: usize>(
        tables: [&Tokens; N],
        ids: &[String],
        size: usize,
        mut before: impl FnMut(usize),
    ) -> [Vec<u32>; N] {
        let mut codes: [Vec<u32>; N] = std::array::from_fn(|_| Vec::new());
        for (n, batch) in ids.chunks(size).enumerate() {
            before(n);
            for (table, out) in tables.into_iter().zip(&mut codes) {
                let placed = table.place(batch.iter().map(String::as_str));
                out.extend(placed.expect("codes"));
            }
        }
        codes
    }

    /// Ids placed by fingerprint, from the first one (a sink already past its bound) or from
    /// the middle of a run (ids in memory moved), get the codes placing by text gives, in
    /// batches from two threads, and read back as their texts before and after the table is
    /// sealed; ids placed after sealing fingerprint the ids on disk again and still agree.
    #[test]
    fn placing_by_fingerprint_gives_the_codes_placing_by_text_gives() {
        let dir = tempfile::tempdir().expect("dir");
        let mut ids: Vec<String> = (0..30_000)
            .map(|i| format!("tk-{:x}", i * 7919 % 12_345))
            .collect();
        ids[5] = "tk-é-ünïcode".into();
        ids[6] = String::new() + "x";
        let by_text = Tokens::default();
        let from_start = Tokens::spilling_with(Arc::new(ColdSink::new(dir.path(), 0)));
        let midway = Tokens::default();
        let codes = in_batches([&by_text, &from_start, &midway], &ids, 4_000, |n| {
            if n == 3 {
                assert!(midway.lock().spill(dir.path(), midway.key));
            }
        });
        assert!(matches!(from_start.lock().held, Held::Prints(_)));
        assert!(matches!(midway.lock().held, Held::Prints(_)));
        assert_eq!(codes[0], codes[1]);
        assert_eq!(codes[0], codes[2]);
        let distinct = by_text.len();
        assert!(distinct < ids.len(), "the ids repeat");
        for table in [&from_start, &midway] {
            assert_eq!(table.len(), distinct);
            table.seal();
            assert!(matches!(table.lock().held, Held::Disk(_)));
            for (id, code) in ids.iter().zip(&codes[0]) {
                assert_eq!(table.text(*code).as_deref(), Some(id.as_str()));
            }
            let again = ["tk-new", ids[5].as_str(), ids[29_999].as_str(), "tk-new"];
            let placed = table.place(again.into_iter()).expect("codes");
            let d = distinct as u32;
            assert_eq!(placed, [d, codes[0][5], codes[0][29_999], d]);
            assert!(table.check().is_ok());
        }
    }

    /// With a sink whose bound in events is never reached, the ids go to its folder once they
    /// pass the bytes they may hold in memory, keep the codes placing by text gives, and send
    /// the cold columns to disk from then on.
    #[test]
    fn ids_past_the_bytes_they_may_hold_go_to_disk_before_the_events_bound() {
        // This test sets the allocator's purge delay, which another test checks.
        let _delay = crate::memory::tests::PURGE_DELAY
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        crate::memory::keep_freed_pages();
        let dir = tempfile::tempdir().expect("dir");
        let sink = Arc::new(ColdSink::new(dir.path(), u64::MAX));
        let bounded = Tokens {
            held_at_most: 64 << 10,
            ..Tokens::spilling_with(sink.clone())
        };
        let other = Arc::new(ColdSink::new(dir.path(), u64::MAX));
        let unbounded = Tokens::spilling_with(other.clone());
        let by_text = Tokens::default();
        let ids: Vec<String> = (0..20_000).map(|i| format!("tk-{i:08x}")).collect();
        let codes = in_batches([&by_text, &bounded, &unbounded], &ids, 1_000, |_| {});
        assert!(matches!(bounded.lock().held, Held::Prints(_)));
        assert!(matches!(unbounded.lock().held, Held::Memory(_)));
        assert!(unbounded.bytes() > 64 << 10, "{}", unbounded.bytes());
        assert_eq!(sink.spilling(), Some(dir.path()));
        assert_eq!(other.spilling(), None);
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(
                crate::memory::purge_delay(),
                0,
                "freed pages go back at once"
            );
        }
        crate::memory::keep_freed_pages();
        assert_eq!(codes[1], codes[0]);
        assert_eq!(codes[2], codes[0]);
        for (id, code) in ids.iter().zip(&codes[0]).step_by(97) {
            assert_eq!(bounded.text(*code).as_deref(), Some(id.as_str()));
        }
    }

    /// A folder that refuses the ids leaves them in memory, placed as before.
    #[test]
    fn a_folder_that_refuses_the_ids_leaves_them_in_memory() {
        let dir = tempfile::tempdir().expect("dir");
        let gone = dir.path().join("gone");
        let tokens = Tokens::spilling_with(Arc::new(ColdSink::new(&gone, 0)));
        let codes = tokens
            .place(["tk-a", "tk-b", "tk-a"].into_iter())
            .expect("codes");
        assert_eq!(codes, [0, 1, 0]);
        assert!(matches!(tokens.lock().held, Held::Memory(_)));
        assert!(tokens.lock().refused);
        assert_eq!(tokens.text(1).as_deref(), Some("tk-b"));
    }
}
