use super::*;

/// A frame whose event types are `names` (None: a null), through ingest's coder.
fn typed(names: &[Option<&str>]) -> Column {
    let mut coder = Coder::default();
    let codes = (names.iter())
        .map(|n| n.map_or(Ok(NO_TYPE), |n| coder.code(n)))
        .collect::<std::result::Result<Vec<u16>, String>>()
        .expect("few types");
    column("event_type", codes)
}

fn names_of(column: &Column) -> Vec<Option<String>> {
    crate::frame::texts(column).expect("names")
}

/// Coded, read back as strings, and through the shared dictionary and back: the same names and
/// nulls, one byte a row, and codes that two coders agree on.
#[test]
fn codes_round_trip_with_nulls() {
    let names = [
        Some("login"),
        None,
        Some("access"),
        Some("login"),
        Some("logout"),
    ];
    let column = typed(&names);
    assert_eq!(column.dtype(), &dtype());
    let want: Vec<Option<String>> = names.iter().map(|n| n.map(str::to_string)).collect();
    assert_eq!(names_of(&column), want);
    let shared = to_shared(&column).expect("shared");
    assert_eq!(shared.dtype(), &DataType::UInt32);
    assert_eq!(names_of(&shared), want);
    let back = from_shared(&shared).expect("back");
    assert_eq!(names_of(&back), want);
    let df = DataFrame::new_infer_height(vec![back]).expect("frame");
    let arrays = arrays(&df, "event_type").expect("arrays");
    let flat: Vec<u16> = arrays.iter().flat_map(|a| codes(a).into_owned()).collect();
    let (login, access) = (
        code("login").expect("login"),
        code("access").expect("access"),
    );
    assert_eq!(flat[..4], [login, NO_TYPE, access, login]);
    assert_eq!(code_at(&arrays[0], 1), NO_TYPE);
    assert_eq!(code_at(&arrays[0], 2), access);
    assert_eq!(Coder::default().code("access"), Ok(access));
    assert_eq!(name(access), Some("access"));
    assert_eq!(code("never-seen-type"), None);
}

/// The detectors' expressions compare the column with names, and frames holding it stack.
#[test]
fn polars_compares_and_stacks_the_column() {
    let df = DataFrame::new_infer_height(vec![
        typed(&[Some("login"), Some("access"), Some("login")]),
        Column::new("n".into(), vec![1i64, 2, 3]),
    ])
    .expect("frame");
    let mut both = df.clone();
    both.vstack_mut(&df).expect("stacked");
    let logins = (both.lazy())
        .filter(col("event_type").eq(lit("login")))
        .select([col("n").sum()])
        .collect()
        .expect("filtered");
    assert_eq!(crate::frame::i64s(&logins, "n").expect("sum"), vec![8]);
    let keys = crate::frame::key_column("event_type", vec!["access", "token_issued"]);
    let keys = keys.expect("keys");
    assert_eq!(keys.dtype(), &dtype());
    assert_eq!(names_of(&keys)[1].as_deref(), Some("token_issued"));
}

/// Narrowed to one byte, the column keeps its names, nulls and codes (read through [`Kinds`]),
/// is stored in the shared dictionary as before, compares with names and stacks; a bound under
/// the run's count of types leaves it in two bytes.
#[test]
fn one_byte_types_read_as_two() {
    let names = [
        Some("login"),
        None,
        Some("access"),
        Some("narrow-only-type"),
    ];
    let df = || DataFrame::new_infer_height(vec![typed(&names)]).expect("frame");
    let (mut one, two) = (df(), df());
    let held = TYPES.1.num_cats_upper_bound();
    assert!(!narrow(&mut one, "event_type", held - 1).expect("below the count"));
    assert!(one.column("event_type").expect("c").cat16().is_ok());
    assert!(narrow(&mut one, "event_type", MAX_ONE_BYTE).expect("narrows"));
    assert!(narrow(&mut one, "event_type", 0).expect("already"));
    assert!(one.column("event_type").expect("c").cat8().is_ok());
    let flat = |df: &DataFrame| -> Vec<u16> {
        let arrays = arrays(df, "event_type").expect("arrays");
        arrays.iter().flat_map(|k| codes(k).into_owned()).collect()
    };
    assert_eq!(flat(&one), flat(&two));
    let kinds = arrays(&one, "event_type").expect("arrays");
    assert!(matches!(kinds[0], Kinds::One(_)));
    assert_eq!(code_at(&kinds[0], 1), NO_TYPE);
    assert_eq!(code_at(&kinds[0], 2), code("access").expect("access"));
    let column = |df: &DataFrame| df.column("event_type").expect("c").clone();
    assert_eq!(names_of(&column(&one)), names_of(&column(&two)));
    let (s1, s2) = (
        to_shared(&column(&one)).expect("one"),
        to_shared(&column(&two)).expect("two"),
    );
    assert!(
        s1.as_materialized_series()
            .equals_missing(s2.as_materialized_series())
    );
    let mut both = one.clone();
    both.vstack_mut(&one).expect("stacked");
    let logins = (both.lazy())
        .filter(col("event_type").eq(lit("access")))
        .collect()
        .expect("filtered");
    assert_eq!(logins.height(), 2);
}

