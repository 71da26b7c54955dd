//! `--state DIR`: what earlier runs read, kept so that a nightly run reads only the files it has
//! not seen and still reports on the whole window.
//!
//! The state is one Parquet partition per input file (its parsed events, strings as codes of its
//! own with each string listed beside them), its quarantined lines, and a manifest,
//! `state.json`, that names each file by path, size, modification time and a content
//! fingerprint, with the counts and coverage its report needs, and the size and CRC-32 of each
//! partition and rejects file it wrote, checked before they are read.
//! A run reads the files the manifest does not know, adds their partitions, and analyses every
//! partition the state holds; so the report after N nightly runs is the report of one run over
//! the same files (tested over 30 nights). The manifest is the commit point: it is replaced by a
//! rename only after the report is written, and partitions it does not name are removed then, so a
//! run that dies leaves the previous state whole. The format is documented in `docs/scale.md`.
//!
//! The files a run has not seen may be read by this process, by `audithound ingest` ([`task`]),
//! or by a Spark cluster whose tasks run that command ([`cluster`]); all three store the same
//! partitions. Read back, the columns only evidence reads leave the frame as they do at ingest.
//!
//! The access events' reduced records (enumeration's, the population's and the reach charts')
//! are kept too ([`records`]): a run reduces again only the days its new or aged-out files
//! touch. So are the partitions' strings and token ids, listed once for the state ([`names`]):
//! a run places them once instead of once per partition that lists them. The other detectors
//! still read every retained event, so a night's run costs the parse of that night plus a
//! Parquet read of the window, and memory grows with the window (`docs/scale.md`).

pub mod cluster;
mod manifest;
mod names;
pub mod partition;
pub mod records;
pub mod task;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::{DataFrame, IdxSize};
use rayon::prelude::*;

use crate::error::{Error, FrameContext, Result};
use crate::ingest::{self, Discovered, FileRejects, Ingested, ReadOptions};
use crate::normalize::Days;
use crate::normalize::Tokens;
use crate::normalize::cold::{COLUMNS, ColdColumns, Loader};
use crate::normalize::dictionary::FileDict;
pub(crate) use manifest::NewFile;
use manifest::{
    Manifest, StoredFile, StoredStats, check_digest, digest, load, newest, ours, unseen,
    write_synced,
};
pub use manifest::{Settings, VERSION};

/// New files are read and stored in groups of up to this many bytes (a file alone when larger),
/// each group's events dropped once its partitions are written: a first run over a big export
/// then holds one group's events, not the export's, before it reads the partitions back.
/// `ingest` of the 85.9M-event export (six files of 0.43–0.61 GB) into a new state: 8.10 GB at
/// the peak in 98.8 s whole, 5.10 GB in 105.2 s in four groups (one run each; the partitions
/// byte-identical), the groups' tails no longer overlapping. `--state-group-bytes` changes it.
pub const GROUP_BYTES: u64 = 1 << 30;

/// `files` in order, cut into runs of at most `bytes` (at least one file each).
fn in_groups(files: Vec<NewFile>, bytes: u64) -> Vec<Vec<NewFile>> {
    let mut groups: Vec<Vec<NewFile>> = Vec::new();
    let mut size = 0u64;
    for file in files {
        match groups.last_mut() {
            Some(group) if size.saturating_add(file.size) <= bytes => {
                size = size.saturating_add(file.size);
                group.push(file);
            }
            _ => {
                size = file.size;
                groups.push(vec![file]);
            }
        }
    }
    groups
}

/// The manifest's name; its presence is what makes a directory a state.
pub const MANIFEST: &str = "state.json";
const LOCK: &str = ".lock";

/// An opened, locked state directory.
pub struct Store {
    dir: PathBuf,
    /// Held for the run: a second run on the same state fails instead of interleaving.
    _lock: File,
}

/// What a run gets from the state: every retained file read as one ingest, and the change to
/// commit once the report is written.
pub struct Update {
    pub ingested: Ingested,
    /// Every retained file, in the order of the frame's file index.
    pub paths: Vec<PathBuf>,
    /// The inputs those files came from, sorted.
    pub inputs: Vec<String>,
    /// What the run should tell (a file already in the state under another name).
    pub notes: Vec<String>,
    /// The retained partitions, for the window's reduced records ([`records`]).
    pub covers: Vec<records::Covered>,
    pub pending: Pending,
}

