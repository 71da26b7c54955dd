//! Reduce, then detect (issue 21): the access events of a partition become one small record per
//! entity and local day, for each entity kind, and the enumeration numbers come out of those
//! records instead of out of every event. A record holds the day's counts and bounds and the set
//! of accounts touched as a roaring bitmap over codes of a [`Symbols`] table that means the same
//! thing in every run, so records of different nights join exactly: reach is the union of the
//! days' sets, the accounts new on a day are its set minus the union before it.
//!
//! Enumeration, the account population and the reach charts read these records through
//! [`Reach`]; the other detectors still read the frame, and `docs/scale.md` says what is left.

mod access;
mod cells;
pub mod days;
mod entities;
mod kinds;
mod on_disk;
mod profile;
mod reach;
mod single;
pub mod store;
mod symbols;
#[cfg(test)]
pub(crate) mod tests;
pub mod tokens;

use std::collections::{BTreeMap, BTreeSet};

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

pub use cells::{Accounts, Cell, Numbered};
pub use entities::Entities;
pub(crate) use kinds::{
    by_name, kind_entities, kind_first_days, kind_profiles, kind_profiles_by_name, kind_self_served,
};
pub use on_disk::{ON_DISK_FROM, OnDisk};
pub(crate) use profile::Spread;
pub use profile::{Profile, Walk};
pub use reach::{Delta, Reach};
pub use single::{Single, SingleDay};
pub use symbols::Symbols;

use crate::error::Result;
use crate::frame::NULL;
use crate::normalize::columns::account_number;
use crate::normalize::schema::{TS_MAX, TS_MIN, col as c};
use crate::normalize::{ColdColumns, TimeParser};
use symbols::FromDictionary;

/// The entity kinds whose reach is reduced, by column.
pub const KINDS: [&str; 4] = [c::CREDENTIAL, c::PRINCIPAL, c::NETWORK, c::SOURCE_IP];

/// The reduced access events of one partition (or of several, merged).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Reduced {
    /// Every account an access row named.
    pub accounts: RoaringBitmap,
    /// Per kind, as in [`KINDS`].
    pub kinds: [Entities; 4],
    /// The accounts of rows no entity of any kind holds (no principal, key or address), by
    /// local day: with the kinds' own, what `accounts` is made of again once days are dropped
    /// (see [`Reduced::without_days`]). Usually empty.
    pub orphans: BTreeMap<i64, RoaringBitmap>,
    /// (entity, day) cells that more than one partition held: their busiest hour and walks are
    /// then lower bounds (see [`Cell`]). Zero when partitions are whole local days.
    pub overlapping: u64,
}

/// Rank of each of `of` (indices into `number`) by its number, no number first, equal numbers
/// equal ranks: four bytes that sort like the number. Indices not in `of` get 0.
pub(crate) fn number_ranks<N: Ord + Copy + Sync>(number: &[N], mut of: Vec<u32>) -> Vec<u32> {
    of.par_sort_unstable_by_key(|&a| number[a as usize]);
    let mut rank = vec![0u32; number.len()];
    for pair in of.windows(2) {
        let [a, b] = [pair[0] as usize, pair[1] as usize];
        rank[b] = rank[a] + u32::from(number[b] != number[a]);
    }
    rank
}

/// The accounts `account` names (symbols), which it then names by place among them. The place
/// of each symbol is a table of 4 bytes a name of the run, held only while `account` is turned.
fn group_accounts(account: &mut [u32], symbols: &Symbols) -> cells::GroupAccounts {
    let mut place = vec![NULL; symbols.len()];
    for &a in account.iter() {
        place[a as usize] = 0;
    }
    let mut codes = Vec::new();
    for (a, p) in place.iter_mut().enumerate() {
        if *p != NULL {
            *p = codes.len() as u32;
            codes.push(a as u32);
        }
    }
    account.par_iter_mut().for_each(|a| *a = place[*a as usize]);
    drop(place);
    let number = (codes.par_iter())
        .map(|&a| cells::Number::of(account_number(symbols.name(a))))
        .collect();
    cells::GroupAccounts { codes, number }
}

