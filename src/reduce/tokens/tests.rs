use std::collections::{BTreeMap, BTreeSet};

use rand::{Rng, SeedableRng};

use super::*;
use crate::frame::{dictionary, key_column};
use crate::normalize::schema::DAY_MS;

/// (instant, event type, token code, key, address).
type Row = (
    i64,
    &'static str,
    Option<u32>,
    Option<String>,
    Option<String>,
);

/// Random rows over few tokens, keys and addresses, so that every question has answers,
/// and the frame they make in three chunks (one empty).
fn rows_and_frame(seed: u64) -> (Vec<Row>, DataFrame) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut rows = Vec::new();
    let mut df: Option<DataFrame> = None;
    for len in [53, 0, 140] {
        let chunk: Vec<Row> = (0..len)
            .map(|_| {
                let kind =
                    ["access", "access", "access", "token_issued", "login"][rng.random_range(0..5)];
                (
                    rng.random_range(-3 * DAY_MS..3 * DAY_MS),
                    kind,
                    rng.random_bool(0.8).then(|| rng.random_range(0..24)),
                    rng.random_bool(0.85)
                        .then(|| format!("k{}", rng.random_range(0..3))),
                    rng.random_bool(0.9)
                        .then(|| format!("10.0.0.{}", rng.random_range(0..12))),
                )
            })
            .collect();
        let frame = DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), chunk.iter().map(|r| r.0).collect::<Vec<_>>()),
            key_column(
                c::EVENT_TYPE,
                chunk.iter().map(|r| Some(r.1)).collect::<Vec<_>>(),
            )
            .expect("kinds"),
            Column::new(
                c::TOKEN.into(),
                chunk.iter().map(|r| r.2).collect::<Vec<_>>(),
            ),
            key_column(
                c::CREDENTIAL,
                chunk.iter().map(|r| r.3.clone()).collect::<Vec<_>>(),
            )
            .expect("keys"),
            key_column(
                c::SOURCE_IP,
                chunk.iter().map(|r| r.4.clone()).collect::<Vec<_>>(),
            )
            .expect("addresses"),
        ])
        .expect("frame");
        match df.as_mut() {
            Some(df) => {
                df.vstack_mut(&frame).expect("vstack");
            }
            None => df = Some(frame),
        }
        rows.extend(chunk);
    }
    (rows, df.expect("frame"))
}

fn text(code: u32) -> String {
    dictionary()
        .name(code)
        .map(str::to_string)
        .unwrap_or_default()
}

/// The facts of a frame cut in two, the second half's merged into the first's, are the
/// facts of the whole frame: what a state's partitions give when read back in order.
#[test]
fn facts_of_two_parts_merge_into_the_facts_of_both() {
    let time = TimeParser::new(chrono_tz::UTC);
    for seed in 0..30 {
        let (rows, df) = rows_and_frame(seed);
        let whole = TokenFacts::of(&df, 24, &time).expect("facts");
        for cut in [0, 1, rows.len() / 3, rows.len() - 1, rows.len()] {
            let (head, tail) = (df.slice(0, cut), df.slice(cut as i64, rows.len() - cut));
            let mut merged = TokenFacts::of(&head, 24, &time).expect("head");
            let later = TokenFacts::of(&tail, 24, &time).expect("tail");
            merged.merge(SomeFacts {
                tokens: later.each().map(|(t, f, u, _)| (t, *f, u)).collect(),
                more: (later.each())
                    .flat_map(|(t, _, _, more)| more.iter().map(move |&a| (t, a)))
                    .collect(),
                issuing: later.issuing.iter().collect(),
                issue_days: later.issue_days.clone(),
                issue_span: later.issue_span,
            });
            assert_eq!(merged, whole, "seed {seed}, cut at {cut}");
        }
    }
}

/// Facts gathered from token codes read beside the frame, a few chunks at a time, are the
/// facts of the frame that holds them; so are the first token uses. A code the run's table
/// did not hand out is an error, not a token left out.
#[test]
fn facts_from_codes_beside_the_frame_are_the_frame_s() {
    use crate::normalize::cold::IN_FRAME;
    let time = TimeParser::new(chrono_tz::UTC);
    for seed in 0..10 {
        let (_, df) = rows_and_frame(seed);
        let dir = tempfile::tempdir().expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&df, dir.path(), &[7]);
        assert!(hot.column(c::TOKEN).is_err());
        let want = TokenFacts::for_judging(&df, &IN_FRAME, 24, &time).expect("facts");
        for rows in [1, 20, usize::MAX] {
            let got = TokenFacts::for_judging_in_runs(&hot, &cold, 24, 0..24, &time, rows)
                .expect("facts");
            assert_eq!(got, want, "seed {seed}, runs of {rows} rows");
        }
        // A range of codes holds those tokens' facts as the whole does, and the log's.
        for codes in [0..7, 7..16, 16..24, 23..24, 5..5] {
            let got = TokenFacts::for_judging_in_runs(&hot, &cold, 24, codes.clone(), &time, 20)
                .expect("facts");
            let (lo, hi) = (codes.start as usize, codes.end as usize);
            assert_eq!(got.base, codes.start);
            assert_eq!(
                got.tokens,
                want.tokens[lo..hi],
                "seed {seed}, codes {codes:?}"
            );
            let more = (want.more_addresses.iter())
                .filter(|(t, _)| codes.contains(t))
                .map(|(t, a)| (*t, a.clone()))
                .collect();
            assert_eq!(got.more_addresses, more, "seed {seed}, codes {codes:?}");
            for t in codes.clone() {
                assert_eq!(got.fact(t), want.fact(t));
                assert_eq!(got.addresses(t), want.addresses(t));
            }
            assert_eq!(got.fact(codes.end), None);
            let log = |f: &TokenFacts| (f.issuing.clone(), f.issue_days.clone(), f.issue_span);
            assert_eq!(log(&got), log(&want), "seed {seed}, codes {codes:?}");
        }
        let first = first_token_uses_in_runs(&hot, &cold, 20).expect("runs");
        let whole = first_token_uses(std::slice::from_ref(&df)).expect("first uses");
        assert_eq!(first, whole, "seed {seed}");
        let too_few = TokenFacts::for_judging_in_runs(&hot, &cold, 20, 0..20, &time, 20);
        assert!(too_few.is_err(), "seed {seed}");
    }
}

