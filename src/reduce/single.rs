//! Entities that touched one and the same account on every day of a partition, kept as one
//! record: on a gateway nearly every principal and address is a customer reading its own record
//! (149,247 of 149,261 principals of the 8.7M-event benchmark export), and as [`Cell`]s they
//! were 97 % of the cells. Here a day costs 12 bytes instead of a cell's ~200 in memory.
//!
//! Nothing is approximated: a record turns back into the cells it came from, so merges go
//! through the cells' code path; its profile and first touches are had directly
//! (`profile::of_single`, held to the cells' by a test). Each day keeps its own counts, so
//! a state can drop a day (aged out, or read again) and still hold the others exactly; two
//! 16-bit counts make a day 16 bytes instead of 12, and an entity with more than 65,535 rows on
//! one account in a day stays cells.

use itertools::{EitherOrBoth, Itertools};

use super::cells::{Accounts, Cell, Numbered};
use crate::normalize::schema::DAY_MS;

/// One active day of a [`Single`]: its first and last instants as milliseconds after the start
/// of the UTC day before (a local day lies within ±14 h of its UTC namesake, so both fit), its
/// rows, and of them those in which the principal read its own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleDay {
    pub day: i32,
    pub first: u32,
    pub last: u32,
    pub events: u16,
    pub own: u16,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Single {
    pub entity: u32,
    pub account: u32,
    /// The account's number (see [`Numbered`]).
    pub number: Option<i64>,
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
                events: u16::try_from(c.events).ok()?,
                own: u16::try_from(c.own_rows).ok()?,
            });
        }
        Some(Single {
            entity: cells[0].entity,
            account,
            number: cells
                .iter()
                .find_map(|c| c.first_numbered)
                .map(|n| n.number),
            days,
        })
    }

    /// This record joined with another of the same entity and account (from another
    /// partition), and how many days both held; `None` when a day both held has more rows
    /// than a day's counts hold (the two become cells). Exact: one account makes no walk step
    /// and a busiest hour of one, whatever the days.
    pub(super) fn join(&self, other: &Single) -> Option<(Single, u64)> {
        let mut shared = 0;
        let mut days = Vec::with_capacity(self.days.len() + other.days.len());
        for pair in (self.days.iter()).merge_join_by(&other.days, |a, b| a.day.cmp(&b.day)) {
            days.push(match pair {
                EitherOrBoth::Both(a, b) => {
                    shared += 1;
                    SingleDay {
                        day: a.day,
                        first: a.first.min(b.first),
                        last: a.last.max(b.last),
                        events: a.events.checked_add(b.events)?,
                        own: a.own.checked_add(b.own)?,
                    }
                }
                EitherOrBoth::Left(d) | EitherOrBoth::Right(d) => *d,
            });
        }
        let joined = Single {
            entity: self.entity,
            account: self.account,
            number: self.number.or(other.number),
            days,
        };
        Some((joined, shared))
    }

    /// Rows in which the principal read its own account, over all days.
    pub fn own_rows(&self) -> u64 {
        self.days.iter().map(|d| u64::from(d.own)).sum()
    }

    /// The cells this record stands for.
    pub fn cells(&self) -> Vec<Cell> {
        self.days
            .iter()
            .map(|d| {
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
                    events: u64::from(d.events),
                    own_rows: u64::from(d.own),
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

    /// Bytes when stored: entity, account, number, and 16 a day.
    pub fn stored_bytes(&self) -> usize {
        4 + 4 + 8 + 16 * self.days.len()
    }
}
