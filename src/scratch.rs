//! The scratch folders a run works in beside its report (rejects waiting for `rejects.csv`, the
//! cold columns past the spill bound, records made on disk, the report being assembled), and
//! what a run that died left of them.
//!
//! A run the kernel kills (out of memory), that a signal or a power cut stops, runs no
//! destructor: its scratch stayed beside the report for good. A 10M-event export's run killed
//! six seconds in left 117 MB of spilled columns; a run over hundreds of millions of events
//! leaves gigabytes, and a nightly job that kept failing would fill the disk a night at a time.
//! So each scratch folder is held locked (`flock` on the folder itself, which the kernel
//! releases however the process ends) for as long as the run lives, and a run first removes
//! the scratch folders beside its report that no live run holds ([`sweep`]).
//!
//! What is never removed: anything not named as scratch ([`PREFIXES`]), not a folder (a link
//! is not one), not the user's own, or younger than [`GRACE`] (a folder another run has just
//! made and not yet locked); and the folder a previous report is moved aside into while the new
//! one is put in place (`.audithound-old-`): a run that died between the two renames leaves the
//! only copy of the previous report there.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

/// The names scratch folders start with; `tempfile` adds a random suffix.
pub const PREFIXES: [&str; 4] = [
    ".audithound-rejects-",
    ".audithound-cold-",
    ".audithound-records-",
    ".audithound-tmp-",
];

/// How old an unlocked scratch folder must be to be removed: between making a folder and
/// locking it a live run holds no lock for a moment, and a sweep must not take it then.
pub const GRACE: Duration = Duration::from_secs(60);

/// A scratch folder, removed when dropped (unless kept) and locked while it exists.
pub struct Scratch {
    dir: tempfile::TempDir,
    _lock: File,
    _listed: Listed,
}

/// The scratch folders of this process, for [`remove_live`]: a run stopped at its memory bound
/// exits without unwinding, so no destructor removes them. Process-wide, as exiting is.
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Removes every scratch folder this process holds, for a run about to exit without unwinding
/// (see [`crate::memory::limit`]). Best effort.
pub fn remove_live() {
    for dir in live().drain(..) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A folder's place in [`LIVE`], given up when its scratch is dropped or kept.
struct Listed(PathBuf);

impl Drop for Listed {
    fn drop(&mut self) {
        live().retain(|d| *d != self.0);
    }
}

impl Scratch {
    /// A new folder in `parent` named `prefix` and a random suffix; `prefix` should be one of
    /// [`PREFIXES`] for what a dead run leaves of it to be removed.
    pub fn new_in(parent: &Path, prefix: &str) -> Result<Scratch> {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        let lock = File::open(dir.path()).map_err(|e| Error::io(dir.path(), e))?;
        lock.try_lock().map_err(|e| Error::Output {
            path: dir.path().to_path_buf(),
            reason: format!("cannot lock a scratch folder just made: {e}"),
        })?;
        live().push(dir.path().to_path_buf());
        let listed = Listed(dir.path().to_path_buf());
        Ok(Scratch {
            dir,
            _lock: lock,
            _listed: listed,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The folder is no longer removed when dropped (it was renamed into place); its lock goes.
    pub fn keep(self) -> PathBuf {
        self.dir.keep()
    }
}

/// Removes the scratch folders in `parent` that no live run holds and that are older than
/// [`GRACE`]; returns their names, for the run to say what it removed. Best effort: a folder
/// that cannot be read or removed is left as it is.
pub fn sweep(parent: &Path) -> Vec<String> {
    sweep_older_than(parent, GRACE)
}

/// [`sweep`] with the age asked of a folder given (tests ask none).
pub fn sweep_older_than(parent: &Path, grace: Duration) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if !PREFIXES.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = entry.path();
        // The lock is held while the folder goes, so two sweeps never remove it together.
        if let Some(_held) = stale(&path, grace)
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// The lock of a folder of the user's own (not a link to one), old enough, that no live run
/// holds; `None` when it is not such a folder.
fn stale(path: &Path, grace: Duration) -> Option<File> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me {
        return None;
    }
    let age = (meta.modified().ok())
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .unwrap_or(Duration::ZERO);
    if age < grace {
        return None;
    }
    let lock = File::open(path).ok()?;
    lock.try_lock().ok()?;
    Some(lock)
}

#[cfg(test)]
mod tests;
