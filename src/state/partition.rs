//! One input file's events as a Parquet file, and back. Strings are stored as strings, never as
//! the frame's codes (polars' process-wide dictionary, the run's token table), which mean nothing
//! to the next process: token ids as plain strings, the other string columns dictionary-encoded
//! (Parquet's own encoding, which any Parquet reader reads as strings), which polars reads
//! straight back into the frame's categories. The file index is not stored either: it is the
//! file's place among the files of the run that reads the state, given when the partition is read
//! back.
//!
//! Against plain strings coded row by row through a table of our own (the first layout, still
//! read), on the 10M benchmark's 120 nights: building the state 16.1 → 13.2 s, a nightly run's
//! peak 1.57–1.61 → 1.31–1.33 GB (read-back's own peak 1.59 → 0.87 GB), read-back 2.3–2.7 →
//! 2.2–2.5 s only, because polars still looks every row up in its shared table (a third of the
//! run in `perf`): `docs/performance.md`, thirteenth session.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::{FileMetadata, ParallelStrategy, ParquetReader};
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

/// A run of consecutive row groups of one partition, read back in one call (see [`batches`]).
pub struct Batch {
    path: PathBuf,
    /// The partition's metadata with this batch's row groups only.
    metadata: Arc<FileMetadata>,
}

/// A partition's row groups (~267K rows each, as the partition was written) in batches of a few,
/// to be read back by [`read`], each on any thread. Read whole, a 14M-row partition held all its
/// pages and token ids as strings at once, and came back as one chunk, which made every pass
/// over the frame one huge unit of work: a nightly run over the 85.9M-event state (six
/// partitions) peaked at 9.76 GB; batch by batch, 6.90 GB, in 111 s against 117 s
/// (`docs/scale.md`, nineteenth session).
///
/// Each batch's reader is given metadata naming its own row groups alone. Given the whole
/// file's and a slice, polars' reader walked every row group before the slice too: on the
/// 85.9M-event state the n-th batch of a partition took 1.0 s plus 0.1–0.15 s per batch before
/// it, and reading back took 41.5 s (`docs/performance.md`, twenty-first session).
pub fn batches(path: &Path) -> Result<Vec<Batch>> {
    batches_of(path, BATCH_ROWS)
}

/// [`batches`] of at most `bound` rows (but at least one row group).
fn batches_of(path: &Path, bound: usize) -> Result<Vec<Batch>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = ParquetReader::new(file)
        .get_metadata()
        .cloned()
        .map_err(|e| broken(path, e))?;
    let groups: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
    let mut out = Vec::new();
    let mut first = 0;
    for run in runs(&groups, bound) {
        let mut part = (*metadata).clone();
        part.row_groups = metadata.row_groups[first..first + run.len()].to_vec();
        part.num_rows = run.iter().sum();
        first += run.len();
        out.push(Batch {
            path: path.to_path_buf(),
            metadata: Arc::new(part),
        });
    }
    Ok(out)
}

/// Reads a batch back into the event frame's layout and codes, as rows of file `file_idx`, one
/// frame per row group. `dict` carries from one batch to the next on a thread, as ingest's
/// dictionaries do from file to file: a principal or account seen in every night is placed in
/// polars' shared dictionary once per thread, not once per night.
pub fn read(
    batch: &Batch,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
) -> Result<Vec<DataFrame>> {
    if dict.len() > crate::normalize::columns::MAX_FILE_STRINGS {
        dict.clear();
    }
    let path = &batch.path;
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    // On this thread only: batches are read side by side on rayon's workers, and a worker that
    // blocks on polars' own pool steals the next batch meanwhile, one stack frame deeper each
    // time (120 nights overflowed 192 KiB stacks; `normalize::cold` met the same).
    let mut reader = ParquetReader::new(file).read_parallel(ParallelStrategy::None);
    reader.set_metadata(batch.metadata.clone());
    let stored = reader.finish().map_err(|e| broken(path, e))?;
    let mut out = Vec::with_capacity(batch.metadata.row_groups.len().max(1));
    let mut start = 0;
    for group in batch.metadata.row_groups.iter().map(|g| g.num_rows()) {
        let chunk = stored.slice(start as i64, group);
        start += group;
        out.push(restore(path, &chunk, file_idx, tokens, dict)?);
    }
    if out.is_empty() {
        out.push(restore(path, &stored, file_idx, tokens, dict)?);
    }
    Ok(out)
}

/// Rows read in one call: each call decodes the column dictionaries of its row groups again
/// (one call per row group took twice the CPU over the 85.9M-event state), and holds its pages
/// and token strings until its chunks are restored.
const BATCH_ROWS: usize = 2 << 20;

/// Consecutive row groups in runs of at most `bound` rows (at least one group each; one empty
/// run for a file without row groups).
fn runs(groups: &[usize], bound: usize) -> Vec<&[usize]> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, &n) in groups.iter().enumerate() {
        if i > start && rows + n > bound {
            out.push(&groups[start..i]);
            (start, rows) = (i, 0);
        }
        rows += n;
    }
    out.push(&groups[start..]);
    out
}

