//! Counting helpers over dictionary codes: dense indices for codes, and "seen in this group
//! yet?" tables that need no clearing between groups.

use crate::frame::{NULL, dictionary};

/// Dense indices 0, 1, 2… for dictionary codes in order of first appearance, from a table
/// indexed by code: no hashing per row, and the dictionary holds a few strings per event at most,
/// so the table stays a fraction of the event columns.
pub(super) struct Dense {
    index_of: Vec<u32>,
    /// Dictionary code of each index.
    pub(super) codes: Vec<u32>,
}

impl Dense {
    /// For codes of the run's dictionary of names.
    pub(super) fn new() -> Dense {
        Dense {
            index_of: vec![NULL; dictionary().len()],
            codes: Vec::new(),
        }
    }

    /// The index of `code` (not [`NULL`]), assigned if new.
    pub(super) fn index(&mut self, code: u32) -> u32 {
        let c = code as usize;
        if c >= self.index_of.len() {
            self.index_of.resize(c + 1, NULL);
        }
        if self.index_of[c] == NULL {
            self.index_of[c] = self.codes.len() as u32;
            self.codes.push(code);
        }
        self.index_of[c]
    }
}

/// The kinds of group [`Stamps`] tracks at once.
#[derive(Clone, Copy)]
pub(super) enum Table {
    Total,
    Day,
    Hour,
    Walk,
}

/// "Seen in this group yet?" per account, for four kinds of group at once. A group is a stamp
/// value; starting a new group is taking the next stamp, so nothing is cleared between groups.
pub(super) struct Stamps {
    seen: [Vec<u32>; 4],
    stamp: u32,
}

impl Stamps {
    pub(super) fn new(accounts: usize) -> Stamps {
        Stamps {
            seen: std::array::from_fn(|_| vec![0; accounts]),
            stamp: 0,
        }
    }

    /// Makes room for the stamps of an entity with `rows` rows (at most a day, an hour and a
    /// walk group per row, plus its own), so the counter never wraps inside a group: the tables
    /// are cleared instead, between entities, when it would.
    pub(super) fn reserve(&mut self, rows: usize) {
        if u64::from(u32::MAX - self.stamp) < 3 * rows as u64 + 2 {
            for t in &mut self.seen {
                t.fill(0);
            }
            self.stamp = 0;
        }
    }

    /// A stamp no group has used yet.
    pub(super) fn next(&mut self) -> u32 {
        self.stamp += 1;
        self.stamp
    }

    /// Marks account `a` in the group `stamp`; true if it was not marked yet.
    pub(super) fn mark(&mut self, table: Table, a: u32, stamp: u32) -> bool {
        let seen = &mut self.seen[table as usize][a as usize];
        let new = *seen != stamp;
        *seen = stamp;
        new
    }
}
