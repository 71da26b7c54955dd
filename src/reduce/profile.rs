//! What an entity did, in the numbers the enumeration questions need, and how they come out of
//! its cells: each day's accounts joined in day order give the reach, the accounts new each day
//! and the spread of first touches exactly; the busiest hour and the walks join the pieces the
//! cells kept at their edges.

use std::collections::BTreeMap;

use roaring::RoaringBitmap;

use super::cells::{Cell, is_step};
use super::single::{Single, SingleDay};
use crate::normalize::schema::DAY_MS;

/// What one entity did, in the numbers the enumeration questions need.
///
/// Enumeration holds one for every entity of a kind at once: 5.2M principals at 300.15M events.
/// Counts of distinct accounts (and of days, which are fewer) are held in 4 bytes, as the
/// accounts are numbered in 32-bit codes; counts of rows stay in 8. With the days in a boxed
/// slice, a profile is 96 bytes instead of 128.
#[derive(Debug, Default, Clone)]
pub struct Profile {
    pub events: u64,
    /// Distinct accounts over the export.
    pub total: u32,
    /// Sum over days of that day's distinct accounts.
    pub sum_daily: u64,
    pub active_days: u32,
    /// (local day, distinct accounts that day), in day order; only for entities with at least
    /// `detail_from` accounts (see [`crate::detect::reach::AccessRows::profiles`]).
    pub days: Box<[(i64, u64)]>,
    /// Over how many days the reach was gathered: the perplexity `exp(H)` of the distribution of
    /// first touches over local days. 1 for a one-night burst, ≈ n for n equal days; a few busy
    /// days among many quiet ones count as a few. "Low and slow" needs this, not active days.
    pub spread_days: f64,
    /// The largest share of the reach first touched on one local day.
    pub busiest_day_share: f64,
    /// Rows in which the principal read its own account: an address whose rows are nearly all
    /// like that is a crowd of customers behind one address (a carrier NAT), not one reader.
    pub own_rows: u64,
    /// First and last access instants.
    pub first: i64,
    pub last: i64,
    /// Distinct accounts reached by a step to the next account number (see [`Walk`]).
    pub walk_steps: u32,
    /// Most distinct accounts in any single UTC hour.
    pub peak_hour: u32,
    /// Distinct accounts other than the entity itself (a customer principal reading others).
    pub others: u32,
    /// The entity's own id is also a target account (a customer as a token subject).
    pub is_account: bool,
}

impl Profile {
    /// Distinct accounts over the export ÷ sum of daily distinct accounts.
    pub fn new_ratio(&self) -> f64 {
        self.total as f64 / self.sum_daily.max(1) as f64
    }
}

/// What counts as a step of a sequential walk.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    /// The next account number is 1..=`max_step` above the previous one of the same entity...
    pub max_step: i64,
    /// ...within this many milliseconds.
    pub max_gap_ms: i64,
}

/// Accumulates first touches per local day (in day order) into [`Profile::spread_days`].
#[derive(Default)]
pub(crate) struct Spread {
    day: Option<i64>,
    n: u64,
    /// Σ n·ln n over closed days, and the largest n.
    sum: f64,
    max: u64,
}

impl Spread {
    pub(crate) fn add(&mut self, day: i64, n: u64) {
        if self.day != Some(day) {
            self.close();
            self.day = Some(day);
        }
        self.n += n;
    }

    fn close(&mut self) {
        if self.n > 0 {
            self.sum += self.n as f64 * (self.n as f64).ln();
            self.max = self.max.max(self.n);
        }
        self.n = 0;
    }

    /// (perplexity, busiest day's share): `H = ln T − Σ n ln n / T`.
    pub(crate) fn finish(mut self, total: u64) -> (f64, f64) {
        self.close();
        if total == 0 {
            return (0.0, 0.0);
        }
        let t = total as f64;
        ((t.ln() - self.sum / t).exp(), self.max as f64 / t)
    }
}

/// New accounts per day of one entity's cells: `(day, accounts first touched that day)`.
pub(super) fn first_days(cells: &[Cell]) -> Vec<(i64, u64)> {
    let mut seen = RoaringBitmap::new();
    cells
        .iter()
        .filter_map(|c| {
            let new = c.accounts.add_to(&mut seen);
            (new > 0).then_some((c.day, new))
        })
        .collect()
}

/// The profile of one entity's cells (in day order). Day detail, busiest hour and walks only
/// with at least `detail_from` accounts, as [`crate::detect::reach::AccessRows::profiles`] does.
pub(super) fn profile(cells: &[Cell], walk: Walk, detail_from: u64) -> Profile {
    let mut p = Profile {
        first: i64::MAX,
        last: i64::MIN,
        ..Profile::default()
    };
    let mut seen = RoaringBitmap::new();
    let mut spread = Spread::default();
    let mut day_counts = Vec::with_capacity(cells.len());
    for c in cells {
        p.events += c.events;
        p.own_rows += c.own_rows;
        p.first = p.first.min(c.first);
        p.last = p.last.max(c.last);
        let day_n = c.accounts.len();
        p.sum_daily += day_n;
        day_counts.push((c.day, day_n));
        spread.add(c.day, c.accounts.add_to(&mut seen));
    }
    p.total = count(seen.len());
    p.active_days = count(cells.len() as u64);
    p.others = p.total - u32::from(seen.contains(cells[0].entity));
    (p.spread_days, p.busiest_day_share) = spread.finish(p.total.into());
    if u64::from(p.total) >= detail_from {
        p.days = day_counts.into_boxed_slice();
        p.peak_hour = count(peak_hour(cells));
        p.walk_steps = count(walk_steps(cells, walk));
    }
    p
}

