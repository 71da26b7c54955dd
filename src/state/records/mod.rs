//! The window's access events as reduced records ([`crate::reduce`]), kept in the state between
//! runs, so that a nightly run reduces the local days its new files touch instead of the window.
//!
//! `records/` holds the records as [`crate::reduce::store`] writes them, and `records.json`: the
//! format, its version, and the partitions they were reduced from, each with the local days its
//! events fall on. A run compares those partitions with the ones it retains: the days of every
//! partition added or gone (a new night, a file read again, one aged out) are dropped from the
//! records and reduced again from the frame's rows of those days, all files together, so each
//! (entity, day) is whole and the merge exact (`Reduced::overlapping` stays 0; were it not, the
//! window would be reduced anew). A night that straddles local midnight makes the day before it
//! dirty too, and that day is reduced again whole: still one or two days, not the window.
//!
//! Records that are missing, of another version, unreadable or damaged (each file's size and
//! CRC-32 are kept in `records.json`) are rebuilt from the frame, with a note: they are derived
//! from the partitions, never the only copy of anything. They are written after the manifest,
//! into a new folder renamed into place; a run that dies between the two leaves records of the
//! manifest before, which the next run sees as partitions added or gone. The symbol table keeps
//! the names of aged-out days; once it holds more than twice the names the records still use,
//! the window is reduced anew with a fresh table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use serde::{Deserialize, Serialize};

use super::StoredFile;
use crate::error::{Error, Result};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};
use crate::reduce::days::DaySets;
use crate::reduce::{Delta, Reach, Reduced, Symbols, Walk, store};
use merge::Kept;
use roaring::RoaringBitmap;

pub const DIR: &str = "records";
const META: &str = "records.json";
const FORMAT: &str = "audithound-records";
/// Bumped whenever the records or their reduction change meaning: other records are rebuilt.
/// 2: the days of one-account records in a table of their own, LZ4.
/// 3: each kind's tables in files of their own; the self-served accounts in `records.json`.
/// 4: the days' accounts and self-served principals (`days.parquet`); the nights' records
/// beside the folder's (`delta/`) and the days dropped from the folder's.
const VERSION: u32 = 4;
/// Names a table may hold beyond twice those in use before it is built anew.
const SPARE_SYMBOLS: u64 = 1 << 16;

mod delta;
mod merge;

/// One partition the records were reduced from: the file as the manifest names it, and the
/// local days of its events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Covered {
    partition: String,
    fingerprint: String,
    size: u64,
    modified_ns: i64,
    days: Vec<i64>,
}

impl Covered {
    /// The partitions of `files` (files without events have none and reduce to nothing).
    pub(super) fn of(files: &[StoredFile]) -> Vec<Covered> {
        files
            .iter()
            .filter_map(|f| {
                Some(Covered {
                    partition: f.partition.clone()?,
                    fingerprint: f.fingerprint.clone(),
                    size: f.size,
                    modified_ns: f.modified_ns,
                    days: f.stats.days.clone(),
                })
            })
            .collect()
    }

    fn key(&self) -> (&str, &str, u64, i64) {
        (
            &self.partition,
            &self.fingerprint,
            self.size,
            self.modified_ns,
        )
    }
}

#[derive(Serialize, Deserialize)]
struct Meta {
    format: String,
    version: u32,
    /// What counted as a walk step (`max_step`, `max_gap_ms`): cells hold their walks.
    walk: [i64; 2],
    covers: Vec<Covered>,
    /// `size-crc32` of each file of the records (by name) as written; records written before
    /// the twenty-second session have none and are taken as they are. A file that does not
    /// match makes the records unusable, and they are rebuilt: a flipped bit in a Parquet page
    /// can otherwise read as another count.
    #[serde(default)]
    digests: BTreeMap<String, String>,
    /// Accounts reached by a principal of their own id ([`Reach::self_served`]): kept here so
    /// that a run reads no kind's records to know whether the accounts are customers. (Absent
    /// only from records of an older version, which are not used.)
    #[serde(default)]
    self_served: u64,
    /// Whether `delta/` holds the records of days reduced since the folder's were written.
    #[serde(default)]
    delta: bool,
    /// The days whose records in the folder are not the window's: reduced again into the
    /// delta, or gone.
    #[serde(default)]
    dropped: Vec<i64>,
}

