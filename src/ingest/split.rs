//! One big file on every core. Exports often come as one file (a 1.6 GB JSON-lines export was
//! read on one core: 5.9 s wall for 5.9 s of CPU), and files are the unit of parallel reading;
//! so a big plain file whose records are one per line is cut into parts at line boundaries, each
//! part read by its own task like a file, and the parts joined back in order, with their line
//! numbers shifted, before anything downstream sees them. The result is the one a single reader
//! gives (tested, and fuzzed by `file_split`), only sooner: on two cores a 2.47 GB JSON-lines
//! file's ingest went from 7.7–7.9 s to 4.3–5.1 s, a 1.19 GB CSV's from 6.6–8.9 s to 3.3–3.5 s
//! (`docs/performance.md`, twelfth session).
//!
//! Cut: JSON lines (canonical, Windows, journald, and the JSON profiles outside a `[…]` or
//! `{"Records": […]}` document), whose lines are independent; and CSV with a header row, whose
//! parts after the first are given the header. A CSV cut can fall inside a quoted field that
//! holds a line break: the part before it then ends inside a record, and the file is read again
//! whole (tested), so the result is still the one reader's. Classic syslog is not cut: its year is
//! inferred line after line. A compressed stream cannot be entered in the middle: a big one is
//! decompressed on one core and its parts parsed on the others ([`super::split_stream`]).

use std::io::{BufRead, Read, Seek, SeekFrom};
use std::path::Path;

use super::sniff::{self, Format};
use super::{ReadOptions, decompress, lines, sources};

/// Bytes per part: small enough for two cores to share a file evenly, large enough that the
/// per-part costs (a dictionary warm-up, one partly filled chunk) stay under 1 %.
pub const PART_BYTES: u64 = 64 << 20;

/// A byte range of a plain file, starting at a line start, or a run of whole lines of a
/// compressed file already decompressed (see [`super::split_stream`]), and the format its file
/// was read as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Position among the file's parts (0 for the first).
    pub number: u32,
    pub start: u64,
    pub end: u64,
    pub format: Format,
    /// A CSV file's header, for the parts after the first.
    pub header: Option<std::sync::Arc<csv::ByteRecord>>,
    /// The part's bytes, when they come from a decompressed stream rather than the file.
    pub data: Option<Chunk>,
}

/// Decompressed bytes shared with the task that parses them.
#[derive(Clone, PartialEq, Eq)]
pub struct Chunk(pub std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Chunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Chunk({} bytes)", self.0.len())
    }
}

/// How a file is read: whole, in parts of the plain file, or as a compressed stream cut into
/// parts as it is decompressed (see [`super::split_stream`]).
#[derive(Debug, Clone)]
pub enum Plan {
    /// Small, not line-independent, or not detectable here (the whole-file reader then reports
    /// why).
    Whole,
    Parts(Vec<Part>),
    Stream(StreamPlan),
}

/// How a big compressed file whose records are one per line is cut as it is decompressed:
/// its format, and a CSV file's header for the parts after the first.
#[derive(Debug, Clone)]
pub struct StreamPlan {
    pub format: Format,
    pub header: Option<std::sync::Arc<csv::ByteRecord>>,
}

