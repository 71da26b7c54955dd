//! Token ids: the one string column kept out of polars' process-wide dictionary. An export holds
//! about one distinct token per six events (1.5M in a 10M-event export), each new to every reader
//! thread that meets it, and placing them in polars' concurrent dictionary was three quarters of
//! its inserts (10M-event CSV export: ingest 2.7 s with them there, 2.34 s with this table).
//! Detectors only compare tokens, so the column holds plain
//! `u32` codes into this table, shared by the reader threads of one run; the few tokens a report
//! names are looked up here by code. On big runs the ids themselves then wait on disk
//! ([`Tokens::to_disk`]): nothing but those lookups reads them once the codes are handed out.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use polars::prelude::*;

use super::dictionary::{FileDict, LOOKAHEAD, NULL, Narrow};
use crate::error::{Error, Result};

/// The token ids of one run, each with its code.
#[derive(Default)]
pub struct Tokens {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    dict: FileDict<Narrow>,
    /// The ids once moved to disk ([`Tokens::to_disk`]); `dict` then holds none.
    disk: Option<OnDisk>,
    /// Why an id could not be read from disk, kept for [`Tokens::check`]: the id reads as none
    /// where it was asked for, and the run must not report on it.
    failed: Option<Error>,
}

impl Table {
    fn len(&self) -> usize {
        self.disk
            .as_ref()
            .map_or_else(|| self.dict.len(), |d| d.count)
    }

    /// The id of `code`, handed to `each` (an unknown code as empty); `buf` holds an id read
    /// from disk.
    fn with<T>(&mut self, code: u32, buf: &mut Vec<u8>, each: impl FnOnce(Option<&str>) -> T) -> T {
        let Some(disk) = &self.disk else {
            return each(self.dict.get(code));
        };
        match disk.read(code, buf) {
            Ok(id) => each(id),
            Err(e) => {
                self.failed.get_or_insert(Error::io(&disk.dir, e));
                each(None)
            }
        }
    }

    /// The table to place ids in: ids on disk are read back first.
    fn placing(&mut self) -> PolarsResult<&mut FileDict<Narrow>> {
        if let Some(disk) = self.disk.take() {
            let Some((arena, ends)) = disk.read_back() else {
                self.disk = Some(disk);
                polars_bail!(ComputeError: "the token ids written to disk could not be read back");
            };
            self.dict.put_strings(arena, ends);
        }
        Ok(&mut self.dict)
    }
}

/// Ids written out by [`Tokens::to_disk`]: where each ends (8 bytes, little-endian, one per
/// id), then the ids back to back, in a file without a name. Read by code with two reads at an
/// offset, not mapped: a report may name many ids (every forged token of a
/// key, when each was used once), and mapped pages it touched counted as the run's memory.
struct OnDisk {
    file: std::fs::File,
    count: usize,
    /// The folder it is in, to name in an error.
    dir: std::path::PathBuf,
}