/// How the run's records were made, for `--timings` and the notes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Made {
    /// The stored records, with this many local days reduced again.
    Kept { days: usize },
    /// The whole window reduced, and why.
    Whole(String),
    /// The whole window reduced, as the stored records could not be used (why): worth a note.
    Unusable(String),
}

impl std::fmt::Display for Made {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Made::Kept { days } => write!(f, "stored records kept, {days} day(s) reduced again"),
            Made::Whole(why) => write!(f, "window to be reduced whole: {why}"),
            Made::Unusable(why) => {
                write!(
                    f,
                    "window to be reduced whole: stored records not used: {why}"
                )
            }
        }
    }
}

/// The window's records: the state's, with the days of partitions added or gone reduced again
/// from `events` (every retained event); `None` when there is nothing to build on, and the
/// window is reduced as a run without a state reduces it, by the detector that asks first,
/// beside the others (alone before them, the 85.9M-event state's first run took 20 s longer).
/// Records kept are read a kind at a time when asked ([`Reach::stored`]). The days reduced again
/// join the nights' records kept beside the folder's ([`delta`]), until those are due to be
/// merged into the folder's, each kind read, merged and written into the folder `save` renames
/// into place, one kind at a time.
pub fn reach(
    state: &Path,
    now: &[Covered],
    (events, cold): (&DataFrame, &ColdColumns),
    time: &TimeParser,
    walk: Walk,
) -> Result<(Option<Reach>, Made)> {
    let whole = |why: String| Ok((None, Made::Whole(why)));
    let dir = state.join(DIR);
    let stored = match load(&dir, walk) {
        Ok(Some(stored)) => stored,
        Ok(None) => return whole("no records stored yet".into()),
        Err(e) => return Ok((None, Made::Unusable(e.to_string()))),
    };
    let Loaded {
        meta,
        mut symbols,
        orphans,
        days,
        delta,
    } = stored;
    let dropped: BTreeSet<i64> = meta.dropped.iter().copied().collect();
    let dirty = dirty_days(&meta.covers, now);
    if dirty.is_empty() {
        let mut sets = days.without(&dropped);
        sets.absorb(DaySets::of(&delta));
        let beside = Delta {
            dropped,
            kinds: delta.kinds,
        };
        let kept = Reach::stored(&dir, sets.accounts(), sets.self_served(), symbols, walk);
        let kept = match meta.delta {
            true => kept.with_delta(beside),
            false => kept,
        };
        return Ok((Some(kept), Made::Kept { days: 0 }));
    }
    let Some(rows) = rows_on(events, cold, &dirty, time)? else {
        return whole("most of the window's rows are on days read again".into());
    };
    let fresh = Reduced::of(&rows, time, walk, &mut symbols)?;
    drop(rows);
    // The nights' records so far, their dirty days reduced again: each (entity, day) whole on
    // one side, so the join is exact.
    let night = delta.without_days(&dirty).merge(fresh);
    if night.overlapping > 0 {
        return whole(format!(
            "{} (entity, day) cells were held twice",
            night.overlapping
        ));
    }
    let held: BTreeSet<i64> = days.0.keys().copied().collect();
    let dropped: BTreeSet<i64> = dropped.union(&dirty).copied().collect();
    let dropped: BTreeSet<i64> = dropped.intersection(&held).copied().collect();
    let mut sets = days.without(&dropped);
    let night_sets = DaySets::of(&night);
    let new = state.join(NEW);
    let days_done = dirty.len();
    let night_size = (night_sets.0.len(), delta::stored_bytes(&night));
    let frame_bytes = events.estimated_size() as u64;
    if !delta::merge_due(held.len(), dropped.len(), night_size, frame_bytes) {
        sets.absorb(night_sets);
        let written = clear(state).and_then(|()| delta::write_beside(&dir, &new, &night, &symbols));
        if let Err(e) = written {
            return Ok((None, Made::Unusable(format!("not kept: {e}"))));
        }
        let (accounts, served) = (sets.accounts(), sets.self_served());
        let kinds = night.kinds;
        let reach = Reach::stored(&new, accounts, served, symbols, walk);
        let reach = reach.with_delta(Delta { dropped, kinds });
        return Ok((Some(reach), Made::Kept { days: days_done }));
    }
    // Due: the folder's records without the dropped days, the nights' merged in, rewritten.
    let mut named = RoaringBitmap::new();
    for kind in &night.kinds {
        named.extend(crate::reduce::kind_entities(kind));
    }
    sets.absorb(night_sets);
    let accounts = sets.accounts();
    let kept = Kept {
        dir: &dir,
        accounts: &accounts,
        orphans,
        stale: &dropped,
        symbols: symbols.len() as u64,
    };
    // The merge writes as it goes: a folder that cannot be written (a full disk) costs the run
    // its stored records, not its report, as when the records were written after it.
    let merged = match clear(state)
        .and_then(|()| std::fs::create_dir_all(&new).map_err(|e| Error::io(&new, e)))
        .and_then(|()| kept.merge_into(&new, night))
    {
        Ok(merged) => merged,
        Err(e) => return Ok((None, Made::Unusable(format!("not merged: {e}")))),
    };
    // Only dropping days leaves names unused.
    named |= merged.named;
    if !dropped.is_empty() && symbols.len() as u64 > 2 * named.len() + SPARE_SYMBOLS {
        return whole("the symbol table was mostly names of days gone".into());
    }
    if merged.overlapping > 0 {
        return whole(format!(
            "{} (entity, day) cells were held twice",
            merged.overlapping
        ));
    }
    if let Err(e) =
        store::write_symbols(&new, &symbols).and_then(|_| store::write_days(&new, &sets))
    {
        return Ok((None, Made::Unusable(format!("not merged: {e}"))));
    }
    let reach = Reach::stored(&new, accounts, merged.self_served, symbols, walk);
    Ok((Some(reach), Made::Kept { days: days_done }))
}

