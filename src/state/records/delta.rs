//! The nights' records kept beside the folder's instead of merged into them every night.
//!
//! Why: merging a night into the window's records rewrote every kind, whatever the night's size:
//! 428 MB over the 85.9M-event state, 9–12 s of a ~35 s night, and the records stage the one that
//! grew with the window at the 10.12M-event benchmark. Now a night reduces its dirty days, joins
//! them to the nights' records since the folder's were written (held whole: they are few), and
//! writes those into `delta/`; the folder's files are linked into the new records unchanged, and
//! the days they no longer speak for are listed (`dropped`) and skipped as they are read
//! ([`crate::reduce::Delta`]). Once the nights' days or the dropped ones are a quarter of the
//! folder's, or the nights' records a sixteenth of the frame ([`merge_due`]), the night merges
//! everything into a new folder as before, so what is held beside the folder stays small and
//! what it drops few.

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::reduce::{Reduced, Symbols, store};

/// Where, inside the records, the nights' records are.
pub(super) const DIR: &str = "delta";

/// The nights' records are merged into the folder's once they, or the folder's days dropped,
/// reach this share of the folder's days: a night added to 30 then merges every seventh night
/// or so, to 120 every 24th.
const DUE_SHARE: usize = 4;

/// ... or once the nights' records take as stored ([`Reduced::footprint`]) more than this share
/// of the frame's bytes (or [`DUE_FLOOR`], if more): they are held whole beside the frame through
/// the detectors, where a state's run at 85.9M events stands about 0.4 GB under the peak it sets
/// while reading. One night of the 10.12M nights (84K events) is 9.5 MB so counted over the
/// 85.9M-event state (frame 1.49 GB: about nine such nights) and 1.1 MB over its own 120 nights
/// (frame 176 MB: the floor's fifteen nights, where the days' share allows 24); a night of the
/// 85.9M export's own size, about eight times as many events, merges the next night or so.
const DUE_FRAME_SHARE: u64 = 16;

/// The least the nights' records may take before the frame's share applies.
const DUE_FLOOR: u64 = 16 << 20;

/// Whether the nights' records (over `night_days` days, `night_bytes` as stored) are due to be
/// merged into a folder of `held_days` days of which `dropped_days` are dropped, beside a frame
/// of `frame_bytes`.
pub(super) fn merge_due(
    held_days: usize,
    dropped_days: usize,
    (night_days, night_bytes): (usize, u64),
    frame_bytes: u64,
) -> bool {
    DUE_SHARE * dropped_days.max(night_days) > held_days
        || night_bytes > (frame_bytes / DUE_FRAME_SHARE).max(DUE_FLOOR)
}

/// What the records `night` take as stored.
pub(super) fn stored_bytes(night: &Reduced) -> u64 {
    (crate::reduce::KINDS.iter())
        .map(|k| night.footprint(k).stored_bytes)
        .sum()
}

/// Writes records into `new` that are the folder `dir`'s files, linked (not copied: the same
/// bytes), and `night` in `new/delta/`, with the symbol table.
pub(super) fn write_beside(
    dir: &Path,
    new: &Path,
    night: &Reduced,
    symbols: &Symbols,
) -> Result<()> {
    std::fs::create_dir_all(new).map_err(|e| Error::io(new, e))?;
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(name) = path.file_name() else {
            continue;
        };
        let own = [super::META, "symbols.parquet"].map(std::ffi::OsStr::new);
        if !path.is_file() || own.contains(&name) {
            continue;
        }
        let to = new.join(name);
        if std::fs::hard_link(&path, &to).is_err() {
            // A file system without links: the bytes are copied.
            std::fs::copy(&path, &to).map_err(|e| Error::io(&to, e))?;
        }
    }
    store::write_body(&new.join(DIR), night)?;
    store::write_symbols(new, symbols)?;
    Ok(())
}

/// Whether a name from `records.json` is a plain name of the records' own files or of their
/// delta's.
pub(super) fn plain(name: &str) -> bool {
    let path = Path::new(name);
    let own = |n: &Path| n.file_name().is_some_and(|f| Path::new(f) == n);
    match path.parent() {
        Some(p) if p == Path::new(DIR) => path.file_name().is_some_and(|f| own(Path::new(f))),
        _ => own(path),
    }
}

/// The digest of each file of the records in `fresh` (by name, the delta's as `delta/NAME`); a
/// file linked from the records in `old` keeps the digest written for it there instead of being
/// read again.
pub(super) fn digests(old: &Path, fresh: &Path) -> Result<BTreeMap<String, String>> {
    use std::os::unix::fs::MetadataExt;
    let before: BTreeMap<String, String> = std::fs::read_to_string(old.join(super::META))
        .ok()
        .and_then(|text| serde_json::from_str::<super::Meta>(&text).ok())
        .map(|meta| meta.digests)
        .unwrap_or_default();
    let same = |a: &Path, b: &Path| match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    let mut digests = BTreeMap::new();
    for (folder, prefix) in [(fresh.to_path_buf(), ""), (fresh.join(DIR), "delta/")] {
        if !folder.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&folder).map_err(|e| Error::io(&folder, e))? {
            let path = entry.map_err(|e| Error::io(&folder, e))?.path();
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            if !path.is_file() || name == super::META {
                continue;
            }
            let key = format!("{prefix}{name}");
            let digest = match before.get(&key) {
                Some(known) if same(&path, &old.join(&key)) => known.clone(),
                _ => super::super::manifest::digest(&path)?,
            };
            digests.insert(key, digest);
        }
    }
    Ok(digests)
}
