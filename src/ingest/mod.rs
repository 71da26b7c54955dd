//! Ingest: find the event files, open them whatever their compression, and parse them in parallel.
//!
//! Each file is read by one rayon task into its own column buffers, so files never contend; the
//! buffers are concatenated in the (sorted) file order, which keeps the frame, and therefore every
//! report, independent of thread scheduling. Every record a reader sees is either parsed or
//! quarantined as a [`Reject`], and [`FileStats`] reconciles the two per file.

mod authlog;
pub mod coverage;
pub mod decompress;
pub mod discover;
#[doc(hidden)]
pub mod fuzzing;
mod json_doc;
mod json_flat;
mod json_row;
pub mod lines;
mod parquet;
pub mod quarantine;
pub mod readers;
pub mod sniff;
mod sources;
pub mod split;
mod split_stream;
mod windows;
mod windows_xml;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use indicatif::{ProgressBar, ProgressStyle};
use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{FrameContext, Result};
use crate::normalize::packed::{self, Chunk};
use crate::normalize::{ColdColumns, ColdSink, Dictionaries, EventColumns, TimeParser, Tokens};
pub use discover::{Discovered, discover};
pub use quarantine::FileRejects;
pub use sniff::Format;

use crate::normalize::profile::{self, Profile};

/// An input record that could not be parsed, kept for `rejects.csv`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Reject {
    pub file: String,
    pub line: u64,
    pub reason: String,
    /// The offending text, shortened; log fields are attacker-controlled so it is neutralised on write.
    pub raw: String,
}

/// Per-file reconciliation: `records == parsed + rejected + ignored` (blank lines are counted
/// apart; ignored records are of a known format but carry no authentication event).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FileStats {
    /// Position among the discovered files: the frame's `src_file`.
    #[serde(skip)]
    pub index: u32,
    pub file: String,
    pub format: String,
    pub records: u64,
    pub parsed: u64,
    pub rejected: u64,
    pub ignored: u64,
    pub blank: u64,
    /// Why the file could not be read, or not to its end (cannot open, truncated or corrupt
    /// stream): the run's input is incomplete, which `analyze` treats as an error unless told
    /// to keep going.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unreadable: Option<String>,
    /// What was read but deserves a look (a column named twice in a header).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Time range, field fill and active days, for the coverage report.
    #[serde(skip)]
    pub seen: coverage::Seen,
}

impl FileStats {
    /// Adds the counts of the next part of the same file (see [`split`]).
    fn absorb(&mut self, part: FileStats) {
        self.records += part.records;
        self.parsed += part.parsed;
        self.rejected += part.rejected;
        self.ignored += part.ignored;
        self.blank += part.blank;
        if self.unreadable.is_none() {
            self.unreadable = part.unreadable;
        }
        // A CSV header's warning is found again by every part that is given the header.
        for w in part.warnings {
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        self.seen.merge(part.seen);
    }
}

/// How files are read: the company time zone, an optional forced source or user profile, and the
/// year classic syslog omits.
#[derive(Clone)]
pub struct ReadOptions {
    pub time: TimeParser,
    pub source: Option<Format>,
    pub profile: Option<Profile>,
    /// Year of the first classic syslog stamp of each file; `None`: the latest year that does not
    /// put it in the future.
    pub syslog_year: Option<i32>,
    pub cloudtrail: Profile,
    pub okta: Profile,
    /// The other built-in profiles, in the order of [`profile::VENDORS`].
    pub vendors: Vec<Profile>,
    /// Longest line or CSV record kept (`--max-record-bytes`); longer ones are cut and rejected.
    pub max_record_bytes: usize,
    /// Where each file's rejects are written as they come (see [`quarantine`]); without one
    /// only counts and a sample are kept.
    pub spill_dir: Option<PathBuf>,
    /// Size of the parts a big plain file is cut into (see [`split`]).
    pub part_bytes: u64,
    /// Takes the cold columns out of every chunk read (see [`crate::normalize::cold`]); without
    /// one they stay in the frame.
    pub cold: Option<Arc<ColdSink>>,
    /// Distinct keys up to which a compacted frame's key column is unpacked in two bytes
    /// (`--two-byte-keys-up-to`, [`crate::frame::keys`]).
    pub two_byte_keys_up_to: usize,
    /// Distinct keys, and event types, up to which a compacted frame's column is unpacked in one
    /// byte (`--one-byte-codes-up-to`, [`crate::frame::keys`], [`crate::frame::event_type`]).
    pub one_byte_codes_up_to: usize,
}

/// How a command line asks for files to be read, shared by `analyze`, `inspect` and `ingest`.
#[derive(Debug, Clone, Default)]
pub struct ReadPlan {
    /// Forced source format (`--source`), else detected per file.
    pub source: Option<Format>,
    /// User mapping profile (`--profile`).
    pub profile: Option<PathBuf>,
    /// Year for classic syslog time stamps, which omit it (`None`: inferred).
    pub syslog_year: Option<i32>,
    /// Longest line or CSV record read (`--max-record-bytes`).
    pub max_record_bytes: usize,
}

impl ReadPlan {
    /// The options to read with: the mapping profile loaded from its file, the bound set.
    pub fn options(&self, time: TimeParser) -> Result<ReadOptions> {
        let profile = self.profile.as_deref().map(Profile::load).transpose()?;
        let mut opts = ReadOptions::new(time, self.source, profile, self.syslog_year)?;
        opts.max_record_bytes = self.max_record_bytes;
        Ok(opts)
    }
}

impl ReadOptions {
    /// How far the frame's codes are narrowed once read.
    pub fn narrowing(&self) -> crate::frame::Narrowing {
        crate::frame::Narrowing {
            keys_up_to: self.two_byte_keys_up_to,
            one_byte_up_to: self.one_byte_codes_up_to,
        }
    }

