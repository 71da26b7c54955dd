use super::*;
use crate::ingest::{Discovered, ReadOptions, read_events};
use crate::normalize::TimeParser;
use crate::normalize::cold::COLUMNS as COLD;
use crate::normalize::schema::col::{ACTION, USER_AGENT};

/// A partition reads back as the rows it was written from, whatever its strings' layout:
/// the partition's own codes (written now, in one row group or many, by a coder that wrote
/// another partition before), Parquet-dictionary strings (written from the thirteenth to the
/// twentieth session) or plain strings (the first version of the state).
#[test]
fn partitions_read_back_as_written_in_every_string_layout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("events.jsonl");
    let mut text = String::new();
    for i in 0..3000 {
        // User agents and actions on some rows only, new ones appearing late.
        let agent = match i % 4 {
            0 => String::new(),
            _ => format!(",\"user_agent\":\"ua{}\"", i % 3 + i / 2500),
        };
        let action = match i % 5 {
            0 => String::new(),
            _ => format!(",\"action\":\"GET /a/{}\"", i % 7 + i / 2000),
        };
        text.push_str(&format!(
            "{{\"timestamp\":\"2025-03-0{}T10:{:02}:00Z\",\"event_type\":\"access\",\"principal\":\"u{}\",\"credential_id\":\"k{}\",\"token_id\":\"t{}\",\"source_ip\":\"10.0.0.{}\",\"target_account\":\"C{}\",\"success\":{}{agent}{action}}}\n",
            1 + i % 9,
            i % 60,
            i % 17,
            i % 5,
            i / 3,
            i % 200,
            i % 700,
            i % 11 != 0
        ));
    }
    text.push_str(
        "{\"timestamp\":\"2025-03-01T00:00:00Z\",\"event_type\":\"login\",\"principal\":\"C5\"}\n",
    );
    std::fs::write(&input, text).expect("write input");
    let opts =
        ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).expect("options");
    let found = Discovered {
        events: vec![input],
        ..Discovered::default()
    };
    let ingested = read_events(&found, &opts, false).expect("reads");
    let mut events = ingested.events.clone();
    events.rechunk_mut();
    let mut coder = Coder::default();
    let first = dir.path().join("p0.parquet");
    let tail = events.slice(2000, 1001);
    write(&first, &tail, &ingested.tokens, &mut coder).expect("written");
    let coded = dir.path().join("p1.parquet");
    write(&coded, &events, &ingested.tokens, &mut coder).expect("written");
    let grouped = dir.path().join("p2.parquet");
    write_groups(&grouped, &events, &ingested.tokens, &mut coder, 500).expect("written");
    // The layouts of earlier sessions: categories as Parquet-dictionary strings, or plain.
    let mut df = events.drop(FILE).expect("no file index");
    let token = df
        .column(TOKEN)
        .expect("tokens")
        .u32()
        .expect("codes")
        .clone();
    let texts: StringChunked = token
        .iter()
        .map(|c| c.and_then(|c| ingested.tokens.text(c)))
        .collect();
    df.with_column(texts.with_name(TOKEN.into()).into_column())
        .expect("token texts");
    // Names were polars' categories then.
    for name in crate::frame::NAME_COLUMNS {
        let Ok(column) = df.column(name) else {
            continue;
        };
        let text = crate::frame::texts(column).expect("names");
        let categories = DataType::from_categories(Categories::global());
        let column = Column::new(name.into(), text).cast(&categories);
        df.with_column(column.expect("categories"))
            .expect("replaced");
    }
    let dictionary = dir.path().join("p3.parquet");
    ParquetWriter::new(File::create(&dictionary).expect("create"))
        .finish(&mut df)
        .expect("written");
    for name in df.get_column_names_owned() {
        let column = df.column(&name).expect("column");
        if matches!(column.dtype(), DataType::Categorical(..)) {
            let strings = column.cast(&DataType::String).expect("strings");
            df.with_column(strings).expect("replaced");
        }
    }
    let plain = dir.path().join("p4.parquet");
    ParquetWriter::new(File::create(&plain).expect("create"))
        .finish(&mut df)
        .expect("written");
    // The layout of the twenty-first and twenty-second sessions: strings coded, token ids
    // as strings.
    let mut v2 = ParquetReader::new(File::open(&coded).expect("open"))
        .finish()
        .expect("read");
    let ids: Vec<&str> = (v2.column(TOKENS).expect("list").str().expect("strings"))
        .iter()
        .flatten()
        .collect();
    let texts: StringChunked = (v2.column(TOKEN).expect("tokens").u32().expect("codes"))
        .iter()
        .map(|c| c.map(|c| ids[c as usize]))
        .collect();
    let mut v2 = (v2.with_column(texts.with_name(TOKEN.into()).into_column()))
        .expect("token texts")
        .drop(TOKENS)
        .expect("no list");
    let strings_coded = dir.path().join("p5.parquet");
    ParquetWriter::new(File::create(&strings_coded).expect("create"))
        .finish(&mut v2)
        .expect("written");
    // Batches of one row group each, read in reverse: each names its own rows and reads
    // the partition's strings whatever group listed them.
    let batched = batches_of(&grouped, 700, Lists::Place(&ingested.tokens)).expect("batches");
    assert!(batched.len() > 2, "{} batch(es)", batched.len());
    let mut dict = FileDict::default();
    let mut parts: Vec<Vec<DataFrame>> = (batched.iter().rev())
        .map(|b| read(b, 0, &ingested.tokens, &mut dict).expect("read back"))
        .collect();
    parts.reverse();
    let mut back = crate::frame::stack(parts.into_iter().flatten().map(Ok), "test")
        .expect("stacked")
        .expect("rows");
    back.rechunk_mut();
    assert!(back.equals_missing(&events), "batch by batch");
    for (path, want) in [
        (&first, &tail),
        (&coded, &events),
        (&grouped, &events),
        (&dictionary, &events),
        (&plain, &events),
        (&strings_coded, &events),
    ] {
        let mut dict = FileDict::default();
        let batched = batches(path, &ingested.tokens).expect("batches");
        let chunks: Vec<DataFrame> = (batched.iter())
            .flat_map(|b| read(b, 0, &ingested.tokens, &mut dict).expect("read back"))
            .collect();
        let mut back = crate::frame::stack(chunks.into_iter().map(Ok), "test")
            .expect("stacked")
            .expect("rows");
        back.rechunk_mut();
        let mut want = want.clone();
        want.rechunk_mut();
        assert!(back.equals_missing(&want), "{}", path.display());
        hot_and_cold_read_back(path, &want, &ingested.tokens);
    }
}