/// The plan for `path`, from one look at its head. A plain file is cut from two parts up; a
/// compressed one from a quarter part as stored (a compressed quarter part is typically several
/// parts once decompressed).
pub fn plan(path: &Path, opts: &ReadOptions, part_bytes: u64) -> Plan {
    let Ok(meta) = std::fs::metadata(path) else {
        return Plan::Whole;
    };
    if !meta.is_file() || meta.len() < part_bytes / 4 {
        return Plan::Whole;
    }
    let Ok((codec, mut reader)) = decompress::open_counted(path, &decompress::Counter::default())
    else {
        return Plan::Whole;
    };
    if codec == decompress::Codec::Plain && meta.len() < 2 * part_bytes {
        return Plan::Whole;
    }
    let Ok(head) = reader.fill_buf().map(<[u8]>::to_vec) else {
        return Plan::Whole;
    };
    drop(reader);
    let Some((format, header)) = cuttable(path, &head, opts) else {
        return Plan::Whole;
    };
    if codec != decompress::Codec::Plain {
        return Plan::Stream(StreamPlan { format, header });
    }
    let Ok(cuts) = cuts(path, meta.len(), part_bytes, opts.max_record_bytes) else {
        return Plan::Whole;
    };
    let bounds: Vec<u64> = std::iter::once(0)
        .chain(cuts)
        .chain(std::iter::once(meta.len()))
        .collect();
    let parts = bounds
        .windows(2)
        .zip(0u32..)
        .map(|(w, number)| Part {
            number,
            start: w[0],
            end: w[1],
            format,
            header: header.clone().filter(|_| number > 0),
            data: None,
        })
        .collect();
    Plan::Parts(parts)
}

/// The format of a file with this head, when its records may be cut between lines, and the CSV
/// header its later parts are given.
fn cuttable(
    path: &Path,
    head: &[u8],
    opts: &ReadOptions,
) -> Option<(Format, Option<std::sync::Arc<csv::ByteRecord>>)> {
    let name = path.file_name().map(|n| n.to_string_lossy());
    let format = sniff::detect(head, name.as_deref().unwrap_or(""), opts).ok()?;
    match how(format, head, opts) {
        How::Whole => None,
        How::Lines => Some((format, None)),
        How::Csv(delimiter) => lines::csv_header(head, delimiter, opts.max_record_bytes)
            .map(|h| (format, Some(std::sync::Arc::new(h)))),
    }
}

/// How a file may be cut.
enum How {
    Whole,
    /// Every record is one line that reads alone.
    Lines,
    /// CSV with a header row and this delimiter.
    Csv(u8),
}

fn how(format: Format, head: &[u8], opts: &ReadOptions) -> How {
    let lines_unless_document = || {
        if sources::is_container(head) {
            How::Whole
        } else {
            How::Lines
        }
    };
    match format {
        Format::JsonLines | Format::Windows | Format::Journald => How::Lines,
        Format::CloudTrail | Format::Okta | Format::Vendor(_) => lines_unless_document(),
        Format::Csv => How::Csv(b','),
        Format::Profile => match &opts.profile {
            Some(p) if p.format == "csv" && p.has_header => {
                How::Csv(p.delimiter.unwrap_or(',') as u8)
            }
            Some(p) if p.format != "csv" => lines_unless_document(),
            _ => How::Whole,
        },
        Format::AuthLog | Format::Evtx | Format::WindowsXml | Format::Parquet => How::Whole,
    }
}

/// Offsets just after a newline near every multiple of `part_bytes`, increasing. A stretch with
/// no newline within one record bound gets no cut there (the part grows instead).
fn cuts(path: &Path, len: u64, part_bytes: u64, max_record: usize) -> std::io::Result<Vec<u64>> {
    let mut file = std::fs::File::open(path)?;
    let mut out: Vec<u64> = Vec::new();
    let mut buf = Vec::with_capacity(max_record.max(1) + 1);
    let mut at = part_bytes;
    while at < len {
        file.seek(SeekFrom::Start(at - 1))?;
        buf.clear();
        (&mut file)
            .take(max_record.max(1) as u64 + 1)
            .read_to_end(&mut buf)?;
        if let Some(i) = memchr::memchr(b'\n', &buf) {
            let cut = at + i as u64;
            if cut < len && out.last().is_none_or(|&last| cut > last) {
                out.push(cut);
            }
            at = cut.max(at) + part_bytes;
        } else {
            at += part_bytes;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every cut lands just after a newline, and the parts tile the file.
    #[test]
    fn cuts_fall_after_newlines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("x.jsonl");
        let mut text = Vec::new();
        for i in 0..5000 {
            text.extend_from_slice(
                format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 97)).as_bytes(),
            );
        }
        std::fs::write(&path, &text).expect("write");
        let cuts = cuts(&path, text.len() as u64, 4096, 1 << 20).expect("cuts");
        assert!(cuts.len() > 20, "{}", cuts.len());
        for c in &cuts {
            assert_eq!(text[*c as usize - 1], b'\n', "cut at {c}");
        }
        assert!(cuts.windows(2).all(|w| w[0] < w[1]));
        // A line longer than the search window gets no cut inside it.
        let long = [b"{\"a\":1}\n".as_slice(), &[b'x'; 10_000], b"\n{\"a\":2}\n"].concat();
        std::fs::write(&path, &long).expect("write");
        let cuts = super::cuts(&path, long.len() as u64, 1000, 100).expect("cuts");
        for c in &cuts {
            assert_eq!(long[*c as usize - 1], b'\n', "cut at {c}");
        }
    }
}

