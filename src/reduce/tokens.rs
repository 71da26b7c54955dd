//! What the token questions need of each token, reduced from its rows: when the issuer first
//! issued it and under which key, when it was last presented, under which keys and from which
//! addresses; and of the issuance log as a whole, the addresses it issued to and the local days
//! it covers. `forged_tokens` judges each access against these facts, and [`TokenFacts::flagged`]
//! names, from the facts alone, every token with an access a question selects (tested against
//! the rows' own answers). Each fact is a minimum, a maximum or a bounded union, so the facts of
//! two partitions merge into the facts of both: what a state can keep instead of the
//! token-bearing rows, most access rows of a gateway (`docs/scale.md`, "What the cluster needs
//! next"). Building them costs the 10M benchmark export 0.18 s in one pass, about what the
//! table and address pairs they replaced cost inside the detector.
//!
//! [`first_token_uses`] is apart: two other detectors read it, and it is tiny.

use std::collections::{BTreeSet, HashMap};

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::Result;
use crate::frame::event_type::{self, Kinds};
use crate::frame::{Codes, NULL, code_arrays, spanning, ts_arrays};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, Days, TimeParser};

/// Distinct addresses kept per token: "presented from more than N addresses" is exact for any
/// N below this, whatever the partitions (a partition that saw this many says so in its own).
pub const ADDRESSES_KEPT: usize = 8;

/// `issued_at` of a token no `token_issued` event names.
pub const NOT_ISSUED: i64 = i64::MAX;
/// `last_use` of a token no access presents.
pub const NOT_USED: i64 = i64::MIN;

/// One token's facts that judging an access reads; codes are the run's (its dictionary of names for
/// keys and addresses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenFact {
    /// Earliest `token_issued` instant, [`NOT_ISSUED`] when none.
    pub issued_at: i64,
    /// Key named by the token's first issuance row, in input order ([`NULL`]: none named).
    pub issued_kid: u32,
    /// The first address an access presented it from ([`NULL`]: none); the others, up to
    /// [`ADDRESSES_KEPT`] in all, in [`TokenFacts::more_addresses`].
    pub address: u32,
}

/// What the accesses say of one token beyond [`TokenFact`]: what naming the flagged tokens from
/// the facts alone needs ([`TokenFacts::flagged`]), which judging the accesses themselves does
/// not (see [`TokenFacts::for_judging`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenUse {
    /// Latest access presenting it, [`NOT_USED`] when none.
    pub last_use: i64,
    /// Up to two distinct keys accesses presented it under ([`NULL`]-padded): two are enough to
    /// know whether any differs from the issuing key.
    pub keys: [u32; 2],
}

impl Default for TokenUse {
    fn default() -> Self {
        TokenUse {
            last_use: NOT_USED,
            keys: [NULL; 2],
        }
    }
}

impl TokenFact {
    /// One issuance at `at` under key `kid`: the earliest instant counts, and the first
    /// issuance in input order names the key.
    fn issued(&mut self, at: i64, kid: u32) {
        if self.issued_at == NOT_ISSUED {
            self.issued_kid = kid;
        }
        self.issued_at = self.issued_at.min(at);
    }
}

impl Default for TokenFact {
    fn default() -> Self {
        TokenFact {
            issued_at: NOT_ISSUED,
            issued_kid: NULL,
            address: NULL,
        }
    }
}

/// The facts of every token of a run (indexed by token code), and of its issuance log.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenFacts {
    /// Indexed by token code less `base`.
    pub tokens: Vec<TokenFact>,
    /// The first token code `tokens` holds: 0 but for facts made for a range of codes
    /// ([`TokenFacts::for_judging_codes`]), which only [`TokenFacts::fact`] and
    /// [`TokenFacts::addresses`] read.
    pub base: u32,
    /// Beside `tokens`, or empty for facts made [`TokenFacts::for_judging`].
    pub uses: Vec<TokenUse>,
    /// Addresses past a token's first, for the few tokens presented from more than one.
    pub more_addresses: HashMap<u32, Vec<u32>>,
    /// Addresses a `token_issued` event went to: a bitmap, as the judging pass asks it once
    /// per token-bearing access (a hash set took 15.2M inserts in one thread at 85.9M events).
    pub issuing: RoaringBitmap,
    /// Local days with a `token_issued` event that names a token.
    pub issue_days: BTreeSet<i64>,
    /// First and last instant of those events.
    pub issue_span: Option<(i64, i64)>,
}

