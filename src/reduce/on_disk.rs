//! Records made a group of days at a time and kept on disk instead of in memory: what a run
//! without a state does over a big frame. Held in memory, the merged records grew with every
//! group and stood, whole, beside the frame for the rest of the run (1.36 GB over the 85.9M-event
//! export, where enumeration's reduction set the run's peak at 6.27 GB). Here each group is
//! written as it is made, then the groups are merged kind by kind in one streamed pass
//! ([`store::stream_kinds`]) into the folder the run reads them from, a batch at a time, as a
//! state's run reads its own ([`super::Reach::stored`]).
//!
//! Over the 85.9M-event export (seven groups, `analyze --timings` under `/usr/bin/time`, two
//! alternated pairs, reports byte-identical) the run's peak went 6.28–6.29 → 5.23–5.25 GB, now a
//! group's reduction beside ingest's, for 82.0–89.0 → 97.6–100.9 s: writing the groups about
//! 3 s, the merge about 9.5 s (reading and writing the records once on two cores), the detectors
//! no longer beside the reduction. Over the 257.5M-event export (22 groups, one run each),
//! 19.24 → 14.37 GB, 357 → 406 s (`docs/performance.md`, thirty-first session).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;
use roaring::RoaringBitmap;

use super::days::DaySets;
use super::{Absorb, Entities, Groups, KINDS, Placing, Reduced, Symbols, Walk, store};
use crate::error::{Error, Result};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};

/// Events from which a run without a state's records keeps them on disk
/// (`--records-on-disk-from-events`): 64Mi, where the frame's columns come to about 2 GiB, past
/// the size from which the detectors run in waves and freed pages go back at once. The
/// 10M-event benchmark stays in memory, where writing and reading them again would only add time.
pub const ON_DISK_FROM: u64 = 64 << 20;

/// The most access rows reduced at once here. Each group's reduction stands above what the run
/// holds (sort keys, a kind's entity codes, the group's records until written), and no merged
/// records stand beside it, so smaller groups than [`super::GROUP_ROWS`] lower the peak; fewer
/// groups mean fewer passes over the selected rows. At 85.9M events (57M access rows): 12Mi rows
/// a group, five groups, peaked at 5.43–5.46 GB and took 33.4 s; 8Mi, seven groups, 5.21–5.24 GB
/// and 37.7 s (one run each, `--timings` with temporary probes at each group's end).
///
/// A group makes its kinds one after another, each written and dropped as soon as it is made
/// (`Writing`): the four side by side held their entity codes and records together, 0.3 GB over
/// one at a time. Since the selected rows' codes are read without copying their columns too
/// (`access::Selected::codes`), the 85.9M-event run's peak went 3.35–3.37 → 3.06–3.09 GB. The
/// records stage, 39.2–41.8 s with groups merged three at a time, is back to 33–34 s since they
/// merge at once at [`MERGE_SHARE`] of the batches (probes, thirty-seventh session).
///
/// At 100.09M events (66M access rows), once merging a group cost little ([`MERGED_AT_ONCE`]),
/// the groups' reduction was the records stage's peak: 8Mi rows a group, nine groups, peaked at
/// 3.27 GB; 4Mi, eighteen groups, at 3.13 GB, the stage 51.1–53.2 → 56.2 s (one run each,
/// temporary probes). At 85.9M events (fourteen groups instead of seven) the stage took 52.5 and
/// 43.6 s in two runs against 44.5 s, and the run peaked at 2.71–2.73 GB instead of 2.87
/// (`--timings`).
const GROUP_ROWS: usize = 4 << 20;

/// Past [`GROUP_ROWS`], a group may hold this share of the frame's events in access rows: its
/// working set (about 24 bytes an access row) then stays a like share of the frame (about 22
/// bytes an event), under the run's other peaks at any size, and a big export is not cut into
/// more groups than it needs. At 257.5M events groups of 4Mi rows made 42, and the records stage
/// took 241 s instead of 210 (one run each).
const GROUP_SHARE: usize = 24;

/// The most access rows a group holds over a frame of `events` rows: [`GROUP_ROWS`], or a
/// [`GROUP_SHARE`]th of the events if that is more (10.7M at 257.5M events; 4Mi up to 100M).
pub(super) fn group_rows(events: usize) -> usize {
    (events / GROUP_SHARE).max(GROUP_ROWS)
}

/// The most groups merged side by side; more are merged in rounds (`merge_groups`). Each group
/// read side by side cost about 60 MB at the store's batches (two reader threads with their
/// batches and their own allocator heaps): merging the 257.5M-event export's 22 groups at once
/// peaked 1.5 GB over what the run held before, seven groups at 85.9M 0.58 GB; eight at a time
/// brought the 257.5M run's peak from 9.40 to 9.05 GB for 27 s more. Read at a share of
/// [`MERGE_SHARE`] of the batches, the seven groups at once merge under the run's other peaks.
/// Since a group's singles are pulled as their days need them (`store::singles`), a group
/// costs the merge about 13 MB: at 100.09M events, eighteen groups of 4Mi rows merged at once
/// peaked at 3.05 GB in 17.7 s, and in two rounds of nine and a last merge at 3.03 GB in 21.3 s
/// (one run each, temporary probes).
pub(super) const MERGED_AT_ONCE: usize = 20;

