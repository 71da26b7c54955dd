//! A kind's records read as one stream in entity order, cells and singles together: what a
//! state's night merge walks beside the night's own records ([`crate::state::records`]), so that
//! it holds a few batches of a kind instead of the kind. The two tables are read on threads of
//! their own, each a batch ahead at most, and their batches are cut where both are whole.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};

use rayon::prelude::*;

use super::{BATCH_ROWS, CELL_BATCH_ROWS, broken, kind_file, map_cells, map_singles};
use super::{KindWriter, check};
use crate::error::{Error, Result};
use crate::reduce::{Entities, KINDS};

/// Rows of a stored kind's tables read at once: a cells' row group, and about [`BATCH_ROWS`] of
/// the singles' days (see `map_kind`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Batches {
    pub cells: usize,
    pub days: usize,
}

impl Batches {
    /// A share of these for each of `n` streams read side by side, so that together they hold
    /// what one stream does.
    pub(crate) fn shared(self, n: usize) -> Batches {
        let n = n.max(1);
        Batches {
            cells: (self.cells / n).max(1),
            days: (self.days / n).max(1),
        }
    }
}

impl Default for Batches {
    fn default() -> Self {
        Batches {
            cells: CELL_BATCH_ROWS,
            days: BATCH_ROWS,
        }
    }
}

/// What [`merge_kind`] counted of the records it wrote.
#[derive(Debug, Default, PartialEq)]
pub struct KindMerged {
    /// (entity, day) cells both sides held (see `Entities::merge`).
    pub overlapping: u64,
    /// Entities that touched their own account (what the population reads of principals).
    pub self_served: u64,
}

/// Kind `k` of the records in `dir` without the local days `stale`, merged with `theirs` (the
/// same kind of a night's records) and written by `out` as the stream passes them, read
/// `batches` rows at a time; `seen` is shown each stored piece once its days are dropped. Equal
/// to dropping the days from the kind read whole and merging it whole (`Entities::without_days`,
/// `Entities::merge`), as each is done entity by entity; tested at batches of a few rows against
/// that.
#[allow(clippy::too_many_arguments)]
pub(crate) fn merge_kind(
    dir: &Path,
    k: usize,
    symbols: u64,
    batches: Batches,
    stale: &BTreeSet<i64>,
    mut theirs: Entities,
    mut seen: impl FnMut(&Entities),
    out: &mut KindWriter,
) -> Result<KindMerged> {
    let mut merged = KindMerged::default();
    stream_kind_in(dir, k, symbols, batches, |mine, bound| {
        let mine = mine.without_days(stale);
        seen(&mine);
        let (joined, twice) = mine.merge(theirs.split_through(bound));
        merged.overlapping += twice;
        merged.self_served += crate::reduce::kind_self_served(&joined);
        out.push(&joined)
    })?;
    Ok(merged)
}

/// Kind `k`'s records handed to `each` in entity order, as pieces that each hold every record of
/// the entities up to the bound given with it (past the last piece's, none): whatever the stream
/// has of an entity, cells or a single, is in one piece. Checked as `read_kind` checks a whole
/// kind; an error of `each` stops the reading.
pub fn stream_kind(
    dir: &Path,
    k: usize,
    symbols: u64,
    each: impl FnMut(Entities, Option<u32>) -> Result<()>,
) -> Result<()> {
    stream_kind_in(dir, k, symbols, Batches::default(), each).map(|_| ())
}

pub(crate) fn stream_kind_in(
    dir: &Path,
    k: usize,
    symbols: u64,
    batches: Batches,
    each: impl FnMut(Entities, Option<u32>) -> Result<()>,
) -> Result<u64> {
    stream_kinds_in(&[dir], k, symbols, batches, each)
}

/// Kind `k` of the records in several folders, merged as [`Entities::merge`] merges them, handed
/// to `each` as [`stream_kind`] hands one folder's; returns how many (entity, day) cells more than
/// one folder held (none, when each holds whole local days of its own). What a run without a
/// state makes of records reduced a group of days at a time, each group written as it is made
/// (see [`crate::reduce::Reduced::of_on_disk`]): one pass over the groups, where merging each into
/// the records so far rewrote them every group.
pub fn stream_kinds(
    dirs: &[&Path],
    k: usize,
    symbols: u64,
    each: impl FnMut(Entities, Option<u32>) -> Result<()>,
) -> Result<u64> {
    stream_kinds_in(dirs, k, symbols, Batches::default(), each)
}

pub(crate) fn stream_kinds_in(
    dirs: &[&Path],
    k: usize,
    symbols: u64,
    batches: Batches,
    mut each: impl FnMut(Entities, Option<u32>) -> Result<()>,
) -> Result<u64> {
    let Some(first) = dirs.first() else {
        return Ok(0);
    };
    if k >= KINDS.len() {
        return Err(broken(first, "an unknown entity kind"));
    }
    let mut feeds = Vec::with_capacity(dirs.len());
    std::thread::scope(|scope| {
        let mut readers = Vec::with_capacity(2 * dirs.len());
        for &dir in dirs {
            let (cells, reader) = spawn_reader(scope, dir, symbols, move |send| {
                let path = kind_file(dir, "cells", k);
                map_cells(&path, batches.cells, &|_| true, &send).map(|_| ())
            });
            readers.push((dir, reader));
            let (singles, reader) = spawn_reader(scope, dir, symbols, move |send| {
                map_singles(dir, k, batches.days, &|_| true, &send).map(|_| ())
            });
            readers.push((dir, reader));
            feeds.push([cells, singles]);
        }
        let merged = walk(feeds, &mut each);
        // The feeds are dropped: a reader blocked on its channel wakes to a hang-up. The merge's
        // error first (the readers' are then hang-ups); past it, a reader's own error explains a
        // stream that ended early.
        let mut result = merged;
        for (dir, reader) in readers {
            let read = (reader.join()).unwrap_or_else(|_| Err(broken(dir, "a reader stopped")));
            result = result.and_then(|n| read.map(|_| n));
        }
        result
    })
}

