//! The frame's chunks packed while ingest reads a big run.
//!
//! Ingest's peak was the end of reading: every chunk of the frame held as parsed (1.99 GB at
//! 85.9M events), beside what reading itself still holds (the readers' dictionaries, the token
//! fingerprints, the dictionary of names, decompression and parse buffers). Past
//! `--spill-from-events` each chunk, once its cold columns are taken, waits here compressed
//! instead: instants as zig-zagged differences, codes and flags as bytes, each column through
//! zstd level 1. The chunks are unpacked, in parallel, once reading is over and what it
//! held is freed. Packing changes no value, type or order: the frame that comes out is the one
//! that went in (tested against the frame itself).
//!
//! Measured over the 85.9M-event export (`docs/performance.md`, thirty-sixth session): resident
//! memory while reading stays at 2.5–2.63 GB instead of growing to 3.47 GB, and with the token
//! table sealed before the unpacking ingest's peak is 2.74–2.76 GB; 2.8 times less memory for
//! the chunks at 10M; about 3 s more of ingest CPU (79–80 → 82–84 s). Nothing here is
//! hand-written in place of a crate but the zig-zagged differences: zstd compresses.

use polars::prelude::*;

use crate::error::{Error, Result};
use crate::frame::{Narrowing, event_type, keys};
use crate::normalize::schema::col::{CREDENTIAL, EVENT_TYPE};

/// zstd's level: the fastest of its ordinary ones. Codes and differences of instants are
/// already small numbers, where the higher levels gained little for their time.
const LEVEL: i32 = 1;

/// Distinct keys a packed chunk records for re-coding the key column as it is unpacked: a gateway
/// signs with a handful. A chunk naming more records none, and the column is then re-coded once
/// ingest is done, if the run's keys fit (`frame::keys::narrow`): what waits beside every chunk
/// stays at most 4 KiB, whatever an export's keys.
const KEYS_PER_CHUNK: usize = 1024;

/// A chunk of the frame as ingest holds it until reading ends.
pub enum Chunk {
    Frame(DataFrame),
    Packed(Packed),
}

impl Chunk {
    /// `df` packed when every column's physical type is one packing knows (64-bit integers,
    /// 32- and 16-bit codes, flags); as it is otherwise.
    pub fn pack(df: DataFrame) -> Chunk {
        match Packed::of(&df) {
            Some(packed) => Chunk::Packed(packed),
            None => Chunk::Frame(df),
        }
    }

    pub fn height(&self) -> usize {
        match self {
            Chunk::Frame(df) => df.height(),
            Chunk::Packed(p) => p.height,
        }
    }

    /// The frame this chunk holds.
    pub fn into_frame(self) -> Result<DataFrame> {
        match self {
            Chunk::Frame(df) => Ok(df),
            Chunk::Packed(p) => p.unpack(),
        }
    }

    /// Bytes held (the packed bytes of a packed chunk): what the tests hold packing to.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        match self {
            Chunk::Frame(df) => df.estimated_size(),
            Chunk::Packed(p) => p.columns.iter().map(PackedColumn::bytes).sum(),
        }
    }

    /// The distinct keys of its key column, as [`keys::distinct_keys`].
    fn keys(&self) -> Option<Vec<u32>> {
        match self {
            Chunk::Frame(df) => keys::distinct_keys(df, CREDENTIAL, KEYS_PER_CHUNK),
            Chunk::Packed(p) => p.keys.clone(),
        }
    }

    /// Bytes of the frame this chunk holds, unpacked.
    pub fn frame_bytes(&self) -> usize {
        match self {
            Chunk::Frame(df) => df.estimated_size(),
            Chunk::Packed(p) => p.unpacked,
        }
    }
}

