//! Reduce, then detect (issue 21): the access events of a partition become one small record per
//! entity and local day, for each entity kind, and the enumeration numbers come out of those
//! records instead of out of every event. A record holds the day's counts and bounds and the set
//! of accounts touched as a roaring bitmap over codes of a [`Symbols`] table that means the same
//! thing in every run, so records of different nights join exactly: reach is the union of the
//! days' sets, the accounts new on a day are its set minus the union before it.
//!
//! This is the model's first piece: the reduction of a frame and its merge into the same
//! [`Profile`]s the detector judges, checked against them in `tests.rs`. The detectors still
//! read the frame; `docs/scale.md` says what is left.

mod cells;
mod profile;
mod symbols;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

pub use cells::{Accounts, Cell, Numbered};
pub(crate) use profile::Spread;
pub use profile::{Profile, Walk};
pub use symbols::Symbols;

use crate::error::Result;
use crate::frame::{NULL, codes, dictionary, i64s};
use crate::normalize::TimeParser;
use crate::normalize::columns::account_number;
use crate::normalize::schema::col as c;
use symbols::FromDictionary;

/// The entity kinds whose reach is reduced, by column.
pub const KINDS: [&str; 4] = [c::CREDENTIAL, c::PRINCIPAL, c::NETWORK, c::SOURCE_IP];

/// The reduced access events of one partition (or of several, merged).
#[derive(Debug, Default, Clone)]
pub struct Reduced {
    /// Every account an access row named.
    pub accounts: RoaringBitmap,
    /// Per kind (as in [`KINDS`]), cells sorted by entity, then day.
    pub cells: [Vec<Cell>; 4],
    /// (entity, day) cells that more than one partition held: their busiest hour and walks are
    /// then lower bounds (see [`Cell`]). Zero when partitions are whole local days.
    pub overlapping: u64,
}

/// What a reduced state weighs, for `docs/scale.md`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub entities: u64,
    pub cells: u64,
    /// Cells whose account set is a single account (no bitmap).
    pub single: u64,
    pub stored_bytes: u64,
}

impl Reduced {
    /// Reduces the access events of `events` that name an account. `symbols` is shared by every
    /// partition that will be merged.
    pub fn of(
        events: &DataFrame,
        time: &TimeParser,
        walk: Walk,
        symbols: &mut Symbols,
    ) -> Result<Reduced> {
        let dict = dictionary();
        let Some(access) = dict.get_cat("access") else {
            return Ok(Reduced::default());
        };
        let (kind, target) = (codes(events, c::EVENT_TYPE)?, codes(events, c::TARGET)?);
        let selected: Vec<usize> = (0..kind.len())
            .filter(|&i| kind[i] == access && target[i] != NULL)
            .collect();
        let principal = codes(events, c::PRINCIPAL)?;
        let own: Vec<bool> = selected
            .iter()
            .map(|&i| principal[i] == target[i])
            .collect();
        drop(principal);
        let ts = i64s(events, c::TS)?;
        let ts: Vec<i64> = selected.iter().map(|&i| ts[i]).collect();
        let mut from_dict = FromDictionary::new();
        let mut reduced = Reduced::default();
        let mut account = Vec::with_capacity(selected.len());
        for &i in &selected {
            let a = from_dict.symbol(target[i], symbols)?;
            reduced.accounts.insert(a);
            account.push(a);
        }
        drop(target);
        let mut number: Vec<Option<i64>> = Vec::new();
        for &a in &account {
            if a as usize >= number.len() {
                number.resize(a as usize + 1, None);
            }
            number[a as usize] = account_number(symbols.name(a));
        }
        for (k, key) in KINDS.iter().enumerate() {
            let entity = codes(events, key)?;
            let mut rows = Vec::with_capacity(selected.len());
            for (j, &i) in selected.iter().enumerate() {
                let e = from_dict.symbol(entity[i], symbols)?;
                if e != NULL {
                    rows.push(cells::Row {
                        entity: e,
                        ts: ts[j],
                        account: account[j],
                        number: number[account[j] as usize],
                        own: own[j],
                    });
                }
            }
            // Stable: rows of one instant and account number stay in frame order.
            rows.par_sort_by_key(|r| (r.entity, r.ts, r.number));
            reduced.cells[k] = cells::cells(&rows, time, walk);
        }
        Ok(reduced)
    }

    /// Joins another partition's reduction (made with the same [`Symbols`]).
    pub fn merge(mut self, other: Reduced) -> Reduced {
        self.accounts |= other.accounts;
        self.overlapping += other.overlapping;
        for (mine, theirs) in self.cells.iter_mut().zip(other.cells) {
            let mut all: Vec<Cell> = std::mem::take(mine);
            all.extend(theirs);
            all.sort_by_key(|c| (c.entity, c.day));
            let mut joined: Vec<Cell> = Vec::with_capacity(all.len());
            for cell in all {
                match joined.last_mut() {
                    Some(last) if (last.entity, last.day) == (cell.entity, cell.day) => {
                        last.absorb(cell);
                        self.overlapping += 1;
                    }
                    _ => joined.push(cell),
                }
            }
            *mine = joined;
        }
        self
    }

    /// One profile per entity of the kind in column `key` (one of [`KINDS`]).
    pub fn profiles(
        &self,
        key: &str,
        symbols: &Symbols,
        walk: Walk,
        detail_from: u64,
    ) -> BTreeMap<String, Profile> {
        let count_own = key == c::SOURCE_IP || key == c::NETWORK;
        profile::profiles(
            self.kind(key),
            symbols,
            &self.accounts,
            walk,
            detail_from,
            count_own,
        )
    }

    /// New accounts per local day for each entity of `key` (or each of `only`).
    pub fn first_days(
        &self,
        key: &str,
        symbols: &Symbols,
        only: Option<&BTreeSet<String>>,
    ) -> BTreeMap<String, Vec<(i64, u64)>> {
        self.kind(key)
            .chunk_by(|a, b| a.entity == b.entity)
            .map(|cells| (symbols.name(cells[0].entity), cells))
            .filter(|(name, _)| only.is_none_or(|o| o.contains(*name)))
            .map(|(name, cells)| (name.to_string(), profile::first_days(cells)))
            .collect()
    }

    /// Distinct accounts reached at least once by a principal with the account's own id.
    pub fn self_served(&self) -> u64 {
        self.kind(c::PRINCIPAL)
            .chunk_by(|a, b| a.entity == b.entity)
            .filter(|cells| cells.iter().any(|c| c.own_rows > 0))
            .count() as u64
    }

    /// Size of one kind's cells.
    pub fn footprint(&self, key: &str) -> Footprint {
        let cells = self.kind(key);
        Footprint {
            entities: cells.chunk_by(|a, b| a.entity == b.entity).count() as u64,
            cells: cells.len() as u64,
            single: cells
                .iter()
                .filter(|c| matches!(c.accounts, Accounts::One(_)))
                .count() as u64,
            stored_bytes: cells.iter().map(|c| c.stored_bytes() as u64).sum(),
        }
    }

    fn kind(&self, key: &str) -> &[Cell] {
        KINDS
            .iter()
            .position(|k| *k == key)
            .map_or(&[], |k| &self.cells[k])
    }
}
