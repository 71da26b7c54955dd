use std::time::Duration;

use super::*;

/// A folder that looks like a run's scratch, with a file in it.
fn folder(parent: &Path, name: &str) -> PathBuf {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).expect("folder");
    std::fs::write(dir.join("cold-0.parquet"), b"spilled").expect("file");
    dir
}

/// What a run killed at once leaves: its folder, and no lock on it (the kernel released it).
fn killed(parent: &Path, prefix: &str) -> PathBuf {
    let Scratch { dir, _lock, .. } = Scratch::new_in(parent, prefix).expect("scratch");
    std::fs::write(dir.path().join("cold-0.parquet"), b"spilled").expect("file");
    let left = dir.keep();
    drop(_lock);
    left
}

#[test]
fn what_a_dead_run_left_goes_and_a_live_runs_scratch_stays() {
    let parent = tempfile::tempdir().expect("tmp");
    let p = parent.path();
    let dead: Vec<PathBuf> = PREFIXES.iter().map(|prefix| killed(p, prefix)).collect();
    let live = Scratch::new_in(p, ".audithound-cold-").expect("live");
    let removed = sweep_older_than(p, Duration::ZERO);
    let mut names: Vec<String> = (dead.iter())
        .map(|d| d.file_name().expect("name").to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(removed, names);
    assert!(dead.iter().all(|d| !d.exists()));
    assert!(live.path().is_dir(), "a live run's scratch was removed");
    assert!(super::live().contains(&live.path().to_path_buf()));
    // Dropped normally, a scratch folder goes as before.
    let path = live.path().to_path_buf();
    drop(live);
    assert!(!path.exists());
    assert!(!super::live().contains(&path), "still listed once dropped");
}

#[test]
fn nothing_but_unlocked_scratch_folders_of_the_user_old_enough_is_touched() {
    let parent = tempfile::tempdir().expect("tmp");
    let p = parent.path();
    // A report of the user's, a previous report moved aside by a run that died, a file and a
    // link named as scratch, and a folder named as scratch but made a moment ago.
    let kept = [
        folder(p, "report"),
        folder(p, ".audithound-old-abc123"),
        folder(p, ".audithound-coldness"),
    ];
    std::fs::write(p.join(".audithound-tmp-file"), b"not a folder").expect("file");
    let target = folder(p, "evidence");
    std::os::unix::fs::symlink(&target, p.join(".audithound-records-link")).expect("link");
    let young = killed(p, ".audithound-rejects-");
    assert_eq!(sweep(p), Vec::<String>::new(), "a young folder was removed");
    assert!(young.is_dir());
    // With no age asked, the young one goes and nothing else does.
    assert_eq!(sweep_older_than(p, Duration::ZERO).len(), 1);
    assert!(!young.exists());
    assert!(kept.iter().all(|k| k.join("cold-0.parquet").is_file()));
    assert!(p.join(".audithound-tmp-file").is_file());
    assert!(p.join(".audithound-records-link").exists());
    assert!(target.join("cold-0.parquet").is_file());
}

#[test]
fn a_folder_that_cannot_be_read_is_no_error() {
    let gone = std::env::temp_dir().join("audithound-no-such-folder-for-a-sweep");
    assert!(sweep_older_than(&gone, Duration::ZERO).is_empty());
}
