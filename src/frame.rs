//! Reading small polars results (one row per entity or per day) back into Rust vectors. Nulls
//! become the type's default: every caller aggregates, so a null only arises from an empty group.

use polars::prelude::*;
use rayon::prelude::*;

use crate::error::{Error, FrameContext, Result};
use crate::normalize::ColdColumns;
use crate::normalize::schema::col::{NETWORK, TS};
use std::borrow::Cow;

mod compact;
mod dictionary;
pub mod event_type;
pub mod keys;
pub use compact::{chunk_lengths, chunked_as, compact, plan as compact_plan};
pub use dictionary::Dictionary;
pub use keys::Codes;

/// How far the frame's key and event type columns are narrowed once the run's values are known
/// (`--two-byte-keys-up-to`, `--one-byte-codes-up-to`): why, in [`keys`] and [`event_type`].
#[derive(Clone, Copy, Debug)]
pub struct Narrowing {
    pub keys_up_to: usize,
    pub one_byte_up_to: usize,
}

/// The bytes an event the key and event type columns take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Widths {
    pub keys: usize,
    pub event_types: usize,
}

/// `df`'s key and event type columns as ingest makes them (keys in the shared dictionary, event
/// types in two bytes), whatever [`Narrowing`] did: for comparing frames read different ways.
pub fn widen(df: &mut DataFrame) -> Result<()> {
    use crate::normalize::schema::col::{CREDENTIAL, EVENT_TYPE};
    for (name, wide) in [
        (
            CREDENTIAL,
            keys::widened as fn(&Column) -> Result<Option<Column>>,
        ),
        (EVENT_TYPE, event_type::widened),
    ] {
        let Ok(column) = df.column(name) else {
            continue;
        };
        if let Some(column) = wide(column)? {
            df.with_column(column).stage("widening codes")?;
        }
    }
    Ok(())
}

/// Column `name` taken out of `df`: where it stood, and its physical chunks, held nowhere else,
/// so that a caller re-coding them frees each as soon as its copy is made (the key and event
/// type columns, [`Narrowing`]). A column of another type gives chunks the caller's downcast
/// refuses.
pub(crate) fn take_chunks(
    df: &mut DataFrame,
    name: &str,
    stage: &'static str,
) -> Result<(usize, Vec<ArrayRef>)> {
    let at = df.get_column_index(name).unwrap_or(df.width());
    let column = df.drop_in_place(name).stage(stage)?;
    let physical = column
        .as_materialized_series()
        .to_physical_repr()
        .into_owned();
    drop(column);
    Ok((at, physical.chunks().clone()))
}

impl Narrowing {
    /// `df`'s key and event type columns narrowed as far as the run's values allow.
    pub fn narrow(&self, df: &mut DataFrame) -> Result<Widths> {
        use crate::normalize::schema::col::{CREDENTIAL, EVENT_TYPE};
        let keys = keys::narrow(df, CREDENTIAL, self.keys_up_to, self.one_byte_up_to)?;
        let one = event_type::narrow(df, EVENT_TYPE, self.one_byte_up_to)?;
        Ok(Widths {
            keys: keys.unwrap_or(4),
            event_types: if one { 1 } else { 2 },
        })
    }
}

/// The event frame's columns of names: the run's [`dictionary`]'s codes, `u32` (the key column
/// may be held narrower, [`keys`]).
pub const NAME_COLUMNS: [&str; 7] = {
    use crate::normalize::schema::col::*;
    [
        PRINCIPAL, CREDENTIAL, SOURCE_IP, NETWORK, TARGET, USER_AGENT, ACTION,
    ]
};

