//! Writing records: whole ([`write`]) or a kind's records handed over in entity order, piece by
//! piece ([`KindWriter`]), which a state's night merge uses so that it never holds a kind whole.
//! Both go through [`KindWriter`], so a kind's tables are laid out the same way either way: row
//! groups of [`GROUP`] rows, [`CELL_GROUP`] of cells (the days' table: the first single that
//! reaches it closes a group).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::parquet::write::{BatchedWriter, ParquetCompression, ParquetWriter};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::{
    accounts_bytes, bitmap_bytes, broken, column, hours_bytes, kind_file, numbered_bytes, table,
};
use crate::error::{Error, Result};
use crate::reduce::cells::Cell;
use crate::reduce::single::Single;
use crate::reduce::{Entities, Reduced, Symbols};

/// Rows of a row group as written.
const GROUP: usize = crate::frame::PARQUET_GROUP_ROWS;

/// Rows of a cells' row group as written, which is what a reader of cells holds at once
/// (`CELL_BATCH_ROWS`): a cell holds its day's accounts as a bitmap. A night's merge holds a few
/// groups at once, read, merged and being written: at [`GROUP`] rows, the /24 cells of the
/// 85.9M-event state stood 0.43 GB above what the run held.
pub(super) const CELL_GROUP: usize = 1 << 16;

/// Writes `reduced` and its `symbols` into `dir` (created if missing); returns the bytes written.
/// LZ4, not zstd: records are rewritten every night. At 8.7M events (`benches/reduce_state.rs`)
/// written in 0.33–0.36 s and read back in 0.25–0.26 s, 42 MB; with zstd 0.58–0.60 s and
/// 0.32–0.39 s, 34 MB.
pub fn write(dir: &Path, reduced: &Reduced, symbols: &Symbols) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The files side by side: each is written on one thread, and one after another the 41 MB of
    // the 8.7M-event 120-night state's records took 0.26 s (0.28 s CPU) of every night that
    // changes them (`benches/reduce_state.rs`, `docs/performance.md`, twenty-third session).
    let (names, body) = rayon::join(|| write_symbols(dir, symbols), || write_body(dir, reduced));
    Ok(names? + body?)
}

/// [`write`] without the symbol table: records whose names a table kept elsewhere holds.
pub fn write_body(dir: &Path, reduced: &Reduced) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let (sets, kinds) = rayon::join(
        || write_sets(dir, &reduced.accounts, &reduced.orphans),
        || {
            (reduced.kinds.par_iter().enumerate())
                .map(|(k, kind)| write_kind(dir, k, kind))
                .collect::<Result<Vec<u64>>>()
        },
    );
    Ok(sets? + kinds?.iter().sum::<u64>())
}

/// The symbol table, one name a row in code order.
pub fn write_symbols(dir: &Path, symbols: &Symbols) -> Result<u64> {
    let ids: Vec<&str> = (0..symbols.len() as u32).map(|c| symbols.name(c)).collect();
    table(&dir.join("symbols.parquet"), vec![column("id", ids)])
}

/// Kind `k`'s tables (its index in `KINDS`), whole.
pub fn write_kind(dir: &Path, k: usize, kind: &Entities) -> Result<u64> {
    let mut writer = KindWriter::create(dir, k)?;
    writer.push(kind)?;
    writer.finish()
}

/// Kind `k`'s tables, whole, in row groups no longer than `batches` reads: the default's are
/// [`write_kind`]'s; the tests write groups of a few rows, which a stream then cuts inside.
/// `parts` are whole entities in entity order, each dropped once written.
pub(crate) fn write_kind_batched(
    dir: &Path,
    k: usize,
    parts: impl IntoIterator<Item = Entities>,
    batches: super::Batches,
) -> Result<u64> {
    let mut writer = KindWriter::batched(dir, k, batches)?;
    for part in parts {
        writer.push(&part)?;
    }
    writer.finish()
}

