//! Who touched how many customer accounts, when, counted over every access event: what the
//! enumeration detector and the reach charts read until the reduced records of
//! [`crate::reduce::Reach`] replaced it (issue 21). [`AccessRows`] stays as the reference those
//! records are checked against (`reduce/tests.rs`, the `reduce` fuzz target,
//! `benches/reduce_state.rs`), itself checked against polars group-bys in `reach/tests.rs`;
//! [`counts_with`] is still enumeration's: against a polars filter and group-by per question
//! ([`counts_with_by_polars`], kept as the reference), 1.8–1.9 ms against 20.9–23.8 ms for the
//! twenty busiest entities of the 100k-event bench export (`cargo bench --bench hot_paths --
//! related_counts`, medians of two runs), the same counts on random frames (`reach/tests.rs`).
//!
//! The same questions as polars queries (distinct accounts per entity, per entity and day, per
//! entity and hour, sequential walks, for four entity kinds) took about twenty group-bys and
//! 4.5 s on a 10M-event export, and their intermediate tables set the run's peak memory. Here the
//! access rows are sorted by time once; each entity kind is then a stable counting sort by entity
//! and one pass over each entity's rows, which are in time order, so a day or an hour is a run of
//! consecutive rows and "distinct" is a stamp in a table indexed by account.

use std::collections::{BTreeMap, BTreeSet};

use hashbrown::{HashMap, HashSet};
use polars::prelude::*;
use rayon::prelude::*;

use super::tally::{Dense, Stamps, Table};
pub use crate::reduce::{Profile, Walk};
use crate::reduce::{Spread, number_ranks};

use crate::error::{Error, FrameContext, Result};
use crate::frame::{NULL, aligned, code_arrays, codes, dictionary, event_type, i64s, strs, u64s};
use crate::normalize::cold::RUN_ROWS;
use crate::normalize::columns::account_number;
use crate::normalize::networks::lookup;
use crate::normalize::schema::{HOUR_MS, TS_MAX, TS_MIN, col as c};
use crate::normalize::{ColdColumns, Days, TimeParser};

/// The access events that name a target account, sorted by (time, account number, frame row).
/// The account number orders requests within one instant the way a walker issued them; the
/// frame row, which follows the sorted file order, makes the order total and so every count
/// reproducible.
pub struct AccessRows {
    /// Frame row of each sorted row.
    row: Vec<u32>,
    ts: Vec<i64>,
    /// Dense account index of each sorted row.
    account: Vec<u32>,
    /// Dictionary code and account number of each dense account index.
    account_code: Vec<u32>,
    account_num: Vec<Option<i64>>,
    /// Bit per sorted row: the principal is the account itself (a customer reading its own
    /// record with its own token).
    own: Vec<u64>,
}

