//! `analyze --state --cluster`: a Spark cluster (two executor processes on this machine, started
//! by the test) reads the nights into the state, and the report and the state are those of the
//! same nights read by the run itself. A cluster that fails stores nothing.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use crate::state::{context_args, full_run, nights, same_report};
use crate::util::*;

const MASTER: &str = "local-cluster[2,1,1024]";

/// A Python with PySpark, installed once into the build's target folder (a 35-second `pip
/// install` of a pinned version; Spark itself runs on the machine's Java 17).
fn spark_python() -> PathBuf {
    let target = Path::new(env!("CARGO_BIN_EXE_audithound"))
        .ancestors()
        .nth(2)
        .expect("target folder")
        .to_path_buf();
    let java = Process::new("java").arg("-version").output();
    assert!(
        java.is_ok_and(|o| o.status.success()),
        "Spark needs Java 17: apt-get install openjdk-17-jre-headless"
    );
    let venv = target.join("spark-venv");
    let python = venv.join("bin/python");
    let lock = std::fs::File::create(target.join("spark-venv.lock")).expect("lock file");
    lock.lock().expect("lock");
    let has_spark = |python: &Path| {
        Process::new(python)
            .args(["-c", "import pyspark"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !has_spark(&python) {
        let made = Process::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(made.success(), "python3 -m venv {}", venv.display());
        let pip = Process::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "pyspark==4.0.1"])
            .status()
            .expect("pip runs");
        assert!(pip.success(), "pip install pyspark failed");
        assert!(has_spark(&python), "pyspark installed but not importable");
    }
    python
}

/// One run of `nights` into `state`, through the cluster when `python` is given.
fn run(
    out: &Path,
    state: &Path,
    nights: &[PathBuf],
    ctx: (&Path, &Path),
    cluster: Option<(&Path, &[&str])>,
) -> std::process::Output {
    let mut args: Vec<&str> = nights.iter().map(|p| p.to_str().expect("utf-8")).collect();
    args.extend(["--state", state.to_str().expect("utf-8"), "--force"]);
    args.extend(context_args(ctx.0, ctx.1));
    if let Some((python, extra)) = cluster {
        args.extend(["--cluster", MASTER, "--cluster-python"]);
        args.push(python.to_str().expect("utf-8"));
        args.extend(extra);
    }
    analyze(out, &args)
}

/// Scratch a run left in the state (`.cluster-*`, `.audithound-*`).
fn scratch_in(state: &Path) -> Vec<String> {
    std::fs::read_dir(state)
        .expect("state")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".cluster-") || n.starts_with(".audithound"))
        .collect()
}