/// Up to this many access rows, the four kinds are grouped and reduced side by side, above it
/// one after another. Each kind's counting sort starts with two passes over every row on one
/// thread, and one kind at a time left a core idle once the other detectors had finished: on the
/// 10M CSV export (5.8M access rows) side by side took the detectors 1.63–1.66 s instead of
/// 1.74–1.77 s and the run's peak 1.21–1.25 GB instead of 1.11–1.15 GB (`analyze --timings`,
/// four alternated runs each), the whole run 3.98–4.04 s instead of 4.09–4.17 s (`compare.sh`,
/// five). At 57M access rows (85.9M events) the four kinds' entity codes alone are 0.9 GB where
/// the reduction sets the run's peak, so big partitions keep one kind at a time.
const KINDS_SIDE_BY_SIDE: usize = 16 << 20;

/// Above this many access rows a window is reduced in groups of whole local days of at most
/// this many, each group merged into the records before the next is made, so the reduction's
/// working set (24 bytes an access row at its height: the rows in time order, a kind's entity
/// codes and their order) is a group's, not the window's. The 85.9M-event export (57M access
/// rows, five groups): the first `analyze` of its state peaked at 5.76–5.77 GB instead of
/// 6.81 GB with enumeration 24.8–26.0 s instead of 25.7 s (two runs); without a state 6.58 GB instead of 7.32 GB, the
/// detectors 27.1 s instead of 26.3 s (`--timings[-per-detector]`, one run each; reports
/// byte-identical). Groups of 8M rows took 3 s longer at the same peak (more merges, each
/// walking every record so far), of 16M peaked at 6.0 GB.
const GROUP_ROWS: usize = 12 << 20;

/// How [`Reduced::of_placing`] lays rows out; the tests force each way.
#[derive(Debug, Clone, Copy)]
struct Placing {
    /// The range size from which rows are placed as indices (`None`: a thread's share).
    big: Option<usize>,
    /// The most rows whose kinds are reduced side by side ([`KINDS_SIDE_BY_SIDE`]).
    side_by_side: usize,
    /// The most rows reduced at once ([`GROUP_ROWS`]).
    group: usize,
    /// Rows of the frame whose targets are asked of the cold columns at once, when the frame
    /// does not hold them ([`crate::normalize::cold::RUN_ROWS`]).
    targets_run: usize,
    /// The most groups of records made on disk merged side by side (`on_disk::MERGED_AT_ONCE`).
    merged_at_once: usize,
}

/// Where [`Reduced::of_groups`] hands what it makes: each kind's records as soon as they are
/// made, so that records written to disk are not held until the group's last kind is made
/// (three kinds' records and the fourth's grouping stood 0.3 GB over every group's reduction at
/// 85.9M events), then the rest of the group.
trait Absorb {
    /// The next parts of kind `k` (its index in [`KINDS`]) of group `at`: whole entities in
    /// entity order, after the parts handed before.
    fn parts(&mut self, at: Groups, k: usize, parts: Vec<Entities>) -> Result<()>;
    /// Kind `k` of group `at` handed whole; returns what the group's [`Reduced`] keeps of it.
    fn kind_done(&mut self, at: Groups, k: usize) -> Result<Entities>;
    /// Group `at`, holding what [`Absorb::kind_done`] kept.
    fn group(&mut self, at: Groups, group: Reduced) -> Result<()>;
}

/// Every group kept, merged into one [`Reduced`].
#[derive(Default)]
struct InMemory {
    reduced: Reduced,
    /// The parts of the kind being handed.
    pending: Vec<Entities>,
}

impl Absorb for InMemory {
    fn parts(&mut self, _: Groups, _: usize, parts: Vec<Entities>) -> Result<()> {
        self.pending.extend(parts);
        Ok(())
    }

    fn kind_done(&mut self, _: Groups, _: usize) -> Result<Entities> {
        Ok(Entities::concat(std::mem::take(&mut self.pending)))
    }

    fn group(&mut self, _: Groups, group: Reduced) -> Result<()> {
        self.reduced = std::mem::take(&mut self.reduced).merge_kind_by_kind(group);
        Ok(())
    }
}

/// Group `i` of `n` made by [`Reduced::of_groups`].
#[derive(Debug, Clone, Copy)]
struct Groups {
    i: usize,
    n: usize,
}

