use super::*;
use crate::normalize::cold::IN_FRAME;
use crate::normalize::schema::DAY_MS;
use polars::prelude::Column;

/// The zone and walk step every test here reduces with.
fn clock() -> (TimeParser, Walk) {
    (
        TimeParser::new(chrono_tz::UTC),
        crate::detect::enumeration::WALK,
    )
}

/// Access events: on day 0 `crowd` principals each reading their own account, on day 1 ten.
fn events(crowd: usize) -> DataFrame {
    let mut rows: Vec<(i64, String)> = (0..crowd).map(|i| (i as i64, format!("C{i}"))).collect();
    rows.extend((0..10).map(|i| (DAY_MS + i, format!("D{i}"))));
    let names = |f: &dyn Fn(&(i64, String)) -> Option<String>| -> Vec<Option<String>> {
        rows.iter().map(f).collect()
    };
    let key = |name: &str, values| crate::frame::key_column(name, values).expect("column");
    DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        key(c::EVENT_TYPE, names(&|_| Some("access".into()))),
        key(c::PRINCIPAL, names(&|r| Some(r.1.clone()))),
        key(c::TARGET, names(&|r| Some(r.1.clone()))),
        key(c::CREDENTIAL, names(&|_| None)),
        key(c::SOURCE_IP, names(&|_| None)),
    ])
    .expect("frame")
}

/// Stored records are checked file by file against the digests written with them: a
/// changed file, or a digest naming a file outside the records, makes them unusable.
#[test]
fn records_unlike_their_digests_are_not_used() {
    let (time, walk) = clock();
    let both = [covered("p1", &[0]), covered("p2", &[1])];
    let dir = tempfile::tempdir().expect("temp dir");
    let all = events(100);
    let stored = Reach::of(&all, &time, walk).expect("reduce");
    save(dir.path(), &stored, &both, &Made::Whole(String::new())).expect("saved");
    let records = dir.path().join(DIR);
    let made = || {
        let (got, made) =
            reach(dir.path(), &both, (&all, &IN_FRAME), &time, walk).expect("records");
        assert_eq!(got.is_some(), made == Made::Kept { days: 0 }, "{made:?}");
        made
    };
    let unusable = |why: &str| matches!(made(), Made::Unusable(w) if w.contains(why));
    assert_eq!(made(), Made::Kept { days: 0 });

    let meta = records.join(META);
    let text = std::fs::read_to_string(&meta).expect("meta");
    let outside = text.replacen("\"accounts.roaring\"", "\"../accounts.roaring\"", 1);
    assert_ne!(outside, text, "{text}");
    std::fs::write(&meta, &outside).expect("edited");
    assert!(unusable("outside"), "{:?}", made());

    std::fs::write(&meta, &text).expect("restored");
    let cells = records.join("singles-1.parquet");
    let mut bytes = std::fs::read(&cells).expect("cells");
    let last = bytes.len() - 1;
    bytes[last / 2] ^= 0x10;
    std::fs::write(&cells, &bytes).expect("damaged");
    assert!(unusable("damaged"), "{:?}", made());
}

/// Day 0's partition ages out: its names stay in the table, which is built anew once they
/// are most of it (past the spare), and kept while they are not.
#[test]
fn a_table_of_mostly_gone_names_is_built_anew() {
    let (time, walk) = clock();
    let both = [covered("p1", &[0]), covered("p2", &[1])];
    for (crowd, rebuilt) in [(100, false), (2 * SPARE_SYMBOLS as usize, true)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let all = events(crowd);
        let stored = Reach::of(&all, &time, walk).expect("reduce");
        save(dir.path(), &stored, &both, &Made::Whole(String::new())).expect("saved");
        let day1 = all.slice(crowd as i64, 10);
        let (got, made) =
            reach(dir.path(), &both[1..], (&day1, &IN_FRAME), &time, walk).expect("records");
        if rebuilt {
            assert!(got.is_none());
            assert_eq!(
                made,
                Made::Whole("the symbol table was mostly names of days gone".into())
            );
        } else {
            assert_eq!(made, Made::Kept { days: 1 });
            let got = got.expect("kept");
            assert_eq!(got.accounts(), 10);
            let want = Reach::of(&day1, &time, walk).expect("reduce");
            let key = c::PRINCIPAL;
            assert_eq!(
                format!("{:?}", got.profiles(key, 0)),
                format!("{:?}", want.profiles(key, 0))
            );
        }
    }
}