/// The frames of `chunks`, a run holding a packed chunk unpacked into the one chunk
/// [`crate::frame::compact`] would cut from it: in each of `stretches` (rows of consecutive
/// chunks, one file's), runs of small chunks become one chunk of about `rows` rows. Unpacked
/// straight into those, the frame is copied once instead of twice, and each run's packed chunks
/// are freed as it is unpacked. Runs held as read are left to `compact`, which frees them in
/// step as it copies them.
///
/// When the chunks name at most `narrowing.keys_up_to` distinct keys, each run's key column is
/// re-coded in two bytes (or one) as soon as it is unpacked ([`crate::frame::keys`]), and its
/// event type in one byte where the run's types fit ([`crate::frame::event_type`]): unpacked
/// whole first, the wide key column set ingest's peak (100.09M events: 2.99 GB, of which the key
/// column 0.4 GB).
pub fn unpack_compacted(
    chunks: Vec<Chunk>,
    stretches: &[usize],
    rows: usize,
    narrowing: Narrowing,
) -> Result<Vec<DataFrame>> {
    use rayon::prelude::*;
    let table = keys::union(chunks.iter().map(Chunk::keys), narrowing.keys_up_to)
        .map(|k| keys::KeyTable::new(&k, narrowing.one_byte_up_to))
        .transpose()?;
    let mut chunks = chunks.into_iter();
    let mut runs: Vec<Vec<Chunk>> = Vec::new();
    for &stretch in stretches {
        let (mut taken, mut lengths, mut have) = (Vec::new(), Vec::new(), 0);
        while have < stretch {
            let chunk = chunks
                .next()
                .ok_or_else(|| broken("fewer chunks than rows"))?;
            have += chunk.height();
            lengths.push(chunk.height());
            taken.push(chunk);
        }
        let mut taken = taken.into_iter();
        for n in crate::frame::compact_plan(lengths.into_iter(), rows.max(1)) {
            let (mut run, mut have) = (Vec::new(), 0);
            while have < n {
                let chunk = taken
                    .next()
                    .ok_or_else(|| broken("a run past its stretch"))?;
                have += chunk.height();
                run.push(chunk);
            }
            runs.push(run);
        }
    }
    // A chunk of no rows is never made (`ingest::readers`), so any left is a fault.
    if chunks.next().is_some() {
        return Err(broken("more chunks than rows"));
    }
    let runs: Vec<Vec<DataFrame>> = runs
        .into_par_iter()
        .map(|run| {
            let mut frames = unpack_run(run)?;
            for df in &mut frames {
                if let Some(table) = &table {
                    table.narrow(df, CREDENTIAL)?;
                }
                event_type::narrow(df, EVENT_TYPE, narrowing.one_byte_up_to)?;
            }
            Ok(frames)
        })
        .collect::<Result<_>>()?;
    Ok(runs.into_iter().flatten().collect())
}

/// One run of chunks as one frame of one chunk a column, or as it is when nothing in it is
/// packed.
fn unpack_run(run: Vec<Chunk>) -> Result<Vec<DataFrame>> {
    if run.iter().all(|c| matches!(c, Chunk::Frame(_))) {
        return run.into_iter().map(Chunk::into_frame).collect();
    }
    let frames = run.into_iter().map(Chunk::into_frame);
    let mut df = (crate::frame::stack(frames, "unpacking the frame")?)
        .ok_or_else(|| broken("an empty run"))?;
    if df.first_col_n_chunks() > 1 {
        df.rechunk_mut();
    }
    Ok(vec![df])
}

/// One chunk's columns, packed.
pub struct Packed {
    height: usize,
    /// The frame's bytes as it was packed.
    unpacked: usize,
    /// The distinct keys of its key column ([`keys::distinct_keys`]), known before unpacking.
    keys: Option<Vec<u32>>,
    columns: Vec<PackedColumn>,
}

struct PackedColumn {
    name: PlSmallStr,
    dtype: DataType,
    values: Values,
    /// One byte a row (0 for a null) when the column has nulls, packed.
    validity: Option<Vec<u8>>,
}

/// A column's physical values, packed.
enum Values {
    /// Differences from the row before, zig-zagged, little-endian.
    I64(Vec<u8>),
    /// Little-endian.
    U32(Vec<u8>),
    /// One byte a row.
    Bool(Vec<u8>),
    /// Little-endian: the event type's codes.
    U16(Vec<u8>),
}

impl PackedColumn {
    #[cfg(test)]
    fn bytes(&self) -> usize {
        let values = match &self.values {
            Values::I64(b) | Values::U32(b) | Values::Bool(b) | Values::U16(b) => b.len(),
        };
        values + self.validity.as_ref().map_or(0, Vec::len)
    }
}

impl Packed {
    /// `df` packed, or `None` when a column's physical type is not one packing knows or
    /// compressing failed (the chunk is then held as it is).
    pub fn of(df: &DataFrame) -> Option<Packed> {
        let height = df.height();
        let columns = df
            .columns()
            .iter()
            .map(|c| pack_column(c.as_materialized_series()))
            .collect::<Option<Vec<_>>>()?;
        let unpacked = df.estimated_size();
        Some(Packed {
            height,
            unpacked,
            keys: keys::distinct_keys(df, CREDENTIAL, KEYS_PER_CHUNK),
            columns,
        })
    }

    /// The frame packed, with the same names, types, values and nulls.
    pub fn unpack(self) -> Result<DataFrame> {
        let height = self.height;
        let columns = (self.columns.into_iter())
            .map(|c| unpack_column(c, height))
            .collect::<Result<Vec<_>>>()?;
        DataFrame::new(height, columns).map_err(|e| broken(&e.to_string()))
    }
}

