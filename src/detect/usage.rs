//! What a flagged entity did and with what: its top endpoints (`action`, e.g.
//! `GET /api/v2/members/{id}/addresses`) and clients (`user_agent`), with counts, over all its
//! events. A report about an abused key must say which records it pulled and with which tool.
//!
//! Counted after ranking, for the flagged entities only, in one parallel pass over the frame's
//! chunks: each chunk looks its entity codes up in a dense table per kind (a vector indexed by
//! dictionary code), so the pass costs a few array reads per row whatever the number of entities.
//! Against the polars filter and group-bys it replaced ([`usage_by_polars`], kept as the
//! reference): 1.6–1.8 ms against 27.9–29.8 ms for the twenty busiest entities of the
//! 100k-event bench export, five of them networks, which the query derives from each row's
//! address (`cargo bench --bench hot_paths -- usage_of_flagged`, medians of three runs), the
//! same counts on random frames (`usage/tests.rs`).

use std::collections::BTreeMap;

use hashbrown::HashMap;
use polars::prelude::DataFrame;
use rayon::prelude::*;

use super::activity::keep_top;
use super::{Entity, EntityKind};
use crate::error::{FrameContext, Result};
use crate::frame::{NULL, aligned, code_arrays, codes, dictionary, strs, u64s};
use crate::normalize::ColdColumns;
use crate::normalize::networks::lookup;
use crate::normalize::schema::col as c;

/// Top endpoints and clients of one entity, most frequent first.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Usage {
    pub endpoints: Vec<(String, u64)>,
    pub clients: Vec<(String, u64)>,
}

/// Per (entity slot, value code): events.
type Counts = HashMap<(u32, u32), u64>;

/// The usage of each of `entities` (absent when its events name neither field).
pub fn usage(
    events: &DataFrame,
    cold: &ColdColumns,
    entities: &[Entity],
) -> Result<BTreeMap<Entity, Usage>> {
    let dict = dictionary();
    let kinds: Vec<EntityKind> = {
        let mut k: Vec<EntityKind> = entities.iter().map(|e| e.kind).collect();
        k.sort();
        k.dedup();
        k
    };
    // Per kind: the column read, and its code → slot in `entities` (NULL when not flagged).
    let tables: Vec<(&str, crate::frame::CodeTable<u32>)> = kinds
        .iter()
        .map(|kind| {
            let mine: Vec<(&str, u32)> = entities
                .iter()
                .enumerate()
                .filter(|(_, e)| e.kind == *kind)
                .map(|(slot, e)| (e.id.as_str(), slot as u32))
                .collect();
            lookup(events, cold, kind.column(), &mine)
        })
        .collect::<Result<_>>()?;
    let mut names: Vec<&str> = tables.iter().map(|t| t.0).collect();
    names.sort_unstable();
    names.dedup();
    // A key column beside the frame (the principal) is read span by span with the values.
    let (held, beside): (Vec<&str>, Vec<&str>) =
        (names.iter()).partition(|n| events.column(n).is_ok());
    let frame = aligned(events, &held)?;
    // Run by run of rows whose cold columns lie together (one chunk as read, on disk or not).
    let (endpoints, clients) = cold
        .spans(events)
        .into_par_iter()
        .map(|span| -> Result<(Counts, Counts)> {
            let (mut endpoints, mut clients) = (Counts::new(), Counts::new());
            let keys = frame.slice(span.rows.start as i64, span.rows.len());
            let keys = match (held.is_empty(), beside.is_empty()) {
                (_, true) => keys,
                (true, false) => cold.span(events, &span, &beside)?,
                (false, false) => (keys.hstack(cold.span(events, &span, &beside)?.columns()))
                    .stage("reading usage keys")?,
            };
            // The flagged entities' rows first: a span without any is not read at all (its cold
            // columns may be on disk).
            let mut hits: Vec<(usize, u32)> = Vec::new();
            for (column, table) in &tables {
                // Read in place where the chunk's codes are 4 bytes without nulls: with a copy of
                // each span's, on fresh pages, the rank stage of a night over the 85.9M-event
                // state took 1.63–1.71 s, now 1.29–1.38 s (two alternated pairs, `--timings`).
                // Null codes (u32::MAX) fall outside every table.
                let mut at = 0;
                for arr in code_arrays(&keys, column)? {
                    for (i, &code) in arr.values().iter().enumerate() {
                        if let Some(slot) = table.get(code) {
                            hits.push((at + i, slot));
                        }
                    }
                    at += arr.len();
                }
            }
            if hits.is_empty() {
                return Ok((endpoints, clients));
            }
            let values = cold.span(events, &span, &[c::ACTION, c::USER_AGENT])?;
            let (action, agent) = (codes(&values, c::ACTION)?, codes(&values, c::USER_AGENT)?);
            for (i, slot) in hits {
                for (counts, value) in [(&mut endpoints, action[i]), (&mut clients, agent[i])] {
                    if value != NULL {
                        *counts.entry((slot, value)).or_default() += 1;
                    }
                }
            }
            Ok((endpoints, clients))
        })
        .try_reduce(
            || (Counts::new(), Counts::new()),
            |(mut a, mut b), (x, y)| {
                for (k, n) in x {
                    *a.entry(k).or_default() += n;
                }
                for (k, n) in y {
                    *b.entry(k).or_default() += n;
                }
                Ok((a, b))
            },
        )?;
    let mut out: BTreeMap<Entity, Usage> = BTreeMap::new();
    let name = |code: u32| dict.name(code).unwrap_or_default().to_string();
    for (counts, endpoints) in [(endpoints, true), (clients, false)] {
        for ((slot, value), n) in counts {
            let usage = out.entry(entities[slot as usize].clone()).or_default();
            let list = if endpoints {
                &mut usage.endpoints
            } else {
                &mut usage.clients
            };
            list.push((name(value), n));
        }
    }
    for usage in out.values_mut() {
        keep_top(&mut usage.endpoints);
        keep_top(&mut usage.clients);
    }
    Ok(out)
}

