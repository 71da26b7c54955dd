use super::*;
use crate::frame::key_column;

/// A frame of `n` rows with the cold columns in it (nulls among user agents and actions),
/// and the same rows with the cold columns handed to a sink in chunks of uneven sizes, to
/// disk past `spill_from` rows, some with their line numbers shifted as a later part of a
/// file.
pub(super) fn both(n: usize, dir: &Path, spill_from: u64) -> (DataFrame, DataFrame, ColdColumns) {
    let text = |i: usize, m: usize| (!i.is_multiple_of(m)).then(|| format!("v{}", i % m));
    let full = DataFrame::new(
        n,
        vec![
            // Every instant once, out of order, some before 1970.
            Column::new(
                col::TS.into(),
                (0..n as i64)
                    .map(|i| (i * 7_919) % n as i64 - 250)
                    .collect::<Vec<_>>(),
            ),
            Column::new(
                col::SUCCESS.into(),
                (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
            ),
            key_column(
                col::PRINCIPAL,
                (0..n).map(|i| text(i, 7)).collect::<Vec<_>>(),
            )
            .expect("principal"),
            key_column(
                col::USER_AGENT,
                (0..n).map(|i| text(i, 5)).collect::<Vec<_>>(),
            )
            .expect("agent"),
            key_column(col::ACTION, (0..n).map(|i| text(i, 3)).collect::<Vec<_>>())
                .expect("action"),
            Column::new(
                col::FILE.into(),
                (0..n as u32).map(|i| i / 40).collect::<Vec<_>>(),
            ),
            Column::new(
                col::LINE.into(),
                (0..n as u64).map(|i| i * 3 + 1).collect::<Vec<_>>(),
            ),
            Column::new(
                col::TOKEN.into(),
                (0..n as u32)
                    .map(|i| (i % 4 != 0).then_some(i / 2))
                    .collect::<Vec<_>>(),
            ),
            key_column(col::TARGET, (0..n).map(|i| text(i, 11)).collect::<Vec<_>>())
                .expect("target"),
            key_column(
                col::SOURCE_IP,
                (0..n)
                    .map(|i| (!i.is_multiple_of(9)).then(|| format!("203.0.{}.{}", i % 13, i % 5)))
                    .collect::<Vec<_>>(),
            )
            .expect("address"),
        ],
    )
    .expect("frame");
    let sink = ColdSink::new(dir, spill_from);
    let (mut hot, mut order, mut at) = (None::<DataFrame>, Vec::new(), 0);
    for size in [1, 17, 64, 3, 100, 250, 1, 90].iter().cycle() {
        if at >= n {
            break;
        }
        let len = (*size).min(n - at);
        let mut piece = full.slice(at as i64, len);
        // A later part of a split file: its lines counted from the part's start.
        let offset = if at % 2 == 0 { 0 } else { 1 + at as u64 * 3 };
        if offset > 0 {
            let shifted = piece.column(col::LINE).expect("line").clone() - offset;
            piece.with_column(shifted).expect("shift");
        }
        let mut chunk = sink.take(&mut piece).expect("taken");
        chunk.shift_lines(offset);
        order.push(chunk);
        match hot.as_mut() {
            None => hot = Some(piece),
            Some(acc) => {
                acc.vstack_mut(&piece).expect("stack");
            }
        }
        at += len;
    }
    let cold = sink.finish(&order).expect("finished");
    (full, hot.expect("rows"), cold)
}

fn rows(n: usize, count: usize, seed: u64) -> Vec<IdxSize> {
    let mut x = seed;
    (0..count)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((x >> 33) % n as u64) as IdxSize
        })
        .collect()
}

const ALL: [&str; 8] = [
    col::LINE,
    col::TS,
    col::ACTION,
    col::PRINCIPAL,
    col::TOKEN,
    col::FILE,
    col::TARGET,
    col::USER_AGENT,
];

/// `count` random rows of `full` (sorted, each once), and those of them with a target.
fn with_target(full: &DataFrame, count: usize, seed: u64) -> (Vec<IdxSize>, Vec<IdxSize>) {
    let mut asked = rows(full.height(), count, seed);
    asked.sort_unstable();
    asked.dedup();
    let targets = full.column(col::TARGET).expect("target");
    let want = (asked.iter().copied())
        .filter(|&r| !targets.get(r as usize).expect("row").is_null())
        .collect();
    (asked, want)
}