/// The share of the store's batches the groups are written and merged in, all groups together:
/// what a group costs the merge is mostly its batches in flight (read, queued, held), and the
/// smaller ones cost no time. Merging the 85.9M-event export's seven groups at once (one run
/// each, temporary probes): at the store's batches 3.23 GB and 8.9 s, at a quarter 2.99 GB and
/// 8.5 s, at an eighth **2.96 GB** and 7.9 s; three at a time in rounds had peaked at 3.03–3.05 GB
/// and taken 15.1–15.7 s. The records as the run reads them keep the store's row groups.
const MERGE_SHARE: usize = 8;

/// What the run keeps in memory of records written to a folder.
#[derive(Debug, Default, PartialEq)]
pub struct OnDisk {
    /// Every account an access row named.
    pub accounts: RoaringBitmap,
    /// Accounts reached by a principal of their own id.
    pub self_served: u64,
}

impl Reduced {
    /// The records of `events` written into `dir` (created if missing) as [`store::write`]
    /// writes them; the symbol table is also left in `symbols`. Target accounts the frame does
    /// not hold are read from `cold`, a group's rows at a time. With `day_sets`, their day sets
    /// too ([`store::write_days`]), made from each kind's records as they are made: a state
    /// keeps them, and read back from the records afterwards they took 6.6 s of the 85.9M-event
    /// state's run that rebuilt its records.
    pub fn of_on_disk(
        events: (&DataFrame, &ColdColumns),
        time: &TimeParser,
        walk: Walk,
        symbols: &mut Symbols,
        (dir, day_sets): (&Path, bool),
    ) -> Result<OnDisk> {
        // One kind after another: see `GROUP_ROWS`.
        let how = Placing {
            group: group_rows(events.0.height()),
            side_by_side: 0,
            ..Placing::default()
        };
        let batches = store::Batches::default();
        Reduced::of_on_disk_placing(events, time, walk, symbols, (dir, day_sets), how, batches)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn of_on_disk_placing(
        events: (&DataFrame, &ColdColumns),
        time: &TimeParser,
        walk: Walk,
        symbols: &mut Symbols,
        (dir, day_sets): (&Path, bool),
        how: Placing,
        batches: store::Batches,
    ) -> Result<OnDisk> {
        let merging = batches.shared(MERGE_SHARE);
        let mut sink = Writing {
            dir,
            days: day_sets.then(DaySets::default),
            groups_dir: dir.join("groups"),
            batches,
            merging,
            open: None,
            made: OnDisk::default(),
            orphans: BTreeMap::new(),
            groups: Vec::new(),
            whole: false,
        };
        Reduced::of_groups(events, time, walk, symbols, how, &mut sink)?;
        let Writing {
            groups_dir,
            mut made,
            orphans,
            groups,
            whole,
            days,
            ..
        } = sink;
        if !groups.is_empty() {
            let n = symbols.len() as u64;
            let at_once = how.merged_at_once;
            made.self_served = merge_groups(&groups, &groups_dir, dir, n, merging, at_once)?;
            std::fs::remove_dir_all(&groups_dir).map_err(|e| Error::io(&groups_dir, e))?;
        } else if !whole {
            // No access event: empty tables, which read as no records.
            for k in 0..KINDS.len() {
                store::write_kind_batched(dir, k, [], batches)?;
            }
        }
        // The rest of what `store::write` writes, so the folder reads as records anywhere.
        store::write_sets(dir, &made.accounts, &orphans)?;
        store::write_symbols(dir, symbols)?;
        if let Some(mut days) = days {
            days.add_orphans(&orphans);
            store::write_days(dir, &days)?;
        }
        Ok(made)
    }
}

/// The groups' records merged kind by kind into `dir`; returns the accounts served by a
/// principal of their own id. More than `at_once` groups are merged in rounds: as few sets as
/// hold at most `at_once` each ([`set_size`]) into folders of `work` (each set's groups removed
/// once merged), until `at_once` or fewer are left for the last merge.
fn merge_groups(
    groups: &[PathBuf],
    work: &Path,
    dir: &Path,
    n: u64,
    batches: store::Batches,
    at_once: usize,
) -> Result<u64> {
    let at_once = at_once.max(2);
    let mut groups = groups.to_vec();
    let mut round = 0;
    while groups.len() > at_once {
        let size = set_size(groups.len(), at_once);
        let mut next = Vec::with_capacity(groups.len().div_ceil(size));
        for (i, set) in groups.chunks(size).enumerate() {
            if let [one] = set {
                next.push(one.clone());
                continue;
            }
            let to = work.join(format!("round-{round}-{i}"));
            // Row groups the last merge reads at its share, whichever sets it reads; what a
            // round counts is counted again by the last merge, which reads every record.
            merge_into(set, &to, n, batches, Some(batches.shared(at_once)))?;
            for merged in set {
                std::fs::remove_dir_all(merged).map_err(|e| Error::io(merged, e))?;
            }
            next.push(to);
        }
        (groups, round) = (next, round + 1);
    }
    merge_into(&groups, dir, n, batches, None)
}

/// How many of `groups` a round merges side by side: evenly shared among as few sets as hold
/// at most `at_once` each. Each record is written once a round however the sets are cut, and a
/// set costs about what its groups read side by side: sets of `at_once` and what is left merged
/// the 100.09M-event export's nine groups as eight and one, and that round of eight peaked at
/// 3.28 GB; five and four, 3.13 GB, and the merge took 20.0 s instead of 21.5 (temporary
/// probes, one run each; reports byte-identical).
pub(super) fn set_size(groups: usize, at_once: usize) -> usize {
    let at_once = at_once.max(1);
    groups.div_ceil(groups.div_ceil(at_once).max(1)).max(1)
}

/// `groups` merged kind by kind into `dir`, each read at its share of `batches`; row groups of
/// `rows` (cells, the rest) or the store's own. Returns the accounts served by a principal of
/// their own id.
fn merge_into(
    groups: &[PathBuf],
    dir: &Path,
    n: u64,
    batches: store::Batches,
    rows: Option<store::Batches>,
) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let dirs: Vec<&Path> = groups.iter().map(PathBuf::as_path).collect();
    let shared = batches.shared(groups.len());
    let mut self_served = 0;
    // One kind after another: side by side, the four merges peaked at 6.54 GB over the 85.9M-event
    // export, 1.6 GB above one at a time (4.94 GB), for 0.6 s less of a 9.5 s merge on two cores
    // (one run each, before each group was read at a share of the batches).
    for (k, key) in KINDS.iter().enumerate() {
        let mut out = match rows {
            Some(rows) => store::KindWriter::grouped(dir, k, (rows.cells, rows.days))?,
            None => store::KindWriter::create(dir, k)?,
        };
        let overlapping = store::stream_kinds_in(&dirs, k, n, shared, |piece, _| {
            if *key == c::PRINCIPAL {
                self_served += super::kind_self_served(&piece);
            }
            out.push(&piece)
        })?;
        out.finish()?;
        // Each group holds whole local days of its own, so no (entity, day) is in two.
        debug_assert_eq!(overlapping, 0, "groups of days overlapped");
    }
    Ok(self_served)
}