/// The polars query [`usage`] replaced: per kind and field, the rows of the entities filtered
/// and grouped by (entity, value), over a frame that holds its cold columns (a network's rows by
/// their addresses' networks). What its differential test and `benches/hot_paths.rs` compare it
/// with.
#[doc(hidden)]
pub fn usage_by_polars(events: &DataFrame, entities: &[Entity]) -> Result<BTreeMap<Entity, Usage>> {
    use polars::prelude::*;
    let mut out: BTreeMap<Entity, Usage> = BTreeMap::new();
    let networks = entities.iter().any(|e| e.kind == EntityKind::Network);
    let frame = crate::normalize::networks::names_as_text(events, networks)?;
    let kinds = [
        EntityKind::Credential,
        EntityKind::Principal,
        EntityKind::SourceIp,
        EntityKind::Network,
    ];
    for kind in kinds {
        let ids: Vec<String> = (entities.iter())
            .filter(|e| e.kind == kind)
            .map(|e| e.id.clone())
            .collect();
        if ids.is_empty() {
            continue;
        }
        let text = |name: &str| col(name).cast(DataType::String);
        let wanted = lit(Series::new("ids".into(), ids)).implode(false);
        for field in [c::ACTION, c::USER_AGENT] {
            let counts = (frame.clone().lazy())
                .filter(text(kind.column()).is_in(wanted.clone(), false))
                .filter(col(field).is_not_null())
                .group_by([text(kind.column()).alias("id"), text(field).alias("value")])
                .agg([len().cast(DataType::UInt64).alias("n")])
                .collect()
                .stage("usage as a polars query")?;
            let ids = strs(&counts, "id")?;
            let values = strs(&counts, "value")?;
            for ((id, value), n) in ids.into_iter().zip(values).zip(u64s(&counts, "n")?) {
                let usage = out.entry(Entity::new(kind, id)).or_default();
                match field == c::ACTION {
                    true => usage.endpoints.push((value, n)),
                    false => usage.clients.push((value, n)),
                }
            }
        }
    }
    for usage in out.values_mut() {
        keep_top(&mut usage.endpoints);
        keep_top(&mut usage.clients);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
