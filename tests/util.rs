use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use assert_cmd::Command;

pub fn bin() -> Command {
    let mut cmd = Command::cargo_bin("audithound").expect("binary builds");
    cmd.env_remove("RAYON_NUM_THREADS")
        .env_remove("POLARS_MAX_THREADS");
    cmd
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `analyze` with the given arguments plus `--out out --quiet`, returning the process output.
pub fn analyze(out: &Path, args: &[&str]) -> Output {
    bin()
        .arg("analyze")
        .args(args)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .expect("runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Insists the run failed as errors do (exit 2) and said `what`.
pub fn failed_saying(o: &Output, what: &str) {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    assert!(stderr(o).contains(what), "no {what:?} in {}", stderr(o));
}

/// `anomalies.csv` as (header, rows) of strings.
pub fn anomalies(out: &Path) -> Vec<std::collections::HashMap<String, String>> {
    read_csv(&out.join("anomalies.csv"))
}

pub fn read_csv(path: &Path) -> Vec<std::collections::HashMap<String, String>> {
    let mut rdr =
        csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers = rdr.headers().expect("header").clone();
    rdr.records()
        .map(|r| {
            let r = r.expect("record");
            headers
                .iter()
                .map(String::from)
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// Rank of an entity id in `anomalies.csv`, if listed.
pub fn rank_of(rows: &[std::collections::HashMap<String, String>], id: &str) -> Option<usize> {
    rows.iter()
        .find(|r| r["entity_id"] == id)
        .map(|r| r["rank"].parse().expect("rank is a number"))
}

pub fn severity_of(rows: &[std::collections::HashMap<String, String>], id: &str) -> Option<String> {
    rows.iter()
        .find(|r| r["entity_id"] == id)
        .map(|r| r["severity"].clone())
}

/// Small generated exports, one per seed, made once per test run.
pub fn generated(seed: u64) -> PathBuf {
    generated_variant(seed, "kept-key")
}

/// A small generated export of one `--variant`, made once per test run.
pub fn generated_variant(seed: u64, variant: &str) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let root = DIR
        .get_or_init(tmp)
        .path()
        .join(format!("{variant}-seed-{seed}"));
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    if !root.join(".truth.json").exists() {
        let out = bin()
            .args([
                "generate",
                "--days",
                "60",
                "--customers",
                "800",
                "--employees",
                "30",
                "--variant",
                variant,
                "--seed",
            ])
            .arg(seed.to_string())
            .arg("--out")
            .arg(&root)
            .output()
            .expect("generate runs");
        assert!(out.status.success(), "generate failed: {}", stderr(&out));
    }
    root
}

pub fn truth(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join(".truth.json")).expect("truth file");
    serde_json::from_str(&text).expect("truth json")
}

pub fn write(path: &Path, text: &str) {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).expect("mkdir");
    }
    std::fs::write(path, text).expect("write fixture");
}

pub const ROSTER: &str = "employee_id,name,department,hire_date,termination_date\n\
E1,Alice,engineering,2020-01-01,2025-01-31\n\
E2,Bob,support,2020-01-01,\n";
pub const CREDS: &str = "credential_id,owner,kind,created,revoked\n\
kid-a,E1,signing_key,2020-01-01,\n\
ak-svc,svc-batch,api_key,2020-01-01,2025-02-10\n";

/// Runs `analyze` and insists it succeeded (exit code 0), returning the ranked rows.
pub fn analyze_ok(out: &Path, args: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let o = analyze(out, args);
    assert_eq!(o.status.code(), Some(0), "analyze failed: {}", stderr(&o));
    anomalies(out)
}

/// The `reasons` cell of an entity's row, empty if it is not ranked.
pub fn reasons_of(rows: &[std::collections::HashMap<String, String>], id: &str) -> String {
    rows.iter()
        .find(|r| r["entity_id"] == id)
        .map(|r| r["reasons"].clone())
        .unwrap_or_default()
}

pub fn summary_md(out: &Path) -> String {
    std::fs::read_to_string(out.join("summary.md")).expect("summary.md written")
}

/// What `audithound inspect PATH` prints (it must succeed).
pub fn inspect(path: &Path) -> String {
    let out = bin()
        .arg("inspect")
        .arg(path)
        .output()
        .expect("inspect runs");
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` with its bytes, by path relative to `dir`: to compare two reports, or
/// a directory before and after a run.
pub fn files_under(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).expect("read");
                out.insert(p.strip_prefix(dir).expect("inside").to_path_buf(), bytes);
            }
        }
    }
    out
}

/// Scratch or staging directories of a run left in `dir` (`.audithound-…`): none may outlive it.
pub fn leftovers(dir: &Path) -> Vec<std::ffi::OsString> {
    std::fs::read_dir(dir)
        .expect("read_dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|name| name.to_string_lossy().starts_with(".audithound"))
        .collect()
}
