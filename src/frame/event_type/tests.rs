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
    let strings = column.cast(&DataType::String).expect("to strings");
    let strings = strings.str().expect("strings");
    strings.iter().map(|s| s.map(str::to_string)).collect()
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
    assert_eq!(shared.dtype(), &crate::frame::cat_dtype());
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
    assert_eq!(code_at(arrays[0], 1), NO_TYPE);
    assert_eq!(code_at(arrays[0], 2), access);
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
