//! What the data covers, per input file: its format, time range, how often each canonical field
//! is filled, and the days inside its range with no event at all (a gap in a log source is the
//! usual reason a detector cannot see something).

use std::collections::BTreeSet;

use polars::prelude::*;

use super::FileStats;
use crate::error::{FrameContext, Result};
use crate::frame::{i64s, u32s, u64s};
use crate::normalize::schema::{DAY_MS, col as c};

/// Canonical fields reported in the fill table, with their frame column.
pub const FIELDS: [(&str, &str); 10] = [
    ("principal", c::PRINCIPAL),
    ("credential_id", c::CREDENTIAL),
    ("token_id", c::TOKEN),
    ("source_ip", c::SOURCE_IP),
    ("user_agent", c::USER_AGENT),
    ("action", c::ACTION),
    ("target_account", c::TARGET),
    ("records", c::RECORDS),
    ("bytes", c::BYTES),
    ("event_type", c::EVENT_TYPE),
];

#[derive(Debug, Clone)]
pub struct FileCoverage {
    pub stats: FileStats,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Share of parsed events with each of [`FIELDS`] filled, in that order.
    pub filled: Vec<f64>,
    /// UTC days between first and last with no event.
    pub gap_days: Vec<i64>,
}

/// Coverage of every file in `files` (same order as the frame's `src_file` index).
pub fn coverage(events: &DataFrame, files: &[FileStats]) -> Result<Vec<FileCoverage>> {
    let mut aggs = vec![
        col(c::TS).min().alias("first"),
        col(c::TS).max().alias("last"),
        len().cast(DataType::UInt64).alias("n"),
    ];
    for (name, column) in FIELDS {
        aggs.push(
            col(column)
                .is_not_null()
                .cast(DataType::UInt64)
                .sum()
                .alias(name),
        );
    }
    let per_file = events
        .clone()
        .lazy()
        .group_by([col(c::FILE)])
        .agg(aggs)
        .collect()
        .stage("coverage")?;
    let days = events
        .clone()
        .lazy()
        .select([col(c::FILE), col(c::DAY)])
        .unique(None, UniqueKeepStrategy::Any)
        .collect()
        .stage("coverage days")?;
    let (day_files, day_values) = (u32s(&days, c::FILE)?, i64s(&days, c::DAY)?);
    let idx = u32s(&per_file, c::FILE)?;
    let (first, last, n) = (
        i64s(&per_file, "first")?,
        i64s(&per_file, "last")?,
        u64s(&per_file, "n")?,
    );
    let mut filled_cols = Vec::new();
    for (name, _) in FIELDS {
        filled_cols.push(u64s(&per_file, name)?);
    }
    let mut out: Vec<FileCoverage> = files
        .iter()
        .map(|s| FileCoverage {
            stats: s.clone(),
            first: None,
            last: None,
            filled: vec![0.0; FIELDS.len()],
            gap_days: vec![],
        })
        .collect();
    for (row, file) in idx.iter().enumerate() {
        let Some(cov) = out.iter_mut().find(|c| c.stats.index == *file) else {
            continue;
        };
        cov.first = Some(first[row]);
        cov.last = Some(last[row]);
        cov.filled = filled_cols
            .iter()
            .map(|v| v[row] as f64 / n[row].max(1) as f64)
            .collect();
        let seen: BTreeSet<i64> = day_files
            .iter()
            .zip(&day_values)
            .filter(|(f, _)| **f == *file)
            .map(|(_, d)| *d)
            .collect();
        let (lo, hi) = (first[row].div_euclid(DAY_MS), last[row].div_euclid(DAY_MS));
        cov.gap_days = (lo..=hi).filter(|d| !seen.contains(d)).collect();
    }
    Ok(out)
}
