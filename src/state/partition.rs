//! One input file's events as a Parquet file, and back. The frame's codes (polars' process-wide
//! dictionary, the run's token table) mean nothing to the next process, so they are never
//! stored: token ids as plain strings, the other string columns as codes of the partition's own
//! with each string listed once beside them ([`write`]), which any Parquet reader can join back.
//! The file index is not stored either: it is the file's place among the files of the run that
//! reads the state, given when the partition is read back.
//!
//! Earlier layouts are still read: Parquet-dictionary strings (thirteenth to twentieth session)
//! and plain strings (the first). Against plain strings coded row by row, the dictionary layout
//! gave a nightly run's read-back peak 1.59 → 0.87 GB at 8.7M events but little time, because
//! polars placed every row group's strings in its shared table again; the partition's own codes
//! place each string once per partition: the 85.9M-event state read back in 33.1 → 15.3–15.8 s,
//! CPU 64.6 → 28 s (`docs/performance.md`, twenty-first session).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use itertools::Itertools;
use polars::prelude::*;
use polars_io::SerReader;
use polars_io::parquet::read::{FileMetadata, ParallelStrategy, ParquetReader};
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};

use crate::error::{Error, FrameContext, Result};
use crate::frame::{CodeArray, code_at};
use crate::normalize::cold::{COLUMNS as COLD, Loader};
use crate::normalize::dictionary::{FileDict, NULL};
use crate::normalize::schema::col::{ACTION, FILE, TOKEN, USER_AGENT};
use crate::normalize::{EventColumns, Tokens};

/// Prefix of the columns that list a partition's strings (see [`write`]).
const SYMBOLS: &str = "__symbols.";
/// The column that lists a partition's token ids, which have codes of their own (see [`write`]).
const TOKENS: &str = "__tokens.token_id";
/// Rows per row group, as polars' writer makes them by default.
const GROUP_ROWS: usize = 512 * 512;

/// Writes `events` (one file's rows of the event frame) to `path`, a row group at a time.
///
/// The string columns are stored as codes of the partition's own, 0, 1, 2… in order of first
/// appearance across the row and then the columns, and each string is listed once, in column
/// `__symbols.<column>` at the row where it first appears (null elsewhere). Reading back places
/// each listed string in polars' dictionary once per partition; stored as strings, Parquet's
/// dictionaries are per row group and polars placed the strings of each one, which on the
/// 85.9M-event state was 53 % of read-back's samples (`docs/performance.md`, twenty-first
/// session). Token ids are coded the same way in a numbering of their own, listed in
/// `__tokens.token_id` (state version 3, twenty-third session): stored as strings, every row's
/// id was hashed and looked up in the run's token table when read back. `coder` is reused from
/// partition to partition.
pub fn write(path: &Path, events: &DataFrame, tokens: &Tokens, coder: &mut Coder) -> Result<()> {
    write_groups(path, events, tokens, coder, GROUP_ROWS)
}

/// [`write`] in row groups of `group_rows`.
fn write_groups(
    path: &Path,
    events: &DataFrame,
    tokens: &Tokens,
    coder: &mut Coder,
    group_rows: usize,
) -> Result<()> {
    let events = &canonical(path, events)?;
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let mut file = Some(file);
    let mut writer = None;
    let rows = events.height();
    for start in (0..rows).step_by(group_rows.max(1)) {
        let slice = events.slice(start as i64, group_rows.min(rows - start));
        let mut df = coder.group(path, &slice, tokens)?;
        df.rechunk_mut();
        if writer.is_none() {
            let file = file
                .take()
                .ok_or_else(|| broken_for(path, "written twice"))?;
            let batched = ParquetWriter::new(file)
                .with_compression(ParquetCompression::Zstd(None))
                .batched(df.schema())
                .map_err(|e| broken(path, e))?;
            writer = Some(batched);
        }
        if let Some(w) = writer.as_mut() {
            w.write_batch(&df).map_err(|e| broken(path, e))?;
        }
    }
    coder.reset();
    match writer {
        Some(w) => w.finish().map(drop).map_err(|e| broken(path, e)),
        None => Err(broken_for(path, "a partition without rows")),
    }
}

/// `events` with the event frame's columns in its own order, any others after them: a run that
/// set the columns only evidence reads aside and put them back (`analyze --state`) and one that
/// did not (`audithound ingest`, a cluster's task) write the same bytes for the same file, so
/// the manifest's digests of them agree too.
fn canonical(path: &Path, events: &DataFrame) -> Result<DataFrame> {
    let layout = EventColumns::new().take_frame()?;
    let mut names: Vec<PlSmallStr> = (layout.get_column_names().into_iter())
        .filter(|n| events.column(n.as_str()).is_ok())
        .cloned()
        .collect();
    for n in events.get_column_names() {
        if !names.contains(n) {
            names.push(n.clone());
        }
    }
    events.select(names).map_err(|e| broken(path, e))
}

