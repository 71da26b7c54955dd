//! What the data covers, per input file: its format, time range, how often each canonical field
//! is filled, and the days inside its range with no event at all (a gap in a log source is the
//! usual reason a detector cannot see something).

use std::collections::BTreeSet;

use polars::prelude::*;

use super::FileStats;
use crate::normalize::schema::col as c;
use crate::normalize::{Days, TimeParser};

/// Canonical fields reported in the fill table, with where their count comes from.
pub const FIELDS: [(&str, Count); 10] = [
    ("principal", Count::Column(c::PRINCIPAL)),
    ("credential_id", Count::Column(c::CREDENTIAL)),
    ("token_id", Count::Column(c::TOKEN)),
    ("source_ip", Count::Column(c::SOURCE_IP)),
    ("user_agent", Count::Reader(0)),
    ("action", Count::Reader(1)),
    ("target_account", Count::Column(c::TARGET)),
    ("event_type", Count::Column(c::EVENT_TYPE)),
    ("records", Count::Reader(2)),
    ("bytes", Count::Reader(3)),
];
/// The fields counted by the reader because the frame does not keep them
/// (`normalize::EventColumns::filled`).
const COUNTED_BY_READER: usize = 4;

/// Where a field's fill count comes from.
#[derive(Debug, Clone, Copy)]
pub enum Count {
    /// The non-null values of this frame column.
    Column(&'static str),
    /// This slot of the reader's counts.
    Reader(usize),
}

#[derive(Debug, Clone)]
pub struct FileCoverage {
    pub stats: FileStats,
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Share of parsed events with each of [`FIELDS`] filled, in that order.
    pub filled: Vec<f64>,
    /// Local days between first and last with no event.
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
    pub fn add(&mut self, chunk: &DataFrame, counted: [u64; COUNTED_BY_READER], time: &TimeParser) {
        for (slot, (_, count)) in self.filled.iter_mut().zip(FIELDS) {
            *slot += match count {
                Count::Column(name) => chunk
                    .column(name)
                    .map_or(0, |col| (col.len() - col.null_count()) as u64),
                Count::Reader(i) => counted.get(i).copied().unwrap_or(0),
            };
        }
        let mut last_day = None;
        let mut local = Days::new(*time);
        if let Ok(ts) = chunk.column(c::TS).and_then(|c| c.i64().cloned()) {
            for t in ts.iter().flatten() {
                self.first = Some(self.first.map_or(t, |f| f.min(t)));
                self.last = Some(self.last.map_or(t, |l| l.max(t)));
                let day = local.of(t);
                if last_day != Some(day) {
                    self.days.insert(day);
                    last_day = Some(day);
                }
            }
        }
    }
}

impl Seen {
    /// Adds what another part of the same file covered.
    pub fn merge(&mut self, other: Seen) {
        self.first = self.first.into_iter().chain(other.first).min();
        self.last = self.last.into_iter().chain(other.last).max();
        for (slot, n) in self.filled.iter_mut().zip(other.filled) {
            *slot += n;
        }
        self.days.extend(other.days);
    }
}

/// Coverage of every file read.
pub fn coverage(files: &[FileStats]) -> Vec<FileCoverage> {
    files
        .iter()
        .map(|st| {
            let seen = &st.seen;
            let parsed = st.parsed.max(1) as f64;
            let gap_days = match (seen.days.first(), seen.days.last()) {
                (Some(&a), Some(&b)) => (a..=b).filter(|d| !seen.days.contains(d)).collect(),
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
