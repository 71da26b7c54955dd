//! What the issuance log vouches for, and one pass that judges every token-bearing access
//! against it (for [`super::forged_tokens`]).
//!
//! The log is first reduced to [`TokenFacts`] (per token, and of the log) from the chunks that
//! hold issuances alone; the judging pass then walks the chunks that hold accesses in parallel,
//! answers with the event-table rows each question selects, and gathers each token's addresses
//! as it goes, so a token's codes are read once (the rows of tokens presented from too many
//! addresses, known only at the end, take one more pass when there are any). The detector used
//! to collect the token-bearing accesses into a frame of their own first: nine columns for 5.8M
//! rows at 10M events, 230 MB, the largest transient of the three light detectors, which kept
//! enumeration from running beside them within the memory target.

use std::collections::HashSet;

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::Result;
use crate::frame::NULL;
use crate::frame::event_type::TypesByChunk;
use crate::normalize::ColdColumns;
use crate::normalize::cold::RUN_ROWS;
use crate::normalize::schema::col as c;
use crate::normalize::{Days, TimeParser};
use crate::reduce::tokens::{self, Chunk, NOT_ISSUED, TokenFacts};

/// What the issuance log says, as facts per token, with the days it covers.
pub(super) struct Issuance {
    facts: TokenFacts,
    pub cover: Coverage,
}

/// The accesses that carry a token, judged: rows of the event table, in order. Rows, not masks:
/// each set is a few percent of the table at most, and gathering them beats filtering nine
/// columns of the whole table per question.
#[derive(Default)]
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

/// One chunk's share of [`Judged`] but the shared tokens' rows.
#[derive(Default)]
struct Part {
    suspect: Vec<IdxSize>,
    issued_at: Vec<Option<i64>>,
    issued_kid: Vec<Option<u32>>,
    unissuing: Vec<IdxSize>,
}

/// Token codes whose facts are made and judged at once (16 bytes each: 96 MiB). A run with
/// more tokens judges them in even ranges of codes ([`code_ranges`]), each range one more pass
/// over the issuances to make its facts and one over the accesses to judge them; a row is
/// judged in the range of its token alone. At 100.09M events (17.7M tokens) the facts of one range were most
/// of forged tokens' 0.43 GB over what the run stood on, and its 3.33 GB set the run's peak; in
/// three ranges of 5.9M codes it peaked at 3.18 GB, for 3.7 s more (6.1 → 9.8 s,
/// `analyze --timings-per-detector`, one run each, reports byte-identical). Ranges of 24Mi codes
/// (two at 257.5M events, where 45.6M tokens held 0.73 GB of facts at once) had brought that
/// run's detector from 8.47 to 8.24 GB (`docs/performance.md`, thirty-ninth session).
/// Over a bigger frame a range may hold more ([`facts_at_once`]).
pub(super) const FACTS_AT_ONCE: usize = 6 << 20;

/// Past [`FACTS_AT_ONCE`] codes, a range's facts may take this share of the event frame's
/// columns: the run's peak is the frame plus each stage's working set, so facts sized to the
/// frame stay as far under the other stages' peaks at any size. At 257.5M events (45.6M tokens,
/// a 5.46 GB frame) ranges of 6Mi codes made eight, and the detectors took 76.7 s instead of
/// 52.2 (one run each); sized to the frame they are three.
const FRAME_SHARE: usize = 16;

/// The share of the frame's bytes held back from the headroom under the run's peak
/// ([`crate::memory::headroom`]) before facts may use the rest: judging's own working set beside
/// its facts, 0.15 GB over a night's 1.5 GB frame at the 85.9M-event state and about 0.17 GB
/// over the 1.74 GB one at 100.09M events (`analyze --timings-per-detector`, three ranges). That
/// night starts forged tokens 0.43 GB under the peak ingest set: its 15.2M tokens' facts (0.24
/// GB) in one range instead of three took the detectors 20.6 → 15.2 s and the night 38.3 → 33.1
/// s, the run's peak unchanged at 2.71 GB (one run each, reports byte-identical;
/// `docs/performance.md`, forty-fourth session). The 100.09M run starts it about 0.23 GB under
/// its peak, which leaves nothing past the reserve: its three ranges stay.
const RESERVE_SHARE: usize = 10;

