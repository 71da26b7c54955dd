//! Shared aggregation: "what did this key / principal / address do" over a filtered event set.
//! Detectors filter lazily, then call [`summarize`] once, so the event table is scanned inside
//! polars and only one row per entity comes back to Rust.

use std::collections::BTreeMap;

use polars::prelude::*;
use serde::Serialize;

use super::{DetectInput, Entity, EntityKind, Finding, evidence, json_list};
use crate::error::{FrameContext, Result};
use crate::frame::{account, i64s, pack, strs, u32s, u64s};
use crate::normalize::schema::col as c;

/// Activity of one entity over the rows a detector selected.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Activity {
    pub events: u64,
    pub successes: u64,
    pub distinct_accounts: u64,
    pub distinct_sources: u64,
    pub distinct_principals: u64,
    pub first: i64,
    pub last: i64,
    /// Input file index and line of the earliest event (ties broken by file, then line).
    pub first_file: u32,
    pub first_line: u64,
    /// Most frequent source addresses, by count then address.
    pub top_sources: Vec<(String, u64)>,
    /// Most frequent principals (token subjects, users), by count then name.
    pub top_principals: Vec<(String, u64)>,
}

const TOP_N: usize = 5;

impl Activity {
    /// A finding about `entity` backed by this activity, with the evidence every activity-based
    /// reason carries (volume, sources, sample subjects, the first event's `file:line`) and the
    /// top sources as related entities. Detectors add their own techniques, marks and evidence.
    pub fn finding(
        &self,
        input: &DetectInput,
        detector: &'static str,
        entity: Entity,
        code: &'static str,
        reason: String,
        score: f64,
    ) -> Finding {
        let file = input
            .files
            .get(self.first_file as usize)
            .cloned()
            .unwrap_or_default();
        Finding {
            detector,
            entity,
            code,
            reason,
            score,
            first_seen: Some(self.first),
            last_seen: Some(self.last),
            events: self.events,
            distinct_accounts: self.distinct_accounts,
            counts: super::Counted::Accounts,
            marks: vec![],
            related: self
                .top_sources
                .iter()
                .map(|(ip, _)| Entity::new(EntityKind::SourceIp, ip.clone()))
                .collect(),
            techniques: vec![],
            evidence: evidence([
                ("events", self.events.into()),
                ("subjects", self.distinct_principals.into()),
                ("distinct_sources", self.distinct_sources.into()),
                ("top_sources", json_list(&self.top_sources)),
                ("sample_subjects", json_list(&self.top_principals)),
                ("first_event", format!("{file}:{}", self.first_line).into()),
                ("first_event_time", input.time.format(self.first).into()),
            ]),
        }
    }
}

/// The columns [`summarize`] reads, with `key`: what a detector selects before filtering rows
/// it gathers itself.
pub fn columns(key: &str) -> Vec<&str> {
    let mut wanted = vec![
        c::TS,
        c::SUCCESS,
        c::TARGET,
        c::SOURCE_IP,
        c::PRINCIPAL,
        c::FILE,
        c::LINE,
    ];
    if !wanted.contains(&key) {
        wanted.push(key);
    }
    wanted
}

/// Aggregates `rows` per value of `key` (rows with a null key are ignored).
///
/// The selected rows are materialised once here: three queries read them, and a lazy input that
/// ends in a join would otherwise be joined three times. Callers pass selections, never the whole
/// event table.
pub fn summarize(rows: LazyFrame, key: &str) -> Result<BTreeMap<String, Activity>> {
    let rows = rows
        .filter(col(key).is_not_null())
        .collect()
        .stage("selected activity")?
        .lazy();
    let order = [col(c::TS), col(c::FILE), col(c::LINE)];
    let main = rows
        .clone()
        .group_by([col(key)])
        .agg([
            len().cast(DataType::UInt64).alias("events"),
            col(c::SUCCESS)
                .cast(DataType::UInt64)
                .sum()
                .alias("successes"),
            account()
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("accounts"),
            col(c::SOURCE_IP)
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("sources"),
            col(c::PRINCIPAL)
                .drop_nulls()
                .n_unique()
                .cast(DataType::UInt64)
                .alias("principals"),
            col(c::TS).min().alias("first"),
            col(c::TS).max().alias("last"),
            col(c::FILE)
                .sort_by(order.clone(), SortMultipleOptions::default())
                .first()
                .alias("first_file"),
            col(c::LINE)
                .sort_by(order, SortMultipleOptions::default())
                .first()
                .alias("first_line"),
        ])
        .collect()
        .stage("summarizing activity")?;

    let mut out = BTreeMap::new();
    let keys = strs(&main, key)?;
    let u = |name: &str| u64s(&main, name);
    let (events, successes, accounts, sources, principals) = (
        u("events")?,
        u("successes")?,
        u("accounts")?,
        u("sources")?,
        u("principals")?,
    );
    let (first, last, lines) = (
        i64s(&main, "first")?,
        i64s(&main, "last")?,
        u("first_line")?,
    );
    let files = u32s(&main, "first_file")?;
    for (idx, k) in keys.into_iter().enumerate() {
        out.insert(
            k,
            Activity {
                events: events[idx],
                successes: successes[idx],
                distinct_accounts: accounts[idx],
                distinct_sources: sources[idx],
                distinct_principals: principals[idx],
                first: first[idx],
                last: last[idx],
                first_file: files[idx],
                first_line: lines[idx],
                ..Activity::default()
            },
        );
    }
    for (k, top) in top_values(rows.clone(), key, c::SOURCE_IP)? {
        if let Some(a) = out.get_mut(&k) {
            a.top_sources = top;
        }
    }
    for (k, top) in top_values(rows, key, c::PRINCIPAL)? {
        if let Some(a) = out.get_mut(&k) {
            a.top_principals = top;
        }
    }
    Ok(out)
}

/// The most frequent values of `value` per `key`, deterministic (count desc, then value asc).
pub fn top_values(
    rows: LazyFrame,
    key: &str,
    value: &str,
) -> Result<BTreeMap<String, Vec<(String, u64)>>> {
    top_values_with(rows, key, value, strs)
}

/// [`top_values`] of a column whose values `read` turns into text (token codes need their table).
pub fn top_values_with(
    rows: LazyFrame,
    key: &str,
    value: &str,
    read: impl Fn(&DataFrame, &str) -> Result<Vec<String>>,
) -> Result<BTreeMap<String, Vec<(String, u64)>>> {
    if key == value {
        return Ok(BTreeMap::new());
    }
    let df = rows
        .filter(col(key).is_not_null().and(col(value).is_not_null()))
        .group_by([pack(col(key).to_physical(), col(value).to_physical()).alias("kv")])
        .agg([
            col(key).first(),
            col(value).first(),
            len().cast(DataType::UInt64).alias("n"),
        ])
        .collect()
        .stage("top values")?;
    let mut all: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    for ((k, v), n) in strs(&df, key)?
        .into_iter()
        .zip(read(&df, value)?)
        .zip(u64s(&df, "n")?)
    {
        all.entry(k).or_default().push((v, n));
    }
    all.values_mut().for_each(keep_top);
    Ok(all)
}

/// The most frequent values of a list of (value, count), deterministic: count desc, then value.
pub fn keep_top(list: &mut Vec<(String, u64)>) {
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(TOP_N);
}