/// Every row's `names` read a run at a time ([`ColdColumns::runs`], runs of about `rows`),
/// stacked, with each piece's first row checked and each column of one chunk; and how many
/// runs there were.
fn by_runs(
    cold: &ColdColumns,
    frame: &DataFrame,
    names: &[&str],
    rows: usize,
) -> (DataFrame, usize) {
    let (mut out, mut next, mut runs) = (None::<DataFrame>, 0, 0);
    cold.runs(frame, names, rows, |run| {
        runs += 1;
        for (first, piece) in run {
            assert_eq!(first, next);
            next += piece.height();
            assert!(piece.columns().iter().all(|c| c.n_chunks() == 1));
            match out.as_mut() {
                None => out = Some(piece),
                Some(acc) => {
                    acc.vstack_mut(&piece).expect("stack");
                }
            }
        }
        Ok(())
    })
    .expect("runs");
    assert_eq!(next, frame.height());
    (out.expect("rows"), runs)
}

#[test]
fn rows_read_beside_the_frame_equal_the_frame_s_own() {
    for (spill_from, on_disk) in [(0, true), (500, true), (1_000, false)] {
        let dir = tempfile::tempdir().expect("dir");
        let (full, hot, cold) = both(1_000, dir.path(), spill_from);
        let files = std::fs::read_dir(dir.path()).expect("dir").count();
        assert_eq!(files, if on_disk { cold.chunks() } else { 0 });
        // What the frame no longer holds under every stage.
        assert!(COLUMNS.iter().all(|n| hot.column(n).is_err()));
        same_rows(&full, &hot, &cold);
        // Ingest copies a big frame into chunks of its own cut (`frame::compact`).
        let compacted = crate::frame::compact(hot, 300, &[450, 550]).expect("compacted");
        same_rows(&full, &compacted, &cold);
        // The frame's span of time, from what the sink saw of each chunk; rows by instant.
        let range = Some((-250, 1_000 - 1 - 250));
        assert_eq!(cold.ts_range(&compacted).expect("range"), range);
        assert_eq!(IN_FRAME.ts_range(&full).expect("range"), range);
        let keep = |t: i64| t % 7 == 3 || t < -200;
        let want: BooleanChunked = (crate::frame::i64s(&full, col::TS).expect("ts").into_iter())
            .map(|t| Some(keep(t)))
            .collect();
        for (source, frame) in [(&cold, &compacted), (&IN_FRAME, &full)] {
            let got = source.instants_where(frame, keep).expect("mask");
            assert!(got.equal_missing(&want).all(), "rows by instant");
        }
        // Every address the chunks held is listed, and nothing else: the networks are learned
        // from the list instead of the column (`networks::lookup`).
        let mut want: Vec<u32> = crate::frame::codes(&full, col::SOURCE_IP).expect("codes");
        want.retain(|&c| c != crate::frame::NULL);
        want.sort_unstable();
        want.dedup();
        assert_eq!(want.len(), 65, "13 × 5 addresses");
        let listed: Vec<u32> = cold.addresses().expect("listed").iter().collect();
        assert_eq!(listed, want);
    }
}

/// The spans of every row are the chunks themselves, as finding them row by row gives; with a
/// time window's rows kept, row by row.
#[test]
fn spans_of_every_row_are_the_chunks_as_found_row_by_row() {
    let dir = tempfile::tempdir().expect("dir");
    let (full, hot, mut cold) = both(1_000, dir.path(), 0);
    let view = |spans: Vec<Span>| -> Vec<_> {
        (spans.into_iter())
            .map(|s| (s.rows, s.part, s.local))
            .collect()
    };
    let all = view(cold.spans(&hot));
    assert!(
        all.len() > 3 && all.iter().all(|s| s.2.is_none()),
        "{all:?}"
    );
    assert_eq!(all, view(cold.spans_of(0..hot.height() as IdxSize)));
    let mask: BooleanChunked = (0..full.height()).map(|i| Some(i % 7 != 0)).collect();
    let kept = hot.filter(&mask).expect("filtered");
    cold.retain(&mask);
    let some = view(cold.spans(&kept));
    assert!(some.iter().any(|s| s.2.is_some()), "{some:?}");
    assert_eq!(some, view(cold.spans_of(0..kept.height() as IdxSize)));
}

