//! The reduced records on disk, in a folder:
//!
//! - `symbols.parquet`: `id` (string), one row per code, in code order;
//! - `cells.parquet` and `singles.parquet`: one row per [`Cell`] and per [`Single`], with a
//!   `kind` column (the index in [`KINDS`](super::KINDS));
//! - `accounts.roaring`: every account an access row named;
//!
//! bitmaps in roaring's portable format (which the Java, C and Go libraries read), inside
//! binary columns; a one-account set as its 4-byte code (no portable bitmap is that short).
//! Everything read back is checked: a short or foreign field is an error naming the file, never
//! a panic. [`Reduced::overlapping`] is a merge's count, not stored. Not yet wired into
//! `--state` (see `docs/scale.md`).

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
use roaring::RoaringBitmap;

use super::cells::{Accounts, Cell, Numbered};
use super::single::{Single, SingleDay};
use super::{Entities, KINDS, Reduced, Symbols};
use crate::error::{Error, Result};

/// Writes `reduced` and its `symbols` into `dir` (created if missing); returns the bytes written.
pub fn write(dir: &Path, reduced: &Reduced, symbols: &Symbols) -> Result<u64> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let ids: Vec<&str> = (0..symbols.len() as u32).map(|c| symbols.name(c)).collect();
    let mut written = table(
        &dir.join("symbols.parquet"),
        vec![Column::new("id".into(), ids)],
    )?;
    let mut cells: Vec<(u32, &Cell)> = Vec::new();
    let mut singles: Vec<(u32, &Single)> = Vec::new();
    for (k, kind) in reduced.kinds.iter().enumerate() {
        cells.extend(kind.cells.iter().map(|c| (k as u32, c)));
        singles.extend(kind.singles.iter().map(|s| (k as u32, s)));
    }
    let u64s = |f: fn(&Cell) -> u64| cells.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
    let i64s = |f: fn(&Cell) -> i64| cells.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
    let blobs =
        |f: &dyn Fn(&Cell) -> Option<Vec<u8>>| cells.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
    written += table(
        &dir.join("cells.parquet"),
        vec![
            Column::new(
                "kind".into(),
                cells.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ),
            Column::new(
                "entity".into(),
                cells.iter().map(|(_, c)| c.entity).collect::<Vec<_>>(),
            ),
            Column::new("day".into(), i64s(|c| c.day)),
            Column::new("events".into(), u64s(|c| c.events)),
            Column::new("own_rows".into(), u64s(|c| c.own_rows)),
            Column::new("first".into(), i64s(|c| c.first)),
            Column::new("last".into(), i64s(|c| c.last)),
            Column::new("peak_hour".into(), u64s(|c| c.peak_hour)),
            Column::new(
                "accounts".into(),
                blobs(&|c| Some(accounts_bytes(&c.accounts))),
            ),
            Column::new(
                "walk".into(),
                blobs(&|c| (!c.walk.is_empty()).then(|| bitmap_bytes(&c.walk))),
            ),
            Column::new(
                "split_hours".into(),
                blobs(&|c| (!c.split_hours.is_empty()).then(|| hours_bytes(&c.split_hours))),
            ),
            Column::new(
                "first_numbered".into(),
                blobs(&|c| c.first_numbered.map(numbered_bytes)),
            ),
            Column::new(
                "last_numbered".into(),
                blobs(&|c| c.last_numbered.map(numbered_bytes)),
            ),
        ],
    )?;
    written += table(
        &dir.join("singles.parquet"),
        vec![
            Column::new(
                "kind".into(),
                singles.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            ),
            Column::new(
                "entity".into(),
                singles.iter().map(|(_, s)| s.entity).collect::<Vec<_>>(),
            ),
            Column::new(
                "account".into(),
                singles.iter().map(|(_, s)| s.account).collect::<Vec<_>>(),
            ),
            Column::new(
                "number".into(),
                singles.iter().map(|(_, s)| s.number).collect::<Vec<_>>(),
            ),
            Column::new(
                "events".into(),
                singles.iter().map(|(_, s)| s.events).collect::<Vec<_>>(),
            ),
            Column::new(
                "own_rows".into(),
                singles.iter().map(|(_, s)| s.own_rows).collect::<Vec<_>>(),
            ),
            Column::new(
                "days".into(),
                singles
                    .iter()
                    .map(|(_, s)| Some(days_bytes(&s.days)))
                    .collect::<Vec<_>>(),
            ),
        ],
    )?;
    let accounts = dir.join("accounts.roaring");
    let bytes = bitmap_bytes(&reduced.accounts);
    std::fs::write(&accounts, &bytes).map_err(|e| Error::io(&accounts, e))?;
    Ok(written + bytes.len() as u64)
}

