//! Reading one file: open it (any compression), decide its format from content, and hand every
//! record to a [`Sink`] that normalises it or quarantines it. The canonical CSV and JSON-lines
//! readers live here; the other sources are in [`super::sources`].

use std::io::BufRead;
use std::path::Path;

use polars::prelude::DataFrame;

use super::sniff::{self, Format};
use super::{FileStats, ReadOptions, Reject, decompress, shorten, sources};
use crate::normalize::{Dictionaries, EventColumns, Field, RawRow, TimeParser};

/// How much of a file the format detection looks at.
const SNIFF_BYTES: usize = 64 * 1024;

/// Reads one file completely, coding its strings with `dicts` (and leaving them filled for the
/// next file). I/O failures part-way (a truncated `.gz`) become a reject at the line where
/// reading stopped, so the records already read still count.
pub fn read_file(
    path: &Path,
    file_idx: u32,
    opts: &ReadOptions,
    dicts: &mut Dictionaries,
) -> FileResult {
    let mut sink = Sink {
        cols: EventColumns::with_dictionaries(std::mem::take(dicts)),
        frames: Vec::new(),
        error: None,
        stats: FileStats {
            index: file_idx,
            file: path.display().to_string(),
            ..FileStats::default()
        },
        rejects: Vec::new(),
        file_idx,
        time: &opts.time,
    };
    let mut skipped = None;
    match decompress::open(path) {
        Ok((_, mut reader)) => {
            match peek(&mut reader).and_then(|head| sniff::detect(&head, opts)) {
                Ok(format) => {
                    sink.stats.format = match (format, &opts.profile) {
                        (Format::Profile, Some(p)) => format!("profile:{}", p.name),
                        _ => format.name().to_string(),
                    };
                    match format {
                        Format::Csv => read_csv(reader, &mut sink),
                        Format::JsonLines => read_jsonl(reader, &mut sink),
                        Format::CloudTrail => {
                            sources::read_json(reader, &opts.cloudtrail, &mut sink)
                        }
                        Format::Okta => sources::read_json(reader, &opts.okta, &mut sink),
                        Format::AuthLog => {
                            sources::read_authlog(reader, opts.syslog_year, &mut sink)
                        }
                        Format::Profile => match &opts.profile {
                            Some(p) if p.format == "csv" => {
                                sources::read_profile_csv(reader, p, &mut sink)
                            }
                            Some(p) => sources::read_json(reader, p, &mut sink),
                            None => {
                                skipped = Some("--source profile needs --profile FILE".to_string())
                            }
                        },
                    }
                }
                Err(reason) => skipped = Some(reason),
            }
        }
        Err(e) => sink.reject(0, format!("cannot open: {e}"), b"", false),
    }
    sink.flush();
    *dicts = sink.cols.into_dictionaries();
    FileResult {
        frames: sink.frames,
        stats: sink.stats,
        rejects: sink.rejects,
        error: sink.error,
        skipped,
    }
}

/// The first bytes of the decompressed stream (one buffer's worth), without consuming them.
fn peek(reader: &mut Box<dyn BufRead + Send>) -> Result<Vec<u8>, String> {
    let buf = reader.fill_buf().map_err(|e| format!("cannot read: {e}"))?;
    Ok(buf[..buf.len().min(SNIFF_BYTES)].to_vec())
}

/// One file's events as frames of at most [`CHUNK_ROWS`] rows, plus its reconciliation.
pub struct FileResult {
    pub frames: Vec<DataFrame>,
    pub stats: FileStats,
    pub rejects: Vec<Reject>,
    pub error: Option<crate::Error>,
    /// Why the file was not read at all (unknown format).
    pub skipped: Option<String>,
}

/// Rows buffered as Rust strings before they move into a polars frame. Keeps the per-thread
/// staging memory bounded whatever the file size (a `String` costs ~3× its Arrow form).
const CHUNK_ROWS: usize = 128 * 1024;

pub(super) struct Sink<'a> {
    pub(super) cols: EventColumns,
    frames: Vec<DataFrame>,
    error: Option<crate::Error>,
    pub(super) stats: FileStats,
    rejects: Vec<Reject>,
    file_idx: u32,
    time: &'a TimeParser,
}