/// The partition's own string codes, as [`write`] hands them out.
#[derive(Default)]
pub struct Coder {
    /// For polars' dictionary codes.
    strings: Numbering,
    /// For the run's token table codes.
    tokens: Numbering,
}

/// Codes of a run's table renumbered 0, 1, 2… in order of first appearance in a partition.
#[derive(Default)]
struct Numbering {
    /// Per code of the run's table, its code in the partition plus one (0: none yet): a table
    /// indexed by code, kept between partitions and cleared where it was written.
    index: Vec<u32>,
    /// The run's codes in the partition's order.
    order: Vec<u32>,
}

impl Numbering {
    /// The partition's code of the run's code `g`, and whether it is new (to be listed).
    fn number(&mut self, path: &Path, g: u32) -> Result<(u32, bool)> {
        let i = g as usize;
        if i >= self.index.len() {
            self.index.resize(i + 1, 0);
        }
        let new = self.index[i] == 0;
        if new {
            self.order.push(g);
            self.index[i] = u32::try_from(self.order.len())
                .ok()
                .filter(|&n| n != NULL)
                .ok_or_else(|| broken_for(path, "more than 2³² strings"))?;
        }
        Ok((self.index[i] - 1, new))
    }

    /// Forgets the partition just written.
    fn reset(&mut self) {
        for &g in &self.order {
            self.index[g as usize] = 0;
        }
        self.order.clear();
    }
}

impl Coder {
    /// One row group of `events` as stored.
    fn group(&mut self, path: &Path, events: &DataFrame, tokens: &Tokens) -> Result<DataFrame> {
        let rows = events.height();
        let mut stored = Vec::with_capacity(events.width());
        // Per categorical column: its place in `stored` and its codes in polars' dictionary.
        let mut coded: Vec<(usize, UInt32Chunked)> = Vec::new();
        let mut token_list = None;
        for column in events.columns() {
            let name = column.name().as_str();
            if name == FILE {
                continue;
            }
            if name == TOKEN {
                let (codes, list) = self.tokens(path, column, tokens)?;
                stored.push(codes.into_column());
                token_list = Some(list);
            } else if matches!(column.dtype(), DataType::Categorical(..)) {
                let cats = column.cat32().stage("storing strings")?;
                coded.push((stored.len(), cats.physical().rechunk().into_owned()));
                stored.push(Column::new_empty(name.into(), &DataType::UInt32));
            } else {
                stored.push(column.clone());
            }
        }
        let dict = crate::frame::dictionary();
        let arrays: Vec<&CodeArray> = (coded.iter())
            .map(|(_, c)| c.downcast_iter().next())
            .collect::<Option<_>>()
            .ok_or_else(|| broken_for(path, "a column without values"))?;
        let mut local: Vec<Vec<u32>> = vec![Vec::with_capacity(rows); coded.len()];
        let mut lists: Vec<StringChunkedBuilder> = (coded.iter())
            .map(|(at, _)| {
                let name = format!("{SYMBOLS}{}", stored[*at].name());
                StringChunkedBuilder::new(name.into(), rows)
            })
            .collect();
        for row in 0..rows {
            for (k, codes) in arrays.iter().enumerate() {
                let g = code_at(codes, row);
                if g == NULL {
                    local[k].push(NULL);
                    lists[k].append_null();
                    continue;
                }
                let (code, new) = self.strings.number(path, g)?;
                if new {
                    let text = (dict.cat_to_str(g)).ok_or_else(|| {
                        broken_for(path, &format!("code {g} is in no dictionary"))
                    })?;
                    lists[k].append_value(text);
                } else {
                    lists[k].append_null();
                }
                local[k].push(code);
            }
        }
        for ((at, _), (codes, list)) in coded.iter().zip(local.into_iter().zip(lists)) {
            let name = stored[*at].name().clone();
            let codes: UInt32Chunked = (codes.into_iter())
                .map(|c| (c != NULL).then_some(c))
                .collect();
            stored[*at] = codes.with_name(name).into_column();
            stored.push(list.finish().into_column());
        }
        stored.extend(token_list);
        DataFrame::new(rows, stored).stage("storing a partition")
    }

