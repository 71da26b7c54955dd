//! The key column in two bytes an event where a run's keys fit (one byte where at most
//! [`MAX_ONE_BYTE`] do), and every code column read as the shared dictionary's codes whatever
//! width it is held in ([`Codes`]).
//!
//! Why: the frame stands under every stage of a run, and its credential column took 4 bytes an
//! event in polars' process-wide dictionary for the handful of keys a gateway signs with: 0.4 GB
//! of the 2.22 GB frame at 100.09M events (`docs/scale.md`, forty-second session). A run whose
//! column holds at most [`MAX_KEYS`] distinct keys has it re-coded over a dictionary of its own
//! with 16-bit codes ([`KeyTable`]); a run with more keys (a cloud audit trail's access keys can
//! run past 65,535) keeps the 4-byte column: the width follows the run, and no row is ever
//! refused for it. Past the spill bound ingest re-codes each run of the frame as it unpacks it,
//! the keys gathered from the packed chunks (`normalize::packed::unpack_compacted`), so the wide
//! column is never whole: at 100.09M events ingest's peak, the unpacking, fell 2.99 → 2.84 GB. A
//! smaller run is re-coded once ingest is done ([`narrow`]). A store widens the column back
//! ([`widened`]). A gateway's handful of keys take one byte: 100 MB less at 100.09M events
//! (`docs/performance.md`, forty-third session).
//!
//! The narrow codes are given in the order of the keys' shared codes, so sorting or grouping by
//! the physical codes orders keys as the wide column did. Passes that count per key read the
//! column through [`crate::frame::code_arrays`], which hands every code back in the shared
//! dictionary ([`Codes::at`]): nothing downstream sees which width the run chose. A query that
//! compares the column's physical codes with shared ones asks for them in the column's own
//! ([`physical_codes`]).

use std::borrow::Cow;
use std::sync::Arc;

use polars::prelude::*;
use rayon::prelude::*;

use super::{CodeArray, NULL, code_at, dictionary, values_or};
use crate::error::{Error, FrameContext, Result};

/// Distinct keys a run codes in two bytes: every 16-bit code but `u16::MAX`, which marks a
/// shared code that is no key while the column is re-coded ([`narrow`]).
pub const MAX_KEYS: usize = u16::MAX as usize;

/// Distinct keys a run codes in one byte, as the event type ([`super::event_type::MAX_ONE_BYTE`]).
pub const MAX_ONE_BYTE: usize = u8::MAX as usize;

/// The name of the narrow columns' categories (made afresh per run, [`Categories::random`]):
/// what tells a key column held narrow from the event type, the frame's other 16-bit column.
const NAMESPACE: &str = "audithound-keys";

/// One chunk of the 16-bit codes.
pub type NarrowArray = <UInt16Type as PolarsDataType>::Array;

/// One chunk of the 8-bit codes.
pub type ByteArray = <UInt8Type as PolarsDataType>::Array;

