//! What the issuance log vouches for, and one pass that judges every token-bearing access
//! against it (for [`super::forged_tokens`]).
//!
//! The pass walks the event table's columns chunk by chunk, in parallel, and answers with masks
//! over the event table. It used to collect the token-bearing accesses into a frame of their own
//! first: nine columns for 5.8M rows at 10M events, 230 MB, the largest transient of the three
//! light detectors, which kept enumeration from running beside them within the memory target.

use std::collections::BTreeSet;

use hashbrown::HashSet;
use polars::prelude::*;
use rayon::prelude::*;

use super::tally::Dense;
use crate::error::{FrameContext, Result};
use crate::frame::{
    NULL, aligned, chunk_codes, code_arrays, codes, day, dictionary, i64s, ts_arrays,
};
use crate::normalize::schema::{DAY_MS, col as c};

/// Each issued token's first instant and signing key, looked up by the token's code.
/// A table rather than a polars join of millions of accesses to millions of issued tokens: on a
/// 10M-event export the join and its filter took 0.3 s, and the detector 0.88 s; 0.70 s with this.
pub(super) struct Issued {
    /// Index into `at` and `kid` of each token code.
    tokens: Dense,
    at: Vec<i64>,
    /// Key code of the token's first issuance row ([`NULL`] when that row names none).
    kid: Vec<u32>,
}

/// The accesses that carry a token, judged: masks over the event table.
pub(super) struct Judged {
    /// Token never issued, past its lifetime, or presented under another key than issued with.
    pub suspect: BooleanChunked,
    /// Per suspect row, in row order: when the token was first issued, and under which key code.
    pub issued_at: Vec<Option<i64>>,
    pub issued_kid: Vec<Option<u32>>,
    /// From an address no token was ever issued to (or from no address: a null matches nothing).
    pub unissuing: BooleanChunked,
    /// The token is presented from more than `max_addresses` distinct addresses.
    pub shared: BooleanChunked,
}

/// One chunk's share of [`Judged`], plus its distinct (token, address) pairs.
#[derive(Default)]
struct Part {
    suspect: Vec<bool>,
    issued_at: Vec<Option<i64>>,
    issued_kid: Vec<Option<u32>>,
    unissuing: Vec<bool>,
    pairs: Vec<u64>,
}

impl Issued {
    /// `rows`: the `token_issued` events with a token; `token_codes`: how many token codes the
    /// run has.
    pub fn of(rows: LazyFrame, token_codes: usize) -> Result<Issued> {
        let df = rows
            .select([col(c::TOKEN), col(c::TS), col(c::CREDENTIAL)])
            .collect()
            .stage("issued tokens")?;
        let (tokens, ts, kids) = (
            codes(&df, c::TOKEN)?,
            i64s(&df, c::TS)?,
            codes(&df, c::CREDENTIAL)?,
        );
        let mut issued = Issued {
            tokens: Dense::below(token_codes),
            at: Vec::new(),
            kid: Vec::new(),
        };
        for ((token, ts), kid) in tokens.into_iter().zip(ts).zip(kids) {
            let i = issued.tokens.index(token) as usize;
            if i == issued.at.len() {
                issued.at.push(ts);
                issued.kid.push(kid);
            } else {
                issued.at[i] = issued.at[i].min(ts);
            }
        }
        Ok(issued)
    }