/// Each kind written as soon as a group has made it: into the run's folder when the window is
/// one group, else into a folder of the group's own under `groups_dir`, merged afterwards.
struct Writing<'a> {
    dir: &'a Path,
    /// The day sets of the records written, when they are kept.
    days: Option<DaySets>,
    groups_dir: PathBuf,
    /// Row groups of a window of one group, written where the run reads it.
    batches: store::Batches,
    /// Row groups of all groups together, when they are merged (see [`MERGE_SHARE`]).
    merging: store::Batches,
    /// The kind being written.
    open: Option<store::KindWriter>,
    made: OnDisk,
    orphans: BTreeMap<i64, RoaringBitmap>,
    /// The groups' folders, in order.
    groups: Vec<PathBuf>,
    /// Whether a window of one group was written where it is read.
    whole: bool,
}

impl Writing<'_> {
    fn folder(&self, at: Groups) -> PathBuf {
        match at.n {
            1 => self.dir.to_path_buf(),
            _ => self.groups_dir.join(at.i.to_string()),
        }
    }
}

impl Absorb for Writing<'_> {
    fn parts(&mut self, at: Groups, k: usize, parts: Vec<Entities>) -> Result<()> {
        let writer = match &mut self.open {
            Some(writer) => writer,
            None => {
                let to = self.folder(at);
                std::fs::create_dir_all(&to).map_err(|e| Error::io(&to, e))?;
                // The merge reads every group side by side: each a share of the batches.
                let batches = match at.n {
                    1 => self.batches,
                    n => self.merging.shared(n),
                };
                self.open
                    .insert(store::KindWriter::batched(&to, k, batches)?)
            }
        };
        for part in parts {
            // Each group holds whole local days, so its parts' days are whole too.
            if let Some(days) = &mut self.days {
                days.absorb(DaySets::of_kind(k, &part));
            }
            // A window of one group is not merged, so not counted there. Parts are whole
            // entities, so their counts add up.
            if at.n == 1 && KINDS[k] == c::PRINCIPAL {
                self.made.self_served += super::kind_self_served(&part);
            }
            writer.push(&part)?;
        }
        Ok(())
    }

    fn kind_done(&mut self, at: Groups, k: usize) -> Result<Entities> {
        if self.open.is_none() {
            self.parts(at, k, Vec::new())?;
        }
        if let Some(writer) = self.open.take() {
            writer.finish()?;
        }
        Ok(Entities::default())
    }

    fn group(&mut self, at: Groups, group: Reduced) -> Result<()> {
        self.made.accounts |= &group.accounts;
        for (day, set) in group.orphans {
            *self.orphans.entry(day).or_default() |= set;
        }
        match at.n {
            1 => self.whole = true,
            _ => self.groups.push(self.folder(at)),
        }
        Ok(())
    }
}
