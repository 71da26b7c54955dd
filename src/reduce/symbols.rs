//! Strings as small numbers that mean the same thing in every run: the codes the reduced state's
//! bitmaps are made of. The run's dictionary codes cannot serve: they are assigned per process, in
//! whatever order the files happened to be read, so a bitmap written tonight would name other
//! accounts tomorrow.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::frame::{NULL, dictionary};
use crate::normalize::dictionary::entry;

/// Account ids and entity ids (principals, keys, addresses), one table for both: a customer
/// principal is also an account, and sharing the code lets a profile ask "did it touch itself"
/// with one bitmap lookup. Codes are given in the order names are added and never change.
///
/// A name met in this run's frame is the run's dictionary's already, and is kept here as its code
/// there (4 bytes); a name read back from a state is kept back to back with the others in a
/// text of their own. The hash table holds codes and hashes names through either. A box per
/// name held a pointer, a length and an allocator's block besides: with 2.99M names, loaded by
/// every nightly run over the 85.9M-event state, that run peaked 35–75 MB higher (two
/// alternated pairs). Held as text, the 9.4M names of the 300.15M-event export stood a second
/// time beside the dictionary from the records stage to the end (about 21 bytes a name).
#[derive(Default, Clone)]
pub struct Symbols {
    code: HashTable<u32>,
    /// Consecutive codes held alike, in code order: a state's names, then a night's.
    runs: Vec<Run>,
    len: usize,
    /// The names' length in all.
    bytes: usize,
}

#[derive(Debug, Clone)]
struct Run {
    first: u32,
    names: Names,
}

#[derive(Debug, Clone)]
enum Names {
    /// Held here: name `i` of the run ends at `ends[i]` in `text`.
    Text { text: String, ends: Vec<usize> },
    /// The run's dictionary's, by its code there.
    Dictionary(Vec<u32>),
}

impl std::fmt::Debug for Symbols {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = (0..self.len as u32).map(|c| self.name(c)).collect();
        f.debug_struct("Symbols").field("names", &names).finish()
    }
}

impl PartialEq for Symbols {
    fn eq(&self, other: &Symbols) -> bool {
        self.len == other.len && (0..self.len as u32).all(|c| self.name(c) == other.name(c))
    }
}

fn hash(name: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(name)
}