    /// The token column as the partition's own token codes, and the list of their ids.
    fn tokens(
        &mut self,
        path: &Path,
        column: &Column,
        tokens: &Tokens,
    ) -> Result<(UInt32Chunked, Column)> {
        let codes = column.u32().stage("storing token ids")?;
        let mut list = StringChunkedBuilder::new(TOKENS.into(), codes.len());
        let mut local = Vec::with_capacity(codes.len());
        for code in codes.iter() {
            let Some(g) = code else {
                local.push(None);
                list.append_null();
                continue;
            };
            let (code, new) = self.tokens.number(path, g)?;
            if new {
                let text = (tokens.text(g))
                    .ok_or_else(|| broken_for(path, &format!("token {g} is in no table")))?;
                list.append_value(text);
            } else {
                list.append_null();
            }
            local.push(Some(code));
        }
        let local: UInt32Chunked = local.into_iter().collect();
        Ok((local.with_name(TOKEN.into()), list.finish().into_column()))
    }

    /// Forgets the partition just written.
    fn reset(&mut self) {
        self.strings.reset();
        self.tokens.reset();
    }
}

/// A run of consecutive row groups of one partition, read back in one call (see [`batches`]).
pub struct Batch {
    path: PathBuf,
    /// The partition's metadata with this batch's row groups only.
    metadata: Arc<FileMetadata>,
    /// The columns to read (the symbol lists are read once, into `symbols`).
    columns: Arc<Vec<String>>,
    /// polars' code of each of the partition's string codes (`None`: strings stored as strings,
    /// as partitions were before the twenty-first session).
    symbols: Arc<Option<Symbols>>,
    /// The run's token code of each of the partition's token codes (`None`: token ids stored as
    /// strings, as partitions were before the twenty-third session).
    token_codes: Arc<Option<Symbols>>,
}

/// polars' code of each of a partition's own string codes (see [`write`]).
type Symbols = Vec<u32>;

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
pub fn batches(path: &Path, tokens: &Tokens) -> Result<Vec<Batch>> {
    batches_of(path, BATCH_ROWS, tokens)
}

/// [`batches`] of at most `bound` rows (but at least one row group).
fn batches_of(path: &Path, bound: usize, tokens: &Tokens) -> Result<Vec<Batch>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = ParquetReader::new(file)
        .get_metadata()
        .cloned()
        .map_err(|e| broken(path, e))?;
    let names: Vec<String> = (metadata.schema_descr.fields().iter())
        .map(|f| f.name().to_string())
        .collect();
    let (listed, columns): (Vec<String>, Vec<String>) =
        names.into_iter().partition(|n| n.starts_with(SYMBOLS));
    let (token_list, columns): (Vec<String>, Vec<String>) =
        columns.into_iter().partition(|n| n == TOKENS);
    let (symbols, token_codes) = placed(path, &metadata, &listed, !token_list.is_empty(), tokens)?;
    let (symbols, token_codes) = (Arc::new(symbols), Arc::new(token_codes));
    let columns = Arc::new(columns);
    let groups: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
    let mut out = Vec::new();
    let mut first = 0;
    for run in runs(&groups, bound) {
        let part = groups_of(&metadata, first..first + run.len());
        first += run.len();
        out.push(Batch {
            path: path.to_path_buf(),
            metadata: Arc::new(part),
            columns: columns.clone(),
            symbols: symbols.clone(),
            token_codes: token_codes.clone(),
        });
    }
    Ok(out)
}

/// Reads a batch back into the event frame's layout and codes, as rows of file `file_idx`, one
/// frame per row group. `dict` serves partitions of plain strings (the first layout) and carries
/// from one batch to the next on a thread, as ingest's dictionaries do from file to file.
pub fn read(
    batch: &Batch,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
) -> Result<Vec<DataFrame>> {
    read_groups(batch, file_idx, tokens, dict, |_| true)
}

/// [`read`] without the columns only evidence reads ([`COLD`]), and for each row group a
/// [`Loader`] of those columns: they are read from the partition again when evidence asks for
/// a few rows of them, instead of being read whole, placed, and spilled to the run's scratch
/// folder as ingest does. Over the 85.9M-event state, nothing new (alternated runs): read-back
/// 11.8–12.6 → 9.2–10.3 s, the run 27.5–27.7 → 25.0–26.2 s at the same peak; ranking, whose
/// usage pass reads the user agents and actions of every flagged entity's rows, 1.6–1.7 →
/// 2.2–2.3 s, as it now decompresses them. A night added to 120 (8.7M events), whose cold
/// columns were held in memory: peak 1.01–1.04 → 0.83–0.84 GB, the run 2.61–2.63 s either way
/// once evidence reads the file and line of each key's first rows alone (`activity::summarize`;
/// a row group's column costs ~0.7 ms to read, where memory cost nothing).
pub fn read_hot(
    batch: &Batch,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
) -> Result<Vec<(DataFrame, Loader)>> {
    let frames = read_groups(batch, file_idx, tokens, dict, |name| !COLD.contains(&name))?;
    let placed = match batch.symbols.as_ref() {
        Some(all) => Some(cold_codes(batch, all)?),
        None => None,
    };
    let groups = batch.metadata.row_groups.len();
    let source = Arc::new(ColdSource {
        path: batch.path.clone(),
        // Each group's own, made once: several detectors read the same groups.
        groups: (0..groups)
            .map(|g| Arc::new(groups_of(&batch.metadata, g..g + 1)))
            .collect(),
        columns: batch.columns.clone(),
        placed,
    });
    Ok((frames.into_iter().enumerate())
        .map(|(group, df)| {
            let source = source.clone();
            let loader: Loader =
                Arc::new(move |names: &[&str]| cold(&source, group, file_idx, names));
            (df, loader)
        })
        .collect())
}

