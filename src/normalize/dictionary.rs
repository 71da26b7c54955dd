//! One reader thread's dictionary for its string columns. Every string field of the event frame is
//! coded in the run's dictionary of names (`frame::Dictionary`), but inserting each value of each
//! row into that shared table (polars' concurrent one then) was 42 % of ingest in `perf` on a
//! 10M-event export. A reader
//! thread instead codes its values in a table of its own and places each distinct value in the
//! global dictionary once, when a chunk becomes a frame. All columns share the table, as they
//! share the global dictionary: a customer's id is both the principal and the target of most of
//! its requests, and is then looked up and placed once.
//!
//! The table is open addressing with linear probing, written here rather than taken from
//! `hashbrown` because of [`FileDict::prefetch`]: with a few hundred thousand principals,
//! addresses and accounts it outgrows the CPU cache, and a lookup that waits for memory was a
//! fifth of ingest. Columns of such values are staged for a chunk ([`StagedColumn`]) and coded with
//! the slots of rows ahead already on their way. Measured against the `hashbrown` table it
//! replaced, on the 10M-event CSV export: ingest 3.35–3.5 → 2.9–3.0 s, CPU 6.2–6.4 → 5.5–5.6 s
//! (`docs/performance.md`); `codes_agree_with_hashbrown` checks it against that crate.

use foldhash::fast::FixedState;
use polars::prelude::*;
use std::hash::BuildHasher;

use super::tokens::Tokens;

/// The code of a missing value.
pub const NULL: u32 = u32::MAX;

/// Strings seen by this thread, their local codes, and the global code of those already placed.
/// `S`: what a table slot holds besides the code (see [`Slots`]).
pub struct FileDict<S = Slot> {
    /// A power of two long, or empty; an empty slot's code is [`NULL`].
    slots: Vec<S>,
    /// All distinct strings back to back; string `i` ends at `ends[i]`.
    arena: String,
    ends: Vec<usize>,
    /// Shared code (in the run's dictionary, or in its token table) of local code `i`, for
    /// the first `global.len()` local codes.
    global: Vec<u32>,
}

impl<S> Default for FileDict<S> {
    fn default() -> Self {
        FileDict {
            slots: Vec::new(),
            arena: String::new(),
            ends: Vec::new(),
            global: Vec::new(),
        }
    }
}

impl FileDict {
    /// The hash every table uses: fixed, so a value's hash can be taken before its table is at
    /// hand (see [`Tokens::place`]).
    #[inline]
    pub fn hash_of(v: &str) -> u64 {
        FixedState::default().hash_one(v)
    }
}

impl<S: Slots> FileDict<S> {
    #[inline]
    pub fn hash(&self, v: &str) -> u64 {
        FileDict::hash_of(v)
    }