impl Default for Placing {
    fn default() -> Self {
        Placing {
            big: None,
            side_by_side: KINDS_SIDE_BY_SIDE,
            group: GROUP_ROWS,
            targets_run: crate::normalize::cold::RUN_ROWS,
            merged_at_once: on_disk::MERGED_AT_ONCE,
        }
    }
}

/// Ranges of entity codes [`by_entity`] splits rows into first.
const BUCKETS: usize = 256;

/// Ranges reduced side by side and handed on before the next ones, when a kind's records are
/// written as they are made (one kind at a time): a sixteenth of the kind waits at most. The
/// principals' records waited whole before being written, 0.09 GB of each group of the 85.9M
/// export; that kind's peak went 3.03–3.07 → 2.97–2.98 GB, the addresses' 3.01–3.03 → 2.96–2.98
/// GB, the records stage 33.2 → 34.0 s (one run each, temporary probes).
const BUCKETS_AT_ONCE: usize = 16;

/// The entities of one kind: `rows` (in time order) grouped by `entity[j]`, stably, so each
/// entity's rows keep their time order (rows without an entity are left out), and reduced, in
/// parts of whole entities in entity order (one per range below) handed to `each`, `at_once`
/// ranges at a time. First
/// the rows' indices are split into [`BUCKETS`] ranges of entity codes (few write streams), then
/// each range is counted, placed and reduced on its own, side by side, within a slice that stays
/// in cache. One counting sort over all rows missed the cache on nearly every row once they
/// outgrew it: 0.6–2.4 s a kind at 57M access rows (85.9M events), where it took 25–55 ms at
/// 5.8M. A range is dropped once reduced, so no kind's rows are ever copied whole: those 16 bytes
/// a row set the reduction's high-water mark, and enumeration's peak at 85.9M events fell from
/// 11.69 to 11.13 GB (`analyze --timings-per-detector`; at 8.7M, 80 MB less and the time within
/// this machine's spread). A range of more than `big` rows (half a thread's share: a key that
/// signs every token) is placed as row indices and reduced through them a day at a time. A quarter of a thread's share,
/// with each range's entities reduced in one pass, bounded the ranges in flight more tightly but
/// took 10–15 % longer at 8.7M.
fn by_entity(
    rows: &[cells::Row],
    entity: &[u32],
    n_symbols: usize,
    big: usize,
    reduce: impl Fn(cells::Grouped) -> Entities + Sync,
    reduce_big: impl Fn(&[u32], &[(u32, usize)]) -> Entities + Sync,
    (at_once, each): (usize, &mut dyn FnMut(Vec<Entities>) -> Result<()>),
) -> Result<()> {
    let width = n_symbols.div_ceil(BUCKETS).max(1);
    let (start, order) = bucket_order(entity, width);
    let reduce_range = |b: usize| {
        let of = &order[start[b]..start[b + 1]];
        let low = b * width;
        let span = ((b + 1) * width).min(n_symbols).saturating_sub(low);
        // Each entity's first place in the range, once counted.
        let mut next = vec![0usize; span + 1];
        for &i in of {
            next[entity[i as usize] as usize - low + 1] += 1;
        }
        for e in 1..next.len() {
            next[e] += next[e - 1];
        }
        let starts: Vec<(u32, usize)> = (0..span)
            .filter(|&e| next[e + 1] > next[e])
            .map(|e| ((low + e) as u32, next[e]))
            .collect();
        if of.len() > big {
            return reduce_big(&place(of, entity, low, next, |i| i), &starts);
        }
        reduce(cells::Grouped {
            rows: place(of, entity, low, next, |i| rows[i as usize]),
            starts,
        })
    };
    let mut from = 0;
    while from < BUCKETS {
        let to = (from + at_once.max(1)).min(BUCKETS);
        each((from..to).into_par_iter().map(reduce_range).collect())?;
        from = to;
    }
    Ok(())
}

