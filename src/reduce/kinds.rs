//! What is read of one kind's records: its profiles (in the records' order or its names'),
//! each entity's new accounts per day, its entities, the principals that served themselves.
//! Shared by records held in memory ([`super::Reduced`]) and records read from disk a batch of
//! entities at a time ([`super::Reach`]).

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::{Entities, Profile, Symbols, Walk, profile};
use crate::normalize::schema::col as c;

/// One profile per entity of `kind`, the records of the kind in column `key`, as (entity code,
/// profile) in the order of the entities' names in `symbols`: no name copied and no map built.
/// As a map, the profiles of the 85.9M-event state's principals or addresses (1.5M) needed the
/// list they were made in, grown once for the single records, a sorted copy with a name each,
/// and the tree, together about 0.2 GB above the map alone: enumeration's peak
/// (`docs/performance.md`, twenty-eighth session). `accounts` is every account of the records.
pub(crate) fn kind_profiles_by_name(
    kind: &Entities,
    accounts: &RoaringBitmap,
    key: &str,
    symbols: &Symbols,
    walk: Walk,
    detail_from: u64,
) -> Vec<(u32, Profile)> {
    let profiles = kind_profiles(kind, accounts, key, walk, detail_from);
    by_name(profiles, |p| p.0, symbols)
}

/// [`kind_profiles_by_name`] in the records' order.
pub(crate) fn kind_profiles(
    kind: &Entities,
    accounts: &RoaringBitmap,
    key: &str,
    walk: Walk,
    detail_from: u64,
) -> Vec<(u32, Profile)> {
    let count_own = key == c::SOURCE_IP || key == c::NETWORK;
    let finish = |mut p: Profile, entity: u32| {
        p.is_account = accounts.contains(entity);
        if !count_own {
            p.own_rows = 0;
        }
        p
    };
    kind.each(
        |_| true,
        |cells| finish(profile::profile(cells, walk, detail_from), cells[0].entity),
        |s| finish(profile::of_single(s, walk, detail_from), s.entity),
    )
}

/// `list` in the order of its entities' names in `symbols`, `code` giving each item's entity.
///
/// A merge sort, as (code, place) pairs: lists come in code order, and codes are given a batch
/// of names at a time in name order, so a list is a few runs already in order, which a merge
/// joins where pdqsort compared its way through them (the 85.9M-event state's night: 1.49M
/// principals 0.29 → 0.20 s, as many addresses 0.35 → 0.19 s; `docs/performance.md`,
/// forty-ninth session). Over 8-byte pairs, not the items: a merge of the items themselves
/// (profiles of about 150 bytes) took 0.15 and 0.19 s but its buffer raised enumeration's peak
/// by 170 MB. The items are then put in place by following the permutation's cycles.
pub(crate) fn by_name<T: Send>(
    mut list: Vec<T>,
    code: impl Fn(&T) -> u32 + Sync,
    symbols: &Symbols,
) -> Vec<T> {
    // Each name's first 16 bytes (zero-padded, so their order is the names' where they differ)
    // beside its code: a name is looked up only when two share them. Names a run met in its
    // frame are its dictionary's, scattered in the order the export was read (then each in an
    // allocation of its own in polars' dictionary), and looking both up at every comparison cost the 100.09M-event run's
    // enumeration 13.1 → 17.0 s, its charts 6.8 → 8.5 s and ranking 3.8 → 5.0 s (one
    // `--timings-per-detector` run each, reports byte-identical).
    let prefix = |c: u32| {
        let name = symbols.name(c).as_bytes();
        let mut head = [0u8; 16];
        let n = name.len().min(16);
        head[..n].copy_from_slice(&name[..n]);
        u128::from_be_bytes(head)
    };
    let mut order: Vec<(u128, u32, u32)> = (list.iter().zip(0u32..))
        .map(|(item, place)| (prefix(code(item)), code(item), place))
        .collect();
    // Names are distinct (one code each), so the order is total.
    order
        .par_sort_by(|a, b| (a.0.cmp(&b.0)).then_with(|| symbols.name(a.1).cmp(symbols.name(b.1))));
    let mut from: Vec<u32> = order.into_iter().map(|(_, _, place)| place).collect();
    permute(&mut list, &mut from);
    list
}

/// Puts `list[from[j]]` at place `j` for every `j`, in place; `from` is a permutation of the
/// places, left as the identity.
fn permute<T>(list: &mut [T], from: &mut [u32]) {
    for start in 0..list.len() {
        // Each cycle is followed once: its places are marked done as they are filled, the
        // item first at `start` carried along by the swaps until its own place comes up.
        let mut at = start;
        while from[at] as usize != at {
            let next = from[at] as usize;
            from[at] = at as u32;
            if next == start {
                break;
            }
            list.swap(at, next);
            at = next;
        }
    }
}

/// New accounts per local day for each entity of one kind's records that `keep` holds, by code.
pub(crate) fn kind_first_days(
    kind: &Entities,
    keep: impl Fn(u32) -> bool + Sync,
) -> Vec<(u32, Vec<(i64, u64)>)> {
    kind.each(keep, profile::first_days, profile::first_days_of_single)
}

/// The entities of one kind's records.
pub(crate) fn kind_entities(kind: &Entities) -> Vec<u32> {
    (kind.cells.chunk_by(|a, b| a.entity == b.entity))
        .map(|cells| cells[0].entity)
        .chain(kind.singles.iter().map(|s| s.entity))
        .collect()
}

/// Of the principals' records, those that reached the account of their own id at least once.
pub(crate) fn kind_self_served(principals: &Entities) -> u64 {
    let cells = principals
        .cells
        .chunk_by(|a, b| a.entity == b.entity)
        .filter(|cells| cells.iter().any(|c| c.own_rows > 0))
        .count();
    let singles = principals
        .singles
        .iter()
        .filter(|s| s.own_rows() > 0)
        .count();
    (cells + singles) as u64
}
