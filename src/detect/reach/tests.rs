//! Reach's counts on small frames, and against polars group-bys on random ones.

use super::*;

const MINUTE: i64 = 60_000;

use crate::normalize::cold::IN_FRAME;
use crate::normalize::schema::DAY_MS;

fn utc() -> TimeParser {
    TimeParser::new(chrono_tz::UTC)
}

const WALK: Walk = Walk {
    max_step: 3,
    max_gap_ms: 6 * HOUR_MS,
};

/// (ts, event type, principal, target).
type Row<'a> = (i64, &'a str, &'a str, Option<&'a str>);

/// Rows as an event frame.
fn frame(rows: &[Row]) -> DataFrame {
    let strings = |f: fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<_>>();
    let cat = |name: &str, values: Vec<Option<String>>| {
        crate::frame::key_column(name, values).expect("codes")
    };
    DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        cat(c::EVENT_TYPE, strings(|r| Some(r.1.to_string()))),
        cat(c::PRINCIPAL, strings(|r| Some(r.2.to_string()))),
        cat(c::TARGET, strings(|r| r.3.map(str::to_string))),
        // Every principal behind one address: a crowd when they read their own accounts.
        cat(c::SOURCE_IP, strings(|_| Some("100.64.0.1".to_string()))),
    ])
    .expect("frame")
}

/// Counts per entity: reach, own account, days, hours, walks; rows that are not access events
/// or name no account are left out; day detail only above `detail_from`.
#[test]
fn profiles_count_reach_days_hours_and_walks() {
    let day1 = DAY_MS;
    let mut rows = vec![
        (0, "access", "C0001", Some("C0001")),
        (MINUTE, "access", "C0001", Some("C0001")),
        (2 * MINUTE, "access", "C0001", Some("C0002")),
        (3 * MINUTE, "login", "C0001", Some("C0099")),
        (4 * MINUTE, "access", "C0001", None),
    ];
    // A walk C0010..=C0034 on day 1, one a minute, written out of order.
    for i in (0..25).rev() {
        rows.push((day1 + i * MINUTE, "access", "walker", None));
    }
    let names: Vec<String> = (0..25).map(|i| format!("C{:04}", 10 + i)).collect();
    for (i, r) in rows.iter_mut().skip(5).enumerate() {
        r.3 = Some(names[24 - i].as_str());
    }
    let events = frame(&rows);
    let access = AccessRows::new(&events).expect("rows");
    let p = access
        .profiles(&events, c::PRINCIPAL, WALK, 20, &utc())
        .expect("profiles");
    let customer = &p["C0001"];
    assert_eq!(
        (
            customer.events,
            customer.total,
            customer.others,
            customer.sum_daily
        ),
        (3, 2, 1, 2)
    );
    assert_eq!(customer.active_days, 1);
    // Two of its three access rows read its own account; only addresses count that.
    assert_eq!(customer.own_rows, 0);
    assert_eq!(access.self_served(), 1);
    let by_address = access
        .profiles(&events, c::SOURCE_IP, WALK, 20, &utc())
        .expect("profiles");
    assert_eq!(by_address["100.64.0.1"].own_rows, 2);
    assert!(customer.days.is_empty(), "below detail_from");
    let walker = &p["walker"];
    assert_eq!(
        (
            walker.total,
            walker.others,
            walker.walk_steps,
            walker.own_rows
        ),
        (25, 25, 24, 0)
    );
    // 25 accounts on one day: a spread of one day, all of it on the busiest.
    assert_eq!((walker.spread_days, walker.busiest_day_share), (1.0, 1.0));
    assert_eq!(walker.days.to_vec(), vec![(1, 25)]);
    assert_eq!(walker.peak_hour, 25);
    let only: BTreeSet<String> = ["walker".to_string()].into();
    let firsts = access
        .first_days(&events, c::PRINCIPAL, Some(&only), &utc())
        .expect("first days");
    assert_eq!(
        firsts.into_iter().collect::<Vec<_>>(),
        vec![("walker".to_string(), vec![(1, 25)])]
    );
    let firsts = access
        .first_days(&events, c::PRINCIPAL, None, &utc())
        .expect("first days");
    assert_eq!(firsts["C0001"], vec![(0, 2)]);
}

