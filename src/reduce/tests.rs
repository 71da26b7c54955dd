//! Differential: the profiles merged from cells equal the ones counted over every event
//! ([`crate::detect::reach::AccessRows`]), for every kind, in zones with whole and half-hour
//! offsets, whole or split into partitions.

use super::*;
use crate::detect::reach::AccessRows;
use crate::normalize::schema::{DAY_MS, HOUR_MS};
use rand::{Rng, SeedableRng};

const WALK: Walk = Walk {
    max_step: 3,
    max_gap_ms: 6 * HOUR_MS,
};

/// (ts, event type, principal, credential, address, target)
type Event = (
    i64,
    &'static str,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Random events over 12 days: customers reading mostly their own account, staff reading many,
/// two walkers stepping through account numbers (across midnight too), instants shared by
/// several rows, rows without an account or of another type.
fn random_events(seed: u64) -> Vec<Event> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for i in 0..5000 {
        let who = rng.random_range(0..10u32);
        let (principal, target) = match who {
            0..=5 => {
                let me = format!("C{:04}", rng.random_range(0..200));
                let t = if rng.random_range(0..10) == 0 {
                    format!("C{:04}", rng.random_range(0..200))
                } else {
                    me.clone()
                };
                (me, Some(t))
            }
            6 | 7 => (
                format!("staff{}", rng.random_range(0..8)),
                Some(format!("C{:04}", rng.random_range(0..400))),
            ),
            _ => (
                format!("walker{}", who - 8),
                Some(format!("C{:04}", (i / 3) % 600 + rng.random_range(0..2))),
            ),
        };
        let target = (rng.random_range(0..25) > 0).then_some(target).flatten();
        // Walkers keep a steady pace through the night; the rest land anywhere.
        let ts = if who >= 8 {
            i as i64 * 3 * 60_000
        } else {
            rng.random_range(0..12) * DAY_MS + rng.random_range(0..DAY_MS / 60_000) * 60_000
        };
        let kind = ["access", "access", "access", "login"][rng.random_range(0..4)];
        let credential = (rng.random_range(0..6) > 0)
            .then(|| format!("key-{}", principal.len() % 3 + rng.random_range(0..2)));
        let address = (rng.random_range(0..12) > 0).then(|| {
            format!(
                "10.{}.0.{}",
                rng.random_range(0..3),
                rng.random_range(0..20)
            )
        });
        out.push((ts, kind, principal, credential, address, target));
    }
    out
}

fn frame(rows: &[Event]) -> DataFrame {
    let cat = |name: &str, values: Vec<Option<String>>| {
        crate::frame::key_column(name, values).expect("codes")
    };
    let network = |r: &Event| {
        r.4.as_ref().map(|a| {
            a.rsplit_once('.')
                .map_or(a.clone(), |(n, _)| format!("{n}.0/24"))
        })
    };
    DataFrame::new_infer_height(vec![
        Column::new(c::TS.into(), rows.iter().map(|r| r.0).collect::<Vec<_>>()),
        cat(
            c::EVENT_TYPE,
            rows.iter().map(|r| Some(r.1.to_string())).collect(),
        ),
        // An empty principal stands for none.
        cat(
            c::PRINCIPAL,
            rows.iter()
                .map(|r| Some(r.2.clone()).filter(|p| !p.is_empty()))
                .collect(),
        ),
        cat(c::CREDENTIAL, rows.iter().map(|r| r.3.clone()).collect()),
        cat(c::SOURCE_IP, rows.iter().map(|r| r.4.clone()).collect()),
        cat(c::NETWORK, rows.iter().map(network).collect()),
        cat(c::TARGET, rows.iter().map(|r| r.5.clone()).collect()),
    ])
    .expect("frame")
}

/// Profile fields as one comparable value (floats as bits: the same sums in the same order).
fn fields(p: &Profile) -> impl PartialEq + std::fmt::Debug {
    (
        (
            p.events,
            p.total,
            p.sum_daily,
            p.active_days,
            p.days.clone(),
        ),
        (
            p.spread_days.to_bits(),
            p.busiest_day_share.to_bits(),
            p.own_rows,
        ),
        (
            p.first,
            p.last,
            p.walk_steps,
            p.peak_hour,
            p.others,
            p.is_account,
        ),
    )
}