/// A key column built from Rust strings (context tables, flagged entities) in the event frame's
/// encoding, so joins and `is_in` against event columns compare codes: the run's [`dictionary`]
/// codes, given now to names it does not hold yet.
/// Any values polars takes as strings: `Vec<String>`, or with nulls `Vec<Option<String>>`. The
/// event type has a dictionary of its own ([`event_type`]).
pub fn key_column<V, P: ?Sized>(name: &str, values: V) -> Result<Column>
where
    Series: NamedFrom<V, P>,
{
    let column = Column::new(name.into(), values);
    if name == crate::normalize::schema::col::EVENT_TYPE {
        return column.cast(&event_type::dtype()).stage("encoding keys");
    }
    let text = column.cast(&DataType::String).stage("encoding keys")?;
    let text = text.str().stage("encoding keys")?;
    let present: Vec<&str> = text.iter().flatten().collect();
    let mut codes = dictionary()
        .insert_all(&present)
        .stage("encoding keys")?
        .into_iter();
    let coded: UInt32Chunked = (text.iter())
        .map(|v| v.and_then(|_| codes.next()))
        .collect();
    Ok(coded.with_name(name.into()).into_column())
}

/// The same, as a series for `is_in`.
pub fn key_series(name: &str, values: Vec<String>) -> Result<Series> {
    Ok(key_column(name, values)?.as_materialized_series().clone())
}

/// A frame of `columns`, as high as the first (and every other) one.
pub fn table_of(columns: Vec<Column>) -> PolarsResult<DataFrame> {
    let height = columns.first().map_or(0, |c| c.len());
    DataFrame::new(height, columns)
}

/// Rows per row group of the Parquet tables a state writes a group at a time, as polars' writer
/// makes them by default.
pub const PARQUET_GROUP_ROWS: usize = 512 * 512;

/// `columns` as one LZ4 Parquet table at `path`; the bytes written. For what a state derives and
/// writes again often (its records and names): LZ4 writes faster than zstd (`reduce::store`).
/// `broken` says what a polars error means to the caller.
pub fn write_lz4(
    path: &std::path::Path,
    columns: Vec<Column>,
    broken: impl Fn(PolarsError) -> Error,
) -> Result<u64> {
    use polars_io::parquet::write::{ParquetCompression, ParquetWriter};
    let mut df = table_of(columns).map_err(&broken)?;
    let file = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    ParquetWriter::new(file)
        .with_compression(ParquetCompression::Lz4Raw)
        .finish(&mut df)
        .map_err(broken)
}

/// The Parquet table at `path`, whole; `broken` as for [`write_lz4`].
pub fn read_parquet(
    path: &std::path::Path,
    broken: impl Fn(PolarsError) -> Error,
) -> Result<DataFrame> {
    use polars_io::SerReader;
    use polars_io::parquet::read::ParquetReader;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    ParquetReader::new(file).finish().map_err(broken)
}

/// The columns `names` of the Parquet table at `path`, whole.
pub fn read_parquet_columns(
    path: &std::path::Path,
    names: &[&str],
    broken: impl Fn(PolarsError) -> Error,
) -> Result<DataFrame> {
    use polars_io::SerReader;
    use polars_io::parquet::read::ParquetReader;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let names = names.iter().map(|n| n.to_string()).collect();
    (ParquetReader::new(file).with_columns(Some(names)).finish()).map_err(broken)
}

/// The Parquet table at `path` in batches of consecutive row groups of at most `rows` rows (at
/// least one group each), handed to `each` in order, each read on the calling thread (see
/// [`read_row_groups`]). What a reader that keeps only what it makes of each batch uses instead
/// of the whole table. `broken` as for [`write_lz4`].
pub fn parquet_batches(
    path: &std::path::Path,
    rows: usize,
    broken: impl Fn(PolarsError) -> Error,
    mut each: impl FnMut(DataFrame) -> Result<()>,
) -> Result<()> {
    let (metadata, runs) = parquet_runs(path, rows, &broken)?;
    for run in runs {
        let part = groups_of(&metadata, run);
        each(read_row_groups(path, Arc::new(part), None, &broken)?)?;
    }
    Ok(())
}

