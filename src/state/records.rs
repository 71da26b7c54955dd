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

use polars::prelude::{DataFrame, col, lit};
use serde::{Deserialize, Serialize};

use super::StoredFile;
use crate::error::{Error, Result};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};
use crate::reduce::{Entities, KINDS, Reach, Reduced, Symbols, Walk, store};
use roaring::RoaringBitmap;

pub const DIR: &str = "records";
const META: &str = "records.json";
const FORMAT: &str = "audithound-records";
/// Bumped whenever the records or their reduction change meaning: other records are rebuilt.
/// 2: the days of one-account records in a table of their own, LZ4.
/// 3: each kind's tables in files of their own; the self-served accounts in `records.json`.
const VERSION: u32 = 3;
/// Names a table may hold beyond twice those in use before it is built anew.
const SPARE_SYMBOLS: u64 = 1 << 16;

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
/// Records kept are read a kind at a time when asked ([`Reach::stored`]); with days reduced
/// again, each kind is read, merged and written into the folder `save` renames into place, one
/// kind at a time.
pub fn reach(
    state: &Path,
    now: &[Covered],
    (events, cold): (&DataFrame, &ColdColumns),
    time: &TimeParser,
    walk: Walk,
) -> Result<(Option<Reach>, Made)> {
    let whole = |why: String| Ok((None, Made::Whole(why)));
    let dir = state.join(DIR);
    let (meta, (mut symbols, accounts, orphans)) = match load(&dir, walk) {
        Ok(Some(stored)) => stored,
        Ok(None) => return whole("no records stored yet".into()),
        Err(e) => return Ok((None, Made::Unusable(e.to_string()))),
    };
    let dirty = dirty_days(&meta.covers, now);
    if dirty.is_empty() {
        let kept = Reach::stored(&dir, accounts, meta.self_served, symbols, walk);
        return Ok((Some(kept), Made::Kept { days: 0 }));
    }
    // Dirty days the stored records hold (a day read again, aged out, or shared with a new
    // night); a new night's own days they do not hold, and dropping those walked every record
    // for nothing: 0.64 s of the records' stage when a night is added to the 85.9M-event state
    // (3.55 against 4.02 s, one run each).
    let held: BTreeSet<i64> = (meta.covers.iter())
        .flat_map(|c| c.days.iter().copied())
        .collect();
    let stale: BTreeSet<i64> = dirty.intersection(&held).copied().collect();
    let Some(rows) = rows_on(events, cold, &dirty, time)? else {
        return whole("most of the window's rows are on days read again".into());
    };
    let table_before = symbols.len() as u64;
    let fresh = Reduced::of(&rows, time, walk, &mut symbols)?;
    drop(rows);
    let new = state.join(NEW);
    let kept = Kept {
        dir: &dir,
        accounts,
        orphans,
        stale: &stale,
        symbols: table_before,
    };
    // The merge writes as it goes: a folder that cannot be written (a full disk) costs the run
    // its stored records, not its report, as when the records were written after it.
    let merged = match clear(state)
        .and_then(|()| std::fs::create_dir_all(&new).map_err(|e| Error::io(&new, e)))
        .and_then(|()| kept.merge_into(&new, fresh))
    {
        Ok(merged) => merged,
        Err(e) => return Ok((None, Made::Unusable(format!("not merged: {e}")))),
    };
    // Only dropping days leaves names unused.
    if !stale.is_empty() && table_before > 2 * merged.named_before + SPARE_SYMBOLS {
        return whole("the symbol table was mostly names of days gone".into());
    }
    if merged.overlapping > 0 {
        return whole(format!(
            "{} (entity, day) cells were held twice",
            merged.overlapping
        ));
    }
    if let Err(e) = store::write_symbols(&new, &symbols) {
        return Ok((None, Made::Unusable(format!("not merged: {e}"))));
    }
    let days = dirty.len();
    let reach = Reach::stored(&new, merged.accounts, merged.self_served, symbols, walk);
    Ok((Some(reach), Made::Kept { days }))
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

/// The stored records, the local days to drop from them, and the table's size before this run.
struct Kept<'a> {
    dir: &'a Path,
    accounts: RoaringBitmap,
    orphans: BTreeMap<i64, RoaringBitmap>,
    stale: &'a BTreeSet<i64>,
    symbols: u64,
}

