//! The event type: a categorical of two bytes an event, over a dictionary of its own.
//!
//! Why: every other string column of the frame codes into polars' process-wide dictionary in 4
//! bytes an event, and the event type took as much for a handful of values: 344 MB of the 85.9M
//! export's 1.99 GB frame, under every stage of the run (`docs/performance.md`, thirty-eighth
//! session). Two bytes, not one: an export whose types are an API's operation names (a cloud
//! audit trail's run to thousands) must not lose events past the 255 that one byte holds. A run
//! holds [`MAX_TYPES`]; a row whose type would be one more is quarantined like any unreadable
//! row, with that reason in `rejects.csv` (which rows those are depends on the order the parts
//! of the input are read in: a report over such an export is not repeatable).
//!
//! Where a store keeps the event type beside the other strings (a state's partitions), it is
//! handed over in the shared dictionary's codes ([`to_shared`], [`from_shared`]), so the stored
//! layout is the one every other string column has.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};

use polars::prelude::*;

use crate::error::{FrameContext, Result};
use crate::frame::NULL;

/// A row without an event type, in [`codes`]: the one code a 16-bit dictionary never hands out.
pub const NO_TYPE: u16 = u16::MAX;

/// Distinct event types one run holds.
pub const MAX_TYPES: usize = NO_TYPE as usize;

/// One chunk of the event type's codes.
pub type EventArray = <UInt16Type as PolarsDataType>::Array;

/// The event types' categories and their dictionary, held for the whole process: a dictionary
/// no column holds would be dropped and begun again with other codes.
static TYPES: LazyLock<(Arc<Categories>, Arc<CategoricalMapping>)> = LazyLock::new(|| {
    let cats = Categories::new(
        "audithound-event-type".into(),
        PlSmallStr::EMPTY,
        CategoricalPhysical::U16,
    );
    let mapping = cats.mapping();
    (cats, mapping)
});

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
pub fn arrays<'a>(df: &'a DataFrame, name: &str) -> Result<Vec<&'a EventArray>> {
    let column = df.column(name).stage("reading event types")?;
    let cats = column.cat16().stage("reading event types")?;
    Ok(cats.physical().downcast_iter().collect())
}

/// One chunk's codes with nulls as [`NO_TYPE`]; borrowed when the chunk has none (ingest never
/// makes one: a row without a type is refused).
pub fn codes(arr: &EventArray) -> Cow<'_, [u16]> {
    crate::frame::values_or::<UInt16Type>(arr, NO_TYPE)
}

/// The code at row `i` of one chunk, [`NO_TYPE`] for a null.
#[inline]
pub fn code_at(arr: &EventArray, i: usize) -> u16 {
    crate::frame::value_at::<UInt16Type>(arr, i, NO_TYPE)
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
    let cats = column.cat16().stage("storing event types")?;
    let shared = crate::frame::dictionary();
    // Codes are handed out from 0 up: the table stops at the last one handed out, and holds
    // the shared code of each type this column has.
    let held = TYPES.1.num_cats_upper_bound().min(MAX_TYPES);
    let mut table = vec![NULL; held];
    let mut present = vec![false; held];
    for c in cats.physical().iter().flatten() {
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
            *slot = shared.insert_cat(name).stage("storing event types")?;
        }
    }
    let codes = (cats.physical().iter())
        .map(|c| c.and_then(|c| table.get(c as usize).copied().filter(|&g| g != NULL)));
    let phys = UInt32Chunked::from_iter_options(column.name().clone(), codes);
    // SAFETY: each code was handed out by the shared dictionary just above.
    let global = unsafe {
        Categorical32Chunked::from_cats_and_dtype_unchecked(phys, crate::frame::cat_dtype())
    };
    Ok(global.into_series().into_column())
}

/// The event type column `column`, held in the shared dictionary's codes, in its own.
pub fn from_shared(column: &Column) -> Result<Column> {
    let cats = column.cat32().stage("reading event types")?;
    let shared = crate::frame::dictionary();
    let mut coder = Coder::default();
    let mut codes = Vec::with_capacity(column.len());
    let mut last = (NULL, NO_TYPE);
    for c in cats.physical().iter() {
        let Some(c) = c else {
            codes.push(NO_TYPE);
            continue;
        };
        if c != last.0 {
            let name = shared.cat_to_str(c).ok_or_else(|| {
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