/// Spread is the perplexity of first touches over days: equal days count fully, a burst
/// among quiet days counts as little more than one.
#[test]
fn spread_counts_days_as_their_share_of_the_reach() {
    let spread = |days: &[(i64, u64)]| {
        let mut s = Spread::default();
        for &(day, n) in days {
            for _ in 0..n {
                s.add(day, 1);
            }
        }
        s.finish(days.iter().map(|d| d.1).sum())
    };
    let (even, busiest) = spread(&[(1, 50), (2, 50), (3, 50), (4, 50)]);
    assert!((even - 4.0).abs() < 1e-9 && (busiest - 0.25).abs() < 1e-9);
    let mut burst = vec![(30, 6000)];
    burst.extend((0..36).map(|d| (d, 30)));
    burst.sort();
    let (spread_days, busiest) = spread(&burst);
    assert!((2.0..3.5).contains(&spread_days), "{spread_days}");
    assert!(busiest > 0.8);
}

/// Requests of one instant are taken in account-number order, so a walker whose log lines
/// share a timestamp still walks.
#[test]
fn one_instant_is_ordered_by_account_number() {
    let names: Vec<String> = (0..30).rev().map(|i| format!("C{:04}", 100 + i)).collect();
    let rows: Vec<_> = names
        .iter()
        .map(|n| (5 * MINUTE, "access", "walker", Some(n.as_str())))
        .collect();
    let events = frame(&rows);
    let p = AccessRows::new(&events)
        .expect("rows")
        .profiles(&events, c::PRINCIPAL, WALK, 20, &utc())
        .expect("profiles");
    assert_eq!(p["walker"].walk_steps, 29);
}

/// Who each flagged entity reached through: access rows with an account only, other
/// entities and rows without a value left out, counted across chunks.
#[test]
fn counts_with_counts_access_rows_per_value() {
    let rows = [
        (0, "access", "walker", Some("C0001")),
        (1, "access", "walker", Some("C0002")),
        (2, "access", "walker", None),
        (3, "login", "walker", Some("C0003")),
        (4, "access", "other", Some("C0004")),
        (5, "access", "walker", Some("C0005")),
        (6, "access", "walker", Some("C0006")),
    ];
    let sources = [
        Some("10.0.0.1"),
        Some("10.0.0.1"),
        Some("10.0.0.1"),
        Some("10.0.0.1"),
        Some("10.0.0.1"),
        Some("10.0.0.2"),
        None,
    ];
    let with_sources = |range: std::ops::Range<usize>| {
        let mut f = frame(&rows[range.clone()]);
        let ips = crate::frame::key_column(c::SOURCE_IP, sources[range].to_vec()).expect("codes");
        f.with_column(ips).expect("column");
        f
    };
    let events = with_sources(0..3)
        .vstack(&with_sources(3..7))
        .expect("vstack");
    let ids = BTreeSet::from(["walker".to_string()]);
    let mut counts =
        counts_with(&events, &IN_FRAME, c::PRINCIPAL, &ids, c::SOURCE_IP).expect("counts");
    let mut walker = counts.remove("walker").expect("walker");
    walker.sort();
    assert_eq!(
        walker,
        [("10.0.0.1".to_string(), 2), ("10.0.0.2".to_string(), 1)]
    );
    assert!(counts.is_empty(), "{counts:?}");
    // Several questions in one pass: each answered as if asked alone.
    let who = BTreeSet::from(["walker".to_string(), "other".to_string()]);
    let address = BTreeSet::from(["10.0.0.1".to_string()]);
    let questions = [
        (c::PRINCIPAL, &who, c::SOURCE_IP),
        (c::SOURCE_IP, &address, c::PRINCIPAL),
    ];
    let mut both = counts_with_each((&events, &IN_FRAME, None), &questions).expect("counts");
    both.iter_mut()
        .flat_map(|q| q.values_mut())
        .for_each(|v| v.sort());
    let owned = |pairs: &[(&str, u64)]| -> Vec<(String, u64)> {
        pairs.iter().map(|(v, n)| (v.to_string(), *n)).collect()
    };
    assert_eq!(
        both[0],
        BTreeMap::from([
            ("other".to_string(), owned(&[("10.0.0.1", 1)])),
            (
                "walker".to_string(),
                owned(&[("10.0.0.1", 2), ("10.0.0.2", 1)])
            ),
        ])
    );
    assert_eq!(
        both[1],
        BTreeMap::from([(
            "10.0.0.1".to_string(),
            owned(&[("other", 1), ("walker", 2)])
        )])
    );
}

