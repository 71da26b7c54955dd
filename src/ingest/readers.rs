//! Reading one file: open it (any compression), decide its format from content, and hand every
//! record to a [`Sink`] that normalises it or quarantines it. The canonical CSV and JSON-lines
//! readers live here; the other sources are in [`super::sources`].

use std::io::BufRead;
use std::path::Path;

use super::decompress::Codec;
use super::lines::{self, Fields, Piece, Records};
use super::quarantine::{FileRejects, Quarantine};
use super::sniff::{self, Format};
use super::{FileStats, ReadOptions, decompress, parquet, shorten, sources, windows, windows_xml};
use crate::normalize::packed::Chunk;
use crate::normalize::{Dictionaries, EventColumns, Field, RawRow, TimeParser};

/// How much of a file the format detection looks at (at most one buffer fill): a first record
/// longer than 64 KiB used to leave no whole line to judge.
const SNIFF_BYTES: usize = 1 << 20;

/// Reads one file completely, or one part of a big plain file whose format the whole file's
/// head decided (see [`super::split`]; a part numbers its lines from 1 and the caller shifts them
/// when it joins the parts), coding its strings with `dicts` (and leaving them filled for the
/// next file). I/O failures part-way (a truncated `.gz`) become a reject at the line where
/// reading stopped, so the records already read still count.
pub fn read_file(
    path: &Path,
    file_idx: u32,
    part: Option<&super::split::Part>,
    opts: &ReadOptions,
    dicts: &mut Dictionaries,
    progress: Option<&indicatif::ProgressBar>,
) -> FileResult {
    let counter = decompress::Counter {
        bar: progress.cloned(),
        ..Default::default()
    };
    let mut sink = Sink::new(path, file_idx, part.map_or(0, |p| p.number), opts, dicts);
    sink.header = part.and_then(|p| p.header.as_deref().cloned());
    let skipped = match part {
        None => read_whole(path, &counter, opts, &mut sink),
        Some(super::split::Part {
            data: Some(chunk),
            format,
            ..
        }) => {
            let reader = Box::new(std::io::Cursor::new(chunk.clone()));
            read_format(*format, Codec::Plain, path, reader, opts, &mut sink)
        }
        Some(p) => match decompress::open_range(path, p.start, p.end, &counter) {
            Ok(reader) => read_format(p.format, Codec::Plain, path, reader, opts, &mut sink),
            Err(e) => {
                sink.read_failed(0, format!("cannot open: {e}"));
                None
            }
        },
    };
    // A part counts only the bytes of its range; a whole file moves the bar to its end.
    if part.is_none() {
        counter.finish_file(path);
    }
    sink.finish(dicts, skipped)
}

/// [`read_file`] on bytes in memory, as if they were a file named `name`: what the fuzz
/// targets call, thousands of times a second, instead of writing a file each time. Parquet
/// needs a file and is skipped here.
pub fn read_bytes(data: Vec<u8>, name: &str, opts: &ReadOptions) -> FileResult {
    let mut dicts = Dictionaries::default();
    let path = Path::new(name);
    let mut sink = Sink::new(path, 0, 0, opts, &mut dicts);
    let skipped = match decompress::decompressed(std::io::Cursor::new(data)) {
        Err(e) => {
            sink.read_failed(1, format!("cannot read: {e}"));
            None
        }
        Ok((codec, mut reader)) => match peek(&mut reader) {
            Err(reason) => {
                sink.read_failed(1, reason);
                None
            }
            Ok(head) => match sniff::detect(&head, name, opts) {
                Err(reason) => Some(reason),
                Ok(Format::Parquet) => Some("Parquet is read from files only".into()),
                Ok(Format::Evtx) => {
                    // Read from the stream, as a compressed `.evtx` is.
                    sink.stats.format = Format::Evtx.name().to_string();
                    windows::read_evtx(path, true, reader, &mut sink);
                    None
                }
                Ok(format) => read_format(format, codec, path, reader, opts, &mut sink),
            },
        },
    };
    sink.finish(&mut dicts, skipped)
}