/// The rows a mask selects, read from its bits, against polars' own iterator row by row: chunks
/// of uneven lengths, sliced ones (their bits start inside a byte), nulls true and false
/// underneath, sparse and dense.
#[test]
fn rows_of_a_mask_are_those_polars_iterates_as_true() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for density in [2u64, 7, 1000] {
        let mut mask = BooleanChunked::from_slice("m".into(), &[]);
        for len in [0usize, 1, 63, 64, 65, 1000, 4099] {
            let values: Vec<bool> = (0..len + 13)
                .map(|_| next().is_multiple_of(density))
                .collect();
            let valid: Vec<bool> = (0..len + 13).map(|_| !next().is_multiple_of(16)).collect();
            // Bits set under some nulls: polars' own constructors clear them.
            let (values, valid) = (
                BooleanChunked::from_slice("m".into(), &values),
                BooleanChunked::from_slice("m".into(), &valid),
            );
            let (values, valid) = (values.downcast_as_array(), valid.downcast_as_array());
            let array = values.clone().with_validity(Some(valid.values().clone()));
            let chunk = BooleanChunked::with_chunk("m".into(), array);
            // Past the slice's start, so the chunk's bits begin inside a byte.
            mask.append(&chunk.slice(5, len)).expect("appended");
        }
        assert!(mask.chunks().len() > 1);
        let row_by_row: Vec<IdxSize> = (mask.iter().zip(0..))
            .filter(|(m, _)| m.unwrap_or(false))
            .map(|(_, r)| r)
            .collect();
        assert!(!row_by_row.is_empty());
        assert_eq!(rows_of(&mask), row_by_row, "one true in {density}");
    }
}

/// Once a run is past `spill_from` rows, the chunks held until then go to disk at once, not at
/// the end of ingest.
#[test]
fn chunks_held_go_to_disk_once_the_run_is_past_the_bound() {
    let dir = tempfile::tempdir().expect("dir");
    let (full, ..) = both(100, dir.path(), 1_000);
    let dir = tempfile::tempdir().expect("dir");
    let sink = ColdSink::new(dir.path(), 50);
    let on_disk = || std::fs::read_dir(dir.path()).expect("dir").count();
    for (at, expected) in [(0, 0), (20, 0), (40, 3), (60, 4)] {
        let mut piece = full.slice(at, 20);
        sink.take(&mut piece).expect("taken");
        assert_eq!(on_disk(), expected, "after the rows from {at}");
    }
}

/// A run shown to be big before its bound (`big_run`) writes the chunks held so far with its
/// next chunk, and every later one, and reads back the same rows as one held whole.
#[test]
fn chunks_go_to_disk_from_an_early_spill_on() {
    // `big_run` sets the allocator's purge delay, which another test checks.
    let _delay = crate::memory::tests::PURGE_DELAY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("dir");
    let (full, ..) = both(100, dir.path(), 1_000);
    let dir = tempfile::tempdir().expect("dir");
    let sink = ColdSink::new(dir.path(), 1_000);
    let on_disk = || std::fs::read_dir(dir.path()).expect("dir").count();
    let (mut hot, mut order) = (Vec::new(), Vec::new());
    for (at, expected) in [(0, 0), (20, 0), (40, 3), (60, 4), (80, 5)] {
        if at == 40 {
            assert_eq!(sink.spilling(), None);
            sink.big_run();
            assert_eq!(sink.spilling(), Some(dir.path()));
        }
        let mut piece = full.slice(at, 20);
        order.push(sink.take(&mut piece).expect("taken"));
        hot.push(piece);
        assert_eq!(on_disk(), expected, "after the rows from {at}");
    }
    let cold = sink.finish(&order).expect("finished");
    let hot = crate::frame::stack(hot.into_iter().map(Ok), "test").expect("stacked");
    let hot = hot.expect("rows");
    let asked: Vec<IdxSize> = (0..100).step_by(3).collect();
    let got = cold.select(&hot, &ALL, &asked).expect("selected");
    let expected = IN_FRAME.select(&full, &ALL, &asked).expect("selected");
    assert!(got.equals_missing(&expected), "{got}\n{expected}");
    crate::memory::keep_freed_pages();
}

