//! A partition's cold columns (file, line, user agent, action, token code, target account: see
//! [`crate::normalize::cold`]) left on disk when the partition is read back, and read a row
//! group at a time when evidence or a pass over every row asks.

use std::path::PathBuf;
use std::sync::Arc;

use polars::prelude::*;
use polars_io::parquet::read::FileMetadata;

use super::{Batch, broken, broken_for, groups_of, read_groups};
use crate::error::Result;
use crate::normalize::Tokens;
use crate::normalize::cold::{COLUMNS as COLD, Loader};
use crate::normalize::dictionary::FileDict;
use crate::normalize::schema::col::{PRINCIPAL, SOURCE_IP, TOKEN, TS};

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
    let hot = |name: &str| held_in_frame(name) || (legacy && name == TOKEN);
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
    let groups = batch.metadata.row_groups.len();
    let source = Arc::new(ColdSource {
        path: batch.path.clone(),
        // Each group's own, made once: several detectors read the same groups.
        groups: (0..groups)
            .map(|g| Arc::new(groups_of(&batch.metadata, g..g + 1)))
            .collect(),
        columns: batch.columns.clone(),
        symbols: batch.symbols.clone(),
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
    /// polars' code of each of the partition's string codes (`None`: an earlier layout, strings
    /// stored as strings). Kept for the target accounts, which are many: the lists were 90 MB of
    /// the 85.9M-event state's nightly run when they were last dropped here. The user agents and
    /// actions, few, were mapped through a list of their own codes until the target went beside
    /// the frame; through this one a night's usage pass took 2.5 s instead of 3.0 s.
    symbols: Arc<Option<Vec<u32>>>,
    /// The run's token code of each of the partition's (`None`: ids stored as strings, held
    /// beside the frame instead).
    token_codes: Arc<Option<Vec<u32>>>,
}

/// Whether [`read_hot`] puts column `name` in the frame. The principal, the address and the
/// instants are read back whole, as they were before they waited beside ingest's frame: every
/// night reads them for the window's records and every detector's passes, and read from the
/// partitions pass by pass they would be decoded (and the keys placed) again each time.
pub(crate) fn held_in_frame(name: &str) -> bool {
    !COLD.contains(&name) || [PRINCIPAL, SOURCE_IP, TS].contains(&name)
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
        symbols: source.symbols.clone(),
        token_codes: source.token_codes.clone(),
    };
    let from_held = |name: &str| name == TOKEN && held.is_some();
    let want = |name: &str| COLD.contains(&name) && names.contains(&name) && !from_held(name);
    // Token ids are read as the run's codes (`token_codes`) or were held: no table is needed; a
    // plain-strings partition (the first layout) codes its strings through a dictionary of this
    // call's own.
    let (tokens, mut dict) = (Tokens::default(), FileDict::default());
    let mut frames = read_groups(&one, file_idx, &tokens, &mut dict, want)?;
    let mut df = match frames.pop() {
        Some(df) if frames.is_empty() => df,
        _ => return Err(broken_for(path, "a row group read back as several")),
    };
    if let Some(token) = held.filter(|_| names.contains(&TOKEN)) {
        df.with_column(token.clone()).map_err(|e| broken(path, e))?;
    }
    df.select(names.iter().copied())
        .map_err(|e| broken(path, e))
}