/// Access events of every kind, with entities of one account and of several: on day `d`,
/// principals `C{i}` read their own accounts from addresses of their own, and an operator
/// reads ten accounts with a key from one address.
fn kinds_on(days: std::ops::Range<i64>) -> DataFrame {
    /// (ts, principal, address, key, account).
    type Row = (i64, String, String, Option<&'static str>, String);
    let mut rows: Vec<Row> = Vec::new();
    for d in days {
        for i in 0..20 {
            let (who, at) = (format!("C{}", i + d), format!("10.0.{d}.{i}"));
            rows.push((d * DAY_MS + i, who.clone(), at, None, who));
        }
        for i in 0..10 {
            let row = (
                "ops".into(),
                "192.0.2.7".into(),
                Some("k1"),
                format!("C{i}"),
            );
            rows.push((d * DAY_MS + 100 + i, row.0, row.1, row.2, row.3));
        }
    }
    let names =
        |f: &dyn Fn(&Row) -> Option<String>| rows.iter().map(f).collect::<Vec<Option<String>>>();
    let key = |name: &str, values| crate::frame::key_column(name, values).expect("column");
    DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        key(c::EVENT_TYPE, names(&|_| Some("access".into()))),
        key(c::PRINCIPAL, names(&|r| Some(r.1.clone()))),
        key(c::SOURCE_IP, names(&|r| Some(r.2.clone()))),
        key(c::CREDENTIAL, names(&|r| r.3.map(String::from))),
        key(c::TARGET, names(&|r| Some(r.4.clone()))),
    ])
    .expect("frame")
}

/// What every reader of the records sees, as text: the charts' list of entities too, which
/// sets how many peers a chart samples from, the same before and after profiling.
fn seen(reach: &Reach) -> String {
    let mut out = format!("{} {}", reach.accounts(), reach.self_served());
    // The entities the charts are offered, by name, and the first days of all of them.
    let listed = |key| {
        let mut listed = Vec::new();
        let firsts = reach
            .first_days(key, |all| {
                listed = all.to_vec();
                all.to_vec()
            })
            .expect("first days");
        let listed: Vec<&str> = listed.iter().map(|e| reach.name(*e)).collect();
        let firsts: BTreeMap<&str, _> = firsts
            .iter()
            .map(|(e, d)| (reach.name(*e), d.clone()))
            .collect();
        (listed, firsts)
    };
    for key in crate::reduce::KINDS {
        let (names, firsts) = listed(key);
        let profiles = reach.profiles(key, 0).expect("profiles");
        // Listed again once profiled, from the order profiling sorted the names in.
        assert_eq!(
            listed(key),
            (names.clone(), firsts.clone()),
            "{key} once profiled"
        );
        out += &format!("\n{key}: {names:?} {profiles:?} {firsts:?}");
    }
    out
}

/// Day 0 of [`kinds_on`] reduced whole and saved into `state` as the records of partition
/// `p1`; with the partitions of day 0 alone, and with `p2` bringing day 1.
fn day0_stored(state: &Path) -> (Reach, [Covered; 1], [Covered; 2]) {
    let (time, walk) = clock();
    let one = [covered("p1", &[0])];
    let whole = Reach::of(&kinds_on(0..1), &time, walk).expect("reduce");
    save(state, &whole, &one, &Made::Whole(String::new())).expect("saved");
    let two = [covered("p1", &[0]), covered("p2", &[1])];
    (whole, one, two)
}

/// Records kept are read a kind at a time from the state; records merged with a new night's
/// from the folder that saving renames into place. Either way every kind's profiles and first
/// days, the accounts and the self-served are those of the window reduced whole, and a run
/// that ends before saving leaves the stored records as they were.
#[test]
fn stored_records_read_a_kind_at_a_time_are_the_window_s() {
    let (time, walk) = clock();
    let dir = tempfile::tempdir().expect("temp dir");
    let (whole, one, two) = day0_stored(dir.path());
    let (day0, both) = (kinds_on(0..1), kinds_on(0..2));
    let (kept, made) = reach(dir.path(), &one, (&day0, &IN_FRAME), &time, walk).expect("records");
    let kept = kept.expect("kept");
    assert_eq!(made, Made::Kept { days: 0 });
    assert!(kept.held().is_none());
    assert_eq!(kept.stored_in(), Some(dir.path().join(DIR).as_path()));
    assert_eq!(seen(&kept), seen(&whole));
    assert!(seen(&whole).contains("k1"), "{}", seen(&whole));

    let want = seen(&Reach::of(&both, &time, walk).expect("reduce"));
    for _ in 0..2 {
        let (merged, made) =
            reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
        let merged = merged.expect("merged");
        assert_eq!(made, Made::Kept { days: 1 });
        assert_eq!(merged.stored_in(), Some(dir.path().join(NEW).as_path()));
        assert_eq!(seen(&merged), want);
    }
    let (merged, made) = reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
    save(dir.path(), &merged.expect("merged"), &two, &made).expect("saved");
    assert!(!dir.path().join(NEW).exists());
    let (kept, made) = reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
    assert_eq!(made, Made::Kept { days: 0 });
    assert_eq!(seen(&kept.expect("kept")), want);
}

