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
//! enumeration from running beside them within the memory target. Its answers are checked
//! against that frame's polars group-bys and joins on random frames (`issuance/tests.rs`).

use std::collections::HashSet;

use itertools::Itertools;

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::Result;
use crate::frame::NULL;
use crate::frame::event_type::TypesByChunk;
use crate::normalize::ColdColumns;
use crate::normalize::cold::RUN_ROWS;
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
    /// Token never issued, at an instant the log covers: the proof a forger leaves. Apart from
    /// [`Self::suspect`] so that its rows, nearly all the suspects when a key is forged with,
    /// are gathered on their own: at 300.15M events the 6.93M suspects were gathered whole,
    /// then split by a polars filter into 5.87M of these and the rest, and the two copies set
    /// forged tokens' peak (2.59 → 2.93 GB, `analyze --timings-per-detector` with probes).
    pub never: Vec<IdxSize>,
    /// Token past its lifetime, presented under another key than issued with, or never issued
    /// at an instant the log does not cover.
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
    never: Vec<IdxSize>,
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

/// Bytes an event held back from the headroom under the run's peak ([`crate::memory::headroom`])
/// before facts may use the rest: judging's own working set beside its facts, which follows the
/// accesses it walks, not the frame's bytes. 0.15 GB over the 85.9M-event state's night (about
/// 1.75 bytes an event) and 0.44 GB at 300.15M events (1.47; two ranges, `analyze
/// --timings-per-detector`). That night starts forged tokens 0.43 GB under the peak ingest set:
/// its 15.2M tokens' facts (0.24 GB) in one range instead of three took the detectors 20.6 →
/// 15.2 s and the night 38.3 → 33.1 s, the run's peak unchanged at 2.71 GB (one run each,
/// reports byte-identical; `docs/performance.md`, forty-fourth session). The 100.09M run starts
/// it about 0.23 GB under its peak, which leaves nothing past the reserve: its three ranges stay.
/// The reserve was a tenth of the frame's bytes until the frame lost its instants (fifty-fifth
/// session): at 300.15M events that left 64 MB for judging, and one range of 53.1M tokens' facts
/// (0.85 GB) took the run's peak from ingest's 3.11 GB to 3.31 GB (fifty-sixth session).
const RESERVE_PER_EVENT: usize = 2;

/// Token codes judged at once over a frame of `frame_bytes` bytes of columns and `events` rows:
/// a sixteenth of the frame in facts, or what `headroom` leaves past judging's own working set
/// ([`RESERVE_PER_EVENT`]) where that holds more, and never fewer than [`FACTS_AT_ONCE`] codes.
/// At 85.9M and 100.09M events without headroom the same three ranges as [`FACTS_AT_ONCE`]
/// alone.
pub(super) fn facts_at_once(
    (frame_bytes, events): (usize, usize),
    headroom: Option<usize>,
) -> usize {
    let fact = std::mem::size_of::<tokens::TokenFact>();
    let spare = headroom
        .unwrap_or(0)
        .saturating_sub(events.saturating_mul(RESERVE_PER_EVENT))
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
    /// only, its token's, and each range's rows are in order, so they merge as they stand. At
    /// 300.15M events (nine ranges) the rows were gathered as (row, instant, key) triples,
    /// sorted and split again: 32 bytes a suspect row beside the ranges' and the result's 28.
    fn merged(mut ranges: Vec<Judged>) -> Judged {
        if ranges.len() == 1 {
            return ranges.pop().unwrap_or_default();
        }
        let total = |of: fn(&Judged) -> usize| ranges.iter().map(of).sum::<usize>();
        let (suspects, unissuing) = (total(|j| j.suspect.len()), total(|j| j.unissuing.len()));
        let mut out = Judged {
            never: Vec::with_capacity(total(|j| j.never.len())),
            suspect: Vec::with_capacity(suspects),
            issued_at: Vec::with_capacity(suspects),
            issued_kid: Vec::with_capacity(suspects),
            unissuing: Vec::with_capacity(unissuing),
            shared: Vec::new(),
        };
        let mut rows = Vec::with_capacity(ranges.len());
        let mut unissued = Vec::with_capacity(ranges.len());
        let mut never = Vec::with_capacity(ranges.len());
        for j in ranges {
            never.push(j.never.into_iter());
            let with = j.issued_at.into_iter().zip(j.issued_kid);
            rows.push(j.suspect.into_iter().zip(with));
            unissued.push(j.unissuing.into_iter());
        }
        for (row, (at, kid)) in rows.into_iter().kmerge_by(|a, b| a.0 < b.0) {
            out.suspect.push(row);
            out.issued_at.push(at);
            out.issued_kid.push(kid);
        }
        out.never.extend(never.into_iter().kmerge());
        out.unissuing.extend(unissued.into_iter().kmerge());
        out
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
            never: rows(|p| &p.never),
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
        let (facts, cover) = (&self.facts, &self.cover);
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
            let never = f.issued_at == NOT_ISSUED;
            let suspect = never
                || ts[i] - f.issued_at > cover.max_age
                || kid.is_some_and(|kid| key[i] != NULL && key[i] != kid);
            if never && cover.covers(ts[i]) {
                part.never.push(row);
            } else if suspect {
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
    /// True where a missing token at instant `ts` is the issuer's fault, not the log's. The
    /// blind spans are in order and apart ([`blind_spans`] merges them).
    fn covers(&self, ts: i64) -> bool {
        let after = self.blind.partition_point(|&(_, to)| to <= ts);
        let blind = self.blind.get(after).is_some_and(|&(from, _)| from <= ts);
        ts >= self.start.saturating_add(self.max_age) && ts <= self.end && !blind
    }
}

#[cfg(test)]
mod tests;