/// The facts of some rows' tokens, in sparse form for [`TokenFacts::merge`]: per token its code
/// and facts, then (token, address) for the addresses past each one's first, in order; and of
/// the issuance log. What a state would keep per partition once names have persistent codes
/// (kept as strings, reading them back cost more than deriving them: `docs/scale.md`).
#[derive(Debug, Default)]
pub struct SomeFacts {
    pub tokens: Vec<(u32, TokenFact, TokenUse)>,
    pub more: Vec<(u32, u32)>,
    pub issuing: Vec<u32>,
    pub issue_days: BTreeSet<i64>,
    pub issue_span: Option<(i64, i64)>,
}

/// The columns [`TokenFacts::of`] reads.
pub const COLUMNS: [&str; 5] = [c::EVENT_TYPE, c::TOKEN, c::TS, c::CREDENTIAL, c::SOURCE_IP];

/// One chunk of [`COLUMNS`].
pub(crate) struct Chunk<'a> {
    pub kinds: Kinds<'a>,
    pub tokens: Codes<'a>,
    pub ts: &'a [i64],
    pub keys: Codes<'a>,
    pub addresses: Codes<'a>,
}

/// What one chunk says about the issuance log.
struct Issues {
    /// (token, instant, key) of each issuance naming a token, in row order.
    rows: Vec<(u32, i64, u32)>,
    /// The addresses issued to, in row order.
    to: Vec<u32>,
    /// The local days and the first and last instant of `rows`.
    days: BTreeSet<i64>,
    span: Option<(i64, i64)>,
}

impl TokenFacts {
    /// The facts of `frame` (its [`COLUMNS`], chunks aligned), whose token codes are below
    /// `token_codes`.
    pub fn of(frame: &DataFrame, token_codes: usize, time: &TimeParser) -> Result<TokenFacts> {
        TokenFacts::of_in_groups(frame, token_codes, time, ISSUE_GROUP_ROWS, true)
    }

    /// [`TokenFacts::of`] without [`TokenFacts::uses`], which judging each access does not read:
    /// 16 bytes a token instead of 32. Over the 85.9M-event state (15.2M tokens) forged tokens'
    /// peak went 5.30 → 5.08 GB (`analyze --timings-per-detector`; `docs/performance.md`,
    /// twenty-eighth session). Made as judging makes them: the issuances first
    /// ([`TokenFacts::issued`]), then the accesses' addresses ([`TokenFacts::add_addresses`]).
    #[cfg(test)]
    pub fn for_judging(
        frame: &DataFrame,
        cold: &ColdColumns,
        token_codes: usize,
        time: &TimeParser,
    ) -> Result<TokenFacts> {
        let all = 0..u32::try_from(token_codes).unwrap_or(u32::MAX);
        TokenFacts::for_judging_in_runs(
            frame,
            cold,
            token_codes,
            all,
            time,
            crate::normalize::cold::RUN_ROWS,
        )
    }

    /// [`TokenFacts::for_judging`] of the tokens whose codes are in `codes` alone (the facts of
    /// the log as a whole are all there), in runs of about `rows` rows.
    #[cfg(test)]
    fn for_judging_in_runs(
        frame: &DataFrame,
        cold: &ColdColumns,
        token_codes: usize,
        codes: std::ops::Range<u32>,
        time: &TimeParser,
        rows: usize,
    ) -> Result<TokenFacts> {
        let mut facts = TokenFacts::issued(frame, cold, (token_codes, codes), time, None, rows)?;
        let mut more = MoreAddresses::default();
        cold.runs(frame, &COLUMNS, rows, |run| {
            let (all, _) = run_chunks(&run)?;
            check_codes(&all, token_codes)?;
            more = facts.add_addresses(&all, std::mem::take(&mut more));
            Ok(())
        })?;
        facts.close_addresses(more);
        Ok(facts)
    }

