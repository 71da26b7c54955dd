//! One entity kind's reduced entities: the cells of those that touched several accounts, one
//! [`Single`] record for each of the rest. Both lists are sorted by entity and no entity is in
//! both, so a merge can walk them side by side.

use std::collections::BTreeSet;

use itertools::{EitherOrBoth, Itertools};
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
    /// No record at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.singles.is_empty()
    }

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

    /// Parts made side by side over ranges of entities, in entity order, as one.
    pub(super) fn concat(parts: Vec<Entities>) -> Entities {
        let mut all = Entities::default();
        for mut part in parts {
            all.cells.append(&mut part.cells);
            all.singles.append(&mut part.singles);
        }
        all
    }

    /// The records of the entities up to `bound` (all, when `None`), taken from the front.
    pub(crate) fn split_through(&mut self, bound: Option<u32>) -> Entities {
        fn front<T>(list: &mut Vec<T>, n: usize) -> Vec<T> {
            match n == list.len() {
                true => std::mem::take(list),
                false => list.drain(..n).collect(),
            }
        }
        let cells = bound.map_or(self.cells.len(), |b| {
            self.cells.partition_point(|c| c.entity <= b)
        });
        let singles = bound.map_or(self.singles.len(), |b| {
            self.singles.partition_point(|s| s.entity <= b)
        });
        Entities {
            cells: front(&mut self.cells, cells),
            singles: front(&mut self.singles, singles),
        }
    }

    /// Each entity's part, by entity (no entity is both a single and cells).
    fn parts(self) -> Vec<Part> {
        let singles = self.singles.into_iter().map(Part::Single);
        let cells = parts_of(self.cells).into_iter().map(Part::Cells);
        singles
            .merge_by(cells, |s, c| s.entity() < c.entity())
            .collect()
    }

    /// Joins another partition's entities; returns them and how many (entity, day) cells both
    /// held (see [`Cell::absorb`]). Both sides are walked in entity order; an entity that is
    /// one and the same account on both sides stays one record (a customer's nights) instead of
    /// turning into cells and back. Folding 24 runs of whole days of the 8.7M-event export one
    /// after another took 0.92–1.07 s of merging this way, 1.72–1.79 s sorting both sides' parts
    /// together and joining every shared entity as cells.
    pub(crate) fn merge(self, other: Entities) -> (Entities, u64) {
        // At most both sides' lengths (shared entities join), and made exact below: grown a
        // push at a time, the lists of the 85.9M-event state's merged records held up to twice
        // their length.
        let mut out = Entities {
            cells: Vec::with_capacity(self.cells.len() + other.cells.len()),
            singles: Vec::with_capacity(self.singles.len() + other.singles.len()),
        };
        let mut overlapping = 0;
        let pairs = self
            .parts()
            .into_iter()
            .merge_join_by(other.parts(), |a, b| a.entity().cmp(&b.entity()));
        for pair in pairs {
            match pair {
                EitherOrBoth::Left(Part::Single(s)) | EitherOrBoth::Right(Part::Single(s)) => {
                    out.singles.push(s)
                }
                EitherOrBoth::Left(Part::Cells(mut c))
                | EitherOrBoth::Right(Part::Cells(mut c)) => out.cells.append(&mut c),
                EitherOrBoth::Both(Part::Single(a), Part::Single(b)) if a.account == b.account => {
                    match a.join(&b) {
                        Some((joined, shared)) => {
                            out.singles.push(joined);
                            overlapping += shared;
                        }
                        None => overlapping += out.join_cells(Part::Single(a), Part::Single(b)),
                    }
                }
                EitherOrBoth::Both(a, b) => overlapping += out.join_cells(a, b),
            }
        }
        out.cells.shrink_to_fit();
        out.singles.shrink_to_fit();
        (out, overlapping)
    }

    /// Adds one entity's parts of two partitions as cells (or one record, if they make one);
    /// returns how many days both held.
    fn join_cells(&mut self, a: Part, b: Part) -> u64 {
        let mut cells = a.into_cells();
        cells.extend(b.into_cells());
        cells.sort_by_key(|c| c.day);
        let mut overlapping = 0;
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
        self.push(&mut joined);
        overlapping
    }

    /// These entities without the days `drop` names. An entity left with one account on every
    /// remaining day becomes one record again. Done in place: rebuilt part by part into lists
    /// grown a push at a time, a night over the 85.9M-event state spent 3.4 % of its page
    /// faults here, on every batch of stored records its dropped days touch.
    pub(crate) fn without_days(self, drop: &BTreeSet<i64>) -> Entities {
        let Entities {
            mut cells,
            mut singles,
        } = self;
        singles.retain_mut(|s| {
            s.days.retain(|d| !drop.contains(&i64::from(d.day)));
            !s.days.is_empty()
        });
        cells.retain(|c| !drop.contains(&c.day));
        let made: Vec<(usize, Option<Single>)> = (cells.chunk_by(|a, b| a.entity == b.entity))
            .map(|group| (group.len(), Single::of(group)))
            .collect();
        if made.iter().all(|(_, single)| single.is_none()) {
            return Entities { cells, singles };
        }
        let (mut kept, mut again) = (Vec::with_capacity(cells.len()), Vec::new());
        let mut rest = cells.into_iter();
        for (n, single) in made {
            let group = rest.by_ref().take(n);
            match single {
                Some(single) => {
                    again.push(single);
                    group.for_each(std::mem::drop);
                }
                None => kept.extend(group),
            }
        }
        // No entity is in both lists: `again` comes from cells.
        let singles = (singles.into_iter())
            .merge_by(again, |a, b| a.entity < b.entity)
            .collect();
        Entities {
            cells: kept,
            singles,
        }
    }

    /// Copies of the records of the entities `keep` holds.
    pub(crate) fn only(&self, keep: impl Fn(u32) -> bool) -> Entities {
        Entities {
            cells: (self.cells.iter())
                .filter(|c| keep(c.entity))
                .cloned()
                .collect(),
            singles: (self.singles.iter())
                .filter(|s| keep(s.entity))
                .cloned()
                .collect(),
        }
    }

    /// Copies of these records of the entities `of` has records of, and those entities: how a
    /// night's few records join the stored records read a batch of entities at a time. Only this
    /// side's records in the batch's range of entities are looked at.
    pub(crate) fn of_entities_in(&self, of: &Entities) -> (Entities, Vec<u32>) {
        let entities = |records: &Entities| {
            let mut all = super::kind_entities(records);
            all.sort_unstable();
            all.dedup();
            all
        };
        let theirs = entities(of);
        let (Some(&low), Some(&high)) = (theirs.first(), theirs.last()) else {
            return (Entities::default(), Vec::new());
        };
        let held = |e: u32| theirs.binary_search(&e).is_ok();
        let cells = self.cells.partition_point(|c| c.entity < low)
            ..self.cells.partition_point(|c| c.entity <= high);
        let singles = self.singles.partition_point(|s| s.entity < low)
            ..self.singles.partition_point(|s| s.entity <= high);
        let mine = Entities {
            cells: (self.cells[cells].iter())
                .filter(|c| held(c.entity))
                .cloned()
                .collect(),
            singles: (self.singles[singles].iter())
                .filter(|s| held(s.entity))
                .cloned()
                .collect(),
        };
        let taken = entities(&mine);
        (mine, taken)
    }

    /// `f` over each entity's cells, in parallel, for the entities `keep` accepts: `(entity,
    /// result)`, in no particular order. `single` is `f` for a single record, given the record
    /// rather than its cells: what they give can be had without making them (see
    /// `profile::of_single`). The entities kept are listed first, so the results are written
    /// once into a list sized for them: a filtered parallel extend gathered the singles' results
    /// in pieces and then copied them into a list grown for them, which with the profiles'
    /// other copies set enumeration's peak (`Reduced::profiles_by_name`).
    pub(super) fn each<T: Send>(
        &self,
        keep: impl Fn(u32) -> bool + Sync,
        f: impl Fn(&[Cell]) -> T + Sync,
        single: impl Fn(&Single) -> T + Sync,
    ) -> Vec<(u32, T)> {
        let chunks: Vec<&[Cell]> = self
            .cells
            .chunk_by(|a, b| a.entity == b.entity)
            .filter(|c| keep(c[0].entity))
            .collect();
        let singles: Vec<&Single> = (self.singles.par_iter())
            .filter(|s| keep(s.entity))
            .collect();
        let mut out = Vec::with_capacity(chunks.len() + singles.len());
        out.par_extend(chunks.par_iter().map(|c| (c[0].entity, f(c))));
        out.par_extend(singles.par_iter().map(|s| (s.entity, single(s))));
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
