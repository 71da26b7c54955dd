//! A run's access events as reduced records, with the symbol table their codes are in: the one
//! model enumeration, the account population and the cumulative-reach charts read (issue 21,
//! part 5). They used to count over every access event ([`crate::detect::reach::AccessRows`],
//! now the reference the records are tested against). Measured with `benches/reduce_state.rs`:
//! at 8.7M events the records are built in 1.07–1.15 s and profiled in 0.11–0.13 s where those
//! counts took 1.03–1.10 s (five repeats); at 85.9M, 18.6 s and 1.1 s against 21.6 s. The
//! records encode to 65 MB at 8.7M where the sorted rows held 140 MB.

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::DataFrame;

use super::{Profile, Reduced, Symbols, Walk};
use crate::error::Result;
use crate::normalize::TimeParser;

pub struct Reach {
    reduced: Reduced,
    symbols: Symbols,
    walk: Walk,
}

impl Reach {
    /// Reduces the access events of `events`; `walk` is what counts as a sequential step.
    pub fn of(events: &DataFrame, time: &TimeParser, walk: Walk) -> Result<Reach> {
        let mut symbols = Symbols::new();
        let reduced = Reduced::of(events, time, walk, &mut symbols)?;
        Ok(Reach {
            reduced,
            symbols,
            walk,
        })
    }

    /// Records reduced elsewhere (a state's, see [`crate::state::records`]).
    pub fn from_parts(reduced: Reduced, symbols: Symbols, walk: Walk) -> Reach {
        Reach {
            reduced,
            symbols,
            walk,
        }
    }

    /// The records and the symbol table their codes are in.
    pub fn parts(&self) -> (&Reduced, &Symbols) {
        (&self.reduced, &self.symbols)
    }

    /// What counts as a sequential step.
    pub fn walk(&self) -> Walk {
        self.walk
    }

    /// Whether no access event named an account.
    pub fn is_empty(&self) -> bool {
        self.reduced.accounts.is_empty()
    }

    /// Distinct accounts named by access events.
    pub fn accounts(&self) -> u64 {
        self.reduced.accounts.len()
    }

    /// Of those, reached at least once by a principal with the account's own id.
    pub fn self_served(&self) -> u64 {
        self.reduced.self_served()
    }

    /// One profile per entity of the kind in column `key` (one of [`super::KINDS`]), with day
    /// detail from `detail_from` accounts on.
    pub fn profiles(&self, key: &str, detail_from: u64) -> BTreeMap<String, Profile> {
        self.reduced
            .profiles(key, &self.symbols, self.walk, detail_from)
    }

    /// [`Reach::profiles`] as (entity code, profile) in the order of the entities' names (see
    /// [`super::Reduced::profiles_by_name`]); [`Reach::name`] names them.
    pub fn profiles_by_name(&self, key: &str, detail_from: u64) -> Vec<(u32, Profile)> {
        self.reduced
            .profiles_by_name(key, &self.symbols, self.walk, detail_from)
    }

    /// The name of an entity code of the records.
    pub fn name(&self, code: u32) -> &str {
        self.symbols.name(code)
    }

    /// New accounts per local day for each entity of `key` (or each of `only`).
    pub fn first_days(
        &self,
        key: &str,
        only: Option<&BTreeSet<String>>,
    ) -> BTreeMap<String, Vec<(i64, u64)>> {
        self.reduced.first_days(key, &self.symbols, only)
    }
}
