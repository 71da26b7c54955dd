//! Shared aggregation: "what did this key / principal / address do" over a filtered event set.
//! Detectors filter lazily and call [`summarize`] once: polars selects the rows, and the
//! aggregation runs over the selection's codes.

use std::collections::BTreeMap;

use polars::prelude::*;
use rayon::prelude::*;
use serde::Serialize;

use super::{DetectInput, Entity, EntityKind, Finding, evidence, json_list};
use crate::error::{FrameContext, Result};
use crate::frame::{NULL, codes, i64s, u32s, u64s};
use crate::normalize::Tokens;
use crate::normalize::cold::ROW;
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
            hygiene: false,
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
/// it gathers itself. Not the file and line, which are read for each key's first rows alone
/// (by [`ROW`]).
pub fn columns(key: &str) -> Vec<&str> {
    let mut wanted = vec![
        c::TS,
        c::SUCCESS,
        c::TARGET,
        c::SOURCE_IP,
        c::PRINCIPAL,
        ROW,
    ];
    if !wanted.contains(&key) {
        wanted.push(key);
    }
    wanted
}

/// Aggregates `rows` per value of `key`, a name column (rows with a null key are ignored).
///
/// Hand-written over the selected rows' codes: per key, the counts, instants and the first row
/// in one pass, and the distinct accounts, sources and principals by sorting each key's codes,
/// whose runs also give the top sources and principals. As three polars queries (a group-by with
/// three `n_unique` and two sorted `first`, then a group-by per top list) it took 0.76–0.79 s
/// for each of the three ~1.8M-row selections of the 85.9M-event state's nightly run; with this,
/// that run's `offboarding` took 2.62 → 2.16 s and `forged_tokens` 5.35 → 4.72 s (CPU 11.9 →
/// 9.4 s), and at 8.7M events 0.22 → 0.17 s and 0.40 → 0.33 s (`docs/performance.md`,
/// twenty-third session). `tests::agrees_with_polars` holds it to those queries.
///
/// The first row's file and line come from `rows` when it has them, else from the event
/// frame's rows that [`ROW`] names, read for each key's earliest rows alone: a state's are read
/// back from its partitions a row group at a time (`state::partition::read_hot`), and reading
/// them for every selected row took 0.09–0.11 s of `offboarding` and `forged_tokens` each at
/// 8.7M events in 120 nights.
pub fn summarize(
    rows: LazyFrame,
    key: &str,
    input: &DetectInput,
) -> Result<BTreeMap<String, Activity>> {
    let rows = rows.collect().stage("selected activity")?;
    let mut each = summarize_each(&rows, key, input, &[None])?;
    Ok(each.pop().unwrap_or_default())
}

/// [`summarize`] of the rows whose `key` is one of `names`, no other key summarised: the few
/// addresses that forged tokens judges among the 5.87M never-issued accesses of the
/// 300.15M-event export, rather than every address there.
pub fn summarize_named<'a>(
    rows: &DataFrame,
    key: &str,
    input: &DetectInput,
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeMap<String, Activity>> {
    let dict = crate::frame::dictionary();
    let wanted: hashbrown::HashSet<u32> = (names.into_iter())
        .filter_map(|name| dict.code(name))
        .collect();
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    let keep: Vec<bool> = (codes(rows, key)?.iter())
        .map(|code| wanted.contains(code))
        .collect();
    let mut each = summarize_each(rows, key, input, &[Some(&keep)])?;
    Ok(each.pop().unwrap_or_default())
}