/// Read without its cold columns, a partition gives the other columns as [`read`] does, and
/// each row group's loader gives that group's cold columns, any of them in any order.
fn hot_and_cold_read_back(path: &Path, want: &DataFrame, tokens: &Tokens) {
    let mut dict = FileDict::default();
    let (mut hot, mut cold): (Vec<DataFrame>, Vec<DataFrame>) = (Vec::new(), Vec::new());
    for batch in batches_of(path, 700, Lists::Place(tokens)).expect("batches") {
        for (df, loader) in read_hot(&batch, 0, tokens, &mut dict).expect("read hot") {
            let all = loader(&COLD).expect("cold columns");
            assert_eq!(all.height(), df.height());
            let some = loader(&[ACTION, FILE]).expect("two cold columns");
            let picked = all.select([ACTION, FILE]).expect("picked");
            assert!(some.equals_missing(&picked), "{}", path.display());
            hot.push(df);
            cold.push(all);
        }
    }
    let stack = |parts: Vec<DataFrame>| {
        let mut all = crate::frame::stack(parts.into_iter().map(Ok), "test")
            .expect("stacked")
            .expect("rows");
        all.rechunk_mut();
        all
    };
    let (hot, cold) = (stack(hot), stack(cold));
    let hot_names: Vec<String> = (want.get_column_names().into_iter())
        .filter(|n| super::cold::held_in_frame(n.as_str()))
        .map(|n| n.to_string())
        .collect();
    let cold_want = want.select(COLD).expect("cold");
    assert!(hot.equals_missing(&want.select(hot_names).expect("hot")));
    assert!(cold.equals_missing(&cold_want), "{}", path.display());
    let agents = cold_want.column(USER_AGENT).expect("agents");
    assert!(agents.null_count() > 0 && agents.null_count() < agents.len());
}