/// The metadata of the Parquet table at `path`, and its row groups in the runs
/// [`parquet_batches`] reads (of at most `rows` rows, at least one group each): for a reader that
/// pulls them as it needs them instead. `broken` as for [`write_lz4`].
pub fn parquet_runs(
    path: &std::path::Path,
    rows: usize,
    broken: impl Fn(PolarsError) -> Error,
) -> Result<(
    Arc<polars_io::parquet::read::FileMetadata>,
    Vec<std::ops::Range<usize>>,
)> {
    use polars_io::SerReader;
    use polars_io::parquet::read::ParquetReader;
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let metadata = (ParquetReader::new(file).get_metadata().cloned()).map_err(broken)?;
    let sizes: Vec<usize> = metadata.row_groups.iter().map(|g| g.num_rows()).collect();
    let runs = runs(&sizes, rows);
    Ok((metadata, runs))
}

/// The row groups `metadata` names (columns `names`, or all), read on this thread only: a rayon
/// worker that blocks on polars' own pool steals more work meanwhile, one stack frame deeper each
/// time (a state's 120 nights read back side by side overflowed 192 KiB stacks; `normalize::cold`
/// met the same).
pub fn read_row_groups(
    path: &std::path::Path,
    metadata: Arc<polars_io::parquet::read::FileMetadata>,
    names: Option<Vec<String>>,
    broken: impl Fn(PolarsError) -> Error,
) -> Result<DataFrame> {
    use polars_io::SerReader;
    use polars_io::parquet::read::{ParallelStrategy, ParquetReader};
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = ParquetReader::new(file)
        .read_parallel(ParallelStrategy::None)
        .with_columns(names);
    reader.set_metadata(metadata);
    reader.finish().map_err(broken)
}

/// `metadata` naming row groups `range` alone: a reader given it reads those groups and walks no
/// other (given the whole file's and a slice, polars' reader walks every group before it).
pub fn groups_of(
    metadata: &polars_io::parquet::read::FileMetadata,
    range: std::ops::Range<usize>,
) -> polars_io::parquet::read::FileMetadata {
    let mut part = metadata.clone();
    part.row_groups = metadata.row_groups[range].to_vec();
    part.num_rows = part.row_groups.iter().map(|g| g.num_rows()).sum();
    part
}

/// Consecutive sizes (rows of row groups, of chunks) in runs of at most `bound` rows together,
/// as ranges of their indices (at least one size each; one empty run for no sizes).
pub fn runs(sizes: &[usize], bound: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let (mut start, mut rows) = (0, 0);
    for (i, &n) in sizes.iter().enumerate() {
        if i > start && rows + n > bound {
            out.push(start..i);
            (start, rows) = (i, 0);
        }
        rows += n;
    }
    out.push(start..sizes.len());
    out
}

/// `frames` one after another, chunks as they are (no copy into one chunk); `None` for none.
pub fn stack(
    frames: impl IntoIterator<Item = Result<DataFrame>>,
    stage: &'static str,
) -> Result<Option<DataFrame>> {
    let mut out: Option<DataFrame> = None;
    for df in frames {
        let df = df?;
        match out.as_mut() {
            None => out = Some(df),
            Some(acc) => {
                acc.vstack_mut(&df).stage(stage)?;
            }
        }
    }
    Ok(out)
}

/// Where `keep` holds over the rows of `df` (a null is false).
pub fn mask_of(df: &DataFrame, keep: Expr) -> Result<BooleanChunked> {
    df.clone()
        .lazy()
        .select([keep.alias("keep")])
        .collect()
        .and_then(|out| out.column("keep")?.bool().cloned())
        .and_then(|mask| mask.fill_null_with_values(false))
        .stage("selecting rows")
}

/// The target account as its dictionary code: what "distinct accounts" counts. Codes are only
/// compared, never reported, so their assignment order (thread timing) cannot leak into output.
pub fn account() -> Expr {
    col(crate::normalize::schema::col::TARGET).to_physical()
}