/// [`summarize`] of the rows of `rows` where each of `keeps` is true (all of them for `None`),
/// one summary per keep, the columns read once for all of them.
///
/// Rows with a null key, or not kept, are left out as the keys are grouped, not by a filter: a
/// filter copies every column of the selection, which is most of what a detector gathered
/// (the 5.87M never-issued accesses of the 300.15M-event export: 0.44 GB over what forged
/// tokens stood on, 0.2 GB with it; `analyze --timings-per-detector` with probes). The columns
/// are read one at a time, each dropped once its figures are taken, and a key's distinct values
/// are sorted one column at a time: reading all six up front and sorting three lists for a key
/// together stood 0.33 GB over the detector's base for those 5.87M rows, and set the run's peak
/// (sixtieth session's probes).
pub fn summarize_each(
    rows: &DataFrame,
    key: &str,
    input: &DetectInput,
    keeps: &[Option<&[bool]>],
) -> Result<Vec<BTreeMap<String, Activity>>> {
    let members: Vec<Vec<(u32, Vec<u32>)>> = {
        let keys = codes(rows, key)?;
        keeps
            .iter()
            .map(|keep| by_key(&keys, NULL, *keep))
            .collect()
    };
    let mut out: Vec<Vec<Activity>> = (members.iter())
        .map(|m| vec![Activity::default(); m.len()])
        .collect();
    let mut earliest: Vec<Vec<Vec<u32>>> = Vec::with_capacity(keeps.len());
    {
        let ts = i64s(rows, c::TS)?;
        for (m, acts) in members.iter().zip(&mut out) {
            let first: Vec<Vec<u32>> = (m.par_iter().zip(acts.par_iter_mut()))
                .map(|((_, of), act)| {
                    let at = |i: &u32| ts[*i as usize];
                    act.events = of.len() as u64;
                    act.first = of.iter().map(at).min().unwrap_or_default();
                    act.last = of.iter().map(at).max().unwrap_or_default();
                    (of.iter().copied())
                        .filter(|i| at(i) == act.first)
                        .collect()
                })
                .collect();
            earliest.push(first);
        }
    }
    for (acts, earliest) in out.iter_mut().zip(earliest) {
        for (act, (file, line)) in acts.iter_mut().zip(first_places(rows, &earliest, input)?) {
            (act.first_file, act.first_line) = (file, line);
        }
    }
    {
        let success: Vec<bool> = (rows.column(c::SUCCESS).and_then(|s| s.bool()))
            .stage("selected activity")?
            .iter()
            .map(|s| s == Some(true))
            .collect();
        for (m, acts) in members.iter().zip(&mut out) {
            (m.par_iter().zip(acts.par_iter_mut())).for_each(|((_, of), act)| {
                act.successes = of.iter().filter(|&&i| success[i as usize]).count() as u64;
            });
        }
    }
    let names: &Names<'_> = &dictionary_names;
    for column in [c::TARGET, c::SOURCE_IP, c::PRINCIPAL] {
        let values = codes(rows, column)?;
        for (m, acts) in members.iter().zip(&mut out) {
            (m.par_iter().zip(acts.par_iter_mut())).for_each(|((_, of), act)| {
                let sorted = sorted_values(of, &values);
                let distinct = sorted.chunk_by(|a, b| a == b).count() as u64;
                match column {
                    c::TARGET => act.distinct_accounts = distinct,
                    c::SOURCE_IP => {
                        act.distinct_sources = distinct;
                        if key != c::SOURCE_IP {
                            act.top_sources = top(&sorted, names);
                        }
                    }
                    _ => {
                        act.distinct_principals = distinct;
                        if key != c::PRINCIPAL {
                            act.top_principals = top(&sorted, names);
                        }
                    }
                }
            });
        }
    }
    let dict = crate::frame::dictionary();
    let name = |code: u32| dict.name(code).unwrap_or_default().to_string();
    Ok((members.into_iter().zip(out))
        .map(|(m, acts)| {
            (m.into_iter().zip(acts))
                .map(|((k, _), act)| (name(k), act))
                .collect()
        })
        .collect())
}

/// For each key, the least (file, line) of its `earliest` rows (indices into `rows`): from
/// `rows`' own columns, or read for those rows alone through [`ROW`].
fn first_places(
    rows: &DataFrame,
    earliest: &[Vec<u32>],
    input: &DetectInput,
) -> Result<Vec<(u32, u64)>> {
    let flat: Vec<usize> = earliest.iter().flatten().map(|&i| i as usize).collect();
    let (files, lines) = if rows.column(c::FILE).is_ok() {
        let (files, lines) = (u32s(rows, c::FILE)?, u64s(rows, c::LINE)?);
        flat.iter().map(|&i| (files[i], lines[i])).unzip()
    } else {
        let frame_rows = u32s(rows, ROW)?;
        let wanted: Vec<IdxSize> = flat.iter().map(|&i| frame_rows[i]).collect();
        let places = (input.cold).select(input.events, &[c::FILE, c::LINE], &wanted)?;
        (u32s(&places, c::FILE)?, u64s(&places, c::LINE)?)
    };
    let mut out = Vec::with_capacity(earliest.len());
    let mut at = 0;
    for of in earliest {
        let least = (at..at + of.len()).map(|j| (files[j], lines[j])).min();
        out.push(least.unwrap_or_default());
        at += of.len();
    }
    Ok(out)
}