/// One chunk of a code column, read as the shared dictionary's codes.
#[derive(Clone)]
pub enum Codes<'a> {
    /// The shared dictionary's codes, or token codes.
    Wide(&'a CodeArray),
    /// A run's own 16-bit codes, with the shared code of each.
    Narrow(&'a NarrowArray, Arc<[u32]>),
    /// A run's own 8-bit codes, with the shared code of each.
    Byte(&'a ByteArray, Arc<[u32]>),
}

impl<'a> Codes<'a> {
    pub fn len(&self) -> usize {
        match self {
            Codes::Wide(a) => a.len(),
            Codes::Narrow(a, _) => a.len(),
            Codes::Byte(a, _) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The code at row `i`, [`NULL`] for a null.
    #[inline(always)]
    pub fn at(&self, i: usize) -> u32 {
        match self {
            Codes::Wide(a) => code_at(a, i),
            Codes::Narrow(a, shared) => match a.validity() {
                Some(valid) if !valid.get_bit(i) => NULL,
                _ => shared.get(a.values()[i] as usize).copied().unwrap_or(NULL),
            },
            Codes::Byte(a, shared) => match a.validity() {
                Some(valid) if !valid.get_bit(i) => NULL,
                _ => shared.get(a.values()[i] as usize).copied().unwrap_or(NULL),
            },
        }
    }

    /// The highest code of the chunk that is neither null nor [`NULL`], if any.
    ///
    /// Wide chunks (token codes) are folded without a branch per row: each code one up, so that
    /// [`NULL`] wraps to 0, "none", and a null's slot masked to 0 by its validity bit, 64 rows to
    /// a word of the bitmap, where reading row by row through [`Codes::at`] tested each row's bit
    /// on its own. Forged tokens checks every token code it reads against the run's table this
    /// way (`reduce::tokens::check_codes`): a chunk of 267K token codes, a third null, 595 → 125
    /// µs (`cargo bench --bench hot_paths -- highest_token_code`; the bit as a mask, not a
    /// factor: 202 µs; in halves of 32 rows: 145 µs); a night added to 120 of the 10.12M
    /// nights, forged tokens 0.55–0.61 → 0.48 s, CPU 0.92–0.99 → 0.79 s (three alternated
    /// pairs, `--timings-per-detector`).
    pub fn highest(&self) -> Option<u32> {
        let Codes::Wide(a) = self else {
            return (0..self.len())
                .map(|i| self.at(i))
                .filter(|&c| c != NULL)
                .max();
        };
        let values = a.values().as_slice();
        let up = |c: u32| c.wrapping_add(1);
        let top = match a.validity().filter(|v| v.unset_bits() > 0) {
            None => values.iter().map(|&c| up(c)).max().unwrap_or(0),
            Some(valid) => {
                let words = valid.chunks::<u64>();
                let tail = (words.remainder(), values.len() - values.len() % 64);
                let mut top = 0;
                for (block, word) in values.chunks_exact(64).zip(words) {
                    for (j, &c) in block.iter().enumerate() {
                        top = top.max(up(c) & 0u32.wrapping_sub(((word >> j) & 1) as u32));
                    }
                }
                for (j, &c) in values[tail.1..].iter().enumerate() {
                    top = top.max(up(c) & 0u32.wrapping_sub(((tail.0 >> j) & 1) as u32));
                }
                top
            }
        };
        top.checked_sub(1)
    }

    /// The chunk's codes with nulls as [`NULL`]; borrowed when the chunk is wide and has none.
    pub fn values(&self) -> Cow<'a, [u32]> {
        match self {
            Codes::Wide(a) => values_or::<UInt32Type>(a, NULL),
            Codes::Narrow(..) | Codes::Byte(..) => {
                Cow::Owned((0..self.len()).map(|i| self.at(i)).collect())
            }
        }
    }
}

/// The chunks of `column` as [`Codes`]: a categorical (wide or narrow) or plain codes.
pub(super) fn of_column<'a>(column: &'a Column) -> Result<Vec<Codes<'a>>> {
    let stage = "reading codes";
    match column.dtype() {
        DataType::UInt32 => Ok((column.u32().stage(stage)?.downcast_iter())
            .map(Codes::Wide)
            .collect()),
        DataType::Categorical(cats, mapping) if is_narrow(cats) => {
            let shared = shared_codes(mapping)?;
            if cats.physical() == CategoricalPhysical::U8 {
                let arrays = column.cat8().stage(stage)?.physical().downcast_iter();
                return Ok(arrays.map(|a| Codes::Byte(a, shared.clone())).collect());
            }
            let arrays = column.cat16().stage(stage)?.physical().downcast_iter();
            Ok(arrays.map(|a| Codes::Narrow(a, shared.clone())).collect())
        }
        _ => Err(Error::Internal(format!(
            "column {} of {} is no column of codes",
            column.name(),
            column.dtype()
        ))),
    }
}

fn is_narrow(cats: &Categories) -> bool {
    matches!(
        cats.physical(),
        CategoricalPhysical::U16 | CategoricalPhysical::U8
    ) && cats.namespace().as_str() == NAMESPACE
}

/// Whether `column` is a key column held in two bytes or one.
fn held_narrow(column: &Column) -> bool {
    held_bytes(column).is_some()
}

/// The bytes a key takes in `column` when it is a key column held in two bytes or one.
fn held_bytes(column: &Column) -> Option<usize> {
    match column.dtype() {
        DataType::Categorical(cats, _) if is_narrow(cats) => match cats.physical() {
            CategoricalPhysical::U8 => Some(1),
            _ => Some(2),
        },
        _ => None,
    }
}

/// The shared dictionary's code of each of `mapping`'s codes, in order.
fn shared_codes(mapping: &CategoricalMapping) -> Result<Arc<[u32]>> {
    let shared = dictionary();
    (0..mapping.num_cats_upper_bound() as u32)
        .map(|c| {
            (mapping.cat_to_str(c))
                .and_then(|name| shared.code(name))
                .ok_or_else(|| Error::Internal(format!("key code {c} in no shared dictionary")))
        })
        .collect()
}

/// Column `name` of `df` held in two bytes when it is held in the shared dictionary and names at
/// most `up_to` distinct values (itself at most [`MAX_KEYS`]), in one byte when they are also at
/// most `one_byte_up_to` ([`KeyTable`]); the bytes a key then takes, or none when it stays wide.
/// A column already narrow stays as it is. Chunks keep their lengths, so the frame's columns
/// stay aligned.
pub fn narrow(
    df: &mut DataFrame,
    name: &str,
    up_to: usize,
    one_byte_up_to: usize,
) -> Result<Option<usize>> {
    if let Some(bytes) = held_bytes(df.column(name).stage(STAGE)?) {
        return Ok(Some(bytes));
    }
    let Some(keys) = distinct_keys(df, name, up_to) else {
        return Ok(None);
    };
    let table = KeyTable::new(&keys, one_byte_up_to)?;
    table.narrow(df, name)?;
    Ok(Some(table.bytes()))
}

const STAGE: &str = "coding keys in fewer bytes";

/// The distinct values of column `name` of `df` as shared codes, in order; none when it is not
/// held in the shared dictionary or names more than `up_to` (at most [`MAX_KEYS`]).
pub fn distinct_keys(df: &DataFrame, name: &str, up_to: usize) -> Option<Vec<u32>> {
    let column = df.column(name).ok()?;
    if column.dtype() != &DataType::UInt32 {
        return None;
    }
    distinct(column.u32().ok()?, up_to.min(MAX_KEYS))
}

/// The keys of `sets` together, in order; none when a set is none or they are more than `up_to`.
pub fn union(sets: impl IntoIterator<Item = Option<Vec<u32>>>, up_to: usize) -> Option<Vec<u32>> {
    let mut all = std::collections::BTreeSet::new();
    for set in sets {
        all.extend(set?);
        if all.len() > up_to.min(MAX_KEYS) {
            return None;
        }
    }
    Some(all.into_iter().collect())
}

/// A run's keys in their own 16-bit dictionary, to re-code chunks of the key column with: once
/// for the whole frame ([`narrow`]), or run by run as ingest unpacks it
/// (`normalize::packed::unpack_compacted`), so the wide column is never whole beside the narrow.
pub struct KeyTable {
    one_byte: bool,
    cats: Arc<Categories>,
    mapping: Arc<CategoricalMapping>,
    /// Each shared code's own code, `u16::MAX` for a shared code that is no key.
    own: Vec<u16>,
}

impl KeyTable {
    /// Own codes for `keys` (distinct shared codes, in order), given in that order: in one byte
    /// when they are at most `one_byte_up_to` (itself at most [`MAX_ONE_BYTE`]), else in two.
    pub fn new(keys: &[u32], one_byte_up_to: usize) -> Result<KeyTable> {
        if keys.len() > MAX_KEYS {
            return Err(Error::Internal(format!(
                "{} keys past two bytes",
                keys.len()
            )));
        }
        let one_byte = keys.len() <= one_byte_up_to.min(MAX_ONE_BYTE);
        let physical = match one_byte {
            true => CategoricalPhysical::U8,
            false => CategoricalPhysical::U16,
        };
        let cats = Categories::random(NAMESPACE.into(), physical);
        let mapping = cats.mapping();
        let shared = dictionary();
        // Indexed by shared code: keys are few, but their codes can be in the millions.
        let top = keys.iter().max().map_or(0, |&k| k as usize + 1);
        let mut own = vec![u16::MAX; top];
        for &key in keys {
            let text = (shared.name(key))
                .ok_or_else(|| Error::Internal(format!("key code {key} in no dictionary")))?;
            let code = mapping.insert_cat(text).stage(STAGE)?;
            own[key as usize] = u16::try_from(code)
                .map_err(|_| Error::Internal(format!("key code {code} past two bytes")))?;
        }
        Ok(KeyTable {
            one_byte,
            cats,
            mapping,
            own,
        })
    }

    /// The bytes a key takes in the column this table re-codes.
    pub fn bytes(&self) -> usize {
        if self.one_byte { 1 } else { 2 }
    }

    /// Column `name` of `df` (held in the shared dictionary, naming only this table's keys)
    /// re-coded in [`Self::bytes`], in its place and chunks.
    pub fn narrow(&self, df: &mut DataFrame, name: &str) -> Result<()> {
        // Out of the frame, so each wide chunk is freed once its narrow copy is made: the whole
        // wide column beside the narrow one set ingest's peak at 100.09M events.
        let (at, chunks) = super::take_chunks(df, name, STAGE)?;
        let dtype = DataType::Categorical(self.cats.clone(), self.mapping.clone());
        let narrow = match self.one_byte {
            true => {
                let chunks: Vec<ByteArray> = (chunks.into_par_iter())
                    .map(|array| {
                        let (a, values) = self.narrow_chunk(&array, |k| k as u8)?;
                        let valid = a.validity().cloned();
                        Ok(ByteArray::new(ArrowDataType::UInt8, values.into(), valid))
                    })
                    .collect::<Result<_>>()?;
                let physical = UInt8Chunked::from_chunk_iter(name.into(), chunks);
                // SAFETY: as below.
                let narrow =
                    unsafe { Categorical8Chunked::from_cats_and_dtype_unchecked(physical, dtype) };
                narrow.into_series()
            }
            false => {
                let chunks: Vec<NarrowArray> = (chunks.into_par_iter())
                    .map(|array| {
                        let (a, values) = self.narrow_chunk(&array, |k| k)?;
                        let valid = a.validity().cloned();
                        Ok(NarrowArray::new(
                            ArrowDataType::UInt16,
                            values.into(),
                            valid,
                        ))
                    })
                    .collect::<Result<_>>()?;
                let physical = UInt16Chunked::from_chunk_iter(name.into(), chunks);
                // SAFETY: every code under a valid row was handed out by `mapping` (a null row's
                // slot holds 0, never read as a key); a valid row whose key the table lacks fails
                // in `narrow_chunk`.
                let narrow =
                    unsafe { Categorical16Chunked::from_cats_and_dtype_unchecked(physical, dtype) };
                narrow.into_series()
            }
        };
        df.insert_column(at, narrow.into_column()).stage(STAGE)?;
        Ok(())
    }

    /// One wide chunk, and its values in own codes, each given as `width` makes it (`k` is below
    /// the table's bound, so it fits).
    fn narrow_chunk<'a, T: Copy>(
        &self,
        array: &'a ArrayRef,
        width: impl Fn(u16) -> T,
    ) -> Result<(&'a CodeArray, Vec<T>)> {
        let a = (array.as_any().downcast_ref::<CodeArray>())
            .ok_or_else(|| Error::Internal("a key chunk of another type".into()))?;
        let valid = |i: usize| a.validity().is_none_or(|v| v.get_bit(i));
        let mut missing = None;
        let values =
            (a.values().iter().enumerate()).map(|(i, &c)| match self.own.get(c as usize) {
                Some(&k) if k != u16::MAX => width(k),
                _ if valid(i) => {
                    missing = Some(c);
                    width(0)
                }
                _ => width(0),
            });
        let values = crate::memory::frame_vec(values);
        if let Some(c) = missing {
            return Err(Error::Internal(format!(
                "key code {c} not among the run's keys"
            )));
        }
        Ok((a, values))
    }
}

