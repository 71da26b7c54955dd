//! Lines and CSV records, each with a bound, so no input can make one record swallow the rest of a
//! file or hold it all in memory.
//!
//! Two hostile shapes drove this: a CSV field that opens a quote and never closes it (an unquoted
//! exporter, a user agent starting with `"`), which the `csv` crate's reader follows to the end of
//! the file and returns as one record (111,503 records read as 102); and a compressed file with a
//! valid prefix and no newline, read whole (4 GB). Here a line is cut at `max` bytes, the rest of
//! it skipped without being kept, and a CSV record that is still inside quotes after
//! [`MAX_RECORD_LINES`] lines or `max` bytes is cut: its first line is rejected and parsing resumes
//! at the line after it. The CSV grammar itself stays `csv-core`'s (the `csv` crate's engine), fed
//! one physical line at a time, which is what tells a record that continues from one that ended.
//! A line without quotes is split in place instead of through csv-core: on a 2.7M-event CSV
//! export that took ingest from 1.25–1.39 s to 1.08 s (the `csv` crate's streaming reader,
//! unbounded, was 1.19–1.22 s; `docs/performance.md`, ninth session), and
//! `quote_free_lines_split_as_the_csv_crate_does` checks it against the crate.

use std::collections::VecDeque;
use std::io::BufRead;

use csv::ByteRecord;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};

/// Default of `--max-record-bytes`: far above any real log line, far below memory trouble.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Most physical lines one CSV record may span (a quoted field with line breaks, such as a stack
/// trace). A runaway quote costs at most this many re-read lines per rejected line.
pub const MAX_RECORD_LINES: usize = 100;

/// Calls `f(number, text, cut)` for every physical line, without its `\n`. A line longer than
/// `max` bytes comes cut to its first `max` bytes with `cut` set; the rest is skipped unbuffered.
/// A read error ends the walk with the number of the line it interrupted.
pub(super) fn raw_lines(
    mut reader: Box<dyn BufRead + Send>,
    max: usize,
    mut f: impl FnMut(u64, &[u8], bool),
) -> Result<(), (u64, std::io::Error)> {
    let mut carry: Vec<u8> = Vec::new();
    let mut skipping = false;
    let mut line = 0u64;
    loop {
        let buf = match reader.fill_buf() {
            Ok(buf) => buf,
            Err(e) => return Err((line + 1, e)),
        };
        if buf.is_empty() {
            if !carry.is_empty() || skipping {
                f(line + 1, &carry, skipping);
            }
            return Ok(());
        }
        let n = buf.len();
        let mut used = 0;
        while used < n {
            let Some(end) = memchr::memchr(b'\n', &buf[used..]) else {
                if !skipping {
                    skipping = append(&mut carry, &buf[used..], max);
                }
                break;
            };
            let piece = &buf[used..used + end];
            used += end + 1;
            line += 1;
            if carry.is_empty() && !skipping {
                f(line, &piece[..piece.len().min(max)], piece.len() > max);
            } else {
                let cut = skipping || append(&mut carry, piece, max);
                f(line, &carry, cut);
                carry.clear();
                skipping = false;
            }
        }
        reader.consume(n);
    }
}

/// The header of a CSV file as its reader would take it (first record, BOM stripped), from the
/// file's first bytes; `None` when they hold no complete record.
pub(super) fn csv_header(head: &[u8], delimiter: u8, max: usize) -> Option<ByteRecord> {
    let whole_lines = &head[..memchr::memrchr(b'\n', head)? + 1];
    let mut records = Records::new(delimiter, max);
    let mut header = None;
    let mut emit = |piece: Piece| {
        if let (None, Piece::Record(_, fields, _)) = (&header, piece) {
            header = Some(fields.to_record());
        }
    };
    let reader = Box::new(std::io::Cursor::new(whole_lines.to_vec()));
    raw_lines(reader, max, |n, text, cut| {
        records.line(n, strip_bom(n, text), cut, &mut emit)
    })
    .ok()?;
    header
}

/// A UTF-8 byte-order mark (spreadsheet exports) is not part of the first line's text.
pub(super) fn strip_bom(line: u64, text: &[u8]) -> &[u8] {
    if line == 1 {
        text.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(text)
    } else {
        text
    }
}

/// The reject reason of a line cut at the bound.
pub(super) fn too_long(max: usize) -> String {
    format!("line longer than {max} bytes (--max-record-bytes)")
}

/// Appends up to `max` bytes in all; says whether anything had to be left out.
fn append(carry: &mut Vec<u8>, piece: &[u8], max: usize) -> bool {
    let room = max.saturating_sub(carry.len());
    let take = room.min(piece.len());
    carry.extend_from_slice(&piece[..take]);
    piece.len() > room
}

