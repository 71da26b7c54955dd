//! Strings as small numbers that mean the same thing in every run: the codes the reduced state's
//! bitmaps are made of. polars' dictionary codes cannot serve: they are assigned per process, in
//! whatever order the files happened to be read, so a bitmap written tonight would name other
//! accounts tomorrow.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;
use polars::prelude::CategoricalMapping;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::frame::{NULL, dictionary};
use crate::normalize::dictionary::entry;

/// Account ids and entity ids (principals, keys, addresses), one table for both: a customer
/// principal is also an account, and sharing the code lets a profile ask "did it touch itself"
/// with one bitmap lookup. Codes are given in the order names are added and never change.
/// Each name is stored once, back to back with the others in `text`: the hash table holds codes
/// and hashes names through it. A box per name held a pointer, a length and an allocator's block
/// besides: with 2.99M names, loaded by every nightly run over the 85.9M-event state, that run
/// peaked 35–75 MB higher (two alternated pairs).
#[derive(Debug, Default, Clone)]
pub struct Symbols {
    code: HashTable<u32>,
    text: String,
    /// Where name `i` ends in `text`.
    ends: Vec<usize>,
}

impl PartialEq for Symbols {
    fn eq(&self, other: &Symbols) -> bool {
        self.ends == other.ends && self.text == other.text
    }
}

fn hash(name: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(name)
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// A table with room for `n` names: reading back the 85.9M-event state's 3M names, growing
    /// the table as they came was the largest item of a `perf` profile (8.6 % of the samples).
    /// `bytes`: their length in all, so the names' buffer is not grown (and copied) as it fills.
    pub fn with_capacity(n: usize, bytes: usize) -> Symbols {
        Symbols {
            code: HashTable::with_capacity(n),
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        }
    }

    /// The code of `name`, given now if it has none.
    pub fn intern(&mut self, name: &str) -> Result<u32> {
        let h = hash(name);
        if let Some(&code) = self.code.find(h, |&c| self.name(c) == name) {
            return Ok(code);
        }
        let code = u32::try_from(self.ends.len())
            .ok()
            .filter(|&c| c != NULL)
            .ok_or_else(|| Error::Argument {
                what: "distinct ids",
                value: self.ends.len().to_string(),
                reason: "more than 2³² − 1 distinct accounts and entities in one state".into(),
            })?;
        self.text.push_str(name);
        self.ends.push(self.text.len());
        let (text, ends) = (&self.text, &self.ends);
        self.code
            .insert_unique(h, code, |&c| hash(entry(text, ends, c)));
        Ok(code)
    }

    /// The code of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.code
            .find(hash(name), |&c| self.name(c) == name)
            .copied()
    }

    /// The name behind `code`.
    pub fn name(&self, code: u32) -> &str {
        entry(&self.text, &self.ends, code)
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes the names take written out (each name and a 4-byte length): the table's share of a
    /// stored state.
    pub fn stored_bytes(&self) -> usize {
        self.text.len() + 4 * self.ends.len()
    }
}

/// Turns polars dictionary codes of one run into [`Symbols`] codes, looking each dictionary code
/// up once: a table indexed by dictionary code, filled as codes are met.
pub(super) struct FromDictionary {
    cache: Vec<u32>,
    dict: Arc<CategoricalMapping>,
}

impl FromDictionary {
    pub(super) fn new() -> FromDictionary {
        let dict = dictionary();
        FromDictionary {
            cache: vec![NULL; dict.num_cats_upper_bound()],
            dict,
        }
    }

    /// `codes` (dictionary codes, [`NULL`] for none) as symbols, in place. Names without a
    /// symbol yet get theirs in name order, so codes never depend on the order in which rows
    /// were read or threads ran, and ids that number their accounts (`cust-000123`) get codes in
    /// that order, which keeps the bitmaps of a walk or a day's customers dense. Mapping row by
    /// row on one thread, codes in order of first sight, took 0.45 s of the 1.3 s a reduction
    /// of 8.7M events took, and its profiles 0.25 s instead of 0.11 (same figures, first sight
    /// found side by side: 1.25 s and 0.25 s).
    pub(super) fn map(&mut self, codes: &mut [u32], symbols: &mut Symbols) -> Result<()> {
        let top = codes.par_iter().filter(|&&c| c != NULL).max().copied();
        if let Some(top) = top.filter(|&t| t as usize >= self.cache.len()) {
            self.cache.resize(top as usize + 1, NULL);
        }
        let cache = &self.cache;
        let missing: Vec<AtomicBool> = (0..cache.len()).map(|_| AtomicBool::new(false)).collect();
        codes.par_iter().for_each(|&c| {
            if c != NULL && cache[c as usize] == NULL {
                missing[c as usize].store(true, Ordering::Relaxed);
            }
        });
        let mut names: Vec<(&str, u32)> = (0..cache.len() as u32)
            .filter(|&c| missing[c as usize].load(Ordering::Relaxed))
            .map(|c| (self.dict.cat_to_str(c).unwrap_or_default(), c))
            .collect();
        names.par_sort_unstable();
        let mut given = Vec::with_capacity(names.len());
        for (name, code) in names {
            given.push((code, symbols.intern(name)?));
        }
        for (code, symbol) in given {
            self.cache[code as usize] = symbol;
        }
        let cache = &self.cache;
        codes.par_iter_mut().for_each(|c| {
            if *c != NULL {
                *c = cache[*c as usize];
            }
        });
        Ok(())
    }
}