fn assert_same(reduced: &Reduced, symbols: &Symbols, events: &DataFrame, time: &TimeParser) {
    let access = AccessRows::new(events).expect("rows");
    for key in KINDS {
        for detail_from in [0, 25] {
            let want = access
                .profiles(events, key, WALK, detail_from, time)
                .expect("profiles");
            let got = reduced.profiles(key, symbols, WALK, detail_from);
            assert_eq!(got.len(), want.len(), "{key}: entities");
            for (id, w) in &want {
                assert_eq!(fields(&got[id]), fields(w), "{key} {id} from {detail_from}");
            }
        }
        let want = access
            .first_days(events, key, None, time)
            .expect("first days");
        assert_eq!(
            reduced.first_days(key, symbols, None),
            want,
            "{key}: first days"
        );
    }
    let names: BTreeSet<String> = (reduced.accounts.iter())
        .map(|a| symbols.name(a).to_owned())
        .collect();
    assert_eq!(names, access.account_names(), "accounts");
    assert_eq!(reduced.self_served(), access.self_served() as u64);
}

fn zones() -> [TimeParser; 3] {
    [
        TimeParser::new(chrono_tz::UTC),
        TimeParser::new(chrono_tz::Asia::Kolkata),
        TimeParser::new(chrono_tz::America::New_York),
    ]
}

#[test]
fn cells_give_the_profiles_counted_over_every_event() {
    let rows = random_events(11);
    let events = frame(&rows);
    for time in zones() {
        let mut symbols = Symbols::new();
        let reduced = Reduced::of(&events, &time, WALK, &mut symbols).expect("reduce");
        assert_same(&reduced, &symbols, &events, &time);
        assert_eq!(reduced.overlapping, 0);
        // Both forms were made: customers of one account, staff and walkers of many.
        let f = reduced.footprint(c::PRINCIPAL);
        assert!(f.singles >= 20 && f.cells > 100, "{f:?}");
        // The walkers were found, in every zone.
        let p = reduced.profiles(c::PRINCIPAL, &symbols, WALK, 0);
        assert!(
            p["walker0"].walk_steps > 100,
            "{:?}",
            p["walker0"].walk_steps
        );
    }
}

/// The frame stores no network (since the eighteenth session): the /24 or /64 of each address
/// is derived when the network kind is reduced or counted, and must give what a stored column of
/// `network_of` gave, public IPv4 and IPv6 addresses and internal ones (no network) alike.
#[test]
fn networks_derived_from_addresses_reduce_as_stored_ones() {
    let mut rows = random_events(17);
    for (i, r) in rows.iter_mut().enumerate() {
        if let Some(a) = &mut r.4 {
            match i % 3 {
                0 => *a = a.replacen("10.", "203.", 1),
                1 => *a = format!("2001:db8:{}::{}", i % 5, i % 7),
                _ => {}
            }
        }
    }
    let mut stored = frame(&rows);
    let networks: Vec<Option<String>> = rows
        .iter()
        .map(|r| {
            r.4.as_deref()
                .and_then(crate::normalize::columns::network_of)
        })
        .collect();
    let column = crate::frame::key_column(c::NETWORK, networks).expect("codes");
    stored.with_column(column).expect("column");
    let derived = stored.drop(c::NETWORK).expect("without networks");
    let time = TimeParser::new(chrono_tz::UTC);
    let (mut a, mut b) = (Symbols::new(), Symbols::new());
    let from_stored = Reduced::of(&stored, &time, WALK, &mut a).expect("reduce");
    let from_derived = Reduced::of(&derived, &time, WALK, &mut b).expect("reduce");
    assert!(from_stored == from_derived, "the network kind differs");
    let profiles = from_derived.profiles(c::NETWORK, &b, WALK, 0);
    assert!(profiles.len() >= 8, "{:?}", profiles.keys());
    assert!(
        profiles.keys().any(|k| k.ends_with("::/64")),
        "{:?}",
        profiles.keys()
    );
    // And the counting over every event reads the same derived column.
    assert_same(&from_derived, &b, &derived, &time);
    // A few flagged networks' rows are found by their addresses (`normalize::networks::lookup`).
    let flagged: BTreeSet<String> = profiles.keys().step_by(3).cloned().collect();
    for other in [c::SOURCE_IP, c::PRINCIPAL] {
        // Unordered lists (callers keep the top ones): sorted to compare.
        let count = |events| {
            let mut all = crate::detect::reach::counts_with(
                events,
                &crate::normalize::cold::IN_FRAME,
                c::NETWORK,
                &flagged,
                other,
            )
            .expect("counts");
            all.values_mut().for_each(|v| v.sort());
            all
        };
        let (want, got) = (count(&stored), count(&derived));
        assert_eq!(got.len(), flagged.len(), "{got:?}");
        assert_eq!(got, want, "related {other} of flagged networks");
    }
}

