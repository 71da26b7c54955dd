//! The reduced records on disk, in a folder:
//!
//! - `symbols.parquet`: `id` (string), one row per code, in code order;
//! - for each kind `k` (its index in [`KINDS`]): `cells-k.parquet` and `singles-k.parquet`, one
//!   row per [`Cell`] and per [`Single`](super::single::Single), and `single_days-k.parquet`,
//!   the days of every single in record order (a single's `days` says how many are its own):
//!   plain columns, where one binary cell per record took 0.89 s to write and 31.2 MB at 8.7M
//!   events;
//! - `accounts.roaring`: every account an access row named;
//! - `orphans.parquet`: `day`, `accounts`: the accounts of rows no entity holds, by local day;
//!
//! bitmaps in roaring's portable format (which the Java, C and Go libraries read), inside
//! binary columns; a one-account set as its 4-byte code (no portable bitmap is that short).
//! A kind's tables are files of their own so that a kind is read, merged and written without the
//! others, and each is read a batch of whole entities at a time ([`map_kind`]) and written a row
//! group at a time ([`KindWriter`]); a night's merge streams a kind through both
//! ([`merge_kind`]), so a state's run never holds a kind whole ([`crate::reduce::Reach`]).
//! Everything read back is checked: a short or foreign field, or a code the symbol table does
//! not hold, is an error naming the file, never a panic. [`Reduced::overlapping`] is a merge's
//! count, not stored. A `--state` keeps its window's records this way
//! ([`crate::state::records`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

mod days;
mod singles;
mod stream;
mod write;

use singles::map_singles;

pub use days::{DAYS, read_days, write_days};
#[cfg(test)]
pub(crate) use stream::stream_kind_in;
pub(crate) use stream::{Batches, merge_kind, side_by_side, stream_kinds_in};
pub use stream::{KindMerged, stream_kind, stream_kinds};
pub(crate) use write::write_kind_batched;
pub use write::{KindWriter, write, write_body, write_kind, write_sets, write_symbols};

use super::cells::{Accounts, Cell, Numbered};
use super::single::SingleDay;
use super::{Entities, KINDS, Reduced, Symbols};
use crate::error::{Error, Result};

/// Where kind `k`'s `table` is.
fn kind_file(dir: &Path, table: &str, k: usize) -> PathBuf {
    dir.join(format!("{table}-{k}.parquet"))
}

/// Reads what [`write`] wrote.
pub fn read(dir: &Path) -> Result<(Reduced, Symbols)> {
    read_in(dir, BATCH_ROWS)
}

/// [`read`], the cells' and the days' tables read `batch_rows` rows (whole row groups) at a time.
pub(super) fn read_in(dir: &Path, batch_rows: usize) -> Result<(Reduced, Symbols)> {
    let (symbols, accounts, orphans) = read_head(dir)?;
    let mut reduced = Reduced {
        accounts,
        orphans,
        ..Reduced::default()
    };
    for (k, kind) in reduced.kinds.iter_mut().enumerate() {
        *kind = read_kind_in(dir, k, symbols.len() as u64, batch_rows)?;
    }
    Ok((reduced, symbols))
}

/// The symbol table, every account and the orphans' accounts by day: what a state's run holds
/// while it reads the kinds one at a time ([`read_kind`]).
pub fn read_head(dir: &Path) -> Result<(Symbols, RoaringBitmap, BTreeMap<i64, RoaringBitmap>)> {
    let symbols = read_symbols(dir)?;
    let (accounts, orphans) = read_sets(dir, symbols.len() as u64)?;
    Ok((symbols, accounts, orphans))
}

/// Every account and the orphans' accounts by day, checked against a table of `symbols` names.
fn read_sets(dir: &Path, symbols: u64) -> Result<(RoaringBitmap, BTreeMap<i64, RoaringBitmap>)> {
    let path = dir.join("accounts.roaring");
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let accounts = bitmap(&path, &bytes)?;
    let mut orphans = BTreeMap::new();
    let t = Stored::load(dir.join("orphans.parquet"))?;
    let (day, sets) = (t.i64s("day")?, t.blobs("accounts")?);
    for i in 0..t.df.height() {
        let set = bitmap(&t.path, need(&t.path, sets.get(i))?)?;
        orphans.insert(need(&t.path, day.get(i))?, set);
    }
    if !set_within(&accounts, symbols) || !orphans.values().all(|s| set_within(s, symbols)) {
        return Err(broken(dir, "a code beyond the symbol table"));
    }
    Ok((accounts, orphans))
}

