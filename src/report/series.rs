//! The numbers behind the charts. Daily activity and the heat map are counted in one pass over
//! the event table for the few charted entities (hand-written: seven to eight times faster than
//! the polars queries it replaced, see [`daily`]); cumulative reach, which needs every peer of
//! the top entity for its envelope, is read from the reduced records enumeration reads
//! ([`crate::reduce::Reach`]).

use std::collections::{BTreeMap, BTreeSet};

use itertools::Itertools;
use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::detect::{DetectInput, Entity, EntityKind};
use crate::error::{FrameContext, Result};
use crate::frame::{NULL, code_arrays, i64s, ts_arrays, u64s};
use crate::normalize::TimeParser;
use crate::normalize::cold::RUN_ROWS;
use crate::normalize::networks::lookup;
use crate::normalize::schema::{DAY_MS, TS_MIN, col as c};
use crate::rank::Ranked;

/// How many top entities get their own charts.
pub const CHARTED: usize = 5;
/// At most this many peers feed the envelope (picked evenly by id, deterministic).
const ENVELOPE_PEERS: usize = 20_000;

/// Daily activity of one entity: `(local_day, events, distinct_accounts)`.
#[derive(Debug, Clone)]
pub struct EntitySeries {
    pub entity: Entity,
    pub days: Vec<(i64, u64, u64)>,
    /// Cumulative distinct accounts at the end of each day it was active: `(local_day, total)`.
    pub cumulative: Vec<(i64, u64)>,
}

/// Percentiles of cumulative reach per day across entities of one kind.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: EntityKind,
    pub members: usize,
    /// `(local_day, p50, p90, max)`.
    pub days: Vec<(i64, f64, f64, f64)>,
}

/// Events per (local day, local hour) for one entity.
#[derive(Debug, Clone)]
pub struct Heatmap {
    pub entity: Entity,
    pub zone: String,
    pub cells: Vec<(i64, i64, u64)>,
}

#[derive(Debug, Clone, Default)]
pub struct ChartData {
    pub series: Vec<EntitySeries>,
    pub envelope: Option<Envelope>,
    pub heatmap: Option<Heatmap>,
}

pub fn compute(input: &DetectInput, shown: &[&Ranked]) -> Result<ChartData> {
    let charted: Vec<&Entity> = shown.iter().take(CHARTED).map(|r| &r.entity).collect();
    let top = shown.first().map(|r| &r.entity);
    // Two independent counts, side by side (0.53 -> 0.4 s on a 10M-event export when daily
    // activity was still a polars query).
    let (firsts, daily) = rayon::join(
        || new_accounts(input, &charted, top.map(|e| e.kind)),
        || daily(input, &charted, top),
    );
    let ((firsts, peers), (days, heatmap)) = (firsts?, daily?);
    let mut data = ChartData {
        heatmap,
        ..ChartData::default()
    };
    for (e, days) in charted.iter().zip(days) {
        let new = firsts.get(&e.kind).and_then(|m| m.get(&e.id)).cloned();
        data.series.push(EntitySeries {
            entity: (*e).clone(),
            days,
            cumulative: cumulate(new.unwrap_or_default()),
        });
    }
    if let Some(top) = top {
        data.envelope = envelope(peers, top.kind);
    }
    Ok(data)
}

/// Accounts first touched per day, `(local_day, accounts)`, by entity id within each kind.
type NewAccounts = BTreeMap<EntityKind, BTreeMap<String, Vec<(i64, u64)>>>;

/// The top entity's peers for its envelope: how many entities its kind has, and the new
/// accounts per day of those picked (evenly in name order, at most [`ENVELOPE_PEERS`]).
#[derive(Default)]
struct Peers {
    of: usize,
    picked: Vec<Vec<(i64, u64)>>,
}

/// New accounts per day of the charted entities, and of the top entity's peers.
fn new_accounts(
    input: &DetectInput,
    charted: &[&Entity],
    top_kind: Option<EntityKind>,
) -> Result<(NewAccounts, Peers)> {
    let reach = input.reach()?;
    let (mut firsts, mut peers) = (NewAccounts::new(), Peers::default());
    for kind in charted.iter().map(|e| e.kind).chain(top_kind) {
        if firsts.contains_key(&kind) {
            continue;
        }
        let only: BTreeSet<&str> = (charted.iter())
            .filter(|e| e.kind == kind)
            .map(|e| e.id.as_str())
            .collect();
        let mut picked = Vec::new();
        let days = reach.first_days(kind.column(), |all| {
            let named = all.iter().filter(|&&e| only.contains(reach.name(e)));
            let mut chosen: Vec<u32> = named.copied().collect();
            if Some(kind) == top_kind {
                peers.of = all.len();
                let step = all.len().div_ceil(ENVELOPE_PEERS).max(1);
                picked = all.iter().step_by(step).copied().collect();
                chosen.extend(&picked);
            }
            chosen
        })?;
        if Some(kind) == top_kind {
            peers.picked = (picked.iter())
                .map(|e| days.get(e).cloned().unwrap_or_default())
                .collect();
        }
        let named = (days.into_iter())
            .filter(|(e, _)| only.contains(reach.name(*e)))
            .map(|(e, d)| (reach.name(e).to_string(), d));
        firsts.insert(kind, named.collect());
    }
    Ok((firsts, peers))
}

