//! Cold columns: the event columns that no count over every row reads but a few passes that
//! can take them a run of rows at a time — instant, source file and line, user agent, action,
//! token code, target account, principal, source address — kept beside the frame instead of in
//! it, and written to disk once a run is big (`analyze --spill-from-events`).
//!
//! File, line, user agent and action name where a finding's first event is, which endpoints and
//! clients a flagged entity used, and which failed logins were for non-existent users: each is
//! read for a selection of rows, or chunk by chunk after ranking, never while enumeration's
//! reduction sets the run's peak. At 85.9M events they were 1.74 GB of the 4.6 GB frame, all of
//! it resident through every detector (`docs/scale.md`, eighteenth session, has the figures).
//! Token codes are read whole by two passes (the first token-bearing use of each key, and
//! forged tokens' judgement; its facts read the chunks that hold issuances), target accounts by
//! three (enumeration's related counts, the charts' series, and the window's reduction into
//! records, which holds them for its pass only), each a run of chunks at a time
//! ([`ColdColumns::runs`], or [`ColdColumns::runs_within`] the chunks that hold the event types
//! a pass asks of); the rest read them for the rows they select. 8 bytes an event the frame no
//! longer holds under every other stage (0.67 GB at 85.9M events; `docs/scale.md`,
//! thirty-third session). The principal (fifty-third session) is read by the window's
//! reduction a group of days at a time with the targets, by offboarding's cut-offs a run of
//! chunks at a time, by the usage of shown principals span by span, and for the rows the other
//! passes select: the 100.09M-event frame 1,740 → 1,358 MB, the 300.15M one 5,217 → 4,073 MB.
//! Read back from a state it stays in the frame (`state::partition::held_in_frame`). The
//! source address (fifty-fourth session) goes the same way: the window's reduction reads it with
//! the targets and principals (the network derived from it there), login attacks read it for the
//! logins alone, and the passes that find a flagged network's rows learn the networks of the
//! addresses ingest's chunks listed ([`ColdColumns::addresses`]) instead of reading the column
//! back: the 100.09M-event frame 1,358 → 976 MB. The instants (fifty-fifth session) follow: the
//! time window and a state's rows of a few days ask of them a run at a time
//! ([`ColdColumns::instants_where`]), the frame's span of time comes from what the sink saw of
//! each chunk ([`ColdColumns::ts_range`]), the window's reduction reads those of its access
//! rows a run of chunks at a time, and every other pass already read them with a cold column
//! or for its selected rows: the 100.09M-event frame 976 → 212 MB, the 300.15M one 2,928 → 638
//! MB. Read back from a state they stay in the frame, with the principal and the address.
//!
//! A chunk of rows as read keeps its cold columns as a small frame (`Held`) until the run has
//! read `spill_from` events; from then on each chunk goes to a Parquet file of its own in the
//! run's scratch directory (`Spilled`), and the held ones follow at once
//! (`ColdSink::spill_held`), so neither the rest of ingest nor the detectors stand on them.
//! Codes are the run's dictionary codes (and its token codes), valid for this
//! process only: the files are scratch, removed with the report's staging directory. Read back
//! from a state, the columns are already on disk in its partitions: each chunk is then a
//! [`Loader`] of one partition row group's (`state::partition::read_hot`), read when asked.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::{ParallelStrategy, ParquetReader};
use rayon::prelude::*;
use roaring::RoaringBitmap;

use crate::error::{Error, FrameContext, Result};
use crate::frame::spanning;
use crate::normalize::schema::col;

/// The cold columns.
pub const COLUMNS: [&str; 9] = [
    col::TS,
    col::FILE,
    col::LINE,
    col::USER_AGENT,
    col::ACTION,
    col::TOKEN,
    col::TARGET,
    col::PRINCIPAL,
    col::SOURCE_IP,
];

/// A column a selection may ask for ([`ColdColumns::select`]): the frame row of each selected
/// row, so that the file and line of the few rows that become evidence are read alone, not the
/// whole selection's.
pub const ROW: &str = "__row";

