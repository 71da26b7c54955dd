//! The access rows of a frame that name an account, found and read chunk by chunk side by side,
//! without copying whole columns: copying the event type, target, principal and instant columns
//! of the 85.9M-event frame whole (1.7 GB of copies) and picking the access rows out of them on
//! one thread took 2.7 s before the reduction proper began; this takes 0.5 s
//! (`benches/reduce_state.rs` at 100M, `docs/scale.md`).

use polars::prelude::*;
use rayon::prelude::*;

use super::KINDS;
use crate::error::Result;
use crate::frame::{NULL, aligned, chunk_codes, code_arrays, ts_arrays};
use crate::normalize::networks::to_networks;
use crate::normalize::schema::col as c;

pub(super) struct Selected {
    /// The columns read, cut into the same chunks.
    frame: DataFrame,
    /// Per chunk, the rows taken, by index within the chunk.
    rows: Vec<Vec<u32>>,
}

impl Selected {
    /// Rows of event type `access` (its dictionary code) with a target account.
    pub(super) fn of(events: &DataFrame, access: u32) -> Result<Selected> {
        let mut names = vec![c::TS, c::EVENT_TYPE, c::TARGET];
        // The network, when the frame has none, from the selected rows' addresses (`codes`):
        // derived for the whole frame here it would be 4 bytes an event more at the run's peak.
        let stored = events.column(c::NETWORK).is_ok();
        names.extend(KINDS.iter().filter(|k| stored || **k != c::NETWORK));
        let frame = aligned(events, &names)?;
        let (kinds, targets) = (
            code_arrays(&frame, c::EVENT_TYPE)?,
            code_arrays(&frame, c::TARGET)?,
        );
        let rows = kinds
            .par_iter()
            .zip(targets.par_iter())
            .map(|(kind, target)| {
                let (kind, target) = (chunk_codes(kind), chunk_codes(target));
                (0..kind.len() as u32)
                    .filter(|&i| kind[i as usize] == access && target[i as usize] != NULL)
                    .collect()
            })
            .collect();
        Ok(Selected { frame, rows })
    }

    pub(super) fn len(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// `at(chunk, row)` for every selected row, in frame order.
    fn each<T: Send>(&self, at: impl Fn(usize, u32) -> T + Sync) -> Vec<T> {
        let parts: Vec<Vec<T>> = self
            .rows
            .par_iter()
            .enumerate()
            .map(|(k, rows)| rows.iter().map(|&i| at(k, i)).collect())
            .collect();
        let mut out = Vec::with_capacity(self.len());
        for part in parts {
            out.extend(part);
        }
        out
    }

    /// Dictionary codes of column `key` ([`NULL`] for none).
    pub(super) fn codes(&self, key: &str) -> Result<Vec<u32>> {
        if key == c::NETWORK && self.frame.column(key).is_err() {
            let mut codes = self.codes(c::SOURCE_IP)?;
            to_networks(&mut codes)?;
            return Ok(codes);
        }
        let arrays = code_arrays(&self.frame, key)?;
        let chunks: Vec<_> = arrays.iter().map(|a| chunk_codes(a)).collect();
        Ok(self.each(|k, i| chunks[k][i as usize]))
    }

    pub(super) fn instants(&self) -> Result<Vec<i64>> {
        let chunks = ts_arrays(&self.frame)?;
        Ok(self.each(|k, i| chunks[k][i as usize]))
    }
}