/// Where a batch's cold columns are read from when asked for.
struct ColdSource {
    path: PathBuf,
    /// The metadata of each row group alone.
    groups: Vec<Arc<FileMetadata>>,
    columns: Arc<Vec<String>>,
    /// polars' code of each partition code the batch's coded cold columns hold (`None`: an
    /// earlier layout, strings stored as strings). The partition's whole list, kept for them,
    /// was 90 MB of the 85.9M-event state's nightly run; these are the few user agents and
    /// actions.
    placed: Option<Vec<(u32, u32)>>,
}

/// The cold columns a partition stores as its own string codes.
const CODED_COLD: [&str; 2] = [USER_AGENT, ACTION];

/// Of `all` (polars' code of each partition code), the codes the batch's user agents and actions
/// hold, read from their columns alone, in order.
fn cold_codes(batch: &Batch, all: &[u32]) -> Result<Vec<(u32, u32)>> {
    let path = &batch.path;
    let columns: Vec<String> = (batch.columns.iter())
        .filter(|c| CODED_COLD.contains(&c.as_str()))
        .cloned()
        .collect();
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(file)
        .read_parallel(ParallelStrategy::None)
        .with_columns(Some(columns));
    reader.set_metadata(batch.metadata.clone());
    let stored = reader.finish().map_err(|e| broken(path, e))?;
    let mut seen = vec![false; all.len()];
    for column in stored.columns() {
        let codes = column.u32().map_err(|e| broken(path, e))?;
        for c in codes.iter().flatten() {
            *seen
                .get_mut(c as usize)
                .ok_or_else(|| broken_for(path, "a code beyond the partition's strings"))? = true;
        }
    }
    Ok((0..all.len())
        .filter(|&c| seen[c])
        .map(|c| (c as u32, all[c]))
        .collect())
}

/// The columns `names` (of [`COLD`]) of row group `group` of `source`, in that order.
fn cold(source: &ColdSource, group: usize, file_idx: u32, names: &[&str]) -> Result<DataFrame> {
    let path = &source.path;
    let metadata = (source.groups.get(group).cloned())
        .ok_or_else(|| broken_for(path, "a row group beyond the partition's"))?;
    let one = Batch {
        path: path.clone(),
        metadata,
        columns: source.columns.clone(),
        symbols: Arc::new(None),
        token_codes: Arc::new(None),
    };
    let coded = |name: &str| source.placed.is_some() && CODED_COLD.contains(&name);
    let want = |name: &str| COLD.contains(&name) && names.contains(&name);
    // Token ids are not cold: no table is needed; a plain-strings partition (the first layout)
    // codes its strings through a dictionary of this call's own.
    let (tokens, mut dict) = (Tokens::default(), FileDict::default());
    let mut frames = read_groups(&one, file_idx, &tokens, &mut dict, |n| want(n) && !coded(n))?;
    let mut df = match frames.pop() {
        Some(df) if frames.is_empty() => df,
        _ => return Err(broken_for(path, "a row group read back as several")),
    };
    if let Some(placed) = &source.placed {
        let names: Vec<&str> = CODED_COLD.into_iter().filter(|n| want(n)).collect();
        for column in coded_columns(&one, &names, placed)? {
            df.with_column(column).map_err(|e| broken(path, e))?;
        }
    }
    df.select(names.iter().copied())
        .map_err(|e| broken(path, e))
}