/// Counted over the chunks that hold access rows alone (chunks of one kind of file each), the
/// targets beside the frame in pieces cut elsewhere than its chunks or in it, the counts are
/// those of every chunk.
#[test]
fn counts_within_the_access_chunks_are_every_chunk_s() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let files: [&[&str]; 4] = [
        &["access"],
        &["login"],
        &["token_issued"],
        &["access", "login"],
    ];
    let (mut skipped, mut counted) = (0, 0);
    for round in 0..30 {
        let mut chunks = Vec::new();
        for _ in 0..rng.random_range(1..8) {
            let kinds = files[rng.random_range(0..files.len())];
            let owned: Vec<(i64, &str, String, Option<String>)> = (0..rng.random_range(0..30))
                .map(|_| {
                    (
                        rng.random_range(0..DAY_MS),
                        kinds[rng.random_range(0..kinds.len())],
                        format!("p{}", rng.random_range(0..4)),
                        (rng.random_bool(0.8)).then(|| format!("C{:04}", rng.random_range(0..6))),
                    )
                })
                .collect();
            let rows: Vec<Row> = (owned.iter())
                .map(|r| (r.0, r.1, r.2.as_str(), r.3.as_deref()))
                .collect();
            chunks.push(Ok(frame(&rows)));
        }
        let events = (crate::frame::stack(chunks, "chunks").expect("stacked")).expect("a chunk");
        let dir = tempfile::tempdir().expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&events, dir.path(), &[5, 13]);
        let types = crate::frame::event_type::TypesByChunk::of(&events).expect("types");
        let accesses = types.ranges_of(&["access"]);
        let who: BTreeSet<String> = (0..4).map(|p| format!("p{p}")).collect();
        let crowd = BTreeSet::from(["100.64.0.1".to_string()]);
        let questions = [
            (c::PRINCIPAL, &who, c::TARGET),
            (c::SOURCE_IP, &crowd, c::PRINCIPAL),
        ];
        let sorted = |mut all: Vec<CountsWith>| {
            (all.iter_mut().flat_map(|q| q.values_mut())).for_each(|v| v.sort());
            all
        };
        let count = |frame| sorted(counts_with_each(frame, &questions).expect("counts"));
        let every = count((&events, &IN_FRAME, None));
        for frame in [
            (&hot, &cold, Some(accesses.as_slice())),
            (&events, &IN_FRAME, Some(accesses.as_slice())),
        ] {
            assert_eq!(count(frame), every, "round {round}: {accesses:?}");
        }
        let within: usize = accesses.iter().map(|r| r.len()).sum();
        skipped += usize::from(within < events.height());
        counted += usize::from(!every[0].is_empty());
    }
    assert!(
        skipped > 5 && counted > 5,
        "{skipped} skipped, {counted} counted"
    );
}