/// The most frequent of sorted `codes` as [`keep_top`] orders them (count desc, then name): the
/// codes counted more often than the [`TOP_N`]-th are named, and of those counted as often, the
/// few with the least names are kept as they are named (`names`: see [`Names`]). A name can only
/// reorder equal counts. Naming every code counted as often, as this did, named all 1.74M
/// never-issued tokens of the 85.9M-event state's night (each used once, so all tied), one
/// token id read at a time: 0.65 s of forged tokens' 6 s; with the least kept as named, under
/// one lock, forged tokens took 5.96 → 5.58 s there (one run each; forty-sixth session).
fn top(codes: &[u32], names: &Names<'_>) -> Vec<(String, u64)> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let runs = || (codes.chunk_by(|a, b| a == b)).map(|run| (run[0], run.len() as u64));
    // The bar is the TOP_N-th greatest count (the least, with fewer runs), found in a heap of
    // the greatest counts: runs gathered and sorted took 16 bytes each, 93 MB for a key's 5.8M
    // never-issued tokens (each used once) at 300.15M events.
    let mut greatest: BinaryHeap<Reverse<u64>> = BinaryHeap::with_capacity(TOP_N + 1);
    for (_, n) in runs() {
        greatest.push(Reverse(n));
        if greatest.len() > TOP_N {
            greatest.pop();
        }
    }
    let Some(&Reverse(bar)) = greatest.peek() else {
        return Vec::new();
    };
    let (above, counts): (Vec<u32>, Vec<u64>) = runs().filter(|r| r.1 > bar).unzip();
    let mut named: Vec<(String, u64)> = Vec::with_capacity(TOP_N);
    names(&above, &mut |i, name| {
        named.push((name.to_string(), counts[i]))
    });
    // The least names of the codes counted `bar` times, as many as places are left, in a heap
    // whose top is the greatest kept; codes in order, as a table on disk is read best.
    let need = TOP_N.saturating_sub(named.len());
    let tied: Vec<u32> = runs().filter(|r| r.1 == bar).map(|r| r.0).collect();
    let mut least: BinaryHeap<String> = BinaryHeap::new();
    names(&tied, &mut |_, name| {
        if least.len() < need {
            least.push(name.to_string());
        } else if least.peek().is_some_and(|most| name < most.as_str()) {
            least.pop();
            least.push(name.to_string());
        }
    });
    named.extend(least.into_iter().map(|name| (name, bar)));
    keep_top(&mut named);
    named
}

/// Names codes for [`top`]: calls its second argument with each code's place in the first and
/// its name, in order, so that a table behind a lock is locked once for all of them.
pub type Names<'a> = dyn Fn(&[u32], &mut dyn FnMut(usize, &str)) + Sync + 'a;

/// [`Names`] of the run's dictionary codes.
pub fn dictionary_names(codes: &[u32], each: &mut dyn FnMut(usize, &str)) {
    let dict = crate::frame::dictionary();
    for (i, &code) in codes.iter().enumerate() {
        each(i, dict.name(code).unwrap_or_default());
    }
}

/// [`Names`] of the run's token codes (an unknown code named empty).
pub fn token_names(tokens: &Tokens, codes: &[u32], each: &mut dyn FnMut(usize, &str)) {
    let mut i = 0;
    tokens.for_codes(codes, |id| {
        each(i, id);
        i += 1;
    });
}

/// The non-null `values` of rows `of`, sorted, repeats kept: a group's distinct values are its
/// runs, and their lengths its top counts.
fn sorted_values(of: &[u32], values: &[u32]) -> Vec<u32> {
    let mut v: Vec<u32> = (of.iter().map(|&i| values[i as usize]))
        .filter(|&v| v != NULL)
        .collect();
    v.sort_unstable();
    v
}