impl AccessRows {
    pub fn new(events: &DataFrame) -> Result<AccessRows> {
        let dict = dictionary();
        let target = codes(events, c::TARGET)?;
        let selected: Vec<u32> = match event_type::code("access") {
            None => Vec::new(),
            Some(access) => {
                let mut kind = Vec::with_capacity(target.len());
                for a in event_type::arrays(events, c::EVENT_TYPE)? {
                    kind.extend_from_slice(&event_type::codes(&a));
                }
                (0..kind.len())
                    .filter(|&i| is_access_row(kind[i], target[i], Some(access)))
                    .map(row_index)
                    .collect::<Result<_>>()?
            }
        };
        // Rows in which a principal read its own account, in frame order, from the principal's
        // chunks read in place (a flat copy of the column was 35 MB at the detectors' peak).
        let mut own_frame = vec![0u64; target.len().div_ceil(64)];
        let mut at = 0usize;
        for arr in code_arrays(events, c::PRINCIPAL)? {
            let principal = arr.values();
            for (i, (&p, &t)) in principal.iter().zip(&target[at..]).enumerate() {
                own_frame[(at + i) / 64] |= u64::from(p == t && t != NULL) << ((at + i) % 64);
            }
            at += principal.len();
        }
        let own_row: Vec<u64> = {
            let mut bits = vec![0u64; selected.len().div_ceil(64)];
            for (i, &r) in selected.iter().enumerate() {
                let r = r as usize;
                bits[i / 64] |= ((own_frame[r / 64] >> (r % 64)) & 1) << (i % 64);
            }
            bits
        };
        drop(own_frame);
        let mut dense = Dense::new();
        let account_of_row: Vec<u32> = selected
            .iter()
            .map(|&r| dense.index(target[r as usize]))
            .collect();
        drop(target);
        let account_code = dense.codes;
        let account_num: Vec<Option<i64>> = account_code
            .par_iter()
            .map(|&code| dict.name(code).and_then(account_number))
            .collect();
        // The account number's rank (no number first) stands in for it in the sort key.
        let rank = number_ranks(&account_num, (0..account_code.len() as u32).collect());
        // One 128-bit key per row: the instant since TS_MIN (49 bits: ingest keeps instants within
        // TS_MIN..=TS_MAX), the number's rank, the selection index (frame order). Two thirds the
        // memory of a (ts, number, row, account) tuple, and one comparison per step of the sort.
        let ts = i64s(events, c::TS)?;
        let mut keys: Vec<u128> = selected
            .iter()
            .zip(&account_of_row)
            .enumerate()
            .map(|(i, (&r, &a))| {
                let since = (ts[r as usize] - TS_MIN).clamp(0, TS_MAX - TS_MIN) as u128;
                since << 79 | u128::from(rank[a as usize]) << 32 | i as u128
            })
            .collect();
        drop((ts, rank));
        keys.par_sort_unstable();
        let index = |k: &u128| (k & u128::from(u32::MAX)) as usize;
        let row: Vec<u32> = keys.iter().map(|k| selected[index(k)]).collect();
        drop(selected);
        let account: Vec<u32> = keys.iter().map(|k| account_of_row[index(k)]).collect();
        drop(account_of_row);
        let mut own = vec![0u64; account.len().div_ceil(64)];
        for (i, k) in keys.iter().enumerate() {
            let j = index(k);
            if own_row[j / 64] & (1 << (j % 64)) != 0 {
                own[i / 64] |= 1 << (i % 64);
            }
        }
        drop(own_row);
        Ok(AccessRows {
            row,
            ts: keys.iter().map(|k| (k >> 79) as i64 + TS_MIN).collect(),
            account,
            account_code,
            account_num,
            own,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.row.is_empty()
    }

    /// Distinct accounts the access rows name (see [`super::population`]).
    pub fn accounts(&self) -> usize {
        self.account_code.len()
    }

    /// Their names: what a reduction's accounts are held to in tests.
    #[cfg(test)]
    pub fn account_names(&self) -> BTreeSet<String> {
        let dict = dictionary();
        (self.account_code.iter())
            .filter_map(|&code| dict.name(code).map(str::to_owned))
            .collect()
    }

    /// Distinct accounts reached at least once by a principal with the account's own id: the
    /// customers who used their own token.
    pub fn self_served(&self) -> usize {
        let mut seen = vec![false; self.account_code.len()];
        for (i, &a) in self.account.iter().enumerate() {
            if self.is_own(i) {
                seen[a as usize] = true;
            }
        }
        seen.iter().filter(|s| **s).count()
    }

    fn is_own(&self, i: usize) -> bool {
        self.own[i / 64] & (1 << (i % 64)) != 0
    }

    /// One profile per value of the entity column `key` (rows where it is null are skipped).
    /// Day-by-day detail is kept only for entities with at least `detail_from` accounts: most
    /// entities (customers) touch one, and no question can fire below that.
    pub fn profiles(
        &self,
        events: &DataFrame,
        key: &str,
        walk: Walk,
        detail_from: u64,
        time: &TimeParser,
    ) -> Result<BTreeMap<String, Profile>> {
        let groups = self.group(events, key, None)?;
        let accounts: HashSet<u32> = self.account_code.iter().copied().collect();
        let work = Work {
            rows: self,
            groups: &groups,
            walk,
            detail_from,
            time: *time,
        };
        let profiles = groups.each(self.account_code.len(), |e, stamps| {
            let mut p = work.profile(e, stamps);
            p.is_account = accounts.contains(&groups.codes[e]);
            p
        });
        Ok(groups.named(profiles))
    }

    /// New accounts per local day for each value of `key` (or each of `only`): `(day, accounts
    /// first touched that day)` in day order. The cumulative reach charts add these up.
    pub fn first_days(
        &self,
        events: &DataFrame,
        key: &str,
        only: Option<&BTreeSet<String>>,
        time: &TimeParser,
    ) -> Result<BTreeMap<String, Vec<(i64, u64)>>> {
        let dict = dictionary();
        let wanted: Option<HashSet<u32>> =
            only.map(|ids| ids.iter().filter_map(|id| dict.code(id)).collect());
        let groups = self.group(events, key, wanted.as_ref())?;
        let firsts = groups.each(self.account_code.len(), |e, s| {
            let (ts, accounts) = groups.rows(e);
            s.reserve(ts.len());
            let entity = s.next();
            let mut days = Days::new(*time);
            let mut out: Vec<(i64, u64)> = Vec::new();
            for (&ts, &a) in ts.iter().zip(accounts) {
                if s.mark(Table::Total, a, entity) {
                    let day = days.of(ts);
                    match out.last_mut() {
                        Some((d, n)) if *d == day => *n += 1,
                        _ => out.push((day, 1)),
                    }
                }
            }
            out
        });
        Ok(groups.named(firsts))
    }

    /// The sorted rows grouped by the value of the entity column `key` (only the `wanted` codes
    /// if given), each group in time order (a stable counting sort over dense entity indices).
    fn group(
        &self,
        events: &DataFrame,
        key: &str,
        wanted: Option<&HashSet<u32>>,
    ) -> Result<Groups> {
        // `aligned`: the network is derived from the addresses when the frame stores none.
        let column = codes(&aligned(events, &[key])?, key)?;
        let keep = |code: u32| match wanted {
            Some(w) if !w.contains(&code) => NULL,
            _ => code,
        };
        let mut dense = Dense::new();
        let mut counts: Vec<u32> = Vec::new();
        let entity: Vec<u32> = self
            .row
            .iter()
            .map(|&r| {
                let code = keep(column[r as usize]);
                if code == NULL {
                    return NULL;
                }
                let e = dense.index(code);
                if e as usize == counts.len() {
                    counts.push(0);
                }
                counts[e as usize] += 1;
                e
            })
            .collect();
        // Only addresses and networks are judged as crowds (`Profile::own_rows`).
        let count_own = key == c::SOURCE_IP || key == c::NETWORK;
        let mut own = vec![0u32; if count_own { counts.len() } else { 0 }];
        drop(column);
        let entity_code = dense.codes;
        let mut starts = Vec::with_capacity(counts.len() + 1);
        let mut at = 0usize;
        for n in &counts {
            starts.push(at);
            at += *n as usize;
        }
        starts.push(at);
        let mut fill = starts.clone();
        // The rows' instants and accounts move into group order: each entity's pass then reads
        // one contiguous run instead of jumping through the time-sorted arrays (those cache
        // misses were a third of enumeration in `perf`).
        let (mut ts, mut account) = (vec![0i64; at], vec![0u32; at]);
        for (pos, &e) in entity.iter().enumerate() {
            if e != NULL {
                let to = fill[e as usize];
                (ts[to], account[to]) = (self.ts[pos], self.account[pos]);
                fill[e as usize] += 1;
                if count_own {
                    own[e as usize] += u32::from(self.is_own(pos));
                }
            }
        }
        Ok(Groups {
            codes: entity_code,
            starts,
            ts,
            account,
            own,
        })
    }
}

/// The access rows grouped by entity, each group in time order.
struct Groups {
    /// Dictionary code of each dense entity index.
    codes: Vec<u32>,
    starts: Vec<usize>,
    ts: Vec<i64>,
    account: Vec<u32>,
    /// Rows of each entity in which the principal read its own account (addresses and networks
    /// only; empty for other kinds).
    own: Vec<u32>,
}

impl Groups {
    /// Instants and accounts of entity `e`'s rows, in time order.
    fn rows(&self, e: usize) -> (&[i64], &[u32]) {
        let range = self.starts[e]..self.starts[e + 1];
        (&self.ts[range.clone()], &self.account[range])
    }

    /// `f` for every entity, in parallel; a few chunks per thread, each with its own stamp tables
    /// as long as the account list.
    fn each<T: Send>(&self, accounts: usize, f: impl Fn(usize, &mut Stamps) -> T + Sync) -> Vec<T> {
        let n = self.codes.len();
        let chunk = n.div_ceil(4 * rayon::current_num_threads()).max(1);
        (0..n)
            .collect::<Vec<_>>()
            .par_chunks(chunk)
            .flat_map_iter(|ids| {
                let mut stamps = Stamps::new(accounts);
                ids.iter().map(|&e| f(e, &mut stamps)).collect::<Vec<_>>()
            })
            .collect()
    }

    /// Per-entity results keyed by the entity's string.
    fn named<T>(&self, values: Vec<T>) -> BTreeMap<String, T> {
        let dict = dictionary();
        self.codes
            .iter()
            .zip(values)
            .map(|(&code, v)| (dict.name(code).unwrap_or_default().to_string(), v))
            .collect()
    }
}

/// One entity kind's rows grouped by entity, and what to count in them.
struct Work<'a> {
    rows: &'a AccessRows,
    groups: &'a Groups,
    walk: Walk,
    detail_from: u64,
    time: TimeParser,
}

impl Work<'_> {
    fn profile(&self, e: usize, s: &mut Stamps) -> Profile {
        let rows = self.rows;
        let own = self.groups.codes[e];
        let (times, accounts) = self.groups.rows(e);
        let mut p = Profile {
            events: times.len() as u64,
            own_rows: self.groups.own.get(e).map_or(0, |&n| u64::from(n)),
            ..Profile::default()
        };
        s.reserve(times.len());
        let entity = s.next();
        let mut touched_self = false;
        let mut days = Days::new(self.time);
        let mut spread = Spread::default();
        for (&ts, &a) in times.iter().zip(accounts) {
            if s.mark(Table::Total, a, entity) {
                p.total += 1;
                touched_self |= rows.account_code[a as usize] == own;
                spread.add(days.of(ts), 1);
            }
        }
        p.others = p.total - u32::from(touched_self);
        (p.spread_days, p.busiest_day_share) = spread.finish(p.total.into());
        p.first = times.first().copied().unwrap_or(0);
        p.last = times.last().copied().unwrap_or(0);

        let busy = u64::from(p.total) >= self.detail_from;
        let walk = s.next();
        let (mut day, mut hour) = (i64::MIN, i64::MIN);
        let (mut day_stamp, mut hour_stamp) = (0, 0);
        let (mut day_n, mut hour_n) = (0u64, 0u32);
        let mut prev: Option<(i64, i64)> = None;
        let mut kept = Vec::new();
        for (&ts, &a) in times.iter().zip(accounts) {
            let d = days.of(ts);
            if d != day {
                p.close_day(day, day_n, busy.then_some(&mut kept));
                (day, day_n, day_stamp) = (d, 0, s.next());
            }
            day_n += u64::from(s.mark(Table::Day, a, day_stamp));
            if busy {
                let h = ts.div_euclid(HOUR_MS);
                if h != hour {
                    (hour, hour_n, hour_stamp) = (h, 0, s.next());
                }
                hour_n += u32::from(s.mark(Table::Hour, a, hour_stamp));
                p.peak_hour = p.peak_hour.max(hour_n);
                // The previous numbered request of this entity, as a walk step's origin.
                if let Some(num) = rows.account_num[a as usize] {
                    if let Some((prev_ts, prev_num)) = prev
                        && (1..=self.walk.max_step).contains(&(num - prev_num))
                        && ts - prev_ts <= self.walk.max_gap_ms
                    {
                        p.walk_steps += u32::from(s.mark(Table::Walk, a, walk));
                    }
                    prev = Some((ts, num));
                }
            }
        }
        p.close_day(day, day_n, busy.then_some(&mut kept));
        p.days = kept.into_boxed_slice();
        p
    }
}

