//! What the issuance log vouches for, and one pass that judges every token-bearing access
//! against it (for [`super::forged_tokens`]).
//!
//! The pass walks the event table's columns chunk by chunk, in parallel, and answers with the
//! event-table rows each question selects. The detector used to collect the token-bearing
//! accesses into a frame of their own first: nine columns for 5.8M rows at 10M events, 230 MB, the
//! largest transient of the three light detectors, which kept enumeration from running beside
//! them within the memory target.

use std::collections::BTreeSet;

use hashbrown::HashSet;
use polars::prelude::*;
use rayon::prelude::*;

use super::tally::Dense;
use crate::error::Result;
use crate::frame::{CodeArray, NULL, aligned, chunk_codes, code_arrays, dictionary, ts_arrays};
use crate::normalize::schema::col as c;
use crate::normalize::{Days, TimeParser};

/// What the issuance log says: which tokens it issued, when and under which key, which days it
/// covers, and which addresses received tokens. Read in one pass over the event table's chunks:
/// three polars queries filtering the whole table for `token_issued` took 0.11 s at 10M events.
pub(super) struct Issuance {
    /// The event table's [`Chunks::COLUMNS`], [`aligned`], for [`Issuance::judge`].
    frame: DataFrame,
    issued: Issued,
    pub cover: Coverage,
    /// Address codes tokens were issued to.
    issuing: HashSet<u32>,
}

/// Each issued token's first instant and signing key, looked up by the token's code.
/// A table rather than a polars join of millions of accesses to millions of issued tokens: on a
/// 10M-event export the join and its filter took 0.3 s, and the detector 0.88 s; 0.70 s with this.
struct Issued {
    /// Index into `at` and `kid` of each token code.
    tokens: Dense,
    at: Vec<i64>,
    /// Key code of the token's first issuance row ([`NULL`] when that row names none).
    kid: Vec<u32>,
}

/// The accesses that carry a token, judged: rows of the event table, in order. Rows, not masks:
/// each set is a few percent of the table at most, and gathering them beats filtering nine
/// columns of the whole table per question.
pub(super) struct Judged {
    /// Token never issued, past its lifetime, or presented under another key than issued with.
    pub suspect: Vec<IdxSize>,
    /// Per suspect row, in row order: when the token was first issued, and under which key code.
    pub issued_at: Vec<Option<i64>>,
    pub issued_kid: Vec<Option<u32>>,
    /// From an address no token was ever issued to (or from no address: a null matches nothing).
    pub unissuing: Vec<IdxSize>,
    /// The token is presented from more than `max_addresses` distinct addresses.
    pub shared: Vec<IdxSize>,
}

/// Token, instant and key code of one `token_issued` event.
type IssuanceRow = (u32, i64, u32);

/// The columns both passes read, chunk by chunk (the n-th array of each covers the same rows).
struct Chunks<'a> {
    kinds: Vec<&'a CodeArray>,
    tokens: Vec<&'a CodeArray>,
    keys: Vec<&'a CodeArray>,
    addresses: Vec<&'a CodeArray>,
    ts: Vec<&'a [i64]>,
    /// Event-table row of each chunk's first row.
    starts: Vec<IdxSize>,
}

