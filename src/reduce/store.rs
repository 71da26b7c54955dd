//! The reduced records on disk, in a folder:
//!
//! - `symbols.parquet`: `id` (string), one row per code, in code order;
//! - `cells.parquet` and `singles.parquet`: one row per [`Cell`] and per [`Single`], with a
//!   `kind` column (the index in [`KINDS`](super::KINDS));
//! - `single_days.parquet`: the days of every [`Single`], in record order (a single's `days`
//!   says how many are its own): plain columns, where one binary cell per record took 0.89 s to
//!   write and 31.2 MB at 8.7M events;
//! - `accounts.roaring`: every account an access row named;
//! - `orphans.parquet`: `day`, `accounts`: the accounts of rows no entity holds, by local day;
//!
//! bitmaps in roaring's portable format (which the Java, C and Go libraries read), inside
//! binary columns; a one-account set as its 4-byte code (no portable bitmap is that short).
//! Everything read back is checked: a short or foreign field, or a code the symbol table does
//! not hold, is an error naming the file, never a panic. [`Reduced::overlapping`] is a merge's
//! count, not stored. A `--state` keeps its window's records this way
//! ([`crate::state::records`]).

use std::fs::File;
use std::path::{Path, PathBuf};

use polars::prelude::*;
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::cells::{Accounts, Cell, Numbered};
use super::single::{Single, SingleDay};
use super::{Entities, KINDS, Reduced, Symbols};
use crate::error::{Error, Result};

/// Writes `reduced` and its `symbols` into `dir` (created if missing); returns the bytes written.
/// LZ4, not zstd: records are rewritten every night. At 8.7M events (`benches/reduce_state.rs`)
/// written in 0.33–0.36 s and read back in 0.25–0.26 s, 42 MB; with zstd 0.58–0.60 s and
/// 0.32–0.39 s, 34 MB. The three tables written side by side took as long.
pub fn write(dir: &Path, reduced: &Reduced, symbols: &Symbols) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut cells: Vec<(u32, &Cell)> = Vec::new();
    let mut singles: Vec<(u32, &Single)> = Vec::new();
    for (k, kind) in reduced.kinds.iter().enumerate() {
        cells.extend(kind.cells.iter().map(|c| (k as u32, c)));
        singles.extend(kind.singles.iter().map(|s| (k as u32, s)));
    }
    // The files side by side: each is written on one thread, and one after another the 41 MB of
    // the 8.7M-event 120-night state's records took 0.26 s (0.28 s CPU) of every night that
    // changes them (`benches/reduce_state.rs`, `docs/performance.md`, twenty-third session).
    let ((symbols, cells), (singles, rest)) = rayon::join(
        || {
            rayon::join(
                || {
                    let ids: Vec<&str> =
                        (0..symbols.len() as u32).map(|c| symbols.name(c)).collect();
                    table(&dir.join("symbols.parquet"), vec![column("id", ids)])
                },
                || write_cells(dir, &cells),
            )
        },
        || rayon::join(|| write_singles(dir, &singles), || write_sets(dir, reduced)),
    );
    Ok(symbols? + cells? + singles? + rest?)
}

/// The orphans' accounts by day and the set of every account.
fn write_sets(dir: &Path, reduced: &Reduced) -> Result<u64> {
    let written = table(
        &dir.join("orphans.parquet"),
        vec![
            column("day", reduced.orphans.keys().copied()),
            column(
                "accounts",
                reduced.orphans.values().map(|b| Some(bitmap_bytes(b))),
            ),
        ],
    )?;
    let accounts = dir.join("accounts.roaring");
    let bytes = bitmap_bytes(&reduced.accounts);
    std::fs::write(&accounts, &bytes).map_err(|e| Error::io(&accounts, e))?;
    Ok(written + bytes.len() as u64)
}