/// Where `reach` writes records that `save` renames into place.
const NEW: &str = ".records-new";
/// Where `save` moves the records it replaces before removing them.
const OLD: &str = ".records-old";

/// The empty folder where records made whole are written for `save` to rename into place,
/// when they are made on disk instead of held ([`crate::reduce::Reduced::of_on_disk`]).
pub fn fresh(state: &Path) -> Result<PathBuf> {
    clear(state)?;
    Ok(state.join(NEW))
}

/// Removes what a run that died left of records being written or replaced.
fn clear(state: &Path) -> Result<()> {
    for stale in [state.join(NEW), state.join(OLD)] {
        if stale.exists() {
            std::fs::remove_dir_all(&stale).map_err(|e| Error::io(&stale, e))?;
        }
    }
    Ok(())
}

/// The local days of every partition in one list and not the other.
fn dirty_days(before: &[Covered], now: &[Covered]) -> BTreeSet<i64> {
    fn index(list: &[Covered]) -> BTreeMap<(&str, &str, u64, i64), &[i64]> {
        list.iter().map(|c| (c.key(), c.days.as_slice())).collect()
    }
    let (was, is) = (index(before), index(now));
    let gone = was.iter().filter(|(k, _)| !is.contains_key(*k));
    let added = is.iter().filter(|(k, _)| !was.contains_key(*k));
    gone.chain(added)
        .flat_map(|(_, days)| days.iter().copied())
        .collect()
}

/// The rows of `events` on the local days `days`, as instant ranges (consecutive days joined);
/// `None` when they are more than three quarters of the rows (a copy of most of the frame, to
/// merge with records of little: the window is then reduced in place).
fn rows_on(
    events: &DataFrame,
    cold: &ColdColumns,
    days: &BTreeSet<i64>,
    time: &TimeParser,
) -> Result<Option<DataFrame>> {
    let mut spans: Vec<(i64, i64)> = Vec::new();
    for &day in days {
        let (from, to) = (time.day_start_ms(day), time.day_start_ms(day + 1));
        match spans.last_mut() {
            Some(last) if last.1 >= from => last.1 = last.1.max(to),
            _ => spans.push((from, to)),
        }
    }
    let mask = cold.instants_where(events, |t| {
        let next = spans.partition_point(|s| s.1 <= t);
        spans.get(next).is_some_and(|s| s.0 <= t)
    })?;
    if 4 * mask.sum().unwrap_or(0) as usize > 3 * events.height() {
        return Ok(None);
    }
    // With the instant, the target account, the principal and the address where they wait
    // beside the frame.
    let mut names: Vec<&str> = (events.get_column_names().into_iter())
        .map(|n| n.as_str())
        .collect();
    for beside in [c::TS, c::TARGET, c::PRINCIPAL, c::SOURCE_IP] {
        if !names.contains(&beside) {
            names.push(beside);
        }
    }
    Ok(Some(cold.select_where(events, &names, &mask)?))
}

