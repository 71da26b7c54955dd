use super::*;
use crate::frame::keys::MAX_KEYS;
use crate::normalize::schema::{TS_MAX, TS_MIN};

/// Instants that jump both ways and to the ends of the range, keys with nulls over the shared
/// dictionary, plain codes, flags with and without nulls, event types of two bytes with nulls.
fn chunk() -> DataFrame {
    rows(5000)
}

fn rows(n: usize) -> DataFrame {
    let ts: Vec<Option<i64>> = (0..n)
        .map(|i| match i % 97 {
            0 => None,
            1 => Some(TS_MIN),
            2 => Some(TS_MAX),
            _ => Some(1_740_000_000_000 + (i as i64 * 7919) % 3_600_000 - 1_800_000),
        })
        .collect();
    let ts = Int64Chunked::new("ts".into(), ts)
        .into_datetime(TimeUnit::Milliseconds, None)
        .into_column();
    let principal: Vec<Option<String>> = (0..n)
        .map(|i| (i % 13 != 0).then(|| format!("user{}", i % 251)))
        .collect();
    let principal = crate::frame::key_column("principal", principal).expect("codes");
    let codes = Column::new("token_id".into(), (0..n as u32).rev().collect::<Vec<_>>());
    let success = Column::new(
        "success".into(),
        (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>(),
    );
    let maybe: Vec<Option<bool>> = (0..n).map(|i| (i % 5 != 0).then_some(i % 2 == 0)).collect();
    let maybe = Column::new("maybe".into(), maybe);
    let kinds = ["login", "access", "logout"];
    let kind: Vec<Option<&str>> = (0..n)
        .map(|i| (i % 11 != 0).then_some(kinds[i % 3]))
        .collect();
    let kind = crate::frame::key_column(crate::normalize::schema::col::EVENT_TYPE, kind);
    let columns = vec![
        ts,
        principal,
        codes,
        success,
        maybe,
        kind.expect("event types"),
    ];
    DataFrame::new(n, columns).expect("frame")
}

#[test]
fn a_chunk_unpacks_to_the_frame_that_was_packed() {
    let df = chunk();
    let packed = Chunk::pack(df.clone());
    assert!(
        matches!(packed, Chunk::Packed(_)),
        "every column is one packing knows"
    );
    assert_eq!(packed.height(), df.height());
    assert!(
        packed.bytes() < df.estimated_size() / 2,
        "{} bytes",
        packed.bytes()
    );
    let out = packed.into_frame().expect("unpacks");
    assert_eq!(out.schema(), df.schema());
    assert!(out.equals_missing(&df));
    // The same codes, not only the same strings.
    let codes = |f: &DataFrame| f.column("principal").unwrap().u32().unwrap().clone();
    assert!(codes(&out).iter().eq(codes(&df).iter()));
}

#[test]
fn a_chunk_with_a_column_packing_does_not_know_is_held_as_it_is() {
    let mut df = chunk();
    df.with_column(Column::new("agent".into(), vec!["curl"; df.height()]))
        .expect("column");
    assert!(matches!(Chunk::pack(df), Chunk::Frame(_)));
}

#[test]
fn a_damaged_chunk_is_an_error_not_a_frame() {
    let Chunk::Packed(mut packed) = Chunk::pack(chunk()) else {
        panic!("packs");
    };
    packed.height += 1;
    assert!(packed.unpack().is_err());
}

/// Two files' chunks, the first ones held as read and the rest packed, as ingest holds them
/// once a run passes the bound: unpacked, then compacted, they are the frame compaction makes of
/// the chunks as read, cut the same way.
#[test]
fn unpacked_runs_are_cut_as_compaction_cuts_them() {
    let sizes = [
        [100, 100, 100, 100, 100, 100, 100].as_slice(),
        &[100, 100, 250, 100, 50],
    ];
    let stretches: Vec<usize> = sizes.iter().map(|s| s.iter().sum()).collect();
    let whole = rows(stretches.iter().sum());
    let mut at = 0;
    let mut frames = Vec::new();
    for &n in sizes.concat().iter() {
        frames.push(whole.slice(at as i64, n));
        at += n;
    }
    let chunks: Vec<Chunk> = (frames.iter().enumerate())
        .map(|(i, df)| match i < 3 {
            true => Chunk::Frame(df.clone()),
            false => Chunk::pack(df.clone()),
        })
        .collect();
    assert!(matches!(chunks[3], Chunk::Packed(_)));
    let stack = |frames: Vec<DataFrame>| {
        crate::frame::stack(frames.into_iter().map(Ok), "test")
            .expect("stacks")
            .expect("rows")
    };
    let unpacked = unpack_compacted(chunks, &stretches, 300, bounds(MAX_KEYS, 0)).expect("unpacks");
    // Runs of 300, 300, 100 rows, then 200, 250, 150: the first as read (three chunks), each
    // other one, holding a packed chunk, as one.
    assert_eq!(unpacked.len(), 3 + 2 + 3);
    let ours = crate::frame::compact(stack(unpacked), 300, &stretches).expect("compacts");
    let theirs = crate::frame::compact(stack(frames), 300, &stretches).expect("compacts");
    assert_eq!(
        crate::frame::chunk_lengths(&ours),
        crate::frame::chunk_lengths(&theirs)
    );
    assert!(ours.equals_missing(&whole));
}

#[test]
fn chunks_that_do_not_add_up_to_their_files_are_an_error() {
    let chunks = || vec![Chunk::pack(rows(100)), Chunk::pack(rows(100))];
    assert!(unpack_compacted(chunks(), &[100, 150], 300, bounds(MAX_KEYS, 0)).is_err());
    assert!(unpack_compacted(chunks(), &[100], 300, bounds(MAX_KEYS, 0)).is_err());
}

fn bounds(keys_up_to: usize, one_byte_up_to: usize) -> crate::frame::Narrowing {
    crate::frame::Narrowing {
        keys_up_to,
        one_byte_up_to,
    }
}

/// Chunks naming three keys, some held as read and some packed: unpacked with a bound of three or
/// more, every run's key column comes out in two bytes (one, under a one-byte bound of three or
/// more) over one dictionary (so the runs stack) and names the same keys row by row; with a
/// bound under three it stays as it was.
#[test]
fn keys_are_unpacked_in_two_bytes_where_they_fit() {
    let n = 900;
    let keys: Vec<Option<&str>> = (0..n)
        .map(|i| (i % 7 != 0).then_some(["unpack-k1", "unpack-k2", "unpack-k3"][i % 3]))
        .collect();
    let mut whole = rows(n);
    let keys = crate::frame::key_column(CREDENTIAL, keys).expect("keys");
    whole.with_column(keys).expect("keys");
    let names = |df: &DataFrame| crate::frame::strs(df, CREDENTIAL).expect("names");
    let (two, one) = (CategoricalPhysical::U16, CategoricalPhysical::U8);
    let cases = [
        (MAX_KEYS, 0, Some(two)),
        (3, 2, Some(two)),
        (MAX_KEYS, 3, Some(one)),
        (2, 3, None),
    ];
    for (bound, one_byte, narrow) in cases {
        let chunks: Vec<Chunk> = (0..9)
            .map(|i| {
                let df = whole.slice(i * 100, 100);
                match i < 2 {
                    true => Chunk::Frame(df),
                    false => Chunk::pack(df),
                }
            })
            .collect();
        let unpacked = unpack_compacted(chunks, &[n], 300, bounds(bound, one_byte));
        let unpacked = unpacked.expect("unpacks");
        for df in &unpacked {
            let held = match df.column(CREDENTIAL).expect("keys").dtype() {
                DataType::Categorical(cats, _) if !cats.is_global() => Some(cats.physical()),
                _ => None,
            };
            assert_eq!(held, narrow, "bound {bound}, {one_byte}");
        }
        let frames = unpacked.into_iter().map(Ok);
        let stacked = crate::frame::stack(frames, "test")
            .expect("stacks")
            .expect("rows");
        assert_eq!(names(&stacked), names(&whole), "bound {bound}");
    }
}
