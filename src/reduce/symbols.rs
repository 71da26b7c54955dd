//! Strings as small numbers that mean the same thing in every run: the codes the reduced state's
//! bitmaps are made of. polars' dictionary codes cannot serve: they are assigned per process, in
//! whatever order the files happened to be read, so a bitmap written tonight would name other
//! accounts tomorrow.

use hashbrown::HashMap;

use crate::error::{Error, Result};
use crate::frame::{NULL, dictionary};

/// Account ids and entity ids (principals, keys, addresses), one table for both: a customer
/// principal is also an account, and sharing the code lets a profile ask "did it touch itself"
/// with one bitmap lookup. Codes are given in order of first sight and never change.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Symbols {
    code: HashMap<Box<str>, u32, foldhash::fast::FixedState>,
    names: Vec<Box<str>>,
}

impl Symbols {
    pub fn new() -> Symbols {
        Symbols::default()
    }

    /// The code of `name`, given now if it has none.
    pub fn intern(&mut self, name: &str) -> Result<u32> {
        if let Some(&code) = self.code.get(name) {
            return Ok(code);
        }
        let code = u32::try_from(self.names.len())
            .ok()
            .filter(|&c| c != NULL)
            .ok_or_else(|| Error::Argument {
                what: "distinct ids",
                value: self.names.len().to_string(),
                reason: "more than 2³² − 1 distinct accounts and entities in one state".into(),
            })?;
        self.names.push(name.into());
        self.code.insert(name.into(), code);
        Ok(code)
    }

    /// The code of `name`, if it has one.
    pub fn get(&self, name: &str) -> Option<u32> {
        self.code.get(name).copied()
    }

    /// The name behind `code`.
    pub fn name(&self, code: u32) -> &str {
        self.names.get(code as usize).map_or("", |n| n)
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Bytes the names take written out (each name and a 4-byte length): the table's share of a
    /// stored state.
    pub fn stored_bytes(&self) -> usize {
        self.names.iter().map(|n| n.len() + 4).sum()
    }
}

/// Turns polars dictionary codes of one run into [`Symbols`] codes, looking each dictionary code
/// up once: a table indexed by dictionary code, filled as codes are met.
pub(super) struct FromDictionary {
    cache: Vec<u32>,
}

impl FromDictionary {
    pub(super) fn new() -> FromDictionary {
        FromDictionary {
            cache: vec![NULL; dictionary().num_cats_upper_bound()],
        }
    }

    /// The symbol of dictionary code `code` ([`NULL`] stays [`NULL`]).
    pub(super) fn symbol(&mut self, code: u32, symbols: &mut Symbols) -> Result<u32> {
        if code == NULL {
            return Ok(NULL);
        }
        let c = code as usize;
        if c >= self.cache.len() {
            self.cache.resize(c + 1, NULL);
        }
        if self.cache[c] == NULL {
            let dict = dictionary();
            self.cache[c] = symbols.intern(dict.cat_to_str(code).unwrap_or_default())?;
        }
        Ok(self.cache[c])
    }
}
