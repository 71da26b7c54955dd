//! Key lifecycle's "used before created" asks when each key first signed a token. Ingest notes
//! it per file and a state keeps it per file, so a night's run joins its files' instead of
//! passing over every row of the window; a state whose files were stored without it passes over
//! the rows as before. Either way the report is one run's over the same files.

use std::path::{Path, PathBuf};

use crate::state::{full_run, nightly, same_report};
use crate::util::*;

/// 2025-04-`day` at `hour`:00 UTC, in milliseconds since the epoch.
fn ms(day: u32, hour: u32) -> i64 {
    let days_to_april_1st_2025 = 20_179;
    ((days_to_april_1st_2025 + i64::from(day) - 1) * 24 + i64::from(hour)) * 3_600_000
}

/// Four nights of a gateway's CSV export. kid-2 and kid-3 are created on 04-03. kid-2 signs a
/// token on 04-02, before that, and again on 04-04. kid-3 is named without a token on 04-01 and
/// signs only on 04-04: named early, but not used early.
fn nights(root: &Path) -> (Vec<PathBuf>, PathBuf, PathBuf) {
    let roster = root.join("context/roster.csv");
    write(
        &roster,
        "employee_id,name,department,hire_date,termination_date\nE1,Ann,support,2020-01-01,\n",
    );
    let credentials = root.join("context/credentials.csv");
    write(
        &credentials,
        "credential_id,owner,kind,created,revoked\n\
         kid-1,issuer,signing_key,2020-01-01,\n\
         kid-2,issuer,signing_key,2025-04-03,\n\
         kid-3,issuer,signing_key,2025-04-03,\n",
    );
    let early: [&[(u32, &str, &str)]; 4] = [
        &[(10, "kid-3", "")],
        &[(11, "kid-2", "t-early")],
        &[],
        &[(9, "kid-2", "t-late"), (9, "kid-3", "t-three")],
    ];
    let mut dirs = Vec::new();
    for (n, extra) in (1..=4u32).zip(early) {
        let mut access = String::from(
            "timestamp,event_type,principal,credential_id,token_id,source_ip,action,target_account,outcome\n",
        );
        for c in 0..12u32 {
            access.push_str(&format!(
                "2025-04-{n:02}T{:02}:{c:02}:00Z,access,C{c},kid-1,t{n}-{c},198.51.100.{c},GET /api/v2/me,C{c},success\n",
                8 + c % 5
            ));
        }
        for (hour, key, token) in extra {
            access.push_str(&format!(
                "2025-04-{n:02}T{hour:02}:30:00Z,access,C1,{key},{token},192.0.2.9,GET /api/v2/me,C1,success\n"
            ));
        }
        let dir = root.join(format!("nights/n{n}"));
        write(&dir.join("gateway.csv"), &access);
        dirs.push(dir);
    }
    (dirs, roster, credentials)
}

/// The nights, and a state and report folder for them, in a fresh temporary folder.
struct Nights {
    tmp: tempfile::TempDir,
    dirs: Vec<PathBuf>,
    roster: PathBuf,
    credentials: PathBuf,
    state: PathBuf,
    out: PathBuf,
}

impl Nights {
    fn new() -> Nights {
        let tmp = tempfile::tempdir().expect("tmp");
        let (dirs, roster, credentials) = nights(tmp.path());
        let (state, out) = (tmp.path().join("state"), tmp.path().join("nightly"));
        Nights {
            tmp,
            dirs,
            roster,
            credentials,
            state,
            out,
        }
    }

    /// Night `n` (from 0) added to the state, its report in `out`.
    fn add(&self, n: usize) {
        night(
            &self.out,
            &self.dirs[n],
            &self.state,
            &self.roster,
            &self.credentials,
        );
    }

    /// One run over every night, without a state, must report as the nights did.
    fn same_as_one_run(&self) {
        let whole = self.tmp.path().join("whole");
        full_run(&whole, &self.dirs, &self.roster, &self.credentials);
        same_report(&self.out, &whole);
    }
}