/// `(local_day, events, distinct_accounts)` of one entity: days in the run's time zone, as the
/// heat map's.
pub type Days = Vec<(i64, u64, u64)>;

/// Daily events and accounts of each charted entity, and the top one's heat map (`top` is the
/// first charted entity), in one pass over the event table's chunks. As polars queries (keep the
/// charted entities' rows, then group each by day) this took 0.39 s at 10M events, where the
/// fifth entity was a service with 2.7M events. Against those queries ([`daily_by_polars`],
/// kept as the reference): 2.1–2.3 ms against 17.0–17.2 ms for five entities of the 100k-event
/// bench export (`cargo bench --bench hot_paths -- daily_series`, medians of two runs), the same
/// counts on random frames (`series/tests.rs`).
#[doc(hidden)]
pub fn daily(
    input: &DetectInput,
    charted: &[&Entity],
    top: Option<&Entity>,
) -> Result<(Vec<Days>, Option<Heatmap>)> {
    // Per kind charted, the column its rows are found by and each code's place in `charted`:
    // a network's rows by their addresses, as the frame stores no network (deriving a network
    // column for a charted network is 4 bytes an event, 0.34 GB at 85.9M, as in `usage`).
    let mut lookups = Vec::new();
    for kind in charted.iter().map(|e| e.kind).collect::<BTreeSet<_>>() {
        let wanted: Vec<(&str, u32)> = (charted.iter().zip(0u32..))
            .filter(|(e, _)| e.kind == kind)
            .map(|(e, i)| (e.id.as_str(), i))
            .collect();
        lookups.push(lookup(input.events, input.cold, kind.column(), &wanted)?);
    }
    let mut names = vec![c::TS, c::TARGET];
    names.extend(lookups.iter().map(|(read, _)| *read));
    names.sort_unstable();
    names.dedup();
    let heat = top.is_some();
    // Each chunk's tally merged as it is made: all chunks' tallies collected first held every
    // chunk's bitmaps of the lead entity at once (0.39 GB above what the run held over the
    // 257.5M-event state). The target accounts wait beside the frame: a run of chunks is read
    // at a time.
    let n = charted.len();
    let mut all = Tally::new(n);
    input.cold.runs(input.events, &names, RUN_ROWS, |run| {
        let part = (run.par_iter())
            .map(|(_, frame)| -> Result<Tally> {
                let mut tally = Tally::new(n);
                let keys = (lookups.iter())
                    .map(|(read, table)| Ok((code_arrays(frame, read)?, table)))
                    .collect::<Result<Vec<_>>>()?;
                let (targets, ts) = (code_arrays(frame, c::TARGET)?, ts_arrays(frame)?);
                for (k, target) in targets.iter().enumerate() {
                    for (key, table) in &keys {
                        let key = &key[k];
                        // Asked in place: most rows are other entities', so no chunk is copied.
                        for i in 0..key.len() {
                            if let Some(e) = table.get(key.at(i)) {
                                let e = e as usize;
                                let (ts, account) = (ts[k][i], target.at(i));
                                tally.add(e, ts, account, input.time, heat && e == 0);
                            }
                        }
                    }
                }
                tally.count();
                Ok(tally)
            })
            .try_reduce(
                || Tally::new(n),
                |mut all, part| {
                    all.merge(part);
                    Ok(all)
                },
            )?;
        all.merge(part);
        Ok(())
    })?;
    let heatmap = top.map(|e| Heatmap {
        entity: e.clone(),
        zone: input.time.tz.to_string(),
        cells: all.cells.iter().map(|(&(d, h), &n)| (d, h, n)).collect(),
    });
    Ok((all.days(), heatmap))
}