/// Token codes judged at once over a frame of `frame_bytes` bytes of columns: a sixteenth of it
/// in facts, or what `headroom` leaves past a tenth of the frame ([`RESERVE_SHARE`]) where that
/// holds more, and never fewer than [`FACTS_AT_ONCE`] codes. At 85.9M and 100.09M events without
/// headroom the same three ranges as [`FACTS_AT_ONCE`] alone.
pub(super) fn facts_at_once(frame_bytes: usize, headroom: Option<usize>) -> usize {
    let fact = std::mem::size_of::<tokens::TokenFact>();
    let spare = headroom
        .unwrap_or(0)
        .saturating_sub(frame_bytes / RESERVE_SHARE)
        / fact;
    (frame_bytes / FRAME_SHARE / fact)
        .max(spare)
        .max(FACTS_AT_ONCE)
}

/// Every token-bearing access judged ([`Issuance::judge`]), the facts made `at_once` token
/// codes at a time, with what the log covers; `None` when no `token_issued` event carries a
/// token. `token_codes`: how many token codes the run has; `types`: the event types of the
/// frame's chunks, so each pass reads the chunks that hold its rows alone.
pub(super) fn judged_in_ranges(
    (events, cold, types): (&DataFrame, &ColdColumns, &TypesByChunk),
    (token_codes, at_once): (usize, usize),
    max_age: i64,
    max_addresses: usize,
    time: &TimeParser,
) -> Result<Option<(Judged, Coverage)>> {
    let (issues, accesses) = (
        types.ranges_of(&["token_issued"]),
        types.ranges_of(&["access"]),
    );
    let ranges = code_ranges(token_codes, at_once);
    let mut judged = Vec::with_capacity(ranges.len());
    let (mut cover, mut shared) = (None, HashSet::new());
    for codes in ranges {
        let facts = TokenFacts::issued(
            events,
            cold,
            (token_codes, codes),
            time,
            Some(&issues),
            RUN_ROWS,
        )?;
        // The log's facts are whole in every range: no issuance in one is none in all.
        let Some(mut issuance) = Issuance::of(facts, max_age, time) else {
            return Ok(None);
        };
        judged.push(issuance.judge(events, cold, &accesses, token_codes)?);
        shared.extend(issuance.shared(max_addresses));
        cover = Some(issuance.into_cover());
    }
    let Some(cover) = cover else {
        return Ok(None);
    };
    let mut judged = Judged::merged(judged);
    if !shared.is_empty() {
        judged.shared = rows_of_tokens(events, cold, &accesses, &shared)?;
    }
    Ok(Some((judged, cover)))
}

/// The accesses (within `accesses`, sorted frame rows) that present one of `wanted`, in order.
fn rows_of_tokens(
    events: &DataFrame,
    cold: &ColdColumns,
    accesses: &[std::ops::Range<usize>],
    wanted: &HashSet<u32>,
) -> Result<Vec<IdxSize>> {
    let access = crate::frame::event_type::code("access");
    let mut rows = Vec::new();
    cold.runs_within(events, &tokens::COLUMNS, RUN_ROWS, Some(accesses), |run| {
        let (chunks, starts) = tokens::run_chunks(&run)?;
        let found: Vec<Vec<IdxSize>> = (chunks.par_iter().zip(&starts))
            .map(|(ch, &start)| {
                let kind = crate::frame::event_type::codes(&ch.kinds);
                (0..kind.len())
                    .filter(|&i| {
                        let t = ch.tokens.at(i);
                        Some(kind[i]) == access && t != NULL && wanted.contains(&t)
                    })
                    .map(|i| start + i as IdxSize)
                    .collect()
            })
            .collect();
        rows.extend(found.into_iter().flatten());
        Ok(())
    })?;
    Ok(rows)
}

