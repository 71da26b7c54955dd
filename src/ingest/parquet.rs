//! Parquet files: the canonical schema, or OCSF as AWS Security Lake stores it (and anything a
//! JSON profile maps). Read column-wise with polars — only the columns the mapping names — in
//! slices of rows, so memory is bounded by a slice, not by the file. A row of a profile-mapped
//! file becomes the JSON object it stands for (structs as objects, lists as arrays) and goes
//! through the same profile as the JSON export of that source; "line" is the row's 1-based
//! position in the file.

use std::borrow::Cow;
use std::fs::File;
use std::path::Path;

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::{ParallelStrategy, ParquetReader};
use serde_json::{Map, Number, Value};

use super::ReadOptions;
use super::readers::Sink;
use crate::normalize::profile::{Profile, Record};
use crate::normalize::{Field, RawRow};

/// The first bytes of every Parquet file.
pub const MAGIC: &[u8] = b"PAR1";

thread_local! {
    /// Set while [`read_contained`] runs on this thread: a panic here is the file's, reported
    /// with it, and the process-wide panic hook stays quiet about it.
    static CONTAINED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// [`read_contained`] calls in flight: the decoder also runs on polars' own worker threads,
/// whose panics travel back to the caller.
static IN_FLIGHT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// [`read`], with a panic of the decoder caught and returned as the reason the file could not
/// be read. polars' Parquet decoder panics on some malformed metadata instead of returning an
/// error (the `file_parquet` fuzz target found `thrift bool field` in polars-parquet 0.55.2's
/// footer decoder within seconds, then an `unwrap` of a page's encoding on a polars worker); a
/// corrupt file must end itself, not the run, and must not print a panic and a backtrace as if
/// audithound had crashed. The hook is quiet for panics on this thread and, while a read is in
/// flight, on polars' worker threads (named `polars-N`): both come back here as the payload. (A
/// panic of some other polars task at that very moment would go unprinted too; it still ends
/// the run.) The message, which may quote the file, is cut like a rejected line's text.
pub fn read_contained(
    path: &Path,
    opts: &ReadOptions,
    sink: &mut Sink,
) -> Result<Result<String, String>, String> {
    static QUIET: std::sync::Once = std::sync::Once::new();
    QUIET.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let polars_worker = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("polars"));
            let quiet = CONTAINED.with(std::cell::Cell::get)
                || (polars_worker && IN_FLIGHT.load(std::sync::atomic::Ordering::SeqCst) > 0);
            if !quiet {
                default(info);
            }
        }));
    });
    IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let was = CONTAINED.with(|c| c.replace(true));
    let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| read(path, opts, sink)));
    CONTAINED.with(|c| c.set(was));
    IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    read.map_err(|panic| {
        let message = (panic.downcast_ref::<&str>().copied())
            .or(panic.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("no message");
        let message = super::shorten(message.as_bytes());
        format!("the Parquet reader failed on this file (corrupt?): {message}")
    })
}

/// Rows decoded at once.
const SLICE_ROWS: usize = 64 * 1024;

/// How a file's rows are mapped.
enum Mapping<'a> {
    Canonical,
    Profile(&'a Profile),
}

/// Reads one Parquet file into `sink`; returns the format name for the file's totals, or why it
/// is not read (no mapping recognises its columns).
pub fn read(path: &Path, opts: &ReadOptions, sink: &mut Sink) -> Result<String, String> {
    let open = || File::open(path).map_err(|e| format!("cannot open: {e}"));
    let mut reader = match open() {
        Ok(f) => ParquetReader::new(f),
        Err(reason) => {
            sink.read_failed(0, reason);
            return Ok("parquet".into());
        }
    };
    let (names, rows) = match reader.schema().and_then(|s| Ok((s, reader.num_rows()?))) {
        Ok((schema, rows)) => (
            schema
                .iter_names()
                .map(|n| n.to_string())
                .collect::<Vec<_>>(),
            rows,
        ),
        Err(e) => {
            sink.read_failed(0, format!("not a readable Parquet file: {e}"));
            return Ok("parquet".into());
        }
    };
    let has = |n: &str| names.iter().any(|c| c == n);
    let columns = ColumnNames(&names);
    let user = opts.profile.as_ref().filter(|p| p.format == "json");
    // As for JSON (`sniff`): a user profile that recognises the columns, the canonical schema, a
    // built-in source, and last a user profile that recognises nothing else's.
    let (mapping, label) = if let Some(p) = user.filter(|p| p.recognizes(&columns)) {
        (Mapping::Profile(p), format!("parquet:profile:{}", p.name))
    } else if has("timestamp") && has("event_type") {
        (Mapping::Canonical, "parquet".to_string())
    } else if let Some(p) = opts.vendors.iter().find(|p| p.recognizes(&columns)) {
        (Mapping::Profile(p), format!("parquet:{}", p.name))
    } else if let Some(p) = user {
        (Mapping::Profile(p), format!("parquet:profile:{}", p.name))
    } else {
        return Err(
            "Parquet without timestamp/event_type columns or a known source's (use --profile)"
                .into(),
        );
    };
    // Only the columns the mapping reads.
    let wanted: Vec<String> = match &mapping {
        Mapping::Canonical => names
            .iter()
            .filter(|n| Field::from_name(n).is_some())
            .cloned()
            .collect(),
        Mapping::Profile(p) => {
            let tops = p.top_level_keys();
            names
                .iter()
                .filter(|n| tops.iter().any(|t| t == *n))
                .cloned()
                .collect()
        }
    };
    let mut offset = 0;
    while offset < rows {
        let len = SLICE_ROWS.min(rows - offset);
        let df = open().and_then(|f| {
            // On this file's task only: files are read side by side on rayon's workers, and a
            // worker that blocks on polars' own pool steals the next file meanwhile, one stack
            // frame deeper each time (400 small files overflowed 128 KiB stacks).
            ParquetReader::new(f)
                .read_parallel(ParallelStrategy::None)
                .with_columns(Some(wanted.clone()))
                .with_slice(Some((offset, len)))
                .finish()
                .map_err(|e| format!("Parquet rows {offset}..{}: {e}", offset + len))
        });
        let df = match df.and_then(temporal_as_ms) {
            Ok(df) => df,
            Err(reason) => {
                sink.read_failed(offset as u64 + 1, reason);
                break;
            }
        };
        match &mapping {
            Mapping::Canonical => {
                if let Err(reason) = canonical_rows(&df, offset, sink) {
                    sink.read_failed(offset as u64 + 1, reason);
                    break;
                }
            }
            Mapping::Profile(p) => {
                for i in 0..df.height() {
                    let line = (offset + i) as u64 + 1;
                    let v = Value::Object(row_object(&df, i));
                    sink.mapped(line, p.apply(&v), || v.to_string().into_bytes());
                }
            }
        }
        offset += len;
    }
    Ok(label)
}