/// Each key's rows, in row order, but the rows whose key is `none` or that `keep` (when given)
/// leaves out (a frame holds fewer than 2³² rows: ingest refuses more). Counted first, so that
/// each key's rows take what they need: pushed, a key of 5.8M rows grew to room for 8.4M.
fn by_key<K: Copy + Eq + std::hash::Hash>(
    keys: &[K],
    none: K,
    keep: Option<&[bool]>,
) -> Vec<(K, Vec<u32>)> {
    let kept = (keys.iter().enumerate())
        .filter(|(i, k)| **k != none && keep.is_none_or(|keep| keep.get(*i) == Some(&true)));
    let mut slot_of: hashbrown::HashMap<K, usize> = hashbrown::HashMap::new();
    let mut counts: Vec<(K, usize)> = Vec::new();
    for (_, &k) in kept.clone() {
        let slot = *slot_of.entry(k).or_insert_with(|| {
            counts.push((k, 0));
            counts.len() - 1
        });
        counts[slot].1 += 1;
    }
    let mut members: Vec<(K, Vec<u32>)> = (counts.into_iter())
        .map(|(k, n)| (k, Vec::with_capacity(n)))
        .collect();
    for (i, k) in kept {
        if let Some(&slot) = slot_of.get(k) {
            members[slot].1.push(i as u32);
        }
    }
    members
}

/// Accesses, and distinct tokens, subjects and accounts, of the rows of one value of some key
/// columns (see [`per_group`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub keys: Vec<String>,
    pub accesses: u64,
    pub tokens: u64,
    pub subjects: u64,
    pub accounts: u64,
}

/// One [`Group`] per value of the key columns `by` (one or two), rows with any key null left
/// out, sorted by accesses (desc) then keys so that evidence is deterministic. By hand over
/// codes, one value column at a time: polars' group-by with three `n_unique` over the 5.87M
/// never-issued accesses of the 300.15M-event export stood 0.19 GB over the forged-tokens
/// detector's other steps, and set its peak (fifty-ninth session's probes);
/// `tests::agrees_with_polars` holds this to that query.
pub fn per_group(rows: LazyFrame, by: &[&str]) -> Result<Vec<Group>> {
    if by.is_empty() || by.len() > 2 {
        return Err(crate::error::Error::Internal(format!(
            "groups by {} key columns",
            by.len()
        )));
    }
    let rows = rows.collect().stage("groups")?;
    // Both codes in one integer; u64::MAX (both null) never names a group.
    let mut packed = vec![0u64; rows.height()];
    for key in by {
        let codes = codes(&rows, key)?;
        (packed.par_iter_mut().zip(codes)).for_each(|(p, k)| {
            *p = match (*p, k) {
                (u64::MAX, _) | (_, NULL) => u64::MAX,
                (p, k) => p << 32 | u64::from(k),
            }
        });
    }
    let members = by_key(&packed, u64::MAX, None);
    drop(packed);
    let mut counts = vec![[0u64; 3]; members.len()];
    for (j, column) in [c::TOKEN, c::PRINCIPAL, c::TARGET].into_iter().enumerate() {
        let values = codes(&rows, column)?;
        (counts.par_iter_mut().zip(&members)).for_each(|(n, (_, of))| {
            let mut v = sorted_values(of, &values);
            v.dedup();
            n[j] = v.len() as u64;
        });
    }
    let dict = crate::frame::dictionary();
    let name = |code: u64| {
        let code = u32::try_from(code & u64::from(u32::MAX)).unwrap_or(NULL);
        dict.name(code).unwrap_or_default().to_string()
    };
    let mut out: Vec<Group> = (members.iter().zip(counts))
        .map(|((key, of), [tokens, subjects, accounts])| Group {
            keys: (0..by.len()).rev().map(|k| name(key >> (32 * k))).collect(),
            accesses: of.len() as u64,
            tokens,
            subjects,
            accounts,
        })
        .collect();
    out.sort_by(|x, y| {
        y.accesses
            .cmp(&x.accesses)
            .then_with(|| x.keys.cmp(&y.keys))
    });
    Ok(out)
}