/// What [`write_body`] wrote: records whose names are in a table of `symbols` names kept
/// elsewhere, read whole (a state's night records, which are few).
pub fn read_body(dir: &Path, symbols: u64) -> Result<Reduced> {
    let (accounts, orphans) = read_sets(dir, symbols)?;
    let mut reduced = Reduced {
        accounts,
        orphans,
        ..Reduced::default()
    };
    for (k, kind) in reduced.kinds.iter_mut().enumerate() {
        *kind = read_kind(dir, k, symbols)?;
    }
    Ok(reduced)
}

/// Kind `k`'s records (its index in [`KINDS`]), checked against a table of `symbols` names.
pub fn read_kind(dir: &Path, k: usize, symbols: u64) -> Result<Entities> {
    read_kind_in(dir, k, symbols, BATCH_ROWS)
}

/// The bytes kind `k`'s tables take in `dir` (0 for a table not there): about what merging it
/// costs, by which the merges are ordered.
pub fn stored_bytes(dir: &Path, k: usize) -> u64 {
    (["cells", "singles", "single_days"].iter())
        .filter_map(|table| std::fs::metadata(kind_file(dir, table, k)).ok())
        .map(|m| m.len())
        .sum()
}

/// Kind `k`'s singles in `dir` (0 for a table not there), from the table's metadata alone: one
/// row each, so at least as many entities as that.
pub fn singles_stored(dir: &Path, k: usize) -> Result<u64> {
    let path = kind_file(dir, "singles", k);
    if !path.exists() {
        return Ok(0);
    }
    let (metadata, _) = crate::frame::parquet_runs(&path, usize::MAX, |e| broken(&path, e))?;
    Ok(metadata.num_rows as u64)
}

/// The entities of kind `k`'s records, from their `entity` columns alone.
pub fn read_entities(dir: &Path, k: usize, symbols: u64) -> Result<Vec<u32>> {
    let mut all = Vec::new();
    for table in ["cells", "singles"] {
        let path = kind_file(dir, table, k);
        let only = crate::frame::read_parquet_columns(&path, &["entity"], |e| broken(&path, e))?;
        let t = Stored { path, df: only };
        let mut codes: Vec<u32> = (t.u32s("entity")?.iter())
            .map(|e| need(&t.path, e))
            .collect::<Result<_>>()?;
        codes.dedup();
        all.extend(codes);
    }
    if all.iter().any(|&e| u64::from(e) >= symbols) {
        return Err(broken(dir, "a code beyond the symbol table"));
    }
    Ok(all)
}

/// [`read_entities`] of the records without the local days `dropped`: an entity all of whose
/// records fall on those days is not listed. The cells' entities and days, and the singles with
/// their days (not the cells' account sets, most of what a kind's records hold).
pub fn read_live_entities(
    dir: &Path,
    k: usize,
    symbols: u64,
    dropped: &std::collections::BTreeSet<i64>,
) -> Result<Vec<u32>> {
    let path = kind_file(dir, "cells", k);
    let columns = &["entity", "day"];
    let df = crate::frame::read_parquet_columns(&path, columns, |e| broken(&path, e))?;
    let t = Stored { path, df };
    let (entity, day) = (t.u32s("entity")?, t.i64s("day")?);
    let mut all = Vec::new();
    for (e, d) in entity.iter().zip(day.iter()) {
        let (e, d) = need(&t.path, e.zip(d))?;
        if !dropped.contains(&d) && all.last() != Some(&e) {
            all.push(e);
        }
    }
    let live = |s: &super::Single| s.days.iter().any(|d| !dropped.contains(&i64::from(d.day)));
    let singles = map_singles(dir, k, MAP_ROWS, &|_| true, &|part: Entities| {
        Ok((part.singles.iter().filter(|s| live(s)))
            .map(|s| s.entity)
            .collect::<Vec<u32>>())
    })?;
    all.extend(singles.into_iter().flatten());
    if all.iter().any(|&e| u64::from(e) >= symbols) {
        return Err(broken(dir, "a code beyond the symbol table"));
    }
    Ok(all)
}

