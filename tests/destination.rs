use std::path::{Path, PathBuf};

use crate::util::*;

/// A tiny export with context, in `dir/logs`; returns the input folder.
fn export(dir: &Path) -> PathBuf {
    let logs = dir.join("logs");
    write(&logs.join("roster.csv"), ROSTER);
    write(&logs.join("credentials.csv"), CREDS);
    write(
        &logs.join("events.csv"),
        "timestamp,event_type,principal,credential_id,source_ip,target_account\n\
         2025-03-01T10:00:00Z,access,E1,kid-a,10.0.0.1,C1\n",
    );
    logs
}

/// Runs `analyze input --out out --force` and insists it was refused with exit 2, naming why,
/// and that nothing under `keep` changed.
fn refused(input: &Path, out: &Path, keep: &Path, why: &str) {
    let before = files_under(keep);
    let o = analyze(out, &[input.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(why),
        "expected {why:?} in: {}",
        stderr(&o)
    );
    assert_eq!(files_under(keep), before, "a refused run changed files");
}

#[test]
fn force_never_replaces_the_input_folder() {
    let dir = tmp();
    let logs = export(dir.path());
    refused(&logs, &logs, dir.path(), "is an input");
}

#[test]
fn force_never_replaces_a_folder_that_contains_an_input() {
    let dir = tmp();
    let logs = export(dir.path());
    refused(&logs, dir.path(), dir.path(), "contains the input");
}

#[test]
fn report_never_goes_inside_an_input() {
    let dir = tmp();
    let logs = export(dir.path());
    refused(
        &logs,
        &logs.join("report"),
        dir.path(),
        "lies inside the input",
    );
}

#[test]
fn force_never_replaces_an_input_file() {
    let dir = tmp();
    let logs = export(dir.path());
    let file = logs.join("events.csv");
    refused(&file, &file, dir.path(), "is an input");
}

#[test]
fn force_never_replaces_a_context_file() {
    let dir = tmp();
    let logs = export(dir.path());
    let roster = dir.path().join("hr.csv");
    write(&roster, ROSTER);
    let before = files_under(dir.path());
    let o = analyze(
        &roster,
        &[
            logs.to_str().unwrap(),
            "--roster",
            roster.to_str().unwrap(),
            "--force",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(files_under(dir.path()), before);
}

#[test]
fn force_never_replaces_a_regular_file() {
    let dir = tmp();
    let logs = export(dir.path());
    let file = dir.path().join("notes.txt");
    write(&file, "my notes");
    refused(&logs, &file, dir.path(), "not a directory");
}

#[test]
fn force_never_replaces_a_device_or_pipe() {
    let dir = tmp();
    let logs = export(dir.path());
    let fifo = dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let o = analyze(&fifo, &[logs.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
    let kind = std::fs::symlink_metadata(&fifo)
        .expect("still there")
        .file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&kind),
        "the pipe was replaced"
    );
}

#[test]
fn force_never_replaces_a_folder_audithound_did_not_write() {
    let dir = tmp();
    let logs = export(dir.path());
    let mine = dir.path().join("mine");
    write(&mine.join("thesis.tex"), "years of work");
    refused(&logs, &mine, dir.path(), "not written by audithound");
}

#[test]
fn force_follows_links_and_dotdot_to_the_real_place() {
    let dir = tmp();
    let logs = export(dir.path());
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&logs, &link).expect("symlink");
    refused(&logs, &link, dir.path(), "symbolic link");
    refused(
        &logs,
        &link.join("report"),
        dir.path(),
        "lies inside the input",
    );
    let sneaky = dir.path().join("missing/../logs");
    refused(&logs, &sneaky, dir.path(), "is an input");
}

#[test]
fn concurrent_runs_with_one_out_never_overwrite_each_other() {
    let dir = tmp();
    let logs = export(dir.path());
    let out = dir.path().join("report");
    let runs: Vec<_> = (0..4)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("audithound"))
                .arg("analyze")
                .arg(&logs)
                .arg("--out")
                .arg(&out)
                .arg("--quiet")
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("spawns")
        })
        .collect();
    let codes: Vec<Option<i32>> = runs
        .into_iter()
        .map(|c| c.wait_with_output().expect("waits").status.code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "exactly one run may write the report: {codes:?}"
    );
    assert!(
        codes.iter().all(|c| *c == Some(0) || *c == Some(2)),
        "{codes:?}"
    );
    assert!(out.join("summary.md").is_file() && out.join(".audithound-report").is_file());
    let leftovers = leftovers(dir.path());
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Sets a folder's modification time `ago` into the past: a sweep leaves folders younger than
/// a minute alone (a live run may not have locked one it has just made).
fn backdate(dir: &Path, ago: std::time::Duration) {
    let when = std::time::SystemTime::now() - ago;
    let f = std::fs::File::open(dir).expect("opens the folder");
    f.set_modified(when).expect("backdates");
}

/// A run killed mid-way, as the kernel kills one out of memory, runs no destructor: its scratch
/// (spilled columns, quarantined lines, a report half written) stays beside the report. The next
/// run beside it removes that and says so, and keeps what a live run holds or the user owns.
#[test]
fn scratch_a_killed_run_left_is_removed_by_the_next_run_and_nothing_else() {
    let dir = tmp();
    let out = dir.path().join("report");
    let sample = repo().join("sample_logs");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("audithound"))
        .arg("analyze")
        .arg(&sample)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--spill-from-events", "0"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawns");
    let started = std::time::Instant::now();
    let spilling = |names: &[std::ffi::OsString]| {
        (names.iter()).any(|n| n.to_string_lossy().starts_with(".audithound-cold-"))
    };
    while !spilling(&leftovers(dir.path())) {
        assert!(
            started.elapsed().as_secs() < 120,
            "the run never made its scratch"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child.kill().expect("kills");
    child.wait().expect("waits");
    let left = leftovers(dir.path());
    assert!(spilling(&left), "{left:?}");
    for name in &left {
        backdate(&dir.path().join(name), std::time::Duration::from_secs(3600));
    }
    // A live run's scratch (locked here) and folders of the user's stay.
    let live = dir.path().join(".audithound-tmp-live");
    std::fs::create_dir(&live).expect("folder");
    backdate(&live, std::time::Duration::from_secs(3600));
    let held = std::fs::File::open(&live).expect("opens");
    held.lock().expect("locks");
    let theirs = dir.path().join(".audithound-old-previous");
    write(&theirs.join("summary.md"), "a previous report moved aside");
    backdate(&theirs, std::time::Duration::from_secs(3600));

    let o = analyze(&out, &[sample.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for name in &left {
        let line = format!("removed {}", name.to_string_lossy());
        assert!(stderr(&o).contains(&line), "no {line:?} in {}", stderr(&o));
    }
    let mut now = leftovers(dir.path());
    now.sort();
    assert_eq!(now, [".audithound-old-previous", ".audithound-tmp-live"]);
    assert!(theirs.join("summary.md").is_file() && out.join("summary.md").is_file());
}
