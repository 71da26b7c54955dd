//! The access rows of a frame that name an account, found and read chunk by chunk side by side,
//! without copying whole columns: copying the event type, target, principal and instant columns
//! of the 85.9M-event frame whole (1.7 GB of copies) and picking the access rows out of them on
//! one thread took 2.7 s before the reduction proper began; this takes 0.5 s
//! (`benches/reduce_state.rs` at 100M, `docs/scale.md`). Past ingest the instants wait beside the
//! frame: they are read for the selected rows alone, a run of chunks at a time, to cut the window
//! into groups of days, and again for each group's rows ([`Marked::within`]), never whole.

use polars::prelude::*;
use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::KINDS;
use crate::error::{FrameContext, Result};
use crate::frame::{NULL, aligned, code_arrays, event_type, ts_arrays};
use crate::normalize::schema::col as c;
use crate::normalize::{ColdColumns, TimeParser};

pub(super) struct Selected {
    /// The columns read, cut into the same chunks.
    frame: DataFrame,
    /// Per chunk, the rows taken, by index within the chunk. A bitmap: listed, the window's
    /// were 4 bytes an access row, 0.75 GB at 300.15M events while the window was cut into days.
    rows: Vec<RoaringBitmap>,
    /// The frame row each chunk starts at.
    starts: Vec<IdxSize>,
    /// Per chunk, the instants of its rows, where a group's were read from beside the frame
    /// ([`Marked::within`]).
    read: Option<Vec<Vec<i64>>>,
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
        let timed = events.column(c::TS).is_ok();
        let mut names = vec![c::EVENT_TYPE];
        names.extend(timed.then_some(c::TS));
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
                    let rows = (0..kind.len()).filter(|&i| kind[i] == access && named(k, i));
                    sorted(rows.map(|i| i as u32))
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
                    .flat_map(|(rows, &start)| rows.iter().map(move |i| start + i))
                    .collect();
                let named = cold.rows_present(events, global, c::TARGET)?;
                let mut lists: Vec<Vec<u32>> = vec![Vec::new(); to - from];
                for r in named {
                    let k = starts[from..to].partition_point(|&s| s <= r) - 1;
                    lists[k].push(r - starts[from + k]);
                }
                rows.extend(lists.into_iter().map(sorted));
                from = to;
            }
            rows
        };
        Ok(Selected {
            frame,
            rows,
            starts,
            read: None,
        })
    }

    /// `each` of the instants of every chunk's selected rows, in order, chunks side by side: from
    /// the frame, or read from beside it (`beside`) a run of about `run` rows at a time, so that
    /// no more of them are held at once.
    fn per_chunk<T: Send>(
        &self,
        beside: (&DataFrame, &ColdColumns),
        run: usize,
        each: impl Fn(&[i64]) -> T + Sync,
    ) -> Result<Vec<T>> {
        if self.holds(c::TS) {
            let ts = ts_arrays(&self.frame)?;
            return Ok((self.rows.par_iter().zip(ts.par_iter()))
                .map(|(rows, ts)| {
                    let of_rows: Vec<i64> = rows.iter().map(|i| ts[i as usize]).collect();
                    each(&of_rows)
                })
                .collect());
        }
        let mut out = Vec::with_capacity(self.rows.len());
        let all: Vec<usize> = (0..self.rows.len()).collect();
        self.read_beside(beside, &all, run, |_, read| {
            out.par_extend(read.par_iter().map(|ts| each(ts)));
            Ok(())
        })?;
        Ok(out)
    }

    /// The instants of the selected rows of chunks `chunks` (ascending), read from beside the
    /// frame a run of about `run` rows at a time: the run's spans whole, as ingest's chunks hold
    /// them (never the other chunks'), the selected rows picked out. `each` gets the chunks
    /// completed by each run, in order, with their rows' instants. Selected by row instead
    /// ([`ColdColumns::select`]: sorted, gathered, put back in order), the 300.15M-event records
    /// stage took 618 s instead of 339 s (beside tests, one run).
    fn read_beside(
        &self,
        (events, cold): (&DataFrame, &ColdColumns),
        chunks: &[usize],
        run: usize,
        mut each: impl FnMut(&[usize], Vec<Vec<i64>>) -> Result<()>,
    ) -> Result<()> {
        let lengths = crate::frame::chunk_lengths(&self.frame);
        let within: Vec<std::ops::Range<usize>> = (chunks.iter())
            .map(|&k| self.starts[k] as usize..self.starts[k] as usize + lengths[k])
            .collect();
        // For `chunks[done..]`: the instants read so far and how many of its rows they are.
        // `next`: the row of the chunk to go on from.
        let (mut done, mut read, mut next) = (0, Vec::<Vec<i64>>::new(), Vec::<u32>::new());
        cold.runs_within(events, &[c::TS], run, Some(&within), |spans| {
            let mut complete = done;
            for (first, df) in &spans {
                let arrays = ts_arrays(df)?;
                let ts: std::borrow::Cow<[i64]> = match arrays.as_slice() {
                    [one] => std::borrow::Cow::Borrowed(one),
                    many => std::borrow::Cow::Owned(many.concat()),
                };
                let (lo, hi) = (*first, *first + ts.len());
                let mut at = complete;
                while at < chunks.len() && within[at].start < hi {
                    let (k, i) = (chunks[at], at - done);
                    if read.len() <= i {
                        read.push(Vec::with_capacity(self.rows[k].len() as usize));
                        next.push(0);
                    }
                    for local in self.rows[k].range(next[i]..) {
                        let row = self.starts[k] as usize + local as usize;
                        if row >= hi {
                            break;
                        }
                        let t = row.checked_sub(lo).and_then(|r| ts.get(r)).ok_or_else(|| {
                            crate::error::Error::Internal(format!("row {row} read from no span"))
                        })?;
                        read[i].push(*t);
                        next[i] = local + 1;
                    }
                    if within[at].end <= hi {
                        complete = at + 1;
                    }
                    at += 1;
                }
            }
            let n = complete - done;
            if n > 0 {
                next.drain(..n);
                each(&chunks[done..complete], read.drain(..n).collect())?;
                done = complete;
            }
            Ok(())
        })?;
        if done < chunks.len() {
            read.resize(chunks.len() - done, Vec::new());
            each(&chunks[done..], read)?;
        }
        Ok(())
    }

    /// The target account, the principal and, when the frame does not hold it, the source
    /// address of every selected row, in frame order, as dictionary codes ([`NULL`] for none):
    /// what the frame does not hold is read from `cold` for these rows only, every such column in
    /// one reading of each chunk. Read one after the other, the 100.09M-event export's records
    /// stage took 80 s instead of 67 s with the principal in the frame (one run each).
    pub(super) fn keys_beside(&self, events: &DataFrame, cold: &ColdColumns) -> Result<Keys> {
        let names = [c::TARGET, c::PRINCIPAL, c::SOURCE_IP];
        let beside: Vec<&str> = names.iter().copied().filter(|n| !self.holds(n)).collect();
        let mut read = match beside.is_empty() {
            true => None,
            false => {
                let rows: Vec<IdxSize> = self.each(|k, i| self.starts[k] + i);
                Some(cold.select(events, &beside, &rows)?)
            }
        };
        // Each column read dropped once copied out: 4 bytes a row of the group less at the
        // height of the copies.
        let mut of = |name: &str| match read.as_mut().filter(|_| beside.contains(&name)) {
            Some(read) => {
                let codes = crate::frame::codes(read, name);
                read.drop_in_place(name).stage("reading codes")?;
                codes
            }
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

    /// The same rows, for a window reduced in groups, each chunk with its span (`spans`, from
    /// [`Selected::day_spans`]), so that a group asks only the chunks that can hold its days
    /// ([`Marked::within`]).
    pub(super) fn marked(self, spans: Vec<Option<(i64, i64)>>) -> Marked {
        Marked {
            frame: self.frame,
            rows: self.rows,
            spans,
            starts: self.starts,
        }
    }

    /// Per chunk, the first and last instant of its selected rows (none: no row selected), what
    /// [`Marked::within`] skips chunks by; and spans of instants, in time order, each of whole
    /// local days holding at most `most` selected rows together (a day that alone holds more is
    /// a span of its own), what the window is reduced a group at a time by. One reading of the
    /// selected rows' instants, from the frame or from beside it (`beside`, a run of about `run`
    /// rows at a time).
    pub(super) fn day_spans(
        &self,
        (time, most): (&TimeParser, usize),
        beside: (&DataFrame, &ColdColumns),
        run: usize,
    ) -> Result<DaySpans> {
        let per_chunk = self.per_chunk(beside, run, |ts| {
            (crate::frame::span_of(ts), days_of(time, ts))
        })?;
        let mut counts: std::collections::BTreeMap<i64, usize> = Default::default();
        let mut chunks = Vec::with_capacity(per_chunk.len());
        for (span, days) in per_chunk {
            chunks.push(span);
            for (day, n) in days {
                *counts.entry(day).or_default() += n;
            }
        }
        let mut spans: Vec<(i64, i64)> = Vec::new();
        let mut held = 0;
        for (day, n) in counts {
            let (start, end) = (time.day_start_ms(day), time.day_start_ms(day + 1));
            match spans.last_mut() {
                Some(span) if held + n <= most => {
                    span.1 = end;
                    held += n;
                }
                _ => {
                    spans.push((start, end));
                    held = n;
                }
            }
        }
        Ok((chunks, spans))
    }

    pub(super) fn len(&self) -> usize {
        self.rows.iter().map(|r| r.len() as usize).sum()
    }

    /// `at(chunk, row)` for every selected row, in frame order, written in place: a list per
    /// chunk joined afterwards held every value twice at the end.
    fn each<T: Send + Copy + Default>(&self, at: impl Fn(usize, u32) -> T + Sync) -> Vec<T> {
        let mut out = vec![T::default(); self.len()];
        let mut parts = Vec::with_capacity(self.rows.len());
        let mut rest = out.as_mut_slice();
        for rows in &self.rows {
            let (part, tail) = rest.split_at_mut(rows.len() as usize);
            parts.push(part);
            rest = tail;
        }
        (parts.into_par_iter().zip(self.rows.par_iter()))
            .enumerate()
            .for_each(|(k, (part, rows))| {
                for (slot, i) in part.iter_mut().zip(rows) {
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

    /// `as_row` of the instant of every selected row, in frame order; read from beside the frame
    /// (`beside`) for those rows alone when it does not hold them. Instants a group kept when
    /// it was made ([`Marked::within`]) are handed over, each chunk's dropped once turned: kept
    /// beside the copy, they were 8 bytes a row over the whole of the group's reduction (0.1 GB
    /// a group at 300.15M events), and turned into its sort keys (16 bytes a row) all at once,
    /// they stood beside those at the records stage's height.
    pub(super) fn instants_as<T: Send + Copy + Default>(
        &mut self,
        beside: (&DataFrame, &ColdColumns),
        run: usize,
        as_row: impl Fn(i64) -> T + Sync,
    ) -> Result<Vec<T>> {
        if let Some(read) = self.read.take() {
            let mut out = Vec::with_capacity(read.iter().map(Vec::len).sum());
            for chunk in read {
                out.extend(chunk.iter().map(|&ts| as_row(ts)));
            }
            return Ok(out);
        }
        if !self.holds(c::TS) {
            let mut out = Vec::with_capacity(self.len());
            let all: Vec<usize> = (0..self.rows.len()).collect();
            self.read_beside(beside, &all, run, |_, read| {
                for ts in read {
                    out.extend(ts.iter().map(|&ts| as_row(ts)));
                }
                Ok(())
            })?;
            return Ok(out);
        }
        // In place (`each`): a window reduced whole (a night's) would hold its instants twice
        // if listed per chunk and joined.
        let chunks = ts_arrays(&self.frame)?;
        Ok(self.each(|k, i| as_row(chunks[k][i as usize])))
    }
}

/// What [`Selected::keys_beside`] reads of each selected row.
pub(super) struct Keys {
    pub targets: Vec<u32>,
    pub principals: Vec<u32>,
    /// Only when the frame does not hold them.
    pub addresses: Option<Vec<u32>>,
}

/// Per chunk, the first and last instant of its selected rows; and the window's spans of days
/// ([`Selected::day_spans`]).
pub(super) type DaySpans = (Vec<Option<(i64, i64)>>, Vec<(i64, i64)>);

/// The local days of instants `ts` as (day, instants on it), one entry a day. A chunk is a few
/// hours of one file, but a file need not be in time order: the 300.15M-event export's lines
/// wander over about a day, and counted as runs of consecutive instants on one day its chunks
/// made 49M runs, 0.78 GB held until the window was cut (the records stage's peak, 4.65 GB;
/// probes and `perf` on page faults, fifty-sixth session). The days already met, kept in time
/// order, are searched by bisection before a day's bounds are computed again: a chunk of an
/// export in no order at all may meet every day of the window, and a row then costs a few
/// comparisons, not one per day met.
pub(super) fn days_of(time: &TimeParser, ts: &[i64]) -> Vec<(i64, usize)> {
    // (first instant, the next day's, day, instants), in time order; the last instant's day
    // tried first.
    let mut days: Vec<(i64, i64, i64, usize)> = Vec::new();
    let mut last = 0;
    for &t in ts {
        if !days.get(last).is_some_and(|d| (d.0..d.1).contains(&t)) {
            // Local days do not overlap: the first one ending after `t` holds it, or none does
            // and its place is there.
            let at = days.partition_point(|d| d.1 <= t);
            if days.get(at).is_none_or(|d| d.0 > t) {
                let (first, next, day) = day_bounds(time, t);
                days.insert(at, (first, next, day, 0));
            }
            last = at;
        }
        days[last].3 += 1;
    }
    days.into_iter().map(|(_, _, day, n)| (day, n)).collect()
}

/// The local day holding instant `t` as (its first instant, the next day's, the day): the last day
/// that starts at or before `t`.
fn day_bounds(time: &TimeParser, t: i64) -> (i64, i64, i64) {
    let mut day = time.local_day(t).day;
    while time.day_start_ms(day) > t {
        day -= 1;
    }
    while time.day_start_ms(day + 1) <= t {
        day += 1;
    }
    (time.day_start_ms(day), time.day_start_ms(day + 1), day)
}

/// Rows of a chunk, ascending, as a bitmap. Appended, as every caller's are ascending: pushed
/// one at a time, each push looked for the bitmap's largest value from the end of its container
/// (`roaring`'s `try_push`), 13 % of the 100.09M-event records stage's CPU (`perf`). A row out of
/// order would be inserted afterwards.
fn sorted(rows: impl IntoIterator<Item = u32>) -> RoaringBitmap {
    let (mut out_of_order, mut last) = (Vec::new(), None);
    let ascending = rows.into_iter().filter(|&r| {
        let next = last.is_none_or(|l| r > l);
        match next {
            true => last = Some(r),
            false => out_of_order.push(r),
        }
        next
    });
    let mut set = RoaringBitmap::new();
    // Never out of order: the filter passes ascending rows only.
    let _ = set.append(ascending);
    set.extend(out_of_order);
    set
}

/// [`Selected`] rows per chunk, each chunk with the span of its rows' instants.
pub(super) struct Marked {
    frame: DataFrame,
    rows: Vec<RoaringBitmap>,
    /// Per chunk, the first and last instant of its marked rows (none: no row marked).
    spans: Vec<Option<(i64, i64)>>,
    starts: Vec<IdxSize>,
}

impl Marked {
    /// The marked rows with instants in `from..to`, listed. Instants that wait beside the frame
    /// (`beside`) are read for the marked rows of the chunks whose span meets `from..to`, chunks
    /// of about `run` rows at a time, and kept for the group ([`Selected::instants`]).
    pub(super) fn within(
        &self,
        (from, to): (i64, i64),
        beside: (&DataFrame, &ColdColumns),
        run: usize,
    ) -> Result<Selected> {
        // Only chunks whose instants meet `from..to`. Every group walked every marked row of
        // the window, though a chunk is consecutive lines of one file, a few hours of an export
        // in time order (the benchmark's): over the 257.5M-event export (171M access rows, 22
        // groups) this and reading a group's targets took 23.5 s, 12.8 s now (`within` itself
        // 1.7 s); over the 85.9M one (seven groups) 4.5 → 3.3 s (one run each, temporary
        // probes; reports byte-identical).
        let meets =
            |k: usize| matches!(self.spans[k], Some((first, last)) if first < to && last >= from);
        let mut part = Selected {
            frame: self.frame.clone(),
            rows: vec![RoaringBitmap::new(); self.rows.len()],
            starts: self.starts.clone(),
            read: None,
        };
        if part.holds(c::TS) {
            let instants = ts_arrays(&self.frame)?;
            part.rows = (self.rows.par_iter().enumerate())
                .map(|(k, rows)| match meets(k) {
                    true => {
                        let keep = |i: &u32| (from..to).contains(&instants[k][*i as usize]);
                        sorted(rows.iter().filter(keep))
                    }
                    false => RoaringBitmap::new(),
                })
                .collect();
            return Ok(part);
        }
        // Every marked row of the chunks that meet the span, then those within it.
        let chunks: Vec<usize> = (0..self.rows.len()).filter(|&k| meets(k)).collect();
        for &k in &chunks {
            part.rows[k] = self.rows[k].clone();
        }
        let mut kept = vec![Vec::new(); self.rows.len()];
        let mut rows = vec![RoaringBitmap::new(); self.rows.len()];
        part.read_beside(beside, &chunks, run, |these, read| {
            for (&k, ts) in these.iter().zip(read) {
                let within = (part.rows[k].iter().zip(ts)).filter(|(_, t)| (from..to).contains(t));
                let (these_rows, these_ts): (Vec<u32>, Vec<i64>) = within.unzip();
                (rows[k], kept[k]) = (sorted(these_rows), these_ts);
            }
            Ok(())
        })?;
        part.rows = rows;
        part.read = Some(kept);
        Ok(part)
    }
}

#[cfg(test)]
mod tests {
    use super::sorted;

    /// Rows come ascending from every caller, but a row out of order (or repeated) must still be
    /// in the set once, not dropped with the rest of the rows after it.
    #[test]
    fn rows_out_of_order_still_make_the_set() {
        let rows = [3, 9, 70_000, 4, 9, 200_000, 1];
        let set = sorted(rows);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [1, 3, 4, 9, 70_000, 200_000]
        );
        assert_eq!(sorted(0..5000).len(), 5000);
    }
}