fn write_cells(dir: &Path, cells: &[(u32, &Cell)]) -> Result<u64> {
    let u64s = |f: fn(&Cell) -> u64| cells.iter().map(move |(_, c)| f(c));
    let i64s = |f: fn(&Cell) -> i64| cells.iter().map(move |(_, c)| f(c));
    let blobs =
        |f: &dyn Fn(&Cell) -> Option<Vec<u8>>| cells.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
    table(
        &dir.join("cells.parquet"),
        vec![
            column("kind", cells.iter().map(|(k, _)| *k)),
            column("entity", cells.iter().map(|(_, c)| c.entity)),
            column("day", i64s(|c| c.day)),
            column("events", u64s(|c| c.events)),
            column("own_rows", u64s(|c| c.own_rows)),
            column("first", i64s(|c| c.first)),
            column("last", i64s(|c| c.last)),
            column("peak_hour", u64s(|c| c.peak_hour)),
            column("accounts", blobs(&|c| Some(accounts_bytes(&c.accounts)))),
            column(
                "walk",
                blobs(&|c| (!c.walk.is_empty()).then(|| bitmap_bytes(&c.walk))),
            ),
            column(
                "split_hours",
                blobs(&|c| (!c.split_hours.is_empty()).then(|| hours_bytes(&c.split_hours))),
            ),
            column(
                "first_numbered",
                blobs(&|c| c.first_numbered.map(numbered_bytes)),
            ),
            column(
                "last_numbered",
                blobs(&|c| c.last_numbered.map(numbered_bytes)),
            ),
        ],
    )
}

fn write_singles(dir: &Path, singles: &[(u32, &Single)]) -> Result<u64> {
    let written = table(
        &dir.join("singles.parquet"),
        vec![
            column("kind", singles.iter().map(|(k, _)| *k)),
            column("entity", singles.iter().map(|(_, s)| s.entity)),
            column("account", singles.iter().map(|(_, s)| s.account)),
            column("number", singles.iter().map(|(_, s)| s.number)),
            column("days", singles.iter().map(|(_, s)| s.days.len() as u32)),
        ],
    )?;
    let days_written = write_single_days(&dir.join("single_days.parquet"), singles)?;
    Ok(written + days_written)
}

/// The days of `singles`, in record order, a row group at a time: built in one pass over the
/// records (not one pass a column) and written as built, so only one group's columns are ever
/// held. At 85.9M events (28.3M days), the five columns built whole took 1.8 s, as long as
/// encoding and writing them; built in one pass, 0.4 s, but 250 MB more at the run's peak; a
/// group at a time, the records' write 3.6–4.2 → 2.4–2.5 s at the same peak (a night added to
/// that state, `docs/performance.md`, twenty-fifth session).
fn write_single_days(path: &Path, singles: &[(u32, &Single)]) -> Result<u64> {
    let schema = Schema::from_iter([
        Field::new("day".into(), DataType::Int32),
        Field::new("first".into(), DataType::UInt32),
        Field::new("last".into(), DataType::UInt32),
        Field::new("events".into(), DataType::UInt32),
        Field::new("own".into(), DataType::UInt32),
    ]);
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut writer = ParquetWriter::new(file)
        .with_compression(ParquetCompression::Lz4Raw)
        .batched(&schema)
        .map_err(|e| broken(path, e))?;
    let mut group = DayColumns::default();
    for (_, s) in singles {
        for d in &s.days {
            group.day.push(d.day);
            group.first.push(d.first);
            group.last.push(d.last);
            group.events.push(u32::from(d.events));
            group.own.push(u32::from(d.own));
        }
        if group.day.len() >= crate::frame::PARQUET_GROUP_ROWS {
            writer
                .write_batch(&std::mem::take(&mut group).frame(path)?)
                .map_err(|e| broken(path, e))?;
        }
    }
    if !group.day.is_empty() || singles.is_empty() {
        writer
            .write_batch(&group.frame(path)?)
            .map_err(|e| broken(path, e))?;
    }
    writer.finish().map_err(|e| broken(path, e))
}

/// One row group of the days' table, being built.
#[derive(Default)]
struct DayColumns {
    day: Vec<i32>,
    first: Vec<u32>,
    last: Vec<u32>,
    events: Vec<u32>,
    own: Vec<u32>,
}

impl DayColumns {
    fn frame(self, path: &Path) -> Result<DataFrame> {
        let columns = vec![
            column("day", self.day),
            column("first", self.first),
            column("last", self.last),
            column("events", self.events),
            column("own", self.own),
        ];
        crate::frame::table_of(columns).map_err(|e| broken(path, e))
    }
}