    /// What the issuance log says of the tokens whose codes are in `codes` (the log's own facts
    /// whole: its addresses, days and span), for judging: read from the chunks that hold a row
    /// of `issues` alone (those holding `token_issued` events; `None`: every chunk), a run of
    /// about `rows` rows at a time; `token_codes`: the run's table's size, above every code.
    /// No token's addresses: the judging pass gathers them ([`TokenFacts::add_addresses`]) as
    /// it reads the accesses' token codes anyway. Before, these facts were made with the
    /// addresses in a pass of their own over every row, which read the token codes back from a
    /// state's partitions a second time: over the 85.9M-event state, facts 2.21 s and judging
    /// 1.38 s (`docs/performance.md`, fiftieth session, has what it became).
    pub fn issued(
        frame: &DataFrame,
        cold: &ColdColumns,
        (token_codes, codes): (usize, std::ops::Range<u32>),
        time: &TimeParser,
        issues: Option<&[std::ops::Range<usize>]>,
        rows: usize,
    ) -> Result<TokenFacts> {
        let held = codes.end.saturating_sub(codes.start) as usize;
        let mut gathering = Gathering::new(codes.start, held, false, time);
        cold.runs_within(frame, &COLUMNS, rows, issues, |run| {
            let (all, _) = run_chunks(&run)?;
            check_codes(&all, token_codes)?;
            gathering.add_issues(&all);
            Ok(())
        })?;
        Ok(gathering.finish())
    }

    /// Adds the addresses the accesses of `chunks` (the next ones in row order) present each
    /// token from, to facts made by [`TokenFacts::issued`]; `more` carries what one call
    /// gathered past each token's first address to the next, and [`Self::close_addresses`]
    /// keeps it. In row order, as [`TokenFacts::of`] gathers them: the same facts.
    pub(crate) fn add_addresses(&mut self, chunks: &[Chunk], more: MoreAddresses) -> MoreAddresses {
        MoreAddresses(self.read_uses(chunks, event_type::code("access"), more.0))
    }

    /// Keeps the addresses past each token's first that [`Self::add_addresses`] gathered.
    pub(crate) fn close_addresses(&mut self, more: MoreAddresses) {
        self.more_addresses = more.0.into_iter().flatten().collect();
    }

    /// [`TokenFacts::of`], the issuances gathered `group_rows` rows at a time; `uses`: whether to
    /// keep [`TokenFacts::uses`].
    fn of_in_groups(
        frame: &DataFrame,
        token_codes: usize,
        time: &TimeParser,
        group_rows: usize,
        uses: bool,
    ) -> Result<TokenFacts> {
        let chunks = chunks(frame)?;
        // Codes past `token_codes` are not expected; sized by what the rows hold, they cannot
        // be mistaken for rows without a token.
        let codes = highest_code(&chunks).map_or(0, |t| t as usize + 1);
        let mut gathering = Gathering::new(0, codes.max(token_codes), uses, time);
        for group in in_groups(&chunks, group_rows) {
            gathering.add(group);
        }
        Ok(gathering.finish())
    }

    /// The issuances' share, as [`Self::read_uses`] reads the accesses: each worker owns a
    /// range of token codes and reads every chunk's issuances in order, so the earliest instant
    /// counts and the first row names the key, with no merge. One after another in one thread,
    /// with the days and addresses (now taken per chunk, side by side, and [`issued_to`]), this
    /// was 0.88 s of the 85.9M-event export's 2.1 s of facts; with them, 0.3 s of 1.36–1.42 s.
    fn read_issues(&mut self, issues: &[Issues]) {
        self.by_range(Vec::new(), |lo, facts, _, _: &mut ()| {
            for chunk in issues {
                for &(token, ts, kid) in &chunk.rows {
                    if let Some(f) = facts.get_mut(token.wrapping_sub(lo) as usize) {
                        f.issued(ts, kid);
                    }
                }
            }
        });
    }