/// Columns `names` of `one`'s single row group, stored as partition codes, in polars' codes.
fn coded_columns(one: &Batch, names: &[&str], placed: &[(u32, u32)]) -> Result<Vec<Column>> {
    let path = &one.path;
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(file)
        .read_parallel(ParallelStrategy::None)
        .with_columns(Some(names.iter().map(|n| n.to_string()).collect()));
    reader.set_metadata(one.metadata.clone());
    let stored = reader.finish().map_err(|e| broken(path, e))?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let local =
            (stored.column(name).and_then(|c| c.u32().cloned())).map_err(|e| broken(path, e))?;
        let mut global = Vec::with_capacity(local.len());
        for c in local.iter() {
            global.push(match c {
                None => None,
                // A few user agents and actions: a binary search over them stays in the cache.
                Some(c) => match placed.binary_search_by_key(&c, |p| p.0) {
                    Ok(at) => Some(placed[at].1),
                    Err(_) => {
                        return Err(broken_for(
                            path,
                            "a cold column's code was not seen when read back",
                        ));
                    }
                },
            });
        }
        let global = UInt32Chunked::from_iter_options((*name).into(), global.into_iter());
        // SAFETY: every code was handed out by polars' dictionary when the partition's strings
        // were placed (`placed`, taken from the partition's list).
        let cats = unsafe {
            Categorical32Chunked::from_cats_and_dtype_unchecked(global, crate::frame::cat_dtype())
        };
        out.push(cats.into_series().into_column());
    }
    Ok(out)
}