/// Widened back, a one-byte column is the two-byte one it was, codes and nulls.
#[test]
fn one_byte_types_widen_to_the_column_they_were() {
    let names = [Some("access"), None, Some("widen-only-type")];
    let mut df = DataFrame::new_infer_height(vec![typed(&names)]).expect("frame");
    let before = df.column("event_type").expect("c").clone();
    assert!(widened(&before).expect("two bytes").is_none());
    assert!(narrow(&mut df, "event_type", MAX_ONE_BYTE).expect("narrows"));
    let wide = widened(df.column("event_type").expect("c")).expect("widened");
    let wide = wide.expect("a one-byte column widens");
    assert_eq!(wide.dtype(), before.dtype());
    assert!(
        wide.as_materialized_series()
            .equals_missing(before.as_materialized_series())
    );
}

/// A frame of random event types (some rows null) and a flag, in chunks that hold one or two
/// types each, as a file per source gives, and one holding them all.
fn typed_chunks(seed: u64) -> DataFrame {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let kinds = ["access", "login", "token_issued", "logout"];
    let sources: [(usize, &[&str]); 6] = [
        (40, &kinds[..1]),
        (0, &kinds[..]),
        (25, &kinds[1..2]),
        (30, &kinds[..1]),
        (33, &kinds[..2]),
        (50, &kinds[..]),
    ];
    let chunk = |(len, of): (usize, &[&str])| {
        let names: Vec<Option<&str>> = (0..len)
            .map(|_| {
                rng.random_bool(0.95)
                    .then(|| of[rng.random_range(0..of.len())])
            })
            .collect();
        let ok: Vec<bool> = (0..len).map(|_| rng.random_bool(0.5)).collect();
        DataFrame::new_infer_height(vec![typed(&names), Column::new("ok".into(), ok)])
            .expect("frame")
    };
    let mut chunks = sources.into_iter().map(chunk);
    let mut df = chunks.next().expect("a chunk");
    for more in chunks {
        df.vstack_mut(&more).expect("vstack");
    }
    df
}

/// The rows a question on a few types finds, asked of the chunks that hold them alone, are
/// polars' filter of the same over every row, in both widths; a type no row has finds none,
/// and `holds` says which types some row has.
#[test]
fn rows_of_types_agree_with_polars_over_every_row() {
    let asked: [&[&str]; 4] = [
        &["login"],
        &["token_issued", "logout"],
        &["access"],
        &["never"],
    ];
    for seed in 0..12 {
        let mut df = typed_chunks(seed);
        if seed % 2 == 1 {
            assert!(narrow(&mut df, "event_type", MAX_ONE_BYTE).expect("narrow"));
        }
        assert!(df.column("event_type").expect("types").n_chunks() >= 5);
        let index = TypesByChunk::of(&df).expect("index");
        for types in asked {
            let of_types = (types.iter())
                .map(|t| col("event_type").eq(lit(*t)))
                .reduce(Expr::or)
                .expect("a type");
            let mask = crate::frame::mask_of(&df, of_types.and(col("ok"))).expect("mask");
            let want = crate::normalize::cold::rows_of(&mask);
            let got = index.rows(&df, types, col("ok")).expect("rows");
            assert_eq!(got, want, "seed {seed}, types {types:?}");
            // Asked a few rows at a time, pieces that cut chunks: the same rows, in order.
            let mut pieces = Vec::new();
            let mut collect = |piece: Vec<IdxSize>| {
                assert!(piece.len() <= 7);
                pieces.extend(piece);
                Ok(())
            };
            (index.rows_in_pieces_of(7, &df, (types, col("ok")), &mut collect)).expect("pieces");
            assert_eq!(pieces, want, "seed {seed}, types {types:?}, in pieces");
            let any = crate::frame::mask_of(&df, col("event_type").eq(lit(types[0])))
                .expect("mask")
                .any();
            assert_eq!(index.holds(types[0]), any, "seed {seed}, {}", types[0]);
        }
    }
}
