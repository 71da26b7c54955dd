//! One file's dictionary for its string columns. Every string field of the event frame is a
//! polars categorical over the process-wide dictionary, but inserting each value of each row into
//! that shared, concurrent table was 42 % of ingest in `perf` on a 10M-event export. A reader
//! thread instead codes its values in a table of its own and places each distinct value in the
//! global dictionary once per file, when a chunk becomes a frame. All columns of a file share the
//! table, as they share the global dictionary: a customer's id is both the principal and the
//! target of most of its requests, and is then looked up and placed once.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use polars::prelude::*;
use std::hash::BuildHasher;

/// The code of a missing value.
pub const NULL: u32 = u32::MAX;

/// Strings seen in this file, their local codes, and the global code of those already placed.
#[derive(Default)]
pub struct FileDict {
    table: HashTable<Slot>,
    hasher: FixedState,
    /// All distinct strings back to back; string `i` ends at `ends[i]`.
    arena: String,
    ends: Vec<usize>,
    /// Global code of local code `i`, for the first `global.len()` local codes.
    global: Vec<CatSize>,
}

impl FileDict {
    /// The slot of `v`, added if new.
    fn slot(&mut self, v: &str) -> Result<Slot, String> {
        let hash = self.hasher.hash_one(v);
        if let Some(slot) = self
            .table
            .find(hash, |slot| slot.holds(v, &self.arena, &self.ends))
        {
            return Ok(*slot);
        }
        let code = u32::try_from(self.ends.len())
            .ok()
            .filter(|&c| c != NULL)
            .ok_or("more than 2³² distinct strings in one file")?;
        self.arena.push_str(v);
        self.ends.push(self.arena.len());
        let slot = Slot::new(code, v);
        let (arena, ends, hasher) = (&self.arena, &self.ends, &self.hasher);
        self.table.insert_unique(hash, slot, |slot| {
            hasher.hash_one(entry(arena, ends, slot.code))
        });
        Ok(slot)
    }

    /// Forgets every string but keeps the memory: the table refills to about the same size, and
    /// regrowing it from empty (rehashing, fresh pages) was a tenth of ingest on a 30M-event export.
    pub fn clear(&mut self) {
        self.table.clear();
        self.arena.clear();
        self.ends.clear();
        self.global.clear();
    }

    /// Distinct strings held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Places the strings added since the last call in the global dictionary.
    fn place(&mut self, mapping: &CategoricalMapping) -> PolarsResult<()> {
        for code in self.global.len() as u32..self.ends.len() as u32 {
            let cat = mapping.insert_cat(entry(&self.arena, &self.ends, code))?;
            self.global.push(cat);
        }
        Ok(())
    }
}

/// One string column of the current chunk, as codes of the file's [`FileDict`].
pub struct CodeColumn {
    name: &'static str,
    /// Exports repeat a value in runs (the same key, agent or action line after line). A copy of
    /// the slot, so checking it reads no arena memory.
    last: Option<Slot>,
    codes: Vec<u32>,
}

impl CodeColumn {
    pub fn new(name: &'static str) -> Self {
        CodeColumn {
            name,
            last: None,
            codes: Vec::new(),
        }
    }

    /// The code of `v` (added to `dict` if new), not yet pushed: a row computes every code before
    /// pushing any, so a refused row leaves all columns the same length.
    pub fn code(&mut self, dict: &mut FileDict, v: Option<&str>) -> Result<u32, String> {
        let Some(v) = v else { return Ok(NULL) };
        if let Some(last) = &self.last
            && last.holds(v, &dict.arena, &dict.ends)
        {
            return Ok(last.code);
        }
        let slot = dict.slot(v)?;
        self.last = Some(slot);
        Ok(slot.code)
    }

    /// Forgets the remembered value, whose code belongs to a dictionary being replaced.
    pub fn forget(&mut self) {
        self.last = None;
    }

    pub fn push(&mut self, code: u32) {
        self.codes.push(code);
    }

    /// The current chunk as a categorical column over the global dictionary.
    pub fn take_column(&mut self, dict: &mut FileDict) -> PolarsResult<Column> {
        let dtype = crate::frame::cat_dtype();
        let DataType::Categorical(_, mapping) = &dtype else {
            unreachable!("cat_dtype is categorical")
        };
        dict.place(mapping)?;
        let codes = super::columns::refill(&mut self.codes);
        let global = |c: u32| dict.global[c as usize];
        let phys = if codes.contains(&NULL) {
            let cats = codes.iter().map(|&c| (c != NULL).then(|| global(c)));
            UInt32Chunked::from_iter_options(self.name.into(), cats)
        } else {
            UInt32Chunked::from_vec(self.name.into(), codes.iter().map(|&c| global(c)).collect())
        };
        // SAFETY: every code was returned by `insert_cat` on this very mapping (`place` above), so
        // each is in bounds; the checked constructor looked each one up again in the shared
        // dictionary, 5 % of ingest in `perf`.
        let cats = unsafe { Categorical32Chunked::from_cats_and_dtype_unchecked(phys, dtype) };
        Ok(cats.into_series().into_column())
    }
}

/// Bytes of a value kept in its table slot. Nearly every value (ids, addresses, account numbers,
/// token ids) is shorter, so a lookup reads one cache line instead of chasing the arena; when
/// entries referred to the arena, those misses were a fifth of ingest in `perf`.
const INLINE: usize = 24;

/// A dictionary table entry.
#[derive(Clone, Copy)]
struct Slot {
    code: u32,
    /// Length in bytes, saturated: longer values are compared through the arena.
    len: u32,
    head: [u8; INLINE],
}

impl Slot {
    fn new(code: u32, v: &str) -> Slot {
        let mut head = [0; INLINE];
        let n = v.len().min(INLINE);
        head[..n].copy_from_slice(&v.as_bytes()[..n]);
        let len = u32::try_from(v.len()).unwrap_or(u32::MAX);
        Slot { code, len, head }
    }

    fn holds(&self, v: &str, arena: &str, ends: &[usize]) -> bool {
        if v.len() <= INLINE {
            self.len as usize == v.len() && &self.head[..v.len()] == v.as_bytes()
        } else {
            self.len as usize > INLINE
                && self.head == v.as_bytes()[..INLINE]
                && entry(arena, ends, self.code) == v
        }
    }
}

/// String `code` of an arena whose strings end at `ends`.
fn entry<'a>(arena: &'a str, ends: &[usize], code: u32) -> &'a str {
    let i = code as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &arena[start..ends[i]]
}