/// The name behind `code`, empty past the table.
fn name_in(runs: &[Run], code: u32) -> &str {
    let Some(run) = runs[..runs.partition_point(|r| r.first <= code)].last() else {
        return "";
    };
    let i = code - run.first;
    match &run.names {
        Names::Text { text, ends } => entry(text, ends, i),
        Names::Dictionary(codes) => (codes.get(i as usize))
            .and_then(|&c| dictionary().name(c))
            .unwrap_or_default(),
    }
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// A table with room for `n` names: reading back the 85.9M-event state's 3M names, growing
    /// the table as they came was the largest item of a `perf` profile (8.6 % of the samples).
    /// `bytes`: their length in all, so the names' buffer is not grown (and copied) as it fills.
    pub fn with_capacity(n: usize, bytes: usize) -> Symbols {
        let text = Names::Text {
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(n),
        };
        Symbols {
            code: HashTable::with_capacity(n),
            runs: vec![Run {
                first: 0,
                names: text,
            }],
            ..Symbols::default()
        }
    }

    /// The code of `name`, given now if it has none.
    pub fn intern(&mut self, name: &str) -> Result<u32> {
        self.intern_as(name, None)
    }

    /// [`Symbols::intern`] of `name`, which is `code` in the run's dictionary: kept as that code,
    /// not as text.
    pub(super) fn intern_coded(&mut self, name: &str, code: u32) -> Result<u32> {
        self.intern_as(name, Some(code))
    }

    fn intern_as(&mut self, name: &str, coded: Option<u32>) -> Result<u32> {
        let h = hash(name);
        if let Some(&code) = self.code.find(h, |&c| self.name(c) == name) {
            return Ok(code);
        }
        let code = u32::try_from(self.len)
            .ok()
            .filter(|&c| c != NULL)
            .ok_or_else(|| Error::Argument {
                what: "distinct ids",
                value: self.len.to_string(),
                reason: "more than 2³² − 1 distinct accounts and entities in one state".into(),
            })?;
        let fits = |run: &Run| {
            matches!(
                (&run.names, coded),
                (Names::Text { .. }, None) | (Names::Dictionary(_), Some(_))
            )
        };
        if !self.runs.last().is_some_and(fits) {
            let names = match coded {
                Some(_) => Names::Dictionary(Vec::new()),
                None => Names::Text {
                    text: String::new(),
                    ends: Vec::new(),
                },
            };
            self.runs.push(Run { first: code, names });
        }
        match (self.runs.last_mut().map(|r| &mut r.names), coded) {
            (Some(Names::Dictionary(codes)), Some(c)) => codes.push(c),
            (Some(Names::Text { text, ends }), _) => {
                text.push_str(name);
                ends.push(text.len());
            }
            _ => return Err(Error::Internal("a symbol run of the wrong kind".into())),
        }
        self.len += 1;
        self.bytes += name.len();
        let runs = &self.runs;
        self.code
            .insert_unique(h, code, |&c| hash(name_in(runs, c)));
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
        name_in(&self.runs, code)
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Bytes the names take written out (each name and a 4-byte length): the table's share of a
    /// stored state.
    pub fn stored_bytes(&self) -> usize {
        self.bytes + 4 * self.len
    }
}

/// Turns the run's dictionary codes into [`Symbols`] codes, looking each dictionary code
/// up once: a table indexed by dictionary code, filled as codes are met.
pub(super) struct FromDictionary {
    cache: Vec<u32>,
}

impl FromDictionary {
    pub(super) fn new() -> FromDictionary {
        FromDictionary {
            cache: vec![NULL; dictionary().len()],
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
            .map(|c| (dictionary().name(c).unwrap_or_default(), c))
            .collect();
        names.par_sort_unstable();
        let mut given = Vec::with_capacity(names.len());
        for (name, code) in names {
            given.push((code, symbols.intern_coded(name, code)?));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Names held as text and as dictionary codes, in runs that alternate (a state's names, a
    /// night's, then text again), and through the hash table's growth: every name keeps its
    /// code, is found by name, and the table equals one that holds them all as text.
    #[test]
    fn names_held_as_text_or_dictionary_codes_read_alike() {
        let dict = dictionary();
        let mut mixed = Symbols::new();
        let mut text = Symbols::with_capacity(4, 16);
        let names: Vec<String> = (0..3000).map(|i| format!("sym-{}-{i}", i % 7)).collect();
        for (i, name) in names.iter().enumerate() {
            let coded = match (i / 1000) % 2 == 1 {
                true => {
                    let code = dict.insert(name).expect("dictionary code");
                    mixed.intern_coded(name, code)
                }
                false => mixed.intern(name),
            };
            assert_eq!(coded.expect("interned"), i as u32);
            assert_eq!(text.intern(name).expect("interned"), i as u32);
        }
        assert_eq!(mixed.runs.len(), 3);
        assert!(matches!(mixed.runs[1].names, Names::Dictionary(_)));
        for (i, name) in names.iter().enumerate() {
            assert_eq!(mixed.name(i as u32), name);
            assert_eq!(mixed.get(name), Some(i as u32));
            let code = dict.code(name).unwrap_or(NULL);
            let again = match (i / 1000) % 2 == 1 {
                true => mixed.intern_coded(name, code),
                false => mixed.intern(name),
            };
            assert_eq!(again.expect("interned"), i as u32, "{name}");
        }
        assert_eq!(mixed.name(3000), "");
        assert_eq!(mixed.get("absent"), None);
        assert_eq!(mixed.len(), 3000);
        assert_eq!(mixed.stored_bytes(), text.stored_bytes());
        assert!(mixed == text);
        let mut other = text.clone();
        other.intern("one more").expect("interned");
        assert!(mixed != other);
    }
}
