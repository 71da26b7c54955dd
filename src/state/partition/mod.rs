//! One input file's events as a Parquet file, and back. The frame's codes (the run's
//! dictionary of names, its token table) mean nothing to the next process, so they are never
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
use polars_io::parquet::read::{FileMetadata, ParquetReader};
use polars_io::parquet::write::{ParquetCompression, ParquetWriter};

use crate::error::{Error, FrameContext, Result};
use crate::frame::{CodeArray, code_at, event_type, groups_of, runs};
use crate::normalize::dictionary::{FileDict, NULL};
use crate::normalize::schema::col::{EVENT_TYPE, FILE, TOKEN};
use crate::normalize::{EventColumns, Tokens};

mod cold;

pub use cold::read_hot;

/// Prefix of the columns that list a partition's strings (see [`write`]).
const SYMBOLS: &str = "__symbols.";
/// The column that lists a partition's token ids, which have codes of their own (see [`write`]).
const TOKENS: &str = "__tokens.token_id";

/// Writes `events` (one file's rows of the event frame) to `path`, a row group at a time.
///
/// The string columns are stored as codes of the partition's own, 0, 1, 2… in order of first
/// appearance across the row and then the columns, and each string is listed once, in column
/// `__symbols.<column>` at the row where it first appears (null elsewhere). Reading back places
/// each listed string in the run's dictionary once per partition; stored as strings, Parquet's
/// dictionaries are per row group and polars placed the strings of each one, which on the
/// 85.9M-event state was 53 % of read-back's samples (`docs/performance.md`, twenty-first
/// session). Token ids are coded the same way in a numbering of their own, listed in
/// `__tokens.token_id` (state version 3, twenty-third session): stored as strings, every row's
/// id was hashed and looked up in the run's token table when read back. `coder` is reused from
/// partition to partition.
pub fn write(path: &Path, events: &DataFrame, tokens: &Tokens, coder: &mut Coder) -> Result<()> {
    write_groups(
        path,
        events,
        tokens,
        coder,
        crate::frame::PARQUET_GROUP_ROWS,
    )
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
    /// For the run's dictionary codes.
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
        // Per column of names: its place in `stored` and its codes in the run's dictionary.
        let mut coded: Vec<(usize, UInt32Chunked)> = Vec::new();
        let mut token_list = None;
        for column in events.columns() {
            let name = column.name().as_str();
            if name == FILE {
                continue;
            }
            // Stored as every other string column is (see `frame::event_type`).
            let shared;
            let column = match name == EVENT_TYPE {
                true => {
                    shared = event_type::to_shared(column)?;
                    &shared
                }
                false => match crate::frame::keys::widened(column)? {
                    Some(wide) => {
                        shared = wide;
                        &shared
                    }
                    None => column,
                },
            };
            if name == TOKEN {
                let (codes, list) = self.tokens(path, column, tokens)?;
                stored.push(codes.into_column());
                token_list = Some(list);
            } else if is_names(name) {
                let codes = column.u32().stage("storing strings")?;
                coded.push((stored.len(), codes.rechunk().into_owned()));
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
                    let text = (dict.name(g)).ok_or_else(|| {
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

impl Batch {
    /// Rows in the batch's row groups.
    pub fn rows(&self) -> u64 {
        self.metadata.num_rows as u64
    }

    /// The partition's lists as placed, when it has both (what the state's names keep).
    pub fn placed(&self) -> Option<(&[u32], &[u32])> {
        match (self.symbols.as_ref(), self.token_codes.as_ref()) {
            (Some(s), Some(t)) => Some((s, t)),
            _ => None,
        }
    }
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
pub fn batches(path: &Path, tokens: &Tokens) -> Result<Vec<Batch>> {
    batches_of(path, BATCH_ROWS, Lists::Place(tokens))
}

/// [`batches`] of a partition whose strings and token ids were placed already, from the
/// state's names ([`crate::state::names`]): its lists are not read.
pub fn batches_placed(path: &Path, placed: Placed) -> Result<Vec<Batch>> {
    batches_of(path, BATCH_ROWS, Lists::Given(placed))
}

/// What [`batches`] makes of a partition's lists: polars' code of each of its string codes, and
/// the run's code of each of its token codes.
pub type Placed = (Symbols, Symbols);

/// Where a partition's lists come from when its batches are made.
enum Lists<'a> {
    /// Read from the partition, its token ids placed in this table.
    Place(&'a Tokens),
    /// Placed already.
    Given(Placed),
}

/// [`batches`] of at most `bound` rows (but at least one row group).
fn batches_of(path: &Path, bound: usize, lists: Lists) -> Result<Vec<Batch>> {
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
    let (symbols, token_codes) = match lists {
        // Names are only kept for partitions with both lists.
        Lists::Given(_) if listed.is_empty() || token_list.is_empty() => {
            return Err(broken_for(path, "names for a partition without lists"));
        }
        Lists::Given((symbols, token_codes)) => (Some(symbols), Some(token_codes)),
        Lists::Place(tokens) => placed(path, &metadata, &listed, !token_list.is_empty(), tokens)?,
    };
    let (symbols, token_codes) = (Arc::new(symbols), Arc::new(token_codes));
    let columns = Arc::new(columns);
    let groups: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
    let mut out = Vec::new();
    for run in runs(&groups, bound) {
        let part = groups_of(&metadata, run);
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
        read_columns(path, batch.metadata.clone(), columns)?
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
/// list them), each placed once in the run's dictionary: its code for each code of the partition;
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
    let dict = crate::frame::dictionary();
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
        let texts: Vec<&str> = merged.map(|(_, _, text)| text).collect();
        symbols.extend(dict.insert_all(&texts).stage("placing strings")?);
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
    let part = Arc::new(groups_of(metadata, g..g + 1));
    read_columns(path, part, names.to_vec())
}

/// Columns `names` of the row groups `metadata` names, read on this thread only (see
/// [`crate::frame::read_row_groups`]): batches are read side by side on rayon's workers.
fn read_columns(path: &Path, metadata: Arc<FileMetadata>, names: Vec<String>) -> Result<DataFrame> {
    crate::frame::read_row_groups(path, metadata, Some(names), |e| broken(path, e))
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

/// Rows read in one call: each call decodes the column dictionaries of its row groups again
/// (one call per row group took twice the CPU over the 85.9M-event state), and holds its pages
/// and token strings until its chunks are restored.
const BATCH_ROWS: usize = 2 << 20;

/// Whether column `name` holds names as the run's dictionary's codes, as stored (the event type
/// is stored so too).
fn is_names(name: &str) -> bool {
    name == EVENT_TYPE || crate::frame::NAME_COLUMNS.contains(&name)
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
        // The event type comes back in the run's dictionary, as stored, then in its own.
        let named = is_names(name);
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
        } else if let (true, DataType::UInt32) = (named, have.dtype()) {
            let placed = (symbols.as_ref())
                .ok_or_else(|| broken_for(path, &format!("{name}: codes without their strings")))?;
            let local = have.u32().map_err(|e| broken(path, e))?;
            mapped(path, local, placed)?.into_column()
        } else if named {
            // Plain strings (a state written before this was so): through a table of this
            // partition's own, as ingest does, so each distinct string reaches the run's
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
        } else if have.dtype() == want.dtype() {
            have.clone()
        } else {
            have.cast(want.dtype()).map_err(|e| broken(path, e))?
        };
        columns.push(match name == EVENT_TYPE {
            true => event_type::from_shared(&column)?,
            false => column,
        });
    }
    DataFrame::new(rows, columns).map_err(|e| broken(path, e))
}

/// Local codes, each mapped to the code its string was placed under (`placed`), the nulls kept
/// as they are (the slot under a null is mapped to anything in range). Every code is mapped in
/// one loop without a branch that leaves it, and only a chunk that had a code past `placed` is
/// looked at again, row by row, for one that is not under a null. Row by row with that check in
/// the loop, this was the largest item of a nightly run over the 85.9M-event state in `perf`
/// (6.3 % of its samples: every partition read back, and the cold columns each pass reads
/// again). Now that night's read-back took 4.36–4.45 → 4.07–4.09 s and its detectors 15.8 →
/// 15.3 s (two alternated pairs, `--timings`; forty-sixth session).
fn mapped(path: &Path, local: &UInt32Chunked, placed: &[u32]) -> Result<UInt32Chunked> {
    let fill = placed.first().copied().unwrap_or(0);
    let mut chunks = Vec::with_capacity(local.chunks().len());
    for arr in local.downcast_iter() {
        let mut past = false;
        let values: Vec<u32> = (arr.values().iter())
            .map(|&c| {
                let g = placed.get(c as usize);
                past |= g.is_none();
                g.copied().unwrap_or(fill)
            })
            .collect();
        if past {
            let valid = |i: usize| arr.validity().is_none_or(|v| v.get_bit(i));
            let beyond = |(i, &c): (usize, &u32)| c as usize >= placed.len() && valid(i);
            if arr.values().iter().enumerate().any(beyond) {
                return Err(broken_for(path, "a code beyond the partition's strings"));
            }
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
mod tests;
