use super::*;

use crate::normalize::cold::IN_FRAME;
use crate::normalize::schema::{DAY_MS, HOUR_MS, TS_MAX, TS_MIN, col as c};

/// A given code gives its value (`join` of both when given twice); any other (below,
/// between or past the given ones, and the null code) gives none.
#[test]
fn a_code_table_gives_the_values_of_given_codes_only() {
    let table = CodeTable::new([(3, 7), (64, 0), (200, 9), (3, 5)], i64::min);
    assert_eq!(
        (table.get(3), table.get(64), table.get(200)),
        (Some(5), Some(0), Some(9))
    );
    for other in [0, 2, 4, 63, 65, 199, 201, 100_000, NULL] {
        assert_eq!(table.get(other), None, "{other}");
    }
    assert_eq!(CodeTable::new([], |_, b: i64| b).get(0), None);
}

/// A row is kept from its key's instant on; other keys, unknown keys and nulls never are,
/// whether the key and time columns are chunked alike or not.
#[test]
fn rows_since_keeps_each_key_from_its_instant() {
    let keys = [
        Some("k1"),
        Some("k2"),
        None,
        Some("k1"),
        Some("k3"),
        Some("k2"),
    ];
    let ts: Vec<i64> = vec![5, 5, 9, 10, 10, 20];
    let key_chunk = |range: std::ops::Range<usize>| {
        let values: Vec<Option<&str>> = keys[range].to_vec();
        key_column(c::CREDENTIAL, values)
            .expect("codes")
            .as_materialized_series()
            .clone()
    };
    let mut key_col = key_chunk(0..4);
    key_col.append(&key_chunk(4..6)).expect("append");
    let since = [
        ("k1".to_string(), 10),
        ("k2".to_string(), 0),
        ("absent".to_string(), 0),
    ];
    let want: Vec<IdxSize> = vec![1, 3, 5];
    // Keys in two chunks, instants in one.
    let df = DataFrame::new_infer_height(vec![
        key_col.into_column(),
        Column::new(c::TS.into(), ts.clone()),
    ])
    .expect("frame");
    assert_eq!(
        rows_since((&df, &IN_FRAME), c::CREDENTIAL, &since).expect("rows"),
        want
    );
    // Both in one chunk.
    let mut df = df;
    df.rechunk_mut();
    assert_eq!(
        rows_since((&df, &IN_FRAME), c::CREDENTIAL, &since).expect("rows"),
        want
    );
}

/// A random frame of keys (some null), token codes (some null) and instants, in three chunks.
fn keyed_frame(seed: u64) -> DataFrame {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut df: Option<DataFrame> = None;
    for len in [37, 0, 120] {
        let keys: Vec<Option<String>> = (0..len)
            .map(|_| {
                rng.random_bool(0.9)
                    .then(|| format!("key-{}", rng.random_range(0..6)))
            })
            .collect();
        let tokens: Vec<Option<u32>> = (0..len)
            .map(|_| rng.random_bool(0.7).then(|| rng.random_range(0..50)))
            .collect();
        let ts: Vec<i64> = (0..len).map(|_| rng.random_range(-50..1_000)).collect();
        let chunk = DataFrame::new_infer_height(vec![
            key_column(c::CREDENTIAL, keys).expect("keys"),
            Column::new(c::TOKEN.into(), tokens),
            Column::new(c::TS.into(), ts),
        ])
        .expect("frame");
        match df.as_mut() {
            Some(df) => {
                df.vstack_mut(&chunk).expect("vstack");
            }
            None => df = Some(chunk),
        }
    }
    df.expect("three chunks")
}

/// The rows of `df` whose credential is in `table` and whose instant passes `keep(instant,
/// the key's instant)`, in order, by polars' join and filter (what key lifecycle and
/// offboarding ran before).
fn joined_rows(
    df: &DataFrame,
    table: &[(String, i64)],
    keep: impl Fn(Expr, Expr) -> Expr,
) -> Vec<IdxSize> {
    let (ids, at): (Vec<String>, Vec<i64>) = table.iter().cloned().unzip();
    let table = DataFrame::new_infer_height(vec![
        key_column(c::CREDENTIAL, ids).expect("keys"),
        Column::new("at".into(), at),
    ])
    .expect("table");
    let used = col(c::CREDENTIAL).is_not_null();
    let rows = (df.clone().lazy().with_row_index("row", None).filter(used))
        .inner_join(table.lazy(), col(c::CREDENTIAL), col(c::CREDENTIAL))
        .filter(keep(col(c::TS), col("at")))
        .collect()
        .expect("join");
    let mut want: Vec<IdxSize> = u32s(&rows, "row").expect("rows");
    want.sort_unstable();
    want
}

