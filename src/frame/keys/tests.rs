use super::*;
use crate::frame::{code_arrays, key_column, strs};

/// A frame of one key column in the shared dictionary, in chunks of `parts` (None: a null).
/// Other strings are placed in the dictionary first, so the keys' shared codes are never the
/// 0, 1, 2… of their own and a reading that mixed the two fails.
fn keyed(parts: &[&[Option<&str>]]) -> DataFrame {
    let tag: Vec<&str> = parts
        .iter()
        .flat_map(|p| p.iter().flatten().copied())
        .collect();
    for i in 0..8 {
        dictionary()
            .insert(&format!("before {} {i}", tag.join(",")))
            .expect("placed");
    }
    let mut df: Option<DataFrame> = None;
    for part in parts {
        let values: Vec<Option<&str>> = part.to_vec();
        let column = key_column("credential_id", values).expect("keys");
        let next = DataFrame::new_infer_height(vec![column]).expect("frame");
        match df.as_mut() {
            None => df = Some(next),
            Some(acc) => _ = acc.vstack_mut(&next).expect("stack"),
        }
    }
    df.expect("a part")
}

/// Each chunk's codes as the shared dictionary's, row by row and as a slice.
fn shared_codes_of(df: &DataFrame) -> Vec<Vec<u32>> {
    let arrays = code_arrays(df, "credential_id").expect("codes");
    for a in &arrays {
        let each: Vec<u32> = (0..a.len()).map(|i| a.at(i)).collect();
        assert_eq!(each, a.values().into_owned());
    }
    arrays.iter().map(|a| a.values().into_owned()).collect()
}

fn lengths(df: &DataFrame) -> Vec<usize> {
    let cats = df.column("credential_id").expect("column");
    let series = cats.as_materialized_series();
    series.chunks().iter().map(|a| a.len()).collect()
}

/// Narrowed, the column reads as the same shared codes, chunk by chunk and row by row, casts to
/// the same names with its nulls, keeps its chunks' lengths and is two bytes a row.
#[test]
fn narrowed_keys_read_as_the_shared_codes() {
    let mut df = keyed(&[
        &[Some("kid-zulu"), None, Some("kid-alpha"), Some("kid-alpha")],
        &[None, Some("kid-mike")],
        &[Some("kid-zulu"), Some("kid-mike"), None],
    ]);
    let (before, names, chunks) = (
        shared_codes_of(&df),
        strs(&df, "credential_id"),
        lengths(&df),
    );
    let bytes = df.estimated_size();
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_some()
    );
    assert_eq!(shared_codes_of(&df), before);
    assert_eq!(
        strs(&df, "credential_id").expect("names"),
        names.expect("names")
    );
    assert_eq!(lengths(&df), chunks);
    assert!(df.column("credential_id").expect("c").cat16().is_ok());
    assert!(df.estimated_size() < bytes);
    // Narrowed once, it is held narrow and left as it is.
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("again")
            .is_some()
    );
    assert_eq!(shared_codes_of(&df), before);
    // Nulls stay nulls under polars' own reading too.
    let nulls = df.column("credential_id").expect("c").null_count();
    assert_eq!(nulls, 3);
}

/// Own codes follow the shared ones, so ordering by the physical codes is unchanged.
#[test]
fn own_codes_keep_the_shared_order() {
    let names = ["kid-3", "kid-1", "kid-2", "kid-1"];
    let mut df = keyed(&[&names.map(Some)]);
    let n = Column::new("n".into(), [1u32, 2, 3, 4]);
    df.insert_column(0, n.clone()).expect("before");
    df.with_column(n.with_name("m".into())).expect("after");
    let shared: Vec<u32> = shared_codes_of(&df).concat();
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_some()
    );
    // In its place among the others.
    assert_eq!(df.get_column_names(), ["n", "credential_id", "m"]);
    let cats = df
        .column("credential_id")
        .expect("c")
        .cat16()
        .expect("cat16")
        .clone();
    let own: Vec<u16> = cats.physical().into_no_null_iter().collect();
    for i in 0..names.len() {
        for j in 0..names.len() {
            assert_eq!(
                shared[i].cmp(&shared[j]),
                own[i].cmp(&own[j]),
                "rows {i}, {j}"
            );
        }
    }
}