/// Differential: on random access rows the hand-written counts, and the reduced records the
/// detector reads now ([`crate::reduce::Reach`]), agree with polars group-bys (what they
/// replaced) for every entity of two kinds: events, distinct accounts, distinct
/// accounts per day (their sum, the active days and the day list), the busiest UTC hour,
/// first and last instants, accounts other than the entity itself, own-account rows, and the
/// accounts new each day (what the cumulative reach charts add up).
#[test]
fn profiles_agree_with_polars_group_bys() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut next = |n: u64| rng.random_range(0..n);
    let kinds = ["access", "access", "access", "login"];
    // (ts, event type, principal, target account, source address)
    type Random<'a> = (i64, &'a str, String, Option<String>, Option<String>);
    let mut rows: Vec<Random> = Vec::new();
    for _ in 0..6000 {
        let principal = match next(4) {
            0 => format!("C{:04}", next(300)),
            _ => format!("u{}", next(40)),
        };
        let target = match next(20) {
            0 => None,
            1 => Some(principal.clone()),
            _ => Some(format!("C{:04}", next(300))),
        };
        let source = (next(15) > 0).then(|| format!("10.0.0.{}", next(25)));
        let ts = next(10) as i64 * DAY_MS + next(DAY_MS as u64) as i64;
        rows.push((ts, kinds[next(4) as usize], principal, target, source));
    }
    let cat = |name: &str, values: Vec<Option<String>>| {
        crate::frame::key_column(name, values).expect("codes")
    };
    let events = DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        cat(
            c::EVENT_TYPE,
            rows.iter().map(|r| Some(r.1.to_string())).collect(),
        ),
        cat(
            c::PRINCIPAL,
            rows.iter().map(|r| Some(r.2.clone())).collect(),
        ),
        cat(c::TARGET, rows.iter().map(|r| r.3.clone()).collect()),
        cat(c::SOURCE_IP, rows.iter().map(|r| r.4.clone()).collect()),
        cat(c::CREDENTIAL, vec![None; rows.len()]),
        cat(c::NETWORK, vec![None; rows.len()]),
    ])
    .expect("frame");
    let access = AccessRows::new(&events).expect("rows");
    let reach = crate::reduce::Reach::of(&events, &utc(), WALK).expect("reduce");
    for key in [c::PRINCIPAL, c::SOURCE_IP] {
        let rows = access
            .profiles(&events, key, WALK, 0, &utc())
            .expect("profiles");
        let theirs = polars_profiles(&events, key);
        // In name order, which enumeration judges them in.
        let names: Vec<&str> = (reach.profiles_by_name(key, 0).expect("profiles").iter())
            .map(|(e, _)| reach.name(*e))
            .collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{key}: {names:?}");
        assert_eq!(names.len(), theirs.len(), "{key}: entities by name");
        let least = reach.entities_at_least(key).expect("entities");
        assert_eq!(least, theirs.len() as u64, "{key}: held entities counted");
        for (way, ours) in [
            ("rows", rows),
            ("reduced", reach.profiles(key, 0).expect("profiles")),
        ] {
            assert_eq!(ours.len(), theirs.len(), "{way} {key}: entities");
            for (id, want) in &theirs {
                let p = &ours[id];
                let got = Expected {
                    events: p.events,
                    total: p.total.into(),
                    days: p.days.to_vec(),
                    peak_hour: p.peak_hour.into(),
                    first: p.first,
                    last: p.last,
                    others: p.others.into(),
                    own_rows: (key == c::SOURCE_IP).then_some(p.own_rows),
                };
                assert_eq!(&got, want, "{way} {key} {id}");
                assert_eq!(p.sum_daily, p.days.iter().map(|d| d.1).sum::<u64>());
                assert_eq!(p.active_days as usize, p.days.len());
            }
        }
        // The accounts new each day, which the cumulative reach charts add up.
        let want = polars_first_days(&events, key);
        assert!(want.values().any(|days| days.len() > 1), "{key}: {want:?}");
        let rows = access.first_days(&events, key, None, &utc());
        assert_eq!(rows.expect("first days"), want, "rows {key}: first days");
        let (reduced, symbols) = reach.held().expect("records held");
        let records = reduced.first_days(key, symbols, None);
        assert_eq!(records, want, "reduced {key}: first days");
    }
}