/// An item of [`side_by_side`] until a thread takes it, then its result.
type Slot<T, R> = Mutex<(Option<T>, Option<Result<R>>)>;

/// `work` on each of `items`, taken in `order` (indices into `items`) by `threads` threads of
/// their own, the results by index. Not on rayon's pool: a merge blocks on its readers'
/// channels, and a reader's decoding may ask the pool, so merges on the pool's workers could
/// leave none to serve it (they did: the run hung). A thread takes no item after an error; the
/// first error by index is returned, and items never taken are an internal error only when no
/// error explains them.
pub(crate) fn side_by_side<T: Send, R: Send>(
    items: Vec<T>,
    order: &[usize],
    threads: usize,
    work: impl Fn(usize, T) -> Result<R> + Sync,
) -> Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let slots: Vec<Slot<T, R>> = items
        .into_iter()
        .map(|t| Mutex::new((Some(t), None)))
        .collect();
    let take = || loop {
        let Some(&i) = order.get(next.fetch_add(1, Ordering::Relaxed)) else {
            return;
        };
        let item = slots.get(i).and_then(|s| s.lock().ok()?.0.take());
        let Some(item) = item else { continue };
        let result = work(i, item);
        let failed = result.is_err();
        if let Some(mut slot) = slots.get(i).and_then(|s| s.lock().ok()) {
            slot.1 = Some(result);
        }
        if failed {
            return;
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(take);
        }
    });
    let (mut out, mut undone) = (Vec::with_capacity(slots.len()), false);
    for slot in slots {
        match slot.into_inner().ok().and_then(|s| s.1) {
            Some(result) => out.push(result?),
            None => undone = true,
        }
    }
    match undone {
        true => Err(Error::Internal("work left undone beside a merge".into())),
        false => Ok(out),
    }
}

/// A table of `dir` read by `read` on a thread of its own, not rayon's (a reader blocked on a
/// full channel must not hold one of the pool's threads, which the merge's own parallel work
/// needs), each batch checked and sent into a channel where one waits while the next is read.
fn spawn_reader<'s, 'e: 's>(
    scope: &'s std::thread::Scope<'s, 'e>,
    dir: &'e Path,
    symbols: u64,
    read: impl FnOnce(&dyn Fn(Entities) -> Result<()>) -> Result<()> + Send + 's,
) -> (Feed, std::thread::ScopedJoinHandle<'s, Result<()>>) {
    let (out, batches) = sync_channel::<Entities>(1);
    let reader = scope.spawn(move || {
        let send = |part: Entities| -> Result<()> {
            check(dir, &part, symbols)?;
            (out.send(part)).map_err(|_| broken(dir, "the merge stopped reading"))
        };
        read(&send)
    });
    (Feed::new(batches), reader)
}

/// One table's batches as they arrive.
struct Feed {
    from: Receiver<Entities>,
    held: Entities,
    ended: bool,
}

impl Feed {
    fn new(from: Receiver<Entities>) -> Feed {
        Feed {
            from,
            held: Entities::default(),
            ended: false,
        }
    }

    /// Waits for a batch when none is held.
    fn fill(&mut self) {
        while !self.ended && self.held.is_empty() {
            match self.from.recv() {
                Ok(batch) => self.held = batch,
                Err(_) => self.ended = true,
            }
        }
    }

    /// The last entity this table is known whole to: its last held (batches are whole
    /// entities); `None` once it has ended.
    fn whole_to(&self) -> Option<u32> {
        if self.ended {
            return None;
        }
        let cell = self.held.cells.last().map(|c| c.entity);
        let single = self.held.singles.last().map(|s| s.entity);
        cell.max(single)
    }
}

/// Hands `each` the feeds' records piece by piece, each piece cut at the lowest entity every
/// feed is whole to; a folder's two feeds are one piece of it, and the folders' pieces are merged.
/// Returns the cells more than one folder held.
fn walk(
    mut feeds: Vec<[Feed; 2]>,
    each: &mut impl FnMut(Entities, Option<u32>) -> Result<()>,
) -> Result<u64> {
    let mut overlapping = 0;
    loop {
        feeds.iter_mut().flatten().for_each(Feed::fill);
        let bound = feeds.iter().flatten().filter_map(Feed::whole_to).min();
        let mut pieces: Vec<Entities> = (feeds.iter_mut())
            .map(|folder| {
                let mut own = Entities::default();
                for feed in folder {
                    let mut taken = feed.held.split_through(bound);
                    own.cells.append(&mut taken.cells);
                    own.singles.append(&mut taken.singles);
                }
                own
            })
            .collect();
        // Joined in pairs, round after round, side by side: each record is walked once a round,
        // log2(n) rounds, where joining each folder's piece into the pieces so far walked the
        // first folders' records n times.
        while pieces.len() > 1 {
            let pairs: Vec<(Entities, u64)> = (pieces.into_par_iter().chunks(2))
                .map(|mut pair| match (pair.pop(), pair.pop()) {
                    (Some(b), Some(a)) => a.merge(b),
                    (Some(a), None) => (a, 0),
                    _ => (Entities::default(), 0),
                })
                .collect();
            overlapping += pairs.iter().map(|(_, twice)| twice).sum::<u64>();
            pieces = pairs.into_iter().map(|(joined, _)| joined).collect();
        }
        let piece = pieces.pop();
        each(piece.unwrap_or_default(), bound)?;
        if bound.is_none() {
            return Ok(overlapping);
        }
    }
}