/// Reads what [`write`] wrote. (Its three tables read side by side took as long at 8.7M events.)
pub fn read(dir: &Path) -> Result<(Reduced, Symbols)> {
    read_in(dir, BATCH_ROWS)
}

/// [`read`], the cells' and the days' tables read `batch_rows` rows (whole row groups) at a time.
pub(super) fn read_in(dir: &Path, batch_rows: usize) -> Result<(Reduced, Symbols)> {
    // Side by side, as written (see [`write`]).
    let (symbols, (cells, singles)) = rayon::join(
        || read_symbols(dir),
        || {
            rayon::join(
                || read_cells(dir, batch_rows),
                || read_singles(dir, batch_rows),
            )
        },
    );
    let (symbols, cells, singles) = (symbols?, cells?, singles?);
    let mut reduced = Reduced::default();
    let accounts = dir.join("accounts.roaring");
    let bytes = std::fs::read(&accounts).map_err(|e| Error::io(&accounts, e))?;
    reduced.accounts = bitmap(&accounts, &bytes)?;
    let t = Stored::load(dir.join("orphans.parquet"))?;
    let (day, sets) = (t.i64s("day")?, t.blobs("accounts")?);
    for i in 0..t.df.height() {
        let set = bitmap(&t.path, need(&t.path, sets.get(i))?)?;
        reduced.orphans.insert(need(&t.path, day.get(i))?, set);
    }
    for (k, (cells, singles)) in cells.into_iter().zip(singles).enumerate() {
        reduced.kinds[k] = Entities { cells, singles };
    }
    if !within(&reduced, symbols.len() as u64) {
        return Err(broken(dir, "a code beyond the symbol table"));
    }
    if !ordered(&reduced) {
        return Err(broken(dir, "records out of entity and day order"));
    }
    Ok((reduced, symbols))
}