/// Per entity, how many accounts it touched for the first time on each UTC day, as polars
/// queries over the access rows that name an account: each (entity, account)'s first day, then
/// those counted by day.
fn polars_first_days(events: &DataFrame, key: &str) -> BTreeMap<String, Vec<(i64, u64)>> {
    let events = crate::normalize::networks::names_as_text(events, false).expect("text");
    let text = |name: &str| col(name).cast(DataType::String);
    let access = text(c::EVENT_TYPE).eq(lit("access"));
    let firsts = (events.clone().lazy())
        .filter(
            access
                .and(col(c::TARGET).is_not_null())
                .and(col(key).is_not_null()),
        )
        .group_by([text(key).alias("k"), col(c::TARGET)])
        .agg([(col(c::TS) / lit(DAY_MS)).min().alias("day")])
        .group_by([col("k"), col("day")])
        .agg([len().cast(DataType::UInt64).alias("n")])
        .sort(["k", "day"], SortMultipleOptions::default())
        .collect()
        .expect("polars query");
    let k = crate::frame::strs(&firsts, "k").expect("names");
    let day = i64s(&firsts, "day").expect("days");
    let n = crate::frame::u64s(&firsts, "n").expect("counts");
    let mut out: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
    for ((k, d), n) in k.into_iter().zip(day).zip(n) {
        out.entry(k).or_default().push((d, n));
    }
    out
}

#[derive(Debug, PartialEq)]
struct Expected {
    events: u64,
    total: u64,
    days: Vec<(i64, u64)>,
    peak_hour: u64,
    first: i64,
    last: i64,
    others: u64,
    own_rows: Option<u64>,
}

/// The same numbers as polars queries over the access rows that name an account.
fn polars_profiles(events: &DataFrame, key: &str) -> BTreeMap<String, Expected> {
    let events = crate::normalize::networks::names_as_text(events, false).expect("text");
    let text = |name: &str| col(name).cast(DataType::String);
    let rows = events
        .clone()
        .lazy()
        .filter(
            text(c::EVENT_TYPE)
                .eq(lit("access"))
                .and(col(c::TARGET).is_not_null())
                .and(col(key).is_not_null()),
        )
        .select([
            text(key).alias("k"),
            text(c::TARGET).alias("t"),
            text(c::PRINCIPAL).alias("p"),
            col(c::TS).alias("ts"),
            (col(c::TS) / lit(DAY_MS)).alias("day"),
            (col(c::TS) / lit(HOUR_MS)).alias("hour"),
        ]);
    let run = |lf: LazyFrame| {
        lf.sort(["k"], SortMultipleOptions::default())
            .collect()
            .expect("polars query")
    };
    let per_entity = run(rows.clone().group_by([col("k")]).agg([
        len().alias("events"),
        col("t").n_unique().alias("total"),
        col("ts").min().alias("first"),
        col("ts").max().alias("last"),
        col("t")
            .filter(col("t").neq(col("k")))
            .n_unique()
            .alias("others"),
        col("p").eq(col("t")).sum().alias("own"),
    ]));
    let per_day = run(rows
        .clone()
        .group_by([col("k"), col("day")])
        .agg([col("t").n_unique().alias("n")])
        .sort(["day"], SortMultipleOptions::default()));
    let per_hour = run(rows
        .group_by([col("k"), col("hour")])
        .agg([col("t").n_unique().alias("n")])
        .group_by([col("k")])
        .agg([col("n").max()]));
    let strs = |df: &DataFrame, name: &str| -> Vec<String> {
        let c = df.column(name).expect("column").str().expect("strings");
        c.iter().map(|v| v.unwrap_or("").to_string()).collect()
    };
    let nums = |df: &DataFrame, name: &str| -> Vec<i64> {
        let c = df.column(name).expect("column").cast(&DataType::Int64);
        let c = c.expect("numbers");
        c.i64()
            .expect("i64")
            .iter()
            .map(|v| v.unwrap_or(-1))
            .collect()
    };
    let mut out = BTreeMap::new();
    let ids = strs(&per_entity, "k");
    let [events, total, first, last, others, own] =
        ["events", "total", "first", "last", "others", "own"].map(|n| nums(&per_entity, n));
    for (i, id) in ids.iter().enumerate() {
        let e = Expected {
            events: events[i] as u64,
            total: total[i] as u64,
            days: Vec::new(),
            peak_hour: 0,
            first: first[i],
            last: last[i],
            others: others[i] as u64,
            own_rows: (key == c::SOURCE_IP).then_some(own[i] as u64),
        };
        out.insert(id.clone(), e);
    }
    let (ids, days, n) = (
        strs(&per_day, "k"),
        nums(&per_day, "day"),
        nums(&per_day, "n"),
    );
    for i in 0..ids.len() {
        let e = out.get_mut(&ids[i]).expect("entity");
        e.days.push((days[i], n[i] as u64));
    }
    for e in out.values_mut() {
        e.days.sort();
    }
    let (ids, n) = (strs(&per_hour, "k"), nums(&per_hour, "n"));
    for i in 0..ids.len() {
        out.get_mut(&ids[i]).expect("entity").peak_hour = n[i] as u64;
    }
    out
}