/// The orphans' accounts by day and the set of every account.
pub fn write_sets(
    dir: &Path,
    accounts: &RoaringBitmap,
    orphans: &BTreeMap<i64, RoaringBitmap>,
) -> Result<u64> {
    let written = table(
        &dir.join("orphans.parquet"),
        vec![
            column("day", orphans.keys().copied()),
            column("accounts", orphans.values().map(|b| Some(bitmap_bytes(b)))),
        ],
    )?;
    let path = dir.join("accounts.roaring");
    let bytes = bitmap_bytes(accounts);
    std::fs::write(&path, &bytes).map_err(|e| Error::io(&path, e))?;
    Ok(written + bytes.len() as u64)
}

/// Kind `k`'s three tables being written: records are pushed in entity order, in pieces of whole
/// entities, and each table holds at most one row group of them until it is written. What reads
/// a kind back requires that order, and checks it.
pub struct KindWriter {
    /// Rows of a row group of cells, and of the other tables (of days, for the days' table).
    groups: (usize, usize),
    cells: Table<CellColumns>,
    singles: Table<SingleColumns>,
    days: Table<DayColumns>,
}

impl KindWriter {
    pub fn create(dir: &Path, k: usize) -> Result<KindWriter> {
        KindWriter::grouped(dir, k, (CELL_GROUP, GROUP))
    }

    /// Row groups no longer than `batches` reads (see [`write_kind_batched`]).
    pub(crate) fn batched(dir: &Path, k: usize, batches: super::Batches) -> Result<KindWriter> {
        let groups = (batches.cells.min(CELL_GROUP), batches.days.min(GROUP));
        KindWriter::grouped(dir, k, groups)
    }

    /// Row groups of `groups` rows (cells, the rest): tests reach past one with a few.
    pub(crate) fn grouped(dir: &Path, k: usize, groups: (usize, usize)) -> Result<KindWriter> {
        Ok(KindWriter {
            groups: (groups.0.max(1), groups.1.max(1)),
            cells: Table::create(kind_file(dir, "cells", k))?,
            singles: Table::create(kind_file(dir, "singles", k))?,
            days: Table::create(kind_file(dir, "single_days", k))?,
        })
    }

    /// The next entities' records, their cells and their singles side by side.
    pub fn push(&mut self, kind: &Entities) -> Result<()> {
        let (cells, singles, days) = (&mut self.cells, &mut self.singles, &mut self.days);
        let (cell_group, group) = self.groups;
        let (a, b) = rayon::join(
            || -> Result<()> {
                for cell in &kind.cells {
                    cells.rows.push(cell);
                    cells.write_full(cell_group)?;
                }
                Ok(())
            },
            || -> Result<()> {
                for single in &kind.singles {
                    singles.rows.push(single);
                    singles.write_full(group)?;
                    days.rows.push(single);
                    days.write_full(group)?;
                }
                Ok(())
            },
        );
        a.and(b)
    }

    /// Writes what is held and closes the tables; the bytes written.
    pub fn finish(self) -> Result<u64> {
        Ok(self.cells.finish()? + self.singles.finish()? + self.days.finish()?)
    }
}

/// The columns of one row group being built.
trait Rows: Default {
    type Record;
    fn push(&mut self, record: &Self::Record);
    fn len(&self) -> usize;
    fn frame(self) -> Vec<Column>;
}

/// One table, written a row group at a time.
struct Table<R> {
    path: PathBuf,
    writer: BatchedWriter<File>,
    rows: R,
}

impl<R: Rows> Table<R> {
    fn create(path: PathBuf) -> Result<Table<R>> {
        let empty = crate::frame::table_of(R::default().frame()).map_err(|e| broken(&path, e))?;
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        let writer = ParquetWriter::new(file)
            .with_compression(ParquetCompression::Lz4Raw)
            .batched(empty.schema())
            .map_err(|e| broken(&path, e))?;
        Ok(Table {
            path,
            writer,
            rows: R::default(),
        })
    }

    /// Writes the group being built once it holds `group` rows.
    fn write_full(&mut self, group: usize) -> Result<()> {
        if self.rows.len() >= group {
            self.write()?;
        }
        Ok(())
    }

    fn write(&mut self) -> Result<()> {
        let columns = std::mem::take(&mut self.rows).frame();
        let group = crate::frame::table_of(columns).map_err(|e| broken(&self.path, e))?;
        (self.writer.write_batch(&group)).map_err(|e| broken(&self.path, e))
    }