fn read_symbols(dir: &Path) -> Result<Symbols> {
    let stored = Stored::load(dir.join("symbols.parquet"))?;
    let ids = stored.strs("id")?;
    let mut symbols = Symbols::with_capacity(ids.len());
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

/// Each kind's cells, a batch of rows at a time, each batch's built side by side.
fn read_cells(dir: &Path, batch_rows: usize) -> Result<[Vec<Cell>; 4]> {
    let path = dir.join("cells.parquet");
    let mut out: [Vec<Cell>; 4] = Default::default();
    Stored::batches(&path, batch_rows, |t| {
        for (all, some) in out.iter_mut().zip(cells_of(&t)?) {
            all.extend(some);
        }
        Ok(())
    })?;
    Ok(out)
}

/// The cells of one batch of the cells' table, by kind.
fn cells_of(t: &Stored) -> Result<[Vec<Cell>; 4]> {
    let path = t.path.as_path();
    let (kind, entity, day) = (t.u32s("kind")?, t.u32s("entity")?, t.i64s("day")?);
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
    by_kind(path, &kind, cell)
}

/// Each kind's rows of a table (`kind` of each row), each row built by `row` from its index,
/// side by side, in order.
fn by_kind<T: Send>(
    path: &Path,
    kind: &UInt32Chunked,
    row: impl Fn(usize) -> Result<T> + Sync,
) -> Result<[Vec<T>; 4]> {
    let mut rows: [Vec<u32>; 4] = Default::default();
    for (i, k) in kind.iter().enumerate() {
        rows[kind_index(path, k)?].push(i as u32);
    }
    let mut out: [Vec<T>; 4] = Default::default();
    for (k, rows) in rows.iter().enumerate() {
        out[k] = (rows.par_iter())
            .map(|&i| row(i as usize))
            .collect::<Result<_>>()?;
    }
    Ok(out)
}

/// Each kind's one-account records: the records' table whole (a few columns a record), their
/// days a batch at a time, each record built, side by side, once the batches read hold all its
/// days. Side by side rather than one after another: the singles took 1.95 s against 1.31 s of a
/// nightly run over the 85.9M-event state when built from whole tables (twenty-first session).
fn read_singles(dir: &Path, batch_rows: usize) -> Result<[Vec<Single>; 4]> {
    let t = Stored::load(dir.join("singles.parquet"))?.single_chunk();
    let path = t.path.as_path();
    let (kind, entity, account) = (t.u32s("kind")?, t.u32s("entity")?, t.u32s("account")?);
    let (number, counts) = (t.i64s("number")?, t.u32s("days")?);
    // Where each record's days start in the days' table, in the records' order.
    let mut starts = Vec::with_capacity(counts.len() + 1);
    starts.push(0usize);
    for count in counts.iter() {
        let count = need(path, count)? as usize;
        if count == 0 {
            return Err(broken(path, "a record's days are missing"));
        }
        starts.push(starts[starts.len() - 1] + count);
    }
    let kinds: Vec<usize> = (kind.iter().zip(entity.iter().zip(account.iter())))
        .map(|(k, (e, a))| {
            // Present, like every field of a day (checked as the days are read).
            need(path, e.zip(a))?;
            kind_index(path, k)
        })
        .collect::<Result<_>>()?;
    let dpath = dir.join("single_days.parquet");
    // The days read and not yet given to a record, from day `held_from` of the table on.
    let (mut held, mut held_from, mut done) = (Vec::<SingleDay>::new(), 0usize, 0usize);
    let mut out: [Vec<Single>; 4] = Default::default();
    Stored::batches(&dpath, batch_rows, |t| {
        held.extend(days_of(&t)?);
        let read = held_from + held.len();
        if read > starts[starts.len() - 1] {
            return Err(broken(path, "days of no record"));
        }
        let whole = done + starts[done + 1..].partition_point(|&end| end <= read);
        let built: Vec<Single> = (done..whole)
            .into_par_iter()
            .map(|i| Single {
                entity: entity.get(i).unwrap_or_default(),
                account: account.get(i).unwrap_or_default(),
                number: number.get(i),
                days: held[starts[i] - held_from..starts[i + 1] - held_from].to_vec(),
            })
            .collect();
        for (i, single) in (done..whole).zip(built) {
            out[kinds[i]].push(single);
        }
        held.drain(..starts[whole] - held_from);
        (held_from, done) = (starts[whole], whole);
        Ok(())
    })?;
    if done < kinds.len() {
        return Err(broken(path, "a record's days are missing"));
    }
    Ok(out)
}

/// One batch of the days' table, in order.
fn days_of(d: &Stored) -> Result<Vec<SingleDay>> {
    let dpath = d.path.as_path();
    let day = d.get("day", Column::i32)?;
    let (first, last) = (d.u32s("first")?, d.u32s("last")?);
    let (events, own) = (d.u32s("events")?, d.u32s("own")?);
    let small = |v: Option<u32>| -> Result<u16> {
        u16::try_from(need(dpath, v)?).map_err(|_| broken(dpath, "a day's count past 16 bits"))
    };
    (0..d.df.height())
        .into_par_iter()
        .map(|j| {
            Ok(SingleDay {
                day: need(dpath, day.get(j))?,
                first: need(dpath, first.get(j))?,
                last: need(dpath, last.get(j))?,
                events: small(events.get(j))?,
                own: small(own.get(j))?,
            })
        })
        .collect()
}

/// Whether each kind's cells are in (entity, day) order and its records in entity and day
/// order, as a merge walks them.
fn ordered(r: &Reduced) -> bool {
    r.kinds.iter().all(|k| {
        k.cells
            .windows(2)
            .all(|w| (w[0].entity, w[0].day) < (w[1].entity, w[1].day))
            && k.singles.windows(2).all(|w| w[0].entity < w[1].entity)
            && k.singles
                .iter()
                .all(|s| s.days.windows(2).all(|w| w[0].day < w[1].day))
    })
}

/// Whether every code the records name is below `n`.
fn within(r: &Reduced, n: u64) -> bool {
    let set = |b: &RoaringBitmap| b.max().is_none_or(|m| u64::from(m) < n);
    let code = |c: u32| u64::from(c) < n;
    let numbered = |x: &Option<Numbered>| x.is_none_or(|x| code(x.account));
    set(&r.accounts)
        && r.orphans.values().all(set)
        && r.kinds.iter().all(|k| {
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

fn kind_index(path: &Path, kind: Option<u32>) -> Result<usize> {
    match kind {
        Some(k) if (k as usize) < KINDS.len() => Ok(k as usize),
        _ => Err(broken(path, "an unknown entity kind")),
    }
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
