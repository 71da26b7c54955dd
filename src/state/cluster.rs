//! `analyze --state DIR --cluster MASTER`: the files the state does not hold yet are read by a
//! Spark cluster's executors instead of this process. Each task runs this same binary's
//! `audithound ingest` on its share of the files, into a state of its own inside `DIR`; this
//! process then moves the tasks' partitions into the state, as if it had read the files itself,
//! and the run goes on exactly as a local one (read back, detect, report, commit). The partition
//! is the partial state a task hands back, so the cluster's reading is the local reading by
//! construction, not a second implementation of the formats in SQL (the report is byte-identical
//! either way: `tests/cluster.rs`).
//!
//! Spark rather than Ballista (issue 21's first choice): a cold build of `ballista` and
//! `datafusion` was measured at 57 CPU-minutes on this 2-core machine (the figure),
//! beside polars' 14 minutes, which leaves CI's 90 minutes no room; PySpark is a 35-second `pip install` and runs tasks that are
//! programs of our own. The driver is a short Python script carried inside the binary
//! (`spark_driver.py`) and written into the scratch folder of each run.
//!
//! What a cluster needs: Java 17 and PySpark where the driver runs (`--cluster-python`), the
//! state folder, the inputs and this binary at the same paths on every worker (shared storage),
//! and the run's working directory too (relative input paths are read from it, and stored as
//! given, so the report names them as a local run does).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use super::NewFile;
use crate::error::{Error, Result};

/// The driver, written next to its task list for every run.
const DRIVER: &str = include_str!("spark_driver.py");
/// Scratch folders inside the state start with this; one left by a run that died is removed by
/// the next (which holds the state's lock, so no other run is using it).
const SCRATCH: &str = ".cluster-";

/// Where and how the cluster runs.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Spark master URL: `local-cluster[2,1,1024]` (two executor processes on this machine),
    /// `spark://host:7077`, `local[4]`.
    pub master: String,
    /// The Python that has PySpark installed.
    pub python: PathBuf,
    /// This binary's path on the workers.
    pub binary: PathBuf,
    /// How many tasks the new files are shared into (at most one per file).
    pub tasks: usize,
    /// The reading flags each task is given: the run's own, so the settings match.
    pub read_args: Vec<String>,
    /// Print each task's wall time to stderr.
    pub timings: bool,
    /// Say on stderr what the cluster is given (a terminal is watching).
    pub progress: bool,
    /// How long the driver may take before it and its tasks are stopped and the run fails.
    pub timeout: std::time::Duration,
}

#[derive(Serialize)]
struct Spec {
    master: String,
    cwd: String,
    tasks: Vec<Task>,
    results: PathBuf,
}

#[derive(Serialize)]
struct Task {
    part: PathBuf,
    argv: Vec<String>,
}

#[derive(Deserialize)]
struct Done {
    part: PathBuf,
    code: i32,
    seconds: f64,
    host: String,
    stderr: String,
}