fn night(out: &Path, night: &Path, state: &Path, roster: &Path, credentials: &Path) {
    let o = nightly(out, night, state, &[], roster, credentials);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Each stored file's first token uses, by the file's folder (`n1`…): `None` where not kept.
fn stored_firsts(state: &Path) -> Vec<(String, Option<serde_json::Value>)> {
    let text = std::fs::read_to_string(state.join("state.json")).expect("manifest");
    let manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    let files = manifest["files"].as_array().expect("files");
    (files.iter())
        .map(|f| {
            let path = f["path"].as_str().expect("path");
            let night = Path::new(path).parent().and_then(Path::file_name);
            let night = night.map(|n| n.to_string_lossy().into_owned());
            (
                night.unwrap_or_default(),
                f["stats"].get("first_token_uses").cloned(),
            )
        })
        .collect()
}

/// The manifest with every file's first token uses given by `set`, from its path (`None`:
/// removed).
fn rewrite_firsts(state: &Path, set: impl Fn(&str) -> Option<serde_json::Value>) {
    let path = state.join("state.json");
    let text = std::fs::read_to_string(&path).expect("manifest");
    let mut manifest: serde_json::Value = serde_json::from_str(&text).expect("json");
    for f in manifest["files"].as_array_mut().expect("files") {
        let path = f["path"].as_str().expect("path").to_string();
        let stats = f["stats"].as_object_mut().expect("stats");
        match set(&path) {
            Some(v) => stats.insert("first_token_uses".into(), v),
            None => stats.remove("first_token_uses"),
        };
    }
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&manifest).expect("json"),
    )
    .expect("write");
}

#[test]
fn nights_keep_each_files_first_token_uses_and_report_as_one_run() {
    let nights = Nights::new();
    for n in 0..nights.dirs.len() {
        nights.add(n);
    }
    nights.same_as_one_run();
    let rows = anomalies(&nights.out);
    assert!(
        reasons_of(&rows, "kid-2").contains("before the key was created"),
        "{rows:?}"
    );
    assert!(
        !reasons_of(&rows, "kid-3").contains("before the key was created"),
        "kid-3 was named without a token before it was created, not used: {rows:?}"
    );
    let firsts = stored_firsts(&nights.state);
    // kid-1 signs from 08:00 each night; the other keys' rows are at half past the hour.
    let half_past = |day, hour| ms(day, hour) + 30 * 60_000;
    let want = |n: &str| match n {
        "n1" => serde_json::json!({"kid-1": ms(1, 8)}),
        "n2" => serde_json::json!({"kid-1": ms(2, 8), "kid-2": half_past(2, 11)}),
        "n3" => serde_json::json!({"kid-1": ms(3, 8)}),
        _ => serde_json::json!({"kid-1": ms(4, 8), "kid-2": half_past(4, 9),
                                "kid-3": half_past(4, 9)}),
    };
    assert_eq!(firsts.len(), 4, "{firsts:?}");
    for (n, got) in firsts {
        assert_eq!(got, Some(want(&n)), "night {n}");
    }
}

#[test]
fn a_run_reads_the_stored_first_uses_and_the_rows_where_a_state_lacks_them() {
    let nights = Nights::new();
    for n in 0..3 {
        nights.add(n);
    }
    // What the state says is what the run reads: told that the stored nights' files signed with
    // kid-1 alone, it takes kid-2's first token for the one night 4 brings, after its creation,
    // and does not look for kid-2's early rows.
    rewrite_firsts(&nights.state, |_| {
        Some(serde_json::json!({"kid-1": ms(1, 8)}))
    });
    nights.add(3);
    let rows = anomalies(&nights.out);
    assert!(
        !reasons_of(&rows, "kid-2").contains("before the key was created"),
        "the stored first uses were not read: {rows:?}"
    );
    // A state whose files were stored without them (an earlier version's): night 4 again, which
    // reads no file, passes over the rows, and reports as one run over the same files.
    rewrite_firsts(&nights.state, |_| None);
    assert!(
        stored_firsts(&nights.state)
            .iter()
            .all(|(_, f)| f.is_none())
    );
    nights.add(3);
    nights.same_as_one_run();
    assert!(reasons_of(&anomalies(&nights.out), "kid-2").contains("before the key was created"));
}
