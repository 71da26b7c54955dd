//! The numbers behind the charts, computed from the event frame with polars. Only the charted
//! entities are aggregated, so this costs a few filtered group-bys, not another pass per entity.

use std::collections::BTreeMap;

use chrono::{Offset, TimeZone};
use polars::prelude::*;

use crate::detect::{Entity, EntityKind};
use crate::error::{FrameContext, Result};
use crate::frame::{account, day, i64s, key_series, pack, strs, u64s};
use crate::normalize::TimeParser;
use crate::normalize::schema::{DAY_MS, col as c};
use crate::rank::Ranked;

/// How many top entities get their own charts.
pub const CHARTED: usize = 5;
/// At most this many peers feed the envelope (picked evenly by id, deterministic).
const ENVELOPE_PEERS: usize = 20_000;

/// Daily activity of one entity: `(utc_day, events, distinct_accounts)`.
#[derive(Debug, Clone)]
pub struct EntitySeries {
    pub entity: Entity,
    pub days: Vec<(i64, u64, u64)>,
    /// Cumulative distinct accounts at the end of each day it was active: `(utc_day, total)`.
    pub cumulative: Vec<(i64, u64)>,
}

/// Percentiles of cumulative reach per day across entities of one kind.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub kind: EntityKind,
    pub members: usize,
    /// `(utc_day, p50, p90, max)`.
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

pub fn compute(events: &DataFrame, shown: &[&Ranked], time: &TimeParser) -> Result<ChartData> {
    let mut data = ChartData::default();
    let charted: Vec<&Entity> = shown.iter().take(CHARTED).map(|r| &r.entity).collect();
    // One pass over the event table keeps the charted entities' rows; every per-entity query
    // below then scans that small frame instead of the whole table.
    let mine = charted_rows(events, &charted)?;
    for e in &charted {
        data.series.push(entity_series(&mine, e)?);
    }
    if let Some(top) = shown.first() {
        data.envelope = envelope(events, top.entity.kind)?;
        data.heatmap = Some(heatmap(&mine, &top.entity, time)?);
    }
    Ok(data)
}

fn charted_rows(events: &DataFrame, charted: &[&Entity]) -> Result<DataFrame> {
    let mut keep = lit(false);
    for kind in [
        EntityKind::Credential,
        EntityKind::Principal,
        EntityKind::SourceIp,
        EntityKind::Network,
    ] {
        let ids: Vec<String> = charted
            .iter()
            .filter(|e| e.kind == kind)
            .map(|e| e.id.clone())
            .collect();
        if !ids.is_empty() {
            let ids = key_series("ids", ids)?;
            keep = keep.or(col(kind.column()).is_in(lit(ids).implode(false), false));
        }
    }
    events
        .clone()
        .lazy()
        .filter(keep)
        .collect()
        .stage("charted entities")
}

fn access(events: &DataFrame) -> LazyFrame {
    events.clone().lazy().filter(
        col(c::EVENT_TYPE)
            .eq(lit("access"))
            .and(col(c::TARGET).is_not_null()),
    )
}

fn entity_series(events: &DataFrame, e: &Entity) -> Result<EntitySeries> {
    let key = e.kind.column();
    let mine = events
        .clone()
        .lazy()
        .filter(col(key).eq(lit(e.id.as_str())));
    let daily = mine
        .clone()
        .group_by([day()])
        .agg([
            len().cast(DataType::UInt64).alias("n"),
            account()
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("a"),
        ])
        .sort([c::DAY], SortMultipleOptions::default())
        .collect()
        .stage("daily series")?;
    let days = i64s(&daily, c::DAY)?
        .into_iter()
        .zip(u64s(&daily, "n")?)
        .zip(u64s(&daily, "a")?)
        .map(|((d, n), a)| (d, n, a))
        .collect();
    let firsts = first_days(access(events).filter(col(key).eq(lit(e.id.as_str()))), key)?;
    let cumulative = firsts
        .into_values()
        .next()
        .map(cumulate)
        .unwrap_or_default();
    Ok(EntitySeries {
        entity: e.clone(),
        days,
        cumulative,
    })
}

/// New accounts per day per entity: `key → [(day, new accounts)]`.
fn first_days(rows: LazyFrame, key: &str) -> Result<BTreeMap<String, Vec<(i64, u64)>>> {
    let df = rows
        .filter(col(key).is_not_null())
        .group_by([pack(col(key).to_physical(), account()).alias("ka")])
        .agg([col(key).first(), day().min().alias("first")])
        .group_by([col(key), col("first")])
        .agg([len().cast(DataType::UInt64).alias("new")])
        .collect()
        .stage("first days")?;
    let mut out: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for ((k, d), n) in strs(&df, key)?
        .into_iter()
        .zip(i64s(&df, "first")?)
        .zip(u64s(&df, "new")?)
    {
        out.entry(k).or_default().push((d, n));
    }
    Ok(out)
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

fn envelope(events: &DataFrame, kind: EntityKind) -> Result<Option<Envelope>> {
    let all = first_days(access(events), kind.column())?;
    if all.len() < 3 {
        return Ok(None);
    }
    let step = all.len().div_ceil(ENVELOPE_PEERS);
    let picked: Vec<Vec<(i64, u64)>> = all.into_values().step_by(step).map(cumulate).collect();
    let lo = picked
        .iter()
        .filter_map(|s| s.first().map(|d| d.0))
        .min()
        .unwrap_or(0);
    let hi = picked
        .iter()
        .filter_map(|s| s.last().map(|d| d.0))
        .max()
        .unwrap_or(0);
    let width = (hi - lo + 1) as usize;
    // Cumulative reach of every picked entity on every day (carried forward between active days).
    let mut grid = vec![vec![0u64; picked.len()]; width];
    for (j, s) in picked.iter().enumerate() {
        let mut it = s.iter().peekable();
        let mut cur = 0;
        for (i, row) in grid.iter_mut().enumerate() {
            while let Some(&&(d, t)) = it.peek() {
                if d > lo + i as i64 {
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
        .enumerate()
        .map(|(i, mut v)| {
            v.sort_unstable();
            let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize] as f64;
            (lo + i as i64, q(0.5), q(0.9), q(1.0))
        })
        .collect();
    Ok(Some(Envelope {
        kind,
        members: picked.len(),
        days,
    }))
}

fn heatmap(events: &DataFrame, e: &Entity, time: &TimeParser) -> Result<Heatmap> {
    // Bucketing happens in Rust on the entity's timestamps only, so each event gets its own
    // local offset (DST included).
    let df = events
        .clone()
        .lazy()
        .filter(col(e.kind.column()).eq(lit(e.id.as_str())))
        .select([col(c::TS)])
        .collect()
        .stage("heat map")?;
    let mut counts: BTreeMap<(i64, i64), u64> = BTreeMap::new();
    for ts in i64s(&df, c::TS)? {
        let offset = time
            .tz
            .timestamp_millis_opt(ts)
            .single()
            .map_or(0, |dt| dt.offset().fix().local_minus_utc() as i64 * 1000);
        let local = ts + offset;
        *counts
            .entry((
                local.div_euclid(DAY_MS),
                local.rem_euclid(DAY_MS) / 3_600_000,
            ))
            .or_default() += 1;
    }
    let cells = counts.into_iter().map(|((d, h), n)| (d, h, n)).collect();
    Ok(Heatmap {
        entity: e.clone(),
        zone: time.tz.to_string(),
        cells,
    })
}