impl Profile {
    /// Counts day `day`'s `accounts`, listed in `kept` where given.
    fn close_day(&mut self, day: i64, accounts: u64, kept: Option<&mut Vec<(i64, u64)>>) {
        if day == i64::MIN {
            return;
        }
        self.active_days += 1;
        self.sum_daily += accounts;
        if let Some(kept) = kept {
            kept.push((day, accounts));
        }
    }
}

/// Per entity, the values seen with it and in how many rows: `id → [(value, rows)]`, unordered.
pub type CountsWith = BTreeMap<String, Vec<(String, u64)>>;

/// How often each value of `other` occurs with each of `ids` in column `key`, over the
/// [`AccessRows`] (see [`counts_with_each`]).
pub fn counts_with(
    events: &DataFrame,
    cold: &ColdColumns,
    key: &str,
    ids: &BTreeSet<String>,
    other: &str,
) -> Result<CountsWith> {
    let mut all = counts_with_each((events, cold, None), &[(key, ids, other)])?;
    Ok(all.pop().unwrap_or_default())
}

/// [`counts_with`] for several (key, ids, other) questions, in one pass over the frame: counted
/// in frame order, chunk by chunk, straight from the columns. With a pass per question (four
/// kinds side by side, each reading the event type and target columns again), enumeration took
/// 4.99 s on the 85.9M-event state's nightly run; in one pass, 4.72 s (`docs/performance.md`,
/// twenty-third session). The target accounts wait beside the frame (`cold`): the pass reads a
/// run of chunks at a time, and of the chunks that hold a row of `accesses` alone (sorted frame
/// rows, where [`crate::frame::event_type::TypesByChunk`] puts the access events; `None`: every
/// chunk), as an issuer's or a sign-in log's chunks hold none: over the 85.9M-event state
/// (a third of its rows in such files) `docs/performance.md`, fiftieth session, has the gain.
pub fn counts_with_each(
    (events, cold, accesses): (&DataFrame, &ColdColumns, Option<&[std::ops::Range<usize>]>),
    questions: &[(&str, &BTreeSet<String>, &str)],
) -> Result<Vec<CountsWith>> {
    let ids: Vec<Vec<&str>> = (questions.iter())
        .map(|(_, ids, _)| ids.iter().map(String::as_str).collect())
        .collect();
    // Each question's key column as read, and each row's key as its place in `ids` (NULL when
    // not wanted).
    let mut lookups = Vec::with_capacity(questions.len());
    for ((key, _, other), ids) in questions.iter().zip(&ids) {
        let wanted: Vec<(&str, u32)> = ids.iter().zip(0u32..).map(|(id, i)| (*id, i)).collect();
        let (read, table) = lookup(events, cold, key, &wanted)?;
        lookups.push((read, table, *other));
    }
    let dict = dictionary();
    let access = event_type::code("access");
    let mut names = vec![c::EVENT_TYPE, c::TARGET];
    for (read, _, other) in &lookups {
        names.extend([*read, *other]);
    }
    names.sort_unstable();
    names.dedup();
    type Counts = HashMap<(u32, u32), u64>;
    let mut counts = vec![Counts::default(); lookups.len()];
    cold.runs_within(events, &names, RUN_ROWS, accesses, |run| {
        let parts: Vec<Vec<Counts>> = (run.par_iter())
            .map(|(_, frame)| -> Result<Vec<Counts>> {
                let mut counts = vec![Counts::default(); lookups.len()];
                let (kinds, targets) = (
                    event_type::arrays(frame, c::EVENT_TYPE)?,
                    code_arrays(frame, c::TARGET)?,
                );
                let columns: Vec<_> = (lookups.iter())
                    .map(|(read, _, other)| {
                        Ok((code_arrays(frame, read)?, code_arrays(frame, other)?))
                    })
                    .collect::<Result<_>>()?;
                for k in 0..kinds.len() {
                    let (kind, target) = (event_type::codes(&kinds[k]), &targets[k]);
                    // The values and targets are read for the wanted rows alone, not copied
                    // whole onto fresh pages where a chunk has nulls (`Codes::values`): the
                    // 85.9M-event state's night took 1.67–1.71 → 1.56–1.58 s here (two
                    // alternated pairs; forty-sixth session).
                    let columns: Vec<_> = (columns.iter())
                        .map(|(keys, values)| (keys[k].values(), &values[k]))
                        .collect();
                    for i in 0..kind.len() {
                        if Some(kind[i]) != access {
                            continue;
                        }
                        for (q, (key, value)) in columns.iter().enumerate() {
                            let Some(k) = lookups[q].1.get(key[i]).filter(|&k| k != NULL) else {
                                continue;
                            };
                            let value = value.at(i);
                            if value != NULL && is_access_row(kind[i], target.at(i), access) {
                                *counts[q].entry((k, value)).or_default() += 1;
                            }
                        }
                    }
                }
                Ok(counts)
            })
            .collect::<Result<_>>()?;
        for part in parts {
            for (all, part) in counts.iter_mut().zip(part) {
                for (pair, n) in part {
                    *all.entry(pair).or_default() += n;
                }
            }
        }
        Ok(())
    })?;
    let name = |code| dict.name(code).unwrap_or_default().to_string();
    let mut out = Vec::with_capacity(counts.len());
    for (counts, ids) in counts.into_iter().zip(&ids) {
        let mut by_id = CountsWith::new();
        for ((k, v), n) in counts {
            let id = ids.get(k as usize).copied().unwrap_or_default();
            by_id.entry(id.to_string()).or_default().push((name(v), n));
        }
        out.push(by_id);
    }
    Ok(out)
}