/// Reads what [`write`] wrote.
pub fn read(dir: &Path) -> Result<(Reduced, Symbols)> {
    let path = dir.join("symbols.parquet");
    let df = load(&path)?;
    let mut symbols = Symbols::new();
    for id in field(&path, df.column("id").and_then(|c| c.str().cloned()))?.iter() {
        symbols.intern(id.unwrap_or_default())?;
    }
    let mut reduced = Reduced::default();
    let accounts = dir.join("accounts.roaring");
    let bytes = std::fs::read(&accounts).map_err(|e| Error::io(&accounts, e))?;
    reduced.accounts = bitmap(&accounts, &bytes)?;

    let path = dir.join("cells.parquet");
    let df = load(&path)?;
    let col = |name: &str| df.column(name);
    let u32s = |name: &str| field(&path, col(name).and_then(|c| c.u32().cloned()));
    let u64s = |name: &str| field(&path, col(name).and_then(|c| c.u64().cloned()));
    let i64s = |name: &str| field(&path, col(name).and_then(|c| c.i64().cloned()));
    let blobs = |name: &str| field(&path, col(name).and_then(|c| c.binary().cloned()));
    let (kind, entity, day) = (u32s("kind")?, u32s("entity")?, i64s("day")?);
    let (events, own, peak) = (u64s("events")?, u64s("own_rows")?, u64s("peak_hour")?);
    let (first, last) = (i64s("first")?, i64s("last")?);
    let (accounts, walk, split) = (blobs("accounts")?, blobs("walk")?, blobs("split_hours")?);
    let (first_n, last_n) = (blobs("first_numbered")?, blobs("last_numbered")?);
    let mut cells: [Vec<Cell>; 4] = Default::default();
    for i in 0..df.height() {
        let k = kind_index(&path, kind.get(i))?;
        let number = |b: Option<&[u8]>| b.map(|b| numbered(&path, b)).transpose();
        cells[k].push(Cell {
            entity: need(&path, entity.get(i))?,
            day: need(&path, day.get(i))?,
            events: need(&path, events.get(i))?,
            own_rows: need(&path, own.get(i))?,
            first: need(&path, first.get(i))?,
            last: need(&path, last.get(i))?,
            accounts: account_set(&path, need(&path, accounts.get(i))?)?,
            peak_hour: need(&path, peak.get(i))?,
            split_hours: split
                .get(i)
                .map(|b| hours(&path, b))
                .transpose()?
                .unwrap_or_default(),
            walk: walk
                .get(i)
                .map(|b| bitmap(&path, b))
                .transpose()?
                .unwrap_or_default(),
            first_numbered: number(first_n.get(i))?,
            last_numbered: number(last_n.get(i))?,
        });
    }

    let path = dir.join("singles.parquet");
    let df = load(&path)?;
    let col = |name: &str| df.column(name);
    let u32s = |name: &str| field(&path, col(name).and_then(|c| c.u32().cloned()));
    let u64s = |name: &str| field(&path, col(name).and_then(|c| c.u64().cloned()));
    let (kind, entity, account) = (u32s("kind")?, u32s("entity")?, u32s("account")?);
    let number = field(&path, col("number").and_then(|c| c.i64().cloned()))?;
    let (events, own) = (u64s("events")?, u64s("own_rows")?);
    let days = field(&path, col("days").and_then(|c| c.binary().cloned()))?;
    let mut singles: [Vec<Single>; 4] = Default::default();
    for i in 0..df.height() {
        singles[kind_index(&path, kind.get(i))?].push(Single {
            entity: need(&path, entity.get(i))?,
            account: need(&path, account.get(i))?,
            number: number.get(i),
            events: need(&path, events.get(i))?,
            own_rows: need(&path, own.get(i))?,
            days: single_days(&path, need(&path, days.get(i))?)?,
        });
    }
    for (k, (cells, singles)) in cells.into_iter().zip(singles).enumerate() {
        reduced.kinds[k] = Entities { cells, singles };
    }
    Ok((reduced, symbols))
}

fn table(path: &Path, columns: Vec<Column>) -> Result<u64> {
    let height = columns.first().map_or(0, |c| c.len());
    let mut df = DataFrame::new(height, columns).map_err(|e| broken(path, e))?;
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| broken(path, e))
}

fn load(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| broken(path, e))
}

fn broken(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: format!("reduced records unreadable: {e}"),
    }
}

fn field<T>(path: &Path, value: PolarsResult<T>) -> Result<T> {
    value.map_err(|e| broken(path, e))
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

fn days_bytes(days: &[SingleDay]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 * days.len());
    for d in days {
        out.extend(d.day.to_le_bytes());
        out.extend(d.first.to_le_bytes());
        out.extend(d.last.to_le_bytes());
    }
    out
}

fn single_days(path: &Path, b: &[u8]) -> Result<Vec<SingleDay>> {
    if b.is_empty() || !b.len().is_multiple_of(12) {
        return Err(broken(path, "a record's days are not 12 bytes each"));
    }
    Ok(b.chunks_exact(12)
        .map(|d| {
            let word = |i: usize| [d[i], d[i + 1], d[i + 2], d[i + 3]];
            SingleDay {
                day: i32::from_le_bytes(word(0)),
                first: u32::from_le_bytes(word(4)),
                last: u32::from_le_bytes(word(8)),
            }
        })
        .collect())
}