#[test]
fn a_cluster_reads_nights_into_the_state_as_the_run_itself_would() {
    let python = spark_python();
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let ctx = (roster.as_path(), credentials.as_path());
    let (here, there) = (
        dir.path().join("state-here"),
        dir.path().join("state-there"),
    );
    let (out_here, out_there) = (dir.path().join("here"), dir.path().join("there"));
    // Twenty nights in one run (41 files, one of no known format, one with a broken line, in
    // three tasks), then ten more into the same state.
    for batch in [&nights[..20], &nights[20..]] {
        let o = run(&out_here, &here, batch, ctx, None);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let o = run(
            &out_there,
            &there,
            batch,
            ctx,
            Some((&python, &["--cluster-tasks", "3"])),
        );
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        same_report(&out_there, &out_here);
        let manifest = |state: &Path| std::fs::read(state.join("state.json")).expect("manifest");
        assert!(
            manifest(&there) == manifest(&here),
            "the states differ:\n{}\n{}",
            String::from_utf8_lossy(&manifest(&there)),
            String::from_utf8_lossy(&manifest(&here))
        );
        assert_eq!(scratch_in(&there), Vec::<String>::new());
    }
    let full = dir.path().join("full");
    full_run(&full, &nights, &roster, &credentials);
    same_report(&out_there, &full);
    assert_eq!(rank_of(&anomalies(&out_there), "key-e9"), Some(1));
    // Nothing new: no cluster is started (a missing Python would fail the run), nothing changes.
    let before = files_under(&there);
    let missing = dir.path().join("no-such-python");
    let o = run(
        &out_there,
        &there,
        &nights[25..],
        ctx,
        Some((&missing, &[])),
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(files_under(&there) == before, "the state changed");
    same_report(&out_there, &full);
}

#[test]
fn a_cluster_that_fails_stores_nothing() {
    let python = spark_python();
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let ctx = (roster.as_path(), credentials.as_path());
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let o = run(&out, &state, &nights[..2], ctx, None);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let before = files_under(&state);
    // No driver at all, then a driver whose every task fails: the binary is not on the worker.
    let missing = dir.path().join("no-such-python");
    let o = run(&out, &state, &nights[2..4], ctx, Some((&missing, &[])));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("cannot start"), "{}", stderr(&o));
    let nowhere = dir.path().join("no-such-audithound");
    let o = run(
        &out,
        &state,
        &nights[2..4],
        ctx,
        Some((
            &python,
            &["--cluster-binary", nowhere.to_str().expect("utf-8")],
        )),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("exited with 127: cannot run"),
        "{}",
        stderr(&o)
    );
    assert!(files_under(&state) == before, "the state changed");
    // A task that stores a truncated file with its mark: the run refuses the file as a local
    // run does (exit 2, nothing committed, the moved partitions swept by the next commit).
    let broken = dir.path().join("broken");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let night = std::fs::read(nights[2].join("gateway.csv")).expect("night");
    std::io::Write::write_all(&mut gz, &night).expect("gzip");
    let bytes = gz.finish().expect("gzip");
    write(&broken.join("gateway.csv.gz"), "");
    std::fs::write(broken.join("gateway.csv.gz"), &bytes[..bytes.len() / 2]).expect("write");
    let batch = [nights[3].clone(), broken];
    let o = run(&out, &state, &batch, ctx, Some((&python, &[])));
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("could not be read completely"),
        "{}",
        stderr(&o)
    );
    let manifest = |files: &std::collections::BTreeMap<PathBuf, Vec<u8>>| {
        files.get(Path::new("state.json")).cloned()
    };
    assert!(
        manifest(&files_under(&state)) == manifest(&before),
        "the manifest changed"
    );
    assert_eq!(scratch_in(&state), Vec::<String>::new());
    // The report of the two nights is still the one in --out.
    let full = dir.path().join("full");
    full_run(&full, &nights[..2], &roster, &credentials);
    same_report(&out, &full);
}

#[test]
fn a_cluster_that_never_answers_is_stopped_with_its_tasks() {
    let dir = tmp();
    let (nights, roster, credentials) = nights(dir.path());
    let ctx = (roster.as_path(), credentials.as_path());
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    // A driver that waits forever, as one does on a cluster with no free executor, with a
    // child of its own (Spark's JVM) that must go with it.
    let pid_file = dir.path().join("driver.pid");
    let stuck = dir.path().join("stuck-python");
    write(
        &stuck,
        &format!(
            "#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n",
            pid_file.display()
        ),
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stuck, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let o = run(
        &out,
        &state,
        &nights[..2],
        ctx,
        Some((&stuck, &["--cluster-timeout", "2"])),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no answer within 2 s"),
        "{}",
        stderr(&o)
    );
    // Gone, or a zombie waiting for a parent that reaps (a container's first process may not).
    // A killed process is torn down after the signal is sent: on a loaded machine it was still
    // seen running ('R') just after the run ended, so it is given a few seconds to go.
    let pid = std::fs::read_to_string(&pid_file).expect("the driver started");
    let stat_of =
        || std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let gone = |stat: &str| {
        let state_of = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .chars()
            .next();
        matches!(state_of, None | Some('Z' | 'X'))
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let mut stat = stat_of();
    while !gone(&stat) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
        stat = stat_of();
    }
    assert!(
        gone(&stat),
        "the driver's child {} outlived the run: {stat}",
        pid.trim()
    );
    assert!(!state.join("state.json").exists(), "nothing was committed");
    assert_eq!(scratch_in(&state), Vec::<String>::new());
    assert!(!out.exists(), "no report");
}