/// The indices of `entity`'s rows that have one, grouped by range of `width` entity codes
/// (a stable counting sort), and where each range starts in them. On one thread: counted and
/// placed side by side, a slice of rows per task, the records stage of the 85.9M-event run took
/// 39.2–39.4 s against 39.5–41.3 s (two alternated pairs), no gain worth the code.
fn bucket_order(entity: &[u32], width: usize) -> (Vec<usize>, Vec<u32>) {
    let mut start = vec![0usize; BUCKETS + 1];
    for &e in entity.iter().filter(|&&e| e != NULL) {
        start[e as usize / width + 1] += 1;
    }
    for b in 1..start.len() {
        start[b] += start[b - 1];
    }
    let mut order = vec![0u32; start[BUCKETS]];
    let mut next = start.clone();
    for (i, &e) in entity.iter().enumerate() {
        if e != NULL {
            let b = e as usize / width;
            order[next[b]] = i as u32;
            next[b] += 1;
        }
    }
    (start, order)
}

/// The rows `of` (indices) placed by entity, each as `value(i)`, stably: `next` holds each
/// entity's first place, as an offset from code `low`.
fn place<T: Clone>(
    of: &[u32],
    entity: &[u32],
    low: usize,
    mut next: Vec<usize>,
    value: impl Fn(u32) -> T,
) -> Vec<T> {
    let Some(&first) = of.first() else {
        return Vec::new();
    };
    let mut placed = vec![value(first); of.len()];
    for &i in of {
        let e = entity[i as usize] as usize - low;
        placed[next[e]] = value(i);
        next[e] += 1;
    }
    placed
}