impl<'a> Chunks<'a> {
    const COLUMNS: [&'static str; 5] =
        [c::EVENT_TYPE, c::TOKEN, c::TS, c::CREDENTIAL, c::SOURCE_IP];

    /// `frame`: the event table's [`Self::COLUMNS`], [`aligned`].
    fn of(frame: &'a DataFrame) -> Result<Self> {
        let ts = ts_arrays(frame)?;
        let mut starts = Vec::with_capacity(ts.len());
        let mut at: IdxSize = 0;
        for chunk in &ts {
            starts.push(at);
            // polars itself indexes rows with `IdxSize`, so a frame's length fits.
            at += chunk.len() as IdxSize;
        }
        Ok(Chunks {
            kinds: code_arrays(frame, c::EVENT_TYPE)?,
            tokens: code_arrays(frame, c::TOKEN)?,
            keys: code_arrays(frame, c::CREDENTIAL)?,
            addresses: code_arrays(frame, c::SOURCE_IP)?,
            ts,
            starts,
        })
    }
}

/// One chunk's share of [`Judged`], plus its distinct (token, address) pairs.
#[derive(Default)]
struct Part {
    suspect: Vec<IdxSize>,
    issued_at: Vec<Option<i64>>,
    issued_kid: Vec<Option<u32>>,
    unissuing: Vec<IdxSize>,
    pairs: Vec<u64>,
}

impl Issuance {
    /// `None` when no `token_issued` event carries a token. `token_codes`: how many token codes
    /// the run has.
    pub fn read(
        events: &DataFrame,
        token_codes: usize,
        max_age: i64,
        time: &TimeParser,
    ) -> Result<Option<Issuance>> {
        let Some(kind) = dictionary().get_cat("token_issued") else {
            return Ok(None);
        };
        let frame = aligned(events, &Chunks::COLUMNS)?;
        let Chunks {
            kinds,
            tokens,
            keys,
            addresses,
            ts,
            ..
        } = Chunks::of(&frame)?;
        // Per chunk: each issuance with a token, and the addresses tokens went to.
        let parts: Vec<(Vec<IssuanceRow>, Vec<u32>)> = (0..kinds.len())
            .into_par_iter()
            .map(|k| {
                let (mut rows, mut to) = (Vec::new(), Vec::new());
                let kind_codes = chunk_codes(kinds[k]);
                let issuances = || (0..kind_codes.len()).filter(|&i| kind_codes[i] == kind);
                if issuances().next().is_none() {
                    return (rows, to);
                }
                let (token, key, address) = (
                    chunk_codes(tokens[k]),
                    chunk_codes(keys[k]),
                    chunk_codes(addresses[k]),
                );
                for i in issuances() {
                    if token[i] != NULL {
                        rows.push((token[i], ts[k][i], key[i]));
                    }
                    if address[i] != NULL {
                        to.push(address[i]);
                    }
                }
                (rows, to)
            })
            .collect();
        let mut issued = Issued {
            tokens: Dense::below(token_codes),
            at: Vec::new(),
            kid: Vec::new(),
        };
        let mut issuing = HashSet::new();
        let mut days = BTreeSet::new();
        let mut local = Days::new(*time);
        let (mut start, mut end) = (i64::MAX, i64::MIN);
        for (rows, to) in parts {
            issuing.extend(to);
            for (token, ts, kid) in rows {
                (start, end) = (start.min(ts), end.max(ts));
                days.insert(local.of(ts));
                issued.add(token, ts, kid);
            }
        }
        if days.is_empty() {
            return Ok(None);
        }
        let (start_day, end_day) = (local.of(start), local.of(end));
        let gaps: Vec<i64> = (start_day..=end_day)
            .filter(|d| !days.contains(d))
            .collect();
        let cover = Coverage {
            start,
            end,
            blind: blind_spans(&gaps, max_age, time),
            gaps,
            max_age,
        };
        Ok(Some(Issuance {
            frame,
            issued,
            cover,
            issuing,
        }))
    }