fn read_kind_in(dir: &Path, k: usize, symbols: u64, batch_rows: usize) -> Result<Entities> {
    let parts = map_kind_in(dir, k, symbols, batch_rows, |_| true, |part| part)?;
    Ok(Entities::concat(parts))
}

/// What `f` makes of kind `k`'s records of the entities `keep` holds, handed to it a batch of
/// whole entities at a time (about [`MAP_ROWS`] rows: each batch is dropped once `f` is done
/// with it), in order: the cells' batches, then the singles'. Checked as [`read_kind`] checks
/// the whole kind. What reads a kind to summarise each entity (enumeration's profiles) holds a
/// batch of records, not the kind's: over the 257.5M-event state the principals' records alone
/// were ~1.6 GB beside their profiles.
pub fn map_kind<T: Send>(
    dir: &Path,
    k: usize,
    symbols: u64,
    keep: impl Fn(u32) -> bool + Sync,
    f: impl Fn(Entities) -> T + Sync,
) -> Result<Vec<T>> {
    map_kind_in(dir, k, symbols, MAP_ROWS, keep, f)
}

pub(super) fn map_kind_in<T: Send>(
    dir: &Path,
    k: usize,
    symbols: u64,
    batch_rows: usize,
    keep: impl Fn(u32) -> bool + Sync,
    f: impl Fn(Entities) -> T + Sync,
) -> Result<Vec<T>> {
    if k >= KINDS.len() {
        return Err(broken(dir, "an unknown entity kind"));
    }
    let checked = |part: Entities| -> Result<T> {
        check(dir, &part, symbols)?;
        Ok(f(part))
    };
    // Side by side, as written (see [`write_kind`]).
    let (cells, singles) = rayon::join(
        || {
            let rows = batch_rows.min(CELL_BATCH_ROWS);
            map_cells(&kind_file(dir, "cells", k), rows, &keep, &checked)
        },
        || map_singles(dir, k, batch_rows, &keep, &checked),
    );
    let mut out = cells?;
    out.extend(singles?);
    Ok(out)
}

fn read_symbols(dir: &Path) -> Result<Symbols> {
    let stored = Stored::load(dir.join("symbols.parquet"))?;
    let ids = stored.strs("id")?;
    let bytes = ids.iter().map(|id| id.map_or(0, str::len)).sum();
    let mut symbols = Symbols::with_capacity(ids.len(), bytes);
    for (code, id) in ids.iter().enumerate() {
        // A name twice would shift every later code onto another name.
        if symbols.intern(id.unwrap_or_default())? as usize != code {
            return Err(broken(&stored.path, "a name is listed twice"));
        }
    }
    Ok(symbols)
}

/// Rows of the cells' and the days' tables read at once. Whole, those tables and their copies in
/// one chunk stood beside the records being built from them: over the 257.5M-event state, nothing
/// new, the records stage peaked 2.07 GB above what it left resident (17.40 GB, the run's
/// highest stage); a batch at a time, 0.55 GB above a resident set 0.4 GB smaller (15.46 GB).
/// Over the 85.9M-event state
/// 5.37–5.41 → 4.79–4.82 GB, and 3.4–3.7 → 2.2–3.3 s (`analyze --timings[-per-detector]`, reports
/// byte-identical; `docs/performance.md`, twenty-eighth session).
const BATCH_ROWS: usize = 2 << 20;

/// Days of the singles read at once by [`map_kind`], whose callers keep only what they make of
/// each batch. A batch of [`BATCH_ROWS`] days stood three times over while its records were
/// built (the table's columns, the days taken from them, each record's own copy) beside the
/// cells' batch read at the same time. At 100.09M events (1.74M addresses and as many
/// principals, most of them singles), a batch of 256Ki days instead: enumeration 3.25 → 3.21 GB
/// and 7.0 → 6.3 s, the charts 3.07 → 3.02 GB and 3.5 → 3.2 s (`--timings-per-detector` with
/// temporary probes, one run each; reports byte-identical).
pub(crate) const MAP_ROWS: usize = 256 << 10;

