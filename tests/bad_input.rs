use std::io::Write;

use crate::util::*;

fn fixture_dir() -> tempfile::TempDir {
    let dir = tmp();
    write(&dir.path().join("in/roster.csv"), ROSTER);
    write(&dir.path().join("in/credentials.csv"), CREDS);
    dir
}

#[test]
fn missing_input_is_a_one_line_error_with_exit_2() {
    let dir = tmp();
    let out = analyze(&dir.path().join("out"), &["/no/such/export"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("/no/such/export") && err.contains("does not exist"),
        "{err}"
    );
    assert!(
        !dir.path().join("out").exists(),
        "no report may be left behind"
    );
}

#[test]
fn unknown_time_zone_is_refused() {
    let dir = fixture_dir();
    write(
        &dir.path().join("in/e.jsonl"),
        "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"event_type\":\"login\"}\n",
    );
    let input = dir.path().join("in");
    let out = analyze(
        &dir.path().join("out"),
        &[input.to_str().unwrap(), "--timezone", "Mars/Olympus"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("Mars/Olympus"), "{}", stderr(&out));
}

/// Runs on a one-event export with `roster` as its roster; the run must fail with exit code 2.
fn run_with_roster(roster: &str) -> String {
    let dir = fixture_dir();
    write(&dir.path().join("in/roster.csv"), roster);
    write(
        &dir.path().join("in/e.jsonl"),
        "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"event_type\":\"login\"}\n",
    );
    let input = dir.path().join("in");
    let out = analyze(&dir.path().join("out"), &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        !dir.path().join("out").exists(),
        "no report may be left behind"
    );
    stderr(&out)
}

#[test]
fn context_file_with_wrong_header_names_file_and_column() {
    let err = run_with_roster("id,name,left\nE1,Alice,2025-01-01\n");
    assert!(
        err.contains("roster.csv") && err.contains("employee_id"),
        "{err}"
    );
}

#[test]
fn context_row_with_bad_date_names_the_line() {
    let err = run_with_roster("employee_id,termination_date\nE1,2025-01-01\nE2,last tuesday\n");
    assert!(
        err.contains("roster.csv:3") && err.contains("last tuesday"),
        "{err}"
    );
}

/// Every kind of malformed line is quarantined with file, line and reason; good lines still count.
#[test]
fn malformed_lines_are_quarantined_and_totals_reconcile() {
    let dir = fixture_dir();
    let input = dir.path().join("in");
    write(
        &input.join("a.jsonl"),
        "{\"timestamp\":\"2025-02-01T00:00:00Z\",\"event_type\":\"login\",\"principal\":\"E1\"}\n\
         {not json\n\
         {\"timestamp\":\"someday\",\"event_type\":\"login\"}\n\
         [1,2]\n\
         {\"timestamp\":\"2025-02-01T00:00:00Z\",\"event_type\":\"login\",\"outcome\":\"perhaps\"}\n",
    );
    write(
        &input.join("b.csv"),
        "timestamp,event_type,principal,extra\n1738368000000,access,E1,x\n1738368000000,access\n",
    );
    let mut bad_utf8 =
        "timestamp,event_type,principal\n1738368000,login,E2\n1738368000,login,Zoë\n1738368000,login,"
            .as_bytes()
            .to_vec();
    bad_utf8.extend_from_slice(&[0xff, 0xfe, b'\n']);
    std::fs::write(input.join("c.csv"), bad_utf8).unwrap();
    // A gzip file cut in the middle.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    for i in 0..2000 {
        writeln!(
            gz,
            "{{\"timestamp\":{},\"event_type\":\"login\",\"principal\":\"E2\"}}",
            1_738_368_000 + i
        )
        .unwrap();
    }
    let full = gz.finish().unwrap();
    std::fs::write(input.join("d.jsonl.gz"), &full[..full.len() / 2]).unwrap();

    let out_dir = dir.path().join("out");
    // The cut gzip leaves the input incomplete: an error unless the run is told to keep going.
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("d.jsonl.gz"), "{}", stderr(&out));
    assert!(!out_dir.exists(), "no report without --keep-going");
    let out = analyze(&out_dir, &[input.to_str().unwrap(), "--keep-going"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let rejects = read_csv(&out_dir.join("rejects.csv"));
    let has = |file: &str, line: &str, reason: &str| {
        rejects
            .iter()
            .any(|r| r["file"].ends_with(file) && r["line"] == line && r["reason"].contains(reason))
    };
    assert!(has("a.jsonl", "2", "invalid JSON"), "{rejects:?}");
    assert!(has("a.jsonl", "3", "someday"), "{rejects:?}");
    assert!(has("a.jsonl", "4", "JSON object"), "{rejects:?}");
    assert!(has("a.jsonl", "5", "outcome"), "{rejects:?}");
    assert!(has("b.csv", "3", "expected 4 columns"), "{rejects:?}");
    // Non-ASCII UTF-8 is a value, not an error; only the broken bytes are quarantined.
    assert!(has("c.csv", "4", "UTF-8"), "{rejects:?}");
    assert!(!has("c.csv", "3", ""), "{rejects:?}");
    assert!(
        rejects.iter().any(|r| r["file"].ends_with("d.jsonl.gz")),
        "truncated gzip not reported: {rejects:?}"
    );
    let summary = summary_md(&out_dir);
    assert!(summary.contains(": reconciles"), "{summary}");
    // a.jsonl: 5 records, 1 parsed, 4 rejected.
    assert!(summary.contains("| 5 | 1 | 4 |"), "{summary}");
}

#[test]
fn unknown_files_are_skipped_and_listed() {
    let dir = fixture_dir();
    let input = dir.path().join("in");
    write(
        &input.join("e.jsonl"),
        "{\"timestamp\":\"2025-01-01T00:00:00Z\",\"event_type\":\"login\"}\n",
    );
    write(&input.join("notes.txt"), "hello\n");
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("notes.txt"), "{}", stderr(&out));
    let summary = summary_md(&out_dir);
    assert!(summary.contains("notes.txt"), "{summary}");
}

/// Garbage of every kind is skipped or quarantined; the run completes and reconciles.
#[test]
fn binary_garbage_never_crashes_the_run() {
    let dir = fixture_dir();
    let input = dir.path().join("in");
    let mut noise = Vec::new();
    let mut x: u32 = 12345;
    for _ in 0..20_000 {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        noise.push((x >> 16) as u8);
    }
    std::fs::write(input.join("noise.bin"), &noise).unwrap();
    std::fs::write(
        input.join("noise.jsonl"),
        [
            b"{\"timestamp\":1,\"event_type\":\"x\"}\n".as_slice(),
            &noise,
        ]
        .concat(),
    )
    .unwrap();
    std::fs::write(
        input.join("noise.csv"),
        [b"timestamp,event_type\n".as_slice(), &noise].concat(),
    )
    .unwrap();
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
    gz.extend_from_slice(&noise[..500]);
    std::fs::write(input.join("broken.gz"), gz).unwrap();
    std::fs::write(
        input.join("broken.zst"),
        [&[0x28u8, 0xb5, 0x2f, 0xfd][..], &noise[..500]].concat(),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    // The two broken streams leave the input incomplete: reported only when told to keep going.
    let out = analyze(&out_dir, &[input.to_str().unwrap(), "--keep-going"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let summary = summary_md(&out_dir);
    assert!(summary.contains(": reconciles"), "{summary}");
    assert!(summary.contains("noise.bin"), "{summary}");
}

/// The event type is two bytes an event: a run holds 65,535 distinct types (an API's operation
/// names fit), and each row of a type past them is quarantined with its line and why, not
/// dropped and not a failed run.
#[test]
fn event_types_past_what_a_run_holds_are_quarantined() {
    let dir = fixture_dir();
    let input = dir.path().join("in");
    let mut csv = String::from("timestamp,event_type,principal\n");
    for i in 0..65_600 {
        csv.push_str(&format!("{},Type-{i:05},E1\n", 1_738_368_000 + i));
    }
    write(&input.join("types.csv"), &csv);
    let out_dir = dir.path().join("out");
    let out = analyze(&out_dir, &[input.to_str().unwrap()]);
    assert!(out_dir.join("rejects.csv").exists(), "{}", stderr(&out));
    let rejects = read_csv(&out_dir.join("rejects.csv"));
    assert_eq!(rejects.len(), 65, "{rejects:?}");
    // Rows 65,536-65,600 of the file are its lines 65,537-65,601.
    for (r, line) in rejects.iter().zip(65_537..) {
        assert!(r["file"].ends_with("types.csv"), "{r:?}");
        assert_eq!(r["line"], line.to_string(), "{r:?}");
        assert!(r["reason"].contains("past the 65535"), "{r:?}");
    }
    let summary = summary_md(&out_dir);
    assert!(summary.contains(": reconciles"), "{summary}");
    assert!(summary.contains("| 65600 | 65535 | 65 |"), "{summary}");
}
