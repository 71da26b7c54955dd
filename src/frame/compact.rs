//! Copying a frame's columns into new chunks: out of the pages parsing left them in, or cut as
//! another frame's are.

use std::collections::VecDeque;

use polars::prelude::*;

use crate::error::{Error, FrameContext, Result};

/// `df` with its runs of small chunks copied into chunks of about `rows` rows (`rows` to 1.5
/// `rows`); a chunk of `rows / 2` rows or more stays as it is, and so does a frame of one chunk.
/// `stretches` are the row counts of the stretches of `df` read side by side (its files, in
/// order): each is cut apart, and they are copied a chunk at a time in step, each as far along
/// its own rows as the others. The chunks as read are freed as they are used up.
///
/// Why: a frame stacked from the chunks parsing made keeps those chunks where the allocator put
/// them, in pages they share with what parsing freed. Over the 85.9M-event export those pages
/// held 0.89 GB beyond the frame's 1.98 GB of columns once ingest was done (resident 3.34 →
/// 2.45 GB with the frame copied whole, a probe; this copy, 3.32–3.34 → 2.50 GB in two
/// alternated pairs; `docs/performance.md`, thirty-fourth session). A frame read
/// back from Parquet is already compact (2.71 → 2.69 GB the same way). In step rather than a
/// column or a file at a time: a page holds chunks of every column and of the files read at the
/// same time, and goes back only once all of them are copied.
pub fn compact(df: DataFrame, rows: usize, stretches: &[usize]) -> Result<DataFrame> {
    let height = df.height();
    if stretches.iter().sum::<usize>() != height {
        return Err(Error::Internal(format!(
            "stretches of {} rows in a frame of {height}",
            stretches.iter().sum::<usize>()
        )));
    }
    if height == 0 {
        return Ok(df);
    }
    let rows = rows.max(1);
    let mut columns: Vec<Cutting> = df.into_columns().into_iter().map(Cutting::new).collect();
    let mut parts: Vec<Vec<Cutting>> = (stretches.iter())
        .map(|&n| columns.iter_mut().map(|c| c.split_front(n)).collect())
        .collect();
    let plans: Vec<Vec<usize>> = (parts.iter())
        .map(|part| match part.first() {
            Some(column) => plan(column.old.iter().map(|c| c.len()), rows),
            None => Vec::new(),
        })
        .collect();
    let (mut next, mut done) = (vec![0usize; plans.len()], vec![0usize; plans.len()]);
    // The stretch least far along its rows next (cross-multiplied: no rounding).
    let behind = |done: &[usize], a: usize, b: usize| {
        (done[a] as u128 * stretches[b] as u128).cmp(&(done[b] as u128 * stretches[a] as u128))
    };
    while let Some(i) = (0..plans.len())
        .filter(|&i| next[i] < plans[i].len())
        .min_by(|&a, &b| behind(&done, a, b))
    {
        let n = plans[i][next[i]];
        for column in &mut parts[i] {
            column.cut(n);
        }
        (next[i], done[i]) = (next[i] + 1, done[i] + n);
        crate::memory::release_freed();
    }
    for part in parts {
        for (column, piece) in columns.iter_mut().zip(part) {
            column.new.extend(piece.new);
        }
    }
    let columns = columns
        .into_iter()
        .map(Cutting::finish)
        .collect::<Result<_>>()?;
    DataFrame::new(height, columns).stage("compacting the event frame")
}

/// The chunks to cut, from the lengths of the chunks as read: a chunk of `rows / 2` or more
/// alone, the others grouped until a group holds `rows` rows or more. Chunks made to these
/// lengths are left as they are by [`compact`].
pub fn plan(lengths: impl Iterator<Item = usize>, rows: usize) -> Vec<usize> {
    let (mut out, mut group) = (Vec::new(), 0);
    for n in lengths {
        if n >= rows.div_ceil(2) {
            out.extend((group > 0).then_some(group));
            out.push(n);
            group = 0;
        } else {
            group += n;
            if group >= rows {
                out.push(group);
                group = 0;
            }
        }
    }
    out.extend((group > 0).then_some(group));
    out
}