/// At most this many rows of a cells' table are read at once (one row group as written; records
/// written before the thirtieth session have groups of 262,144 rows or more, read one at a
/// time). A cell holds its day's accounts as a bitmap, hundreds of bytes where a single's day is
/// 16: the 85.9M-event state's 0.7M /24 cells, read in one batch of [`BATCH_ROWS`], stood 0.55 GB
/// above what enumeration started from.
const CELL_BATCH_ROWS: usize = write::CELL_GROUP;

/// What `f` makes of a kind's cells of the entities `keep` holds, a batch of whole entities at
/// a time: each batch's cells are built side by side, and the last entity's carried into the
/// next batch, as its cells may go on there.
fn map_cells<T>(
    path: &Path,
    batch_rows: usize,
    keep: &(impl Fn(u32) -> bool + Sync),
    f: &impl Fn(Entities) -> Result<T>,
) -> Result<Vec<T>> {
    let (mut out, mut carried, mut last) = (Vec::new(), Vec::<Cell>::new(), None);
    let mut hand = |cells: Vec<Cell>| -> Result<()> {
        // Each batch is checked alone: the order across two is checked here.
        if let (Some(before), Some(next)) = (last, cells.first())
            && (next.entity, next.day) <= before
        {
            return Err(broken(path, "records out of entity and day order"));
        }
        last = cells.last().map(|c| (c.entity, c.day)).or(last);
        if !cells.is_empty() {
            out.push(f(Entities {
                cells,
                singles: Vec::new(),
            })?);
        }
        Ok(())
    };
    Stored::batches(path, batch_rows, |t| {
        let mut cells = std::mem::take(&mut carried);
        cells.extend(cells_of(&t, keep)?);
        let last = cells.last().map(|c| c.entity);
        let cut = cells.iter().rposition(|c| Some(c.entity) != last);
        carried = cells.split_off(cut.map_or(0, |i| i + 1));
        hand(cells)
    })?;
    hand(carried)?;
    Ok(out)
}

/// The cells of one batch of a cells' table, of the entities `keep` holds.
fn cells_of(t: &Stored, keep: &(impl Fn(u32) -> bool + Sync)) -> Result<Vec<Cell>> {
    let path = t.path.as_path();
    let (entity, day) = (t.u32s("entity")?, t.i64s("day")?);
    let (events, own, peak) = (t.u64s("events")?, t.u64s("own_rows")?, t.u64s("peak_hour")?);
    let (first, last) = (t.i64s("first")?, t.i64s("last")?);
    let (accounts, walk) = (t.blobs("accounts")?, t.blobs("walk")?);
    let split = t.blobs("split_hours")?;
    let (first_n, last_n) = (t.blobs("first_numbered")?, t.blobs("last_numbered")?);
    let number = |b: Option<&[u8]>| b.map(|b| numbered(path, b)).transpose();
    let cell = |i: usize| -> Result<Cell> {
        Ok(Cell {
            entity: need(path, entity.get(i))?,
            day: need(path, day.get(i))?,
            events: need(path, events.get(i))?,
            own_rows: need(path, own.get(i))?,
            first: need(path, first.get(i))?,
            last: need(path, last.get(i))?,
            accounts: account_set(path, need(path, accounts.get(i))?)?,
            peak_hour: need(path, peak.get(i))?,
            split_hours: split
                .get(i)
                .map(|b| hours(path, b))
                .transpose()?
                .unwrap_or_default(),
            walk: walk
                .get(i)
                .map(|b| bitmap(path, b))
                .transpose()?
                .unwrap_or_default(),
            first_numbered: number(first_n.get(i))?,
            last_numbered: number(last_n.get(i))?,
        })
    };
    (0..t.df.height())
        .into_par_iter()
        .filter(|&i| entity.get(i).is_none_or(keep))
        .map(cell)
        .collect()
}