/// [`profile`] of a single record's cells without making them: one account, touched on the
/// first day, one a day, so no walk and a busiest hour of one. At 85.9M events the records hold
/// 2.98M singles with 28.3M days, each turned into its cells (a `Vec` of cells with their empty
/// bitmaps) for its profile: enumeration took 3.46 → 3.15 s without that (CPU 5.2 → 4.7 s), at
/// 8.7M 0.34 → 0.32 s (`docs/performance.md`, twenty-third session).
/// `tests::singles_profile_as_their_cells` holds it to [`profile`].
pub(super) fn of_single(s: &Single, walk: Walk, detail_from: u64) -> Profile {
    let (Some(day0), true) = (s.days.first(), detail_from > 1) else {
        return profile(&s.cells(), walk, detail_from);
    };
    let base = |d: &SingleDay| (i64::from(d.day) - 1) * DAY_MS;
    let mut spread = Spread::default();
    spread.add(i64::from(day0.day), 1);
    let (spread_days, busiest_day_share) = spread.finish(1);
    Profile {
        events: s.days.iter().map(|d| u64::from(d.events)).sum(),
        total: 1,
        sum_daily: s.days.len() as u64,
        active_days: count(s.days.len() as u64),
        days: Box::default(),
        spread_days,
        busiest_day_share,
        own_rows: s.own_rows(),
        first: (s.days.iter())
            .map(|d| base(d) + i64::from(d.first))
            .min()
            .unwrap_or(i64::MAX),
        last: (s.days.iter())
            .map(|d| base(d) + i64::from(d.last))
            .max()
            .unwrap_or(i64::MIN),
        walk_steps: 0,
        peak_hour: 0,
        others: u32::from(s.account != s.entity),
        is_account: false,
    }
}

/// A count of distinct accounts (or of days) in a [`Profile`]: never past the 2³² − 1 account
/// codes there are, so never saturated.
fn count(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// [`first_days`] of a single record: its one account, new on its first day.
pub(super) fn first_days_of_single(s: &Single) -> Vec<(i64, u64)> {
    s.days
        .first()
        .map(|d| vec![(i64::from(d.day), 1)])
        .unwrap_or_default()
}

/// The busiest hour: inside a day, or an hour two days share joined from both.
fn peak_hour(cells: &[Cell]) -> u64 {
    let mut peak = cells.iter().map(|c| c.peak_hour).max().unwrap_or(0);
    let mut split: BTreeMap<i64, RoaringBitmap> = BTreeMap::new();
    for (h, set) in cells.iter().flat_map(|c| &c.split_hours) {
        *split.entry(*h).or_default() |= set;
    }
    for set in split.values() {
        peak = peak.max(set.len());
    }
    peak
}

/// Distinct accounts reached by a walk step: inside a day, or from one active day's last
/// numbered request to the next numbered one.
fn walk_steps(cells: &[Cell], walk: Walk) -> u64 {
    let mut reached = RoaringBitmap::new();
    let mut prev = None;
    for c in cells {
        reached |= &c.walk;
        if let (Some(from), Some(to)) = (prev, c.first_numbered)
            && is_step(from, to, walk)
        {
            reached.insert(to.account);
        }
        prev = c.last_numbered.or(prev);
    }
    reached.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// Enumeration holds a profile for every entity of a kind at once, with its code: 104 bytes
    /// each (136 with 8-byte counts and a `Vec` of days).
    #[test]
    fn a_held_profile_is_104_bytes() {
        assert_eq!(std::mem::size_of::<(u32, Profile)>(), 104);
    }

    /// A single record's profile and first touches, had directly, are its cells'.
    #[test]
    fn singles_profile_as_their_cells() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let walk = Walk {
            max_step: 3,
            max_gap_ms: 60_000,
        };
        for round in 0..200 {
            let mut day = rng.random_range(-40..20_000);
            let days: Vec<SingleDay> = (0..rng.random_range(1..12))
                .map(|_| {
                    day += rng.random_range(1..5);
                    let first = rng.random_range(0..2 * DAY_MS as u32);
                    SingleDay {
                        day,
                        first,
                        last: first + rng.random_range(0..1000),
                        events: rng.random_range(1..500),
                        own: rng.random_range(0..3),
                    }
                })
                .collect();
            let account = rng.random_range(0..4);
            let s = Single {
                entity: rng.random_range(0..4),
                account,
                number: (round % 3 != 0).then_some(i64::from(account) + 1000),
                days,
            };
            let cells = s.cells();
            for detail_from in [0, 1, 2, 20] {
                let (direct, made) = (
                    of_single(&s, walk, detail_from),
                    profile(&cells, walk, detail_from),
                );
                assert_eq!(
                    format!("{direct:?}"),
                    format!("{made:?}"),
                    "{s:?} from {detail_from}"
                );
            }
            assert_eq!(first_days_of_single(&s), first_days(&cells), "{s:?}");
        }
    }
}
