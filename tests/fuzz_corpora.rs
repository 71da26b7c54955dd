//! The fuzz targets' saved corpora (`fuzz/corpus/<target>/`), replayed through the same entry
//! points the fuzzers call: every input a fuzzer found interesting, or that once broke a parser,
//! stays a regression test without fuzzing in CI.

use audithound::ingest::Format;
use audithound::ingest::fuzzing;

fn replay(target: &str, run: impl Fn(&[u8])) {
    let dir = crate::util::repo().join("fuzz/corpus").join(target);
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| Some(e.ok()?.path()))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no corpus in {}", dir.display());
    for path in entries {
        let data = std::fs::read(&path).expect("corpus file");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{} broke its promise", path.display());
    }
}

#[test]
fn json_line() {
    replay("json_line", fuzzing::json_line);
}

#[test]
fn file_csv() {
    replay("file_csv", |data| fuzzing::file(data, Some(Format::Csv)));
}

#[test]
fn file_jsonl() {
    replay("file_jsonl", |data| {
        fuzzing::file(data, Some(Format::JsonLines))
    });
}

#[test]
fn file_cloudtrail() {
    replay("file_cloudtrail", |data| {
        fuzzing::file(data, Some(Format::CloudTrail))
    });
}

#[test]
fn file_okta() {
    replay("file_okta", |data| fuzzing::file(data, Some(Format::Okta)));
}

#[test]
fn file_authlog() {
    replay("file_authlog", |data| {
        fuzzing::file(data, Some(Format::AuthLog))
    });
}

#[test]
fn file_detect() {
    replay("file_detect", |data| fuzzing::file(data, None));
}

#[test]
fn reduce() {
    replay("reduce", fuzzing::reduce);
}

#[test]
fn timestamp() {
    replay("timestamp", fuzzing::timestamp);
}

#[test]
fn profile() {
    replay("profile", fuzzing::profile);
}

#[test]
fn context() {
    replay("context", fuzzing::context);
}

#[test]
fn file_evtx() {
    replay("file_evtx", |data| fuzzing::file(data, Some(Format::Evtx)));
}

#[test]
fn file_windows() {
    replay("file_windows", |data| {
        fuzzing::file(data, Some(Format::Windows))
    });
}

#[test]
fn file_windows_xml() {
    replay("file_windows_xml", |data| {
        fuzzing::file(data, Some(Format::WindowsXml))
    });
}

#[test]
fn file_parquet() {
    replay("file_parquet", |data| {
        fuzzing::file(data, Some(Format::Parquet))
    });
}

#[test]
fn file_split() {
    replay("file_split", fuzzing::file_split);
}