/// One batch of the days' table, in order: its columns read as slices (the batch is one chunk)
/// into a vector of the batch's length. Collected from a parallel iterator of `Result`s, element
/// by element, the vector grew by reallocation onto fresh pages: 7.9 % of the page faults of a
/// night over the 85.9M-event state (`perf record -e page-faults`).
fn days_of(d: &Stored) -> Result<Vec<SingleDay>> {
    let dpath = d.path.as_path();
    let day = d.get("day", Column::i32)?;
    let (first, last) = (d.u32s("first")?, d.u32s("last")?);
    let (events, own) = (d.u32s("events")?, d.u32s("own")?);
    let nulls = day.null_count()
        + (first.null_count() + last.null_count())
        + (events.null_count() + own.null_count());
    if nulls > 0 {
        return Err(broken(dpath, "a required field is empty"));
    }
    let day = values(dpath, &day)?;
    let (first, last) = (values(dpath, &first)?, values(dpath, &last)?);
    let (events, own) = (values(dpath, &events)?, values(dpath, &own)?);
    let n = day.len();
    if (events.par_iter().chain(own)).any(|&v| v > u32::from(u16::MAX)) {
        return Err(broken(dpath, "a day's count past 16 bits"));
    }
    let mut out = Vec::with_capacity(n);
    (0..n)
        .into_par_iter()
        .map(|j| SingleDay {
            day: day[j],
            first: first[j],
            last: last[j],
            // Checked above to fit.
            events: events[j] as u16,
            own: own[j] as u16,
        })
        .collect_into_vec(&mut out);
    Ok(out)
}

/// The values of a column of one chunk without nulls.
fn values<'a, T: PolarsNumericType>(
    path: &Path,
    c: &'a ChunkedArray<T>,
) -> Result<&'a [T::Native]> {
    c.cont_slice().map_err(|e| broken(path, e))
}

/// A batch of a kind's records as read from `dir`: its codes within a table of `symbols` names,
/// and in the order a merge walks them.
fn check(dir: &Path, part: &Entities, symbols: u64) -> Result<()> {
    if !within(part, symbols) {
        return Err(broken(dir, "a code beyond the symbol table"));
    }
    if !ordered(part) {
        return Err(broken(dir, "records out of entity and day order"));
    }
    Ok(())
}

/// Whether a kind's cells are in (entity, day) order and its records in entity and day order,
/// as a merge walks them.
fn ordered(k: &Entities) -> bool {
    k.cells
        .windows(2)
        .all(|w| (w[0].entity, w[0].day) < (w[1].entity, w[1].day))
        && k.singles.windows(2).all(|w| w[0].entity < w[1].entity)
        && k.singles
            .iter()
            .all(|s| s.days.windows(2).all(|w| w[0].day < w[1].day))
}

/// Whether every code of the set is below `n`.
fn set_within(b: &RoaringBitmap, n: u64) -> bool {
    b.max().is_none_or(|m| u64::from(m) < n)
}

/// Whether every code a kind's records name is below `n`.
fn within(k: &Entities, n: u64) -> bool {
    let set = |b: &RoaringBitmap| set_within(b, n);
    let code = |c: u32| u64::from(c) < n;
    let numbered = |x: &Option<Numbered>| x.is_none_or(|x| code(x.account));
    k.singles.iter().all(|s| code(s.entity) && code(s.account))
        && k.cells.iter().all(|c| {
            code(c.entity)
                && match &c.accounts {
                    Accounts::One(a) => code(*a),
                    Accounts::Many(b) => set(b),
                }
                && set(&c.walk)
                && c.split_hours.iter().all(|(_, b)| set(b))
                && numbered(&c.first_numbered)
                && numbered(&c.last_numbered)
        })
}

/// One table read back, and where from (for the errors).
struct Stored {
    path: PathBuf,
    df: DataFrame,
}

impl Stored {
    fn load(path: PathBuf) -> Result<Stored> {
        let df = crate::frame::read_parquet(&path, |e| broken(&path, e))?;
        Ok(Stored { path, df })
    }

    /// The table at `path` a batch of about `rows` rows at a time, each in one chunk (see
    /// [`crate::frame::parquet_batches`]).
    fn batches(path: &Path, rows: usize, mut each: impl FnMut(Stored) -> Result<()>) -> Result<()> {
        let broken_here = |e| broken(path, e);
        crate::frame::parquet_batches(path, rows, broken_here, |df| {
            each(
                Stored {
                    path: path.to_path_buf(),
                    df,
                }
                .single_chunk(),
            )
        })
    }

    /// The table in one chunk per column, so that rows read side by side are had by index
    /// directly (a column in row groups looks each index up among its chunks).
    fn single_chunk(mut self) -> Stored {
        self.df.rechunk_mut();
        self
    }

