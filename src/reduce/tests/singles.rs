//! One-account records read back as they are pulled: the singles' table a few row groups at a
//! time beside its days ([`store::map_kind`]).

use super::*;

/// Singles of one to five days each, both tables rewritten in row groups that cut through
/// records at different places (7 singles, 13 days a group), read back at batches of one day,
/// of a few, and whole: the records equal those written, and only the entities kept come back.
/// A singles' table with one record more than the days hold, or one less, is an error.
#[test]
fn singles_pulled_a_few_row_groups_at_a_time_read_back_whole() {
    let mut symbols = Symbols::new();
    let mut reduced = Reduced::default();
    for e in 0..400u32 {
        let entity = symbols.intern(&format!("P{e:04}")).expect("name");
        let account = symbols.intern(&format!("C{e:04}")).expect("name");
        let days = (0..1 + (e * 7) % 5)
            .map(|d| SingleDay {
                day: d as i32 + e as i32,
                first: d,
                last: d + 1,
                events: 1 + (e % 3) as u16,
                own: (e % 2) as u16,
            })
            .collect();
        reduced.kinds[3].singles.push(Single {
            entity,
            account,
            number: (e % 4 != 0).then_some(i64::from(e)),
            days,
        });
        reduced.accounts.insert(account);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    store::write(dir.path(), &reduced, &symbols).expect("written");
    let rewrite = |table: &str, rows: usize, cut: Option<usize>| {
        let path = dir.path().join(table);
        let df = crate::frame::read_parquet(&path, |e| panic!("{e}")).expect("table");
        let mut df = match cut {
            Some(n) => df.slice(0, n),
            None => df,
        };
        let file = std::fs::File::create(&path).expect("rewrite");
        polars_io::parquet::write::ParquetWriter::new(file)
            .with_row_group_size(Some(rows))
            .finish(&mut df)
            .expect("rewritten");
    };
    rewrite("singles-3.parquet", 7, None);
    rewrite("single_days-3.parquet", 13, None);
    let n = symbols.len() as u64;
    let fourth = |e: u32| e.is_multiple_of(4);
    for batch_rows in [1, 2, 9, 64, 1000, usize::MAX] {
        let (back, _) = store::read_in(dir.path(), batch_rows).expect("read back");
        assert!(back == reduced, "records differ read by {batch_rows}");
        let parts =
            store::map_kind_in(dir.path(), 3, n, batch_rows, fourth, |p| p.singles).expect("kept");
        let kept: Vec<Single> = parts.into_iter().flatten().collect();
        let want: Vec<Single> = (reduced.kinds[3].singles.iter())
            .filter(|s| fourth(s.entity))
            .cloned()
            .collect();
        assert!(kept == want, "kept entities differ read by {batch_rows}");
    }
    // The last record's days gone, then the last record too (its days now of no record).
    let all_days: usize = reduced.kinds[3].singles.iter().map(|s| s.days.len()).sum();
    let last = reduced.kinds[3].singles.last().map_or(0, |s| s.days.len());
    rewrite("single_days-3.parquet", 13, Some(all_days - last));
    for batch_rows in [1, 64, usize::MAX] {
        let err = store::read_in(dir.path(), batch_rows).map(|_| ());
        assert!(format!("{err:?}").contains("days are missing"), "{err:?}");
    }
    store::write(dir.path(), &reduced, &symbols).expect("written again");
    rewrite("single_days-3.parquet", 13, Some(all_days - last + 1));
    rewrite(
        "singles-3.parquet",
        7,
        Some(reduced.kinds[3].singles.len() - 1),
    );
    for batch_rows in [1, 64, usize::MAX] {
        let err = store::read_in(dir.path(), batch_rows).map(|_| ());
        assert!(format!("{err:?}").contains("days of no record"), "{err:?}");
    }
}
