use std::io::Write;

use crate::util::*;

/// An access export of `n` good lines after the header, with `bad` put in place of line `at`.
fn access_csv(n: usize, at: usize, bad: &str) -> String {
    let mut text =
        String::from("timestamp,event_type,principal,source_ip,target_account,user_agent\n");
    for i in 2..n + 2 {
        if i == at {
            text.push_str(bad);
        } else {
            text.push_str(&format!(
                "2025-03-01T10:{:02}:{:02}Z,access,E2,10.0.0.1,C{i},curl\n",
                (i / 60) % 60,
                i % 60
            ));
        }
    }
    text
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).expect("gzip");
    e.finish().expect("gzip")
}

fn file_row<'a>(summary: &'a str, file: &str) -> &'a str {
    summary
        .lines()
        .find(|l| l.contains(file) && l.contains("| csv |"))
        .unwrap_or_else(|| panic!("no row for {file}: {summary}"))
}

#[test]
fn an_unclosed_quote_costs_one_line_not_the_rest_of_the_file() {
    let dir = tmp();
    let bad = "2025-03-01T10:00:00Z,access,E2,10.0.0.1,C0,\"Mozilla/5.0 (unquoted exporter\n";
    write(&dir.path().join("in/events.csv"), &access_csv(1000, 5, bad));
    let out = dir.path().join("out");
    analyze_ok(&out, &[dir.path().join("in").to_str().unwrap()]);
    let summary = summary_md(&out);
    assert!(
        file_row(&summary, "events.csv").contains("| 1000 | 999 | 1 |"),
        "{summary}"
    );
    let rejects = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["line"], "5");
    assert!(
        rejects[0]["reason"].contains("unterminated quoted field"),
        "{rejects:?}"
    );
}

#[test]
fn a_record_past_the_size_bound_is_cut_and_reading_resumes() {
    let dir = tmp();
    let long = format!(
        "2025-03-01T10:00:00Z,access,E2,10.0.0.1,C0,{}\n",
        "A".repeat(50_000)
    );
    write(
        &dir.path().join("in/events.csv"),
        &access_csv(100, 3, &long),
    );
    let out = dir.path().join("out");
    analyze_ok(
        &out,
        &[
            dir.path().join("in").to_str().unwrap(),
            "--max-record-bytes",
            "4096",
        ],
    );
    let rejects = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 1, "{rejects:?}");
    assert_eq!(rejects[0]["line"], "3");
    assert!(
        rejects[0]["reason"].contains("--max-record-bytes"),
        "{rejects:?}"
    );
    assert!(file_row(&summary_md(&out), "events.csv").contains("| 100 | 99 | 1 |"));
}

/// A compressed document with a valid start and then only padding (a bomb): the reader stops at
/// the record bound with a reject instead of decompressing it all into memory.
#[test]
fn a_cloudtrail_document_that_never_ends_is_rejected_at_the_bound() {
    let dir = tmp();
    let mut doc = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2025-03-01T10:00:00Z","eventSource":"iam.amazonaws.com","eventName":"ListUsers","userIdentity":{"type":"IAMUser","userName":"alice","accessKeyId":"AKIA1"},"sourceIPAddress":"10.0.0.1"},"#.to_vec();
    doc.extend(std::iter::repeat_n(b' ', 8 << 20));
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    std::fs::write(dir.path().join("in/trail.json.gz"), gz(&doc)).expect("write");
    let out = dir.path().join("out");
    analyze_ok(&out, &[dir.path().join("in").to_str().unwrap()]);
    let rejects = read_csv(&out.join("rejects.csv"));
    assert!(
        rejects
            .iter()
            .any(|r| r["reason"].contains("--max-record-bytes")),
        "{rejects:?}"
    );
    let summary = summary_md(&out);
    assert!(summary.contains("| cloudtrail | 2 | 1 | 1 |"), "{summary}");
}

