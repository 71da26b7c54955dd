//! The access rows of one entity kind reduced to one [`Cell`] per entity and local day: what the
//! enumeration questions need from that day, and nothing that grows with its events except the
//! set of accounts touched (a bitmap, usually one account).

use std::num::NonZeroU64;

use rayon::prelude::*;
use roaring::RoaringBitmap;

use super::entities::Entities;
use crate::normalize::TimeParser;
use crate::normalize::schema::HOUR_MS;

/// The accounts one cell touched. Most cells are a customer reading its own account: one code,
/// no bitmap (a bitmap of one value costs a heap allocation and ~40 bytes more).
#[derive(Debug, Clone, PartialEq)]
pub enum Accounts {
    One(u32),
    Many(RoaringBitmap),
}

impl Accounts {
    /// From codes sorted and without repeats (at least one).
    fn from_sorted(codes: &[u32]) -> Accounts {
        match codes {
            [one] => Accounts::One(*one),
            _ => Accounts::Many(
                RoaringBitmap::from_sorted_iter(codes.iter().copied()).unwrap_or_default(),
            ),
        }
    }

    pub fn len(&self) -> u64 {
        match self {
            Accounts::One(_) => 1,
            Accounts::Many(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds these accounts to `seen`; returns how many were not in it yet.
    pub fn add_to(&self, seen: &mut RoaringBitmap) -> u64 {
        match self {
            Accounts::One(a) => u64::from(seen.insert(*a)),
            Accounts::Many(b) => {
                let new = b.difference_len(seen);
                *seen |= b;
                new
            }
        }
    }

    pub(super) fn union(self, other: Accounts) -> Accounts {
        let mut all = match self {
            Accounts::One(a) => RoaringBitmap::from_iter([a]),
            Accounts::Many(b) => b,
        };
        other.add_to(&mut all);
        match all.len() {
            1 => Accounts::One(all.min().unwrap_or_default()),
            _ => Accounts::Many(all),
        }
    }

    /// Bytes when stored: the code, or the bitmap in roaring's portable format.
    pub fn stored_bytes(&self) -> usize {
        match self {
            Accounts::One(_) => 4,
            Accounts::Many(b) => b.serialized_size(),
        }
    }
}

/// An account's number (see [`crate::normalize::columns::account_number`]) in 8 bytes, where
/// `Option<i64>` takes 16: the reduction holds one for every name of the run's symbols beside
/// each group's working set (9.4M names by the last group at 300.15M events, where each group's
/// peak rose with them). Numbers have at most 18 digits and no sign, so one more than a number is
/// never zero. Ordered as the numbers, none first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Number(Option<NonZeroU64>);

impl Number {
    /// A negative number (which no account id gives) counts as none.
    pub(crate) fn of(number: Option<i64>) -> Number {
        let above = number.and_then(|n| u64::try_from(n).ok()?.checked_add(1));
        Number(above.and_then(NonZeroU64::new))
    }

    pub(crate) fn get(self) -> Option<i64> {
        self.0.and_then(|n| i64::try_from(n.get() - 1).ok())
    }
}

/// The accounts a group's rows name. A row holds its account's place among them (see
/// [`Row::account`]), so what is kept per account is sized to the group's accounts, not to
/// every name of the run: at 300.15M events a group named 2.7–2.9M of up to 9.4M names, and a
/// number (8 bytes) and a rank (4) per name stood at the records stage's height (probes).
#[derive(Debug, Default)]
pub(super) struct GroupAccounts {
    /// Their symbols, ascending: places keep the symbols' order.
    pub codes: Vec<u32>,
    /// Their numbers, by place.
    pub number: Vec<Number>,
}

impl GroupAccounts {
    /// The symbol of the account at `place`.
    pub fn code(&self, place: u32) -> u32 {
        self.codes[place as usize]
    }
}

/// A request to a numbered account, as the end of a walk step (see [`super::Walk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Numbered {
    pub ts: i64,
    pub number: i64,
    pub account: u32,
}

/// One entity on one local day.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    pub entity: u32,
    pub day: i64,
    pub events: u64,
    /// Rows in which the principal read its own account (a crowd behind one address).
    pub own_rows: u64,
    pub first: i64,
    pub last: i64,
    pub accounts: Accounts,
    /// Most distinct accounts in one UTC hour lying wholly inside the day.
    pub peak_hour: u64,
    /// UTC hours the day shares with a neighbouring day (zones whose offset is not a whole
    /// number of hours), with their accounts, for the merge to join: empty elsewhere.
    pub split_hours: Vec<(i64, RoaringBitmap)>,
    /// Accounts reached by a walk step inside the day.
    pub walk: RoaringBitmap,
    /// The day's first and last numbered requests: a step from one day's last to the next
    /// active day's first is found when cells are merged.
    pub first_numbered: Option<Numbered>,
    pub last_numbered: Option<Numbered>,
}

impl Cell {
    /// Bytes when stored: fixed fields, the account sets, the hours shared with a neighbour.
    pub fn stored_bytes(&self) -> usize {
        const FIXED: usize = 4 + 4 + 4 + 4 + 8 + 8 + 4 + 2 * 20;
        FIXED
            + self.accounts.stored_bytes()
            + if self.walk.is_empty() {
                0
            } else {
                self.walk.serialized_size()
            }
            + self
                .split_hours
                .iter()
                .map(|(_, b)| 8 + b.serialized_size())
                .sum::<usize>()
    }