/// A code past the partition's strings or token ids (a damaged or hand-made file) is an
/// error naming the partition, not a panic.
#[test]
fn a_code_beyond_the_partitions_strings_is_refused() {
    let dir = tempfile::tempdir().expect("temp dir");
    for bad_token in [false, true] {
        let path = dir.path().join(format!("p{}.parquet", u8::from(bad_token)));
        let layout = EventColumns::new().take_frame().expect("layout");
        let (good, bad) = ([Some(0u32), Some(0)], [Some(0u32), Some(7)]);
        let mut columns = Vec::new();
        for want in layout.columns() {
            let name = want.name().as_str();
            let column = match want.dtype() {
                DataType::Categorical(..) if bad_token => Column::new(name.into(), good),
                DataType::Categorical(..) => Column::new(name.into(), bad),
                _ if name == TOKEN && bad_token => Column::new(name.into(), bad),
                _ if name == TOKEN => Column::full_null(name.into(), 2, &DataType::String),
                dtype => Column::full_null(name.into(), 2, dtype),
            };
            columns.push(column);
            let list = match want.dtype() {
                DataType::Categorical(..) => format!("{SYMBOLS}{name}"),
                _ if name == TOKEN && bad_token => TOKENS.to_string(),
                _ => continue,
            };
            columns.push(Column::new(list.into(), [Some("a"), None]));
        }
        let mut df = DataFrame::new(2, columns).expect("frame");
        df = df.drop(FILE).expect("no file index");
        ParquetWriter::new(File::create(&path).expect("create"))
            .finish(&mut df)
            .expect("written");
        let mut dict = FileDict::default();
        let tokens = Tokens::default();
        let batched = batches(&path, &tokens).expect("batches");
        let err = read(&batched[0], 0, &tokens, &mut dict).expect_err("refused");
        assert!(
            err.to_string().contains("beyond the partition's strings"),
            "{err}"
        );
    }
}

/// A code under a null is whatever the file left there, in range or not, and stays null; the
/// same code on a row that is not null is refused.
#[test]
fn codes_under_nulls_are_left_as_nulls_whatever_they_are() {
    let local = |validity: [bool; 4]| {
        // The validity of an array with those nulls, under the codes wanted.
        let nulls: UInt32Chunked = validity.iter().map(|&v| v.then_some(0)).collect();
        let validity = nulls
            .downcast_iter()
            .next()
            .and_then(|a| a.validity().cloned());
        let arr = CodeArray::new(ArrowDataType::UInt32, vec![1u32, 99, 0, 2].into(), validity);
        UInt32Chunked::from_chunk_iter("c".into(), [arr])
    };
    let placed = [10, 11, 12];
    let got = mapped(Path::new("p"), &local([true, false, true, false]), &placed).expect("mapped");
    assert_eq!(
        got.iter().collect::<Vec<_>>(),
        [Some(11), None, Some(10), None]
    );
    let err = mapped(Path::new("p"), &local([true, true, true, false]), &placed)
        .expect_err("a code past the strings on a row");
    assert!(
        err.to_string().contains("beyond the partition's strings"),
        "{err}"
    );
}

#[test]
fn runs_hold_whole_row_groups_up_to_the_bound() {
    let m = 1 << 20;
    let groups = [m, m, m, 3 * m, 10, 10];
    let got: Vec<Vec<usize>> = (crate::frame::runs(&groups, BATCH_ROWS).into_iter())
        .map(|run| groups[run].to_vec())
        .collect();
    assert_eq!(got, vec![vec![m, m], vec![m], vec![3 * m], vec![10, 10]]);
    assert_eq!(crate::frame::runs(&[0], BATCH_ROWS), vec![0..1]);
    assert_eq!(crate::frame::runs(&[], BATCH_ROWS), vec![0..0]);
}

/// Differential: local codes mapped to the state's are polars' gather of the placed codes by
/// the local ones (nulls stay null), over random chunks with nulls, some over codes past the
/// strings and some over codes in range.
#[test]
fn mapped_codes_are_polars_gather_of_the_placed_codes() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for round in 0..30 {
        let strings = rng.random_range(1..200u32);
        let placed: Vec<u32> = (0..strings).map(|_| rng.random_range(0..1 << 20)).collect();
        let mut arrays = Vec::new();
        for _ in 0..rng.random_range(1..5) {
            let len = rng.random_range(0..300);
            let valid: Vec<bool> = (0..len).map(|_| rng.random_range(0..5) > 0).collect();
            let codes: Vec<u32> = (valid.iter())
                .map(|&v| match v || rng.random_bool(0.5) {
                    true => rng.random_range(0..strings),
                    false => rng.random_range(strings..strings + 1000),
                })
                .collect();
            // The validity of an array with those nulls, under the codes wanted.
            let nulls: UInt32Chunked = valid.iter().map(|&v| v.then_some(0)).collect();
            let validity = (nulls.downcast_iter().next()).and_then(|a| a.validity().cloned());
            arrays.push(CodeArray::new(
                ArrowDataType::UInt32,
                codes.into(),
                validity,
            ));
        }
        let local = UInt32Chunked::from_chunk_iter("c".into(), arrays);
        let got = mapped(Path::new("p"), &local, &placed).expect("mapped");
        let asked: IdxCa = local.iter().collect();
        let by_polars = Series::new("placed".into(), &placed)
            .take(&asked)
            .expect("gather");
        let want: Vec<Option<u32>> = by_polars.u32().expect("codes").iter().collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "round {round}");
    }
}
