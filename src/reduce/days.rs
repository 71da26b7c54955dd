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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reduce::{Accounts, SingleDay};

    /// Kind `k`'s records over many slices: cells and singles of 70,000 entities each, spread
    /// over 9 days, some reading their own account.
    fn kind(n: u32) -> Entities {
        let cells = (0..n)
            .map(|e| Cell {
                entity: e,
                day: i64::from(e % 9),
                events: 2,
                own_rows: u64::from(e % 5 == 0),
                first: 0,
                last: 1,
                accounts: Accounts::Many(RoaringBitmap::from_iter([e * 3, e * 3 + 1])),
                peak_hour: 2,
                split_hours: Vec::new(),
                walk: RoaringBitmap::new(),
                first_numbered: None,
                last_numbered: None,
            })
            .collect();
        let singles = (0..n)
            .map(|e| Single {
                entity: n + e,
                account: e * 7,
                number: None,
                days: (0..1 + e % 3)
                    .map(|d| SingleDay {
                        day: (e % 9 + d) as i32,
                        first: 0,
                        last: 1,
                        events: 1,
                        own: u16::from(d == 1),
                    })
                    .collect(),
            })
            .collect();
        Entities { cells, singles }
    }

    /// Made side by side a slice at a time, the day sets are those made one record after
    /// another, for the principals (self-served counted) and for another kind (not).
    #[test]
    fn a_kind_s_day_sets_made_side_by_side_are_made_one_by_one_s() {
        let records = kind(70_000);
        for (k, key) in KINDS.iter().enumerate() {
            let mut want = DaySets::default();
            want.add_kind(k, &records);
            let got = DaySets::of_kind(k, &records);
            assert!(got == want, "kind {k}");
            assert_eq!(got.0.len(), 11);
            let principals = *key == c::PRINCIPAL;
            assert_eq!(got.self_served() > 0, principals, "kind {k}");
        }
    }
}