/// The ranges of `token_codes` codes judged one after another: one of every code when they fit
/// `at_once` (an empty one when the run has no token); else as few as fit, of even size, so that
/// none holds more facts than it must.
fn code_ranges(token_codes: usize, at_once: usize) -> Vec<std::ops::Range<u32>> {
    let all = u32::try_from(token_codes).unwrap_or(u32::MAX);
    let most = u32::try_from(at_once.max(1)).unwrap_or(u32::MAX);
    let n = all.div_ceil(most).max(1);
    let step = all.div_ceil(n).max(1);
    (0..n)
        .map(|k| k.saturating_mul(step)..(k + 1).saturating_mul(step).min(all))
        .collect()
}

impl Judged {
    /// The judgements of ranges of token codes as one, in row order: each row is in one range
    /// only, its token's.
    fn merged(mut ranges: Vec<Judged>) -> Judged {
        if ranges.len() == 1 {
            return ranges.pop().unwrap_or_default();
        }
        let mut suspect: Vec<(IdxSize, Option<i64>, Option<u32>)> = Vec::new();
        let mut unissuing = Vec::new();
        for j in ranges {
            let with = j.issued_at.into_iter().zip(j.issued_kid);
            suspect.extend(
                j.suspect
                    .into_iter()
                    .zip(with)
                    .map(|(r, (at, kid))| (r, at, kid)),
            );
            unissuing.extend(j.unissuing);
        }
        suspect.par_sort_unstable_by_key(|s| s.0);
        unissuing.par_sort_unstable();
        Judged {
            issued_at: suspect.iter().map(|s| s.1).collect(),
            issued_kid: suspect.iter().map(|s| s.2).collect(),
            suspect: suspect.into_iter().map(|s| s.0).collect(),
            unissuing,
            shared: Vec::new(),
        }
    }
}

impl Issuance {
    /// The facts' coverage; `None` when no `token_issued` event carries a token.
    fn of(facts: TokenFacts, max_age: i64, time: &TimeParser) -> Option<Issuance> {
        let (start, end) = facts.issue_span?;
        let mut local = Days::new(*time);
        let (start_day, end_day) = (local.of(start), local.of(end));
        let gaps: Vec<i64> = (start_day..=end_day)
            .filter(|d| !facts.issue_days.contains(d))
            .collect();
        let cover = Coverage {
            start,
            end,
            blind: blind_spans(&gaps, max_age, time),
            gaps,
            max_age,
        };
        Some(Issuance { facts, cover })
    }

    /// What the log covers, the facts dropped.
    pub fn into_cover(self) -> Coverage {
        self.cover
    }

    /// The tokens of these facts' codes presented from more than `max_addresses` addresses,
    /// once [`Self::judge`] has gathered them.
    fn shared(&self, max_addresses: usize) -> Vec<u32> {
        let facts = &self.facts;
        debug_assert!(
            max_addresses < tokens::ADDRESSES_KEPT,
            "facts keep fewer addresses"
        );
        match max_addresses {
            0 => (facts.tokens.iter().zip(facts.base..))
                .filter(|(f, _)| f.address != NULL)
                .map(|(_, t)| t)
                .collect(),
            _ => (facts.more_addresses.keys())
                .copied()
                .filter(|&t| facts.addresses(t) > max_addresses)
                .collect(),
        }
    }

