//! Each local day's accounts and self-served principals, apart from the records that hold them.
//!
//! Why: a state keeps a night's records beside the window's instead of rewriting the window's
//! (`crate::state::records`), and then drops days from the window's records only as they are
//! read. What the run must know before it reads any kind — every account an access row named,
//! and how many principals read their own account (the population) — was made again from the
//! records whenever a day was dropped, which took reading every kind. Kept by day, both are the
//! union of the days that are left, exactly: a day's records hold all of its rows.

use std::collections::{BTreeMap, BTreeSet};

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::{Cell, Entities, KINDS, Reduced, Single};
use crate::normalize::schema::col as c;

/// What one local day's access rows named.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DaySet {
    /// Every account an access row of the day named (an entity's or an orphan's).
    pub accounts: RoaringBitmap,
    /// Principals (by code) that read their own account that day.
    pub self_served: RoaringBitmap,
}

/// [`DaySet`]s by local day.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DaySets(pub BTreeMap<i64, DaySet>);

impl DaySets {
    /// The day sets of records held whole.
    pub fn of(reduced: &Reduced) -> DaySets {
        let mut sets = DaySets::default();
        for (k, kind) in reduced.kinds.iter().enumerate() {
            sets.add_kind(k, kind);
        }
        sets.add_orphans(&reduced.orphans);
        sets
    }

    /// Adds the days of kind `k`'s records (its index in [`KINDS`]).
    pub fn add_kind(&mut self, k: usize, kind: &Entities) {
        self.add_records(k, &kind.cells, &kind.singles);
    }

    /// The day sets of kind `k`'s records, made side by side a slice of records at a time: one
    /// after another they added 5.7 s of CPU to the 85.9M-event state's records made whole, on
    /// the reduction's path.
    pub fn of_kind(k: usize, kind: &Entities) -> DaySets {
        const SLICE: usize = 1 << 15;
        let cells = kind.cells.par_chunks(SLICE).map(|cells| (cells, &[][..]));
        let singles = kind
            .singles
            .par_chunks(SLICE)
            .map(|singles| (&[][..], singles));
        cells
            .chain(singles)
            .map(|(cells, singles)| {
                let mut sets = DaySets::default();
                sets.add_records(k, cells, singles);
                sets
            })
            .reduce(DaySets::default, |mut all, part| {
                all.absorb(part);
                all
            })
    }

    fn add_records(&mut self, k: usize, cells: &[Cell], singles: &[Single]) {
        let principals = KINDS.get(k) == Some(&c::PRINCIPAL);
        for cell in cells {
            let day = self.0.entry(cell.day).or_default();
            cell.accounts.add_to(&mut day.accounts);
            if principals && cell.own_rows > 0 {
                day.self_served.insert(cell.entity);
            }
        }
        for single in singles {
            for d in &single.days {
                let day = self.0.entry(i64::from(d.day)).or_default();
                day.accounts.insert(single.account);
                if principals && d.own > 0 {
                    day.self_served.insert(single.entity);
                }
            }
        }
    }

    /// Adds the accounts of rows no entity holds.
    pub fn add_orphans(&mut self, orphans: &BTreeMap<i64, RoaringBitmap>) {
        for (&day, set) in orphans {
            self.0.entry(day).or_default().accounts |= set;
        }
    }

    /// Joins another's days into these.
    pub fn absorb(&mut self, other: DaySets) {
        for (day, set) in other.0 {
            let mine = self.0.entry(day).or_default();
            mine.accounts |= set.accounts;
            mine.self_served |= set.self_served;
        }
    }

    /// These without the days `drop` names.
    pub fn without(mut self, drop: &BTreeSet<i64>) -> DaySets {
        self.0.retain(|day, _| !drop.contains(day));
        self
    }

    /// Every account of every day.
    pub fn accounts(&self) -> RoaringBitmap {
        let mut all = RoaringBitmap::new();
        for set in self.0.values() {
            all |= &set.accounts;
        }
        all
    }

    /// Principals that read their own account on any day.
    pub fn self_served(&self) -> u64 {
        let mut all = RoaringBitmap::new();
        for set in self.0.values() {
            all |= &set.self_served;
        }
        all.len()
    }
}