    fn get<T>(&self, name: &str, typed: impl Fn(&Column) -> PolarsResult<&T>) -> Result<T>
    where
        T: Clone,
    {
        let column = self.df.column(name).map_err(|e| broken(&self.path, e))?;
        typed(column).cloned().map_err(|e| broken(&self.path, e))
    }

    fn strs(&self, name: &str) -> Result<StringChunked> {
        self.get(name, Column::str)
    }

    fn u32s(&self, name: &str) -> Result<UInt32Chunked> {
        self.get(name, Column::u32)
    }

    fn u64s(&self, name: &str) -> Result<UInt64Chunked> {
        self.get(name, Column::u64)
    }

    fn i64s(&self, name: &str) -> Result<Int64Chunked> {
        self.get(name, Column::i64)
    }

    fn blobs(&self, name: &str) -> Result<BinaryChunked> {
        self.get(name, Column::binary)
    }
}

/// A column of `values` named `name`.
fn column<T>(name: &str, values: impl IntoIterator<Item = T>) -> Column
where
    Series: NamedFrom<Vec<T>, [T]>,
{
    Column::new(name.into(), values.into_iter().collect::<Vec<T>>())
}

fn table(path: &Path, columns: Vec<Column>) -> Result<u64> {
    crate::frame::write_lz4(path, columns, |e| broken(path, e))
}

fn broken(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: format!("reduced records unreadable: {e}"),
    }
}

fn need<T>(path: &Path, value: Option<T>) -> Result<T> {
    value.ok_or_else(|| broken(path, "a required field is empty"))
}

fn bitmap_bytes(b: &RoaringBitmap) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.serialized_size());
    // Writing into a vector cannot fail.
    let _ = b.serialize_into(&mut out);
    out
}

fn bitmap(path: &Path, bytes: &[u8]) -> Result<RoaringBitmap> {
    RoaringBitmap::deserialize_from(bytes).map_err(|e| broken(path, e))
}

fn accounts_bytes(a: &Accounts) -> Vec<u8> {
    match a {
        Accounts::One(code) => code.to_le_bytes().to_vec(),
        Accounts::Many(b) => bitmap_bytes(b),
    }
}

fn account_set(path: &Path, bytes: &[u8]) -> Result<Accounts> {
    match <[u8; 4]>::try_from(bytes) {
        Ok(code) => Ok(Accounts::One(u32::from_le_bytes(code))),
        Err(_) => Ok(Accounts::Many(bitmap(path, bytes)?)),
    }
}

fn numbered_bytes(n: Numbered) -> Vec<u8> {
    let mut out = Vec::with_capacity(20);
    out.extend(n.ts.to_le_bytes());
    out.extend(n.number.to_le_bytes());
    out.extend(n.account.to_le_bytes());
    out
}

fn numbered(path: &Path, b: &[u8]) -> Result<Numbered> {
    let bad = || broken(path, "a numbered request is not 20 bytes");
    let (ts, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
    let (number, rest) = rest.split_first_chunk::<8>().ok_or_else(bad)?;
    let account = <[u8; 4]>::try_from(rest).map_err(|_| bad())?;
    Ok(Numbered {
        ts: i64::from_le_bytes(*ts),
        number: i64::from_le_bytes(*number),
        account: u32::from_le_bytes(account),
    })
}

/// Each hour as its number (8 bytes), its bitmap's length (4) and the bitmap.
fn hours_bytes(hours: &[(i64, RoaringBitmap)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, set) in hours {
        let bytes = bitmap_bytes(set);
        out.extend(h.to_le_bytes());
        out.extend((bytes.len() as u32).to_le_bytes());
        out.extend(bytes);
    }
    out
}

fn hours(path: &Path, mut b: &[u8]) -> Result<Vec<(i64, RoaringBitmap)>> {
    let bad = || broken(path, "a shared hour is cut short");
    let mut out = Vec::new();
    while !b.is_empty() {
        let (h, rest) = b.split_first_chunk::<8>().ok_or_else(bad)?;
        let (len, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
        let len = u32::from_le_bytes(*len) as usize;
        let set = rest.get(..len).ok_or_else(bad)?;
        out.push((i64::from_le_bytes(*h), bitmap(path, set)?));
        b = &rest[len..];
    }
    Ok(out)
}