/// A parsed record's fields, read in place (from the CSV engine's output, or from the line itself
/// when it has no quote) rather than copied into a `csv::ByteRecord` per record.
#[derive(Clone, Copy)]
pub(super) struct Fields<'a> {
    bytes: &'a [u8],
    ends: &'a [usize],
    /// Bytes between one field's end and the next one's start: 0 for the CSV engine's packed
    /// output, 1 for a quote-free line split in place at its delimiters.
    gap: usize,
}

impl<'a> Fields<'a> {
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn iter(&self) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        let (bytes, ends, gap) = (self.bytes, self.ends, self.gap);
        std::iter::once(0)
            .chain(ends.iter().map(move |e| e + gap))
            .zip(ends.iter().copied())
            .map(move |(start, end)| &bytes[start..end])
    }

    /// Every field's bytes (with the delimiters between them for a line split in place): what
    /// an ASCII check over the whole record must see.
    pub(super) fn as_slice(&self) -> &'a [u8] {
        &self.bytes[..self.ends.last().copied().unwrap_or(0)]
    }

    pub(super) fn to_record(self) -> ByteRecord {
        self.iter().collect()
    }
}

/// What the assembler hands on, in input order.
pub(super) enum Piece<'a> {
    /// A record, with the number of its first line and its raw text (for a reject).
    Record(u64, Fields<'a>, &'a [u8]),
    Blank,
    Reject(u64, String, &'a [u8]),
}

/// Builds CSV records from physical lines (see the module comment).
pub(super) struct Records {
    core: Reader,
    out: Vec<u8>,
    ends: Vec<usize>,
    used_out: usize,
    used_ends: usize,
    /// Fields of the last record taken: `out[..record_out]`, `ends[..record_ends]`.
    record_out: usize,
    record_ends: usize,
    /// Lines of the record being read, kept only once it spans more than one line.
    pending: Vec<(u64, Vec<u8>)>,
    pending_bytes: usize,
    max: usize,
    /// Columns of the header, once read: a multi-line record with another count is a runaway.
    columns: Option<usize>,
    delimiter: u8,
    /// Delimiter positions (and the end) of a quote-free line split in place.
    split_ends: Vec<usize>,
}

/// Lines to read again after a runaway record was cut: number, text, and whether it was cut.
type Replay = VecDeque<(u64, Vec<u8>, bool)>;

impl Records {
    pub(super) fn new(delimiter: u8, max: usize) -> Self {
        Records {
            core: ReaderBuilder::new()
                .delimiter(delimiter)
                .terminator(Terminator::Any(b'\n'))
                .build(),
            out: vec![0; 4096],
            ends: vec![0; 64],
            used_out: 0,
            used_ends: 0,
            record_out: 0,
            record_ends: 0,
            pending: Vec::new(),
            pending_bytes: 0,
            max,
            columns: None,
            delimiter,
            split_ends: Vec::new(),
        }
    }

    /// Starts as if a header of `columns` columns had been read (a part of a file read apart).
    pub(super) fn expect_columns(&mut self, columns: usize) {
        self.columns = Some(columns);
    }

    /// Whether no record is under way (no quoted field left open).
    pub(super) fn between_records(&self) -> bool {
        self.pending.is_empty()
    }

    /// Takes the next physical line.
    pub(super) fn line(&mut self, n: u64, text: &[u8], cut: bool, emit: &mut dyn FnMut(Piece)) {
        let mut replay = Replay::new();
        self.step(n, text, cut, emit, &mut replay);
        self.drain(emit, &mut replay);
    }

    /// End of input: a record still inside quotes ends here.
    pub(super) fn finish(&mut self, emit: &mut dyn FnMut(Piece)) {
        while !self.pending.is_empty() {
            self.feed(b"");
            let mut replay = Replay::new();
            self.complete(emit, &mut replay);
            self.drain(emit, &mut replay);
        }
    }

    fn drain(&mut self, emit: &mut dyn FnMut(Piece), replay: &mut Replay) {
        while let Some((n, text, cut)) = replay.pop_front() {
            self.step(n, &text, cut, emit, replay);
        }
    }