/// Differential: the related counts of a sample of each kind's entities (a network by its
/// addresses), the four questions in one pass, equal polars' group-by of the access rows that
/// name an account (what the pass replaced), with the keys wide or in one byte, the cold columns
/// in the frame or beside it, over every chunk or those that hold access rows alone.
#[test]
fn related_counts_agree_with_polars_group_bys() {
    use crate::frame::random;
    let dir = tempfile::tempdir().expect("dir");
    for seed in 0..4u64 {
        let events = random::events(seed, 3000);
        let offset = seed as usize % 3;
        let keys = random::some_names(&events, c::CREDENTIAL, offset);
        let principals = random::some_names(&events, c::PRINCIPAL, offset);
        let addresses = random::some_names(&events, c::SOURCE_IP, offset);
        let networks = random::some_networks(&events);
        let questions = [
            (c::CREDENTIAL, &keys, c::SOURCE_IP),
            (c::PRINCIPAL, &principals, c::SOURCE_IP),
            (c::SOURCE_IP, &addresses, c::PRINCIPAL),
            (c::NETWORK, &networks, c::SOURCE_IP),
        ];
        let sorted = |mut all: Vec<CountsWith>| {
            (all.iter_mut().flat_map(|q| q.values_mut())).for_each(|v| v.sort());
            all
        };
        let want = sorted(
            (questions.iter())
                .map(|(key, ids, other)| counts_with_by_polars(&events, key, ids, other))
                .collect::<Result<_>>()
                .expect("polars"),
        );
        assert!(want.iter().all(|q| q.len() >= 2), "seed {seed}: {want:?}");
        let mut narrow = events.clone();
        crate::frame::keys::narrow(&mut narrow, c::CREDENTIAL, 64, 255).expect("narrowed");
        let at = dir.path().join(seed.to_string());
        std::fs::create_dir(&at).expect("dir");
        let (hot, cold) = crate::reduce::tests::beside(&events, &at, &[700, 13, 251]);
        let types = crate::frame::event_type::TypesByChunk::of(&hot).expect("types");
        let accesses = types.ranges_of(&["access"]);
        for (way, frame) in [
            ("in the frame", (&events, &IN_FRAME, None)),
            ("one-byte keys", (&narrow, &IN_FRAME, None)),
            ("beside", (&hot, &cold, None)),
            ("access chunks", (&hot, &cold, Some(accesses.as_slice()))),
        ] {
            let got = sorted(counts_with_each(frame, &questions).expect("counts"));
            assert!(got == want, "seed {seed}, {way}");
        }
    }
}
