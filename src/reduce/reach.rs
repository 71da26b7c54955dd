//! A run's access events as reduced records, with the symbol table their codes are in: the one
//! model enumeration, the account population and the cumulative-reach charts read (issue 21,
//! part 5). They used to count over every access event ([`crate::detect::reach::AccessRows`],
//! now the reference the records are tested against). Measured with `benches/reduce_state.rs`:
//! at 8.7M events the records are built in 1.07–1.15 s and profiled in 0.11–0.13 s where those
//! counts took 1.03–1.10 s (five repeats); at 85.9M, 18.6 s and 1.1 s against 21.6 s. The
//! records encode to 65 MB at 8.7M where the sorted rows held 140 MB.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use roaring::RoaringBitmap;

use super::{Entities, KINDS, Profile, Reduced, Symbols, Walk, store};
use crate::error::Result;
use crate::normalize::TimeParser;

pub struct Reach {
    records: Records,
    symbols: Symbols,
    walk: Walk,
}

/// Where the records are.
enum Records {
    /// Reduced in this run and held whole: a run without a state, or the first of one.
    Held(Reduced),
    /// In a folder as [`store`] writes them, each kind read when asked, a batch of whole
    /// entities at a time, and dropped after: not the four kinds held beside the frame and every
    /// detector's working set. Over the 85.9M-event state the four held whole were 1.05 GB of
    /// what the run kept resident from the records stage to the end; over the 257.5M one,
    /// 3.97 GB.
    Stored {
        dir: PathBuf,
        accounts: RoaringBitmap,
        self_served: u64,
    },
}

impl Reach {
    /// Reduces the access events of `events`; `walk` is what counts as a sequential step.
    pub fn of(events: &DataFrame, time: &TimeParser, walk: Walk) -> Result<Reach> {
        let mut symbols = Symbols::new();
        let reduced = Reduced::of(events, time, walk, &mut symbols)?;
        Ok(Reach::from_parts(reduced, symbols, walk))
    }

    /// Reduces the access events of `events` into `dir`, a group of days at a time, and reads
    /// them from there (see [`Reduced::of_on_disk`]).
    pub fn of_on_disk(
        events: (&DataFrame, &crate::normalize::ColdColumns),
        time: &TimeParser,
        walk: Walk,
        dir: &Path,
    ) -> Result<Reach> {
        let mut symbols = Symbols::new();
        let made = Reduced::of_on_disk(events, time, walk, &mut symbols, dir)?;
        Ok(Reach::stored(
            dir,
            made.accounts,
            made.self_served,
            symbols,
            walk,
        ))
    }

    /// Records reduced elsewhere, held whole.
    pub fn from_parts(reduced: Reduced, symbols: Symbols, walk: Walk) -> Reach {
        Reach {
            records: Records::Held(reduced),
            symbols,
            walk,
        }
    }

    /// Records [`store::write`] (or [`store::write_kind`] a kind at a time) put in `dir`, with
    /// every account they name and how many accounts served themselves (`self_served`), which
    /// would otherwise take reading the principals' records.
    pub fn stored(
        dir: &Path,
        accounts: RoaringBitmap,
        self_served: u64,
        symbols: Symbols,
        walk: Walk,
    ) -> Reach {
        Reach {
            records: Records::Stored {
                dir: dir.to_path_buf(),
                accounts,
                self_served,
            },
            symbols,
            walk,
        }
    }

    /// The records and their symbol table, when held whole; `None` when they are in a folder.
    pub fn held(&self) -> Option<(&Reduced, &Symbols)> {
        match &self.records {
            Records::Held(reduced) => Some((reduced, &self.symbols)),
            Records::Stored { .. } => None,
        }
    }

    /// The folder the records are read from, when they are not held.
    pub fn stored_in(&self) -> Option<&Path> {
        match &self.records {
            Records::Held(_) => None,
            Records::Stored { dir, .. } => Some(dir),
        }
    }

    /// What counts as a sequential step.
    pub fn walk(&self) -> Walk {
        self.walk
    }