    /// Judges each access of the event table that carries a token; `max_addresses`: how many
    /// addresses one token may be presented from.
    pub fn judge(&self, max_addresses: usize) -> Result<Judged> {
        let ch = Chunks::of(&self.frame)?;
        let access = dictionary().get_cat("access").unwrap_or(NULL);
        let mut parts: Vec<Part> = (0..ch.kinds.len())
            .into_par_iter()
            .map(|k| self.judge_chunk(&ch, k, access))
            .collect();
        // Distinct (token, address) pairs, sorted so each token's addresses are adjacent.
        let mut pairs: Vec<u64> = parts
            .iter_mut()
            .flat_map(|p| std::mem::take(&mut p.pairs))
            .collect();
        pairs.par_sort_unstable();
        pairs.dedup();
        let shared: HashSet<u32> = pairs
            .chunk_by(|x, y| x >> 32 == y >> 32)
            .filter(|run| run.len() > max_addresses)
            .map(|run| (run[0] >> 32) as u32)
            .collect();
        drop(pairs);
        // Usually no token is shared: then no second pass.
        let chunks = if shared.is_empty() { 0 } else { ch.kinds.len() };
        let shared: Vec<Vec<IdxSize>> = (0..chunks)
            .into_par_iter()
            .map(|k| {
                let (kind, token) = (chunk_codes(ch.kinds[k]), chunk_codes(ch.tokens[k]));
                (0..kind.len())
                    .filter(|&i| kind[i] == access && shared.contains(&token[i]))
                    .map(|i| ch.starts[k] + i as IdxSize)
                    .collect()
            })
            .collect();
        let rows = |of: fn(&Part) -> &[IdxSize]| parts.iter().flat_map(of).copied().collect();
        Ok(Judged {
            suspect: rows(|p| &p.suspect),
            issued_at: parts.iter().flat_map(|p| &p.issued_at).copied().collect(),
            issued_kid: parts.iter().flat_map(|p| &p.issued_kid).copied().collect(),
            unissuing: rows(|p| &p.unissuing),
            shared: shared.concat(),
        })
    }

    /// [`Self::judge`] for chunk `k`; `access`: the code of the `access` event type.
    fn judge_chunk(&self, ch: &Chunks, k: usize, access: u32) -> Part {
        let (issued, max_age) = (&self.issued, self.cover.max_age);
        let (kind, token) = (chunk_codes(ch.kinds[k]), chunk_codes(ch.tokens[k]));
        let (key, address) = (chunk_codes(ch.keys[k]), chunk_codes(ch.addresses[k]));
        let ts = ch.ts[k];
        let mut part = Part::default();
        for i in 0..kind.len() {
            if kind[i] != access || token[i] == NULL {
                continue;
            }
            let row = ch.starts[k] + i as IdxSize;
            let (t, a) = (token[i], address[i]);
            let (at, kid) = match issued.tokens.get(t) {
                Some(j) => (
                    Some(issued.at[j]),
                    Some(issued.kid[j]).filter(|&k| k != NULL),
                ),
                None => (None, None),
            };
            let suspect = match (at, kid) {
                (None, _) => true,
                (Some(at), kid) => {
                    ts[i] - at > max_age || kid.is_some_and(|kid| key[i] != NULL && key[i] != kid)
                }
            };
            if suspect {
                part.suspect.push(row);
                part.issued_at.push(at);
                part.issued_kid.push(kid);
            }
            if !self.issuing.contains(&a) {
                part.unissuing.push(row);
            }
            if a != NULL {
                part.pairs.push(u64::from(t) << 32 | u64::from(a));
            }
        }
        part.pairs.sort_unstable();
        part.pairs.dedup();
        part
    }
}

impl Issued {
    /// Records an issuance row; the first row of a token names its key, the earliest its instant.
    fn add(&mut self, token: u32, ts: i64, kid: u32) {
        let i = self.tokens.index(token) as usize;
        if i == self.at.len() {
            self.at.push(ts);
            self.kid.push(kid);
        } else {
            self.at[i] = self.at[i].min(ts);
        }
    }
}

/// Where the issuance log can vouch for a token: from its first event plus one token lifetime to
/// its last event, minus gap days (no issuance at all on a local day that has token-bearing
/// traffic) and the lifetime that follows each gap.
pub(super) struct Coverage {
    pub start: i64,
    pub end: i64,
    /// Local day numbers without issuance, between the first and last issuance.
    pub gaps: Vec<i64>,
    /// `[from, to)` instants a missing token cannot be judged in: each gap day and the token
    /// lifetime after it, merged.
    blind: Vec<(i64, i64)>,
    max_age: i64,
}

/// The instants each gap day blinds: from its local start to its local end plus a lifetime.
fn blind_spans(gaps: &[i64], max_age: i64, time: &TimeParser) -> Vec<(i64, i64)> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &day in gaps {
        let (from, to) = (time.day_start_ms(day), time.day_start_ms(day + 1) + max_age);
        match spans.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => spans.push((from, to)),
        }
    }
    spans
}

