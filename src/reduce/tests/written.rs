//! Records written to a folder and read back: whole, a kind streamed and merged as it is read,
//! and damaged files refused with an error that says why.

use super::*;

/// Records written and read back are the records: every kind, cells and singles, bitmaps,
/// shared hours of a half-hour zone, walk ends, the symbol table; a damaged file is an error.
#[test]
fn records_read_back_as_written() {
    let events = frame(&random_events(13));
    let time = TimeParser::new(chrono_tz::Asia::Kolkata);
    let mut symbols = Symbols::new();
    let reduced = Reduced::of(&events, &time, WALK, &mut symbols).expect("reduce");
    assert!(
        reduced
            .kinds
            .iter()
            .any(|k| k.cells.iter().any(|c| !c.split_hours.is_empty()))
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let bytes = store::write(dir.path(), &reduced, &symbols).expect("written");
    assert!(bytes > 0);
    let (back, back_symbols) = store::read(dir.path()).expect("read back");
    assert_eq!(back_symbols, symbols);
    assert!(back == reduced, "records differ after a round trip");
    std::fs::write(dir.path().join("accounts.roaring"), b"not a bitmap").expect("damage");
    assert!(store::read(dir.path()).is_err());
}

/// A single's day with a field missing, or a count past 16 bits, makes its kind unreadable
/// (an error naming why), never a day of zeroes or a count cut short.
#[test]
fn damaged_single_days_are_errors() {
    let events = frame(&random_events(5));
    let time = TimeParser::new(chrono_tz::UTC);
    let mut symbols = Symbols::new();
    let reduced = Reduced::of(&events, &time, WALK, &mut symbols).expect("reduce");
    let k = (reduced.kinds.iter())
        .position(|kind| !kind.singles.is_empty())
        .expect("a kind with singles");
    let dir = tempfile::tempdir().expect("temp dir");
    store::write(dir.path(), &reduced, &symbols).expect("written");
    let path = dir.path().join(format!("single_days-{k}.parquet"));
    let days = crate::frame::read_parquet(&path, |e| crate::error::Error::Internal(e.to_string()))
        .expect("days");
    let n = symbols.len() as u64;
    assert!(store::read_kind(dir.path(), k, n).is_ok());
    let rewritten = |name: &str, value: Option<u32>| {
        let mut column: Vec<Option<u32>> = (days.column(name).expect("column").u32())
            .expect("u32")
            .iter()
            .collect();
        column[days.height() / 2] = value;
        let mut df = days.clone();
        df.with_column(Column::new(name.into(), column))
            .expect("replaced");
        let file = std::fs::File::create(&path).expect("file");
        ParquetWriter::new(file).finish(&mut df).expect("rewritten");
        store::read_kind(dir.path(), k, n)
    };
    let damaged = |name: &str, value: Option<u32>| match rewritten(name, value) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("{name} = {value:?} read back"),
    };
    assert!(damaged("first", None).contains("a required field is empty"));
    assert!(damaged("own", None).contains("a required field is empty"));
    assert!(damaged("events", Some(1 << 16)).contains("past 16 bits"));
    // The highest count that fits is read back as written.
    let most = rewritten("events", Some(u16::MAX.into())).expect("read back");
    assert!(
        most.singles
            .iter()
            .any(|s| s.days.iter().any(|d| d.events == u16::MAX))
    );
}