    /// `work` on each thread's share of the tokens, one range of codes per thread: given the
    /// first code of its range, the facts and uses of the range (no uses when not kept), in
    /// code order, and the range's own of `each` (default when `each` is short).
    fn by_range<S: Send + Default>(
        &mut self,
        mut each: Vec<S>,
        work: impl Fn(u32, &mut [TokenFact], &mut [TokenUse], &mut S) + Sync,
    ) -> Vec<S> {
        let base = self.base;
        let span = (self.tokens.len())
            .div_ceil(rayon::current_num_threads())
            .max(1);
        let mut uses = self.uses.chunks_mut(span);
        let ranges: Vec<(&mut [TokenFact], &mut [TokenUse])> = (self.tokens.chunks_mut(span))
            .map(|facts| (facts, uses.next().unwrap_or_default()))
            .collect();
        each.resize_with(ranges.len(), S::default);
        (ranges.into_par_iter().zip(each).enumerate())
            .map(|(n, ((facts, uses), mut mine))| {
                work(base + (n * span) as u32, facts, uses, &mut mine);
                mine
            })
            .collect()
    }

    /// The accesses' share: each worker owns a range of token codes and reads every chunk in
    /// order, so a token's facts are written by one thread, in input order, with no merge. One
    /// range per thread: with four per thread, each reading every chunk, the detector took 0.74
    /// s instead of 0.41 s on the 10M benchmark export. `access`: the code of the `access`
    /// event type (none when no row has it); `more`: each range's addresses past a token's
    /// first so far, carried from one run of chunks to the next.
    fn read_uses(
        &mut self,
        chunks: &[Chunk],
        access: Option<u16>,
        more: Vec<HashMap<u32, Vec<u32>>>,
    ) -> Vec<HashMap<u32, Vec<u32>>> {
        self.by_range(more, |lo, facts, uses, more| {
            for ch in chunks {
                for (i, &ts) in ch.ts.iter().enumerate() {
                    let t = ch.tokens.at(i).wrapping_sub(lo);
                    let Some(f) = facts.get_mut(t as usize) else {
                        continue;
                    };
                    if Some(event_type::code_at(&ch.kinds, i)) != access {
                        continue;
                    }
                    if let Some(u) = uses.get_mut(t as usize) {
                        u.last_use = u.last_use.max(ts);
                        add_key(&mut u.keys, ch.keys.at(i));
                    }
                    add_address(f, t + lo, ch.addresses.at(i), more);
                }
            }
        })
    }

    /// Adds the facts of rows that come after this one's in input order (a later partition of a
    /// state), in the same code space: what [`TokenFacts::of`] gives for both at once, since
    /// each fact is a minimum, a maximum, a first or a bounded union in input order.
    /// Of facts with their uses ([`TokenFacts::of`]).
    pub fn merge(&mut self, later: SomeFacts) {
        self.uses.resize(self.tokens.len(), TokenUse::default());
        for (t, fact, used) in later.tokens {
            let i = t as usize;
            if i >= self.tokens.len() {
                self.tokens.resize(i + 1, TokenFact::default());
                self.uses.resize(i + 1, TokenUse::default());
            }
            let f = &mut self.tokens[i];
            if fact.issued_at != NOT_ISSUED {
                f.issued(fact.issued_at, fact.issued_kid);
            }
            let u = &mut self.uses[i];
            u.last_use = u.last_use.max(used.last_use);
            for key in used.keys {
                add_key(&mut u.keys, key);
            }
            add_address(f, t, fact.address, &mut self.more_addresses);
        }
        // A token's own addresses stay in order: its first above, then these.
        for (t, address) in later.more {
            if let Some(f) = self.tokens.get_mut(t as usize) {
                add_address(f, t, address, &mut self.more_addresses);
            }
        }
        self.issuing.extend(later.issuing);
        self.issue_days.extend(later.issue_days);
        self.issue_span = spanning(self.issue_span, later.issue_span);
    }

