//! Which event types each chunk of the frame holds, so that a question about a few types (the
//! logins, the lifecycle events) evaluates its filter on the chunks that hold them alone.
//!
//! Why: exports come a source per file (an identity provider's sign-ins beside a gateway's
//! accesses), and the frame's chunks come a file each, so most chunks hold none of a rare type;
//! a filter over every row cost the login-attack detector a pass over the whole frame per
//! question (four of them). Chunks that cannot hold a matching row are never sliced or masked,
//! so the rows found are exactly polars' (a differential test holds them to a filter over the
//! whole frame). Measured in `docs/performance.md` (forty-ninth session).

use std::ops::Range;

use polars::prelude::*;
use rayon::prelude::*;

use super::{Kinds, arrays, code};
use crate::error::Result;
use crate::normalize::schema::col::EVENT_TYPE;

/// Each chunk's rows and the event type codes it holds.
#[derive(Debug, Clone)]
pub struct TypesByChunk {
    /// Chunk rows, and its distinct two-byte codes, sorted.
    chunks: Vec<(Range<usize>, Vec<u16>)>,
}

impl TypesByChunk {
    /// One pass over the event type codes, chunks side by side.
    pub fn of(df: &DataFrame) -> Result<TypesByChunk> {
        let mut start = 0;
        let spans: Vec<(Range<usize>, Kinds)> = (arrays(df, EVENT_TYPE)?.into_iter())
            .map(|kinds| {
                let rows = start..start + kinds.len();
                start = rows.end;
                (rows, kinds)
            })
            .collect();
        let chunks = (spans.into_par_iter())
            .map(|(rows, kinds)| (rows, distinct(&kinds)))
            .collect();
        Ok(TypesByChunk { chunks })
    }

    /// Whether some row has event type `name`.
    pub fn holds(&self, name: &str) -> bool {
        code(name).is_some_and(|c| (self.chunks.iter()).any(|(_, t)| t.binary_search(&c).is_ok()))
    }

    /// The frame rows of the chunks that hold one of `types`, adjacent chunks joined, in order:
    /// where a pass over rows of those types alone need look
    /// ([`crate::normalize::ColdColumns::runs_within`]).
    pub fn ranges_of(&self, types: &[&str]) -> Vec<Range<usize>> {
        let codes: Vec<u16> = types.iter().filter_map(|t| code(t)).collect();
        self.ranges(&codes)
    }

    /// The frame rows of the chunks that hold one of `codes`, adjacent chunks joined.
    fn ranges(&self, codes: &[u16]) -> Vec<Range<usize>> {
        let mut ranges: Vec<Range<usize>> = Vec::new();
        let wanted = |types: &[u16]| codes.iter().any(|c| types.binary_search(c).is_ok());
        for (rows, _) in self.chunks.iter().filter(|(_, types)| wanted(types)) {
            match ranges.last_mut() {
                Some(last) if last.end == rows.start => last.end = rows.end,
                _ => ranges.push(rows.clone()),
            }
        }
        ranges
    }

    /// The rows of `df` (the frame this was made of), in order, whose event type is one of
    /// `types` and where `keep` holds. `keep` is asked of a run of chunks at a time, so it must
    /// be a row-wise condition (a filter's), not an aggregate over the frame.
    pub fn rows(&self, df: &DataFrame, types: &[&str], keep: Expr) -> Result<Vec<IdxSize>> {
        let mut rows = Vec::new();
        self.rows_in_pieces(df, (types, keep), &mut |piece| {
            rows.extend(piece);
            Ok(())
        })?;
        Ok(rows)
    }

    /// [`Self::rows`] handed to `each` a piece of at most [`PIECE_ROWS`] frame rows at a time,
    /// in order, so that a caller that keeps few of them never holds them all: the 300.15M-event
    /// export's logins are one file of about 51M rows (17 % of its events, as the 10.12M
    /// export's 1.73M), all of them listed (4 bytes each, beside polars' mask over them) to find
    /// 75 rows of a few addresses, which stood 0.40 GB over what the login detector began on
    /// (`analyze --timings-per-detector`, temporary probes).
    pub fn rows_in_pieces(
        &self,
        df: &DataFrame,
        (types, keep): (&[&str], Expr),
        each: &mut dyn FnMut(Vec<IdxSize>) -> Result<()>,
    ) -> Result<()> {
        self.rows_in_pieces_of(PIECE_ROWS, df, (types, keep), each)
    }

    pub(super) fn rows_in_pieces_of(
        &self,
        piece: usize,
        df: &DataFrame,
        (types, keep): (&[&str], Expr),
        each: &mut dyn FnMut(Vec<IdxSize>) -> Result<()>,
    ) -> Result<()> {
        let piece = piece.max(1);
        let codes: Vec<u16> = types.iter().filter_map(|t| code(t)).collect();
        let of_types = (types.iter())
            .map(|t| col(EVENT_TYPE).eq(lit(*t)))
            .reduce(Expr::or);
        let (Some(of_types), false) = (of_types, codes.is_empty()) else {
            return Ok(());
        };
        let keep = of_types.and(keep);
        for range in self.ranges(&codes) {
            for start in range.clone().step_by(piece) {
                let len = piece.min(range.end - start);
                let slice = df.slice(start as i64, len);
                let mask = crate::frame::mask_of(&slice, keep.clone())?;
                let first = start as IdxSize;
                let rows = crate::normalize::cold::rows_of(&mask);
                each(rows.into_iter().map(|r| first + r).collect())?;
            }
        }
        Ok(())
    }
}

/// Frame rows asked at once by [`TypesByChunk::rows_in_pieces`]: 16 MB of listed rows at most,
/// and a piece or two for the 10M-event benchmark's logins.
pub const PIECE_ROWS: usize = 1 << 22;

/// The distinct codes of one chunk, sorted; a null row's slot is not one of them.
fn distinct(kinds: &Kinds) -> Vec<u16> {
    match *kinds {
        Kinds::One(a) => distinct_of::<UInt8Type>(a),
        Kinds::Two(a) => distinct_of::<UInt16Type>(a),
    }
}

fn distinct_of<T: PolarsNumericType>(arr: &T::Array) -> Vec<u16>
where
    T::Native: Into<u16>,
{
    let mut seen = vec![false; 1 << 16];
    let values = arr.values().as_slice();
    match arr.validity().filter(|v| v.unset_bits() > 0) {
        Some(valid) => (values.iter().zip(valid.iter()))
            .filter(|(_, ok)| *ok)
            .for_each(|(&v, _)| seen[usize::from(v.into())] = true),
        None => (values.iter()).for_each(|&v| seen[usize::from(v.into())] = true),
    }
    (0..=u16::MAX).filter(|&c| seen[usize::from(c)]).collect()
}