/// The polars query [`counts_with_each`] replaced, for one question, over a frame that holds
/// its cold columns: the access rows that name an account, a value of `other` and one of `ids`
/// in column `key` (a network by its addresses' networks), counted per (key, `other`), each list
/// in no order. What its differential test and `benches/hot_paths.rs` compare it with.
#[doc(hidden)]
pub fn counts_with_by_polars(
    events: &DataFrame,
    key: &str,
    ids: &BTreeSet<String>,
    other: &str,
) -> Result<CountsWith> {
    let frame = crate::normalize::networks::names_as_text(events, key == c::NETWORK)?;
    let text = |name: &str| col(name).cast(DataType::String);
    let ids: Vec<String> = ids.iter().cloned().collect();
    let wanted = lit(Series::new("ids".into(), ids)).implode(false);
    let counts = (frame.lazy())
        .filter(text(c::EVENT_TYPE).eq(lit("access")))
        .filter(col(c::TARGET).is_not_null().and(col(other).is_not_null()))
        .filter(text(key).is_in(wanted, false))
        .group_by([text(key).alias("id"), text(other).alias("value")])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .collect()
        .stage("related counts as a polars query")?;
    let mut out = CountsWith::new();
    let (id, value) = (strs(&counts, "id")?, strs(&counts, "value")?);
    for ((id, value), n) in id.into_iter().zip(value).zip(u64s(&counts, "n")?) {
        out.entry(id).or_default().push((value, n));
    }
    Ok(out)
}

fn row_index(i: usize) -> Result<u32> {
    u32::try_from(i).map_err(|_| Error::Argument {
        what: "event count",
        value: i.to_string(),
        reason: "more than 2³² events in one run".into(),
    })
}

/// The rows [`AccessRows`] holds: access events that name an account (`access`: the code of
/// the `access` event type).
fn is_access_row(kind: u16, target: u32, access: Option<u16>) -> bool {
    Some(kind) == access && target != NULL
}

#[cfg(test)]
mod tests;