/// Nights reduced one by one with one symbol table and merged give the whole run's profiles
/// when each local day lies in one partition; when a day is split, counts and sets still join
/// exactly and the overlap is counted.
#[test]
fn partitions_of_whole_days_merge_into_the_whole_runs_profiles() {
    let rows = random_events(12);
    let events = frame(&rows);
    for time in zones() {
        let mut symbols = Symbols::new();
        let mut merged = Reduced::default();
        let day_of = |ts: i64| time.local_day(ts).day;
        let days: BTreeSet<i64> = rows.iter().map(|r| day_of(r.0)).collect();
        // Nights in a shuffled order: partitions need not arrive in time order.
        let mut nights: Vec<i64> = days.into_iter().collect();
        nights.reverse();
        nights.swap(1, 4);
        for night in nights {
            let part: Vec<Event> = rows
                .iter()
                .filter(|r| day_of(r.0) == night)
                .cloned()
                .collect();
            let reduced = Reduced::of(&frame(&part), &time, WALK, &mut symbols).expect("reduce");
            merged = merged.merge(reduced);
        }
        assert_eq!(merged.overlapping, 0);
        assert_same(&merged, &symbols, &events, &time);

        let mut symbols = Symbols::new();
        let odd: Vec<Event> = rows.iter().skip(1).step_by(2).cloned().collect();
        let even: Vec<Event> = rows.iter().step_by(2).cloned().collect();
        let halves = Reduced::of(&frame(&odd), &time, WALK, &mut symbols)
            .expect("reduce")
            .merge(Reduced::of(&frame(&even), &time, WALK, &mut symbols).expect("reduce"));
        assert!(halves.overlapping > 0);
        let whole = AccessRows::new(&events).expect("rows");
        let want = whole
            .profiles(&events, c::PRINCIPAL, WALK, 0, &time)
            .expect("profiles");
        for (id, p) in halves.profiles(c::PRINCIPAL, &symbols, WALK, 0) {
            let w = &want[&id];
            assert_eq!(
                (p.events, p.total, p.days.clone(), p.first, p.last),
                (w.events, w.total, w.days.clone(), w.first, w.last),
                "{id}"
            );
            assert!(p.peak_hour <= w.peak_hour, "{id}");
        }
    }
}

/// Big ranges of entities are placed as row indices and read a day at a time, the rest copied
/// whole; the kinds are reduced side by side or one after another: every way gives the same
/// records, and the same symbols.
#[test]
fn rows_placed_as_indices_reduce_as_rows_copied() {
    for seed in 0..3 {
        let events = frame(&random_events(seed));
        for time in zones() {
            let by = |big, side_by_side| {
                let mut symbols = Symbols::new();
                let how = Placing {
                    big: Some(big),
                    side_by_side,
                    group: usize::MAX,
                    ..Placing::default()
                };
                let reduced =
                    Reduced::of_placing(&events, &time, WALK, &mut symbols, how).expect("reduce");
                let names: Vec<String> = (0..symbols.len() as u32)
                    .map(|s| symbols.name(s).to_string())
                    .collect();
                (reduced, names)
            };
            let copied = by(usize::MAX, usize::MAX);
            assert!(copied.0.kinds.iter().all(|k| !k.cells.is_empty()));
            for (big, side_by_side) in [(0, usize::MAX), (usize::MAX, 0), (0, 0)] {
                assert_eq!(copied, by(big, side_by_side), "{big} {side_by_side}");
            }
        }
    }
}

/// An entity of one account on every day is one record; the footprint counts what a stored
/// state would hold.
#[test]
fn an_entity_of_one_account_is_one_record() {
    let rows: Vec<Event> = (0..3)
        .map(|d| {
            (
                d * DAY_MS,
                "access",
                "C0001".to_string(),
                None,
                None,
                Some("C0001".to_string()),
            )
        })
        .collect();
    let mut symbols = Symbols::new();
    let reduced = Reduced::of(
        &frame(&rows),
        &TimeParser::new(chrono_tz::UTC),
        WALK,
        &mut symbols,
    )
    .expect("reduce");
    let f = reduced.footprint(c::PRINCIPAL);
    assert_eq!(
        (f.entities, f.cells, f.singles, f.single_days),
        (1, 0, 1, 3)
    );
    assert_eq!(reduced.footprint(c::CREDENTIAL), Footprint::default());
    assert_eq!(symbols.len(), 1);
}

