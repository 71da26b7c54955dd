//! `--state`: nightly runs that read only new files report exactly what one run over all the
//! files reports; the same night twice, or a file delivered again under another name, counts
//! nothing twice; `--retain` ages old nights out; a state is never an input or another folder.

use std::path::{Path, PathBuf};

use crate::util::*;

const NIGHTS: u32 = 30;

/// Thirty nights of a gateway and its token issuer, one folder per night, in the sources' own
/// syntax: the access log as CSV, the issuer as JSON lines. E9 leaves on 03-10 and keeps using
/// his key from night 12 on, walking customer accounts; from night 20 tokens signed with kid-1
/// that the issuer never issued appear. Night 7 has a broken line, night 9 a file of no known
/// format.
pub(crate) fn nights(root: &Path) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let roster = root.join("context/roster.csv");
    write(
        &roster,
        "employee_id,name,department,hire_date,termination_date\n\
         E1,Ann,support,2020-01-01,\nE2,Ben,support,2020-01-01,\nE9,Eve,engineering,2020-01-01,2025-03-10\n",
    );
    let credentials = root.join("context/credentials.csv");
    write(
        &credentials,
        "credential_id,owner,kind,created,revoked\n\
         key-e1,E1,api_key,2020-01-01,\nkey-e2,E2,api_key,2020-01-01,\nkey-e9,E9,api_key,2020-01-01,\n\
         kid-1,issuer,signing_key,2020-01-01,\n",
    );
    let mut dirs = Vec::new();
    for n in 1..=NIGHTS {
        let dir = root.join(format!("nights/n{n:02}"));
        let mut access = String::from(
            "timestamp,event_type,principal,credential_id,token_id,source_ip,action,target_account,outcome\n",
        );
        let mut issued = String::new();
        for c in 0..40u32 {
            let minute = (c * 7) % 60;
            let hour = 9 + c % 7;
            let token = format!("t{n}-{c}");
            issued.push_str(&format!(
                "{{\"timestamp\":\"2025-03-{n:02}T{hour:02}:{minute:02}:00Z\",\"event_type\":\"token_issued\",\"token_id\":\"{token}\",\"credential_id\":\"kid-1\",\"principal\":\"C{c}\"}}\n"
            ));
            access.push_str(&format!(
                "2025-03-{n:02}T{hour:02}:{:02}:30Z,access,C{c},kid-1,{token},198.51.100.{c},GET /api/v2/me,C{c},success\n",
                minute
            ));
        }
        for (who, key, reach) in [("E1", "key-e1", 5u32), ("E2", "key-e2", 4)] {
            for a in 0..reach {
                access.push_str(&format!(
                    "2025-03-{n:02}T10:{a:02}:00Z,access,{who},{key},,10.0.0.{},GET /admin/accounts/{{id}},C{},success\n",
                    if who == "E1" { 1 } else { 2 },
                    (a * 13 + n) % 40
                ));
            }
        }
        if n >= 12 {
            for a in 0..30u32 {
                let account = 1000 + (n - 12) * 30 + a;
                access.push_str(&format!(
                    "2025-03-{n:02}T02:{a:02}:00Z,access,E9,key-e9,,203.0.113.7,GET /api/v2/members/{{id}}/addresses,C{account},success\n"
                ));
            }
        }
        if n >= 20 {
            for a in 0..5u32 {
                access.push_str(&format!(
                    "2025-03-{n:02}T03:{a:02}:00Z,access,C{a},kid-1,minted-{n}-{a},203.0.113.8,GET /api/v2/members/{{id}},C{},success\n",
                    2000 + n * 5 + a
                ));
            }
        }
        // The last event of every night is at 16:00, so retention cuts between nights.
        access.push_str(&format!(
            "2025-03-{n:02}T16:00:00Z,access,E1,key-e1,,10.0.0.1,GET /admin/ping,C1,success\n"
        ));
        if n == 7 {
            access.push_str("2025-03-07T11:00:00Z,access,E2,key-e2,,10.0.0.2,GET /x,C2,sideways\n");
        }
        write(&dir.join("gateway.csv"), &access);
        write(&dir.join("issuer.jsonl"), &issued);
        if n == 9 {
            write(&dir.join("notes.txt"), "handover notes, not a log\n");
        }
        dirs.push(dir);
    }
    (dirs, roster, credentials)
}