    /// The facts and uses of every token an issuance or an access names (the others have
    /// none), in code order, with the addresses past the first: of facts with their uses
    /// ([`TokenFacts::of`]).
    pub fn each(&self) -> impl Iterator<Item = (u32, &TokenFact, TokenUse, &[u32])> {
        (self.tokens.iter().zip(0u32..))
            .map(|(f, t)| (f, t, self.uses.get(t as usize).copied().unwrap_or_default()))
            .filter(|(f, _, u)| f.issued_at != NOT_ISSUED || u.last_use != NOT_USED)
            .map(|(f, t, u)| {
                let more = self.more_addresses.get(&t).map_or(&[][..], Vec::as_slice);
                (t, f, u, more)
            })
    }

    /// Token `t`'s facts, if these facts hold its code.
    pub fn fact(&self, t: u32) -> Option<&TokenFact> {
        self.tokens.get(t.wrapping_sub(self.base) as usize)
    }

    /// The distinct addresses token `t` was presented from, up to [`ADDRESSES_KEPT`].
    pub fn addresses(&self, t: u32) -> usize {
        match self.fact(t) {
            Some(f) if f.address != NULL => 1 + self.more_addresses.get(&t).map_or(0, Vec::len),
            _ => 0,
        }
    }

    /// The tokens with at least one access a token question selects: never issued, presented
    /// past `max_age` after issuance, under another key than issued with, or from more than
    /// `max_addresses` addresses: of facts with their uses ([`TokenFacts::of`]).
    pub fn flagged(&self, max_age: i64, max_addresses: usize) -> Vec<u32> {
        (self.tokens.iter().zip(&self.uses).zip(0u32..))
            .filter(|&((f, u), t)| {
                u.last_use != NOT_USED
                    && (f.issued_at == NOT_ISSUED
                        || u.last_use.saturating_sub(f.issued_at) > max_age
                        || (f.issued_kid != NULL
                            && u.keys.iter().any(|&k| k != NULL && k != f.issued_kid))
                        || self.addresses(t) > max_addresses)
            })
            .map(|(_, t)| t)
            .collect()
    }
}

/// Facts being gathered from runs of chunks in row order ([`TokenFacts::of`],
/// [`TokenFacts::for_judging`]): each run's issuances, then its accesses. Each fact an
/// issuance gives (the first instant, the first row's key) and each an access gives (the last
/// use, the keys, the addresses in order) are apart, so a run's issuances may come after an
/// earlier run's accesses.
struct Gathering<'t> {
    facts: TokenFacts,
    /// The addresses issued to, a bit each ([`mark_issued_to`]).
    issued_to: Vec<u64>,
    /// Each worker's range's addresses past a token's first ([`TokenFacts::read_uses`]).
    more: Vec<HashMap<u32, Vec<u32>>>,
    issue: Option<u16>,
    access: Option<u16>,
    time: &'t TimeParser,
}

impl<'t> Gathering<'t> {
    /// For the `codes` token codes from `base`; `uses`: whether to keep [`TokenFacts::uses`].
    fn new(base: u32, codes: usize, uses: bool, time: &'t TimeParser) -> Self {
        Gathering {
            facts: TokenFacts {
                tokens: vec![TokenFact::default(); codes],
                base,
                uses: vec![TokenUse::default(); if uses { codes } else { 0 }],
                ..TokenFacts::default()
            },
            issued_to: Vec::new(),
            more: Vec::new(),
            issue: event_type::code("token_issued"),
            access: event_type::code("access"),
            time,
        }
    }

    /// The next chunks in row order.
    fn add(&mut self, chunks: &[Chunk]) {
        self.add_issues(chunks);
        let more = std::mem::take(&mut self.more);
        self.more = self.facts.read_uses(chunks, self.access, more);
    }

    /// The issuances of the next chunks in row order, their accesses left out.
    fn add_issues(&mut self, chunks: &[Chunk]) {
        if let Some(issue) = self.issue {
            let time = self.time;
            let issues: Vec<Issues> = (chunks.par_iter())
                .map(|ch| issues(ch, issue, time))
                .collect();
            self.facts.read_issues(&issues);
            mark_issued_to(&mut self.issued_to, &issues);
            for chunk in issues {
                self.facts.issue_days.extend(chunk.days);
                self.facts.issue_span = spanning(self.facts.issue_span, chunk.span);
            }
        }
    }