/// What a reduced state weighs, for `docs/scale.md`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Footprint {
    pub entities: u64,
    /// Cells of entities that touched several accounts.
    pub cells: u64,
    /// Entities that touched one and the same account on every day (customers reading their
    /// own record), and their active days.
    pub singles: u64,
    pub single_days: u64,
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
        Reduced::of_placing(events, time, walk, symbols, Placing::default())
    }

    /// [`Reduced::of`], placed as `how` says; the tests force each way.
    fn of_placing(
        events: &DataFrame,
        time: &TimeParser,
        walk: Walk,
        symbols: &mut Symbols,
        how: Placing,
    ) -> Result<Reduced> {
        let mut reduced = InMemory::default();
        let beside = ColdColumns::default();
        Reduced::of_groups((events, &beside), time, walk, symbols, how, &mut reduced)?;
        Ok(reduced.reduced)
    }

    /// The records of `events`, made a group of whole local days at a time (one group up to
    /// `how.group` access rows), each group handed to `sink` as it is made, with its place.
    fn of_groups<A: Absorb>(
        (events, cold): (&DataFrame, &ColdColumns),
        time: &TimeParser,
        walk: Walk,
        symbols: &mut Symbols,
        how: Placing,
        sink: &mut A,
    ) -> Result<()> {
        let Some(access) = crate::frame::event_type::code("access") else {
            return Ok(());
        };
        // Rows are numbered in 32 bits (the frame's rows, the sort key, the counting sort).
        if u32::try_from(events.height()).is_err() {
            return Err(crate::error::Error::Argument {
                what: "events in one partition",
                value: events.height().to_string(),
                reason: "more than 2³² in one partition: reduce it in smaller ones".into(),
            });
        }
        let selected = access::Selected::of(events, cold, access, how.targets_run)?;
        let mut from_dict = FromDictionary::new();
        let mut reduce = |part: access::Selected, at: Groups, sink: &mut A| {
            let group = Reduced::of_selected(
                (part, events, cold),
                time,
                walk,
                (symbols, &mut from_dict),
                how,
                (at, &mut *sink),
            )?;
            sink.group(at, group)
        };
        let (chunks, spans) = match selected.len() > how.group {
            true => selected.day_spans((time, how.group), (events, cold), how.targets_run)?,
            false => (Vec::new(), Vec::new()),
        };
        if spans.len() <= 1 {
            return reduce(selected, Groups { i: 0, n: 1 }, sink);
        }
        // Whole local days in each group: every (entity, day) cell is made in one group, so
        // the merge is exact (`overlapping` stays 0).
        let (n, marked) = (spans.len(), selected.marked(chunks));
        for (i, (from, to)) in spans.into_iter().enumerate() {
            let part = marked.within((from, to), (events, cold), how.targets_run)?;
            reduce(part, Groups { i, n }, sink)?;
        }
        Ok(())
    }

    /// The records of the rows `selected`, group `at`: each kind handed to `sink` as it is made.
    fn of_selected(
        (mut selected, events, cold): (access::Selected, &DataFrame, &ColdColumns),
        time: &TimeParser,
        walk: Walk,
        (symbols, from_dict): (&mut Symbols, &mut FromDictionary),
        how: Placing,
        (at, sink): (Groups, &mut impl Absorb),
    ) -> Result<Reduced> {
        // Whether the principal is the account itself, while both are still dictionary codes.
        // Read from beside the frame (past ingest), the principals and addresses are kept for
        // their kinds' turns below instead of read again: 4 bytes a row of the group each.
        let access::Keys {
            targets: mut account,
            principals,
            mut addresses,
        } = selected.keys_beside(events, cold)?;
        let own: Vec<bool> = (principals.par_iter())
            .zip(&account)
            .map(|(p, a)| p == a)
            .collect();
        let mut principals = (!selected.holds(c::PRINCIPAL)).then_some(principals);
        let mut reduced = Reduced::default();
        from_dict.map(&mut account, symbols)?;
        let accounts = group_accounts(&mut account, symbols);
        reduced.accounts = accounts.codes.iter().collect();
        // Each account's rank among the group's (no number first): it orders requests within
        // one instant as [`crate::detect::reach`] does, in four bytes.
        let rank = number_ranks(&accounts.number, (0..accounts.codes.len() as u32).collect());
        // One sort by (instant, account number, frame order) for all kinds; each kind is then a
        // stable counting sort by entity, so every entity's rows stay in that order. Sorting
        // each kind by (entity, instant, ...) instead took three times as long. The keys become
        // the rows in place, so the instants live only in them: at 57M access rows the sort's
        // moment was 33 bytes a row with separate keys, instants and an order.
        if symbols.len() > cells::OWN as usize {
            return Err(crate::error::Error::Argument {
                what: "distinct accounts in one partition",
                value: symbols.len().to_string(),
                reason: "more than 2³¹: reduce it in smaller ones".into(),
            });
        }
        let since = |ts: i64| cells::Row::key((ts - TS_MIN).clamp(0, TS_MAX - TS_MIN), 0, 0);
        let mut rows = selected.instants_as((events, cold), how.targets_run, since)?;
        if rows.len() != account.len() {
            return Err(crate::error::Error::Internal(format!(
                "{} instants for {} accounts in a group of access rows",
                rows.len(),
                account.len()
            )));
        }
        (rows.par_iter_mut().enumerate())
            .for_each(|(j, r)| *r = cells::Row::key(r.ts, rank[account[j] as usize], j as u32));
        drop(rank);
        rows.par_sort_unstable();
        // Ingest keeps instants within TS_MIN..=TS_MAX, so the clamp above changed none.
        rows.par_iter_mut().for_each(|r| {
            let j = r.index as usize;
            r.set(r.ts + TS_MIN, account[j], own[j]);
        });
        drop((account, own));
        // Entities become symbols kind after kind, so codes never depend on threads. A bit per
        // row: whether any kind's entity holds it (see `Reduced::orphans`).
        let mut held = vec![0u64; rows.len().div_ceil(64)];
        let mut entities_of = |key: &str, symbols: &mut Symbols| -> Result<Vec<u32>> {
            let codes = match (key, principals.take_if(|_| key == c::PRINCIPAL)) {
                (_, Some(read)) => read,
                // The network, unless the frame holds one (a test's), from the rows' addresses,
                // wherever they are: from a copy, as networks come before addresses in `KINDS`.
                (c::NETWORK, None) if !selected.holds(c::NETWORK) => {
                    let mut networks = match &addresses {
                        Some(read) => read.clone(),
                        None => selected.codes(c::SOURCE_IP)?,
                    };
                    crate::normalize::networks::to_networks(&mut networks)?;
                    networks
                }
                (c::SOURCE_IP, None) if addresses.is_some() => addresses.take().unwrap_or_default(),
                _ => selected.codes(key)?,
            };
            let mut entity: Vec<u32> = rows.par_iter().map(|r| codes[r.index as usize]).collect();
            drop(codes);
            (held.par_iter_mut())
                .zip(entity.par_chunks(64))
                .for_each(|(word, of)| {
                    for (bit, &e) in of.iter().enumerate() {
                        *word |= u64::from(e != NULL) << bit;
                    }
                });
            from_dict.map(&mut entity, symbols)?;
            Ok(entity)
        };
        // Half a thread's share: a range of one key holding 5.8M of a group's 12M rows (the
        // 300.15M-event export) was copied whole, under a thread's share of 6M.
        let big = (how.big).unwrap_or(rows.len() / rayon::current_num_threads().max(1) / 2);
        let group = |entity: &[u32], n_symbols: usize, to: (usize, &mut dyn FnMut(_) -> _)| {
            by_entity(
                &rows,
                entity,
                n_symbols,
                big,
                |grouped| cells::entities(&grouped, &accounts, time, walk),
                |placed, starts| {
                    cells::entities_placed(&rows, placed, starts, &accounts, time, walk)
                },
                to,
            )
        };
        if rows.len() <= how.side_by_side {
            let mut entities = Vec::with_capacity(KINDS.len());
            for key in KINDS {
                entities.push(entities_of(key, symbols)?);
            }
            let n_symbols = symbols.len();
            let kinds: Vec<Vec<Entities>> = (entities.par_iter())
                .map(|entity| {
                    let mut all = Vec::new();
                    group(
                        entity,
                        n_symbols,
                        (BUCKETS, &mut |parts| {
                            all = parts;
                            Ok(())
                        }),
                    )?;
                    Ok(all)
                })
                .collect::<Result<_>>()?;
            drop(entities);
            for (k, parts) in kinds.into_iter().enumerate() {
                sink.parts(at, k, parts)?;
                reduced.kinds[k] = sink.kind_done(at, k)?;
            }
        } else {
            for (k, key) in KINDS.iter().enumerate() {
                let entity = entities_of(key, symbols)?;
                let mut hand = |parts| sink.parts(at, k, parts);
                group(&entity, symbols.len(), (BUCKETS_AT_ONCE, &mut hand))?;
                drop(entity);
                reduced.kinds[k] = sink.kind_done(at, k)?;
            }
        }
        for (j, row) in rows.iter().enumerate() {
            if held[j / 64] >> (j % 64) & 1 == 0 {
                let day = time.local_day(row.ts).day;
                reduced
                    .orphans
                    .entry(day)
                    .or_default()
                    .insert(accounts.code(row.account()));
            }
        }
        Ok(reduced)
    }

    /// These records without the local days `drop` names, as if their rows had never been
    /// reduced: what a state keeps of a day that is read again or aged out.
    pub fn without_days(self, drop: &BTreeSet<i64>) -> Reduced {
        if drop.is_empty() {
            return self;
        }
        // The kinds side by side, as in `merge`, each kind's accounts too: a day dropped from
        // the 85.9M-event state's records, 1.04 → 0.64 s.
        let (kinds, sets): (Vec<Entities>, Vec<RoaringBitmap>) = (self.kinds.into_par_iter())
            .map(|k| {
                let kind = k.without_days(drop);
                let mut accounts = RoaringBitmap::new();
                for cell in &kind.cells {
                    cell.accounts.add_to(&mut accounts);
                }
                accounts.extend(kind.singles.iter().map(|s| s.account));
                (kind, accounts)
            })
            .unzip();
        let kinds = <[Entities; 4]>::try_from(kinds).unwrap_or_default();
        let mut orphans = self.orphans;
        orphans.retain(|day, _| !drop.contains(day));
        let mut accounts = RoaringBitmap::new();
        for set in sets.iter().chain(orphans.values()) {
            accounts |= set;
        }
        Reduced {
            accounts,
            kinds,
            orphans,
            overlapping: self.overlapping,
        }
    }

    /// How many symbols these records name (entities of every kind and accounts): a state's
    /// table keeps names of days it aged out, and is built anew once most of it is such names.
    pub fn symbols_named(&self) -> u64 {
        let mut named = self.accounts.clone();
        for kind in &self.kinds {
            named.extend(kind.cells.iter().map(|c| c.entity));
            named.extend(kind.singles.iter().map(|s| s.entity));
        }
        named.len()
    }

    /// Joins another partition's reduction (made with the same [`Symbols`]).
    pub fn merge(self, other: Reduced) -> Reduced {
        self.merge_kinds(other, true)
    }

    /// [`Reduced::merge`] a kind at a time, so that only one kind is held twice while it is
    /// joined: how a window reduced in groups grows its records.
    fn merge_kind_by_kind(self, other: Reduced) -> Reduced {
        self.merge_kinds(other, false)
    }

    fn merge_kinds(mut self, other: Reduced, side_by_side: bool) -> Reduced {
        self.accounts |= other.accounts;
        for (day, set) in other.orphans {
            *self.orphans.entry(day).or_default() |= set;
        }
        self.overlapping += other.overlapping;
        // The kinds side by side: each merge walks every record of its kind on one thread. A
        // night merged into the 85.9M-event state's records: 0.72 → 0.46–0.48 s.
        let pairs: Vec<(Entities, Entities)> = (self.kinds.iter_mut())
            .zip(other.kinds)
            .map(|(mine, theirs)| (std::mem::take(mine), theirs))
            .collect();
        let merged: Vec<(Entities, u64)> = if side_by_side {
            (pairs.into_par_iter())
                .map(|(mine, theirs)| mine.merge(theirs))
                .collect()
        } else {
            (pairs.into_iter())
                .map(|(mine, theirs)| mine.merge(theirs))
                .collect()
        };
        for (mine, (joined, overlapping)) in self.kinds.iter_mut().zip(merged) {
            *mine = joined;
            self.overlapping += overlapping;
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
        (self
            .profiles_by_name(key, symbols, walk, detail_from)
            .into_iter())
        .map(|(e, p)| (symbols.name(e).to_string(), p))
        .collect()
    }

    /// [`Reduced::profiles`] as (entity code, profile) in the order of the entities' names in
    /// `symbols` (see [`kind_profiles_by_name`]).
    pub fn profiles_by_name(
        &self,
        key: &str,
        symbols: &Symbols,
        walk: Walk,
        detail_from: u64,
    ) -> Vec<(u32, Profile)> {
        let kind = self.kind(key);
        kind_profiles_by_name(kind, &self.accounts, key, symbols, walk, detail_from)
    }

    /// New accounts per local day for each entity of `key` (or each of `only`).
    pub fn first_days(
        &self,
        key: &str,
        symbols: &Symbols,
        only: Option<&BTreeSet<String>>,
    ) -> BTreeMap<String, Vec<(i64, u64)>> {
        let keep = |e: u32| only.is_none_or(|o| o.contains(symbols.name(e)));
        (kind_first_days(self.kind(key), keep).into_iter())
            .map(|(e, days)| (symbols.name(e).to_string(), days))
            .collect()
    }

    /// Distinct accounts reached at least once by a principal with the account's own id.
    pub fn self_served(&self) -> u64 {
        kind_self_served(self.kind(c::PRINCIPAL))
    }

    /// Size of one kind's reduced entities.
    pub fn footprint(&self, key: &str) -> Footprint {
        let kind = self.kind(key);
        let cells = kind.cells.chunk_by(|a, b| a.entity == b.entity).count();
        Footprint {
            entities: (cells + kind.singles.len()) as u64,
            cells: kind.cells.len() as u64,
            singles: kind.singles.len() as u64,
            single_days: kind.singles.iter().map(|s| s.days.len() as u64).sum(),
            stored_bytes: kind
                .cells
                .iter()
                .map(|c| c.stored_bytes() as u64)
                .sum::<u64>()
                + kind
                    .singles
                    .iter()
                    .map(|s| s.stored_bytes() as u64)
                    .sum::<u64>(),
        }
    }

    fn kind(&self, key: &str) -> &Entities {
        static NONE: Entities = Entities {
            cells: Vec::new(),
            singles: Vec::new(),
        };
        KINDS
            .iter()
            .position(|k| *k == key)
            .map_or(&NONE, |k| &self.kinds[k])
    }
}
