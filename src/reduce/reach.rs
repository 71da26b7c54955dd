//! A run's access events as reduced records, with the symbol table their codes are in: the one
//! model enumeration, the account population and the cumulative-reach charts read (issue 21,
//! part 5). They used to count over every access event ([`crate::detect::reach::AccessRows`],
//! now the reference the records are tested against). Measured with `benches/reduce_state.rs`:
//! at 8.7M events the records are built in 1.07–1.15 s and profiled in 0.11–0.13 s where those
//! counts took 1.03–1.10 s (five repeats); at 85.9M, 18.6 s and 1.1 s against 21.6 s. The
//! records encode to 65 MB at 8.7M where the sorted rows held 140 MB.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use polars::prelude::DataFrame;
use roaring::RoaringBitmap;

use super::{Entities, KINDS, Profile, Reduced, Symbols, Walk, store};
use crate::error::Result;
use crate::normalize::TimeParser;

pub struct Reach {
    records: Records,
    symbols: Symbols,
    walk: Walk,
    /// Rows of stored records read at once ([`store::map_kind`]'s, but in tests).
    map_rows: usize,
    /// Per kind, the entities whose profiles were made, when stored records drop days: the
    /// charts list them again, which otherwise takes reading every record's days
    /// ([`store::read_live_entities`]).
    live: [OnceLock<RoaringBitmap>; 4],
    /// Per kind, its entities' codes in the order of their names, as profiling sorted them:
    /// the charts list the same entities in the same order ([`Reach::first_days`]), and
    /// sorting a kind's names again cost the 85.9M-event state's night 0.3-0.4 s a kind
    /// (`docs/performance.md`, forty-ninth session).
    by_name: [OnceLock<Vec<u32>>; 4],
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
        delta: Option<Box<Delta>>,
    },
}

/// Records of some local days held beside stored records that are not read on those days: how
/// a state keeps its nights' records without rewriting the window's (`crate::state::records`).
/// Read together, each stored batch of whole entities is joined with this side's records of
/// the same entities as it is read; this side's entities the stored records lack come last.
#[derive(Debug, Default, Clone)]
pub struct Delta {
    /// The days whose stored records are not the window's: reduced again here, or gone.
    pub dropped: BTreeSet<i64>,
    /// Per kind, as in [`KINDS`]; each (entity, day) on a dropped day, if on any.
    pub kinds: [Entities; 4],
}

impl Reach {
    /// Reduces the access events of `events`; `walk` is what counts as a sequential step.
    pub fn of(events: &DataFrame, time: &TimeParser, walk: Walk) -> Result<Reach> {
        let mut symbols = Symbols::new();
        let reduced = Reduced::of(events, time, walk, &mut symbols)?;
        Ok(Reach::from_parts(reduced, symbols, walk))
    }

