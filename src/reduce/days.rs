//! Each local day's accounts and self-served principals, apart from the records that hold them.
//!
//! Why: a state keeps a night's records beside the window's instead of rewriting the window's
//! (`crate::state::records`), and then drops days from the window's records only as they are
//! read. What the run must know before it reads any kind — every account an access row named,
//! and how many principals read their own account (the population) — was made again from the
//! records whenever a day was dropped, which took reading every kind. Kept by day, both are the
//! union of the days that are left, exactly: a day's records hold all of its rows.

use std::collections::{BTreeMap, BTreeSet};

use roaring::RoaringBitmap;

use super::{Entities, KINDS, Reduced};
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
        let principals = KINDS.get(k) == Some(&c::PRINCIPAL);
        for cell in &kind.cells {
            let day = self.0.entry(cell.day).or_default();
            cell.accounts.add_to(&mut day.accounts);
            if principals && cell.own_rows > 0 {
                day.self_served.insert(cell.entity);
            }
        }
        for single in &kind.singles {
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
