//! The access rows of a frame that name an account, found and read chunk by chunk side by side,
//! without copying whole columns: copying the event type, target, principal and instant columns
//! of the 85.9M-event frame whole (1.7 GB of copies) and picking the access rows out of them on
//! one thread took 2.7 s before the reduction proper began; this takes 0.5 s
//! (`benches/reduce_state.rs` at 100M, `docs/scale.md`).

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::KINDS;
use crate::error::Result;
use crate::frame::{NULL, aligned, code_arrays, event_type, ts_arrays};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};

pub(super) struct Selected {
    /// The columns read, cut into the same chunks.
    frame: DataFrame,
    /// Per chunk, the rows taken, by index within the chunk.
    rows: Vec<Vec<u32>>,
    /// The frame row each chunk starts at.
    starts: Vec<IdxSize>,
}

impl Selected {
    /// Rows of event type `access` (its [`event_type`] code) with a target account. When the frame
    /// does not hold the targets they are read from `cold`: here for whether each access row
    /// names one, chunks of about `run` rows at a time, and for a group's own rows in
    /// [`Selected::targets`]. Put back whole beside the frame, they were 343 MB under every
    /// group's reduction at 85.9M events.
    pub(super) fn of(
        events: &DataFrame,
        cold: &ColdColumns,
        access: u16,
        run: usize,
    ) -> Result<Selected> {
        let held = events.column(c::TARGET).is_ok();
        let mut names = vec![c::TS, c::EVENT_TYPE];
        names.extend(held.then_some(c::TARGET));
        // The network, when the frame has none, from the selected rows' addresses (`codes`):
        // derived for the whole frame here it would be 4 bytes an event more at the run's peak.
        // A kind the frame does not hold (the principal and the address, which wait beside it;
        // the network, derived from the addresses) is read for each group's rows alone
        // (`keys_beside`, `codes`).
        names.extend(KINDS.iter().filter(|k| events.column(k).is_ok()));
        let frame = aligned(events, &names)?;
        let mut starts = Vec::new();
        let mut at: IdxSize = 0;
        for len in crate::frame::chunk_lengths(&frame) {
            starts.push(at);
            at += len as IdxSize;
        }
        let kinds = event_type::arrays(&frame, c::EVENT_TYPE)?;
        // Per chunk, the access rows whose target `named` says is there.
        let pick = |chunks: std::ops::Range<usize>,
                    named: &(dyn Fn(usize, usize) -> bool + Sync)| {
            (chunks.into_par_iter())
                .map(|k| {
                    let kind = event_type::codes(&kinds[k]);
                    (0..kind.len())
                        .filter(|&i| kind[i] == access && named(k, i))
                        .map(|i| i as u32)
                        .collect::<Vec<u32>>()
                })
                .collect::<Vec<_>>()
        };
        let rows = if held {
            let targets = code_arrays(&frame, c::TARGET)?;
            let targets: Vec<_> = targets.iter().map(|t| t.values()).collect();
            pick(0..kinds.len(), &|k, i| targets[k][i] != NULL)
        } else {
            let mut rows = Vec::with_capacity(kinds.len());
            let mut from = 0;
            while from < kinds.len() {
                // Chunks of about a cold run's rows: whether each of their access rows names an
                // account, asked of the cold columns at once.
                let mut to = from + 1;
                let mut held_rows = kinds[from].len();
                while to < kinds.len() && held_rows < run {
                    held_rows += kinds[to].len();
                    to += 1;
                }
                let access_rows = pick(from..to, &|_, _| true);
                let global: Vec<IdxSize> = (access_rows.iter().zip(&starts[from..to]))
                    .flat_map(|(rows, &start)| rows.iter().map(move |&i| start + i))
                    .collect();
                let named = cold.rows_present(events, global, c::TARGET)?;
                let mut lists: Vec<Vec<u32>> = vec![Vec::new(); to - from];
                for r in named {
                    let k = starts[from..to].partition_point(|&s| s <= r) - 1;
                    lists[k].push(r - starts[from + k]);
                }
                rows.extend(lists);
                from = to;
            }
            rows
        };
        Ok(Selected {
            frame,
            rows,
            starts,
        })
    }