    /// Adds a cell of the same entity and day read from another partition. Counts, sets and
    /// bounds join exactly; the busiest hour and the walk are exact only when one partition
    /// holds the entity's whole day (see `docs/scale.md`).
    pub(super) fn absorb(&mut self, other: Cell) {
        self.events += other.events;
        self.own_rows += other.own_rows;
        self.first = self.first.min(other.first);
        self.last = self.last.max(other.last);
        let both = |a: Option<Numbered>, b: Option<Numbered>, later: bool| match (a, b) {
            (Some(x), Some(y)) => Some(if (y.ts > x.ts) == later { y } else { x }),
            (x, y) => x.or(y),
        };
        self.first_numbered = both(self.first_numbered, other.first_numbered, false);
        self.last_numbered = both(self.last_numbered, other.last_numbered, true);
        let accounts = std::mem::replace(&mut self.accounts, Accounts::One(0));
        self.accounts = accounts.union(other.accounts);
        self.peak_hour = self.peak_hour.max(other.peak_hour);
        self.split_hours.extend(other.split_hours);
        self.walk |= other.walk;
    }
}

/// One access row of the kind being reduced; its entity is the group it sits in (see
/// [`Grouped`]), which keeps it at 16 bytes for the counting sort that scatters it. Before the
/// rows are in time order the same 16 bytes are their sort key (see [`Row::key`]), rewritten in
/// place: the instant, the account (its top bit: the principal is the account itself) and the
/// row's index among the selected rows, which each kind reads its entity codes by. The account
/// is its place among the group's ([`GroupAccounts`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Row {
    pub ts: i64,
    tagged: u32,
    pub index: u32,
}

/// The top bit of [`Row`]'s account: whether the principal read its own account.
pub(super) const OWN: u32 = 1 << 31;

impl Row {
    /// A sort key in a row's place: ordered by (`since`, `rank`, `index`), derived `Ord`
    /// being field by field.
    pub fn key(since: i64, rank: u32, index: u32) -> Row {
        Row {
            ts: since,
            tagged: rank,
            index,
        }
    }

    /// The key's row, in place: `account` must be below [`OWN`].
    pub fn set(&mut self, ts: i64, account: u32, own: bool) {
        self.ts = ts;
        self.tagged = account | if own { OWN } else { 0 };
    }

    /// The account's place among the group's ([`GroupAccounts`]).
    pub fn account(&self) -> u32 {
        self.tagged & !OWN
    }

    pub fn own(&self) -> bool {
        self.tagged & OWN != 0
    }
}

/// Rows grouped by entity, each entity's rows sorted by (instant, account number, frame order):
/// the order in which [`crate::detect::reach`] reads them, so a walk is the same walk.
pub(super) struct Grouped {
    pub rows: Vec<Row>,
    /// `(entity, first row)` of each entity with rows, by entity; its rows end where the next
    /// one's begin.
    pub starts: Vec<(u32, usize)>,
}

impl Grouped {
    fn rows_of(&self, i: usize) -> &[Row] {
        let end = self.starts.get(i + 1).map_or(self.rows.len(), |s| s.1);
        &self.rows[self.starts[i].1..end]
    }
}

/// The entities of `grouped`, whose rows name `accounts`. Entities are cut into a
/// few runs of about equal rows per thread and reduced side by side; an entity of one account
/// becomes its [`super::Single`] as soon as its cells are made, so a customer's days never wait
/// as cells (they were 97 % of them).
pub(super) fn entities(
    grouped: &Grouped,
    accounts: &GroupAccounts,
    time: &TimeParser,
    walk: super::Walk,
) -> Entities {
    let pieces = 4 * rayon::current_num_threads();
    let total = grouped.rows.len().max(1);
    let mut bounds = vec![0];
    for (i, &(_, first)) in grouped.starts.iter().enumerate() {
        if first * pieces / total >= bounds.len() {
            bounds.push(i);
        }
    }
    bounds.push(grouped.starts.len());
    bounds.dedup();
    let runs: Vec<Entities> = bounds
        .par_windows(2)
        .map(|w| {
            let mut out = Entities::default();
            let mut entity_cells = Vec::new();
            let mut scratch = Vec::new();
            for i in w[0]..w[1] {
                let (entity, rows) = (grouped.starts[i].0, grouped.rows_of(i));
                let mut start = 0;
                while start < rows.len() {
                    let day = time.local_day(rows[start].ts);
                    let end = start + rows[start..].partition_point(|r| r.ts < day.end);
                    let rows = &rows[start..end];
                    let at = |i: usize| rows[i];
                    let cell = cell(entity, (rows.len(), at), accounts, day, walk, &mut scratch);
                    entity_cells.push(cell);
                    start = end;
                }
                out.push(&mut entity_cells);
            }
            out
        })
        .collect();
    Entities::concat(runs)
}