    /// Judges each access of `events` that carries a token. `issuing` holds the address codes
    /// tokens were issued to.
    pub fn judge(
        &self,
        events: &DataFrame,
        max_age: i64,
        issuing: &HashSet<u32>,
        max_addresses: usize,
    ) -> Result<Judged> {
        let access = dictionary().get_cat("access").unwrap_or(NULL);
        let frame = aligned(
            events,
            &[c::EVENT_TYPE, c::TOKEN, c::TS, c::CREDENTIAL, c::SOURCE_IP],
        )?;
        let kinds = code_arrays(&frame, c::EVENT_TYPE)?;
        let tokens = code_arrays(&frame, c::TOKEN)?;
        let keys = code_arrays(&frame, c::CREDENTIAL)?;
        let addresses = code_arrays(&frame, c::SOURCE_IP)?;
        let ts = ts_arrays(&frame)?;
        let bearing = |kind: &[u32], token: &[u32], i: usize| kind[i] == access && token[i] != NULL;
        let mut parts: Vec<Part> = (0..kinds.len())
            .into_par_iter()
            .map(|k| {
                let (kind, token) = (chunk_codes(kinds[k]), chunk_codes(tokens[k]));
                let (key, address, ts) = (chunk_codes(keys[k]), chunk_codes(addresses[k]), ts[k]);
                let mut part = Part {
                    suspect: Vec::with_capacity(kind.len()),
                    unissuing: Vec::with_capacity(kind.len()),
                    ..Part::default()
                };
                for i in 0..kind.len() {
                    if !bearing(&kind, &token, i) {
                        part.suspect.push(false);
                        part.unissuing.push(false);
                        continue;
                    }
                    let (t, a) = (token[i], address[i]);
                    let (at, kid) = match self.tokens.get(t) {
                        Some(j) => (Some(self.at[j]), Some(self.kid[j]).filter(|&k| k != NULL)),
                        None => (None, None),
                    };
                    let suspect = match (at, kid) {
                        (None, _) => true,
                        (Some(at), kid) => {
                            ts[i] - at > max_age
                                || kid.is_some_and(|kid| key[i] != NULL && key[i] != kid)
                        }
                    };
                    part.suspect.push(suspect);
                    if suspect {
                        part.issued_at.push(at);
                        part.issued_kid.push(kid);
                    }
                    part.unissuing.push(!issuing.contains(&a));
                    if a != NULL {
                        part.pairs.push(u64::from(t) << 32 | u64::from(a));
                    }
                }
                part.pairs.sort_unstable();
                part.pairs.dedup();
                part
            })
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
        let shared: BooleanChunked = if shared.is_empty() {
            BooleanChunked::full("shared".into(), false, events.height())
        } else {
            let parts: Vec<Vec<bool>> = (0..kinds.len())
                .into_par_iter()
                .map(|k| {
                    let (kind, token) = (chunk_codes(kinds[k]), chunk_codes(tokens[k]));
                    (0..kind.len())
                        .map(|i| bearing(&kind, &token, i) && shared.contains(&token[i]))
                        .collect()
                })
                .collect();
            parts.into_iter().flatten().collect()
        };
        let suspect = parts
            .iter()
            .flat_map(|p| p.suspect.iter().copied())
            .collect();
        let unissuing = parts
            .iter()
            .flat_map(|p| p.unissuing.iter().copied())
            .collect();
        Ok(Judged {
            suspect,
            issued_at: parts
                .iter_mut()
                .flat_map(|p| std::mem::take(&mut p.issued_at))
                .collect(),
            issued_kid: parts
                .iter_mut()
                .flat_map(|p| std::mem::take(&mut p.issued_kid))
                .collect(),
            unissuing,
            shared,
        })
    }
}

/// Where the issuance log can vouch for a token: from its first event plus one token lifetime to
/// its last event, minus gap days (no issuance at all on a day that has token-bearing traffic) and
/// the lifetime that follows each gap.
pub(super) struct Coverage {
    pub start: i64,
    pub end: i64,
    pub gaps: Vec<i64>,
    max_age: i64,
}

impl Coverage {
    pub fn of(issued: LazyFrame, max_age: i64) -> Result<Option<Coverage>> {
        let days = issued
            .group_by([day()])
            .agg([col(c::TS).min().alias("lo"), col(c::TS).max().alias("hi")])
            .collect()
            .stage("issuance coverage")?;
        let seen: BTreeSet<i64> = i64s(&days, c::DAY)?.into_iter().collect();
        let (Some(start), Some(end)) = (
            i64s(&days, "lo")?.into_iter().min(),
            i64s(&days, "hi")?.into_iter().max(),
        ) else {
            return Ok(None);
        };
        let (start_day, end_day) = (start.div_euclid(DAY_MS), end.div_euclid(DAY_MS));
        let gaps = (start_day..=end_day)
            .filter(|d| !seen.contains(d))
            .collect();
        Ok(Some(Coverage {
            start,
            end,
            gaps,
            max_age,
        }))
    }

    /// True where a missing token is the issuer's fault, not the log's.
    pub fn covered_expr(&self) -> Expr {
        let mut covered = col(c::TS)
            .gt_eq(lit(self.start + self.max_age))
            .and(col(c::TS).lt_eq(lit(self.end)));
        let lifetime_days = self.max_age.div_euclid(DAY_MS) + 1;
        let blind: BTreeSet<i64> = self
            .gaps
            .iter()
            .flat_map(|g| *g..=g + lifetime_days)
            .collect();
        if !blind.is_empty() {
            let blind: Vec<i64> = blind.into_iter().collect();
            let series = Series::new("blind".into(), blind);
            covered = covered.and(day().is_in(lit(series).implode(false), false).not());
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

    fn trues(mask: &BooleanChunked) -> Vec<usize> {
        mask.iter()
            .enumerate()
            .filter_map(|(i, m)| (m == Some(true)).then_some(i))
            .collect()
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
        let issued_rows = events
            .clone()
            .lazy()
            .filter(col(c::EVENT_TYPE).eq(lit("token_issued")));
        let issued = Issued::of(issued_rows, 10).expect("issued");
        let issuing: HashSet<u32> = dictionary().get_cat("10.0.0.1").into_iter().collect();

        let judged = issued.judge(&events, MAX_AGE, &issuing, 3).expect("judged");
        assert_eq!(trues(&judged.suspect), [3, 4, 6]);
        let k1 = dictionary().get_cat("k1");
        assert_eq!(judged.issued_at, [Some(0), Some(0), None]);
        assert_eq!(judged.issued_kid, [k1, k1, None]);
        assert_eq!(trues(&judged.unissuing), [3, 6, 7, 8]);
        // Token 1 comes from four addresses (issuer, a, b, c): more than three.
        assert_eq!(trues(&judged.shared), [2, 3, 7, 8, 11]);

        let judged = issued.judge(&events, MAX_AGE, &issuing, 4).expect("judged");
        assert!(trues(&judged.shared).is_empty());
    }
}
