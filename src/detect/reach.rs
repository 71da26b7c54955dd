//! Who touched how many customer accounts, when: the numbers the enumeration detector judges,
//! counted in plain Rust over dictionary codes.
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

use crate::error::{Error, Result};
use crate::frame::{NULL, aligned, chunk_codes, code_arrays, codes, dictionary, i64s};
use crate::normalize::columns::account_number;
use crate::normalize::schema::{HOUR_MS, TS_MAX, TS_MIN, col as c};
use crate::normalize::{Days, TimeParser};

/// What one entity did, in the numbers the enumeration questions need.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub events: u64,
    /// Distinct accounts over the export.
    pub total: u64,
    /// Sum over days of that day's distinct accounts.
    pub sum_daily: u64,
    pub active_days: u64,
    /// (local day, distinct accounts that day), in day order; only for entities with at least
    /// `detail_from` accounts (see [`AccessRows::profiles`]).
    pub days: Vec<(i64, u64)>,
    /// Over how many days the reach was gathered: the perplexity `exp(H)` of the distribution of
    /// first touches over local days. 1 for a one-night burst, ≈ n for n equal days; a few busy
    /// days among many quiet ones count as a few. "Low and slow" needs this, not active days.
    pub spread_days: f64,
    /// The largest share of the reach first touched on one local day.
    pub busiest_day_share: f64,
    /// Rows in which the principal read its own account: an address whose rows are nearly all
    /// like that is a crowd of customers behind one address (a carrier NAT), not one reader.
    pub own_rows: u64,
    /// First and last access instants.
    pub first: i64,
    pub last: i64,
    /// Distinct accounts reached by a step to the next account number (see [`Walk`]).
    pub walk_steps: u64,
    /// Most distinct accounts in any single UTC hour.
    pub peak_hour: u64,
    /// Distinct accounts other than the entity itself (a customer principal reading others).
    pub others: u64,
    /// The entity's own id is also a target account (a customer as a token subject).
    pub is_account: bool,
}

impl Profile {
    /// Distinct accounts over the export ÷ sum of daily distinct accounts.
    pub fn new_ratio(&self) -> f64 {
        self.total as f64 / self.sum_daily.max(1) as f64
    }
}