/// The lengths of `df`'s chunks (its first column's; a frame's columns are cut alike).
pub fn chunk_lengths(df: &DataFrame) -> Vec<usize> {
    (df.columns().first())
        .map(|c| c.as_materialized_series().chunk_lengths().collect())
        .unwrap_or_default()
}

/// `column` cut into chunks of `lengths` rows (which sum to its length), each chunk copied from
/// the pieces of the old ones it covers; as it is when it is cut that way already. A column put
/// beside a frame's must be cut as the frame's columns are: polars aligns mismatched chunks by
/// copying every column into one.
pub fn chunked_as(column: Column, lengths: &[usize]) -> Result<Column> {
    let series = column.as_materialized_series();
    if series.chunk_lengths().eq(lengths.iter().copied()) {
        return Ok(column);
    }
    if lengths.iter().sum::<usize>() != series.len() {
        return Err(Error::Internal(format!(
            "chunks of {} rows asked of column {} of {}",
            lengths.iter().sum::<usize>(),
            series.name(),
            series.len()
        )));
    }
    let mut cutting = Cutting::new(column);
    for &rows in lengths {
        cutting.cut(rows);
    }
    cutting.finish()
}

/// A column being copied into new chunks: the old chunks not used up yet, and the new ones.
struct Cutting {
    name: PlSmallStr,
    dtype: DataType,
    old: VecDeque<ArrayRef>,
    new: Vec<ArrayRef>,
}

impl Cutting {
    fn new(column: Column) -> Cutting {
        let series = column.take_materialized_series();
        let (name, dtype) = (series.name().clone(), series.dtype().clone());
        let old = series.into_chunks().into();
        Cutting {
            name,
            dtype,
            old,
            new: Vec::new(),
        }
    }

    /// The next `rows` rows as one new chunk (fewer when the old ones run out), freeing each
    /// old chunk used up.
    fn cut(&mut self, rows: usize) {
        let piece: Vec<ArrayRef> = self.take_front(rows).into();
        if piece.is_empty() {
            // A chunk of no rows, as a frame may hold (a file without events): kept, so that the
            // column is cut exactly as asked.
            let empty = Series::new_empty(self.name.clone(), &self.dtype);
            self.new.extend(empty.rechunk().into_chunks());
            return;
        }
        // SAFETY: every chunk is one of the column's own (or a slice of one), so of `dtype`.
        let group = unsafe {
            Series::from_chunks_and_dtype_unchecked(self.name.clone(), piece, &self.dtype)
        };
        // A single piece (a whole old chunk, or a slice of one) is returned as is, not copied.
        self.new.extend(group.rechunk().into_chunks());
    }

    /// The first `rows` rows' old chunks (the last one sliced where they end), as a column of
    /// their own to cut.
    fn split_front(&mut self, rows: usize) -> Cutting {
        Cutting {
            name: self.name.clone(),
            dtype: self.dtype.clone(),
            old: self.take_front(rows),
            new: Vec::new(),
        }
    }

    /// The old chunks of the next `rows` rows (fewer when they run out), the last one sliced
    /// where they end and the rest of it left in front; no copy.
    fn take_front(&mut self, rows: usize) -> VecDeque<ArrayRef> {
        let (mut front, mut have) = (VecDeque::new(), 0);
        while have < rows
            && let Some(chunk) = self.old.pop_front()
        {
            let need = rows - have;
            if chunk.len() > need {
                self.old.push_front(chunk.sliced(need, chunk.len() - need));
                front.push_back(chunk.sliced(0, need));
            } else {
                front.push_back(chunk);
            }
            have += front.back().map_or(0, |c| c.len());
        }
        front
    }