    /// Asks the CPU to start loading the slot where a value of this hash is looked up first.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if let Some(slot) = self
            .slots
            .get(hash as usize & self.slots.len().wrapping_sub(1))
        {
            prefetch(slot);
        }
    }

    /// The code of `v`, whose hash is `hash`, added if new.
    pub fn code(&mut self, hash: u64, v: &str) -> PolarsResult<u32> {
        // Grown at three quarters full: linear probing stays short and the table small.
        if (self.ends.len() + 1) * 4 > self.slots.len() * 3 {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            if slot.code() == NULL {
                break;
            }
            if slot.tag() == hash as u32 && slot.holds(v, &self.arena, &self.ends) {
                return Ok(slot.code());
            }
            i = (i + 1) & mask;
        }
        let code = u32::try_from(self.ends.len())
            .ok()
            .filter(|&c| c != NULL)
            .ok_or_else(|| polars_err!(ComputeError: "more than 2³² distinct strings"))?;
        self.arena.push_str(v);
        self.ends.push(self.arena.len());
        self.slots[i] = S::new(code, hash as u32, v);
        Ok(code)
    }

    /// Doubles the table. A slot's tag is the low half of its hash, which is all a table of up to
    /// 2³² slots indexes by, so nothing is hashed again.
    fn grow(&mut self) {
        if self.slots.is_empty() && !self.ends.is_empty() {
            return self.reindex();
        }
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![S::EMPTY; size]);
        let mask = size - 1;
        for slot in old.into_iter().filter(|s| s.code() != NULL) {
            let mut i = slot.tag() as usize & mask;
            while self.slots[i].code() != NULL {
                i = (i + 1) & mask;
            }
            self.slots[i] = slot;
        }
    }

    /// Keeps what looking values up by code needs and nothing more: the slots (8 or 32 bytes
    /// each, a table a quarter to five eighths empty) go, and the strings' buffers shrink to their
    /// contents. A run's token table is only read by code once ingest ends; at 85.9M events its
    /// slots were about 1 GB of what ingest left resident (`docs/performance.md`). Adding a value
    /// afterwards rebuilds the slots first.
    pub fn seal(&mut self) {
        self.slots = Vec::new();
        self.global = Vec::new();
        self.arena.shrink_to_fit();
        self.ends.shrink_to_fit();
    }

    /// The strings, back to back, and where each ends, taken out of a sealed table (see
    /// [`Tokens::to_disk`]); the table then holds nothing until [`FileDict::put_strings`].
    pub(super) fn take_strings(&mut self) -> (String, Vec<usize>) {
        self.seal();
        (
            std::mem::take(&mut self.arena),
            std::mem::take(&mut self.ends),
        )
    }

    /// Strings [`FileDict::take_strings`] took, back in the sealed table they came from.
    pub(super) fn put_strings(&mut self, arena: String, ends: Vec<usize>) {
        self.seal();
        (self.arena, self.ends) = (arena, ends);
    }

    /// A sealed table of `values`, coded 0, 1, 2… in order (distinct, or a value's later codes
    /// are never found by [`FileDict::code`]): strings listed elsewhere taken in without hashing
    /// one; the slots are built on the first [`FileDict::code`].
    pub fn sealed_from<'v>(values: impl Iterator<Item = &'v str>) -> Self {
        let mut table = FileDict::default();
        for v in values {
            table.arena.push_str(v);
            table.ends.push(table.arena.len());
        }
        table.seal();
        table
    }

    /// The slots of a sealed table built again from its strings: the hashes taken side by side
    /// first, then each slot placed with the slots of later values already on their way (see
    /// [`FileDict::prefetch`]). A state's 15.2M token ids (85.9M events), started from its names
    /// and then given a night's new ids, took 1.8 s one value after another.
    fn reindex(&mut self) {
        use rayon::prelude::*;
        let mut size = 1024;
        while (self.ends.len() + 1) * 4 > size * 3 {
            size *= 2;
        }
        let (arena, ends) = (&self.arena, &self.ends);
        let hashes: Vec<u64> = (0..ends.len() as u32)
            .into_par_iter()
            .map(|code| FileDict::hash_of(entry(arena, ends, code)))
            .collect();
        self.slots = vec![S::EMPTY; size];
        let mask = size - 1;
        for (code, &hash) in hashes.iter().enumerate() {
            if let Some(&ahead) = hashes.get(code + LOOKAHEAD) {
                self.prefetch(ahead);
            }
            let v = entry(&self.arena, &self.ends, code as u32);
            let mut i = hash as usize & mask;
            while self.slots[i].code() != NULL {
                i = (i + 1) & mask;
            }
            self.slots[i] = S::new(code as u32, hash as u32, v);
        }
    }

    /// Bytes held, with the unused capacity of every buffer.
    pub fn bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<S>()
            + self.arena.capacity()
            + self.ends.capacity() * std::mem::size_of::<usize>()
            + self.global.capacity() * std::mem::size_of::<u32>()
    }

    /// Forgets every string but keeps the memory: the table refills to about the same size, and
    /// regrowing it from empty (rehashing, fresh pages) was a tenth of ingest on a 30M-event export.
    pub fn clear(&mut self) {
        self.slots.fill(S::EMPTY);
        self.arena.clear();
        self.ends.clear();
        self.global.clear();
    }

    /// Distinct strings held.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// The value of `code`.
    pub fn get(&self, code: u32) -> Option<&str> {
        ((code as usize) < self.ends.len()).then(|| entry(&self.arena, &self.ends, code))
    }

    /// `codes` as a column of the run's dictionary's codes ([`crate::frame::Dictionary`]),
    /// placing there the strings added since the last call.
    pub fn column(&mut self, name: &str, codes: &[u32]) -> PolarsResult<Column> {
        let new: Vec<&str> = (self.global.len() as u32..self.ends.len() as u32)
            .map(|code| entry(&self.arena, &self.ends, code))
            .collect();
        let placed = crate::frame::dictionary().insert_all(&new)?;
        self.global.extend(placed);
        Ok(self.global_codes(name, codes).into_series().into_column())
    }

    /// `codes` as a column of codes in `tokens`, placing there the strings added since the last
    /// call.
    pub fn token_column(
        &mut self,
        name: &'static str,
        codes: &[u32],
        tokens: &Tokens,
    ) -> PolarsResult<Column> {
        let new = (self.global.len() as u32..self.ends.len() as u32)
            .map(|code| entry(&self.arena, &self.ends, code));
        let placed = tokens.place(new)?;
        self.global.extend(placed);
        Ok(self.global_codes(name, codes).into_series().into_column())
    }

    /// Local `codes` translated to the shared codes placed for them, nulls for [`NULL`].
    fn global_codes(&self, name: &str, codes: &[u32]) -> UInt32Chunked {
        // A null's slot holds 0, which its validity bit hides.
        let global = |c: u32| {
            if c == NULL {
                0
            } else {
                self.global[c as usize]
            }
        };
        // Columns the frame keeps are made in its heap; those that wait on disk past a bound
        // are freed once written, and kept there they left holes among the others
        // (`memory::keep_frame_apart`).
        let values = if crate::normalize::cold::COLUMNS.contains(&name) {
            codes.iter().map(|&c| global(c)).collect()
        } else {
            crate::memory::frame_vec(codes.iter().map(|&c| global(c)))
        };
        // Values and validity built apart: an iterator of options went through polars' builder
        // one row at a time (3 % of ingest in `perf`).
        let validity = codes.contains(&NULL).then(|| {
            let valid: BooleanChunked = codes.iter().map(|&c| c != NULL).collect();
            valid.downcast_iter().next().map(|a| a.values().clone())
        });
        UInt32Chunked::from_vec_validity(name.into(), values, validity.flatten())
    }
}