/// One stored chunk in the event frame's layout and codes.
fn restore(
    path: &Path,
    stored: &DataFrame,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
) -> Result<DataFrame> {
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
        } else if have.dtype() == want.dtype() {
            // Dictionary-encoded strings come back in the frame's own categories.
            have.clone()
        } else if matches!(want.dtype(), DataType::Categorical(..)) {
            // Plain strings (a state written before this was so): through a table of this
            // partition's own, as ingest does, so each distinct string reaches polars' shared
            // dictionary once, not once a row (a plain cast spent 36 % of a nightly run there).
            let have = have.cast(&DataType::String).map_err(|e| broken(path, e))?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Discovered, ReadOptions, read_events};
    use crate::normalize::TimeParser;

    /// A partition reads back as the rows it was written from, whether its strings are
    /// dictionary-encoded (written now) or plain (written by the first version of the state).
    #[test]
    fn partitions_read_back_as_written_in_both_string_layouts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("events.jsonl");
        let mut text = String::new();
        for i in 0..3000 {
            text.push_str(&format!(
                "{{\"timestamp\":\"2025-03-0{}T10:{:02}:00Z\",\"event_type\":\"access\",\"principal\":\"u{}\",\"credential_id\":\"k{}\",\"token_id\":\"t{}\",\"source_ip\":\"10.0.0.{}\",\"target_account\":\"C{}\",\"success\":{}}}\n",
                1 + i % 9,
                i % 60,
                i % 17,
                i % 5,
                i / 3,
                i % 200,
                i % 700,
                i % 11 != 0
            ));
        }
        text.push_str("{\"timestamp\":\"2025-03-01T00:00:00Z\",\"event_type\":\"login\"}\n");
        std::fs::write(&input, text).expect("write input");
        let opts =
            ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).expect("options");
        let found = Discovered {
            events: vec![input],
            ..Discovered::default()
        };
        let ingested = read_events(&found, &opts, false).expect("reads");
        let mut events = ingested.events.clone();
        events.rechunk_mut();
        let encoded = dir.path().join("p1.parquet");
        write(&encoded, &events, &ingested.tokens).expect("written");
        // The first version's layout: every string column as plain strings.
        let plain = dir.path().join("p0.parquet");
        write(&plain, &events, &ingested.tokens).expect("written");
        let mut df = ParquetReader::new(File::open(&plain).expect("open"))
            .finish()
            .expect("read");
        for name in df.get_column_names_owned() {
            let column = df.column(&name).expect("column");
            if matches!(column.dtype(), DataType::Categorical(..)) {
                let strings = column.cast(&DataType::String).expect("strings");
                df.with_column(strings).expect("replaced");
            }
        }
        ParquetWriter::new(File::create(&plain).expect("create"))
            .finish(&mut df)
            .expect("rewritten");
        // Several row groups: one chunk back for each.
        let grouped = dir.path().join("p2.parquet");
        let mut df = ParquetReader::new(File::open(&encoded).expect("open"))
            .finish()
            .expect("read");
        ParquetWriter::new(File::create(&grouped).expect("create"))
            .with_row_group_size(Some(500))
            .finish(&mut df)
            .expect("rewritten");
        // Batches of one row group each, read in reverse: each names its own rows.
        let batched = batches_of(&grouped, 700).expect("batches");
        assert!(batched.len() > 2, "{} batch(es)", batched.len());
        let mut dict = FileDict::default();
        let mut parts: Vec<Vec<DataFrame>> = (batched.iter().rev())
            .map(|b| read(b, 0, &ingested.tokens, &mut dict).expect("read back"))
            .collect();
        parts.reverse();
        let mut back = crate::frame::stack(parts.into_iter().flatten().map(Ok), "test")
            .expect("stacked")
            .expect("rows");
        back.rechunk_mut();
        assert!(back.equals_missing(&events), "batch by batch");
        for path in [&encoded, &plain, &grouped] {
            let mut dict = FileDict::default();
            let batched = batches(path).expect("batches");
            let chunks: Vec<DataFrame> = (batched.iter())
                .flat_map(|b| read(b, 0, &ingested.tokens, &mut dict).expect("read back"))
                .collect();
            let mut back = crate::frame::stack(chunks.into_iter().map(Ok), "test")
                .expect("stacked")
                .expect("rows");
            back.rechunk_mut();
            assert!(back.equals_missing(&events), "{}", path.display());
        }
    }

    #[test]
    fn runs_hold_whole_row_groups_up_to_the_bound() {
        let m = 1 << 20;
        let groups = [m, m, m, 3 * m, 10, 10];
        let got: Vec<Vec<usize>> = runs(&groups, BATCH_ROWS)
            .into_iter()
            .map(<[usize]>::to_vec)
            .collect();
        assert_eq!(got, vec![vec![m, m], vec![m], vec![3 * m], vec![10, 10]]);
        assert_eq!(runs(&[0], BATCH_ROWS), vec![&[0][..]]);
        let none: &[usize] = &[];
        assert_eq!(runs(none, BATCH_ROWS), vec![none]);
    }
}