/// Rows a pass over every row reads at once when it reads a cold column ([`ColdColumns::runs`]):
/// 16 MB of token codes, the chunks of a run read side by side.
pub const RUN_ROWS: usize = 4 << 20;

/// Events read before chunks go to disk: runs the size of the 10M benchmark (8.7M events) never
/// write, and at most this many events' cold columns (~580 MB) wait in memory during ingest.
pub const SPILL_FROM: u64 = 16_000_000;

/// Reads one chunk's cold columns `names`, in that order and the frame's types, from where they
/// already are on disk (a state's partitions), so they are neither read nor written again until
/// evidence asks for them.
pub type Loader = Arc<dyn Fn(&[&str]) -> Result<DataFrame> + Send + Sync>;

/// Where one chunk's cold columns are.
#[derive(Clone)]
enum Stored {
    Held(DataFrame),
    Spilled(PathBuf),
    Elsewhere(Loader),
}

/// A cold column of no rows, in the frame's type.
fn empty(name: &str) -> Column {
    let dtype = match name {
        col::FILE | col::TOKEN => DataType::UInt32,
        col::LINE => DataType::UInt64,
        col::TS => DataType::Int64,
        // The name columns: the run's dictionary's codes.
        _ => DataType::UInt32,
    };
    Column::new_empty(name.into(), &dtype)
}

struct Part {
    stored: Stored,
    rows: usize,
    line_offset: u64,
    /// The chunk's first and last instant, when the sink saw them (none: no rows, or read
    /// from elsewhere).
    instants: Option<(i64, i64)>,
}

/// Cold columns that are in the frame itself.
pub static IN_FRAME: ColdColumns = ColdColumns {
    parts: Vec::new(),
    starts: Vec::new(),
    kept: None,
    addresses: None,
};

/// The cold columns of the event frame, wherever they are: in the frame itself (inspect, tests,
/// a state's new files while they are stored), or in chunks beside it.
#[derive(Default)]
pub struct ColdColumns {
    parts: Vec<Part>,
    /// Original row of each chunk's first row.
    starts: Vec<usize>,
    /// The original row of each frame row, once the frame was filtered (a time window).
    kept: Option<Vec<IdxSize>>,
    /// Every source address code ingest's chunks held (those a time window dropped too), so
    /// that the networks of the addresses are learned without reading the column back
    /// ([`crate::normalize::networks::lookup`]). `None` where the chunks were not made by a
    /// [`ColdSink`] (a state's read-back, which keeps the addresses in the frame).
    addresses: Option<RoaringBitmap>,
}

/// Rows of a span when the cold columns are in the frame: what ingest's chunks hold, so passes
/// run side by side as they do over chunks.
const IN_FRAME_SPAN: usize = 128 * 1024;

/// Frame rows whose cold columns lie in one chunk.
pub struct Span {
    /// From the first frame row to the last; every row between them in [`ColdColumns::spans`].
    pub rows: Range<usize>,
    /// The chunk; `None` when the cold columns are in the frame itself.
    part: Option<usize>,
    /// Rows within the chunk, when not all of `rows`' chunk rows in order.
    local: Option<Vec<IdxSize>>,
}