    fn finish(self) -> TokenFacts {
        let mut facts = self.facts;
        if self.issue.is_some() {
            facts.issuing = bitmap_of(&self.issued_to);
        }
        facts.more_addresses = self.more.into_iter().flatten().collect();
        facts
    }
}

/// The chunks of a run [`ColdColumns::runs`] hands over (its [`COLUMNS`]), in row order, each
/// with the frame row it starts at.
pub(crate) fn run_chunks(run: &[(usize, DataFrame)]) -> Result<(Vec<Chunk<'_>>, Vec<IdxSize>)> {
    let (mut all, mut starts) = (Vec::new(), Vec::new());
    for (first, frame) in run {
        // Polars itself indexes rows with `IdxSize`, so a frame's length fits.
        let mut at = *first as IdxSize;
        for ch in chunks(frame)? {
            starts.push(at);
            at += ch.ts.len() as IdxSize;
            all.push(ch);
        }
    }
    Ok((all, starts))
}

/// Addresses past each token's first, one map per worker's range of codes, as a pass gathers
/// them ([`TokenFacts::add_addresses`]).
#[derive(Default)]
pub(crate) struct MoreAddresses(Vec<HashMap<u32, Vec<u32>>>);

/// An error when `chunks` hold a token code the run's table of `token_codes` did not hand out:
/// facts sized by the table would leave its rows out as if they carried no token.
pub(crate) fn check_codes(chunks: &[Chunk], token_codes: usize) -> Result<()> {
    match highest_code(chunks).filter(|&t| t as usize >= token_codes) {
        Some(t) => Err(crate::error::Error::Internal(format!(
            "token code {t} was not handed out by the run's table of {token_codes}"
        ))),
        None => Ok(()),
    }
}

/// The highest token code `chunks` hold, if any (not the slots under nulls).
fn highest_code(chunks: &[Chunk]) -> Option<u32> {
    (chunks.par_iter())
        .filter_map(|ch| ch.tokens.highest())
        .max()
}

/// `frame`'s [`COLUMNS`] chunk by chunk (aligned: the n-th array of each covers the same rows).
pub(crate) fn chunks(frame: &DataFrame) -> Result<Vec<Chunk<'_>>> {
    let (kinds, tokens) = (
        event_type::arrays(frame, c::EVENT_TYPE)?,
        code_arrays(frame, c::TOKEN)?,
    );
    let (keys, addresses) = (
        code_arrays(frame, c::CREDENTIAL)?,
        code_arrays(frame, c::SOURCE_IP)?,
    );
    let ts = ts_arrays(frame)?;
    Ok((0..ts.len())
        .map(|k| Chunk {
            kinds: kinds[k],
            tokens: tokens[k].clone(),
            ts: ts[k],
            keys: keys[k].clone(),
            addresses: addresses[k].clone(),
        })
        .collect())
}

/// Rows whose issuances are gathered at once, in order, before the facts take them: gathered
/// for the whole table, the issuances of the 85.9M-event export (15.2M, 20 bytes each with their
/// address) were 0.3 GB beside the facts' 0.48 GB. In groups, and with the facts dropped once
/// judged (`forged_tokens`), the detector's own peak over that state, nothing new, went 5.65 →
/// 5.43 GB (`analyze --timings-per-detector`, reports byte-identical).
const ISSUE_GROUP_ROWS: usize = 4 << 20;

/// `chunks` in consecutive groups of at most `rows` rows (at least one chunk each; see
/// [`crate::frame::runs`]).
fn in_groups<'c, 'a>(chunks: &'c [Chunk<'a>], rows: usize) -> Vec<&'c [Chunk<'a>]> {
    let sizes: Vec<usize> = chunks.iter().map(|ch| ch.ts.len()).collect();
    (crate::frame::runs(&sizes, rows).into_iter())
        .map(|run| &chunks[run])
        .collect()
}

