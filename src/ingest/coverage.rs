//! What the data covers, per input file: its format, time range, how often each canonical field
//! is filled, and the days inside its range with no event at all (a gap in a log source is the
//! usual reason a detector cannot see something). Also, per key, when a row first named it
//! with a token ([`Seen::first_token_uses`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polars::prelude::*;
use rayon::prelude::*;

use super::FileStats;
use crate::error::Result;
use crate::frame::{NULL, code_arrays, dictionary, ts_arrays};
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
#[derive(Debug, Clone)]
pub struct Seen {
    pub first: Option<i64>,
    pub last: Option<i64>,
    /// Non-null values of each of [`FIELDS`].
    pub filled: [u64; FIELDS.len()],
    pub days: BTreeSet<i64>,
    /// Per key named, the earliest instant a row names it together with a token (any event
    /// type): what key lifecycle and enumeration's signing keys read. Kept per file, it merges
    /// by minimum, so a state's run joins its files' instead of passing over every row of the
    /// window for them (0.68–1.13 s of a night added to the 85.9M-event state,
    /// `docs/performance.md`, forty-seventh session). `None`: not known (a file stored by a version that did not keep
    /// it), and the run passes over the rows as before.
    pub first_token_uses: Option<BTreeMap<String, i64>>,
}

impl Default for Seen {
    fn default() -> Self {
        Seen {
            first: None,
            last: None,
            filled: [0; FIELDS.len()],
            days: BTreeSet::new(),
            first_token_uses: Some(BTreeMap::new()),
        }
    }
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
        // Keys are few and named once a chunk. A chunk whose columns cannot be read as codes
        // leaves the file's first uses unknown, so that the run finds them from the rows.
        if let Some(firsts) = &mut self.first_token_uses {
            match first_token_uses(std::slice::from_ref(chunk)) {
                Ok(of_chunk) => {
                    let dict = dictionary();
                    for (key, at) in of_chunk {
                        if let Some(name) = dict.name(key) {
                            note_first(firsts, name, at);
                        }
                    }
                }
                Err(_) => self.first_token_uses = None,
            }
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
        self.first_token_uses = match (self.first_token_uses.take(), other.first_token_uses) {
            (Some(mut mine), Some(theirs)) => {
                for (key, at) in theirs {
                    note_first(&mut mine, &key, at);
                }
                Some(mine)
            }
            _ => None,
        };
    }
}

/// The first token uses of every file in `files`, as shared dictionary codes: `None` when any
/// file's are not known. A name the dictionary lacks is no row's key, and is left out.
pub fn first_token_uses_of(files: &[FileStats]) -> Option<HashMap<u32, i64>> {
    let dict = dictionary();
    let mut all = HashMap::new();
    for file in files {
        for (name, &at) in file.seen.first_token_uses.as_ref()? {
            if let Some(key) = dict.code(name) {
                note_code(&mut all, key, at);
            }
        }
    }
    Some(all)
}

fn note_first(firsts: &mut BTreeMap<String, i64>, key: &str, at: i64) {
    match firsts.get_mut(key) {
        Some(slot) => *slot = (*slot).min(at),
        None => {
            firsts.insert(key.to_string(), at);
        }
    }
}

/// Per key code (the shared dictionary's), the first instant a row of `frames` names it
/// together with a token (any event type).
pub fn first_token_uses(frames: &[DataFrame]) -> Result<HashMap<u32, i64>> {
    let mut chunks = Vec::new();
    for frame in frames {
        let (tokens, keys, ts) = (
            code_arrays(frame, c::TOKEN)?,
            code_arrays(frame, c::CREDENTIAL)?,
            ts_arrays(frame)?,
        );
        chunks.extend((0..ts.len()).map(|k| (tokens[k].clone(), keys[k].clone(), ts[k])));
    }
    let per_chunk = chunks.into_par_iter().map(|(tokens, keys, ts)| {
        let mut first = HashMap::new();
        // Runs of one key are common (a gateway's signing key): each is looked up once.
        let (mut run_key, mut run_first) = (NULL, i64::MAX);
        for (i, &at) in ts.iter().enumerate() {
            let key = keys.at(i);
            if key == NULL || tokens.at(i) == NULL {
                continue;
            }
            if key != run_key {
                note_code(&mut first, run_key, run_first);
                (run_key, run_first) = (key, at);
            }
            run_first = run_first.min(at);
        }
        note_code(&mut first, run_key, run_first);
        first
    });
    Ok(per_chunk.reduce(HashMap::new, |mut a, b| {
        note_codes(&mut a, b);
        a
    }))
}

/// Adds the first uses `b` found to `a`'s.
pub(crate) fn note_codes(a: &mut HashMap<u32, i64>, b: HashMap<u32, i64>) {
    for (key, at) in b {
        note_code(a, key, at);
    }
}

fn note_code(first: &mut HashMap<u32, i64>, key: u32, at: i64) {
    if key != NULL {
        let slot = first.entry(key).or_insert(at);
        *slot = (*slot).min(at);
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