/// Spilled chunks are this run's scratch: a state run reads its new files into columns of their
/// own, stores them, and drops them long before the run's scratch folder goes.
impl Drop for ColdColumns {
    fn drop(&mut self) {
        for part in &self.parts {
            if let Stored::Spilled(path) = &part.stored {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl ColdColumns {
    /// Cold columns read by `loader`, chunk by chunk: (rows, loader) in the frame's row order.
    pub fn elsewhere(chunks: Vec<(usize, Loader)>) -> ColdColumns {
        let parts = chunks
            .into_iter()
            .map(|(rows, loader)| Part {
                stored: Stored::Elsewhere(loader),
                rows,
                line_offset: 0,
                instants: None,
            })
            .collect();
        ColdColumns::of(parts)
    }

    fn of(parts: Vec<Part>) -> ColdColumns {
        let mut starts = Vec::with_capacity(parts.len());
        let mut at = 0;
        for p in &parts {
            starts.push(at);
            at += p.rows;
        }
        ColdColumns {
            parts,
            starts,
            kept: None,
            addresses: None,
        }
    }

    /// Every source address code ingest's chunks held, when a [`ColdSink`] made them.
    pub fn addresses(&self) -> Option<&RoaringBitmap> {
        self.addresses.as_ref()
    }

    /// The first and last instant of the frame's rows, wherever the instants are: from what the
    /// sink saw of each chunk while no time window has dropped rows, else read a run at a time.
    pub fn ts_range(&self, events: &DataFrame) -> Result<Option<(i64, i64)>> {
        if events.column(col::TS).is_ok() {
            return crate::frame::ts_range(events);
        }
        let seen =
            self.kept.is_none() && (self.parts.iter()).all(|p| p.rows == 0 || p.instants.is_some());
        if seen {
            return Ok((self.parts.iter().map(|p| p.instants)).fold(None, spanning));
        }
        let mut range = None;
        self.runs(events, &[col::TS], RUN_ROWS, |run| {
            for (_, df) in run {
                range = spanning(range, crate::frame::ts_range(&df)?);
            }
            Ok(())
        })?;
        Ok(range)
    }

    /// Whether `keep` holds of each frame row's instant, in the frame or beside it (read a run
    /// at a time): the rows of a time window, or of the days a state's records lack.
    pub fn instants_where(
        &self,
        events: &DataFrame,
        keep: impl Fn(i64) -> bool + Sync,
    ) -> Result<BooleanChunked> {
        let mut mask = BooleanChunked::full("keep".into(), false, 0);
        self.runs(events, &[col::TS], RUN_ROWS, |run| {
            let pieces = (run.par_iter())
                .map(|(_, df)| {
                    let ts = crate::frame::ts_arrays(df)?;
                    let bits: BooleanChunked = (ts.iter())
                        .flat_map(|chunk| chunk.iter().map(|&t| keep(t)))
                        .collect_ca("keep".into());
                    Ok(bits)
                })
                .collect::<Result<Vec<_>>>()?;
            for piece in &pieces {
                mask.append(piece).stage("selecting rows by instant")?;
            }
            Ok(())
        })?;
        Ok(mask)
    }

    /// How many chunks hold the cold columns (none when they are in the frame).
    pub fn chunks(&self) -> usize {
        self.parts.len()
    }

    /// The frame with its cold columns put back, for the checks that compare frames (tests,
    /// the `file_split` fuzz target).
    pub(crate) fn restore(&self, events: &DataFrame) -> Result<DataFrame> {
        let mut out = events.clone();
        if self.in_frame(events) {
            return Ok(out);
        }
        let all = self.gather(self.spans(events), &COLUMNS)?;
        for c in all.columns() {
            out.with_column(c.clone()).stage("restoring cold columns")?;
        }
        in_frame_order(out)
    }

    /// `names` of every frame row, hot or cold, a run of chunks of about `rows` rows at a time
    /// (at least one chunk), in row order: each run handed to `each` as its chunks' frames (each
    /// of one chunk a column), each with its first frame row. For the passes over every row
    /// that read a cold column (token codes, target accounts): the column is never whole in
    /// memory, and a run's chunks are read side by side.
    pub fn runs(
        &self,
        events: &DataFrame,
        names: &[&str],
        rows: usize,
        each: impl FnMut(Vec<(usize, DataFrame)>) -> Result<()>,
    ) -> Result<()> {
        self.runs_within(events, names, rows, None, each)
    }

    /// [`Self::runs`] over the chunks that hold a row of `within` alone (sorted, disjoint frame
    /// rows; `None`: every chunk), each chunk whole: for a pass that asks of a few event types,
    /// whose rows [`crate::frame::event_type::TypesByChunk`] places, so the cold columns of the
    /// other chunks are never read.
    pub fn runs_within(
        &self,
        events: &DataFrame,
        names: &[&str],
        rows: usize,
        within: Option<&[Range<usize>]>,
        mut each: impl FnMut(Vec<(usize, DataFrame)>) -> Result<()>,
    ) -> Result<()> {
        let hot: Vec<&str> = (names.iter().copied())
            .filter(|n| events.column(n).is_ok())
            .collect();
        let cold: Vec<&str> = (names.iter().copied())
            .filter(|n| !hot.contains(n))
            .collect();
        if let Some(missing) = cold
            .iter()
            .find(|n| !COLUMNS.contains(n) || self.parts.is_empty())
        {
            return Err(Error::Internal(format!(
                "column {missing} is neither in the frame nor beside it"
            )));
        }
        let mut spans = match cold.is_empty() {
            // In the frame already (the frame as ingest made it, or a test's).
            true => in_frame_spans(events.height()),
            false => self.spans(events),
        };
        if let Some(within) = within {
            spans.retain(|s| overlaps(&s.rows, within));
        }
        let sizes: Vec<usize> = spans.iter().map(|s| s.rows.len()).collect();
        let hot_frame = events
            .select(hot.iter().copied())
            .stage("reading cold columns")?;
        for run in crate::frame::runs(&sizes, rows) {
            let frames = spans[run]
                .par_iter()
                .map(|span| {
                    let slice = hot_frame.slice(span.rows.start as i64, span.rows.len());
                    // One chunk a column, made on this thread (see `load`): a span is one chunk
                    // as ingest or a partition's row group made it, so this rarely copies.
                    let mut columns: Vec<Column> =
                        (slice.columns().iter()).map(|c| c.rechunk()).collect();
                    if !cold.is_empty() {
                        columns.extend(self.load(span, &cold)?.columns().iter().cloned());
                    }
                    let df = DataFrame::new(span.rows.len(), columns)
                        .and_then(|df| df.select(names.iter().copied()))
                        .stage("reading cold columns")?;
                    Ok((span.rows.start, df))
                })
                .collect::<Result<Vec<_>>>()?;
            each(frames)?;
        }
        Ok(())
    }

    /// The frame with the cold columns `names` read and put beside its own, chunk for chunk as
    /// the spans cut them: for a pass that reads whole columns of the frame (the window's
    /// reduction into records) and keeps the frame for the pass only.
    pub fn with_columns(&self, events: &DataFrame, names: &[&str]) -> Result<DataFrame> {
        if names.iter().all(|n| events.column(n).is_ok()) {
            return Ok(events.clone());
        }
        let mut pieces: Vec<DataFrame> = Vec::new();
        self.runs(events, names, RUN_ROWS, |run| {
            pieces.extend(run.into_iter().map(|(_, df)| df));
            Ok(())
        })?;
        let mut out = events.clone();
        let read = crate::frame::stack(pieces.into_iter().map(Ok), "reading cold columns")?;
        let lengths = crate::frame::chunk_lengths(events);
        for c in read.map(DataFrame::into_columns).unwrap_or_default() {
            if events.column(c.name().as_str()).is_err() {
                let c = crate::frame::chunked_as(c, &lengths)?;
                out.with_column(c).stage("reading cold columns")?;
            }
        }
        Ok(out)
    }

    /// Of the frame rows `rows` (sorted), those whose column `name` (cold or not) is not null,
    /// in order: the column is read for the chunks that hold those rows only. What a question
    /// on a few rows asks of a cold column before it selects them (the hosts of successful
    /// logins, among a gateway's logins that name none).
    pub fn rows_present(
        &self,
        events: &DataFrame,
        rows: Vec<IdxSize>,
        name: &str,
    ) -> Result<Vec<IdxSize>> {
        self.rows_kept(events, rows, name, |column| {
            Ok(column
                .is_not_null()
                .iter()
                .map(|p| p == Some(true))
                .collect())
        })
    }

    /// Of the frame rows `rows` (sorted), those whose name column `name` (cold or not)
    /// holds a code `keep` accepts (never a null), in order, the column read as in
    /// [`Self::rows_present`]: the rows of a few flagged addresses or principals among every
    /// login, without the column gathered for all of them first (at 300.15M events that
    /// gathering stood 0.75 GB above what the detectors held).
    pub fn rows_coded(
        &self,
        events: &DataFrame,
        rows: Vec<IdxSize>,
        name: &str,
        keep: impl Fn(u32) -> bool + Sync,
    ) -> Result<Vec<IdxSize>> {
        use crate::frame::NULL;
        self.rows_kept(events, rows, name, |column| {
            let codes = crate::frame::codes_of(column)?;
            Ok(codes.into_iter().map(|c| c != NULL && keep(c)).collect())
        })
    }

    /// Of the frame rows `rows` (sorted), those for which `keep`, asked of column `name` at
    /// those rows (a chunk's at a time where the column is beside the frame), is true.
    fn rows_kept(
        &self,
        events: &DataFrame,
        rows: Vec<IdxSize>,
        name: &str,
        keep: impl Fn(&Column) -> Result<Vec<bool>> + Sync,
    ) -> Result<Vec<IdxSize>> {
        if let Ok(column) = events.column(name) {
            // Only the asked rows gathered: a mask of every row was a pass over the frame for
            // a question on a few of them.
            let asked = IdxCa::from_vec("rows".into(), rows.clone());
            let held = column.take(&asked).stage("reading cold columns")?;
            return Ok((rows.into_iter().zip(keep(&held)?))
                .filter(|(_, kept)| *kept)
                .map(|(r, _)| r)
                .collect());
        }
        if self.parts.is_empty() {
            return Err(Error::Internal(format!(
                "column {name} is neither in the frame nor beside it"
            )));
        }
        let spans = self.spans_of(rows.iter().copied());
        let kept = (spans.par_iter())
            .map(|span| -> Result<Vec<IdxSize>> {
                let read = self.load(span, &[name])?;
                let column = read.column(name).stage("reading cold columns")?;
                // The span's rows as asked, in order (each read row is one of them).
                let (from, to) = (span.rows.start as IdxSize, span.rows.end as IdxSize);
                let (at, until) = (
                    rows.partition_point(|&r| r < from),
                    rows.partition_point(|&r| r < to),
                );
                Ok((rows[at..until].iter().zip(keep(column)?))
                    .filter(|(_, kept)| *kept)
                    .map(|(&r, _)| r)
                    .collect())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(kept.into_iter().flatten().collect())
    }

    /// Whether the cold columns are in the frame itself.
    fn in_frame(&self, events: &DataFrame) -> bool {
        events.column(col::FILE).is_ok()
    }

    /// Checks that the chunks cover the frame's rows, once ingest is done.
    pub fn check(&self, events: &DataFrame) -> Result<()> {
        let rows: usize = self.parts.iter().map(|p| p.rows).sum();
        if self.in_frame(events) || rows == events.height() {
            return Ok(());
        }
        Err(Error::Internal(format!(
            "cold columns cover {rows} rows of a frame of {}",
            events.height()
        )))
    }

    /// Keeps the rows of `mask` (the frame was filtered by it).
    pub fn retain(&mut self, mask: &BooleanChunked) {
        let old = self.kept.take();
        let kept: Vec<IdxSize> = (rows_of(mask).into_iter())
            .map(|r| old.as_ref().map_or(r, |o| o[r as usize]))
            .collect();
        self.kept = Some(kept);
    }

    /// `names` of the frame rows `rows` (any order), cold or not, in that order; [`ROW`] among
    /// them gives the rows themselves.
    pub fn select(
        &self,
        events: &DataFrame,
        names: &[&str],
        rows: &[IdxSize],
    ) -> Result<DataFrame> {
        let mut out = if self.in_frame(events) {
            let idx = IdxCa::from_vec("rows".into(), rows.to_vec());
            let real: Vec<&str> = names.iter().copied().filter(|n| *n != ROW).collect();
            events
                .select(real)
                .and_then(|df| df.take(&idx))
                .stage("selecting rows")?
        } else {
            self.select_beside(events, names, rows)?
        };
        if names.contains(&ROW) {
            out.with_column(Column::new(ROW.into(), rows.to_vec()))
                .stage("selecting rows")?;
        }
        out.select(names.iter().copied()).stage("selecting rows")
    }

    /// [`Self::select`] of a frame whose cold columns are beside it, but for [`ROW`].
    fn select_beside(
        &self,
        events: &DataFrame,
        names: &[&str],
        rows: &[IdxSize],
    ) -> Result<DataFrame> {
        // A cold column the frame holds (a test's frame) is read from the frame.
        let in_events = |n: &&str| events.column(n).is_ok();
        let hot: Vec<&str> = (names.iter().copied())
            .filter(|n| *n != ROW && (in_events(n) || !COLUMNS.contains(n)))
            .collect();
        // The rows as polars' indices only for columns the frame holds: a copy of them.
        let mut out = match hot.is_empty() {
            true => DataFrame::empty_with_height(rows.len()),
            false => (events.select(hot))
                .and_then(|df| df.take(&IdxCa::from_vec("rows".into(), rows.to_vec())))
                .stage("selecting rows")?,
        };
        let cold: Vec<&str> = (COLUMNS.iter().copied())
            .filter(|n| names.contains(n) && !in_events(n))
            .collect();
        if let Some(missing) = cold.first().filter(|_| self.parts.is_empty()) {
            return Err(Error::Internal(format!(
                "column {missing} is neither in the frame nor beside it"
            )));
        }
        if !cold.is_empty() {
            // Gathered in row order, chunk by chunk, then put in the order asked for. Rows
            // asked for in order (a group of days' selected rows) are gathered as they are: the
            // order, the way back and the frame put back in order stood 0.3 GB over a group of
            // 12.5M rows of the 300.15M-event export, the records stage's peak (temporary probes,
            // fifty-eighth session).
            let gathered = match rows.is_sorted() {
                true => self.gather(self.spans_of(rows.iter().copied()), &cold)?,
                false => {
                    let mut order: Vec<(IdxSize, IdxSize)> =
                        rows.iter().zip(0..).map(|(&r, i)| (r, i)).collect();
                    order.sort_unstable();
                    let gathered = self.gather(self.spans_of(order.iter().map(|o| o.0)), &cold)?;
                    let mut back = vec![0 as IdxSize; order.len()];
                    for (at, (_, i)) in order.iter().enumerate() {
                        back[*i as usize] = at as IdxSize;
                    }
                    drop(order);
                    gathered
                        .take(&IdxCa::from_vec("back".into(), back))
                        .stage("selecting rows")?
                }
            };
            if out.width() == 0 {
                return Ok(gathered);
            }
            for c in gathered.columns() {
                out.with_column(c.clone()).stage("selecting rows")?;
            }
        }
        Ok(out)
    }

    /// [`Self::select`] of the rows where `keep` holds (a null is false), `keep` naming columns
    /// the frame holds.
    pub fn rows_where(&self, events: &DataFrame, keep: Expr, names: &[&str]) -> Result<DataFrame> {
        let mask = crate::frame::mask_of(events, keep)?;
        self.select_where(events, names, &mask)
    }

    /// [`Self::select`] of the rows where `mask` is true.
    pub fn select_where(
        &self,
        events: &DataFrame,
        names: &[&str],
        mask: &BooleanChunked,
    ) -> Result<DataFrame> {
        self.select(events, names, &rows_of(mask))
    }

    /// Every frame row, as runs within one chunk each (for passes over all rows).
    pub fn spans(&self, events: &DataFrame) -> Vec<Span> {
        if self.in_frame(events) {
            return in_frame_spans(events.height());
        }
        // Every row of every chunk, unless a time window kept some: the chunks themselves.
        // Found row by row, each pass over the 85.9M-event state's rows listed all of them (0.34
        // GB, on fresh pages) to find that each chunk is whole. The night's first token uses
        // took 0.75–0.76 → 0.61–0.62 s and the run 25.6–25.7 → 24.8–25.4 s (two alternated
        // pairs, `--timings`; forty-sixth session).
        let rows: usize = self.parts.iter().map(|p| p.rows).sum();
        if self.kept.is_none() && rows == events.height() {
            return (self.starts.iter().zip(&self.parts).enumerate())
                .filter(|(_, (_, p))| p.rows > 0)
                .map(|(part, (&start, p))| Span {
                    rows: start..start + p.rows,
                    part: Some(part),
                    local: None,
                })
                .collect();
        }
        self.spans_of(0..events.height() as IdxSize)
    }

    /// Sorted frame rows (repeats allowed) as runs within one chunk each.
    fn spans_of(&self, rows: impl IntoIterator<Item = IdxSize>) -> Vec<Span> {
        let original = |r: IdxSize| match &self.kept {
            Some(k) => k[r as usize] as usize,
            None => r as usize,
        };
        let mut out: Vec<Span> = Vec::new();
        let mut rows = rows.into_iter().peekable();
        while let Some(&first) = rows.peek() {
            let at = original(first);
            let part = self.starts.partition_point(|&s| s <= at) - 1;
            let (start, len) = (self.starts[part], self.parts[part].rows);
            let (mut last, mut local) = (first, Vec::new());
            while let Some(r) = rows.next_if(|&r| original(r) < start + len) {
                local.push((original(r) - start) as IdxSize);
                last = r;
            }
            // Sorted, as many as the chunk's rows, from its first to its last: every row once.
            let whole = local.len() == len
                && local.first() == Some(&0)
                && local.last() == Some(&(len as IdxSize - 1));
            out.push(Span {
                rows: first as usize..last as usize + 1,
                part: Some(part),
                local: (!whole).then_some(local),
            });
        }
        out
    }

    /// The cold columns `names` of `spans`' rows, one after another (none: empty columns).
    fn gather(&self, spans: Vec<Span>, names: &[&str]) -> Result<DataFrame> {
        // Side by side, as `rows_present` reads its spans (`load` keeps off polars' pool). A
        // group of days' targets, read a span after another on one thread, left the other core
        // idle: over the 85.9M-event export their 7 groups took 2.50–2.57 s instead of 3.03–3.08 s
        // (two alternated pairs, temporary probes), over the 257.5M one 9.2–9.3 s (two runs)
        // instead of 12.8 s (one run, slower in every phase); reports byte-identical.
        let pieces: Vec<Result<DataFrame>> =
            spans.par_iter().map(|s| self.load(s, names)).collect();
        match crate::frame::stack(pieces, "reading cold columns")? {
            Some(all) => Ok(all),
            None => DataFrame::new(0, names.iter().map(|n| empty(n)).collect())
                .stage("reading cold columns"),
        }
    }

    /// The cold columns `names` of one span's rows; with the frame for cold columns in it.
    pub fn span(&self, events: &DataFrame, span: &Span, names: &[&str]) -> Result<DataFrame> {
        if span.part.is_none() {
            return events
                .select(names.iter().copied())
                .map(|df| df.slice(span.rows.start as i64, span.rows.len()))
                .stage("reading cold columns");
        }
        self.load(span, names)
    }

    /// A span of a chunk beside the frame.
    fn load(&self, span: &Span, names: &[&str]) -> Result<DataFrame> {
        let Some(part) = span.part.map(|p| &self.parts[p]) else {
            return Err(Error::Internal(
                "a span of the frame read as a chunk".into(),
            ));
        };
        let mut df = match &part.stored {
            Stored::Held(df) => df.select(names.iter().copied()),
            Stored::Spilled(path) => read(path, names),
            Stored::Elsewhere(loader) => Ok(loader(names)?),
        }
        .stage("reading cold columns")?;
        if let Some(local) = &span.local {
            // Column by column on this thread: `DataFrame::take` hands the columns to polars'
            // own pool, and a rayon worker blocked on another pool steals more spans meanwhile,
            // each going one frame deeper (a stack overflow at 85.9M events, 655 chunks).
            let idx = IdxCa::from_vec("local".into(), local.clone());
            let columns = (df.columns().iter())
                .map(|c| c.take(&idx))
                .collect::<PolarsResult<Vec<_>>>()
                .stage("reading cold columns")?;
            df = DataFrame::new(local.len(), columns).stage("reading cold columns")?;
        }
        if part.line_offset > 0 && names.contains(&col::LINE) {
            let shifted = df.column(col::LINE).stage("reading cold columns")? + part.line_offset;
            df.with_column(shifted).stage("reading cold columns")?;
        }
        Ok(df)
    }
}

/// Whether `rows` shares a row with one of `within` (sorted, disjoint).
fn overlaps(rows: &Range<usize>, within: &[Range<usize>]) -> bool {
    let next = within.partition_point(|r| r.end <= rows.start);
    within.get(next).is_some_and(|r| r.start < rows.end)
}

/// The rows where `mask` is true (a null is false), in order, read from each chunk's bits (its
/// values and validity joined): the selections of a run are a few rows of the whole frame, and
/// polars' iterator, one `Option<bool>` a row, took about 0.1 s of every selection over the
/// 85.9M-event state (offboarding's 69 late rows of a revoked key: 107 ms to select).
pub fn rows_of(mask: &BooleanChunked) -> Vec<IdxSize> {
    let mut rows = Vec::new();
    let mut first: IdxSize = 0;
    for chunk in mask.downcast_iter() {
        let set = match chunk.validity() {
            Some(valid) if valid.unset_bits() > 0 => chunk.values() & valid,
            _ => chunk.values().clone(),
        };
        if set.set_bits() > 0 {
            rows.extend(set.true_idx_iter().map(|i| first + i as IdxSize));
        }
        first += chunk.len() as IdxSize;
    }
    rows
}

/// `n` frame rows as spans of [`IN_FRAME_SPAN`], for columns the frame holds itself.
fn in_frame_spans(n: usize) -> Vec<Span> {
    (0..n)
        .step_by(IN_FRAME_SPAN)
        .map(|start| Span {
            rows: start..(start + IN_FRAME_SPAN).min(n),
            part: None,
            local: None,
        })
        .collect()
}

/// `df`'s columns in the order of the event frame's (cold columns put back are appended):
/// a partition stores them in that order.
pub fn in_frame_order(df: DataFrame) -> Result<DataFrame> {
    let layout = crate::normalize::EventColumns::new().take_frame()?;
    let names = (layout.get_column_names().into_iter())
        .filter(|n| df.column(n.as_str()).is_ok())
        .map(|n| n.as_str().to_string());
    df.select(names).stage("ordering columns")
}

/// A spilled chunk's `names`, back in the frame's types.
fn read(path: &Path, names: &[&str]) -> PolarsResult<DataFrame> {
    let file = File::open(path).map_err(|e| PolarsError::IO {
        error: std::sync::Arc::new(e),
        msg: None,
    })?;
    // Not on polars' pool, for the reason `load` gives.
    let stored = ParquetReader::new(file)
        .read_parallel(ParallelStrategy::None)
        .with_columns(Some(names.iter().map(|n| n.to_string()).collect()))
        .finish()?;
    let columns = (names.iter())
        .map(|name| stored.column(name).cloned())
        .collect::<PolarsResult<Vec<Column>>>()?;
    DataFrame::new(stored.height(), columns)
}

// What ingest hands the cold columns to, chunk by chunk.
mod sink;
pub use sink::{ColdChunk, ColdSink};

#[cfg(test)]
mod tests;
