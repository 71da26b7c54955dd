//! The event type: a categorical of two bytes an event, over a dictionary of its own, and of one
//! byte where a run's types fit.
//!
//! Why: every other string column of the frame codes into polars' process-wide dictionary in 4
//! bytes an event, and the event type took as much for a handful of values: 344 MB of the 85.9M
//! export's 1.99 GB frame, under every stage of the run (`docs/performance.md`, thirty-eighth
//! session). Two bytes while rows are read: an export whose types are an API's operation names
//! (a cloud audit trail's run to thousands) must not lose events past the 255 that one byte
//! holds. A run holds [`MAX_TYPES`]; a row whose type would be one more is quarantined like any
//! unreadable row, with that reason in `rejects.csv` (which rows those are depends on the order
//! the parts of the input are read in: a report over such an export is not repeatable).
//!
//! Once reading is over the run knows its types: when they are at most [`MAX_ONE_BYTE`] (a
//! gateway's handful), the column is re-coded in one byte ([`narrow`]), with the same code for
//! each type, over a second dictionary that mirrors the first; 100 MB less under every stage at
//! 100.09M events (`docs/performance.md`, forty-third session). Passes read either width through
//! [`Kinds`], which hands back the two-byte codes.
//!
//! Where a store keeps the event type beside the other strings (a state's partitions), it is
//! handed over in the shared dictionary's codes ([`to_shared`], [`from_shared`]), so the stored
//! layout is the one every other string column has.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock, Mutex};

use polars::prelude::*;

use crate::error::{Error, FrameContext, Result};
use crate::frame::NULL;

mod by_chunk;
pub use by_chunk::TypesByChunk;

/// A row without an event type, in [`codes`]: the one code a 16-bit dictionary never hands out.
pub const NO_TYPE: u16 = u16::MAX;

/// Distinct event types one run holds.
pub const MAX_TYPES: usize = NO_TYPE as usize;

/// Distinct event types a run codes in one byte: codes 0 to 254.
pub const MAX_ONE_BYTE: usize = u8::MAX as usize;

/// One chunk of the event type's codes in two bytes.
pub type EventArray = <UInt16Type as PolarsDataType>::Array;

/// One chunk of the event type's codes in one byte.
pub type ByteArray = <UInt8Type as PolarsDataType>::Array;

/// One chunk of the event type's codes, in whichever width the run holds them: read as the
/// two-byte codes, the same in both.
#[derive(Clone, Copy)]
pub enum Kinds<'a> {
    Two(&'a EventArray),
    One(&'a ByteArray),
}

impl<'a> Kinds<'a> {
    pub fn len(&self) -> usize {
        match self {
            Kinds::Two(a) => a.len(),
            Kinds::One(a) => a.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The event types' categories and their dictionary, held for the whole process: a dictionary
/// no column holds would be dropped and begun again with other codes.
static TYPES: LazyLock<Held> =
    LazyLock::new(|| held("audithound-event-type", CategoricalPhysical::U16));

/// The one-byte column's categories: [`TYPES`]' first names, in their order, so that a type has
/// the same code in both ([`narrow`] adds them, one caller at a time).
static ONE_BYTE: LazyLock<Held> =
    LazyLock::new(|| held("audithound-event-type-1", CategoricalPhysical::U8));
static MIRRORING: Mutex<()> = Mutex::new(());

/// Categories and the dictionary behind them.
type Held = (Arc<Categories>, Arc<CategoricalMapping>);

fn held(name: &str, physical: CategoricalPhysical) -> Held {
    let cats = Categories::new(name.into(), PlSmallStr::EMPTY, physical);
    let mapping = cats.mapping();
    (cats, mapping)
}

/// The event type column's dtype.
pub fn dtype() -> DataType {
    DataType::Categorical(TYPES.0.clone(), TYPES.1.clone())
}

/// The code of event type `name`, if some row of this run has had it.
pub fn code(name: &str) -> Option<u16> {
    TYPES.1.get_cat(name).and_then(|c| u16::try_from(c).ok())
}

/// The name of code `code`.
pub fn name(code: u16) -> Option<&'static str> {
    TYPES.1.cat_to_str(code.into())
}

/// The codes of the event type column `name` of `df`, chunk by chunk.
pub fn arrays<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<Kinds<'a>>> {
    of_column(df.column(name).stage("reading event types")?)
}

fn of_column(column: &Column) -> Result<Vec<Kinds<'_>>> {
    let stage = "reading event types";
    Ok(match held_in_one_byte(column) {
        true => (column.cat8().stage(stage)?.physical().downcast_iter())
            .map(Kinds::One)
            .collect(),
        false => (column.cat16().stage(stage)?.physical().downcast_iter())
            .map(Kinds::Two)
            .collect(),
    })
}

fn held_in_one_byte(column: &Column) -> bool {
    matches!(column.dtype(), DataType::Categorical(cats, _) if cats.physical() == CategoricalPhysical::U8)
}

/// One chunk's codes with nulls as [`NO_TYPE`]; borrowed when the chunk is in two bytes and has
/// none (ingest never makes one: a row without a type is refused).
pub fn codes<'a>(kinds: &Kinds<'a>) -> Cow<'a, [u16]> {
    match *kinds {
        Kinds::Two(a) => crate::frame::values_or::<UInt16Type>(a, NO_TYPE),
        Kinds::One(a) => Cow::Owned((0..a.len()).map(|i| code_at(kinds, i)).collect()),
    }
}