fn pack_column(series: &Series) -> Option<PackedColumn> {
    let physical = series.to_physical_repr();
    let (values, validity) = match physical.dtype() {
        DataType::Int64 => {
            let ca = physical.i64().ok()?;
            let mut before = 0i64;
            let mut bytes = Vec::with_capacity(ca.len() * 8);
            bytes.extend(ca.into_no_null_iter().flat_map(|v| {
                let delta = v.wrapping_sub(before);
                before = v;
                (((delta << 1) ^ (delta >> 63)) as u64).to_le_bytes()
            }));
            (Values::I64(compress(&bytes)?), validity_of(ca))
        }
        DataType::UInt32 => {
            let ca = physical.u32().ok()?;
            let mut bytes = Vec::with_capacity(ca.len() * 4);
            bytes.extend(ca.into_no_null_iter().flat_map(u32::to_le_bytes));
            (Values::U32(compress(&bytes)?), validity_of(ca))
        }
        DataType::UInt16 => {
            let ca = physical.u16().ok()?;
            let mut bytes = Vec::with_capacity(ca.len() * 2);
            bytes.extend(ca.into_no_null_iter().flat_map(u16::to_le_bytes));
            (Values::U16(compress(&bytes)?), validity_of(ca))
        }
        DataType::Boolean => {
            let ca = physical.bool().ok()?;
            let bytes: Vec<u8> = (ca.downcast_iter())
                .flat_map(|a| a.values().iter())
                .map(u8::from)
                .collect();
            (Values::Bool(compress(&bytes)?), validity_of(ca))
        }
        _ => return None,
    };
    let validity = match validity {
        Some(v) => Some(compress(&v)?),
        None => None,
    };
    Some(PackedColumn {
        name: series.name().clone(),
        dtype: series.dtype().clone(),
        values,
        validity,
    })
}

fn unpack_column(column: PackedColumn, height: usize) -> Result<Column> {
    let name = column.name;
    let valid = match &column.validity {
        Some(v) => Some(decompress(v, height)?),
        None => None,
    };
    let validity = (valid.as_deref().map(flags))
        .and_then(|v| v.downcast_iter().next().map(|a| a.values().clone()));
    let physical = match &column.values {
        Values::I64(b) => {
            let mut before = 0i64;
            let values: Vec<i64> = (decompress(b, height * 8)?.chunks_exact(8))
                .map(|w| {
                    let z = u64::from_le_bytes(word(w));
                    before = before.wrapping_add(((z >> 1) as i64) ^ -((z & 1) as i64));
                    before
                })
                .collect();
            Int64Chunked::from_vec_validity(name, values, validity).into_series()
        }
        Values::U32(b) => {
            let values: Vec<u32> = (decompress(b, height * 4)?.chunks_exact(4))
                .map(|w| u32::from_le_bytes(word(w)))
                .collect();
            UInt32Chunked::from_vec_validity(name, values, validity).into_series()
        }
        Values::U16(b) => {
            let values: Vec<u16> = (decompress(b, height * 2)?.chunks_exact(2))
                .map(|w| u16::from_le_bytes(word(w)))
                .collect();
            UInt16Chunked::from_vec_validity(name, values, validity).into_series()
        }
        Values::Bool(b) => {
            let values = decompress(b, height)?;
            match &valid {
                None => flags(&values).with_name(name).into_series(),
                Some(valid) => {
                    let rows = values.iter().zip(valid);
                    let rows = rows.map(|(&v, &ok)| (ok != 0).then_some(v != 0));
                    BooleanChunked::from_iter_options(name, rows).into_series()
                }
            }
        }
    };
    // SAFETY: `physical` is the physical form of a column of `dtype` made in this process (the
    // same categorical mapping), with the same values: `pack_column` took it apart.
    let series = unsafe { physical.from_physical_unchecked(&column.dtype) };
    Ok(series.map_err(|e| broken(&e.to_string()))?.into_column())
}

/// One byte a row, 0 for a null, when `ca` has nulls.
fn validity_of<T: PolarsDataType>(ca: &ChunkedArray<T>) -> Option<Vec<u8>> {
    (ca.null_count() > 0).then(|| {
        let valid = ca.is_not_null();
        (valid.downcast_iter())
            .flat_map(|a| a.values().iter())
            .map(u8::from)
            .collect()
    })
}

/// Bytes of one a row as flags, in one chunk.
fn flags(bytes: &[u8]) -> BooleanChunked {
    BooleanChunked::from_iter_values(PlSmallStr::EMPTY, bytes.iter().map(|&b| b != 0))
}

/// `bytes` compressed, in a vector of their own size: zstd hands back one as long as the
/// uncompressed bytes could need, and kept so it held all that packing saved.
fn compress(bytes: &[u8]) -> Option<Vec<u8>> {
    let packed = zstd::bulk::compress(bytes, LEVEL).ok()?;
    Some(packed.as_slice().to_vec())
}

/// Exactly `len` bytes from what [`compress`] made.
fn decompress(packed: &[u8], len: usize) -> Result<Vec<u8>> {
    let bytes = zstd::bulk::decompress(packed, len).map_err(|e| broken(&e.to_string()))?;
    match bytes.len() == len {
        true => Ok(bytes),
        false => Err(broken(&format!(
            "{} bytes where {len} were packed",
            bytes.len()
        ))),
    }
}

fn word<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(bytes);
    out
}

fn broken(why: &str) -> Error {
    Error::Internal(format!("unpacking a chunk of the frame: {why}"))
}

#[cfg(test)]
mod tests;