/// Where the files a state does not hold yet are read.
pub enum Reading<'a> {
    /// In this process, as a run without a state reads them, `group_bytes` of files at a time
    /// (see [`GROUP_BYTES`]).
    Here { progress: bool, group_bytes: u64 },
    /// By a cluster's tasks, each storing its share as a state of its own (see [`cluster`]).
    Cluster(&'a cluster::Cluster),
}

/// What [`Store::ingest`] read, and the manifest to commit.
#[derive(Default)]
pub struct Added {
    pub files: u64,
    pub records: u64,
    pub rejected: u64,
    /// Files that could not be read to their end, with the reason.
    pub unreadable: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub pending: Option<Pending>,
}

/// The new manifest, written by [`Pending::commit`].
pub struct Pending {
    dir: PathBuf,
    manifest: Manifest,
}

impl Store {
    /// Opens (creating it if absent) and locks the state directory, after checking that it
    /// neither holds nor lies inside any of `apart` (the inputs, the report's destination).
    pub fn open(dir: &Path, apart: &[PathBuf]) -> Result<Store> {
        let refuse = |reason: String| Error::State {
            path: dir.to_path_buf(),
            reason,
        };
        let resolved = crate::report::destination::resolve(dir)?;
        for read in apart {
            let Ok(other) = crate::report::destination::resolve(read) else {
                continue;
            };
            if other.starts_with(&resolved) || resolved.starts_with(&other) {
                return Err(refuse(format!(
                    "it overlaps {} (an input or the report): keep the state apart",
                    read.display()
                )));
            }
        }
        match std::fs::symlink_metadata(&resolved) {
            Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
                return Err(refuse("it is not a directory".into()));
            }
            Ok(_) => {
                let foreign = std::fs::read_dir(&resolved)
                    .map_err(|e| Error::io(dir, e))?
                    .filter_map(|e| e.ok())
                    .any(|e| e.file_name() != LOCK);
                if foreign && !resolved.join(MANIFEST).is_file() {
                    return Err(refuse(format!(
                        "it is not empty and holds no {MANIFEST}: not a state audithound wrote"
                    )));
                }
            }
            Err(_) => std::fs::create_dir_all(&resolved).map_err(|e| Error::io(dir, e))?,
        }
        let lock_path = resolved.join(LOCK);
        let lock = File::create(&lock_path).map_err(|e| Error::io(&lock_path, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(refuse("another run is using it".into()));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::io(&lock_path, e)),
        }
        // Locked, the state is this run's alone: scratch in it is what a run that died left.
        crate::scratch::sweep_older_than(&resolved, std::time::Duration::ZERO);
        Ok(Store {
            dir: resolved,
            _lock: lock,
        })
    }

    /// The state's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the files of `found` the state does not hold, stores them, ages out what is older
    /// than `retain_days` before the newest event, and reads back everything retained; with
    /// `opts.cold` given, the columns only evidence reads stay in the partitions until asked for.
    pub fn update(
        &self,
        found: &Discovered,
        inputs: &[PathBuf],
        opts: &ReadOptions,
        settings: &Settings,
        retain_days: Option<u32>,
        reading: Reading,
    ) -> Result<Update> {
        let (mut manifest, mut notes, _) = self.add(found, inputs, opts, settings, reading)?;
        // Whole local days, not instants: the files of one night (an access log ending at
        // 16:00, its issuer's log at 15:58) leave together.
        if let (Some(days), Some(newest)) = (retain_days, newest(&manifest.files)) {
            let mut local = Days::new(opts.time);
            let horizon = local.of(newest) - i64::from(days);
            manifest.files.retain(|f| {
                let last = f.stats.days.last().copied();
                last.or_else(|| f.stored_at.map(|t| local.of(t)))
                    .is_none_or(|day| day >= horizon)
            });
        }
        verify(&self.dir, &mut manifest.files)?;
        let (ingested, note) = self.read_back(&manifest.files, opts.cold.as_deref())?;
        notes.extend(note);
        let paths = manifest
            .files
            .iter()
            .map(|f| PathBuf::from(&f.path))
            .collect();
        let mut inputs: Vec<String> = manifest.files.iter().map(|f| f.input.clone()).collect();
        inputs.sort();
        inputs.dedup();
        Ok(Update {
            ingested,
            paths,
            inputs,
            notes,
            covers: records::Covered::of(&manifest.files),
            pending: Pending {
                dir: self.dir.clone(),
                manifest,
            },
        })
    }

    /// Reads the files of `found` the state does not hold and stores them, without reading
    /// anything back: what `audithound ingest` (a cluster's task) commits.
    pub fn ingest(
        &self,
        found: &Discovered,
        inputs: &[PathBuf],
        opts: &ReadOptions,
        settings: &Settings,
        reading: Reading,
    ) -> Result<Added> {
        let (manifest, notes, read) = self.add(found, inputs, opts, settings, reading)?;
        let mut added = Added {
            notes,
            ..Added::default()
        };
        for f in manifest.files.iter().filter(|f| read.contains(&f.path)) {
            added.files += 1;
            added.records += f.stats.records;
            added.rejected += f.stats.rejected;
            if let Some(reason) = &f.stats.unreadable {
                added.unreadable.push((f.path.clone(), reason.clone()));
            }
        }
        added.pending = Some(Pending {
            dir: self.dir.clone(),
            manifest,
        });
        Ok(added)
    }

    /// The manifest with the files of `found` it does not hold read and stored, what the run
    /// should tell, and the paths of the files read.
    fn add(
        &self,
        found: &Discovered,
        inputs: &[PathBuf],
        opts: &ReadOptions,
        settings: &Settings,
        reading: Reading,
    ) -> Result<(Manifest, Vec<String>, std::collections::HashSet<String>)> {
        let mut manifest = load(&self.dir, settings)?;
        let (new, notes) = unseen(&manifest, found, inputs);
        // A file read again (changed in place, like a log that grew, or unreadable last time)
        // replaces its earlier reading.
        let replaced: std::collections::HashSet<String> =
            new.iter().map(|n| n.path.display().to_string()).collect();
        manifest.files.retain(|f| !replaced.contains(&f.path));
        let newest_before = newest(&manifest.files);
        let stored = match reading {
            Reading::Here {
                progress,
                group_bytes,
            } => {
                let mut stored = Vec::with_capacity(new.len());
                for group in in_groups(new, group_bytes) {
                    let read = Discovered {
                        events: group.iter().map(|n| n.path.clone()).collect(),
                        ..Discovered::default()
                    };
                    let ingested = ingest::read_events(&read, opts, progress)?;
                    let next_id = &mut manifest.next_id;
                    stored.extend(self.store_new(next_id, group, ingested, newest_before)?);
                    crate::memory::release_freed();
                }
                stored
            }
            Reading::Cluster(cluster) => {
                let parts = cluster.read(&self.dir, &new)?;
                let adopted =
                    self.adopt(&mut manifest.next_id, new, &parts, settings, newest_before);
                cluster::remove_stale(&self.dir);
                adopted?
            }
        };
        manifest.files.extend(stored);
        manifest.files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((manifest, notes, replaced))
    }

    /// Moves what a cluster's tasks stored for `new` (each task a state of its own, in `parts`)
    /// into this state, as [`Store::store_new`] would have stored it here.
    fn adopt(
        &self,
        next_id: &mut u64,
        new: Vec<NewFile>,
        parts: &[PathBuf],
        settings: &Settings,
        stored_at: Option<i64>,
    ) -> Result<Vec<StoredFile>> {
        let mut held = std::collections::HashMap::new();
        for part in parts {
            for file in load(part, settings)?.files {
                held.insert(file.path.clone(), (part, file));
            }
        }
        let mut out = Vec::with_capacity(new.len());
        for n in new {
            let name = n.path.display().to_string();
            let (part, mut file) = held.remove(&name).ok_or_else(|| Error::State {
                path: self.dir.clone(),
                reason: format!("the cluster's tasks did not store {name}"),
            })?;
            file.input = n.input;
            file.stored_at = stored_at;
            if file.skipped.is_none() {
                let id = *next_id;
                *next_id += 1;
                for (slot, suffix) in [
                    (&mut file.partition, ".parquet"),
                    (&mut file.rejects, ".rejects.csv"),
                ] {
                    if let Some(from) = slot.take() {
                        let to = format!("p{id:08}{suffix}");
                        let (a, b) = (part.join(&from), self.dir.join(&to));
                        std::fs::rename(&a, &b).map_err(|e| Error::io(&a, e))?;
                        *slot = Some(to);
                    }
                }
            }
            out.push(file);
        }
        Ok(out)
    }

    /// Writes the partitions and rejects of the files just read.
    fn store_new(
        &self,
        next_id: &mut u64,
        new: Vec<NewFile>,
        ingested: Ingested,
        stored_at: Option<i64>,
    ) -> Result<Vec<StoredFile>> {
        let mut out = Vec::with_capacity(new.len());
        let mut row = 0usize;
        let mut files = ingested.files.iter().zip(&ingested.rejects).peekable();
        let mut coder = partition::Coder::default();
        for (idx, n) in new.into_iter().enumerate() {
            let base = |stats: StoredStats| StoredFile {
                path: n.path.display().to_string(),
                input: n.input.clone(),
                size: n.size,
                modified_ns: n.modified_ns,
                fingerprint: n.print.clone(),
                skipped: None,
                partition: None,
                rejects: None,
                partition_digest: None,
                rejects_digest: None,
                stats,
                stored_at,
            };
            let Some((stats, rejects)) = files.next_if(|(s, _)| s.index as usize == idx) else {
                let reason = ingested
                    .skipped
                    .iter()
                    .find(|(p, _)| *p == n.path)
                    .map_or_else(|| "not read".to_string(), |(_, r)| r.clone());
                let mut file = base(StoredStats::empty());
                file.skipped = Some(reason);
                out.push(file);
                continue;
            };
            let id = *next_id;
            *next_id += 1;
            let mut file = base(StoredStats::of(stats, rejects));
            // One after another: written side by side, a 120-night first run peaked at 3.4 GB
            // instead of 1.8 GB for no measurable gain (16.5 s against 16.6 s; bench_state.sh).
            let rows = stats.parsed as usize;
            if rows > 0 {
                let name = format!("p{id:08}.parquet");
                let part = whole(&ingested, row, rows)?;
                let path = self.dir.join(&name);
                partition::write(&path, &part, &ingested.tokens, &mut coder)?;
                file.partition_digest = Some(digest(&path)?);
                file.partition = Some(name);
            }
            row += rows;
            if rejects.listed > 0 {
                let name = format!("p{id:08}.rejects.csv");
                let path = self.dir.join(&name);
                rejects.write_listed(&path)?;
                file.rejects_digest = Some(digest(&path)?);
                file.rejects = Some(name);
            }
            out.push(file);
        }
        Ok(out)
    }

    /// Every retained file as the ingest of one run over them all would give it.
    /// With a `cold` sink, the columns only evidence reads stay in the partitions (see below),
    /// and past its bound the token ids go to its folder. Also says why the state's stored names
    /// were not used, if they were not.
    fn read_back(
        &self,
        files: &[StoredFile],
        cold: Option<&crate::normalize::ColdSink>,
    ) -> Result<(Ingested, Vec<String>)> {
        let beside = cold.is_some();
        // The partitions the state's names cover have their lists placed from those; the others
        // are listed, their token ids added to the table the names start.
        let retained: Vec<(&str, &str)> = (files.iter())
            .filter_map(|f| Some((f.partition.as_deref()?, f.partition_digest.as_deref()?)))
            .collect();
        let (known, tokens, note) = match names::load(&self.dir, &retained) {
            Ok(Some((known, tokens))) => (Some(known), tokens, None),
            Ok(None) => (None, Tokens::default(), None),
            Err(e) => (
                None,
                Tokens::default(),
                Some(format!("stored names not used: {e}")),
            ),
        };
        let tokens = Arc::new(tokens);
        // Batches of every partition, read side by side: a state of one big partition (a single
        // export file) is read on every core too. Listing a partition's batches reads and places
        // its strings: partitions side by side too.
        let listed = (files.par_iter().enumerate())
            .filter_map(|(idx, f)| f.partition.as_ref().map(|name| (idx as u32, f, name)))
            .map(|(idx, f, name)| {
                let path = self.dir.join(name);
                let given = (known.as_ref().zip(f.partition_digest.as_deref()))
                    .and_then(|(known, digest)| known.placed(name, digest));
                let batches = match given {
                    Some(placed) => partition::batches_placed(&path, placed)?,
                    None => partition::batches(&path, &tokens)?,
                };
                Ok(batches.into_iter().map(move |b| (idx, b)))
            })
            .collect::<Result<Vec<_>>>()?;
        let batches: Vec<(u32, partition::Batch)> = listed.into_iter().flatten().collect();
        // Derived (see `names`): a run whose names could not be written is whole; the next one
        // lists the partitions they miss.
        let mut notes: Vec<String> = note.into_iter().collect();
        let parts = placed_parts(files, &batches);
        if let Err(e) = names::save(&self.dir, known.as_ref(), &parts, &tokens) {
            notes.push(format!(
                "the state's names were not stored ({e}): the next run lists its partitions again"
            ));
        }
        drop((parts, known));
        // Only listing adds ids. Sealed here, not after ingest, the slots that a night's new ids
        // made the table build again (32M of 8 bytes over the 85.9M-event state's 15.2M ids) are
        // gone before the frame is read back beside them.
        tokens.seal();
        // Before the frame, as a run without a state does after it (`analyze`): what only
        // evidence reads need not stand under the read-back's peak.
        let rows: u64 = batches.iter().map(|(_, b)| b.rows()).sum();
        if let Some(dir) = cold.and_then(|sink| sink.past(rows))
            && let Err(e) = tokens.to_disk(dir)
        {
            notes.push(format!("token ids kept in memory: {e}"));
        }
        crate::memory::release_freed();
        // With the cold columns beside the frame, they stay in the partitions until evidence
        // reads a few of their rows (`partition::read_hot`).
        let frames = batches
            .par_iter()
            .map_init(FileDict::default, |dict, (idx, batch)| {
                if beside {
                    let chunks = partition::read_hot(batch, *idx, &tokens, dict)?;
                    return Ok(chunks.into_iter().map(|(df, l)| (df, Some(l))).collect());
                }
                let chunks = partition::read(batch, *idx, &tokens, dict)?;
                Ok(chunks.into_iter().map(|df| (df, None)).collect::<Vec<_>>())
            })
            .collect::<Result<Vec<_>>>()?;
        let (frames, loaders): (Vec<DataFrame>, Vec<Option<Loader>>) =
            frames.into_iter().flatten().unzip();
        let chunks: Vec<(usize, Loader)> = (frames.iter().zip(loaders))
            .filter_map(|(df, loader)| Some((df.height(), loader?)))
            .collect();
        let events = crate::frame::stack(frames.into_iter().map(Ok), "joining partitions")?;
        let events = match events {
            Some(df) => df,
            None => crate::normalize::EventColumns::new().take_frame()?,
        };
        // Without partitions (or read whole), the frame holds its cold columns itself.
        let cold = match chunks.is_empty() {
            true => ColdColumns::default(),
            false => ColdColumns::elsewhere(chunks),
        };
        cold.check(&events)?;
        let mut out = Ingested {
            events,
            cold,
            tokens,
            files: Vec::new(),
            rejects: Vec::new(),
            skipped: Vec::new(),
        };
        for (f, idx) in files.iter().zip(0u32..) {
            if let Some(reason) = &f.skipped {
                out.skipped.push((PathBuf::from(&f.path), reason.clone()));
                continue;
            }
            out.files.push(f.stats.to_file_stats(idx, &f.path));
            let spill = f.rejects.as_ref().map(|name| self.dir.join(name));
            let s = &f.stats;
            out.rejects.push(FileRejects::stored(
                f.path.clone(),
                spill,
                s.listed,
                s.unlisted,
                s.sample.clone(),
            ));
        }
        Ok((out, notes))
    }
}