    /// The target account, the principal and, when the frame does not hold it, the source
    /// address of every selected row, in frame order, as dictionary codes ([`NULL`] for none):
    /// what the frame does not hold is read from `cold` for these rows only, every such column in
    /// one reading of each chunk. Read one after the other, the 100.09M-event export's records
    /// stage took 80 s instead of 67 s with the principal in the frame (one run each).
    pub(super) fn keys_beside(&self, events: &DataFrame, cold: &ColdColumns) -> Result<Keys> {
        let names = [c::TARGET, c::PRINCIPAL, c::SOURCE_IP];
        let beside: Vec<&str> = names.iter().copied().filter(|n| !self.holds(n)).collect();
        let read = match beside.is_empty() {
            true => None,
            false => {
                let rows: Vec<IdxSize> = self.each(|k, i| self.starts[k] + i);
                Some(cold.select(events, &beside, &rows)?)
            }
        };
        let of = |name: &str| match read.as_ref().filter(|_| beside.contains(&name)) {
            Some(read) => crate::frame::codes(read, name),
            None => self.codes(name),
        };
        let addresses = match beside.contains(&c::SOURCE_IP) {
            true => Some(of(c::SOURCE_IP)?),
            false => None,
        };
        Ok(Keys {
            targets: of(c::TARGET)?,
            principals: of(c::PRINCIPAL)?,
            addresses,
        })
    }

    /// Whether the selection's frame holds column `key`; the principal and the address are read
    /// beside it ([`Self::keys_beside`]).
    pub(super) fn holds(&self, key: &str) -> bool {
        self.frame.column(key).is_ok()
    }

    /// Per chunk, the first and last instant of its selected rows (none: no row selected):
    /// what [`Selected::day_spans`] cuts the window by and [`Marked::within`] skips chunks by.
    pub(super) fn chunk_spans(&self) -> Result<Vec<Option<(i64, i64)>>> {
        let instants = ts_arrays(&self.frame)?;
        Ok((self.rows.par_iter().zip(instants.par_iter()))
            .map(|(rows, ts)| {
                let mut all = rows.iter().map(|&i| ts[i as usize]);
                let first = all.next()?;
                Some(all.fold((first, first), |(lo, hi), t| (lo.min(t), hi.max(t))))
            })
            .collect())
    }

    /// The same rows as a bit each, for a window reduced in groups: the lists were 4 bytes a
    /// selected row under every group's reduction (by size, 0.23 GB of 57M access rows at 85.9M
    /// events, 0.69 GB at 257.5M; the 85.9M export's measured peak moved 5.25 → 5.23 GB only, a
    /// group's own working set being what sets it). Each chunk keeps its span (`spans`, from
    /// [`Selected::chunk_spans`]), so that a group asks only the chunks that can hold its days
    /// ([`Marked::within`]).
    pub(super) fn marked(self, spans: Vec<Option<(i64, i64)>>) -> Marked {
        let rows = (self.rows.into_par_iter())
            .map(|rows| {
                RoaringBitmap::from_sorted_iter(rows.iter().copied())
                    .unwrap_or_else(|_| rows.into_iter().collect())
            })
            .collect();
        Marked {
            frame: self.frame,
            rows,
            spans,
            starts: self.starts,
        }
    }