/// `ts` in whole periods of `ms` since the epoch, by floor division so instants before 1970 land
/// in the right bucket (`/` on integers truncates toward zero; floor division proper needs a
/// polars feature we do not build).
pub fn ts_bucket(ms: i64) -> Expr {
    let ts = || col(crate::normalize::schema::col::TS);
    let rem = ((ts() % lit(ms)) + lit(ms)) % lit(ms);
    (ts() - rem) / lit(ms)
}

/// The run's dictionary of names ([`Dictionary`]), to turn codes read with [`codes`] back into
/// strings.
pub fn dictionary() -> &'static Dictionary {
    &SHARED
}

/// The dictionary held for the whole process: a key column held in two bytes ([`keys`]) holds
/// none of its codes, yet its keys are read back as the dictionary's codes, which tables built
/// before it was narrowed still hold. A static is never dropped, which also spares the binary
/// freeing its blocks at the end of a run.
static SHARED: std::sync::LazyLock<Dictionary> = std::sync::LazyLock::new(Dictionary::new);

/// A code column's dictionary codes as one flat vector, nulls as [`NULL`]: detectors that
/// count per entity in plain Rust index these directly instead of going through chunks.
pub fn codes(df: &DataFrame, name: &str) -> Result<Vec<u32>> {
    codes_of(df.column(name).stage("reading codes")?)
}

/// [`codes`] of a column on its own (a cold column read for a span).
pub fn codes_of(column: &Column) -> Result<Vec<u32>> {
    let arrays = keys::of_column(column)?;
    let mut out = Vec::with_capacity(column.len());
    for arr in arrays {
        out.extend_from_slice(&arr.values());
    }
    Ok(out)
}

/// One chunk of a code column held in 4 bytes.
pub type CodeArray = <UInt32Type as PolarsDataType>::Array;

/// The chunks behind a code column (names, or token codes), each read as the shared
/// dictionary's codes ([`Codes`]; the keys may be held in two bytes, [`keys`]): for passes that
/// walk several columns of the whole event table at once without copying any of them.
pub fn code_arrays<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Codes<'a>>> {
    keys::of_column(df.column(name).stage("reading codes")?)
}

/// The code at row `i` of one chunk, [`NULL`] for a null.
#[inline(always)]
pub fn code_at(arr: &CodeArray, i: usize) -> u32 {
    value_at::<UInt32Type>(arr, i, NULL)
}

/// One chunk's values with nulls as `null`; borrowed when the chunk has none.
pub(crate) fn values_or<T: PolarsNumericType>(
    arr: &T::Array,
    null: T::Native,
) -> Cow<'_, [T::Native]> {
    match arr.validity().filter(|v| v.unset_bits() > 0) {
        None => Cow::Borrowed(arr.values().as_slice()),
        Some(valid) => Cow::Owned(
            (arr.values().iter().zip(valid.iter()))
                .map(|(&c, ok)| if ok { c } else { null })
                .collect(),
        ),
    }
}

/// The value at row `i` of one chunk, `null` for a null.
#[inline]
pub(crate) fn value_at<T: PolarsNumericType>(
    arr: &T::Array,
    i: usize,
    null: T::Native,
) -> T::Native {
    match arr.validity() {
        Some(valid) if !valid.get_bit(i) => null,
        _ => arr.values()[i],
    }
}

/// The instants of a frame that holds them (past ingest they wait beside the event frame and are
/// read a run at a time), chunk by chunk (the column has no nulls: ingest rejects a record
/// without a time).
pub fn ts_arrays(df: &DataFrame) -> Result<Vec<&[i64]>> {
    let ca = df
        .column(TS)
        .stage("reading instants")?
        .i64()
        .stage("reading instants")?;
    Ok(ca.downcast_iter().map(|a| a.values().as_slice()).collect())
}

