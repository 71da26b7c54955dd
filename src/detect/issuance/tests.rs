use super::*;
use crate::frame::dictionary;
use crate::normalize::cold::IN_FRAME;
use crate::normalize::schema::col as c;
use crate::reduce::tokens::TokenFacts;

const MAX_AGE: i64 = 1_000;

/// Small frames judge at least [`FACTS_AT_ONCE`] codes at once; a big one a sixteenth of its
/// bytes in facts: the 100.09M-event frame (2,121 MiB) three ranges of its 17.7M tokens, the
/// 257.5M-event one (5,459 MiB) three of 45.6M, not eight; with headroom under the run's
/// peak, what it leaves past judging's working set, two bytes an event.
#[test]
fn facts_at_once_follow_the_frame() {
    assert_eq!(facts_at_once((0, 0), None), FACTS_AT_ONCE);
    assert_eq!(facts_at_once((1 << 30, 50_000_000), None), FACTS_AT_ONCE);
    assert_eq!(
        code_ranges(17_700_518, facts_at_once((2121 << 20, 100_093_306), None)).len(),
        3
    );
    assert_eq!(
        code_ranges(45_600_000, facts_at_once((5459 << 20, 257_500_000), None)).len(),
        3
    );
    assert!(facts_at_once((16 << 30, 0), None) > facts_at_once((8 << 30, 0), None));
    // Headroom: the 85.9M night's 0.43 GB judges its 15.2M tokens in one range; the 100.09M
    // run's 0.23 GB keeps three; none, or a little, changes nothing.
    let night = facts_at_once((1495 << 20, 85_900_000), Some(426_396 << 10));
    assert_eq!(code_ranges(15_214_329, night).len(), 1);
    let run = facts_at_once((1740 << 20, 100_093_306), Some(235 << 20));
    assert_eq!(code_ranges(17_700_518, run).len(), 3);
    assert_eq!(facts_at_once((0, 0), Some(1 << 20)), FACTS_AT_ONCE);
    // The 300.15M run: a 638 MB frame and 0.96 GB under ingest's peak. A tenth of the frame
    // held back judged all 53.1M tokens at once (0.85 GB of facts) and passed that peak; its
    // accesses' working set held back (0.6 GB), they take three ranges.
    let big = facts_at_once((638 << 20, 300_146_794), Some(966_000 << 10));
    assert_eq!(code_ranges(53_149_538, big).len(), 3);
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
        crate::frame::key_column(name, values).expect("codes")
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
        let judged =
            judged_in_ranges(frame, (codes.max(5), at_once), MAX_AGE, 3, &time).expect("ranges");
        assert!(judged.is_none(), "{codes} codes, {at_once} at once");
    }
    let empty = frame(&[(0, "login", None, None, None)]);
    let types = TypesByChunk::of(&empty).expect("types");
    let judged =
        judged_in_ranges((&empty, &IN_FRAME, &types), (0, 1), MAX_AGE, 3, &time).expect("ranges");
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
    let facts =
        TokenFacts::issued(&events, &IN_FRAME, (10, 0..10), &time, None, RUN_ROWS).expect("facts");
    let issuing: roaring::RoaringBitmap = dictionary().code("10.0.0.1").into_iter().collect();
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
    // Token 9 was never issued, at an instant before the log can vouch for it (its first
    // issuance plus a lifetime): a suspect, not proof.
    assert!(judged.never.is_empty());
    assert_eq!(judged.suspect, [3, 4, 6]);
    let k1 = dictionary().code("k1");
    assert_eq!(judged.issued_at, [Some(0), Some(0), None]);
    assert_eq!(judged.issued_kid, [k1, k1, None]);
    assert_eq!(judged.unissuing, [3, 6, 7, 8]);
    // Token 1 comes from four addresses (issuer, a, b, c): more than three.
    assert_eq!(judged.shared, [2, 3, 7, 8, 11]);

    // Judged a range of token codes at a time, the same rows in the same order, whatever
    // the ranges (codes 0–9: token 9 alone in the last range of 3).
    for at_once in [1, 2, 3, 4, 9, 10, 64] {
        let (ranged, cover) = judge(3, at_once);
        assert_eq!(ranged.never, judged.never, "{at_once} at once");
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

/// Never-issued rows the log covers, the other suspect rows with their issuance, unissuing
/// rows, shared rows.
type Answers = (
    Vec<IdxSize>,
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
    let time = TimeParser::new(chrono_tz::UTC);
    let facts = TokenFacts::of(df, 24, &time).expect("facts");
    let cover = Issuance::of(
        TokenFacts::of(df, 24, &time).expect("facts"),
        MAX_AGE,
        &time,
    )?;
    let cover = cover.into_cover();
    let access = crate::frame::event_type::code("access");
    let (mut never, mut suspect) = (Vec::new(), Vec::new());
    let (mut unissuing, mut shared) = (Vec::new(), Vec::new());
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
            if f.issued_at == NOT_ISSUED && cover.covers(ch.ts[i]) {
                never.push(r);
            } else if f.issued_at == NOT_ISSUED
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
    Some((never, suspect, unissuing, shared))
}

/// Where the log vouches for an instant, as the polars expression the judging pass replaced
/// asked it of the proven rows' instants.
fn covered_by_polars(cover: &Coverage) -> Expr {
    let mut covered = col(c::TS)
        .gt_eq(lit(cover.start + cover.max_age))
        .and(col(c::TS).lt_eq(lit(cover.end)));
    for &(from, to) in &cover.blind {
        covered = covered.and(col(c::TS).lt(lit(from)).or(col(c::TS).gt_eq(lit(to))));
    }
    covered
}

/// Instants on either side of each edge of the log's cover, gaps of one and of several days
/// (their blind spans merged), in a zone whose days do not start at UTC midnight: the pass's
/// reading of the cover answers as the polars expression does.
#[test]
fn the_cover_answers_as_the_polars_expression() {
    const DAY: i64 = 86_400_000;
    for zone in [chrono_tz::UTC, chrono_tz::America::Sao_Paulo] {
        let time = TimeParser::new(zone);
        for (gaps, max_age) in [
            (vec![], DAY),
            (vec![20_000], 3_600_000),
            (vec![20_000, 20_001, 20_003, 20_010], DAY),
            (vec![20_002, 20_005], 4 * DAY),
        ] {
            let (start, end) = (time.day_start_ms(19_998) + 5, time.day_start_ms(20_012) - 7);
            let cover = Coverage {
                start,
                end,
                blind: blind_spans(&gaps, max_age, &time),
                gaps,
                max_age,
            };
            let mut instants = vec![i64::MIN, i64::MAX, start, end];
            for edge in (cover.blind.iter()).flat_map(|&(from, to)| [from, to]) {
                instants.extend([edge - 1, edge, edge + 1]);
            }
            for edge in [start + max_age, end] {
                instants.extend([edge - 1, edge, edge + 1]);
            }
            instants.extend((0..400).map(|k| start - DAY + k * (17 * DAY / 400)));
            let df = df!(c::TS => &instants).expect("frame");
            let covered = (df
                .lazy()
                .select([covered_by_polars(&cover).alias("covered")]))
            .collect()
            .expect("covered");
            let want: Vec<bool> = (covered.column("covered").expect("column").bool())
                .expect("flags")
                .iter()
                .map(|b| b == Some(true))
                .collect();
            let got: Vec<bool> = instants.iter().map(|&ts| cover.covers(ts)).collect();
            assert_eq!(
                got, want,
                "{zone}, gaps {:?}, blind {:?}",
                cover.gaps, cover.blind
            );
            assert!(got.contains(&true) && got.contains(&false));
        }
    }
}

/// What judging answers, as the polars queries it replaced ask it of every row: the issuances
/// that name a token grouped by token (earliest instant; the key of the first in input order),
/// left-joined to the accesses that present a token; the addresses any `token_issued` row went
/// to; and each token's distinct addresses over its accesses.
fn judged_by_polars(df: &DataFrame, max_addresses: usize, cover: &Coverage) -> Option<Answers> {
    let text = |name: &str| col(name).cast(DataType::String);
    let rows = df.clone().lazy().with_row_index("row", None);
    let of_type = |kind: &str| rows.clone().filter(text(c::EVENT_TYPE).eq(lit(kind)));
    let issued = (of_type("token_issued").filter(col(c::TOKEN).is_not_null()))
        .group_by([col(c::TOKEN)])
        .agg([
            col(c::TS).min().alias("issued_at"),
            col(c::CREDENTIAL).to_physical().first().alias("issued_kid"),
        ])
        .collect()
        .expect("issued");
    if issued.height() == 0 {
        return None;
    }
    let issuing = (of_type("token_issued").select([col(c::SOURCE_IP)]))
        .drop_nulls(None)
        .collect()
        .expect("issuing");
    let issuing = issuing.column(c::SOURCE_IP).expect("addresses");
    let issuing = lit(issuing.as_materialized_series().clone()).implode(false);
    let accesses = of_type("access").filter(col(c::TOKEN).is_not_null());
    let addresses = (accesses.clone().filter(col(c::SOURCE_IP).is_not_null()))
        .group_by([col(c::TOKEN)])
        .agg([col(c::SOURCE_IP).n_unique().alias("addresses")]);
    let left = || JoinArgs::new(JoinType::Left);
    let judged = (accesses.join(issued.lazy(), [col(c::TOKEN)], [col(c::TOKEN)], left()))
        .join(addresses, [col(c::TOKEN)], [col(c::TOKEN)], left())
        .sort(["row"], SortMultipleOptions::default())
        .with_columns([
            (col("issued_at").is_null())
                .or((col(c::TS) - col("issued_at")).gt(lit(MAX_AGE)))
                .or(col("issued_kid")
                    .is_not_null()
                    .and(col(c::CREDENTIAL).to_physical().neq(col("issued_kid"))))
                .fill_null(false)
                .alias("suspect"),
            (col("issued_at").is_null())
                .and(covered_by_polars(cover))
                .fill_null(false)
                .alias("never"),
            (col(c::SOURCE_IP).is_in(issuing, false))
                .not()
                .fill_null(true)
                .alias("unissuing"),
            (col("addresses").cast(DataType::UInt64))
                .gt(lit(max_addresses as u64))
                .fill_null(false)
                .alias("shared"),
        ])
        .collect()
        .expect("judged");
    let row = crate::frame::u32s(&judged, "row").expect("rows");
    let flag = |name: &str| -> Vec<bool> {
        let column = judged.column(name).expect("flag");
        (column.bool().expect("flags").iter())
            .map(|b| b == Some(true))
            .collect()
    };
    let rows_where = |flags: Vec<bool>| -> Vec<IdxSize> {
        (row.iter().zip(flags))
            .filter(|(_, f)| *f)
            .map(|(r, _)| *r)
            .collect()
    };
    let (at, kid) = (judged.column("issued_at"), judged.column("issued_kid"));
    let (at, kid) = (
        at.expect("at").i64().expect("i64"),
        kid.expect("kid").u32().expect("u32"),
    );
    let never = flag("never");
    let suspects = (flag("suspect").into_iter().enumerate())
        .filter(|&(i, s)| s && !never[i])
        .map(|(i, _)| (row[i], at.get(i), at.get(i).and(kid.get(i))))
        .collect();
    Some((
        rows_where(never),
        suspects,
        rows_where(flag("unissuing")),
        rows_where(flag("shared")),
    ))
}

/// Judging in the chunks that hold issuances and accesses alone, the token codes in the
/// frame or beside it in pieces cut elsewhere than its chunks, in one range of codes or
/// several, answers each question as the rows themselves do, and as polars' group-bys and
/// joins over every row do (what the pass replaced).
#[test]
fn judging_the_chunks_of_each_kind_answers_as_every_row() {
    let time = TimeParser::new(chrono_tz::UTC);
    let (mut shared_seen, mut never_seen, mut uncovered_seen) = (0, 0, 0);
    for seed in 0..40 {
        let df = chunked(seed);
        let dir = tempfile::tempdir().expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&df, dir.path(), &[7, 30]);
        let types = TypesByChunk::of(&hot).expect("types");
        let in_frame = TypesByChunk::of(&df).expect("types");
        for max in [0, 1, 3] {
            let want = judged_row_by_row(&df, max);
            let facts = TokenFacts::of(&df, 24, &time).expect("facts");
            let cover = Issuance::of(facts, MAX_AGE, &time).map(Issuance::into_cover);
            assert_eq!(
                cover.and_then(|cover| judged_by_polars(&df, max, &cover)),
                want,
                "seed {seed}, more than {max}"
            );
            shared_seen += want.as_ref().map_or(0, |w| w.3.len());
            never_seen += want.as_ref().map_or(0, |w| w.0.len());
            uncovered_seen += (want.iter().flat_map(|w| &w.1))
                .filter(|s| s.1.is_none())
                .count();
            for at_once in [1, 5, 24] {
                for frame in [(&hot, &cold, &types), (&df, &IN_FRAME, &in_frame)] {
                    let got = judged_in_ranges(frame, (24, at_once), MAX_AGE, max, &time)
                        .expect("judged")
                        .map(|(j, _)| {
                            let with = j.issued_at.into_iter().zip(j.issued_kid);
                            let suspect = (j.suspect.into_iter().zip(with))
                                .map(|(r, (at, kid))| (r, at, kid))
                                .collect();
                            (j.never, suspect, j.unissuing, j.shared)
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
    assert!(never_seen > 0, "no never-issued token the log covers");
    assert!(
        uncovered_seen > 0,
        "no never-issued token the log does not cover"
    );
}