/// More distinct keys than two bytes hold: the column stays as it was.
#[test]
fn more_keys_than_two_bytes_hold_stay_wide() {
    let names: Vec<String> = (0..=MAX_KEYS).map(|i| format!("many-keys-{i}")).collect();
    let values: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
    let mut df = keyed(&[&values]);
    let before = shared_codes_of(&df);
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_none()
    );
    assert_eq!(
        df.column("credential_id").expect("c").dtype(),
        &DataType::UInt32
    );
    assert_eq!(shared_codes_of(&df), before);
    // One fewer fits, unless the bound asked is lower still.
    let mut fewer = keyed(&[&values[1..]]);
    assert!(
        narrow(&mut fewer, "credential_id", MAX_KEYS - 1, 0)
            .expect("bound")
            .is_none()
    );
    assert!(
        narrow(&mut fewer, "credential_id", 0, 0)
            .expect("never")
            .is_none()
    );
    assert!(
        narrow(&mut fewer, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_some()
    );
}

/// Shared codes asked in the column's own: present ones map, nulls stay null, and a key no row
/// holds becomes a code no row holds, so `!=` against it holds and `is_in` never matches it.
#[test]
fn shared_codes_in_the_columns_own() {
    let mut df = keyed(&[&[Some("own-a"), Some("own-b"), None]]);
    let absent = key_column("x", vec!["own-never-in-a-row"]).expect("absent");
    let absent = absent.u32().expect("codes").get(0).expect("code");
    let (a, b) = (dictionary().code("own-a"), dictionary().code("own-b"));
    let asked = vec![a, None, b, Some(absent)];
    assert_eq!(
        physical_codes(&df, "credential_id", asked.clone()).expect("wide"),
        asked
    );
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_some()
    );
    let own = physical_codes(&df, "credential_id", asked).expect("narrow");
    assert_eq!(own, vec![Some(0), None, Some(1), Some(NULL)]);
    let names = ["own-b".to_string(), "own-never-in-a-row".to_string()];
    let series = physical_series(&df, "credential_id", &names).expect("series");
    assert_eq!(series.dtype(), &DataType::UInt16);
    let kept = physically_in(&df, series);
    assert_eq!(strs(&kept, "credential_id").expect("names"), ["own-b"]);
}

/// The rows of `df` whose key's physical code is in `series`.
fn physically_in(df: &DataFrame, series: Series) -> DataFrame {
    (df.clone().lazy())
        .filter(
            col("credential_id")
                .to_physical()
                .is_in(lit(series).implode(false), false),
        )
        .collect()
        .expect("filter")
}

/// Widened back for a store, a narrowed column is the one it was, codes and nulls; any other
/// column is left to the caller.
#[test]
fn widened_keys_are_the_shared_column_again() {
    let mut df = keyed(&[&[Some("wide-a"), None], &[Some("wide-b"), Some("wide-a")]]);
    let before = df.column("credential_id").expect("c").clone();
    assert!(widened(&before).expect("wide").is_none());
    assert!(
        narrow(&mut df, "credential_id", MAX_KEYS, 0)
            .expect("narrow")
            .is_some()
    );
    let wide = widened(df.column("credential_id").expect("c")).expect("widened");
    let wide = wide.expect("a narrow column widens");
    assert_eq!(wide.dtype(), before.dtype());
    assert!(
        wide.as_materialized_series()
            .equals_missing(before.as_materialized_series())
    );
}