/// The polars queries [`daily`] replaced, over a frame that holds its cold columns: each
/// charted entity's rows (a network's by its addresses' networks) grouped by local day, events
/// and distinct accounts, and the top one's by local day and hour. The local instants are the
/// run's own ([`TimeParser::local_ms`]): this is the reference for the counting, not the clock.
/// What its differential test and `benches/hot_paths.rs` compare it with.
#[doc(hidden)]
pub fn daily_by_polars(
    events: &DataFrame,
    charted: &[&Entity],
    top: Option<&Entity>,
    time: &TimeParser,
) -> Result<(Vec<Days>, Option<Heatmap>)> {
    let networks = charted.iter().any(|e| e.kind == EntityKind::Network);
    let mut frame = crate::normalize::networks::names_as_text(events, networks)?;
    let local: Vec<i64> = (i64s(events, c::TS)?.into_iter())
        .map(|ts| time.local_ms(ts))
        .collect();
    let day: Vec<i64> = local.iter().map(|l| l.div_euclid(DAY_MS)).collect();
    let hour: Vec<i64> = (local.iter())
        .map(|l| l.rem_euclid(DAY_MS) / 3_600_000)
        .collect();
    for column in [
        Column::new("day".into(), day),
        Column::new("hour".into(), hour),
    ] {
        frame.with_column(column).stage("local days")?;
    }
    let rows_of = |e: &Entity| {
        let named = col(e.kind.column())
            .cast(DataType::String)
            .eq(lit(e.id.clone()));
        frame.clone().lazy().filter(named)
    };
    let mut days = Vec::with_capacity(charted.len());
    for e in charted {
        let per_day = (rows_of(e).group_by([col("day")]))
            .agg([
                len().cast(DataType::UInt64).alias("events"),
                (col(c::TARGET).drop_nulls().n_unique())
                    .cast(DataType::UInt64)
                    .alias("accounts"),
            ])
            .sort(["day"], SortMultipleOptions::default())
            .collect()
            .stage("daily activity as a polars query")?;
        let counts = u64s(&per_day, "events")?.into_iter();
        let rows = (i64s(&per_day, "day")?.into_iter().zip(counts))
            .zip(u64s(&per_day, "accounts")?)
            .map(|((d, n), a)| (d, n, a));
        days.push(rows.collect());
    }
    let Some(top) = top else {
        return Ok((days, None));
    };
    let cells = (rows_of(top).group_by([col("day"), col("hour")]))
        .agg([len().cast(DataType::UInt64).alias("n")])
        .sort(["day", "hour"], SortMultipleOptions::default())
        .collect()
        .stage("heat map as a polars query")?;
    let at = i64s(&cells, "day")?.into_iter().zip(i64s(&cells, "hour")?);
    let heatmap = Heatmap {
        entity: top.clone(),
        zone: time.tz.to_string(),
        cells: (at.zip(u64s(&cells, "n")?))
            .map(|((d, h), n)| (d, h, n))
            .collect(),
    };
    Ok((days, Some(heatmap)))
}

/// Counts behind [`daily`] for one chunk or for all, per charted entity.
struct Tally {
    /// Each local day's events and accounts, from `pairs` by [`Tally::count`]. Accounts as
    /// bitmaps of their codes: the lead of the 85.9M-event state, an address with 26.9M events,
    /// had 8 bytes a distinct (day, account) pair in a list per chunk and again in the merged
    /// list, which set the stage's peak, 0.43 GB above what the run held (a night added).
    days: Vec<BTreeMap<i64, (u64, RoaringBitmap)>>,
    /// (day, account) of each event added since the last count, packed (see [`Tally::add`]).
    pairs: Vec<Vec<u64>>,
    /// The top entity's events per (local day, local hour).
    cells: BTreeMap<(i64, i64), u64>,
    /// The top entity's latest (local day, local hour) and its events not yet in `cells`: logs
    /// come mostly in time order, so one map lookup a run of an hour instead of one an event
    /// (the lead of the 85.9M-event state has 26.9M; its chart series 3.08–3.12 → 2.96–2.99 s,
    /// two alternated pairs). Rows out of order only start another run.
    hour: Option<((i64, i64), u64)>,
}

/// Below the smallest local day an instant can fall on (a day before the UTC one, for zones
/// west of Greenwich), so a day packs into 32 bits as `day - DAY_MIN`.
const DAY_MIN: i64 = TS_MIN.div_euclid(DAY_MS) - 1;

impl Tally {
    fn new(entities: usize) -> Tally {
        Tally {
            days: vec![BTreeMap::new(); entities],
            pairs: vec![Vec::new(); entities],
            cells: BTreeMap::new(),
            hour: None,
        }
    }