    fn accounts_set(&self) -> &RoaringBitmap {
        match &self.records {
            Records::Held(reduced) => &reduced.accounts,
            Records::Stored { accounts, .. } => accounts,
        }
    }

    /// Whether no access event named an account.
    pub fn is_empty(&self) -> bool {
        self.accounts_set().is_empty()
    }

    /// Distinct accounts named by access events.
    pub fn accounts(&self) -> u64 {
        self.accounts_set().len()
    }

    /// Of those, reached at least once by a principal with the account's own id.
    pub fn self_served(&self) -> u64 {
        match &self.records {
            Records::Held(reduced) => reduced.self_served(),
            Records::Stored { self_served, .. } => *self_served,
        }
    }

    /// One profile per entity of the kind in column `key` (one of [`KINDS`]), with day detail
    /// from `detail_from` accounts on.
    pub fn profiles(&self, key: &str, detail_from: u64) -> Result<BTreeMap<String, Profile>> {
        Ok((self.profiles_by_name(key, detail_from)?.into_iter())
            .map(|(e, p)| (self.symbols.name(e).to_string(), p))
            .collect())
    }

    /// [`Reach::profiles`] as (entity code, profile) in the order of the entities' names (see
    /// [`super::kind_profiles_by_name`]); [`Reach::name`] names them. Stored records are
    /// profiled a batch at a time as they are read ([`store::map_kind`]).
    pub fn profiles_by_name(&self, key: &str, detail_from: u64) -> Result<Vec<(u32, Profile)>> {
        let (accounts, walk) = (self.accounts_set(), self.walk);
        let profile =
            |part: &Entities| super::kind_profiles(part, accounts, key, walk, detail_from);
        let Some(k) = KINDS.iter().position(|kind| *kind == key) else {
            return Ok(Vec::new());
        };
        let all = match &self.records {
            Records::Held(reduced) => profile(&reduced.kinds[k]),
            Records::Stored { dir, .. } => {
                let n = self.symbols.len() as u64;
                let parts = store::map_kind(dir, k, n, |_| true, |part| profile(&part))?;
                let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
                for part in parts {
                    all.extend(part);
                }
                all
            }
        };
        Ok(super::by_name(all, |p| p.0, &self.symbols))
    }

    /// The name of an entity code of the records.
    pub fn name(&self, code: u32) -> &str {
        self.symbols.name(code)
    }

    /// New accounts per local day of the entities of `key` that `choose` picks from all of them
    /// (given in name order), by entity code. The cumulative-reach charts follow a few named
    /// entities and an even sample of their peers, so only their stored records are built: with
    /// a kind's records read whole, the chart stage over the 85.9M-event state peaked 0.6 GB
    /// above what the run held (4.40 GB), with those alone 0.35 GB (4.18 GB).
    pub fn first_days(
        &self,
        key: &str,
        choose: impl FnOnce(&[u32]) -> Vec<u32>,
    ) -> Result<BTreeMap<u32, Vec<(i64, u64)>>> {
        let Some(k) = KINDS.iter().position(|kind| *kind == key) else {
            return Ok(BTreeMap::new());
        };
        let n = self.symbols.len() as u64;
        let entities = match &self.records {
            Records::Held(reduced) => super::kind_entities(&reduced.kinds[k]),
            Records::Stored { dir, .. } => store::read_entities(dir, k, n)?,
        };
        let chosen: RoaringBitmap = choose(&super::by_name(entities, |&e| e, &self.symbols))
            .into_iter()
            .collect();
        let keep = |e: u32| chosen.contains(e);
        Ok(match &self.records {
            Records::Held(reduced) => {
                (super::kind_first_days(&reduced.kinds[k], keep).into_iter()).collect()
            }
            Records::Stored { dir, .. } => {
                let parts =
                    store::map_kind(dir, k, n, keep, |part| super::kind_first_days(&part, keep))?;
                parts.into_iter().flatten().collect()
            }
        })
    }
}