impl Cluster {
    /// Has the cluster read `new` into states of their own inside `state`; returns their folders.
    pub(crate) fn read(&self, state: &Path, new: &[NewFile]) -> Result<Vec<PathBuf>> {
        if new.is_empty() {
            return Ok(Vec::new());
        }
        remove_stale(state);
        let scratch = tempfile::Builder::new()
            .prefix(SCRATCH)
            .tempdir_in(state)
            .map_err(|e| Error::io(state, e))?;
        let dir = scratch.path();
        let spec = self.spec(dir, new)?;
        if self.progress {
            eprintln!(
                "cluster: {} new file(s) in {} task(s) on {}",
                new.len(),
                spec.tasks.len(),
                crate::report::terminal::safe(&self.master)
            );
        }
        let started = std::time::Instant::now();
        self.run_driver(dir, &spec)?;
        let text =
            std::fs::read_to_string(&spec.results).map_err(|e| Error::io(&spec.results, e))?;
        let done: Vec<Done> = serde_json::from_str(&text)
            .map_err(|e| Error::Cluster(format!("unreadable task results: {e}")))?;
        // `ingest --keep-going` exits 3 when a file could not be read to its end: the file is
        // stored with its mark, and this run decides about it as a local one would.
        if let Some(bad) = done.iter().find(|d| d.code != 0 && d.code != 3) {
            return Err(Error::Cluster(format!(
                "task {} on {} exited with {}: {}",
                bad.part.display(),
                bad.host,
                bad.code,
                tail(&bad.stderr, 10)
            )));
        }
        // The parts are the ones this run named, each answered for.
        let parts: Vec<PathBuf> = spec.tasks.into_iter().map(|t| t.part).collect();
        if let Some(missing) = parts.iter().find(|p| !done.iter().any(|d| &d.part == *p)) {
            return Err(Error::Cluster(format!(
                "the driver returned no result for task {}",
                missing.display()
            )));
        }
        if self.timings {
            for d in &done {
                eprintln!(
                    "timing: cluster task {} on {}: {:.3} s",
                    d.part.file_name().unwrap_or_default().to_string_lossy(),
                    d.host,
                    d.seconds
                );
            }
            eprintln!(
                "timing: cluster, {} task(s) with the driver's start: {:.3} s",
                done.len(),
                started.elapsed().as_secs_f64()
            );
        }
        // Kept: the caller moves the parts' partitions out, then removes the scratch.
        let _ = scratch.keep();
        Ok(parts)
    }

    /// The driver's task list, with each task's list of files written beside it.
    fn spec(&self, dir: &Path, new: &[NewFile]) -> Result<Spec> {
        let cwd = std::env::current_dir().map_err(|e| Error::io(Path::new("."), e))?;
        // Input paths travel in NUL-separated lists, byte for byte; these travel in JSON.
        let cwd = text(&cwd, "the working directory")?;
        let binary = text(&self.binary, "--cluster-binary")?;
        text(dir, "the state folder")?;
        let mut tasks = Vec::new();
        for (i, files) in share(new, self.tasks).into_iter().enumerate() {
            let part = dir.join(format!("part-{i:04}"));
            let list = dir.join(format!("part-{i:04}.files"));
            let mut names = Vec::new();
            for f in files {
                names.extend_from_slice(f.as_os_str().as_encoded_bytes());
                names.push(0);
            }
            std::fs::write(&list, names).map_err(|e| Error::io(&list, e))?;
            let mut argv = vec![
                binary.clone(),
                "ingest".into(),
                "--quiet".into(),
                "--keep-going".into(),
                "--state".into(),
                part.display().to_string(),
                "--files-from".into(),
                list.display().to_string(),
            ];
            argv.extend(self.read_args.iter().cloned());
            tasks.push(Task { part, argv });
        }
        Ok(Spec {
            master: self.master.clone(),
            cwd,
            tasks,
            results: dir.join("results.json"),
        })
    }