/// What one kind's merge counted, the names it used and the accounts it touched (see
/// `Kept::merge_kind`).
type KindDone = (store::KindMerged, RoaringBitmap, RoaringBitmap);

/// What merging the stored records with a run's left besides the kinds' files.
struct Merged {
    accounts: RoaringBitmap,
    self_served: u64,
    /// Names the records used before the run's were added (entities and accounts).
    named_before: u64,
    overlapping: u64,
}

impl Kept<'_> {
    /// Each kind's stale days dropped and `fresh`'s merged in as the kind is streamed, written
    /// into `new` as merged ([`store::merge_kind`]), as many kinds at a time as rayon has
    /// threads; then the account sets. What [`Reduced::without_days`] and [`Reduced::merge`] do
    /// to records held whole, with a few batches of each kind being merged held at a time.
    ///
    /// Side by side because one small kind's merge kept about one core busy (its readers
    /// decoding, the merge waiting): a night added to 30 nights of the 10.12M-event benchmark,
    /// records stage 0.34 s at 1.1 cores one kind after another, 0.27–0.31 s two at a time. At
    /// the 85.9M state one merge already kept 1.3 cores busy and two are level with it
    /// (`docs/performance.md`, forty-fourth session).
    fn merge_into(self, new: &Path, fresh: Reduced) -> Result<Merged> {
        let Reduced {
            kinds,
            accounts: fresh_accounts,
            orphans: fresh_orphans,
            overlapping: fresh_overlapping,
            ..
        } = fresh;
        let merged = self.merge_kinds(new, kinds)?;
        let (mut named, mut accounts) = (RoaringBitmap::new(), RoaringBitmap::new());
        let (mut self_served, mut overlapping) = (0, fresh_overlapping);
        for (k, (kind, names, touched)) in merged.into_iter().enumerate() {
            overlapping += kind.overlapping;
            if KINDS[k] == c::PRINCIPAL {
                self_served = kind.self_served;
            }
            named |= names;
            accounts |= touched;
        }
        let mut orphans = self.orphans;
        if self.stale.is_empty() {
            accounts = self.accounts;
        } else {
            orphans.retain(|day, _| !self.stale.contains(day));
            for set in orphans.values() {
                accounts |= set;
            }
        }
        named |= &accounts;
        accounts |= fresh_accounts;
        for (day, set) in fresh_orphans {
            *orphans.entry(day).or_default() |= set;
        }
        store::write_sets(new, &accounts, &orphans)?;
        Ok(Merged {
            accounts,
            self_served,
            named_before: named.len(),
            overlapping,
        })
    }

    /// Every kind merged and written, as many at a time as rayon has threads (up to four), the
    /// results in kind order.
    fn merge_kinds(&self, new: &Path, kinds: [Entities; 4]) -> Result<Vec<KindDone>> {
        // The biggest stored kinds first, so that the threads finish together: in kind order,
        // one thread took the principals then the addresses, the two biggest (0.48 against
        // 0.23 s, a night added to 120 of the 10M-event benchmark).
        let mut order: Vec<usize> = (0..KINDS.len()).collect();
        order.sort_by_key(|&k| std::cmp::Reverse(store::stored_bytes(self.dir, k)));
        // Each merge reads its share of one merge's batches, so together they read what one
        // did; each still fills its own writer's row groups (the 10.12M nights' peak rose 25–60
        // MB).
        let threads = rayon::current_num_threads().clamp(1, KINDS.len());
        let batches = store::Batches::default().shared(threads);
        store::side_by_side(kinds.into(), &order, threads, |k, theirs| {
            self.merge_kind(new, k, theirs, batches)
        })
    }

    /// Kind `k` merged and written: what it counted, the names its stored records still use
    /// once stale days are dropped, and (only when days were dropped) the accounts they touch.
    fn merge_kind(
        &self,
        new: &Path,
        k: usize,
        theirs: Entities,
        batches: store::Batches,
    ) -> Result<KindDone> {
        let (mut named, mut accounts) = (RoaringBitmap::new(), RoaringBitmap::new());
        let mut out = store::KindWriter::create(new, k)?;
        let seen = |mine: &Entities| {
            named.extend(mine.cells.iter().map(|c| c.entity));
            named.extend(mine.singles.iter().map(|s| s.entity));
            if !self.stale.is_empty() {
                for cell in &mine.cells {
                    cell.accounts.add_to(&mut accounts);
                }
                accounts.extend(mine.singles.iter().map(|s| s.account));
            }
        };
        let kind = store::merge_kind(
            self.dir,
            k,
            self.symbols,
            batches,
            self.stale,
            theirs,
            seen,
            &mut out,
        )?;
        out.finish()?;
        Ok((kind, named, accounts))
    }
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
    let keep = spans
        .iter()
        .map(|&(from, to)| col(c::TS).gt_eq(lit(from)).and(col(c::TS).lt(lit(to))))
        .reduce(|a, b| a.or(b))
        .unwrap_or(lit(false));
    let mask = crate::frame::mask_of(events, keep)?;
    if 4 * mask.sum().unwrap_or(0) as usize > 3 * events.height() {
        return Ok(None);
    }
    // With the target account, which waits beside the frame.
    let mut names: Vec<&str> = (events.get_column_names().into_iter())
        .map(|n| n.as_str())
        .collect();
    if !names.contains(&c::TARGET) {
        names.push(c::TARGET);
    }
    Ok(Some(cold.select_where(events, &names, &mask)?))
}