    pub fn new(
        time: TimeParser,
        source: Option<Format>,
        profile: Option<Profile>,
        syslog_year: Option<i32>,
    ) -> Result<Self> {
        let builtin = |name: &str| {
            profile::builtin(name).ok_or_else(|| crate::Error::Argument {
                what: "built-in profile",
                value: name.to_string(),
                reason: "does not parse (build defect)".into(),
            })
        };
        if source == Some(Format::Profile) && profile.is_none() {
            return Err(crate::Error::Argument {
                what: "--source",
                value: "profile".into(),
                reason: "needs --profile FILE (the mapping to read the files with)".into(),
            });
        }
        Ok(ReadOptions {
            time,
            source,
            profile,
            syslog_year,
            cloudtrail: builtin("cloudtrail")?,
            okta: builtin("okta")?,
            vendors: profile::VENDORS
                .iter()
                .map(|name| builtin(name))
                .collect::<Result<_>>()?,
            max_record_bytes: lines::DEFAULT_MAX_RECORD_BYTES,
            spill_dir: None,
            part_bytes: split::PART_BYTES,
            cold: None,
            two_byte_keys_up_to: crate::frame::keys::MAX_KEYS,
            one_byte_codes_up_to: crate::frame::keys::MAX_ONE_BYTE,
        })
    }
}

/// Everything the later stages need from the inputs.
pub struct Ingested {
    pub events: DataFrame,
    /// The frame's cold columns, wherever they are.
    pub cold: ColdColumns,
    /// The token ids behind the codes of the frame's token column.
    pub tokens: Arc<Tokens>,
    pub files: Vec<FileStats>,
    /// Each read file's rejects (see [`quarantine`]), in file order.
    pub rejects: Vec<FileRejects>,
    /// Files of no known format, with the reason: skipped with a warning, listed in the summary.
    pub skipped: Vec<(PathBuf, String)>,
}

const RAW_KEEP: usize = 240;

/// Rows of a chunk of a compacted frame. Once a run is past the cold columns' bound
/// (`--spill-from-events`), the small chunks parsing made are copied into chunks of about this
/// many rows as soon as the frame is read (see [`crate::frame::compact`]): 0.84 GB of 3.34 GB
/// resident after ingest over the 85.9M-event export, ingest no slower (42.8–43.3 s against
/// 43.1–43.9 s, two alternated pairs). Under the bound (the 10M benchmark's 8.7M events, 0.2 GB
/// of columns) the frame stays as read. 4–9 MiB a column, so each is an allocation of its own,
/// and enough chunks (about 80 at 85.9M events) for the passes that split the frame by chunk.
const COMPACT_ROWS: usize = 1 << 20;

/// Reads every event file of `found` into one frame.
pub fn read_events(
    found: &Discovered,
    opts: &ReadOptions,
    show_progress: bool,
) -> Result<Ingested> {
    // Progress in bytes as stored (compressed bytes of a compressed file), with rate and ETA.
    let bytes: u64 = found
        .events
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|m| m.len())
        .sum();
    let bar = show_progress.then(|| {
        let bar = ProgressBar::new(bytes);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} reading {binary_bytes}/{binary_total_bytes} {wide_bar} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    });
    // Big plain files are read in parts, each part a task like a file (see `split`); a big
    // compressed file is one task that decompresses and hands its parts out (`split_stream`).
    let tasks: Vec<Task> = found
        .events
        .iter()
        .zip(0u32..)
        .flat_map(
            |(path, idx)| match split::plan(path, opts, opts.part_bytes) {
                split::Plan::Whole => vec![Task::Whole(idx, path)],
                split::Plan::Parts(parts) => parts
                    .into_iter()
                    .map(|p| Task::Part(idx, path, p))
                    .collect(),
                split::Plan::Stream(plan) => vec![Task::Stream(idx, path, plan)],
            },
        )
        .collect();
    // Dictionaries go from one file to the next (see `Dictionaries`); there are as many as files
    // read at once, and all are freed when the files are read.
    let pool: Mutex<Vec<Dictionaries>> = Mutex::default();
    // Past the bound the token ids wait on disk as they are placed, as the cold columns do.
    let tokens = Arc::new(match &opts.cold {
        Some(sink) => Tokens::spilling_with(sink.clone()),
        None => Tokens::default(),
    });
    let in_flight = std::sync::atomic::AtomicUsize::new(0);
    let read_one = |idx: u32, path: &PathBuf, part: Option<&split::Part>, bar| {
        let taken = pool.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut dicts = taken.unwrap_or_else(|| Dictionaries::new(tokens.clone()));
        let out = readers::read_file(path, idx, part, opts, &mut dicts, bar);
        pool.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(dicts);
        out
    };
    let read: Vec<(u32, readers::FileResult)> = tasks
        .par_iter()
        .flat_map_iter(|task| match task {
            Task::Whole(idx, path) => vec![(*idx, read_one(*idx, path, None, bar.as_ref()))],
            Task::Part(idx, path, part) => {
                vec![(*idx, read_one(*idx, path, Some(part), bar.as_ref()))]
            }
            Task::Stream(idx, path, plan) => {
                let counter = decompress::Counter {
                    bar: bar.clone(),
                    ..Default::default()
                };
                let each = |part: split::Part| read_one(*idx, path, Some(&part), None);
                let parts = split_stream::read(path, plan, opts, &counter, &in_flight, &each)
                    .unwrap_or_else(|| vec![read_one(*idx, path, None, None)]);
                counter.finish_file(path);
                parts.into_iter().map(|r| (*idx, r)).collect()
            }
        })
        .collect();
    // A CSV part that ended inside a quoted field means a cut fell inside a record: that file
    // is read again whole (its pool of dictionaries is gone; a fresh one serves).
    let results: Vec<readers::FileResult> = join_parts(read)?
        .into_iter()
        .map(|(idx, result, whole)| match whole {
            false => result,
            true => {
                let mut dicts = Dictionaries::new(tokens.clone());
                let path = &found.events[idx as usize];
                readers::read_file(path, idx, None, opts, &mut dicts, None)
            }
        })
        .collect();
    drop(pool);
    // Reading placed every id: what only placing needs (at 85.9M events, 0.4 GB of
    // fingerprints) goes before the frame is unpacked beside what reading leaves.
    tokens.seal();
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }

    let mut frames = Vec::new();
    let mut order = Vec::new();
    let mut files = Vec::with_capacity(results.len());
    let mut rejects = Vec::new();
    let mut skipped = Vec::new();
    let mut stretches = Vec::new();
    for (mut result, path) in results.into_iter().zip(&found.events) {
        if let Some(e) = result.error {
            return Err(e);
        }
        if let Some(reason) = result.skipped {
            skipped.push((path.clone(), reason));
            continue;
        }
        files.push(result.stats);
        rejects.push(std::mem::take(&mut result.rejects));
        order.append(&mut result.cold);
        stretches.push(result.frames.iter().map(Chunk::height).sum());
        frames.append(&mut result.frames);
    }
    // Past the bound the frame is compacted (below), and chunks packed while reading
    // (`normalize::packed`) are unpacked now that what reading held is freed, straight into the
    // chunks compaction would cut. Under it chunks stay as read: rechunking would copy the whole
    // table once more at peak memory.
    let compacting = (opts.cold.as_ref())
        .is_some_and(|sink| sink.past(stretches.iter().sum::<usize>() as u64).is_some());
    let frames: Vec<DataFrame> = match compacting {
        true => {
            // Pages freed while copying go back at once where the frame is big enough to want it.
            crate::memory::fit_to_run(stretches.iter().sum::<usize>() as u64);
            packed::unpack_compacted(frames, &stretches, COMPACT_ROWS, opts.narrowing())?
        }
        false => (frames.into_iter())
            .map(Chunk::into_frame)
            .collect::<Result<_>>()?,
    };
    let mut events = match crate::frame::stack(frames.into_iter().map(Ok), "concatenating files")? {
        Some(df) => df,
        None => EventColumns::new().take_frame()?,
    };
    let cold = match &opts.cold {
        None => ColdColumns::default(),
        Some(sink) => {
            if order.is_empty() {
                order.push(sink.take(&mut events)?);
            }
            sink.finish(&order)?
        }
    };
    cold.check(&events)?;
    if compacting {
        // What is left to copy: the runs of chunks held as read (before the bound).
        events = crate::frame::compact(events, COMPACT_ROWS, &stretches)?;
    }
    Ok(Ingested {
        events,
        cold,
        tokens,
        files,
        rejects,
        skipped,
    })
}

