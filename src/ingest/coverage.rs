//! What the data covers, per input file: its format, time range, how often each canonical field
//! is filled, and the days inside its range with no event at all (a gap in a log source is the
//! usual reason a detector cannot see something).

use std::collections::BTreeSet;

use polars::prelude::*;

use super::FileStats;
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
    ("event_type", c::EVENT_TYPE),
    ("records", c::RECORDS),
    ("bytes", c::BYTES),
];
/// The last two of [`FIELDS`] are counted by the reader, not kept in the frame.
const COUNTED_BY_READER: usize = 2;

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

/// What one file's events covered, accumulated chunk by chunk while the file is read, so the
/// coverage report costs no extra pass over the event table.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Non-null values of each of [`FIELDS`].
    pub filled: [u64; FIELDS.len()],
    pub days: BTreeSet<i64>,
}

impl Seen {
    /// Adds one chunk (null counts are array metadata; only `ts` is walked) and the reader's
    /// counts of the fields the frame does not keep.
    pub fn add(&mut self, chunk: &DataFrame, counted: [u64; COUNTED_BY_READER]) {
        let (in_frame, by_reader) = self.filled.split_at_mut(FIELDS.len() - COUNTED_BY_READER);
        for (slot, (_, column)) in in_frame.iter_mut().zip(FIELDS) {
            if let Ok(col) = chunk.column(column) {
                *slot += (col.len() - col.null_count()) as u64;
            }
        }
        for (slot, n) in by_reader.iter_mut().zip(counted) {
            *slot += n;
        }
        let mut last_day = None;
        if let Ok(ts) = chunk.column(c::TS).and_then(|c| c.i64().cloned()) {
            for t in ts.iter().flatten() {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                let day = t.div_euclid(DAY_MS);
                if last_day != Some(day) {
                    self.days.insert(day);
                    last_day = Some(day);
                }
            }
        }
    }
}

/// Coverage of every file read.
pub fn coverage(files: &[FileStats]) -> Vec<FileCoverage> {
    files
        .iter()
        .map(|st| {
            let seen = &st.seen;
            let parsed = st.parsed.max(1) as f64;
            let gap_days = match (seen.first, seen.last) {
                (Some(a), Some(b)) => (a.div_euclid(DAY_MS)..=b.div_euclid(DAY_MS))
                    .filter(|d| !seen.days.contains(d))
                    .collect(),
                _ => Vec::new(),
            };
            FileCoverage {
                stats: st.clone(),
                first: seen.first,
                last: seen.last,
                filled: seen.filled.iter().map(|n| *n as f64 / parsed).collect(),
                gap_days,
            }
        })
        .collect()
}
