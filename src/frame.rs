//! Reading small polars results (one row per entity or per day) back into Rust vectors. Nulls
//! become the type's default: every caller aggregates, so a null only arises from an empty group.

use polars::prelude::*;

use crate::error::{FrameContext, Result};
use crate::normalize::Tokens;

/// The dtype of every string column of the event frame: categoricals over polars' process-wide
/// dictionary, so columns built by different threads, files and context tables share codes and
/// join on them directly.
pub fn cat_dtype() -> DataType {
    DataType::from_categories(Categories::global())
}

/// A key column built from Rust strings (context tables, flagged entities) in the event frame's
/// encoding, so joins and `is_in` against event columns compare codes.
pub fn key_column(name: &str, values: Vec<String>) -> Result<Column> {
    Column::new(name.into(), values)
        .cast(&cat_dtype())
        .stage("encoding keys")
}

/// The same, as a series for `is_in`.
pub fn key_series(name: &str, values: Vec<String>) -> Result<Series> {
    Ok(key_column(name, values)?.as_materialized_series().clone())
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

/// Two non-negative 32-bit quantities as one integer key, high then low. polars groups by one
/// integer column 30–50 % faster than by two columns (it row-encodes multi-column keys), and a
/// dictionary code and a day or hour count both fit in 32 bits.
pub fn pack(high: Expr, low: Expr) -> Expr {
    high.cast(DataType::UInt64) * lit(1u64 << 32) + low.cast(DataType::UInt64)
}

/// UTC days since the epoch. Computed where needed rather than stored: 8 bytes a row saved in
/// the event frame.
pub fn day() -> Expr {
    use crate::normalize::schema::{DAY_MS, col as c};
    ts_bucket(DAY_MS).alias(c::DAY)
}

/// The process-wide dictionary behind [`cat_dtype`], to turn codes read with [`codes`] back
/// into strings.
pub fn dictionary() -> Arc<CategoricalMapping> {
    Categories::global().mapping()
}

/// A categorical column's dictionary codes as one flat vector, nulls as [`NULL`]: detectors that
/// count per entity in plain Rust index these directly instead of going through chunks.
pub fn codes(df: &DataFrame, name: &str) -> Result<Vec<u32>> {
    let column = df.column(name).stage("reading codes")?;
    // Token ids are plain codes already (see `normalize::Tokens`).
    let physical = match column.dtype() {
        DataType::UInt32 => column.u32(),
        _ => column.cat32().map(|c| c.physical()),
    }
    .stage("reading codes")?;
    let mut out = Vec::with_capacity(physical.len());
    for arr in physical.downcast_iter() {
        match arr.validity().filter(|v| v.unset_bits() > 0) {
            None => out.extend_from_slice(arr.values()),
            Some(valid) => out.extend(
                arr.values()
                    .iter()
                    .zip(valid.iter())
                    .map(|(&c, ok)| if ok { c } else { NULL }),
            ),
        }
    }
    Ok(out)
}

/// The token ids of a column of token codes, `""` for a null.
pub fn token_texts(df: &DataFrame, name: &str, tokens: &Tokens) -> Result<Vec<String>> {
    Ok(codes(df, name)?
        .into_iter()
        .map(|c| tokens.text(c).unwrap_or_default())
        .collect())
}

/// The code [`codes`] gives a null.
pub const NULL: u32 = u32::MAX;

pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let column = df.column(name).stage("reading results")?;
    let column = match column.dtype() {
        DataType::Categorical(..) => column.cast(&DataType::String).stage("reading results")?,
        _ => column.clone(),
    };
    let ca = column.str().stage("reading results")?;
    Ok(ca
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
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
mod tests {
    use super::*;
    use crate::normalize::schema::{DAY_MS, HOUR_MS, TS_MAX, TS_MIN, col as c};

    /// Buckets are floor divisions, before and after 1970 and at the ends of the accepted range.
    #[test]
    fn buckets_floor_before_and_after_1970() {
        let ts = vec![TS_MIN, -1, 0, 1_735_700_400_000, TS_MAX];
        let df = DataFrame::new_infer_height(vec![Column::new(c::TS.into(), ts.clone())])
            .expect("frame");
        for ms in [DAY_MS, HOUR_MS] {
            let out = df
                .clone()
                .lazy()
                .select([ts_bucket(ms).alias("b")])
                .collect()
                .expect("query");
            let expected: Vec<i64> = ts.iter().map(|t| t.div_euclid(ms)).collect();
            assert_eq!(i64s(&out, "b").expect("buckets"), expected);
        }
    }
}