/// One unit of parallel reading.
enum Task<'a> {
    Whole(u32, &'a PathBuf),
    /// A part of a big plain file.
    Part(u32, &'a PathBuf, split::Part),
    /// A big compressed file, decompressed here and parsed in parts elsewhere.
    Stream(u32, &'a PathBuf, split::StreamPlan),
}

/// Joins the parts of each split file, in order, into the result one reader would have given:
/// counts added, line numbers shifted by the lines of the parts before. The flag says a part
/// before the last ended inside a record, so the file must be read whole instead.
fn join_parts(
    read: Vec<(u32, readers::FileResult)>,
) -> Result<Vec<(u32, readers::FileResult, bool)>> {
    let mut out: Vec<(u32, readers::FileResult, bool)> = Vec::new();
    for (idx, part) in read {
        let Some((_, whole, again)) = out.last_mut().filter(|(last, ..)| *last == idx) else {
            out.push((idx, part, false));
            continue;
        };
        *again |= !whole.clean_end;
        let offset = whole.lines;
        for chunk in part.frames {
            whole.frames.push(shift_lines(chunk, offset)?);
        }
        for mut chunk in part.cold {
            chunk.shift_lines(offset);
            whole.cold.push(chunk);
        }
        whole.stats.absorb(part.stats);
        whole.rejects.append(part.rejects, offset);
        whole.error = whole.error.take().or(part.error);
        whole.skipped = whole.skipped.take().or(part.skipped);
        whole.lines += part.lines;
        whole.clean_end = part.clean_end;
    }
    Ok(out)
}

/// Adds `offset` to a chunk's line numbers.
fn shift_lines(chunk: Chunk, offset: u64) -> Result<Chunk> {
    use crate::normalize::schema::col::LINE;
    // A packed chunk's line numbers, like every chunk's there, went to the cold sink, which
    // shifts them itself.
    let mut df = match chunk {
        Chunk::Frame(df) if offset > 0 && df.column(LINE).is_ok() => df,
        other => return Ok(other),
    };
    let shifted = df.column(LINE).stage("shifting line numbers")? + offset;
    df.with_column(shifted).stage("shifting line numbers")?;
    Ok(Chunk::Frame(df))
}

/// Shortens a raw line for quarantine without splitting a UTF-8 character, and without the
/// signature of any JWT in it (a rejected gateway line must not hand out a replayable token).
pub(crate) fn shorten(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = crate::normalize::jwt::redact(&text);
    let trimmed = text.trim_end_matches(['\r', '\n']);
    match trimmed.char_indices().nth(RAW_KEEP) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}