/// The code at row `i` of one chunk, [`NO_TYPE`] for a null.
#[inline(always)]
pub fn code_at(kinds: &Kinds, i: usize) -> u16 {
    match *kinds {
        Kinds::Two(a) => crate::frame::value_at::<UInt16Type>(a, i, NO_TYPE),
        Kinds::One(a) => match a.validity() {
            Some(valid) if !valid.get_bit(i) => NO_TYPE,
            _ => a.values()[i].into(),
        },
    }
}

/// Whether the run's event types fit in one byte under `up_to` (at most [`MAX_ONE_BYTE`]): the
/// codes handed out so far, all of them below this count.
pub fn fit_one_byte(up_to: usize) -> bool {
    TYPES.1.num_cats_upper_bound() <= up_to.min(MAX_ONE_BYTE)
}

/// Column `name` of `df` (the event type) re-coded in one byte, in its place and chunks, when the
/// run's types fit under `up_to` ([`fit_one_byte`]) or it already is; whether it is.
pub fn narrow(df: &mut DataFrame, name: &str, up_to: usize) -> Result<bool> {
    let stage = "coding event types in one byte";
    if held_in_one_byte(df.column(name).stage(stage)?) {
        return Ok(true);
    }
    if !fit_one_byte(up_to) {
        return Ok(false);
    }
    mirror()?;
    // Out of the frame, so each chunk is freed once its copy is made.
    let (at, chunks) = crate::frame::take_chunks(df, name, stage)?;
    use rayon::prelude::*;
    let chunks: Vec<ByteArray> = (chunks.into_par_iter())
        .map(|array| one_byte_chunk(&array))
        .collect::<Result<_>>()?;
    let physical = UInt8Chunked::from_chunk_iter(name.into(), chunks);
    let dtype = DataType::Categorical(ONE_BYTE.0.clone(), ONE_BYTE.1.clone());
    // SAFETY: every code under a valid row is below the count `mirror` gave the same names.
    let narrow = unsafe { Categorical8Chunked::from_cats_and_dtype_unchecked(physical, dtype) };
    df.insert_column(at, narrow.into_series().into_column())
        .stage(stage)?;
    Ok(true)
}

/// `column` in two bytes when it is held in one; none when it is not.
pub fn widened(column: &Column) -> Result<Option<Column>> {
    if !held_in_one_byte(column) {
        return Ok(None);
    }
    let codes = of_column(column)?
        .iter()
        .flat_map(|k| codes(k).into_owned())
        .collect();
    Ok(Some(self::column(column.name(), codes)))
}

/// Gives the one-byte dictionary every name [`TYPES`] has handed out, in order, so each has the
/// same code in both.
fn mirror() -> Result<()> {
    let _one_at_a_time = MIRRORING.lock().unwrap_or_else(|e| e.into_inner());
    for code in 0..TYPES.1.num_cats_upper_bound().min(MAX_ONE_BYTE) as u16 {
        let name =
            name(code).ok_or_else(|| Error::Internal(format!("event type {code} unnamed")))?;
        let mirrored = ONE_BYTE
            .1
            .insert_cat(name)
            .stage("coding event types in one byte")?;
        if mirrored != u32::from(code) {
            return Err(Error::Internal(format!(
                "event type {name:?} is {code} in two bytes, {mirrored} in one"
            )));
        }
    }
    Ok(())
}

fn one_byte_chunk(array: &ArrayRef) -> Result<ByteArray> {
    let a = (array.as_any().downcast_ref::<EventArray>())
        .ok_or_else(|| Error::Internal("an event type chunk of another type".into()))?;
    let valid = |i: usize| a.validity().is_none_or(|v| v.get_bit(i));
    let mut past = None;
    let values = (a.values().iter().enumerate()).map(|(i, &c)| match u8::try_from(c) {
        Ok(c) if c != u8::MAX => c,
        _ if valid(i) => {
            past = Some(c);
            0
        }
        _ => 0,
    });
    let values = crate::memory::frame_vec(values);
    if let Some(c) = past {
        return Err(Error::Internal(format!(
            "event type code {c} past one byte"
        )));
    }
    Ok(ByteArray::new(
        ArrowDataType::UInt8,
        values.into(),
        a.validity().cloned(),
    ))
}