/// The rows before a key's instant, one pass over the codes, against polars' filter and join
/// of the same (which key lifecycle ran before).
#[test]
fn rows_before_agree_with_polars() {
    for seed in 0..20 {
        let df = keyed_frame(seed);
        let before = [("key-0".to_string(), 400), ("key-3".to_string(), 10)];
        let want = joined_rows(&df, &before, |ts, at| ts.lt(at));
        let got = rows_before((&df, &IN_FRAME), c::CREDENTIAL, &before).expect("rows");
        assert_eq!(got, want, "seed {seed}");
    }
}

/// Several tables in one pass give each table's rows, as polars' join and filter of that
/// table alone does: tables sharing a key at other instants, a key in one table only, and
/// a key no row holds.
#[test]
fn rows_since_each_table_agree_with_polars() {
    let tables: [Vec<(String, i64)>; 2] = [
        vec![
            ("key-0".into(), 400),
            ("key-3".into(), 10),
            ("absent".into(), 0),
        ],
        vec![("key-0".into(), -20), ("key-5".into(), 700)],
    ];
    for seed in 0..20 {
        let df = keyed_frame(seed);
        let got = rows_since_each((&df, &IN_FRAME), c::CREDENTIAL, [&tables[0], &tables[1]])
            .expect("rows");
        for (table, got) in tables.iter().zip(&got) {
            let want = joined_rows(&df, table, |ts, at| ts.gt_eq(at));
            assert!(!want.is_empty(), "seed {seed}");
            assert_eq!(got, &want, "seed {seed}");
        }
    }
}

/// The principal waits beside ingest's frame: its cut-offs read it a run of chunks at a time
/// (here on disk, in uneven pieces) and find the rows they find with it in the frame.
#[test]
fn rows_of_a_key_beside_the_frame_are_the_rows_with_it_in_the_frame() {
    let table = [("key-0".to_string(), 400), ("key-3".to_string(), 10)];
    for seed in 0..10 {
        let mut df = keyed_frame(seed);
        let keys = df.column(c::CREDENTIAL).expect("keys").clone();
        df.with_column(keys.with_name(c::PRINCIPAL.into()))
            .expect("principal");
        let since = rows_since((&df, &IN_FRAME), c::PRINCIPAL, &table).expect("rows");
        let before = rows_before((&df, &IN_FRAME), c::PRINCIPAL, &table).expect("rows");
        assert!(!since.is_empty() && !before.is_empty(), "seed {seed}");
        let dir = tempfile::tempdir().expect("tmp");
        let (hot, cold) = crate::reduce::tests::beside(&df, dir.path(), &[7, 50, 1]);
        assert!(hot.column(c::PRINCIPAL).is_err());
        let frame = (&hot, &cold);
        assert_eq!(
            rows_since(frame, c::PRINCIPAL, &table).expect("rows"),
            since
        );
        assert_eq!(
            rows_before(frame, c::PRINCIPAL, &table).expect("rows"),
            before
        );
    }
}

/// Buckets are floor divisions, before and after 1970 and at the ends of the accepted range.
#[test]
fn buckets_floor_before_and_after_1970() {
    let ts = vec![TS_MIN, -1, 0, 1_735_700_400_000, TS_MAX];
    let df =
        DataFrame::new_infer_height(vec![Column::new(c::TS.into(), ts.clone())]).expect("frame");
    for ms in [DAY_MS, HOUR_MS] {
        let out = df
            .clone()
            .lazy()
            .select([ts_bucket(ms).alias("b")])
            .collect()
            .expect("query");
        let expected: Vec<i64> = ts.iter().map(|t| t.div_euclid(ms)).collect();
        assert_eq!(i64s(&out, "b").expect("buckets"), expected);
    }
}

/// First and last instant across chunks, the extremes in different chunks; none when empty.
#[test]
fn ts_range_spans_chunks() {
    let chunk = |ts: Vec<i64>| DataFrame::new_infer_height(vec![Column::new(TS.into(), ts)]);
    let mut df = chunk(vec![5, -3, 7]).expect("frame");
    df.vstack_mut(&chunk(vec![9, 0]).expect("frame"))
        .expect("vstack");
    df.vstack_mut(&chunk(vec![]).expect("frame"))
        .expect("vstack");
    assert_eq!(ts_range(&df).expect("range"), Some((-3, 9)));
    let empty = chunk(vec![]).expect("frame");
    assert_eq!(ts_range(&empty).expect("range"), None);
}