/// What a run holds of the stored records before it reads any kind.
struct Loaded {
    /// Their description (the partitions they cover).
    meta: Meta,
    symbols: Symbols,
    /// The orphans' accounts by day of the folder's records (see [`store::read_head`]).
    orphans: BTreeMap<i64, RoaringBitmap>,
    /// The folder's records' day sets, dropped days included.
    days: DaySets,
    /// The nights' records kept beside the folder's ([`delta`]), whole; empty if none.
    delta: Reduced,
}

/// The stored records as [`Loaded`] lists them, every file checked against its digest; `None`
/// when there are none. The folder's kinds are read when asked.
fn load(dir: &Path, walk: Walk) -> Result<Option<Loaded>> {
    let meta_path = dir.join(META);
    let text = match std::fs::read_to_string(&meta_path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&meta_path, e)),
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|e| Error::State {
        path: meta_path.clone(),
        reason: format!("unreadable: {e}"),
    })?;
    if meta.format != FORMAT || meta.version != VERSION {
        return Err(Error::State {
            path: meta_path,
            reason: format!(
                "{} version {}, this build keeps {FORMAT} version {VERSION}",
                meta.format, meta.version
            ),
        });
    }
    if meta.walk != [walk.max_step, walk.max_gap_ms] {
        return Err(Error::State {
            path: meta_path,
            reason: "walks were counted with other steps".into(),
        });
    }
    for (name, want) in &meta.digests {
        // Names come from a file on disk: one that is not a plain name of this folder's (or of
        // its delta's) could point anywhere.
        if !delta::plain(name) || name == META {
            return Err(Error::State {
                path: meta_path,
                reason: format!("names a file outside the records: {name:?}"),
            });
        }
        super::manifest::check_digest(&dir.join(name), want, "")?;
    }
    let (symbols, _, orphans) = store::read_head(dir)?;
    let n = symbols.len() as u64;
    let days = store::read_days(dir, n)?;
    let delta = match meta.delta {
        true => store::read_body(&dir.join(delta::DIR), n)?,
        false => Reduced::default(),
    };
    Ok(Some(Loaded {
        meta,
        symbols,
        orphans,
        days,
        delta,
    }))
}

/// Writes `reach` as the records of the partitions `now`, replacing the stored ones; nothing
/// when they are the stored ones (`made` kept them and reduced no day). Records held whole are
/// written here; records `reach` merged are already in the new folder, and only described.
pub fn save(state: &Path, reach: &Reach, now: &[Covered], made: &Made) -> Result<()> {
    if *made == (Made::Kept { days: 0 }) {
        return Ok(());
    }
    let fresh = state.join(NEW);
    match reach.held() {
        Some((reduced, symbols)) => {
            clear(state)?;
            store::write(&fresh, reduced, symbols)?;
            store::write_days(&fresh, &DaySets::of(reduced))?;
        }
        // Records made here whole on disk come with their day sets (`Reduced::of_on_disk`,
        // asked for them when a state keeps the records), merged ones too.
        None if reach.stored_in() == Some(fresh.as_path()) => {
            if !fresh.join(store::DAYS).exists() {
                return Err(Error::State {
                    path: fresh,
                    reason: "records to store were made without their day sets".into(),
                });
            }
        }
        None => {
            return Err(Error::State {
                path: fresh,
                reason: "records to store are neither held nor merged into it".into(),
            });
        }
    }
    let walk = reach.walk();
    let digests = delta::digests(&state.join(DIR), &fresh)?;
    let dropped = reach.delta().map(|d| d.dropped.iter().copied().collect());
    let meta = Meta {
        format: FORMAT.into(),
        version: VERSION,
        walk: [walk.max_step, walk.max_gap_ms],
        covers: now.to_vec(),
        digests,
        self_served: reach.self_served(),
        delta: dropped.is_some(),
        dropped: dropped.unwrap_or_default(),
    };
    super::write_synced(&fresh.join(META), &meta)?;
    let (dest, old) = (state.join(DIR), state.join(OLD));
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(|e| Error::io(&dest, e))?;
    }
    std::fs::rename(&fresh, &dest).map_err(|e| Error::io(&dest, e))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