    /// Judges each access of the event table `events` (its cold columns `cold`) that carries a
    /// token of these facts' codes, a run of the chunks that hold a row of `accesses` (sorted
    /// frame rows) at a time, and gathers the addresses each token is presented from into the
    /// facts ([`Self::shared`]); `token_codes`: the run's table's size, above every code.
    fn judge(
        &mut self,
        events: &DataFrame,
        cold: &ColdColumns,
        accesses: &[std::ops::Range<usize>],
        token_codes: usize,
    ) -> Result<Judged> {
        let access = crate::frame::event_type::code("access");
        let mut parts: Vec<Part> = Vec::new();
        let mut more = tokens::MoreAddresses::default();
        cold.runs_within(events, &tokens::COLUMNS, RUN_ROWS, Some(accesses), |run| {
            let (chunks, starts) = tokens::run_chunks(&run)?;
            tokens::check_codes(&chunks, token_codes)?;
            let me = &*self;
            parts.par_extend(
                (chunks.par_iter().zip(&starts))
                    .map(|(ch, start)| me.judge_chunk(ch, *start, access)),
            );
            more = self.facts.add_addresses(&chunks, std::mem::take(&mut more));
            Ok(())
        })?;
        self.facts.close_addresses(more);
        let rows = |of: fn(&Part) -> &[IdxSize]| parts.iter().flat_map(of).copied().collect();
        Ok(Judged {
            suspect: rows(|p| &p.suspect),
            issued_at: parts.iter().flat_map(|p| &p.issued_at).copied().collect(),
            issued_kid: parts.iter().flat_map(|p| &p.issued_kid).copied().collect(),
            unissuing: rows(|p| &p.unissuing),
            shared: Vec::new(),
        })
    }

    /// [`Self::judge`] for one chunk, whose first row is event-table row `start`; `access`: the
    /// code of the `access` event type, if any row has it.
    fn judge_chunk(&self, ch: &Chunk, start: IdxSize, access: Option<u16>) -> Part {
        let (facts, max_age) = (&self.facts, self.cover.max_age);
        let kind = crate::frame::event_type::codes(&ch.kinds);
        let token = ch.tokens.values();
        let (key, address) = (ch.keys.values(), ch.addresses.values());
        let ts = ch.ts;
        let mut part = Part::default();
        for i in 0..kind.len() {
            let t = token[i];
            if Some(kind[i]) != access || t == NULL {
                continue;
            }
            // Facts of a range of codes leave the other rows to their own range's judging
            // (`judged_in_ranges`); facts of every code cover all the rows hold.
            let Some(f) = facts.fact(t) else {
                continue;
            };
            let row = start + i as IdxSize;
            let kid = Some(f.issued_kid).filter(|&k| k != NULL);
            let suspect = f.issued_at == NOT_ISSUED
                || ts[i] - f.issued_at > max_age
                || kid.is_some_and(|kid| key[i] != NULL && key[i] != kid);
            if suspect {
                let at = Some(f.issued_at).filter(|&at| at != NOT_ISSUED);
                part.suspect.push(row);
                part.issued_at.push(at);
                part.issued_kid.push(at.and(kid));
            }
            if !facts.issuing.contains(address[i]) {
                part.unissuing.push(row);
            }
        }
        part
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
    use crate::frame::dictionary;
    use crate::normalize::cold::IN_FRAME;
    use crate::reduce::tokens::TokenFacts;

    const MAX_AGE: i64 = 1_000;

    /// Small frames judge at least [`FACTS_AT_ONCE`] codes at once; a big one a sixteenth of its
    /// bytes in facts: the 100.09M-event frame (2,121 MiB) three ranges of its 17.7M tokens, the
    /// 257.5M-event one (5,459 MiB) three of 45.6M, not eight; with headroom under the run's
    /// peak, what it leaves past a tenth of the frame.
    #[test]
    fn facts_at_once_follow_the_frame() {
        assert_eq!(facts_at_once(0, None), FACTS_AT_ONCE);
        assert_eq!(facts_at_once(1 << 30, None), FACTS_AT_ONCE);
        assert_eq!(
            code_ranges(17_700_518, facts_at_once(2121 << 20, None)).len(),
            3
        );
        assert_eq!(
            code_ranges(45_600_000, facts_at_once(5459 << 20, None)).len(),
            3
        );
        assert!(facts_at_once(16 << 30, None) > facts_at_once(8 << 30, None));
        // Headroom: the 85.9M night's 0.43 GB judges its 15.2M tokens in one range; the 100.09M
        // run's 0.23 GB keeps three; none, or a little, changes nothing.
        let night = facts_at_once(1495 << 20, Some(426_396 << 10));
        assert_eq!(code_ranges(15_214_329, night).len(), 1);
        let run = facts_at_once(1740 << 20, Some(235 << 20));
        assert_eq!(code_ranges(17_700_518, run).len(), 3);
        assert_eq!(facts_at_once(0, Some(1 << 20)), FACTS_AT_ONCE);
    }

    /// Every code in exactly one range, in order; as few ranges as hold `at_once` each, of
    /// sizes at most one apart but for the last (17.7M codes at 6Mi: three of 5.9M, not two of
    /// 6Mi and one of 5.1M).
    #[test]
    fn token_codes_are_judged_in_even_ranges() {
        assert_eq!(code_ranges(0, FACTS_AT_ONCE), vec![0..0]);
        assert_eq!(code_ranges(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(code_ranges(17_700_518, 6 << 20).len(), 3);
        for at_once in 1..9 {
            for codes in 1..60usize {
                let ranges = code_ranges(codes, at_once);
                assert_eq!(
                    ranges.len(),
                    codes.div_ceil(at_once),
                    "{codes} at {at_once}"
                );
                assert_eq!(ranges.first().map(|r| r.start), Some(0));
                assert_eq!(ranges.last().map(|r| r.end as usize), Some(codes));
                let big = ranges[0].len();
                assert!(big <= at_once, "{codes} at {at_once}: {ranges:?}");
                for pair in ranges.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start, "{codes} at {at_once}");
                    assert_eq!(pair[0].len(), big, "{codes} at {at_once}: {ranges:?}");
                }
                // One fewer in each range would need another range.
                assert!(big == 1 || (big - 1) * ranges.len() < codes, "{ranges:?}");
            }
        }
    }

    /// (ts, event type, token code, key, address).
    type Row<'a> = (i64, &'a str, Option<u32>, Option<&'a str>, Option<&'a str>);

