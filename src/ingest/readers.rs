//! Record readers for the canonical CSV and JSON-lines formats. They only split records into
//! named string fields; typing happens in [`crate::normalize`].

use std::io::BufRead;
use std::path::Path;

use polars::prelude::DataFrame;

use super::{FileStats, Format, Reject, decompress, shorten};
use crate::normalize::{EventColumns, Field, RawRow, TimeParser};

/// Reads one file completely. I/O failures part-way (a truncated `.gz`) become a reject at the line
/// where reading stopped, so the records already read still count.
pub fn read_file(path: &Path, format: Format, file_idx: u32, time: &TimeParser) -> FileResult {
    let mut sink = Sink {
        cols: EventColumns::with_capacity(START_ROWS),
        frames: Vec::new(),
        error: None,
        stats: FileStats {
            file: path.display().to_string(),
            format: format.name().to_string(),
            ..FileStats::default()
        },
        rejects: Vec::new(),
        file_idx,
        time,
    };
    match decompress::open(path) {
        Ok((_, reader)) => match format {
            Format::Csv => read_csv(reader, &mut sink),
            Format::JsonLines => read_jsonl(reader, &mut sink),
        },
        Err(e) => sink.reject(0, format!("cannot open: {e}"), b"", false),
    }
    sink.flush();
    FileResult {
        frames: sink.frames,
        stats: sink.stats,
        rejects: sink.rejects,
        error: sink.error,
    }
}

/// One file's events as frames of at most [`CHUNK_ROWS`] rows, plus its reconciliation.
pub struct FileResult {
    pub frames: Vec<DataFrame>,
    pub stats: FileStats,
    pub rejects: Vec<Reject>,
    pub error: Option<crate::Error>,
}

/// Rows buffered as Rust strings before they move into a polars frame. Keeps the per-thread
/// staging memory bounded whatever the file size (a `String` costs ~3× its Arrow form).
const CHUNK_ROWS: usize = 128 * 1024;
/// Initial buffer size: small files (CloudTrail trees hold thousands) must not each reserve a chunk.
const START_ROWS: usize = 4096;

struct Sink<'a> {
    cols: EventColumns,
    frames: Vec<DataFrame>,
    error: Option<crate::Error>,
    stats: FileStats,
    rejects: Vec<Reject>,
    file_idx: u32,
    time: &'a TimeParser,
}

impl Sink<'_> {
    fn row(&mut self, line: u64, row: &RawRow, raw: impl FnOnce() -> Vec<u8>) {
        self.stats.records += 1;
        match self.cols.push(row, self.time, self.file_idx, line) {
            Ok(()) => self.stats.parsed += 1,
            Err(reason) => self.reject(line, reason, &raw(), true),
        }
        if self.cols.len() >= CHUNK_ROWS {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.cols.is_empty() || self.error.is_some() {
            return;
        }
        match std::mem::replace(&mut self.cols, EventColumns::with_capacity(START_ROWS))
            .into_frame()
        {
            Ok(df) => self.frames.push(df),
            Err(e) => self.error = Some(e),
        }
    }

    /// `counted` says whether the record was already counted in `records`.
    fn reject(&mut self, line: u64, reason: String, raw: &[u8], counted: bool) {
        if !counted {
            self.stats.records += 1;
        }
        self.stats.rejected += 1;
        self.rejects.push(Reject {
            file: self.stats.file.clone(),
            line,
            reason,
            raw: shorten(raw),
        });
    }
}

fn read_csv(reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(reader);
    let headers = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return sink.reject(1, format!("cannot read header: {e}"), b"", false),
    };
    let fields: Vec<Option<Field>> = headers
        .iter()
        .map(|h| std::str::from_utf8(h).ok().and_then(Field::from_name))
        .collect();
    let mut record = csv::ByteRecord::new();
    loop {
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let fatal = matches!(e.kind(), csv::ErrorKind::Io(_));
                sink.reject(line, format!("unreadable record: {e}"), b"", false);
                if fatal {
                    break;
                }
                continue;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        let raw = || record.iter().collect::<Vec<_>>().join(&b","[..]);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            sink.stats.blank += 1;
            continue;
        }
        if record.len() != fields.len() {
            let reason = format!("expected {} columns, found {}", fields.len(), record.len());
            sink.reject(line, reason, &raw(), false);
            continue;
        }
        let mut row = RawRow::default();
        let mut bad_utf8 = false;
        for (value, field) in record.iter().zip(&fields) {
            let Some(field) = field else { continue };
            match std::str::from_utf8(value) {
                Ok(s) => row.set(*field, s),
                Err(_) => bad_utf8 = true,
            }
        }
        if bad_utf8 {
            sink.reject(line, "invalid UTF-8".into(), &raw(), false);
            continue;
        }
        sink.row(line, &row, raw);
    }
}

fn read_jsonl(mut reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let mut buf = Vec::with_capacity(1024);
    let mut line = 0u64;
    loop {
        buf.clear();
        line += 1;
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                sink.reject(
                    line,
                    format!("read failed (truncated or corrupt file?): {e}"),
                    b"",
                    false,
                );
                break;
            }
        }
        let text = buf.trim_ascii();
        if text.is_empty() {
            sink.stats.blank += 1;
            continue;
        }
        match super::json_row::parse(text) {
            Ok(row) => sink.row(line, &row, || text.to_vec()),
            Err(reason) => sink.reject(line, reason, text, false),
        }
    }
}