    /// Spans of instants, in time order, each of whole local days holding at most `most`
    /// selected rows together (a day that alone holds more is a span of its own); `chunks` are
    /// the rows' [`Selected::chunk_spans`].
    pub(super) fn day_spans(
        &self,
        chunks: &[Option<(i64, i64)>],
        time: &TimeParser,
        most: usize,
    ) -> Result<Vec<(i64, i64)>> {
        let instants = ts_arrays(&self.frame)?;
        let bounds =
            (chunks.iter().flatten().copied()).reduce(|(lo, hi), (l, h)| (lo.min(l), hi.max(h)));
        let Some((lo, hi)) = bounds else {
            return Ok(Vec::new());
        };
        let (first, last) = (time.local_day(lo).day, time.local_day(hi).day);
        // Each day's first instant, and the next day's after the last: a row's day is the last
        // start at or before it.
        let starts: Vec<i64> = (first..=last + 1).map(|d| time.day_start_ms(d)).collect();
        let days = starts.len() - 1;
        let counts = (self.rows.par_iter().zip(instants.par_iter()))
            .fold(
                || vec![0usize; days],
                |mut counts, (rows, ts)| {
                    for &i in rows {
                        let day = starts.partition_point(|&s| s <= ts[i as usize]);
                        counts[day.clamp(1, days) - 1] += 1;
                    }
                    counts
                },
            )
            .reduce_with(|mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            })
            .unwrap_or_default();
        let mut spans: Vec<(i64, i64)> = Vec::new();
        let mut held = 0;
        for (day, &n) in counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            match spans.last_mut() {
                Some(span) if held + n <= most => {
                    span.1 = starts[day + 1];
                    held += n;
                }
                _ => {
                    spans.push((starts[day], starts[day + 1]));
                    held = n;
                }
            }
        }
        Ok(spans)
    }

    pub(super) fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// `at(chunk, row)` for every selected row, in frame order, written in place: a list per
    /// chunk joined afterwards held every value twice at the end.
    fn each<T: Send + Copy + Default>(&self, at: impl Fn(usize, u32) -> T + Sync) -> Vec<T> {
        let mut out = vec![T::default(); self.len()];
        let mut parts = Vec::with_capacity(self.rows.len());
        let mut rest = out.as_mut_slice();
        for rows in &self.rows {
            let (part, tail) = rest.split_at_mut(rows.len());
            parts.push(part);
            rest = tail;
        }
        (parts.into_par_iter().zip(self.rows.par_iter()))
            .enumerate()
            .for_each(|(k, (part, rows))| {
                for (slot, &i) in part.iter_mut().zip(rows) {
                    *slot = at(k, i);
                }
            });
        out
    }

    /// Dictionary codes of column `key` ([`NULL`] for none); a network the frame does not hold
    /// is derived by the reduction, from wherever the addresses are.
    pub(super) fn codes(&self, key: &str) -> Result<Vec<u32>> {
        // Code by code: a chunk with nulls read whole as codes (`Codes::values`) is a copy, and
        // the credentials' were the whole column's, 0.3 GB over every group's reduction at
        // 85.9M events.
        let arrays = code_arrays(&self.frame, key)?;
        Ok(self.each(|k, i| arrays[k].at(i as usize)))
    }

    pub(super) fn instants(&self) -> Result<Vec<i64>> {
        let chunks = ts_arrays(&self.frame)?;
        Ok(self.each(|k, i| chunks[k][i as usize]))
    }
}

/// What [`Selected::keys_beside`] reads of each selected row.
pub(super) struct Keys {
    pub targets: Vec<u32>,
    pub principals: Vec<u32>,
    /// Only when the frame does not hold them.
    pub addresses: Option<Vec<u32>>,
}

/// [`Selected`] rows as a bitmap per chunk.
pub(super) struct Marked {
    frame: DataFrame,
    rows: Vec<RoaringBitmap>,
    /// Per chunk, the first and last instant of its marked rows (none: no row marked).
    spans: Vec<Option<(i64, i64)>>,
    starts: Vec<IdxSize>,
}

impl Marked {
    /// The marked rows with instants in `from..to`, listed.
    pub(super) fn within(&self, from: i64, to: i64) -> Result<Selected> {
        let instants = ts_arrays(&self.frame)?;
        // Only chunks whose instants meet `from..to`. Every group walked every marked row of
        // the window, though a chunk is consecutive lines of one file, a few hours of an export
        // in time order (the benchmark's): over the 257.5M-event export (171M access rows, 22
        // groups) this and reading a group's targets took 23.5 s, 12.8 s now (`within` itself
        // 1.7 s); over the 85.9M one (seven groups) 4.5 → 3.3 s (one run each, temporary
        // probes; reports byte-identical).
        let rows = (self.rows.par_iter())
            .zip(instants.par_iter())
            .zip(&self.spans)
            .map(|((rows, ts), span)| match span {
                Some((first, last)) if *first < to && *last >= from => {
                    let keep = |i: &u32| (from..to).contains(&ts[*i as usize]);
                    rows.iter().filter(keep).collect()
                }
                _ => Vec::new(),
            })
            .collect();
        Ok(Selected {
            frame: self.frame.clone(),
            rows,
            starts: self.starts.clone(),
        })
    }
}