/// What counts as a step of a sequential walk.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    /// The next account number is 1..=`max_step` above the previous one of the same entity...
    pub max_step: i64,
    /// ...within this many milliseconds.
    pub max_gap_ms: i64,
}

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
        let selected: Vec<u32> = match dict.get_cat("access") {
            None => Vec::new(),
            Some(access) => {
                let kind = codes(events, c::EVENT_TYPE)?;
                (0..kind.len())
                    .filter(|&i| is_access_row(kind[i], target[i], access))
                    .map(row_index)
                    .collect::<Result<_>>()?
            }
        };
        // Rows in which a principal read its own account, in frame order, from the principal's
        // chunks read in place (a flat copy of the column was 35 MB at the detectors' peak).
        let mut own_frame = vec![0u64; target.len().div_ceil(64)];
        let mut at = 0usize;
        for arr in code_arrays(events, c::PRINCIPAL)? {
            let principal = chunk_codes(arr);
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
            .map(|&code| dict.cat_to_str(code).and_then(account_number))
            .collect();
        // The account number's rank (no number first) stands in for it in the sort key.
        let mut by_number: Vec<u32> = (0..account_code.len() as u32).collect();
        by_number.par_sort_unstable_by_key(|&a| account_num[a as usize]);
        let mut rank = vec![0u32; account_code.len()];
        for pair in by_number.windows(2) {
            let [a, b] = [pair[0] as usize, pair[1] as usize];
            rank[b] = rank[a] + u32::from(account_num[b] != account_num[a]);
        }
        drop(by_number);
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
            only.map(|ids| ids.iter().filter_map(|id| dict.get_cat(id)).collect());
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
        let column = codes(events, key)?;
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
            .map(|(&code, v)| (dict.cat_to_str(code).unwrap_or_default().to_string(), v))
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

/// Accumulates first touches per local day (in day order) into [`Profile::spread_days`].
#[derive(Default)]
struct Spread {
    day: Option<i64>,
    n: u64,
    /// Σ n·ln n over closed days, and the largest n.
    sum: f64,
    max: u64,
}

impl Spread {
    fn add(&mut self, day: i64) {
        if self.day != Some(day) {
            self.close();
            self.day = Some(day);
        }
        self.n += 1;
    }

    fn close(&mut self) {
        if self.n > 0 {
            self.sum += self.n as f64 * (self.n as f64).ln();
            self.max = self.max.max(self.n);
        }
        self.n = 0;
    }

    /// (perplexity, busiest day's share): `H = ln T − Σ n ln n / T`.
    fn finish(mut self, total: u64) -> (f64, f64) {
        self.close();
        if total == 0 {
            return (0.0, 0.0);
        }
        let t = total as f64;
        ((t.ln() - self.sum / t).exp(), self.max as f64 / t)
    }
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
                spread.add(days.of(ts));
            }
        }
        p.others = p.total - u64::from(touched_self);
        (p.spread_days, p.busiest_day_share) = spread.finish(p.total);
        p.first = times.first().copied().unwrap_or(0);
        p.last = times.last().copied().unwrap_or(0);

        let busy = p.total >= self.detail_from;
        let walk = s.next();
        let (mut day, mut hour) = (i64::MIN, i64::MIN);
        let (mut day_stamp, mut hour_stamp) = (0, 0);
        let (mut day_n, mut hour_n) = (0u64, 0u64);
        let mut prev: Option<(i64, i64)> = None;
        for (&ts, &a) in times.iter().zip(accounts) {
            let d = days.of(ts);
            if d != day {
                p.close_day(day, day_n, busy);
                (day, day_n, day_stamp) = (d, 0, s.next());
            }
            day_n += u64::from(s.mark(Table::Day, a, day_stamp));
            if busy {
                let h = ts.div_euclid(HOUR_MS);
                if h != hour {
                    (hour, hour_n, hour_stamp) = (h, 0, s.next());
                }
                hour_n += u64::from(s.mark(Table::Hour, a, hour_stamp));
                p.peak_hour = p.peak_hour.max(hour_n);
                // The previous numbered request of this entity, as a walk step's origin.
                if let Some(num) = rows.account_num[a as usize] {
                    if let Some((prev_ts, prev_num)) = prev
                        && (1..=self.walk.max_step).contains(&(num - prev_num))
                        && ts - prev_ts <= self.walk.max_gap_ms
                    {
                        p.walk_steps += u64::from(s.mark(Table::Walk, a, walk));
                    }
                    prev = Some((ts, num));
                }
            }
        }
        p.close_day(day, day_n, busy);
        p
    }
}

impl Profile {
    fn close_day(&mut self, day: i64, accounts: u64, keep: bool) {
        if day == i64::MIN {
            return;
        }
        self.active_days += 1;
        self.sum_daily += accounts;
        if keep {
            self.days.push((day, accounts));
        }
    }
}