/// Timestamp and date columns as epoch milliseconds (Int64): a zone-less Parquet timestamp is UTC
/// as Parquet defines it, not `--timezone`, and OCSF's `time` is epoch ms in its JSON form too.
fn temporal_as_ms(mut df: DataFrame) -> Result<DataFrame, String> {
    let temporal: Vec<String> = df
        .columns()
        .iter()
        .filter(|c| matches!(c.dtype(), DataType::Datetime(..) | DataType::Date))
        .map(|c| c.name().to_string())
        .collect();
    for name in temporal {
        let ms = df
            .column(&name)
            .and_then(|c| c.cast(&DataType::Datetime(TimeUnit::Milliseconds, None)))
            .and_then(|c| c.cast(&DataType::Int64))
            .map_err(|e| format!("column {name}: {e}"))?;
        df.with_column(ms)
            .map_err(|e| format!("column {name}: {e}"))?;
    }
    Ok(df)
}

/// Canonical columns as text, a whole column at a time (polars casts), then row by row into the
/// sink.
fn canonical_rows(df: &DataFrame, offset: usize, sink: &mut Sink) -> Result<(), String> {
    let mut columns: Vec<(Field, StringChunked)> = Vec::new();
    for c in df.columns() {
        let Some(field) = Field::from_name(c.name()) else {
            continue;
        };
        let text = c
            .cast(&DataType::String)
            .map_err(|e| format!("column {}: {e}", c.name()))?;
        let ca = text
            .str()
            .map_err(|e| format!("column {}: {e}", c.name()))?
            .rechunk()
            .into_owned();
        columns.push((field, ca));
    }
    let mut iters: Vec<_> = columns.iter().map(|(f, ca)| (*f, ca.iter())).collect();
    for i in 0..df.height() {
        let mut row = RawRow::default();
        for (field, it) in &mut iters {
            if let Some(Some(v)) = it.next() {
                row.set(*field, v);
            }
        }
        let line = (offset + i) as u64 + 1;
        sink.row(line, &row, || {
            Value::Object(row_object(df, i)).to_string().into_bytes()
        });
    }
    Ok(())
}

/// Column names as a record whose every column is present (for `recognize`).
struct ColumnNames<'a>(&'a [String]);

impl Record for ColumnNames<'_> {
    fn get(&self, path: &str) -> Option<Cow<'_, str>> {
        let top = path.split('.').next().unwrap_or(path);
        self.0.iter().any(|n| n == top).then_some(Cow::Borrowed(""))
    }
}

fn row_object(df: &DataFrame, i: usize) -> Map<String, Value> {
    df.columns()
        .iter()
        .map(|c| {
            let v = c.get(i).map_or(Value::Null, |av| json_of(&av));
            (c.name().to_string(), v)
        })
        .collect()
}

/// A Parquet value as the JSON value an export of the same record would hold. Timestamps become
/// epoch milliseconds, as OCSF writes `time`.
fn json_of(av: &AnyValue) -> Value {
    match av {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_string()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::Int8(_)
        | AnyValue::Int16(_)
        | AnyValue::Int32(_)
        | AnyValue::Int64(_)
        | AnyValue::UInt8(_)
        | AnyValue::UInt16(_)
        | AnyValue::UInt32(_)
        | AnyValue::UInt64(_) => av
            .extract::<i64>()
            .map(Value::from)
            .or_else(|| av.extract::<u64>().map(Value::from))
            .unwrap_or(Value::Null),
        AnyValue::Float32(_) | AnyValue::Float64(_) => av
            .extract::<f64>()
            .and_then(Number::from_f64)
            .map_or(Value::Null, Value::Number),
        AnyValue::List(s) => Value::Array(s.iter().map(|v| json_of(&v)).collect()),
        AnyValue::Struct(..) | AnyValue::StructOwned(..) => {
            let fields: Vec<String> = match av.dtype() {
                DataType::Struct(f) => f.iter().map(|f| f.name().to_string()).collect(),
                _ => Vec::new(),
            };
            let values: Vec<Value> = match av {
                AnyValue::StructOwned(payload) => payload.0.iter().map(json_of).collect(),
                other => other._iter_struct_av().map(|v| json_of(&v)).collect(),
            };
            Value::Object(fields.into_iter().zip(values).collect())
        }
        other => Value::String(other.to_string()),
    }
}
