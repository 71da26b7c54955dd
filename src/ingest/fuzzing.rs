//! Entry points for the fuzz targets in `fuzz/` and for `tests/fuzz_corpora.rs`, which replays
//! their saved corpora in every `cargo test`. Each takes arbitrary bytes, must not panic, and
//! checks the promise its parser makes; a broken promise panics, which both harnesses report.
//! Not part of the tool's interface.

use std::io::Write;

use super::{Format, ReadOptions, json_flat, json_row, readers};
use crate::normalize::profile::Profile;
use crate::normalize::schema::Field;
use crate::normalize::{ColdSink, Dictionaries, TimeParser};

/// The flat JSON scanner against serde_json, its oracle: on every line the scanner accepts, the
/// serde path yields exactly the same fields.
pub fn json_line(data: &[u8]) {
    let mut shape = json_flat::Shape::default();
    let Some(fast) = json_flat::parse(data, &mut shape) else {
        return;
    };
    let slow = json_row::parse_slow(data)
        .unwrap_or_else(|e| panic!("flat scanner accepted what serde rejects ({e}): {data:?}"));
    for field in Field::ALL {
        assert_eq!(
            fast.get(field),
            slow.get(field),
            "{} differs on {data:?}",
            field.name()
        );
    }
    // A second line with the same keys goes through the remembered shape.
    let again = json_flat::parse(data, &mut shape).expect("same line, same shape");
    for field in Field::ALL {
        assert_eq!(again.get(field), fast.get(field));
    }
}

/// Read options for the file targets (UTC, records bounded at 4 KiB), built once: parsing the
/// built-in profiles on every execution cost more than most inputs' reading.
fn options() -> Option<ReadOptions> {
    static BASE: std::sync::OnceLock<Option<ReadOptions>> = std::sync::OnceLock::new();
    BASE.get_or_init(|| {
        let mut opts = ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).ok()?;
        opts.max_record_bytes = 4096;
        Some(opts)
    })
    .clone()
}

/// One whole file through the reader of `source` (`None`: detected from content), compressed or
/// not: every record is parsed, rejected or ignored, the totals reconcile, and the frame holds
/// exactly the parsed records. Read from memory (see [`readers::read_bytes`]), except Parquet,
/// which is read from a file.
pub fn file(data: &[u8], source: Option<Format>) {
    let Some(mut opts) = options() else { return };
    opts.source = source.filter(|f| *f != Format::Profile);
    let result = if source == Some(Format::Parquet) {
        let Ok(dir) = tempfile::tempdir() else { return };
        let path = dir.path().join("input");
        let written = std::fs::File::create(&path).and_then(|mut f| f.write_all(data));
        if written.is_err() {
            return;
        }
        let mut dicts = Dictionaries::default();
        readers::read_file(&path, 0, None, &opts, &mut dicts, None)
    } else {
        readers::read_bytes(data.to_vec(), "input", &opts)
    };
    if result.skipped.is_some() || result.error.is_some() {
        return;
    }
    let s = &result.stats;
    assert_eq!(
        s.records,
        s.parsed + s.rejected + s.ignored,
        "totals do not reconcile: {s:?}"
    );
    let rows: usize = result.frames.iter().map(|f| f.height()).sum();
    assert_eq!(
        rows as u64, s.parsed,
        "frame rows differ from parsed records"
    );
    assert_eq!(
        result.rejects.listed + result.rejects.unlisted,
        s.rejected,
        "rejects counted apart from the totals"
    );
}