    /// One event of entity `e`; `heat`: also count it on the heat map (the top entity).
    fn add(&mut self, e: usize, ts: i64, account: u32, time: &TimeParser, heat: bool) {
        // Each event gets its own local offset (DST included): days are local days.
        let local = time.local_ms(ts);
        let day = local.div_euclid(DAY_MS);
        self.pairs[e].push(((day - DAY_MIN) as u64) << 32 | u64::from(account));
        if heat {
            let cell = (
                local.div_euclid(DAY_MS),
                local.rem_euclid(DAY_MS) / 3_600_000,
            );
            match &mut self.hour {
                Some((hour, n)) if *hour == cell => *n += 1,
                _ => {
                    self.close_hour();
                    self.hour = Some((cell, 1));
                }
            }
        }
    }

    /// The events of the hour being counted, into `cells`.
    fn close_hour(&mut self) {
        if let Some((cell, n)) = self.hour.take() {
            *self.cells.entry(cell).or_default() += n;
        }
    }

    /// Counts the pairs added since the last count into each day's events and accounts.
    fn count(&mut self) {
        self.close_hour();
        for (days, pairs) in self.days.iter_mut().zip(&mut self.pairs) {
            pairs.sort_unstable();
            for run in pairs.chunk_by(|x, y| x >> 32 == y >> 32) {
                let (events, accounts) = days.entry(day_of(run[0])).or_default();
                *events += run.len() as u64;
                let codes = (run.iter().map(|&p| p as u32)).filter(|&a| a != NULL);
                // Sorted and distinct: appended a container at a time (0.17 s of the chart
                // series at 10M events inserted one by one, 0.09 s so), unless the day already
                // holds a later code (inserted then; an insert that finds a code is a no-op).
                let codes = codes.dedup();
                if accounts.append(codes.clone()).is_err() {
                    accounts.extend(codes);
                }
            }
            *pairs = Vec::new();
        }
    }

    fn merge(&mut self, mut other: Tally) {
        other.close_hour();
        for (mine, theirs) in self.days.iter_mut().zip(other.days) {
            for (day, (events, accounts)) in theirs {
                let (n, set) = mine.entry(day).or_default();
                *n += events;
                *set |= accounts;
            }
        }
        for (cell, n) in other.cells {
            *self.cells.entry(cell).or_default() += n;
        }
    }

    /// `(day, events, distinct accounts)` per entity, in day order.
    fn days(&self) -> Vec<Days> {
        (self.days.iter())
            .map(|days| {
                (days.iter())
                    .map(|(&d, (n, accounts))| (d, *n, accounts.len()))
                    .collect()
            })
            .collect()
    }
}

/// The local day of a packed (day, account) pair.
fn day_of(pair: u64) -> i64 {
    (pair >> 32) as i64 + DAY_MIN
}

fn cumulate(mut new: Vec<(i64, u64)>) -> Vec<(i64, u64)> {
    new.sort_unstable();
    let mut total = 0;
    new.into_iter()
        .map(|(d, n)| {
            total += n;
            (d, total)
        })
        .collect()
}

/// Percentiles of cumulative reach across the top entity's peers (new accounts per day of each
/// picked), when its kind has at least three entities.
fn envelope(peers: Peers, kind: EntityKind) -> Option<Envelope> {
    if peers.of < 3 {
        return None;
    }
    let picked: Vec<Vec<(i64, u64)>> = peers.picked.into_iter().map(cumulate).collect();
    // Only days on which some picked entity reached a new account: between them every curve is
    // flat. A grid over the whole span grew with the distance between the first and last event
    // (two corrupt timestamps 10,000 years apart: 6 GB), not with the data.
    let mut active: Vec<i64> = picked.iter().flatten().map(|d| d.0).collect();
    active.sort_unstable();
    active.dedup();
    // Cumulative reach of every picked entity on every active day (carried forward).
    let mut grid = vec![vec![0u64; picked.len()]; active.len()];
    for (j, s) in picked.iter().enumerate() {
        let mut it = s.iter().peekable();
        let mut cur = 0;
        for (row, &day) in grid.iter_mut().zip(&active) {
            while let Some(&&(d, t)) = it.peek() {
                if d > day {
                    break;
                }
                cur = t;
                it.next();
            }
            row[j] = cur;
        }
    }
    let days = grid
        .into_iter()
        .zip(active)
        .map(|(mut v, day)| {
            v.sort_unstable();
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64;
            (day, q(0.5), q(0.9), q(1.0))
        })
        .collect();
    Some(Envelope {
        kind,
        members: picked.len(),
        days,
    })
}

#[cfg(test)]
mod tests;