/// [`read`] of the frame's columns that `want` names.
fn read_groups(
    batch: &Batch,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
    want: impl Fn(&str) -> bool,
) -> Result<Vec<DataFrame>> {
    if dict.len() > crate::normalize::columns::MAX_FILE_STRINGS {
        dict.clear();
    }
    let path = &batch.path;
    let columns: Vec<String> = (batch.columns.iter())
        .filter(|c| want(c.as_str()))
        .cloned()
        .collect();
    let stored = if columns.is_empty() {
        // Only the file index, which is not stored.
        DataFrame::empty_with_height(batch.metadata.num_rows)
    } else {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // On this thread only: batches are read side by side on rayon's workers, and a worker
        // that blocks on polars' own pool steals the next batch meanwhile, one stack frame
        // deeper each time (120 nights overflowed 192 KiB stacks; `normalize::cold` met the
        // same).
        let mut reader = ParquetReader::new(file)
            .read_parallel(ParallelStrategy::None)
            .with_columns(Some(columns));
        reader.set_metadata(batch.metadata.clone());
        reader.finish().map_err(|e| broken(path, e))?
    };
    // A file without row groups comes back as one (empty) chunk.
    let mut groups: Vec<usize> = (batch.metadata.row_groups.iter())
        .map(|g| g.num_rows())
        .collect();
    if groups.is_empty() {
        groups.push(stored.height());
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut start = 0;
    for group in groups {
        let chunk = stored.slice(start as i64, group);
        start += group;
        let placed = (batch.symbols.as_ref(), batch.token_codes.as_ref());
        out.push(restore(
            path, &chunk, group, file_idx, tokens, dict, placed, &want,
        )?);
    }
    Ok(out)
}

/// The partition's strings in the order [`write`] numbered them (`listed`: the columns that
/// list them), each placed once in polars' dictionary: its code for each code of the partition;
/// and, when it lists its token ids (`token_list`), each placed once in the run's token table
/// (`None` for what the partition does not list: an earlier layout). Both lists are read a row
/// group at a time, in one read: a list column is mostly nulls. Only the listed strings are
/// walked (their rows from the validity bits) and merged in (row, column) order, each placed
/// directly: walking every row's slot of every list and casting the strings to categories
/// took 0.73 of the 1.0 s of CPU that listing the 120-night state's strings cost, reading the
/// lists the rest (`docs/performance.md`, twenty-third session).
fn placed(
    path: &Path,
    metadata: &FileMetadata,
    listed: &[String],
    token_list: bool,
    tokens: &Tokens,
) -> Result<(Option<Symbols>, Option<Symbols>)> {
    let dtype = crate::frame::cat_dtype();
    let DataType::Categorical(_, mapping) = &dtype else {
        unreachable!("cat_dtype is categorical")
    };
    let mut names = listed.to_vec();
    if token_list {
        names.push(TOKENS.to_string());
    }
    let (mut symbols, mut token_codes) = (Vec::new(), Vec::new());
    for g in (0..metadata.row_groups.len()).filter(|_| !names.is_empty()) {
        let read = group_columns(path, metadata, g, &names)?;
        let lists: Vec<&StringChunked> = (names.iter())
            .map(|n| read.column(n).and_then(|c| c.str()))
            .collect::<PolarsResult<_>>()
            .map_err(|e| broken(path, e))?;
        let (strings, ids) = lists.split_at(listed.len());
        let merged = (strings.iter().enumerate())
            .map(|(j, list)| present(list).map(move |(row, text)| (row, j, text)))
            .kmerge_by(|a, b| (a.0, a.1) < (b.0, b.1));
        for (_, _, text) in merged {
            symbols.push(mapping.insert_cat(text).stage("placing strings")?);
        }
        if let Some(list) = ids.first() {
            let ids: Vec<&str> = present(list).map(|(_, id)| id).collect();
            let placed = tokens.place(ids.iter().copied());
            token_codes.extend(placed.stage("placing token ids")?);
        }
    }
    let symbols = (!listed.is_empty()).then_some(symbols);
    Ok((symbols, token_list.then_some(token_codes)))
}

/// Columns `names` of row group `g` alone.
fn group_columns(
    path: &Path,
    metadata: &FileMetadata,
    g: usize,
    names: &[String],
) -> Result<DataFrame> {
    let part = groups_of(metadata, g..g + 1);
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(file)
        .read_parallel(ParallelStrategy::None)
        .with_columns(Some(names.to_vec()));
    reader.set_metadata(Arc::new(part));
    reader.finish().map_err(|e| broken(path, e))
}

/// The non-null values of `list` with their rows, in row order.
fn present(list: &StringChunked) -> impl Iterator<Item = (usize, &str)> {
    let mut base = 0;
    // The validity through the chunk as a trait object: its trait is not in polars' prelude.
    (list.chunks().iter().zip(list.downcast_iter())).flat_map(move |(chunk, arr)| {
        let from = base;
        base += arr.len();
        let rows: Box<dyn Iterator<Item = usize>> = match chunk.validity() {
            Some(valid) => Box::new(valid.true_idx_iter()),
            None => Box::new(0..arr.len()),
        };
        rows.map(move |i| (from + i, arr.value(i)))
    })
}

/// `metadata` naming row groups `range` alone: a reader given it reads those groups and walks no
/// other (given the whole file's and a slice, polars' reader walks every group before it).
fn groups_of(metadata: &FileMetadata, range: std::ops::Range<usize>) -> FileMetadata {
    let mut part = metadata.clone();
    part.row_groups = metadata.row_groups[range].to_vec();
    part.num_rows = part.row_groups.iter().map(|g| g.num_rows()).sum();
    part
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
#[allow(clippy::too_many_arguments)]
fn restore(
    path: &Path,
    stored: &DataFrame,
    rows: usize,
    file_idx: u32,
    tokens: &Tokens,
    dict: &mut FileDict,
    (symbols, token_codes): (&Option<Symbols>, &Option<Symbols>),
    include: impl Fn(&str) -> bool,
) -> Result<DataFrame> {
    let layout = EventColumns::new().take_frame()?;
    let mut columns = Vec::with_capacity(layout.width());
    for want in layout.columns() {
        let name = want.name().as_str();
        if !include(name) {
            continue;
        }
        if name == FILE {
            columns.push(Column::new(FILE.into(), vec![file_idx; rows]));
            continue;
        }
        let have = stored.column(name).map_err(|e| broken(path, e))?;
        let column = if let (true, Some(placed)) = (name == TOKEN, token_codes) {
            let local = have.u32().map_err(|e| broken(path, e))?;
            mapped(path, local, placed)?.into_column()
        } else if name == TOKEN {
            let texts = have.str().map_err(|e| broken(path, e))?;
            let present: Vec<&str> = texts.iter().flatten().collect();
            let mut codes = tokens
                .place(present.iter().copied())
                .stage("placing token ids")?
                .into_iter();
            let restored: UInt32Chunked =
                texts.iter().map(|t| t.and_then(|_| codes.next())).collect();
            restored.with_name(TOKEN.into()).into_column()
        } else if let (Some(placed), DataType::Categorical(..), DataType::UInt32) =
            (symbols, want.dtype(), have.dtype())
        {
            let local = have.u32().map_err(|e| broken(path, e))?;
            let global = mapped(path, local, placed)?;
            // SAFETY: every code was handed out by this very dictionary when the partition's
            // strings were placed (`symbols`); the checked constructor would look each one up
            // again.
            let cats = unsafe {
                Categorical32Chunked::from_cats_and_dtype_unchecked(global, want.dtype().clone())
            };
            cats.into_series().into_column()
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

/// Local codes, each mapped to the code its string was placed under (`placed`), the nulls kept
/// as they are (the slot under a null is mapped to anything in range).
fn mapped(path: &Path, local: &UInt32Chunked, placed: &[u32]) -> Result<UInt32Chunked> {
    let mut chunks = Vec::with_capacity(local.chunks().len());
    for arr in local.downcast_iter() {
        let valid = |i: usize| arr.validity().is_none_or(|v| v.get_bit(i));
        let mut values = Vec::with_capacity(arr.len());
        for (i, &c) in arr.values().iter().enumerate() {
            values.push(match placed.get(c as usize) {
                Some(&g) => g,
                None if !valid(i) => placed.first().copied().unwrap_or(0),
                None => return Err(broken_for(path, "a code beyond the partition's strings")),
            });
        }
        chunks.push(CodeArray::new(
            ArrowDataType::UInt32,
            values.into(),
            arr.validity().cloned(),
        ));
    }
    Ok(UInt32Chunked::from_chunk_iter(local.name().clone(), chunks))
}

fn broken(path: &Path, e: PolarsError) -> Error {
    broken_for(path, &e.to_string())
}

fn broken_for(path: &Path, why: &str) -> Error {
    Error::State {
        path: path.to_path_buf(),
        reason: format!("partition unreadable: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{Discovered, ReadOptions, read_events};
    use crate::normalize::TimeParser;

    /// A partition reads back as the rows it was written from, whatever its strings' layout:
    /// the partition's own codes (written now, in one row group or many, by a coder that wrote
    /// another partition before), Parquet-dictionary strings (written from the thirteenth to the
    /// twentieth session) or plain strings (the first version of the state).
    #[test]
    fn partitions_read_back_as_written_in_every_string_layout() {
        let dir = tempfile::tempdir().expect("temp dir");
        let input = dir.path().join("events.jsonl");
        let mut text = String::new();
        for i in 0..3000 {
            // User agents and actions on some rows only, new ones appearing late.
            let agent = match i % 4 {
                0 => String::new(),
                _ => format!(",\"user_agent\":\"ua{}\"", i % 3 + i / 2500),
            };
            let action = match i % 5 {
                0 => String::new(),
                _ => format!(",\"action\":\"GET /a/{}\"", i % 7 + i / 2000),
            };
            text.push_str(&format!(
                "{{\"timestamp\":\"2025-03-0{}T10:{:02}:00Z\",\"event_type\":\"access\",\"principal\":\"u{}\",\"credential_id\":\"k{}\",\"token_id\":\"t{}\",\"source_ip\":\"10.0.0.{}\",\"target_account\":\"C{}\",\"success\":{}{agent}{action}}}\n",
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
        text.push_str("{\"timestamp\":\"2025-03-01T00:00:00Z\",\"event_type\":\"login\",\"principal\":\"C5\"}\n");
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
        let mut coder = Coder::default();
        let first = dir.path().join("p0.parquet");
        let tail = events.slice(2000, 1001);
        write(&first, &tail, &ingested.tokens, &mut coder).expect("written");
        let coded = dir.path().join("p1.parquet");
        write(&coded, &events, &ingested.tokens, &mut coder).expect("written");
        let grouped = dir.path().join("p2.parquet");
        write_groups(&grouped, &events, &ingested.tokens, &mut coder, 500).expect("written");
        // The layouts of earlier sessions: categories as Parquet-dictionary strings, or plain.
        let mut df = events.drop(FILE).expect("no file index");
        let token = df
            .column(TOKEN)
            .expect("tokens")
            .u32()
            .expect("codes")
            .clone();
        let texts: StringChunked = token
            .iter()
            .map(|c| c.and_then(|c| ingested.tokens.text(c)))
            .collect();
        df.with_column(texts.with_name(TOKEN.into()).into_column())
            .expect("token texts");
        let dictionary = dir.path().join("p3.parquet");
        ParquetWriter::new(File::create(&dictionary).expect("create"))
            .finish(&mut df)
            .expect("written");
        for name in df.get_column_names_owned() {
            let column = df.column(&name).expect("column");
            if matches!(column.dtype(), DataType::Categorical(..)) {
                let strings = column.cast(&DataType::String).expect("strings");
                df.with_column(strings).expect("replaced");
            }
        }
        let plain = dir.path().join("p4.parquet");
        ParquetWriter::new(File::create(&plain).expect("create"))
            .finish(&mut df)
            .expect("written");
        // The layout of the twenty-first and twenty-second sessions: strings coded, token ids
        // as strings.
        let mut v2 = ParquetReader::new(File::open(&coded).expect("open"))
            .finish()
            .expect("read");
        let ids: Vec<&str> = (v2.column(TOKENS).expect("list").str().expect("strings"))
            .iter()
            .flatten()
            .collect();
        let texts: StringChunked = (v2.column(TOKEN).expect("tokens").u32().expect("codes"))
            .iter()
            .map(|c| c.map(|c| ids[c as usize]))
            .collect();
        let mut v2 = (v2.with_column(texts.with_name(TOKEN.into()).into_column()))
            .expect("token texts")
            .drop(TOKENS)
            .expect("no list");
        let strings_coded = dir.path().join("p5.parquet");
        ParquetWriter::new(File::create(&strings_coded).expect("create"))
            .finish(&mut v2)
            .expect("written");
        // Batches of one row group each, read in reverse: each names its own rows and reads
        // the partition's strings whatever group listed them.
        let batched = batches_of(&grouped, 700, &ingested.tokens).expect("batches");
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
        for (path, want) in [
            (&first, &tail),
            (&coded, &events),
            (&grouped, &events),
            (&dictionary, &events),
            (&plain, &events),
            (&strings_coded, &events),
        ] {
            let mut dict = FileDict::default();
            let batched = batches(path, &ingested.tokens).expect("batches");
            let chunks: Vec<DataFrame> = (batched.iter())
                .flat_map(|b| read(b, 0, &ingested.tokens, &mut dict).expect("read back"))
                .collect();
            let mut back = crate::frame::stack(chunks.into_iter().map(Ok), "test")
                .expect("stacked")
                .expect("rows");
            back.rechunk_mut();
            let mut want = want.clone();
            want.rechunk_mut();
            assert!(back.equals_missing(&want), "{}", path.display());
            hot_and_cold_read_back(path, &want, &ingested.tokens);
        }
    }

    /// Read without its cold columns, a partition gives the other columns as [`read`] does, and
    /// each row group's loader gives that group's cold columns, any of them in any order.
    fn hot_and_cold_read_back(path: &Path, want: &DataFrame, tokens: &Tokens) {
        let mut dict = FileDict::default();
        let (mut hot, mut cold): (Vec<DataFrame>, Vec<DataFrame>) = (Vec::new(), Vec::new());
        for batch in batches_of(path, 700, tokens).expect("batches") {
            for (df, loader) in read_hot(&batch, 0, tokens, &mut dict).expect("read hot") {
                let all = loader(&COLD).expect("cold columns");
                assert_eq!(all.height(), df.height());
                let some = loader(&[ACTION, FILE]).expect("two cold columns");
                let picked = all.select([ACTION, FILE]).expect("picked");
                assert!(some.equals_missing(&picked), "{}", path.display());
                hot.push(df);
                cold.push(all);
            }
        }
        let stack = |parts: Vec<DataFrame>| {
            let mut all = crate::frame::stack(parts.into_iter().map(Ok), "test")
                .expect("stacked")
                .expect("rows");
            all.rechunk_mut();
            all
        };
        let (hot, cold) = (stack(hot), stack(cold));
        let hot_names: Vec<String> = (want.get_column_names().into_iter())
            .filter(|n| !COLD.contains(&n.as_str()))
            .map(|n| n.to_string())
            .collect();
        let cold_want = want.select(COLD).expect("cold");
        assert!(hot.equals_missing(&want.select(hot_names).expect("hot")));
        assert!(cold.equals_missing(&cold_want), "{}", path.display());
        let agents = cold_want.column(USER_AGENT).expect("agents");
        assert!(agents.null_count() > 0 && agents.null_count() < agents.len());
    }

    /// A code past the partition's strings or token ids (a damaged or hand-made file) is an
    /// error naming the partition, not a panic.
    #[test]
    fn a_code_beyond_the_partitions_strings_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        for bad_token in [false, true] {
            let path = dir.path().join(format!("p{}.parquet", u8::from(bad_token)));
            let layout = EventColumns::new().take_frame().expect("layout");
            let (good, bad) = ([Some(0u32), Some(0)], [Some(0u32), Some(7)]);
            let mut columns = Vec::new();
            for want in layout.columns() {
                let name = want.name().as_str();
                let column = match want.dtype() {
                    DataType::Categorical(..) if bad_token => Column::new(name.into(), good),
                    DataType::Categorical(..) => Column::new(name.into(), bad),
                    _ if name == TOKEN && bad_token => Column::new(name.into(), bad),
                    _ if name == TOKEN => Column::full_null(name.into(), 2, &DataType::String),
                    dtype => Column::full_null(name.into(), 2, dtype),
                };
                columns.push(column);
                let list = match want.dtype() {
                    DataType::Categorical(..) => format!("{SYMBOLS}{name}"),
                    _ if name == TOKEN && bad_token => TOKENS.to_string(),
                    _ => continue,
                };
                columns.push(Column::new(list.into(), [Some("a"), None]));
            }
            let mut df = DataFrame::new(2, columns).expect("frame");
            df = df.drop(FILE).expect("no file index");
            ParquetWriter::new(File::create(&path).expect("create"))
                .finish(&mut df)
                .expect("written");
            let mut dict = FileDict::default();
            let tokens = Tokens::default();
            let batched = batches(&path, &tokens).expect("batches");
            let err = read(&batched[0], 0, &tokens, &mut dict).expect_err("refused");
            assert!(
                err.to_string().contains("beyond the partition's strings"),
                "{err}"
            );
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