/// Issuances gathered a chunk at a time give the facts gathered all at once: the first
/// issuance in input order still names a token's key when it is in an earlier group. Facts
/// for judging are those facts without their uses.
#[test]
fn issuances_gathered_in_groups_give_the_same_facts() {
    let time = TimeParser::new(chrono_tz::UTC);
    for seed in 0..30 {
        let (_, df) = rows_and_frame(seed);
        let at_once = TokenFacts::of_in_groups(&df, 24, &time, usize::MAX, true).expect("facts");
        let by_chunk = TokenFacts::of_in_groups(&df, 24, &time, 1, true).expect("facts");
        assert_eq!(by_chunk, at_once, "seed {seed}");
        // Facts for judging are the same facts without the uses.
        let judging = TokenFacts::for_judging(&df, &crate::normalize::cold::IN_FRAME, 24, &time)
            .expect("facts");
        assert!(judging.uses.is_empty());
        assert_eq!(
            TokenFacts {
                uses: Vec::new(),
                ..at_once
            },
            judging,
            "seed {seed}"
        );
        assert!(
            in_groups(&chunks(&df).expect("chunks"), 1).len() >= 2,
            "one group"
        );
    }
}

/// The facts, and the tokens they flag, against the questions asked of every row directly:
/// the issuer's first instant and key, the issuing addresses and days, each key's first
/// token-bearing use, and every token with a row that is never issued, past its lifetime,
/// under another key, or from more addresses than allowed.
#[test]
fn facts_answer_what_the_rows_answer() {
    for seed in 0..30 {
        let (rows, df) = rows_and_frame(seed);
        let facts = TokenFacts::of(&df, 24, &TimeParser::new(chrono_tz::UTC)).expect("facts");

        let mut issued: BTreeMap<u32, (i64, Option<String>)> = BTreeMap::new();
        let (mut issuing, mut days, mut first) =
            (BTreeSet::new(), BTreeSet::new(), BTreeMap::new());
        let mut addresses: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for (ts, kind, token, key, address) in &rows {
            if let (Some(_), Some(k)) = (token, key) {
                let f = first.entry(k.clone()).or_insert(*ts);
                *f = (*f).min(*ts);
            }
            if *kind == "token_issued" {
                issuing.extend(address.clone());
                if let Some(t) = token {
                    days.insert(ts.div_euclid(DAY_MS));
                    let e = issued.entry(*t).or_insert((*ts, key.clone()));
                    e.0 = e.0.min(*ts);
                }
            }
            if let (&"access", Some(t), Some(a)) = (kind, token, address) {
                addresses.entry(*t).or_default().insert(a.clone());
            }
        }
        let got: BTreeSet<String> = facts.issuing.iter().map(text).collect();
        assert_eq!(got, issuing, "seed {seed}");
        assert_eq!(facts.issue_days, days, "seed {seed}");
        let got: BTreeMap<String, i64> = (first_token_uses(std::slice::from_ref(&df))
            .expect("first uses")
            .iter())
        .map(|(&k, &at)| (text(k), at))
        .collect();
        assert_eq!(got, first, "seed {seed}");
        for t in 0..24u32 {
            let want = addresses
                .get(&t)
                .map_or(0, BTreeSet::len)
                .min(ADDRESSES_KEPT);
            assert_eq!(facts.addresses(t), want, "seed {seed} token {t}");
        }

        for max_age in [DAY_MS / 2, 2 * DAY_MS] {
            for max_addresses in 1..4 {
                let mut want = BTreeSet::new();
                for (ts, kind, token, key, _) in &rows {
                    let (&"access", Some(t)) = (kind, token) else {
                        continue;
                    };
                    let suspect = match issued.get(t) {
                        None => true,
                        Some((at, kid)) => {
                            ts - at > max_age
                                || matches!((kid, key), (Some(kid), Some(k)) if kid != k)
                        }
                    };
                    let shared = addresses.get(t).is_some_and(|a| a.len() > max_addresses);
                    if suspect || shared {
                        want.insert(*t);
                    }
                }
                let got: BTreeSet<u32> =
                    facts.flagged(max_age, max_addresses).into_iter().collect();
                assert_eq!(
                    got, want,
                    "seed {seed}, {max_age} ms, {max_addresses} addresses"
                );
            }
        }
    }
}