/// A file read in parts (see [`super::split`], [`super::split_stream`]) gives what one reader
/// gives: the first byte picks the part size (16 bytes and up) and, when odd, that the file is
/// gzipped (read as a stream decompressed on one core); the rest is the file, its format
/// detected from content.
pub fn file_split(data: &[u8]) {
    let Some((&size, content)) = data.split_first() else {
        return;
    };
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("input");
    let stored = if size % 2 == 1 {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        match gz.write_all(content).and_then(|()| gz.finish()) {
            Ok(packed) => packed,
            Err(_) => return,
        }
    } else {
        content.to_vec()
    };
    if std::fs::write(&path, stored).is_err() {
        return;
    }
    let read = |part_bytes: u64, spill: &str, cold: Option<u64>| {
        let spill = dir.path().join(spill);
        std::fs::create_dir_all(&spill).ok()?;
        let mut opts = options()?;
        opts.part_bytes = part_bytes;
        opts.cold = cold.map(|from| std::sync::Arc::new(ColdSink::new(&spill, from)));
        opts.spill_dir = Some(spill);
        let found = super::Discovered {
            events: vec![path.clone()],
            ..super::Discovered::default()
        };
        super::read_events(&found, &opts, false).ok()
    };
    // The parts also hand their cold columns to a sink: held, on disk from the first event, or
    // from a few events on (then the held ones follow at the end).
    let cold = [None, Some(0), Some(u64::from(size) % 7)][usize::from(size) % 3];
    let (Some(whole), Some(split)) = (
        read(u64::MAX / 4, "a", None),
        read(16 + u64::from(size), "b", cold),
    ) else {
        return;
    };
    let counts = |i: &super::Ingested| {
        i.files
            .iter()
            .map(|s| {
                (
                    s.records,
                    s.parsed,
                    s.rejected,
                    s.ignored,
                    s.blank,
                    s.warnings.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(&whole), counts(&split), "counts differ");
    let mut restored = split
        .cold
        .restore(&split.events)
        .expect("cold columns read back");
    // Keys and event types unpacked in fewer bytes past the bound compare as ingest made them.
    crate::frame::widen(&mut restored).expect("widened");
    let names = whole.events.get_column_names_owned();
    let (mut we, mut se) = (
        whole.events.clone(),
        restored.select(names).expect("columns"),
    );
    we.rechunk_mut();
    se.rechunk_mut();
    assert!(we.equals_missing(&se), "frames differ:\n{we}\n{se}");
    let listed = |i: &super::Ingested| {
        let mut out = Vec::new();
        for f in &i.rejects {
            let _ = f.for_each(|r| {
                out.push((r.line, r.reason, r.raw));
                Ok(())
            });
        }
        out
    };
    assert_eq!(listed(&whole), listed(&split), "rejects differ");
}

/// Timestamps: an accepted instant lies in the plausible range, and its RFC 3339 form reads back
/// as the same instant (to the millisecond).
pub fn timestamp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for tz in [chrono_tz::UTC, chrono_tz::America::Santiago] {
        let time = TimeParser::new(tz);
        if let Ok(ms) = time.parse(text) {
            assert!(
                (crate::normalize::time::PLAUSIBLE_MIN..crate::normalize::time::PLAUSIBLE_MAX)
                    .contains(&ms),
                "{text:?} → {ms}"
            );
            let day = time.local_day(ms);
            assert!(day.start <= ms && ms < day.end, "{text:?}: {day:?}");
            let shown = chrono::DateTime::from_timestamp_millis(ms)
                .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            if let Some(shown) = shown {
                assert_eq!(time.parse(&shown), Ok(ms), "{text:?} shown as {shown}");
            }
        }
        let _ = time.end_of_day(text);
        let _ = time.start_of_day(text);
    }
}

/// A mapping profile (TOML) and a JSON record it is applied to, separated by the first NUL
/// byte: loading either fails cleanly or maps without panicking.
pub fn profile(data: &[u8]) {
    let (toml, record) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b"{}"[..]),
    };
    let Ok(toml) = std::str::from_utf8(toml) else {
        return;
    };
    let Ok(profile) = Profile::parse(toml, std::path::Path::new("fuzz.toml")) else {
        return;
    };
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(record) {
        let _ = profile.recognizes(&value);
        let _ = profile.apply(&value);
    }
}

/// Context files (roster, inventory, allowlist) from arbitrary bytes, possibly compressed: a
/// clean error or a table, never a panic.
pub fn context(data: &[u8]) {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("context");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let time = TimeParser::new(chrono_tz::UTC);
    let _ = crate::context::load_roster(&path, &time);
    let _ = crate::context::load_credentials(&path, &time);
    let _ = crate::context::load_allowlist(&path, &time);
}