/// The most frequent values of `value` per `key` (a name column), deterministic (count
/// desc, then value asc, [`TOP_N`] kept); `name` gives a value's text from its code (a token's
/// needs the run's token table). By hand, as [`summarize`]: a polars group-by on (key, value)
/// took 0.47 s for the 85.9M-event state's 1.98M never-issued token accesses, and
/// `forged_tokens` took 4.09–4.31 → 3.67–3.77 s with this (`docs/performance.md`, twenty-third
/// session); `tests::agrees_with_polars` holds it to that query.
pub fn top_values_by(
    rows: LazyFrame,
    key: &str,
    value: &str,
    names: &Names<'_>,
) -> Result<BTreeMap<String, Vec<(String, u64)>>> {
    if key == value {
        return Ok(BTreeMap::new());
    }
    // Rows without a key or a value are left out by `by_key`, not by a filter that copies
    // every column (see `summarize`).
    let rows = rows.collect().stage("top values")?;
    let (mut keys, values) = (codes(&rows, key)?, codes(&rows, value)?);
    for (k, &v) in keys.iter_mut().zip(&values) {
        if v == NULL {
            *k = NULL;
        }
    }
    let dict = crate::frame::dictionary();
    let tops: Vec<(String, Vec<(String, u64)>)> = (by_key(&keys, NULL, None).par_iter())
        .map(|(k, of)| {
            // Every kept row has a value: rows without one were left out with their key.
            let v = sorted_values(of, &values);
            let key = dict.name(*k).unwrap_or_default().to_string();
            (key, top(&v, names))
        })
        .collect();
    Ok(tops.into_iter().collect())
}