    fn finish(self) -> Result<Column> {
        if self.old.iter().any(|c| !c.is_empty()) {
            return Err(Error::Internal(format!(
                "column {} cut short of its rows",
                self.name
            )));
        }
        // SAFETY: as in `cut`; rechunking keeps the dtype.
        let series =
            unsafe { Series::from_chunks_and_dtype_unchecked(self.name, self.new, &self.dtype) };
        Ok(series.into_column())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::key_column;

    /// `n` rows of a time, a categorical with nulls, a flag and a nullable code, stacked from
    /// pieces of `sizes` rows (cycled), as ingest stacks the chunks it read.
    fn pieces(n: usize, sizes: &[usize]) -> DataFrame {
        let whole = DataFrame::new(
            n,
            vec![
                Column::new(
                    "ts".into(),
                    (0..n as i64).map(|i| i * 7).collect::<Vec<_>>(),
                ),
                key_column(
                    "who",
                    (0..n)
                        .map(|i| (i % 5 != 0).then(|| format!("p{}", i % 13)))
                        .collect::<Vec<_>>(),
                )
                .expect("who"),
                Column::new("ok".into(), (0..n).map(|i| i % 3 == 0).collect::<Vec<_>>()),
                Column::new(
                    "code".into(),
                    (0..n as u32)
                        .map(|i| (i % 4 != 1).then_some(i))
                        .collect::<Vec<_>>(),
                ),
            ],
        )
        .expect("frame");
        let (mut out, mut at) = (None::<DataFrame>, 0);
        for size in sizes.iter().cycle() {
            if at >= n {
                break;
            }
            let len = (*size).min(n - at);
            // A copy of its own, as a chunk parsed apart.
            let mut piece = whole.slice(at as i64, len);
            piece.rechunk_mut();
            match out.as_mut() {
                None => out = Some(piece),
                Some(acc) => {
                    acc.vstack_mut(&piece).expect("stack");
                }
            }
            at += len;
        }
        out.unwrap_or_else(|| whole.clear())
    }

    /// The same rows, types and nulls; each stretch cut apart, its runs of small chunks copied
    /// into one of `rows` or more (fewer before a big chunk and at the stretch's end), its big
    /// chunks (half of `rows` or more) left as they are.
    #[test]
    fn a_compacted_frame_holds_the_same_rows_in_big_chunks() {
        let frame = pieces(1_000, &[1, 37, 64, 3, 100, 250]);
        assert!(frame.first_col_n_chunks() > 10);
        let out = compact(frame.clone(), 150, &[400, 599, 1]).expect("compacted");
        assert!(out.equals_missing(&frame));
        assert_eq!(out.schema(), frame.schema());
        // 400: 1+37+64+3, 100, and 195 of the 250; 599: the 250's other 55+1+37+64, 3, 100,
        // 250, 1+37+51 of a 64; 1: the last row.
        let lengths = [105, 100, 195, 157, 3, 100, 250, 89, 1];
        assert_eq!(chunk_lengths(&out), lengths);
        for c in out.columns() {
            let got: Vec<usize> = c.as_materialized_series().chunk_lengths().collect();
            assert_eq!(got, lengths, "{}", c.name());
        }
        assert!(compact(frame, 150, &[400, 599]).is_err());
        let empty = pieces(0, &[1]);
        assert_eq!(compact(empty, 150, &[]).expect("empty").height(), 0);
    }

    /// A column cut as a frame's is: the same values, the frame's chunk lengths.
    #[test]
    fn a_column_is_cut_as_asked() {
        let frame = pieces(300, &[7, 90, 11]);
        let column = frame.column("who").expect("who").clone();
        let cut = chunked_as(column.clone(), &[100, 0, 100, 100]).expect("cut");
        let got: Vec<usize> = cut.as_materialized_series().chunk_lengths().collect();
        assert_eq!(got, [100, 0, 100, 100]);
        assert!(cut.equals_missing(&column));
        assert_eq!(cut.dtype(), column.dtype());
        assert!(chunked_as(column.clone(), &[100, 100]).is_err());
        assert!(chunked_as(column, &[100, 100, 101]).is_err());
    }
}