    fn step(
        &mut self,
        n: u64,
        text: &[u8],
        cut: bool,
        emit: &mut dyn FnMut(Piece),
        replay: &mut Replay,
    ) {
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if cut {
            if !self.pending.is_empty() {
                // The record cannot run through a line that was too long: it is a runaway, and
                // the long line is rejected after the lines it cut off are read again.
                let at = self.runaway(emit, replay, "no closing quote before an over-long line");
                replay.insert(at, (n, text.to_vec(), true));
                return;
            }
            return emit(Piece::Reject(n, too_long(self.max), text));
        }
        if self.pending.is_empty() {
            if text.is_empty() {
                return emit(Piece::Blank);
            }
            // Nearly every log line has no quote: its fields are the bytes between delimiters,
            // read in place; quoted lines go through the CSV engine. On a 2.7M-event CSV export
            // (`generate --customers 45000 --event-format csv --no-compress`, `analyze
            // --timings`, six alternating runs) ingest CPU was 2.37-2.56 s with every line
            // through csv-core, 2.03 s with this split, 2.17-2.23 s with the csv crate's reader
            // before bounded records. `quote_free_lines_split_as_the_csv_crate_does` checks
            // that the two agree.
            if memchr::memchr(b'"', text).is_none() {
                self.split_ends.clear();
                self.split_ends
                    .extend(memchr::memchr_iter(self.delimiter, text));
                self.split_ends.push(text.len());
                self.columns.get_or_insert(self.split_ends.len());
                let fields = Fields {
                    bytes: text,
                    ends: &self.split_ends,
                    gap: 1,
                };
                return emit(Piece::Record(n, fields, text));
            }
            self.feed(text);
            if self.feed(b"\n") {
                self.take_record();
                return emit(Piece::Record(n, self.fields(), text));
            }
            self.pending.push((n, text.to_vec()));
            self.pending_bytes = text.len();
            return;
        }
        self.pending.push((n, text.to_vec()));
        self.pending_bytes += text.len() + 1;
        // An empty slice is how csv-core is told the input ended: a blank line inside a quoted
        // field must not say that (it ended the record there and corrupted the field bounds of
        // the next; found by the `file_csv` fuzz target).
        if !text.is_empty() && self.feed(text) {
            return self.complete(emit, replay);
        }
        if self.feed(b"\n") {
            return self.complete(emit, replay);
        }
        if self.pending.len() > MAX_RECORD_LINES || self.pending_bytes > self.max {
            let why = format!(
                "no closing quote within {MAX_RECORD_LINES} lines or {} bytes",
                self.max
            );
            self.runaway(emit, replay, &why);
        }
    }

    /// Feeds bytes to the CSV engine; true when they completed a record.
    fn feed(&mut self, mut input: &[u8]) -> bool {
        loop {
            let (res, nin, nout, nend) = self.core.read_record(
                input,
                &mut self.out[self.used_out..],
                &mut self.ends[self.used_ends..],
            );
            input = &input[nin..];
            self.used_out += nout;
            self.used_ends += nend;
            match res {
                ReadRecordResult::InputEmpty => return false,
                ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => return true,
            }
        }
    }

    /// Ends the record just completed: its fields stay readable through [`Self::fields`] until
    /// the next one starts.
    fn take_record(&mut self) {
        self.record_out = self.used_out;
        self.record_ends = self.used_ends;
        self.used_out = 0;
        self.used_ends = 0;
        // The first record is the header: it sets the shape a multi-line record must have.
        self.columns.get_or_insert(self.record_ends);
    }