/// The first and last instant of a frame that holds them (the event frame's:
/// [`crate::normalize::ColdColumns::ts_range`]). polars' `min` and `max` took 60 ms together on
/// the 10M-event frame.
pub fn ts_range(df: &DataFrame) -> Result<Option<(i64, i64)>> {
    // One pass per chunk, chunks in parallel: the pass is bound by memory, not by comparisons.
    Ok((ts_arrays(df)?.into_par_iter().map(span_of)).reduce(|| None, spanning))
}

/// The first and last of `instants` (none: empty).
pub fn span_of(instants: &[i64]) -> Option<(i64, i64)> {
    let first = *instants.first()?;
    Some((instants.iter()).fold((first, first), |(lo, hi), &t| (lo.min(t), hi.max(t))))
}

/// The span of time covering both (either may be none).
pub fn spanning(a: Option<(i64, i64)>, b: Option<(i64, i64)>) -> Option<(i64, i64)> {
    match (a, b) {
        (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
        (a, b) => a.or(b),
    }
}

/// `names` of `df`, cut into the same row ranges (copied only when they are not), so the n-th
/// array of each column covers the same rows.
///
/// The network column is derived from the addresses when the frame has none (see
/// [`crate::normalize::networks`]).
pub fn aligned(df: &DataFrame, names: &[&str]) -> Result<DataFrame> {
    use crate::normalize::schema::col::SOURCE_IP;
    if !names.contains(&NETWORK) || df.column(NETWORK).is_ok() {
        let mut out = df.select(names.iter().copied()).stage("aligning columns")?;
        out.align_chunks_par();
        return Ok(out);
    }
    let mut read: Vec<&str> = names.iter().copied().filter(|n| *n != NETWORK).collect();
    if !read.contains(&SOURCE_IP) {
        read.push(SOURCE_IP);
    }
    let mut out = df.select(read).stage("aligning columns")?;
    out.align_chunks_par();
    let networks = crate::normalize::networks::network_column(&out)?;
    out.with_column(networks).stage("aligning columns")?;
    out.select(names.iter().copied()).stage("aligning columns")
}

/// The rows whose name column `name` holds a value of `since`, at or after that value's
/// instant (null rows are out), in order. On the 10M-event export polars' `is_in` on the column
/// and an inner join to the (value, instant) table took 0.1 s for a table naming a key used 1.8M
/// times; a table indexed by dictionary code answers each row with two loads.
pub fn rows_since(
    frame: (&DataFrame, &ColdColumns),
    name: &str,
    since: &[(String, i64)],
) -> Result<Vec<IdxSize>> {
    let [rows] = rows_since_each(frame, name, [since])?;
    Ok(rows)
}

/// [`rows_since`] of several tables over the same column, in one pass over it: offboarding's
/// revocations and owners' departures are both cut-offs of the credential, and each pass over
/// the 85.9M-event state's credentials and instants took about 0.3 s. One pass for both: that
/// state's offboarding in a night 1.30–1.35 → 1.03–1.17 s, its CPU 2.18–2.32 → 1.64–1.90 s (three
/// alternated pairs, `--timings-per-detector`, reports identical).
pub fn rows_since_each<const N: usize>(
    df: (&DataFrame, &ColdColumns),
    name: &str,
    since: [&[(String, i64)]; N],
) -> Result<[Vec<IdxSize>; N]> {
    let from = since.map(|s| by_code(s, i64::min));
    let keep = from
        .each_ref()
        .map(|table| move |code, ts| table.get(code).is_some_and(|at| ts >= at));
    rows_keyed(df, name, keep)
}

/// The rows whose name column `name` holds a value of `before`, earlier than that value's
/// instant, in order.
pub fn rows_before(
    df: (&DataFrame, &ColdColumns),
    name: &str,
    before: &[(String, i64)],
) -> Result<Vec<IdxSize>> {
    let until = by_code(before, i64::max);
    let [rows] = rows_keyed(
        df,
        name,
        [|code, ts| until.get(code).is_some_and(|at| ts < at)],
    )?;
    Ok(rows)
}

/// `values` indexed by their dictionary code (values not in the dictionary are left out, as no
/// row can hold them); a value given twice keeps `join` of both.
fn by_code<T: Copy + Default>(values: &[(String, T)], join: impl Fn(T, T) -> T) -> CodeTable<T> {
    let dict = dictionary();
    let coded = (values.iter()).filter_map(|(value, v)| Some((dict.code(value)?, *v)));
    CodeTable::new(coded, join)
}

/// Values by dictionary code, for the few codes a pass over every row wants, with a bit per
/// code in front. The values alone are 4 or 8 bytes per code up to the highest wanted (a
/// principal's code can be in the tens of millions) and missed the cache on nearly every row,
/// where the bits are 32 or 64 times smaller. Over the 85.9M-event state (nothing new, two
/// alternated runs each, `--timings-per-detector`): enumeration, whose related addresses and
/// principals are such a pass, 3.67–3.74 → 3.34–3.40 s; the rank stage, which counts the shown
/// entities' endpoints and clients, 2.39–2.41 → 2.08–2.09 s; offboarding, whose cut-offs are
/// such tables (its chunks now side by side too), 1.86–1.89 → 1.16 s, 1.65 s of CPU instead
/// of 1.94–1.96.
pub struct CodeTable<T> {
    bits: Vec<u64>,
    values: Vec<T>,
}

impl<T: Copy + Default> CodeTable<T> {
    /// `pairs` of code and value; a code given twice keeps `join` of both.
    pub fn new(pairs: impl IntoIterator<Item = (u32, T)>, join: impl Fn(T, T) -> T) -> Self {
        let mut table = CodeTable {
            bits: Vec::new(),
            values: Vec::new(),
        };
        for (code, value) in pairs {
            let at = code as usize;
            if table.values.len() <= at {
                table.values.resize(at + 1, T::default());
                table.bits.resize(table.values.len().div_ceil(64), 0);
            }
            let bit = 1 << (at % 64);
            table.values[at] = match table.bits[at / 64] & bit {
                0 => value,
                _ => join(table.values[at], value),
            };
            table.bits[at / 64] |= bit;
        }
        table
    }

    /// The value of `code`, if given (never for the null code).
    #[inline]
    pub fn get(&self, code: u32) -> Option<T> {
        let at = code as usize;
        match self.bits.get(at / 64) {
            Some(word) if word >> (at % 64) & 1 == 1 => Some(self.values[at]),
            _ => None,
        }
    }
}

/// For each predicate of `keep`, the rows it accepts (code of `name`, instant), in order, all
/// found in one pass over the column. The callers select them, so they are listed as found, not
/// marked in a mask of every row (a byte each on fresh pages, packed, then read back for its set
/// bits): over the 85.9M-event state, offboarding's three passes and selections took 1.12–1.23 s
/// instead of 1.29–1.35 s (two alternated pairs, `--timings-per-detector`).
///
/// A column beside the frame (the principal, the address or the instants, past ingest) is read
/// a run of chunks at a time.
fn rows_keyed<const N: usize>(
    (df, cold): (&DataFrame, &ColdColumns),
    name: &str,
    keep: [impl Fn(u32, i64) -> bool + Sync; N],
) -> Result<[Vec<IdxSize>; N]> {
    // Chunk by chunk, side by side.
    let found_in = |frame: &DataFrame, first: IdxSize| -> Result<Vec<[Vec<IdxSize>; N]>> {
        let (keys, instants) = (code_arrays(frame, name)?, ts_arrays(frame)?);
        let mut starts = Vec::with_capacity(instants.len());
        let mut at: IdxSize = first;
        for t in &instants {
            starts.push(at);
            at += t.len() as IdxSize;
        }
        Ok((0..keys.len())
            .into_par_iter()
            .map(|n| {
                let (k, t) = (&keys[n], instants[n]);
                let mut found: [Vec<IdxSize>; N] = std::array::from_fn(|_| Vec::new());
                for (i, (&ts, row)) in t.iter().zip(starts[n]..).enumerate() {
                    let code = k.at(i);
                    for (accepts, rows) in keep.iter().zip(&mut found) {
                        if accepts(code, ts) {
                            rows.push(row);
                        }
                    }
                }
                found
            })
            .collect())
    };
    use crate::normalize::schema::col::SOURCE_IP;
    // A network is derived from the addresses, wherever they are.
    let read = if name == NETWORK { SOURCE_IP } else { name };
    let parts = match df.column(read).is_ok() && df.column(TS).is_ok() {
        true => found_in(&aligned(df, &[name, TS])?, 0)?,
        false => {
            let mut parts = Vec::new();
            cold.runs(df, &[read, TS], crate::normalize::cold::RUN_ROWS, |run| {
                let found = (run.par_iter())
                    .map(|(start, frame)| {
                        found_in(&aligned(frame, &[name, TS])?, *start as IdxSize)
                    })
                    .collect::<Result<Vec<_>>>()?;
                parts.extend(found.into_iter().flatten());
                Ok(())
            })?;
            parts
        }
    };
    Ok(std::array::from_fn(|j| {
        let mut rows = Vec::with_capacity(parts.iter().map(|p| p[j].len()).sum());
        for part in &parts {
            rows.extend_from_slice(&part[j]);
        }
        rows
    }))
}

/// The code [`codes`] gives a null.
pub const NULL: u32 = u32::MAX;

/// Column `name` of `df` as text: a column of codes (a name column, `u32`) through the run's
/// [`dictionary`], an event type through its own; a null as empty.
pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let column = df.column(name).stage("reading results")?;
    Ok((texts(column)?.into_iter())
        .map(Option::unwrap_or_default)
        .collect())
}