/// Differential: a file read in parts gives exactly what one reader gives.
#[cfg(test)]
mod same_as_whole {
    use std::path::PathBuf;

    use super::super::{Discovered, ReadOptions, read_events};
    use crate::normalize::TimeParser;

    fn export(dir: &std::path::Path) -> PathBuf {
        let path = dir.join("export.jsonl");
        let mut text = String::from("\u{feff}");
        for i in 0..20_000u32 {
            let line = match i % 997 {
                13 => "not json at all\n".to_string(),
                14 => "\n".to_string(),
                15 => format!("{{\"pad\":\"{}\"}}\n", "y".repeat(3000)),
                16 => "{\"timestamp\":\"2025-03-01T10:00:00Z\",\"event_type\":\"access\",\"outcome\":\"maybe\"}\n".to_string(),
                // Every fourth row carries no token, so a key's first row is not always its
                // first token-bearing one.
                _ => format!(
                    "{{\"timestamp\":\"2025-03-{:02}T{:02}:{:02}:00Z\",\"event_type\":\"access\",\"principal\":\"u{}\",\"credential_id\":\"k{}\",\"source_ip\":\"10.0.{}.{}\",\"action\":\"GET /a\",\"target_account\":\"acct{}\"{}}}\n",
                    1 + i % 28,
                    i % 24,
                    i % 60,
                    i % 37,
                    i % 11,
                    i % 5,
                    i % 200,
                    i,
                    match i % 4 {
                        0 => String::new(),
                        _ => format!(",\"token_id\":\"t{}\"", i % 500),
                    }
                ),
            };
            text.push_str(&line);
        }
        text.push_str("{\"timestamp\":\"2025-03-02T00:00:00Z\",\"event_type\":\"login\",\"principal\":\"last\"}");
        std::fs::write(&path, text).expect("write export");
        path
    }

    fn read(
        path: &std::path::Path,
        part_bytes: u64,
        spill: &std::path::Path,
    ) -> super::super::Ingested {
        read_cold(path, part_bytes, spill, None)
    }