/// The distinct codes under `wide`'s valid rows, in order; none when there are more than
/// `up_to`. Runs of one key are common (a gateway signs with one key for weeks): a row like
/// the one before it is not looked up.
fn distinct(wide: &UInt32Chunked, up_to: usize) -> Option<Vec<u32>> {
    let per_chunk = (wide.downcast_iter().collect::<Vec<_>>().into_par_iter()).map(|a| {
        let mut seen = hashbrown::HashSet::new();
        let mut last = NULL;
        for (i, &c) in a.values().iter().enumerate() {
            if c == last || a.validity().is_some_and(|v| !v.get_bit(i)) {
                continue;
            }
            last = c;
            if seen.insert(c) && seen.len() > up_to {
                return None;
            }
        }
        Some(seen)
    });
    let all = per_chunk.try_reduce(hashbrown::HashSet::new, |mut a, b| {
        a.extend(b);
        (a.len() <= up_to).then_some(a)
    })?;
    let mut keys: Vec<u32> = all.into_iter().collect();
    keys.sort_unstable();
    Some(keys)
}

/// `column` in the shared dictionary's codes when it is a key column held in two bytes, as a
/// store keeps every string (a state's partitions); none for any other column.
pub fn widened(column: &Column) -> Result<Option<Column>> {
    if !held_narrow(column) {
        return Ok(None);
    }
    let chunks: Vec<CodeArray> = (of_column(column)?.iter())
        .map(|codes| {
            let values = codes.values();
            (values.iter()).map(|&c| (c != NULL).then_some(c)).collect()
        })
        .collect();
    let physical = UInt32Chunked::from_chunk_iter(column.name().clone(), chunks);
    Ok(Some(physical.into_column()))
}