#[test]
fn an_input_that_cannot_be_read_is_not_a_clean_run() {
    let dir = tmp();
    let full = gz(access_csv(3000, 0, "").as_bytes());
    std::fs::create_dir_all(dir.path().join("in")).expect("mkdir");
    std::fs::write(dir.path().join("in/events.csv.gz"), &full[..full.len() / 2]).expect("write");
    let out = dir.path().join("out");
    let input = dir.path().join("in");
    let o = analyze(&out, &[input.to_str().unwrap(), "--fail-on", "low"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--keep-going"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = analyze(&out, &[input.to_str().unwrap(), "--keep-going"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    assert!(summary_md(&out).contains("INCOMPLETE INPUT"));
}

/// Found by the `file_parquet` fuzz target: a footer whose statistics carry a non-bool field
/// where a bool is due, and a page whose encoding is out of range (decoded on a polars worker
/// thread), make polars' decoder panic; a third footer declares a list too long to allocate.
/// Each file is unreadable, with the decoder's reason, the
/// other file is read, and nothing on stderr looks like audithound crashed.
#[test]
fn a_parquet_file_that_panics_the_decoder_ends_that_file_only() {
    let cases = [
        ("footer-bad-thrift-bool", "thrift bool field"),
        ("page-encoding-out-of-range", "Thrift out of range"),
        // Under the fuzzer's allocator its footer's list length failed an allocation (an abort
        // no catch can stop); the binary gets polars' error instead.
        ("footer-huge-list", "RowGroup.columns missing"),
    ];
    let dir = tmp();
    let input = dir.path().join("in");
    std::fs::create_dir_all(&input).expect("mkdir");
    let fixtures = repo().join("tests/fixtures/parquet");
    for (name, _) in cases {
        let file = format!("{name}.parquet");
        std::fs::copy(fixtures.join(&file), input.join(&file)).expect("copy");
    }
    std::fs::write(input.join("events.csv"), access_csv(50, 0, "")).expect("write");
    let out = dir.path().join("out");
    let o = analyze(&out, &[input.to_str().unwrap(), "--keep-going"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    for (name, reason) in cases {
        let line = (err.lines())
            .find(|l| l.contains(&format!("{name}.parquet: could not be read completely")))
            .unwrap_or_else(|| panic!("{name}: {err}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(summary_md(&out).contains("INCOMPLETE INPUT"));
    assert!(file_row(&summary_md(&out), "events.csv").contains("| 50 |"));
}

#[test]
fn a_pipe_named_as_input_fails_at_once_instead_of_hanging() {
    let dir = tmp();
    let fifo = dir.path().join("events.csv");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(made.success());
    let o = bin()
        .arg("analyze")
        .arg(&fifo)
        .arg("--out")
        .arg(dir.path().join("out"))
        .arg("--quiet")
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
}

#[test]
fn a_hard_linked_file_is_read_once() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(&input.join("a.csv"), &access_csv(10, 0, ""));
    std::fs::hard_link(input.join("a.csv"), input.join("b.csv")).expect("hard link");
    let out = dir.path().join("out");
    analyze_ok(&out, &[input.to_str().unwrap()]);
    let summary = summary_md(&out);
    assert!(summary.contains("| total |  | 10 | 10 | 0 |"), "{summary}");
}

#[test]
fn a_duplicated_roster_column_is_refused() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(
        &input.join("roster.csv"),
        "employee_id,name,termination_date,termination_date\nE1,Alice,2025-01-31,\n",
    );
    write(&input.join("events.csv"), &access_csv(3, 0, ""));
    let o = analyze(&dir.path().join("out"), &[input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("termination_date") && stderr(&o).contains("more than once"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn timestamps_far_outside_any_log_are_rejected_with_a_reason() {
    let dir = tmp();
    let input = dir.path().join("in");
    let mut text = access_csv(50, 0, "");
    text.push_str("0000-01-01T00:00:00Z,access,E2,10.0.0.1,C1,curl\n");
    text.push_str("9999-12-31T23:59:59Z,access,E2,10.0.0.1,C1,curl\n");
    write(&input.join("events.csv"), &text);
    let out = dir.path().join("out");
    analyze_ok(&out, &[input.to_str().unwrap()]);
    let rejects = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 2, "{rejects:?}");
    assert!(
        rejects
            .iter()
            .all(|r| r["reason"].contains("plausible range"))
    );
}

#[test]
fn out_of_range_flags_and_a_profile_source_without_profile_are_refused() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(&input.join("events.csv"), &access_csv(3, 0, ""));
    let i = input.to_str().unwrap();
    for args in [
        vec![i, "--rotation-grace-hours", "9223372036854775807"],
        vec![i, "--rotation-grace-hours", "-1"],
        vec![i, "--max-token-age-hours", "0"],
        vec![i, "--source", "profile"],
    ] {
        let o = analyze(&dir.path().join("out"), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(!dir.path().join("out").exists());
    }
}

#[test]
fn a_profile_with_a_bad_delimiter_or_time_format_fails_at_load() {
    let dir = tmp();
    let input = dir.path().join("in");
    write(&input.join("events.csv"), &access_csv(3, 0, ""));
    for (name, body) in [
        (
            "delim",
            "name = \"x\"\nformat = \"csv\"\ndelimiter = \"\\\"\"\n",
        ),
        (
            "fmt",
            "name = \"x\"\nformat = \"csv\"\n[time]\nformat = \"%Q-%Y\"\n",
        ),
        (
            "nodate",
            "name = \"x\"\nformat = \"csv\"\n[time]\nformat = \"when\"\n",
        ),
    ] {
        let profile = dir.path().join(format!("{name}.toml"));
        write(&profile, body);
        let o = analyze(
            &dir.path().join("out"),
            &[
                input.to_str().unwrap(),
                "--profile",
                profile.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(&format!("{name}.toml")),
            "{}",
            stderr(&o)
        );
    }
}

#[test]
fn hostile_ids_reach_the_terminal_escaped() {
    let dir = tmp();
    let input = dir.path().join("in");
    let id = "E\u{1b}]0;owned\u{7}1";
    write(
        &input.join("roster.csv"),
        &format!("employee_id,name,termination_date\n{id},Mallory,2025-01-31\n"),
    );
    let mut text = String::from("timestamp,event_type,principal,source_ip,outcome\n");
    for d in 1..20 {
        text.push_str(&format!(
            "2025-02-{d:02}T10:00:00Z,login,{id},10.0.0.9,success\n"
        ));
    }
    write(&input.join("events.csv"), &text);
    let o = bin()
        .arg("analyze")
        .arg(&input)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("E\\u{1b}]0;owned\\u{7}1"), "{stdout}");
    assert!(!o.stdout.iter().any(|b| *b == 0x1b || *b == 0x07));
    assert!(!o.stderr.iter().any(|b| *b == 0x1b || *b == 0x07));
}

/// One broken or foreign first line no longer decides a whole file's format.
#[test]
fn format_is_decided_from_a_sample_of_lines_not_the_first() {
    let dir = tmp();
    let input = dir.path().join("in");
    let mut jsonl = String::from("{\"timestamp\":\"2025-03-01T10:00:00Z\",\"event_type\n");
    for i in 0..30 {
        jsonl.push_str(&format!(
            "{{\"timestamp\":\"2025-03-01T10:{i:02}:00Z\",\"event_type\":\"login\",\"principal\":\"E2\"}}\n"
        ));
    }
    write(&input.join("a.jsonl"), &jsonl);
    let mut auth = String::from("garbage from a log shipper restart\n");
    for i in 0..30 {
        auth.push_str(&format!(
            "Mar  1 10:{i:02}:00 web1 sshd[42]: Failed password for root from 198.51.100.7 port 22 ssh2\n"
        ));
    }
    write(&input.join("auth.log"), &auth);
    let out = dir.path().join("out");
    analyze_ok(&out, &[input.to_str().unwrap(), "--syslog-year", "2025"]);
    let summary = summary_md(&out);
    assert!(
        summary.contains("a.jsonl | jsonl | 31 | 30 | 1 |"),
        "{summary}"
    );
    assert!(
        summary.contains("auth.log | authlog | 31 | 30 | 1 |"),
        "{summary}"
    );
    assert!(summary.contains("0 skipped"), "{summary}");
}

/// Runs `analyze` on `input` and returns its exit code and peak resident memory in MB, as the
/// run reports it (`--timings`: the kernel's high-water mark of its own address space, which a
/// parent's `wait4` cannot give: a spawned child's count starts from the test process's pages).
fn analyze_peak_mb(input: &std::path::Path, out: &std::path::Path) -> (i32, u64) {
    let o = bin()
        .arg("analyze")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(["--quiet", "--keep-going", "--timings"])
        .output()
        .expect("runs");
    let err = stderr(&o);
    let peak_kb = err
        .lines()
        .filter(|l| l.starts_with("timing:"))
        .filter_map(|l| {
            l.split("peak")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or_else(|| panic!("no peak in {err}"));
    (o.status.code().unwrap_or(-1), peak_kb / 1024)
}

/// A million rejected records: they go to rejects.csv as they come (at most 100,000 listed per
/// file, the rest counted) instead of staying in memory (270 bytes each: over 270 MB here).
#[test]
fn a_million_rejects_stay_on_disk_not_in_memory() {
    let dir = tmp();
    let input = dir.path().join("in");
    let mut text = String::from("timestamp,event_type,principal,target_account\n");
    for i in 0..1_000_000 {
        text.push_str(&format!("not a time {i},access,E1,C1,extra\n"));
    }
    write(&input.join("events.csv"), &text);
    let out = dir.path().join("out");
    let (code, peak) = analyze_peak_mb(&input, &out);
    assert_eq!(code, 0);
    assert!(peak < 200, "peak {peak} MB");
    let rejects = read_csv(&out.join("rejects.csv"));
    assert_eq!(rejects.len(), 100_000);
    assert_eq!(
        (
            rejects[0]["line"].as_str(),
            rejects[99_999]["line"].as_str()
        ),
        ("2", "100001")
    );
    let summary = summary_md(&out);
    assert!(summary.contains("| 1000000 | 0 | 1000000 |"), "{summary}");
    assert!(summary.contains("events.csv (900000 more)"), "{summary}");
}

/// Bombs: a few hundred MB of one endless line, gzip and zstd compressed to almost nothing. Each
/// is cut at the record bound with a reject, in bounded memory.
#[test]
fn compressed_bombs_stay_under_200_mb() {
    let dir = tmp();
    let mut body = b"timestamp,event_type,principal\n".to_vec();
    body.extend(std::iter::repeat_n(b'a', 256 << 20));
    let zst = zstd::encode_all(&body[..], 1).expect("zstd");
    let gzipped = gz(&body);
    drop(body);
    for (name, bytes) in [("bomb.csv.gz", gzipped), ("bomb.csv.zst", zst)] {
        let input = dir.path().join(format!("in-{name}"));
        std::fs::create_dir_all(&input).expect("mkdir");
        std::fs::write(input.join(name), bytes).expect("write");
        let out = dir.path().join(format!("out-{name}"));
        let (code, peak) = analyze_peak_mb(&input, &out);
        assert_eq!(code, 0, "{name}");
        assert!(peak < 200, "{name}: peak {peak} MB");
        let rejects = read_csv(&out.join("rejects.csv"));
        assert!(
            rejects
                .iter()
                .any(|r| r["reason"].contains("--max-record-bytes")),
            "{name}: {rejects:?}"
        );
    }
}

/// An event file whose header names a field twice (the second copy empty): the first column is
/// read, and the run says so on stderr and in the summary instead of letting the last copy win.
#[test]
fn a_field_named_twice_in_an_event_header_is_a_counted_warning() {
    let dir = tmp();
    let input = dir.path().join("in");
    let mut text = String::from("timestamp,event_type,principal,target_account,principal\n");
    for i in 0..150 {
        text.push_str(&format!(
            "2025-03-01T10:{:02}:{:02}Z,access,E9,C{i},\n",
            i / 60,
            i % 60
        ));
    }
    write(&input.join("events.csv"), &text);
    let out = dir.path().join("out");
    let o = analyze(&out, &[input.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("column principal is named more than once"),
        "{}",
        stderr(&o)
    );
    let summary = summary_md(&out);
    assert!(summary.contains("1 warning(s)"), "{summary}");
    // The first principal column was read, not the empty last one.
    let text = inspect(&input);
    assert!(text.contains("principal 100%"), "{text}");
}

/// What the bound's error says a run held when it stopped, in MiB.
fn held_mib(stderr: &str) -> u64 {
    let after = stderr.split("holds ").nth(1).expect("says what it held");
    let (number, unit) = after.split_once(' ').expect("a number and a unit");
    let number: f64 = number.parse().expect("a number");
    match unit.get(..3) {
        Some("GiB") => (number * 1024.0) as u64,
        _ => number as u64,
    }
}

/// A run that would hold more memory than `--max-memory` stops itself with exit 2 and says why,
/// instead of being killed by the kernel without a word: nothing written, its scratch (spilled
/// columns, quarantined lines) removed, the previous report kept.
#[test]
fn a_run_past_its_memory_bound_stops_with_a_reason_and_leaves_nothing() {
    let dir = tmp();
    let out = dir.path().join("report");
    let sample = repo().join("sample_logs");
    let sample = sample.to_str().expect("utf-8");
    let o = analyze(&out, &[sample, "--max-memory", "none"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = files_under(&out);
    // Below what a run holds from its start, then a little above it: the second stops mid-way,
    // its scratch made and the cold columns spilling into it.
    let o = analyze(&out, &[sample, "--force", "--max-memory", "1M"]);
    failed_saying(&o, "past its bound of 1 MiB (--max-memory 1M)");
    let bound = format!("{}M", held_mib(&stderr(&o)) + 8);
    let args = [sample, "--force", "--spill-from-events", "0"];
    let o = analyze(&out, &[&args[..], &["--max-memory", &bound]].concat());
    failed_saying(&o, "nothing written");
    assert_eq!(files_under(&out), before, "the previous report changed");
    assert_eq!(leftovers(dir.path()), Vec::<std::ffi::OsString>::new());
    // A bound that is no size is refused before any work.
    let o = analyze(&out, &[sample, "--force", "--max-memory", "12 pints"]);
    failed_saying(&o, "invalid --max-memory");
    // `ingest` is bounded as well, with advice of its own, and leaves no state behind.
    let state = dir.path().join("state");
    let o = bin()
        .args(["ingest", sample, "--quiet", "--max-memory", "1M", "--state"])
        .arg(&state)
        .output()
        .expect("runs");
    failed_saying(&o, "--state-group-bytes");
    assert!(!state.join("state.json").exists());
}