fn same_rows(full: &DataFrame, hot: &DataFrame, cold: &ColdColumns) {
    // Rows 82..85 are one chunk of three (see `both`): three rows of it, one of them twice,
    // are not the whole chunk.
    let repeats = vec![83, 82, 82];
    let random = [(1, 0), (2, 1), (3, 50), (4, 3_000)].map(|(seed, n)| rows(1_000, n, seed));
    for want in random.into_iter().chain([repeats]) {
        let got = cold.select(hot, &ALL, &want).expect("selected");
        let expected = IN_FRAME.select(full, &ALL, &want).expect("selected");
        assert!(got.equals_missing(&expected), "{got}\n{expected}");
        // The rows themselves, asked for among cold columns, in the frame or beside it.
        for (source, frame) in [(cold, hot), (&IN_FRAME, full)] {
            let named = source
                .select(frame, &[col::LINE, ROW], &want)
                .expect("rows");
            let rows: Vec<IdxSize> = (named.column(ROW).and_then(|c| c.u32().cloned()))
                .expect("row column")
                .into_no_null_iter()
                .collect();
            assert_eq!(rows, want);
            assert!(
                named
                    .column(col::LINE)
                    .expect("line")
                    .equals_missing(expected.column(col::LINE).expect("line"))
            );
        }
    }
    let mask: BooleanChunked = (0..1_000).map(|i| Some(i % 7 < 3)).collect();
    let got = cold.select_where(hot, &ALL, &mask).expect("selected");
    let expected = full
        .filter(&mask)
        .and_then(|f| f.select(ALL))
        .expect("filtered");
    assert!(got.equals_missing(&expected), "{got}\n{expected}");
    let mut restored = cold
        .restore(hot)
        .expect("restored")
        .select(full.get_column_names_owned())
        .expect("all");
    restored.rechunk_mut();
    assert!(restored.equals_missing(full));
    // The rows whose target is there, read beside the frame or in it.
    let (asked, want) = with_target(full, 400, 5);
    assert!(!want.is_empty() && want.len() < asked.len());
    let got = cold
        .rows_present(hot, asked.clone(), col::TARGET)
        .expect("present");
    assert_eq!(got, want);
    let got = IN_FRAME
        .rows_present(full, asked.clone(), col::TARGET)
        .expect("present");
    assert_eq!(got, want);
    // The rows whose address is one of a few, read beside the frame or in it: as polars finds
    // them among the asked rows.
    let wanted = ["203.0.4.1", "203.0.7.3", "203.0.9.4"];
    let dict = crate::frame::dictionary();
    let codes: Vec<u32> = wanted.iter().filter_map(|a| dict.code(a)).collect();
    assert_eq!(codes.len(), 3);
    let ips = crate::frame::codes(full, col::SOURCE_IP).expect("codes");
    let want: Vec<IdxSize> = (asked.iter().copied())
        .filter(|&r| codes.contains(&ips[r as usize]))
        .collect();
    assert!(!want.is_empty() && want.len() < asked.len());
    for (source, frame) in [(cold, hot), (&IN_FRAME, full)] {
        let got = source
            .rows_coded(frame, asked.clone(), col::SOURCE_IP, |c| codes.contains(&c))
            .expect("coded");
        assert_eq!(got, want);
    }
    // The frame with two cold columns put back, chunk for chunk.
    let with = cold
        .with_columns(hot, &[col::TS, col::TARGET, col::TOKEN])
        .expect("with columns");
    // Cut as the frame is: polars would copy every column into one chunk to align them.
    for c in with.columns() {
        let got: Vec<usize> = c.as_materialized_series().chunk_lengths().collect();
        assert_eq!(got, crate::frame::chunk_lengths(hot), "{}", c.name());
    }
    let mut with = with
        .select([col::TS, col::SUCCESS, col::TARGET, col::TOKEN])
        .expect("columns");
    with.rechunk_mut();
    let want = full
        .select([col::TS, col::SUCCESS, col::TARGET, col::TOKEN])
        .expect("columns");
    assert!(with.equals_missing(&want));
    // Every row in runs, the cold columns read beside the frame or from it.
    let names = [col::TS, col::TOKEN, col::TARGET, col::ACTION];
    let expected = full.select(names).expect("columns");
    for rows in [1, 150, 10_000] {
        let (beside, runs) = by_runs(cold, hot, &names, rows);
        assert!(beside.equals_missing(&expected));
        assert_eq!(
            runs > 1,
            rows < full.height(),
            "{runs} run(s) of {rows} rows"
        );
        assert!(
            by_runs(&IN_FRAME, full, &names, rows)
                .0
                .equals_missing(&expected)
        );
    }
}