    /// Reduces the access events of `events` into `dir`, a group of days at a time, and reads
    /// them from there (see [`Reduced::of_on_disk`]; with their day sets, for a state).
    pub fn of_on_disk(
        events: (&DataFrame, &crate::normalize::ColdColumns),
        time: &TimeParser,
        walk: Walk,
        (dir, day_sets): (&Path, bool),
    ) -> Result<Reach> {
        let mut symbols = Symbols::new();
        let made = Reduced::of_on_disk(events, time, walk, &mut symbols, (dir, day_sets))?;
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
            map_rows: store::MAP_ROWS,
            live: Default::default(),
            by_name: Default::default(),
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
                delta: None,
            },
            symbols,
            walk,
            map_rows: store::MAP_ROWS,
            live: Default::default(),
            by_name: Default::default(),
        }
    }

    /// Stored records read with `delta`'s ([`Reach::stored`] with the days it drops).
    pub fn with_delta(mut self, with: Delta) -> Reach {
        if let Records::Stored { delta, .. } = &mut self.records {
            *delta = Some(Box::new(with));
        }
        self
    }

    /// Stored records read `rows` rows at a time: tests cut the batches where a delta joins.
    #[cfg(test)]
    pub(crate) fn reading(mut self, rows: usize) -> Reach {
        self.map_rows = rows;
        self
    }

    /// The delta stored records are read with, if any.
    pub fn delta(&self) -> Option<&Delta> {
        match &self.records {
            Records::Stored { delta, .. } => delta.as_deref(),
            Records::Held(_) => None,
        }
    }

    /// What `f` makes of kind `k`'s stored records in `dir` of the entities `keep` holds, a
    /// batch of whole entities at a time, with `delta`'s joined in (see [`Delta`]).
    fn map_stored<T: Send>(
        &self,
        (dir, delta): (&Path, Option<&Delta>),
        k: usize,
        keep: impl Fn(u32) -> bool + Sync,
        f: impl Fn(&Entities) -> T + Sync,
    ) -> Result<Vec<T>> {
        let n = self.symbols.len() as u64;
        let rows = self.map_rows;
        let delta = delta.filter(|d| !(d.dropped.is_empty() && d.kinds[k].is_empty()));
        let Some(delta) = delta else {
            return store::map_kind_in(dir, k, n, rows, keep, |part| f(&part));
        };
        let theirs = &delta.kinds[k];
        let parts = store::map_kind_in(dir, k, n, rows, &keep, |part| {
            let (night, taken) = theirs.of_entities_in(&part);
            let part = match delta.dropped.is_empty() {
                true => part,
                false => part.without_days(&delta.dropped),
            };
            // No (entity, day) is on both sides once the dropped days are gone: the delta holds
            // only dropped days, or days the stored records never held.
            let joined = match night.is_empty() {
                true => part,
                false => part.merge(night).0,
            };
            (f(&joined), taken)
        })?;
        let mut taken = RoaringBitmap::new();
        let mut out = Vec::with_capacity(parts.len() + 1);
        for (made, of) in parts {
            out.push(made);
            taken.extend(of);
        }
        let rest = theirs.only(|e| keep(e) && !taken.contains(e));
        if !rest.is_empty() {
            out.push(f(&rest));
        }
        Ok(out)
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

    /// At least how many entities of kind `key` (a column of [`KINDS`]) the records hold, known
    /// without reading them: their singles, one row each (those a night's delta drops counted
    /// too), and the held records' entities with cells.
    pub fn entities_at_least(&self, key: &str) -> Result<u64> {
        let Some(k) = KINDS.iter().position(|kind| *kind == key) else {
            return Ok(0);
        };
        Ok(match &self.records {
            Records::Held(reduced) => {
                let kind = &reduced.kinds[k];
                let with_cells = kind.cells.chunk_by(|a, b| a.entity == b.entity).count();
                (kind.singles.len() + with_cells) as u64
            }
            Records::Stored { dir, .. } => super::store::singles_stored(dir, k)?,
        })
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
        let Some(parts) = self.map_profiles(key, detail_from, |part| part)? else {
            return Ok(Vec::new());
        };
        let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
        for part in parts {
            all.extend(part);
        }
        Ok(super::by_name(all, |p| p.0, &self.symbols))
    }

    /// `f` of each batch of kind `key`'s profiles (with day detail from `detail_from` accounts
    /// on) as they are made, in the records' order, the same on every call; `None` when `key`
    /// is not one of [`KINDS`]. A caller that needs a few figures of every entity and the whole
    /// profile of one at a time keeps the figures and makes the profiles again: held whole,
    /// the 5.2M principals' profiles of the 300.15M-event export were 0.54 GB. Stored records
    /// are read a batch of whole entities at a time ([`store::map_kind`]); held ones are one
    /// batch.
    pub fn map_profiles<T: Send>(
        &self,
        key: &str,
        detail_from: u64,
        f: impl Fn(Vec<(u32, Profile)>) -> T + Sync,
    ) -> Result<Option<Vec<T>>> {
        let (accounts, walk) = (self.accounts_set(), self.walk);
        let Some(k) = KINDS.iter().position(|kind| *kind == key) else {
            return Ok(None);
        };
        // The entities are listed as they pass (the charts list them again otherwise).
        let listed = self.by_name[k].get().is_none();
        let made = |part: &Entities| {
            let profiles = super::kind_profiles(part, accounts, key, walk, detail_from);
            let codes: Vec<u32> = match listed {
                true => profiles.iter().map(|p| p.0).collect(),
                false => Vec::new(),
            };
            (codes, f(profiles))
        };
        let parts = match &self.records {
            Records::Held(reduced) => vec![made(&reduced.kinds[k])],
            Records::Stored { dir, delta, .. } => {
                let parts = self.map_stored((dir, delta.as_deref()), k, |_| true, made)?;
                if listed && delta.as_ref().is_some_and(|d| !d.dropped.is_empty()) {
                    let live = parts.iter().flat_map(|p| p.0.iter().copied());
                    let _ = self.live[k].set(live.collect());
                }
                parts
            }
        };
        let mut out = Vec::with_capacity(parts.len());
        let mut codes = Vec::new();
        for (listed, made) in parts {
            codes.extend(listed);
            out.push(made);
        }
        if listed {
            let _ = self.by_name[k].set(super::by_name(codes, |&e| e, &self.symbols));
        }
        Ok(Some(out))
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
        let chosen: RoaringBitmap = match self.by_name[k].get() {
            Some(sorted) => choose(sorted),
            None => choose(&super::by_name(self.entities(k)?, |&e| e, &self.symbols)),
        }
        .into_iter()
        .collect();
        let keep = |e: u32| chosen.contains(e);
        Ok(match &self.records {
            Records::Held(reduced) => {
                (super::kind_first_days(&reduced.kinds[k], keep).into_iter()).collect()
            }
            Records::Stored { dir, delta, .. } => {
                let first = |part: &Entities| super::kind_first_days(part, keep);
                let parts = self.map_stored((dir, delta.as_deref()), k, keep, first)?;
                parts.into_iter().flatten().collect()
            }
        })
    }

    /// Kind `k`'s entities, in no particular order.
    fn entities(&self, k: usize) -> Result<Vec<u32>> {
        let n = self.symbols.len() as u64;
        Ok(match &self.records {
            Records::Held(reduced) => super::kind_entities(&reduced.kinds[k]),
            Records::Stored {
                dir,
                delta: Some(delta),
                ..
            } => match self.live[k].get() {
                Some(live) => live.iter().collect(),
                None => {
                    let mut all = match delta.dropped.is_empty() {
                        true => store::read_entities(dir, k, n)?,
                        false => store::read_live_entities(dir, k, n, &delta.dropped)?,
                    };
                    all.extend(super::kind_entities(&delta.kinds[k]));
                    all.sort_unstable();
                    all.dedup();
                    all
                }
            },
            Records::Stored { dir, .. } => store::read_entities(dir, k, n)?,
        })
    }
}