    /// Runs the driver on `spec` in its own process group, its output in `driver.log`; past
    /// `timeout` the whole group is killed (a cluster without free executors waits forever,
    /// and a nightly job must end).
    fn run_driver(&self, dir: &Path, spec: &Spec) -> Result<()> {
        use std::os::unix::process::CommandExt;
        let spec_path = dir.join("spec.json");
        let text = serde_json::to_vec_pretty(spec)
            .map_err(|e| Error::Cluster(format!("cannot write the task list: {e}")))?;
        std::fs::write(&spec_path, text).map_err(|e| Error::io(&spec_path, e))?;
        let driver = dir.join("spark_driver.py");
        std::fs::write(&driver, DRIVER).map_err(|e| Error::io(&driver, e))?;
        let log = dir.join("driver.log");
        let log_file = std::fs::File::create(&log).map_err(|e| Error::io(&log, e))?;
        let err_file = log_file.try_clone().map_err(|e| Error::io(&log, e))?;
        let mut child = Command::new(&self.python)
            .arg(&driver)
            .arg(&spec_path)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(err_file)
            .process_group(0)
            .spawn()
            .map_err(|e| {
                Error::Cluster(format!(
                    "cannot start {} (--cluster-python): {e}",
                    self.python.display()
                ))
            })?;
        let deadline = std::time::Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait().map_err(|e| Error::io(&driver, e))? {
                Some(status) => break status,
                None if std::time::Instant::now() >= deadline => {
                    // SAFETY: killpg only sends a signal, to the group this run created.
                    unsafe { libc::killpg(child.id() as libc::pid_t, libc::SIGKILL) };
                    let _ = child.wait();
                    return Err(Error::Cluster(format!(
                        "no answer within {} s (--cluster-timeout): the driver and its tasks \
                         were stopped; its last lines: {}",
                        self.timeout.as_secs(),
                        tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20)
                    )));
                }
                None => std::thread::sleep(std::time::Duration::from_millis(100)),
            }
        };
        if !status.success() {
            return Err(Error::Cluster(format!(
                "the Spark driver failed ({status}); its last lines: {}",
                tail(&std::fs::read_to_string(&log).unwrap_or_default(), 20)
            )));
        }
        Ok(())
    }
}

/// Removes this state's scratch once its parts are adopted (or a run died with it).
pub(crate) fn remove_stale(state: &Path) {
    let Ok(entries) = std::fs::read_dir(state) else {
        return;
    };
    for entry in entries.flatten() {
        let stale = entry.file_name().to_string_lossy().starts_with(SCRATCH);
        if stale && entry.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `new` shared into at most `tasks` lists of about equal bytes: largest file first, each to
/// the lightest list so far (ties to the first). Lists keep the files' order.
fn share(new: &[NewFile], tasks: usize) -> Vec<Vec<&Path>> {
    let n = tasks.clamp(1, new.len().max(1));
    let mut order: Vec<usize> = (0..new.len()).collect();
    order.sort_by(|&a, &b| new[b].size.cmp(&new[a].size).then(a.cmp(&b)));
    let mut load = vec![0u64; n];
    let mut lists: Vec<Vec<usize>> = vec![Vec::new(); n];
    for i in order {
        let lightest = (0..n).min_by_key(|&t| (load[t], t)).unwrap_or(0);
        load[lightest] += new[i].size.max(1);
        lists[lightest].push(i);
    }
    lists
        .into_iter()
        .filter(|l| !l.is_empty())
        .map(|mut l| {
            l.sort_unstable();
            l.into_iter().map(|i| new[i].path.as_path()).collect()
        })
        .collect()
}

/// `path` as text for the driver's JSON task list.
fn text(path: &Path, what: &str) -> Result<String> {
    path.to_str().map(str::to_string).ok_or_else(|| {
        Error::Cluster(format!(
            "{what} {} is not UTF-8, which the Spark driver's task list cannot carry",
            path.display()
        ))
    })
}

/// The last `n` non-empty lines of `text`, on one line (errors are printed one line each, with
/// control characters escaped).
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, size: u64) -> NewFile {
        NewFile {
            path: PathBuf::from(name),
            input: String::new(),
            size,
            modified_ns: 0,
            print: String::new(),
        }
    }

    #[test]
    fn files_are_shared_by_bytes_and_keep_their_order() {
        let new = [
            file("a", 10),
            file("b", 100),
            file("c", 30),
            file("d", 60),
            file("e", 0),
        ];
        let lists = share(&new, 2);
        let names: Vec<Vec<&str>> = lists
            .iter()
            .map(|l| l.iter().map(|p| p.to_str().unwrap_or("")).collect())
            .collect();
        assert_eq!(names, vec![vec!["b", "e"], vec!["a", "c", "d"]]);
        assert_eq!(share(&new, 99).len(), 5, "at most one task per file");
        assert_eq!(share(&new, 0).len(), 1, "at least one task");
    }
}