/// Kinds merged one at a time (a pool of one thread) and side by side write the same bytes
/// and read back as the same records.
#[test]
fn kinds_merged_side_by_side_write_what_one_at_a_time_does() {
    let (time, walk) = clock();
    let both = kinds_on(0..2);
    let written = |threads: usize| {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, _, two) = day0_stored(dir.path());
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        let (merged, made) = (pool.expect("pool"))
            .install(|| reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk))
            .expect("records");
        assert_eq!(made, Made::Kept { days: 1 }, "{threads} thread(s)");
        let mut files = BTreeMap::new();
        files.insert(None, seen(&merged.expect("merged")).into_bytes());
        for entry in std::fs::read_dir(dir.path().join(NEW)).expect("merged folder") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("merged file");
            files.insert(path.file_name().map(|n| n.to_os_string()), bytes);
        }
        files
    };
    let one = written(1);
    assert!(one.len() >= 13, "{:?}", one.keys());
    assert!(one == written(4), "side by side wrote other bytes");
}

/// A merge that cannot write (here a file stands where its folder goes) costs the run its
/// stored records, not the run: the window is reduced whole, with a note, and the stored
/// records stay as they were.
#[test]
fn a_merge_that_cannot_write_reduces_the_window_whole() {
    let (time, walk) = clock();
    let dir = tempfile::tempdir().expect("temp dir");
    let (whole, one, two) = day0_stored(dir.path());
    std::fs::write(dir.path().join(NEW), "in the way").expect("file");
    let (got, made) =
        reach(dir.path(), &two, (&kinds_on(0..2), &IN_FRAME), &time, walk).expect("run");
    assert!(got.is_none());
    assert!(
        matches!(&made, Made::Unusable(why) if why.contains("not merged")),
        "{made:?}"
    );
    std::fs::remove_file(dir.path().join(NEW)).expect("removed");
    let (kept, made) =
        reach(dir.path(), &one, (&kinds_on(0..1), &IN_FRAME), &time, walk).expect("run");
    assert_eq!(made, Made::Kept { days: 0 });
    assert_eq!(seen(&kept.expect("kept")), seen(&whole));
}

fn covered(partition: &str, days: &[i64]) -> Covered {
    Covered {
        partition: partition.into(),
        fingerprint: "f".into(),
        size: 1,
        modified_ns: 0,
        days: days.to_vec(),
    }
}

/// Days of partitions added and gone are dirty; a partition kept is not, even when a new
/// one shares its days; a file read again (same partition name, other content) is both.
#[test]
fn days_of_partitions_added_or_gone_are_read_again() {
    let before = [
        covered("p1", &[1, 2]),
        covered("p2", &[3]),
        covered("p3", &[4]),
    ];
    let mut changed = covered("p3", &[4, 5]);
    changed.fingerprint = "g".into();
    let now = [covered("p2", &[3]), changed, covered("p4", &[3, 6])];
    let want: BTreeSet<i64> = [1, 2, 3, 4, 5, 6].into();
    assert_eq!(dirty_days(&before, &now), want);
    assert!(dirty_days(&now, &now).is_empty());
}

/// Days 0 to 7 of [`kinds_on`], one partition each, reduced whole and saved into `state`; their
/// partitions.
fn eight_days_stored(state: &Path) -> Vec<Covered> {
    let (time, walk) = clock();
    let now: Vec<Covered> = (0..8).map(|d| covered(&format!("p{d}"), &[d])).collect();
    let whole = Reach::of(&kinds_on(0..8), &time, walk).expect("reduce");
    save(state, &whole, &now, &Made::Whole(String::new())).expect("saved");
    now
}