    fn read_cold(
        path: &std::path::Path,
        part_bytes: u64,
        spill: &std::path::Path,
        cold: Option<crate::normalize::ColdSink>,
    ) -> super::super::Ingested {
        let mut opts =
            ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).expect("options");
        opts.cold = cold.map(std::sync::Arc::new);
        opts.part_bytes = part_bytes;
        opts.max_record_bytes = 2000;
        opts.spill_dir = Some(spill.to_path_buf());
        let found = Discovered {
            events: vec![path.to_path_buf()],
            ..Discovered::default()
        };
        read_events(&found, &opts, false).expect("reads")
    }

    /// `frame`'s token codes replaced by the ids they stand for in `tokens`.
    fn named_tokens(frame: &mut polars::prelude::DataFrame, tokens: &crate::normalize::Tokens) {
        use crate::normalize::schema::col::TOKEN;
        let codes = frame.column(TOKEN).expect("token column");
        let ids: Vec<Option<String>> = (codes.u32().expect("token codes").iter())
            .map(|c| c.and_then(|c| tokens.text(c)))
            .collect();
        let ids = polars::prelude::Column::new(TOKEN.into(), ids);
        frame.with_column(ids).expect("token ids");
    }

    fn rejects(i: &super::super::Ingested) -> Vec<(u64, String, String)> {
        let mut out = Vec::new();
        for f in &i.rejects {
            f.for_each(|r| {
                out.push((r.line, r.reason, r.raw));
                Ok(())
            })
            .expect("rejects read back");
        }
        out
    }

    fn options() -> ReadOptions {
        ReadOptions::new(TimeParser::new(chrono_tz::UTC), None, None, None).expect("options")
    }

    /// Reads `path` whole and in parts of `part_bytes`, insists both give the same frame,
    /// counts, coverage, warnings and rejects, and returns the whole reading.
    fn same_both_ways(
        path: &std::path::Path,
        part_bytes: u64,
    ) -> (super::super::Ingested, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).expect("dir");
        std::fs::create_dir_all(&b).expect("dir");
        let whole = read(path, u64::MAX / 4, &a);
        let split = read(path, part_bytes, &b);
        let cut = match super::plan(path, &options(), part_bytes) {
            super::Plan::Parts(parts) => parts.len() > 10,
            super::Plan::Stream(_) => true,
            super::Plan::Whole => false,
        };
        assert!(cut, "the export is cut into parts");
        let (w, s) = (&whole.files[0], &split.files[0]);
        assert_eq!(
            (w.records, w.parsed, w.rejected, w.ignored, w.blank),
            (s.records, s.parsed, s.rejected, s.ignored, s.blank)
        );
        assert_eq!(
            (w.seen.first, w.seen.last, &w.seen.days),
            (s.seen.first, s.seen.last, &s.seen.days)
        );
        assert_eq!((w.seen.filled, &w.warnings), (s.seen.filled, &s.warnings));
        assert_eq!(w.seen.first_token_uses, s.seen.first_token_uses);
        let mut we = whole.events.clone();
        let mut se = split.events.clone();
        we.rechunk_mut();
        se.rechunk_mut();
        // Token codes are given in the order ids are placed, which parts read side by side
        // change: the ids themselves must be the same.
        named_tokens(&mut we, &whole.tokens);
        named_tokens(&mut se, &split.tokens);
        assert!(we.equals_missing(&se), "{we}\n{se}");
        // The same in parts with the cold columns beside the frame, the later half on disk:
        // each part's line numbers are shifted in its chunks instead of in the frame.
        let c = dir.path().join("c");
        std::fs::create_dir_all(&c).expect("dir");
        let half = we.height() as u64 / 2;
        let cold = read_cold(
            path,
            part_bytes,
            &c,
            Some(crate::normalize::ColdSink::new(&c, half)),
        );
        assert!(
            cold.events
                .column(crate::normalize::schema::col::LINE)
                .is_err()
        );
        let names = we.get_column_names_owned();
        let mut ce = cold.cold.restore(&cold.events).expect("restored");
        // Keys and event types unpacked in fewer bytes past the bound compare as ingest made
        // them.
        crate::frame::widen(&mut ce).expect("widened");
        let mut ce = ce.select(names).expect("columns");
        ce.rechunk_mut();
        named_tokens(&mut ce, &cold.tokens);
        assert!(we.equals_missing(&ce), "{we}\n{ce}");
        // Past the bound every chunk went to disk, the held ones at the end.
        let spilled = std::fs::read_dir(&c).expect("cold dir").count();
        assert!(spilled >= cold.cold.chunks(), "{spilled} spilled");
        assert_eq!(rejects(&whole), rejects(&split));
        assert_eq!(whole.rejects[0].sample.len(), split.rejects[0].sample.len());
        (whole, dir)
    }

    /// Reading seals the token table: what only placing ids needs (past the bound, their
    /// fingerprints) is gone before the frame is unpacked beside what reading leaves.
    #[test]
    fn reading_seals_the_token_table() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("tokens.jsonl");
        let text: String = (0..5_000)
            .map(|i| {
                format!(
                    "{{\"timestamp\":\"2025-03-01T10:00:{:02}Z\",\"event_type\":\"access\",\"token_id\":\"t{}\"}}\n",
                    i % 60,
                    i % 700
                )
            })
            .collect();
        std::fs::write(&path, text).expect("write export");
        let cold = dir.path().join("cold");
        std::fs::create_dir_all(&cold).expect("dir");
        let sink = crate::normalize::ColdSink::new(&cold, 0);
        let read = read_cold(&path, u64::MAX / 4, &cold, Some(sink));
        assert_eq!(read.tokens.len(), 700);
        assert!(read.tokens.bytes() < read.tokens.bytes_while_placed());
    }

    /// How many parts of `path` (but the last) end inside a record, of how many.
    fn unclean_parts(path: &std::path::Path, part_bytes: u64) -> (usize, usize) {
        let opts = options();
        let super::Plan::Parts(parts) = super::plan(path, &opts, part_bytes) else {
            panic!("{} is not cut into parts", path.display());
        };
        let unclean = parts[..parts.len() - 1]
            .iter()
            .filter(|p| {
                let mut dicts = crate::normalize::Dictionaries::default();
                let r = super::super::readers::read_file(path, 0, Some(p), &opts, &mut dicts, None);
                !r.clean_end
            })
            .count();
        (unclean, parts.len())
    }

    #[test]
    fn parts_read_like_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = export(dir.path());
        let (whole, _spill) = same_both_ways(&path, 64 << 10);
        let w = &whole.files[0];
        assert!(w.rejected >= 60 && w.blank >= 20, "{w:?}");
        // The keys' first token uses noted while reading are the frame's rows' own.
        let dict = crate::frame::dictionary();
        let rows = crate::ingest::coverage::first_token_uses(std::slice::from_ref(&whole.events));
        let rows: std::collections::BTreeMap<String, i64> = (rows.expect("first uses").iter())
            .map(|(&k, &at)| (dict.name(k).unwrap_or_default().to_string(), at))
            .collect();
        assert!(rows.len() > 1, "{rows:?}");
        assert_eq!(w.seen.first_token_uses.as_ref(), Some(&rows));
        let lines: Vec<u64> = rejects(&whole).iter().map(|r| r.0).collect();
        assert!(
            lines.contains(&(13 + 1)),
            "line numbers are the file's: {lines:?}"
        );
    }

    /// A CSV export with quoted fields (delimiters and doubled quotes inside), a column named
    /// twice, rows of the wrong width and a quote left open; with `breaks`, also fields holding
    /// line breaks, so that cuts fall inside records.
    fn csv_export(dir: &std::path::Path, breaks: bool) -> PathBuf {
        let path = dir.join(if breaks { "breaks.csv" } else { "plain.csv" });
        let mut text = String::from(
            "\u{feff}timestamp,event_type,principal,credential_id,source_ip,user_agent,target_account,principal\n",
        );
        for i in 0..20_000u32 {
            let agent = match i % 7 {
                0 => "\"Mozilla/5.0 (X11, Linux) \"\"quoted\"\"\"".to_string(),
                1 if breaks => format!("\"two\nlines {i}\""),
                _ => format!("agent-{}", i % 13),
            };
            let row = match i % 1009 {
                5 => "2025-03-01T00:00:00Z,access,too,few\n".to_string(),
                6 => "\"2025-03-01T00:00:00Z,access,open quote never closed\n".to_string(),
                7 => "\n".to_string(),
                _ => format!(
                    "2025-03-{:02}T{:02}:00:00Z,access,u{},k{},10.0.0.{},{agent},acct{i},dup\n",
                    1 + i % 28,
                    i % 24,
                    i % 37,
                    i % 11,
                    i % 200
                ),
            };
            text.push_str(&row);
        }
        std::fs::write(&path, text).expect("write export");
        path
    }

    #[test]
    fn csv_parts_read_like_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = csv_export(dir.path(), false);
        let (whole, _spill) = same_both_ways(&plain, 64 << 10);
        let w = &whole.files[0];
        assert!(
            w.parsed > 19_000 && w.rejected >= 30 && w.blank >= 15,
            "{w:?}"
        );
        assert_eq!(w.warnings.len(), 1, "{:?}", w.warnings);
        // Quoted fields without line breaks: every cut is between records.
        let (unclean, parts) = unclean_parts(&plain, 64 << 10);
        assert_eq!(unclean, 0, "of {parts}");
        // Line breaks inside fields: some cuts fall inside a record, and the file is read whole.
        let breaks = csv_export(dir.path(), true);
        same_both_ways(&breaks, 64 << 10);
        let (unclean, parts) = unclean_parts(&breaks, 64 << 10);
        assert!(unclean > 0, "no cut fell inside a record, of {parts}");
    }

    /// `path` compressed as `codec` ("gz", "gz2" for two gzip members, "zst"), optionally cut
    /// short, next to it.
    fn compressed(path: &std::path::Path, codec: &str, truncate: bool) -> PathBuf {
        use std::io::Write;
        let text = std::fs::read(path).expect("export");
        let mut out = match codec {
            "zst" => zstd::encode_all(text.as_slice(), 3).expect("zstd"),
            _ => {
                let half = if codec == "gz2" { text.len() / 2 } else { 0 };
                let mut all = Vec::new();
                for piece in [&text[..half], &text[half..]] {
                    let mut enc =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    enc.write_all(piece).expect("gzip");
                    all.extend(enc.finish().expect("gzip"));
                }
                all
            }
        };
        if truncate {
            out.truncate(out.len() * 2 / 3);
        }
        let name = format!(
            "{}.{codec}{}",
            path.file_name().expect("name").to_string_lossy(),
            if truncate { ".cut" } else { "" }
        );
        let target = path.with_file_name(name);
        std::fs::write(&target, out).expect("write compressed");
        target
    }

    use std::sync::atomic::AtomicUsize;

    /// How many parts `split_stream` cuts `path` into, or nothing when it gives up on cutting.
    fn stream_parts(path: &std::path::Path, part_bytes: u64) -> Option<usize> {
        let mut opts = options();
        opts.part_bytes = part_bytes;
        let super::Plan::Stream(plan) = super::plan(path, &opts, part_bytes) else {
            panic!("{} is not read as a stream in parts", path.display());
        };
        let read = |part: super::Part| {
            let mut dicts = crate::normalize::Dictionaries::default();
            super::super::readers::read_file(path, 0, Some(&part), &opts, &mut dicts, None)
        };
        let counter = super::super::decompress::Counter::default();
        super::super::split_stream::read(path, &plan, &opts, &counter, &AtomicUsize::new(0), &read)
            .map(|p| p.len())
    }

    /// A compressed export decompressed on one core and parsed in parts on the others reads
    /// exactly as one reader reads it: gzip, gzip of two members, zstd; JSON lines and CSV
    /// (with line breaks inside fields, where some cuts fall inside a record). A stream cut
    /// short is not cut into parts and reads as a whole file does, its failure reported.
    #[test]
    fn compressed_parts_read_like_the_whole_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let jsonl = export(dir.path());
        let csv = csv_export(dir.path(), true);
        for codec in ["gz", "gz2", "zst"] {
            for plain in [&jsonl, &csv] {
                let packed = compressed(plain, codec, false);
                let parts = stream_parts(&packed, 64 << 10).expect("cut into parts");
                assert!(parts > 10, "{codec}: {parts} parts");
                let (whole, _spill) = same_both_ways(&packed, 64 << 10);
                assert!(whole.files[0].unreadable.is_none(), "{codec}");
                assert!(whole.files[0].parsed > 19_000, "{codec}");
            }
        }
        let cut_short = compressed(&jsonl, "gz", true);
        assert_eq!(stream_parts(&cut_short, 64 << 10), None);
        let (whole, _spill) = same_both_ways(&cut_short, 64 << 10);
        assert!(whole.files[0].unreadable.is_some());
        assert!(whole.files[0].parsed > 5_000, "{:?}", whole.files[0]);
    }
}
