//! The run's dictionary of names: every string column of the event frame but the event type
//! (a dictionary of its own, [`super::event_type`]) and the token id (`normalize::tokens`) holds
//! `u32` codes into this one table, shared by every column, reader thread and context table, so
//! that columns join and compare on codes. It replaces polars' process-wide categorical
//! dictionary, which keeps each name in an allocation of its own beside a slot, a hash and a
//! second index: 132–147 bytes a name of 27 bytes (a scratch program inserting 1M–9M names), so
//! that at 300.15M events its 9.4M names were about 1.24 GB of the 1.75 GB resident after ingest
//! (`docs/scale.md`, sixty-second session).
//!
//! Here a name is its bytes after a 4-byte length in blocks that never move, an 8-byte pointer
//! to them in pages of the index, and an 8-byte slot (a code and the low half of its hash) in a
//! table at most three quarters full. Names are added under one lock, a batch at a time (a
//! reader thread's new names of a chunk, [`Dictionary::insert_all`]); they are read by code
//! without a lock, which every pass over the frame does.
//! Names are never removed: a code, once given, names the same text for the whole process.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use foldhash::fast::FixedState;
use polars::prelude::{PolarsResult, polars_err};

use crate::normalize::dictionary::prefetch;

/// Codes an index page holds.
const PAGE: usize = 1 << 16;

/// Pages the index may hold: every code but [`super::NULL`].
const PAGES: usize = (u32::MAX as usize).div_ceil(PAGE);

/// Bytes of a block of names; a longer name takes a block of its own.
const BLOCK: usize = 1 << 20;

/// Names hashed ahead of the one being placed (see [`crate::normalize::dictionary::prefetch`]).
const LOOKAHEAD: usize = 16;

type Page = [AtomicPtr<u8>; PAGE];

/// See the module comment.
pub struct Dictionary {
    /// Where the names are, by code: page `c / PAGE`, entry `c % PAGE`, each pointing at a
    /// name's length and bytes. Pages are made once and never moved, so a code is read with two
    /// loads and no lock.
    pages: Box<[AtomicPtr<Page>]>,
    /// Codes given: every entry below is written.
    len: AtomicU32,
    table: Mutex<Table>,
}

/// What adding names needs.
#[derive(Default)]
struct Table {
    /// Code in the low half, low half of the hash in the high; [`EMPTY`] for none.
    slots: Vec<u64>,
    /// Every block of names (a leaked boxed slice, freed with the dictionary), written from the
    /// start; the last one is being filled. Raw, so that writing a name never makes a `&mut` of
    /// a block whose earlier names other threads are reading.
    blocks: Vec<*mut [u8]>,
    /// Bytes written in the last block.
    used: usize,
    /// Codes given (as `len`, written only under the lock).
    len: u32,
}

// SAFETY: the blocks are owned by the table alone (freed in `Dictionary::drop`); other threads
// only read the names already published in them, which are never written again.
unsafe impl Send for Table {}

const EMPTY: u64 = u64::MAX;

fn hash(name: &str) -> u64 {
    FixedState::default().hash_one(name)
}

impl Default for Dictionary {
    fn default() -> Self {
        Dictionary::new()
    }
}

impl Dictionary {
    pub fn new() -> Dictionary {
        Dictionary {
            pages: (0..PAGES).map(|_| AtomicPtr::default()).collect(),
            len: AtomicU32::new(0),
            table: Mutex::default(),
        }
    }

    /// Codes given so far: every code below names a string.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The name of `code`, if it is one.
    #[inline]
    pub fn name(&self, code: u32) -> Option<&str> {
        if code >= self.len.load(Ordering::Acquire) {
            return None;
        }
        let page = self.pages[code as usize / PAGE].load(Ordering::Acquire);
        if page.is_null() {
            return None;
        }
        // SAFETY: a page, once published, lives as long as the dictionary (freed in `drop`).
        let at = unsafe { &*page }[code as usize % PAGE].load(Ordering::Acquire);
        if at.is_null() {
            return None;
        }
        // SAFETY: `at` was published (release) after the length and the bytes behind it were
        // written, into a block that is never written there again, moved or freed before the
        // dictionary; the bytes are a `&str`'s.
        unsafe {
            let len = u32::from_ne_bytes(std::ptr::read_unaligned(at.cast::<[u8; 4]>()));
            let bytes = std::slice::from_raw_parts(at.add(4), len as usize);
            Some(std::str::from_utf8_unchecked(bytes))
        }
    }