/// A symbol table, every account and the orphans' accounts by day (see [`store::read_head`]).
type Head = (Symbols, RoaringBitmap, BTreeMap<i64, RoaringBitmap>);

/// The stored records' description (the partitions they cover), their symbol table, every
/// account and the orphans' accounts by day, every file checked against its digest; `None` when
/// there are none. The kinds are read when asked.
fn load(dir: &Path, walk: Walk) -> Result<Option<(Meta, Head)>> {
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
        // Names come from a file on disk: one that is not a plain name of this folder's could
        // point anywhere.
        if Path::new(name).file_name() != Some(std::ffi::OsStr::new(name)) || name == META {
            return Err(Error::State {
                path: meta_path,
                reason: format!("names a file outside the records: {name:?}"),
            });
        }
        super::manifest::check_digest(&dir.join(name), want, "")?;
    }
    let head = store::read_head(dir)?;
    Ok(Some((meta, head)))
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
        }
        None if reach.stored_in() == Some(fresh.as_path()) => {}
        None => {
            return Err(Error::State {
                path: fresh,
                reason: "records to store are neither held nor merged into it".into(),
            });
        }
    }
    let walk = reach.walk();
    let mut digests = BTreeMap::new();
    for entry in std::fs::read_dir(&fresh).map_err(|e| Error::io(&fresh, e))? {
        let path = entry.map_err(|e| Error::io(&fresh, e))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if let Some(name) = name.filter(|n| n != META) {
            digests.insert(name, super::manifest::digest(&path)?);
        }
    }
    let meta = Meta {
        format: FORMAT.into(),
        version: VERSION,
        walk: [walk.max_step, walk.max_gap_ms],
        covers: now.to_vec(),
        digests,
        self_served: reach.self_served(),
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
mod tests {
    use super::*;
    use crate::normalize::cold::IN_FRAME;
    use crate::normalize::schema::DAY_MS;
    use polars::prelude::Column;

    /// Access events: on day 0 `crowd` principals each reading their own account, on day 1 ten.
    fn events(crowd: usize) -> DataFrame {
        let mut rows: Vec<(i64, String)> =
            (0..crowd).map(|i| (i as i64, format!("C{i}"))).collect();
        rows.extend((0..10).map(|i| (DAY_MS + i, format!("D{i}"))));
        let names = |f: &dyn Fn(&(i64, String)) -> Option<String>| -> Vec<Option<String>> {
            rows.iter().map(f).collect()
        };
        let key = |name: &str, values| crate::frame::key_column(name, values).expect("column");
        DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            key(c::EVENT_TYPE, names(&|_| Some("access".into()))),
            key(c::PRINCIPAL, names(&|r| Some(r.1.clone()))),
            key(c::TARGET, names(&|r| Some(r.1.clone()))),
            key(c::CREDENTIAL, names(&|_| None)),
            key(c::SOURCE_IP, names(&|_| None)),
        ])
        .expect("frame")
    }

    /// Stored records are checked file by file against the digests written with them: a
    /// changed file, or a digest naming a file outside the records, makes them unusable.
    #[test]
    fn records_unlike_their_digests_are_not_used() {
        let time = TimeParser::new(chrono_tz::UTC);
        let walk = crate::detect::enumeration::WALK;
        let both = [covered("p1", &[0]), covered("p2", &[1])];
        let dir = tempfile::tempdir().expect("temp dir");
        let all = events(100);
        let stored = Reach::of(&all, &time, walk).expect("reduce");
        save(dir.path(), &stored, &both, &Made::Whole(String::new())).expect("saved");
        let records = dir.path().join(DIR);
        let made = || {
            let (got, made) =
                reach(dir.path(), &both, (&all, &IN_FRAME), &time, walk).expect("records");
            assert_eq!(got.is_some(), made == Made::Kept { days: 0 }, "{made:?}");
            made
        };
        let unusable = |why: &str| matches!(made(), Made::Unusable(w) if w.contains(why));
        assert_eq!(made(), Made::Kept { days: 0 });

        let meta = records.join(META);
        let text = std::fs::read_to_string(&meta).expect("meta");
        let outside = text.replacen("\"accounts.roaring\"", "\"../accounts.roaring\"", 1);
        assert_ne!(outside, text, "{text}");
        std::fs::write(&meta, &outside).expect("edited");
        assert!(unusable("outside"), "{:?}", made());

        std::fs::write(&meta, &text).expect("restored");
        let cells = records.join("singles-1.parquet");
        let mut bytes = std::fs::read(&cells).expect("cells");
        let last = bytes.len() - 1;
        bytes[last / 2] ^= 0x10;
        std::fs::write(&cells, &bytes).expect("damaged");
        assert!(unusable("damaged"), "{:?}", made());
    }

    /// Day 0's partition ages out: its names stay in the table, which is built anew once they
    /// are most of it (past the spare), and kept while they are not.
    #[test]
    fn a_table_of_mostly_gone_names_is_built_anew() {
        let time = TimeParser::new(chrono_tz::UTC);
        let walk = crate::detect::enumeration::WALK;
        let both = [covered("p1", &[0]), covered("p2", &[1])];
        for (crowd, rebuilt) in [(100, false), (2 * SPARE_SYMBOLS as usize, true)] {
            let dir = tempfile::tempdir().expect("temp dir");
            let all = events(crowd);
            let stored = Reach::of(&all, &time, walk).expect("reduce");
            save(dir.path(), &stored, &both, &Made::Whole(String::new())).expect("saved");
            let day1 = all.slice(crowd as i64, 10);
            let (got, made) =
                reach(dir.path(), &both[1..], (&day1, &IN_FRAME), &time, walk).expect("records");
            if rebuilt {
                assert!(got.is_none());
                assert_eq!(
                    made,
                    Made::Whole("the symbol table was mostly names of days gone".into())
                );
            } else {
                assert_eq!(made, Made::Kept { days: 1 });
                let got = got.expect("kept");
                assert_eq!(got.accounts(), 10);
                let want = Reach::of(&day1, &time, walk).expect("reduce");
                let key = c::PRINCIPAL;
                assert_eq!(
                    format!("{:?}", got.profiles(key, 0)),
                    format!("{:?}", want.profiles(key, 0))
                );
            }
        }
    }

    /// Access events of every kind, with entities of one account and of several: on day `d`,
    /// principals `C{i}` read their own accounts from addresses of their own, and an operator
    /// reads ten accounts with a key from one address.
    fn kinds_on(days: std::ops::Range<i64>) -> DataFrame {
        /// (ts, principal, address, key, account).
        type Row = (i64, String, String, Option<&'static str>, String);
        let mut rows: Vec<Row> = Vec::new();
        for d in days {
            for i in 0..20 {
                let (who, at) = (format!("C{}", i + d), format!("10.0.{d}.{i}"));
                rows.push((d * DAY_MS + i, who.clone(), at, None, who));
            }
            for i in 0..10 {
                let row = (
                    "ops".into(),
                    "192.0.2.7".into(),
                    Some("k1"),
                    format!("C{i}"),
                );
                rows.push((d * DAY_MS + 100 + i, row.0, row.1, row.2, row.3));
            }
        }
        let names = |f: &dyn Fn(&Row) -> Option<String>| {
            rows.iter().map(f).collect::<Vec<Option<String>>>()
        };
        let key = |name: &str, values| crate::frame::key_column(name, values).expect("column");
        DataFrame::new_infer_height(vec![
            Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
            key(c::EVENT_TYPE, names(&|_| Some("access".into()))),
            key(c::PRINCIPAL, names(&|r| Some(r.1.clone()))),
            key(c::SOURCE_IP, names(&|r| Some(r.2.clone()))),
            key(c::CREDENTIAL, names(&|r| r.3.map(String::from))),
            key(c::TARGET, names(&|r| Some(r.4.clone()))),
        ])
        .expect("frame")
    }

    /// What every reader of the records sees, as text.
    fn seen(reach: &Reach) -> String {
        let mut out = format!("{} {}", reach.accounts(), reach.self_served());
        for key in crate::reduce::KINDS {
            let firsts = reach
                .first_days(key, |all| all.to_vec())
                .expect("first days");
            let firsts: BTreeMap<&str, _> =
                firsts.iter().map(|(e, d)| (reach.name(*e), d)).collect();
            let profiles = reach.profiles(key, 0).expect("profiles");
            out += &format!("\n{key}: {profiles:?} {firsts:?}");
        }
        out
    }

    /// Day 0 of [`kinds_on`] reduced whole and saved into `state` as the records of partition
    /// `p1`; with the partitions of day 0 alone, and with `p2` bringing day 1.
    fn day0_stored(state: &Path) -> (Reach, [Covered; 1], [Covered; 2]) {
        let (time, walk) = (
            TimeParser::new(chrono_tz::UTC),
            crate::detect::enumeration::WALK,
        );
        let one = [covered("p1", &[0])];
        let whole = Reach::of(&kinds_on(0..1), &time, walk).expect("reduce");
        save(state, &whole, &one, &Made::Whole(String::new())).expect("saved");
        let two = [covered("p1", &[0]), covered("p2", &[1])];
        (whole, one, two)
    }

    /// Records kept are read a kind at a time from the state; records merged with a new night's
    /// from the folder that saving renames into place. Either way every kind's profiles and first
    /// days, the accounts and the self-served are those of the window reduced whole, and a run
    /// that ends before saving leaves the stored records as they were.
    #[test]
    fn stored_records_read_a_kind_at_a_time_are_the_window_s() {
        let (time, walk) = (
            TimeParser::new(chrono_tz::UTC),
            crate::detect::enumeration::WALK,
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (whole, one, two) = day0_stored(dir.path());
        let (day0, both) = (kinds_on(0..1), kinds_on(0..2));
        let (kept, made) =
            reach(dir.path(), &one, (&day0, &IN_FRAME), &time, walk).expect("records");
        let kept = kept.expect("kept");
        assert_eq!(made, Made::Kept { days: 0 });
        assert!(kept.held().is_none());
        assert_eq!(kept.stored_in(), Some(dir.path().join(DIR).as_path()));
        assert_eq!(seen(&kept), seen(&whole));
        assert!(seen(&whole).contains("k1"), "{}", seen(&whole));

        let want = seen(&Reach::of(&both, &time, walk).expect("reduce"));
        for _ in 0..2 {
            let (merged, made) =
                reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
            let merged = merged.expect("merged");
            assert_eq!(made, Made::Kept { days: 1 });
            assert_eq!(merged.stored_in(), Some(dir.path().join(NEW).as_path()));
            assert_eq!(seen(&merged), want);
        }
        let (merged, made) =
            reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
        save(dir.path(), &merged.expect("merged"), &two, &made).expect("saved");
        assert!(!dir.path().join(NEW).exists());
        let (kept, made) =
            reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk).expect("records");
        assert_eq!(made, Made::Kept { days: 0 });
        assert_eq!(seen(&kept.expect("kept")), want);
    }

    /// Kinds merged one at a time (a pool of one thread) and side by side write the same bytes
    /// and read back as the same records.
    #[test]
    fn kinds_merged_side_by_side_write_what_one_at_a_time_does() {
        let (time, walk) = (
            TimeParser::new(chrono_tz::UTC),
            crate::detect::enumeration::WALK,
        );
        let both = kinds_on(0..2);
        let written = |threads: usize| {
            let dir = tempfile::tempdir().expect("temp dir");
            let (_, _, two) = day0_stored(dir.path());
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
            let (merged, made) = (pool.expect("pool"))
                .install(|| reach(dir.path(), &two, (&both, &IN_FRAME), &time, walk))
                .expect("records");
            assert_eq!(made, Made::Kept { days: 1 }, "{threads} thread(s)");
            let mut files = BTreeMap::new();
            files.insert(None, seen(&merged.expect("merged")).into_bytes());
            for entry in std::fs::read_dir(dir.path().join(NEW)).expect("merged folder") {
                let path = entry.expect("entry").path();
                let bytes = std::fs::read(&path).expect("merged file");
                files.insert(path.file_name().map(|n| n.to_os_string()), bytes);
            }
            files
        };
        let one = written(1);
        assert!(one.len() >= 13, "{:?}", one.keys());
        assert!(one == written(4), "side by side wrote other bytes");
    }

    /// A merge that cannot write (here a file stands where its folder goes) costs the run its
    /// stored records, not the run: the window is reduced whole, with a note, and the stored
    /// records stay as they were.
    #[test]
    fn a_merge_that_cannot_write_reduces_the_window_whole() {
        let (time, walk) = (
            TimeParser::new(chrono_tz::UTC),
            crate::detect::enumeration::WALK,
        );
        let dir = tempfile::tempdir().expect("temp dir");
        let (whole, one, two) = day0_stored(dir.path());
        std::fs::write(dir.path().join(NEW), "in the way").expect("file");
        let (got, made) =
            reach(dir.path(), &two, (&kinds_on(0..2), &IN_FRAME), &time, walk).expect("run");
        assert!(got.is_none());
        assert!(
            matches!(&made, Made::Unusable(why) if why.contains("not merged")),
            "{made:?}"
        );
        std::fs::remove_file(dir.path().join(NEW)).expect("removed");
        let (kept, made) =
            reach(dir.path(), &one, (&kinds_on(0..1), &IN_FRAME), &time, walk).expect("run");
        assert_eq!(made, Made::Kept { days: 0 });
        assert_eq!(seen(&kept.expect("kept")), seen(&whole));
    }

    fn covered(partition: &str, days: &[i64]) -> Covered {
        Covered {
            partition: partition.into(),
            fingerprint: "f".into(),
            size: 1,
            modified_ns: 0,
            days: days.to_vec(),
        }
    }

    /// Days of partitions added and gone are dirty; a partition kept is not, even when a new
    /// one shares its days; a file read again (same partition name, other content) is both.
    #[test]
    fn days_of_partitions_added_or_gone_are_read_again() {
        let before = [
            covered("p1", &[1, 2]),
            covered("p2", &[3]),
            covered("p3", &[4]),
        ];
        let mut changed = covered("p3", &[4, 5]);
        changed.fingerprint = "g".into();
        let now = [covered("p2", &[3]), changed, covered("p4", &[3, 6])];
        let want: BTreeSet<i64> = [1, 2, 3, 4, 5, 6].into();
        assert_eq!(dirty_days(&before, &now), want);
        assert!(dirty_days(&now, &now).is_empty());
    }
}
