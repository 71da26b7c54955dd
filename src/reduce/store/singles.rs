//! A kind's singles read back beside their days, each table a few row groups at a time.
//!
//! Why: the singles' table was read whole before its days were walked in batches, and a
//! customer's own address or login is a single, so a kind of addresses or principals holds
//! about one per customer (20 bytes each in columns, 8 more for where its days start). Each
//! group merged side by side held its own whole table: that was most of the merge's cost per
//! group (`on_disk::MERGED_AT_ONCE`), and enumeration held a whole kind's beside the profiles it
//! was making. Here the singles are pulled as the days read so far need them: at most one run
//! of row groups beyond those days is held. At 100.09M events (nine groups, merged as five and
//! four, then two) the merges peaked at 2.97, 2.98 and 3.02 GB instead of 3.13, 3.10 and 3.07,
//! and took 17.1 s instead of 20.0 (temporary probes, one run each; reports byte-identical).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;

use polars_io::parquet::read::FileMetadata;
use rayon::prelude::*;

use super::{Stored, broken, days_of, kind_file, need};
use crate::error::Result;
use crate::frame::{groups_of, parquet_runs, read_row_groups};
use crate::reduce::Entities;
use crate::reduce::single::{Single, SingleDay};

/// One single as its table holds it, its days not yet read.
struct Head {
    entity: u32,
    account: u32,
    number: Option<i64>,
    /// Where its days end in the days' table.
    end: usize,
}

/// The singles' table of a kind, pulled a run of row groups at a time.
struct Heads<'p> {
    path: &'p Path,
    metadata: Arc<FileMetadata>,
    runs: std::vec::IntoIter<std::ops::Range<usize>>,
    /// Read and not yet given their days, in order.
    held: VecDeque<Head>,
    /// Where the days of the last single read end (those of every single read so far).
    end: usize,
}

impl<'p> Heads<'p> {
    fn open(path: &'p Path, rows: usize) -> Result<Heads<'p>> {
        let (metadata, runs) = parquet_runs(path, rows, |e| broken(path, e))?;
        Ok(Heads {
            path,
            metadata,
            runs: runs.into_iter(),
            held: VecDeque::new(),
            end: 0,
        })
    }

    /// Reads singles until their days end past `read` days, or none is left.
    fn reach(&mut self, read: usize) -> Result<()> {
        while self.end <= read {
            let Some(run) = self.runs.next() else {
                return Ok(());
            };
            let part = Arc::new(groups_of(&self.metadata, run));
            let df = read_row_groups(self.path, part, None, |e| broken(self.path, e))?;
            let t = Stored {
                path: self.path.to_path_buf(),
                df,
            }
            .single_chunk();
            let (entity, account) = (t.u32s("entity")?, t.u32s("account")?);
            let (number, counts) = (t.i64s("number")?, t.u32s("days")?);
            for i in 0..t.df.height() {
                let count = need(self.path, counts.get(i))? as usize;
                if count == 0 {
                    return Err(broken(self.path, "a record's days are missing"));
                }
                // Present, like every field of a day (checked as the days are read).
                let (entity, account) = need(self.path, entity.get(i).zip(account.get(i)))?;
                self.end += count;
                self.held.push_back(Head {
                    entity,
                    account,
                    number: number.get(i),
                    end: self.end,
                });
            }
        }
        Ok(())
    }

    /// Whether every single has been read and given its days.
    fn done(&self) -> bool {
        self.held.is_empty() && self.runs.len() == 0
    }
}

/// What `f` makes of kind `k`'s singles of the entities `keep` holds, a batch of whole records
/// at a time (about `batch_rows` days), in order; checked as a whole kind read at once was. Each
/// record is built, side by side, once the days read hold all its days: one after another, the
/// singles took 1.95 s against 1.31 s of a nightly run over the 85.9M-event state
/// (twenty-first session).
pub(super) fn map_singles<T>(
    dir: &Path,
    k: usize,
    batch_rows: usize,
    keep: &(impl Fn(u32) -> bool + Sync),
    f: &impl Fn(Entities) -> Result<T>,
) -> Result<Vec<T>> {
    let spath = kind_file(dir, "singles", k);
    let path = spath.as_path();
    // A single has a day or more, so a run of singles is read for no more than a batch of
    // days; an eighth of one, as a single waiting for its days holds 32 bytes.
    let mut heads = Heads::open(path, (batch_rows / 8).max(1))?;
    let dpath = kind_file(dir, "single_days", k);
    // The days read and not yet given to a record, from day `held_from` of the table on.
    let (mut held, mut held_from) = (Vec::<SingleDay>::new(), 0usize);
    let (mut out, mut last) = (Vec::new(), None);
    Stored::batches(&dpath, batch_rows, |t| {
        held.extend(days_of(&t)?);
        let read = held_from + held.len();
        heads.reach(read)?;
        if read > heads.end {
            return Err(broken(path, "days of no record"));
        }
        let whole = heads.held.partition_point(|h| h.end <= read);
        let ready: Vec<Head> = heads.held.drain(..whole).collect();
        let starts: Vec<usize> = std::iter::once(held_from)
            .chain(ready.iter().map(|h| h.end))
            .collect();
        let built: Vec<Single> = (ready.par_iter().enumerate())
            .filter(|(_, h)| keep(h.entity))
            .map(|(i, h)| Single {
                entity: h.entity,
                account: h.account,
                number: h.number,
                days: held[starts[i] - held_from..starts[i + 1] - held_from].to_vec(),
            })
            .collect();
        // Each batch is checked alone: the order across two is checked here.
        if let (Some(before), Some(next)) = (last, built.first())
            && next.entity <= before
        {
            return Err(broken(path, "records out of entity and day order"));
        }
        last = built.last().map(|s| s.entity).or(last);
        if !built.is_empty() {
            out.push(f(Entities {
                cells: Vec::new(),
                singles: built,
            })?);
        }
        let used = starts[starts.len() - 1];
        held.drain(..used - held_from);
        held_from = used;
        Ok(())
    })?;
    heads.reach(held_from)?;
    if !heads.done() {
        return Err(broken(path, "a record's days are missing"));
    }
    Ok(out)
}