/// The reduced records ([`crate::reduce`]) against counting over every event, their oracle:
/// events decoded from the bytes (six a record), in a zone the first byte picks among whole,
/// half and three-quarter hour offsets and midnight DST changes, over 40 days around spring
/// changes. Reduced whole, and night by night into `1..=4` partitions of whole local days, every
/// profile of every kind equals [`crate::detect::reach::AccessRows`]'.
pub fn reduce(data: &[u8]) {
    use crate::detect::reach::AccessRows;
    use crate::normalize::schema::col as c;
    use crate::reduce::{KINDS, Reduced, Symbols, Walk};
    use polars::prelude::*;
    const ZONES: [chrono_tz::Tz; 7] = [
        chrono_tz::UTC,
        chrono_tz::Asia::Kolkata,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Pacific::Chatham,
        chrono_tz::America::Santiago,
        chrono_tz::Asia::Kathmandu,
    ];
    const BASE: i64 = 1_740_787_200_000; // 2025-03-01T00:00:00Z
    const WALK: Walk = Walk {
        max_step: 3,
        max_gap_ms: 6 * 3_600_000,
    };
    let [zone, parts, records @ ..] = data else {
        return;
    };
    let time = TimeParser::new(ZONES[*zone as usize % ZONES.len()]);
    let mut columns: [Vec<Option<String>>; 6] = Default::default();
    let mut ts = Vec::new();
    for r in records.chunks_exact(6) {
        let minute = i64::from(u16::from_be_bytes([r[1], r[2]]) % 1440);
        ts.push(BASE + i64::from(r[0] % 40) * 86_400_000 + minute * 60_000);
        let kind = if r[5] & 3 == 3 { "login" } else { "access" };
        let principal = match r[3] % 16 {
            p @ 0..8 => format!("C{:04}", p),
            p => format!("staff{p}"),
        };
        let target = match r[4] {
            255 => None,
            t @ 240.. => Some(format!("acct-{t}")),
            t => Some(format!("C{:04}", t % 40)),
        };
        let credential = (r[5] & 12 != 0).then(|| format!("key-{}", r[5] >> 2 & 3));
        let ip = (r[5] & 16 != 0).then(|| format!("10.0.{}.{}", r[5] >> 5 & 1, r[5] >> 6));
        let network = ip.as_ref().map(|_| format!("10.0.{}.0/24", r[5] >> 5 & 1));
        let row = [
            Some(kind.into()),
            // Principal 15 stands for none: with no key or address, a row no entity holds.
            Some(principal).filter(|p| p != "staff15"),
            credential,
            ip,
            network,
            target,
        ];
        for (column, value) in columns.iter_mut().zip(row) {
            column.push(value);
        }
    }
    let names = [
        c::EVENT_TYPE,
        c::PRINCIPAL,
        c::CREDENTIAL,
        c::SOURCE_IP,
        c::NETWORK,
        c::TARGET,
    ];
    let frame = |keep: &dyn Fn(usize) -> bool| -> DataFrame {
        let rows: Vec<usize> = (0..ts.len()).filter(|&i| keep(i)).collect();
        let mut cols = vec![Column::new(
            c::TS.into(),
            rows.iter().map(|&i| ts[i]).collect::<Vec<_>>(),
        )];
        for (name, values) in names.iter().zip(&columns) {
            let values: Vec<Option<String>> = rows.iter().map(|&i| values[i].clone()).collect();
            cols.push(crate::frame::key_column(name, values).expect("codes"));
        }
        DataFrame::new_infer_height(cols).expect("frame")
    };
    let events = frame(&|_| true);
    let access = AccessRows::new(&events).expect("access rows");
    let n = usize::from(*parts % 4) + 1;
    let day = |i: usize| time.local_day(ts[i]).day.rem_euclid(n as i64) as usize;
    let mut symbols = Symbols::new();
    let whole = Reduced::of(&events, &time, WALK, &mut symbols).expect("reduce");
    let mut nights = Reduced::default();
    for p in (0..n).rev() {
        let part =
            Reduced::of(&frame(&|i| day(i) == p), &time, WALK, &mut symbols).expect("reduce");
        nights = nights.merge(part);
    }
    assert_eq!(nights.overlapping, 0, "whole local days overlapped");
    // A state's way: the days of one class dropped from the records, and reduced again.
    let dropped: std::collections::BTreeSet<i64> = (0..ts.len())
        .filter(|&i| day(i) == 0)
        .map(|i| time.local_day(ts[i]).day)
        .collect();
    let left = whole.clone().without_days(&dropped);
    let again = Reduced::of(&frame(&|i| day(i) == 0), &time, WALK, &mut symbols).expect("reduce");
    let kept = left.clone().merge(again);
    assert_eq!(kept.overlapping, 0, "days reduced again overlapped");
    let rest = frame(&|i| day(i) != 0);
    let rest_access = AccessRows::new(&rest).expect("access rows");
    for key in KINDS {
        let want = format!(
            "{:?}",
            access
                .profiles(&events, key, WALK, 0, &time)
                .expect("profiles")
        );
        for (how, reduced) in [("whole", &whole), ("nights", &nights), ("kept", &kept)] {
            let got = format!("{:?}", reduced.profiles(key, &symbols, WALK, 0));
            assert_eq!(got, want, "{key}, {how}");
        }
        let want = rest_access
            .profiles(&rest, key, WALK, 0, &time)
            .expect("profiles");
        let got = left.profiles(key, &symbols, WALK, 0);
        assert_eq!(
            format!("{got:?}"),
            format!("{want:?}"),
            "{key}, days dropped"
        );
    }
    for (how, reduced, access) in [
        ("whole", &whole, &access),
        ("kept", &kept, &access),
        ("days dropped", &left, &rest_access),
    ] {
        assert_eq!(reduced.accounts.len(), access.accounts() as u64, "{how}");
    }
}