/// Asks the CPU to start loading the cache line of `v`, which the caller reads shortly.
#[inline]
pub fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch is only a hint, and the address is that of a live value.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((v as *const T).cast()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// A column of few distinct values (event types, keys, agents, actions), coded row by row: its
/// slots stay in cache, and exports repeat a few values, which copies of the last few slots catch
/// without hashing. One remembered value was enough for event types and keys, which come in runs;
/// user agents interleave (four clients in turn hashed a 100-byte string on nearly every row,
/// 2.4 % of the run's CPU on the 10M CSV export, 1.8 % with four remembered).
pub struct CodeColumn {
    recent: [Option<Slot>; RECENT],
    /// Where the next new value is remembered (round robin).
    next: usize,
    codes: Vec<u32>,
}

/// Values a [`CodeColumn`] remembers.
const RECENT: usize = 4;

impl CodeColumn {
    pub fn new() -> Self {
        CodeColumn {
            recent: [None; RECENT],
            next: 0,
            codes: Vec::new(),
        }
    }

    /// The code of `v` (added to `dict` if new), not yet pushed: a row computes every code before
    /// pushing any, so a refused row leaves all columns the same length.
    #[inline]
    pub fn code(&mut self, dict: &mut FileDict, v: Option<&str>) -> PolarsResult<u32> {
        let Some(v) = v else { return Ok(NULL) };
        for slot in self.recent.iter().flatten() {
            if slot.holds(v, &dict.arena, &dict.ends) {
                return Ok(slot.code());
            }
        }
        let code = dict.code(dict.hash(v), v)?;
        self.recent[self.next] = Some(Slot::new(code, 0, v));
        self.next = (self.next + 1) % RECENT;
        Ok(code)
    }

    /// Forgets the remembered values, whose codes belong to a dictionary being cleared.
    pub fn forget(&mut self) {
        self.recent = [None; RECENT];
    }

    #[inline]
    pub fn push(&mut self, code: u32) {
        self.codes.push(code);
    }

    /// The chunk's codes, leaving an empty column sized like it.
    pub fn take(&mut self) -> Vec<u32> {
        super::columns::refill(&mut self.codes)
    }
}

/// A column of many distinct values (principals, addresses, accounts, tokens), kept as text until
/// the chunk is coded, so that coding can look ahead (see the module comment).
#[derive(Default)]
pub struct StagedColumn {
    text: String,
    /// Value `i` ends at `ends[i]`; an empty value is a missing one (readers drop empty strings).
    ends: Vec<usize>,
}

impl StagedColumn {
    #[inline]
    pub fn push(&mut self, v: Option<&str>) {
        self.text.push_str(v.unwrap_or(""));
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Value `i`, `None` if missing.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        Some(&self.text[start..self.ends[i]]).filter(|s| !s.is_empty())
    }

    /// Each value's hash in `dict`, 0 for a missing one (never looked up).
    pub fn hashes(&self, dict: &FileDict) -> Vec<u64> {
        (0..self.len())
            .map(|i| self.get(i).map_or(0, |v| dict.hash(v)))
            .collect()
    }

    pub fn clear(&mut self) {
        self.text.clear();
        self.ends.clear();
    }
}

/// Bytes of a value kept in its table slot. Nearly every value (ids, addresses, account numbers,
/// token ids) is shorter, so a lookup reads one cache line instead of chasing the arena; when
/// entries referred to the arena, those misses were a fifth of ingest in `perf`.
const INLINE: usize = 23;

/// Values ahead of the one being coded or placed whose table slots are already being fetched
/// (see [`FileDict::prefetch`]): at a few nanoseconds a value, enough to cover a load from memory.
/// Ingest's columns, the token table and a table built again all look this far ahead.
pub(super) const LOOKAHEAD: usize = 16;

/// A dictionary table entry: 32 bytes, two to a cache line.
/// What a table slot holds: the value's code and the low half of its hash, and whatever else
/// lets a lookup tell values apart before it reads the arena.
pub trait Slots: Copy {
    const EMPTY: Self;
    fn new(code: u32, tag: u32, v: &str) -> Self;
    fn key(&self) -> Key;
    /// Whether the slot holds `v` (its tag already matched).
    fn holds(&self, v: &str, arena: &str, ends: &[usize]) -> bool;

    #[inline]
    fn code(&self) -> u32 {
        self.key().code
    }

    #[inline]
    fn tag(&self) -> u32 {
        self.key().tag
    }
}

/// What every slot holds: the value's code ([`NULL`] in an empty slot) and the low half of its
/// hash.
#[derive(Clone, Copy)]
pub struct Key {
    code: u32,
    tag: u32,
}

/// A slot with the value's first bytes inline (32 bytes): nearly every value a reader thread
/// looks up is already in its table and compared without reading the arena.
#[derive(Clone, Copy)]
pub struct Slot {
    key: Key,
    /// Length in bytes, saturated: longer values are compared through the arena.
    len: u8,
    head: [u8; INLINE],
}

impl Slots for Slot {
    const EMPTY: Slot = Slot {
        key: Key { code: NULL, tag: 0 },
        len: 0,
        head: [0; INLINE],
    };

    fn new(code: u32, tag: u32, v: &str) -> Slot {
        let mut head = [0; INLINE];
        let n = v.len().min(INLINE);
        head[..n].copy_from_slice(&v.as_bytes()[..n]);
        let len = u8::try_from(v.len()).unwrap_or(u8::MAX);
        Slot {
            key: Key { code, tag },
            len,
            head,
        }
    }

    #[inline]
    fn key(&self) -> Key {
        self.key
    }

    #[inline]
    fn holds(&self, v: &str, arena: &str, ends: &[usize]) -> bool {
        if v.len() <= INLINE {
            self.len as usize == v.len() && same_short(&self.head[..v.len()], v.as_bytes())
        } else {
            self.len as usize == v.len().min(u8::MAX as usize)
                && self.head == v.as_bytes()[..INLINE]
                && entry(arena, ends, self.key.code) == v
        }
    }
}

/// A slot of the code and the tag alone (8 bytes), for the run's token table: its ids are
/// looked up once per reader thread that meets them, most of them new (a tag that differs
/// settles those without the arena), and at 85.9M events its 32M slots were 1 GB of ingest as
/// [`Slot`]s. The 85.9M-event export without a state: ingest's peak 6.38 → 5.54 GB and its CPU
/// 83 → 77 s, the run's peak 6.38 → 6.33 GB (now the detectors'); the 10M exports 3.91–4.12 →
/// 3.72–3.77 s (CSV) and 4.49–4.94 → 4.30–4.38 s (JSON lines), with `scripts/compare.sh` in both
/// orders; reports byte-identical (`docs/performance.md`, twenty-eighth session).
#[derive(Clone, Copy)]
pub struct Narrow(Key);

impl Slots for Narrow {
    const EMPTY: Narrow = Narrow(Key { code: NULL, tag: 0 });

    fn new(code: u32, tag: u32, _: &str) -> Narrow {
        Narrow(Key { code, tag })
    }

    #[inline]
    fn key(&self) -> Key {
        self.0
    }

    #[inline]
    fn holds(&self, v: &str, arena: &str, ends: &[usize]) -> bool {
        entry(arena, ends, self.0.code) == v
    }
}

/// `a == b` for slices of equal length up to [`INLINE`], as a few overlapping word compares: a
/// call to `memcmp` for each lookup was 6 % of ingest in `perf`.
#[inline]
fn same_short(a: &[u8], b: &[u8]) -> bool {
    fn word(s: &[u8], i: usize) -> u64 {
        let mut w = [0; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_ne_bytes(w)
    }
    fn half(s: &[u8], i: usize) -> u32 {
        let mut w = [0; 4];
        w.copy_from_slice(&s[i..i + 4]);
        u32::from_ne_bytes(w)
    }
    let n = a.len();
    match n {
        0..4 => a == b,
        4..8 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => {
            word(a, 0) == word(b, 0) && word(a, 8) == word(b, 8) && word(a, n - 8) == word(b, n - 8)
        }
    }
}

/// String `code` of an arena whose strings end at `ends` (empty past them): how the
/// dictionaries and the records' symbol table ([`crate::reduce::Symbols`]) keep their strings.
pub(crate) fn entry<'a>(arena: &'a str, ends: &[usize], code: u32) -> &'a str {
    let i = code as usize;
    let Some(&end) = ends.get(i) else {
        return "";
    };
    let start = if i == 0 { 0 } else { ends[i - 1] };
    arena.get(start..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes stay put while the table grows, values that share a slot's inline head or a hash
    /// still get codes of their own, and a cleared table starts over: with either slot.
    #[test]
    fn codes_are_stable_and_distinct() {
        stable_and_distinct::<Slot>();
        stable_and_distinct::<Narrow>();
    }

    fn stable_and_distinct<S: Slots>() {
        let mut dict = FileDict::<S>::default();
        let long = "x".repeat(300);
        let values: Vec<String> = (0..5000)
            .map(|i| match i % 3 {
                0 => format!("C{i:08}"),
                1 => format!("{}-{i}", &long[..30]),
                _ => format!("{long}{i}"),
            })
            .collect();
        let codes: Vec<u32> = values
            .iter()
            .map(|v| dict.code(dict.hash(v), v).expect("code"))
            .collect();
        let expected: Vec<u32> = (0..5000).collect();
        assert_eq!(codes, expected);
        for (v, &c) in values.iter().zip(&codes) {
            assert_eq!(dict.code(dict.hash(v), v).expect("code"), c, "{v}");
        }
        // Every value under one hash: only the comparison tells them apart.
        let mut same = FileDict::<S>::default();
        let got: Vec<u32> = ["a", "b", "a", &long, &format!("{long}y"), &long]
            .iter()
            .map(|v| same.code(7, v).expect("code"))
            .collect();
        assert_eq!(got, [0, 1, 0, 2, 3, 2]);
        dict.clear();
        assert_eq!(dict.len(), 0);
        let v = &values[4000];
        assert_eq!(dict.code(dict.hash(v), v).expect("code"), 0);
    }

    /// Every length a slot holds inline, with a difference at every position.
    #[test]
    fn short_values_compare_byte_for_byte() {
        for n in 0..=INLINE {
            let a: Vec<u8> = (0..n as u8).map(|b| b + 1).collect();
            assert!(same_short(&a, &a.clone()), "length {n}");
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x40;
                assert!(!same_short(&a, &b), "length {n}, byte {i}");
            }
        }
    }

    /// Differential: on random values with many repeats, long and short, across growth and a
    /// clear, the table gives the codes a `hashbrown` map numbering values in order of first
    /// sight gives, with either slot.
    #[test]
    fn codes_agree_with_hashbrown() {
        agree_with_hashbrown::<Slot>();
        agree_with_hashbrown::<Narrow>();
    }

    fn agree_with_hashbrown<S: Slots>() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let mut next = |n: u64| rng.random_range(0..n);
        let mut dict = FileDict::<S>::default();
        let mut oracle: hashbrown::HashMap<String, u32, FixedState> =
            hashbrown::HashMap::with_hasher(FixedState::with_seed(1));
        for round in 0..2 {
            for _ in 0..50_000 {
                let n = next(20_000);
                let v = match n % 4 {
                    0 => format!("C{n}"),
                    1 => format!("{n:x}").repeat(1 + (n % 9) as usize),
                    2 => String::new(),
                    _ => format!("203.0.{}.{}", n % 256, n / 256),
                };
                let fresh = oracle.len() as u32;
                let want = *oracle.entry(v.clone()).or_insert(fresh);
                assert_eq!(dict.code(dict.hash(&v), &v).expect("code"), want, "{v:?}");
            }
            assert_eq!(dict.len(), oracle.len(), "round {round}");
            dict.clear();
            oracle.clear();
        }
    }
}