/// A time window filters the frame after ingest: rows are then those of the window.
#[test]
fn a_filtered_frame_reads_the_cold_columns_of_its_rows() {
    let dir = tempfile::tempdir().expect("dir");
    let (full, hot, mut cold) = both(700, dir.path(), 350);
    let first: BooleanChunked = (0..700).map(|i| Some(i % 5 != 1 && i > 30)).collect();
    let (full, hot) = (
        full.filter(&first).expect("filtered"),
        hot.filter(&first).expect("filtered"),
    );
    cold.retain(&first);
    let second: BooleanChunked = (0..full.height()).map(|i| Some(i % 3 != 0)).collect();
    let (full, hot) = (
        full.filter(&second).expect("filtered"),
        hot.filter(&second).expect("filtered"),
    );
    cold.retain(&second);
    // The window's span of time, read from its rows' instants: the chunks' own spans would
    // give the whole frame's.
    let range = crate::frame::ts_range(&full).expect("range");
    assert_ne!(range, Some((-250, 700 - 1 - 250)));
    assert_eq!(cold.ts_range(&hot).expect("range"), range);
    let want = rows(full.height(), 400, 9);
    let got = cold.select(&hot, &ALL, &want).expect("selected");
    let expected = IN_FRAME.select(&full, &ALL, &want).expect("selected");
    assert!(got.equals_missing(&expected), "{got}\n{expected}");
    let mut restored = cold
        .restore(&hot)
        .expect("restored")
        .select(full.get_column_names_owned())
        .expect("all");
    restored.rechunk_mut();
    assert!(restored.equals_missing(&full));
    let (asked, want) = with_target(&full, 300, 4);
    let got = cold
        .rows_present(&hot, asked, col::TARGET)
        .expect("present");
    assert_eq!(got, want);
    let names = [col::TOKEN, col::PRINCIPAL];
    let (by_runs, _) = by_runs(&cold, &hot, &names, 100);
    assert!(by_runs.equals_missing(&full.select(names).expect("columns")));
    // A column neither in the frame nor beside it is an error, not a panic.
    let none = |_: Vec<(usize, DataFrame)>| Ok(());
    assert!(IN_FRAME.runs(&hot, &names, 100, none).is_err());
    assert!(cold.runs(&hot, &[col::CREDENTIAL], 100, none).is_err());
}

mod nesting {
    use super::super::*;
    use super::both;

    /// Chunks read side by side on rayon's workers, as `usage` does, within a time window (each
    /// span then picks its rows): no read may block on polars' own pool, or the blocked worker
    /// steals the next span and nests one frame deeper per chunk (85.9M events overflowed).
    #[test]
    fn spans_read_side_by_side_do_not_nest() {
        let dir = tempfile::tempdir().expect("dir");
        let (full, hot, mut cold) = both(30_000, dir.path(), 0);
        let mask: BooleanChunked = (0..full.height()).map(|i| Some(i % 4 != 0)).collect();
        let hot = hot.filter(&mask).expect("filtered");
        cold.retain(&mask);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .stack_size(256 << 10)
            .build()
            .expect("pool");
        let rows: usize = pool
            .install(|| {
                cold.spans(&hot)
                    .into_par_iter()
                    .map(|s| {
                        cold.span(&hot, &s, &[col::ACTION, col::LINE])
                            .map(|d| d.height())
                    })
                    .sum::<Result<usize>>()
            })
            .expect("read");
        assert_eq!(rows, hot.height());
    }
}
