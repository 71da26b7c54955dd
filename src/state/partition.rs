//! One input file's events as a Parquet file, and back. Strings are stored as strings: the
//! frame's codes (polars' process-wide dictionary, the run's token table) mean nothing to the
//! next process. The file index is not stored either: it is the file's place among the files of
//! the run that reads the state, given when the partition is read back.

use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::ParquetReader;
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};

use crate::error::{Error, FrameContext, Result};
use crate::normalize::dictionary::{FileDict, NULL};
use crate::normalize::schema::col::{FILE, TOKEN};
use crate::normalize::{EventColumns, Tokens};

/// Writes `events` (one file's rows of the event frame) to `path`.
pub fn write(path: &Path, events: &DataFrame, tokens: &Tokens) -> Result<()> {
    let mut columns = Vec::with_capacity(events.width());
    for column in events.columns() {
        let name = column.name().as_str();
        if name == FILE {
            continue;
        }
        let stored = if name == TOKEN {
            let codes = column.u32().stage("storing token ids")?;
            let texts: StringChunked = codes
                .iter()
                .map(|code| code.and_then(|c| tokens.text(c)))
                .collect();
            texts.with_name(TOKEN.into()).into_column()
        } else if matches!(column.dtype(), DataType::Categorical(..)) {
            column.cast(&DataType::String).stage("storing strings")?
        } else {
            column.clone()
        };
        columns.push(stored);
    }
    let mut df = DataFrame::new(events.height(), columns).stage("storing a partition")?;
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Zstd(None))
        .finish(&mut df)
        .map_err(|e| broken(path, e))?;
    Ok(())
}

/// Reads a partition back into the event frame's layout and codes, as rows of file `file_idx`.
/// `dict` carries from one partition to the next on a thread, as ingest's dictionaries do
/// from file to file: a principal or account seen in every night is placed in polars' shared
/// dictionary once per thread, not once per night.
pub fn read(path: &Path, file_idx: u32, tokens: &Tokens, dict: &mut FileDict) -> Result<DataFrame> {
    if dict.len() > crate::normalize::columns::MAX_FILE_STRINGS {
        dict.clear();
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let stored = ParquetReader::new(file)
        .finish()
        .map_err(|e| broken(path, e))?;
    let rows = stored.height();
    let layout = EventColumns::new().take_frame()?;
    let mut columns = Vec::with_capacity(layout.width());
    for want in layout.columns() {
        let name = want.name().as_str();
        if name == FILE {
            columns.push(Column::new(FILE.into(), vec![file_idx; rows]));
            continue;
        }
        let have = stored.column(name).map_err(|e| broken(path, e))?;
        let column = if name == TOKEN {
            let texts = have.str().map_err(|e| broken(path, e))?;
            let present: Vec<&str> = texts.iter().flatten().collect();
            let mut codes = tokens
                .place(present.iter().copied())
                .stage("placing token ids")?
                .into_iter();
            let restored: UInt32Chunked =
                texts.iter().map(|t| t.and_then(|_| codes.next())).collect();
            restored.with_name(TOKEN.into()).into_column()
        } else if matches!(want.dtype(), DataType::Categorical(..)) {
            // Through a table of this partition's own, as ingest does: each distinct string
            // reaches polars' shared dictionary once, not once a row (a plain cast spent 36 % of
            // a nightly run in that shared table; see `docs/performance.md`).
            let texts = have.str().map_err(|e| broken(path, e))?;
            let mut codes = Vec::with_capacity(rows);
            for t in texts.iter() {
                codes.push(match t {
                    None => NULL,
                    Some(s) => dict.code(dict.hash(s), s).stage("coding strings")?,
                });
            }
            dict.column(name, &codes).stage("coding strings")?
        } else {
            have.cast(want.dtype()).map_err(|e| broken(path, e))?
        };
        columns.push(column);
    }
    DataFrame::new(rows, columns).map_err(|e| broken(path, e))
}

fn broken(path: &Path, e: PolarsError) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: format!("partition unreadable: {e}"),
    }
}
