//! A partition's cold columns (file, line, user agent, action: what only evidence reads) left
//! on disk when the partition is read back, and read a row group at a time when evidence asks.

use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::*;
use polars_io::parquet::read::FileMetadata;

use super::{Batch, broken, broken_for, groups_of, read_columns, read_groups};
use crate::error::Result;
use crate::normalize::Tokens;
use crate::normalize::cold::{COLUMNS as COLD, Loader};
use crate::normalize::dictionary::FileDict;
use crate::normalize::schema::col::{ACTION, TOKEN, USER_AGENT};

/// [`super::read`] without the columns only evidence reads ([`COLD`]), and for each row group a
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
    // A partition that stores token ids as strings (before the twenty-third session) has them
    // placed in the run's table as it is read back, and held beside the frame: only partitions
    // that code them read the codes again when asked.
    let legacy = batch.token_codes.is_none();
    let hot = |name: &str| !COLD.contains(&name) || (legacy && name == TOKEN);
    let mut frames = read_groups(batch, file_idx, tokens, dict, hot)?;
    let held: Vec<Option<Column>> = (frames.iter_mut())
        .map(|df| match legacy {
            true => df
                .drop_in_place(TOKEN)
                .map(Some)
                .map_err(|e| broken(&batch.path, e)),
            false => Ok(None),
        })
        .collect::<Result<_>>()?;
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
        token_codes: batch.token_codes.clone(),
    });
    Ok((frames.into_iter().zip(held).enumerate())
        .map(|(group, (df, held))| {
            let source = source.clone();
            let loader: Loader = Arc::new(move |names: &[&str]| {
                cold(&source, group, file_idx, names, held.as_ref())
            });
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
    /// The run's token code of each of the partition's (`None`: ids stored as strings, held
    /// beside the frame instead).
    token_codes: Arc<Option<Vec<u32>>>,
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
    let stored = read_columns(path, batch.metadata.clone(), columns)?;
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

/// The columns `names` (of [`COLD`]) of row group `group` of `source`, in that order; `held`:
/// its token codes, when they were placed as it was read back.
fn cold(
    source: &ColdSource,
    group: usize,
    file_idx: u32,
    names: &[&str],
    held: Option<&Column>,
) -> Result<DataFrame> {
    let path = &source.path;
    let metadata = (source.groups.get(group).cloned())
        .ok_or_else(|| broken_for(path, "a row group beyond the partition's"))?;
    let one = Batch {
        path: path.clone(),
        metadata,
        columns: source.columns.clone(),
        symbols: Arc::new(None),
        token_codes: source.token_codes.clone(),
    };
    let coded = |name: &str| source.placed.is_some() && CODED_COLD.contains(&name);
    let from_held = |name: &str| name == TOKEN && held.is_some();
    let want = |name: &str| COLD.contains(&name) && names.contains(&name) && !from_held(name);
    // Token ids are read as the run's codes (`token_codes`) or were held: no table is needed; a
    // plain-strings partition (the first layout) codes its strings through a dictionary of this
    // call's own.
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
    if let Some(token) = held.filter(|_| names.contains(&TOKEN)) {
        df.with_column(token.clone()).map_err(|e| broken(path, e))?;
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
    let columns = names.iter().map(|n| n.to_string()).collect();
    let stored = read_columns(path, one.metadata.clone(), columns)?;
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
