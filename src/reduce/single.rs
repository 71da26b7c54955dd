//! Entities that touched one and the same account on every day of a partition, kept as one
//! record: on a gateway nearly every principal and address is a customer reading its own record
//! (149,247 of 149,261 principals of the 8.7M-event benchmark export), and as [`Cell`]s they
//! were 97 % of the cells. Here a day costs 12 bytes instead of a cell's ~200 in memory.
//!
//! Nothing is approximated: a record turns back into the cells it came from (with the day's
//! events counted on its first day, since only their sum is ever read), so profiles and merges
//! go through the one code path of [`super::profile`].

use itertools::{EitherOrBoth, Itertools};

use super::cells::{Accounts, Cell, Numbered};
use crate::normalize::schema::DAY_MS;

/// One active day of a [`Single`]: its first and last instants as milliseconds after the start
/// of the UTC day before (a local day lies within ±14 h of its UTC namesake, so both fit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleDay {
    pub day: i32,
    pub first: u32,
    pub last: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Single {
    pub entity: u32,
    pub account: u32,
    /// The account's number (see [`Numbered`]).
    pub number: Option<i64>,
    pub events: u64,
    pub own_rows: u64,
    /// In day order.
    pub days: Vec<SingleDay>,
}

impl Single {
    /// The record for one entity's cells (in day order), if they all touched the same single
    /// account, none has an hour shared with the next or previous day, and their days and
    /// instants fit.
    pub fn of(cells: &[Cell]) -> Option<Single> {
        let Accounts::One(account) = cells.first()?.accounts else {
            return None;
        };
        let mut days = Vec::with_capacity(cells.len());
        for c in cells {
            // An hour shared with a neighbouring day must keep its accounts: merged with the
            // neighbour's partition it may hold two (found by the `reduce` fuzz target).
            if c.accounts != Accounts::One(account)
                || !c.walk.is_empty()
                || !c.split_hours.is_empty()
            {
                return None;
            }
            let base = (c.day - 1).checked_mul(DAY_MS)?;
            days.push(SingleDay {
                day: i32::try_from(c.day).ok()?,
                first: u32::try_from(c.first.checked_sub(base)?).ok()?,
                last: u32::try_from(c.last.checked_sub(base)?).ok()?,
            });
        }
        Some(Single {
            entity: cells[0].entity,
            account,
            number: cells
                .iter()
                .find_map(|c| c.first_numbered)
                .map(|n| n.number),
            events: cells.iter().map(|c| c.events).sum(),
            own_rows: cells.iter().map(|c| c.own_rows).sum(),
            days,
        })
    }

    /// This record joined with another of the same entity and account (from another
    /// partition), and how many days both held. Exact: one account makes no walk step and a
    /// busiest hour of one, whatever the days.
    pub(super) fn join(self, other: Single) -> (Single, u64) {
        let mut shared = 0;
        let days = (self.days.iter())
            .merge_join_by(&other.days, |a, b| a.day.cmp(&b.day))
            .map(|pair| match pair {
                EitherOrBoth::Both(a, b) => {
                    shared += 1;
                    SingleDay {
                        day: a.day,
                        first: a.first.min(b.first),
                        last: a.last.max(b.last),
                    }
                }
                EitherOrBoth::Left(d) | EitherOrBoth::Right(d) => *d,
            })
            .collect();
        (
            Single {
                entity: self.entity,
                account: self.account,
                number: self.number.or(other.number),
                events: self.events + other.events,
                own_rows: self.own_rows + other.own_rows,
                days,
            },
            shared,
        )
    }

    /// The cells this record stands for (a day's events and own rows all on the first day).
    pub fn cells(&self) -> Vec<Cell> {
        self.days
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let base = (i64::from(d.day) - 1) * DAY_MS;
                let (first, last) = (base + i64::from(d.first), base + i64::from(d.last));
                let numbered = |ts| {
                    self.number.map(|number| Numbered {
                        ts,
                        number,
                        account: self.account,
                    })
                };
                Cell {
                    entity: self.entity,
                    day: i64::from(d.day),
                    events: if i == 0 { self.events } else { 0 },
                    own_rows: if i == 0 { self.own_rows } else { 0 },
                    first,
                    last,
                    accounts: Accounts::One(self.account),
                    peak_hour: 1,
                    split_hours: Vec::new(),
                    walk: roaring::RoaringBitmap::new(),
                    first_numbered: numbered(first),
                    last_numbered: numbered(last),
                }
            })
            .collect()
    }

    /// Bytes when stored: entity, account, number, counts, and 12 a day.
    pub fn stored_bytes(&self) -> usize {
        4 + 4 + 8 + 8 + 8 + 12 * self.days.len()
    }
}