/// Where the run's keys fit in one byte, the column takes one byte a row and reads, compares,
/// filters and widens exactly as in two; a key more than one byte holds gives two bytes.
#[test]
fn keys_in_one_byte_read_as_in_two() {
    let rows: [&[Option<&str>]; 2] = [
        &[Some("one-byte-c"), None, Some("one-byte-a")],
        &[Some("one-byte-b"), Some("one-byte-c")],
    ];
    let (mut one, mut two) = (keyed(&rows), keyed(&rows));
    let before = one.column("credential_id").expect("c").clone();
    assert_eq!(
        narrow(&mut one, "credential_id", MAX_KEYS, MAX_ONE_BYTE).expect("one"),
        Some(1)
    );
    assert_eq!(
        narrow(&mut two, "credential_id", MAX_KEYS, 2).expect("two"),
        Some(2)
    );
    assert_eq!(
        narrow(&mut one, "credential_id", MAX_KEYS, 0).expect("again"),
        Some(1)
    );
    assert!(one.column("credential_id").expect("c").cat8().is_ok());
    assert!(one.estimated_size() < two.estimated_size());
    assert_eq!(shared_codes_of(&one), shared_codes_of(&two));
    assert_eq!(
        strs(&one, "credential_id").expect("names"),
        strs(&two, "credential_id").expect("names")
    );
    let wide = widened(one.column("credential_id").expect("c")).expect("widened");
    let wide = wide.expect("a one-byte column widens");
    assert!(
        wide.as_materialized_series()
            .equals_missing(before.as_materialized_series())
    );
    let names = ["one-byte-c".to_string()];
    for df in [&one, &two] {
        let series = physical_series(df, "credential_id", &names).expect("series");
        assert_eq!(physically_in(df, series).height(), 2);
    }
    let names: Vec<String> = (0..=MAX_ONE_BYTE)
        .map(|i| format!("byte-keys-{i}"))
        .collect();
    let values: Vec<Option<&str>> = names.iter().map(|n| Some(n.as_str())).collect();
    let mut many = keyed(&[&values]);
    let got = narrow(&mut many, "credential_id", MAX_KEYS, MAX_ONE_BYTE).expect("narrow");
    assert_eq!(got, Some(2));
    let mut fewer = keyed(&[&values[1..]]);
    let got = narrow(&mut fewer, "credential_id", MAX_KEYS, MAX_ONE_BYTE).expect("narrow");
    assert_eq!(got, Some(1));
    assert_eq!(
        strs(&fewer, "credential_id").expect("names").len(),
        MAX_ONE_BYTE
    );
}

/// The highest code of a chunk, folded a bitmap word at a time, is the row-by-row maximum of
/// [`Codes::at`] without nulls and [`NULL`]: at every length around a word's 64 rows, at offsets
/// into a sliced array (its bitmap no longer starts on a word), with no nulls, a few or all,
/// with [`NULL`] itself as a valid value, and with values under the nulls above every code.
#[test]
fn highest_code_folded_by_words_is_the_row_by_row_maximum() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(21);
    let by_rows = |codes: &Codes| {
        (0..codes.len())
            .map(|i| codes.at(i))
            .filter(|&c| c != NULL)
            .max()
    };
    for round in 0..400 {
        let n = [0, 1, 63, 64, 65, 127, 128, 129, 1000][round % 9] + rng.random_range(0..3);
        let nulls = [0.0, 0.05, 0.9, 1.0][round % 4];
        let values: Vec<Option<u32>> = (0..n)
            .map(|_| match rng.random_bool(nulls) {
                true => None,
                false if rng.random_bool(0.02) => Some(NULL),
                false => Some(rng.random_range(0..5_000)),
            })
            .collect();
        let mut array = CodeArray::from(values.clone());
        if nulls > 0.0 {
            // What lies under a null slot must not count: values far above every code.
            let under: Vec<u32> = (values.iter())
                .map(|v| v.unwrap_or(4_000_000_000))
                .collect();
            array = CodeArray::from_vec(under).with_validity(array.validity().cloned());
        }
        let offset = rng.random_range(0..=n.min(70));
        let sliced = array.clone().sliced(offset, n - offset);
        for a in [&array, &sliced] {
            let codes = Codes::Wide(a);
            assert_eq!(codes.highest(), by_rows(&codes), "round {round}, {n} rows");
        }
    }
}