/// [`strs`] of a column, with the nulls kept.
pub fn texts(column: &Column) -> Result<Vec<Option<String>>> {
    if column.dtype() == &DataType::UInt32 {
        let dict = dictionary();
        return Ok((codes_of(column)?.into_iter())
            .map(|c| dict.name(c).map(str::to_string))
            .collect());
    }
    let column = match column.dtype() {
        DataType::Categorical(..) => column.cast(&DataType::String).stage("reading results")?,
        _ => column.clone(),
    };
    let ca = column.str().stage("reading results")?;
    Ok(ca.iter().map(|v| v.map(str::to_string)).collect())
}

pub fn i64s(df: &DataFrame, name: &str) -> Result<Vec<i64>> {
    let ca = df
        .column(name)
        .stage("reading results")?
        .i64()
        .stage("reading results")?;
    // Also reads whole event columns (instants), where copying the arrays beats an iterator.
    if ca.null_count() > 0 {
        return Ok(ca.iter().map(|v| v.unwrap_or_default()).collect());
    }
    let mut out = Vec::with_capacity(ca.len());
    for arr in ca.downcast_iter() {
        out.extend_from_slice(arr.values());
    }
    Ok(out)
}

pub fn u64s(df: &DataFrame, name: &str) -> Result<Vec<u64>> {
    let ca = df
        .column(name)
        .stage("reading results")?
        .u64()
        .stage("reading results")?;
    Ok(ca.iter().map(|v| v.unwrap_or_default()).collect())
}

pub fn u32s(df: &DataFrame, name: &str) -> Result<Vec<u32>> {
    let ca = df
        .column(name)
        .stage("reading results")?
        .u32()
        .stage("reading results")?;
    Ok(ca.iter().map(|v| v.unwrap_or_default()).collect())
}

#[cfg(test)]
pub(crate) mod random;
#[cfg(test)]
mod tests;