    /// The code of `name`, if it has one.
    pub fn code(&self, name: &str) -> Option<u32> {
        let table = self.unsealed();
        table.find(self, hash(name), name).ok()
    }

    /// Lets go of the slots, which only adding names and looking them up by text need: once
    /// ingest is done the records stage reads names by code alone, and at 300.15M events the
    /// slots were 128 MiB of it. The next lookup by text builds them again from the names.
    pub fn seal(&self) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        table.slots = Vec::new();
    }

    /// The table, its slots built again first if it was sealed: the names hashed side by side
    /// without the lock (a rayon worker that waits on its pool while holding it could be handed
    /// a task that wants it), then placed under it, unless another thread did so meanwhile.
    /// Nothing is added to a sealed table, so the names hashed are still all of them.
    fn unsealed(&self) -> MutexGuard<'_, Table> {
        use rayon::prelude::*;
        let lock = || self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let table = lock();
        if !table.sealed() {
            return table;
        }
        let len = table.len;
        drop(table);
        let tags: Vec<u32> = (0..len)
            .into_par_iter()
            .map(|code| hash(self.name(code).unwrap_or_default()) as u32)
            .collect();
        let mut table = lock();
        if table.sealed() {
            table.place_all(&tags);
        }
        table
    }

    /// The code of `name`, given now if it has none.
    pub fn insert(&self, name: &str) -> PolarsResult<u32> {
        Ok(self.insert_all(&[name])?[0])
    }

    /// The code of each of `names`, given now to those that have none: hashed before the lock is
    /// taken, and each looked up with the slots of the names ahead already on their way.
    pub fn insert_all(&self, names: &[&str]) -> PolarsResult<Vec<u32>> {
        let hashes: Vec<u64> = names.iter().map(|n| hash(n)).collect();
        let mut table = self.unsealed();
        let mut codes = Vec::with_capacity(names.len());
        for (i, (&name, &h)) in names.iter().zip(&hashes).enumerate() {
            if let Some(&ahead) = hashes.get(i + LOOKAHEAD) {
                table.prefetch(ahead);
            }
            let code = match table.find(self, h, name) {
                Ok(code) => code,
                Err(slot) => table.add(self, slot, h, name)?,
            };
            codes.push(code);
        }
        Ok(codes)
    }

    /// Bytes held: the blocks, the pages made and the table's slots.
    pub fn bytes(&self) -> usize {
        let table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let pages = (table.len as usize).div_ceil(PAGE) * std::mem::size_of::<Page>();
        let blocks: usize = table.blocks.iter().map(|b| b.len()).sum();
        pages + blocks + table.slots.capacity() * 8 + self.pages.len() * 8
    }
}

impl Table {
    /// Whether the slots were let go of ([`Dictionary::seal`]) while names are held.
    fn sealed(&self) -> bool {
        self.slots.is_empty() && self.len > 0
    }

    /// Slots for codes 0, 1, 2… whose hashes' low halves are `tags`, each placed with the slots
    /// of later names already on their way.
    fn place_all(&mut self, tags: &[u32]) {
        let mut size = 1024;
        while (tags.len() + 1) * 4 > size * 3 {
            size *= 2;
        }
        self.slots = vec![EMPTY; size];
        for (code, &tag) in tags.iter().enumerate() {
            if let Some(&ahead) = tags.get(code + LOOKAHEAD) {
                self.prefetch(ahead as u64);
            }
            self.put((tag as u64) << 32 | code as u64);
        }
    }