/// Rows of no principal, key or address: their accounts count, and stay counted by day.
fn with_orphans(mut rows: Vec<Event>) -> Vec<Event> {
    for d in [0, 3, 3, 7] {
        let account = format!("C{:04}", 900 + d);
        rows.push((
            d * DAY_MS + HOUR_MS,
            "access",
            String::new(),
            None,
            None,
            Some(account),
        ));
    }
    rows
}

/// A state's records drop the days read again or aged out and take those days' reduction
/// back: the result is the reduction of the rows that remain, in every zone (a New York day
/// spans a clock change), with accounts only rows of no entity named.
#[test]
fn days_dropped_and_reduced_again_give_the_records_of_the_rows_left() {
    let rows = with_orphans(random_events(21));
    for time in zones() {
        let day_of = |ts: i64| time.local_day(ts).day;
        let dropped: BTreeSet<i64> = [day_of(0), day_of(3 * DAY_MS), day_of(11 * DAY_MS)].into();
        let (on, off): (Vec<Event>, Vec<Event>) = rows
            .iter()
            .cloned()
            .partition(|r| dropped.contains(&day_of(r.0)));
        // Names from before (a state's): the rows' accounts are not the table's first codes.
        let mut symbols = Symbols::new();
        for name in ["an earlier night's key", "C0000", "C9999"] {
            symbols.intern(name).expect("intern");
        }
        let all = Reduced::of(&frame(&rows), &time, WALK, &mut symbols).expect("reduce");
        let orphans: BTreeSet<&str> = (all.orphans.values().flatten())
            .map(|a| symbols.name(a))
            .collect();
        assert!(orphans.is_superset(&["C0900", "C0903", "C0907"].into()));
        // Aged out: the rows of those days are gone.
        let left = all.clone().without_days(&dropped);
        assert_same(&left, &symbols, &frame(&off), &time);
        // An entity left with one account on every day is one record again, in entity order.
        let mut again = 0;
        for (kind, was) in left.kinds.iter().zip(&all.kinds) {
            let cells = kind.cells.chunk_by(|a, b| a.entity == b.entity);
            assert!(
                cells
                    .into_iter()
                    .all(|group| single::Single::of(group).is_none())
            );
            assert!(kind.singles.is_sorted_by_key(|s| s.entity));
            again += kind.singles.len().saturating_sub(was.singles.len());
        }
        assert!(again > 0, "no entity became one record again");
        // Read again: the same rows come back, reduced on their own, with the same table.
        let back = Reduced::of(&frame(&on), &time, WALK, &mut symbols).expect("reduce");
        let merged = left.merge(back);
        assert_eq!(merged.overlapping, 0);
        assert_same(&merged, &symbols, &frame(&rows), &time);
        assert!(symbols.len() as u64 >= merged.symbols_named());
    }
}

/// A day's counts of a one-account record are 16 bits: more rows in a day stay cells, alone or
/// when two partitions' records of the same day are joined.
#[test]
fn a_day_past_sixteen_bits_of_rows_stays_cells() {
    let time = TimeParser::new(chrono_tz::UTC);
    let busy = |n: usize, at: i64| -> Vec<Event> {
        (0..n)
            .map(|i| {
                let who = "C0001".to_string();
                (at + i as i64, "access", who.clone(), None, None, Some(who))
            })
            .collect()
    };
    let mut symbols = Symbols::new();
    let one = Reduced::of(&frame(&busy(70_000, 0)), &time, WALK, &mut symbols).expect("reduce");
    let principals = &one.kinds[1];
    assert_eq!((principals.cells.len(), principals.singles.len()), (1, 0));
    let mut half = |at| Reduced::of(&frame(&busy(40_000, at)), &time, WALK, &mut symbols);
    let (a, b) = (half(0).expect("reduce"), half(50_000).expect("reduce"));
    assert_eq!(a.kinds[1].singles.len(), 1);
    let joined = a.merge(b);
    assert_eq!(joined.kinds[1].singles.len(), 0);
    assert_eq!(joined.kinds[1].cells[0].events, 80_000);
    let rows = [busy(40_000, 0), busy(40_000, 50_000)].concat();
    let profiles = joined.profiles(c::PRINCIPAL, &symbols, WALK, 0);
    let want = AccessRows::new(&frame(&rows))
        .expect("rows")
        .profiles(&frame(&rows), c::PRINCIPAL, WALK, 0, &time)
        .expect("profiles");
    assert_eq!(fields(&profiles["C0001"]), fields(&want["C0001"]));
}