/// Shared codes `codes` as the physical codes of column `name` of `df`, for queries that compare
/// that column's physical codes: a null stays null, and a code the column's own dictionary lacks
/// (no row holds it) becomes [`NULL`], which no row holds either.
pub fn physical_codes(
    df: &DataFrame,
    name: &str,
    codes: Vec<Option<u32>>,
) -> Result<Vec<Option<u32>>> {
    let column = df.column(name).stage("reading codes")?;
    let mapping = match column.dtype() {
        DataType::Categorical(cats, mapping) if is_narrow(cats) => mapping,
        _ => return Ok(codes),
    };
    let shared = dictionary();
    let own = |c: u32| {
        let name = shared.name(c)?;
        mapping.get_cat(name)
    };
    Ok((codes.into_iter())
        .map(|c| c.map(|c| own(c).unwrap_or(NULL)))
        .collect())
}

/// The physical codes in column `name` of `df` of those of `names` some row may hold, as a series
/// of the column's physical type: for `is_in` on the column's physical codes.
pub fn physical_series(df: &DataFrame, name: &str, names: &[String]) -> Result<Series> {
    let stage = "reading codes";
    let column = df.column(name).stage(stage)?;
    let shared = dictionary();
    let codes: Vec<Option<u32>> = names.iter().map(|n| shared.code(n)).collect();
    let codes: Vec<u32> = (physical_codes(df, name, codes)?.into_iter())
        .flatten()
        .filter(|&c| c != NULL)
        .collect();
    let physical = column.dtype().to_physical();
    (Series::new(name.into(), codes).cast(&physical)).stage(stage)
}

#[cfg(test)]
mod tests;
