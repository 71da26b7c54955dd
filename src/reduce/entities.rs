//! One entity kind's reduced entities: the cells of those that touched several accounts, one
//! [`Single`] record for each of the rest. Both lists are sorted by entity and no entity is in
//! both, so a merge can walk them side by side.

use rayon::prelude::*;

use super::cells::Cell;
use super::single::Single;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Entities {
    /// Sorted by entity, then day.
    pub cells: Vec<Cell>,
    /// Sorted by entity.
    pub singles: Vec<Single>,
}

/// One entity's part of one partition.
enum Part {
    Single(Single),
    Cells(Vec<Cell>),
}

impl Part {
    fn entity(&self) -> u32 {
        match self {
            Part::Single(s) => s.entity,
            Part::Cells(c) => c[0].entity,
        }
    }

    fn into_cells(self) -> Vec<Cell> {
        match self {
            Part::Single(s) => s.cells(),
            Part::Cells(c) => c,
        }
    }
}

impl Entities {
    /// Adds one entity's cells (in day order), as its single record if it has one; leaves
    /// `cells` empty.
    pub(super) fn push(&mut self, cells: &mut Vec<Cell>) {
        match Single::of(cells) {
            Some(single) => {
                self.singles.push(single);
                cells.clear();
            }
            None => self.cells.append(cells),
        }
    }

    fn parts(self) -> Vec<Part> {
        let mut parts: Vec<Part> = self.singles.into_iter().map(Part::Single).collect();
        parts.extend(parts_of(self.cells).into_iter().map(Part::Cells));
        parts
    }

    /// Joins another partition's entities; returns them and how many (entity, day) cells both
    /// held (see [`Cell::absorb`]).
    pub(super) fn merge(self, other: Entities) -> (Entities, u64) {
        let mut parts = self.parts();
        parts.extend(other.parts());
        parts.sort_by_key(Part::entity);
        let mut out = Entities::default();
        let mut overlapping = 0;
        let mut parts = parts.into_iter().peekable();
        while let Some(part) = parts.next() {
            let entity = part.entity();
            if parts.peek().is_none_or(|p| p.entity() != entity) {
                match part {
                    Part::Single(s) => out.singles.push(s),
                    Part::Cells(c) => out.cells.extend(c),
                }
                continue;
            }
            let mut cells = part.into_cells();
            while let Some(next) = parts.next_if(|p| p.entity() == entity) {
                cells.extend(next.into_cells());
            }
            cells.sort_by_key(|c| c.day);
            let mut joined: Vec<Cell> = Vec::with_capacity(cells.len());
            for cell in cells {
                match joined.last_mut() {
                    Some(last) if last.day == cell.day => {
                        last.absorb(cell);
                        overlapping += 1;
                    }
                    _ => joined.push(cell),
                }
            }
            out.push(&mut joined);
        }
        (out, overlapping)
    }

    /// `f` over each entity's cells (a record's cells made for the call), in parallel, for the
    /// entities `keep` accepts: `(entity, result)`, in no particular order.
    pub(super) fn each<T: Send>(
        &self,
        keep: impl Fn(u32) -> bool + Sync,
        f: impl Fn(&[Cell]) -> T + Sync,
    ) -> Vec<(u32, T)> {
        let chunks: Vec<&[Cell]> = self
            .cells
            .chunk_by(|a, b| a.entity == b.entity)
            .filter(|c| keep(c[0].entity))
            .collect();
        let mut out: Vec<(u32, T)> = chunks.par_iter().map(|c| (c[0].entity, f(c))).collect();
        out.par_extend(
            self.singles
                .par_iter()
                .filter(|s| keep(s.entity))
                .map(|s| (s.entity, f(&s.cells()))),
        );
        out
    }
}

/// Cells sorted by entity, cut into one vector per entity.
fn parts_of(cells: Vec<Cell>) -> Vec<Vec<Cell>> {
    let mut parts: Vec<Vec<Cell>> = Vec::new();
    for cell in cells {
        match parts.last_mut() {
            Some(p) if p[0].entity == cell.entity => p.push(cell),
            _ => parts.push(vec![cell]),
        }
    }
    parts
}