impl Pending {
    /// Replaces the manifest (write, sync, rename), then removes the partitions it no longer
    /// names: aged out, replaced, or left by a run that died before its commit.
    pub fn commit(self) -> Result<()> {
        let path = self.dir.join(MANIFEST);
        let tmp = self.dir.join(format!("{MANIFEST}.tmp"));
        write_synced(&tmp, &self.manifest)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        let named: std::collections::HashSet<&str> = self
            .manifest
            .files
            .iter()
            .flat_map(|f| [f.partition.as_deref(), f.rejects.as_deref()])
            .flatten()
            .collect();
        let entries = std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = ours(&name, ".parquet") || ours(&name, ".rejects.csv");
            if ours && !named.contains(name.as_str()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// Checks every partition and rejects file of `files` against the digest the manifest holds
/// for it, side by side, and gives those without one (a state written before digests were)
/// theirs. Reading the files once more took 15–17 ms of a 3.1 s nightly run over the 8.7M-event
/// export's 120 nights, and 0.14–0.18 s of 37–44 s over the 85.9M-event state
/// (`docs/performance.md`, twenty-second session).
fn verify(dir: &Path, files: &mut [StoredFile]) -> Result<()> {
    const RESTORE: &str = ". Restore the state from a copy, or build a new one from the inputs";
    files.par_iter_mut().try_for_each(|f| {
        let named = [
            (&f.partition, &mut f.partition_digest),
            (&f.rejects, &mut f.rejects_digest),
        ];
        for (name, held) in named {
            let Some(name) = name else { continue };
            let path = dir.join(name);
            match held {
                Some(want) => check_digest(&path, want, RESTORE)?,
                None => *held = Some(digest(&path)?),
            }
        }
        Ok(())
    })
}

/// Each partition's lists as its first batch holds them placed, for the state's names, in the
/// order of `files`; partitions of an earlier layout (without both lists) have none.
fn placed_parts<'a>(
    files: &'a [StoredFile],
    batches: &'a [(u32, partition::Batch)],
) -> Vec<names::Part<'a>> {
    let mut parts = Vec::new();
    let mut last = None;
    for (idx, batch) in batches {
        let f = &files[*idx as usize];
        if last.replace(*idx) == Some(*idx) {
            continue;
        }
        if let (Some((strings, tokens)), Some(partition), Some(digest)) = (
            batch.placed(),
            f.partition.as_deref(),
            f.partition_digest.as_deref(),
        ) {
            parts.push(names::Part {
                partition,
                digest,
                strings,
                tokens,
            });
        }
    }
    parts
}

/// Rows `row..row + rows` of the frame read, with the columns only evidence reads put back from
/// wherever they wait: a partition stores its file whole. Read with those columns in the frame,
/// a state-building run over the 85.9M-event export peaked at 8.41 GB; read beside it and
/// gathered back one file at a time, 7.10 GB (`docs/scale.md`).
fn whole(ingested: &Ingested, row: usize, rows: usize) -> Result<DataFrame> {
    let mut part = ingested.events.slice(row as i64, rows);
    if part.column(crate::normalize::schema::col::FILE).is_ok() {
        return Ok(part);
    }
    let idx: Vec<IdxSize> = (row..row + rows).map(|r| r as IdxSize).collect();
    let cold = ingested.cold.select(&ingested.events, &COLUMNS, &idx)?;
    for column in cold.columns() {
        part.with_column(column.clone())
            .stage("putting a file's columns back")?;
    }
    crate::normalize::cold::in_frame_order(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64) -> NewFile {
        NewFile {
            path: PathBuf::from(format!("f{size}")),
            input: String::new(),
            size,
            modified_ns: 0,
            print: String::new(),
        }
    }

    /// Files keep their order; a group takes files while their sizes fit, and a file larger than
    /// the bound is a group of its own.
    #[test]
    fn new_files_are_read_in_groups_of_bounded_bytes() {
        let sizes = |groups: Vec<Vec<NewFile>>| -> Vec<Vec<u64>> {
            (groups.iter())
                .map(|g| g.iter().map(|f| f.size).collect())
                .collect()
        };
        let files = || Vec::from([4, 6, 1, 12, 3, 3, 5].map(file));
        assert_eq!(
            sizes(in_groups(files(), 10)),
            [vec![4, 6], vec![1], vec![12], vec![3, 3], vec![5]]
        );
        assert_eq!(sizes(in_groups(files(), 1)).len(), 7);
        assert_eq!(sizes(in_groups(files(), u64::MAX)).len(), 1);
        assert!(in_groups(Vec::new(), 10).is_empty());
    }
}