/// The most frequent values of a list of (value, count), deterministic: count desc, then value.
pub fn keep_top(list: &mut Vec<(String, u64)>) {
    list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    list.truncate(TOP_N);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::Context;
    use crate::detect::DetectOptions;
    use crate::frame::{account, strs};
    use crate::normalize::{TimeParser, Tokens};

    /// Two 32-bit codes as one integer key, as the replaced query grouped by.
    fn pack(high: Expr, low: Expr) -> Expr {
        high.cast(DataType::UInt64) * lit(1u64 << 32) + low.cast(DataType::UInt64)
    }

    /// The token ids of a column of token codes, `""` for a null.
    fn token_texts(df: &DataFrame, name: &str, tokens: &Tokens) -> Result<Vec<String>> {
        Ok(codes(df, name)?
            .into_iter()
            .map(|c| tokens.text(c).unwrap_or_default())
            .collect())
    }
    use rand::{Rng, SeedableRng};

    /// The polars query [`top_values_by`] replaced, as it was.
    fn top_values_with(
        rows: LazyFrame,
        key: &str,
        value: &str,
        read: impl Fn(&DataFrame, &str) -> Result<Vec<String>>,
    ) -> BTreeMap<String, Vec<(String, u64)>> {
        if key == value {
            return BTreeMap::new();
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
            .expect("top values");
        let mut all: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
        let pairs = (strs(&df, key).expect("keys").into_iter())
            .zip(read(&df, value).expect("values"))
            .zip(u64s(&df, "n").expect("counts"));
        for ((k, v), n) in pairs {
            all.entry(k).or_default().push((v, n));
        }
        all.values_mut().for_each(keep_top);
        all
    }

    /// The polars queries [`summarize`] replaced, as they were: the reference it is held to.
    fn reference(rows: LazyFrame, key: &str) -> BTreeMap<String, Activity> {
        let rows = rows
            .filter(col(key).is_not_null())
            .collect()
            .expect("selected")
            .lazy();
        let order = [col(c::TS), col(c::FILE), col(c::LINE)];
        let distinct =
            |e: Expr, name: &str| e.drop_nulls().n_unique().cast(DataType::UInt64).alias(name);
        let main = (rows.clone().group_by([col(key)]))
            .agg([
                len().cast(DataType::UInt64).alias("events"),
                col(c::SUCCESS)
                    .cast(DataType::UInt64)
                    .sum()
                    .alias("successes"),
                distinct(account(), "accounts"),
                distinct(col(c::SOURCE_IP), "sources"),
                distinct(col(c::PRINCIPAL), "principals"),
                col(c::TS).min().alias("first"),
                col(c::TS).max().alias("last"),
                (col(c::FILE).sort_by(order.clone(), SortMultipleOptions::default()))
                    .first()
                    .alias("first_file"),
                (col(c::LINE).sort_by(order, SortMultipleOptions::default()))
                    .first()
                    .alias("first_line"),
            ])
            .collect()
            .expect("summarized");
        let u = |name: &str| u64s(&main, name).expect(name);
        let (first, last) = (
            i64s(&main, "first").expect("first"),
            i64s(&main, "last").expect("last"),
        );
        let files = u32s(&main, "first_file").expect("files");
        let mut out: BTreeMap<String, Activity> = BTreeMap::new();
        for (i, k) in strs(&main, key).expect("keys").into_iter().enumerate() {
            out.insert(
                k,
                Activity {
                    events: u("events")[i],
                    successes: u("successes")[i],
                    distinct_accounts: u("accounts")[i],
                    distinct_sources: u("sources")[i],
                    distinct_principals: u("principals")[i],
                    first: first[i],
                    last: last[i],
                    first_file: files[i],
                    first_line: u("first_line")[i],
                    ..Activity::default()
                },
            );
        }
        for (value, principals) in [(c::SOURCE_IP, false), (c::PRINCIPAL, true)] {
            for (k, top) in top_values_with(rows.clone(), key, value, strs) {
                if let Some(a) = out.get_mut(&k) {
                    match principals {
                        true => a.top_principals = top,
                        false => a.top_sources = top,
                    }
                }
            }
        }
        out
    }

    /// The polars query [`per_group`] replaced, rows with a null key left out.
    fn groups_reference(rows: LazyFrame, by: &[&str]) -> Vec<Group> {
        let n = |c: &str, name: &str| {
            let e = col(c).to_physical().drop_nulls().n_unique();
            e.cast(DataType::UInt64).alias(name)
        };
        let known = (by.iter()).fold(lit(true), |all, k| all.and(col(*k).is_not_null()));
        let df = (rows.filter(known))
            .group_by(by.iter().map(|k| col(*k)).collect::<Vec<_>>())
            .agg([
                len().cast(DataType::UInt64).alias("accesses"),
                n(c::TOKEN, "tokens"),
                n(c::PRINCIPAL, "subjects"),
                n(c::TARGET, "accounts"),
            ])
            .collect()
            .expect("groups");
        let keys: Vec<Vec<String>> = by.iter().map(|k| strs(&df, k).expect("keys")).collect();
        let u = |name: &str| u64s(&df, name).expect(name);
        let mut out: Vec<Group> = (0..df.height())
            .map(|i| Group {
                keys: keys.iter().map(|k| k[i].clone()).collect(),
                accesses: u("accesses")[i],
                tokens: u("tokens")[i],
                subjects: u("subjects")[i],
                accounts: u("accounts")[i],
            })
            .collect();
        out.sort_by(|x, y| (y.accesses, &x.keys).cmp(&(x.accesses, &y.keys)));
        out
    }

    /// Random selections: a few keys with many rows and many with few, nulls in every column
    /// but the instant, file and line, ties on the first instant, and counts tied in the top
    /// lists; every key column the detectors summarize by.
    #[test]
    fn agrees_with_polars() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(23);
        for round in 0..12 {
            let n = [0, 1, 7, 300, 5000][round % 5];
            let mut pick = |pool: u32, null_one_in: u32| -> Option<String> {
                (rng.random_range(0..null_one_in.max(1)) != 0 || null_one_in == 0)
                    .then(|| format!("v{}", rng.random_range(0..pool)))
            };
            let column = |name: &str, values: Vec<Option<String>>| {
                crate::frame::key_column(name, values).expect("codes")
            };
            let strings =
                |pool: u32, nulls: u32, pick: &mut dyn FnMut(u32, u32) -> Option<String>| {
                    (0..n).map(|_| pick(pool, nulls)).collect::<Vec<_>>()
                };
            let (keys, principals) = (strings(6, 9, &mut pick), strings(40, 5, &mut pick));
            let (sources, targets) = (strings(12, 7, &mut pick), strings(300, 4, &mut pick));
            let ids: Vec<Option<String>> = strings(30, 6, &mut pick);
            let ts: Vec<i64> = (0..n).map(|_| rng.random_range(0..50)).collect();
            let files: Vec<u32> = (0..n).map(|_| rng.random_range(0..3)).collect();
            let lines: Vec<u64> = (0..n).map(|_| rng.random_range(1..20)).collect();
            let success: Vec<Option<bool>> = (0..n)
                .map(|_| match rng.random_range(0..5) {
                    0 => None,
                    r => Some(r > 2),
                })
                .collect();
            // Token ids, coded in a token table as the frame holds them.
            let tokens = Tokens::default();
            let placed = (tokens.place(ids.iter().flatten().map(String::as_str))).expect("placed");
            let mut placed = placed.into_iter();
            let token_codes: Vec<Option<u32>> = (ids.iter())
                .map(|id| id.as_ref().and_then(|_| placed.next()))
                .collect();
            let df = DataFrame::new_infer_height(vec![
                Column::new(c::TS.into(), ts),
                Column::new(c::TOKEN.into(), token_codes),
                column(c::CREDENTIAL, keys),
                column(c::PRINCIPAL, principals),
                column(c::SOURCE_IP, sources),
                column(c::TARGET, targets),
                Column::new(c::SUCCESS.into(), success),
                Column::new(c::FILE.into(), files),
                Column::new(c::LINE.into(), lines),
            ])
            .expect("frame");
            let (context, options) = (Context::default(), DetectOptions::default());
            let time = TimeParser::new(chrono_tz::UTC);
            let input = DetectInput::new(&df, &context, &options, &time, &[], &tokens);
            // Every other row, backwards: a selection naming its frame rows instead of holding
            // their files and lines.
            let rows: Vec<IdxSize> = (0..n as IdxSize).rev().step_by(2).collect();
            for by in [
                &[c::CREDENTIAL][..],
                &[c::CREDENTIAL, c::SOURCE_IP],
                &[c::SOURCE_IP],
            ] {
                let got = per_group(df.clone().lazy(), by).expect("groups");
                let want = groups_reference(df.clone().lazy(), by);
                assert_eq!(got, want, "{n} rows by {by:?}");
                assert!(n < 300 || got.iter().any(|g| g.tokens > 1 && g.tokens < g.accesses));
            }
            for key in [c::CREDENTIAL, c::PRINCIPAL, c::SOURCE_IP] {
                let got = summarize(df.clone().lazy(), key, &input).expect("summarized");
                let want = reference(df.clone().lazy(), key);
                assert_eq!(format!("{got:?}"), format!("{want:?}"), "{n} rows by {key}");
                // The successful rows and the failed ones, left out as grouped rather than
                // filtered: a null success is in neither, as polars' filters leave it.
                let flags = df.column(c::SUCCESS).expect("success");
                let flags: Vec<Option<bool>> = flags.bool().expect("flags").iter().collect();
                let keep =
                    |want: bool| -> Vec<bool> { flags.iter().map(|&f| f == Some(want)).collect() };
                let (ok, failed) = (keep(true), keep(false));
                let each = summarize_each(&df, key, &input, &[Some(&ok), Some(&failed)]);
                let each = each.expect("each");
                assert_eq!(each.len(), 2);
                let kept = [(true, col(c::SUCCESS)), (false, col(c::SUCCESS).not())];
                for (got, (want, kept)) in each.into_iter().zip(kept) {
                    let filtered = reference(df.clone().lazy().filter(kept), key);
                    assert_eq!(
                        format!("{got:?}"),
                        format!("{filtered:?}"),
                        "{n} rows by {key}, success {want}"
                    );
                }
                let picked = IdxCa::from_vec("rows".into(), rows.clone());
                let some = df.take(&picked).expect("some rows");
                let named = (input.cold.select(&df, &columns(key), &rows)).expect("selected");
                assert!(named.column(c::FILE).is_err());
                let by_row = summarize(named.lazy(), key, &input).expect("summarized");
                let (by_row, want) = (
                    format!("{by_row:?}"),
                    format!("{:?}", reference(some.lazy(), key)),
                );
                assert_eq!(by_row, want, "{n} rows by {key}, by row");
                let token_text = |codes: &[u32], each: &mut dyn FnMut(usize, &str)| {
                    token_names(&tokens, codes, each)
                };
                let top = top_values_by(df.clone().lazy(), key, c::TOKEN, &token_text)
                    .expect("top tokens");
                let reference_top =
                    top_values_with(df.clone().lazy(), key, c::TOKEN, |df, name| {
                        token_texts(df, name, &tokens)
                    });
                assert_eq!(top, reference_top, "top tokens of {n} rows by {key}");
                let top = top_values_by(df.clone().lazy(), key, c::PRINCIPAL, &dictionary_names)
                    .expect("top principals");
                let reference_top = top_values_with(df.clone().lazy(), key, c::PRINCIPAL, strs);
                assert_eq!(top, reference_top, "top principals of {n} rows by {key}");
                if n >= 300 {
                    assert!(got.len() > 3, "{got:?}");
                    assert!(
                        got.values()
                            .all(|a| a.top_principals.len() == TOP_N || key == c::PRINCIPAL),
                        "{n} {key} {got:?}"
                    );
                }
            }
        }
    }
}