/// One-account records with more days than one row group holds, and more cells than one
/// holds: written a group at a time (`store::KindWriter`) and read back, whole or a row
/// group at a time (a record's days then span two batches), in record order.
#[test]
fn single_days_past_one_row_group_read_back() {
    let mut symbols = Symbols::new();
    let mut reduced = Reduced::default();
    for e in 0..3 {
        let entity = symbols.intern(&format!("P{e}")).expect("name");
        let account = symbols.intern(&format!("C{e}")).expect("name");
        let days = (0..120_000)
            .map(|d| SingleDay {
                day: d,
                first: 1,
                last: 2 + e as u32,
                events: 3,
                own: (d % 2) as u16,
            })
            .collect();
        reduced.kinds[1].singles.push(Single {
            entity,
            account,
            number: Some(e),
            days,
        });
        reduced.accounts.insert(account);
    }
    // Three entities of 100,000 cells each (codes 0, 2 and 4; account 1).
    let account = 1;
    reduced.kinds[2].cells = (0..300_000)
        .map(|i| Cell {
            entity: 2 * (i / 100_000) as u32,
            day: i % 100_000,
            events: 1 + i as u64 % 5,
            own_rows: 0,
            first: (i % 100_000) * DAY_MS,
            last: (i % 100_000) * DAY_MS + 1,
            accounts: Accounts::One(account),
            peak_hour: 1,
            split_hours: Vec::new(),
            walk: RoaringBitmap::new(),
            first_numbered: None,
            last_numbered: None,
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    store::write(dir.path(), &reduced, &symbols).expect("written");
    let (back, _) = store::read(dir.path()).expect("read back");
    assert!(back == reduced, "records differ after a round trip");
    // The writer ends a row group of days with a record; another writer's groups may cut
    // through records (and the cells' table is one group here): both rewritten in groups of
    // 50,000 rows, so that reading a group at a time carries a record's days across batches.
    for table in ["single_days-1.parquet", "cells-2.parquet"] {
        let path = dir.path().join(table);
        let mut df = crate::frame::read_parquet(&path, |e| panic!("{e}")).expect("table");
        let file = std::fs::File::create(&path).expect("rewrite");
        polars_io::parquet::write::ParquetWriter::new(file)
            .with_row_group_size(Some(50_000))
            .finish(&mut df)
            .expect("rewritten");
    }
    for batch_rows in [usize::MAX, 1, 120_000] {
        let (back, _) = store::read_in(dir.path(), batch_rows).expect("read back");
        assert!(
            back == reduced,
            "records differ after a round trip by {batch_rows}"
        );
        // Handed a batch at a time, each entity's cells come whole, in one batch: split, an
        // entity would be listed twice.
        let n = symbols.len() as u64;
        let each_entity = |part: Entities| {
            (part.cells.chunk_by(|a, b| a.entity == b.entity))
                .map(|cells| (cells[0].entity, cells.len()))
                .collect::<Vec<_>>()
        };
        let parts = store::map_kind_in(dir.path(), 2, n, batch_rows, |_| true, each_entity)
            .expect("batches");
        let each: Vec<(u32, usize)> = parts.into_iter().flatten().collect();
        assert_eq!(each, [(0, 100_000), (2, 100_000), (4, 100_000)]);
    }
}

/// A night's merge streams each stored kind (`store::merge_kind`): whatever the batches read
/// and the row groups written, the stored kind comes in pieces of whole entities in order, and
/// what is written is the kind with its stale days dropped and the night merged in whole.
#[test]
fn a_kind_merged_as_streamed_is_the_kind_merged_whole() {
    let rows = with_orphans(random_events(34));
    let time = TimeParser::new(chrono_tz::Asia::Kolkata);
    let day_of = |ts: i64| time.local_day(ts).day;
    let night: BTreeSet<i64> = [day_of(5 * DAY_MS), day_of(11 * DAY_MS)].into();
    // The night's days read again, and the first aged out.
    let stale: BTreeSet<i64> = night.iter().copied().chain([day_of(0)]).collect();
    let on: Vec<Event> = (rows.iter())
        .filter(|r| night.contains(&day_of(r.0)))
        .cloned()
        .collect();
    let mut symbols = Symbols::new();
    let stored = Reduced::of(&frame(&rows), &time, WALK, &mut symbols).expect("reduce");
    let fresh = Reduced::of(&frame(&on), &time, WALK, &mut symbols).expect("reduce");
    let n = symbols.len() as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    let old = dir.path().join("old");
    store::write(&old, &stored, &symbols).expect("written");
    let both = |k: &Entities| !k.cells.is_empty() && !k.singles.is_empty();
    assert!(
        stored.kinds.iter().any(both),
        "no kind of cells and singles"
    );
    for (k, theirs) in fresh.kinds.iter().enumerate() {
        // Three rows a group, so that a batch of one group ends inside the kind.
        let mut small = store::KindWriter::grouped(&old, k, (3, 3)).expect("writer");
        small.push(&stored.kinds[k]).expect("pushed");
        small.finish().expect("finished");
        let mine = stored.kinds[k].clone().without_days(&stale);
        let (want, twice) = mine.clone().merge(theirs.clone());
        for (cells, days) in [(1, 1), (2, 5), (usize::MAX, usize::MAX)] {
            let batches = store::Batches { cells, days };
            let mut bounds: Vec<Option<u32>> = Vec::new();
            store::stream_kind_in(&old, k, n, batches, |piece, bound| {
                let singles = piece.singles.iter().map(|s| s.entity);
                for e in piece.cells.iter().map(|c| c.entity).chain(singles) {
                    let after = bounds.last().copied().flatten();
                    assert!(after.is_none_or(|b| e > b), "{e} came after {after:?}");
                    assert!(bound.is_none_or(|b| e <= b), "{e} is past {bound:?}");
                }
                bounds.push(bound);
                Ok(())
            })
            .expect("streamed");
            assert_eq!(bounds.last(), Some(&None));
            for group in [1, 4, 1 << 20] {
                let out = dir.path().join(format!("new-{k}-{cells}-{group}"));
                std::fs::create_dir_all(&out).expect("folder");
                let mut writer =
                    store::KindWriter::grouped(&out, k, (group, group)).expect("writer");
                let mut seen = Entities::default();
                let show = |piece: &Entities| {
                    seen.cells.extend(piece.cells.iter().cloned());
                    seen.singles.extend(piece.singles.iter().cloned());
                };
                let merged = store::merge_kind(
                    &old,
                    k,
                    n,
                    batches,
                    &stale,
                    theirs.clone(),
                    show,
                    &mut writer,
                )
                .expect("merged");
                writer.finish().expect("finished");
                let back = store::read_kind(&out, k, n).expect("read back");
                assert!(
                    back == want,
                    "kind {k} differs, batches {batches:?}, groups {group}"
                );
                assert!(
                    seen == mine,
                    "kind {k}: the stored pieces differ from the kind's"
                );
                assert_eq!(merged.overlapping, twice);
                assert_eq!(merged.self_served, kind_self_served(&want));
            }
        }
    }
}

/// A stream whose merge fails stops: the readers, blocked a batch ahead, wake to the hang-up
/// and the merge's error is the one returned. A stream whose records are out of order fails
/// with the reader's error, even after the merge was handed what came before.
#[test]
fn a_stream_stops_on_the_merge_s_error_and_on_its_reader_s() {
    let mut symbols = Symbols::new();
    let stored = Reduced::of(
        &frame(&random_events(8)),
        &TimeParser::new(chrono_tz::UTC),
        WALK,
        &mut symbols,
    )
    .expect("reduce");
    let n = symbols.len() as u64;
    let dir = tempfile::tempdir().expect("temp dir");
    store::write(dir.path(), &stored, &symbols).expect("written");
    let principals = &stored.kinds[1];
    let mut one_row = store::KindWriter::grouped(dir.path(), 1, (1, 1)).expect("writer");
    one_row.push(principals).expect("pushed");
    one_row.finish().expect("finished");
    let batches = store::Batches { cells: 1, days: 1 };
    let mut pieces = 0;
    let stopped = store::stream_kind_in(dir.path(), 1, n, batches, |_, _| {
        pieces += 1;
        Err(crate::error::Error::State {
            path: dir.path().to_path_buf(),
            reason: "the merge cannot write".into(),
        })
    });
    let e = stopped.expect_err("the merge's error");
    assert!(e.to_string().contains("the merge cannot write"), "{e}");
    assert_eq!(pieces, 1);
    // The same records with two singles swapped.
    let mut swapped = principals.clone();
    let last = swapped.singles.len() - 1;
    swapped.singles.swap(0, last);
    let mut writer = store::KindWriter::grouped(dir.path(), 1, (1, 1)).expect("writer");
    writer.push(&swapped).expect("pushed");
    writer.finish().expect("finished");
    let e = store::stream_kind_in(dir.path(), 1, n, batches, |_, _| Ok(()))
        .expect_err("the reader's error");
    assert!(e.to_string().contains("out of entity and day order"), "{e}");
}