/// `df` taken apart as a big run's ingest leaves it: the cold columns (those it lacks as
/// placeholders: file 0, lines from 1, the rest null) handed to a sink that writes them to disk
/// in pieces of `sizes` rows in turn, and the frame without them, its runs of pieces under 100
/// rows copied into chunks of 200 or more as ingest copies them (`frame::compact`): a chunk of
/// the frame then holds the rows of several pieces on disk.
pub(crate) fn beside(
    df: &DataFrame,
    dir: &std::path::Path,
    sizes: &[usize],
) -> (DataFrame, ColdColumns) {
    let n = df.height();
    let mut full = df.clone();
    for name in crate::normalize::cold::COLUMNS {
        if full.column(name).is_ok() {
            continue;
        }
        let column = match name {
            c::FILE => Column::new(name.into(), vec![0u32; n]),
            c::LINE => Column::new(name.into(), (1..=n as u64).collect::<Vec<_>>()),
            c::TOKEN => Column::new(name.into(), vec![None::<u32>; n]),
            _ => crate::frame::key_column(name, vec![None::<String>; n]).expect("nulls"),
        };
        full.with_column(column).expect("cold column");
    }
    let sink = crate::normalize::ColdSink::new(dir, 0);
    let (mut hot, mut order, mut at) = (None::<DataFrame>, Vec::new(), 0);
    for size in sizes.iter().cycle() {
        if at >= n {
            break;
        }
        let mut piece = full.slice(at as i64, (*size).min(n - at));
        at += piece.height();
        order.push(sink.take(&mut piece).expect("taken"));
        match hot.as_mut() {
            None => hot = Some(piece),
            Some(acc) => {
                acc.vstack_mut(&piece).expect("stacked");
            }
        }
    }
    let cold = sink.finish(&order).expect("finished");
    let hot = crate::frame::compact(hot.expect("rows"), 200, &[n]).expect("compacted");
    (hot, cold)
}

// A window reduced a group of days at a time.
mod groups;
// Records made on disk, a group of days at a time.
mod on_disk;
// One-account records pulled a few row groups at a time.
mod singles;
// Records written to a folder and read back, whole and as streams.
mod written;
// Work run on threads of its own, as the kinds' merges are.
mod side_by_side;

/// Entities put in name order from lists in code order (runs already in name order, as codes
/// are given a sorted batch at a time), reversed, and shuffled: each time the order polars'
/// and the standard library's sort by name give.
#[test]
fn lists_in_name_order_are_sorted_by_name() {
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let mut symbols = Symbols::new();
    for _ in 0..6 {
        // Short names, and long ones that share their first 16 bytes or differ past them.
        let mut batch: Vec<String> = (0..rng.random_range(1..40))
            .map(|i| match i % 3 {
                0 => format!("e-{}", rng.random_range(0..500)),
                1 => format!("entity-sharing-a-prefix-{}", rng.random_range(0..500)),
                _ => format!("entity-sharing-\u{e9}{}", rng.random_range(0..50)),
            })
            .collect();
        batch.sort();
        for name in batch {
            symbols.intern(&name).expect("code");
        }
    }
    let codes: Vec<u32> = (0..symbols.len() as u32).collect();
    let mut shuffled = codes.clone();
    shuffled.shuffle(&mut rng);
    let reversed: Vec<u32> = codes.iter().rev().copied().collect();
    for list in [codes, shuffled, reversed, Vec::new(), vec![3]] {
        let items: Vec<(u32, String)> = (list.iter())
            .map(|&c| (c, format!("payload of {c}")))
            .collect();
        let mut want = items.clone();
        want.sort_by(|a, b| symbols.name(a.0).cmp(symbols.name(b.0)));
        assert_eq!(by_name(items, |i| i.0, &symbols), want);
    }
}

/// Account numbers held in 8 bytes order, compare and read back as the numbers they hold, none
/// first: the reduction's walks and its sort by (instant, number) rest on both.
#[test]
fn account_numbers_in_eight_bytes_keep_their_order() {
    use crate::reduce::cells::Number;
    let numbers = [
        None,
        Some(0),
        Some(1),
        Some(41),
        Some(999_999_999_999_999_999),
    ];
    for (i, a) in numbers.iter().enumerate() {
        assert_eq!(Number::of(*a).get(), *a);
        for b in &numbers[i..] {
            assert_eq!(Number::of(*a).cmp(&Number::of(*b)), a.cmp(b), "{a:?} {b:?}");
        }
    }
    assert_eq!(Number::of(Some(-5)).get(), None);
    assert_eq!(std::mem::size_of::<Number>(), 8);
}