    fn fields(&self) -> Fields<'_> {
        Fields {
            bytes: &self.out[..self.record_out],
            ends: &self.ends[..self.record_ends],
            gap: 0,
        }
    }

    /// A record that spans several lines ended: it stands if its shape is the header's.
    fn complete(&mut self, emit: &mut dyn FnMut(Piece), replay: &mut Replay) {
        self.take_record();
        let lines = self.pending.len();
        if lines > 1
            && let Some(columns) = self.columns
            && columns != self.record_ends
        {
            let why = format!(
                "a quoted field runs over {lines} lines into a record of {} columns (expected {columns})",
                self.record_ends
            );
            self.runaway(emit, replay, &why);
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.pending_bytes = 0;
        let raw = pending
            .iter()
            .map(|(_, t)| t.as_slice())
            .collect::<Vec<_>>()
            .join(&b'\n');
        let first = pending.first().map_or(0, |(n, _)| *n);
        emit(Piece::Record(first, self.fields(), &raw));
    }

    /// Rejects the first pending line and queues the others to be read again, before whatever
    /// was queued already; returns how many were queued.
    fn runaway(&mut self, emit: &mut dyn FnMut(Piece), replay: &mut Replay, why: &str) -> usize {
        self.core.reset();
        self.used_out = 0;
        self.used_ends = 0;
        self.pending_bytes = 0;
        let mut lines = std::mem::take(&mut self.pending).into_iter();
        if let Some((n, text)) = lines.next() {
            let reason = format!(
                "unterminated quoted field ({why}): line rejected, reading resumes at the next"
            );
            emit(Piece::Reject(n, reason, &text));
        }
        let mut queued = 0;
        for (n, text) in lines {
            replay.insert(queued, (n, text, false));
            queued += 1;
        }
        queued
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, max: usize) -> Vec<String> {
        let mut records = Records::new(b',', max);
        let mut seen = Vec::new();
        let mut emit = |p: Piece| {
            seen.push(match p {
                Piece::Record(n, r, _) => format!(
                    "{n}:{}",
                    r.iter()
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .collect::<Vec<_>>()
                        .join("|")
                ),
                Piece::Blank => "blank".into(),
                Piece::Reject(n, _, _) => format!("{n}:reject"),
            })
        };
        let reader =
            std::io::BufReader::with_capacity(5, std::io::Cursor::new(text.as_bytes().to_vec()));
        raw_lines(Box::new(reader), max, |n, t, cut| {
            records.line(n, t, cut, &mut emit)
        })
        .expect("reads");
        records.finish(&mut emit);
        seen
    }

    #[test]
    fn a_quote_that_never_closes_costs_one_line() {
        let mut text = String::from("h,i,j\na,\"b,c\n");
        for i in 0..150 {
            text.push_str(&format!("x{i},y,z\n"));
        }
        let seen = run(&text, 1 << 20);
        assert_eq!(seen[..3], ["1:h|i|j", "2:reject", "3:x0|y|z"]);
        assert_eq!(seen.len(), 152, "{seen:?}");
        assert_eq!(seen[151], "152:x149|y|z");
    }

    #[test]
    fn a_quote_that_closes_late_in_the_wrong_shape_costs_one_line() {
        let seen = run("h,i,j\na,\"b,c\nd,e,f\ng,h\"i,j,k\nk,l,m\n", 1 << 20);
        assert_eq!(
            seen,
            ["1:h|i|j", "2:reject", "3:d|e|f", "4:g|h\"i|j|k", "5:k|l|m"]
        );
    }

    /// Blank lines inside a quoted field belong to it (csv-core must not hear an empty input,
    /// its end-of-input signal, in the middle of a record).
    #[test]
    fn blank_lines_inside_a_quoted_field_stay_in_it() {
        assert_eq!(
            run("a,b\n\"x\n\n\ny\",2\n3,4\n", 1 << 20),
            ["1:a|b", "2:x\n\n\ny|2", "6:3|4"]
        );
    }

    #[test]
    fn quoted_line_breaks_and_crlf_stay_one_record() {
        let seen = run("h,i,j\r\na,\"multi\r\nline\",c\r\n\r\nd,e,f", 1 << 20);
        assert_eq!(seen, ["1:h|i|j", "2:a|multi\nline|c", "blank", "5:d|e|f"]);
    }

    /// The in-place split of quote-free lines against the `csv` crate, on lines with empty
    /// fields, spaces, tabs, `\r` and non-ASCII text.
    #[test]
    fn quote_free_lines_split_as_the_csv_crate_does() {
        let pieces = ["", "a", " b ", "c\td", "é", "x=1", ";", "'q'", "\r"];
        let mut state = 7u64;
        for _ in 0..2000 {
            let mut line = String::new();
            let n = 1 + (state % 6) as usize;
            for i in 0..n {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                if i > 0 {
                    line.push(',');
                }
                line.push_str(pieces[(state >> 33) as usize % pieces.len()]);
            }
            let line = line.trim_end_matches('\r').to_string();
            if line.is_empty() {
                continue;
            }
            let want: Vec<Vec<u8>> = csv::ReaderBuilder::new()
                .has_headers(false)
                .terminator(csv::Terminator::Any(b'\n'))
                .from_reader(line.as_bytes())
                .byte_records()
                .next()
                .expect("one record")
                .expect("parses")
                .iter()
                .map(<[u8]>::to_vec)
                .collect();
            let mut records = Records::new(b',', 1 << 20);
            let mut got = Vec::new();
            records.line(1, line.as_bytes(), false, &mut |p| {
                if let Piece::Record(_, f, _) = p {
                    got = f.iter().map(<[u8]>::to_vec).collect();
                }
            });
            assert_eq!(got, want, "{line:?}");
        }
    }

    #[test]
    fn over_long_lines_are_cut_and_rejected_without_being_kept() {
        let text = "a,b,c\nxxxxxxxxxxxxxxxxxxxxxxxx\nd,e,f\n\"open,x\nyyyyyyyyyyyyyyyyyyyyyyyyyyyy\ng,h,i\nzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz";
        let seen = run(text, 16);
        assert_eq!(
            seen,
            [
                "1:a|b|c", "2:reject", "3:d|e|f", "4:reject", "5:reject", "6:g|h|i", "7:reject"
            ]
        );
    }
}