/// A column of `codes`, each one [`Coder::code`] handed out ([`NO_TYPE`] for a null).
pub fn column(name: &str, codes: Vec<u16>) -> Column {
    let phys = match codes.contains(&NO_TYPE) {
        false => UInt16Chunked::from_vec(name.into(), codes),
        true => {
            let codes = codes.into_iter().map(|c| (c != NO_TYPE).then_some(c));
            UInt16Chunked::from_iter_options(name.into(), codes)
        }
    };
    // SAFETY: every code below NO_TYPE was handed out by this very dictionary (`Coder`), which
    // the process holds and never forgets.
    let cats = unsafe { Categorical16Chunked::from_cats_and_dtype_unchecked(phys, dtype()) };
    cats.into_series().into_column()
}

/// Event types coded where rows are read: the ones a reader has met, remembered, so a row asks
/// the shared dictionary only for a type this reader has not seen. The first [`FEW`] are asked
/// in order (a source's handful, shorter than hashing the name); the rest by hash, so an export
/// of thousands of types is not a scan of all of them on every row.
#[derive(Default)]
pub struct Coder {
    few: Vec<(Box<str>, u16)>,
    more: std::collections::HashMap<Box<str>, u16>,
}

/// Types a [`Coder`] asks in order.
const FEW: usize = 8;

impl Coder {
    /// The code of `name`, or why it has none.
    #[inline]
    pub fn code(&mut self, name: &str) -> std::result::Result<u16, String> {
        if let Some((_, code)) = self.few.iter().find(|(seen, _)| **seen == *name) {
            return Ok(*code);
        }
        if let Some(&code) = self.more.get(name) {
            return Ok(code);
        }
        let code = (TYPES.1.insert_cat(name).ok())
            .and_then(|c| u16::try_from(c).ok())
            .filter(|&c| c != NO_TYPE)
            .ok_or_else(|| {
                format!("event type {name:?} is past the {MAX_TYPES} distinct types one run holds")
            })?;
        match self.few.len() < FEW {
            true => self.few.push((name.into(), code)),
            false => _ = self.more.insert(name.into(), code),
        }
        Ok(code)
    }
}

/// `column` (the event type) in the shared dictionary's codes, as stores keep every string.
pub fn to_shared(column: &Column) -> Result<Column> {
    let kinds = of_column(column)?;
    let each = || {
        (kinds.iter())
            .flat_map(|k| (0..k.len()).map(move |i| Some(code_at(k, i)).filter(|&c| c != NO_TYPE)))
    };
    let shared = crate::frame::dictionary();
    // Codes are handed out from 0 up: the table stops at the last one handed out, and holds
    // the shared code of each type this column has.
    let held = TYPES.1.num_cats_upper_bound().min(MAX_TYPES);
    let mut table = vec![NULL; held];
    let mut present = vec![false; held];
    for c in each().flatten() {
        if let Some(p) = present.get_mut(c as usize) {
            *p = true;
        }
    }
    for ((code, slot), _) in (0u16..)
        .zip(table.iter_mut())
        .zip(&present)
        .filter(|(_, p)| **p)
    {
        if let Some(name) = name(code) {
            *slot = shared.insert(name).stage("storing event types")?;
        }
    }
    let codes =
        each().map(|c| c.and_then(|c| table.get(c as usize).copied().filter(|&g| g != NULL)));
    let phys = UInt32Chunked::from_iter_options(column.name().clone(), codes);
    Ok(phys.into_column())
}

/// The event type column `column`, held in the shared dictionary's codes, in its own.
pub fn from_shared(column: &Column) -> Result<Column> {
    let shared_codes = crate::frame::codes_of(column)?;
    let shared = crate::frame::dictionary();
    let mut coder = Coder::default();
    let mut codes = Vec::with_capacity(column.len());
    let mut last = (NULL, NO_TYPE);
    for c in shared_codes {
        if c == NULL {
            codes.push(NO_TYPE);
            continue;
        }
        if c != last.0 {
            let name = shared.name(c).ok_or_else(|| {
                crate::error::Error::Internal(format!("event type code {c} in no dictionary"))
            })?;
            last = (c, coder.code(name).map_err(crate::error::Error::Internal)?);
        }
        codes.push(last.1);
    }
    Ok(self::column(column.name(), codes))
}

#[cfg(test)]
mod tests;