    /// `slot` in the first empty slot from where its tag places it.
    fn put(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = (slot >> 32) as usize & mask;
        while self.slots[i] != EMPTY {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn prefetch(&self, hash: u64) {
        if let Some(slot) = self
            .slots
            .get(hash as u32 as usize & self.slots.len().wrapping_sub(1))
        {
            prefetch(slot);
        }
    }

    /// The code of `name` (hash `hash`), or the empty slot where it goes.
    fn find(&self, dict: &Dictionary, hash: u64, name: &str) -> Result<u32, usize> {
        if self.slots.is_empty() {
            return Err(usize::MAX);
        }
        let mask = self.slots.len() - 1;
        let tag = hash as u32;
        let mut i = tag as usize & mask;
        loop {
            let slot = self.slots[i];
            if slot == EMPTY {
                return Err(i);
            }
            let code = slot as u32;
            if (slot >> 32) as u32 == tag && dict.name(code) == Some(name) {
                return Ok(code);
            }
            i = (i + 1) & mask;
        }
    }

    /// `name` given the next code, its slot `slot` (from [`Table::find`]).
    fn add(
        &mut self,
        dict: &Dictionary,
        mut slot: usize,
        hash: u64,
        name: &str,
    ) -> PolarsResult<u32> {
        let code = self.len;
        if code == super::NULL {
            return Err(polars_err!(ComputeError: "more than 2³² - 1 distinct names"));
        }
        let len = u32::try_from(name.len())
            .map_err(|_| polars_err!(ComputeError: "a name of more than 4 GiB"))?;
        if (self.len as usize + 1) * 4 > self.slots.len() * 3 {
            self.grow();
            slot = usize::MAX;
        }
        let at = self.write(len, name.as_bytes());
        let (page, entry) = (code as usize / PAGE, code as usize % PAGE);
        let mut page_at = dict.pages[page].load(Ordering::Acquire);
        if page_at.is_null() {
            // Made on the heap: a page (512 KiB) built on the stack first would not fit the small
            // stacks of the threads that place names.
            let fresh: Vec<AtomicPtr<u8>> = (0..PAGE).map(|_| AtomicPtr::default()).collect();
            let fresh: Box<Page> = (fresh.into_boxed_slice().try_into())
                .map_err(|_| polars_err!(ComputeError: "an index page of the wrong length"))?;
            page_at = Box::into_raw(fresh);
            dict.pages[page].store(page_at, Ordering::Release);
        }
        // SAFETY: pages are only made here, under the lock, and live as long as the dictionary.
        let page = unsafe { &*page_at };
        page[entry].store(at, Ordering::Release);
        self.len = code + 1;
        dict.len.store(self.len, Ordering::Release);
        if slot == usize::MAX {
            slot = match self.find(dict, hash, name) {
                Err(empty) => empty,
                Ok(_) => unreachable!("a name is added once"),
            };
        }
        self.slots[slot] = (hash as u32 as u64) << 32 | code as u64;
        Ok(code)
    }

    /// Where `bytes`, after their length `len`, are written: the last block, or a new one.
    fn write(&mut self, len: u32, bytes: &[u8]) -> *mut u8 {
        let need = 4 + bytes.len();
        if (self.blocks.last()).is_none_or(|&b| self.used + need > b.len()) {
            let block = vec![0u8; need.max(BLOCK)].into_boxed_slice();
            self.blocks.push(Box::into_raw(block));
            self.used = 0;
        }
        let block = self.blocks[self.blocks.len() - 1];
        // SAFETY: `used + need` is within the block (just checked), and nothing reads these
        // bytes before their pointer is published.
        unsafe {
            let at = block.cast::<u8>().add(self.used);
            std::ptr::copy_nonoverlapping(len.to_ne_bytes().as_ptr(), at, 4);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), at.add(4), bytes.len());
            self.used += need;
            at
        }
    }

    /// Doubles the slots; a slot's tag is what it is placed by, so nothing is hashed again.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(1024);
        let old = std::mem::replace(&mut self.slots, vec![EMPTY; size]);
        for slot in old.into_iter().filter(|&s| s != EMPTY) {
            self.put(slot);
        }
    }
}