impl OnDisk {
    fn write(dir: &Path, arena: &str, ends: &[usize]) -> Result<OnDisk> {
        let broken = |e| Error::io(dir, e);
        let file = tempfile::tempfile_in(dir).map_err(broken)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, &file);
        for &end in ends {
            out.write_all(&(end as u64).to_le_bytes()).map_err(broken)?;
        }
        out.write_all(arena.as_bytes()).map_err(broken)?;
        out.flush().map_err(broken)?;
        drop(out);
        Ok(OnDisk {
            file,
            count: ends.len(),
            dir: dir.to_path_buf(),
        })
    }

    #[cfg(unix)]
    fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(&self.file, buf, at)
    }

    #[cfg(not(unix))]
    fn read_at(&self, at: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let mut file = &self.file;
        file.seek(SeekFrom::Start(at))?;
        file.read_exact(buf)
    }

    /// The id of `code`, read into `buf`; `None` for a code past the table.
    fn read<'b>(&self, code: u32, buf: &'b mut Vec<u8>) -> std::io::Result<Option<&'b str>> {
        let i = code as usize;
        if i >= self.count {
            return Ok(None);
        }
        let mut ends = [0u8; 16];
        let (from, bounds) = match i {
            0 => (0, &mut ends[8..]),
            _ => (8 * (i as u64 - 1), &mut ends[..]),
        };
        self.read_at(from, bounds)?;
        let [start, end] =
            [&ends[..8], &ends[8..]].map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let damaged = || std::io::Error::new(std::io::ErrorKind::InvalidData, "token ids damaged");
        buf.resize(end.checked_sub(start).ok_or_else(damaged)? as usize, 0);
        self.read_at(8 * self.count as u64 + start, buf)?;
        std::str::from_utf8(buf).map(Some).map_err(|_| damaged())
    }

    /// Every id, as the table held them before [`Tokens::to_disk`]; `None` when they cannot be
    /// read.
    fn read_back(&self) -> Option<(String, Vec<usize>)> {
        let mut all = Vec::new();
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0)).ok()?;
        file.read_to_end(&mut all).ok()?;
        let at = 8 * self.count;
        let ids = (all.len() >= at).then(|| all.split_off(at))?;
        let ends = (all.chunks_exact(8))
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()) as usize)
            .collect();
        Some((String::from_utf8(ids).ok()?, ends))
    }
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, Table> {
        // A panic while placing leaves at worst a value without a code; codes already handed
        // out stay valid.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A table of the distinct ids `ids`, coded 0, 1, 2… in order (see [`FileDict::sealed_from`]).
    pub fn listed<'v>(ids: impl Iterator<Item = &'v str>) -> Tokens {
        Tokens {
            table: Mutex::new(Table {
                dict: FileDict::sealed_from(ids),
                ..Table::default()
            }),
        }
    }

    /// Calls `each` with the id of every code of `codes` in turn (an unknown code as empty),
    /// under one lock.
    pub fn for_codes(&self, codes: &[u32], mut each: impl FnMut(&str)) {
        let (mut table, mut buf) = (self.lock(), Vec::new());
        for &code in codes {
            table.with(code, &mut buf, |id| each(id.unwrap_or_default()));
        }
    }

    /// The codes of `values`, added if new. Hashes are taken before the lock and the slots of
    /// later values fetched while earlier ones are placed, so a reader thread holds the lock
    /// for a few nanoseconds a value.
    pub fn place<'v>(
        &self,
        values: impl Iterator<Item = &'v str> + Clone,
    ) -> PolarsResult<Vec<u32>> {
        let hashes: Vec<u64> = values.clone().map(FileDict::hash_of).collect();
        let mut guard = self.lock();
        let table = guard.placing()?;
        let mut out = Vec::with_capacity(hashes.len());
        for (i, v) in values.enumerate() {
            if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                table.prefetch(ahead);
            }
            out.push(table.code(hashes[i], v)?);
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

    /// Frees what only adding ids needs (see [`FileDict::seal`]); called when ingest ends.
    pub fn seal(&self) {
        self.lock().dict.seal();
    }

    /// Moves the ids to a file without a name in `dir`, read from there by code: once ingest
    /// ends the table is only read for the few ids a report names, and at 85.9M events its
    /// 15.2M ids were 391 MB of what every later stage stood on. Placing an id afterwards reads
    /// them back first. On error the ids stay here.
    pub fn to_disk(&self, dir: &Path) -> Result<()> {
        let mut table = self.lock();
        if table.disk.is_some() || table.dict.len() == 0 {
            return Ok(());
        }
        let (arena, ends) = table.dict.take_strings();
        match OnDisk::write(dir, &arena, &ends) {
            Ok(disk) => {
                table.disk = Some(disk);
                Ok(())
            }
            Err(e) => {
                table.dict.put_strings(arena, ends);
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
        self.lock().dict.bytes()
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
    /// last; past the table none), leave the table's memory, and an id placed afterwards reads
    /// them back first: old ids keep their codes, a new one comes after them. A folder that
    /// cannot take them leaves them in memory.
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
        let gone = dir.path().join("gone");
        assert!(tokens.to_disk(&gone).is_err());
        assert_eq!(tokens.text(codes[3]).as_deref(), Some(ids[3].as_str()));
        assert_eq!(tokens.len(), 5_001);
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
        if let Some(disk) = &tokens.lock().disk {
            disk.file.set_len(12).expect("truncated");
        }
        assert_eq!(tokens.text(codes[1]), None);
        assert!(tokens.check().is_err());
        assert!(tokens.check().is_ok(), "reported once");
    }
}