/// The entities of rows placed as indices into `rows` (grouped by entity as in [`Grouped`]):
/// each entity's days are found on its indices, then reduced side by side through them, so none
/// of its rows is copied. A day's copy stood per thread over the records stage's height at
/// 300.15M events, where one key held 5.8M of a group's 12M rows (probes).
pub(super) fn entities_placed(
    rows: &[Row],
    placed: &[u32],
    starts: &[(u32, usize)],
    accounts: &GroupAccounts,
    time: &TimeParser,
    walk: super::Walk,
) -> Entities {
    let mut out = Entities::default();
    let mut entity_cells = Vec::new();
    for (i, &(entity, first)) in starts.iter().enumerate() {
        let end = starts.get(i + 1).map_or(placed.len(), |s| s.1);
        let mut of = &placed[first..end];
        let mut days = Vec::new();
        while let Some(&j) = of.first() {
            let day = time.local_day(rows[j as usize].ts);
            let (today, rest) = of.split_at(of.partition_point(|&j| rows[j as usize].ts < day.end));
            days.push((day, today));
            of = rest;
        }
        days.into_par_iter()
            .map_init(Vec::new, |scratch, (day, of)| {
                let at = |i: usize| rows[of[i] as usize];
                cell(entity, (of.len(), at), accounts, day, walk, scratch)
            })
            .collect_into_vec(&mut entity_cells);
        out.push(&mut entity_cells);
    }
    out
}

/// The cell of `entity`'s `n` rows of `day` in order, row `i` being `at(i)`.
fn cell(
    entity: u32,
    (n, at): (usize, impl Fn(usize) -> Row),
    accounts: &GroupAccounts,
    day: crate::normalize::time::LocalDay,
    walk: super::Walk,
    scratch: &mut Vec<u32>,
) -> Cell {
    // The distinct accounts of some rows, in `scratch` (one buffer for every cell of a run),
    // as symbols: places sort as their symbols do.
    let sorted = |rows: std::ops::Range<usize>, scratch: &mut Vec<u32>| {
        scratch.clear();
        scratch.extend(rows.map(|i| at(i).account()));
        scratch.sort_unstable();
        scratch.dedup();
        scratch.iter_mut().for_each(|a| *a = accounts.code(*a));
    };
    sorted(0..n, scratch);
    let mut c = Cell {
        entity,
        day: day.day,
        events: n as u64,
        own_rows: (0..n).filter(|&i| at(i).own()).count() as u64,
        first: at(0).ts,
        last: at(n - 1).ts,
        accounts: Accounts::from_sorted(scratch),
        peak_hour: 0,
        split_hours: Vec::new(),
        walk: RoaringBitmap::new(),
        first_numbered: None,
        last_numbered: None,
    };
    let mut start = 0;
    while start < n {
        let h = at(start).ts.div_euclid(HOUR_MS);
        let end = (start + 1..n)
            .find(|&i| at(i).ts.div_euclid(HOUR_MS) != h)
            .unwrap_or(n);
        sorted(start..end, scratch);
        start = end;
        if h * HOUR_MS >= day.start && (h + 1) * HOUR_MS <= day.end {
            c.peak_hour = c.peak_hour.max(scratch.len() as u64);
        } else {
            let set = RoaringBitmap::from_sorted_iter(scratch.iter().copied()).unwrap_or_default();
            c.split_hours.push((h, set));
        }
    }
    let numbered = (0..n).map(&at).filter_map(|r| {
        let place = r.account();
        accounts.number[place as usize]
            .get()
            .map(|number| Numbered {
                ts: r.ts,
                number,
                account: accounts.code(place),
            })
    });
    let mut prev: Option<Numbered> = None;
    for n in numbered {
        if let Some(p) = prev {
            if is_step(p, n, walk) {
                c.walk.insert(n.account);
            }
        } else {
            c.first_numbered = Some(n);
        }
        prev = Some(n);
    }
    c.last_numbered = prev;
    c
}

/// `to` continues a sequential walk from `from`.
pub(super) fn is_step(from: Numbered, to: Numbered, walk: super::Walk) -> bool {
    (1..=walk.max_step).contains(&(to.number - from.number)) && to.ts - from.ts <= walk.max_gap_ms
}