impl Sink<'_> {
    pub(super) fn row(&mut self, line: u64, row: &RawRow, raw: impl FnOnce() -> Vec<u8>) {
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
        let extra = self.cols.filled;
        match self.cols.take_frame() {
            Ok(df) => {
                self.stats.seen.add(&df, extra);
                self.frames.push(df);
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// `counted` says whether the record was already counted in `records`.
    /// A record of a known format that carries no authentication event (another daemon's
    /// syslog line, a row a profile's filter drops): counted, not quarantined.
    pub(super) fn ignore(&mut self) {
        self.stats.records += 1;
        self.stats.ignored += 1;
    }

    pub(super) fn reject(&mut self, line: u64, reason: String, raw: &[u8], counted: bool) {
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
    let mut fields: Vec<Option<Field>> = Vec::new();
    for_each_csv_record(reader, b',', sink, |sink, line, header, record, raw| {
        if fields.len() != header.len() {
            fields = header
                .iter()
                .map(|h| std::str::from_utf8(h).ok().and_then(Field::from_name))
                .collect();
        }
        let mut row = RawRow::default();
        // One SIMD pass says the whole record is ASCII, so every field is valid UTF-8; checking
        // field by field was 6 % of CSV ingest in `perf`.
        let ascii = record.as_slice().is_ascii();
        for (value, field) in record.iter().zip(&fields) {
            let Some(field) = field else { continue };
            let text = if ascii {
                // SAFETY: ASCII bytes are valid UTF-8, checked just above for the whole record.
                Ok(unsafe { std::str::from_utf8_unchecked(value) })
            } else {
                std::str::from_utf8(value)
            };
            match text {
                Ok(s) => row.set(*field, s),
                Err(_) => return sink.reject(line, "invalid UTF-8".into(), &raw(), false),
            }
        }
        sink.row(line, &row, raw);
    });
}

/// Walks a CSV file with a header row: unreadable records are quarantined (an I/O error, such as a
/// truncated `.gz`, ends the file), blank lines counted, rows with the wrong number of columns
/// rejected. `f` gets every well-formed record with its line, the header, and its raw text.
pub(super) fn for_each_csv_record(
    reader: Box<dyn BufRead + Send>,
    delimiter: u8,
    sink: &mut Sink,
    mut f: impl FnMut(&mut Sink, u64, &csv::ByteRecord, &csv::ByteRecord, &dyn Fn() -> Vec<u8>),
) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(reader);
    let header = match rdr.byte_headers() {
        Ok(h) => h.clone(),
        Err(e) => return sink.reject(1, format!("cannot read header: {e}"), b"", false),
    };
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
        let raw = || record.iter().collect::<Vec<_>>().join(&[delimiter][..]);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            sink.stats.blank += 1;
            continue;
        }
        if record.len() != header.len() {
            let reason = format!("expected {} columns, found {}", header.len(), record.len());
            sink.reject(line, reason, &raw(), false);
            continue;
        }
        f(sink, line, &header, &record, &raw);
    }
}

fn read_jsonl(reader: Box<dyn BufRead + Send>, sink: &mut Sink) {
    let mut shape = super::json_flat::Shape::default();
    for_each_line(
        reader,
        sink,
        |sink, line, text| match super::json_row::parse(text, &mut shape) {
            Ok(row) => sink.row(line, &row, || text.to_vec()),
            Err(reason) => sink.reject(line, reason, text, false),
        },
    );
}

/// Calls `f` with every non-blank line (trimmed) and its 1-based number; a read error part-way
/// is quarantined at the line where it happened and ends the file. Lines are handed over straight
/// from the reader's buffer; only a line that straddles two buffer fills is copied (copying every
/// line was 4.5 % of JSON-lines ingest).
pub(super) fn for_each_line(
    mut reader: Box<dyn BufRead + Send>,
    sink: &mut Sink,
    mut f: impl FnMut(&mut Sink, u64, &[u8]),
) {
    let mut carry: Vec<u8> = Vec::new();
    let mut line = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) => {
                let reason = format!("read failed (truncated or corrupt file?): {e}");
                return sink.reject(line + 1, reason, b"", false);
            }
        };
        if buf.is_empty() {
            if !carry.is_empty() {
                emit(sink, &mut line, &carry, &mut f);
            }
            return;
        }
        let mut used = 0;
        if !carry.is_empty() {
            let Some(end) = memchr::memchr(b'\n', buf) else {
                carry.extend_from_slice(buf);
                let n = buf.len();
                reader.consume(n);
                continue;
            };
            carry.extend_from_slice(&buf[..end]);
            emit(sink, &mut line, &carry, &mut f);
            carry.clear();
            used = end + 1;
        }
        while let Some(end) = memchr::memchr(b'\n', &buf[used..]) {
            emit(sink, &mut line, &buf[used..used + end], &mut f);
            used += end + 1;
        }
        carry.extend_from_slice(&buf[used..]);
        let n = buf.len();
        reader.consume(n);
    }
}

fn emit(sink: &mut Sink, line: &mut u64, text: &[u8], f: &mut impl FnMut(&mut Sink, u64, &[u8])) {
    *line += 1;
    let text = text.trim_ascii();
    if text.is_empty() {
        sink.stats.blank += 1;
    } else {
        f(sink, *line, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines split across buffer fills, blank lines and a last line without a newline all come
    /// out whole, with their own numbers.
    #[test]
    fn lines_survive_buffer_boundaries() {
        let text = b"first line\n\n  third  \r\na line longer than the buffer\nlast".to_vec();
        let time = TimeParser::new(chrono_tz::UTC);
        let mut sink = Sink {
            cols: EventColumns::new(),
            frames: Vec::new(),
            error: None,
            stats: FileStats::default(),
            rejects: Vec::new(),
            file_idx: 0,
            time: &time,
        };
        let reader = std::io::BufReader::with_capacity(7, std::io::Cursor::new(text));
        let mut seen = Vec::new();
        for_each_line(Box::new(reader), &mut sink, |_, line, text| {
            seen.push((line, String::from_utf8_lossy(text).into_owned()));
        });
        let want = [
            (1, "first line"),
            (3, "third"),
            (4, "a line longer than the buffer"),
            (5, "last"),
        ];
        let want: Vec<(u64, String)> = want.iter().map(|(n, s)| (*n, s.to_string())).collect();
        assert_eq!(seen, want);
        assert_eq!(sink.stats.blank, 1);
    }
}