impl Drop for Dictionary {
    fn drop(&mut self) {
        let table = self.table.get_mut().unwrap_or_else(PoisonError::into_inner);
        for &block in &table.blocks {
            // SAFETY: made by `Box::into_raw` in `Table::write`, freed once, here.
            drop(unsafe { Box::from_raw(block) });
        }
        for page in self.pages.iter() {
            let page = page.load(Ordering::Acquire);
            if !page.is_null() {
                // SAFETY: made by `Box::into_raw` in `Table::add`, freed once, here.
                drop(unsafe { Box::from_raw(page) });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Differential: names long and short, many repeated, across growth of the slots, the
    /// blocks and the index's pages, get the codes a `hashbrown` map numbering names in order
    /// of first sight gives, and read back as themselves.
    #[test]
    fn codes_agree_with_hashbrown() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let dict = Dictionary::new();
        let mut oracle: hashbrown::HashMap<String, u32> = hashbrown::HashMap::new();
        let long = "y".repeat(BLOCK + 10);
        for round in 0..4 {
            let batch: Vec<String> = (0..60_000)
                .map(|_| {
                    let n: u32 = rng.random_range(0..150_000);
                    match n % 5 {
                        0 => format!("C{n:08}"),
                        1 => format!("203.0.{}.{}", n % 256, n / 256),
                        2 => format!("{n:x}").repeat(1 + (n % 40) as usize),
                        3 if n % 1000 == 3 => format!("{long}{round}"),
                        _ => format!("user{n}@example.com"),
                    }
                })
                .collect();
            let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
            let got = dict.insert_all(&refs).expect("codes");
            for (name, code) in batch.iter().zip(got) {
                let fresh = oracle.len() as u32;
                assert_eq!(
                    code,
                    *oracle.entry(name.clone()).or_insert(fresh),
                    "{round}"
                );
            }
        }
        assert!(oracle.len() > PAGE, "the index outgrew one page");
        assert_eq!(dict.len(), oracle.len());
        for (name, &code) in &oracle {
            assert_eq!(dict.name(code), Some(name.as_str()));
            assert_eq!(dict.code(name), Some(code));
        }
        assert_eq!(dict.name(oracle.len() as u32), None);
        assert_eq!(dict.code("never added"), None);
        assert_eq!(dict.insert("").expect("code"), oracle.len() as u32);
        assert_eq!(dict.name(oracle.len() as u32), Some(""));
    }

    /// A sealed dictionary reads its names by code as before, and looked up or added to by
    /// text afterwards gives the codes it gave before sealing, new names the next ones.
    #[test]
    fn a_sealed_dictionary_finds_its_names_again() {
        let dict = Dictionary::new();
        let names: Vec<String> = (0..5000)
            .map(|i| format!("10.1.{}.{}", i / 256, i % 256))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let codes = dict.insert_all(&refs).expect("codes");
        dict.seal();
        assert_eq!(dict.table.lock().expect("table").slots.len(), 0, "sealed");
        assert_eq!(dict.name(codes[4321]), Some(names[4321].as_str()));
        assert_eq!(dict.code(&names[17]), Some(codes[17]));
        dict.seal();
        let mut again: Vec<&str> = refs.iter().rev().copied().collect();
        again.push("a new name");
        let mut want: Vec<u32> = codes.iter().rev().copied().collect();
        want.push(5000);
        assert_eq!(dict.insert_all(&again).expect("codes"), want);
        assert_eq!(dict.code("a new name"), Some(5000));
    }

    /// Names read by code on other threads while one thread adds more read back whole. The
    /// adding thread has a stack smaller than an index page, as placing threads may (an
    /// optimised build never put the page on the stack here: this alone does not catch that).
    #[test]
    fn names_read_while_others_are_added() {
        let dict = Dictionary::new();
        let names: Vec<String> = (0..200_000).map(|i| format!("acct-{i}")).collect();
        std::thread::scope(|s| {
            let small = std::thread::Builder::new().stack_size(128 << 10);
            let adding = small.spawn_scoped(s, || {
                for batch in names.chunks(1000) {
                    let refs: Vec<&str> = batch.iter().map(String::as_str).collect();
                    dict.insert_all(&refs).expect("codes");
                }
            });
            adding.expect("a thread");
            s.spawn(|| {
                let mut seen = 0;
                while seen < names.len() {
                    let len = dict.len();
                    for (code, name) in names.iter().enumerate().take(len).skip(seen) {
                        assert_eq!(dict.name(code as u32), Some(name.as_str()));
                    }
                    seen = len;
                }
            });
        });
    }
}