/// How often each value of `other` occurs with each of `ids` in column `key`, over the
/// [`AccessRows`]: `id → [(value, rows)]`, unordered. Counted in frame order, chunk by chunk,
/// straight from the columns: gathering both columns whole and reading them in time order
/// took 0.11 s at 10M events, and 70 MB per kind.
pub fn counts_with(
    events: &DataFrame,
    key: &str,
    ids: &BTreeSet<String>,
    other: &str,
) -> Result<BTreeMap<String, Vec<(String, u64)>>> {
    let dict = dictionary();
    let wanted: HashSet<u32> = ids.iter().filter_map(|id| dict.get_cat(id)).collect();
    let access = dict.get_cat("access").unwrap_or(NULL);
    let frame = aligned(events, &[c::EVENT_TYPE, c::TARGET, key, other])?;
    let (kinds, targets) = (
        code_arrays(&frame, c::EVENT_TYPE)?,
        code_arrays(&frame, c::TARGET)?,
    );
    let (keys, values) = (code_arrays(&frame, key)?, code_arrays(&frame, other)?);
    let parts: Vec<HashMap<(u32, u32), u64>> = (0..kinds.len())
        .into_par_iter()
        .map(|k| {
            let mut counts = HashMap::default();
            let (kind, target) = (chunk_codes(kinds[k]), chunk_codes(targets[k]));
            let (key, value) = (chunk_codes(keys[k]), chunk_codes(values[k]));
            for i in 0..kind.len() {
                if value[i] != NULL
                    && wanted.contains(&key[i])
                    && is_access_row(kind[i], target[i], access)
                {
                    *counts.entry((key[i], value[i])).or_default() += 1;
                }
            }
            counts
        })
        .collect();
    let mut counts: HashMap<(u32, u32), u64> = HashMap::default();
    for part in parts {
        for (pair, n) in part {
            *counts.entry(pair).or_default() += n;
        }
    }
    let mut out: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let name = |code| dict.cat_to_str(code).unwrap_or_default().to_string();
    for ((k, v), n) in counts {
        out.entry(name(k)).or_default().push((name(v), n));
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
fn is_access_row(kind: u32, target: u32, access: u32) -> bool {
    kind == access && target != NULL
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    use crate::normalize::schema::DAY_MS;

    fn utc() -> TimeParser {
        TimeParser::new(chrono_tz::UTC)
    }

    const WALK: Walk = Walk {
        max_step: 3,
        max_gap_ms: 6 * HOUR_MS,
    };

    /// (ts, event type, principal, target).
    type Row<'a> = (i64, &'a str, &'a str, Option<&'a str>);

    /// Rows as an event frame.
    fn frame(rows: &[Row]) -> DataFrame {
        let strings = |f: fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
        let cat = |name: &str, values: Vec<Option<String>>| {
            Column::new(name.into(), values)
                .cast(&crate::frame::cat_dtype())
                .expect("categorical")
        };
        DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            cat(c::EVENT_TYPE, strings(|r| Some(r.1.to_string()))),
            cat(c::PRINCIPAL, strings(|r| Some(r.2.to_string()))),
            cat(c::TARGET, strings(|r| r.3.map(str::to_string))),
            // Every principal behind one address: a crowd when they read their own accounts.
            cat(c::SOURCE_IP, strings(|_| Some("100.64.0.1".to_string()))),
        ])
        .expect("frame")
    }

    /// Counts per entity: reach, own account, days, hours, walks; rows that are not access events
    /// or name no account are left out; day detail only above `detail_from`.
    #[test]
    fn profiles_count_reach_days_hours_and_walks() {
        let day1 = DAY_MS;
        let mut rows = vec![
            (0, "access", "C0001", Some("C0001")),
            (MINUTE, "access", "C0001", Some("C0001")),
            (2 * MINUTE, "access", "C0001", Some("C0002")),
            (3 * MINUTE, "login", "C0001", Some("C0099")),
            (4 * MINUTE, "access", "C0001", None),
        ];
        // A walk C0010..=C0034 on day 1, one a minute, written out of order.
        for i in (0..25).rev() {
            rows.push((day1 + i * MINUTE, "access", "walker", None));
        }
        let names: Vec<String> = (0..25).map(|i| format!("C{:04}", 10 + i)).collect();
        for (i, r) in rows.iter_mut().skip(5).enumerate() {
            r.3 = Some(names[24 - i].as_str());
        }
        let events = frame(&rows);
        let access = AccessRows::new(&events).expect("rows");
        let p = access
            .profiles(&events, c::PRINCIPAL, WALK, 20, &utc())
            .expect("profiles");
        let customer = &p["C0001"];
        assert_eq!(
            (
                customer.events,
                customer.total,
                customer.others,
                customer.sum_daily
            ),
            (3, 2, 1, 2)
        );
        assert_eq!(customer.active_days, 1);
        // Two of its three access rows read its own account; only addresses count that.
        assert_eq!(customer.own_rows, 0);
        assert_eq!(access.self_served(), 1);
        let by_address = access
            .profiles(&events, c::SOURCE_IP, WALK, 20, &utc())
            .expect("profiles");
        assert_eq!(by_address["100.64.0.1"].own_rows, 2);
        assert!(customer.days.is_empty(), "below detail_from");
        let walker = &p["walker"];
        assert_eq!(
            (
                walker.total,
                walker.others,
                walker.walk_steps,
                walker.own_rows
            ),
            (25, 25, 24, 0)
        );
        // 25 accounts on one day: a spread of one day, all of it on the busiest.
        assert_eq!((walker.spread_days, walker.busiest_day_share), (1.0, 1.0));
        assert_eq!(walker.days, vec![(1, 25)]);
        assert_eq!(walker.peak_hour, 25);
        let only: BTreeSet<String> = ["walker".to_string()].into();
        let firsts = access
            .first_days(&events, c::PRINCIPAL, Some(&only), &utc())
            .expect("first days");
        assert_eq!(
            firsts.into_iter().collect::<Vec<_>>(),
            vec![("walker".to_string(), vec![(1, 25)])]
        );
        let firsts = access
            .first_days(&events, c::PRINCIPAL, None, &utc())
            .expect("first days");
        assert_eq!(firsts["C0001"], vec![(0, 2)]);
    }

    /// Spread is the perplexity of first touches over days: equal days count fully, a burst
    /// among quiet days counts as little more than one.
    #[test]
    fn spread_counts_days_as_their_share_of_the_reach() {
        let spread = |days: &[(i64, u64)]| {
            let mut s = Spread::default();
            for &(day, n) in days {
                for _ in 0..n {
                    s.add(day);
                }
            }
            s.finish(days.iter().map(|d| d.1).sum())
        };
        let (even, busiest) = spread(&[(1, 50), (2, 50), (3, 50), (4, 50)]);
        assert!((even - 4.0).abs() < 1e-9 && (busiest - 0.25).abs() < 1e-9);
        let mut burst = vec![(30, 6000)];
        burst.extend((0..36).map(|d| (d, 30)));
        burst.sort();
        let (spread_days, busiest) = spread(&burst);
        assert!((2.0..3.5).contains(&spread_days), "{spread_days}");
        assert!(busiest > 0.8);
    }

    /// Requests of one instant are taken in account-number order, so a walker whose log lines
    /// share a timestamp still walks.
    #[test]
    fn one_instant_is_ordered_by_account_number() {
        let names: Vec<String> = (0..30).rev().map(|i| format!("C{:04}", 100 + i)).collect();
        let rows: Vec<_> = names
            .iter()
            .map(|n| (5 * MINUTE, "access", "walker", Some(n.as_str())))
            .collect();
        let events = frame(&rows);
        let p = AccessRows::new(&events)
            .expect("rows")
            .profiles(&events, c::PRINCIPAL, WALK, 20, &utc())
            .expect("profiles");
        assert_eq!(p["walker"].walk_steps, 29);
    }

    /// Who each flagged entity reached through: access rows with an account only, other
    /// entities and rows without a value left out, counted across chunks.
    #[test]
    fn counts_with_counts_access_rows_per_value() {
        let rows = [
            (0, "access", "walker", Some("C0001")),
            (1, "access", "walker", Some("C0002")),
            (2, "access", "walker", None),
            (3, "login", "walker", Some("C0003")),
            (4, "access", "other", Some("C0004")),
            (5, "access", "walker", Some("C0005")),
            (6, "access", "walker", Some("C0006")),
        ];
        let sources = [
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.1"),
            Some("10.0.0.2"),
            None,
        ];
        let with_sources = |range: std::ops::Range<usize>| {
            let mut f = frame(&rows[range.clone()]);
            let ips = Column::new(c::SOURCE_IP.into(), sources[range].to_vec())
                .cast(&crate::frame::cat_dtype())
                .expect("categorical");
            f.with_column(ips).expect("column");
            f
        };
        let events = with_sources(0..3)
            .vstack(&with_sources(3..7))
            .expect("vstack");
        let ids = BTreeSet::from(["walker".to_string()]);
        let mut counts = counts_with(&events, c::PRINCIPAL, &ids, c::SOURCE_IP).expect("counts");
        let mut walker = counts.remove("walker").expect("walker");
        walker.sort();
        assert_eq!(
            walker,
            [("10.0.0.1".to_string(), 2), ("10.0.0.2".to_string(), 1)]
        );
        assert!(counts.is_empty(), "{counts:?}");
    }

    /// Differential: on random access rows the hand-written counts agree with polars group-bys
    /// (what they replaced) for every entity of two kinds: events, distinct accounts, distinct
    /// accounts per day (their sum, the active days and the day list), the busiest UTC hour,
    /// first and last instants, accounts other than the entity itself, and own-account rows.
    #[test]
    fn profiles_agree_with_polars_group_bys() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut next = |n: u64| rng.random_range(0..n);
        let kinds = ["access", "access", "access", "login"];
        // (ts, event type, principal, target account, source address)
        type Random<'a> = (i64, &'a str, String, Option<String>, Option<String>);
        let mut rows: Vec<Random> = Vec::new();
        for _ in 0..6000 {
            let principal = match next(4) {
                0 => format!("C{:04}", next(300)),
                _ => format!("u{}", next(40)),
            };
            let target = match next(20) {
                0 => None,
                1 => Some(principal.clone()),
                _ => Some(format!("C{:04}", next(300))),
            };
            let source = (next(15) > 0).then(|| format!("10.0.0.{}", next(25)));
            let ts = next(10) as i64 * DAY_MS + next(DAY_MS as u64) as i64;
            rows.push((ts, kinds[next(4) as usize], principal, target, source));
        }
        let cat = |name: &str, values: Vec<Option<String>>| {
            Column::new(name.into(), values)
                .cast(&crate::frame::cat_dtype())
                .expect("categorical")
        };
        let events = DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            cat(
                c::EVENT_TYPE,
                rows.iter().map(|r| Some(r.1.to_string())).collect(),
            ),
            cat(
                c::PRINCIPAL,
                rows.iter().map(|r| Some(r.2.clone())).collect(),
            ),
            cat(c::TARGET, rows.iter().map(|r| r.3.clone()).collect()),
            cat(c::SOURCE_IP, rows.iter().map(|r| r.4.clone()).collect()),
        ])
        .expect("frame");
        let access = AccessRows::new(&events).expect("rows");
        for key in [c::PRINCIPAL, c::SOURCE_IP] {
            let ours = access
                .profiles(&events, key, WALK, 0, &utc())
                .expect("profiles");
            let theirs = polars_profiles(&events, key);
            assert_eq!(ours.len(), theirs.len(), "{key}: entities");
            for (id, want) in &theirs {
                let p = &ours[id];
                let got = Expected {
                    events: p.events,
                    total: p.total,
                    days: p.days.clone(),
                    peak_hour: p.peak_hour,
                    first: p.first,
                    last: p.last,
                    others: p.others,
                    own_rows: (key == c::SOURCE_IP).then_some(p.own_rows),
                };
                assert_eq!(&got, want, "{key} {id}");
                assert_eq!(p.sum_daily, p.days.iter().map(|d| d.1).sum::<u64>());
                assert_eq!(p.active_days, p.days.len() as u64);
            }
        }
    }

    #[derive(Debug, PartialEq)]
    struct Expected {
        events: u64,
        total: u64,
        days: Vec<(i64, u64)>,
        peak_hour: u64,
        first: i64,
        last: i64,
        others: u64,
        own_rows: Option<u64>,
    }

    /// The same numbers as polars queries over the access rows that name an account.
    fn polars_profiles(events: &DataFrame, key: &str) -> BTreeMap<String, Expected> {
        let text = |name: &str| col(name).cast(DataType::String);
        let rows = events
            .clone()
            .lazy()
            .filter(
                text(c::EVENT_TYPE)
                    .eq(lit("access"))
                    .and(col(c::TARGET).is_not_null())
                    .and(col(key).is_not_null()),
            )
            .select([
                text(key).alias("k"),
                text(c::TARGET).alias("t"),
                text(c::PRINCIPAL).alias("p"),
                col(c::TS).alias("ts"),
                (col(c::TS) / lit(DAY_MS)).alias("day"),
                (col(c::TS) / lit(HOUR_MS)).alias("hour"),
            ]);
        let run = |lf: LazyFrame| {
            lf.sort(["k"], SortMultipleOptions::default())
                .collect()
                .expect("polars query")
        };
        let per_entity = run(rows.clone().group_by([col("k")]).agg([
            len().alias("events"),
            col("t").n_unique().alias("total"),
            col("ts").min().alias("first"),
            col("ts").max().alias("last"),
            col("t")
                .filter(col("t").neq(col("k")))
                .n_unique()
                .alias("others"),
            col("p").eq(col("t")).sum().alias("own"),
        ]));
        let per_day = run(rows
            .clone()
            .group_by([col("k"), col("day")])
            .agg([col("t").n_unique().alias("n")])
            .sort(["day"], SortMultipleOptions::default()));
        let per_hour = run(rows
            .group_by([col("k"), col("hour")])
            .agg([col("t").n_unique().alias("n")])
            .group_by([col("k")])
            .agg([col("n").max()]));
        let strs = |df: &DataFrame, name: &str| -> Vec<String> {
            let c = df.column(name).expect("column").str().expect("strings");
            c.iter().map(|v| v.unwrap_or("").to_string()).collect()
        };
        let nums = |df: &DataFrame, name: &str| -> Vec<i64> {
            let c = df.column(name).expect("column").cast(&DataType::Int64);
            let c = c.expect("numbers");
            c.i64()
                .expect("i64")
                .iter()
                .map(|v| v.unwrap_or(-1))
                .collect()
        };
        let mut out = BTreeMap::new();
        let ids = strs(&per_entity, "k");
        let [events, total, first, last, others, own] =
            ["events", "total", "first", "last", "others", "own"].map(|n| nums(&per_entity, n));
        for (i, id) in ids.iter().enumerate() {
            let e = Expected {
                events: events[i] as u64,
                total: total[i] as u64,
                days: Vec::new(),
                peak_hour: 0,
                first: first[i],
                last: last[i],
                others: others[i] as u64,
                own_rows: (key == c::SOURCE_IP).then_some(own[i] as u64),
            };
            out.insert(id.clone(), e);
        }
        let (ids, days, n) = (
            strs(&per_day, "k"),
            nums(&per_day, "day"),
            nums(&per_day, "n"),
        );
        for i in 0..ids.len() {
            let e = out.get_mut(&ids[i]).expect("entity");
            e.days.push((days[i], n[i] as u64));
        }
        for e in out.values_mut() {
            e.days.sort();
        }
        let (ids, n) = (strs(&per_hour, "k"), nums(&per_hour, "n"));
        for i in 0..ids.len() {
            out.get_mut(&ids[i]).expect("entity").peak_hour = n[i] as u64;
        }
        out
    }
}