impl Coverage {
    /// True where a missing token is the issuer's fault, not the log's.
    pub fn covered_expr(&self) -> Expr {
        let mut covered = col(c::TS)
            .gt_eq(lit(self.start + self.max_age))
            .and(col(c::TS).lt_eq(lit(self.end)));
        for &(from, to) in &self.blind {
            covered = covered.and(col(c::TS).lt(lit(from)).or(col(c::TS).gt_eq(lit(to))));
        }
        covered
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::cat_dtype;

    const MAX_AGE: i64 = 1_000;

    /// (ts, event type, token code, key, address).
    type Row<'a> = (i64, &'a str, Option<u32>, Option<&'a str>, Option<&'a str>);

    fn frame(rows: &[Row]) -> DataFrame {
        let cat = |name: &str, values: Vec<Option<&str>>| {
            Column::new(name.into(), values)
                .cast(&cat_dtype())
                .expect("categorical")
        };
        DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            cat(c::EVENT_TYPE, rows.iter().map(|r| Some(r.1)).collect()),
            Column::new(
                c::TOKEN.into(),
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            cat(c::CREDENTIAL, rows.iter().map(|r| r.3).collect()),
            cat(c::SOURCE_IP, rows.iter().map(|r| r.4).collect()),
        ])
        .expect("frame")
    }

    /// Each question's rows, with the event frame in two chunks and the token column in one
    /// (the pass must realign them), and rows that are not token-bearing accesses left out.
    #[test]
    fn judges_each_token_bearing_access() {
        let (issuer, a, b, c_, d) = (
            Some("10.0.0.1"),
            Some("192.0.2.1"),
            Some("192.0.2.2"),
            Some("192.0.2.3"),
            Some("192.0.2.4"),
        );
        let head = frame(&[
            (0, "token_issued", Some(1), Some("k1"), issuer),
            (0, "token_issued", Some(2), Some("k1"), issuer),
            (10, "access", Some(1), Some("k1"), issuer), // 2: fine
            (MAX_AGE + 1, "access", Some(1), Some("k1"), a), // 3: past its lifetime
            (10, "access", Some(2), Some("k2"), issuer), // 4: under another key
        ]);
        let tail = frame(&[
            (10, "access", Some(2), None, issuer), // 5: no key named: fine
            (10, "access", Some(9), Some("k1"), None), // 6: never issued, no address
            (20, "access", Some(1), Some("k1"), b), // 7
            (30, "access", Some(1), Some("k1"), c_), // 8: token 1's fourth address
            (40, "login", Some(9), Some("k1"), d), // 9: not an access
            (50, "access", None, Some("k1"), d),   // 10: carries no token
            (60, "access", Some(1), Some("k1"), issuer), // 11
        ]);
        let mut events = head.vstack(&tail).expect("vstack");
        let token = events.column(c::TOKEN).expect("token").rechunk();
        events.with_column(token).expect("column");
        assert_ne!(
            events.column(c::TOKEN).expect("token").n_chunks(),
            events.column(c::TS).expect("ts").n_chunks()
        );
        let issuance = Issuance::read(&events, 10, MAX_AGE, &TimeParser::new(chrono_tz::UTC))
            .expect("read")
            .expect("issuance");
        let issuing: HashSet<u32> = dictionary().get_cat("10.0.0.1").into_iter().collect();
        assert_eq!(issuance.issuing, issuing);
        let cover = &issuance.cover;
        assert_eq!((cover.start, cover.end, cover.gaps.len()), (0, 0, 0));

        let judged = issuance.judge(3).expect("judged");
        assert_eq!(judged.suspect, [3, 4, 6]);
        let k1 = dictionary().get_cat("k1");
        assert_eq!(judged.issued_at, [Some(0), Some(0), None]);
        assert_eq!(judged.issued_kid, [k1, k1, None]);
        assert_eq!(judged.unissuing, [3, 6, 7, 8]);
        // Token 1 comes from four addresses (issuer, a, b, c): more than three.
        assert_eq!(judged.shared, [2, 3, 7, 8, 11]);

        let judged = issuance.judge(4).expect("judged");
        assert!(judged.shared.is_empty());
    }
}