    fn frame(rows: &[Row]) -> DataFrame {
        let cat = |name: &str, values: Vec<Option<&str>>| {
            crate::frame::key_column(name, values).expect("categorical")
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

    /// Without an issuance row that names a token there is nothing to judge against, in every
    /// range of codes alike, and with no token at all.
    #[test]
    fn no_issuance_is_none_in_every_range() {
        let events = frame(&[
            (0, "token_issued", None, Some("k1"), Some("10.0.0.1")),
            (10, "access", Some(1), Some("k1"), Some("192.0.2.1")),
            (20, "access", Some(4), Some("k1"), Some("192.0.2.1")),
        ]);
        let time = TimeParser::new(chrono_tz::UTC);
        let types = TypesByChunk::of(&events).expect("types");
        for (codes, at_once) in [(5, 1), (5, 2), (5, 5), (0, 1), (0, FACTS_AT_ONCE)] {
            let frame = (&events, &IN_FRAME, &types);
            let judged = judged_in_ranges(frame, (codes.max(5), at_once), MAX_AGE, 3, &time)
                .expect("ranges");
            assert!(judged.is_none(), "{codes} codes, {at_once} at once");
        }
        let empty = frame(&[(0, "login", None, None, None)]);
        let types = TypesByChunk::of(&empty).expect("types");
        let judged = judged_in_ranges((&empty, &IN_FRAME, &types), (0, 1), MAX_AGE, 3, &time)
            .expect("ranges");
        assert!(judged.is_none());
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
        let time = TimeParser::new(chrono_tz::UTC);
        let facts = TokenFacts::issued(&events, &IN_FRAME, (10, 0..10), &time, None, RUN_ROWS)
            .expect("facts");
        let issuing: roaring::RoaringBitmap =
            dictionary().get_cat("10.0.0.1").into_iter().collect();
        assert_eq!(facts.issuing, issuing);
        let types = TypesByChunk::of(&events).expect("types");
        let judge = |max: usize, at_once: usize| {
            let frame = (&events, &IN_FRAME, &types);
            judged_in_ranges(frame, (10, at_once), MAX_AGE, max, &time)
                .expect("ranges")
                .expect("issuance")
        };
        let (judged, cover) = judge(3, FACTS_AT_ONCE);
        assert_eq!((cover.start, cover.end, cover.gaps.len()), (0, 0, 0));
        assert_eq!(judged.suspect, [3, 4, 6]);
        let k1 = dictionary().get_cat("k1");
        assert_eq!(judged.issued_at, [Some(0), Some(0), None]);
        assert_eq!(judged.issued_kid, [k1, k1, None]);
        assert_eq!(judged.unissuing, [3, 6, 7, 8]);
        // Token 1 comes from four addresses (issuer, a, b, c): more than three.
        assert_eq!(judged.shared, [2, 3, 7, 8, 11]);

        // Judged a range of token codes at a time, the same rows in the same order, whatever
        // the ranges (codes 0–9: token 9 alone in the last range of 3).
        for at_once in [1, 2, 3, 4, 9, 10, 64] {
            let (ranged, cover) = judge(3, at_once);
            assert_eq!(ranged.suspect, judged.suspect, "{at_once} at once");
            assert_eq!(ranged.issued_at, judged.issued_at, "{at_once} at once");
            assert_eq!(ranged.issued_kid, judged.issued_kid, "{at_once} at once");
            assert_eq!(ranged.unissuing, judged.unissuing, "{at_once} at once");
            assert_eq!(ranged.shared, judged.shared, "{at_once} at once");
            assert_eq!((cover.start, cover.end, cover.gaps.len()), (0, 0, 0));
        }

        assert!(judge(4, 64).0.shared.is_empty());
        // Token 2 comes from one address, token 9 from none.
        for (max, shared) in [(0, &[2, 3, 4, 5, 7, 8, 11][..]), (1, &[2, 3, 7, 8, 11])] {
            for at_once in [1, 3, 64] {
                assert_eq!(judge(max, at_once).0.shared, shared, "more than {max}");
            }
        }
    }

    /// A [`Row`] that owns its key and address.
    type Owned = (
        i64,
        &'static str,
        Option<u32>,
        Option<String>,
        Option<String>,
    );

    /// Suspect rows with their issuance, unissuing rows, shared rows.
    type Answers = (
        Vec<(IdxSize, Option<i64>, Option<u32>)>,
        Vec<IdxSize>,
        Vec<IdxSize>,
    );

    /// One kind of file per chunk (issuances alone, accesses alone, both as a canonical log
    /// writes them, sign-ins), so each pass skips the chunks without its rows; few tokens,
    /// keys and addresses, so that every question has answers.
    fn chunked(seed: u64) -> DataFrame {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let files: [&[&str]; 5] = [
            &["token_issued"],
            &["access"],
            &["token_issued", "access"],
            &["login"],
            &["access", "login"],
        ];
        let mut chunks = Vec::new();
        for _ in 0..rng.random_range(1..7) {
            let kinds = files[rng.random_range(0..files.len())];
            let rows: Vec<Owned> = (0..rng.random_range(0..40))
                .map(|_| {
                    (
                        rng.random_range(0..4 * MAX_AGE),
                        kinds[rng.random_range(0..kinds.len())],
                        rng.random_bool(0.85).then(|| rng.random_range(0..24)),
                        rng.random_bool(0.85)
                            .then(|| format!("k{}", rng.random_range(0..3))),
                        rng.random_bool(0.9)
                            .then(|| format!("10.0.0.{}", rng.random_range(0..6))),
                    )
                })
                .collect();
            let rows: Vec<Row> = (rows.iter())
                .map(|r| (r.0, r.1, r.2, r.3.as_deref(), r.4.as_deref()))
                .collect();
            chunks.push(Ok(frame(&rows)));
        }
        (crate::frame::stack(chunks, "chunks").expect("stacked")).expect("a chunk")
    }

    /// What judging answers, asked of every token-bearing access of `df` directly against the
    /// facts [`TokenFacts::of`] makes in one pass over every row (themselves held to the rows'
    /// own answers in `reduce::tokens`).
    fn judged_row_by_row(df: &DataFrame, max_addresses: usize) -> Option<Answers> {
        let facts = TokenFacts::of(df, 24, &TimeParser::new(chrono_tz::UTC)).expect("facts");
        facts.issue_span?;
        let access = crate::frame::event_type::code("access");
        let (mut suspect, mut unissuing, mut shared) = (Vec::new(), Vec::new(), Vec::new());
        let mut row: IdxSize = 0;
        for ch in tokens::chunks(df).expect("chunks") {
            let kinds = crate::frame::event_type::codes(&ch.kinds);
            for i in 0..kinds.len() {
                let (t, r) = (ch.tokens.at(i), row + i as IdxSize);
                let Some(f) = facts
                    .fact(t)
                    .filter(|_| Some(kinds[i]) == access && t != NULL)
                else {
                    continue;
                };
                let kid = Some(f.issued_kid).filter(|&k| k != NULL);
                let key = ch.keys.at(i);
                if f.issued_at == NOT_ISSUED
                    || ch.ts[i] - f.issued_at > MAX_AGE
                    || kid.is_some_and(|kid| key != NULL && key != kid)
                {
                    let at = Some(f.issued_at).filter(|&at| at != NOT_ISSUED);
                    suspect.push((r, at, at.and(kid)));
                }
                if !facts.issuing.contains(ch.addresses.at(i)) {
                    unissuing.push(r);
                }
                let many = match max_addresses {
                    0 => f.address != NULL,
                    _ => facts.addresses(t) > max_addresses,
                };
                if many {
                    shared.push(r);
                }
            }
            row += kinds.len() as IdxSize;
        }
        Some((suspect, unissuing, shared))
    }

    /// Judging in the chunks that hold issuances and accesses alone, the token codes in the
    /// frame or beside it in pieces cut elsewhere than its chunks, in one range of codes or
    /// several, answers each question as the rows themselves do.
    #[test]
    fn judging_the_chunks_of_each_kind_answers_as_every_row() {
        let time = TimeParser::new(chrono_tz::UTC);
        let mut shared_seen = 0;
        for seed in 0..40 {
            let df = chunked(seed);
            let dir = tempfile::tempdir().expect("dir");
            let (hot, cold) = crate::reduce::tests::beside(&df, dir.path(), &[7, 30]);
            let types = TypesByChunk::of(&hot).expect("types");
            let in_frame = TypesByChunk::of(&df).expect("types");
            for max in [0, 1, 3] {
                let want = judged_row_by_row(&df, max);
                shared_seen += want.as_ref().map_or(0, |w| w.2.len());
                for at_once in [1, 5, 24] {
                    for frame in [(&hot, &cold, &types), (&df, &IN_FRAME, &in_frame)] {
                        let got = judged_in_ranges(frame, (24, at_once), MAX_AGE, max, &time)
                            .expect("judged")
                            .map(|(j, _)| {
                                let with = j.issued_at.into_iter().zip(j.issued_kid);
                                let suspect = (j.suspect.into_iter().zip(with))
                                    .map(|(r, (at, kid))| (r, at, kid))
                                    .collect();
                                (suspect, j.unissuing, j.shared)
                            });
                        let beside = frame.0.column(c::TOKEN).is_err();
                        assert_eq!(
                            got, want,
                            "seed {seed}, more than {max}, {at_once} at once, beside {beside}"
                        );
                    }
                }
            }
        }
        assert!(shared_seen > 0, "no shared token in any frame");
    }
}