/// Opens a whole file, decides its format from its head and reads it; returns why it was
/// skipped, if it was.
fn read_whole(
    path: &Path,
    counter: &decompress::Counter,
    opts: &ReadOptions,
    sink: &mut Sink,
) -> Option<String> {
    let (codec, mut reader) = match decompress::open_counted(path, counter) {
        Ok(opened) => opened,
        Err(e) => {
            sink.read_failed(0, format!("cannot open: {e}"));
            return None;
        }
    };
    let head = match peek(&mut reader) {
        Ok(head) => head,
        Err(reason) => {
            sink.read_failed(1, reason);
            return None;
        }
    };
    let name = path.file_name().map(|n| n.to_string_lossy());
    match sniff::detect(&head, name.as_deref().unwrap_or(""), opts) {
        Ok(format) => read_format(format, codec, path, reader, opts, sink),
        Err(reason) => Some(reason),
    }
}

/// Hands the stream to the reader of `format`; returns why the file was skipped, if it was.
fn read_format(
    format: Format,
    codec: Codec,
    path: &Path,
    reader: Box<dyn BufRead + Send>,
    opts: &ReadOptions,
    sink: &mut Sink,
) -> Option<String> {
    sink.stats.format = match (format, &opts.profile) {
        (Format::Profile, Some(p)) => format!("profile:{}", p.name),
        _ => format.name().to_string(),
    };
    match format {
        Format::Csv => read_csv(reader, sink),
        Format::JsonLines => read_jsonl(reader, sink),
        Format::CloudTrail => sources::read_json(reader, &opts.cloudtrail, sink),
        Format::Okta => sources::read_json(reader, &opts.okta, sink),
        Format::Vendor(i) => match opts.vendors.get(usize::from(i)) {
            Some(p) => sources::read_json(reader, p, sink),
            None => return Some("unknown built-in profile".to_string()),
        },
        Format::AuthLog => sources::read_authlog(reader, opts.syslog_year, sink),
        Format::Journald => sources::read_journald(reader, sink),
        Format::Evtx => {
            let compressed = codec != Codec::Plain;
            windows::read_evtx(path, compressed, reader, sink)
        }
        Format::Windows => windows::read_json(reader, sink),
        Format::WindowsXml => windows_xml::read_xml(reader, sink),
        Format::Parquet if codec != Codec::Plain => sink.read_failed(
            0,
            "compressed Parquet: decompress it first (Parquet compresses inside)".into(),
        ),
        Format::Parquet => {
            drop(reader);
            // A decoder panic on a corrupt file ends that file, not the run.
            match parquet::read_contained(path, opts, sink) {
                Ok(Ok(label)) => sink.stats.format = label,
                Ok(Err(reason)) => return Some(reason),
                Err(why) => {
                    let at = sink.stats.records + 1;
                    sink.read_failed(at, why);
                }
            }
        }
        Format::Profile => match &opts.profile {
            Some(p) if p.format == "csv" => sources::read_profile_csv(reader, p, sink),
            Some(p) => sources::read_json(reader, p, sink),
            None => return Some("--source profile needs --profile FILE".to_string()),
        },
    }
    None
}

/// The first bytes of the decompressed stream (one buffer's worth), without consuming them.
fn peek(reader: &mut Box<dyn BufRead + Send>) -> Result<Vec<u8>, String> {
    let buf = reader.fill_buf().map_err(|e| format!("cannot read: {e}"))?;
    Ok(buf[..buf.len().min(SNIFF_BYTES)].to_vec())
}

/// One file's events as frames of at most [`CHUNK_ROWS`] rows, plus its reconciliation.
pub struct FileResult {
    pub frames: Vec<Chunk>,
    /// The cold columns of `frames`, one chunk each, when they went to the cold sink.
    pub cold: Vec<crate::normalize::cold::ColdChunk>,
    pub stats: FileStats,
    pub rejects: FileRejects,
    pub error: Option<crate::Error>,
    /// Why the file was not read at all (unknown format).
    pub skipped: Option<String>,
    /// Physical lines read (line-based readers): where the next part of a split file starts.
    pub lines: u64,
    /// Whether the reader ended between records. A CSV part that ended inside a quoted field
    /// was cut in the middle of a record: its file is read again whole.
    pub clean_end: bool,
}

/// Rows buffered as Rust strings before they move into a polars frame. Keeps the per-thread
/// staging memory bounded whatever the file size (a `String` costs ~3× its Arrow form).
const CHUNK_ROWS: usize = 128 * 1024;