    fn finish(mut self) -> Result<u64> {
        if self.rows.len() > 0 {
            self.write()?;
        }
        self.writer.finish().map_err(|e| broken(&self.path, e))
    }
}

/// A cells' group: the accounts, the walk and the split hours as portable bitmaps (see the
/// module comment of `store`).
#[derive(Default)]
struct CellColumns {
    entity: Vec<u32>,
    day: Vec<i64>,
    events: Vec<u64>,
    own_rows: Vec<u64>,
    first: Vec<i64>,
    last: Vec<i64>,
    peak_hour: Vec<u64>,
    accounts: Vec<Option<Vec<u8>>>,
    walk: Vec<Option<Vec<u8>>>,
    split_hours: Vec<Option<Vec<u8>>>,
    first_numbered: Vec<Option<Vec<u8>>>,
    last_numbered: Vec<Option<Vec<u8>>>,
}

impl Rows for CellColumns {
    type Record = Cell;
    fn push(&mut self, c: &Cell) {
        self.entity.push(c.entity);
        self.day.push(c.day);
        self.events.push(c.events);
        self.own_rows.push(c.own_rows);
        self.first.push(c.first);
        self.last.push(c.last);
        self.peak_hour.push(c.peak_hour);
        self.accounts.push(Some(accounts_bytes(&c.accounts)));
        self.walk
            .push((!c.walk.is_empty()).then(|| bitmap_bytes(&c.walk)));
        (self.split_hours).push((!c.split_hours.is_empty()).then(|| hours_bytes(&c.split_hours)));
        self.first_numbered
            .push(c.first_numbered.map(numbered_bytes));
        self.last_numbered.push(c.last_numbered.map(numbered_bytes));
    }

    fn len(&self) -> usize {
        self.entity.len()
    }

    fn frame(self) -> Vec<Column> {
        vec![
            column("entity", self.entity),
            column("day", self.day),
            column("events", self.events),
            column("own_rows", self.own_rows),
            column("first", self.first),
            column("last", self.last),
            column("peak_hour", self.peak_hour),
            column("accounts", self.accounts),
            column("walk", self.walk),
            column("split_hours", self.split_hours),
            column("first_numbered", self.first_numbered),
            column("last_numbered", self.last_numbered),
        ]
    }
}

/// A singles' group: a record a row, its days in the days' table.
#[derive(Default)]
struct SingleColumns {
    entity: Vec<u32>,
    account: Vec<u32>,
    number: Vec<Option<i64>>,
    days: Vec<u32>,
}

impl Rows for SingleColumns {
    type Record = Single;
    fn push(&mut self, s: &Single) {
        self.entity.push(s.entity);
        self.account.push(s.account);
        self.number.push(s.number);
        self.days.push(s.days.len() as u32);
    }

    fn len(&self) -> usize {
        self.entity.len()
    }

    fn frame(self) -> Vec<Column> {
        vec![
            column("entity", self.entity),
            column("account", self.account),
            column("number", self.number),
            column("days", self.days),
        ]
    }
}

/// A group of the days' table: every day of the singles pushed, in record order. Built in one
/// pass over the records (not one pass a column) and written as built, so only one group's
/// columns are ever held. At 85.9M events (28.3M days), the five columns built whole took 1.8 s,
/// as long as encoding and writing them; built in one pass, 0.4 s, but 250 MB more at the run's
/// peak; a group at a time, the records' write 3.6–4.2 → 2.4–2.5 s at the same peak (a night
/// added to that state, `docs/performance.md`, twenty-fifth session).
#[derive(Default)]
struct DayColumns {
    day: Vec<i32>,
    first: Vec<u32>,
    last: Vec<u32>,
    events: Vec<u32>,
    own: Vec<u32>,
}

impl Rows for DayColumns {
    type Record = Single;
    fn push(&mut self, s: &Single) {
        for d in &s.days {
            self.day.push(d.day);
            self.first.push(d.first);
            self.last.push(d.last);
            self.events.push(u32::from(d.events));
            self.own.push(u32::from(d.own));
        }
    }

    fn len(&self) -> usize {
        self.day.len()
    }

    fn frame(self) -> Vec<Column> {
        vec![
            column("day", self.day),
            column("first", self.first),
            column("last", self.last),
            column("events", self.events),
            column("own", self.own),
        ]
    }
}
