//! Token ids: the one string column kept out of polars' process-wide dictionary. An export holds
//! about one distinct token per six events (1.5M in a 10M-event export), each new to every reader
//! thread that meets it, and placing them in polars' concurrent dictionary was three quarters of
//! its inserts (10M-event CSV export: ingest 2.7 s with them there, 2.34 s with this table).
//! Detectors only compare tokens, so the column holds plain
//! `u32` codes into this table, shared by the reader threads of one run; the few tokens a report
//! names are looked up here by code.

use std::sync::{Mutex, MutexGuard, PoisonError};

use polars::prelude::*;

use super::dictionary::{FileDict, LOOKAHEAD, NULL, Narrow};

/// The token ids of one run, each with its code.
#[derive(Default)]
pub struct Tokens {
    table: Mutex<FileDict<Narrow>>,
}

impl Tokens {
    fn lock(&self) -> MutexGuard<'_, FileDict<Narrow>> {
        // A panic while placing leaves at worst a value without a code; codes already handed
        // out stay valid.
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A table of the distinct ids `ids`, coded 0, 1, 2… in order (see [`FileDict::sealed_from`]).
    pub fn listed<'v>(ids: impl Iterator<Item = &'v str>) -> Tokens {
        Tokens {
            table: Mutex::new(FileDict::sealed_from(ids)),
        }
    }

    /// Calls `each` with the id of every code of `codes` in turn (an unknown code as empty),
    /// under one lock.
    pub fn for_codes(&self, codes: &[u32], mut each: impl FnMut(&str)) {
        let table = self.lock();
        for &code in codes {
            each(table.get(code).unwrap_or_default());
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
        let mut table = self.lock();
        let mut out = Vec::with_capacity(hashes.len());
        for (i, v) in values.enumerate() {
            if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                table.prefetch(ahead);
            }
            out.push(table.code(hashes[i], v)?);
        }
        Ok(out)
    }

    /// The token id of `code` ([`NULL`] and unknown codes have none).
    pub fn text(&self, code: u32) -> Option<String> {
        (code != NULL)
            .then(|| self.lock().get(code).map(str::to_string))
            .flatten()
    }

    /// Frees what only adding ids needs (see [`FileDict::seal`]); called when ingest ends.
    pub fn seal(&self) {
        self.lock().seal();
    }

    /// Bytes the table holds, for `--timings`.
    pub fn bytes(&self) -> usize {
        self.lock().bytes()
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
}