pub(super) struct Sink<'a> {
    pub(super) cols: EventColumns,
    frames: Vec<Chunk>,
    cold: Option<&'a crate::normalize::ColdSink>,
    cold_chunks: Vec<crate::normalize::cold::ColdChunk>,
    error: Option<crate::Error>,
    pub(super) stats: FileStats,
    rejects: Quarantine,
    file_idx: u32,
    time: &'a TimeParser,
    /// Longest record any reader keeps (`--max-record-bytes`).
    pub(super) max_record: usize,
    /// Number of the last physical line seen.
    lines: u64,
    /// Whether the stream starts at the file's start (a BOM can only be there).
    at_file_start: bool,
    /// The file's CSV header, for a part that starts after it.
    header: Option<csv::ByteRecord>,
    clean_end: bool,
}

impl<'a> Sink<'a> {
    fn new(
        path: &Path,
        file_idx: u32,
        part: u32,
        opts: &'a ReadOptions,
        dicts: &mut Dictionaries,
    ) -> Self {
        Sink {
            cols: EventColumns::with_dictionaries(std::mem::take(dicts)),
            frames: Vec::new(),
            cold: opts.cold.as_deref(),
            cold_chunks: Vec::new(),
            error: None,
            stats: FileStats {
                index: file_idx,
                file: path.display().to_string(),
                ..FileStats::default()
            },
            rejects: Quarantine::new(
                path.display().to_string(),
                file_idx,
                part,
                opts.spill_dir.as_deref(),
            ),
            file_idx,
            time: &opts.time,
            max_record: opts.max_record_bytes,
            lines: 0,
            at_file_start: part == 0,
            header: None,
            clean_end: true,
        }
    }