/// Every file under `a` equals the one under `b`, and both hold the same names.
pub(crate) fn same_report(a: &Path, b: &Path) {
    let (fa, fb) = (files_under(a), files_under(b));
    assert_eq!(
        fa.keys().collect::<Vec<_>>(),
        fb.keys().collect::<Vec<_>>(),
        "the reports hold different files"
    );
    assert!(fa.len() >= 6, "{:?}", fa.keys());
    for (name, bytes) in &fa {
        assert!(fb[name] == *bytes, "{} differs", name.display());
    }
}

/// The partitions a state holds, by name.
fn stored(state: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state)
        .expect("state")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".parquet"))
        .collect();
    names.sort();
    names
}

pub(crate) fn context_args<'a>(roster: &'a Path, credentials: &'a Path) -> Vec<&'a str> {
    vec![
        "--roster",
        roster.to_str().expect("utf-8 path"),
        "--credentials",
        credentials.to_str().expect("utf-8 path"),
    ]
}

/// One run over the given nights, with no state.
pub(crate) fn full_run(out: &Path, nights: &[PathBuf], roster: &Path, credentials: &Path) {
    let mut args: Vec<&str> = nights.iter().map(|p| p.to_str().expect("utf-8")).collect();
    args.extend(context_args(roster, credentials));
    let o = analyze(out, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// One nightly run against the state.
pub(crate) fn nightly(
    out: &Path,
    night: &Path,
    state: &Path,
    extra: &[&str],
    roster: &Path,
    credentials: &Path,
) -> std::process::Output {
    let mut args = vec![
        night.to_str().expect("utf-8"),
        "--state",
        state.to_str().expect("utf-8"),
        "--force",
    ];
    args.extend(context_args(roster, credentials));
    args.extend(extra);
    analyze(out, &args)
}

#[test]
fn thirty_nights_report_like_one_run_and_count_nothing_twice() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let state = dir.path().join("state");
    let out = dir.path().join("nightly");
    for (i, night) in nights.iter().enumerate() {
        let o = nightly(&out, night, &state, &[], &roster, &credentials);
        assert_eq!(o.status.code(), Some(0), "night {}: {}", i + 1, stderr(&o));
        if i + 1 == 15 {
            let full = dir.path().join("full-15");
            full_run(&full, &nights[..15], &roster, &credentials);
            same_report(&out, &full);
        }
    }
    let full = dir.path().join("full");
    full_run(&full, &nights, &roster, &credentials);
    same_report(&out, &full);
    // The leaver, the minted tokens, the broken line and the skipped file are all there.
    let rows = anomalies(&out);
    assert_eq!(rank_of(&rows, "key-e9"), Some(1), "{rows:?}");
    assert!(rank_of(&rows, "kid-1").is_some(), "{rows:?}");
    let rejects = std::fs::read_to_string(out.join("rejects.csv")).expect("rejects");
    assert!(
        rejects.contains("n07") && rejects.contains("sideways"),
        "{rejects}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).expect("summary");
    assert!(summary.contains("notes.txt"), "{summary}");

    // The same night again reads nothing (no partition is written or replaced) and changes
    // nothing.
    let before = stored(&state);
    assert_eq!(before.len(), 2 * NIGHTS as usize, "{before:?}");
    let again = dir.path().join("again");
    let o = nightly(&again, &nights[29], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stored(&state), before);
    same_report(&again, &full);
    // The sixty partitions read back side by side on small stacks: a read that blocked on
    // polars' own pool let its worker steal the next partition, one stack frame deeper each.
    let small = dir.path().join("small-stacks");
    let o = bin()
        .env("RUST_MIN_STACK", "131072")
        .arg("analyze")
        .arg(&nights[29])
        .args([
            "--state",
            state.to_str().expect("utf-8"),
            "--quiet",
            "--out",
        ])
        .arg(&small)
        .args(context_args(&roster, &credentials))
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    same_report(&small, &full);
    // The columns only evidence reads, taken out of the partitions read back and all on disk.
    let spilled = dir.path().join("spilled");
    let o = nightly(
        &spilled,
        &nights[29],
        &state,
        &["--spill-from-events", "0"],
        &roster,
        &credentials,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    same_report(&spilled, &full);
    assert_eq!(leftovers(dir.path()), Vec::<std::ffi::OsString>::new());
    // A time window over the state: its rows' file, line, endpoint and client are read from the
    // partitions by the rows the window kept, as one run over the files reads them.
    let window = ["--from", "2025-03-08", "--to", "2025-03-21"];
    let (windowed, windowed_full) = (dir.path().join("windowed"), dir.path().join("windowed-1"));
    let o = nightly(
        &windowed,
        &nights[29],
        &state,
        &window,
        &roster,
        &credentials,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let mut args: Vec<&str> = nights.iter().map(|p| p.to_str().expect("utf-8")).collect();
    args.extend(context_args(&roster, &credentials));
    args.extend(window);
    let o = analyze(&windowed_full, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    same_report(&windowed, &windowed_full);
    let rows = anomalies(&windowed);
    assert_eq!(rank_of(&rows, "key-e9"), Some(1), "{rows:?}");
    // A state built in one run with those columns on disk from the first event, each file read
    // and stored on its own (a group of one byte holds one file), and its records made on disk:
    // each file's partition gets the columns back whole, and the records made on disk are the
    // state's, so the next run reads the same state and uses them.
    let (built, again_built) = (dir.path().join("built"), dir.path().join("built-again"));
    let state_spilled = dir.path().join("state-spilled");
    let mut args: Vec<&str> = nights.iter().map(|p| p.to_str().expect("utf-8")).collect();
    args.extend(["--state", state_spilled.to_str().expect("utf-8")]);
    args.extend(["--spill-from-events", "0", "--state-group-bytes", "1"]);
    args.extend(["--records-on-disk-from-events", "0"]);
    args.extend(context_args(&roster, &credentials));
    let o = analyze(&built, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    same_report(&built, &full);
    assert!(state_spilled.join("records/records.json").is_file());
    let o = nightly(
        &again_built,
        &nights[29],
        &state_spilled,
        &["--timings"],
        &roster,
        &credentials,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("records: stored records kept, 0 day(s)"),
        "{}",
        stderr(&o)
    );
    same_report(&again_built, &full);
    // A night delivered again under another name is recognised by its content.
    let copy = dir.path().join("redelivered/gateway-copy.csv");
    write(
        &copy,
        &std::fs::read_to_string(nights[29].join("gateway.csv")).expect("read night"),
    );
    let o = nightly(
        &again,
        copy.parent().expect("dir"),
        &state,
        &[],
        &roster,
        &credentials,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stderr(&o).contains("same content as"), "{}", stderr(&o));
    assert_eq!(stored(&state), before);
    same_report(&again, &full);
}

/// In New York the nights (UTC days, 02:00–16:00) straddle local midnight, and the clocks
/// change on 03-09: each night dirties two local days of the state's reduced records, aging out
/// drops the oldest, and the report stays the one run's. Damaged records are rebuilt.
#[test]
fn retain_ages_old_nights_out() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let state = dir.path().join("state");
    let out = dir.path().join("nightly");
    let zone = ["--timezone", "America/New_York"];
    let extra = [&["--retain", "10", "--timings"][..], &zone[..]].concat();
    for (i, night) in nights.iter().enumerate() {
        let o = nightly(&out, night, &state, &extra, &roster, &credentials);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        // Night n brings local day n, and n-1 too from night 12 on (E9's 02:00Z is 21:00 or
        // 22:00 the evening before); from night 12 on, night n-11 leaves with its days.
        let made = match i + 1 {
            1 => "window to be reduced whole: no records stored yet",
            2..=11 => "stored records kept, 1 day(s) reduced again",
            12..=22 => "stored records kept, 3 day(s) reduced again",
            _ => "stored records kept, 4 day(s) reduced again",
        };
        assert!(stderr(&o).contains(made), "night {}: {}", i + 1, stderr(&o));
    }
    // Ten days before 03-30 is 03-20: night 20 stays whole (its issuer log ends at 15:58, its
    // access log at 16:00, both 03-20 in New York too); night 19 goes.
    let full = dir.path().join("full");
    let mut args: Vec<&str> = nights[19..]
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    args.extend(context_args(&roster, &credentials));
    args.extend(zone);
    let o = analyze(&full, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    same_report(&out, &full);
    assert_eq!(
        stored(&state).len(),
        2 * 11,
        "two files a night for eleven nights"
    );
    // Records that were damaged (one flipped byte, which the Parquet reader may not notice) or
    // cannot be read are rebuilt from the partitions, and said so.
    let cells = state.join("records/cells-1.parquet");
    let mut bytes = std::fs::read(&cells).expect("cells");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&cells, &bytes).expect("damaged");
    let again = dir.path().join("again");
    let o = nightly(&again, &nights[29], &state, &extra, &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: stored records not used") && stderr(&o).contains("damaged"),
        "{}",
        stderr(&o)
    );
    same_report(&again, &full);
    write(&state.join("records/cells-1.parquet"), "not parquet");
    let o = nightly(&again, &nights[29], &state, &extra, &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("note: stored records not used"),
        "{}",
        stderr(&o)
    );
    same_report(&again, &full);
    let o = nightly(&again, &nights[29], &state, &extra, &roster, &credentials);
    assert!(
        stderr(&o).contains("stored records kept, 0 day(s) reduced again"),
        "{}",
        stderr(&o)
    );
    same_report(&again, &full);
}

#[test]
fn a_state_is_never_an_input_a_report_or_a_stranger() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let out = dir.path().join("out");
    // Inside an input, or the input itself.
    for state in [nights[0].join("state"), nights[0].clone()] {
        let o = nightly(&out, &nights[0], &state, &[], &roster, &credentials);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    }
    // A folder audithound did not write.
    let stranger = dir.path().join("stranger");
    write(&stranger.join("keep.txt"), "mine");
    let o = nightly(&out, &nights[0], &stranger, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a state"), "{}", stderr(&o));
    assert!(stranger.join("keep.txt").exists());
    // A manifest edited to name a file outside the state.
    let edited = dir.path().join("edited");
    let o = nightly(&out, &nights[0], &edited, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let manifest = std::fs::read_to_string(edited.join("state.json")).expect("manifest");
    let foreign = manifest.replacen("\"p00000000.parquet\"", "\"../../etc/passwd\"", 1);
    assert_ne!(foreign, manifest);
    std::fs::write(edited.join("state.json"), foreign).expect("edit");
    let o = nightly(&out, &nights[1], &edited, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("did not write"), "{}", stderr(&o));
    // Other reading settings than the state was built with.
    let state = dir.path().join("state");
    let o = nightly(&out, &nights[0], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = nightly(
        &out,
        &nights[1],
        &state,
        &["--timezone", "Asia/Seoul"],
        &roster,
        &credentials,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("other reading settings"),
        "{}",
        stderr(&o)
    );
}

/// The nights of [`nights`], the roster and the inventory, a state that holds the first few,
/// and the report folder of their runs.
type Run = (Vec<PathBuf>, PathBuf, PathBuf, PathBuf, PathBuf);

/// [`nights`] under `root`, the first `n` of them run one by one into a new state.
fn state_after(root: &Path, n: usize) -> Run {
    let (nights, roster, credentials) = nights(root);
    let state = root.join("state");
    let out = root.join("out");
    for night in &nights[..n] {
        let o = nightly(&out, night, &state, &[], &roster, &credentials);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    (nights, roster, credentials, state, out)
}

#[test]
fn a_failed_night_leaves_the_state_as_it_was_and_a_held_state_is_refused() {
    let dir = tmp();
    let (nights, roster, credentials, state, out) = state_after(dir.path(), 3);
    let manifest = std::fs::read(state.join("state.json")).expect("manifest");
    // A night with a truncated gzip file fails (exit 2) and commits nothing.
    let broken = dir.path().join("broken-night");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(
        &mut gz,
        std::fs::read_to_string(nights[3].join("gateway.csv"))
            .expect("night")
            .as_bytes(),
    )
    .expect("gzip");
    let bytes = gz.finish().expect("gzip");
    std::fs::create_dir_all(&broken).expect("mkdir");
    std::fs::write(broken.join("gateway.csv.gz"), &bytes[..bytes.len() / 2]).expect("write");
    let o = nightly(&out, &broken, &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(state.join("state.json")).expect("manifest"),
        manifest
    );
    // The next good night commits and sweeps the partitions the failed run left behind, and
    // nothing else (files it did not name this way are someone else's).
    write(&state.join("partition.parquet"), "kept");
    write(&state.join("p1.rejects.csv"), "kept");
    // What a killed `ingest` leaves of its quarantine scratch in the state goes too: a run
    // that holds the state's lock is its only user.
    write(
        &state.join(".audithound-rejects-dead/rejects-0.csv"),
        "spilled",
    );
    let o = nightly(&out, &nights[3], &state, &[], &roster, &credentials);
    assert!(!state.join(".audithound-rejects-dead").exists());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let full = dir.path().join("full");
    full_run(&full, &nights[..4], &roster, &credentials);
    same_report(&out, &full);
    assert_eq!(
        stored(&state).len(),
        2 * 4 + 1,
        "no partition of the failed run is left"
    );
    assert!(state.join("partition.parquet").exists() && state.join("p1.rejects.csv").exists());
    // While another process holds the state, a run is refused and changes nothing.
    let lock = std::fs::File::open(state.join(".lock")).expect("lock file");
    lock.lock().expect("lock");
    let manifest = std::fs::read(state.join("state.json")).expect("manifest");
    let o = nightly(&out, &nights[4], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("another run is using it"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read(state.join("state.json")).expect("manifest"),
        manifest
    );
}

#[test]
fn ingest_fills_a_state_that_analyze_then_reports_on() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let state = dir.path().join("state");
    let ingest = |args: &[&Path], extra: &[&str]| {
        bin()
            .arg("ingest")
            .args(args)
            .arg("--state")
            .arg(&state)
            .args(extra)
            .output()
            .expect("runs")
    };
    let first: Vec<&Path> = nights[..10].iter().map(PathBuf::as_path).collect();
    let o = ingest(&first, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("21 file(s), 901 records read, 1 rejected"),
        "{}",
        stderr(&o)
    );
    assert_eq!(stored(&state).len(), 20);
    // The same partitions, byte for byte, as analyze --state writes for those nights (it sets
    // the columns only evidence reads aside while reading; ingest does not).
    let analysed = dir.path().join("analysed");
    let mut args: Vec<&str> = nights[..10]
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    args.extend(["--state", analysed.to_str().expect("utf-8")]);
    let o = analyze(&dir.path().join("out-analysed"), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in stored(&state) {
        let (a, b) = (state.join(&name), analysed.join(&name));
        assert!(
            std::fs::read(&a).expect("ingested") == std::fs::read(&b).expect("analysed"),
            "{name} differs"
        );
    }
    // The rest of the nights through analyze: the report is the one of a run over all of them.
    let out = dir.path().join("out");
    let mut args: Vec<&str> = nights[10..]
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    args.extend(["--state", state.to_str().expect("utf-8")]);
    args.extend(context_args(&roster, &credentials));
    let o = analyze(&out, &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let full = dir.path().join("full");
    full_run(&full, &nights, &roster, &credentials);
    same_report(&out, &full);
    // A truncated file fails and stores nothing, unless --keep-going (exit 3, kept with its
    // mark, as `analyze --state --keep-going` keeps it).
    let broken = dir.path().join("broken/gateway.csv.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let night = std::fs::read(nights[10].join("gateway.csv")).expect("night");
    std::io::Write::write_all(&mut gz, &night).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    write(&broken, "");
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).expect("write");
    let manifest = std::fs::read(state.join("state.json")).expect("manifest");
    let o = ingest(&[broken.as_path()], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(state.join("state.json")).expect("manifest"),
        manifest
    );
    let o = ingest(&[broken.as_path()], &["--keep-going"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let text = std::fs::read_to_string(state.join("state.json")).expect("manifest");
    assert!(
        text.contains("gateway.csv.gz") && text.contains("\"unreadable\": \""),
        "{text}"
    );
}

/// Records kept for one night, then 29 nights ingested without analysis: the next analysis
/// would copy most of the frame to reduce its days again, so it reduces the window in place,
/// says so, and reports as one run over the 30 nights.
#[test]
fn records_of_little_are_rebuilt_rather_than_merged_with_most_of_the_window() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let timed = ["--timings"];
    let o = nightly(&out, &nights[0], &state, &timed, &roster, &credentials);
    assert!(
        stderr(&o).contains("no records stored yet"),
        "{}",
        stderr(&o)
    );
    let o = bin()
        .arg("ingest")
        .args(&nights[1..])
        .arg("--state")
        .arg(&state)
        .output()
        .expect("runs");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = nightly(&out, &nights[29], &state, &timed, &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(
            "window to be reduced whole: most of the window's rows are on days read again"
        ),
        "{}",
        stderr(&o)
    );
    let full = dir.path().join("full");
    full_run(&full, &nights, &roster, &credentials);
    same_report(&out, &full);
}

/// The partitions of `state` rewritten as a version-1 state held them (strings as Parquet
/// dictionaries), decoding the coded layout here, apart from audithound's reader: each string
/// is listed in `__symbols.<column>` at the row where it first appears, numbered row by row and
/// then column by column; token ids likewise in `__tokens.token_id`, numbered apart.
fn as_version_one(state: &Path) {
    use polars::prelude::*;
    use polars_io::SerReader;
    use polars_io::parquet::read::ParquetReader;
    use polars_io::parquet::write::ParquetWriter;
    for name in stored(state) {
        let path = state.join(&name);
        let df = ParquetReader::new(std::fs::File::open(&path).expect("open"))
            .finish()
            .expect("read");
        let listed: Vec<String> = (df.get_column_names_owned().into_iter())
            .map(|n| n.to_string())
            .filter(|n| n.starts_with("__symbols."))
            .collect();
        // Token ids have a numbering of their own (version 3): listed in row order.
        let token_ids: Vec<String> = (df.column("__tokens.token_id").expect("token ids"))
            .str()
            .expect("strings")
            .iter()
            .flatten()
            .map(str::to_string)
            .collect();
        assert!(!listed.is_empty(), "{name} holds no string lists");
        let lists: Vec<Vec<Option<String>>> = (listed.iter())
            .map(|n| {
                let c = df.column(n).expect("list").str().expect("strings").clone();
                c.iter().map(|v| v.map(str::to_string)).collect()
            })
            .collect();
        let mut strings: Vec<String> = Vec::new();
        for row in 0..df.height() {
            strings.extend(lists.iter().filter_map(|l| l[row].clone()));
        }
        let mut columns = Vec::new();
        for column in df.columns() {
            let n = column.name().to_string();
            if n.starts_with("__symbols.") || n == "__tokens.token_id" {
                continue;
            }
            if n == "token_id" {
                let codes = column.u32().expect("token codes");
                let texts: StringChunked = codes
                    .iter()
                    .map(|c| c.map(|c| token_ids[c as usize].as_str()))
                    .collect();
                columns.push(texts.into_column().with_name(n.into()));
            } else if listed.contains(&format!("__symbols.{n}")) {
                let codes = column.u32().expect("codes");
                let texts: StringChunked = codes
                    .iter()
                    .map(|c| c.map(|c| strings[c as usize].as_str()))
                    .collect();
                let cats = texts
                    .into_column()
                    .cast(&DataType::from_categories(Categories::global()))
                    .expect("categories");
                columns.push(cats.with_name(n.into()));
            } else {
                columns.push(column.clone());
            }
        }
        let mut old = DataFrame::new(df.height(), columns).expect("frame");
        ParquetWriter::new(std::fs::File::create(&path).expect("create"))
            .finish(&mut old)
            .expect("rewritten");
    }
    // Nor did it keep digests of its files.
    let manifest = state.join("state.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("\"version\": 3"), "{text}");
    let mut json: serde_json::Value = serde_json::from_str(&text).expect("json");
    json["version"] = 1.into();
    for file in json["files"].as_array_mut().expect("files") {
        let file = file.as_object_mut().expect("file");
        assert!(file.remove("partition_digest").is_some(), "{file:?}");
        file.remove("rejects_digest");
    }
    write(
        &manifest,
        &serde_json::to_string_pretty(&json).expect("json"),
    );
}

/// A state of version 1 (strings as Parquet dictionaries) takes a night of this build's
/// partitions (strings as codes of their own) and reports like one run over all the nights;
/// committed, it is version 3, and a version this build does not know is refused.
#[test]
fn a_version_one_state_reads_on_and_an_unknown_version_is_refused() {
    let dir = tmp();
    let (nights, roster, credentials, state, out) = state_after(dir.path(), 3);
    as_version_one(&state);
    let o = nightly(&out, &nights[3], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let full = dir.path().join("full");
    full_run(&full, &nights[..4], &roster, &credentials);
    same_report(&out, &full);
    let manifest = state.join("state.json");
    let text = std::fs::read_to_string(&manifest).expect("manifest");
    assert!(text.contains("\"version\": 3"), "{text}");
    // The first run gave the old partitions their digests.
    assert_eq!(text.matches("\"partition_digest\"").count(), 8, "{text}");
    write(&manifest, &text.replace("\"version\": 3", "\"version\": 4"));
    let o = nightly(&out, &nights[4], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("version 4"), "{}", stderr(&o));
}

/// A partition or rejects file changed since the state wrote it (one flipped byte, where the
/// Parquet reader itself may notice nothing) fails the run, naming the file, and leaves the
/// state as it was.
#[test]
fn a_damaged_state_file_fails_the_run_and_is_named() {
    let dir = tmp();
    let (nights, roster, credentials, state, out) = state_after(dir.path(), 7);
    let manifest = std::fs::read(state.join("state.json")).expect("manifest");
    let rejects: Vec<PathBuf> = (std::fs::read_dir(&state).expect("state"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".rejects.csv"))
        .collect();
    assert_eq!(rejects.len(), 1, "night 7's rejected line: {rejects:?}");
    let partition = state.join("p00000002.parquet");
    for damaged in [&partition, &rejects[0]] {
        let clean = std::fs::read(damaged).expect("file");
        let mut bytes = clean.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(damaged, &bytes).expect("damaged");
        let o = nightly(&out, &nights[7], &state, &[], &roster, &credentials);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let name = damaged.file_name().expect("name").to_string_lossy();
        assert!(
            stderr(&o).contains("damaged") && stderr(&o).contains(name.as_ref()),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            std::fs::read(state.join("state.json")).expect("manifest"),
            manifest
        );
        std::fs::write(damaged, &clean).expect("restored");
    }
    let o = nightly(&out, &nights[7], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// The state's names (its strings listed once, `names/`) cover every partition after nightly
/// runs, one segment a night. Damaged, they are not used, with a note; the report is the one
/// run's all the same, and the run writes them again, so the next run uses them silently.
#[test]
fn damaged_names_are_noted_and_written_again() {
    let dir = tmp();
    let (nights, roster, credentials, state, out) = state_after(dir.path(), 4);
    let names = state.join("names");
    let meta = std::fs::read_to_string(names.join("names.json")).expect("names");
    for p in stored(&state) {
        assert!(meta.contains(&p), "{p} not covered: {meta}");
    }
    let segment = names.join("s00000003.string_maps.parquet");
    let mut bytes = std::fs::read(&segment).expect("a segment for night 4");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&segment, &bytes).expect("damaged");
    let o = nightly(&out, &nights[4], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stored names not used") && stderr(&o).contains("s00000003"),
        "{}",
        stderr(&o)
    );
    let full = dir.path().join("full");
    full_run(&full, &nights[..5], &roster, &credentials);
    same_report(&out, &full);
    let o = nightly(&out, &nights[5], &state, &[], &roster, &credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!stderr(&o).contains("names"), "{}", stderr(&o));
    let full = dir.path().join("full-6");
    full_run(&full, &nights[..6], &roster, &credentials);
    same_report(&out, &full);
}