/// Sets the addresses of `issues` in a plain bit table: one per issuance at 85.9M events
/// (15.2M), inserted one by one into a hash set or a bitmap they took 0.4–0.7 s, sorted first
/// 0.4 s. Address codes are the run's dictionary codes, dense: the table is a few hundred KB.
fn mark_issued_to(bits: &mut Vec<u64>, issues: &[Issues]) {
    for &a in issues.iter().flat_map(|i| &i.to) {
        let word = a as usize / 64;
        if word >= bits.len() {
            bits.resize(word + 1, 0);
        }
        bits[word] |= 1 << (a % 64);
    }
}

/// The addresses set in `bits`.
fn bitmap_of(bits: &[u64]) -> RoaringBitmap {
    (bits.iter().zip(0u32..))
        .flat_map(|(&word, w)| {
            (0..64u32)
                .filter(move |b| word & (1 << b) != 0)
                .map(move |b| w * 64 + b)
        })
        .collect()
}

/// One chunk's [`Issues`]; `issue`: the code of `token_issued`, if any row has it.
fn issues(ch: &Chunk, issue: u16, time: &TimeParser) -> Issues {
    let (mut rows, mut to) = (Vec::new(), Vec::new());
    let (mut days, mut local, mut last_day) = (BTreeSet::new(), Days::new(*time), None);
    let mut span: Option<(i64, i64)> = None;
    let kind = event_type::codes(&ch.kinds);
    for i in (0..kind.len()).filter(|&i| kind[i] == issue) {
        let token = ch.tokens.at(i);
        if token != NULL {
            let ts = ch.ts[i];
            rows.push((token, ts, ch.keys.at(i)));
            // Rows of one day come together: the set is asked once per run of them.
            let day = local.of(ts);
            if last_day != Some(day) {
                days.insert(day);
                last_day = Some(day);
            }
            span = spanning(span, Some((ts, ts)));
        }
        let address = ch.addresses.at(i);
        if address != NULL {
            to.push(address);
        }
    }
    Issues {
        rows,
        to,
        days,
        span,
    }
}

/// Per key, the first instant a row names it together with a token (any event type): what
/// key lifecycle's "used before created" and enumeration's signing keys read. Kept apart from
/// [`TokenFacts`], which only `forged_tokens` reads and drops: held for the whole run beside
/// enumeration's reduction, the facts of the 85.9M-event export (15.2M tokens) raised its peak
/// by 0.48 GB. Ingest gathers the same per file ([`crate::ingest::coverage::Seen`]); the pass
/// below is for runs whose files' are not all known, or whose time window leaves rows out.
pub use crate::ingest::coverage::first_token_uses;

/// [`first_token_uses`] of every row of `events`, whose token codes may wait beside it
/// (`cold`), read a run of about `rows` rows at a time ([`ColdColumns::runs`]).
pub fn first_token_uses_in_runs(
    events: &DataFrame,
    cold: &ColdColumns,
    rows: usize,
) -> Result<HashMap<u32, i64>> {
    let mut first = HashMap::new();
    cold.runs(events, &[c::TOKEN, c::CREDENTIAL, c::TS], rows, |run| {
        let frames: Vec<DataFrame> = run.into_iter().map(|(_, df)| df).collect();
        crate::ingest::coverage::note_codes(&mut first, first_token_uses(&frames)?);
        Ok(())
    })?;
    Ok(first)
}

fn add_key(keys: &mut [u32; 2], key: u32) {
    if key == NULL || keys.contains(&key) {
        return;
    }
    if let Some(slot) = keys.iter_mut().find(|k| **k == NULL) {
        *slot = key;
    }
}

fn add_address(f: &mut TokenFact, t: u32, address: u32, more: &mut HashMap<u32, Vec<u32>>) {
    if address == NULL || f.address == address {
        return;
    }
    if f.address == NULL {
        f.address = address;
        return;
    }
    let list = more.entry(t).or_default();
    if list.len() + 1 < ADDRESSES_KEPT && !list.contains(&address) {
        list.push(address);
    }
}

#[cfg(test)]
mod tests;