    /// Flushes what is buffered and hands the dictionaries back for the next file.
    fn finish(mut self, dicts: &mut Dictionaries, skipped: Option<String>) -> FileResult {
        self.flush();
        *dicts = self.cols.into_dictionaries();
        let (rejects, error) = match self.rejects.finish() {
            Ok(r) => (r, self.error),
            Err(e) => (FileRejects::default(), self.error.or(Some(e))),
        };
        FileResult {
            frames: self.frames,
            cold: self.cold_chunks,
            stats: self.stats,
            rejects,
            error,
            skipped,
            lines: self.lines,
            clean_end: self.clean_end,
        }
    }

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
            Ok(mut df) => {
                self.stats.seen.add(&df, extra, self.time);
                let Some(cold) = self.cold else {
                    self.frames.push(Chunk::Frame(df));
                    return;
                };
                match cold.take(&mut df) {
                    Ok(chunk) => self.cold_chunks.push(chunk),
                    Err(e) => {
                        self.error = Some(e);
                        return;
                    }
                }
                // Past the bound the chunk waits packed until reading ends (`normalize::packed`).
                self.frames.push(match cold.spilling() {
                    Some(_) => Chunk::pack(df),
                    None => Chunk::Frame(df),
                });
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// A record a mapping turned into a row (`Some`), judged no event (`None`: ignored), or
    /// refused (`Err`: rejected with the reason).
    pub(super) fn mapped(
        &mut self,
        line: u64,
        mapped: Result<Option<RawRow>, String>,
        raw: impl FnOnce() -> Vec<u8>,
    ) {
        match mapped {
            Ok(Some(row)) => self.row(line, &row, raw),
            Ok(None) => self.ignore(),
            Err(reason) => self.reject(line, reason, &raw(), false),
        }
    }

    /// `counted` says whether the record was already counted in `records`.
    /// A record of a known format that carries no authentication event (another daemon's
    /// syslog line, a row a profile's filter drops): counted, not quarantined.
    pub(super) fn ignore(&mut self) {
        self.stats.records += 1;
        self.stats.ignored += 1;
    }

    /// The file could not be opened or read to its end: quarantined like a record (the line
    /// where reading stopped, 0 if it never started) and marked, so the run knows its input is
    /// incomplete.
    pub(super) fn read_failed(&mut self, line: u64, reason: String) {
        self.stats.unreadable.get_or_insert_with(|| reason.clone());
        self.reject(line, reason, b"", false);
    }

    // Rare by nature: kept out of line so the readers' hot loops stay small (inlined, the spill
    // writing made the JSON-lines parser 30 % slower on the 10M export).
    #[cold]
    #[inline(never)]
    pub(super) fn reject(&mut self, line: u64, reason: String, raw: &[u8], counted: bool) {
        if !counted {
            self.stats.records += 1;
        }
        self.stats.rejected += 1;
        if let Err(e) = self.rejects.add(line, reason, shorten(raw)) {
            self.error.get_or_insert(e);
        }
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
            // A field named twice: the first column is read and the file says so, instead of
            // the last copy (often empty) silently winning.
            let mut seen = Vec::new();
            for f in fields.iter_mut() {
                match f {
                    Some(field) if seen.contains(field) => {
                        sink.stats.warnings.push(format!(
                            "column {} is named more than once in the header: the first is read, the others ignored",
                            field.name()
                        ));
                        *f = None;
                    }
                    Some(field) => seen.push(*field),
                    None => {}
                }
            }
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

/// Walks a CSV file with a header row: records are cut at the bounds of [`super::lines`], blank
/// lines counted, rows with the wrong number of columns rejected; a read error (a truncated `.gz`)
/// is quarantined at the line it interrupted and ends the file. `f` gets every well-formed record
/// with its first line, the header, and its raw text.
pub(super) fn for_each_csv_record(
    reader: Box<dyn BufRead + Send>,
    delimiter: u8,
    sink: &mut Sink,
    f: impl FnMut(&mut Sink, u64, &csv::ByteRecord, Fields, &dyn Fn() -> Vec<u8>),
) {
    csv_records(reader, delimiter, true, sink, f)
}

/// [`for_each_csv_record`] for files with or without a header row. Without one, columns are
/// named by their 1-based position (`"1"`, `"2"`, …) and the first line is a record.
pub(super) fn csv_records(
    reader: Box<dyn BufRead + Send>,
    delimiter: u8,
    has_header: bool,
    sink: &mut Sink,
    mut f: impl FnMut(&mut Sink, u64, &csv::ByteRecord, Fields, &dyn Fn() -> Vec<u8>),
) {
    let max = sink.max_record;
    let mut records = Records::new(delimiter, max);
    // A part after the first starts below the header: it is given, not read.
    let mut header: Option<csv::ByteRecord> = sink.header.take();
    if let Some(head) = &header {
        records.expect_columns(head.len());
    }
    let at_file_start = sink.at_file_start;
    let mut last_line = 0;
    let mut emit = |piece: Piece| match piece {
        Piece::Blank => sink.stats.blank += 1,
        Piece::Reject(n, reason, raw) => sink.reject(n, reason, raw, false),
        Piece::Record(n, record, raw) => match &header {
            None if !has_header => {
                let head: csv::ByteRecord = (1..=record.len()).map(|i| i.to_string()).collect();
                f(sink, n, &head, record, &|| raw.to_vec());
                header = Some(head);
            }
            None => header = Some(record.to_record()),
            Some(head) if head.len() != record.len() => {
                let reason = format!("expected {} columns, found {}", head.len(), record.len());
                sink.reject(n, reason, raw, false);
            }
            Some(head) => f(sink, n, head, record, &|| raw.to_vec()),
        },
    };
    let read = lines::raw_lines(reader, max, |n, text, cut| {
        let text = if at_file_start {
            lines::strip_bom(n, text)
        } else {
            text
        };
        last_line = n;
        records.line(n, text, cut, &mut emit)
    });
    let clean_end = records.between_records();
    records.finish(&mut emit);
    sink.lines = last_line;
    sink.clean_end = clean_end;
    if let Err((n, e)) = read {
        sink.read_failed(n, format!("read failed (truncated or corrupt file?): {e}"));
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

/// Calls `f` with every line that is a JSON object, parsed, with its number and text; any other
/// non-blank line is rejected (not JSON, or JSON but not an object).
pub(super) fn for_each_json_object(
    reader: Box<dyn BufRead + Send>,
    sink: &mut Sink,
    mut f: impl FnMut(&mut Sink, u64, serde_json::Value, &[u8]),
) {
    for_each_line(
        reader,
        sink,
        |sink, line, text| match serde_json::from_slice::<serde_json::Value>(text) {
            Ok(v) if v.is_object() => f(sink, line, v, text),
            Ok(_) => sink.reject(line, "expected a JSON object".into(), text, false),
            Err(e) => sink.reject(line, format!("invalid JSON: {e}"), text, false),
        },
    );
}

/// Calls `f` with every non-blank line (trimmed) and its 1-based number. A line longer than the
/// record bound is rejected without being kept whole; a read error part-way is quarantined at the
/// line where it happened and ends the file.
pub(super) fn for_each_line(
    reader: Box<dyn BufRead + Send>,
    sink: &mut Sink,
    mut f: impl FnMut(&mut Sink, u64, &[u8]),
) {
    let max = sink.max_record;
    let read = lines::raw_lines(reader, max, |n, text, cut| {
        sink.lines = n;
        if cut {
            return sink.reject(n, lines::too_long(max), text, false);
        }
        let text = if sink.at_file_start {
            lines::strip_bom(n, text)
        } else {
            text
        };
        let text = text.trim_ascii();
        if text.is_empty() {
            sink.stats.blank += 1;
        } else {
            f(sink, n, text);
        }
    });
    if let Err((n, e)) = read {
        sink.read_failed(n, format!("read failed (truncated or corrupt file?): {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fuzz targets read from memory: that must be what reading the file gives, for every
    /// kind of input they feed (plain, gzip, binary `.evtx`, a file of no known format).
    #[test]
    fn bytes_read_like_the_file() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(
            &mut gz,
            b"{\"timestamp\":\"2025-03-01T00:00:00Z\",\"event_type\":\"login\",\"principal\":\"a\"}\nbad\n",
        )
        .expect("gzip");
        let evtx = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/evtx/Security_short_selected.evtx"),
        )
        .expect("evtx fixture");
        let inputs: [Vec<u8>; 5] = [
            b"timestamp,event_type,principal\n2025-03-01T00:00:00Z,login,a\nx,y\n\n".to_vec(),
            gz.finish().expect("gzip"),
            b"Mar  1 10:00:00 h sshd[1]: Invalid user bob from 203.0.113.5 port 22\nnoise\n"
                .to_vec(),
            evtx,
            b"neither a log nor anything else".to_vec(),
        ];
        let opts = ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, Some(2025))
            .expect("options");
        for data in inputs {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("input");
            std::fs::write(&path, &data).expect("write");
            let mut dicts = Dictionaries::default();
            let file = read_file(&path, 0, None, &opts, &mut dicts, None);
            let bytes = read_bytes(data, "input", &opts);
            let counts = |r: &FileResult| {
                let s = &r.stats;
                (
                    s.format.clone(),
                    s.records,
                    s.parsed,
                    s.rejected,
                    s.ignored,
                    s.blank,
                )
            };
            assert_eq!(counts(&file), counts(&bytes));
            assert_eq!(file.skipped.is_some(), bytes.skipped.is_some());
            let rows = |r: &FileResult| r.frames.iter().map(|f| f.height()).sum::<usize>();
            assert_eq!(rows(&file), rows(&bytes));
            // Without a cold sink nothing is packed.
            let cat = |r: &FileResult| {
                let frames = r.frames.iter().map(|c| match c {
                    Chunk::Frame(df) => Ok(df.clone()),
                    Chunk::Packed(_) => panic!("a chunk packed without a cold sink"),
                });
                crate::frame::stack(frames, "test").expect("same layout")
            };
            match (cat(&file), cat(&bytes)) {
                (Some(a), Some(b)) => assert!(a.equals_missing(&b), "{a}\n{b}"),
                (a, b) => assert_eq!(a.is_none(), b.is_none()),
            }
            assert!(
                counts(&file).2 > 0 || file.skipped.is_some(),
                "{:?}",
                counts(&file)
            );
        }
    }

    /// Lines split across buffer fills, blank lines and a last line without a newline all come
    /// out whole, with their own numbers.
    #[test]
    fn lines_survive_buffer_boundaries() {
        let text = b"first line\n\n  third  \r\na line longer than the buffer\nlast".to_vec();
        let time = TimeParser::new(chrono_tz::UTC);
        let mut sink = Sink {
            cols: EventColumns::new(),
            frames: Vec::new(),
            cold: None,
            cold_chunks: Vec::new(),
            error: None,
            stats: FileStats::default(),
            rejects: Quarantine::new(String::new(), 0, 0, None),
            file_idx: 0,
            time: &time,
            max_record: 1 << 20,
            lines: 0,
            at_file_start: true,
            header: None,
            clean_end: true,
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
