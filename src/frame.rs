//! Reading small polars results (one row per entity or per day) back into Rust vectors. Nulls
//! become the type's default: every caller aggregates, so a null only arises from an empty group.

use polars::prelude::*;

use crate::error::{FrameContext, Result};

pub fn strs(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let ca = df
        .column(name)
        .stage("reading results")?
        .str()
        .stage("reading results")?;
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
    Ok(ca.iter().map(|v| v.unwrap_or_default()).collect())
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