/// Nights added one at a time, each bringing its day and the day before again, the first night
/// aging out along the way: each night's records, kept beside the folder's or merged into them,
/// read (at batches of one row and of the default) as the window reduced whole, and again in a
/// run with nothing new once saved. Both ways of keeping a night are taken.
#[test]
fn nights_kept_beside_the_records_read_as_the_window_reduced_whole() {
    let (time, walk) = clock();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut now = eight_days_stored(dir.path());
    let (mut beside, mut merged) = (0, 0);
    for night in 8..20 {
        now.push(covered(&format!("p{night}"), &[night - 1, night]));
        let first = if night >= 12 { 1 } else { 0 };
        now.retain(|c| c.days.iter().all(|&d| d >= first));
        let events = kinds_on(first..night + 1);
        let want = seen(&Reach::of(&events, &time, walk).expect("reduce"));
        let (got, made) =
            reach(dir.path(), &now, (&events, &IN_FRAME), &time, walk).expect("records");
        assert!(matches!(made, Made::Kept { .. }), "night {night}: {made:?}");
        let got = got.expect("kept");
        match got.delta() {
            Some(delta) => {
                beside += 1;
                // The night's own day was never the folder's.
                assert!(!delta.dropped.contains(&night), "night {night}");
                assert!(dir.path().join(NEW).join(delta::DIR).is_dir());
            }
            None => merged += 1,
        }
        assert_eq!(seen(&got), want, "night {night}");
        let got = got.reading(1);
        assert_eq!(seen(&got), want, "night {night}, a row at a time");
        save(dir.path(), &got, &now, &made).expect("saved");
        let (kept, made) =
            reach(dir.path(), &now, (&events, &IN_FRAME), &time, walk).expect("records");
        assert_eq!(made, Made::Kept { days: 0 }, "night {night}");
        assert_eq!(
            seen(&kept.expect("kept")),
            want,
            "night {night}, nothing new"
        );
    }
    assert!(
        beside >= 6 && merged >= 2,
        "{beside} beside, {merged} merged"
    );
}

/// A night's records kept beside the folder's are checked against their digests like the
/// folder's; the folder's files, linked into the new records, keep the digests written for them
/// instead of being read again.
#[test]
fn a_damaged_night_beside_the_records_makes_them_unusable() {
    let (time, walk) = clock();
    let dir = tempfile::tempdir().expect("temp dir");
    let mut now = eight_days_stored(dir.path());
    let records = dir.path().join(DIR);
    let before = std::fs::read_to_string(records.join(META)).expect("meta");
    now.push(covered("p8", &[7, 8]));
    let events = kinds_on(0..9);
    let (got, made) = reach(dir.path(), &now, (&events, &IN_FRAME), &time, walk).expect("run");
    let got = got.expect("kept");
    assert!(got.delta().is_some());
    save(dir.path(), &got, &now, &made).expect("saved");
    let meta: Meta =
        serde_json::from_str(&std::fs::read_to_string(records.join(META)).expect("meta"))
            .expect("parsed");
    let was: Meta = serde_json::from_str(&before).expect("parsed");
    assert!(meta.delta);
    assert_eq!(meta.dropped, vec![7]);
    assert_eq!(
        meta.digests.get("cells-1.parquet"),
        was.digests.get("cells-1.parquet")
    );
    assert!(
        meta.digests.contains_key("delta/cells-1.parquet"),
        "{:?}",
        meta.digests
    );

    let cells = records.join(delta::DIR).join("cells-1.parquet");
    let mut bytes = std::fs::read(&cells).expect("cells");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x10;
    std::fs::write(&cells, &bytes).expect("damaged");
    let (got, made) = reach(dir.path(), &now, (&events, &IN_FRAME), &time, walk).expect("run");
    assert!(got.is_none());
    assert!(
        matches!(&made, Made::Unusable(why) if why.contains("damaged")),
        "{made:?}"
    );
}

/// The nights' records are merged into the folder's once they, or the days dropped, are a
/// quarter of the folder's days, or they pass a sixteenth of the frame (16 MiB at least); names
/// from `records.json` stay inside the records.
#[test]
fn nights_are_merged_when_due_and_names_stay_inside() {
    let (mib, frame) = (1 << 20, 1 << 30);
    assert!(!delta::merge_due(120, 1, (2, mib), frame));
    assert!(!delta::merge_due(120, 30, (30, mib), frame));
    assert!(delta::merge_due(120, 31, (2, mib), frame));
    assert!(delta::merge_due(120, 1, (31, mib), frame));
    assert!(!delta::merge_due(120, 1, (2, 64 * mib), frame));
    assert!(delta::merge_due(120, 1, (2, 65 * mib), frame));
    assert!(!delta::merge_due(120, 1, (2, 16 * mib), 0));
    assert!(delta::merge_due(120, 1, (2, 17 * mib), 0));
    assert!(delta::merge_due(0, 0, (1, 0), frame));
    for name in ["cells-1.parquet", "delta/cells-1.parquet"] {
        assert!(delta::plain(name), "{name}");
    }
    for name in [
        "../x",
        "delta/../x",
        "other/x",
        "delta/a/b",
        "/etc/passwd",
        "delta",
    ] {
        assert!(!delta::plain(name) || name == "delta", "{name}");
    }
}
